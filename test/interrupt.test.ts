// Interrupted runs are on record (issue 18): SIGINT, SIGTERM and SIGHUP sent for real to a
// running bin/hardsnap. The run stops cleanly (the copy in flight finishes, nothing published,
// the lock released), says so in one line, exits 128 + the signal, writes an `interrupted`
// line to runs.jsonl; `status` warns while the partial is the newest thing of the part, `list`
// tells a run in progress from an interrupted one, and the next run resumes.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from './helpers/fixture.js';
import { makeTree } from './helpers/tree.js';
import { rsyncDiff } from './helpers/oracle.js';
import { BIN, hardsnap, spawnHardsnap, waitFor, waitForFile, type HardsnapChild } from './helpers/run.js';
import { isRoot, shmdir } from './helpers/robust.js';
import { calendar, makeSpool } from './helpers/spool.js';
import { readRunsLog } from './helpers/ops.js';
import { runBackup } from '../src/backup/run.js';
import { InterruptedError } from '../src/core/errors.js';

const { day, at, genName } = calendar('2026-03');
const BIG = 256 << 20;

interface Setup {
  spool: string;
  src: string;
  pdir: string;
  lock: string;
  args: string[];
}

/** A source whose first directory `a` holds a big file (256 MiB), then `b` with small files. */
/**
 * Day 2's backup of `s` started under `unshare ARGS` (after `prefix`, shell), held in a pre-hook
 * that writes its pid and sleeps; resolves once the hook runs. kill() SIGKILLs its process group.
 */
async function heldInNamespace(tmp: string, s: Setup, unshareArgs: string[], prefix = '') {
  const pidFile = path.join(tmp, 'hook.pid');
  const script = `${prefix}exec ${BIN} ${s.args.join(' ')} --pre-hook 'echo $$ > ${pidFile}; sleep 60'`;
  const c = spawn('unshare', [...unshareArgs, 'sh', '-c', script], { env: { ...process.env, HARDSNAP_NOW: day(2) }, stdio: 'ignore', detached: true });
  const exited = new Promise((r) => c.on('exit', r));
  const kill = async () => {
    try {
      process.kill(-c.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
    await exited;
  };
  try {
    await waitForFile(pidFile, 30_000);
  } catch (err) {
    await kill();
    throw err;
  }
  return { kill };
}

/** After a run holding the lock was SIGKILLed: status says its lock is left (`why`), and the next run takes it over. */
function expectStaleThenTakenOver(s: Setup, lockPid: number, why: string): void {
  const st = hardsnap(['status', '--spool', s.spool, '--host', 'h1'], at(2));
  expect(st.code, st.stdout).toBe(1);
  expect(st.stdout).toMatch(new RegExp(`a run ended without a record: its lock is left \\(pid ${lockPid}, .*${why}`));
  expect(st.stdout).not.toMatch(/a run is in progress/);
  const r = hardsnap(s.args, at(3));
  expect(r.code, r.stderr).toBe(0);
  expect(r.stderr).toMatch(new RegExp(`took over a stale lock of pid ${lockPid}`));
}

function setup(base: string, bigSize = BIG): Setup {
  const spool = makeSpool(path.join(base, 'spool'));
  const src = path.join(base, 'src');
  const files: Record<string, string> = { 'top.txt': 'top\n' };
  for (let i = 0; i < 200; i++) files[`b/f${i}`] = `file ${i}\n`;
  makeTree(src, files);
  fs.mkdirSync(path.join(src, 'a'));
  fs.writeFileSync(path.join(src, 'a', 'big.bin'), Buffer.alloc(bigSize, 7));
  const pdir = path.join(spool, 'rsync', 'h1', 'data');
  return {
    spool,
    src,
    pdir,
    lock: path.join(spool, 'rsync', 'h1', '.hardsnap', 'lock'),
    args: ['backup', '--spool', spool, '--host', 'h1', '--part', `data=${src}`],
  };
}

/** Starts a backup that pauses once directory `b` is scanned (the copy of a/big.bin in flight). */
async function pausedInB(s: Setup, n: number, extra: string[] = []): Promise<HardsnapChild> {
  const c = spawnHardsnap([...s.args, ...extra], {
    env: { HARDSNAP_NOW: day(n), HARDSNAP_TEST_PAUSE_AT: 'after-scan', HARDSNAP_TEST_PAUSE_DIR: 'b', HARDSNAP_TEST_PAUSE_MS: '60000' },
  });
  await waitFor(() => c.out.stderr.includes('test pause at after-scan') || c.exitCode !== null, 60_000, 5, 'the run to pause in b');
  expect(c.exitCode, c.out.stderr).toBeNull();
  return c;
}

const errorLines = (stderr: string) => stderr.split('\n').filter((l) => l && !l.startsWith('hardsnap: test pause'));

describe('a backup stopped by a signal', () => {
  test.for([
    ['SIGTERM', 143],
    ['SIGINT', 130],
    ['SIGHUP', 129],
  ] as const)(
    '%s: one line, exit %i, an interrupted record, the lock released, the copy in flight finished; status WARNING; the next run resumes',
    async ([sig, code]) => {
      const s = setup(shmdir());
      expect(hardsnap([...s.args], at(1)).code).toBe(0);
      fs.writeFileSync(path.join(s.src, 'a', 'big.bin'), Buffer.alloc(BIG, 8)); // to copy again
      for (let i = 0; i < 200; i++) fs.writeFileSync(path.join(s.src, 'b', `f${i}`), `changed ${i}\n`);
      const c = await pausedInB(s, 2);
      c.kill(sig); // hardsnap alone, as cron, systemd or an admin would
      const done = await c.exited;
      expect(done.code, c.out.stderr).toBe(code);
      const lines = errorLines(c.out.stderr);
      expect(lines, c.out.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(
        new RegExp(
          `^hardsnap: error: interrupted by ${sig} while building part 'data' \\(\\d+ entries done\\): nothing published, 'last' untouched; the next run resumes data/${genName(2)}\\.partial$`,
        ),
      );
      expect(c.out.stdout).toBe('');

      // on record, lock released, nothing published
      const rec = readRunsLog(s.spool, 'h1').at(-1)!;
      expect(rec).toMatchObject({
        status: 'interrupted',
        signal: sig,
        exit: code,
        generation: null,
        partNames: ['data'],
        interrupted: "while building part 'data'",
      });
      expect((rec.parts as Record<string, Record<string, unknown>>).data).toMatchObject({ partial: `${genName(2)}.partial`, built: false, resumed: false });
      expect(fs.existsSync(s.lock)).toBe(false);
      expect(fs.readlinkSync(path.join(s.pdir, 'last'))).toBe(genName(1));
      expect(fs.readdirSync(s.pdir).sort()).toEqual(['.hardsnap', genName(1), `${genName(2)}.partial`, 'LATEST', 'last']);
      // the copy of a/big.bin in flight at the signal (a few MiB of 256 were written then; a
      // SIGKILL leaves it so) finished: the stopped run never leaves a truncated file
      const big = path.join(s.pdir, `${genName(2)}.partial`, 'a', 'big.bin');
      expect(fs.statSync(big).size).toBe(BIG);
      // no manifest of the stopped run (its .hsm.tmp is removed by the next run)
      expect(fs.readdirSync(path.join(s.pdir, '.hardsnap', 'manifests')).filter((n) => n.endsWith('.hsm'))).toEqual([`${genName(1)}.hsm`]);

      // status: WARNING while the interrupted partial is the newest thing of the part
      const st = hardsnap(['status', '--spool', s.spool, '--host', 'h1'], at(2));
      expect(st.code, st.stdout).toBe(1);
      expect(st.stdout).toMatch(
        new RegExp(
          `^HARDSNAP WARNING - 1 of 1 part not OK: h1/data: last run interrupted by ${sig} while building part 'data', nothing published; ${genName(2)}\\.partial is left for the next run to resume`,
        ),
      );
      expect(st.stdout).toMatch(/last run interrupted \(exit \d+\)/);
      const l = hardsnap(['list', '--spool', s.spool, '--host', 'h1'], at(2));
      expect(l.stdout).toMatch(new RegExp(`${genName(2)} {2}\\(partial: interrupted, resumed by the next run\\)`));

      // the next run resumes it and keeps what was done
      const r = hardsnap([...s.args, '--verbose'], at(3));
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/resuming the interrupted generation/);
      expect(r.stdout).toMatch(/resumed \(\d+ kept\)/);
      expect(rsyncDiff(s.src, path.join(s.pdir, genName(3)))).toEqual([]);
      expect(hardsnap(['status', '--spool', s.spool, '--host', 'h1'], at(3)).code).toBe(0);
    },
  );

  test('list and status tell a run in progress (the lock holder alive) from an interrupted one (SIGKILL, no record)', async ({ tmp }) => {
    const s = setup(tmp, 4096);
    expect(hardsnap([...s.args], at(1)).code).toBe(0);
    fs.appendFileSync(path.join(s.src, 'top.txt'), 'more\n');
    const c = await pausedInB(s, 2);
    try {
      const l = hardsnap(['list', '--spool', s.spool, '--host', 'h1', '--part', 'data'], at(2));
      expect(l.stdout).toMatch(new RegExp(`${genName(2)} {2}\\(partial: being written by the run in progress, pid ${c.pid} since `));
      const j = JSON.parse(hardsnap(['list', '--spool', s.spool, '--host', 'h1', '--json']).stdout) as { name: string; complete: boolean; state: string }[];
      expect(j.map((g) => [g.name, g.complete, g.state])).toEqual([
        [genName(1), true, 'complete'],
        [genName(2), false, 'in-progress'],
      ]);
      const st = hardsnap(['status', '--spool', s.spool, '--host', 'h1'], at(2));
      expect(st.code, st.stdout).toBe(0);
      expect(st.stdout).toMatch(/h1\/data: OK .*; a run is in progress/);
    } finally {
      c.killGroup('SIGKILL');
      await c.exited;
    }
    // killed: no record, no line; the stale lock and the partial tell
    expect(readRunsLog(s.spool, 'h1').map((r) => r.status)).toEqual(['ok']);
    const l = hardsnap(['list', '--spool', s.spool, '--host', 'h1', '--json']);
    expect((JSON.parse(l.stdout) as { state: string }[]).map((g) => g.state)).toEqual(['complete', 'interrupted']);
    const st = hardsnap(['status', '--spool', s.spool, '--host', 'h1'], at(2));
    expect(st.code, st.stdout).toBe(1);
    expect(st.stdout).toMatch(
      new RegExp(`h1/data: an interrupted run left ${genName(2)}\\.partial \\(killed, or the machine stopped\\); the next run resumes it`),
    );
  });

  test('a run SIGKILLed before its partial exists (in the pre hook) is told by its stale lock: status WARNING until the next run takes it over', async ({
    tmp,
  }) => {
    const s = setup(tmp, 4096);
    expect(hardsnap([...s.args], at(1)).code).toBe(0);
    const pid = path.join(tmp, 'hook.pid');
    const c = spawnHardsnap([...s.args, '--pre-hook', `echo $$ > ${pid}; sleep 60`], at(2));
    await waitForFile(pid, 30_000);
    c.killGroup('SIGKILL');
    await c.exited;
    expect(fs.existsSync(s.lock)).toBe(true);
    expect(fs.readdirSync(s.pdir).filter((n) => n.endsWith('.partial'))).toEqual([]);
    expect(readRunsLog(s.spool, 'h1').map((r) => r.status)).toEqual(['ok']);
    const st = hardsnap(['status', '--spool', s.spool, '--host', 'h1'], at(2));
    expect(st.code, st.stdout).toBe(1);
    expect(st.stdout).toMatch(
      new RegExp(
        `h1/data: WARNING .* - a run ended without a record: its lock is left \\(pid ${c.pid}, started [^:]+:[^:]+:[^:]+: process ${c.pid} is gone\\): killed`,
      ),
    );
    const j = JSON.parse(hardsnap(['status', '--spool', s.spool, '--host', 'h1', '--json']).stdout) as { hosts: { parts: { state: string }[] }[] };
    expect(j.hosts[0]!.parts[0]!.state).toBe('WARNING');
    const r = hardsnap([...s.args], at(3));
    expect(r.code, r.stderr).toBe(0);
    expect(fs.existsSync(s.lock)).toBe(false);
    expect(hardsnap(['status', '--spool', s.spool, '--host', 'h1'], at(3)).code).toBe(0);
  });

  test("a run SIGKILLed while resuming what a SIGTERMed run left is not blamed on the SIGTERM record (a sixth cron trial: status quoted the old record with the new partial's name)", async ({
    tmp,
  }) => {
    const s = setup(tmp, 4096);
    expect(hardsnap([...s.args], at(1)).code).toBe(0);
    fs.appendFileSync(path.join(s.src, 'top.txt'), 'more\n');
    const first = await pausedInB(s, 2);
    first.kill('SIGTERM');
    expect((await first.exited).code).toBe(143);
    const second = await pausedInB(s, 3);
    second.killGroup('SIGKILL');
    await second.exited;
    expect(fs.readdirSync(s.pdir).filter((n) => n.endsWith('.partial'))).toEqual([`${genName(3)}.partial`]);
    expect(readRunsLog(s.spool, 'h1').map((r) => r.status)).toEqual(['ok', 'interrupted']);
    const st = hardsnap(['status', '--spool', s.spool, '--host', 'h1'], at(3));
    expect(st.code, st.stdout).toBe(1);
    expect(st.stdout).toMatch(new RegExp(`h1/data: an interrupted run left ${genName(3)}\\.partial \\(killed, or the machine stopped\\)`));
    expect(st.stdout).not.toMatch(/SIGTERM.*left for the next run/);
  });

  test("a run of another part that takes over the stale lock of a SIGKILLed run says so and records it: status keeps warning for the killed run's part (a seventh cron trial: it went OK)", async ({
    tmp,
  }) => {
    const s = setup(tmp, 4096);
    const other = path.join(tmp, 'other');
    makeTree(other, { o: 'other\n' });
    const both = [...s.args, '--part', `other=${other}`];
    expect(hardsnap(both, at(1)).code).toBe(0);
    const pid = path.join(tmp, 'hook.pid');
    const c = spawnHardsnap([...s.args, '--pre-hook', `echo $$ > ${pid}; sleep 60`], at(2));
    await waitForFile(pid, 30_000);
    c.killGroup('SIGKILL');
    await c.exited;
    const b = hardsnap(['backup', '--spool', s.spool, '--host', 'h1', '--part', `other=${other}`], at(2));
    expect(b.code, b.stderr).toBe(0);
    // one line, under cron too
    expect(b.stderr).toMatch(
      new RegExp(
        `^hardsnap: warning: took over a stale lock of pid ${c.pid} \\(started [^,]+, parts data\\): that backup ended without a record .*recorded as interrupted\n$`,
      ),
    );
    expect(readRunsLog(s.spool, 'h1').at(-2)).toMatchObject({ status: 'interrupted', killed: true, exit: 137, partNames: ['data'], generation: null });
    const st = hardsnap(['status', '--spool', s.spool, '--host', 'h1'], at(2));
    expect(st.code, st.stdout).toBe(1);
    expect(st.stdout).toMatch(
      /h1\/data: WARNING .* - last run \(started [^)]+\) ended without a record: killed, out of memory, or the machine stopped \(a later run took its lock over\)/,
    );
    expect(st.stdout).toMatch(/h1\/other: OK /);
    // a run of the part itself clears it
    expect(hardsnap(s.args, at(3)).code).toBe(0);
    expect(hardsnap(['status', '--spool', s.spool, '--host', 'h1'], at(3)).code).toBe(0);
  });

  test('a prune SIGKILLed mid-way is recorded as a failed prune by the run that takes its lock over (prunes.jsonl), not as a killed backup of every part', async ({
    tmp,
  }) => {
    const s = setup(tmp, 4096);
    for (const n of [1, 2, 3]) {
      fs.appendFileSync(path.join(s.src, 'top.txt'), `${n}\n`);
      expect(hardsnap(s.args, at(n)).code).toBe(0);
    }
    const c = spawnHardsnap(['prune', '--spool', s.spool, '--host', 'h1', '--keep-last', '1'], {
      env: { HARDSNAP_NOW: day(3), HARDSNAP_TEST_PAUSE_AT: 'mid-prune', HARDSNAP_TEST_PAUSE_MS: '60000' },
    });
    await waitFor(() => c.out.stderr.includes('test pause at mid-prune'), 60_000, 5, 'the prune to pause');
    c.killGroup('SIGKILL');
    await c.exited;
    fs.appendFileSync(path.join(s.src, 'top.txt'), '4\n');
    const b = hardsnap(s.args, at(4));
    expect(b.code, b.stderr).toBe(0);
    expect(b.stderr).toMatch(new RegExp(`took over a stale lock of pid ${c.pid} \\(started [^,]+, parts data\\): that prune ended without a record`));
    expect(readRunsLog(s.spool, 'h1').map((r) => r.status)).toEqual(['ok', 'ok', 'ok', 'ok']);
    const prunes = fs
      .readFileSync(path.join(s.spool, 'rsync', 'h1', '.hardsnap', 'prunes.jsonl'), 'utf8')
      .trim()
      .split('\n');
    expect(JSON.parse(prunes.at(-1)!)).toMatchObject({ status: 'failed', partNames: ['data'], error: expect.stringMatching(/ended without a record/) });
    const st = hardsnap(['status', '--spool', s.spool, '--host', 'h1'], at(4));
    expect(st.code, st.stdout).toBe(1);
    expect(st.stdout).toMatch(/h1\/data: WARNING .* - the last prune \([^)]+\) failed: it ended without a record/);
    expect(hardsnap(['prune', '--spool', s.spool, '--host', 'h1', '--keep-last', '1'], at(4)).code).toBe(0);
    expect(hardsnap(['status', '--spool', s.spool, '--host', 'h1'], at(4)).code).toBe(0);
  });

  test("a killed run is not recorded over a newer record of its part (a failure before the lock), and list does not blame that failure for the killed run's partial", async ({
    tmp,
  }) => {
    const s = setup(tmp, 4096);
    const other = path.join(tmp, 'other');
    makeTree(other, { o: 'other\n' });
    expect(hardsnap([...s.args, '--part', `other=${other}`], at(1)).code).toBe(0);
    fs.appendFileSync(path.join(s.src, 'top.txt'), 'more\n');
    const c = await pausedInB(s, 2);
    c.killGroup('SIGKILL');
    await c.exited;
    // the source goes missing: the next run of data fails before the lock (recorded), the partial stays
    fs.renameSync(s.src, `${s.src}.away`);
    const f = hardsnap(s.args, at(3));
    expect(f.code, f.stderr).toBe(2);
    const l = JSON.parse(hardsnap(['list', '--spool', s.spool, '--host', 'h1', '--part', 'data', '--json']).stdout) as { state: string }[];
    expect(l.map((g) => g.state)).toEqual(['complete', 'interrupted']);
    // a run of the other part takes the stale lock over: the failure stays data's last run
    const b = hardsnap(['backup', '--spool', s.spool, '--host', 'h1', '--part', `other=${other}`], at(3));
    expect(b.code, b.stderr).toBe(0);
    expect(b.stderr).toMatch(/took over a stale lock/);
    expect(readRunsLog(s.spool, 'h1').map((r) => r.status)).toEqual(['ok', 'failed', 'ok']);
    const st = hardsnap(['status', '--spool', s.spool, '--host', 'h1'], at(3));
    expect(st.code, st.stdout).toBe(2);
    expect(st.stdout).toMatch(/h1\/data: CRITICAL .* - last run failed \(exit 2\): .*; an interrupted run left .*\.partial \(killed/);
  });

  test('SIGTERM during the prune of backup --prune: the generation being deleted is finished, the prune stops there, exit 143 with one line, prunes.jsonl says so, status warns (an eighth cron trial: exit 0, nothing said)', async ({
    tmp,
  }) => {
    const s = setup(tmp, 4096);
    for (const n of [1, 2, 3]) {
      fs.appendFileSync(path.join(s.src, 'top.txt'), `${n}\n`);
      expect(hardsnap(s.args, at(n)).code).toBe(0);
    }
    fs.appendFileSync(path.join(s.src, 'top.txt'), '4\n');
    const go = path.join(tmp, 'go');
    const c = spawnHardsnap([...s.args, '--prune', '--keep-last', '1'], {
      env: { HARDSNAP_NOW: day(4), HARDSNAP_TEST_PAUSE_AT: 'mid-prune', HARDSNAP_TEST_PAUSE_UNTIL: go, HARDSNAP_TEST_PAUSE_MS: '60000' },
    });
    await waitFor(() => c.out.stderr.includes('test pause at mid-prune'), 60_000, 5, 'the prune to pause');
    c.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    fs.writeFileSync(go, '');
    const done = await c.exited;
    expect(done.code, c.out.stderr).toBe(143);
    expect(errorLines(c.out.stderr)).toEqual([
      `hardsnap: warning: interrupted by SIGTERM after publishing ${genName(4)}: the generation stands; what was to follow it (post hook, --prune) was stopped or skipped`,
    ]);
    // the first one was in the trash when the signal came: deleted; the others are kept for the next prune
    expect(
      fs
        .readdirSync(s.pdir)
        .filter((n) => n.startsWith('20'))
        .sort(),
    ).toEqual([genName(2), genName(3), genName(4)]);
    const prunes = fs
      .readFileSync(path.join(s.spool, 'rsync', 'h1', '.hardsnap', 'prunes.jsonl'), 'utf8')
      .trim()
      .split('\n');
    expect(JSON.parse(prunes.at(-1)!)).toMatchObject({
      status: 'interrupted',
      parts: {
        data: {
          removed: [genName(1)],
          notMoved: [
            { generation: genName(2), code: 'EINTR' },
            { generation: genName(3), code: 'EINTR' },
          ],
        },
      },
    });
    const st = hardsnap(['status', '--spool', s.spool, '--host', 'h1'], at(4));
    expect(st.code, st.stdout).toBe(1);
    expect(st.stdout).toMatch(/the last prune \([^)]+\) kept 2 generations it was to remove \(EINTR: the prune was stopped by SIGTERM\)/);
    expect(hardsnap(['prune', '--spool', s.spool, '--host', 'h1', '--keep-last', '1'], at(4)).code).toBe(0);
    expect(hardsnap(['status', '--spool', s.spool, '--host', 'h1'], at(4)).code).toBe(0);
  });

  test.runIf(isRoot)(
    'a run SIGKILLed under another host name on this kernel (a UTS namespace, a renamed host) leaves a lock that is stale all the same (a ninth cron trial: "in progress" and OK for ever)',
    async ({ tmp }) => {
      const s = setup(tmp, 4096);
      expect(hardsnap(s.args, at(1)).code).toBe(0);
      const run = await heldInNamespace(tmp, s, ['-u'], 'hostname otherbox && ');
      const lock = JSON.parse(fs.readFileSync(s.lock, 'utf8')) as { hostname: string; pid: number };
      expect(lock.hostname).toBe('otherbox');
      await run.kill();
      expectStaleThenTakenOver(s, lock.pid, `process ${lock.pid} is gone`);
    },
  );

  test.runIf(spawnSync('strace', ['-V']).status === 0)(
    'SIGTERM while the run flushes the spool (syncfs, delayed 3 s by strace): handled before publishing, exit 143 and one line (a tenth cron trial: exit 0, silent, recorded ok)',
    async ({ tmp }) => {
      const s = setup(tmp, 4096);
      expect(hardsnap(s.args, at(1)).code).toBe(0);
      fs.appendFileSync(path.join(s.src, 'top.txt'), 'more\n');
      const trace = path.join(tmp, 'strace.out');
      const c = spawn('strace', ['-f', '-e', 'trace=syncfs', '-e', 'inject=syncfs:delay_enter=3000000:when=1', '-o', trace, BIN, ...s.args], {
        env: { ...process.env, HARDSNAP_NOW: day(2) },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      c.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((r) => c.on('exit', (code) => r(code)));
      let pid = 0;
      await waitFor(
        () => {
          const m = fs.existsSync(trace) ? /^(\d+) +syncfs\(/m.exec(fs.readFileSync(trace, 'utf8')) : null;
          if (m) pid = Number(m[1]);
          return pid > 0;
        },
        30_000,
        10,
        'the run to flush',
      );
      process.kill(pid, 'SIGTERM');
      expect(await exited).toBe(143);
      expect(errorLines(stderr)).toEqual([
        expect.stringMatching(/^hardsnap: error: interrupted by SIGTERM before publishing .*nothing published, 'last' untouched/),
      ]);
      expect(readRunsLog(s.spool, 'h1').at(-1)).toMatchObject({ status: 'interrupted', signal: 'SIGTERM', exit: 143, interrupted: 'before publishing' });
      expect(fs.readlinkSync(path.join(s.pdir, 'last'))).toBe(genName(1));
      expect(hardsnap(['status', '--spool', s.spool, '--host', 'h1'], at(2)).code).toBe(1);
    },
  );

  test.runIf(isRoot)(
    'a run in another pid namespace (a container, unshare -p) on this kernel: alive, its lock holds; SIGKILLed, it is stale (a tenth cron trial: "in progress" for ever)',
    async ({ tmp }) => {
      const s = setup(tmp, 4096);
      expect(hardsnap(s.args, at(1)).code).toBe(0);
      const run = await heldInNamespace(tmp, s, ['-p', '-f', '--mount-proc']);
      try {
        const lock = JSON.parse(fs.readFileSync(s.lock, 'utf8')) as { pid: number; pidNs: string };
        expect(lock.pidNs).not.toBe(fs.readlinkSync('/proc/self/ns/pid'));
        // alive: its lock holds (a pid of its namespace is not one of ours)
        const busy = hardsnap(s.args, at(2));
        expect(busy.code, busy.stderr).toBe(3);
        expect(hardsnap(['status', '--spool', s.spool, '--host', 'h1'], at(2)).stdout).toMatch(/a run is in progress/);
        await run.kill();
        expectStaleThenTakenOver(s, lock.pid, 'of pid namespace .* is gone');
      } finally {
        await run.kill();
      }
    },
  );

  test('list names a partial left by a failed run (a refused source) as such, not as interrupted', ({ tmp }) => {
    const s = setup(tmp, 4096);
    expect(hardsnap([...s.args], at(1)).code).toBe(0);
    fs.rmSync(path.join(s.src, 'b'), { recursive: true });
    const r = hardsnap([...s.args], at(2));
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/refusing to publish/);
    const l = hardsnap(['list', '--spool', s.spool, '--host', 'h1']);
    expect(l.stdout).toMatch(new RegExp(`${genName(2)} {2}\\(partial: left by the last run, which failed \\(exit 2\\); resumed by the next run\\)`));
    const j = JSON.parse(hardsnap(['list', '--spool', s.spool, '--host', 'h1', '--json']).stdout) as { state: string }[];
    expect(j.map((g) => g.state)).toEqual(['complete', 'failed']);
  });

  test("SIGTERM while waiting for the lock (--wait): exit 143, recorded, the holder's lock untouched", async ({ tmp }) => {
    const s = setup(tmp, 4096);
    expect(hardsnap([...s.args], at(1)).code).toBe(0);
    const holder = spawnHardsnap(s.args, { env: { HARDSNAP_NOW: day(2), HARDSNAP_TEST_PAUSE_AT: 'before-publish', HARDSNAP_TEST_PAUSE_MS: '60000' } });
    try {
      await waitFor(() => holder.out.stderr.includes('test pause at before-publish'), 60_000, 10, 'the holder to pause');
      const lockBefore = fs.readFileSync(s.lock, 'utf8');
      const waiter = spawnHardsnap([...s.args, '--wait', '10m'], at(3));
      await new Promise((r) => setTimeout(r, 1500));
      expect(waiter.exitCode).toBeNull();
      waiter.kill('SIGTERM');
      const done = await waiter.exited;
      expect(done.code, waiter.out.stderr).toBe(143);
      expect(waiter.out.stderr).toMatch(/^hardsnap: error: interrupted by SIGTERM while waiting for the lock: nothing published, 'last' untouched\n$/);
      expect(fs.readFileSync(s.lock, 'utf8')).toBe(lockBefore);
      expect(readRunsLog(s.spool, 'h1').at(-1)).toMatchObject({
        status: 'interrupted',
        signal: 'SIGTERM',
        interrupted: 'while waiting for the lock',
        exit: 143,
      });
    } finally {
      holder.killGroup('SIGKILL');
      await holder.exited;
    }
  });

  test("SIGTERM during the pre hook stops the hook's group; a second signal exits at once without waiting for a hook that ignores SIGTERM", async ({ tmp }) => {
    const s = setup(tmp, 4096);
    const pid = path.join(tmp, 'hook.pid');
    const c = spawnHardsnap([...s.args, '--pre-hook', `trap '' TERM; echo $$ > ${pid}; sleep 60 & wait; sleep 60`], at(1));
    await waitForFile(pid, 30_000);
    await new Promise((r) => setTimeout(r, 200));
    c.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    expect(c.exitCode).toBeNull(); // waiting for the hook (5 s grace before SIGKILL)
    const t0 = Date.now();
    c.kill('SIGTERM');
    const done = await c.exited;
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(done.code).toBe(143);
    expect(c.out.stderr).toMatch(/interrupted again by SIGTERM: exiting at once/);
    c.killGroup('SIGKILL'); // what is left of the hook (it ignored SIGTERM)
  });
});

describe('a signal after the run has ended', () => {
  test("SIGTERM once backup --prune has recorded everything: one line, the run's own exit code (a re-attack: exit 143 and no line, while runs.jsonl, prunes.jsonl and status said ok)", async ({
    tmp,
  }) => {
    const src = path.join(tmp, 'src');
    makeTree(src, { a: 'a' });
    const spool = makeSpool(path.join(tmp, 'spool'));
    const args = ['backup', '--spool', spool, '--host', 'h1', '--part', `p=${src}`, '--prune', '--keep-last', '1'];
    expect(hardsnap(args, at(1)).code).toBe(0);
    const go = path.join(tmp, 'go');
    const c = spawnHardsnap(args, { env: { HARDSNAP_NOW: day(2), HARDSNAP_TEST_PAUSE_AT: 'backup-ended', HARDSNAP_TEST_PAUSE_UNTIL: go } });
    await waitFor(() => c.out.stderr.includes('test pause at backup-ended'), 30_000, 10, 'the run to end');
    c.kill('SIGTERM');
    fs.writeFileSync(go, '');
    const end = await c.exited;
    expect(end, c.out.stderr).toEqual({ code: 0, signal: null });
    expect(c.out.stderr).toMatch(/^hardsnap: note: SIGTERM arrived after the run had ended: nothing was stopped$/m);
    expect(readRunsLog(spool, 'h1').at(-1)).toMatchObject({ status: 'ok', exit: 0 });
    expect(fs.readdirSync(path.join(spool, 'rsync', 'h1', 'p')).filter((n) => /^\d{4}-/.test(n))).toEqual([genName(2)]);
  });
});

describe('the core stops cleanly on an aborted signal (in process)', () => {
  test('runBackup throws the InterruptedError, releases the lock and closes every descriptor it opened', async ({ tmp }) => {
    const s = setup(tmp, 4096);
    const fds = () => fs.readdirSync('/proc/self/fd').length;
    const ac = new AbortController();
    process.env.HARDSNAP_TEST_PAUSE_AT = 'after-scan';
    process.env.HARDSNAP_TEST_PAUSE_DIR = 'b';
    process.env.HARDSNAP_TEST_PAUSE_MS = '60000';
    const before = fds();
    try {
      const run = runBackup(
        {
          spool: s.spool,
          host: 'h1',
          parts: [{ name: 'data', source: s.src }],
          exclude: [],
          oneFileSystem: false,
          dryRun: false,
          allowEmpty: false,
          flush: false,
          waitMs: 0,
          parallelParts: false,
          now: new Date(day(1)),
          command: 'test',
          signal: ac.signal,
        },
        { onProblem: () => {}, onNote: () => {} },
      );
      setTimeout(() => ac.abort(new InterruptedError('SIGINT')), 300);
      const err = await run.then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(InterruptedError);
      expect((err as InterruptedError).exit).toBe(130);
    } finally {
      delete process.env.HARDSNAP_TEST_PAUSE_AT;
      delete process.env.HARDSNAP_TEST_PAUSE_DIR;
      delete process.env.HARDSNAP_TEST_PAUSE_MS;
    }
    expect(fds()).toBe(before);
    expect(fs.existsSync(s.lock)).toBe(false);
    expect(readRunsLog(s.spool, 'h1').at(-1)).toMatchObject({ status: 'interrupted', signal: 'SIGINT', exit: 130 });
  });
});
