/**
 * A preflight of the spool's file system (`hardsnap check`, and automatically when
 * `hardsnap init --spool` makes a spool): does it do what hardsnap relies on? Every probe runs in a private
 * directory `<spool>/.hardsnap-check-<pid>/` that is removed afterwards. A spool without
 * working hard links is refused: a silent fallback to full copies fills the disk within days
 * (Back In Time issue 526).
 */
import { fs } from '../fs/disk.js';
import path from 'node:path';
import { HardsnapError, errnoCode } from '../core/errors.js';
import { SETMETA, ST, SysError, isRoot, refusedNamespaces, splitStaged, sys } from '../fs/native.js';
import { formatXattrs } from '../fs/xattrs.js';
import { formatBytes } from '../core/units.js';
import { atimeAdvice, isNfs, readMountFor, type MountInfo } from '../fs/mountinfo.js';
import { probeClone } from '../fs/clone.js';
import { removeChildrenAt, removeTree } from '../fs/remove-tree.js';
import { readDirAt } from '../fs/entry.js';
import { readTextIfExists } from '../fs/read.js';

/** 'info': a fact about the spool that is neither a pass nor a problem (it does not clone) */
export type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip' | 'info';

export interface CheckResult {
  id: string;
  title: string;
  status: CheckStatus;
  /** a failure of a required check makes the spool unusable (exit 2, backup refused) */
  required: boolean;
  detail: string;
  hint?: string;
}

export interface SpoolReport {
  spool: string;
  /** the directory probed: the spool, or its nearest existing ancestor when it does not exist yet */
  probed: string;
  mount: (MountInfo & { nfs: boolean }) | null;
  checks: CheckResult[];
  /** true when every required check passed */
  ok: boolean;
  /** whether the spool's file system clones (reflinks: src/apply/clone.ts); null when not probed */
  clones: boolean | null;
}

export interface PreflightOptions {
  /** warn below this many free bytes (default 1 GiB) */
  minFreeBytes?: number;
  /** warn below this fraction of free inodes (default 0.05) */
  minFreeInodeRatio?: number;
  /** /proc/self/mountinfo, replaceable for tests */
  mountinfo?: string;
}

const PROBE_NS = 123_456_789;

export function nearestExisting(p: string): string {
  let cur = path.resolve(p);
  while (!fs.existsSync(cur)) {
    const up = path.dirname(cur);
    if (up === cur) break;
    cur = up;
  }
  return cur;
}

function msg(err: unknown): string {
  return errnoCode(err) ?? (err as Error).message;
}

export function checkSpool(spool: string, opts: PreflightOptions = {}): SpoolReport {
  const probed = nearestExisting(spool);
  const checks: CheckResult[] = [];
  const add = (c: CheckResult) => checks.push(c);
  let real = probed;
  try {
    real = fs.realpathSync.native(probed); // the C realpath: also through a path alias (src/fs/byte-path.ts)
  } catch {
    /* keep the resolved path */
  }
  const m = readMountFor(real, opts.mountinfo);
  const mount = m ? { ...m, nfs: isNfs(m) } : null;

  const dir = path.join(probed, `.hardsnap-check-${process.pid}`);
  let clones: boolean | null = null;
  // the probes work in the directory made, through its /proc/self/fd link: whoever can write
  // `probed` (a spool not made yet, in a directory others can write) may rename it away and put
  // a symlink in its place, which a probe by path would follow (an attack: root's ownership
  // probe chowned a root-owned file of that user's choosing)
  let held = -1;
  let at = dir;
  // where another user could exchange what is made (the directory probed, or one above it, can
  // be written by others without the sticky bit): no probe at all
  const unsafe = exchangeableBy(probed);
  if (unsafe)
    add({
      id: 'write',
      title: 'create files',
      status: 'fail',
      required: true,
      detail: `not tried: ${unsafe}`,
      hint: 'put the spool in a directory only its owner can write',
    });
  else
    try {
      removeTree(dir);
      fs.mkdirSync(dir, { mode: 0o700 });
      held = holdMadeDir(dir);
      // (`/.`: the link followed even by a probe that opens the directory itself with O_NOFOLLOW)
      if (fs.existsSync(`/proc/self/fd/${held}`)) at = `/proc/self/fd/${held}/.`;
      fs.writeFileSync(path.join(at, 'file'), 'hardsnap probe\n');
      add({ id: 'write', title: 'create files', status: 'pass', required: true, detail: `created ${dir}` });
    } catch (err) {
      add({
        id: 'write',
        title: 'create files',
        status: 'fail',
        required: true,
        detail: `cannot create ${dir}: ${msg(err)}`,
        hint: 'check that the spool is mounted read-write and writable by this user',
      });
    }
  try {
    if (held >= 0) {
      add(probeHardLink(at));
      add(probeSymlink(at));
      add(probeRename(at));
      add(probeNsTime(at));
      add(probeOwner(at));
      add(probeXattrs(at));
      const c = probeClones(at);
      clones = c.status === 'pass';
      add(c);
    }
  } finally {
    if (held >= 0) removeMadeDir(dir, held);
  }
  checks.push(...spaceChecks(probed, opts));
  if (mount) add(mountCheck(mount));
  return { spool: path.resolve(spool), probed, mount, checks, ok: checks.every((c) => !(c.required && c.status === 'fail')), clones };
}

/**
 * An O_PATH descriptor of the directory just made at `dir`: this process's, private (no one else
 * can make one so) and empty (not another one renamed over it), or it was exchanged meanwhile
 * (thrown).
 */
function holdMadeDir(dir: string): number {
  const fd = sys.openat(sys.AT_FDCWD, dir, sys.O_PATH | sys.O_DIRECTORY | sys.O_NOFOLLOW, 0);
  if (fd < 0) throw new SysError(fd, 'open', dir);
  const st = new Float64Array(sys.STAT_FIELDS);
  // ours: this process's uid, or the owner of the directory above it, which an NFS export that
  // squashes root gives what root makes (that owner is no other user of this machine:
  // exchangeableBy refused the place otherwise)
  const above = fs.statSync(path.dirname(dir), { throwIfNoEntry: false })?.uid;
  const ours = (uid: number) => uid === (process.geteuid?.() ?? uid) || uid === above;
  if (sys.fstat(fd, st) !== 0 || !ours(st[ST.UID]!) || (st[ST.MODE]! & 0o077) !== 0 || !isEmptyDir(fd)) {
    sys.close(fd);
    throw new Error('replaced by another directory while it was made (whoever can write the directory above it)');
  }
  return fd;
}

/** Whether the directory `fd` (O_PATH will do) holds no entry. */
function isEmptyDir(fd: number): boolean {
  const rd = sys.openat(fd, '.', sys.O_RDONLY | sys.O_DIRECTORY, 0);
  if (rd < 0) return false;
  const r = readDirAt(rd);
  sys.close(rd);
  return typeof r !== 'number' && r.length === 0;
}

/** The uid NFS and user namespaces show for one they cannot map (nobody). */
const OVERFLOW_UID = Number(readTextIfExists('/proc/sys/fs/overflowuid')?.trim() ?? 65534);

let accounts: Set<number> | undefined;
/** The uids of /etc/passwd: the users who may run processes on this machine. */
function localUids(): Set<number> {
  accounts ??= new Set(
    (readTextIfExists('/etc/passwd') ?? '')
      .split('\n')
      .map((l) => Number(l.split(':')[2]))
      .filter((n) => Number.isInteger(n)),
  );
  return accounts;
}

/**
 * Why another user could exchange what hardsnap makes in `dir` for something of theirs: `dir`,
 * or a directory above it, is another user's (of this machine: not root's, not this process's),
 * or can be written by group or others without the sticky bit (a rename there moves anything
 * below it); null when none.
 */
export function exchangeableBy(dir: string): string | null {
  let d: string;
  try {
    d = fs.realpathSync.native(dir);
  } catch {
    return null; // (what cannot be resolved is not probed: the caller says why)
  }
  for (;;) {
    const st = fs.statSync(d, { throwIfNoEntry: false });
    const me = process.geteuid?.() ?? 0;
    // (a user of this machine: an export's owner on a NAS, unknown here, runs nothing here; nor
    // the uid an NFS export that squashes root gives root, nobody's)
    if (st && st.uid !== 0 && st.uid !== me && st.uid !== OVERFLOW_UID && st.mode & 0o200 && localUids().has(st.uid))
      return `${d} belongs to uid ${st.uid}, who could exchange what hardsnap makes below it for something of theirs: put the spool in a directory of root's or of this user's`;
    if (st && st.mode & 0o022 && !(st.mode & 0o1000))
      return `${d} can be written by ${st.mode & 0o002 ? 'every user' : 'its group'} (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}, no sticky bit), who could exchange what hardsnap makes below it for something of theirs: make it writable by its owner only (or sticky, as /tmp)`;
    const up = path.dirname(d);
    if (up === d) return null;
    d = up;
  }
}

/** The probe directory `held` emptied through its descriptor, then removed by its name where that is still it; the descriptor closed. */
function removeMadeDir(dir: string, held: number): void {
  const st = new Float64Array(sys.STAT_FIELDS);
  const ino = sys.fstat(held, st) === 0 ? st[ST.INO]! : -1;
  const fd = sys.openat(held, '.', sys.O_RDONLY | sys.O_DIRECTORY, 0);
  sys.close(held);
  if (fd < 0) return;
  try {
    removeChildrenAt(fd);
  } finally {
    sys.close(fd);
  }
  // (renamed away meanwhile: it stays where it was moved, empty)
  if (fs.lstatSync(dir, { throwIfNoEntry: false })?.ino === ino) fs.rmdirSync(dir);
}

/**
 * Whether the spool clones (FICLONE): then a file whose metadata alone changed (chmod, chown), or
 * a renamed file with a new mtime, is written as a clone of its earlier copy instead of in full.
 */
function probeClones(dir: string): CheckResult {
  const base = { id: 'clone', title: 'clones (reflinks)', required: false };
  const r = probeClone(dir);
  if (r.clones) {
    return {
      ...base,
      status: 'pass',
      detail:
        'yes (FICLONE): a file whose metadata alone changed, or a renamed one with a new mtime, is written as a clone of its earlier copy: a new inode, no new data blocks',
    };
  }
  return {
    ...base,
    status: 'info',
    detail: `no (${r.step === 'clone' ? 'FICLONE' : r.step}: ${r.code}): a file whose metadata alone changed, or a renamed one with a new mtime, is copied in full`,
    hint: 'XFS (reflink=1, the default since xfsprogs 5.1), btrfs, and NFS 4.2 mounts of those clone; ext4 and tmpfs do not',
  };
}

function probeHardLink(dir: string): CheckResult {
  const base = { id: 'hardlink', title: 'hard links', required: true };
  const hint = 'hardsnap needs hard links (vfat, exFAT, some SMB/CIFS and FUSE mounts lack them): use ext4, XFS, btrfs, ZFS or NFS';
  const a = path.join(dir, 'file');
  const b = path.join(dir, 'link');
  try {
    fs.linkSync(a, b);
  } catch (err) {
    return { ...base, status: 'fail', detail: `link() failed: ${msg(err)}`, hint };
  }
  const sa = fs.lstatSync(a);
  const sb = fs.lstatSync(b);
  if (sa.ino !== sb.ino || sa.nlink !== 2 || sb.nlink !== 2) {
    return {
      ...base,
      status: 'fail',
      hint,
      detail: `link() succeeded but made a copy (inodes ${sa.ino} and ${sb.ino}, link counts ${sa.nlink} and ${sb.nlink}): every generation would be a full copy`,
    };
  }
  return { ...base, status: 'pass', detail: 'two names share one inode, link count 2' };
}

function probeSymlink(dir: string): CheckResult {
  const base = { id: 'symlink', title: 'symbolic links', required: true };
  const p = path.join(dir, 'sym');
  try {
    fs.symlinkSync('file', p);
    const t = fs.readlinkSync(p);
    if (t !== 'file') return { ...base, status: 'fail', detail: `the link reads back as ${JSON.stringify(t)}` };
    if (!fs.lstatSync(p).isSymbolicLink()) return { ...base, status: 'fail', detail: 'the link is not a symbolic link when read back' };
    return { ...base, status: 'pass', detail: 'created and read back (needed for `last` and symlinks in sources)' };
  } catch (err) {
    return { ...base, status: 'fail', detail: `symlink() failed: ${msg(err)}`, hint: '`last` is a symbolic link: use a file system that has them' };
  }
}

function probeRename(dir: string): CheckResult {
  const base = { id: 'rename', title: 'atomic rename', required: true };
  try {
    fs.writeFileSync(path.join(dir, 'old'), 'old');
    fs.writeFileSync(path.join(dir, 'new'), 'new');
    fs.renameSync(path.join(dir, 'new'), path.join(dir, 'old'));
    fs.symlinkSync('a', path.join(dir, 'last.new'));
    fs.symlinkSync('b', path.join(dir, 'last'));
    fs.renameSync(path.join(dir, 'last.new'), path.join(dir, 'last'));
    const ok =
      fs.readFileSync(path.join(dir, 'old'), 'utf8') === 'new' && !fs.existsSync(path.join(dir, 'new')) && fs.readlinkSync(path.join(dir, 'last')) === 'a';
    return ok
      ? { ...base, status: 'pass', detail: 'rename() replaces an existing file and symlink in one step' }
      : { ...base, status: 'fail', detail: 'rename() over an existing name left the wrong content' };
  } catch (err) {
    return { ...base, status: 'fail', detail: `rename() over an existing name failed: ${msg(err)}`, hint: '`last` is replaced by renaming a new link over it' };
  }
}

function probeNsTime(dir: string): CheckResult {
  const base = { id: 'mtime-ns', title: 'nanosecond mtimes', required: false };
  const sec = 1_700_000_000;
  const dfd = sys.openat(sys.AT_FDCWD, dir, sys.O_RDONLY | sys.O_DIRECTORY, 0);
  if (dfd < 0) return { ...base, status: 'warn', detail: `cannot open the probe directory (${dfd})` };
  try {
    const r = sys.setmeta(dfd, 'file', -1, 0, 0, 0, sec, PROBE_NS, 4);
    if (r < 0) return { ...base, status: 'warn', detail: `utimensat() failed: ${splitStaged(r).code}` };
    const st = new Float64Array(sys.STAT_FIELDS);
    sys.fstatat(dfd, 'file', st, 1);
    const gotSec = st[ST.MTIME]!;
    const gotNs = st[ST.MTIME_NS]!;
    if (gotSec === sec && gotNs === PROBE_NS) return { ...base, status: 'pass', detail: 'an mtime of .123456789 s reads back exactly' };
    const got = `${gotSec - sec === 0 ? '' : `${gotSec - sec} s and `}.${String(gotNs).padStart(9, '0')} s`;
    return {
      ...base,
      status: 'warn',
      detail: `an mtime of .123456789 s reads back as ${got}: restored files get coarser times`,
      hint: 'change detection still works (it compares with the manifest), but restores lose sub-second precision',
    };
  } finally {
    sys.close(dfd);
  }
}

function probeOwner(dir: string): CheckResult {
  const base = { id: 'owner', title: 'ownership', required: false };
  if (!isRoot()) {
    return { ...base, status: 'skip', detail: 'not root: owners are recorded in manifests but not applied in the spool' };
  }
  const p = path.join(dir, 'file');
  try {
    fs.chownSync(p, 65534, 65533);
    const st = fs.lstatSync(p);
    if (st.uid === 65534 && st.gid === 65533) return { ...base, status: 'pass', detail: 'chown to another uid and gid reads back' };
    return {
      ...base,
      status: 'warn',
      detail: `chown to 65534:65533 reads back as ${st.uid}:${st.gid}`,
      hint: 'on NFS, export the spool with no_root_squash (and matching id mapping)',
    };
  } catch (err) {
    return {
      ...base,
      status: 'fail',
      required: true,
      detail: `chown() as root failed: ${msg(err)}: backups as root would fail`,
      hint: 'on NFS, export the spool with no_root_squash',
    };
  }
}

/**
 * Which extended-attribute namespaces the spool keeps: an ACL (system.posix_acl_access), a file
 * capability (security.capability), user.* and, as root, trusted.*. What it refuses is held by
 * the manifests only (and restored from them); a plain copy of `last` then lacks it.
 */
function probeXattrs(dir: string): CheckResult {
  const base = { id: 'xattrs', title: 'extended attributes and ACLs', required: false };
  const u32 = (...v: number[]) => Buffer.from(new Uint32Array(v).buffer);
  const acl = Buffer.concat([
    u32(2),
    ...[
      [0x01, 6, -1],
      [0x02, 4, 65534],
      [0x04, 4, -1],
      [0x10, 4, -1],
      [0x20, 4, -1],
    ].map(([tag, perm, id]) => Buffer.concat([Buffer.from([tag!, 0, perm!, 0]), u32(id! >>> 0)])),
  ]);
  const cap = u32(0x02000001, 1 << 13, 0, 0, 0); // cap_net_raw+ep, revision 2
  const want: [string, Buffer][] = [
    ['user.hardsnap.probe', Buffer.from('x')],
    ['system.posix_acl_access', acl],
    ['security.capability', cap],
  ];
  if (isRoot()) want.push(['trusted.hardsnap.probe', Buffer.from('x')]);
  const blob = formatXattrs(want.map(([n, v]) => ({ name: Buffer.from(n), value: v })));
  const dfd = sys.openat(sys.AT_FDCWD, dir, sys.O_RDONLY | sys.O_DIRECTORY, 0);
  if (dfd < 0) return { ...base, status: 'warn', detail: `cannot open the probe directory (${dfd})` };
  try {
    const r = sys.setmeta(dfd, 'file', -1, 0, 0, 0, 0, 0, SETMETA.XATTRS, blob);
    if (r < 0) return { ...base, status: 'warn', detail: `setxattr() failed: ${splitStaged(r).code}` };
    const names = (ns: string) =>
      ns === 'system' ? 'POSIX ACLs (system.posix_acl_*)' : ns === 'security' ? 'security.* (capabilities, SELinux labels)' : `${ns}.*`;
    const tried = ['user', 'system', 'security', ...(isRoot() ? ['trusted'] : [])];
    const refused = refusedNamespaces(r);
    const kept = tried.filter((n) => !refused.includes(n));
    const notRoot = isRoot() ? '' : ' (trusted.* not tried: not root)';
    if (!refused.length) return { ...base, status: 'pass', detail: `kept: ${kept.map(names).join(', ')}${notRoot}` };
    return {
      ...base,
      status: 'warn',
      detail: `refused: ${refused.map(names).join(', ')}; kept: ${kept.length ? kept.map(names).join(', ') : 'none'}${notRoot}`,
      hint: 'what the spool refuses is held by the manifests and applied by restore; a plain copy of `last` lacks it',
    };
  } finally {
    sys.close(dfd);
  }
}

function spaceChecks(dir: string, opts: PreflightOptions): CheckResult[] {
  let s: fs.StatsFs;
  try {
    s = fs.statfsSync(dir);
  } catch (err) {
    return [{ id: 'space', title: 'free space', status: 'warn', required: false, detail: `statfs() failed: ${msg(err)}` }];
  }
  const free = s.bavail * s.bsize;
  const total = s.blocks * s.bsize;
  const min = opts.minFreeBytes ?? 1 << 30;
  const out: CheckResult[] = [
    {
      id: 'space',
      title: 'free space',
      required: false,
      status: free < min ? 'warn' : 'pass',
      detail: `${formatBytes(free)} free of ${formatBytes(total)}`,
      ...(free < min ? { hint: 'the first generation is a full copy of every source' } : {}),
    },
  ];
  const ratio = opts.minFreeInodeRatio ?? 0.05;
  if (s.files > 0) {
    const low = s.ffree < s.files * ratio;
    out.push({
      id: 'inodes',
      title: 'free inodes',
      required: false,
      status: low ? 'warn' : 'pass',
      detail: `${s.ffree} free of ${s.files}`,
      ...(low ? { hint: 'every changed file of every generation takes an inode' } : {}),
    });
  } else {
    out.push({ id: 'inodes', title: 'free inodes', required: false, status: 'pass', detail: 'not limited (the file system reports no inode count)' });
  }
  return out;
}

function mountCheck(m: MountInfo & { nfs: boolean }): CheckResult {
  const base = { id: 'mount', title: m.nfs ? 'NFS mount options' : 'mount', required: false };
  const where = `${m.source} on ${m.mountPoint} (${m.fstype}, ${m.mountOptions.join(',')})`;
  if (!m.nfs) return { ...base, status: 'pass', detail: where };
  const adv = atimeAdvice(m);
  if (!adv) return { ...base, status: 'pass', detail: `${where}: noatime,nodiratime set` };
  return {
    ...base,
    status: 'warn',
    detail: `${where}: ${adv.missing.join(',')} missing: every read in the spool costs an atime update round trip`,
    hint: `mount with ${adv.missing.join(',')}; in /etc/fstab: ${adv.fstab}`,
  };
}

/**
 * Before a spool is made (`hardsnap init --spool`): run the preflight, pass its warnings on as
 * notes, and refuse (exit 2) when a required check fails, before the marker is written.
 */
export function preflightNewSpool(spool: string, onNote: (m: string) => void): SpoolReport {
  const r = checkSpool(spool);
  for (const c of r.checks) {
    if (c.status === 'warn') onNote(`spool check: ${c.title}: ${c.detail}${c.hint ? ` (${c.hint})` : ''}`);
  }
  const failed = r.checks.filter((c) => c.required && c.status === 'fail');
  if (failed.length) {
    const first = failed[0]!;
    throw new HardsnapError(
      'ESPOOLCHECK',
      `the spool ${r.spool} cannot hold backups: ${failed.map((c) => `${c.title}: ${c.detail}`).join('; ')}; refusing to make a spool there`,
      { exit: 2, path: r.spool, hint: first.hint ?? `see 'hardsnap check --spool ${r.spool}'` },
    );
  }
  return r;
}
