/**
 * The names of source inodes with more than one name (nlink > 1: regular files, symlinks, FIFOs,
 * sockets, devices) met so far in a run, by device and inode: the one piece of state the plan
 * carries from one directory to the next. The first name met is planned as any entry; every
 * further name as a hard link to it (`linkTo`). Directories are never planned so (they have no
 * further names). Memory: one path and a few numbers per source inode with several names.
 *
 * An inode number names one file only while that file exists: a file removed while the run
 * reads the source frees its number, and a file made then may get it (ext4 reuses it at once).
 * A further name is linked to the first without a second look when the two show the same file
 * (type, size, mtime and ctime to the nanosecond, as read). When they differ, either the file
 * changed between the reads of its names (a write, a chmod, a name linked or removed: the ctime
 * moves) or the number is another file's now: the first name is looked up again in the source
 * (`stillNamed`); if it still names that inode, the group holds (the further name is linked to
 * the first, as the file was when its first name was read), else the further name starts a group
 * of its own (never one name given another file's content).
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
   * `stillNamed(first, e)`: whether the path `first` of the source names e's inode now (asked
   * only when the two names show different metadata; none: they are taken for different files).
   */
  linkTo(rel: Buffer, e: SourceEntry, stillNamed?: (first: Buffer, e: SourceEntry) => boolean): Buffer | null {
    const key = `${e.dev}:${e.ino}`;
    const f = this.first.get(key);
    if (f && (sameFile(f, e) || (f.type === e.type && stillNamed?.(f.rel, e)))) return f.rel;
    const { type, size, mtimeSec, mtimeNsec, ctimeSec, ctimeNsec } = e;
    this.first.set(key, { rel: joinRel(rel, e.name), type, size, mtimeSec, mtimeNsec, ctimeSec, ctimeNsec });
    return null;
  }
}

function sameFile(f: FirstName, e: SourceEntry): boolean {
  return (
    f.type === e.type &&
    f.size === e.size &&
    f.mtimeSec === e.mtimeSec &&
    f.mtimeNsec === e.mtimeNsec &&
    f.ctimeSec === e.ctimeSec &&
    f.ctimeNsec === e.ctimeNsec
  );
}
