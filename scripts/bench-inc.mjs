#!/usr/bin/env node
// A focused re-run of bench.mjs's (a) incremental, for comparing builds on a noisy machine:
// the trees bench.mjs made (DIR/src-N and DIR/src-N-day2), one spool with the first generation
// (made once, kept in DIR/spool-inc), then RUNS rounds, each running every hardsnap build given
// and the floor (`cp -al PREV` + `find SRC -printf`) back to back, so the machine's drift hits
// all alike. With --progress, instead: --progress against --no-progress of the first build,
// alternating which goes first. Hardsnap runs with --no-flush (the floor does not flush).
//   node scripts/bench-inc.mjs [--files N] [--runs N] [--dir DIR] [--builds WT1,WT2] [--progress]
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
const BUILDS = opt('builds', ROOT).split(',').map((b) => path.resolve(b));
const SRC = path.join(DIR, `src-${FILES}`);
const DAY2 = `${SRC}-day2`;
for (const t of [SRC, DAY2]) if (!fs.existsSync(`${t}.done`)) throw new Error(`${t} missing: run npm run bench -- --files ${FILES} --dir ${DIR} first`);

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
}
const spool = path.join(DIR, 'spool-inc');
const pdir = path.join(spool, 'rsync', 'b', 'm');
const first = path.join(pdir, '2026-01-01T030000Z');
const out = path.join(DIR, 'out-inc');
const hardsnap = (build, args, now) => sh(path.join(build, 'bin', 'hardsnap'), args, { env: { ...process.env, HARDSNAP_NOW: now } });
if (!fs.existsSync(first)) {
  fs.rmSync(spool, { recursive: true, force: true });
  hardsnap(BUILDS[0], ['backup', '--spool', spool, '--host', 'b', '--part', `m=${SRC}`], '2026-01-01T03:00:00Z');
}
function undo() {
  fs.rmSync(path.join(pdir, '2026-01-02T030000Z'), { recursive: true, force: true });
  fs.rmSync(path.join(pdir, '.hardsnap', 'manifests', '2026-01-02T030000Z.hsm'), { force: true });
  fs.rmSync(path.join(pdir, 'last'));
  fs.symlinkSync('2026-01-01T030000Z', path.join(pdir, 'last'));
}
function timed(fn) {
  sh('sync', []);
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}
const incremental = (build, extra = []) => timed(() => hardsnap(build, ['backup', '--spool', spool, '--host', 'b', '--part', `m=${DAY2}`, '--no-flush', ...extra], '2026-01-02T03:00:00Z'));
const med = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const show = (label, times) => console.log(`  ${label.padEnd(52)} median ${med(times).toFixed(2).padStart(6)} s   (${times.map((t) => t.toFixed(2)).join(', ')})`);
const load = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');

console.log(`${FILES} files, ${RUNS} rounds; load average ${load()}`);
if (argv.includes('--progress')) {
  const on = [];
  const off = [];
  for (let i = 0; i < RUNS; i++) {
    for (const bars of i % 2 ? [false, true] : [true, false]) {
      (bars ? on : off).push(incremental(BUILDS[0], [bars ? '--progress' : '--no-progress']));
      undo();
    }
  }
  show('incremental --progress', on);
  show('incremental --no-progress', off);
  console.log(`  => progress costs ${((med(on) / med(off) - 1) * 100).toFixed(1)}% (medians)`);
} else {
  const hs = BUILDS.map(() => []);
  const floor = [];
  for (let i = 0; i < RUNS; i++) {
    BUILDS.forEach((b, k) => {
      hs[k].push(incremental(b));
      undo();
    });
    fs.rmSync(out, { recursive: true, force: true });
    floor.push(timed(() => {
      sh('cp', ['-al', first, out]);
      sh('find', [DAY2, '-printf', '%s %T@ %m\n']);
    }));
    fs.rmSync(out, { recursive: true, force: true });
  }
  show('floor: cp -al PREV + find', floor);
  BUILDS.forEach((b, k) => show(`hardsnap --no-flush ${path.relative(path.dirname(ROOT), b) || b}`, hs[k]));
  BUILDS.forEach((b, k) => console.log(`  => ${b}: ${(med(hs[k]) / med(floor)).toFixed(2)}x the floor`));
}
console.log(`  load average at the end ${load()}`);
