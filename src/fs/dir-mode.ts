/**
 * Changing the mode of a directory named by path without ever following a symlink: the path is
 * opened O_PATH | O_NOFOLLOW | O_DIRECTORY, the descriptor checked, and the change made through
 * /proc/self/fd/N, so the inode checked is the inode changed (a symlink swapped in is refused).
 */
import { fs } from './disk.js';
import { SETMETA, ST, sys } from './native.js';
import { E } from './errno.js';

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;

/**
 * Sets the permission bits of the directory `dirfd`/`name` to `mode(current)`; returns the
 * mode before, or null when it is not a directory (or a symlink) or the change failed.
 */
export function chmodDir(
  dirfd: number,
  name: Buffer | string,
  mode: (current: number) => number,
  /** refuse a directory on another device */
  dev?: number,
  /** openat2 RESOLVE_* flags for the open (RESOLVE_NO_XDEV: refuse a mount point, bind mounts too) */
  resolve?: number,
): { before: number; after: number } | null {
  const flags = sys.O_PATH | sys.O_DIRECTORY | sys.O_NOFOLLOW;
  let fd = resolve === undefined ? -38 : sys.openat2(dirfd, name, flags, 0, resolve);
  if (fd === -E.ENOSYS /* Linux < 5.6, or no resolve asked */) fd = sys.openat(dirfd, name, flags, 0);
  if (fd < 0) return null;
  try {
    const st = new Float64Array(sys.STAT_FIELDS);
    if (sys.fstat(fd, st) < 0 || (st[ST.MODE]! & S_IFMT) !== S_IFDIR) return null;
    if (dev !== undefined && st[ST.DEV] !== dev) return null;
    const before = st[ST.MODE]! & 0o7777;
    const after = mode(before) & 0o7777;
    if (after === before) return { before, after };
    return sys.setmeta(fd, '', -1, 0, 0, after, 0, 0, SETMETA.MODE) === 0 ? { before, after } : null;
  } finally {
    sys.close(fd);
  }
}

/**
 * A directory hardsnap made (or took over), reset to mode 0700 with no extended attributes: a
 * default ACL on the directory above is inherited by a new directory, as its access ACL and its
 * own default ACL, and from there by everything made inside it, which would widen access to
 * backed-up files (and put an ACL the source never had into the generation). Returns 0 or
 * -errno. Not through a symlink (O_NOFOLLOW); the attribute namespaces the file system refuses
 * to clear stay (setmeta ignores those refusals).
 */
export function resetMadeDir(path: string): number {
  let fd = sys.openat(sys.AT_FDCWD, path, sys.O_RDONLY | sys.O_DIRECTORY | sys.O_NOFOLLOW, 0);
  if (fd === -E.EACCES) {
    // a directory of ours its owner may not read (a run killed after giving a partial's root its
    // source's mode 000, or an admin's chmod): made 0700 by its descriptor, then opened again
    const p = sys.openat(sys.AT_FDCWD, path, sys.O_PATH | sys.O_DIRECTORY | sys.O_NOFOLLOW, 0);
    if (p < 0) return p;
    try {
      fs.chmodSync(`/proc/self/fd/${p}`, 0o700);
    } catch {
      return fd;
    } finally {
      sys.close(p);
    }
    fd = sys.openat(sys.AT_FDCWD, path, sys.O_RDONLY | sys.O_DIRECTORY | sys.O_NOFOLLOW, 0);
  }
  if (fd < 0) return fd;
  try {
    const r = sys.setmeta(-1, '', fd, 0, 0, 0o700, 0, 0, SETMETA.MODE | SETMETA.XATTRS_EXACT, null);
    return r < 0 ? r : 0;
  } finally {
    sys.close(fd);
  }
}
