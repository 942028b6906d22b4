// What building and testing need from Debian is one list, scripts/prerequisites, read by
// scripts/prerequisites.sh (npm run setup, npm run test:all, .ci/run, scripts/prebuild.sh) and
// by the tests' global setup. A machine without a tool gets one line naming it and the
// apt-get command, not dozens of failing tests ('spawnSync rsync ENOENT', issue 23).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, test } from './helpers/fixture.js';
import { REPO_ROOT } from './helpers/run.js';

const LIST = path.join(REPO_ROOT, 'scripts', 'prerequisites');
const entries = fs
  .readFileSync(LIST, 'utf8')
  .split('\n')
  .filter((l) => l.trim() && !l.startsWith('#'))
  .map((l) => {
    const [group, tool, pkg] = l.trim().split(/\s+/);
    return { group: group!, tool: tool!, pkg: pkg! };
  });

const isRoot = process.getuid?.() === 0;

/**
 * `script` run by sh in a mount namespace where each of `hide` (commands) is /dev/null, which is
 * not executable: a machine without them. With `asNobody`, as root the script runs as nobody
 * (not root: prerequisites.sh --install names what is missing instead of installing it).
 */
function withoutTools(hide: string[], script: string, asNobody = false) {
  const binds = hide.map((t) => `mount --bind /dev/null "$(command -v ${t})"`).join(' && ');
  const user = isRoot && asNobody ? 'setpriv --reuid=65534 --regid=65534 --clear-groups --reset-env ' : '';
  return spawnSync('unshare', [isRoot ? '-m' : '-rm', 'sh', '-c', `${binds} && cd '${REPO_ROOT}' && ${user}env PATH="$PATH" HOME=/tmp ${script}`], {
    encoding: 'utf8',
    timeout: 120_000,
  });
}

describe('scripts/prerequisites', () => {
  test('every line names a group (build, test, pack), a tool and a Debian package that exists', () => {
    expect(entries.length).toBeGreaterThan(20);
    for (const e of entries) {
      expect(['build', 'test', 'pack'], `${e.tool}`).toContain(e.group);
      expect(e.pkg, `${e.tool}`).toMatch(/^[a-z0-9][a-z0-9+.-]+$/);
    }
    // the metadata, tape and file-system work needs these; the test group must hold them
    const testTools = entries.filter((e) => e.group === 'test').map((e) => e.tool);
    expect(testTools).toEqual(
      expect.arrayContaining([
        'rsync',
        'setfacl',
        'getfacl',
        'setfattr',
        'getfattr',
        'setcap',
        'getcap',
        'restic',
        'tar',
        'mkfs.xfs',
        'mkfs.btrfs',
        'mkfs.ext4',
        'mkfs.vfat',
        'fusermount3',
        'script',
        'unshare',
      ]),
    );
    const pkgs = [...new Set(entries.map((e) => e.pkg))];
    const r = spawnSync('apt-cache', ['show', '--no-all-versions', ...pkgs], { encoding: 'utf8' });
    const known = new Set([...r.stdout.matchAll(/^Package: (\S+)$/gm)].map((m) => m[1]));
    expect(
      pkgs.filter((p) => !known.has(p)),
      r.stderr,
    ).toEqual([]);
  });

  test('this machine has every tool of the list (what CI and the global setup require)', () => {
    const r = spawnSync(path.join(REPO_ROOT, 'scripts', 'prerequisites.sh'), [], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  test('a machine without rsync and setfacl: one line naming them and their packages, exit 1 (not as root: nothing installed)', () => {
    const r = withoutTools(['rsync', 'setfacl'], 'scripts/prerequisites.sh --install', true);
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('hardsnap: missing rsync, setfacl: as root, apt-get install rsync acl\n');
    // a group without them passes
    expect(withoutTools(['rsync', 'setfacl'], 'scripts/prerequisites.sh build', true).status).toBe(0);
  });

  test('npm test on a machine without rsync stops before the first test with that line, not with spawnSync rsync ENOENT', () => {
    const r = withoutTools(['rsync'], 'node_modules/.bin/vitest run test/time.test.ts');
    expect(r.status).toBe(1);
    const out = `${r.stdout}${r.stderr}`;
    expect(out).toMatch(/^hardsnap: missing rsync: as root, apt-get install rsync; or, as root, `npm run test:all` installs them and runs every test$/m);
    expect(out).not.toMatch(/ENOENT|Tests +\d+ passed/);
  });
});
