/**
 * The mount a path lives on, from /proc/self/mountinfo (proc(5)): its file-system type, source
 * and options, so `check` can say "this spool is on NFS" and advise noatime,nodiratime with the
 * fstab line to use. Parsing is pure and table-tested; only readMountFor touches the disk.
 */
import fs from 'node:fs';
import path from 'node:path';
import { sys } from './native.js';

export interface MountInfo {
  /** the device (major:minor) of the file system */
  majmin: string;
  /** the directory of the file system this mount shows (not "/" for a bind mount of a subtree) */
  root: string;
  mountPoint: string;
  fstype: string;
  source: string;
  /** per-mount options (rw,noatime,...) */
  mountOptions: string[];
  /** per-superblock options (NFS: vers=, rsize=, addr=, ...) */
  superOptions: string[];
}

/** mountinfo escapes space, tab, newline and backslash as \ooo octal. */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function parseMountinfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (sep < 0 || f.length < sep + 3) continue;
    out.push({
      majmin: f[2]!,
      root: unescape(f[3]!),
      mountPoint: unescape(f[4]!),
      mountOptions: f[5]!.split(','),
      fstype: f[sep + 1]!,
      source: unescape(f[sep + 2]!),
      superOptions: (f[sep + 3] ?? '').split(',').filter(Boolean),
    });
  }
  return out;
}

/** The mount holding `realPath` (absolute, symlinks resolved): the last, longest match. */
export function mountOf(mounts: MountInfo[], realPath: string): MountInfo | undefined {
  let best: MountInfo | undefined;
  for (const m of mounts) {
    const mp = m.mountPoint;
    const inside = mp === '/' || realPath === mp || realPath.startsWith(mp.endsWith('/') ? mp : mp + '/');
    if (inside && (!best || mp.length >= best.mountPoint.length)) best = m;
  }
  return best;
}

export function isNfs(m: MountInfo): boolean {
  return m.fstype === 'nfs' || m.fstype === 'nfs4';
}

/**
 * For an NFS mount without noatime (or nodiratime): the options to add and the fstab line that
 * has them; null when nothing is missing. (noatime implies nodiratime on Linux, but both are
 * advised, as the sysadmin's checklist names them.)
 */
export function atimeAdvice(m: MountInfo): { missing: string[]; fstab: string } | null {
  const has = new Set(m.mountOptions);
  const missing = ['noatime', 'nodiratime'].filter((o) => !has.has(o));
  if (!missing.length) return null;
  const keep = m.mountOptions.filter((o) => o !== 'rw' && o !== 'relatime' && o !== 'strictatime' && o !== 'atime' && o !== 'diratime');
  const vers = m.superOptions.find((o) => o.startsWith('vers='));
  const opts = ['rw', ...(vers ? [vers] : []), ...keep, 'noatime', 'nodiratime'];
  const esc = (s: string) => s.replace(/[ \t\n\\]/g, (c) => '\\' + c.charCodeAt(0).toString(8).padStart(3, '0'));
  return { missing, fstab: `${esc(m.source)}  ${esc(m.mountPoint)}  ${m.fstype}  ${[...new Set(opts)].join(',')}  0  0` };
}

export function readMountFor(realPath: string, file = '/proc/self/mountinfo'): MountInfo | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  return mountOf(parseMountinfo(text), realPath);
}

/**
 * Where `realPath` (absolute, symlinks resolved) is in its file system, whatever mount it is
 * reached through: the file system (its device; for NFS its server) and the path inside it (the
 * mount's root, or the NFS export's path, joined with the rest). Two paths with the same `fs`
 * and one `path` below the other are one inside the other, though no path comparison of their
 * mount points says so (a bind mount of a subtree; one NFS export mounted twice, or a subtree
 * of it mounted). Paths in mountinfo's bytes, as latin1 strings when read with `latin1`.
 */
export function fsLocation(mounts: MountInfo[], realPath: string): { fs: string; path: string } | undefined {
  const m = mountOf(mounts, realPath);
  if (!m) return undefined;
  const rest = m.mountPoint === '/' ? realPath : realPath.slice(m.mountPoint.length);
  const join = (a: string, b: string) => (a.endsWith('/') ? a.slice(0, -1) : a) + (b.startsWith('/') || b === '' ? b : '/' + b);
  if (isNfs(m)) {
    const colon = m.source.indexOf(':');
    const server = colon > 0 ? m.source.slice(0, colon) : m.source;
    const exported = colon > 0 ? m.source.slice(colon + 1) : '/';
    return { fs: `nfs:${server}`, path: join(join(exported, m.root === '/' ? '' : m.root), rest) || '/' };
  }
  return { fs: m.majmin, path: join(m.root, rest) || '/' };
}

/** Whether `inner` is `outer` or below it (fsLocation paths). */
export function locationInside(inner: { fs: string; path: string }, outer: { fs: string; path: string }): boolean {
  if (inner.fs !== outer.fs) return false;
  const o = outer.path.endsWith('/') ? outer.path : outer.path + '/';
  return inner.path === outer.path || outer.path === '/' || inner.path.startsWith(o);
}

/**
 * The mount points strictly below directory `dir` (its real path, bytes), relative to it; the
 * mounts of /proc/self/mountinfo unless given.
 */
export function mountPointsBelow(dir: Buffer, mounts = readMountsLatin1()): Buffer[] {
  // mountinfo's paths as latin1 strings: bytes one for one, as dir's here
  const prefix = dir.toString('latin1').replace(/\/$/, '') + '/';
  const out: Buffer[] = [];
  for (const m of mounts ?? []) {
    if (m.mountPoint.length > prefix.length && m.mountPoint.startsWith(prefix)) out.push(Buffer.from(m.mountPoint.slice(prefix.length), 'latin1'));
  }
  return out;
}

/**
 * The mount points below a source while a backup reads it: those at the start (relative to its
 * real path), and whether they changed since. The mount table is polled (proc(5): poll on
 * mountinfo reports any mount or unmount in this namespace, even one undone since); only when
 * it changed are the mount points below the source read again and compared. check() is cheap
 * (one poll) and meant to be called once per directory of the walk: a mount below the source
 * made and removed again between two calls is the one change it cannot see.
 */
export class MountWatch {
  /** the mount points strictly below the source when the watch began, relative to it */
  readonly points: Buffer[];
  /**
   * files below the source that back a loop device when the watch began, relative to it: the
   * kernel writes them (a disk image, an encrypted container mounted elsewhere) with no event
   */
  readonly loopFiles: Buffer[];
  /** a mount point below the source appeared, vanished or moved since the start (or that cannot be known) */
  moved = false;
  private readonly fd: number;
  private readonly root: Buffer | null;

  constructor(source: string | Buffer) {
    // the poll first: a change while the points are read is seen by the first check
    this.fd = sys.openat(sys.AT_FDCWD, '/proc/self/mountinfo', sys.O_RDONLY, 0);
    let root: Buffer | null = null;
    try {
      root = fs.realpathSync(Buffer.isBuffer(source) ? source : Buffer.from(path.resolve(source)), { encoding: 'buffer' });
    } catch {
      // a source that cannot be resolved is not read either (the backup says why)
    }
    this.root = root;
    const mounts = readMountsLatin1();
    this.points = root ? mountPointsBelow(root, mounts) : [];
    this.loopFiles = root && mounts ? loopFilesBelow(root, mounts) : [];
    if (this.fd < 0) this.moved = true;
  }

  /**
   * What below the source changes with no event where a watcher looks, relative to it: the
   * mount points and the loop devices' backing files (src/apply/mount-points.ts)
   */
  get unwatched(): Buffer[] {
    return [...this.points, ...this.loopFiles];
  }

  /** Polls the mount table; true when the mount points below the source are not those at the start. */
  check(): boolean {
    if (this.moved || !this.root) return this.moved;
    if (sys.mountsChanged(this.fd) === 0) return false;
    const now = mountPointsBelow(this.root).map((b) => b.toString('latin1'));
    const was = new Set(this.points.map((b) => b.toString('latin1')));
    if (now.length !== was.size || now.some((p) => !was.has(p))) this.moved = true;
    return this.moved;
  }

  close(): void {
    if (this.fd >= 0) sys.close(this.fd);
  }
}

/**
 * The files backing a loop device that lie below directory `dir` (its real path), relative to
 * it: compared by their place in their file system (fsLocation), so that a file attached
 * through another mount of it (a bind mount of the source elsewhere) is found too.
 */
function loopFilesBelow(dir: Buffer, mounts: MountInfo[]): Buffer[] {
  const at = fsLocation(mounts, dir.toString('latin1'));
  if (!at) return [];
  const out: Buffer[] = [];
  for (const b of loopBackingFiles()) {
    let real: string;
    try {
      real = fs.realpathSync(b, { encoding: 'buffer' }).toString('latin1');
    } catch {
      continue; // gone, or not reachable from here
    }
    const loc = fsLocation(mounts, real);
    if (!loc || loc.path === at.path || !locationInside(loc, at)) continue;
    out.push(Buffer.from(loc.path.slice(at.path === '/' ? 1 : at.path.length + 1), 'latin1'));
  }
  return out;
}

/** The files backing a loop device (/sys/block/loop*\/loop/backing_file), as bytes. */
export function loopBackingFiles(sysBlock = '/sys/block'): Buffer[] {
  const out: Buffer[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(sysBlock).filter((n) => n.startsWith('loop'));
  } catch {
    return out;
  }
  for (const n of names) {
    let b: Buffer;
    try {
      b = fs.readFileSync(path.join(sysBlock, n, 'loop', 'backing_file'));
    } catch {
      continue; // not attached
    }
    if (b.at(-1) === 0x0a) b = b.subarray(0, -1);
    const deleted = Buffer.from(' (deleted)');
    if (b.length > deleted.length && b.subarray(-deleted.length).equals(deleted)) continue;
    if (b.length) out.push(b);
  }
  return out;
}

/** /proc/self/mountinfo, its paths as latin1 strings (bytes one for one), or null. */
export function readMountsLatin1(file = '/proc/self/mountinfo'): MountInfo[] | null {
  try {
    return parseMountinfo(fs.readFileSync(file, 'latin1'));
  } catch {
    return null;
  }
}

/** The mount points /etc/fstab lists (fstab(5)): swap and `none` aside, `\040` escapes decoded. */
export function parseFstabMountPoints(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const f = line.split(/\s+/);
    if (f.length < 3) continue;
    const mp = unescape(f[1]!);
    if (!mp.startsWith('/') || f[2] === 'swap') continue;
    out.push(mp.length > 1 && mp.endsWith('/') ? mp.slice(0, -1) : mp);
  }
  return out;
}

/**
 * The mount point /etc/fstab lists at `absPath` or above it that nothing is mounted on now, or
 * null: a directory made there (a spool) would be on the disk below the file system meant for it.
 */
export function unmountedFstabMount(absPath: string, fstabMountPoints: string[], mounts: MountInfo[]): string | null {
  const mounted = new Set(mounts.map((m) => m.mountPoint));
  let found: string | null = null;
  for (const mp of fstabMountPoints) {
    if (mp === '/' || mounted.has(mp)) continue;
    const inside = absPath === mp || absPath.startsWith(mp + '/');
    if (inside && (!found || mp.length > found.length)) found = mp;
  }
  return found;
}

/**
 * unmountedFstabMount() with /etc/fstab and /proc/self/mountinfo; null when either cannot be
 * read. `absPath` has its symlinks resolved (latin1, a byte a character); so have fstab's mount
 * points, as mount(8) resolves them (`/mnt//x`, `/mnt/./x`, a symlink to the real directory).
 */
export function readUnmountedFstabMount(absPath: string): string | null {
  let fstab: string;
  try {
    fstab = fs.readFileSync('/etc/fstab', 'latin1');
  } catch {
    return null;
  }
  const mounts = readMountsLatin1();
  return mounts ? unmountedFstabMount(absPath, parseFstabMountPoints(fstab).map(resolvedLatin1), mounts) : null;
}

/** A path (latin1) with its existing part's symlinks resolved and the rest normalized. */
function resolvedLatin1(p: string): string {
  const rest: string[] = [];
  for (let cur = path.posix.normalize(p); ;) {
    try {
      const real = fs.realpathSync.native(Buffer.from(cur, 'latin1'), { encoding: 'buffer' }).toString('latin1');
      return rest.length ? path.posix.join(real, ...rest.reverse()) : real;
    } catch {
      const up = path.posix.dirname(cur);
      if (up === cur) return path.posix.normalize(p);
      rest.push(path.posix.basename(cur));
      cur = up;
    }
  }
}
