// Progress on a terminal (issue 18): a first run shows a percentage and an ETA (its source is
// counted ahead), a run bigger than the previous one never sits at "100%, ETA 0s" while it
// works, nothing sits at "0 entries" while the previous manifest is read, and every line fits
// 80 columns. The lines are checked as drawn (bin/hardsnap --progress with stderr on a pipe,
// and under script(1)), the rules as a table (progressLine).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, test } from './helpers/fixture.js';
import { calendar, makeSpool } from './helpers/spool.js';
import { BIN, REPO_ROOT, hardsnap, spawnHardsnap, waitFor } from './helpers/run.js';
import { makeTree } from './helpers/tree.js';
import { partTotal, progressLine, type PartView } from '../src/ui/progress.js';
import type { CountAhead } from '../src/backup/count-ahead.js';

const { at, day } = calendar('2026-05');

/** The lines a terminal shows, one per redraw: escape sequences and carriage returns split them. */
function drawn(raw: string): string[] {
  return raw.split(/\x1b\[[0-9;]*[A-Za-z]|\r|\n/).filter((l) => l.trim() !== '');
}

function files(n: number, prefix = 'f'): Record<string, string> {
  const t: Record<string, string> = {};
  for (let i = 0; i < n; i++) t[`d${i % 50}/${prefix}${i}.txt`] = `${prefix} ${i}\n`;
  return t;
}

const counted = (count: number, done: boolean): CountAhead => ({ count, done, stop: () => {} });
const view = (v: Partial<PartView>): PartView => ({
  part: 'etc',
  phase: 'scan',
  entries: 0,
  bytesWritten: 0,
  elapsedMs: 5000,
  scanMs: 4000,
  estimates: {},
  ...v,
});

describe('progress lines (table)', () => {
  test.for([
    [
      'a finished count ahead: exact percentage and ETA',
      view({ entries: 400, estimates: { counter: counted(1000, true) } }),
      /\[#*-*\]  40%  400\/1\.0k .* ETA 0:06$/,
    ],
    ['the previous run: ~percentage and ETA', view({ entries: 250, estimates: { previous: 1000 } }), /\] ~25%  250\/1\.0k .* ETA 0:12$/],
    [
      'a first run still counting: no percentage, the count so far',
      view({ entries: 400, estimates: { counter: counted(900, false) } }),
      /^etc +link\/copy 400 entries \(counting: 900\) /,
    ],
    [
      'bigger than the previous run, still counting: no percentage, no ETA',
      view({ entries: 1500, estimates: { previous: 1000, counter: counted(1400, false) } }),
      /link\/copy 1.5k entries \(counting: 1.4k\) .* 0:05$/,
    ],
    [
      'bigger than the previous run, not counting: the previous count named, no percentage',
      view({ entries: 1500, estimates: { previous: 1000 } }),
      /link\/copy 1\.5k entries \(last run: 1\.0k\) .* 0:05$/,
    ],
    [
      'the count raises an estimate it passed',
      view({ entries: 1500, estimates: { previous: 1000, counter: counted(3000, false) } }),
      / ~50%  1.5k\/3.0k .* ETA/,
    ],
    [
      'at the counted total while still working: 99%, no ETA',
      view({ entries: 1000, estimates: { counter: counted(1000, true) } }),
      / 99%  1\.0k\/1\.0k .* 0:05$/,
    ],
    ['a first run on a file system of its own: its used inodes', view({ entries: 100, estimates: { fileSystem: 400 } }), / ~25%  100\/400 /],
    [
      'reading the previous manifest: the phase, not 0 entries',
      view({ phase: 'previous', elapsedMs: 3000 }),
      /^etc +reading the previous manifest\.\.\.  0:03$/,
    ],
    ['indexing earlier generations', view({ phase: 'index' }), /^etc +indexing earlier generations\.\.\.  0:05$/],
    ['done', view({ phase: 'done', entries: 29_100, bytesWritten: 1 << 30 }), /^etc +done +29k entries, 1\.0 GiB written, .* 0:05$/],
  ] as const)('%s', ([, v, re]) => {
    const line = progressLine(v);
    expect(line).toMatch(re);
    expect(line).not.toMatch(/100%/);
    expect([...line].length).toBeLessThanOrEqual(80);
  });

  test("never 100% or an ETA of 0 while working, and at most 80 columns (or the terminal's width), whatever the numbers", () => {
    let seed = 11;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed % n);
    const names = ['etc', 'mail/imap', 'a-very-long-part-name/with/components', 'caf\\xe9/d\\xff', 'ünïcödé-nàmé-long'];
    const phases = ['prepare', 'previous', 'index', 'journal', 'scan', 'scan', 'scan', 'built', 'publish', 'prune', 'done', 'FAILED'] as const;
    for (let i = 0; i < 5000; i++) {
      const entries = rnd(3) ? rnd(10 ** (1 + rnd(9))) : 0;
      const total = rnd(10 ** (1 + rnd(9)));
      const v = view({
        part: names[rnd(names.length)]!,
        phase: phases[rnd(phases.length)]!,
        entries,
        bytesWritten: rnd(2 ** 31) * rnd(5000),
        elapsedMs: rnd(10 ** rnd(9)),
        scanMs: rnd(10 ** rnd(8)),
        estimates: [
          {},
          { previous: total },
          { fileSystem: total },
          { counter: counted(total, rnd(2) === 0) },
          { previous: total, counter: counted(rnd(2 * total + 1), false) },
        ][rnd(5)]!,
      });
      const width = [80, 80, 200, 60, 40][rnd(5)]!;
      const line = progressLine(v, width);
      expect([...line].length, line).toBeLessThanOrEqual(Math.min(width, 80));
      if (v.phase === 'scan') {
        expect(line, JSON.stringify(v)).not.toMatch(/\b100%/);
        const t = partTotal(v);
        if (t && v.entries >= t.total) expect(line).not.toContain('ETA');
      }
    }
  });
});

describe('progress as drawn (bin/hardsnap --progress)', () => {
  test('a first run counts its source ahead: an exact percentage and an ETA while it links and copies; the phases show before the walk', ({ tmp }) => {
    const src = path.join(tmp, 'src');
    makeTree(src, files(6000));
    const spool = makeSpool(path.join(tmp, 'spool'));
    // the ETA shows once the walk has run a second (a rate to go by): held 1.2 s in d10 (the
    // third directory of 50), so a fast machine shows it too
    const env = { ...at(1).env, HARDSNAP_TEST_PAUSE_AT: 'after-scan', HARDSNAP_TEST_PAUSE_DIR: 'd10', HARDSNAP_TEST_PAUSE_MS: '1200' };
    const r = hardsnap(['backup', '--spool', spool, '--host', 'h', '--part', `p=${src}`, '--progress'], { env });
    expect(r.code, r.stderr).toBe(0);
    const lines = drawn(r.stderr).filter((l) => l !== 'hardsnap: test pause at after-scan');
    const copying = lines.filter((l) => /^p +link\/copy /.test(l));
    expect(copying.length).toBeGreaterThan(0);
    // an exact percentage of the counted total (6050 entries: 6000 files, 50 directories)
    expect(
      copying.some((l) => / \d{1,2}%  [\d.]+k?\/6\.0k /.test(l)),
      copying.slice(-5).join('\n'),
    ).toBe(true);
    expect(
      copying.some((l) => /ETA \d+:\d\d$/.test(l)),
      copying.slice(-5).join('\n'),
    ).toBe(true);
    expect(lines.some((l) => /^p +starting\.\.\./.test(l))).toBe(true);
    expect(lines[lines.length - 1]).toMatch(/^p +done +6\.0k entries/);
    // the second run reads the previous manifest and indexes earlier generations before its walk
    const second = hardsnap(['backup', '--spool', spool, '--host', 'h', '--part', `p=${src}`, '--progress'], at(2));
    expect(second.code, second.stderr).toBe(0);
    const two = drawn(second.stderr);
    const at1 = (re: RegExp) => two.findIndex((l) => re.test(l));
    expect(at1(/^p +reading the previous manifest\.\.\./)).toBeGreaterThan(-1);
    expect(at1(/^p +indexing earlier generations\.\.\./)).toBeGreaterThan(at1(/^p +reading the previous manifest/));
    expect(at1(/^p +link\/copy /)).toBeGreaterThan(at1(/^p +indexing earlier generations/));
    for (const l of [...lines, ...two]) expect([...l].length, l).toBeLessThanOrEqual(80);
  });

  test('THREAT issue 18: a run bigger than the previous one never shows 100% (or an ETA of 0) while it works', ({ tmp }) => {
    const src = path.join(tmp, 'src');
    makeTree(src, files(500));
    const spool = makeSpool(path.join(tmp, 'spool'));
    expect(hardsnap(['backup', '--spool', spool, '--host', 'h', '--part', `p=${src}`], at(1)).code).toBe(0);
    makeTree(src, files(5000, 'g'));
    const r = hardsnap(['backup', '--spool', spool, '--host', 'h', '--part', `p=${src}`, '--progress'], at(2));
    expect(r.code, r.stderr).toBe(0);
    const copying = drawn(r.stderr).filter((l) => /^p +link\/copy /.test(l));
    expect(copying.length).toBeGreaterThan(0);
    for (const l of copying) {
      expect(l).not.toMatch(/100%/);
      const m = / (\d[\d.]*k?)\/(\d[\d.]*k?) /.exec(l);
      if (m && m[1] === m[2]) expect(l).not.toContain('ETA');
    }
    // past the previous run's 550 entries it says so instead of a percentage
    expect(
      copying.some((l) => /entries \(last run: 550\)/.test(l)),
      copying.join('\n'),
    ).toBe(true);
  });

  test('a run that resumes an interrupted one estimates from the last published run, not from what the interrupted one had counted (a seventh cron trial)', async ({
    tmp,
  }) => {
    const src = path.join(tmp, 'src');
    const flat = (dir: string, n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`${dir}/f${i}`, `${dir} ${i}\n`]));
    makeTree(src, { ...flat('a', 300), ...flat('b', 300) });
    const spool = makeSpool(path.join(tmp, 'spool'));
    const args = ['backup', '--spool', spool, '--host', 'h', '--part', `p=${src}`];
    expect(hardsnap(args, at(1)).code).toBe(0);
    makeTree(src, flat('c', 2000));
    const c = spawnHardsnap(args, {
      env: { HARDSNAP_NOW: day(2), HARDSNAP_TEST_PAUSE_AT: 'after-scan', HARDSNAP_TEST_PAUSE_DIR: 'b', HARDSNAP_TEST_PAUSE_MS: '60000' },
    });
    await waitFor(() => c.out.stderr.includes('test pause at after-scan'), 60_000, 5, 'the run to pause in b');
    c.kill('SIGTERM');
    expect((await c.exited).code).toBe(143);
    const runs = fs
      .readFileSync(path.join(spool, 'rsync', 'h', '.hardsnap', 'runs.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const published = runs[0].parts.p.entries as number;
    expect(runs[1].status).toBe('interrupted');
    expect(runs[1].parts.p.entries).toBeLessThan(published);
    const r = hardsnap([...args, '--progress'], at(3));
    expect(r.code, r.stderr).toBe(0);
    const copying = drawn(r.stderr).filter((l) => /^p +link\/copy /.test(l));
    expect(
      copying.some((l) => l.includes(`(last run: ${published})`)),
      copying.join('\n'),
    ).toBe(true);
    expect(copying.some((l) => l.includes(`(last run: ${runs[1].parts.p.entries})`))).toBe(false);
  });

  const haveScript = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;
  test.skipIf(!haveScript)('on a real terminal (script(1)) 200 columns wide, every line still fits 80; a long part name is cut', ({ tmp }) => {
    const src = path.join(tmp, 'src');
    makeTree(src, files(3000));
    const spool = makeSpool(path.join(tmp, 'spool'));
    const part = 'a-very-long-part-name/with/several/components';
    const cmd = [BIN, 'backup', '--spool', spool, '--host', 'h', '--part', `${part}=${src}`].map((a) => `'${a}'`).join(' ');
    const r = spawnSync('script', ['-qfec', `stty cols 200; ${cmd}`, '/dev/null'], {
      encoding: 'utf8',
      cwd: REPO_ROOT,
      env: { ...process.env, ...at(1).env, COLUMNS: '200' },
      timeout: 120_000,
    });
    expect(r.status, r.stdout).toBe(0);
    const lines = drawn(r.stdout).filter((l) => l.startsWith('a-very-lo'));
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect([...l].length, l).toBeLessThanOrEqual(80);
    expect(lines[lines.length - 1]).toMatch(/^a-very-lo~ done /);
    expect(fs.existsSync(path.join(spool, 'rsync/h', part, 'last'))).toBe(true);
  });
});
