// The package as a user gets it: `npm pack`, `npm install -g` of the tarball into a temporary
// prefix (the native module builds at install), then the installed `hardsnap` runs a backup.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, test } from './helpers/fixture.js';
import { REPO_ROOT } from './helpers/run.js';
import { makeTree } from './helpers/tree.js';

function sh(cmd: string, args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) {
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd ?? REPO_ROOT, encoding: 'utf8', timeout: 180_000,
    env: { ...process.env, npm_config_nodedir: fs.existsSync('/usr/include/node/node_api.h') ? '/usr' : (process.env.npm_config_nodedir ?? ''), ...opts.env },
  });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}`, stdout: r.stdout, stderr: r.stderr };
}

describe('npm package', () => {
  test('npm pack holds only the bundle, bin, native sources and docs; the installed hardsnap runs a backup', ({ tmp }) => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
      version: string; engines?: { node?: string }; bin: Record<string, string>;
    };
    expect(pkg.engines?.node).toMatch(/^>=\s*20/);
    expect(fs.readFileSync(path.join(REPO_ROOT, pkg.bin.hardsnap!), 'utf8')).toMatch(/^#!\/usr\/bin\/env (-S )?node( --[a-z-]+)*\n/); // -S: node's start-up flags (coreutils >= 8.30)

    // --ignore-scripts: dist/ is built by `pretest`; rebuilding it here (prepare) would rewrite
    // files under other test files that are running bin/hardsnap at the same time
    expect(fs.existsSync(path.join(REPO_ROOT, 'dist/bundle/hardsnap.js')), 'run `npm run build` first').toBe(true);
    const pack = sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp]);
    expect(pack.code, pack.out).toBe(0);
    const info = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as { filename: string; files: { path: string }[] }[];
    const files = info[0]!.files.map((f) => f.path);
    // the bundle only (rolldown.config.mjs): tsc's module tree is for tests and typechecks
    const allowed = /^(dist\/bundle\/[\w-]+\.js|bin\/hardsnap|bin\/package\.json|native\/[\w-]+\.[ch]|binding\.gyp|docs\/.*\.md|README\.md|LICENSE|package\.json)$/;
    expect(files.filter((f) => !allowed.test(f))).toEqual([]);
    expect(files).toEqual(expect.arrayContaining(['bin/hardsnap', 'bin/package.json', 'dist/bundle/hardsnap.js', 'native/hardsnap.c', 'binding.gyp', 'package.json']));
    expect(files.some((f) => f.startsWith('src/') || f.startsWith('test/') || f.startsWith('build/'))).toBe(false);

    const prefix = path.join(tmp, 'prefix');
    const tgz = path.join(tmp, info[0]!.filename);
    const inst = sh('npm', ['install', '-g', '--prefer-offline', '--no-audit', '--no-fund', '--prefix', prefix, tgz], { cwd: tmp });
    expect(inst.code, inst.out).toBe(0);
    const bin = path.join(prefix, 'bin', 'hardsnap');

    const v = sh(bin, ['--version'], { cwd: tmp });
    expect(v.code, v.out).toBe(0);
    expect(v.stdout.trim()).toBe(pkg.version);

    const src = path.join(tmp, 'src');
    makeTree(src, { 'etc/hosts': '127.0.0.1 localhost\n', 'etc/motd': 'hello\n' });
    const spool = path.join(tmp, 'spool');
    const i = sh(bin, ['init', '--spool', spool], { cwd: tmp });
    expect(i.code, i.out).toBe(0);
    const b = sh(bin, ['backup', '--spool', spool, '--host', 'h', '--part', `etc=${src}`], { cwd: tmp, env: { HARDSNAP_NOW: '2026-01-01T03:00:00Z' } });
    expect(b.code, b.out).toBe(0);
    expect(b.out).toBe('');
    const gen = path.join(spool, 'rsync', 'h', 'etc', '2026-01-01T030000Z');
    expect(fs.readFileSync(path.join(gen, 'etc', 'motd'), 'utf8')).toBe('hello\n');
    expect(fs.readlinkSync(path.join(spool, 'rsync', 'h', 'etc', 'last'))).toBe('2026-01-01T030000Z');
  });
});

describe('bin/hardsnap', () => {
  test('a program that cannot be loaded (no build) is one error line and exit 2; --debug adds the stack', ({ tmp }) => {
    // bin/hardsnap as it is, two levels above a dist/ that was never built
    fs.mkdirSync(path.join(tmp, 'bin'));
    for (const f of ['hardsnap', 'package.json']) fs.copyFileSync(path.join(REPO_ROOT, 'bin', f), path.join(tmp, 'bin', f));
    const bin = path.join(tmp, 'bin', 'hardsnap');
    const r = sh(bin, ['--version'], { cwd: tmp });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^hardsnap: error: Cannot find module .*dist\/bundle\/hardsnap\.js.*\n$/);
    expect(r.stderr.split('\n')).toHaveLength(2);
    const d = sh(bin, ['--version', '--debug'], { cwd: tmp });
    expect(d.code).toBe(2);
    expect(d.stderr.split('\n').length).toBeGreaterThan(3);
  });

  test('the program loads without a warning (require() of the bundle, an ES module)', () => {
    const r = sh(path.join(REPO_ROOT, 'bin', 'hardsnap'), ['--version']);
    expect(r.code, r.out).toBe(0);
    expect(r.stderr).toBe('');
  });
});
