/**
 * Removes a directory entry and, for a directory, everything below it, descriptor-relative
 * (no path length limit, no symlink ever followed). Read-only directories are made writable
 * first: they are ours (generations are built by this process) or in the trash.
 */
import { parseScan } from '../fs/entry.js';
import { SysError, sys } from '../fs/native.js';

const EISDIR = -21;
const ENOENT = -2;

export function removeChildAt(dirfd: number, name: Buffer | string): void {
  let rc = sys.unlinkat(dirfd, name, 0);
  if (rc === 0 || rc === ENOENT) return;
  if (rc !== EISDIR && rc !== -1 /* EPERM: some kernels say this for directories */) {
    throw new SysError(rc, 'unlinkat', String(name));
  }
  sys.setmeta(dirfd, name, -1, 0, 0, 0o700, 0, 0, 2);
  const fd = sys.openat(dirfd, name, sys.O_RDONLY | sys.O_DIRECTORY | sys.O_NOFOLLOW, 0);
  if (fd < 0) throw new SysError(fd, 'openat', String(name));
  try {
    removeChildrenAt(fd);
  } finally {
    sys.close(fd);
  }
  rc = sys.unlinkat(dirfd, name, sys.AT_REMOVEDIR);
  if (rc < 0 && rc !== ENOENT) throw new SysError(rc, 'rmdir', String(name));
}

export function removeChildrenAt(fd: number): void {
  const raw = sys.scandir(fd);
  if (typeof raw === 'number') throw new SysError(raw, 'scandir');
  for (const e of parseScan(raw)) removeChildAt(fd, e.name);
}

/** rm -rf of an absolute path (its parent must exist). */
export function removeTree(path: string): void {
  removeChildAt(sys.AT_FDCWD, path);
}
