#!/usr/bin/env node
// Watch mode benchmark (issue 7): a tree of --files files (default 100,000), a real
// `hardsnap watch`, then --runs rounds (default 3) of "change 1% of the files, back up". Prints,
// side by side, with and without the journal:
//   - the scan phase alone: listing every directory's entries as the tree builder does (one
//     openat + scandir per directory, the previous manifest's block read either way), against
//     taking the unchanged directories' entries from the previous manifest (src/watch/unchanged-dirs.ts);
//   - the whole `hardsnap backup` (wall clock, the journaled run against `--no-journal`).
// Warm caches (the tree was just written or read); dropping them would disturb other work on
// the machine. Run alone: `node scripts/bench-watch.mjs`, or `npm run bench -- --watch`.
//
//   node scripts/bench-watch.mjs [--files 100000] [--runs 3] [--dir /tmp/hardsnap-bench] [--latency]
//
// --latency: the source on latencyfs (../shared/bench/latencyfs.c, 500 µs per metadata
// operation; needs root and /dev/fuse; default 10,000 files), where each stat costs what it
// costs on a slow disk or a cold cache; the spool stays local.
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
const LATENCY = argv.includes('--latency');
const FILES = Number(opt('files', LATENCY ? 10000 : 100000));
const RUNS = Number(opt('runs', 3));
const DIR = path.resolve(opt('dir', path.join(os.tmpdir(), 'hardsnap-bench')));

const { sys } = await dist('fs/native.js');
const { parseScan } = await dist('fs/entry.js');
const { joinRel } = await dist('paths/escape.js');
const { ManifestReader } = await dist('manifest/reader.js');
const { UnchangedDirs } = await dist('watch/unchanged-dirs.js');
const { consultJournal, DEFAULT_JOURNAL } = await dist('watch/journal-use.js');
const { rulesFingerprint } = await dist('watch/scan-choice.js');

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', maxBuffer: 1 << 28, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r;
}
const rm = (p) => fs.rmSync(p, { recursive: true, force: true });
const secs = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const row = (label, xs) => console.log(`  ${label.padEnd(56)} median ${median(xs).toFixed(3).padStart(8)} s   (${xs.map((t) => t.toFixed(3)).join(', ')})`);

const latMnt = path.join(DIR, 'lat-watch-mnt');
const src = LATENCY ? path.join(latMnt, 'watch-src') : path.join(DIR, 'watch-src');
const spool = path.join(DIR, 'watch-spool');
const part = 'w';
const pdir = path.join(spool, 'rsync', 'b', part);
const target = ['--spool', spool, '--host', 'b', '--part', `${part}=${src}`];

function backup(extra = []) {
  const r = sh(BIN, ['backup', ...target, '--json', ...extra]);
  return JSON.parse(r.stdout).parts[0];
}

/** The scan phase of one backup: every directory's entries, from the source or the journal. */
function scanPhase(reader, dirty) {
  const unchanged = dirty ? new UnchangedDirs(dirty, fs.statSync(src).dev) : null;
  const O_DIR = sys.O_RDONLY | sys.O_DIRECTORY | sys.O_NOFOLLOW | sys.O_NOATIME;
  let entries = 0;
  const walk = (fd, rel) => {
    const prev = reader.dir(rel) ?? [];
    let list = unchanged?.entries(rel, fd, prev) ?? null;
    if (!list) {
      const raw = sys.scandir(fd);
      if (typeof raw === 'number') throw new Error(`scandir ${rel}: ${raw}`);
      list = parseScan(raw);
    }
    entries += list.length;
    for (const e of list) {
      if (e.type !== 'dir') continue;
      const sub = sys.openat(fd, e.name, O_DIR, 0);
      if (sub < 0) throw new Error(`openat ${e.name}: ${sub}`);
      walk(sub, joinRel(rel, e.name));
      sys.close(sub);
    }
  };
  const root = sys.openat(sys.AT_FDCWD, src, O_DIR, 0);
  walk(root, Buffer.alloc(0));
  sys.close(root);
  return { entries, skipped: unchanged?.stats.skipped ?? 0, rescanned: unchanged?.stats.rescanned ?? 0 };
}

/** CPU seconds (user + system) and peak RSS of a process, from /proc. */
function watcherCpu(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const hz = Number(sh('getconf', ['CLK_TCK']).stdout.trim()) || 100;
    const peak = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return { cpu: (Number(f[11]) + Number(f[12])) / hz, peakMb: peak ? Math.round(Number(peak[1]) / 1024) : '?' };
  } catch {
    return null;
  }
}

/** Waits until a process's CPU time stops moving for a second (at most 60 s). */
async function idle(pid) {
  const deadline = Date.now() + 60_000;
  let last = -1;
  while (Date.now() < deadline) {
    const c = watcherCpu(pid)?.cpu ?? 0;
    if (c === last) return;
    last = c;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** Mounts latencyfs over a fresh backing directory at latMnt. */
function mountLatency() {
  const exe = path.join(DIR, 'latencyfs');
  if (!fs.existsSync(exe)) {
    const flags = sh('pkg-config', ['--cflags', '--libs', 'fuse3']);
    sh('cc', ['-O2', '-Wall', '-o', exe, path.join(SHARED, 'latencyfs.c'), ...flags.stdout.trim().split(/\s+/)]);
  }
  const backing = path.join(DIR, 'lat-watch-backing');
  rm(backing);
  fs.mkdirSync(backing, { recursive: true });
  fs.mkdirSync(latMnt, { recursive: true });
  sh(exe, [backing, latMnt, '500']);
}

async function main() {
  fs.mkdirSync(DIR, { recursive: true });
  if (LATENCY) mountLatency();
  try {
    await measureAll();
  } finally {
    if (LATENCY) spawnSync('fusermount3', ['-u', latMnt]);
  }
}

async function measureAll() {
  console.log(`hardsnap watch benchmark: ${os.cpus().length} cores, node ${process.version}, ${os.release()}; ${FILES} files, ${RUNS} rounds of 1% changed; in ${DIR}${LATENCY ? '; the source on latencyfs (500 µs per operation)' : ''}`);
  rm(spool);
  // the tree of an earlier run is reused (mutate.py changed it a little): making it is slow
  const made = `${src}.made`; // on latencyfs the backing directory is new: always made
  if (LATENCY || !fs.existsSync(made) || fs.readFileSync(made, 'utf8') !== String(FILES)) {
    rm(made);
    rm(src);
    sh('python3', [path.join(SHARED, 'mktree.py'), src, '--files', String(FILES), '--seed', '1']);
    if (!LATENCY) fs.writeFileSync(made, String(FILES));
  }
  backup();
  const watcher = spawn(BIN, ['watch', ...target], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  watcher.stderr.setEncoding('utf8').on('data', (d) => (log += d));
  try {
    const t0 = Date.now();
    while (!/epoch \w+ began: (\d+) directories/.test(log)) {
      if (Date.now() - t0 > 600_000 || watcher.exitCode !== null) throw new Error(`the watcher did not start: ${log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    console.log(`  watcher ready in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${/began: (\d+) directories/.exec(log)[1]} directories watched`);
    backup(); // a full scan that begins after the epoch: the next ones may use the journal
    const scanFull = [], scanJournal = [], totalFull = [], totalJournal = [];
    let info = '';
    for (let r = 0; r < RUNS * 2; r++) {
      // mutate.py takes percentages of the files: 0.6 changed + 0.2 added + 0.1 deleted + 0.1 renamed = 1%
      sh('python3', [path.join(SHARED, 'mutate.py'), src, '--seed', String(100 + r), '--change', '0.6',
        '--add', '0.2', '--delete', '0.1', '--rename', '0.1']);
      // chokidar re-reads every changed directory: let it finish, so that it does not compete
      await idle(watcher.pid);
      // the scan phase, both ways, on the same change (the journal via the real watcher's sync)
      const gen = path.basename(fs.readlinkSync(path.join(pdir, 'last')));
      const reader = ManifestReader.open(path.join(pdir, '.hardsnap', 'manifests', `${gen}.hsm`));
      try {
        const d = await consultJournal({ partDir: pdir, source: src, prev: { name: gen, reader }, now: new Date(), rules: rulesFingerprint([], false), settings: DEFAULT_JOURNAL });
        if (!d.use) throw new Error(`the journal is not usable: ${d.reason}`);
        // alternate which goes first, so neither always finds the caches warmed by the other
        const timed = (dirty, into) => {
          const t = process.hrtime.bigint();
          const res = scanPhase(reader, dirty);
          into.push(secs(t));
          return res;
        };
        const f = r % 2 ? timed(null, scanFull) : null;
        const j = timed(d.dirty, scanJournal);
        const f2 = f ?? timed(null, scanFull);
        info = `${f2.entries} entries; the journal named ${d.dirty.size} directories, ${j.rescanned} scanned, ${j.skipped} taken from the manifest`;
      } finally {
        reader.close();
      }
      // the whole backup, alternating (each faces one round of changes)
      const t = process.hrtime.bigint();
      const p = backup(r % 2 === 0 ? [] : ['--no-journal']);
      (r % 2 === 0 ? totalJournal : totalFull).push(secs(t));
      if (r % 2 === 0 && !p.journal.used) throw new Error(`the backup did not use the journal: ${p.journal.reason}`);
    }
    console.log(`  last round: ${info}`);
    row('scan phase, full scan (scandir of every directory)', scanFull);
    row('scan phase, with the journal', scanJournal);
    console.log(`  => scan phase with/without the journal: ${(median(scanJournal) / median(scanFull)).toFixed(2)}x`);
    row('hardsnap backup --no-journal (1% changed)', totalFull);
    row('hardsnap backup with the journal (1% changed)', totalJournal);
    console.log(`  => backup with/without the journal: ${(median(totalJournal) / median(totalFull)).toFixed(2)}x`);
    const cpu = watcherCpu(watcher.pid);
    if (cpu) console.log(`  the watcher: ${cpu.cpu.toFixed(1)} s of CPU in ${((Date.now() - t0) / 1000).toFixed(0)} s (its initial scan and ${RUNS * 2} rounds of mutate.py), peak RSS ${cpu.peakMb} MB`);
  } finally {
    watcher.kill('SIGTERM');
    await new Promise((r) => (watcher.exitCode !== null ? r() : watcher.on('exit', r)));
    rm(spool);
  }
}

await main();
