#!/usr/bin/env node
// A focused re-run of bench.mjs's (a) incremental, for comparing builds on a noisy machine:
// RUNS rounds, each running every hardsnap build given and the floor (`cp -al PREV` +
// `find SRC -printf`) back to back, so the machine's drift hits all alike. With --progress,
// instead: --progress against --no-progress of the first build, alternating which goes first.
// Hardsnap runs with --no-flush (the floor does not flush). --rsync adds rsync --link-dest
// (its own day too, into a new directory) to each round.
//
// Every run, hardsnap's and the floor's alike, comes after its own mutate.py day (seeds
// continue from one bench run to the next), as a nightly run does: the source is a copy of
// DIR/src-N on a file system of its own (a loop-mounted ext4 image, DIR/evolve-src.img, kept),
// changed in place, and each run adds a generation to DIR/spool-evolve. Nothing is deleted on
// the spool's file system while runs are timed: on ext4 without a journal (this machine's
// disk) inodes freed less than a minute before (five when their table block is dirty) are
// skipped one by one when new ones are allocated (fs/ext4/ialloc.c, recently_deleted()), which
// charged every mkdir and create of a run made right after a deletion, something no nightly
// run pays. At the end the older generations and the floor's copies are removed; a bench run
// that finds that clean-up less than 65 s old waits.
//   node scripts/bench-inc.mjs [--files N] [--runs N] [--dir DIR] [--builds WT1,WT2@ARGS] [--rsync] [--progress] [--keep]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BENCH = path.resolve(ROOT, '..', 'shared', 'bench');
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
if (!fs.existsSync(`${SRC}.done`)) throw new Error(`${SRC} missing: run npm run bench -- --files ${FILES} --dir ${DIR} first`);
if (process.getuid?.() !== 0) throw new Error('bench-inc needs root: its source is a loop-mounted ext4 image');

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', ...opts });
  if (r.status !== 0 && !opts.allowFail) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r;
}

// ---------- the evolving source, on its own file system ----------
const img = path.join(DIR, 'evolve-src.img');
const mnt = path.join(DIR, 'evolve-src');
const tree = path.join(mnt, 'tree');
const dayFile = path.join(DIR, 'evolve-day');
fs.mkdirSync(mnt, { recursive: true });
if (!fs.existsSync(`${img}.done`)) {
  fs.rmSync(img, { force: true });
  const bytes = Number(sh('du', ['-sb', SRC], { stdio: ['ignore', 'pipe', 'pipe'] }).stdout.split('\t')[0]);
  sh('truncate', ['-s', String(Math.ceil(bytes * 2 + 512e6)), img]);
  sh('mkfs.ext4', ['-q', '-F', '-N', String(FILES * 3 + 10000), img]);
  sh('mount', ['-o', 'loop', img, mnt]);
  sh('cp', ['-a', SRC, tree]);
  sh('umount', [mnt]);
  fs.writeFileSync(`${img}.done`, '');
  fs.rmSync(dayFile, { force: true });
}
if (!fs.readFileSync('/proc/self/mounts', 'utf8').includes(` ${mnt} `)) sh('mount', ['-o', 'loop', img, mnt]);
let day = fs.existsSync(dayFile) ? Number(fs.readFileSync(dayFile, 'utf8')) : 1;
function mutateDay() {
  day++;
  sh('python3', [path.join(BENCH, 'mutate.py'), tree, '--seed', String(day)]);
  fs.writeFileSync(dayFile, String(day));
}

// ---------- the spool ----------
const spool = path.join(DIR, 'spool-evolve');
const pdir = path.join(spool, 'rsync', 'b', 'm');
const floorDir = path.join(DIR, 'floor-evolve');
const cleanedStamp = path.join(DIR, 'inc-cleaned-at');
const nowOf = (d) => new Date(Date.UTC(2026, 0, d, 3)).toISOString().replace('.000', '');
const hardsnap = (build, args, now) => {
  const bin = path.join(build.dir, 'bin', 'hardsnap');
  const [cmd, pre] = build.node.length ? [process.execPath, ['--single-threaded-gc', ...build.node, bin]] : [bin, []];
  sh(cmd, [...pre, ...args, ...build.extra], { env: { ...process.env, ...build.env, HARDSNAP_NOW: now } });
};
const newest = () => fs.realpathSync(path.join(pdir, 'last'));

/** Keeps the newest generation only; what this removes is freed now (see the header). */
function cleanUp() {
  let removed = false;
  if (fs.existsSync(path.join(pdir, 'last'))) {
    const keep = path.basename(newest());
    for (const n of fs.readdirSync(pdir)) {
      if (/^\d{4}-/.test(n) && n !== keep) {
        fs.rmSync(path.join(pdir, n), { recursive: true, force: true });
        removed = true;
      }
    }
    const mdir = path.join(pdir, '.hardsnap', 'manifests');
    for (const n of fs.readdirSync(mdir)) if (!n.startsWith(keep)) fs.rmSync(path.join(mdir, n));
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
if (!fs.existsSync(path.join(pdir, 'last'))) {
  fs.rmSync(spool, { recursive: true, force: true });
  hardsnap(BUILDS[0], ['backup', '--spool', spool, '--host', 'b', '--part', `m=${tree}`], nowOf(day));
  fs.writeFileSync(cleanedStamp, String(Date.now()));
}
const since = fs.existsSync(cleanedStamp) ? Date.now() - Number(fs.readFileSync(cleanedStamp, 'utf8')) : Infinity;
if (since < 65000) {
  console.log(`waiting ${((65000 - since) / 1000).toFixed(0)} s: inodes freed by the last clean-up are still "recently deleted"`);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 65000 - since);
}
fs.mkdirSync(floorDir, { recursive: true });

function timed(fn) {
  sh('sync', []);
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}
const incremental = (build, extra = []) => {
  mutateDay();
  return timed(() => hardsnap(build, ['backup', '--spool', spool, '--host', 'b', '--part', `m=${tree}`, '--no-flush', ...extra], nowOf(day)));
};
/** what the floor does for a run after its own day: link the newest generation, list the source */
let floors = 0;
/** rsync --link-dest after its own day, into a new directory beside the floor's, from the newest generation */
const rsyncRun = () => {
  mutateDay();
  const prev = newest();
  const out = path.join(floorDir, String(++floors));
  return timed(() => sh('rsync', ['-aH', '--numeric-ids', '--delete', `--link-dest=${prev}`, `${tree}/`, `${out}/`]));
};
const floorRun = () => {
  mutateDay();
  const prev = newest();
  const out = path.join(floorDir, String(++floors));
  return timed(() => {
    sh('cp', ['-al', prev, out]);
    sh('find', [tree, '-printf', '%s %T@ %m\n']);
  });
};
const med = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const show = (label, times) => console.log(`  ${label.padEnd(52)} median ${med(times).toFixed(2).padStart(6)} s   (${times.map((t) => t.toFixed(2)).join(', ')})`);
const load = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');

console.log(`${FILES} files, ${RUNS} rounds, each run after its own mutate.py day (from day ${day + 1}); load average ${load()}`);
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
    const rs = [];
    for (let i = 0; i < RUNS; i++) {
      BUILDS.forEach((b, k) => hs[k].push(incremental(b)));
      floor.push(floorRun());
      if (argv.includes('--rsync')) rs.push(rsyncRun());
    }
    show('floor: cp -al PREV + find', floor);
    if (rs.length) show('rsync -aH --numeric-ids --delete --link-dest=PREV', rs);
    BUILDS.forEach((b, k) => show(`hardsnap --no-flush ${b.label}`, hs[k]));
    BUILDS.forEach((b, k) => console.log(`  => ${b.label}: ${(med(hs[k]) / med(floor)).toFixed(2)}x the floor${rs.length ? `, ${(med(hs[k]) / med(rs)).toFixed(2)}x rsync` : ''}`));
  }
} finally {
  // --keep: leave the generations for a look (the next run cleans up)
  if (!argv.includes('--keep')) cleanUp();
  sh('umount', [mnt], { allowFail: true });
}
console.log(`  load average at the end ${load()}`);
