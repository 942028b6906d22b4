// Vanished-file noise (issue 18): on a busy mail spool thousands of files vanish during every
// run, and one stderr line each made cron mail thousands of lines a night, -q or not. Now: one
// closing line with the count and the first paths (none under -q), every path under
// --verbose, exit 24 as before; errors (exit 23) show the first few and a closing count.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from './helpers/fixture.js';
import { makeTree } from './helpers/tree.js';
import { REPO_ROOT, spawnHardsnap, waitFor } from './helpers/run.js';
import { assertNobodyCanRun, hardsnapAsNobody, isRoot } from './helpers/robust.js';
import { calendar, makeSpool } from './helpers/spool.js';
import { readRunsLog } from './helpers/ops.js';
import { Output } from '../src/ui/output.js';
import { ProblemReport } from '../src/ui/problem-report.js';

const { day, at } = calendar('2026-04');
const N = 3000;

/**
 * A backup whose directory `mail` (N files) is scanned, then a child process deletes every
 * file of it while the backup waits (test seam after-scan), then the backup goes on: every one
 * of the N files vanishes between the scan and its copy, for real.
 */
async function backupWhileMailVanishes(tmp: string, extra: string[]): Promise<{ code: number | null; stdout: string; stderr: string; spool: string }> {
  const spool = makeSpool(path.join(tmp, 'spool'));
  const src = path.join(tmp, 'src');
  const files: Record<string, string> = { 'keep/a.txt': 'stays\n' };
  for (let i = 0; i < N; i++) files[`mail/cur/${String(i).padStart(5, '0')}.eml`] = `message ${i}\n`;
  makeTree(src, files);
  const release = path.join(tmp, 'go');
  const c = spawnHardsnap(['backup', '--spool', spool, '--host', 'h1', '--part', `data=${src}`, ...extra], {
    env: { HARDSNAP_NOW: day(1), HARDSNAP_TEST_PAUSE_AT: 'after-scan', HARDSNAP_TEST_PAUSE_DIR: 'mail/cur', HARDSNAP_TEST_PAUSE_UNTIL: release },
  });
  await waitFor(() => c.out.stderr.includes('test pause at after-scan') || c.exitCode !== null, 60_000, 5, 'the scan of mail/cur');
  // the mail server delivers and expunges meanwhile: another process deletes them all
  const rm = spawn('find', [path.join(src, 'mail', 'cur'), '-type', 'f', '-delete']);
  await new Promise((r) => rm.on('close', r));
  expect(fs.readdirSync(path.join(src, 'mail', 'cur'))).toEqual([]);
  fs.writeFileSync(release, '');
  const { code } = await c.exited;
  const stderr = c.out.stderr
    .split('\n')
    .filter((l) => !l.startsWith('hardsnap: test pause'))
    .join('\n');
  return { code, stdout: c.out.stdout, stderr, spool };
}

describe('thousands of files vanish during a backup', () => {
  test(`${N} vanished files: one closing line with the count and the first paths, exit 24; the run log has the count and a sample`, async ({ tmp }) => {
    const r = await backupWhileMailVanishes(tmp, []);
    expect(r.code, r.stderr).toBe(24);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    // the first five to vanish (copies run on a pool: about in name order)
    const m = new RegExp(
      `^hardsnap: warning: ${N} source files vanished during the run: ((?:data: mail/cur/\\d{5}\\.eml, ){5})\\.\\.\\. \\(every path with --verbose; runs\\.jsonl keeps the first 50\\)$`,
    ).exec(lines[0]!);
    expect(m, lines[0]).not.toBeNull();
    expect(new Set(m![1]!.split(', ').filter(Boolean)).size).toBe(5);
    const rec = readRunsLog(r.spool, 'h1').at(-1)!;
    expect(rec).toMatchObject({ status: 'partial', exit: 24, vanished: N, problems: 0 });
    expect((rec.sample as unknown[]).length).toBe(50);
  });

  test('-q: not a line (exit 24 and the run log say it)', async ({ tmp }) => {
    const r = await backupWhileMailVanishes(tmp, ['-q']);
    expect(r.code).toBe(24);
    expect(r.stderr.trim()).toBe('');
    expect(r.stdout).toBe('');
    expect(readRunsLog(r.spool, 'h1').at(-1)).toMatchObject({ vanished: N });
  });

  test('--verbose: every path, then the count', async ({ tmp }) => {
    const r = await backupWhileMailVanishes(tmp, ['--verbose']);
    expect(r.code).toBe(24);
    const vanished = r.stderr.split('\n').filter((l) => /^hardsnap: warning: data: mail\/cur\/\d{5}\.eml: vanished during the run$/.test(l));
    expect(vanished).toHaveLength(N);
    expect(r.stderr).toMatch(new RegExp(`^hardsnap: warning: ${N} source files vanished during the run: data: mail/cur/\\d{5}\\.eml, .*, \\.\\.\\.$`, 'm'));
  });
});

describe.runIf(isRoot)('hundreds of unreadable files (as nobody)', () => {
  test('errors (exit 23): the first 10 one line each, then one closing count; every one with --verbose', ({ tmp }) => {
    assertNobodyCanRun(REPO_ROOT);
    fs.chmodSync(tmp, 0o755);
    const src = path.join(tmp, 'src');
    const files: Record<string, { content: string; mode: number } | string> = { 'ok.txt': 'fine' };
    for (let i = 0; i < 300; i++) files[`secret/s${String(i).padStart(3, '0')}`] = { content: 'no', mode: 0o000 };
    makeTree(src, files);
    const spool = makeSpool(path.join(tmp, 'spool'));
    spawnSync('chown', ['-R', '65534:65534', spool]);
    const run = (n: number, extra: string[] = []) => hardsnapAsNobody(['backup', '--spool', spool, '--host', 'h1', '--part', `data=${src}`, ...extra], at(n));
    const r = run(1);
    expect(r.code, r.stderr).toBe(23);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(11);
    // ten distinct files, in the order their copies failed (jobs finish in any order)
    for (const l of lines.slice(0, 10)) expect(l).toMatch(/^hardsnap: warning: data: secret\/s\d{3}: cannot open: EACCES$/);
    expect(new Set(lines.slice(0, 10)).size).toBe(10);
    expect(lines[10]).toBe(
      'hardsnap: warning: 300 entries could not be transferred in all (the first 10 above; every one with --verbose; runs.jsonl keeps the first 50)',
    );
    const v = run(2, ['--verbose']);
    expect(v.code).toBe(23);
    expect(v.stderr.split('\n').filter((l) => /: cannot open: EACCES$/.test(l))).toHaveLength(300);
  });
});

describe("ProblemReport (the shape of restore's lines too)", () => {
  function capture(opts: { verbose?: boolean; quiet?: boolean }): { out: Output; text: () => string } {
    let text = '';
    const sink = { write: (s: string) => ((text += s), true), isTTY: false } as unknown as NodeJS.WriteStream;
    return { out: new Output(opts, sink, sink), text: () => text };
  }

  test('12 errors: 10 lines and a count; 3 errors: 3 lines and no count; --verbose: all 12', () => {
    for (const [n, verbose, want] of [
      [12, false, 11],
      [3, false, 3],
      [12, true, 12],
    ] as const) {
      const c = capture({ verbose });
      const rep = new ProblemReport(c.out, { verbose, failed: 'not restored' });
      for (let i = 0; i < n; i++) rep.error(`not restored: p: "f${i}": EIO: read error`);
      rep.close();
      const lines = c.text().trim().split('\n');
      expect(lines, c.text()).toHaveLength(want);
      if (want === 11) expect(lines[10]).toBe('hardsnap: warning: 12 entries not restored in all (the first 10 above; every one with --verbose)');
    }
  });
});
