#!/usr/bin/env node
// `npm run bench`: hardsnap against the tools it competes with, side by side, in one run
// (issue 20). Each section prints its rounds, then a table: work | hardsnap | [--compare
// builds] | floor | rsync --link-dest | rsnapshot's way | ratio | target | MET / SHORT; the run
// ends with every section's rows in one table. The method (interleaved rounds, medians, nothing
// deleted while timing, the load average) is in scripts/bench/util.mjs and docs/PERFORMANCE.md.
//
//   npm run bench -- [--only 100k,30k,first,history,latency,1m] [--big] [--rounds 3] [--quick]
//                    [--compare DIR[,DIR]] [--dir /var/tmp/hardsnap-bench] [--keep]
//                    [--files 100000] [--small-files 30000] [--first-files 100000]
//                    [--big-files 1000000] [--latency-files 10000] [--latency-us 500]
//                    [--history-days 10] [--history-repo GIT_DIR] [--hardsnap-args "..."]
//
// Sections (the default: all but 1m; --big adds it):
//   100k     incremental, 100,000 files, one mutate.py day    <= 0.8x the floor, <= 0.3x rsync
//   30k      incremental, 30,000 files                         <= 1.0x the floor
//   first    first generation, 100,000 files                   <= 0.7x cp -a
//   history  a public repository's history, one commit a day   <= 0.8x the fastest peer, checks pass
//   latency  10,000 files, spool or source on latencyfs        <= 0.1x rsync
//   1m       incremental, 1,000,000 files (minutes)            <= 10x the 100k one, peak RSS <= 200 MB
//   hash     hash throughput (scripts/bench-hash.mjs), only when asked for
//   watch    watch mode (scripts/bench-watch.mjs), only when asked for
// --quick: small sizes (a smoke test of the bench itself; its verdicts mean nothing).
// --compare DIR: another build of hardsnap (e.g. /work/wt-base) as a further column, run in
// the same rounds. Trees are made once (mktree.py, mutate.py) and kept in DIR/trees.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { first } from './bench/first.mjs';
import { history } from './bench/history.mjs';
import { incremental } from './bench/incremental.mjs';
import { latency } from './bench/latency.mjs';
import { million } from './bench/million.mjs';
import { Build, ROOT, Workdir, fmtN, freeBytes, load, secs, sh, table } from './bench/util.mjs';

const argv = process.argv.slice(2);
const FLAGS = new Set(['big', 'quick', 'keep', 'help']);
const VALUED = new Set(['only', 'rounds', 'compare', 'dir', 'files', 'small-files', 'first-files', 'big-files', 'latency-files', 'latency-us', 'history-days', 'history-repo', 'hardsnap-args']);
for (let i = 0; i < argv.length; i++) {
  const name = argv[i].slice(2);
  if (VALUED.has(name) && i + 1 < argv.length) i++;
  else if (!FLAGS.has(name)) {
    console.error(`bench: unknown option ${argv[i]} (npm run bench -- --help)`);
    process.exit(1);
  }
}
const opt = (name, dflt) => (argv.includes(`--${name}`) ? argv[argv.indexOf(`--${name}`) + 1] : dflt);
const flag = (name) => argv.includes(`--${name}`);
if (flag('help')) {
  const head = fs.readFileSync(new URL(import.meta.url), 'utf8').split('\n').slice(1).filter((l) => l.startsWith('//'));
  console.log(head.map((l) => l.slice(3)).join('\n'));
  process.exit(0);
}
const QUICK = flag('quick');
const num = (name, full, quick) => Number(opt(name, QUICK ? quick : full));
const SIZES = {
  files: num('files', 100_000, 3000),
  small: num('small-files', 30_000, 1000),
  first: num('first-files', 100_000, 3000),
  big: num('big-files', 1_000_000, 20_000),
  latency: num('latency-files', 10_000, 500),
  latencyUs: num('latency-us', 500, 500),
  days: num('history-days', 10, 3),
};
const ROUNDS = Number(opt('rounds', 3));
const ALL = ['100k', '30k', 'first', 'history', 'latency', '1m', 'hash', 'watch'];
const ONLY = opt('only', null)?.split(',') ?? ['100k', '30k', 'first', 'history', 'latency', ...(flag('big') ? ['1m'] : [])];
for (const s of ONLY) if (!ALL.includes(s)) throw new Error(`--only: no section ${s} (sections: ${ALL.join(', ')})`);
const DIR = path.resolve(opt('dir', '/var/tmp/hardsnap-bench'));
const REPO = opt('history-repo', '/work/.mirror/u-boot+u-boot/repo');
const hsExtra = opt('hardsnap-args', '').split(' ').filter(Boolean);

const say = (s = '') => console.log(s);
const builds = [new Build(ROOT, 'hardsnap')];
for (const dir of (opt('compare', '') || '').split(',').filter(Boolean)) {
  let label = path.basename(path.resolve(dir));
  if (['hardsnap', 'floor', 'rsync', 'rsnapshot', ...builds.map((b) => b.label)].includes(label)) label = `${label}-${builds.length}`;
  builds.push(new Build(dir, label));
}
const commit = (dir) => {
  const r = spawnSync('git', ['-C', dir, 'log', '-1', '--format=%h %cs %s'], { encoding: 'utf8' });
  const dirty = spawnSync('git', ['-C', dir, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).stdout.trim();
  return r.status === 0 ? `${r.stdout.trim().slice(0, 70)}${dirty ? ' (with uncommitted changes)' : ''}` : 'not a git checkout';
};

fs.mkdirSync(DIR, { recursive: true });
const work = new Workdir(DIR);
const t0 = process.hrtime.bigint();
const cpus = os.cpus();
const fsType = sh('findmnt', ['-n', '-o', 'SOURCE,FSTYPE,OPTIONS', '-T', DIR], { allowFail: true }).stdout.trim().replace(/\s+/g, ' ');
say(`hardsnap benchmark, ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}`);
say(`machine: ${cpus.length} CPUs (${cpus[0]?.model.trim() ?? '?'}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, kernel ${os.release()}, node ${process.version}, ${sh('rsync', ['--version']).stdout.split('\n')[0].replace(/\s+/g, ' ')}`);
say(`bench directory: ${DIR} on ${fsType || '?'} (${(freeBytes(DIR) / 2 ** 30).toFixed(0)} GiB free)`);
for (const b of builds) say(`build ${b.label}: ${b.dir} at ${commit(b.dir)}`);
if (hsExtra.length) say(`every hardsnap backup also gets: ${hsExtra.join(' ')}`);
say(`sections: ${ONLY.join(', ')}; ${ROUNDS} rounds${QUICK ? '; --quick: small sizes, the verdicts mean nothing' : ''}`);
say(`load average at the start: ${load()}`);
work.start(say);

const ctx = { work, builds, rounds: ROUNDS, say, hsExtra };
const all = [];
const results = {};
const compareLabels = builds.slice(1).map((b) => b.label);
/** GiB each section may write, so that a run on a small disk clears earlier sections' work first */
const NEEDS = { '100k': 4 * SIZES.files / 1e5, '30k': 4 * SIZES.small / 1e5, first: 1.2 * SIZES.first / 1e5 * 5 * ROUNDS, history: 3, latency: 1, '1m': 13 * SIZES.big / 1e6 };

function section(key, title, fn) {
  if (!ONLY.includes(key)) return;
  say(`\n== ${title} ==`);
  const need = (NEEDS[key] ?? 0) * 2 ** 30 + 10 * 2 ** 30;
  if (freeBytes(DIR) < need) {
    say(`  only ${(freeBytes(DIR) / 2 ** 30).toFixed(0)} GiB free: deleting the earlier sections' work first`);
    work.clear(say);
    work.settle(say);
  }
  const s0 = process.hrtime.bigint();
  say(`  load average before: ${load()}`);
  try {
    const r = fn();
    results[key] = r;
    if (r?.rows?.length) {
      say(`  load average after: ${load()}; ${secs(s0).toFixed(0)} s`);
      say('');
      table(r.rows, compareLabels, say, { quick: QUICK });
      all.push(...r.rows);
    }
  } catch (e) {
    say(`  FAILED: ${e.stack ?? e}`);
    all.push({ work: title, cells: {}, ratio: null, target: null, targetText: '', vs: '', verdict: 'FAILED', note: String(e.message ?? e).split('\n')[0] });
  }
}

section('100k', `100k incremental: ${fmtN(SIZES.files)} files (mktree.py), one mutate.py day`, () => incremental(ctx, {
  key: '100k', title: '100k incremental', files: SIZES.files, contenders: ['floor', 'rsync', 'rsnapshot'], checkFirst: true,
  targets: [{ vs: 'floor', max: 0.8 }, { vs: 'rsync', max: 0.3 }],
}));
section('30k', `30k incremental: ${fmtN(SIZES.small)} files (mktree.py), one mutate.py day`, () => incremental(ctx, {
  key: '30k', title: '30k incremental', files: SIZES.small, contenders: ['floor', 'rsync', 'rsnapshot'], checkFirst: true,
  targets: [{ vs: 'floor', max: 1.0 }],
}));
section('first', `first generation: ${fmtN(SIZES.first)} files (mktree.py)`, () => first(ctx, { files: SIZES.first, target: 0.7 }));
section('history', `real history: ${REPO}, ${SIZES.days} days after the first, one commit a day`, () => history(ctx, { repo: REPO, days: SIZES.days, target: 0.8 }));
section('latency', `latencyfs: ${fmtN(SIZES.latency)} files, ${SIZES.latencyUs} µs per operation`, () => latency(ctx, { files: SIZES.latency, delayUs: SIZES.latencyUs, target: 0.1 }));
section('1m', `1M incremental: ${fmtN(SIZES.big)} files (mktree.py), one mutate.py day`, () => million(ctx, {
  files: SIZES.big, timeTarget: 10, rssTarget: 200,
  inc100k: results['100k'] ? { med: results['100k'].med.hardsnap, files: SIZES.files } : null,
}));
for (const [key, script, args] of [
  ['hash', 'bench-hash.mjs', ['--dir', DIR]],
  ['watch', 'bench-watch.mjs', ['--files', String(SIZES.files), '--runs', String(ROUNDS), '--dir', path.join(DIR, 'watch')]],
]) {
  section(key, `${key}: scripts/${script} ${args.join(' ')}`, () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', script), ...args], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`${script} exited ${r.status}`);
  });
}

say(`\n== every figure of this run (${ROUNDS} rounds, medians; load average at the end ${load()}) ==\n`);
table(all, compareLabels, say, { quick: QUICK });
const short = all.filter((r) => r.verdict && r.verdict !== 'MET');
say(`\n${all.filter((r) => r.verdict === 'MET').length} targets MET, ${short.length} not${short.length ? ':' : ''}`);
const figure = (r) => {
  if (r.ratio != null) return `: ${r.ratio.toFixed(2)}x ${r.vs} (target <= ${r.target}x)`;
  if (r.cells.hardsnap && r.targetText) return `: ${r.cells.hardsnap} (target ${r.targetText})`;
  return r.note ? `: ${r.note}` : '';
};
for (const r of short) say(`  ${r.verdict}: ${r.work}${figure(r)}`);
if (flag('keep')) say(`kept ${work.run}`);
else work.clear(say, false);
say(`done in ${(secs(t0) / 60).toFixed(1)} min; load average ${load()}`);
