/**
 * The names of source inodes with more than one name (nlink > 1: regular files, symlinks, FIFOs,
 * sockets, devices) met so far in a run, by device and inode: the one piece of state the plan
 * carries from one directory to the next. The first name met is planned as any entry; every
 * further name as a hard link to it (`linkTo`). Directories are never planned so (they have no
 * further names). Memory: one path per source inode with several names.
 */
import type { SourceEntry } from '../fs/entry.js';
import { joinRel } from '../paths/escape.js';

export class SourceLinkNames {
  private readonly first = new Map<string, Buffer>();

  /**
   * The path in the part of the first name of e's source inode when e (in the directory `rel`)
   * is a further name of it; null when e is the first (from now on remembered as such).
   */
  linkTo(rel: Buffer, e: SourceEntry): Buffer | null {
    const key = `${e.dev}:${e.ino}`;
    const first = this.first.get(key);
    if (first) return first;
    this.first.set(key, joinRel(rel, e.name));
    return null;
  }
}
