// The README is a user's first contact: its quick start must run as written, and it must itself
// hold what an operator needs (issue 9), not only links to docs/.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, test } from './helpers/fixture.js';
import { REPO_ROOT } from './helpers/run.js';

const README = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');

/** The shell block that follows `marker` in the README. */
function shellBlockAfter(marker: string): string {
  const at = README.indexOf(marker);
  expect(at, `README has "${marker}"`).toBeGreaterThan(-1);
  const m = /```sh\n([\s\S]*?)```/.exec(README.slice(at));
  expect(m, `a sh block after "${marker}"`).not.toBeNull();
  return m![1]!;
}

describe('README', () => {
  test('the quick start runs as written (from the repository root, its /tmp/hs-demo moved to a temporary directory)', ({ tmp }) => {
    const script = shellBlockAfter('A first backup, a second one');
    expect(script).toContain('/tmp/hs-demo');
    const env = { ...process.env };
    delete env.HARDSNAP_NOW; // the real clock, as on a fresh machine
    const r = spawnSync('bash', ['-euo', 'pipefail', '-c', script.replaceAll('/tmp/hs-demo', path.join(tmp, 'hs-demo'))], {
      cwd: REPO_ROOT, encoding: 'utf8', env,
    });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/^hf +docs\/docs\/a\.txt$/m);
    expect(r.stdout).toMatch(/restored\n$/);
    // ls -li: a.txt is one inode in both generations (and through last)
    const inodes = new Set([...r.stdout.matchAll(/^(\d+) -rw.*\/docs\/a\.txt$/gm)].map((m) => m[1]));
    expect(inodes.size).toBe(1);
  });

  test('the quick start installs and builds with one command and runs every test with another: npm run setup, npm run test:all (what .ci/run runs)', () => {
    const block = shellBlockAfter('## Quick start');
    expect(block.split('\n').map((l) => l.replace(/#.*/, '').trim()).filter(Boolean)).toEqual(['npm run setup', 'npm run test:all']);
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    // setup: the build prerequisites (as root), then npm install; test:all: the rest
    expect(pkg.scripts.setup).toBe('scripts/setup.sh');
    expect(fs.readFileSync(path.join(REPO_ROOT, 'scripts', 'setup.sh'), 'utf8')).toMatch(/^scripts\/prerequisites\.sh --install build\n[\s\S]*^exec npm install /m);
    expect(pkg.scripts['test:all']).toBe('scripts/test-all.sh');
    expect(fs.readFileSync(path.join(REPO_ROOT, '.ci', 'run'), 'utf8')).toMatch(/^exec scripts\/test-all\.sh --clean$/m);
    const all = fs.readFileSync(path.join(REPO_ROOT, 'scripts', 'test-all.sh'), 'utf8');
    expect(all).toMatch(/^scripts\/prerequisites\.sh --install /m);
  });

  test.for([
    ['what it is and why', /^## Why$/m],
    ['the spool layout', /^## The spool$[\s\S]*last -> /m],
    ['a cron example', /```cron\n[\s\S]*hardsnap backup/],
    ['a systemd service and timer', /\[Service\][\s\S]*ExecStart=\S*hardsnap backup[\s\S]*\[Timer\][\s\S]*OnCalendar=/],
    ['a BlueMind-style post-backup hook', /BlueMind[\s\S]*hooks:\n[\s\S]*post:[\s\S]*HARDSNAP_STATUS/],
    ['how a third-party backup system picks up last, and why link() changes ctime', /third-party[\s\S]*`link\(\)`[\s\S]*ctime[\s\S]*Bacula/],
    ['exit codes', /^## Exit codes$[\s\S]*\| 23 \|[\s\S]*\| 24 \|/m],
    ['restore recipes', /^## Restore recipes$[\s\S]*restore [\s\S]*--all[\s\S]*--path/m],
  ] as const)('holds %s itself', ([, re]) => {
    expect(README).toMatch(re);
  });
});
