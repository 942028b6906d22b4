// A backup never creates its spool (an unmounted NFS share must not be filled on the root
// disk): tests make one the documented way, `hardsnap init --spool DIR`, here in-process (the
// same core function, without a Node start per test). And the nightly runs the tests fake into
// a spool (HARDSNAP_NOW day after day), with the names and paths those runs make.
import fs from 'node:fs';
import path from 'node:path';
import { initSpool } from '../../src/check/init-spool.js';
import { MARKER_FORMAT, SPOOL_MARKER } from '../../src/spool/marker.js';
import { ManifestReader } from '../../src/manifest/reader.js';
import type { ManifestEntry } from '../../src/manifest/format.js';
import { at, backupPart, type RunOptions, type RunResult } from './run.js';

/** Makes a spool at `dir` (created, probed, marked) and returns `dir`; a no-op on a spool. */
export function makeSpool(dir: string): string {
  initSpool(dir);
  return dir;
}

/**
 * A spool at a path given as bytes (a name that is not UTF-8): the directory and the marker
 * `init` would leave (without init's file-system probe, which tests of paths do not need).
 */
export function makeSpoolAt(dir: string | Buffer): string | Buffer {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const marker = Buffer.concat([Buffer.isBuffer(dir) ? dir : Buffer.from(dir), Buffer.from(`/${SPOOL_MARKER}`)]);
  fs.writeFileSync(marker, JSON.stringify({ hardsnap: 'spool', format: MARKER_FORMAT, created: new Date().toISOString(), tool: 'test' }) + '\n');
  return dir;
}

/** The name of the generation a backup at `iso` makes: 2026-01-02T03:00:00(.000)Z is 2026-01-02T030000Z. */
export function genName(iso: string): string {
  return iso.replace(/:/g, '').replace(/\.\d{3}Z$/, 'Z');
}

/** N daily times at 03:00Z starting on `first` (YYYY-MM-DD). */
export function dailyTimes(first: string, n: number): string[] {
  const t0 = Date.parse(`${first}T03:00:00Z`);
  return Array.from({ length: n }, (_, i) => new Date(t0 + i * 86_400_000).toISOString());
}

/** The directory of a part in a spool: SPOOL/rsync/HOST/PART (built here, not by src/spool). */
export function partDirOf(p: { spool: string; host: string; part: string }): string {
  return path.join(p.spool, 'rsync', p.host, p.part);
}

/** The manifest of generation `name` in a part directory: PDIR/.hardsnap/manifests/NAME.hsm. */
export function manifestFileOf(pdir: string, name: string): string {
  return path.join(pdir, '.hardsnap', 'manifests', `${name}.hsm`);
}

/** The entries of a manifest file that `keep` keeps (all by default), by path in the generation (dir/name, latin1). */
export function manifestEntries(file: string, keep: (e: ManifestEntry) => boolean = () => true): Map<string, ManifestEntry> {
  const m = ManifestReader.open(file);
  const out = new Map<string, ManifestEntry>();
  try {
    for (const { dir, entries } of m.walk()) {
      for (const e of entries) if (keep(e)) out.set(dir.length ? `${dir.toString('latin1')}/${e.name.toString('latin1')}` : e.name.toString('latin1'), e);
    }
  } finally {
    m.close();
  }
  return out;
}

/**
 * The nights of one month (YYYY-MM) a test runs its backups in: day n at 03:00Z.
 * `day(2)` is 2026-03-02T03:00:00Z, `genName(2)` the generation a run then makes
 * (2026-03-02T030000Z), `date(2)` 2026-03-02 (an --at date), `dayEnv(2)` { HARDSNAP_NOW }, and
 * `at(2)` the options that run bin/hardsnap then: `hardsnap(args, at(2))`.
 */
export function calendar(month: string) {
  const date = (n: number) => `${month}-${String(n).padStart(2, '0')}`;
  const day = (n: number) => `${date(n)}T03:00:00Z`;
  return {
    date,
    day,
    genName: (n: number) => genName(day(n)),
    dayEnv: (n: number) => ({ HARDSNAP_NOW: day(n) }),
    at: (n: number) => at(day(n)),
  };
}

/** A `backup --json` that exited 0: its part's generation (`gen`) and stats (typed by `S`), and its output. */
export interface JsonRun<S> {
  code: number;
  gen: string;
  stats: S;
  /** whether the spool's file system clones (reflinks) */
  spoolClones: boolean;
  stdout: string;
  stderr: string;
}

/**
 * One part of one host backed up night after night (day n of `month`, see calendar): what
 * calendar gives, and `backup(spool, src, n, extra?, opts?)` (bin/hardsnap backup of that part at
 * day n; `opts.env` merged over HARDSNAP_NOW), `backupJson(spool, src, n, extra?, opts?)` (the same
 * with --json: it throws unless the run exits 0, and gives a JsonRun), `partDir(spool)`,
 * `gen(spool, n)` (the generation made at day n) and `manifestFile(spool, n)` (its manifest);
 * `part` names another part of the host there. `S` types the stats of backupJson; `timeoutMs`,
 * when given, is every backup's (a call's own opts win).
 */
export function nightly<S = Record<string, number>>(o: { host: string; part: string; month: string; timeoutMs?: number }) {
  const cal = calendar(o.month);
  const partDir = (spool: string, part = o.part) => partDirOf({ spool, host: o.host, part });
  const backup = (spool: string, src: string, n: number, extra: string[] = [], opts: RunOptions = {}): RunResult =>
    backupPart({ spool, host: o.host, part: o.part, src }, cal.day(n), extra, o.timeoutMs === undefined ? opts : { timeoutMs: o.timeoutMs, ...opts });
  return {
    ...cal,
    partDir,
    gen: (spool: string, n: number, part = o.part) => path.join(partDir(spool, part), cal.genName(n)),
    manifestFile: (spool: string, n: number, part = o.part) => manifestFileOf(partDir(spool, part), cal.genName(n)),
    backup,
    backupJson(spool: string, src: string, n: number, extra: string[] = [], opts: RunOptions = {}): JsonRun<S> {
      const r = backup(spool, src, n, ['--json', ...extra], opts);
      if (r.code !== 0) throw new Error(`backup exited ${r.code}: ${r.stderr}`);
      const p = (JSON.parse(r.stdout) as { parts: { path: string; stats: S; spoolClones: boolean }[] }).parts[0]!;
      return { code: r.code, gen: p.path, stats: p.stats, spoolClones: p.spoolClones, stdout: r.stdout, stderr: r.stderr };
    },
  };
}

/**
 * nightly in a test's own directory: the spool is TMP/spool (made by the first backup), the
 * source TMP/src unless given: `backup(tmp, n, extra?, opts?, src?)`, `backupJson(tmp, n, extra?,
 * opts?, src?)`, `partDir(tmp)`, `gen(tmp, n)`, `manifestFile(tmp, n)`.
 */
export function nightlyIn<S = Record<string, number>>(o: { host: string; part: string; month: string }) {
  const nt = nightly<S>(o);
  const spoolIn = (tmp: string) => path.join(tmp, 'spool');
  return {
    ...nt,
    partDir: (tmp: string, part = o.part) => nt.partDir(spoolIn(tmp), part),
    gen: (tmp: string, n: number, part = o.part) => nt.gen(spoolIn(tmp), n, part),
    manifestFile: (tmp: string, n: number, part = o.part) => nt.manifestFile(spoolIn(tmp), n, part),
    backup: (tmp: string, n: number, extra: string[] = [], opts: RunOptions = {}, src = path.join(tmp, 'src')): RunResult =>
      nt.backup(makeSpool(spoolIn(tmp)), src, n, extra, opts),
    backupJson: (tmp: string, n: number, extra: string[] = [], opts: RunOptions = {}, src = path.join(tmp, 'src')): JsonRun<S> =>
      nt.backupJson(makeSpool(spoolIn(tmp)), src, n, extra, opts),
  };
}
