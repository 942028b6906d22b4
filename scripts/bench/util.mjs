// What every bench section shares: running commands, timing contenders in interleaved rounds,
// medians, the load average, the trees made once and kept, hardsnap builds and their spools,
// and the rows of the side-by-side tables.
//
// The rules every figure follows (docs/PERFORMANCE.md, "Method"):
// - contenders run one after the other in every round (A B C, A B C, ...), medians are taken;
// - nothing is deleted while a section is timed: each round writes under a fresh name in the
//   run's directory, which is deleted after all timing (ext4 delays the reuse of inodes freed
//   less than a minute before, fs/ext4/ialloc.c recently_deleted(), which charged every create
//   of a run made right after a deletion);
// - `sync` before every timed command (the previous one's dirty pages are not its bill);
// - every hardsnap run of an incremental starts from the same previous generation: what it
//   added to its spool is renamed aside after the timing, and `last` and LATEST are put back.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SHARED = path.resolve(ROOT, '..', 'shared');
export const MKTREE = path.join(SHARED, 'bench', 'mktree.py');
export const MUTATE = path.join(SHARED, 'bench', 'mutate.py');
export const LINKS = path.join(SHARED, 'check', 'links.py');

/** The V8 flags a build's bin/hardsnap starts node with (its `#!/usr/bin/env -S node ...` line), to run it as it runs. */
export function nodeFlags(bin) {
  const first = fs.readFileSync(bin, 'utf8').split('\n', 1)[0];
  const m = /^#!\/usr\/bin\/env -S node(.*)$/.exec(first);
  if (!m) throw new Error(`${bin}: its first line is not '#!/usr/bin/env -S node ...'`);
  return m[1].split(' ').filter(Boolean);
}

export function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', maxBuffer: 1 << 28, ...opts });
  if (r.error) throw r.error;
  if (r.status !== 0 && !opts.allowFail) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${String(r.stderr).slice(0, 2000)}`);
  return r;
}
/** a command whose output nobody reads (timed commands: nothing piped back to us) */
export const quiet = (cmd, args, opts = {}) => sh(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], ...opts });

export const load = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');
export const secs = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;
export function median(xs) {
  const s = xs.filter((x) => x != null).sort((a, b) => a - b);
  if (!s.length) return null;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
export const fmtS = (s) => (s == null ? '-' : `${s < 10 ? s.toFixed(2) : s.toFixed(1)} s`);
export const fmtN = (n) => n.toLocaleString('en-US');
export const rm = (p) => fs.rmSync(p, { recursive: true, force: true });
export const freeBytes = (p) => {
  const s = fs.statfsSync(p);
  return s.bavail * s.bsize;
};

/** UTC "now" of day k (0: 2026-01-01T03:00:00Z), for HARDSNAP_NOW and generation names */
export function day(k) {
  const d = new Date(Date.UTC(2026, 0, 1 + k, 3, 0, 0));
  const iso = d.toISOString().replace('.000Z', 'Z');
  return { now: iso, name: iso.replace(/[-:]/g, '').replace(/^(\d{4})(\d{2})(\d{2})/, '$1-$2-$3') };
}

/**
 * Runs the contenders one after the other in every round (A B C, A B C, ...); each timed alone,
 * after a `sync`. A contender: { key, run(round), before?(round), after?(round) } where only
 * run() is timed. Returns { key: [seconds per round] }; with `say`, prints each round.
 */
export function interleave(rounds, contenders, say = () => {}) {
  const times = Object.fromEntries(contenders.map((c) => [c.key, []]));
  for (let r = 0; r < rounds; r++) {
    const line = [];
    for (const c of contenders) {
      c.before?.(r);
      spawnSync('sync');
      const t0 = process.hrtime.bigint();
      c.run(r);
      const t = secs(t0);
      times[c.key].push(t);
      line.push(`${c.key} ${t.toFixed(2)}`);
      c.after?.(r);
    }
    say(`  round ${r + 1}/${rounds}: ${line.join(', ')}   (load ${load()})`);
  }
  return times;
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

/** The bench's directory: trees kept between runs under trees/, this run's work under run-PID/. */
export class Workdir {
  constructor(dir) {
    this.dir = dir;
    this.trees = path.join(dir, 'trees');
    fs.mkdirSync(this.trees, { recursive: true });
    this.stamp = path.join(dir, 'emptied-at');
    this.run = path.join(dir, `run-${process.pid}`);
  }
  /** Deletes what earlier runs left (a bench that was killed), then waits out ext4's minute. */
  start(say) {
    let deleted = false;
    for (const n of fs.readdirSync(this.dir)) {
      const pid = /^run-(\d+)$/.exec(n)?.[1];
      if (pid && alive(Number(pid))) continue; // another bench at work in the same directory
      if (pid || n === 'graveyard') {
        say(`  deleting ${n}, left by an earlier run`);
        rm(path.join(this.dir, n));
        deleted = true;
      }
    }
    if (deleted) this.emptied();
    fs.mkdirSync(this.run, { recursive: true });
    this.settle(say);
  }
  /** a new directory name in this run's work directory (nothing is made there) */
  fresh(name) {
    let p = path.join(this.run, name);
    for (let k = 2; fs.existsSync(p); k++) p = path.join(this.run, `${name}-${k}`);
    return p;
  }
  emptied() {
    spawnSync('sync');
    fs.writeFileSync(this.stamp, String(Date.now()));
  }
  /** waits until the last deletion is 65 s old: inodes freed before that are still "recently deleted" */
  settle(say) {
    const since = fs.existsSync(this.stamp) ? Date.now() - Number(fs.readFileSync(this.stamp, 'utf8')) : Infinity;
    if (since >= 65_000) return;
    say(`  waiting ${((65_000 - since) / 1000).toFixed(0)} s: inodes freed by the last deletion are still "recently deleted" for ext4`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 65_000 - since);
  }
  /** deletes this run's work (after all timing, or between sections when the disk runs short) */
  clear(say, again = true) {
    if (!fs.existsSync(this.run)) return;
    const t0 = process.hrtime.bigint();
    rm(this.run);
    this.emptied();
    say(`  deleted this run's work directory (${secs(t0).toFixed(0)} s)`);
    if (again) fs.mkdirSync(this.run, { recursive: true });
  }

  /**
   * How many mutate.py days the kept tree of `files` files has had applied in place (the 1m
   * section changes its tree in place: mutate.py puts every added file into users/new-today, so
   * that directory grows by ~0.5% of the tree a day, and the walk holds a directory's records
   * until the directory is done).
   */
  treeDays(files) {
    const f = path.join(this.trees, `src-${files}.days`);
    return fs.existsSync(f) ? Number(fs.readFileSync(f, 'utf8')) : 0;
  }
  addTreeDay(files) {
    fs.writeFileSync(path.join(this.trees, `src-${files}.days`), String(this.treeDays(files) + 1));
  }
  /** deletes the kept tree of `files` files: the next tree() makes it again */
  remakeTree(files, say) {
    const dir = path.join(this.trees, `src-${files}`);
    say(`  deleting ${dir}: ${this.treeDays(files)} mutate.py days were applied to it in place; it is made again`);
    for (const f of [`${dir}.done`, `${dir}.days`]) fs.rmSync(f, { force: true });
    rm(dir);
    this.emptied();
  }

  /** the mktree.py tree of `files` files (seed 1), made once and kept */
  tree(files, say) {
    const dir = path.join(this.trees, `src-${files}`);
    if (!fs.existsSync(`${dir}.done`)) {
      rm(dir);
      say(`  making ${dir}: ${fmtN(files)} files (mktree.py, kept for later runs) ...`);
      sh('python3', [MKTREE, dir, '--files', String(files)]);
      fs.writeFileSync(`${dir}.done`, '');
    }
    return dir;
  }
}

/** A build of hardsnap (this worktree, or one given with --compare). */
export class Build {
  constructor(dir, label) {
    this.dir = path.resolve(dir);
    this.bin = path.join(this.dir, 'bin', 'hardsnap');
    this.label = label;
    if (!fs.existsSync(this.bin)) throw new Error(`${this.bin}: no such file (build it first)`);
    this.rssFile = path.join(os.tmpdir(), `hardsnap-bench-rss-${process.pid}`);
    /** peak RSS (MB) of the last run */
    this.lastRss = null;
  }
  /** `init --spool`: a backup refuses a spool init did not make (older builds lack the command: their backup makes it) */
  init(spool) {
    sh(this.bin, ['init', '--spool', spool], { allowFail: true });
  }
  /** runs `hardsnap ARGS` with HARDSNAP_NOW=now under /usr/bin/time (for the peak RSS) */
  run(args, now, extraEnv = {}) {
    const r = sh('/usr/bin/time', ['-f', '%M', '-o', this.rssFile, this.bin, ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, ...extraEnv, HARDSNAP_NOW: now },
      allowFail: true,
    });
    const rss = fs.readFileSync(this.rssFile, 'utf8').trim().split('\n').pop();
    this.lastRss = Number(rss) / 1024;
    if (r.status !== 0) throw new Error(`${this.label}: hardsnap ${args.join(' ')} exited ${r.status}: ${r.stderr.slice(0, 2000)}`);
    return r;
  }
  backup(spool, part, src, now, extra = []) {
    return this.run(['backup', '--spool', spool, '--host', 'b', '--part', `${part}=${src}`, ...extra], now);
  }
}

/**
 * A part of a spool made ready for repeated incrementals from one previous generation: after
 * each timed run, reset() renames what the run added (the generation, its manifest, anything
 * else new in the part's directories) into the run's work directory and puts `last` and LATEST
 * back, so that the next run starts from the same state. Nothing is deleted.
 */
export class PartState {
  constructor(spool, part, work) {
    this.spool = spool;
    this.pdir = path.join(spool, 'rsync', 'b', part);
    this.work = work;
    this.dirs = [this.pdir, path.join(this.pdir, '.hardsnap'), path.join(this.pdir, '.hardsnap', 'manifests')];
    this.names = this.dirs.map((d) => new Set(fs.existsSync(d) ? fs.readdirSync(d) : []));
    this.last = fs.readlinkSync(path.join(this.pdir, 'last'));
    const latest = path.join(this.pdir, 'LATEST');
    this.latest = fs.existsSync(latest) ? fs.readFileSync(latest) : null;
  }
  /** the generation `last` names */
  get prev() {
    return path.join(this.pdir, this.last);
  }
  /** the newest generation made since (before reset()) */
  newest() {
    const added = fs.readdirSync(this.pdir).filter((n) => !this.names[0].has(n) && /^\d{4}-/.test(n) && !n.endsWith('.partial'));
    return added.length ? path.join(this.pdir, added.sort().at(-1)) : null;
  }
  reset() {
    const aside = this.work.fresh('aside');
    fs.mkdirSync(aside);
    this.dirs.forEach((d, k) => {
      if (!fs.existsSync(d)) return;
      for (const n of fs.readdirSync(d)) {
        if (this.names[k].has(n) || n === 'last' || n === 'LATEST') continue;
        if (k < 2 && (n === '.hardsnap' || n === 'manifests')) continue;
        fs.renameSync(path.join(d, n), path.join(aside, `${k}-${n}`));
      }
    });
    const tmp = path.join(this.pdir, `.last.bench-${process.pid}`);
    fs.symlinkSync(this.last, tmp);
    fs.renameSync(tmp, path.join(this.pdir, 'last'));
    if (this.latest) {
      fs.writeFileSync(`${tmp}.latest`, this.latest);
      fs.renameSync(`${tmp}.latest`, path.join(this.pdir, 'LATEST'));
    }
  }
}

/** The hard-link and exactness oracles on one generation; returns 'ok' or what failed. */
export function check(src, copy) {
  const diff = sh('rsync', ['-aHAXn', '--delete', '--checksum', '--itemize-changes', '--numeric-ids', '--modify-window=-1', `${src}/`, `${copy}/`], { allowFail: true });
  const links = sh('python3', [LINKS, src, copy], { allowFail: true });
  const bad = [];
  if (diff.status !== 0 || diff.stdout.trim()) bad.push(`rsync oracle: ${diff.status !== 0 ? `exit ${diff.status}` : `${diff.stdout.trim().split('\n').length} lines, first: ${diff.stdout.trim().split('\n')[0]}`}`);
  if (links.status !== 0) bad.push(`links.py: ${links.stdout.trim().split('\n').pop()}`);
  return bad.length ? `FAIL (${bad.join('; ')})` : 'ok';
}

/** Reads every file of a tree once (warm cache for the timed runs), listing it first. */
export function warm(dirs, { contents = true } = {}) {
  for (const d of dirs) {
    quiet('find', [d, '-printf', '%s %T@ %m\n']);
    if (contents) quiet('sh', ['-c', 'find "$1" -type f -print0 | xargs -0 -r cat > /dev/null', 'sh', d]);
  }
}

/**
 * One row of a side-by-side table. cells: { hardsnap, floor, rsync, rsnapshot, [build label] }
 * as display strings; ratio: hardsnap's figure over the one it is held to; target: the largest
 * ratio that meets the goal (null: no goal, printed for context).
 */
export function row(work, cells, ratio, target, vs, note = '') {
  let verdict = '';
  if (target != null) verdict = ratio == null ? 'NOT MEASURED' : ratio <= target ? 'MET' : 'SHORT';
  return { work, cells, ratio, target, vs, verdict, note };
}

/** Prints rows as a Markdown table (pasteable into docs/PERFORMANCE.md). */
export function table(rows, compareLabels, say, { quick = false } = {}) {
  const head = ['work', 'hardsnap', ...compareLabels, 'floor', 'rsync --link-dest', "rsnapshot's way", 'ratio', 'target', ''];
  const body = rows.map((r) => [
    r.work,
    r.cells.hardsnap ?? '-',
    ...compareLabels.map((l) => r.cells[l] ?? '-'),
    r.cells.floor ?? '-',
    r.cells.rsync ?? '-',
    r.cells.rsnapshot ?? '-',
    r.ratio == null ? '-' : `${r.ratio.toFixed(2)}x ${r.vs}`,
    r.targetText ?? (r.target == null ? '' : `<= ${r.target}x ${r.vs}`),
    r.verdict ? (quick ? `${r.verdict} (quick sizes)` : r.verdict === 'SHORT' ? '**SHORT**' : r.verdict) : '',
  ]);
  const w = head.map((h, k) => Math.max(h.length, ...body.map((b) => String(b[k]).length)));
  const line = (cells) => `| ${cells.map((c, k) => String(c).padEnd(w[k])).join(' | ')} |`;
  say(line(head));
  say(`|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`);
  for (const b of body) say(line(b));
  for (const r of rows) if (r.note) say(`  ${r.work}: ${r.note}`);
}
