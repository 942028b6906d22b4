/**
 * The previous generation as the builder sees it: per directory, the sorted entries with the
 * generation inode of each. Normally read from its manifest (no stat of the spool, no atime
 * updates on NFS); when the manifest is missing or damaged, from a walk of the generation
 * itself (its files carry the source's metadata, so they compare the same way).
 */
import { parseScan } from '../fs/entry.js';
import type { ManifestEntry } from '../manifest/format.js';
import type { ManifestReader } from '../manifest/reader.js';
import { sys } from '../fs/native.js';

export interface PrevTree {
  readonly kind: 'manifest' | 'walk';
  /** entries of one directory; prevFd is that directory in the previous generation or -1 */
  dir(rel: Buffer, prevFd: number): ManifestEntry[] | undefined;
  /** the same from the generation itself (fallback for a damaged block) */
  walkDir(prevFd: number): ManifestEntry[];
}

export function walkDir(prevFd: number): ManifestEntry[] {
  if (prevFd < 0) return [];
  const raw = sys.scandir(prevFd);
  if (typeof raw === 'number') return [];
  return parseScan(raw)
    .filter((e) => e.err === 0)
    .map((e) => ({
      name: e.name, type: e.type, mode: e.mode, uid: e.uid, gid: e.gid, size: e.type === 'dir' ? 0 : e.size,
      mtimeSec: e.mtimeSec, mtimeNsec: e.mtimeNsec, rdev: e.rdev, target: e.target,
      flags: 0, linkGroup: 0, ino: e.ino, hash: null,
    }));
}

export function prevFromManifest(m: ManifestReader): PrevTree {
  return { kind: 'manifest', dir: (rel) => m.dir(rel), walkDir };
}

export function prevFromWalk(): PrevTree {
  return { kind: 'walk', dir: (_rel, fd) => walkDir(fd), walkDir };
}
