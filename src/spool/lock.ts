/**
 * The per-host lock: `<spool>/rsync/<host>/.hardsnap/lock`, created with O_EXCL and holding who
 * took it (pid, the process's start time, hostname, boot id). Node has no flock, and flock is
 * unreliable on NFS anyway; an O_EXCL file works there. A lock whose holder is provably gone
 * (same host and boot, and the pid is dead or is another process now; or the same host after a
 * reboot) is stale and is taken over. Takeover is itself serialized by a second O_EXCL file so
 * two runs cannot both take over the same stale lock.
 */
import { fs } from '../fs/disk.js';
import { INIT_PID_NS, alive, isZombie, pidInNamespace, pidNamespace, processStart, readProc } from '../fs/process.js';
import os from 'node:os';
import path from 'node:path';
import { LockedError } from '../core/errors.js';
import { ensureSpoolDir } from './layout.js';
import { removeName } from '../fs/remove-tree.js';

export interface LockInfo {
  pid: number;
  pidStart: string | null;
  hostname: string;
  bootId: string | null;
  started: string;
  command: string;
  /** the parts the run works on (a backup's `.partial` directories are its own while it lives) */
  parts?: string[];
  /** what holds it (absent in locks of earlier versions) */
  kind?: 'backup' | 'prune';
  /** the holder's pid namespace (absent in locks of earlier versions): its pid is checked only from the same one */
  pidNs?: string | null;
}

export interface LockHandle {
  readonly file: string;
  /** stale lock that was taken over, if any */
  readonly tookOver: LockInfo | null;
  release(): void;
}

export function currentLockInfo(command: string): LockInfo {
  return {
    pid: process.pid,
    pidStart: processStart(process.pid),
    hostname: os.hostname(),
    bootId: readProc('/proc/sys/kernel/random/boot_id'),
    pidNs: pidNamespace(),
    started: new Date().toISOString(),
    command,
  };
}

/**
 * Why the lock is stale, or null when its holder may still be running. Its pid is checked when
 * it ran on this kernel since its boot and in this pid namespace: on this host (same name, or a
 * lock of an earlier version), or under another host name on the same kernel (a renamed host, a
 * UTS namespace: same boot id and pid namespace). A lock of another pid namespace on this kernel
 * (a container) is judged from the initial namespace, which sees its processes; from elsewhere,
 * and another machine's (over NFS), it is never stale.
 */
export function staleReason(info: LockInfo): string | null {
  const boot = readProc('/proc/sys/kernel/random/boot_id');
  const ns = pidNamespace();
  const sameKernel = Boolean(info.bootId && boot && info.bootId === boot);
  if (info.pidNs && ns && info.pidNs !== ns) return sameKernel && ns === INIT_PID_NS ? staleInNamespace(info, info.pidNs) : null;
  if (info.hostname !== os.hostname() && !(sameKernel && info.pidNs && info.pidNs === ns)) return null;
  if (info.bootId && boot && info.bootId !== boot) return 'its holder ran before the last reboot';
  if (!alive(info.pid) || isZombie(info.pid)) return `process ${info.pid} is gone`;
  const start = processStart(info.pid);
  if (info.pidStart && start && start !== info.pidStart) return `process ${info.pid} is another program now`;
  return null;
}

/** staleReason() for a holder in another pid namespace, seen from the initial one. */
function staleInNamespace(info: LockInfo, pidNs: string): string | null {
  const pid = pidInNamespace(pidNs, info.pid);
  if (pid === undefined) return null;
  if (pid === null) return `process ${info.pid} of pid namespace ${pidNs} is gone`;
  const start = processStart(pid);
  return info.pidStart && start && start !== info.pidStart ? `process ${info.pid} of pid namespace ${pidNs} is another program now` : null;
}

export function describeHolder(info: LockInfo): string {
  return `pid ${info.pid} on ${info.hostname}, running '${info.command}' since ${info.started}`;
}

/** The holder of a host's lock while it may still be running (a stale lock: null). */
export function liveLockHolder(hostDirPath: string): LockInfo | null {
  const holder = readLock(path.join(hostDirPath, '.hardsnap', 'lock'));
  return holder && (holder.pid === -1 || staleReason(holder) === null) ? holder : null;
}

/**
 * A lock left by a run that is provably gone (SIGKILL, the OOM killer, a crash, a reboot): it
 * ended without a word, and nothing else tells of it when it was killed before its `.partial`
 * existed. null: no lock, or its holder may still be running.
 */
export function staleLockHolder(hostDirPath: string): { holder: LockInfo; reason: string } | null {
  const file = path.join(hostDirPath, '.hardsnap', 'lock');
  const holder = readLock(file);
  if (!holder) return null;
  const reason = whyStale(file, holder);
  return reason ? { holder, reason } : null;
}

/** Why the lock `file` holding `holder` is stale (an unreadable one by its age), or null. */
function whyStale(file: string, holder: LockInfo): string | null {
  return holder.pid === -1 ? unreadableStale(file) : staleReason(holder);
}

function readLock(file: string): LockInfo | null {
  try {
    // not through a symlink: a dangling one would read as "released" for ever (a busy loop)
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      return JSON.parse(fs.readFileSync(fd, 'utf8')) as LockInfo;
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    // unreadable or half-written (killed between create and write): treat as anonymous
    return { pid: -1, pidStart: null, hostname: '?', bootId: null, started: '?', command: '?' };
  }
}

function tryCreate(file: string, info: LockInfo): boolean {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    fs.writeSync(fd, JSON.stringify(info) + '\n');
  } catch (err) {
    // ENOSPC, EDQUOT, EIO: an empty lock would read as held by an unknown run, for ever
    fs.closeSync(fd);
    removeName(file);
    throw err;
  }
  fs.closeSync(fd);
  return true;
}

/**
 * A lock is written the moment it is made: one that cannot be read (empty, half-written) this
 * long after it was made was left by a run killed, or whose write failed, in between. (A lock
 * made by another host over NFS is readable as soon as its maker wrote it.)
 */
const UNREADABLE_LOCK_STALE_MS = 10_000;

/** Why a lock that cannot be read is stale, or null while it may still be being written. */
function unreadableStale(file: string): string | null {
  const st = fs.lstatSync(file, { throwIfNoEntry: false });
  if (!st) return null;
  const age = Date.now() - st.mtimeMs;
  return age > UNREADABLE_LOCK_STALE_MS
    ? `it cannot be read (${st.isFile() ? `${st.size} bytes` : 'not a file'}) and is ${Math.round(age / 1000)} s old`
    : null;
}

/**
 * A takeover guard is held for a read and an unlink, microseconds: one whose holder is gone, or
 * that is unreadable (its holder was killed between create and write) and older than this, was
 * left by a run killed mid-takeover.
 */
const TAKEOVER_STALE_MS = 2_000;

/** Whether `part`'s partial generations belong to the live holder's run (it builds or resumes them). */
export function holderBuilds(holder: LockInfo | null, part: string): boolean {
  if (!holder || !lockConcerns(holder, part)) return false;
  // a lock of an earlier version says no kind (and one of 0.1.0 no parts): its command tells
  return holder.kind ? holder.kind === 'backup' : /\bbackup\b/.test(holder.command);
}

/** Whether the lock's run works on `part`: a lock that names no parts (0.1.0's, an unreadable one) may work on any. */
export function lockConcerns(holder: LockInfo, part: string): boolean {
  return holder.parts ? holder.parts.includes(part) : true;
}

/** Removes the takeover guard when the run that made it is gone. */
function clearStaleGuard(guard: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(guard);
  } catch {
    return; // no guard
  }
  const g = readLock(guard);
  if (!g) return;
  const age = Date.now() - st.mtimeMs;
  // a guard of another host's run cannot be checked by pid: a minute is surely enough there
  const gone = g.pid === -1 ? age > TAKEOVER_STALE_MS : staleReason(g) !== null || age > 60_000;
  if (gone) removeName(guard);
}

/**
 * Removes a stale lock, serialized with other runs that may try the same: 'removed' when this
 * run removed the lock it saw (it alone says so and records the run that left it), 'changed'
 * when that lock is gone or another is there now, 'busy' while another run is taking it over.
 */
function takeOver(file: string, seen: LockInfo): 'removed' | 'changed' | 'busy' {
  const guard = `${file}.takeover`;
  clearStaleGuard(guard);
  if (!tryCreate(guard, currentLockInfo('takeover'))) return 'busy';
  try {
    const now = readLock(file);
    if (!now || JSON.stringify(now) !== JSON.stringify(seen)) return 'changed';
    removeName(file);
    return 'removed';
  } finally {
    removeName(guard);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Takes the lock of a host directory. Without `waitMs` a held lock fails at once with
 * LockedError (exit 3); with it, polls until free or the time is up.
 */
export async function acquireLock(
  hostDirPath: string,
  command: string,
  opts: { waitMs?: number; onWait?: (holder: LockInfo) => void; parts?: string[]; kind?: LockInfo['kind']; signal?: AbortSignal } = {},
): Promise<LockHandle> {
  const dir = path.join(hostDirPath, '.hardsnap');
  ensureSpoolDir(dir);
  const file = path.join(dir, 'lock');
  const info: LockInfo = { ...currentLockInfo(command), ...(opts.parts ? { parts: opts.parts } : {}), ...(opts.kind ? { kind: opts.kind } : {}) };
  const deadline = Date.now() + (opts.waitMs ?? 0);
  let tookOver: LockInfo | null = null;
  let told = false;
  for (;;) {
    if (tryCreate(file, info)) break;
    const holder = readLock(file);
    if (!holder) continue; // released in between
    if (whyStale(file, holder)) {
      const r = takeOver(file, holder);
      if (r === 'removed') tookOver = holder;
      else if (r === 'busy') await sleep(20); // another run is taking it over (or its guard is not stale yet): no busy loop
      continue;
    }
    if (Date.now() >= deadline) {
      throw new LockedError(`another hardsnap run holds the lock of ${hostDirPath}: ${describeHolder(holder)}`, {
        path: file,
        hint: 'wait for it to finish, use --wait, or remove the lock file if you are sure that run is gone',
      });
    }
    if (!told) (opts.onWait?.(holder), (told = true));
    opts.signal?.throwIfAborted();
    await sleep(Math.min(500, Math.max(50, deadline - Date.now())));
    opts.signal?.throwIfAborted();
  }
  return {
    file,
    tookOver,
    release() {
      const cur = readLock(file);
      if (cur && cur.pid === info.pid && cur.started === info.started) removeName(file);
    },
  };
}
