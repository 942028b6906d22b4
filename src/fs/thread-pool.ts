/**
 * How many libuv pool threads a backup gets. Links, copies and directory set-ups run there, many
 * in flight (src/apply/build-tree.ts). Where every operation is a network round trip (NFS, SMB,
 * FUSE, ...) many threads hide the latency: 16 made a 10,000-file incremental on latencyfs 3x
 * faster than libuv's default 4. On a local disk the kernel work is CPU-bound, and threads
 * beyond the cores only sleep and wake for every job: on a 2-core machine a 100,000-file
 * incremental took 1.70-1.77 s with 4 threads against 1.88-1.97 s with 16 (docs/PERFORMANCE.md).
 *
 * libuv reads UV_THREADPOOL_SIZE when its pool first runs, so this must be called before then
 * (bin/hardsnap loads the program without using the pool). A size the user set wins.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

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

/**
 * Sizes the pool for a run over these paths (the spool and the sources), unless
 * UV_THREADPOOL_SIZE is set already; returns the size chosen, or null when the user's stands.
 */
export function sizeThreadPool(paths: string[]): number | null {
  if (process.env.UV_THREADPOOL_SIZE !== undefined) return null;
  const types = paths.flatMap((p) => {
    const t = statfsType(p);
    return t === null ? [] : [t];
  });
  const n = poolSizeFor(types);
  process.env.UV_THREADPOOL_SIZE = String(n);
  return n;
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
