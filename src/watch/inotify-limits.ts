/** The kernel's inotify limits, and what an inotify error means in their terms. */
import { readProc } from '../spool/lock.js';

export interface InotifyLimits {
  maxUserWatches: number | null;
  maxUserInstances: number | null;
}

function num(file: string): number | null {
  const v = readProc(file);
  return v !== null && /^\d+$/.test(v) ? Number(v) : null;
}

export function inotifyLimits(): InotifyLimits {
  return {
    maxUserWatches: num('/proc/sys/fs/inotify/max_user_watches'),
    maxUserInstances: num('/proc/sys/fs/inotify/max_user_instances'),
  };
}

/** A chokidar / fs.watch error as a reason the epoch ended. */
export function limitReason(err: NodeJS.ErrnoException, limits: InotifyLimits): string {
  const at = err.path ? ` at ${err.path}` : '';
  if (err.code === 'ENOSPC') {
    return `inotify watch limit reached${at} (fs.inotify.max_user_watches = ${limits.maxUserWatches ?? 'unknown'}): raise it, e.g. sysctl fs.inotify.max_user_watches=${Math.max(524288, (limits.maxUserWatches ?? 0) * 2)}`;
  }
  if (err.code === 'EMFILE') {
    return `too many inotify instances or open files${at} (fs.inotify.max_user_instances = ${limits.maxUserInstances ?? 'unknown'}, or ulimit -n)`;
  }
  return `watch error${at}: ${err.code ? `${err.code}: ` : ''}${err.message}`;
}
