/**
 * The content index for deduplication (docs/CONTENT.md): regular files already in the spool
 * that a new or changed file may be hard-linked to. Built from the previous generation's
 * manifest (and, with `--dedup host`, the newest generation of every other part of the host on
 * the same file system), plus the files of older generations of the part that the previous
 * one no longer holds. Files this run writes never join it: two separate source files of one
 * generation are never one inode (src/apply/claims.ts).
 *
 * Memory: a manifest is indexed by a 32-bit hash of (size, mtime) per regular file in typed
 * arrays (20 to 24 bytes a file plus one path per directory; 10 million files ~ 250 MB), not
 * by objects; a lookup that hits decodes the directory block from the manifest again (only
 * renamed, moved or copied files hit). Files of older generations are kept as objects (~200
 * bytes each), at most DEPARTED_MAX of them.
 *
 * Clones (src/apply/clone.ts): where the spool clones, the index also answers by size alone
 * (cloneCandidates): a file of CLONE_MIN_SIZE or more whose metadata differs from every indexed
 * file of its size (renamed by `git checkout`, touched) may still share their content. That
 * costs ~20 bytes more per indexed file of that size, and only when the spool clones.
 */
import type { Meta } from '../fs/entry.js';
import { sameXattrs } from '../fs/xattrs.js';
import { FLAG, type ManifestEntry, type RawDirBlock } from '../manifest/format.js';
import type { ManifestReader } from '../manifest/reader.js';
import { joinRel } from '../paths/escape.js';
import { sys } from '../fs/native.js';

export type DedupScope = 'off' | 'part' | 'host';

export interface Candidate {
  mode: number;
  uid: number;
  gid: number;
  /** XXH64 hex as recorded */
  hash: string;
  /** which generation root (index into the index's roots) */
  root: number;
  dir: Buffer;
  name: Buffer;
  ino: number;
  /** its extended attributes as recorded (a link shares them) */
  xattrs: Buffer | null;
  /** its flags as recorded (OFF_SPOOL: the inode lacks some of them, and a link shares that) */
  flags: number;
  /** its size and mtime as recorded (checked before it is cloned) */
  size: number;
  mtimeSec: number;
  mtimeNsec: number;
  /**
   * its metadata is the file's it was looked up for (size, mtime, mode, owner, attributes): it
   * may be hard-linked; otherwise (cloneCandidates) only cloned
   */
  sameMeta: boolean;
}

/** Files smaller than this are never content-linked (an empty file is not worth a shared inode). */
export const DEDUP_MIN_SIZE = 1;
/** Files of older generations (not in the previous one) that join the index, at most. */
const DEPARTED_MAX = 50_000;
/**
 * Files smaller than this are not looked up by size alone for a clone: the source would be read
 * once more (to hash it) to save a few blocks.
 */
export const CLONE_MIN_SIZE = 64 * 1024;
/**
 * A size shared by more indexed files than this is no clue (fixed-size files: database segments,
 * disk images, preallocated logs): a changed one is not read once more to hash it first.
 */
export const CLONE_SIZE_SHARED_MAX = 8;

/**
 * Test seam: HARDSNAP_TEST_HASH_COLLIDE=1 makes every content hash compare equal in the index
 * (as if XXH64 collided for every pair), to prove that --dedup-verify catches a collision.
 */
function collideSeam(): boolean {
  return process.env.HARDSNAP_TEST_HASH_COLLIDE === '1';
}

function indexable(e: ManifestEntry): boolean {
  return e.type === 'file' && e.hash !== null && e.ino > 0 && e.size >= DEDUP_MIN_SIZE && !(e.flags & (FLAG.UNSTABLE | FLAG.ABSENT));
}

/** indexable() of entry i of an undecoded block */
function rawIndexable(b: RawDirBlock, i: number): boolean {
  const flags = b.flags(i);
  return b.isFile(i) && (flags & FLAG.HAS_HASH) !== 0 && !(flags & (FLAG.UNSTABLE | FLAG.ABSENT)) && b.ino(i) > 0 && b.size(i) >= DEDUP_MIN_SIZE;
}

/** 32-bit hash of size and mtime (the index key; collisions only cost a block decode). */
function key32(m: Pick<Meta, 'size' | 'mtimeSec' | 'mtimeNsec'>): number {
  return key32Of(m.size, m.mtimeSec, m.mtimeNsec);
}

function key32Of(size: number, mtimeSec: number, mtimeNsec: number): number {
  let h = (size >>> 0) ^ Math.imul(Math.floor(size / 4294967296) >>> 0, 0x9e3779b1);
  h = Math.imul(h ^ (mtimeSec >>> 0), 0x85ebca6b);
  h = Math.imul(h ^ Math.floor(mtimeSec / 4294967296) >>> 0, 0x27d4eb2f);
  h = Math.imul(h ^ mtimeNsec, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

type Matchable = Pick<Meta, 'size' | 'mtimeSec' | 'mtimeNsec' | 'mode' | 'uid' | 'gid' | 'xattrs'>;

function matches(e: Matchable, m: Matchable): boolean {
  return e.size === m.size && e.mtimeSec === m.mtimeSec && e.mtimeNsec === m.mtimeNsec &&
    e.mode === m.mode && e.uid === m.uid && e.gid === m.gid && sameXattrs(e.xattrs, m.xattrs);
}

/**
 * Copies of the small Buffers the index keeps (directory paths, names), packed into slabs of its
 * own. A `Buffer.from()` copy is a slice of Node's shared 8 KiB pool, and one live slice keeps
 * the whole slab alive with whatever garbage shares it: for a million files that was ~100 MB.
 */
class ByteArena {
  private slab = Buffer.allocUnsafeSlow(0);
  private used = 0;

  copy(b: Buffer): Buffer {
    if (this.used + b.length > this.slab.length) {
      this.slab = Buffer.allocUnsafeSlow(Math.max(64 << 10, b.length));
      this.used = 0;
    }
    const out = this.slab.subarray(this.used, this.used + b.length);
    b.copy(out);
    this.used += b.length;
    return out;
  }
}

function grow(a: Uint32Array<ArrayBuffer>, n: number): Uint32Array<ArrayBuffer> {
  if (n < a.length) return a;
  const b = new Uint32Array(a.length * 2);
  b.set(a);
  return b;
}

/** 32-bit hash of a size alone (the key of the clone chains). */
function sizeKey(size: number): number {
  return key32Of(size, 0, 0);
}

/** A hash table of (key, value) pairs in typed arrays, chained (no object per entry). */
class Chains {
  private keys = new Uint32Array(256);
  private vals = new Uint32Array(256);
  private heads = new Int32Array(0);
  private next = new Int32Array(0);
  private mask = 0;
  size = 0;

  add(key: number, val: number): void {
    const n = this.size++;
    this.keys = grow(this.keys, n);
    this.vals = grow(this.vals, n);
    this.keys[n] = key;
    this.vals[n] = val;
  }

  /** Builds the buckets once every pair is added (and drops the growth slack). */
  seal(): void {
    this.keys = this.keys.slice(0, this.size);
    this.vals = this.vals.slice(0, this.size);
    let buckets = 1;
    while (buckets < this.size * 2) buckets *= 2;
    this.mask = buckets - 1;
    this.heads = new Int32Array(buckets).fill(-1);
    this.next = new Int32Array(this.size);
    for (let i = 0; i < this.size; i++) {
      const b = this.keys[i]! & this.mask;
      this.next[i] = this.heads[b]!;
      this.heads[b] = i;
    }
  }

  /** The values of `key`, newest pair first. */
  *get(key: number): Generator<number> {
    if (!this.size) return;
    for (let i = this.heads[key & this.mask]!; i >= 0; i = this.next[i]!) if (this.keys[i] === key) yield this.vals[i]!;
  }
}

/** One generation's manifest, indexed compactly: key -> (directory, entry position). */
class ManifestTable {
  private readonly dirs: Buffer[] = [];
  private keys = new Uint32Array(1024);
  private dirOf = new Uint32Array(1024);
  private posOf = new Uint32Array(1024);
  private heads = new Int32Array(0);
  private next = new Int32Array(0);
  private mask = 0;
  size = 0;
  /** bySize: entry numbers of files of CLONE_MIN_SIZE or more, by size (clone candidates) */
  private readonly bySize: Chains | null;

  constructor(private readonly reader: ManifestReader, private readonly root: number, private readonly ownsReader: boolean,
    arena: ByteArena, bySize: boolean) {
    this.bySize = bySize ? new Chains() : null;
    // the blocks stay undecoded: only the few files a lookup hits are decoded, then
    for (const b of reader.rawWalk()) {
      let d = -1;
      for (let i = 0; i < b.length; i++) {
        if (!rawIndexable(b, i)) continue;
        if (d < 0) {
          d = this.dirs.length;
          this.dirs.push(arena.copy(b.dir));
        }
        const n = this.size++;
        this.keys = grow(this.keys, n);
        this.dirOf = grow(this.dirOf, n);
        this.posOf = grow(this.posOf, n);
        this.keys[n] = key32Of(b.size(i), b.mtimeSec(i), b.mtimeNsec(i));
        this.dirOf[n] = d;
        this.posOf[n] = i;
        if (this.bySize && b.size(i) >= CLONE_MIN_SIZE) this.bySize.add(sizeKey(b.size(i)), n);
      }
    }
    this.bySize?.seal();
    // drop the growth slack
    this.keys = this.keys.slice(0, this.size);
    this.dirOf = this.dirOf.slice(0, this.size);
    this.posOf = this.posOf.slice(0, this.size);
    let buckets = 1;
    while (buckets < this.size * 2) buckets *= 2;
    this.mask = buckets - 1;
    this.heads = new Int32Array(buckets).fill(-1);
    this.next = new Int32Array(this.size);
    for (let i = 0; i < this.size; i++) {
      const b = this.keys[i]! & this.mask;
      this.next[i] = this.heads[b]!;
      this.heads[b] = i;
    }
  }

  lookup(m: Meta, out: Candidate[]): void {
    const k = key32(m);
    let cachedDir = -1;
    let block: RawDirBlock | undefined;
    for (let i = this.heads[k & this.mask]!; i >= 0; i = this.next[i]!) {
      if (this.keys[i] !== k) continue;
      const d = this.dirOf[i]!;
      if (cachedDir !== d) {
        cachedDir = d;
        block = this.reader.rawDirByKey(this.dirs[d]!.toString('latin1'));
      }
      const pos = this.posOf[i]!;
      // a key collision or a stale position costs a look at three fields, not a decoded block
      if (!block || pos >= block.length || block.size(pos) !== m.size || block.mtimeSec(pos) !== m.mtimeSec || block.mtimeNsec(pos) !== m.mtimeNsec) continue;
      const e = block.decode(pos);
      if (!indexable(e) || !matches(e, m)) continue;
      out.push(this.candidate(e, d, true));
    }
  }

  private candidate(e: ManifestEntry, d: number, sameMeta: boolean): Candidate {
    return {
      mode: e.mode, uid: e.uid, gid: e.gid, hash: e.hash!, root: this.root, dir: this.dirs[d]!, name: e.name, ino: e.ino,
      xattrs: e.xattrs, flags: e.flags, size: e.size, mtimeSec: e.mtimeSec, mtimeNsec: e.mtimeNsec, sameMeta,
    };
  }

  /**
   * Files of m's size whose metadata differs from m's (clone candidates), appended to out; false
   * when the size is shared by more than `max` files in all (counted in `seen`).
   */
  lookupSize(m: Meta, out: Candidate[], seen: { n: number }, max: number): boolean {
    if (!this.bySize) return true;
    const hits: { block: RawDirBlock; pos: number; d: number }[] = [];
    const blocks = new Map<number, RawDirBlock | undefined>();
    for (const n of this.bySize.get(sizeKey(m.size))) {
      const d = this.dirOf[n]!;
      if (!blocks.has(d)) blocks.set(d, this.reader.rawDirByKey(this.dirs[d]!.toString('latin1')));
      const block = blocks.get(d);
      const pos = this.posOf[n]!;
      if (!block || pos >= block.length || block.size(pos) !== m.size) continue;
      if (++seen.n > max) return false;
      hits.push({ block, pos, d });
    }
    for (const { block, pos, d } of hits) {
      const e = block.decode(pos);
      if (indexable(e) && !matches(e, m)) out.push(this.candidate(e, d, false));
    }
    return true;
  }

  close(): void {
    if (this.ownsReader) this.reader.close();
  }
}

export class DedupIndex {
  private readonly tables: ManifestTable[] = [];
  private readonly run = new Map<number, Candidate[]>();
  /** bySize: the departed files of CLONE_MIN_SIZE or more, by size */
  private readonly runBySize = new Map<number, Candidate[]>();
  private departed = 0;
  private readonly gone = new Set<string>();
  private readonly roots: { fd: number; label: string; owned: boolean }[] = [];
  private readonly collide = collideSeam();
  private readonly arena = new ByteArena();
  /** the arena copy of the directory of the last addEntry (entries come directory by directory) */
  private lastDir: { given: Buffer; copy: Buffer } | null = null;

  /** bySize: also index by size alone, for clones (only where the spool clones) */
  constructor(private readonly bySize = false) {}

  /** Adds a generation root (O_PATH descriptor); returns its number. */
  addRoot(fd: number, label: string, owned: boolean): number {
    this.roots.push({ fd, label, owned });
    return this.roots.length - 1;
  }

  rootFd(c: Candidate): number {
    return this.roots[c.root]!.fd;
  }

  rootLabel(c: Candidate): string {
    return this.roots[c.root]!.label;
  }

  /** Indexes every hashed regular file of a manifest; the reader must stay open until close(). */
  addManifest(root: number, reader: ManifestReader, ownsReader: boolean): number {
    const t = new ManifestTable(reader, root, ownsReader, this.arena, this.bySize);
    this.tables.push(t);
    return t.size;
  }

  /**
   * A file of an older generation that the previous one no longer holds (src/backup/
   * dedup-sources.ts chooses them); false once DEPARTED_MAX of them are indexed.
   */
  addDeparted(root: number, dir: Buffer, e: ManifestEntry): boolean {
    if (this.departed >= DEPARTED_MAX) return false;
    if (!indexable(e)) return true;
    this.remember(root, dir, e);
    this.departed++;
    return true;
  }

  private remember(root: number, dir: Buffer, e: ManifestEntry): void {
    const k = key32(e);
    // copies of the small fields only: e.name is a slice of the whole directory's scan buffer
    if (this.lastDir?.given !== dir) this.lastDir = { given: dir, copy: this.arena.copy(dir) };
    const c: Candidate = {
      mode: e.mode, uid: e.uid, gid: e.gid, hash: e.hash!, root, dir: this.lastDir.copy, name: this.arena.copy(e.name), ino: e.ino,
      size: e.size, mtimeSec: e.mtimeSec, mtimeNsec: e.mtimeNsec, xattrs: e.xattrs, flags: e.flags, sameMeta: true,
    };
    (this.run.get(k) ?? this.run.set(k, []).get(k)!).push(c);
    if (this.bySize && e.size >= CLONE_MIN_SIZE) (this.runBySize.get(e.size) ?? this.runBySize.set(e.size, []).get(e.size)!).push(c);
  }

  /** Files of the same size, mtime (ns), mode and owner as `m`: the only ones it may be linked to. */
  candidates(m: Meta): Candidate[] {
    const out: Candidate[] = [];
    for (const t of this.tables) t.lookup(m, out);
    for (const c of this.run.get(key32(m)) ?? []) if (matches(c, m)) out.push(c);
    return this.gone.size ? out.filter((c) => !this.gone.has(`${c.root}:${c.ino}`)) : out;
  }

  /**
   * Files of m's size (CLONE_MIN_SIZE or more) whose metadata differs from m's: they may hold
   * its content, to be cloned (never linked). None when the index was not built by size, or when
   * more than CLONE_SIZE_SHARED_MAX indexed files have that size.
   */
  cloneCandidates(m: Meta): Candidate[] {
    if (!this.bySize || m.type !== 'file' || m.size < CLONE_MIN_SIZE) return [];
    const out: Candidate[] = [];
    const seen = { n: 0 };
    for (const t of this.tables) if (!t.lookupSize(m, out, seen, CLONE_SIZE_SHARED_MAX)) return [];
    for (const c of this.runBySize.get(m.size) ?? []) {
      if (++seen.n > CLONE_SIZE_SHARED_MAX) return [];
      if (!matches(c, m)) out.push({ ...c, sameMeta: false });
    }
    return this.gone.size ? out.filter((c) => !this.gone.has(`${c.root}:${c.ino}`)) : out;
  }

  /** Whether two hashes count as equal (always, under the test seam). */
  sameHash(a: string, b: string): boolean {
    return this.collide || a === b;
  }

  /** Drops a candidate inode that refused another link (EMLINK) or is gone. */
  forget(c: Candidate): void {
    this.gone.add(`${c.root}:${c.ino}`);
  }

  relPath(c: Candidate): Buffer {
    return joinRel(c.dir, c.name);
  }

  close(): void {
    for (const t of this.tables) t.close();
    for (const r of this.roots) if (r.owned && r.fd >= 0) sys.close(r.fd);
    this.tables.length = 0;
    this.roots.length = 0;
    this.run.clear();
    this.runBySize.clear();
  }
}
