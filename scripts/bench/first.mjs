// The first generation of a mktree.py tree (hardsnap writes every file and hashes it into the
// manifest) against plain copies, in two like-for-like pairs, interleaved in every round:
//   no flush:   hardsnap backup --no-flush   vs  cp -a (the floor column)  and rsync -aH
//   flushed:    hardsnap backup (syncfs)     vs  cp -a && sync
// Every round writes a new spool (made by `init` before the timing) or a new directory.
import path from 'node:path';
import { day, fmtN, fmtS, interleave, median, quiet, row, warm } from './util.mjs';

export function first(ctx, { files, target }) {
  const { work, builds, rounds, say, hsExtra } = ctx;
  const src = work.tree(files, say);
  const base = work.fresh('first');
  say('  warming the cache (the source read once) ...');
  warm([src]);
  const spool = (b, r, flush) => path.join(base, `spool-${b}-${flush ? 'flush' : 'noflush'}-${r}`);
  const hs = (flush) => builds.map((b, k) => ({
    key: `${b.label}${flush ? '' : ' --no-flush'}`,
    before: (r) => b.init(spool(k, r, flush)),
    run: (r) => b.backup(spool(k, r, flush), 'm', src, day(0).now, [...(flush ? [] : ['--no-flush']), ...hsExtra]),
  }));
  const contenders = [
    ...hs(false),
    { key: 'cp -a', run: (r) => quiet('cp', ['-a', src, path.join(base, `cp-${r}`)]) },
    { key: 'rsync -aH', run: (r) => quiet('rsync', ['-aH', '--numeric-ids', `${src}/`, `${path.join(base, `rsync-${r}`)}/`]) },
    ...hs(true),
    { key: 'cp -a && sync', run: (r) => (quiet('cp', ['-a', src, path.join(base, `cpsync-${r}`)]), quiet('sync', [])) },
  ];
  say(`  ${rounds} rounds, in this order each round: ${contenders.map((c) => c.key).join(', ')}`);
  const times = interleave(rounds, contenders, say);
  const med = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
  const title = `first generation (${fmtN(files)} files)`;
  const pair = (flush, floorKey) => {
    const key = (b) => `${b.label}${flush ? '' : ' --no-flush'}`;
    const cells = {
      hardsnap: fmtS(med[key(builds[0])]),
      ...Object.fromEntries(builds.slice(1).map((b) => [b.label, fmtS(med[key(b)])])),
      floor: `${fmtS(med[floorKey])} (${floorKey})`,
      ...(flush ? {} : { rsync: `${fmtS(med['rsync -aH'])} (rsync -aH)` }),
    };
    const cmp = builds.slice(1).map((b) => `${b.label} ${(med[key(b)] / med[floorKey]).toFixed(2)}x`).join(', ');
    return row(flush ? `${title}, both flush (hardsnap's default)` : `${title}, neither flushes`, cells, med[key(builds[0])] / med[floorKey], target, floorKey, cmp);
  };
  return { rows: [pair(false, 'cp -a'), pair(true, 'cp -a && sync')], med };
}
