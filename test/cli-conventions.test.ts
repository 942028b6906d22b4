// The conventions a sysadmin expects of a command line (issue 18): the shared options before
// the command too (`hardsnap --config FILE backup`, as `hardsnap init` suggests), the later of
// two values winning, and --json everywhere: every command that prints something has a JSON
// form with a format version, and under --json an error is one JSON object on stderr.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, test } from './helpers/fixture.js';
import { calendar, makeSpool } from './helpers/spool.js';
import { hardsnap } from './helpers/run.js';
import { makeTree } from './helpers/tree.js';

const { at } = calendar('2026-03');

function setup(tmp: string): { src: string; spool: string; config: string } {
  const src = path.join(tmp, 'src');
  makeTree(src, { 'a.txt': 'a\n', 'd/b.txt': 'b\n' });
  const spool = makeSpool(path.join(tmp, 'spool'));
  const config = path.join(tmp, 'hardsnap.yaml');
  fs.writeFileSync(config, `spool: ${spool}\nhost: h\nparts:\n  docs: ${src}\nretention: { keep-last: 5 }\n`);
  return { src, spool, config };
}

/** Parses stdout as JSON, failing with the output when it is not. */
function json(r: { stdout: string; stderr: string }): unknown {
  try {
    return JSON.parse(r.stdout);
  } catch {
    throw new Error(`stdout is not JSON:\n${r.stdout}\nstderr:\n${r.stderr}`);
  }
}

/** Every stderr line under --json is one JSON object. */
function jsonLines(stderr: string): Record<string, unknown>[] {
  return stderr
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        throw new Error(`a stderr line under --json is not JSON: ${l}`);
      }
    });
}

describe('the shared options before the command', () => {
  test('hardsnap --config FILE backup runs (the form the first line of `hardsnap init` suggests)', ({ tmp }) => {
    const { config, spool } = setup(tmp);
    expect(hardsnap(['init']).stdout.split('\n')[0]).toContain('hardsnap --config FILE');
    const r = hardsnap(['--config', config, 'backup'], at(1));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(fs.readlinkSync(path.join(spool, 'rsync/h/docs/last'))).toBe('2026-03-01T030000Z');
    // and the other commands: list, status, verify, du, prune, restore
    expect(hardsnap(['--config', config, 'list'], at(2)).stdout).toMatch(/^docs +2026-03-01T030000Z$/m);
    expect(hardsnap(['--config', config, 'status'], at(2)).code).toBe(0);
    expect(hardsnap(['--config', config, 'verify']).code).toBe(0);
    expect(hardsnap(['--config', config, 'prune'], at(2)).code).toBe(0);
    expect(hardsnap(['--config', config, 'restore', '--part', 'docs', '--to', path.join(tmp, 'back')]).code).toBe(0);
    expect(fs.readFileSync(path.join(tmp, 'back/d/b.txt'), 'utf8')).toBe('b\n');
  });

  test('--spool, --host, --json, -v and -q before the command mean what they mean after it', ({ tmp }) => {
    const { spool, src } = setup(tmp);
    const b = hardsnap(['--spool', spool, '--host', 'h', '-v', 'backup', '--part', `docs=${src}`], at(1));
    expect(b.code).toBe(0);
    expect(b.stdout).toMatch(/^>f\+{9} docs\/a\.txt$/m); // -v before: itemized
    const after = hardsnap(['list', '--spool', spool, '--host', 'h', '--json']);
    const before = hardsnap(['--spool', spool, '--host', 'h', '--json', 'list']);
    expect(before.code).toBe(0);
    expect(json(before)).toEqual(json(after));
    const q = hardsnap(['-q', '--spool', spool, '--host', 'h', 'backup', '--part', `docs=${src}`, '--post-hook', 'echo hello'], at(2));
    expect(q.code).toBe(0);
    expect(q.stdout + q.stderr).toBe('');
  });

  test('given before and after the command, the one after wins (-v/-q as one choice; --json holds)', ({ tmp }) => {
    const { spool, src } = setup(tmp);
    const part = `docs=${src}`;
    // a spool and host before that do not exist: the ones after are used
    const r = hardsnap(['--spool', path.join(tmp, 'nowhere'), '--host', 'other', 'backup', '--spool', spool, '--host', 'h', '--part', part], at(1));
    expect(r.code).toBe(0);
    expect(fs.existsSync(path.join(spool, 'rsync/h/docs/last'))).toBe(true);
    expect(fs.existsSync(path.join(tmp, 'nowhere'))).toBe(false);
    // -v before, -q after: quiet
    fs.writeFileSync(path.join(src, 'c.txt'), 'c\n');
    const quiet = hardsnap(['-v', 'backup', '--spool', spool, '--host', 'h', '--part', part, '-q'], at(2));
    expect(quiet.code).toBe(0);
    expect(quiet.stdout + quiet.stderr).toBe('');
    // -q before, -v after: verbose
    fs.writeFileSync(path.join(src, 'e.txt'), 'e\n');
    const verbose = hardsnap(['-q', 'backup', '--spool', spool, '--host', 'h', '--part', part, '-v'], at(3));
    expect(verbose.stdout).toMatch(/^>f\+{9} docs\/e\.txt$/m);
    // --config before, --spool after: the spool after, the rest of the config still applies
    const { config } = setup(path.join(tmp, 'second'));
    const mixed = hardsnap(['--config', config, 'list', '--spool', spool, '--json']);
    expect(mixed.code).toBe(0);
    expect((json(mixed) as { name: string }[]).map((g) => g.name)).toEqual(['2026-03-01T030000Z', '2026-03-02T030000Z', '2026-03-03T030000Z']);
  });

  test('an unknown option before the command is a usage error naming it (status: 3, Nagios UNKNOWN)', () => {
    const r = hardsnap(['--bogus', 'list']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^hardsnap: error: unknown option '--bogus' \(see 'hardsnap help list'\)\n$/);
    const s = hardsnap(['--spool', '/x', 'status', '--bogus']);
    expect(s.code).toBe(3);
    expect(s.stderr).toContain("see 'hardsnap help status'");
  });
});

describe('--json everywhere', () => {
  test('every command that prints something has a JSON form with "format": 1, and nothing else on stdout', ({ tmp }) => {
    const { spool, src, config } = setup(tmp);
    const t = ['--spool', spool, '--host', 'h'];
    const runs: [string, string[], number?][] = [['backup', ['backup', ...t, '--part', `docs=${src}`]]];
    const objects: Record<string, unknown> = {};
    const b1 = hardsnap(['--json', ...runs[0]![1]], at(1));
    expect(b1.code).toBe(0);
    objects.backup = json(b1);
    fs.writeFileSync(path.join(src, 'a.txt'), 'changed\n');
    expect(hardsnap([...runs[0]![1]], at(2)).code).toBe(0);
    const commands: [string, string[]][] = [
      ['restore', ['restore', ...t, '--part', 'docs', '--to', path.join(tmp, 'r')]],
      ['diff', ['diff', ...t, '--part', 'docs', '2026-03-01', '2026-03-02']],
      ['history', ['history', ...t, '--part', 'docs', 'a.txt']],
      ['du', ['du', ...t]],
      ['verify', ['verify', ...t]],
      ['pin', ['pin', ...t, '--part', 'docs', '2026-03-01T030000Z']],
      ['unpin', ['unpin', ...t, '--part', 'docs', '2026-03-01T030000Z']],
      ['status', ['status', ...t]],
      ['check', ['check', '--spool', spool]],
      ['init', ['init']],
      ['completion', ['completion']],
      ['prune-config', ['--config', config, 'prune', '--dry-run']],
    ];
    for (const [name, args] of commands) {
      const r = hardsnap([...args, '--json'], at(3));
      expect(r.code, `${name}: ${r.stderr}`).toBe(0);
      objects[name] = json(r);
    }
    for (const [name, v] of Object.entries(objects)) {
      if (name === 'prune-config') continue;
      expect(v, name).toMatchObject({ format: 1 });
      expect(Object.keys(v as object)[0], `${name}: format comes first`).toBe('format');
    }
    // list and prune are arrays (SPEC.md): each object carries the format
    const list = json(hardsnap(['list', ...t, '--json'])) as Record<string, unknown>[];
    expect(list).toHaveLength(2);
    for (const g of list) expect(g).toMatchObject({ format: 1, part: 'docs', complete: true });
    const prune = objects['prune-config'] as Record<string, unknown>[];
    expect(prune.length).toBeGreaterThan(0);
    for (const p of prune) expect(p).toMatchObject({ format: 1, part: 'docs' });
    // pin and unpin used to print nothing under --json
    expect(objects.pin).toEqual({ format: 1, host: 'h', part: 'docs', generation: '2026-03-01T030000Z', pinned: true, changed: true });
    expect(objects.unpin).toEqual({ format: 1, host: 'h', part: 'docs', generation: '2026-03-01T030000Z', pinned: false, changed: true });
    expect((objects.init as { config: string }).config).toContain('spool:');
    expect((objects.completion as { commands: { name: string }[] }).commands.map((c) => c.name)).toContain('backup');
  });

  test('--version and help under --json are JSON too (an eleventh cron trial: plain text)', () => {
    const v = hardsnap(['--json', '--version']);
    expect(v.code).toBe(0);
    expect(JSON.parse(v.stdout)).toEqual({ format: 1, version: expect.stringMatching(/^\d+\.\d+\.\d+/) });
    for (const args of [
      ['--json', 'help', 'list'],
      ['list', '--help', '--json'],
    ]) {
      const h = hardsnap(args);
      expect(h.code, args.join(' ')).toBe(0);
      const m = JSON.parse(h.stdout) as { format: number; commands: { name: string; options: unknown[] }[] };
      expect(m.format).toBe(1);
      expect(m.commands.map((c) => c.name)).toEqual(['list']);
      expect(m.commands[0]!.options.length).toBeGreaterThan(3);
    }
    const all = JSON.parse(hardsnap(['--json', 'help']).stdout) as { commands: { name: string }[] };
    expect(all.commands.map((c) => c.name)).toContain('backup');
    const bad = hardsnap(['--json', 'help', 'nope']);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stderr)).toMatchObject({ format: 1, code: 'EUSAGE', message: "unknown command 'nope'" });
  });

  test('under --json an error is one JSON object on stderr: code, message, hint, exit (the exit code)', ({ tmp }) => {
    const { spool, src } = setup(tmp);
    const usage = hardsnap(['list', '--spool', spool, '--host', 'nobody', '--json']);
    expect(usage.code).toBe(1);
    expect(usage.stdout).toBe('');
    expect(jsonLines(usage.stderr)).toEqual([
      {
        format: 1,
        level: 'error',
        code: 'EUSAGE',
        message: `no backups of host 'nobody' in the spool ${spool}`,
        hint: 'check --spool and --host',
        exit: 1,
      },
    ]);
    const failed = hardsnap(['--json', 'backup', '--spool', spool, '--host', 'h', '--part', `docs=${path.join(tmp, 'missing')}`], at(1));
    expect(failed.code).toBe(2);
    const [e] = jsonLines(failed.stderr);
    expect(e).toMatchObject({ format: 1, level: 'error', code: 'ENOSOURCE', exit: 2 });
    expect(String(e!.message)).toContain(path.join(tmp, 'missing'));
    expect(String(e!.hint)).toContain('mounted');
    // commander's own usage errors too; status maps usage errors to 3
    const bogus = hardsnap(['--json', 'status', '--bogus']);
    expect(bogus.code).toBe(3);
    expect(jsonLines(bogus.stderr)).toEqual([
      {
        format: 1,
        level: 'error',
        code: 'EUSAGE',
        message: "unknown option '--bogus'",
        hint: "see 'hardsnap help status'",
        exit: 3,
      },
    ]);
    // no command at all (it printed the plain help, found by a cron trial)
    const none = hardsnap(['--json']);
    expect(none.code).toBe(1);
    expect(none.stdout).toBe('');
    expect(jsonLines(none.stderr)).toEqual([
      { format: 1, level: 'error', code: 'EUSAGE', message: 'no command given', hint: "see 'hardsnap --help' for the commands", exit: 1 },
    ]);
    expect(hardsnap(['--json', '--version']).code).toBe(0);
    // a warning (a failing post hook) is a JSON line as well, and the result still on stdout
    const warned = hardsnap(['backup', '--spool', spool, '--host', 'h', '--part', `docs=${src}`, '--post-hook', 'echo oops; exit 4', '--json'], at(2));
    expect(warned.code).toBe(0);
    expect(json(warned)).toMatchObject({ format: 1, status: 'ok' });
    const lines = jsonLines(warned.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ format: 1, level: 'warning' });
    expect(String(lines[0]!.message)).toMatch(/post hook exited with status 4[\s\S]*oops/);
  });
});
