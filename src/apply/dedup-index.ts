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
import type { ManifestEntry } from '../manifest/format.js';
import type { ManifestReader } from '../manifest/reader.js';
import { joinRel } from '../paths/escape.js';
import { sys } from '../fs/native.js';
import { ByteArena, CLONE_MIN_SIZE, ManifestTable, indexable, key32, matches } from './manifest-table.js';

export { CLONE_MIN_SIZE, DEDUP_MIN_SIZE } from './manifest-table.js';

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

/** Files of older generations (not in the previous one) that join the index, at most. */
const DEPARTED_MAX = 50_000;
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

export class DedupIndex {
  private readonly tables: ManifestTable[] = [];
  private readonly run = new Map<number, Candidate[]>();
  /** bySize: the departed files of CLONE_MIN_SIZE or more, by size */
  private readonly runBySize = new Map<number, Candidate[]>();
  private departed = 0;
  private readonly gone = new Set<string>();
  /** attrsUnvouched: the spool was copied since that generation was made (its inode numbers are not the recorded ones): a copy without -AX may have dropped its inodes' attributes */
  private readonly roots: { fd: number; label: string; owned: boolean; attrsUnvouched: boolean }[] = [];
  /** some root's attributes are unvouched */
  private unvouched = false;
  private readonly collide = collideSeam();
  private readonly arena = new ByteArena();
  /** the arena copy of the directory of the last addEntry (entries come directory by directory) */
  private lastDir: { given: Buffer; copy: Buffer } | null = null;

  /** bySize: also index by size alone, for clones (only where the spool clones) */
  constructor(private readonly bySize = false) {}

  /** Adds a generation root (O_PATH descriptor); returns its number. */
  addRoot(fd: number, label: string, owned: boolean, attrsUnvouched = false): number {
    this.roots.push({ fd, label, owned, attrsUnvouched });
    this.unvouched ||= attrsUnvouched;
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
      mode: e.mode,
      uid: e.uid,
      gid: e.gid,
      hash: e.hash!,
      root,
      dir: this.lastDir.copy,
      name: this.arena.copy(e.name),
      ino: e.ino,
      size: e.size,
      mtimeSec: e.mtimeSec,
      mtimeNsec: e.mtimeNsec,
      xattrs: e.xattrs,
      flags: e.flags,
      sameMeta: true,
    };
    (this.run.get(k) ?? this.run.set(k, []).get(k)!).push(c);
    if (this.bySize && e.size >= CLONE_MIN_SIZE) (this.runBySize.get(e.size) ?? this.runBySize.set(e.size, []).get(e.size)!).push(c);
  }

  /** Files of the same size, mtime (ns), mode and owner as `m`: the only ones it may be linked to. */
  candidates(m: Meta): Candidate[] {
    const out: Candidate[] = [];
    for (const t of this.tables) t.lookup(m, out);
    for (const c of this.run.get(key32(m)) ?? []) if (matches(c, m)) out.push(c);
    // (a file whose record names attributes, in a generation copied since: its inode may have
    // lost them, and a link would give them to no one)
    return this.gone.size || (m.xattrs && this.unvouched)
      ? out.filter((c) => !this.gone.has(`${c.root}:${c.ino}`) && !(c.xattrs && this.roots[c.root]!.attrsUnvouched))
      : out;
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
