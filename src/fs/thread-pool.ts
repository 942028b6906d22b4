/**
 * How many libuv pool threads a backup gets. Links, copies and directory set-ups run there, many
 * in flight (src/apply/build-tree.ts). Where every operation is a network round trip (NFS, SMB,
 * FUSE, ...) many threads hide the latency: 16 made a 10,000-file incremental on latencyfs 3x
 * faster than libuv's default 4. On a local disk the kernel work is CPU-bound, and threads
 * beyond the cores only sleep and wake for every job: on a 2-core machine a 100,000-file
 * incremental took 1.70-1.77 s with 4 threads against 1.88-1.97 s with 16 (docs/PERFORMANCE.md).
 * Fewer than the cores plus two is faster only while the metadata is cached: with 2 threads on
 * 2 cores the warm incremental was ~8% faster, the same run after `drop_caches` 11-16% slower
 * (DESIGN.md, "The price of the previous generation as evidence").
 *
 * libuv reads UV_THREADPOOL_SIZE when its pool first runs, so this must be called before then
 * (bin/hardsnap loads the program without using the pool). A size the user set wins.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HardsnapError } from '../core/errors.js';

/** statfs f_type of file systems whose operations are network (or user-space) round trips */
const REMOTE_TYPES = new Set([
  0x6969, // NFS
  0x517b, // SMB
  0xff534d42, // CIFS
  0xfe534d42, // SMB2
  0x65735546, // FUSE (sshfs, GlusterFS, s3fs, latencyfs, ...)
  0x00c36400, // Ceph
  0x5346414f, // AFS
  0x01021997, // 9P
  0x73757245, // Coda
  0x01161970, // GFS2
  0x7461636f, // OCFS2
  0x0bd00bd0, // Lustre
  0x13661366, // OrangeFS
  0x47504653, // GPFS
]);

export const REMOTE_POOL_SIZE = 16;

/** On local file systems: the cores and two more, between 4 and 16. */
export function localPoolSize(cores = os.availableParallelism()): number {
  return Math.min(16, Math.max(4, cores + 2));
}

/** Whether a file system of this statfs type makes each operation a round trip (NFS, FUSE, ...). */
export function isRemoteFsType(type: number): boolean {
  return REMOTE_TYPES.has(type);
}

/** The pool size for paths on file systems of these statfs types. */
export function poolSizeFor(types: number[], cores?: number): number {
  return types.some(isRemoteFsType) ? REMOTE_POOL_SIZE : localPoolSize(cores);
}

/** libuv's own default pool size */
const LIBUV_DEFAULT = 4;
/** threads (and processes: hooks, a watcher's backups) left to start besides the pool */
const HEADROOM_RESERVE = 2;

/** Whether UV_THREADPOOL_SIZE was set by limitPoolToHeadroom (not by the user). */
let setByHeadroom = false;

/**
 * RLIMIT_NPROC (`ulimit -u`) counts every thread of the user's processes, and libuv aborts the
 * process (exit 134: no message, no record, the lock left) when it cannot start its pool. The
 * number of threads this process may still start, or null when nothing limits it (root, an
 * unlimited or unreadable limit). Counted from /proc: the user's threads in every process.
 */
export function threadHeadroom(): { headroom: number; limit: number } | null {
  const uid = process.getuid?.();
  if (uid === undefined || uid === 0) return null;
  let limit: number;
  try {
    const m = /^Max processes\s+(\S+)/m.exec(fs.readFileSync('/proc/self/limits', 'latin1'));
    if (!m || m[1] === 'unlimited') return null;
    limit = Number(m[1]);
    if (!Number.isFinite(limit)) return null;
  } catch {
    return null;
  }
  // every task of the machine (/proc/loadavg's "running/total") leaves room enough: no scan (a
  // user's usual limit is tens of thousands)
  try {
    const total = Number(fs.readFileSync('/proc/loadavg', 'latin1').split(' ')[3]?.split('/')[1]);
    if (Number.isFinite(total) && limit - total > 1024) return null;
  } catch {
    // scan below
  }
  let used = 0;
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let status: string;
    try {
      status = fs.readFileSync(`/proc/${pid}/status`, 'latin1');
    } catch {
      continue; // gone meanwhile
    }
    const u = /^Uid:\s+(\d+)/m.exec(status);
    if (!u || Number(u[1]) !== uid) continue;
    used += Number(/^Threads:\s+(\d+)/m.exec(status)?.[1] ?? 1);
  }
  return { headroom: limit - used, limit };
}

/** `n`, or fewer threads when the process limit leaves no room for n (at least one); `room`: whether one can start at all. */
function fitToHeadroom(n: number): { size: number; limit: number | null; room: boolean } {
  const h = threadHeadroom();
  if (!h || h.headroom - HEADROOM_RESERVE >= n) return { size: n, limit: null, room: true };
  return { size: Math.max(1, h.headroom - HEADROOM_RESERVE), limit: h.limit, room: h.headroom >= 1 };
}

/**
 * At start-up, before anything runs on the pool: libuv's default of 4 threads, fewer when the
 * process limit leaves no room for them (unless UV_THREADPOOL_SIZE is set). Returns the limit
 * when it made the pool smaller.
 */
export function limitPoolToHeadroom(): number | null {
  if (process.env.UV_THREADPOOL_SIZE !== undefined) return null;
  const { size, limit } = fitToHeadroom(LIBUV_DEFAULT);
  if (limit === null) return null;
  process.env.UV_THREADPOOL_SIZE = String(size);
  setByHeadroom = true;
  return limit;
}

/**
 * Sizes the pool for a run over these paths (the spool and the sources), unless the user set
 * UV_THREADPOOL_SIZE; returns the size chosen (and the process limit when that made it
 * smaller), or null when the user's stands.
 */
export function sizeThreadPool(paths: string[]): { size: number; limit: number | null } | null {
  if (process.env.UV_THREADPOOL_SIZE !== undefined && !setByHeadroom) return null;
  const types = paths.flatMap((p) => {
    const t = statfsType(p);
    return t === null ? [] : [t];
  });
  const fit = fitToHeadroom(poolSizeFor(types));
  // not one thread more: libuv would abort (exit 134, no line, the lock left)
  if (!fit.room)
    throw new HardsnapError('ENPROC', `the process limit (ulimit -u ${fit.limit}) leaves no room for one more thread: refusing to start the backup`, {
      exit: 2,
      hint: "raise the user's process limit (ulimit -u, limits.conf, systemd's TasksMax/LimitNPROC)",
    });
  process.env.UV_THREADPOOL_SIZE = String(fit.size);
  return { size: fit.size, limit: fit.limit };
}

/** f_type of the file system a path is on (of its nearest existing ancestor: a spool not made yet). */
function statfsType(p: string): number | null {
  let at = path.resolve(p);
  for (;;) {
    try {
      return fs.statfsSync(at).type;
    } catch {
      const up = path.dirname(at);
      if (up === at) return null;
      at = up;
    }
  }
}
