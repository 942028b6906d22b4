// bin/hardsnap, the program's entry: how it loads the bundle, and how it fails to. scripts/
// test-all.sh runs this file on every Node.js it tests (the loading differs between versions:
// require() of ES modules, its ExperimentalWarning); test/import-fallback.test.ts covers the
// versions without require() of ES modules.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, test } from './helpers/fixture.js';
import { BIN, REPO_ROOT } from './helpers/run.js';
import { entryOf } from '../src/cli/entry.js';

function run(bin: string, args: string[], cwd: string) {
  const r = spawnSync(bin, args, { cwd, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, out: `${r.stdout}${r.stderr}` };
}

describe('bin/hardsnap', () => {
  test('a program that cannot be loaded (no build) is one error line and exit 2; --debug adds the stack', ({ tmp }) => {
    // bin/hardsnap as it is, two levels above a dist/ that was never built
    fs.mkdirSync(path.join(tmp, 'bin'));
    for (const f of ['hardsnap', 'package.json']) fs.copyFileSync(path.join(REPO_ROOT, 'bin', f), path.join(tmp, 'bin', f));
    const bin = path.join(tmp, 'bin', 'hardsnap');
    const r = run(bin, ['--version'], tmp);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^hardsnap: error: Cannot find module .*dist\/bundle\/hardsnap\.js.*\n$/);
    expect(r.stderr.split('\n')).toHaveLength(2);
    const d = run(bin, ['--version', '--debug'], tmp);
    expect(d.code).toBe(2);
    expect(d.stderr.split('\n').length).toBeGreaterThan(3);
  });

  test('the command decides what is loaded: `watch` alone (the long-running watcher does not hold the other commands), anything else the whole program; both answer alike', ({
    tmp,
  }) => {
    const argv = (...a: string[]) => ['node', 'hardsnap', ...a];
    expect(entryOf(argv('watch'))).toBe('hardsnap-watch.js');
    expect(entryOf(argv('--config', 'x.yaml', '--host', 'h', '-v', 'watch', '--part', 'a=/a'))).toBe('hardsnap-watch.js');
    // a word "watch" that is not the command
    expect(entryOf(argv('--host', 'watch', 'list'))).toBe('hardsnap-cli.js');
    expect(entryOf(argv('help', 'watch'))).toBe('hardsnap-cli.js');
    expect(entryOf(argv('backup', '--part', 'watch=/w'))).toBe('hardsnap-cli.js');
    const help = run(BIN, ['watch', '--help'], tmp);
    expect(help.code, help.out).toBe(0);
    expect(help.stdout).toMatch(/Usage: hardsnap watch \[options\][\s\S]*--backup-every/);
    expect(run(BIN, ['help', 'watch'], tmp).stdout).toBe(help.stdout);
    const bad = run(BIN, ['--spool', tmp, 'watch', '--bogus'], tmp);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe("hardsnap: error: unknown option '--bogus' (see 'hardsnap help watch')\n");
    // the watcher's program describes its command as the whole program does
    const model = (args: string[]) => JSON.parse(run(BIN, args, tmp).stdout) as { globals: unknown; commands: { name: string }[] };
    const lean = model(['watch', '--help', '--json']);
    const whole = model(['completion', '--json']);
    expect(lean.commands).toEqual(whole.commands.filter((c) => c.name === 'watch'));
    expect(lean.globals).toEqual(whole.globals);
    const list = run(BIN, ['--host', 'watch', 'list', '--spool', path.join(tmp, 'none')], tmp);
    expect(list.stderr).not.toMatch(/unknown command/);
    expect(list.stderr).toMatch(/spool/);
  });

  test(`the program loads without a warning (require() of the bundle, an ES module) on this Node.js (${process.version})`, () => {
    const r = run(BIN, ['--version'], REPO_ROOT);
    expect(r.code, r.out).toBe(0);
    expect(r.stderr).toBe('');
  });
});
