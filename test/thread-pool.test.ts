// bin/hardsnap sizes libuv's thread pool (links and copies run there, many in flight, to hide
// spool latency). The size only takes effect when set before the pool first runs; an ES-module
// entry point is read through the pool before its first line runs, so the setting came too late
// and every run had 4 threads (a 10,000-file incremental on latencyfs took 3x as long).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from './helpers/fixture.js';
import { makeTree } from './helpers/tree.js';
import { spawnHardsnap, waitFor } from './helpers/run.js';

/** Threads of a backup held at the before-publish test seam (the pool has run by then). */
async function threadsOfPausedRun(tmp: string, env: Record<string, string>): Promise<number> {
  const src = path.join(tmp, 'src');
  makeTree(src, { 'a.txt': 'a', 'b/c.txt': 'c' });
  const spool = path.join(tmp, `spool-${Object.keys(env).length}`);
  const child = spawnHardsnap(['backup', '--spool', spool, '--host', 'h1', '--part', `data=${src}`], {
    env: { HARDSNAP_NOW: '2026-01-01T03:00:00Z', HARDSNAP_TEST_PAUSE_AT: 'before-publish', HARDSNAP_TEST_PAUSE_MS: '30000', ...env },
  });
  try {
    await waitFor(() => child.out.stderr.includes('test pause at before-publish'), 30_000, 10, 'the run to pause');
    return fs.readdirSync(`/proc/${child.pid}/task`).length;
  } finally {
    child.killGroup('SIGKILL');
    await child.exited;
  }
}

describe('the libuv thread pool', () => {
  test('a backup runs with the 16 pool threads bin/hardsnap asks for, not libuv\'s default 4', async ({ tmp }) => {
    const env: Record<string, string> = {};
    // the test must not inherit a size from the environment it runs in
    if (process.env.UV_THREADPOOL_SIZE !== undefined) env.UV_THREADPOOL_SIZE = '16';
    expect(await threadsOfPausedRun(tmp, env)).toBeGreaterThan(16);
  });

  test('UV_THREADPOOL_SIZE set by the user wins', async ({ tmp }) => {
    expect(await threadsOfPausedRun(tmp, { UV_THREADPOOL_SIZE: '40' })).toBeGreaterThan(40);
  });
});
