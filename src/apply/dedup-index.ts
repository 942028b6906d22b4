/**
 * The content index for deduplication (docs/CONTENT.md): regular files already in the spool,
 * keyed by size and mtime, each with its XXH64, mode, owner, generation inode and where it is
 * (a generation root descriptor plus its path below it). Built from the previous generation's
 * manifest (and, with `--dedup host`, the newest generation of every other part of the host on
 * the same file system), then grown with the files this run writes. Memory is about one small
 * object per regular file of the generations indexed; no older generations are read.
 */
import type { Meta } from '../fs/entry.js';
import { FLAG, type ManifestEntry } from '../manifest/format.js';
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
}

/** Files smaller than this are never content-linked: an inode costs more than their bytes. */
export const DEDUP_MIN_SIZE = 1;

/**
 * Test seam: HARDSNAP_TEST_HASH_COLLIDE=1 makes every content hash compare equal in the index
 * (as if XXH64 collided for every pair), to prove that --dedup-verify catches a collision.
 */
function collideSeam(): boolean {
  return process.env.HARDSNAP_TEST_HASH_COLLIDE === '1';
}

export class DedupIndex {
  private readonly map = new Map<string, Candidate[]>();
  private readonly roots: { fd: number; label: string; owned: boolean }[] = [];
  private readonly collide = collideSeam();
  /** regular files indexed */
  size = 0;

  /** Adds a generation root (O_PATH descriptor); returns its number for add(). */
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

  /** Indexes every hashed regular file of a manifest. */
  addManifest(root: number, reader: ManifestReader): void {
    for (const { dir, entries } of reader.walk()) for (const e of entries) this.addEntry(root, dir, e);
  }

  addEntry(root: number, dir: Buffer, e: ManifestEntry): void {
    if (e.type !== 'file' || !e.hash || !e.ino || e.size < DEDUP_MIN_SIZE || e.flags & (FLAG.UNSTABLE | FLAG.ABSENT)) return;
    const k = key(e);
    const c: Candidate = { mode: e.mode, uid: e.uid, gid: e.gid, hash: e.hash, root, dir, name: e.name, ino: e.ino };
    const list = this.map.get(k);
    if (list) list.push(c);
    else this.map.set(k, [c]);
    this.size++;
  }

  /** Files of the same size, mtime (ns), mode and owner as `e`: the only ones it may be linked to. */
  candidates(e: Meta): Candidate[] {
    const list = this.map.get(key(e));
    if (!list) return [];
    return list.filter((c) => c.mode === e.mode && c.uid === e.uid && c.gid === e.gid);
  }

  /** Whether two hashes count as equal (always, under the test seam). */
  sameHash(a: string, b: string): boolean {
    return this.collide || a === b;
  }

  /** Drops a candidate whose inode refused another link (EMLINK) or is gone. */
  forget(c: Candidate, e: Meta): void {
    const list = this.map.get(key(e));
    const i = list?.indexOf(c) ?? -1;
    if (i >= 0) list!.splice(i, 1);
  }

  relPath(c: Candidate): Buffer {
    return joinRel(c.dir, c.name);
  }

  close(): void {
    for (const r of this.roots) if (r.owned && r.fd >= 0) sys.close(r.fd);
    this.roots.length = 0;
    this.map.clear();
  }
}

function key(m: Meta): string {
  return `${m.size}:${m.mtimeSec}:${m.mtimeNsec}`;
}
