#!/usr/bin/env node
// `npm run bench`: hardsnap against the tools it competes with, side by side, in one run.
// Builds trees with ../shared/bench/mktree.py, changes them with mutate.py, runs every command
// --runs times (default 3) in turn and prints medians and ratios.
//
//   npm run bench -- [--files 100000] [--runs 3] [--dir /var/tmp/hardsnap-bench]
//                    [--latency] [--latency-files 10000] [--million] [--parts] [--hash-mib 512]
//
// (a) always: first generation (hardsnap, with and without the flush, vs cp -a, cp -a + sync,
//     rsync -aH); incremental after one mutate.py day (vs rsync --link-dest and the floor
//     cp -al + find); the incremental with progress bars forced on (--progress: what a
//     terminal gets) vs --no-progress, runs interleaved; prune vs rm -rf; hash throughput
//     (scripts/bench-hash.mjs: plain read vs xxhash-wasm vs the native XXH64).
// (b) --latency: the spool on latencyfs (500 µs per operation; needs root and /dev/fuse).
// (c) --million: 1,000,000 small files, incremental time and peak RSS.
// (d) --parts: two parts on two ext4 loop images, one after the other vs --parallel-parts.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { graveyard } from './graveyard.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SHARED = path.resolve(ROOT, '..', 'shared', 'bench');
const BIN = path.join(ROOT, 'bin', 'hardsnap');

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i < 0 ? dflt : argv[i + 1];
};
const flag = (name) => argv.includes(`--${name}`);
const FILES = Number(opt('files', 100000));
const RUNS = Number(opt('runs', 3));
const DIR = path.resolve(opt('dir', path.join(os.tmpdir(), 'hardsnap-bench')));

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', maxBuffer: 1 << 28, ...opts });
  if (r.status !== 0 && !opts.allowFail) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r;
}
/** The load average, printed with every section: wall times on a shared machine depend on it. */
const load = () => `load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`;
const rm = (p) => fs.rmSync(p, { recursive: true, force: true });
const dropCaches = () => sh('sync', []);

// what a timed run wrote goes aside, and is deleted between sections (scripts/graveyard.mjs)
const grave = graveyard(DIR);
const aside = () => grave.aside();
function emptyGraveyard() {
  grave.empty();
  grave.settle();
}

/** Runs fn RUNS times with setup before each, returns the median seconds. */
function measure(label, setup, fn, cleanup) {
  const times = [];
  for (let i = 0; i < RUNS; i++) {
    setup?.(i);
    dropCaches();
    const t = process.hrtime.bigint();
    fn(i);
    times.push(Number(process.hrtime.bigint() - t) / 1e9);
    cleanup?.(i);
  }
  times.sort((a, b) => a - b);
  const med = times[Math.floor(times.length / 2)];
  console.log(`  ${label.padEnd(52)} median ${med.toFixed(2).padStart(7)} s   (${times.map((t) => t.toFixed(2)).join(', ')})`);
  return med;
}
/** Runs a and b alternately RUNS times each (so drift of the machine's load hits both alike). */
function measurePair(labelA, fnA, labelB, fnB, cleanup) {
  const ta = [];
  const tb = [];
  for (let i = 0; i < RUNS; i++) {
    for (const [fn, times] of i % 2 ? [[fnB, tb], [fnA, ta]] : [[fnA, ta], [fnB, tb]]) {
      dropCaches();
      const t = process.hrtime.bigint();
      fn(i);
      times.push(Number(process.hrtime.bigint() - t) / 1e9);
      cleanup?.(i);
    }
  }
  const med = (times) => [...times].sort((x, y) => x - y)[Math.floor(times.length / 2)];
  for (const [label, times] of [[labelA, ta], [labelB, tb]]) {
    console.log(`  ${label.padEnd(52)} median ${med(times).toFixed(2).padStart(7)} s   (${times.map((t) => t.toFixed(2)).join(', ')})`);
  }
  return [med(ta), med(tb)];
}
const ratio = (a, b, target) => `${(a / b).toFixed(2)}x${target ? ` (target <= ${target}x: ${a / b <= target ? 'met' : 'NOT met'})` : ''}`;

function tree(name, files, extra = []) {
  const dir = path.join(DIR, name);
  const stamp = path.join(DIR, `${name}.done`);
  if (!fs.existsSync(stamp)) {
    rm(dir);
    console.log(`  making ${name}: ${files} files ...`);
    sh('python3', [path.join(SHARED, 'mktree.py'), dir, '--files', String(files), ...extra]);
    fs.writeFileSync(stamp, '');
  }
  return dir;
}

/** A copy of src with one mutate.py day applied (made once, kept for later runs). */
function dayTwo(src) {
  const day2 = `${src}-day2`;
  if (!fs.existsSync(`${day2}.done`)) {
    rm(day2);
    sh('cp', ['-a', src, day2]);
    sh('python3', [path.join(SHARED, 'mutate.py'), day2, '--seed', '2']);
    fs.writeFileSync(`${day2}.done`, '');
  }
  return day2;
}

function hardsnap(args, env = {}) {
  return sh(BIN, args, { env: { ...process.env, ...env } });
}

/** A spool holding one generation of src (day 1); returns helpers to run and undo day 2. */
function spoolWithFirst(name, src) {
  const spool = path.join(DIR, name);
  rm(spool);
  hardsnap(['backup', '--spool', spool, '--host', 'b', '--part', `m=${src}`], { HARDSNAP_NOW: '2026-01-01T03:00:00Z' });
  const pdir = path.join(spool, 'rsync', 'b', 'm');
  const first = path.join(pdir, '2026-01-01T030000Z');
  return {
    spool, first,
    /** day 1's generation the newest again: day 2's and its manifest go to the graveyard */
    undoDay2() {
      const to = aside();
      fs.mkdirSync(to);
      fs.renameSync(path.join(pdir, '2026-01-02T030000Z'), path.join(to, 'gen'));
      fs.renameSync(path.join(pdir, '.hardsnap', 'manifests', '2026-01-02T030000Z.hsm'), path.join(to, 'gen.hsm'));
      fs.rmSync(path.join(pdir, 'last'));
      fs.symlinkSync('2026-01-01T030000Z', path.join(pdir, 'last'));
    },
  };
}

function partA() {
  console.log(`\n(a) ${FILES} files, mail-spool-like (mktree.py), ${RUNS} runs each; ${load()}`);
  const src = tree(`src-${FILES}`, FILES);
  const out = path.join(DIR, 'out');
  emptyGraveyard();
  // every run writes a new tree: ~1 GB each, 15 of them, deleted when the section is done
  const hsFirst = measure('first generation: hardsnap (hashes, flush)', null, () =>
    hardsnap(['backup', '--spool', aside(), '--host', 'b', '--part', `m=${src}`], { HARDSNAP_NOW: '2026-01-01T03:00:00Z' }));
  const hsFirstNoFlush = measure('first generation: hardsnap --no-flush', null, () =>
    hardsnap(['backup', '--spool', aside(), '--host', 'b', '--part', `m=${src}`, '--no-flush'], { HARDSNAP_NOW: '2026-01-01T03:00:00Z' }));
  const cpa = measure('first generation: cp -a', null, () => sh('cp', ['-a', src, aside()]));
  const cpaSync = measure('first generation: cp -a && sync', null, () => (sh('cp', ['-a', src, aside()]), sh('sync', [])));
  const rsyncFirst = measure('first generation: rsync -aH', null, () => sh('rsync', ['-aH', `${src}/`, `${aside()}/`]));
  emptyGraveyard();
  console.log(`  => hardsnap/cp -a: ${ratio(hsFirstNoFlush, cpa, 1.1)} without flush, ${ratio(hsFirst, cpaSync)} with flush vs cp -a && sync; hardsnap --no-flush/rsync -aH (neither flushes): ${ratio(hsFirstNoFlush, rsyncFirst)}`);
  console.log(`  => cost of the flush (syncfs) on a first generation: ${(hsFirst - hsFirstNoFlush).toFixed(2)} s`);

  const day2 = dayTwo(src);
  const s = spoolWithFirst('spool-a', src);
  const args = ['backup', '--spool', s.spool, '--host', 'b', '--part', `m=${day2}`];
  const hsInc = measure('incremental: hardsnap (flush)', null, () => hardsnap(args, { HARDSNAP_NOW: '2026-01-02T03:00:00Z' }), () => s.undoDay2());
  const hsIncNoFlush = measure('incremental: hardsnap --no-flush', null, () => hardsnap([...args, '--no-flush'], { HARDSNAP_NOW: '2026-01-02T03:00:00Z' }), () => s.undoDay2());
  const rsInc = measure('incremental: rsync -aH --delete --link-dest', null, () =>
    sh('rsync', ['-aH', '--numeric-ids', '--delete', `--link-dest=${s.first}`, `${day2}/`, `${aside()}/`]));
  const cpal = measure('floor: cp -al PREV', null, () => sh('cp', ['-al', s.first, aside()]));
  const find = measure("floor: find SRC -printf '%s %T@ %m\\n'", null, () => sh('find', [day2, '-printf', '%s %T@ %m\n']));
  console.log(`  => incremental hardsnap/rsync: ${ratio(hsInc, rsInc, 0.35)}; hardsnap/(cp -al + find): ${ratio(hsInc, cpal + find, 1.0)} (without flush: ${ratio(hsIncNoFlush, cpal + find, 1.0)})`);
  console.log(`  => cost of the flush on an incremental: ${(hsInc - hsIncNoFlush).toFixed(2)} s`);
  // --progress forces the bars a terminal gets (drawn into a pipe here, as on a terminal)
  const [withBars, noBars] = measurePair(
    'incremental: hardsnap --progress (bars forced on)', () => hardsnap([...args, '--progress'], { HARDSNAP_NOW: '2026-01-02T03:00:00Z' }),
    'incremental: hardsnap --no-progress', () => hardsnap([...args, '--no-progress'], { HARDSNAP_NOW: '2026-01-02T03:00:00Z' }),
    () => s.undoDay2());
  const cost = (withBars / noBars - 1) * 100;
  console.log(`  => cost of progress reporting: ${cost.toFixed(1)}% (target < 2%: ${cost < 2 ? 'met' : 'NOT met'}; wall-time noise on a loaded machine is of the same order)`);
  emptyGraveyard();

  const prune = fs.existsSync(path.join(ROOT, 'dist', 'cli', 'commands', 'prune.js'));
  if (prune) {
    const p = measure('prune one generation: hardsnap prune --keep-last 1', () => {
      hardsnap(args, { HARDSNAP_NOW: '2026-01-02T03:00:00Z' });
    }, () => hardsnap(['prune', '--spool', s.spool, '--host', 'b', '--keep-last', '1'], { HARDSNAP_NOW: '2026-01-02T04:00:00Z' }), () => {
      // put day 1 back for the next run: the pruned one was day 1
      rm(s.spool);
      Object.assign(s, spoolWithFirst('spool-a', src));
    });
    const rmrf = measure('prune floor: rm -rf of a linked generation', () => sh('cp', ['-al', s.first, out]), () => rm(out));
    console.log(`  => prune hardsnap/rm -rf: ${ratio(p, rmrf, 1.2)}`);
  } else {
    console.log('  prune: not measured (no prune command in this build)');
  }
  rm(s.spool);
  return { hsInc };
}

/** (a) continued: hashing throughput, by scripts/bench-hash.mjs on a file in the bench directory. */
function hashThroughput() {
  const size = opt('hash-mib', '512');
  console.log(`\n(a) hash throughput (scripts/bench-hash.mjs, ${size} MiB file, page cache); ${load()}`);
  const r = sh(process.execPath, [path.join(ROOT, 'scripts', 'bench-hash.mjs'), '--size-mib', size, '--dir', DIR]);
  for (const line of r.stdout.trim().split('\n')) console.log(`  ${line}`);
}

function partB() {
  const files = Number(opt('latency-files', 10000));
  console.log(`\n(b) ${files} files, spool on latencyfs (500 µs per operation); ${load()}`);
  if (process.getuid?.() !== 0 || !fs.existsSync('/dev/fuse')) return console.log('  skipped: needs root and /dev/fuse');
  const exe = path.join(DIR, 'latencyfs');
  if (!fs.existsSync(exe)) {
    const flags = sh('pkg-config', ['--cflags', '--libs', 'fuse3'], { allowFail: true });
    if (flags.status !== 0) return console.log('  skipped: libfuse3-dev and pkg-config are not installed');
    sh('cc', ['-O2', '-Wall', '-o', exe, path.join(SHARED, 'latencyfs.c'), ...flags.stdout.trim().split(/\s+/)]);
  }
  const src = tree(`src-lat-${files}`, files);
  const day2 = dayTwo(src);
  const backing = path.join(DIR, 'lat-backing');
  const mnt = path.join(DIR, 'lat-mnt');
  rm(backing);
  fs.mkdirSync(backing, { recursive: true });
  fs.mkdirSync(mnt, { recursive: true });
  sh(exe, [backing, mnt, '500']);
  try {
    const spool = path.join(mnt, 'spool');
    hardsnap(['backup', '--spool', spool, '--host', 'b', '--part', `m=${src}`], { HARDSNAP_NOW: '2026-01-01T03:00:00Z' });
    const pdir = path.join(spool, 'rsync', 'b', 'm');
    const hs = measure('incremental on latencyfs: hardsnap', null, () =>
      hardsnap(['backup', '--spool', spool, '--host', 'b', '--part', `m=${day2}`], { HARDSNAP_NOW: '2026-01-02T03:00:00Z' }), () => {
      rm(path.join(pdir, '2026-01-02T030000Z'));
      rm(path.join(pdir, '.hardsnap', 'manifests', '2026-01-02T030000Z.hsm'));
      fs.rmSync(path.join(pdir, 'last'));
      fs.symlinkSync('2026-01-01T030000Z', path.join(pdir, 'last'));
    });
    const out = path.join(mnt, 'rsync-out');
    const rs = measure('incremental on latencyfs: rsync --link-dest', () => rm(out), () =>
      sh('rsync', ['-aH', '--numeric-ids', '--delete', `--link-dest=${path.join(pdir, '2026-01-01T030000Z')}`, `${day2}/`, `${out}/`]));
    console.log(`  => hardsnap/rsync on latencyfs: ${ratio(hs, rs, 0.1)}`);
  } finally {
    sh('fusermount3', ['-u', mnt], { allowFail: true });
  }
}

/** inc100k: (a)'s incremental median in this same run, for the 11x target */
function partC(inc100k) {
  console.log(`\n(c) 1,000,000 small files: incremental time and peak RSS; ${load()}`);
  const src = tree('src-1m', 1_000_000);
  const day2 = dayTwo(src);
  const s = spoolWithFirst('spool-1m', src);
  const rss = [];
  const t = measure('incremental: hardsnap, 1M files', null, () => {
    const r = sh('python3', ['-c', 'import resource,subprocess,sys; subprocess.run(sys.argv[1:], check=True); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)',
      BIN, 'backup', '--spool', s.spool, '--host', 'b', '--part', `m=${day2}`], { env: { ...process.env, HARDSNAP_NOW: '2026-01-02T03:00:00Z' } });
    rss.push(Number(r.stdout.trim()) / 1024);
  }, () => s.undoDay2());
  const peak = Math.max(...rss);
  console.log(`  => peak RSS ${peak.toFixed(0)} MB (target <= 200 MB: ${peak <= 200 ? 'met' : 'NOT met'}); time ${t.toFixed(1)} s = ${ratio(t, inc100k, FILES === 100000 ? 11 : undefined)} the ${FILES}-file incremental of (a)`);
  rm(s.spool);
}

function partD() {
  const files = Math.floor(FILES / 2);
  console.log(`\n(d) two parts of ${files} files on two ext4 loop images: one after the other vs --parallel-parts; ${load()}`);
  if (process.getuid?.() !== 0 || !fs.existsSync('/dev/loop-control')) return console.log('  skipped: needs root and loop devices');
  const mnts = [];
  try {
    for (const k of ['d1', 'd2']) {
      const img = path.join(DIR, `${k}.img`);
      const mnt = path.join(DIR, `${k}-mnt`);
      fs.mkdirSync(mnt, { recursive: true });
      const fresh = !fs.existsSync(`${img}.done`);
      if (fresh) {
        rm(img);
        sh('truncate', ['-s', `${Math.max(256, Math.ceil(files / 80))}M`, img]);
        sh('mkfs.ext4', ['-q', '-F', '-N', String(files * 2 + 1000), img]);
      }
      sh('mount', ['-o', 'loop', img, mnt]);
      mnts.push(mnt);
      if (fresh) {
        sh('python3', [path.join(SHARED, 'mktree.py'), path.join(mnt, 'src'), '--files', String(files), '--seed', k === 'd1' ? '1' : '2']);
        fs.writeFileSync(`${img}.done`, '');
      }
    }
    const spool = path.join(DIR, 'spool-d');
    const args = ['backup', '--spool', spool, '--host', 'b', '--part', `p1=${mnts[0]}/src`, '--part', `p2=${mnts[1]}/src`];
    const drop = () => { rm(spool); sh('sh', ['-c', 'echo 3 > /proc/sys/vm/drop_caches'], { allowFail: true }); };
    const seq = measure('first generation of both parts, one after the other', drop, () => hardsnap(args, { HARDSNAP_NOW: '2026-01-01T03:00:00Z' }));
    const par = measure('first generation of both parts, --parallel-parts', drop, () => hardsnap([...args, '--parallel-parts'], { HARDSNAP_NOW: '2026-01-01T03:00:00Z' }));
    console.log(`  => parallel/sequential: ${ratio(par, seq)} (both images live on one virtual disk here; separate drives gain more)`);
    rm(spool);
  } finally {
    for (const m of mnts) sh('umount', [m], { allowFail: true });
  }
}

fs.mkdirSync(DIR, { recursive: true });
console.log(`hardsnap benchmark: ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}, ${os.release()}; working in ${DIR}`);
console.log(`rsync: ${sh('rsync', ['--version']).stdout.split('\n')[0]}`);
const a = partA();
hashThroughput();
if (flag('latency')) partB();
else console.log('\n(b) latencyfs: not run (add --latency; needs root and FUSE)');
if (flag('million')) partC(a.hsInc);
else console.log('\n(c) 1M files: not run (add --million; making the tree takes ~15 minutes)');
if (flag('parts')) partD();
else console.log('\n(d) parallel parts: not run (add --parts; needs root and loop devices)');
console.log('\n(e) watch mode: scan phase and backup with and without the journal, 1% changed');
if (flag('watch')) spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'bench-watch.mjs'), '--files', String(FILES), '--runs', String(RUNS), '--dir', DIR], { stdio: 'inherit' });
else console.log('  not run (add --watch, or run scripts/bench-watch.mjs alone)');
grave.empty();
console.log(`\ndone; ${load()}`);

