/**
 * The safe writer of a restore target: DIR is opened once, and everything below it is created
 * descriptor-relative. Each directory is opened with openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS), files are created O_CREAT|O_EXCL|O_NOFOLLOW (by sys.copy), so a
 * symlink planted in DIR, or swapped in while the restore runs, is never followed: the write
 * fails with ELOOP/EEXIST and is reported. Under --force a file or symlink at a restored path
 * is removed first (never written into; a symlink is removed, not followed), an existing
 * directory is reused where a directory is restored, and moved aside (renamed next to itself,
 * never deleted) where a non-directory is.
 */
import { fs } from '../fs/disk.js';
import { readDirAt } from '../fs/entry.js';
import { ST, SysError, errnoName, sys } from '../fs/native.js';
import { displayPath } from '../paths/escape.js';
import { HardsnapError, errnoCode } from '../core/errors.js';
import { pathBytes } from '../paths/aliases.js';
import { E } from '../fs/errno.js';
import { holdsSpoolMarker } from '../spool/marker.js';
import { fsLocation, locationInside, readMountsLatin1 } from '../fs/mountinfo.js';
import { realBytes } from '../fs/byte-path.js';

export const RESOLVE = sys.RESOLVE_BENEATH | sys.RESOLVE_NO_SYMLINKS | sys.RESOLVE_NO_MAGICLINKS;
const O_DIR = sys.O_RDONLY | sys.O_DIRECTORY | sys.O_NOFOLLOW;
const EEXIST = -E.EEXIST;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

/** A failed step on one entry: errno name and what was being done. */
export class EntryError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
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
  // its last component is made and opened in its parent, never followed: a symlink there (one
  // the owner of the parent planted, or swapped for the directory made here) would take the
  // restore elsewhere (the directories above are the path the admin gave, followed as given)
  const { parent, last } = splitLast(bytes);
  if (create && parent.length && !fs.existsSync(parent)) {
    try {
      fs.mkdirSync(parent, { recursive: true, mode: 0o700 });
      if (!last) created = true;
    } catch (err) {
      // the errno, not Node's message: it would show a path that is not UTF-8 with U+FFFD
      const code = mkdirErrno(parent) ?? errnoCode(err) ?? (err as Error).message;
      throw new HardsnapError('ETARGET', `cannot create the target ${dir}: ${code}`, { path: dir, cause: err, exit: 2 });
    }
  }
  const cantOpen = (rc: number, symlink = false): never => {
    const code = errnoName(rc);
    if (code === 'ELOOP' || symlink) throw symlinkTarget(dir);
    throw new HardsnapError('ETARGET', `cannot open the target directory ${dir}: ${code}`, {
      path: dir,
      cause: new SysError(rc, 'open', dir),
      exit: code === 'ENOENT' || code === 'ENOTDIR' ? 1 : 2,
      hint: code === 'ENOENT' ? 'its parent must exist' : undefined,
    });
  };
  let fd: number;
  if (!last) {
    fd = sys.openat(sys.AT_FDCWD, parent, sys.O_RDONLY | sys.O_DIRECTORY, 0);
  } else {
    const pfd = sys.openat(sys.AT_FDCWD, parent.length ? parent : '.', sys.O_PATH | sys.O_DIRECTORY, 0);
    if (pfd < 0) cantOpen(pfd);
    try {
      if (create) {
        const rc = sys.mkdirat(pfd, last, 0o700);
        if (rc === 0) created = true;
        else if (rc !== -E.EEXIST) throw new HardsnapError('ETARGET', `cannot create the target ${dir}: ${errnoName(rc)}`, { path: dir, exit: 2 });
      }
      fd = sys.openat(pfd, last, sys.O_RDONLY | sys.O_DIRECTORY | sys.O_NOFOLLOW, 0);
      // (O_DIRECTORY | O_NOFOLLOW on a symlink says ENOTDIR)
      if (fd === -E.ENOTDIR) {
        const st = new Float64Array(sys.STAT_FIELDS);
        if (sys.fstatat(pfd, last, st, 1) === 0 && (st[ST.MODE]! & 0o170000) === 0o120000) cantOpen(fd, true);
      }
    } finally {
      sys.close(pfd);
    }
  }
  if (fd < 0) cantOpen(fd);
  const existing = readDirAt(fd);
  if (typeof existing === 'number') {
    sys.close(fd);
    throw new HardsnapError('ETARGET', `cannot read the target directory ${dir}: ${errnoName(existing)}`, { path: dir, exit: 2 });
  }
  if (created) {
    // the directory made a moment ago, or one as private, not another one exchanged for it by
    // whoever can write its parent: else what the restore writes would be that user's to read
    if (!privateAndEmpty(fd, existing)) {
      sys.close(fd);
      throw new HardsnapError('ETARGET', `the target ${dir} was replaced by another directory while it was made: not restored there`, { path: dir, exit: 2 });
    }
  }
  return { fd, created, existing: existing.length };
}

/** The refusal of a target whose last component is a symlink (never followed). */
function symlinkTarget(dir: string): HardsnapError {
  return new HardsnapError('ETARGET', `the target ${dir} is a symlink: not followed (give the directory it points to)`, { path: dir, exit: 1 });
}

/**
 * The dry run's look at DIR: opened as the real run opens it (its last component never
 * followed: a symlink there, or swapped in, is refused as the real run refuses it, exit 1), or
 * null where it does not exist yet (the real run would make it).
 */
export function lookAtTarget(dir: string): OpenedTarget | null {
  try {
    return openTargetDir(dir, false);
  } catch (err) {
    if (err instanceof HardsnapError && err.cause instanceof SysError && err.cause.code === 'ENOENT') return null;
    throw err;
  }
}

/**
 * Whether the directory open at `fd`, which this restore has just made, can be filled: it is
 * this process's, empty, and no one else may read or write it (group and other bits 0, which
 * with an ACL is its mask). Whoever can write its parent can exchange another directory for
 * it between the mkdir and the open: one of its own, or an empty one root left there (0755),
 * whose files that user could read while the restore writes them (the generation's mode comes
 * after the children). Any directory that passes is as private as the one made.
 */
function privateAndEmpty(fd: number, entries?: ArrayLike<unknown> | number): boolean {
  const st = new Float64Array(sys.STAT_FIELDS);
  if (sys.fstat(fd, st) !== 0 || st[ST.UID] !== (process.geteuid?.() ?? st[ST.UID]) || (st[ST.MODE]! & 0o077) !== 0) return false;
  const read = entries ?? readDirAt(fd);
  return typeof read !== 'number' && read.length === 0;
}

/**
 * `p` split into its parent path and last component, once its `.` components are dropped and
 * each `..` has taken back the name before it, as a shell's `cd` reads it: else the name before
 * a trailing `/.` or `/..` (a symlink planted there: `--to /tmp/x/.`) would be followed. last is
 * null only where no name is left to make or to refuse as a symlink (`/`, `.`, `..`, `../..`:
 * the working directory or a real parent of it); parent is then the whole path.
 */
function splitLast(p: Buffer): { parent: Buffer; last: Buffer | null } {
  const abs = p[0] === 0x2f;
  const dotdot = (c: Buffer) => c.length === 2 && c[0] === 0x2e && c[1] === 0x2e;
  const parts: Buffer[] = [];
  for (let start = 0, i = 0; i <= p.length; i++) {
    if (i < p.length && p[i] !== 0x2f) continue;
    const c = p.subarray(start, i);
    start = i + 1;
    if (!c.length || (c.length === 1 && c[0] === 0x2e)) continue;
    if (dotdot(c) && parts.length && !dotdot(parts[parts.length - 1]!)) parts.pop();
    else if (!(dotdot(c) && abs)) parts.push(c); // (`/..` is `/`)
  }
  const join = (cs: Buffer[]) => {
    const body = Buffer.from(cs.map((c) => c.toString('latin1')).join('/'), 'latin1');
    return abs ? Buffer.concat([Buffer.from('/'), body]) : body;
  };
  const last = parts.length && !dotdot(parts[parts.length - 1]!) ? parts.pop()! : null;
  if (!last) return { parent: parts.length || abs ? join(parts) : Buffer.from('.'), last: null };
  return { parent: join(parts), last: Buffer.from(last) };
}

/**
 * Why `mkdir -p` of `p` failed, from a plain mkdir of its first missing ancestor: Node's
 * recursive mkdir says ENOENT where the kernel said EROFS or EACCES. null when not found out.
 */
function mkdirErrno(p: Buffer): string | null {
  let missing = p;
  for (;;) {
    let end = missing.length;
    while (end > 1 && missing[end - 1] === 0x2f) end--;
    const i = missing.subarray(0, end).lastIndexOf(0x2f);
    if (i < 0) break;
    const parent = i === 0 ? Buffer.from('/') : missing.subarray(0, i);
    if (fs.existsSync(parent) || parent.length <= 1) break;
    missing = parent;
  }
  try {
    fs.mkdirSync(missing, { mode: 0o700 });
    fs.rmdirSync(missing);
    return null;
  } catch (err) {
    return errnoCode(err) ?? null;
  }
}

/** What was (or, in a dry run, would be) in the way of a restored entry, and what became of it. */
export interface Replacement {
  /** move-aside: a directory renamed next to itself (never deleted); remove: a non-directory unlinked */
  action: 'move-aside' | 'remove';
  found: 'dir' | 'symlink' | 'other';
  /** move-aside: the name it has now (or would have) */
  aside?: Buffer;
  /** a symlink's target (never followed) */
  target?: Buffer;
}

/** The suffix of a directory moved aside: `.hardsnap-aside-YYYYMMDDTHHMMSSZ` (restore's start, UTC). */
export function asideSuffix(at: Date): string {
  return `.hardsnap-aside-${at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z')}`;
}

const NAME_MAX = 255;

/**
 * The spool, seen from a restore target that contains it (a restore of a whole host to `/` on
 * the backup server, or a --force restore to the spool's parent: a generation with paths that
 * match the spool's would have been written over it: backups replaced, its 0700 directories
 * given the generation's modes and owners). The spool's root, any directory holding a spool
 * marker, and the directories above the spool are told apart by device and inode.
 */
export class SpoolFence {
  private readonly st = new Float64Array(sys.STAT_FIELDS);
  /** "dev:ino" of the spool's root and of every directory above it */
  private readonly holding = new Set<string>();
  /** "dev:ino" of mount points below the target that show a directory of the spool (a bind mount of rsync/<host>) */
  private readonly mountedSpool = new Set<string>();
  private readonly root: string | null;

  constructor(
    private readonly spool: string,
    target?: string,
  ) {
    if (target !== undefined) this.findSpoolMounts(target);
    let cur = sys.openat(sys.AT_FDCWD, pathBytes(spool), sys.O_PATH | sys.O_DIRECTORY, 0);
    this.root = cur >= 0 && sys.fstat(cur, this.st) === 0 ? this.key() : null;
    for (let depth = 0; cur >= 0 && depth < 4096; depth++) {
      if (sys.fstat(cur, this.st) !== 0) break;
      const k = this.key();
      if (this.holding.has(k)) break; // the root directory
      this.holding.add(k);
      const up = sys.openat(cur, '..', sys.O_PATH | sys.O_DIRECTORY, 0);
      sys.close(cur);
      cur = up;
    }
    if (cur >= 0) sys.close(cur);
  }

  /**
   * Mount points below `target` whose mounted directory lies inside the spool (on its file
   * system, below its path: a bind mount of a host's or a generation's directory): their device
   * and inode never match the spool root's, and no marker is in them.
   */
  private findSpoolMounts(target: string): void {
    const mounts = readMountsLatin1();
    if (!mounts) return;
    const spoolAt = fsLocation(mounts, realBytes(this.spool).toString('latin1'));
    if (!spoolAt) return;
    const t = realBytes(target).toString('latin1');
    const below = t.endsWith('/') ? t : t + '/';
    for (const m of mounts) {
      if (!m.mountPoint.startsWith(below)) continue;
      const at = fsLocation(mounts, m.mountPoint);
      if (!at || !locationInside(at, spoolAt)) continue;
      if (sys.fstatat(sys.AT_FDCWD, Buffer.from(m.mountPoint, 'latin1'), this.st, 0) === 0) this.mountedSpool.add(this.key());
    }
  }

  /** Why the directory open at `fd` must not be written into (the spool, or a spool), or null. */
  refusal(fd: number): string | null {
    if (this.root && sys.fstat(fd, this.st) === 0 && this.key() === this.root) return `it is the spool ${this.spool}`;
    if (this.mountedSpool.size && sys.fstat(fd, this.st) === 0 && this.mountedSpool.has(this.key()))
      return `a directory of the spool ${this.spool} is mounted there`;
    if (holdsSpoolMarker(fd)) return 'it is a hardsnap spool';
    return null;
  }

  /** Whether `name` in `parentFd` is the spool's root or a directory above it (never moved aside). */
  holds(parentFd: number, name: Buffer): boolean {
    return sys.fstatat(parentFd, name, this.st, 1) === 0 && this.holding.has(this.key());
  }

  private key(): string {
    return `${this.st[ST.DEV]}:${this.st[ST.INO]}`;
  }
}

export class SafeTarget {
  private readonly st = new Float64Array(sys.STAT_FIELDS);
  /**
   * the directories this restore made (dev:ino), with where it made them (the parent's dev:ino
   * and the name): one moved to another restored path is never reused there; one met again
   * where it was made (the `x` of parts `x/y` and `x/z` under --all) is reused
   */
  private readonly made = new Map<string, string>();

  constructor(
    /** replace what is at restored paths (--force) */
    readonly force: boolean,
    private readonly onNote: (message: string) => void,
    private readonly onWarn: (message: string) => void = onNote,
    /** appended to the name of a directory moved aside (asideSuffix) */
    private readonly suffix: string = asideSuffix(new Date()),
    /** a dry run: look, say what would be done, change nothing */
    readonly dryRun = false,
    /** the spool, never written into nor moved aside */
    private readonly fence: SpoolFence | null = null,
  ) {}

  /** An existing directory of the target about to be written into: refused when it is a spool. */
  private enter(fd: number): number {
    const why = fd >= 0 ? this.fence?.refusal(fd) : null;
    if (!why) return fd;
    sys.close(fd);
    throw new EntryError('ESPOOL', `${why}: a restore never writes into a spool (not restored there)`);
  }

  /**
   * A directory `name` in `parentFd` for the restore to fill: created (mode 0700 until its
   * metadata is set after its children), or under --force reused when it is already a directory;
   * a non-directory in its place is removed (a symlink is never followed). Returns its
   * descriptor, opened beneath the parent without following any symlink, and whether the
   * directory was there already.
   * In a dry run: the existing directory opened O_PATH to look into, or -1 when there is none.
   */
  dir(parentFd: number, name: Buffer, shown: string): { fd: number; replaced: Replacement | null; existed: boolean } {
    if (this.dryRun) {
      const p = this.previewDir(parentFd, name);
      return { ...p, existed: p.fd >= 0 };
    }
    let replaced: Replacement | null = null;
    let existed = false;
    let rc = sys.mkdirat(parentFd, name, 0o700);
    if (rc === EEXIST) {
      const kind = this.kindAt(parentFd, name);
      const again = kind === 'dir' && this.made.get(this.key()) === this.place(parentFd, name);
      if (!this.force && !again) throw new EntryError('EEXIST', 'already exists in the target (created during the restore?): not replaced without --force');
      if (kind === 'dir') ((rc = 0), (existed = true));
      else {
        if (kind !== 'none') replaced = this.remove(parentFd, name, shown, kind);
        rc = sys.mkdirat(parentFd, name, 0o700);
      }
    }
    if (rc < 0) throw new EntryError(errnoName(rc), 'cannot create the directory');
    const fd = sys.openat2(parentFd, name, O_DIR, 0, RESOLVE);
    if (fd < 0) {
      const code = errnoName(fd);
      throw new EntryError(
        code,
        code === 'ELOOP' || code === 'EXDEV' || code === 'ENOTDIR'
          ? 'something other than a directory (a symlink?) appeared where the directory was created: not followed'
          : 'cannot open the directory',
      );
    }
    const key = sys.fstat(fd, this.st) === 0 ? this.key() : '';
    const where = this.place(parentFd, name);
    if (existed && this.made.get(key) === where) return { fd, replaced, existed };
    if (existed && this.made.has(key)) {
      // whoever can write the target moved a directory restored a moment ago here: filling it
      // and giving it this path's metadata would open what it holds (a 0700 directory's files)
      sys.close(fd);
      throw new EntryError('ECHANGED', 'a directory this restore made was moved here while it ran: not reused');
    }
    if (!existed) {
      // the directory made a moment ago (or one as private), not one exchanged for it by
      // whoever can write the parent: what the restore wrote there would be that user's
      const read = readDirAt(fd);
      if (typeof read === 'number') {
        // (EMFILE: out of descriptors, not a swap)
        sys.close(fd);
        throw new EntryError(errnoName(read), 'cannot read the directory just made: nothing restored into it');
      }
      if (!key || !privateAndEmpty(fd, read)) {
        sys.close(fd);
        throw new EntryError('ECHANGED', 'replaced by another directory while it was made: nothing restored into it');
      }
      this.made.set(key, where);
    }
    return { fd: existed ? this.enter(fd) : fd, replaced, existed };
  }

  /**
   * A directory no one else can reach, made in `parentFd` (one that others can write) to make a
   * symlink or special file in and give it its metadata before it is renamed into place: what
   * is made there cannot be exchanged for another inode, which the metadata would then be given
   * to (a root-owned node or symlink outside DIR). Named `.hardsnap-restore-PID-N`, removed by
   * dropStaging (a restore killed meanwhile leaves it, root's and 0700).
   */
  staging(parentFd: number): { fd: number; name: Buffer } {
    for (let n = 1; n <= 100; n++) {
      const name = Buffer.from(`.hardsnap-restore-${process.pid}-${n}`);
      const rc = sys.mkdirat(parentFd, name, 0o700);
      if (rc === EEXIST) continue;
      if (rc < 0) throw new EntryError(errnoName(rc), 'cannot make the private directory to create it in');
      const fd = sys.openat2(parentFd, name, O_DIR, 0, RESOLVE);
      if (fd < 0) throw new EntryError(errnoName(fd), 'cannot open the private directory made to create it in');
      const read = readDirAt(fd);
      if (typeof read !== 'number' && privateAndEmpty(fd, read)) return { fd, name };
      sys.close(fd);
      if (typeof read === 'number') throw new EntryError(errnoName(read), 'cannot read the private directory made to create it in');
      throw new EntryError('ECHANGED', 'the private directory made to create it in was replaced: not restored');
    }
    throw new EntryError('EEXIST', 'cannot make the private directory to create it in: 100 names taken');
  }

  /**
   * Removes a staging directory (empty by now) and closes it: null, or the errno when it is left
   * behind (ECHANGED: the owner of the parent renamed it away; EPERM: an append-only parent).
   */
  dropStaging(parentFd: number, s: { fd: number; name: Buffer }): string | null {
    // by its identity: another directory renamed to its name is not removed instead
    const mine = sys.fstat(s.fd, this.st) === 0 ? this.key() : '';
    sys.close(s.fd);
    if (!mine || sys.fstatat(parentFd, s.name, this.st, 1) !== 0 || this.key() !== mine) return 'ECHANGED';
    const rc = sys.unlinkat(parentFd, s.name, sys.AT_REMOVEDIR);
    return rc < 0 ? errnoName(rc) : null;
  }

  /**
   * Makes room for a non-directory `name` under --force: a file or symlink there is removed; a
   * directory is never deleted: it is moved aside, next to itself, to NAME + suffix (then -2,
   * -3, ... when taken). In a dry run: says what would be done.
   */
  clear(parentFd: number, name: Buffer, shown: string): Replacement | null {
    if (!this.force || parentFd < 0) return null;
    const kind = this.kindAt(parentFd, name);
    if (kind === 'none') return null;
    if (kind === 'dir') return this.moveAside(parentFd, name, shown);
    if (this.dryRun) {
      // what unlinkat would refuse, as far as can be seen without trying: a mount point (a file bind-mounted there)
      const probe = sys.openat2(parentFd, name, sys.O_PATH | sys.O_NOFOLLOW, 0, RESOLVE | sys.RESOLVE_NO_XDEV);
      if (probe >= 0) sys.close(probe);
      else if (errnoName(probe) === 'EXDEV')
        throw new EntryError('EBUSY', 'cannot remove what is in the way in the target (EBUSY: a file system is mounted on it)');
      return this.describe(parentFd, name, kind);
    }
    return this.remove(parentFd, name, shown, kind);
  }

  /** Opens a descendant directory of `baseFd` by relative path, never leaving it or following a link. */
  openBeneath(baseFd: number, rel: Buffer, flags = sys.O_PATH | sys.O_DIRECTORY): number {
    return sys.openat2(baseFd, rel.length ? rel : '.', flags | sys.O_NOFOLLOW, 0, RESOLVE);
  }

  private previewDir(parentFd: number, name: Buffer): { fd: number; replaced: Replacement | null } {
    if (parentFd < 0 || !this.force) return { fd: -1, replaced: null };
    const kind = this.kindAt(parentFd, name);
    if (kind === 'none') return { fd: -1, replaced: null };
    if (kind !== 'dir') return { fd: -1, replaced: this.describe(parentFd, name, kind) };
    const fd = sys.openat2(parentFd, name, sys.O_PATH | sys.O_DIRECTORY | sys.O_NOFOLLOW, 0, RESOLVE);
    return { fd: fd < 0 ? -1 : this.enter(fd), replaced: null };
  }

  private describe(fd: number, name: Buffer, kind: 'symlink' | 'other'): Replacement {
    if (kind !== 'symlink') return { action: 'remove', found: 'other' };
    const t = sys.readlinkat(fd, name);
    return { action: 'remove', found: 'symlink', ...(typeof t === 'number' ? {} : { target: t }) };
  }

  private moveAside(fd: number, name: Buffer, shown: string): Replacement {
    if (this.fence?.holds(fd, name))
      throw new EntryError('ESPOOL', 'a directory in the way is or holds the spool: not moved aside, and this entry not restored');
    const suffix = Buffer.from(this.suffix);
    if (name.length + suffix.length + 3 > NAME_MAX) {
      throw new EntryError(
        'ENAMETOOLONG',
        `a directory is in the way and its name is too long to move it aside (${this.suffix}): not restored; move it away and restore again`,
      );
    }
    for (let i = 1; ; i++) {
      const aside = Buffer.concat([name, suffix, Buffer.from(i === 1 ? '' : `-${i}`)]);
      if (this.dryRun) {
        if (this.kindAt(fd, aside) !== 'none') continue;
        // what the rename would refuse, as far as can be seen without trying: a mount point
        const probe = sys.openat2(fd, name, sys.O_PATH | sys.O_DIRECTORY | sys.O_NOFOLLOW, 0, RESOLVE | sys.RESOLVE_NO_XDEV);
        if (probe >= 0) sys.close(probe);
        else if (errnoName(probe) === 'EXDEV')
          throw new EntryError(
            'EBUSY',
            'a directory is in the way and cannot be moved aside (a file system is mounted on it): not restored (it is never deleted)',
          );
        return { action: 'move-aside', found: 'dir', aside };
      }
      const rc = sys.renameat(fd, name, fd, aside, sys.RENAME_NOREPLACE);
      if (rc === EEXIST) continue;
      if (rc < 0) throw new EntryError(errnoName(rc), 'a directory is in the way and cannot be moved aside: not restored (it is never deleted)');
      this.onWarn(
        `--force: moved the directory ${shown} aside to ${displayPath(aside)} (a file, symlink or special file is restored in its place; nothing in it was deleted)`,
      );
      return { action: 'move-aside', found: 'dir', aside };
    }
  }

  /** dev:ino of what this.st holds */
  private key(): string {
    return `${this.st[ST.DEV]}:${this.st[ST.INO]}`;
  }

  /** Where `name` in the directory `parentFd` is: the parent's dev:ino and the name (this.st is overwritten). */
  private place(parentFd: number, name: Buffer): string {
    return sys.fstat(parentFd, this.st) === 0 ? `${this.key()}/${name.toString('latin1')}` : '';
  }

  private kindAt(fd: number, name: Buffer): 'none' | 'dir' | 'symlink' | 'other' {
    const rc = sys.fstatat(fd, name, this.st, 1);
    if (rc < 0) return 'none';
    const t = this.st[ST.MODE]! & S_IFMT;
    return t === S_IFDIR ? 'dir' : t === S_IFLNK ? 'symlink' : 'other';
  }

  /** Unlinks a non-directory in the way (a symlink is removed, never followed). */
  private remove(fd: number, name: Buffer, shown: string, kind: 'symlink' | 'other'): Replacement {
    const r = this.describe(fd, name, kind);
    const rc = sys.unlinkat(fd, name, 0);
    if (rc < 0) throw new EntryError(errnoName(rc), `cannot remove what is in the way in the target (${errnoName(rc)})`);
    // said once it is done: a removal that failed is the problem line alone
    if (kind === 'symlink')
      this.onWarn(`--force: removed the symlink ${shown}${r.target ? ` -> ${r.target.toString('latin1')}` : ''} in the target (not followed)`);
    else this.onNote(`--force: replaced ${shown} in the target`);
    return r;
  }
}
