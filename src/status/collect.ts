/**
 * What `status` reports, as data: per host and part the newest complete generation, its age,
 * and the last run's result (from runs.jsonl), each part judged OK, WARNING or CRITICAL with
 * the reasons. Runs skipped by --min-interval are not "the last run": they did nothing.
 */
import fs from 'node:fs';
import { hostDir, listGenerations, listParts } from '../spool/layout.js';
import { readRuns, type RunRecord } from '../spool/runs-log.js';
import { formatDuration } from '../time/duration.js';
import { partDir } from '../spool/layout.js';
import { readJournal } from '../watch/journal-file.js';
import { alive, processStart } from '../spool/lock.js';

export type State = 'OK' | 'WARNING' | 'CRITICAL';

export interface PartStatus {
  host: string;
  part: string;
  newest: string | null;
  /** ISO time of the newest complete generation */
  newestTime: string | null;
  ageMs: number | null;
  generations: number;
  partials: number;
  /** counts of the newest run that built this part */
  stats: Record<string, number | string | boolean | null> | null;
  state: State;
  reasons: string[];
  /** the watcher that keeps this part's journal (hardsnap watch), from the journal; null: none ever ran */
  watcher: WatcherStatus | null;
}

export interface WatcherStatus {
  /** fanotify or chokidar (null: a journal older than the field) */
  kind: string | null;
  pid: number;
  running: boolean;
}

/** What the part's journal says about its watcher (docs/WATCH.md). */
function watcherOf(spool: string, host: string, part: string): WatcherStatus | null {
  let j;
  try {
    j = readJournal(partDir(spool, host, part));
  } catch {
    return null;
  }
  if (!j) return null;
  const running = alive(j.pid) && (j.pidStart === null || processStart(j.pid) === j.pidStart);
  return { kind: j.watcher ?? null, pid: j.pid, running };
}

export interface RunSummary {
  status: RunRecord['status'];
  exit: number;
  start: string;
  end: string;
  durationMs: number;
  generation: string | null;
  problems: number;
  vanished: number;
  error?: string;
}

export interface HostStatus {
  host: string;
  lastRun: RunSummary | null;
  /** the newest run skipped by --min-interval, when it is newer than lastRun */
  lastSkipped: string | null;
  parts: PartStatus[];
  /** a problem of the host as a whole (no backups at all) */
  problem: string | null;
}

function summary(r: RunRecord): RunSummary {
  return {
    status: r.status, exit: r.exit, start: r.start, end: r.end, durationMs: r.durationMs, generation: r.generation,
    problems: r.problems, vanished: r.vanished, ...(r.error ? { error: r.error } : {}),
  };
}

/**
 * `expected`: the parts that should exist (from --config): exactly these are judged, even when
 * the spool has none of them yet, and parts left in the spool but no longer configured are
 * not; empty: every part found in the spool.
 * `maxAgeMs`: older newest generations are a WARNING; 0 turns the check off.
 */
export function collectHost(spool: string, host: string, now: Date, maxAgeMs: number, expected: string[] = []): HostStatus {
  const hdir = hostDir(spool, host);
  const runs = fs.existsSync(hdir) ? readRuns(hdir) : [];
  const real = runs.filter((r) => r.status !== 'skipped');
  const last = real.at(-1) ?? null;
  const lastAny = runs.at(-1);
  const names = expected.length ? [...new Set(expected)].sort() : listParts(spool, host);
  const parts = names.map((part): PartStatus => {
    const gens = listGenerations(spool, host, part);
    const complete = gens.filter((g) => g.complete);
    const newest = complete.at(-1) ?? null;
    const ageMs = newest ? now.getTime() - newest.time.getTime() : null;
    const withStats = [...real].reverse().find((r) => r.parts && r.parts[part]);
    const reasons: string[] = [];
    let state: State = 'OK';
    const raise = (s: State, why: string) => {
      reasons.push(why);
      if (s === 'CRITICAL' || state === 'OK') state = s;
    };
    if (!newest) raise('CRITICAL', 'no complete generation');
    if (last?.status === 'failed') raise('CRITICAL', `last run failed (exit ${last.exit})${last.error ? `: ${last.error}` : ''}`);
    if (last?.status === 'partial') raise('WARNING', `last run published with ${last.problems} problems, ${last.vanished} vanished (exit ${last.exit})`);
    if (newest && maxAgeMs > 0 && ageMs! > maxAgeMs) raise('WARNING', `newest generation is ${formatDuration(ageMs!)} old, more than --max-age ${formatDuration(maxAgeMs)}`);
    return {
      host, part, newest: newest?.name ?? null, newestTime: newest?.time.toISOString() ?? null, ageMs,
      generations: complete.length, partials: gens.length - complete.length,
      stats: withStats ? withStats.parts[part]! : null, state, reasons, watcher: watcherOf(spool, host, part),
    };
  });
  return {
    host,
    lastRun: last ? summary(last) : null,
    lastSkipped: lastAny && lastAny.status === 'skipped' ? lastAny.end : null,
    parts,
    problem: parts.length ? null : fs.existsSync(hdir) ? `host '${host}' has no parts in ${spool}` : `no backups of host '${host}' in ${spool}`,
  };
}
