// Hooks and --min-interval, end to end through bin/hardsnap: what a hook sees, what its failure
// does, that a timeout kills its whole process group, and that a skipped run is a quiet exit 0.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, test } from './helpers/fixture.js';
import { at, hardsnap, spawnHardsnap, waitForFile } from './helpers/run.js';
import { makeTree } from './helpers/tree.js';
import { generationNames, readRunsLog } from './helpers/ops.js';
import { parseConfig } from '../src/config/load.js';
import { exampleConfig } from '../src/config/example.js';
import { OUTPUT_LIMIT, runHook } from '../src/hooks/run-hook.js';
import { makeSpool } from './helpers/spool.js';

const HOST = 'h1';

function setup(tmp: string) {
  const spool = makeSpool(path.join(tmp, 'spool'));
  const a = path.join(tmp, 'a');
  const b = path.join(tmp, 'b');
  makeTree(a, { x: 'x' });
  makeTree(b, { y: 'y' });
  const base = ['backup', '--spool', spool, '--host', HOST, '--part', `a=${a}`, '--part', `b/sub=${b}`];
  return { spool, a, b, base };
}

function envFile(file: string): Record<string, string> {
  return Object.fromEntries(
    fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('HARDSNAP_'))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

/** True when `pid` still runs after up to 1 s; a zombie (pid 1 in a container may never reap it) counts as gone. */
async function stillRunning(pid: number): Promise<boolean> {
  const running = () => {
    try {
      return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch {
      return false;
    }
  };
  for (let i = 0; i < 50; i++) {
    if (!running()) return false;
    await new Promise((res) => setTimeout(res, 20));
  }
  return running();
}

describe('hooks', () => {
  test('pre and post hooks see the spool, host, generation, parts, and the post hook the status and exit', ({ tmp }) => {
    const { spool, base } = setup(tmp);
    const pre = path.join(tmp, 'pre.env');
    const post = path.join(tmp, 'post.env');
    const r = hardsnap([...base, '--pre-hook', `env > ${pre}; echo pre-out; echo pre-err >&2`, '--post-hook', `env > ${post}`], at('2026-06-01T03:00:00Z'));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toBe(''); // hooks that succeed are silent under cron
    const common = { HARDSNAP_SPOOL: spool, HARDSNAP_HOST: HOST, HARDSNAP_GENERATION: '2026-06-01T030000Z', HARDSNAP_PARTS: 'a' }; // env prints b/sub on the next line
    expect(envFile(pre)).toEqual({ ...common, HARDSNAP_NOW: '2026-06-01T03:00:00Z' });
    expect(envFile(post)).toEqual({ ...common, HARDSNAP_NOW: '2026-06-01T03:00:00Z', HARDSNAP_STATUS: 'ok', HARDSNAP_EXIT: '0' });
    const rec = readRunsLog(spool, HOST).at(-1) as { hooks: Record<string, { exit: number; output: string }> };
    expect(rec.hooks.pre).toMatchObject({ exit: 0, output: 'pre-out\npre-err\n' });
    expect(rec.hooks.post).toMatchObject({ exit: 0, output: '' });
  });

  test('HARDSNAP_PARTS is one part name per line, so a part name with spaces stays one name', ({ tmp }) => {
    const spool = makeSpool(path.join(tmp, 'spool'));
    const a = path.join(tmp, 'a');
    const b = path.join(tmp, 'b');
    makeTree(a, { x: 'x' });
    makeTree(b, { y: 'y' });
    const out = path.join(tmp, 'parts.txt');
    const hook = `printf '%s\\n' "$HARDSNAP_PARTS" | while IFS= read -r p; do printf '[%s]' "$p"; done > ${out}`;
    const r = hardsnap(
      ['backup', '--spool', spool, '--host', HOST, '--part', `my docs=${a}`, '--part', `b/sub=${b}`, '--post-hook', hook],
      at('2026-06-01T03:00:00Z'),
    );
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(out, 'utf8')).toBe('[my docs][b/sub]');
  });

  test('a failing pre hook aborts with exit 2 before anything is written, and the post hook still runs with failed', ({ tmp }) => {
    const { spool, base } = setup(tmp);
    const ok = hardsnap(base, at('2026-06-01T03:00:00Z'));
    expect(ok.code, ok.stderr).toBe(0);
    const post = path.join(tmp, 'post.env');
    const r = hardsnap([...base, '--pre-hook', 'echo dump failed: disk full; exit 7', '--post-hook', `env > ${post}`], at('2026-06-02T03:00:00Z'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/pre hook exited with status 7/);
    expect(r.stderr).toMatch(/dump failed: disk full/); // its output, so cron mails it
    for (const part of ['a', 'b/sub']) {
      const pdir = path.join(spool, 'rsync', HOST, ...part.split('/'));
      expect(fs.readdirSync(pdir).sort()).toEqual(['.hardsnap', '2026-06-01T030000Z', 'LATEST', 'last']); // no new generation, no .partial
      expect(fs.readdirSync(path.join(pdir, '.hardsnap', 'manifests'))).toEqual(['2026-06-01T030000Z.hsm']);
      expect(fs.readlinkSync(path.join(pdir, 'last'))).toBe('2026-06-01T030000Z');
    }
    expect(envFile(post)).toMatchObject({ HARDSNAP_STATUS: 'failed', HARDSNAP_EXIT: '2' });
    const rec = readRunsLog(spool, HOST).at(-1) as { status: string; exit: number; hooks: Record<string, { exit: number; output: string }> };
    expect(rec).toMatchObject({ status: 'failed', exit: 2 });
    expect(rec.hooks.pre).toMatchObject({ exit: 7, output: 'dump failed: disk full\n' });
  });

  test('the post hook runs after a failed backup too (a clock behind the newest generation)', ({ tmp }) => {
    const { base } = setup(tmp);
    expect(hardsnap(base, at('2026-06-05T03:00:00Z')).code).toBe(0);
    const post = path.join(tmp, 'post.env');
    const r = hardsnap([...base, '--post-hook', `env > ${post}`], at('2026-06-01T03:00:00Z'));
    expect(r.code).toBe(2);
    expect(envFile(post)).toMatchObject({ HARDSNAP_STATUS: 'failed', HARDSNAP_EXIT: '2', HARDSNAP_GENERATION: '' });
  });

  test('a failing post hook is a warning: the published backup keeps exit 0', ({ tmp }) => {
    const { spool, base } = setup(tmp);
    const r = hardsnap([...base, '--post-hook', 'echo tape robot offline; exit 3'], at('2026-06-01T03:00:00Z'));
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/warning: post hook exited with status 3.*exit code is still the backup's/);
    expect(r.stderr).toMatch(/tape robot offline/);
    expect(generationNames(spool, HOST, 'a')).toEqual(['2026-06-01T030000Z']);
  });

  test('a hook past --hook-timeout is killed with its whole process group and fails the run', async ({ tmp }) => {
    const { spool, base } = setup(tmp);
    const bg = path.join(tmp, 'bg.pid');
    const t0 = Date.now();
    const r = hardsnap([...base, '--hook-timeout', '1s', '--pre-hook', `sleep 60 & echo $! > ${bg}; sleep 60`], at('2026-06-01T03:00:00Z'));
    expect(r.code).toBe(2);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(r.stderr).toMatch(/pre hook timed out and was killed/);
    const pid = Number(fs.readFileSync(bg, 'utf8'));
    const alive = await stillRunning(pid);
    expect(alive, `background child ${pid} of the hook survived`).toBe(false);
    expect(generationNames(spool, HOST, 'a')).toEqual([]);
    expect(readRunsLog(spool, HOST).at(-1)).toMatchObject({ status: 'failed', hooks: { pre: { timedOut: true } } });
  });

  test('hardsnap stopped with SIGTERM while a hook runs takes the hook and its children down with it', async ({ tmp }) => {
    const { base } = setup(tmp);
    const bg = path.join(tmp, 'bg.pid');
    const child = spawnHardsnap([...base, '--pre-hook', `sleep 60 & echo $! > ${bg}; sleep 60`], at('2026-06-01T03:00:00Z'));
    await waitForFile(bg, 20_000);
    await new Promise((res) => setTimeout(res, 100)); // the pid written in full
    const pid = Number(fs.readFileSync(bg, 'utf8'));
    child.kill('SIGTERM'); // hardsnap alone, as cron or an admin would
    const { code } = await child.exited;
    // stopped cleanly: the hook's group first, then one line and 128 + 15 (test/interrupt.test.ts)
    expect(code, child.out.stderr).toBe(143);
    expect(child.out.stderr).toMatch(/^hardsnap: error: interrupted by SIGTERM while the pre hook ran: nothing published/m);
    // one line, as for any interrupted run (a trial found a second one about the killed hook)
    expect(child.out.stderr.trim().split('\n'), child.out.stderr).toHaveLength(1);
    const alive = await stillRunning(pid);
    child.killGroup('SIGKILL'); // clean up whatever is left of the test's group
    expect(alive, `hook child ${pid} outlived hardsnap`).toBe(false);
  });

  test('SIGTERM during the post hook: the generation stands, exit 143, and the warning and runs.jsonl say the same (they said "the exit code is still the backup\'s" and exit 0; a cron trial)', async ({
    tmp,
  }) => {
    const { spool, base } = setup(tmp);
    const started = path.join(tmp, 'post.started');
    const child = spawnHardsnap([...base, '--post-hook', `touch ${started}; sleep 30`], at('2026-06-01T03:00:00Z'));
    await waitForFile(started, 20_000);
    child.kill('SIGTERM');
    const { code } = await child.exited;
    expect(code, child.out.stderr).toBe(143);
    expect(child.out.stderr).toMatch(/post hook was killed by SIGTERM: .*; the generation stands, the exit code is the signal's/);
    expect(child.out.stderr).not.toMatch(/still the backup's/);
    expect(generationNames(spool, HOST, 'a')).toEqual(['2026-06-01T030000Z']);
    expect(readRunsLog(spool, HOST).at(-1)).toMatchObject({
      status: 'ok',
      exit: 143,
      signal: 'SIGTERM',
      interrupted: 'after publishing (during the post hook)',
    });
    // status warns: the hook was killed and no prune ran (it said OK)
    const st = hardsnap(['status', '--spool', spool, '--host', HOST], at('2026-06-01T03:10:00Z'));
    expect(st.code, st.stdout).toBe(1);
    expect(st.stdout).toMatch(
      /last run stopped by SIGTERM after publishing \(during the post hook\) \(exit 143\): the generation stands; what was to follow it \(post hook, --prune\) was stopped or skipped/,
    );
  });

  test('config hooks run as argv without a shell; a pre hook may fill an empty part before it is checked', ({ tmp }) => {
    const { spool, a } = setup(tmp);
    const dump = path.join(tmp, 'dump');
    fs.mkdirSync(dump);
    const cfg = path.join(tmp, 'hs.yaml');
    fs.writeFileSync(
      cfg,
      [
        `spool: ${spool}`,
        `host: ${HOST}`,
        'parts:',
        `  files: ${a}`,
        `  db: ${dump}`,
        'hooks:',
        `  pre: ["/bin/cp", "/etc/hostname", "${dump}/dump.sql"]`,
        '  post: ["/bin/echo", "$HOME; not a shell"]',
        '  timeout: 30s',
      ].join('\n') + '\n',
    );
    const r = hardsnap(['backup', '--config', cfg], at('2026-06-01T03:00:00Z'));
    expect(r.code, r.stderr).toBe(0);
    const gen = path.join(spool, 'rsync', HOST, 'db', '2026-06-01T030000Z');
    expect(fs.readFileSync(path.join(gen, 'dump.sql'))).toEqual(fs.readFileSync('/etc/hostname'));
    const rec = readRunsLog(spool, HOST).at(-1) as { hooks: Record<string, { output: string }> };
    expect(rec.hooks.post!.output).toBe('$HOME; not a shell\n');
  });

  test('a bad hooks.timeout in the config is exit 1 with its line and column, nothing run', ({ tmp }) => {
    const { spool, a } = setup(tmp);
    const cfg = path.join(tmp, 'hs.yaml');
    const marker = path.join(tmp, 'ran');
    fs.writeFileSync(cfg, `spool: ${spool}\nhost: ${HOST}\nparts:\n  a: ${a}\nhooks:\n  pre: ["/usr/bin/touch", "${marker}"]\n  timeout: 10x\n`);
    const r = hardsnap(['backup', '--config', cfg]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${cfg}:7:12: hooks.timeout`);
    expect(fs.existsSync(marker)).toBe(false);
    expect(fs.readdirSync(spool)).toEqual(['.hardsnap-spool']);
  });
});

describe('--min-interval', () => {
  test('skips quietly with exit 0 while every part is younger, records it, and runs once one part is older', ({ tmp }) => {
    const { spool, base, b } = setup(tmp);
    const pre = path.join(tmp, 'pre-ran');
    expect(hardsnap(base, at('2026-06-01T03:00:00Z')).code).toBe(0);
    const skip = hardsnap([...base, '--min-interval', '20h', '--pre-hook', `touch ${pre}`], at('2026-06-01T22:00:00Z'));
    expect(skip.code, skip.stderr).toBe(0);
    expect(skip.stdout + skip.stderr).toBe(''); // cron mails nothing
    expect(fs.existsSync(pre)).toBe(false); // nothing done, not even hooks
    expect(generationNames(spool, HOST, 'a')).toEqual(['2026-06-01T030000Z']);
    expect(readRunsLog(spool, HOST).at(-1)).toMatchObject({ status: 'skipped', exit: 0, generation: null });
    const verbose = hardsnap([...base, '--min-interval', '20h', '--verbose'], at('2026-06-01T22:00:00Z'));
    expect(verbose.code).toBe(0);
    expect(verbose.stderr).toMatch(/younger than --min-interval 20h.*nothing to do/);

    // a new part has no generation: the run must happen
    const c = path.join(tmp, 'c');
    makeTree(c, { z: 'z' });
    const withNew = hardsnap([...base, '--part', `c=${c}`, '--min-interval', '20h'], at('2026-06-01T23:00:00Z'));
    expect(withNew.code, withNew.stderr).toBe(0);
    expect(generationNames(spool, HOST, 'c')).toEqual(['2026-06-01T230000Z']);

    // once older than the interval, the run happens
    const later = hardsnap(['backup', '--spool', spool, '--host', HOST, '--part', `b/sub=${b}`, '--min-interval', '20h'], at('2026-06-02T20:00:00Z'));
    expect(later.code, later.stderr).toBe(0);
    expect(generationNames(spool, HOST, 'b/sub')).toEqual(['2026-06-01T030000Z', '2026-06-01T230000Z', '2026-06-02T200000Z']);
  });
});

describe('init', () => {
  test('hardsnap init prints the example config, which parses', () => {
    const r = hardsnap(['init']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(exampleConfig());
    const cfg = parseConfig(r.stdout, 'init.yaml');
    expect(cfg.hooks?.pre).toBeDefined();
    expect(cfg.retention).toMatchObject({ daily: 7, weekly: 4, monthly: 3 });
  });
});

describe('runHook', () => {
  test('keeps the end of a long output, at most 64 KiB, and says how much was cut', async () => {
    const r = await runHook(
      {
        argv: [
          '/bin/sh',
          '-c',
          'i=0; while [ $i -lt 3000 ]; do echo "line $i ......................................................................"; i=$((i+1)); done',
        ],
      },
      {},
      30_000,
    );
    expect(r.ok).toBe(true);
    expect(Buffer.byteLength(r.output)).toBeLessThan(OUTPUT_LIMIT + 100);
    expect(r.output).toMatch(/^\[\.\.\. \d+ bytes cut \.\.\.\]\n/);
    expect(r.output.endsWith('line 2999 ......................................................................\n')).toBe(true);
  });

  test('a hook killed by a signal, or that cannot be started, fails with the reason', async () => {
    const killed = await runHook({ shell: 'kill -9 $$' }, {}, 30_000);
    expect(killed).toMatchObject({ ok: false, exit: null, signal: 'SIGKILL', timedOut: false });
    const missing = await runHook({ argv: ['/nonexistent/dump-db'] }, {}, 30_000);
    expect(missing.ok).toBe(false);
    expect(missing.error).toMatch(/ENOENT/);
  });
});
