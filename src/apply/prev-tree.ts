/**
 * The previous generation as the builder sees it: per directory, the sorted entries with the
 * generation inode of each. Normally read from its manifest (no stat of the spool, no atime
 * updates on NFS); when the manifest is missing or damaged, from a walk of the generation
 * itself (its files carry the source's metadata, so they compare the same way).
 */
import { readDirAt } from '../fs/entry.js';
import type { ManifestEntry } from '../manifest/format.js';
import type { ManifestReader } from '../manifest/reader.js';
import type { PrevDir } from '../plan/prev-dir.js';

export type { PrevDir };

/** Entries already decoded (a walk of the generation, or no previous generation). */
export class DecodedDir implements PrevDir {
  constructor(private readonly entries: ManifestEntry[]) {}

  get length(): number {
    return this.entries.length;
  }

  compareName(i: number, name: Buffer): number {
    return Buffer.compare(this.entries[i]!.name, name);
  }

  decode(i: number): ManifestEntry {
    return this.entries[i]!;
  }

  ino(i: number): number {
    return this.entries[i]!.ino;
  }

  unchangedFile(): Buffer | null {
    return null;
  }

  decodeAll(): ManifestEntry[] {
    return this.entries;
  }
}

export const NO_PREV_DIR: PrevDir = new DecodedDir([]);

export interface PrevTree {
  readonly kind: 'manifest' | 'walk';
  /** entries of one directory; prevFd is that directory in the previous generation or -1 */
  dir(rel: Buffer, prevFd: number): PrevDir | undefined;
  /** the same from the generation itself (fallback for a damaged block) */
  walkDir(prevFd: number): PrevDir;
}

export function walkDir(prevFd: number): PrevDir {
  if (prevFd < 0) return NO_PREV_DIR;
  const read = readDirAt(prevFd);
  if (typeof read === 'number') return NO_PREV_DIR;
  return new DecodedDir(
    read
      .filter((e) => e.err === 0)
      .map((e) => ({
        name: e.name,
        type: e.type,
        mode: e.mode,
        uid: e.uid,
        gid: e.gid,
        size: e.type === 'dir' ? 0 : e.size,
        mtimeSec: e.mtimeSec,
        mtimeNsec: e.mtimeNsec,
        rdev: e.rdev,
        target: e.target,
        flags: 0,
        linkGroup: 0,
        ino: e.ino,
        hash: null,
        // no ctime: attributes are read for every entry compared with a walk
        ctimeSec: 0,
        ctimeNsec: 0,
        xattrs: null,
      })),
  );
}

export function prevFromManifest(m: ManifestReader): PrevTree {
  return { kind: 'manifest', dir: (rel) => m.rawDirByKey(rel.toString('latin1')), walkDir };
}

export function prevFromWalk(): PrevTree {
  return { kind: 'walk', dir: (_rel, fd) => walkDir(fd), walkDir };
}
