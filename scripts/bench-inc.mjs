#!/usr/bin/env node
// A focused re-run of bench.mjs's (a) incremental, for comparing builds on a noisy machine:
// the trees bench.mjs made (DIR/src-N and DIR/src-N-day2), one spool with the first generation
// (made once, kept in DIR/spool-inc), then RUNS rounds, each running every hardsnap build given
// and the floor (`cp -al PREV` + `find SRC -printf`) back to back, so the machine's drift hits
// all alike. With --progress, instead: --progress against --no-progress of the first build,
// alternating which goes first. Hardsnap runs with --no-flush (the floor does not flush).
//
// Nothing is deleted between runs: each run adds a generation, its source alternating between
// day 2 and day 1 (so every run sees one mutate.py day of changes, forwards or backwards), and
// the floor's copies are kept until the end. On ext4 without a journal, inodes freed less than
// a minute before (five when their table block is dirty) are skipped one by one when new ones
// are allocated (fs/ext4/ialloc.c, recently_deleted()): deleting the last run's output before
// each run charged every mkdir and create with that, which a nightly run never pays. For the
// same reason a run that finds the clean-up of an earlier one less than 65 s old waits.
//   node scripts/bench-inc.mjs [--files N] [--runs N] [--dir DIR] [--builds WT1,WT2@ARGS] [--progress] [--keep]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

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
  const env = Object.fromEntries(words.filter((w) => /^[A-Z_]+=/.test(w)).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]));
  const node = words.filter((w) => w.startsWith('node:')).map((w) => w.slice(5));
  return { dir: path.resolve(dir), extra: words.filter((w) => !/^[A-Z_]+=/.test(w) && !w.startsWith('node:')), env, node, label: b };
});
const SRC = path.join(DIR, `src-${FILES}`);
const DAY2 = `${SRC}-day2`;
for (const t of [SRC, DAY2]) if (!fs.existsSync(`${t}.done`)) throw new Error(`${t} missing: run npm run bench -- --files ${FILES} --dir ${DIR} first`);

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
}
const spool = path.join(DIR, 'spool-inc');
const pdir = path.join(spool, 'rsync', 'b', 'm');
const FIRST = '2026-01-01T030000Z';
const floorDir = path.join(DIR, 'floor-inc');
const cleanedStamp = path.join(DIR, 'inc-cleaned-at');
const hardsnap = (build, args, now) => {
  const bin = path.join(build.dir, 'bin', 'hardsnap');
  const [cmd, pre] = build.node.length ? [process.execPath, ['--single-threaded-gc', ...build.node, bin]] : [bin, []];
  sh(cmd, [...pre, ...args, ...build.extra], { env: { ...process.env, ...build.env, HARDSNAP_NOW: now } });
};

/** Back to the first generation alone; what this removes is freed now (see the header). */
function cleanUp() {
  let removed = false;
  if (fs.existsSync(pdir)) {
    for (const n of fs.readdirSync(pdir)) {
      if (/^\d{4}-/.test(n) && n !== FIRST) {
        fs.rmSync(path.join(pdir, n), { recursive: true, force: true });
        removed = true;
      }
    }
    const mdir = path.join(pdir, '.hardsnap', 'manifests');
    for (const n of fs.existsSync(mdir) ? fs.readdirSync(mdir) : []) if (!n.startsWith(FIRST)) fs.rmSync(path.join(mdir, n));
    if (fs.existsSync(path.join(pdir, FIRST))) {
      fs.rmSync(path.join(pdir, 'last'), { force: true });
      fs.symlinkSync(FIRST, path.join(pdir, 'last'));
    }
  }
  if (fs.existsSync(floorDir)) {
    fs.rmSync(floorDir, { recursive: true, force: true });
    removed = true;
  }
  if (removed) {
    sh('sync', []);
    fs.writeFileSync(cleanedStamp, String(Date.now()));
  }
}
cleanUp();
const since = fs.existsSync(cleanedStamp) ? Date.now() - Number(fs.readFileSync(cleanedStamp, 'utf8')) : Infinity;
if (since < 65000) {
  console.log(`waiting ${((65000 - since) / 1000).toFixed(0)} s: inodes freed by the last clean-up are still "recently deleted"`);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 65000 - since);
}
if (!fs.existsSync(path.join(pdir, FIRST))) {
  fs.rmSync(spool, { recursive: true, force: true });
  hardsnap(BUILDS[0], ['backup', '--spool', spool, '--host', 'b', '--part', `m=${SRC}`], '2026-01-01T03:00:00Z');
}
fs.mkdirSync(floorDir, { recursive: true });

let day = 1;
/** the source of the newest generation: each run backs up the other tree */
let lastSrc = SRC;
const otherSrc = () => (lastSrc === SRC ? DAY2 : SRC);
function timed(fn) {
  sh('sync', []);
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}
const incremental = (build, extra = []) => {
  const src = otherSrc();
  const now = new Date(Date.UTC(2026, 0, ++day, 3)).toISOString().replace('.000', '');
  const t = timed(() => hardsnap(build, ['backup', '--spool', spool, '--host', 'b', '--part', `m=${src}`, '--no-flush', ...extra], now));
  lastSrc = src;
  return t;
};
/** what the floor does for the run that would come next: link the newest generation, list the other tree */
let floors = 0;
const floorRun = () => {
  const prev = fs.realpathSync(path.join(pdir, 'last'));
  const out = path.join(floorDir, String(++floors));
  return timed(() => {
    sh('cp', ['-al', prev, out]);
    sh('find', [otherSrc(), '-printf', '%s %T@ %m\n']);
  });
};
const med = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const show = (label, times) => console.log(`  ${label.padEnd(52)} median ${med(times).toFixed(2).padStart(6)} s   (${times.map((t) => t.toFixed(2)).join(', ')})`);
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
    console.log(`  => progress costs ${((med(on) / med(off) - 1) * 100).toFixed(1)}% (medians)`);
  } else {
    const hs = BUILDS.map(() => []);
    const floor = [];
    for (let i = 0; i < RUNS; i++) {
      // the floor copies the generation the last hardsnap run made, with the next day's source
      BUILDS.forEach((b, k) => hs[k].push(incremental(b)));
      floor.push(floorRun());
    }
    show('floor: cp -al PREV + find', floor);
    BUILDS.forEach((b, k) => show(`hardsnap --no-flush ${b.label}`, hs[k]));
    BUILDS.forEach((b, k) => console.log(`  => ${b.label}: ${(med(hs[k]) / med(floor)).toFixed(2)}x the floor`));
  }
} finally {
  // --keep: leave the generations for a look (the next run cleans up)
  if (!argv.includes('--keep')) cleanUp();
}
console.log(`  load average at the end ${load()}`);
