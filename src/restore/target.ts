/**
 * The safe writer of a restore target: DIR is opened once, and everything below it is created
 * descriptor-relative. Each directory is opened with openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS), files are created O_CREAT|O_EXCL|O_NOFOLLOW (by sys.copy), so a
 * symlink planted in DIR, or swapped in while the restore runs, is never followed: the write
 * fails with ELOOP/EEXIST and is reported. Under --force an existing entry at a restored path
 * is removed first (never written into; a symlink is removed, not followed), an existing
 * directory is reused.
 */
import fs from 'node:fs';
import { parseScan } from '../fs/entry.js';
import { ST, SysError, errnoName, sys } from '../fs/native.js';
import { removeChildAt } from '../apply/remove-tree.js';
import { HardsnapError } from '../core/errors.js';
import { pathBytes } from '../paths/aliases.js';

export const RESOLVE = sys.RESOLVE_BENEATH | sys.RESOLVE_NO_SYMLINKS | sys.RESOLVE_NO_MAGICLINKS;
const O_DIR = sys.O_RDONLY | sys.O_DIRECTORY | sys.O_NOFOLLOW;
const EEXIST = -17;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

/** A failed step on one entry: errno name and what was being done. */
export class EntryError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = 'EntryError';
  }
}

export interface OpenedTarget {
  fd: number;
  created: boolean;
  /** names already in DIR (before the restore) */
  existing: number;
}

/**
 * Opens (creating when missing, like mkdir -p) the target DIR the user named. Only DIR's own
 * path is resolved by the kernel the ordinary way: the user chose it.
 */
export function openTargetDir(dir: string, create: boolean): OpenedTarget {
  let created = false;
  // by its bytes: `dir` may be an alias of a path that is not UTF-8 and does not exist yet
  const bytes = pathBytes(dir);
  if (create && !fs.existsSync(bytes)) {
    try {
      fs.mkdirSync(bytes, { recursive: true, mode: 0o700 });
      created = true;
    } catch (err) {
      throw new HardsnapError('ETARGET', `cannot create the target ${dir}: ${(err as Error).message}`, { path: dir, cause: err, exit: 2 });
    }
  }
  const fd = sys.openat(sys.AT_FDCWD, bytes, sys.O_RDONLY | sys.O_DIRECTORY, 0);
  if (fd < 0) {
    const code = errnoName(fd);
    throw new HardsnapError('ETARGET', `cannot open the target directory ${dir}: ${code}`, {
      path: dir, cause: new SysError(fd, 'open', dir), exit: code === 'ENOENT' || code === 'ENOTDIR' ? 1 : 2,
      hint: code === 'ENOENT' ? 'its parent must exist' : undefined,
    });
  }
  const raw = sys.scandir(fd);
  if (typeof raw === 'number') {
    sys.close(fd);
    throw new HardsnapError('ETARGET', `cannot read the target directory ${dir}: ${errnoName(raw)}`, { path: dir, exit: 2 });
  }
  return { fd, created, existing: parseScan(raw).length };
}

export class SafeTarget {
  private readonly st = new Float64Array(sys.STAT_FIELDS);

  constructor(
    /** replace what is at restored paths (--force) */
    readonly force: boolean,
    private readonly onNote: (message: string) => void,
    private readonly onWarn: (message: string) => void = onNote,
  ) {}

  /**
   * A directory `name` in `parentFd` for the restore to fill: created (mode 0700 until its
   * metadata is set after its children), or under --force reused when it is already a directory.
   * Returns its descriptor, opened beneath the parent without following any symlink.
   */
  dir(parentFd: number, name: Buffer, shown: string): number {
    let rc = sys.mkdirat(parentFd, name, 0o700);
    if (rc === EEXIST) {
      if (!this.force) throw new EntryError('EEXIST', 'already exists in the target (created during the restore?): not replaced without --force');
      const kind = this.kindAt(parentFd, name);
      if (kind === 'dir') rc = 0;
      else {
        this.remove(parentFd, name, shown, kind);
        rc = sys.mkdirat(parentFd, name, 0o700);
      }
    }
    if (rc < 0) throw new EntryError(errnoName(rc), 'cannot create the directory');
    const fd = sys.openat2(parentFd, name, O_DIR, 0, RESOLVE);
    if (fd < 0) {
      const code = errnoName(fd);
      throw new EntryError(code, code === 'ELOOP' || code === 'EXDEV' || code === 'ENOTDIR' ? 'something other than a directory (a symlink?) appeared where the directory was created: not followed' : 'cannot open the directory');
    }
    return fd;
  }

  /** Makes room for a non-directory `name` under --force: whatever is there is removed. */
  clear(parentFd: number, name: Buffer, shown: string): void {
    if (!this.force) return;
    const kind = this.kindAt(parentFd, name);
    if (kind !== 'none') this.remove(parentFd, name, shown, kind);
  }

  /** Opens a descendant directory of `baseFd` by relative path, never leaving it or following a link. */
  openBeneath(baseFd: number, rel: Buffer, flags = sys.O_PATH | sys.O_DIRECTORY): number {
    return sys.openat2(baseFd, rel.length ? rel : '.', flags | sys.O_NOFOLLOW, 0, RESOLVE);
  }

  private kindAt(fd: number, name: Buffer): 'none' | 'dir' | 'symlink' | 'other' {
    const rc = sys.fstatat(fd, name, this.st, 1);
    if (rc < 0) return 'none';
    const t = this.st[ST.MODE]! & S_IFMT;
    return t === S_IFDIR ? 'dir' : t === S_IFLNK ? 'symlink' : 'other';
  }

  private remove(fd: number, name: Buffer, shown: string, kind: string): void {
    if (kind === 'symlink') {
      const t = sys.readlinkat(fd, name);
      this.onWarn(`--force: removed the symlink ${shown}${typeof t === 'number' ? '' : ` -> ${t.toString('latin1')}`} in the target (not followed)`);
    } else if (kind === 'dir') {
      this.onNote(`--force: replaced the directory ${shown} in the target`);
    }
    try {
      removeChildAt(fd, name);
    } catch (err) {
      throw new EntryError((err as SysError).code ?? 'EIO', `cannot remove what is in the way in the target (${(err as Error).message})`);
    }
  }
}
