#!/usr/bin/env node
// Real history, side by side: a public repository's history checked out one commit a day, in
// place (git rewrites only what changed, so unchanged files keep their mtimes, as on a server),
// and after each day a generation by every tool, interleaved in the same round (A B C, then the
// next day), nothing deleted while timed:
//   hardsnap backup                        (a spool; its manifest-driven incremental)
//   rsync -aH --delete --link-dest=PREV    (into a new directory)
//   rsnapshot's way: cp -al PREV NEW && rsync -aH --delete SRC/ NEW/
// Every hardsnap generation is checked with the rsync oracle (-aHAXn --checksum, nothing
// printed) and ../shared/check/links.py. Prints per-day times, medians over the incremental days,
// the ratio to the fastest peer, and the load average.
//
//   node scripts/bench-history.mjs --repo GIT_DIR [--days 10] [--dir DIR] [--branch HEAD] [--skip-check]
//   (a git mirror: the `fetch` tool's /work/.mirror/<owner>+<name>/repo; u-boot/u-boot has ~38k files)
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin', 'hardsnap');
const LINKS = path.resolve(ROOT, '..', 'shared', 'check', 'links.py');
const argv = process.argv.slice(2);
const opt = (name, dflt) => (argv.includes(`--${name}`) ? argv[argv.indexOf(`--${name}`) + 1] : dflt);
const REPO = opt('repo', '/work/.mirror/u-boot+u-boot/repo');
const DAYS = Number(opt('days', 10));
const DIR = path.resolve(opt('dir', path.join(os.tmpdir(), 'hardsnap-bench-history')));
const BRANCH = opt('branch', 'HEAD');
const CHECK = !argv.includes('--skip-check');
const load = () => `load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`;

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', maxBuffer: 1 << 28, ...opts });
  if (r.status !== 0 && !opts.allowFail) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r;
}
function timed(fn) {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}
const git = (...args) => sh('git', ['--git-dir', REPO, ...args]).stdout.trim();
const lines = (t) => t.split('\n').filter(Boolean);

// the last commit of each of DAYS consecutive days (first-parent history, going back from BRANCH)
const dates = git('log', '--first-parent', '--format=%cs', BRANCH).split('\n');
const days = [...new Set(dates)].slice(0, DAYS).reverse();
const commits = days.map((d) => git('rev-list', '--first-parent', '-1', `--before=${d} 23:59:59`, BRANCH));

fs.rmSync(DIR, { recursive: true, force: true });
// a git directory of the bench's own (its index, its sparse-checkout), borrowing the mirror's
// objects: the mirror is only read. A snapshot brought by `fetch` lacks files of 4 MiB and more:
// such paths are left out of every day's tree (listed once).
const GD = path.join(DIR, 'git');
sh('git', ['init', '-q', '--bare', GD]);
fs.writeFileSync(path.join(GD, 'objects', 'info', 'alternates'), `${path.join(REPO, 'objects')}\n`);
const missing = new Set();
for (const c of commits) {
  const tree = lines(git('ls-tree', '-r', c));
  const chk = sh('git', ['--git-dir', REPO, 'cat-file', '--batch-check'], { input: tree.map((l) => l.split(/\s+/)[2]).join('\n') + '\n', stdio: ['pipe', 'pipe', 'pipe'] }).stdout;
  lines(chk).forEach((l, k) => { if (l.endsWith(' missing')) missing.add(tree[k].split('\t')[1]); });
}
if (missing.size) console.log(`left out (not in the snapshot): ${[...missing].join(', ')}`);
sh('git', ['--git-dir', GD, 'config', 'core.sparseCheckout', 'true']);
fs.mkdirSync(path.join(GD, 'info'), { recursive: true });
fs.writeFileSync(path.join(GD, 'info', 'sparse-checkout'), ['/*', ...[...missing].map((m) => `!/${m}`)].join('\n') + '\n');
const src = path.join(DIR, 'src');
const spool = path.join(DIR, 'spool');
const rs = path.join(DIR, 'rsync');
const snap = path.join(DIR, 'rsnapshot');
for (const d of [src, spool, rs, snap]) fs.mkdirSync(d, { recursive: true });
sh(BIN, ['init', '--spool', spool], { allowFail: true }); // releases whose backup refuses a spool never made

console.log(`history bench: ${REPO} (${git('rev-list', '--count', BRANCH)} commits), ${DAYS} days ${days[0]} .. ${days.at(-1)}; ${os.cpus().length} cores, node ${process.version}, ${os.release()}`);
console.log(`working in ${DIR}; ${load()}`);
console.log('day          files   changed  hardsnap  rsync-link-dest  rsnapshot-way   check');
const rows = [];
let prevName = null;
for (let i = 0; i < commits.length; i++) {
  // check the day's commit out in place (a two-tree read-tree: only what changed between the
  // two commits is written or removed), with an index of the bench's own: the mirror is only read
  const before = i ? new Set(git('diff', '--name-only', commits[i - 1], commits[i]).split('\n').filter(Boolean)) : null;
  const tree = ['--git-dir', GD, '--work-tree', src];
  if (i) sh('git', [...tree, 'read-tree', '-m', '-u', commits[i - 1], commits[i]]);
  else sh('git', [...tree, 'read-tree', '-u', '--reset', commits[i]]);
  const files = Number(sh('sh', ['-c', `find "${src}" -type f | wc -l`]).stdout.trim());
  const name = `2026-01-${String(i + 1).padStart(2, '0')}T030000Z`;
  const now = `2026-01-${String(i + 1).padStart(2, '0')}T03:00:00Z`;
  // interleaved: the three tools one after the other, their order turning every day
  const runs = {
    hardsnap: () => sh(BIN, ['backup', '--spool', spool, '--host', 'b', '--part', `m=${src}`], { env: { ...process.env, HARDSNAP_NOW: now } }),
    rsync: () => sh('rsync', ['-aH', '--numeric-ids', '--delete', ...(prevName ? [`--link-dest=${path.join(rs, prevName)}`] : []), `${src}/`, `${path.join(rs, name)}/`]),
    rsnapshot: () => {
      if (prevName) sh('cp', ['-al', path.join(snap, prevName), path.join(snap, name)]);
      sh('rsync', ['-aH', '--numeric-ids', '--delete', `${src}/`, `${path.join(snap, name)}/`]);
    },
  };
  const order = ['hardsnap', 'rsync', 'rsnapshot'];
  for (let k = 0; k < i % 3; k++) order.push(order.shift());
  const t = {};
  for (const k of order) t[k] = timed(runs[k]);
  let check = '-';
  if (CHECK) {
    const gen = path.join(spool, 'rsync', 'b', 'm', name);
    const diff = sh('rsync', ['-aHAXn', '--delete', '--checksum', '--itemize-changes', '--numeric-ids', '--modify-window=-1', `${src}/`, `${gen}/`]).stdout.trim();
    const links = sh('python3', [LINKS, src, gen], { allowFail: true });
    check = !diff && links.status === 0 ? 'ok' : `FAIL${diff ? ` rsync: ${diff.split('\n').length} lines` : ''}${links.status ? ' links.py' : ''}`;
  }
  rows.push({ day: days[i], files, changed: before ? before.size : files, ...t, check });
  console.log(`${days[i]}  ${String(files).padStart(7)}  ${String(before ? before.size : files).padStart(7)}  ${t.hardsnap.toFixed(2).padStart(8)}  ${t.rsync.toFixed(2).padStart(15)}  ${t.rsnapshot.toFixed(2).padStart(13)}   ${check}`);
  prevName = name;
}
const inc = rows.slice(1);
const med = (k) => [...inc.map((r) => r[k])].sort((a, b) => a - b)[Math.floor(inc.length / 2)];
const [h, r, s] = [med('hardsnap'), med('rsync'), med('rsnapshot')];
const best = Math.min(r, s);
console.log(`\nincremental days (${inc.length}), medians: hardsnap ${h.toFixed(2)} s, rsync --link-dest ${r.toFixed(2)} s, rsnapshot's way ${s.toFixed(2)} s`);
console.log(`=> hardsnap / fastest peer: ${(h / best).toFixed(2)}x (target <= 0.8x: ${h / best <= 0.8 ? 'met' : 'NOT met'})`);
const bad = rows.filter((x) => x.check !== 'ok' && x.check !== '-');
console.log(CHECK ? `=> oracle and links.py: ${bad.length ? `${bad.length} generations FAILED` : `every generation passed (${rows.length})`}` : '=> checks skipped');
console.log(`done; ${load()}`);
if (bad.length) process.exitCode = 1;
