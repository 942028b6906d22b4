// What a sysadmin sees: nothing but the record under cron, bars on a terminal, one line per
// written entry with --verbose, help for every command, one-line errors with hints.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { vi } from 'vitest';
import { describe, expect, test } from './helpers/fixture.js';
import { BIN, hardsnap, REPO_ROOT } from './helpers/run.js';
import { makeTree } from './helpers/tree.js';
import { BackupProgress, progressMode } from '../src/ui/progress.js';
import { itemize } from '../src/ui/itemize.js';
import { newStats } from '../src/apply/build-tree.js';
import type { Meta } from '../src/fs/entry.js';
import { calendar, makeSpool } from './helpers/spool.js';

const ESC = '\x1b';

function setup(tmp: string): { src: string; spool: string; args: string[] } {
  const src = path.join(tmp, 'src');
  const files: Record<string, string> = {};
  for (let i = 0; i < 300; i++) files[`d${i % 7}/f${i}.txt`] = `file ${i}\n`;
  makeTree(src, { ...files, link: { symlink: 'd0/f0.txt' } });
  const spool = makeSpool(path.join(tmp, 'spool'));
  return { src, spool, args: ['backup', '--spool', spool, '--host', 'h', '--part', `p=${src}`] };
}

const { at } = calendar('2026-01');

describe('output not on a terminal (cron)', () => {
  test('a successful backup prints nothing at all, and never an escape code', ({ tmp }) => {
    const { args } = setup(tmp);
    const r = hardsnap(args, at(1));
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('');
    const p = hardsnap(args, at(2)); // a second run, linking everything
    expect(p.stdout + p.stderr).toBe('');
  });

  test('--verbose itemizes written entries like rsync -i, with no escape codes', ({ tmp }) => {
    const { src, args } = setup(tmp);
    const first = hardsnap([...args, '--verbose'], at(1));
    expect(first.code).toBe(0);
    expect(first.stdout + first.stderr).not.toContain(ESC);
    expect(first.stdout).toMatch(/^>f\+\+\+\+\+\+\+\+\+ p\/d0\/f0\.txt$/m);
    expect(first.stdout).toMatch(/^cd\+\+\+\+\+\+\+\+\+ p\/d3\/$/m);
    expect(first.stdout).toMatch(/^cL\+\+\+\+\+\+\+\+\+ p\/link -> d0\/f0\.txt$/m);
    expect(first.stdout).toMatch(/^hardsnap: 2026-01-01T030000Z: p: 308 entries, 0 linked, 301 written/m);

    fs.writeFileSync(path.join(src, 'd1/f1.txt'), 'changed, longer\n');
    const second = hardsnap([...args, '--verbose'], at(2));
    expect(second.code).toBe(0);
    expect(second.stdout + second.stderr).not.toContain(ESC);
    expect(second.stdout).toMatch(/^>f\.s\.{7} p\/d1\/f1\.txt$/m);
    expect(second.stdout).toMatch(/^hf {10}p\/d0\/f0\.txt$/m);
    expect(second.stdout).not.toMatch(/^cd/m);
  });

  test('--verbose shows content-linked files and second names of a source hard link as links, not as new files', ({ tmp }) => {
    const src = path.join(tmp, 'src');
    makeTree(src, { 'd/a': 'shared inode\n', 'd/a2': { hardlink: 'd/a' }, 'x/data.bin': 'some data\n' });
    const args = ['backup', '--spool', makeSpool(path.join(tmp, 'spool')), '--host', 'h', '--part', `p=${src}`, '--verbose'];
    const first = hardsnap(args, at(1));
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^>f\+{9} p\/d\/a$/m);
    expect(first.stdout).toMatch(/^hf\+{9} p\/d\/a2 => p\/d\/a$/m);
    expect(first.stdout).not.toMatch(/^>f.* p\/d\/a2$/m);
    fs.renameSync(path.join(src, 'x'), path.join(src, 'y'));
    const second = hardsnap(args, at(2));
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/^hf\+{9} p\/y\/data\.bin \(content link\)$/m);
    expect(second.stdout).not.toMatch(/^>f.* p\/y\/data\.bin/m);
    expect(second.stdout).toMatch(/^hf {10}p\/d\/a2 => p\/d\/a$/m);
    expect(second.stdout).toMatch(/1 deduplicated/);
  });

  test('--quiet prints nothing even with --verbose; errors still reach stderr', ({ tmp }) => {
    const { args } = setup(tmp);
    const r = hardsnap([...args, '--quiet', '--verbose'], at(1));
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const bad = hardsnap(['backup', '--quiet', '--spool', makeSpool(path.join(tmp, 's2')), '--host', 'h', '--part', `p=${path.join(tmp, 'missing')}`]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^hardsnap: error: source of part 'p' is missing: .*missing/);
  });
});

describe('output on a terminal', () => {
  const haveScript = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;

  test.skipIf(!haveScript)('a backup under script(1) draws a progress line with counts, and its last state (done) stays', ({ tmp }) => {
    const { args } = setup(tmp);
    const cmd = (extra: string[]) => [BIN, ...args, ...extra].map((a) => `'${a}'`).join(' ');
    const run = (extra: string[], day: number) =>
      spawnSync('script', ['-qfec', cmd(extra), '/dev/null'], {
        encoding: 'utf8',
        cwd: REPO_ROOT,
        env: { ...process.env, ...at(day).env, COLUMNS: '120' },
        timeout: 60_000,
      });
    const first = run([], 1);
    expect(first.status, first.stdout).toBe(0);
    expect(first.stdout).toContain(ESC + '[');
    expect(first.stdout).toMatch(/p +done +308 entries/);
    expect(first.stdout).toMatch(/hardsnap: 2026-01-01T030000Z: p: 308 entries/);
    const second = run([], 2);
    expect(second.status, second.stdout).toBe(0);
    expect(second.stdout).toMatch(/p +done +308 entries, 0 B written/);
    // --no-progress: the summary stays, the bars go
    const third = run(['--no-progress'], 3);
    expect(third.status).toBe(0);
    expect(third.stdout).not.toContain(ESC);
    expect(third.stdout).toMatch(/hardsnap: 2026-01-03T030000Z: p: 308 entries, 301 linked/);
    // backup --prune: the bars show the prune phase before they end (it was never shown)
    const fourth = run(['--prune', '--keep-last', '1'], 4);
    expect(fourth.status, fourth.stdout).toBe(0);
    expect(fourth.stdout).toMatch(/p +prune +308 entries/);
    expect(fourth.stdout).toMatch(/p +done +308 entries/);
  });
});

describe('progress rules (unit)', () => {
  test('mode: bars on a terminal, a line a minute with --verbose under cron, off with --quiet / --no-progress', () => {
    expect(progressMode({}, true)).toBe('bars');
    expect(progressMode({}, false)).toBe('off');
    expect(progressMode({ verbose: true }, false)).toBe('lines');
    expect(progressMode({ verbose: true }, true)).toBe('off');
    expect(progressMode({ progress: true }, false)).toBe('bars');
    expect(progressMode({ progress: false }, true)).toBe('off');
    expect(progressMode({ quiet: true, progress: true }, true)).toBe('off');
  });

  test('lines mode writes at most one progress line per minute, without escape codes', () => {
    let t = 1_000_000;
    const spy = vi.spyOn(Date, 'now').mockImplementation(() => t);
    try {
      const out: string[] = [];
      const p = new BackupProgress('lines', { write: (s: string) => out.push(s) });
      p.phase('scan', 'mail');
      const s = newStats();
      p.update('mail', s);
      for (let i = 0; i < 1000; i++) {
        t += 500; // 500 s of updates every 0.5 s
        s.entries += 100;
        p.update('mail', s);
      }
      p.stop();
      expect(out.length).toBe(8);
      expect(out.join('')).not.toContain(ESC);
      expect(out[0]).toMatch(/^hardsnap: progress: mail: 12000 entries, 0 linked, 0 written \(0 B\), /);
    } finally {
      spy.mockRestore();
    }
  });

  test('bars end with FAILED on the part when the run fails', () => {
    const out: string[] = [];
    const p = new BackupProgress('bars', { isTTY: true, columns: 200, write: (s: string) => out.push(s) }, () => ({ previous: 1000 }));
    p.phase('scan', 'mail');
    const s = newStats();
    s.entries = 400;
    p.update('mail', s);
    p.stop(true);
    const text = out.join('');
    expect(text).toContain(ESC + '[');
    expect(text).toMatch(/mail +FAILED +400 entries/);
  });

  test('itemize codes follow rsync -i', () => {
    const file: Meta = { type: 'file', mode: 0o644, uid: 0, gid: 0, size: 1, mtimeSec: 1, mtimeNsec: 0, rdev: 0, target: null, xattrs: null };
    const b = (s: string) => Buffer.from(s, 'latin1');
    expect(itemize('p', b('a'), { action: 'copy', reason: 'new' }, file)).toBe('>f+++++++++ p/a');
    expect(itemize('p', b('a'), { action: 'copy', reason: 'mtime' }, file)).toBe('>f..t...... p/a');
    expect(itemize('p', b('a'), { action: 'link', reason: 'unchanged' }, file)).toBe('hf          p/a');
    expect(itemize('p', b('d'), { action: 'mkdir', reason: 'directory' }, { ...file, type: 'dir' })).toBeNull();
    expect(itemize('p', b('x\n\xe9'), { action: 'copy', reason: 'new' }, file)).toBe('>f+++++++++ p/x\\x0a\\xe9');
    expect(itemize('p', b('y'), { action: 'copy', reason: 'new' }, file, { via: 'content' })).toBe('hf+++++++++ p/y (content link)');
    expect(itemize('p', b('y'), { action: 'copy', reason: 'mtime' }, file, { via: 'content' })).toBe('hf..t...... p/y (content link)');
    expect(itemize('p', b('a2'), { action: 'copy', reason: 'new' }, file, { via: 'hardlink', to: b('d/a') })).toBe('hf+++++++++ p/a2 => p/d/a');
    expect(itemize('p', b('a2'), { action: 'link', reason: 'unchanged' }, file, { via: 'hardlink', to: b('d/a') })).toBe('hf          p/a2 => p/d/a');
  });
});

describe('help, version and errors', () => {
  const commandsOf = (help: string) => {
    const block = help.split(/^Commands:$/m)[1]!.split(/^\S/m)[0]!;
    return [...block.matchAll(/^ {2}([a-z][a-z-]*)\b/gm)].map((m) => m[1]!).filter((c) => c !== 'help');
  };

  test('hardsnap --help lists the commands and the exit codes; --version prints the package version', () => {
    const r = hardsnap(['--help']);
    expect(r.code).toBe(0);
    expect(commandsOf(r.stdout)).toEqual(expect.arrayContaining(['backup', 'list', 'check']));
    expect(r.stdout).toMatch(/Exit codes/);
    expect(r.stdout).toMatch(/^ {2}23 /m);
    const v = hardsnap(['--version']);
    expect(v.code).toBe(0);
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(v.stdout.trim()).toBe(pkg.version);
  });

  test('every command listed by --help has --help (and help COMMAND) with a description, its options and examples', () => {
    const cmds = commandsOf(hardsnap(['--help']).stdout);
    expect(cmds.length).toBeGreaterThanOrEqual(3);
    for (const c of cmds) {
      const r = hardsnap([c, '--help']);
      expect(r.code, c).toBe(0);
      expect(r.stdout, c).toMatch(new RegExp(`^Usage: hardsnap ${c} `, 'm'));
      expect(r.stdout, c).toMatch(/^Options:$/m);
      expect(r.stdout, c).toMatch(/^ {2}(-[a-zA-Z], )?--[a-z]/m);
      expect(r.stdout, c).toMatch(/^ {2}-h, --help /m);
      expect(r.stdout, c).toMatch(/Examples?:/);
      const h = hardsnap(['help', c]);
      expect(h.code, c).toBe(0);
      expect(h.stdout, c).toBe(r.stdout);
    }
  });

  test('an unknown option or command exits 1 with one error line that holds a hint', () => {
    const o = hardsnap(['backup', '--bogus']);
    expect(o.code).toBe(1);
    expect(o.stderr).toBe("hardsnap: error: unknown option '--bogus' (see 'hardsnap help backup')\n");
    const c = hardsnap(['bakcup']);
    expect(c.code).toBe(1);
    expect(c.stderr).toBe("hardsnap: error: unknown command 'bakcup' (Did you mean backup?) (see 'hardsnap --help' for the commands)\n");
    const none = hardsnap([]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/^Usage: hardsnap/);
  });

  test('an error names the path with a hint in one line; the stack only under --debug', ({ tmp }) => {
    const args = ['backup', '--spool', makeSpool(path.join(tmp, 's')), '--host', 'h', '--part', `p=${path.join(tmp, 'nope')}`];
    const r = hardsnap(args);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(path.join(tmp, 'nope'));
    expect(r.stderr).not.toMatch(/^\s+at /m);
    const d = hardsnap([...args, '--debug']);
    expect(d.code).toBe(2);
    expect(d.stderr).toMatch(/^\s+at /m);
  });

  test('a reader that goes away (hardsnap ... | head -1) gets no error line and no stack trace', ({ tmp }) => {
    const { args } = setup(tmp);
    const r = spawnSync('sh', ['-c', `'${BIN}' ${args.map((a) => `'${a}'`).join(' ')} --verbose | head -1`], {
      encoding: 'utf8',
      env: { ...process.env, ...at(1).env },
    });
    expect(r.stdout.split('\n')).toHaveLength(2);
    expect(r.stderr).not.toMatch(/EPIPE|^\s+at /m);
    expect(r.stderr).not.toContain('error');
  });
});
