/**
 * The names of source inodes with more than one name (nlink > 1: regular files, symlinks, FIFOs,
 * sockets, devices) met so far in a run, by device and inode: the one piece of state the plan
 * carries from one directory to the next. The first name met is planned as any entry; every
 * further name as a hard link to it (`linkTo`). Directories are never planned so (they have no
 * further names). Memory: one path and a few numbers per source inode with several names.
 *
 * An inode number names one file only while that file exists: a file removed while the run
 * reads the source frees its number, and a file made then may get it (ext4 reuses it at once).
 * A further name is therefore linked to the first only when the two show the same file (type,
 * size, mtime and ctime to the nanosecond, as scanned); otherwise it starts a group of its own
 * (a file changed between the reads of its two names is then two inodes in this generation,
 * each as it was read: never one name given another file's content).
 */
import type { SourceEntry } from '../fs/entry.js';
import { joinRel } from '../paths/escape.js';

interface FirstName {
  rel: Buffer;
  type: SourceEntry['type'];
  size: number;
  mtimeSec: number;
  mtimeNsec: number;
  ctimeSec: number;
  ctimeNsec: number;
}

export class SourceLinkNames {
  private readonly first = new Map<string, FirstName>();

  /**
   * The path in the part of the first name of e's source inode when e (in the directory `rel`)
   * is a further name of it; null when e is the first (from now on remembered as such).
   */
  linkTo(rel: Buffer, e: SourceEntry): Buffer | null {
    const key = `${e.dev}:${e.ino}`;
    const f = this.first.get(key);
    if (
      f &&
      f.type === e.type &&
      f.size === e.size &&
      f.mtimeSec === e.mtimeSec &&
      f.mtimeNsec === e.mtimeNsec &&
      f.ctimeSec === e.ctimeSec &&
      f.ctimeNsec === e.ctimeNsec
    )
      return f.rel;
    const { type, size, mtimeSec, mtimeNsec, ctimeSec, ctimeNsec } = e;
    this.first.set(key, { rel: joinRel(rel, e.name), type, size, mtimeSec, mtimeNsec, ctimeSec, ctimeNsec });
    return null;
  }
}
