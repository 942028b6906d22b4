// A 10,000-file incremental (one mutate.py day) where every metadata operation costs a network
// round trip: ../shared/bench/latencyfs (a FUSE passthrough adding DELAY µs to each operation,
// a LAN NFS mount's latency). Two settings, hardsnap against rsync --link-dest, interleaved:
//   spool on latencyfs    the spool and rsync's PREV/NEW on the mount, the source local
//   source on latencyfs   the source on the mount, the spool and rsync's PREV/NEW local
// Each contender starts from its own copy of day 1 (hardsnap's made through the mount, rsync's
// written into the backing directory); the source is then changed in place (mutate.py), as in
// the incremental sections. Needs root and /dev/fuse.
import fs from 'node:fs';
import path from 'node:path';
import { MUTATE, PartState, SHARED, day, fmtN, fmtS, interleave, median, quiet, sh, warm } from './util.mjs';

function latencyfs(work, say) {
  const exe = path.join(work.trees, 'latencyfs');
  if (!fs.existsSync(exe)) {
    const flags = sh('pkg-config', ['--cflags', '--libs', 'fuse3'], { allowFail: true });
    if (flags.status !== 0) return null;
    say('  building latencyfs ...');
    sh('cc', ['-O2', '-Wall', '-o', exe, path.join(SHARED, 'bench', 'latencyfs.c'), ...flags.stdout.trim().split(/\s+/)]);
  }
  return exe;
}

export function latency(ctx, { files, delayUs, target }) {
  const { work, builds, rounds, say, hsExtra } = ctx;
  const title = (where) => `${where} on latencyfs (${delayUs} µs/op), incremental (${fmtN(files)} files)`;
  const skip = (why) => ['spool', 'source'].map((w) => ({ work: title(w), cells: {}, ratio: null, target, vs: 'rsync', verdict: 'NOT MEASURED', note: why }));
  if (process.getuid?.() !== 0 || !fs.existsSync('/dev/fuse')) return { rows: skip('needs root and /dev/fuse') };
  const exe = latencyfs(work, say);
  if (!exe) return { rows: skip('libfuse3-dev and pkg-config are not installed') };
  const tree = work.tree(files, say);
  const base = work.fresh('latency');
  const pause = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  /** day 1: a copy of the kept tree whose ctimes are older than the first generation's scan */
  const dayOne = (to) => {
    sh('cp', ['-a', tree, to]);
    pause(3000);
    return to;
  };
  const dayTwo = (dir) => say(`  day 2, in place: ${sh('python3', [MUTATE, dir, '--seed', '2']).stdout.trim()}`);
  const mounts = [];
  const mount = (name) => {
    const backing = path.join(base, `${name}-backing`);
    const mnt = path.join(base, `${name}-mnt`);
    fs.mkdirSync(backing, { recursive: true });
    fs.mkdirSync(mnt, { recursive: true });
    sh(exe, [backing, mnt, String(delayUs)]);
    mounts.push(mnt);
    return { backing, mnt };
  };
  const rows = [];
  try {
    // -- the spool on latencyfs
    {
      say(`  spool on latencyfs: setting up (untimed): day 1's generation through the mount for each build ...`);
      const { backing, mnt } = mount('spool');
      const src = dayOne(path.join(base, 'spool-case-src'));
      let n = 0;
      const inMount = { fresh: (name) => path.join(mnt, `${name}-${++n}`) }; // renames stay on the mount
      const parts = builds.map((b, k) => {
        const spool = path.join(mnt, `spool-${k}`);
        b.init(spool);
        b.backup(spool, 'm', src, day(0).now, hsExtra);
        return new PartState(spool, 'm', inMount);
      });
      sh('rsync', ['-aH', '--numeric-ids', `${src}/`, `${path.join(backing, 'rsync-prev')}/`]);
      dayTwo(src);
      const day2 = src;
      warm([day2]);
      warm([backing], { contents: false });
      const contenders = [
        ...builds.map((b, k) => ({ key: b.label, run: () => b.backup(parts[k].spool, 'm', day2, day(1).now, hsExtra), after: () => parts[k].reset() })),
        { key: 'rsync', run: (r) => quiet('rsync', ['-aH', '--numeric-ids', '--delete', `--link-dest=${path.join(mnt, 'rsync-prev')}`, `${day2}/`, `${path.join(mnt, `rsync-${r}`)}/`]) },
      ];
      say(`  ${rounds} rounds, in this order each round: ${contenders.map((c) => c.key).join(', ')}`);
      rows.push(result(title('spool'), interleave(rounds, contenders, say), builds, target));
    }
    // -- the source on latencyfs
    {
      say(`  source on latencyfs: setting up (untimed): day 1's tree on the mount, a generation of it for each build ...`);
      const { backing, mnt } = mount('source');
      const msrc = path.join(mnt, 'src');
      const src = dayOne(path.join(backing, 'src'));
      const parts = builds.map((b, k) => {
        const spool = path.join(base, `source-spool-${k}`);
        b.init(spool);
        b.backup(spool, 'm', msrc, day(0).now, hsExtra);
        return new PartState(spool, 'm', work);
      });
      const rsyncPrev = path.join(base, 'source-rsync-prev');
      sh('rsync', ['-aH', '--numeric-ids', `${src}/`, `${rsyncPrev}/`]);
      // day 2 on the mount: changed in the backing directory, then FUSE's entry and attribute caches (1 s) expire
      dayTwo(src);
      pause(2000);
      warm([path.join(backing, 'src')]);
      warm([rsyncPrev, ...parts.map((p) => p.prev)], { contents: false });
      const contenders = [
        ...builds.map((b, k) => ({ key: b.label, run: () => b.backup(parts[k].spool, 'm', msrc, day(1).now, hsExtra), after: () => parts[k].reset() })),
        { key: 'rsync', run: (r) => quiet('rsync', ['-aH', '--numeric-ids', '--delete', `--link-dest=${rsyncPrev}`, `${msrc}/`, `${path.join(base, `source-rsync-${r}`)}/`]) },
      ];
      say(`  ${rounds} rounds, in this order each round: ${contenders.map((c) => c.key).join(', ')}`);
      rows.push(result(title('source'), interleave(rounds, contenders, say), builds, target));
    }
  } finally {
    for (const m of mounts) sh('fusermount3', ['-u', m], { allowFail: true });
  }
  return { rows };
}

function result(work, times, builds, target) {
  const med = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
  const cells = {
    hardsnap: fmtS(med[builds[0].label]),
    ...Object.fromEntries(builds.slice(1).map((b) => [b.label, fmtS(med[b.label])])),
    rsync: fmtS(med.rsync),
  };
  const ratio = med[builds[0].label] / med.rsync;
  const note = builds.slice(1).map((b) => `${b.label} ${(med[b.label] / med.rsync).toFixed(2)}x`).join(', ');
  return { work, cells, ratio, target, vs: 'rsync', verdict: ratio <= target ? 'MET' : 'SHORT', note };
}
