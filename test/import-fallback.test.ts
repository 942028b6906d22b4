// Node.js 21 and 22 before 22.12 (and 20 before 20.19, below `engines`) cannot require() an ES
// module: bin/hardsnap then loads the program with import() and sets a thread pool of 16
// itself. No Node.js that runs vitest takes that path, so this test runs bin/hardsnap on
// Node.js 22.11, the last such version, from the npm registry, through the acceptance smoke test.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, test } from './helpers/fixture.js';
import { SHARED_DIR } from './helpers/bench-tree.js';
import { registryNode } from './helpers/node-dist.js';
import { BIN, REPO_ROOT } from './helpers/run.js';

describe('bin/hardsnap on Node.js 22.11 (no require() of ES modules)', () => {
  test('falls back to import(): no warning, and ../shared/check/smoke.sh 300 passes', () => {
    const dir = registryNode('22.11.0');
    const env = { ...process.env, PATH: `${dir}:${process.env.PATH}`, HARDSNAP_NOW: undefined };
    // the premise: this Node.js cannot require() the bundle, so the fallback is what runs
    const probe = spawnSync(
      path.join(dir, 'node'),
      ['-e', 'try { require(process.argv[1]); } catch (e) { console.log(e.code); }', path.join(REPO_ROOT, 'dist', 'bundle', 'hardsnap.js')],
      { encoding: 'utf8' },
    );
    expect(probe.stdout.trim()).toBe('ERR_REQUIRE_ESM');
    const v = spawnSync(BIN, ['--version'], { encoding: 'utf8', env });
    expect(v.stderr).toBe('');
    expect(v.status).toBe(0);
    const r = spawnSync(path.join(SHARED_DIR, 'check', 'smoke.sh'), ['300'], { cwd: REPO_ROOT, encoding: 'utf8', env, timeout: 300_000 });
    expect(
      r.stdout.split('\n').filter((l) => l.startsWith('FAIL')),
      `${r.stdout}${r.stderr}`,
    ).toEqual([]);
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
  });
});
