/**
 * Removes a directory entry and, for a directory, everything below it: a descriptor walk (no
 * path length limit, no symlink ever followed) that only unlinks names.
 *
 * What it never does (SPEC.md "Prune and trash deletion only remove names"):
 * - change a non-directory: no chmod, chown, write or truncate. A file, symlink or device of a
 *   generation may be the inode of surviving generations too (hard links); an immutable or
 *   append-only one (`chattr +i`) stays where it is and is reported.
 * - cross a mount point: every directory is opened with openat2(RESOLVE_NO_XDEV) (which refuses
 *   a bind mount of the same file system too) and its st_dev compared with the device the
 *   removal started on; a file system mounted inside is reported and left alone, with the
 *   directories above it.
 *
 * The one change it may make: a directory it is removing, that it cannot read or empty
 * (EACCES: a read-only directory of a generation, when not root or on a root_squash NFS spool),
 * gets u+rwx first. Directories are never shared between generations (a hard link to a
 * directory does not exist), so that inode is the removed generation's own. As root on a
 * local file system EACCES does not happen, and nothing is ever chmod-ed.
 *
 * What cannot be removed is data, not an exception: `Leftover`s, one per thing to fix: an
 * immutable or append-only directory is one leftover (told apart from an immutable entry in it
 * by a probe, refusesChanges), not one per entry; a mount point is one, and not entered.
 */
import { readDirAt, parseScan } from './entry.js';
import { ST, SysError, errnoName, sys } from './native.js';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import { displayPath, joinRel } from '../paths/escape.js';
import { chmodDir } from './dir-mode.js';
import { E, isErrno } from './errno.js';
import { fs } from './disk.js';

const EPERM = -E.EPERM;
const ENOENT = -E.ENOENT;
const EEXIST = -E.EEXIST;
const EACCES = -E.EACCES;
const ENOSYS = -E.ENOSYS;
const ENOTEMPTY = -E.ENOTEMPTY;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;

const O_DIR = sys.O_RDONLY | sys.O_DIRECTORY | sys.O_NOFOLLOW;
/** the name of refusesChanges' probe directory */
const PROBE = '.hardsnap-probe';
/** never leave the directory, never follow a link, never enter another mount */
const RESOLVE_DIR = sys.RESOLVE_BENEATH | sys.RESOLVE_NO_SYMLINKS | sys.RESOLVE_NO_XDEV;

/** Something that could not be removed, left in place. */
export interface Leftover {
  /** relative to the directory the removal started in (bytes) */
  path: Buffer;
  /** errno name; EXDEV for a mount point (another file system, or a bind mount) */
  code: string;
  why: 'mount' | 'immutable' | 'denied' | 'busy' | 'error';
}

/** What a leftover needs from the admin, in a few words (one warning line names it). */
export function leftoverHint(l: Leftover): string {
  switch (l.why) {
    case 'mount':
      return 'a file system is mounted there: not crossed; umount it';
    case 'immutable':
      return 'immutable or append-only (`lsattr -d` shows it): `chattr -i -a` it';
    case 'busy':
      return 'a mount point or in use: umount it';
    case 'denied':
      return "not removable by this user: run as the spool's owner or root";
    default:
      return 'see the errno';
  }
}

/** The kind of leftover an errno means. */
export function leftoverWhy(code: string): Leftover['why'] {
  return code === 'EXDEV' ? 'mount' : code === 'EPERM' ? 'immutable' : code === 'EBUSY' ? 'busy' : code === 'EACCES' ? 'denied' : 'error';
}

/** One directory being emptied by TreeRemover.dir: its parent and name, its descriptor and entries, what is left in it. */
interface DirFrame {
  dirfd: number;
  name: Buffer | string;
  rel: Buffer;
  /** where its own leftover goes: its parent frame's `local`, or the caller's */
  out: Leftover[];
  fd: number;
  entries: ReturnType<typeof parseScan>;
  next: number;
  /** local.length before the current entry */
  before: number;
  local: Leftover[];
  /** u+rwx given to it (once) */
  granted: boolean;
  /** the current entry is being tried again */
  retried: boolean;
  /** undefined: not probed yet; true: the directory itself refuses changes (chattr +i / +a) */
  refuses: boolean | undefined;
}

export class TreeRemover {
  readonly leftovers: Leftover[] = [];
  private readonly st = new Float64Array(sys.STAT_FIELDS);
  /** openat2 missing (Linux < 5.6): openat and the st_dev comparison alone */
  private static noOpenat2 = false;
  private static raised = false;

  /** `dev`: the device of the directory the removal starts in; nothing on another is touched. */
  constructor(private readonly dev: number) {}

  /** A remover for entries of the directory `dirfd`. */
  static at(dirfd: number): TreeRemover {
    // one descriptor per level of the tree is open during the walk: a deep generation must not
    // stay in the trash for want of descriptors (EMFILE at a soft limit of 1024)
    if (!TreeRemover.raised) {
      TreeRemover.raised = true;
      sys.raiseNofile();
    }
    const st = new Float64Array(sys.STAT_FIELDS);
    const rc = sys.fstat(dirfd, st);
    if (rc < 0) throw new SysError(rc, 'fstat');
    return new TreeRemover(st[ST.DEV]!);
  }

  /**
   * Removes `name` in `dirfd` (`rel`: its path for reports). True when it is gone; false when
   * something was left (recorded in `leftovers`).
   */
  remove(dirfd: number, name: Buffer | string, rel: Buffer, isDir?: boolean): boolean {
    const out: Leftover[] = [];
    const gone = this.entry(dirfd, name, rel, isDir, out);
    this.leftovers.push(...out);
    return gone;
  }

  private entry(dirfd: number, name: Buffer | string, rel: Buffer, isDir: boolean | undefined, out: Leftover[]): boolean {
    const r = this.nonDir(dirfd, name, rel, isDir, out);
    return r === 'dir' ? this.dir(dirfd, name, rel, out) : r;
  }

  /** An entry removed when it is not a directory: true when gone, false when left (in `out`), 'dir' for a directory. */
  private nonDir(dirfd: number, name: Buffer | string, rel: Buffer, isDir: boolean | undefined, out: Leftover[]): boolean | 'dir' {
    if (isDir === undefined) {
      const rc = sys.fstatat(dirfd, name, this.st, 1);
      if (rc === ENOENT) return true;
      isDir = rc === 0 && (this.st[ST.MODE]! & S_IFMT) === S_IFDIR;
    }
    if (isDir) return 'dir';
    const rc = sys.unlinkat(dirfd, name, 0);
    if (rc === 0 || rc === ENOENT) return true;
    if (rc === -E.EISDIR /* replaced by a directory since the scan */) return 'dir';
    const code = errnoName(rc);
    out.push({ path: rel, code, why: leftoverWhy(code) });
    return false;
  }

  private openDir(dirfd: number, name: Buffer | string): number {
    if (!TreeRemover.noOpenat2) {
      const fd = sys.openat2(dirfd, name, O_DIR, 0, RESOLVE_DIR);
      if (fd !== ENOSYS) return fd;
      TreeRemover.noOpenat2 = true;
    }
    return sys.openat(dirfd, name, O_DIR, 0);
  }

  /**
   * A directory: opened beneath its parent, checked to be on our device, emptied, removed. A
   * walk with a stack of its own, one frame (one descriptor) per level: a tree thousands of
   * levels deep (any user can make one in what is backed up) is removed like any other (its
   * recursion overflowed the call stack: prune failed, and every backup after it).
   */
  private dir(dirfd: number, name: Buffer | string, rel: Buffer, out: Leftover[]): boolean {
    const top = this.open(dirfd, name, rel, out);
    if (typeof top === 'boolean') return top;
    const stack: DirFrame[] = [top];
    try {
      for (;;) {
        const f = stack[stack.length - 1]!;
        if (f.next >= f.entries.length) {
          stack.pop();
          const gone = this.close(f);
          if (!stack.length) return gone;
          this.after(stack[stack.length - 1]!, gone);
          continue;
        }
        const e = f.entries[f.next]!;
        f.before = f.local.length;
        const childRel = joinRel(f.rel, e.name);
        const r = this.nonDir(f.fd, e.name, childRel, e.err === 0 ? e.type === 'dir' : undefined, f.local);
        if (r !== 'dir') {
          this.after(f, r);
          continue;
        }
        const child = this.open(f.fd, e.name, childRel, f.local);
        if (typeof child === 'boolean') this.after(f, child);
        else stack.push(child);
      }
    } finally {
      for (const f of stack) if (f.fd >= 0) sys.close(f.fd);
    }
  }

  /** The directory `name` of `dirfd` opened and read, as a frame; true when it is gone already, false when left (in `out`). */
  private open(dirfd: number, name: Buffer | string, rel: Buffer, out: Leftover[]): DirFrame | boolean {
    let fd = this.openDir(dirfd, name);
    if (fd === EACCES && this.grantAccess(dirfd, name)) fd = this.openDir(dirfd, name);
    if (fd === ENOENT) return true;
    if (fd < 0) {
      const code = errnoName(fd);
      out.push({ path: rel, code, why: leftoverWhy(code) });
      return false;
    }
    let failed: Leftover | null = null;
    let raw: Buffer | number = -1;
    if (sys.fstat(fd, this.st) < 0 || this.st[ST.DEV] !== this.dev) failed = { path: rel, code: 'EXDEV', why: 'mount' };
    else {
      raw = sys.scandir(fd);
      if (raw === EACCES && this.grantAccessFd(fd)) raw = sys.scandir(fd);
      if (typeof raw === 'number') failed = { path: rel, code: errnoName(raw), why: leftoverWhy(errnoName(raw)) };
    }
    if (failed || typeof raw === 'number') {
      sys.close(fd);
      out.push(failed!);
      return false;
    }
    return { dirfd, name, rel, out, fd, entries: parseScan(raw), next: 0, before: 0, local: [], granted: false, retried: false, refuses: undefined };
  }

  /**
   * What became of f's current entry (removed or not); the next one, or the same once more: a
   * read-only directory (EACCES: not root, or root_squash) gets u+rwx, once, and the entry is
   * tried again; an EPERM that the directory's own flag explains is reported once, for it.
   */
  private after(f: DirFrame, gone: boolean): void {
    if (!gone) {
      const childRel = joinRel(f.rel, f.entries[f.next]!.name);
      // the entry's own failure (not one deeper down)
      const own = f.local.length === f.before + 1 && f.local[f.before]!.path.equals(childRel) ? f.local[f.before]! : null;
      if (own?.code === 'EACCES' && !f.granted && !f.retried) {
        f.granted = true;
        if (this.grantAccessFd(f.fd)) {
          f.local.pop();
          f.retried = true;
          return;
        }
      } else if (own?.code === 'EPERM') {
        f.refuses ??= this.refusesChanges(f.fd);
        if (f.refuses) f.local.pop(); // the directory's flag explains it: the directory is reported, once
      }
    }
    f.next++;
    f.retried = false;
  }

  /** f done: closed, and removed when empty; true when gone. */
  private close(f: DirFrame): boolean {
    sys.close(f.fd);
    f.fd = -1;
    if (f.refuses) f.local.unshift({ path: f.rel, code: 'EPERM', why: 'immutable' });
    if (f.local.length) {
      f.out.push(...f.local);
      return false;
    }
    const rc = sys.unlinkat(f.dirfd, f.name, sys.AT_REMOVEDIR);
    if (rc === 0 || rc === ENOENT) return true;
    // ENOTEMPTY: something was created in it meanwhile; it stays, named
    const code = rc === ENOTEMPTY ? 'ENOTEMPTY' : errnoName(rc);
    f.out.push({ path: f.rel, code, why: leftoverWhy(code) });
    return false;
  }

  /**
   * Whether the open directory itself refuses changes (immutable: no entry can be created;
   * append-only: none removed), told apart from an immutable entry in it by a probe: an empty
   * directory PROBE made and removed in it. A directory of a generation being removed is its
   * own, so the probe touches nothing shared. In an append-only directory the probe cannot be
   * removed: it stays, one per such directory (a later probe finds it and knows), with the rest.
   */
  refusesChanges(fd: number): boolean {
    let rc = sys.mkdirat(fd, PROBE, 0o700);
    if (rc === EEXIST) {
      // an earlier probe's: a directory that keeps it refuses removals
      const gone = sys.unlinkat(fd, PROBE, sys.AT_REMOVEDIR);
      if (gone === EPERM) return true;
      if (gone < 0) return false;
      rc = sys.mkdirat(fd, PROBE, 0o700);
    }
    if (rc === EPERM) return true;
    if (rc < 0) return false;
    return sys.unlinkat(fd, PROBE, sys.AT_REMOVEDIR) === EPERM;
  }

  /** u+rwx on the directory `name` (checked to be a directory on our device, never through a link). */
  private grantAccess(dirfd: number, name: Buffer | string): boolean {
    return chmodDir(dirfd, name, (m) => m | 0o700, this.dev, RESOLVE_DIR) !== null;
  }

  /** u+rwx on an open directory (it was checked to be one, on our device). */
  private grantAccessFd(fd: number): boolean {
    if (sys.fstat(fd, this.st) < 0 || (this.st[ST.MODE]! & S_IFMT) !== S_IFDIR || this.st[ST.DEV] !== this.dev) return false;
    if ((this.st[ST.MODE]! & 0o700) === 0o700) return false; // not a question of its mode
    return sys.setmeta(-1, '', fd, 0, 0, (this.st[ST.MODE]! & 0o7777) | 0o700, 0, 0, 2) === 0;
  }
}

/** The error for what a removal left: the first leftover, by errno and path. */
function leftoverError(leftovers: Leftover[]): SysError {
  const first = leftovers[0]!;
  const errno = (osConstants.errno as Record<string, number>)[first.code] ?? 5; // EIO
  const more = leftovers.length > 1 ? ` (and ${leftovers.length - 1} more)` : '';
  return new SysError(-errno, 'remove', `${displayPath(first.path)}${more}`);
}

/**
 * Removes `name` in `dirfd` and everything below it, or throws a SysError naming the first
 * thing that could not be removed (callers that build a generation: what is there is theirs).
 */
export function removeChildAt(dirfd: number, name: Buffer | string): void {
  const r = TreeRemover.at(dirfd);
  if (!r.remove(dirfd, name, Buffer.from(name))) throw leftoverError(r.leftovers);
}

/** Removes the children of the directory `fd`, or throws like removeChildAt. */
export function removeChildrenAt(fd: number): void {
  const read = readDirAt(fd);
  if (typeof read === 'number') throw new SysError(read, 'scandir');
  const r = TreeRemover.at(fd);
  for (const e of read) r.remove(fd, e.name, e.name);
  if (r.leftovers.length) throw leftoverError(r.leftovers);
}

/**
 * Opens the parent of an absolute or relative path, for a removal relative to it (the path to
 * it resolved as rm -rf would, symlinks followed: a spool path may be one; the name itself is
 * never followed).
 */
export function openParent(p: string): { fd: number; name: string } {
  const fd = sys.openat(sys.AT_FDCWD, path.dirname(p), sys.O_RDONLY | sys.O_DIRECTORY, 0);
  if (fd < 0) throw new SysError(fd, 'open', path.dirname(p));
  return { fd, name: path.basename(p) };
}

/** rm -rf of a path (its parent must exist), or throws like removeChildAt. */
export function removeTree(p: string): void {
  const { fd, name } = openParent(p);
  try {
    removeChildAt(fd, name);
  } finally {
    sys.close(fd);
  }
}

/**
 * Removes the name `p` (a file or a symlink, never what a symlink points to); nothing when it is
 * gone already. Not fs.rmSync: when its unlink is refused (EPERM: an append-only or immutable
 * directory), Node.js tries rmdir, and when that is refused too it reads the name as a
 * directory, following a symlink, and deletes what is in its target (a `.last.*.tmp` left by a
 * killed run names a published generation).
 */
export function removeName(p: string | Buffer): void {
  try {
    fs.unlinkSync(p);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
}
