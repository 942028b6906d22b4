// The libuv thread pool: links, copies and directory set-ups of a backup run there, many in
// flight. Its size only takes effect when set before the pool first runs. bin/hardsnap loads
// the program without using the pool (require(), not import(), which reads an ES module through
// the pool: every run then had libuv's 4 threads, and a 10,000-file incremental on latencyfs took
// 3x as long); the backup command then sizes it for the file systems of its spool and sources
// (src/fs/thread-pool.ts): 16 threads on network and FUSE file systems, fewer on local ones.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from './helpers/fixture.js';
import { makeTree } from './helpers/tree.js';
import { BIN, REPO_ROOT, spawnHardsnap, waitFor } from './helpers/run.js';
import { assertNobodyCanRun, nodeForNobody } from './helpers/robust.js';
import { SHARED_DIR } from './helpers/bench-tree.js';
import { localPoolSize, poolSizeFor, REMOTE_POOL_SIZE } from '../src/fs/thread-pool.js';
import { SCAN_PARALLEL, SCAN_XATTR, sys } from '../src/fs/native.js';
import { linksDiff, rsyncDiff } from './helpers/oracle.js';
import { hardsnap } from './helpers/run.js';
import { makeSpool } from './helpers/spool.js';

/** A thread's scheduling policy (field 41 of /proc/PID/task/TID/stat): 0 normal, 3 batch. */
function policyOf(pid: number, tid: string): number {
  const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[41 - 3]);
}

interface Threads {
  count: number;
  /** how many run SCHED_BATCH */
  batch: number;
  /** the main thread's policy */
  main: number;
}

let runs = 0;

/** Threads of a backup held at the before-publish test seam (the pool has run by then). */
async function threadsOfPausedRun(
  tmp: string,
  env: Record<string, string | undefined>,
  spool = path.join(tmp, `spool-${runs}`),
  bin?: string,
): Promise<Threads> {
  const src = path.join(tmp, `src-${runs++}`);
  makeTree(src, { 'a.txt': 'a', 'b/c.txt': 'c' });
  const child = spawnHardsnap(['backup', '--spool', makeSpool(spool), '--host', 'h1', '--part', `data=${src}`], {
    env: { HARDSNAP_NOW: '2026-01-01T03:00:00Z', HARDSNAP_TEST_PAUSE_AT: 'before-publish', HARDSNAP_TEST_PAUSE_MS: '30000', ...env },
    bin,
  });
  try {
    await waitFor(() => child.out.stderr.includes('test pause at before-publish'), 30_000, 10, 'the run to pause');
    const tids = fs.readdirSync(`/proc/${child.pid}/task`);
    const policies = tids.map((t) => policyOf(child.pid!, t));
    return { count: tids.length, batch: policies.filter((p) => p === 3).length, main: policyOf(child.pid!, String(child.pid)) };
  } finally {
    child.killGroup('SIGKILL');
    await child.exited;
  }
}

/** The pool threads of a paused run: its threads less those of a run with a pool of one. */
async function poolThreads(tmp: string, env: Record<string, string | undefined>, spool?: string, bin?: string): Promise<number> {
  const base = (await threadsOfPausedRun(tmp, { UV_THREADPOOL_SIZE: '1' }, spool, bin)).count - 1;
  return (await threadsOfPausedRun(tmp, env, spool, bin)).count - base;
}

/** A script that runs bin/hardsnap through `prefix` (which must exec it: the pid stays). */
function wrapper(tmp: string, name: string, prefix: string): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, `#!/bin/sh\nexec ${prefix} '${BIN}' "$@"\n`, { mode: 0o755 });
  return file;
}

// the tests must not inherit a size from the environment they run in
const unset = { UV_THREADPOOL_SIZE: undefined };

/** latencyfs (../shared/bench) mounted over a backing directory with no delay, or why not. */
function mountFuse(tmp: string, delayUs = 0): { mnt: string; back: string; unmount: () => void } | string {
  if (process.getuid?.() !== 0) return 'not root: cannot mount a FUSE file system';
  if (!fs.existsSync('/dev/fuse')) return 'no /dev/fuse';
  const bin = path.join(tmp, 'latencyfs');
  const cc = spawnSync('sh', ['-c', `cc -O2 -o '${bin}' '${path.join(SHARED_DIR, 'bench', 'latencyfs.c')}' $(pkg-config --cflags --libs fuse3)`], {
    encoding: 'utf8',
  });
  if (cc.status !== 0) return `cannot build latencyfs (libfuse3-dev, pkg-config): ${cc.stderr.trim().split('\n')[0]}`;
  const back = path.join(tmp, 'back');
  const mnt = path.join(tmp, 'mnt');
  fs.mkdirSync(back);
  fs.mkdirSync(mnt);
  const m = spawnSync(bin, [back, mnt, String(delayUs)], { encoding: 'utf8' });
  if (m.status !== 0) return `cannot mount latencyfs: ${m.stderr.trim()}`;
  return { mnt, back, unmount: () => void spawnSync('fusermount3', ['-u', mnt]) };
}

describe('the libuv thread pool', () => {
  test('a backup between local file systems gets the local size (cores + 2, at least 4), not 16', async ({ tmp }) => {
    expect(await poolThreads(tmp, unset)).toBe(localPoolSize());
    expect(localPoolSize()).toBeLessThan(REMOTE_POOL_SIZE + 1);
  });

  test('a backup whose spool is on a FUSE file system gets 16 threads', async ({ tmp, skip }) => {
    const m = mountFuse(tmp);
    if (typeof m === 'string') return skip(m);
    try {
      expect(await poolThreads(tmp, unset, path.join(m.mnt, 'spool'))).toBe(REMOTE_POOL_SIZE);
    } finally {
      m.unmount();
    }
  });

  test.runIf(process.getuid?.() === 0)(
    'a user whose process limit (ulimit -u) has no room for the pool: a smaller pool, said once, and a backup and a restore that run (libuv aborted them: exit 134, no line, no record, the lock left)',
    ({ tmp }) => {
      assertNobodyCanRun(REPO_ROOT);
      fs.chmodSync(tmp, 0o755);
      const src = path.join(tmp, 'src');
      makeTree(src, { 'a.txt': 'a', 'd/b.txt': 'b' });
      for (const d of [src, path.join(src, 'd')]) fs.chmodSync(d, 0o755);
      const spool = makeSpool(path.join(tmp, 'spool'));
      // a user no other test runs as: RLIMIT_NPROC counts every thread of the user's processes,
      // and other test files run at the same time (nobody's threads come and go)
      const uid = 4299;
      const asUser = [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--'];
      execFileSync('chown', ['-R', `${uid}:${uid}`, spool]);
      // the threads that user runs already and room for 8 more: node's own ~7 and one pool
      // thread, not libuv's 4
      const used = Number(execFileSync('sh', ['-c', `ps -L -u ${uid} --no-headers | wc -l`], { encoding: 'utf8' }).trim());
      const run = (args: string[], day: string) =>
        spawnSync('setpriv', [...asUser, 'prlimit', `--nproc=${used + 8}`, nodeForNobody(), BIN, ...args], {
          cwd: '/',
          encoding: 'utf8',
          env: { ...process.env, UV_THREADPOOL_SIZE: undefined, HARDSNAP_NOW: day },
        });
      const b = run(['backup', '--verbose', '--spool', spool, '--host', 'h', '--part', `p=${src}`], '2026-01-01T03:00:00Z');
      expect(b.status, b.stderr).toBe(0);
      expect(b.stderr).toMatch(/the process limit \(ulimit -u \d+\) leaves room for \d+ threads? in the I\/O pool only/);
      const to = path.join(tmp, 'restored');
      fs.mkdirSync(to);
      fs.chownSync(to, uid, uid);
      const r = run(['restore', '--spool', spool, '--host', 'h', '--part', 'p', '--to', path.join(to, 'p')], '2026-01-02T03:00:00Z');
      expect(r.status, r.stderr).toBe(0);
      expect(fs.readFileSync(path.join(to, 'p', 'd', 'b.txt'), 'utf8')).toBe('b');
      // at the edge (room for node's own threads, not one more): refused in one line, never an abort
      for (const more of [7, 8]) {
        const e = spawnSync(
          'setpriv',
          [...asUser, 'prlimit', `--nproc=${used + more}`, nodeForNobody(), BIN, 'backup', '--spool', spool, '--host', 'h', '--part', `p=${src}`],
          {
            cwd: '/',
            encoding: 'utf8',
            env: { ...process.env, UV_THREADPOOL_SIZE: undefined, HARDSNAP_NOW: `2026-01-0${more - 4}T03:00:00Z` },
          },
        );
        expect([0, 2], `${more}: ${e.status} ${e.signal} ${e.stderr}`).toContain(e.status);
        if (e.status === 2) expect(e.stderr).toMatch(/the process limit \(ulimit -u \d+\) leaves no room for one more thread/);
      }
    },
  );

  test('UV_THREADPOOL_SIZE set by the user wins', async ({ tmp }) => {
    expect(await poolThreads(tmp, { UV_THREADPOOL_SIZE: '40' })).toBe(40);
  });

  test('the size for file system types: network and FUSE 16, local between 4 and 16 by cores', () => {
    const [ext4, tmpfs, xfs, nfs, fuse, cifs, smb2, ceph] = [0xef53, 0x01021994, 0x58465342, 0x6969, 0x65735546, 0xff534d42, 0xfe534d42, 0x00c36400];
    expect(poolSizeFor([ext4, tmpfs, xfs], 2)).toBe(4);
    for (const remote of [nfs, fuse, cifs, smb2, ceph]) expect(poolSizeFor([ext4, remote], 2)).toBe(16);
    expect([1, 2, 4, 8, 14, 64].map((c) => localPoolSize(c))).toEqual([4, 4, 6, 10, 16, 16]);
    expect(poolSizeFor([], 2)).toBe(4);
  });

  test("pool threads that ran hardsnap's jobs are SCHED_BATCH (they never preempt the main thread), the main thread is not", async ({ tmp }) => {
    const t = await threadsOfPausedRun(tmp, { UV_THREADPOOL_SIZE: '4' });
    expect(t.batch).toBeGreaterThan(0);
    expect(t.batch).toBeLessThanOrEqual(4);
    expect(t.main).toBe(0);
  });

  test('a backup run under SCHED_IDLE (chrt -i 0) keeps it in every thread: nothing is raised to SCHED_BATCH', async ({ tmp, skip }) => {
    if (spawnSync('chrt', ['-i', '0', 'true']).status !== 0) return skip('chrt (util-linux) cannot set SCHED_IDLE here');
    const t = await threadsOfPausedRun(tmp, { UV_THREADPOOL_SIZE: '4' }, undefined, wrapper(tmp, 'idle-hardsnap', 'chrt -i 0'));
    expect(t.main).toBe(5);
    expect(t.batch).toBe(0);
  });

  test('a Node.js without require() of ES modules loads the program with import() and keeps the 16 threads of old', async ({ tmp }) => {
    const bin = wrapper(tmp, 'esm-hardsnap', `'${process.execPath}' --single-threaded-gc --no-experimental-require-module`);
    expect(await poolThreads(tmp, unset, undefined, bin)).toBe(REMOTE_POOL_SIZE);
  });
});

/** A directory of `n` entries of every kind: files (some with attributes), symlinks, directories, a FIFO, a name that is not UTF-8. */
function crowdedDir(dir: string, n: number): void {
  fs.mkdirSync(dir, { recursive: true });
  for (let i = 0; i < n; i++) {
    const name = path.join(dir, `e${String(i).padStart(4, '0')}`);
    if (i % 10 === 3) fs.symlinkSync(`target-${i}`, name);
    else if (i % 10 === 5) fs.mkdirSync(name);
    else fs.writeFileSync(name, 'x'.repeat(i));
    if (i % 7 === 0 && i % 10 !== 3) spawnSync('setfattr', ['-n', 'user.k', '-v', `v${i}`, name]);
  }
  spawnSync('mkfifo', [path.join(dir, 'fifo')]);
  fs.writeFileSync(Buffer.concat([Buffer.from(`${dir}/`), Buffer.from([0xff, 0x41])]), 'not utf-8');
}

/**
 * The threads that stat-ed the entries of the source directory whose names start with
 * `entryPrefix` during `hardsnap ARGS` (strace; the descriptor with the most such stats is the
 * source directory's: the spool's side stats a few of its new entries too).
 */
function statThreads(tmp: string, args: string[], entryPrefix: string): Set<string> {
  const out = path.join(tmp, `strace-${++runs}`);
  const r = spawnSync('strace', ['-f', '-qq', '-e', 'trace=newfstatat', '-o', out, BIN, ...args], {
    env: { ...process.env, HARDSNAP_NOW: '2026-01-02T03:00:00Z', UV_THREADPOOL_SIZE: undefined },
    encoding: 'utf8',
  });
  expect(r.status, r.stderr).toBe(0);
  const byFd = new Map<string, Set<string>>();
  const count = new Map<string, number>();
  for (const l of fs.readFileSync(out, 'utf8').split('\n')) {
    const m = new RegExp(`^(\\d+) +newfstatat\\((\\d+), "${entryPrefix}`).exec(l);
    if (!m) continue;
    if (!byFd.has(m[2]!)) byFd.set(m[2]!, new Set());
    byFd.get(m[2]!)!.add(m[1]!);
    count.set(m[2]!, (count.get(m[2]!) ?? 0) + 1);
  }
  const fd = [...count.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
  expect(fd, 'the source directory was stat-ed').toBeDefined();
  expect(count.get(fd!)).toBeGreaterThanOrEqual(300);
  return byFd.get(fd!)!;
}

describe('a source on a file system where each stat is a round trip (NFS, FUSE)', () => {
  test('scandir with SCAN_PARALLEL gives the same records, in the same order, as without: every kind of entry, attributes, a skip list', ({ tmp }) => {
    const dir = path.join(tmp, 'd');
    crowdedDir(dir, 600);
    const fd = sys.openat(sys.AT_FDCWD, dir, sys.O_RDONLY | sys.O_DIRECTORY, 0);
    try {
      const x = SCAN_XATTR.OTHER | SCAN_XATTR.FILES;
      for (const cmin of [-Infinity, 0, Date.now() / 1000 + 60]) {
        const serial = sys.scandir(fd, x, cmin) as Buffer;
        const parallel = sys.scandir(fd, x | SCAN_PARALLEL, cmin) as Buffer;
        expect(Buffer.isBuffer(serial) && serial.length > 600 * 96).toBe(true);
        expect(parallel.equals(serial), `ctimeMin ${cmin}`).toBe(true);
      }
      const skip = Buffer.concat(['e0007', 'e0100', 'fifo'].map((n) => Buffer.concat([Buffer.from([n.length, 0]), Buffer.from(n)])));
      expect((sys.scandir(fd, x | SCAN_PARALLEL, 0, skip) as Buffer).equals(sys.scandir(fd, x, 0, skip) as Buffer)).toBe(true);
      // a small directory, and one whose entries vanished: the same
      expect((sys.scandir(fd, SCAN_PARALLEL) as Buffer).equals(sys.scandir(fd) as Buffer)).toBe(true);
    } finally {
      sys.close(fd);
    }
  });

  test.runIf(spawnSync('strace', ['-V']).status === 0)(
    'the entries of one directory on FUSE are stat-ed by several threads at once, a local one by one thread; both generations are exact',
    ({ tmp, skip }) => {
      const m = mountFuse(tmp, 200);
      if (typeof m === 'string') return skip(m);
      try {
        const fuseSrc = path.join(m.mnt, 'src');
        crowdedDir(path.join(m.back, 'src', 'big'), 300);
        const localSrc = path.join(tmp, 'local-src');
        crowdedDir(path.join(localSrc, 'big'), 300);
        const spool = makeSpool(path.join(tmp, 'spool'));
        const onFuse = statThreads(tmp, ['backup', '--spool', spool, '--host', 'h1', '--part', `f=${fuseSrc}`], 'e0');
        expect(onFuse.size).toBeGreaterThan(2);
        const local = statThreads(tmp, ['backup', '--spool', spool, '--host', 'h1', '--part', `l=${localSrc}`], 'e0');
        expect(local.size).toBe(1);
        for (const [part, src] of [
          ['f', fuseSrc],
          ['l', localSrc],
        ] as const) {
          const last = path.join(spool, 'rsync', 'h1', part, 'last');
          expect(rsyncDiff(src, fs.realpathSync(last)), part).toEqual([]);
          expect(linksDiff(src, fs.realpathSync(last)), part).toEqual([]);
        }
        expect(hardsnap(['verify', '--spool', spool, '--host', 'h1']).code).toBe(0);
      } finally {
        m.unmount();
      }
    },
  );
});
