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
