/**
 * The names of source inodes with more than one name (nlink > 1: regular files, symlinks, FIFOs,
 * sockets, devices) met so far in a run, by device and inode: the one piece of state the plan
 * carries from one directory to the next. The first name met is planned as any entry; every
 * further name as a hard link to it (`linkTo`). Directories are never planned so (they have no
 * further names). Memory: one path and a few numbers per source inode with several names.
 *
 * An inode number names one file only while that file exists: a file removed while the run
 * reads the source frees its number, and a file made then may get it (ext4 reuses it at once,
 * even at the same path). A further name that shows the same file as its first name did (type,
 * size, mtime and ctime to the nanosecond, as read) is linked to it, when the first name's copy
 * holds what it showed (hard-links.ts). One that does not (`changed`; also any whose ctime is in
 * whole seconds) is either that file changed between the reads of its names (a write, a chmod, a
 * name linked or removed: the ctime moves) or another file with the number: nothing in a stat
 * tells them apart, so the builder links it only to a group whose copy holds what it showed (the
 * metadata, the bytes, a symlink's target, a device's number), else makes it the first of a
 * group of its own. Never one name given another file's content.
 */
import type { SourceEntry } from '../fs/entry.js';
import { joinRel } from '../paths/escape.js';

/** A further name's first name, and whether the two showed different metadata when read. */
export interface LinkTo {
  to: Buffer;
  changed: boolean;
}

interface FirstName {
  rel: Buffer;
  type: SourceEntry['type'];
  size: number;
  mtimeSec: number;
  mtimeNsec: number;
  ctimeSec: number;
  ctimeNsec: number;
  /** the content hash the run took of the first name (as scanned), when it took one */
  hash?: string;
}

export class SourceLinkNames {
  private readonly first = new Map<string, FirstName>();

  /**
   * The first name (its path in the part) of e's source inode when e (in the directory `rel`) is
   * a further name of it; null when e is the first (from now on remembered as such).
   */
  linkTo(rel: Buffer, e: SourceEntry): LinkTo | null {
    const key = `${e.dev}:${e.ino}`;
    const f = this.first.get(key);
    if (f) return { to: f.rel, changed: !sameAsRead(f, e) };
    const { type, size, mtimeSec, mtimeNsec, ctimeSec, ctimeNsec } = e;
    this.first.set(key, { rel: joinRel(rel, e.name), type, size, mtimeSec, mtimeNsec, ctimeSec, ctimeNsec });
    return null;
  }

  /**
   * Remembers the content hash taken of the first name e of its source inode, so that its further
   * names that show what it showed are not read again (a chmod of a file with 20 names reads it
   * once).
   */
  rememberHash(e: SourceEntry, hash: string): void {
    const f = this.first.get(`${e.dev}:${e.ino}`);
    if (f && sameAsRead(f, e)) f.hash = hash;
  }

  /** The content hash taken of the first name of e's source inode, when e showed what it showed. */
  hashOf(e: SourceEntry): string | undefined {
    const f = this.first.get(`${e.dev}:${e.ino}`);
    return f && sameAsRead(f, e) ? f.hash : undefined;
  }
}

/**
 * Whether a further name showed what its first name showed. A ctime in whole seconds (a file
 * system without finer timestamps: ext3, ext4 with 128-byte inodes) does not tell a file from
 * another given its number within the same second: never the same then (the builder compares).
 */
function sameAsRead(f: FirstName, e: SourceEntry): boolean {
  return (
    f.ctimeNsec !== 0 &&
    f.type === e.type &&
    f.size === e.size &&
    f.mtimeSec === e.mtimeSec &&
    f.mtimeNsec === e.mtimeNsec &&
    f.ctimeSec === e.ctimeSec &&
    f.ctimeNsec === e.ctimeNsec
  );
}
