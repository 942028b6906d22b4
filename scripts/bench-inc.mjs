#!/usr/bin/env node
// A focused re-run of bench.mjs's (a) incremental, for comparing builds on a noisy machine:
// RUNS rounds, each running every hardsnap build given and the floor (`cp -al PREV` +
// `find SRC -printf`) back to back, so the machine's drift hits all alike. With --progress,
// instead: --progress against --no-progress of the first build, alternating which goes first.
// Hardsnap runs with --no-flush (the floor does not flush). --rsync adds rsync --link-dest
// (into a new directory) to each round.
//
// Every run is the same day: day 2's tree (mutate.py's day of changes) over a generation of
// day 1's, as in bench.mjs (a). What a run made is then renamed aside into DIR/graveyard, not
// deleted, so that nothing is deleted on the spool's file system while runs are timed: on
// ext4 without a journal (this machine's disk) inodes freed less than a minute before (five
// when their table block is dirty) are skipped one by one when new ones are allocated
// (fs/ext4/ialloc.c, recently_deleted()), which charged every mkdir and create of a run made
// right after a deletion, something no nightly run pays. The graveyard is emptied at the end;
// a bench run that finds that clean-up less than 65 s old waits.
//   node scripts/bench-inc.mjs [--files N] [--runs N] [--dir DIR] [--builds WT1,WT2@ARGS] [--rsync] [--progress] [--cpu] [--keep]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { graveyard } from './graveyard.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const opt = (name, dflt) => (argv.includes(`--${name}`) ? argv[argv.indexOf(`--${name}`) + 1] : dflt);
const FILES = Number(opt('files', 100000));
const RUNS = Number(opt('runs', 5));
const DIR = path.resolve(opt('dir', path.join(os.tmpdir(), 'hardsnap-bench')));
// a build may carry extra backup arguments and environment after '@', space-separated:
// WT@--dedup-generations 1, WT@UV_THREADPOOL_SIZE=4; node:FLAG runs bin/hardsnap under
// `node --single-threaded-gc FLAG` (as its shebang does), e.g. WT@node:--cpu-prof
const BUILDS = opt('builds', ROOT).split(',').map((b) => {
  const [dir, more] = b.split('@');
  const words = more ? more.split(' ') : [];
  const isEnv = (w) => /^[A-Z_]+=/.test(w);
  const env = Object.fromEntries(words.filter(isEnv).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]));
  const node = words.filter((w) => w.startsWith('node:')).map((w) => w.slice(5));
  return { dir: path.resolve(dir), extra: words.filter((w) => !isEnv(w) && !w.startsWith('node:')), env, node, label: b };
});
const SRC = path.join(DIR, `src-${FILES}`);
const DAY2 = `${SRC}-day2`;
for (const t of [SRC, DAY2]) if (!fs.existsSync(`${t}.done`)) throw new Error(`${t} missing: run npm run bench -- --files ${FILES} --dir ${DIR} first`);

// --cpu: every timed command runs under /usr/bin/time; its user and system CPU are summed per timing
const CPU = argv.includes('--cpu');
let cpu = [0, 0];
const cpuFile = path.join(os.tmpdir(), `bench-inc-cpu-${process.pid}`);
function sh(cmd, args, opts = {}) {
  if (opts.timed && CPU) {
    [cmd, args] = ['/usr/bin/time', ['-f', '%U %S', '-o', cpuFile, cmd, ...args]];
  }
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', ...opts });
  if (r.status !== 0 && !opts.allowFail) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  if (opts.timed && CPU) {
    const [u, sys] = fs.readFileSync(cpuFile, 'utf8').trim().split(/\s+/).slice(-2).map(Number);
    cpu = [cpu[0] + u, cpu[1] + sys];
  }
  return r;
}

const spool = path.join(DIR, 'spool-inc');
const pdir = path.join(spool, 'rsync', 'b', 'm');
const FIRST = '2026-01-01T030000Z';
const SECOND = '2026-01-02T030000Z';
const first = path.join(pdir, FIRST);
const grave = graveyard(DIR);
const hardsnap = (build, args, now) => {
  const bin = path.join(build.dir, 'bin', 'hardsnap');
  const [cmd, pre] = build.node.length ? [process.execPath, ['--single-threaded-gc', ...build.node, bin]] : [bin, []];
  sh(cmd, [...pre, ...args, ...build.extra], { env: { ...process.env, ...build.env, HARDSNAP_NOW: now }, timed: true });
};
/** Day 1's generation the newest again: day 2's and its manifest renamed aside (not deleted). */
function bury() {
  const to = grave.aside();
  fs.mkdirSync(to);
  fs.renameSync(path.join(pdir, SECOND), path.join(to, SECOND));
  fs.renameSync(path.join(pdir, '.hardsnap', 'manifests', `${SECOND}.hsm`), path.join(to, `${SECOND}.hsm`));
  fs.rmSync(path.join(pdir, 'last'));
  fs.symlinkSync(FIRST, path.join(pdir, 'last'));
}
grave.empty();
if (fs.existsSync(path.join(pdir, SECOND))) bury(); // left by a bench killed mid-way
if (!fs.existsSync(first)) {
  fs.rmSync(spool, { recursive: true, force: true });
  hardsnap(BUILDS[0], ['backup', '--spool', spool, '--host', 'b', '--part', `m=${SRC}`], '2026-01-01T03:00:00Z');
}
grave.settle();

/** seconds of wall time (with --cpu, [wall, user CPU, system CPU]) */
function timed(fn) {
  sh('sync', []);
  cpu = [0, 0];
  const t = process.hrtime.bigint();
  fn();
  const wall = Number(process.hrtime.bigint() - t) / 1e9;
  return CPU ? [wall, ...cpu] : wall;
}
const incremental = (build, extra = []) => {
  const t = timed(() => hardsnap(build, ['backup', '--spool', spool, '--host', 'b', '--part', `m=${DAY2}`, '--no-flush', ...extra], '2026-01-02T03:00:00Z'));
  bury();
  return t;
};
const aside = () => grave.aside();
/** the floor: link day 1's generation, list day 2's tree */
const floorRun = () => {
  const out = aside();
  return timed(() => {
    sh('cp', ['-al', first, out], { timed: true });
    sh('find', [DAY2, '-printf', '%s %T@ %m\n'], { timed: true });
  });
};
/** rsync --link-dest from day 1's generation, into a new directory */
const rsyncRun = () => {
  const out = aside();
  return timed(() => sh('rsync', ['-aH', '--numeric-ids', '--delete', `--link-dest=${first}`, `${DAY2}/`, `${out}/`], { timed: true }));
};
const med = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const wall = (a) => a.map((t) => (Array.isArray(t) ? t[0] : t));
const show = (label, times) => {
  const w = wall(times);
  const c = CPU ? `; CPU medians user ${med(times.map((t) => t[1])).toFixed(2)} s, sys ${med(times.map((t) => t[2])).toFixed(2)} s` : '';
  console.log(`  ${label.padEnd(52)} median ${med(w).toFixed(2).padStart(6)} s   (${w.map((t) => t.toFixed(2)).join(', ')})${c}`);
};
const load = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');

console.log(`${FILES} files, ${RUNS} rounds; load average ${load()}`);
try {
  if (argv.includes('--progress')) {
    const on = [];
    const off = [];
    for (let i = 0; i < RUNS; i++) {
      for (const bars of i % 2 ? [false, true] : [true, false]) (bars ? on : off).push(incremental(BUILDS[0], [bars ? '--progress' : '--no-progress']));
    }
    show('incremental --progress', on);
    show('incremental --no-progress', off);
    console.log(`  => progress costs ${((med(wall(on)) / med(wall(off)) - 1) * 100).toFixed(1)}% (medians)`);
  } else {
    const hs = BUILDS.map(() => []);
    const floor = [];
    const rs = [];
    for (let i = 0; i < RUNS; i++) {
      BUILDS.forEach((b, k) => hs[k].push(incremental(b)));
      floor.push(floorRun());
      if (argv.includes('--rsync')) rs.push(rsyncRun());
    }
    show('floor: cp -al PREV + find', floor);
    if (rs.length) show('rsync -aH --numeric-ids --delete --link-dest=PREV', rs);
    BUILDS.forEach((b, k) => show(`hardsnap --no-flush ${b.label}`, hs[k]));
    BUILDS.forEach((b, k) => console.log(`  => ${b.label}: ${(med(wall(hs[k])) / med(wall(floor))).toFixed(2)}x the floor${rs.length ? `, ${(med(wall(hs[k])) / med(wall(rs))).toFixed(2)}x rsync` : ''}`));
  }
} finally {
  // --keep: leave the graveyard for a look (the next run empties it)
  if (!argv.includes('--keep')) grave.empty();
}
console.log(`  load average at the end ${load()}`);
