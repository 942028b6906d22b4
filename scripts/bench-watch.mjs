#!/usr/bin/env node
// Watch mode benchmark (issues 7 and 22). Prints, in one run, side by side:
//
//  (a) memory: the peak RSS (VmHWM) of `hardsnap watch` on trees of --sizes files (default
//      100,000 and 1,000,000, mktree.py), with fanotify, and with chokidar on the sizes up to
//      --chokidar-max (default 100,000); each through: first backup, the watcher started, a
//      backup, one mutate.py day (its defaults: 1% changed, 0.5% added, deleted, renamed), a
//      journaled backup. Also its CPU time and how long it took to be ready.
//  (b) the gain: the scan phase of a backup with a trusted journal against a full scan, 100,000
//      files (--gain-files), one mutate.py day per round, cold caches (drop_caches before each
//      timed phase), in two settings: the source on latencyfs (../shared/bench/latencyfs.c, 500
//      µs per metadata operation, NFS-like; fanotify cannot mark FUSE, so the watcher is
//      chokidar) and the source on the local file system (fanotify). The scan phase is what the
//      backup does before linking: the journal's sync, the new-link check, the audit (100
//      directories) and the walk that lists every directory (scandir, or the journal's
//      manifest entries and named entries); the full scan is the walk with a scandir of every
//      directory. Both are timed on the same tree in each round (which goes first alternates),
//      then a real backup (journaled and --no-journal, alternating) moves on to the next
//      generation. The load average is printed with every round: the machine may be shared.
//
// Needs root (fanotify, drop_caches, FUSE). Run alone:
//   node scripts/bench-watch.mjs [--sizes 100000,1000000] [--chokidar-max 100000]
//        [--gain-files 100000] [--rounds 4] [--dir /tmp/hardsnap-bench-watch] [--only rss|gain]
// Trees are kept in --dir between runs (made once: a million files take a while).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SHARED = path.resolve(ROOT, '..', 'shared', 'bench');
const BIN = path.join(ROOT, 'bin', 'hardsnap');
const dist = (p) => import(path.join(ROOT, 'dist', p));

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i < 0 ? dflt : argv[i + 1];
};
// --files N and --runs N (how scripts/bench.mjs --watch calls it): one size, N rounds
const FILES = opt('files', null);
const SIZES = String(opt('sizes', FILES ?? '100000,1000000')).split(',').map(Number);
const CHOKIDAR_MAX = Number(opt('chokidar-max', 100000));
const GAIN_FILES = Number(opt('gain-files', FILES ?? 100000));
const ROUNDS = Number(opt('rounds', opt('runs', 4)));
const DIR = path.resolve(opt('dir', path.join(os.tmpdir(), 'hardsnap-bench-watch')));
const ONLY = opt('only', null);

const { sys, SCAN_XATTR, SCAN_PARALLEL } = await dist('fs/native.js');
const { isRemoteFsType } = await dist('fs/thread-pool.js');
const { parseScan } = await dist('fs/entry.js');
const { joinRel } = await dist('paths/escape.js');
const { ManifestReader } = await dist('manifest/reader.js');
const { UnchangedDirs } = await dist('watch/unchanged-dirs.js');
const { consultJournal, DEFAULT_JOURNAL } = await dist('watch/journal-use.js');
const { rulesFingerprint } = await dist('watch/scan-choice.js');
const { unrecordedLink } = await dist('watch/new-links.js');
const { audit } = await dist('watch/audit.js');

const NO_EXCLUDES = { empty: true, excluded: () => false };
const O_DIR = sys.O_RDONLY | sys.O_DIRECTORY | sys.O_NOFOLLOW | sys.O_NOATIME;

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', maxBuffer: 1 << 28, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r;
}
const rm = (p) => fs.rmSync(p, { recursive: true, force: true });
/** Removes a spool in the background (a million hard links take minutes on a busy disk). */
const rmLater = (p) => {
  if (!fs.existsSync(p)) return;
  const gone = `${p}.gone-${process.pid}-${Date.now()}`;
  fs.renameSync(p, gone);
  spawn('rm', ['-rf', gone], { stdio: 'ignore', detached: true }).unref();
};
const secs = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const load = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function dropCaches() {
  spawnSync('sync');
  fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
}

/** A mktree.py tree of n files at dir, made once (a marker says it is complete). */
function tree(dir, n) {
  const made = `${dir}.made`;
  if (fs.existsSync(made) && fs.readFileSync(made, 'utf8') === String(n)) return;
  rm(made);
  rm(dir);
  const t = process.hrtime.bigint();
  sh('python3', [path.join(SHARED, 'mktree.py'), dir, '--files', String(n), '--seed', '1']);
  fs.writeFileSync(made, String(n));
  console.log(`  (made ${n} files in ${secs(t).toFixed(0)} s)`);
}

/** One day of mutate.py (its defaults), seeded. */
function mutateDay(src, seed) {
  return sh('python3', [path.join(SHARED, 'mutate.py'), src, '--seed', String(seed)]).stdout.trim();
}

/** A fresh spool: `hardsnap init` where this version has it (a backup refuses a bare directory then). */
function freshSpool(spool) {
  rmLater(spool);
  const r = spawnSync(BIN, ['init', '--spool', spool], { encoding: 'utf8' });
  if (r.status !== 0 && !/unknown option/.test(r.stderr)) throw new Error(`hardsnap init --spool ${spool}: ${r.stderr}`);
}

function backup(target, extra = []) {
  const t = process.hrtime.bigint();
  const r = sh(BIN, ['backup', ...target, '--json', ...extra]);
  return { secs: secs(t), part: JSON.parse(r.stdout).parts[0] };
}

/** CPU seconds (user + system) and peak RSS (MB) of a process, from /proc. */
function procStats(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const hz = 100;
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
    const rss = /VmRSS:\s+(\d+) kB/.exec(status);
    return { cpu: (Number(f[11]) + Number(f[12])) / hz, peakMb: hwm ? Number(hwm[1]) / 1024 : NaN, rssMb: rss ? Number(rss[1]) / 1024 : NaN };
  } catch {
    return null;
  }
}

/**
 * Waits until a process is nearly idle: at most 150 ms of CPU in two seconds (a fanotify watcher
 * reads every change of its file systems: on a shared machine it never stops entirely); at
 * most a minute.
 */
async function idle(pid) {
  const deadline = Date.now() + 60_000;
  let last = -1;
  while (Date.now() < deadline) {
    const c = procStats(pid)?.cpu ?? 0;
    if (last >= 0 && c - last <= 0.15) return;
    last = c;
    await sleep(2000);
  }
}

/** `hardsnap watch` started, ready (its epoch began); log kept. */
async function startWatcher(target, kind) {
  const w = spawn(BIN, ['watch', ...target, '--watcher', kind], { stdio: ['ignore', 'ignore', 'pipe'] });
  w.log = '';
  w.stderr.setEncoding('utf8').on('data', (d) => (w.log += d));
  const t0 = Date.now();
  while (!/epoch \w+ began/.test(w.log)) {
    if (Date.now() - t0 > 1_800_000 || w.exitCode !== null) throw new Error(`the watcher did not start: ${w.log}`);
    await sleep(50);
  }
  w.readySecs = (Date.now() - t0) / 1000;
  return w;
}

async function stopWatcher(w) {
  if (w.exitCode === null) w.kill('SIGTERM');
  await new Promise((r) => (w.exitCode !== null ? r() : w.on('exit', r)));
}

// ---------- (a) memory ----------

async function rssOne(n, kind) {
  const src = path.join(DIR, `src-${n}`);
  const spool = path.join(DIR, `spool-rss`);
  freshSpool(spool);
  const target = ['--spool', spool, '--host', 'b', '--part', `p=${src}`];
  backup(target);
  const w = await startWatcher(target, kind);
  try {
    backup(target);
    const day = mutateDay(src, 1000 + n % 97);
    await idle(w.pid);
    const b = backup(target);
    await idle(w.pid);
    const s = procStats(w.pid);
    const used = b.part.journal.used ? `journal used, ${b.part.journal.dirty} directories changed` : `journal NOT used: ${b.part.journal.reason}`;
    // what the watcher said went wrong, if anything (an overflow, an error)
    for (const line of w.log.split('\n').filter((l) => /error|warning|overflow/i.test(l))) console.log(`      watcher: ${line}`);
    return { n, kind, ready: w.readySecs, cpu: s.cpu, peak: s.peakMb, rss: s.rssMb, used, day };
  } finally {
    await stopWatcher(w);
    rmLater(spool);
  }
}

async function memory() {
  console.log(`\n(a) peak RSS of the watcher (one mutate.py day, backups before and after; load average ${load()})`);
  const rows = [];
  for (const n of SIZES) {
    console.log(`  tree of ${n} files...`);
    tree(path.join(DIR, `src-${n}`), n);
    rows.push(await rssOne(n, 'fanotify'));
    console.log(`    fanotify: peak RSS ${rows.at(-1).peak.toFixed(1)} MB (load ${load()})`);
    if (n <= CHOKIDAR_MAX) {
      rows.push(await rssOne(n, 'chokidar'));
      console.log(`    chokidar: peak RSS ${rows.at(-1).peak.toFixed(1)} MB (load ${load()})`);
    }
  }
  console.log(`  ${'files'.padStart(9)}  ${'watcher'.padEnd(9)} ${'ready'.padStart(8)} ${'CPU'.padStart(8)} ${'peak RSS'.padStart(10)} ${'RSS after'.padStart(10)}  the journaled backup`);
  for (const r of rows) {
    console.log(`  ${String(r.n).padStart(9)}  ${r.kind.padEnd(9)} ${(r.ready.toFixed(1) + ' s').padStart(8)} ${(r.cpu.toFixed(1) + ' s').padStart(8)} ${(r.peak.toFixed(1) + ' MB').padStart(10)} ${(r.rss.toFixed(1) + ' MB').padStart(10)}  ${r.used}`);
  }
}

// ---------- (b) the gain ----------

/**
 * scandir()'s flags as the backup sets them for this source: attributes read, entries stat-ed by
 * several threads at once on a remote file system (src/apply/build-tree.ts).
 */
function scanFlags(src) {
  const t = fs.statfsSync(src).type;
  return SCAN_XATTR.OTHER | SCAN_XATTR.FILES | (isRemoteFsType(t) ? SCAN_PARALLEL : 0);
}

/** Every directory's entries, from the source (dirty = null) or as a journaled backup reads them. */
function walk(src, reader, decision) {
  const unchanged = decision ? new UnchangedDirs(decision.dirty, fs.statSync(src).dev, decision.names) : null;
  const xflags = scanFlags(src);
  // attributes read only for entries whose ctime is not older than the previous scan (part-run.ts)
  const started = Date.parse(reader.header.scan?.startWall ?? '');
  const ctimeMin = Number.isFinite(started) ? Math.floor(started / 1000) - 2 : -Infinity;
  const scan = (fd, skip) => sys.scandir(fd, xflags, ctimeMin, skip);
  let entries = 0;
  const visit = (fd, rel) => {
    const prev = reader.dir(rel) ?? [];
    let list = unchanged?.entries(rel, fd, prev, scan) ?? null;
    if (!list) {
      const raw = sys.scandir(fd, xflags, ctimeMin);
      if (typeof raw === 'number') throw new Error(`scandir ${rel}: ${raw}`);
      list = parseScan(raw);
    }
    entries += list.length;
    for (const e of list) {
      if (e.type !== 'dir') continue;
      const sub = sys.openat(fd, e.name, O_DIR, 0);
      if (sub < 0) throw new Error(`openat ${e.name}: ${sub}`);
      visit(sub, joinRel(rel, e.name));
      sys.close(sub);
    }
  };
  const root = sys.openat(sys.AT_FDCWD, src, O_DIR, 0);
  visit(root, Buffer.alloc(0));
  sys.close(root);
  return { entries, stats: unchanged?.stats ?? null };
}

/** The scan phase of a journaled backup: sync, new-link check, audit, walk. */
async function journaledPhase(src, pdir, gen, reader) {
  const t = process.hrtime.bigint();
  const d = await consultJournal({
    partDir: pdir, source: src, rootId: (() => { const st = fs.statSync(src); return `${st.dev}:${st.ino}`; })(),
    prev: { name: gen, reader }, now: new Date(), rules: rulesFingerprint([], false), settings: DEFAULT_JOURNAL,
  });
  if (!d.use) throw new Error(`the journal is not usable: ${d.reason}`);
  const tSync = secs(t);
  const root = sys.openat(sys.AT_FDCWD, src, O_DIR, 0);
  const dev = fs.statSync(src).dev;
  let tLinks, tAudit;
  try {
    const link = unrecordedLink({ rootFd: root, rootDev: dev, reader, dirty: d.dirty, names: d.names, excludes: NO_EXCLUDES });
    if (link) throw new Error(`a new hard link: ${link}`);
    tLinks = secs(t) - tSync;
    const a = audit({ rootFd: root, reader, dirty: d.dirty, names: d.names, sample: DEFAULT_JOURNAL.auditSample, excludes: NO_EXCLUDES, skipDirs: new Map() });
    if (a.mismatch) throw new Error(`the audit found ${a.mismatch}`);
    tAudit = secs(t) - tSync - tLinks;
  } finally {
    sys.close(root);
  }
  const w = walk(src, reader, d);
  const all = secs(t);
  return {
    secs: all, dirty: d.dirty.size, named: d.names.size, stats: w.stats, entries: w.entries, watcher: d.watcher,
    parts: `sync ${tSync.toFixed(2)} + new links ${tLinks.toFixed(2)} + audit ${tAudit.toFixed(2)} + walk ${(all - tSync - tLinks - tAudit).toFixed(2)} s`,
  };
}

function fullPhase(src, reader) {
  const t = process.hrtime.bigint();
  const w = walk(src, reader, null);
  return { secs: secs(t), entries: w.entries };
}

async function gainOne(label, src, spool, mutateSrc) {
  freshSpool(spool);
  const target = ['--spool', spool, '--host', 'b', '--part', `p=${src}`];
  const pdir = path.join(spool, 'rsync', 'b', 'p');
  backup(target);
  const w = await startWatcher(target, 'auto');
  const kind = /watching .* with (\w+)/.exec(w.log)?.[1] ?? '?';
  console.log(`  ${label}: watcher ${kind} ready in ${w.readySecs.toFixed(1)} s${kind === 'chokidar' ? ` (${/fanotify cannot watch [^\n]*/.exec(w.log)?.[0] ?? ''})` : ''}`);
  const rows = [];
  try {
    backup(target); // a full scan that begins inside the epoch: the next ones may use the journal
    for (let r = 0; r < ROUNDS; r++) {
      const day = mutateDay(mutateSrc, 200 + r);
      await idle(w.pid);
      const gen = path.basename(fs.readlinkSync(path.join(pdir, 'last')));
      const reader = ManifestReader.open(path.join(pdir, '.hardsnap', 'manifests', `${gen}.hsm`));
      let j, f;
      const la = load();
      try {
        const journalFirst = r % 2 === 0;
        if (!journalFirst) { dropCaches(); f = fullPhase(src, reader); }
        dropCaches();
        j = await journaledPhase(src, pdir, gen, reader);
        if (journalFirst) { dropCaches(); f = fullPhase(src, reader); }
      } finally {
        reader.close();
      }
      // the real backup, journaled and not in turn (each one moves to the next generation)
      dropCaches();
      const b = backup(target, r % 2 === 0 ? [] : ['--no-journal']);
      if (r % 2 === 0 && !b.part.journal.used) throw new Error(`the backup did not use the journal: ${b.part.journal.reason}`);
      rows.push({ r, day, la, j, f, b, journaled: r % 2 === 0 });
      const s = j.stats;
      console.log(`    round ${r + 1} (load ${la}; ${day}): scan phase with the journal ${j.secs.toFixed(2)} s, full ${f.secs.toFixed(2)} s = ${(j.secs / f.secs).toFixed(3)}x; ` +
        `${j.dirty} directories changed (${s.named} read for named entries, ${s.rescanned} scanned whole, ${s.skipped} from the manifest; ${j.parts}); ` +
        `backup ${b.part.journal.used ? 'with the journal' : '--no-journal'} ${b.secs.toFixed(2)} s`);
    }
  } finally {
    await stopWatcher(w);
  }
  const js = rows.map((x) => x.j.secs), fs_ = rows.map((x) => x.f.secs);
  const bj = rows.filter((x) => x.journaled).map((x) => x.b.secs), bf = rows.filter((x) => !x.journaled).map((x) => x.b.secs);
  return { label, kind, j: median(js), f: median(fs_), ratio: median(rows.map((x) => x.j.secs / x.f.secs)), bj: median(bj), bf: median(bf) };
}

async function gain() {
  console.log(`\n(b) scan phase with a trusted journal against a full scan: ${GAIN_FILES} files, one mutate.py day per round, cold caches (load average ${load()})`);
  const out = [];
  // local file system, fanotify
  const local = path.join(DIR, `src-${GAIN_FILES}-gain`);
  tree(local, GAIN_FILES);
  out.push(await gainOne('local ext4, cold cache', local, path.join(DIR, 'spool-gain'), local));
  // latencyfs: the tree is made in the backing directory, then mounted; changes go through the mount
  const exe = path.join(DIR, 'latencyfs');
  if (!fs.existsSync(exe)) {
    const flags = sh('pkg-config', ['--cflags', '--libs', 'fuse3']).stdout.trim().split(/\s+/);
    sh('cc', ['-O2', '-Wall', '-o', exe, path.join(SHARED, 'latencyfs.c'), ...flags]);
  }
  const backing = path.join(DIR, `lat-backing-${GAIN_FILES}`);
  const mnt = path.join(DIR, 'lat-mnt');
  tree(path.join(backing, 'src'), GAIN_FILES);
  fs.mkdirSync(mnt, { recursive: true });
  sh(exe, [backing, mnt, '500']);
  try {
    const src = path.join(mnt, 'src');
    out.push(await gainOne('latencyfs (500 µs per operation), cold cache', src, path.join(DIR, 'spool-lat'), src));
  } finally {
    spawnSync('fusermount3', ['-u', mnt]);
    // the backing tree was changed by the rounds: made again next time
    rm(path.join(backing, 'src.made'));
  }
  console.log(`  ${'source'.padEnd(46)} ${'watcher'.padEnd(9)} ${'journal'.padStart(9)} ${'full'.padStart(9)} ${'ratio'.padStart(7)}   backup journaled / --no-journal`);
  for (const r of out) {
    console.log(`  ${r.label.padEnd(46)} ${r.kind.padEnd(9)} ${(r.j.toFixed(2) + ' s').padStart(9)} ${(r.f.toFixed(2) + ' s').padStart(9)} ${(r.ratio.toFixed(3) + 'x').padStart(7)}   ${r.bj.toFixed(2)} s / ${r.bf.toFixed(2)} s`);
  }
  console.log('  (ratio: the median of the rounds\' journaled / full; the target is <= 0.2x)');
}

console.log(`hardsnap watch benchmark: ${os.cpus().length} cores, node ${process.version}, Linux ${os.release()}; in ${DIR}; load average ${load()}`);
fs.mkdirSync(DIR, { recursive: true });
if (ONLY !== 'gain') await memory();
if (ONLY !== 'rss') await gain();
console.log(`\ndone; load average ${load()}`);
