// A 1,000,000-file incremental (one mutate.py day): its time against this run's 100k
// incremental, and hardsnap's peak RSS (/usr/bin/time's maximum resident set size). The kept
// tree is day 1 as it is and is changed in place by the run (a copy would be 11 GB more), so
// every run adds one more mutate.py day to it; no floor or rsync beside it (each would need its
// own 11 GB copy of day 1). The tree takes minutes to make the first time, and again after
// MAX_DAYS runs: mutate.py puts every added file into one directory (users/new-today); with
// other seeds day after day it grew to 140,000 entries and the run's time and memory with it
// (the walk holds a directory's records until the directory is done), a tree no 100k run
// meets. The row says how many days the tree had and its widest directory.
import { fmtN, row, sh } from './util.mjs';
import { incremental } from './incremental.mjs';

const MAX_DAYS = 3;

/** the entry count of the widest directory of a tree, and its path */
function widest(dir) {
  const out = sh('sh', ['-c', 'find "$1" -mindepth 1 -printf "%h\\n" | sort | uniq -c | sort -n | tail -1', 'sh', dir]).stdout.trim();
  const m = /^(\d+)\s+(.*)$/.exec(out);
  return m ? { n: Number(m[1]), path: m[2] } : { n: 0, path: dir };
}

export function million(ctx, { files, timeTarget, rssTarget, inc100k }) {
  if (ctx.work.treeDays(files) >= MAX_DAYS) ctx.work.remakeTree(files, ctx.say);
  const r = incremental(ctx, { key: '1m', title: 'incremental', files, contenders: [], inPlace: true, checkFirst: false, targets: [] });
  const hs = r.med.hardsnap;
  const w = widest(ctx.work.tree(files, ctx.say));
  const days = ctx.work.treeDays(files);
  const tree = `the tree after ${days} mutate.py ${days === 1 ? 'day' : 'days'} in place, its widest directory ${fmtN(w.n)} entries`;
  ctx.say(`  ${tree} (${w.path})`);
  const rows = [];
  const ratio = inc100k ? hs / inc100k.med : null;
  const others = ctx.builds.slice(1);
  const cells = { hardsnap: `${hs.toFixed(1)} s`, ...Object.fromEntries(others.map((b) => [b.label, `${r.med[b.label].toFixed(1)} s`])), floor: r.med.floor ? `${r.med.floor.toFixed(1)} s` : '-' };
  rows.push(row(`1M incremental (${fmtN(r.files)} files), time`, cells, ratio, timeTarget,
    inc100k ? `the ${fmtN(inc100k.files)}-file one` : 'the 100k one',
    `${inc100k ? `the ${fmtN(inc100k.files)}-file incremental of this run: ${inc100k.med.toFixed(2)} s` : 'the 100k section was not run in this run: no ratio'}; ${tree}`));
  const peak = r.peak.hardsnap;
  rows.push({ work: `1M incremental (${fmtN(r.files)} files), peak RSS`, cells: { hardsnap: `${peak.toFixed(0)} MB`, ...Object.fromEntries(others.map((b) => [b.label, `${r.peak[b.label].toFixed(0)} MB`])) }, ratio: null, target: null, targetText: `<= ${rssTarget} MB`, vs: '', verdict: peak <= rssTarget ? 'MET' : 'SHORT', note: '' });
  return { rows, med: r.med };
}
