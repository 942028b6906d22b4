// Real history: a public repository's history checked out one commit a day, in place (a
// two-tree `git read-tree -m -u`: only what changed between the two commits is written or
// removed, so unchanged files keep their mtimes, as on a server), and after each day a
// generation by every contender, one after the other (A B C, then the next day), each from its
// own previous day:
//   hardsnap backup (each build: its own spool)
//   floor               cp -al PREV NEW && find NEW
//   rsync --link-dest   rsync -aH --numeric-ids --delete --link-dest=PREV SRC/ NEW/
//   rsnapshot's way     cp -al PREV NEW && rsync -aH --numeric-ids --delete SRC/ NEW/
// The days are the newest commit of each of the DAYS+1 newest commit dates (as the committer
// wrote them) of the first-parent history; the first day is every tool's first generation, the medians are over the others.
// Every hardsnap generation is checked with the rsync oracle and links.py, outside the timing.
import fs from 'node:fs';
import path from 'node:path';
import { check, day, fmtN, fmtS, load, median, quiet, secs, sh } from './util.mjs';

export function history(ctx, { repo, days: DAYS, target }) {
  const { work, builds, say, hsExtra } = ctx;
  if (!fs.existsSync(repo)) {
    say(`  ${repo}: no such repository (fetch github:u-boot/u-boot, or pass --history-repo GIT_DIR)`);
    return { rows: [{ work: 'real history', cells: {}, ratio: null, target, vs: 'fastest peer', verdict: 'NOT MEASURED', note: `no repository at ${repo}` }] };
  }
  const base = work.fresh('history');
  const { dates, commits, src, checkout } = replay(repo, base, DAYS, say);
  const spools = builds.map((b, k) => {
    const s = path.join(base, `spool-${k}`);
    b.init(s);
    return s;
  });
  const dirs = { floor: path.join(base, 'floor'), rsync: path.join(base, 'rsync'), rsnapshot: path.join(base, 'rsnapshot') };
  for (const d of Object.values(dirs)) fs.mkdirSync(d);
  say(`  ${repo}: ${DAYS + 1} days ${dates[0]} .. ${dates.at(-1)} (the first: every tool's first generation, not in the medians)`);
  const keys = [...builds.map((b) => b.label), 'floor', 'rsync', 'rsnapshot'];
  say(`  in this order each day: ${keys.join(', ')}; then the checks`);
  say(`  ${'day'.padEnd(10)} ${'commit'.padEnd(12)} ${'files'.padStart(6)} ${'changed'.padStart(7)} ${keys.map((k) => k.padStart(Math.max(9, k.length))).join(' ')}  check (load)`);
  const per = Object.fromEntries(keys.map((k) => [k, []]));
  const checks = [];
  let prev = null;
  for (let i = 0; i < commits.length; i++) {
    const changed = checkout(i);
    const files = Number(sh('sh', ['-c', 'find "$1" -type f | wc -l', 'sh', src]).stdout.trim());
    const { now, name } = day(i);
    const runs = {
      ...Object.fromEntries(builds.map((b, k) => [b.label, () => b.backup(spools[k], 'm', src, now, hsExtra)])),
      floor: () => {
        const out = path.join(dirs.floor, name);
        if (prev) quiet('cp', ['-al', path.join(dirs.floor, prev), out]);
        else quiet('cp', ['-a', src, out]);
        quiet('find', [out]);
      },
      rsync: () => quiet('rsync', ['-aH', '--numeric-ids', '--delete', ...(prev ? [`--link-dest=${path.join(dirs.rsync, prev)}`] : []), `${src}/`, `${path.join(dirs.rsync, name)}/`]),
      rsnapshot: () => {
        const out = path.join(dirs.rsnapshot, name);
        if (prev) quiet('cp', ['-al', path.join(dirs.rsnapshot, prev), out]);
        quiet('rsync', ['-aH', '--numeric-ids', '--delete', `${src}/`, `${out}/`]);
      },
    };
    const ts = {};
    for (const k of keys) {
      sh('sync', []);
      const t0 = process.hrtime.bigint();
      runs[k]();
      ts[k] = secs(t0);
      if (i) per[k].push(ts[k]);
    }
    const c = check(src, path.join(spools[0], 'rsync', 'b', 'm', name));
    checks.push(c);
    say(`  ${dates[i]} ${commits[i].slice(0, 12)} ${String(files).padStart(6)} ${String(changed ?? 'all').padStart(7)} ${keys.map((k) => ts[k].toFixed(2).padStart(Math.max(9, k.length))).join(' ')}  ${c} (${load()})`);
    prev = name;
  }
  const med = Object.fromEntries(keys.map((k) => [k, median(per[k])]));
  const fastest = med.rsync <= med.rsnapshot ? 'rsync' : 'rsnapshot';
  const vs = fastest === 'rsync' ? 'rsync' : "rsnapshot's way";
  const cells = {
    hardsnap: fmtS(med[builds[0].label]),
    ...Object.fromEntries(builds.slice(1).map((b) => [b.label, fmtS(med[b.label])])),
    floor: fmtS(med.floor), rsync: fmtS(med.rsync), rsnapshot: fmtS(med.rsnapshot),
  };
  const cmp = builds.slice(1).map((b) => `${b.label} ${(med[b.label] / med[fastest]).toFixed(2)}x`).join(', ');
  const title = `real history, ${path.basename(path.dirname(repo)).replace('+', '/')} (~${fmtN(Math.round(Number(sh('sh', ['-c', 'find "$1" -type f | wc -l', 'sh', src]).stdout) / 1000) * 1000)} files), median of ${DAYS} days`;
  const bad = checks.filter((c) => c !== 'ok').length;
  const ratio = med[builds[0].label] / med[fastest];
  return {
    rows: [
      { work: title, cells, ratio, target, vs, verdict: ratio <= target ? 'MET' : 'SHORT', note: cmp },
      { work: `real history: every generation (${checks.length}) passes the rsync oracle and links.py`, cells: {}, ratio: null, target: null, targetText: 'all pass', vs: '', verdict: bad ? 'SHORT' : 'MET', note: bad ? `${bad} generations failed` : '' },
    ],
    med,
  };
}

/**
 * A repository's history replayed into one source directory, BASE/src: the newest commit of
 * each of the DAYS+1 newest commit dates (as the committer wrote them) of the first-parent
 * line. checkout(i) brings day i in place (a two-tree `git read-tree -m -u` from day i-1:
 * only what changed is written or removed, so unchanged files keep their mtimes and ctimes)
 * and returns how many paths changed (null for day 0, checked out whole).
 */
export function replay(repo, base, DAYS, say) {
  const git = (...args) => sh('git', ['--git-dir', repo, ...args]).stdout.trim();
  const lines = (t) => t.split('\n').filter(Boolean);
  const byDate = new Map();
  for (const l of lines(git('log', '--first-parent', '--format=%H %cs', 'HEAD'))) {
    const [c, d] = l.split(' ');
    if (!byDate.has(d)) byDate.set(d, c);
    if (byDate.size > DAYS) break;
  }
  const dates = [...byDate.keys()].slice(0, DAYS + 1).reverse();
  const commits = dates.map((d) => byDate.get(d));
  fs.mkdirSync(base, { recursive: true });
  // a git directory of the bench's own (its index, its sparse-checkout), borrowing the mirror's
  // objects: the mirror is only read. A snapshot brought by the `fetch` tool lacks files of 4 MiB
  // and more: such paths are left out of every day's tree (said once).
  const GD = path.join(base, 'git');
  sh('git', ['init', '-q', '--bare', GD]);
  fs.writeFileSync(path.join(GD, 'objects', 'info', 'alternates'), `${path.join(repo, 'objects')}\n`);
  const missing = new Set();
  for (const c of commits) {
    const tree = lines(git('ls-tree', '-r', c));
    const chk = sh('git', ['--git-dir', repo, 'cat-file', '--batch-check'], { input: `${tree.map((l) => l.split(/\s+/)[2]).join('\n')}\n`, stdio: ['pipe', 'pipe', 'pipe'] }).stdout;
    lines(chk).forEach((l, k) => { if (l.endsWith(' missing')) missing.add(tree[k].split('\t')[1]); });
  }
  if (missing.size) say(`  left out (not in the mirror): ${[...missing].join(', ')}`);
  sh('git', ['--git-dir', GD, 'config', 'core.sparseCheckout', 'true']);
  fs.mkdirSync(path.join(GD, 'info'), { recursive: true });
  fs.writeFileSync(path.join(GD, 'info', 'sparse-checkout'), `${['/*', ...[...missing].map((m) => `!/${m}`)].join('\n')}\n`);
  const src = path.join(base, 'src');
  fs.mkdirSync(src);
  const t = ['--git-dir', GD, '--work-tree', src];
  const checkout = (i) => {
    if (!i) {
      sh('git', [...t, 'read-tree', '-u', '--reset', commits[0]]);
      return null;
    }
    sh('git', [...t, 'read-tree', '-m', '-u', commits[i - 1], commits[i]]);
    return lines(git('diff', '--name-only', commits[i - 1], commits[i])).length;
  };
  return { dates, commits, src, checkout };
}
