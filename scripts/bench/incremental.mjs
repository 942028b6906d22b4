// Incrementals on mktree.py trees, as a nightly run meets them: the source is one tree that
// changes in place. Day 1: a copy of the kept mktree.py tree (3 s old before anything reads it);
// every contender makes its own copy of day 1 from it; then one mutate.py day (1% changed, 0.5%
// added, deleted and renamed) changes that same tree, and each contender is timed:
//   hardsnap (and each --compare build)   a spool holding day 1's generation (made by that build)
//   floor                                 cp -al PREV NEW && find NEW   (PREV: a cp -a of day 1)
//   rsync --link-dest                     rsync -aH --numeric-ids --delete --link-dest=PREV SRC/ NEW/
//   rsnapshot's way                       cp -al PREV NEW && rsync -aH --numeric-ids --delete SRC/ NEW/
// (A day 2 made as a separate copy would give every file a new ctime, which hardsnap takes as a
// sign that its extended attributes may have changed: it would read them all, as no nightly run
// does. 1m's tree, 11 GB, is not copied: it is day 1 as it is, then changed in place, one more
// mutate.py day each run.)
// Used by the 100k, 30k and 1m sections. The first round's hardsnap generation is checked with
// the rsync oracle and links.py (outside the timing; not for 1m, where it would take long).
import fs from 'node:fs';
import path from 'node:path';
import { MUTATE, PartState, check, day, fmtN, fmtS, interleave, median, quiet, row, sh, warm } from './util.mjs';

/**
 * opts: { key, title, files, contenders: ['floor','rsync','rsnapshot'], inPlace: bool (the kept
 *         tree is day 1 and is changed), checkFirst: bool, targets: [{ vs: 'floor'|'rsync', max }] }
 * returns { rows, medians, rss }
 */
export function incremental(ctx, opts) {
  const { work, builds, rounds, say, hsExtra } = ctx;
  const base = work.fresh(opts.key);
  fs.mkdirSync(base, { recursive: true });
  const want = new Set(opts.contenders);
  let src = work.tree(opts.files, say);
  if (!opts.inPlace) {
    say('  day 1: a copy of the kept tree (untimed) ...');
    sh('cp', ['-a', src, (src = path.join(base, 'src'))]);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 3000); // ctimes older than the first generation's scan
  }

  say(`  setting up (untimed): day 1's generation for each build, a copy of day 1 for each other contender ...`);
  const parts = builds.map((b, k) => {
    const spool = path.join(base, `spool-${k}`);
    b.init(spool);
    b.backup(spool, 'm', src, day(0).now, hsExtra);
    return new PartState(spool, 'm', work);
  });
  const floorPrev = path.join(base, 'floor-prev');
  if (want.has('floor')) sh('cp', ['-a', src, floorPrev]);
  const rsyncPrev = path.join(base, 'rsync-prev');
  if (want.has('rsync')) sh('rsync', ['-aH', '--numeric-ids', `${src}/`, `${rsyncPrev}/`]);
  const snapPrev = path.join(base, 'rsnapshot-prev');
  if (want.has('rsnapshot')) sh('rsync', ['-aH', '--numeric-ids', `${src}/`, `${snapPrev}/`]);
  const mutated = sh('python3', [MUTATE, src, '--seed', '2']).stdout.trim();
  say(`  day 2, in place: ${mutated}`);
  if (opts.inPlace) work.addTreeDay(opts.files);
  // the files of day 1 (the 1M tree, changed in place run after run, drifts from its size: mutate.py's renames may land on existing names)
  const files = Number(/files=(\d+)/.exec(mutated)?.[1] ?? opts.files);
  const day2 = src;
  say('  warming the cache (the source read, every copy of day 1 listed) ...');
  warm([day2], { contents: opts.files <= 200_000 });
  warm([...parts.map((p) => p.prev), ...(want.has('floor') ? [floorPrev] : []), ...(want.has('rsync') ? [rsyncPrev] : []), ...(want.has('rsnapshot') ? [snapPrev] : [])], { contents: false });

  const rss = Object.fromEntries(builds.map((b) => [b.label, []]));
  let checked = null;
  const contenders = [
    ...builds.map((b, k) => ({
      key: b.label,
      run: () => b.backup(parts[k].spool, 'm', day2, day(1).now, hsExtra),
      after: (r) => {
        rss[b.label].push(b.lastRss);
        if (r === 0 && k === 0 && opts.checkFirst) {
          const gen = parts[k].newest();
          checked = gen ? check(day2, gen) : 'FAIL (no new generation)';
        }
        parts[k].reset();
      },
    })),
    ...(want.has('floor') ? [{
      key: 'floor',
      run: (r) => {
        const out = path.join(base, `floor-${r}`);
        quiet('cp', ['-al', floorPrev, out]);
        quiet('find', [out]);
      },
    }] : []),
    ...(want.has('rsync') ? [{
      key: 'rsync',
      run: (r) => quiet('rsync', ['-aH', '--numeric-ids', '--delete', `--link-dest=${rsyncPrev}`, `${day2}/`, `${path.join(base, `rsync-${r}`)}/`]),
    }] : []),
    ...(want.has('rsnapshot') ? [{
      key: 'rsnapshot',
      run: (r) => {
        const out = path.join(base, `rsnapshot-${r}`);
        quiet('cp', ['-al', snapPrev, out]);
        quiet('rsync', ['-aH', '--numeric-ids', '--delete', `${day2}/`, `${out}/`]);
      },
    }] : []),
  ];
  say(`  ${rounds} rounds, in this order each round: ${contenders.map((c) => c.key).join(', ')}`);
  const times = interleave(rounds, contenders, say);
  const med = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
  if (opts.checkFirst) say(`  check of hardsnap's generation (round 1) against day 2's tree: rsync oracle and links.py: ${checked}`);
  const peak = Object.fromEntries(Object.entries(rss).map(([k, v]) => [k, Math.max(...v)]));
  say(`  peak RSS of hardsnap: ${builds.map((b) => `${b.label} ${peak[b.label].toFixed(0)} MB`).join(', ')}`);

  const cells = {
    hardsnap: fmtS(med.hardsnap),
    ...Object.fromEntries(builds.slice(1).map((b) => [b.label, fmtS(med[b.label])])),
    floor: fmtS(med.floor), rsync: fmtS(med.rsync), rsnapshot: fmtS(med.rsnapshot),
  };
  const rows = opts.targets.map((t) => {
    const r = med[t.vs] ? med.hardsnap / med[t.vs] : null;
    const cmp = builds.slice(1).map((b) => `${b.label} ${(med[b.label] / med[t.vs]).toFixed(2)}x ${t.vs}`).join(', ');
    return row(`${opts.title} (${fmtN(files)} files)`, cells, r, t.max, t.vs, cmp);
  });
  if (checked && checked !== 'ok') rows.push(row(`${opts.title}: check of the generation`, {}, null, null, '', checked));
  return { rows, med, peak, checked, files };
}
