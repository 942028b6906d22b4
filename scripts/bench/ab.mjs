#!/usr/bin/env node
// Builds of hardsnap against each other only, on the 100k incremental (no rsync, no floor: a
// round takes seconds, so more rounds fit): each build gets a spool holding day 1's generation
// of one mktree.py tree, one mutate.py day changes the tree in place, then the builds run in
// interleaved rounds (A B C, A B C, ...), each after a `sync`, each generation put aside after
// its run (PartState: nothing deleted while timing). Prints wall time, and user and system CPU
// (`/usr/bin/time`) per run and their medians: on a machine whose cores the run saturates, CPU
// is the steadier figure. With --perf DIR each run is recorded by `perf record -g` (node
// --perf-basic-prof: JavaScript frames named); `perf report -i DIR/perf-K-R.data --sort pid`
// then tells the main thread from the pool's.
//
//   node scripts/bench/ab.mjs [--files 100000] [--rounds 7] [--perf DIR] BUILD[::"ARGS"] ...
//   e.g. node scripts/bench/ab.mjs . /work/wt-base ".::--no-xattrs" ".::--dedup off"
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Build, MUTATE, PartState, Workdir, day, load, median, nodeFlags, sh, warm } from './util.mjs';

const argv = process.argv.slice(2);
const opts = { files: 100000, rounds: 7, perf: null, dir: '/var/tmp/hardsnap-bench' };
const builds = [];
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--files' || a === '--rounds') opts[a.slice(2)] = Number(argv[++i]);
  else if (a === '--perf' || a === '--dir') opts[a.slice(2)] = path.resolve(argv[++i]);
  else if (a === '--help' || a.startsWith('-')) {
    console.log(fs.readFileSync(new URL(import.meta.url), 'utf8').split('\n').slice(1, 14).map((l) => l.slice(3)).join('\n'));
    process.exit(a === '--help' ? 0 : 1);
  } else {
    const [dir, extra] = a.split('::');
    const b = new Build(dir, `${path.basename(path.resolve(dir))}${extra ? ` [${extra}]` : ''}`);
    b.extra = extra ? extra.split(' ') : [];
    builds.push(b);
  }
}
if (!builds.length) throw new Error('name at least one build (a directory holding bin/hardsnap)');

const say = (s) => console.log(s);
const work = new Workdir(opts.dir);
work.start(say);
const base = work.fresh('ab');
fs.mkdirSync(base, { recursive: true });
let src = work.tree(opts.files, say);
sh('cp', ['-a', src, (src = path.join(base, 'src'))]);
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 3000); // ctimes older than the first scan
const parts = builds.map((b, k) => {
  const spool = path.join(base, `spool-${k}`);
  b.init(spool);
  b.backup(spool, 'm', src, day(0).now);
  return new PartState(spool, 'm', work);
});
say(`day 2, in place: ${sh('python3', [MUTATE, src, '--seed', '2']).stdout.trim()}`);
warm([src], { contents: opts.files <= 200_000 });
warm(parts.map((p) => p.prev), { contents: false });
if (opts.perf) fs.mkdirSync(opts.perf, { recursive: true });

const timeFile = path.join(os.tmpdir(), `hardsnap-ab-${process.pid}`);
const res = builds.map(() => ({ wall: [], user: [], sys: [] }));
say(`load average at the start: ${load()}`);
for (let r = 0; r < opts.rounds; r++) {
  const line = [];
  builds.forEach((b, k) => {
    spawnSync('sync');
    const perf = opts.perf ? ['perf', 'record', '-q', '-F', '1999', '-g', '-o', path.join(opts.perf, `perf-${k}-${r}.data`), '--', 'node', ...nodeFlags(b.bin), '--perf-basic-prof'] : [];
    const t0 = process.hrtime.bigint();
    const p = spawnSync('/usr/bin/time', ['-f', '%U %S', '-o', timeFile, ...perf, b.bin, 'backup', '--spool', parts[k].spool, '--host', 'b', '--part', `m=${src}`, ...b.extra], {
      env: { ...process.env, HARDSNAP_NOW: day(1).now },
      stdio: ['ignore', 'ignore', 'pipe'],
      // node --perf-basic-prof leaves an isolate-*.log in its working directory
      ...(opts.perf ? { cwd: opts.perf } : {}),
    });
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    if (p.status !== 0) throw new Error(`${b.label}: exit ${p.status}: ${p.stderr}`);
    const [user, sys] = fs.readFileSync(timeFile, 'utf8').trim().split('\n').pop().split(' ').map(Number);
    res[k].wall.push(wall);
    res[k].user.push(user);
    res[k].sys.push(sys);
    line.push(`${b.label} ${wall.toFixed(2)} s (user ${user.toFixed(2)}, sys ${sys.toFixed(2)})`);
    parts[k].reset();
  });
  say(`round ${r + 1}/${opts.rounds}: ${line.join(', ')}   (load ${load()})`);
}
say(`\nmedians of ${opts.rounds} rounds, ${opts.files} files; load average at the end: ${load()}`);
const w = Math.max(...builds.map((b) => b.label.length));
builds.forEach((b, k) => {
  const m = (xs) => median(xs);
  const vs = k ? ` (wall ${((m(res[k].wall) / m(res[0].wall) - 1) * 100).toFixed(1)}%, user ${((m(res[k].user) / m(res[0].user) - 1) * 100).toFixed(1)}% against the first)` : '';
  say(`  ${b.label.padEnd(w)}  wall ${m(res[k].wall).toFixed(3)} s  user ${m(res[k].user).toFixed(2)} s  sys ${m(res[k].sys).toFixed(2)} s${vs}`);
});
fs.rmSync(timeFile, { force: true });
work.clear(say, false);
