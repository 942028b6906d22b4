/** The kernel's inotify limits, and what an inotify error means in their terms. */
import { readProc } from '../fs/process.js';

export interface InotifyLimits {
  maxUserWatches: number | null;
  maxUserInstances: number | null;
}

function num(file: string): number | null {
  const v = readProc(file);
  return v !== null && /^\d+$/.test(v) ? Number(v) : null;
}

/** The smaller of two limits, either of which may be unknown. */
function least(a: number | null, b: number | null): number | null {
  return a === null ? b : b === null ? a : Math.min(a, b);
}

/**
 * The limits that apply to this process: the global sysctls, and the per-user-namespace ones
 * (/proc/sys/user/, lower inside a container) when they are lower.
 */
export function inotifyLimits(): InotifyLimits {
  return {
    maxUserWatches: least(num('/proc/sys/fs/inotify/max_user_watches'), num('/proc/sys/user/max_inotify_watches')),
    maxUserInstances: least(num('/proc/sys/fs/inotify/max_user_instances'), num('/proc/sys/user/max_inotify_instances')),
  };
}

/** A chokidar / fs.watch error as a reason the epoch ended. */
export function limitReason(err: NodeJS.ErrnoException, limits: InotifyLimits): string {
  const at = err.path ? ` at ${err.path}` : '';
  if (err.code === 'ENOSPC') {
    return `inotify watch limit reached${at} (max_user_watches = ${limits.maxUserWatches ?? 'unknown'}): raise it, e.g. sysctl fs.inotify.max_user_watches=${Math.max(524288, (limits.maxUserWatches ?? 0) * 2)}`;
  }
  if (err.code === 'EMFILE') {
    return `too many inotify instances or open files${at} (fs.inotify.max_user_instances = ${limits.maxUserInstances ?? 'unknown'}, or ulimit -n)`;
  }
  return `watch error${at}: ${err.code ? `${err.code}: ` : ''}${err.message}`;
}
