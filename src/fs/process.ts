/**
 * What /proc says about a process: whether it is alive, and its start time (a pid may be
 * reused, the pair is not). Locks, leases, the watch journal and status use them.
 */
import fs from 'node:fs';

/** A /proc file's text, trimmed, or null when it cannot be read. */
export function readProc(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
}

/** This process's pid namespace (`pid:[4026531836]`), or null: pids mean something only within one. */
export function pidNamespace(): string | null {
  try {
    return fs.readlinkSync('/proc/self/ns/pid');
  } catch {
    return null;
  }
}

/** The initial pid namespace (its inode is fixed, PROC_PID_INIT_INO): a process in it sees every process of the kernel. */
export const INIT_PID_NS = 'pid:[4026531836]';

/**
 * The pid, as this process sees it, of the process that is `nsPid` in the pid namespace `pidNs`
 * (a container's, seen from the initial namespace, through /proc/PID/status's NSpid): null when
 * there is none, undefined when that cannot be told (a process whose namespace cannot be read).
 * Called from the initial namespace only.
 */
export function pidInNamespace(pidNs: string, nsPid: number): number | null | undefined {
  let unknown = false;
  for (const name of fs.readdirSync('/proc')) {
    // (pid 1 of the initial namespace, whence this is called, is in that namespace: its link may be closed to root)
    if (!/^\d+$/.test(name) || name === '1') continue;
    let ns: string;
    try {
      ns = fs.readlinkSync(`/proc/${name}/ns/pid`);
    } catch (err) {
      // gone, or a zombie (dead, whatever its namespace was): not a holder; else another user's (EACCES)
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && !isZombie(name)) unknown = true;
      continue;
    }
    if (ns !== pidNs) continue;
    const ids = /^NSpid:\s+(.*)$/m
      .exec(readProc(`/proc/${name}/status`) ?? '')?.[1]
      ?.trim()
      .split(/\s+/);
    if (ids && Number(ids[ids.length - 1]) === nsPid) return isZombie(name) ? null : Number(name); // a zombie is dead
  }
  return unknown ? undefined : null;
}

/** Whether /proc/PID is a zombie (state Z, field 3 of its stat: dead, not yet reaped) or gone. */
export function isZombie(pid: string | number): boolean {
  const stat = readProc(`/proc/${pid}/stat`);
  return stat === null || stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
}

/** The start time of pid (field 22 of /proc/PID/stat, clock ticks since boot), or null. */
export function processStart(pid: number): string | null {
  const stat = readProc(`/proc/${pid}/stat`);
  if (!stat) return null;
  // field 22 (starttime), counted after the ')' that closes the command name
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[19] ?? null;
}

/** Whether pid exists (EPERM: it does, as another user's). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether this process reads and searches every directory whatever its mode: CAP_DAC_READ_SEARCH
 * or CAP_DAC_OVERRIDE in effect (root as usual; not root in a hardened service or container
 * that dropped them, nor any other user). From /proc/self/status; without it, being root.
 */
export function bypassesPermissions(): boolean {
  const status = readProc('/proc/self/status');
  const m = status ? /^CapEff:\s*([0-9a-f]+)$/m.exec(status) : null;
  if (!m) return process.getuid?.() === 0;
  return (BigInt(`0x${m[1]}`) & 0b110n) !== 0n; // bit 1 CAP_DAC_OVERRIDE, bit 2 CAP_DAC_READ_SEARCH
}
