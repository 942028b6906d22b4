#!/usr/bin/env node
// Where an incremental's wall time goes: the same incremental as the bench's (a mktree.py tree,
// day 1's generation, one mutate.py day) run --runs times under `node --cpu-prof`, each
// profile cut into phases by the first and last sample of the functions that mark them
// (start-up, opening the previous manifest, the content index, the journal choice, the walk,
// the manifest's finish, syncfs, publishing, the run log and exit), with the main thread's
// busy and idle time during the walk and its top functions. Medians over the runs; also the
// wall time of the same run without the profiler and of `hardsnap --version`.
//
//   node scripts/bench/profile.mjs [--build DIR] [--files 30000] [--runs 5] [--dir /var/tmp/hardsnap-bench] [--top 15]
//        [--history [--history-repo GIT_DIR]]   (instead of mktree.py: the history section's last two days)
import fs from 'node:fs';
import path from 'node:path';
import { replay } from './history.mjs';
import { Build, MUTATE, PartState, ROOT, Workdir, day, median, nodeFlags, quiet, secs, sh, warm } from './util.mjs';

const argv = process.argv.slice(2);
const opt = (name, dflt) => (argv.includes(`--${name}`) ? argv[argv.indexOf(`--${name}`) + 1] : dflt);
const FILES = Number(opt('files', 30000));
const RUNS = Number(opt('runs', 5));
const TOP = Number(opt('top', 15));
const HISTORY = argv.includes('--history') ? opt('history-repo', '/work/.mirror/u-boot+u-boot/repo') : null;
const work = new Workdir(path.resolve(opt('dir', '/var/tmp/hardsnap-bench')));
const say = (s = '') => console.log(s);
work.start(say);
const BUILD = path.resolve(opt('build', ROOT)); // another build to profile (e.g. /work/wt-base)
const b = new Build(BUILD, 'hardsnap');
const pause = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const spool = work.fresh('profile-spool');
b.init(spool);
let day2;
let what;
if (HISTORY) {
  // the history section's last two days: day 1 checked out, its generation, day 2 checked out in place
  const r = replay(HISTORY, work.fresh('profile-history'), 1, say);
  r.checkout(0);
  pause(3000);
  day2 = r.src;
  b.backup(spool, 'm', day2, day(0).now);
  const changed = r.checkout(1);
  what = `${HISTORY}: ${r.dates[0]} then ${r.dates[1]} (${changed} paths changed)`;
} else {
  // day 1 a copy of the kept tree, day 2 the same tree changed in place (as in the bench's incrementals)
  day2 = work.fresh('profile-src');
  sh('cp', ['-a', work.tree(FILES, say), day2]);
  pause(3000);
  b.backup(spool, 'm', day2, day(0).now);
  what = `${FILES} mktree.py files, one mutate.py day (${sh('python3', [MUTATE, day2, '--seed', '2']).stdout.trim()})`;
}
const files = Number(sh('sh', ['-c', 'find "$1" -type f | wc -l', 'sh', day2]).stdout.trim());
const dirs = Number(sh('sh', ['-c', 'find "$1" -type d | wc -l', 'sh', day2]).stdout.trim());
const part = new PartState(spool, 'm', work);
warm([day2]);
warm([part.prev], { contents: false });
const profDir = work.fresh('profiles');
fs.mkdirSync(profDir);
const args = ['backup', '--spool', spool, '--host', 'b', '--part', `m=${day2}`];
const env = { ...process.env, HARDSNAP_NOW: day(1).now };
const node = [process.execPath, ...nodeFlags(b.bin)]; // as bin/hardsnap starts it

/** [label, function names whose samples mark the phase] in the order they run */
const MARKS = [
  ['previous manifest opened', ['openPrev']],
  ['content index built', ['buildDedupIndex']],
  ['journal choice', ['chooseScan']],
  ['walk (tree built, manifest written as it goes)', null], // from the journal choice to the manifest's finish
  ["manifest's finish", ['finish@finish(root, footer']], // ManifestWriter#finish, not another `finish`
  ['syncfs', ['flushFileSystems']],
  ['publish (renames, last, LATEST)', ['publishPart']],
];

// `name@text`: the function `name` defined on the bundle's line that starts with `text`
const BUNDLE = fs.readFileSync(path.join(BUILD, 'dist', 'bundle', 'hardsnap.js'), 'utf8').split('\n');
const defLines = (text) => new Set(BUNDLE.flatMap((l, k) => (l.trimStart().startsWith(text) ? [k] : [])));
const matcher = (spec) => {
  const [name, text] = spec.split('@');
  const lines = text ? defLines(text) : null;
  return (frame) => frame.functionName === name && (!lines || (frame.url.endsWith('/hardsnap.js') && lines.has(frame.lineNumber)));
};

function analyse(file, t0, t1) {
  const p = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stacks = new Map();
  const frames = (id) => {
    if (!stacks.has(id)) {
      const s = [];
      for (let k = id; k != null; k = parent.get(k)) s.push(byId.get(k).callFrame);
      stacks.set(id, s);
    }
    return stacks.get(id);
  };
  // sample times (µs, monotonic like process.hrtime)
  let t = p.startTime;
  const samples = p.samples.map((id, i) => ({ id, t: (t += p.timeDeltas[i]) }));
  const span = (fns, from = 0) => {
    const ms = fns.map(matcher);
    const hit = samples.filter((s) => s.t >= from && frames(s.id).some((f) => ms.some((m) => m(f))));
    return hit.length ? [hit[0].t, hit.at(-1).t] : null;
  };
  const us = (x) => x / 1e3; // µs -> ms
  const start = Number(t0 / 1000n);
  const end = Number(t1 / 1000n);
  const phases = [];
  const firstBuild = span(['buildPart']);
  phases.push(['start-up (node, the bundle, arguments, checks, lock)', us((firstBuild?.[0] ?? p.startTime) - start)]);
  let at = firstBuild?.[0] ?? p.startTime;
  // each mark searched after the one before (names like `finish` recur in the bundle)
  const spans = [];
  let from = at;
  for (const [, fns] of MARKS) {
    const s = fns ? span(fns, from) : null;
    spans.push(s);
    if (s) from = s[1];
  }
  MARKS.forEach(([label, fns], k) => {
    let s = spans[k];
    if (!fns) {
      const next = spans.slice(k + 1).find(Boolean);
      s = next ? [at, next[0]] : null;
    }
    if (!s) return phases.push([label, 0]);
    // a phase runs from the end of the one before to its own last sample
    phases.push([label, us(s[1] - at)]);
    at = s[1];
  });
  phases.push(['run log, exit', us(end - at)]);
  // the walk: the main thread's busy and idle samples, and its top functions by self time
  const w = [spans[2]?.[1] ?? 0, spans[4]?.[0] ?? Infinity];
  const self = new Map();
  let idle = 0;
  let gc = 0;
  let busy = 0;
  samples.forEach((s, i) => {
    if (s.t < w[0] || s.t > w[1]) return;
    const dt = p.timeDeltas[i + 1] ?? 0;
    const fn = byId.get(s.id).callFrame;
    if (fn.functionName === '(idle)') idle += dt;
    else {
      busy += dt;
      if (fn.functionName === '(garbage collector)') gc += dt;
      const key = `${fn.functionName || '(anonymous)'} ${fn.url ? `${path.basename(fn.url)}:${fn.lineNumber + 1}` : ''}`.trim();
      self.set(key, (self.get(key) ?? 0) + dt);
    }
  });
  return { phases, wall: us(end - start), walk: { idle: us(idle), busy: us(busy), gc: us(gc) }, self };
}

const results = [];
const plain = [];
const version = [];
for (let r = 0; r < RUNS; r++) {
  // without the profiler (the wall time to compare with), then with it
  sh('sync', []);
  let t0 = process.hrtime.bigint();
  quiet(node[0], [...node.slice(1), path.join(BUILD, 'bin', 'hardsnap'), ...args], { env });
  plain.push(secs(t0));
  part.reset();
  t0 = process.hrtime.bigint();
  quiet(node[0], [...node.slice(1), path.join(BUILD, 'bin', 'hardsnap'), '--version']);
  version.push(secs(t0));
  const dir = path.join(profDir, String(r));
  sh('sync', []);
  t0 = process.hrtime.bigint();
  quiet(node[0], [...node.slice(1), '--cpu-prof', `--cpu-prof-dir=${dir}`, path.join(BUILD, 'bin', 'hardsnap'), ...args], { env });
  const t1 = process.hrtime.bigint();
  part.reset();
  const file = path.join(dir, fs.readdirSync(dir)[0]);
  results.push(analyse(file, t0, t1));
}
const ms = (x) => `${x.toFixed(0).padStart(6)} ms`;
say(`\nincremental of ${what}: ${files} files in ${dirs} directories, ${RUNS} runs (medians):`);
say(`  wall time without the profiler ${ms(median(plain) * 1e3)}; with it ${ms(median(results.map((x) => x.wall)))}; \`hardsnap --version\` ${ms(median(version) * 1e3)}`);
for (let k = 0; k < results[0].phases.length; k++) {
  const v = median(results.map((x) => x.phases[k][1]));
  say(`  ${results[0].phases[k][0].padEnd(52)} ${ms(v)}  ${((v / median(results.map((x) => x.wall))) * 100).toFixed(0).padStart(3)}%`);
}
const wk = (f) => median(results.map((x) => x.walk[f]));
say(`  during the walk the main thread ran JavaScript or native calls ${ms(wk('busy'))} (of which GC ${ms(wk('gc'))}) and waited for the pool ${ms(wk('idle'))}`);
const tot = new Map();
for (const x of results) for (const [k, v] of x.self) tot.set(k, (tot.get(k) ?? 0) + v / RUNS);
say(`  top functions of the main thread during the walk (self time, mean per run):`);
for (const [k, v] of [...tot].sort((a, b) => b[1] - a[1]).slice(0, TOP)) say(`    ${ms(v / 1e3)}  ${k}`);
say(`profiles: ${profDir} (deleted with the run's work; pass --keep to keep them)`);
if (!argv.includes('--keep')) work.clear(say, false);
