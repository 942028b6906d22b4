// The project's acceptance smoke test, ../shared/check/smoke.sh 1000: four generations of a
// mail-spool-like tree with hostile names, each checked by rsync and links.py, inode sharing
// with the day before, `last`, `list --json` and a restore round trip. scripts/test-all.sh runs
// this file on every Node.js it tests: bin/hardsnap runs on the Node.js that runs the tests.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, test } from './helpers/fixture.js';
import { SHARED_DIR } from './helpers/bench-tree.js';
import { REPO_ROOT } from './helpers/run.js';

describe('../shared/check/smoke.sh', () => {
  test(`passes on this Node.js (${process.version})`, () => {
    const r = spawnSync(path.join(SHARED_DIR, 'check', 'smoke.sh'), ['1000'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 300_000,
      env: { ...process.env, PATH: `${path.dirname(process.execPath)}:${process.env.PATH}`, HARDSNAP_NOW: undefined },
    });
    expect(
      r.stdout.split('\n').filter((l) => l.startsWith('FAIL')),
      `${r.stdout}${r.stderr}`,
    ).toEqual([]);
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
  });
});
