/**
 * One manifest in the content index (dedup-index.ts): its regular files keyed by a 32-bit hash
 * of (size, mtime) in typed arrays, 20 to 24 bytes a file plus one path per directory, not
 * objects; a lookup that hits decodes the directory block from the manifest again. Where the
 * spool clones, also keyed by size alone (sizeKey chains). What is indexable, the key, and
 * "same metadata" (a hard link shares it) are defined here, once.
 */
import type { Meta } from '../fs/entry.js';
import { sameXattrs } from '../fs/xattrs.js';
import { FLAG, type ManifestEntry, type RawDirBlock } from '../manifest/format.js';
import type { ManifestReader } from '../manifest/reader.js';
import type { Candidate } from './dedup-index.js';

/** Files smaller than this are never content-linked (an empty file is not worth a shared inode). */
export const DEDUP_MIN_SIZE = 1;
/**
 * Files smaller than this are not looked up by size alone for a clone: the source would be read
 * once more (to hash it) to save a few blocks.
 */
export const CLONE_MIN_SIZE = 64 * 1024;

export function indexable(e: ManifestEntry): boolean {
  return e.type === 'file' && e.hash !== null && e.ino > 0 && e.size >= DEDUP_MIN_SIZE && !(e.flags & (FLAG.UNSTABLE | FLAG.ABSENT));
}

/**
 * Chained hash buckets over the first `size` keys: a power of two at least twice their number,
 * `heads[key & mask]` the newest index of a bucket, `next[i]` the one before it (-1: none).
 */
function buckets(keys: Uint32Array, size: number): { mask: number; heads: Int32Array<ArrayBuffer>; next: Int32Array<ArrayBuffer> } {
  let n = 1;
  while (n < size * 2) n *= 2;
  const mask = n - 1;
  const heads = new Int32Array(n).fill(-1);
  const next = new Int32Array(size);
  for (let i = 0; i < size; i++) {
    const b = keys[i]! & mask;
    next[i] = heads[b]!;
    heads[b] = i;
  }
  return { mask, heads, next };
}

/** indexable() of entry i of an undecoded block */
function rawIndexable(b: RawDirBlock, i: number): boolean {
  const flags = b.flags(i);
  return b.isFile(i) && (flags & FLAG.HAS_HASH) !== 0 && !(flags & (FLAG.UNSTABLE | FLAG.ABSENT)) && b.ino(i) > 0 && b.size(i) >= DEDUP_MIN_SIZE;
}

/** 32-bit hash of size and mtime (the index key; collisions only cost a block decode). */
export function key32(m: Pick<Meta, 'size' | 'mtimeSec' | 'mtimeNsec'>): number {
  return key32Of(m.size, m.mtimeSec, m.mtimeNsec);
}

function key32Of(size: number, mtimeSec: number, mtimeNsec: number): number {
  let h = (size >>> 0) ^ Math.imul(Math.floor(size / 4294967296) >>> 0, 0x9e3779b1);
  h = Math.imul(h ^ (mtimeSec >>> 0), 0x85ebca6b);
  h = Math.imul(h ^ (Math.floor(mtimeSec / 4294967296) >>> 0), 0x27d4eb2f);
  h = Math.imul(h ^ mtimeNsec, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export type Matchable = Pick<Meta, 'size' | 'mtimeSec' | 'mtimeNsec' | 'mode' | 'uid' | 'gid' | 'xattrs'>;

export function matches(e: Matchable, m: Matchable): boolean {
  return (
    e.size === m.size &&
    e.mtimeSec === m.mtimeSec &&
    e.mtimeNsec === m.mtimeNsec &&
    e.mode === m.mode &&
    e.uid === m.uid &&
    e.gid === m.gid &&
    sameXattrs(e.xattrs, m.xattrs)
  );
}

/**
 * Copies of the small Buffers the index keeps (directory paths, names), packed into slabs of its
 * own. A `Buffer.from()` copy is a slice of Node's shared 8 KiB pool, and one live slice keeps
 * the whole slab alive with whatever garbage shares it: for a million files that was ~100 MB.
 */
export class ByteArena {
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
    ({ mask: this.mask, heads: this.heads, next: this.next } = buckets(this.keys, this.size));
  }

  /** The values of `key`, newest pair first. */
  *get(key: number): Generator<number> {
    if (!this.size) return;
    for (let i = this.heads[key & this.mask]!; i >= 0; i = this.next[i]!) if (this.keys[i] === key) yield this.vals[i]!;
  }
}

/** One generation's manifest, indexed compactly: key -> (directory, entry position). */
export class ManifestTable {
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

  constructor(
    private readonly reader: ManifestReader,
    private readonly root: number,
    private readonly ownsReader: boolean,
    arena: ByteArena,
    bySize: boolean,
  ) {
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
    ({ mask: this.mask, heads: this.heads, next: this.next } = buckets(this.keys, this.size));
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
      mode: e.mode,
      uid: e.uid,
      gid: e.gid,
      hash: e.hash!,
      root: this.root,
      dir: this.dirs[d]!,
      name: e.name,
      ino: e.ino,
      xattrs: e.xattrs,
      flags: e.flags,
      size: e.size,
      mtimeSec: e.mtimeSec,
      mtimeNsec: e.mtimeNsec,
      sameMeta,
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
