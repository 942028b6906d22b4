/**
 * A run that takes over a stale lock is the first to know that the run which held it ended
 * without a word (SIGKILL, the OOM killer, a crash, a reboot). It says so, and writes the record
 * that run could not: otherwise a run of other parts would erase the only trace of it (status
 * judges each part by its own last record). A backup's goes to runs.jsonl (status
 * `interrupted`, `killed`, exit 137 for "killed": the real cause is unknown), for the parts that
 * have no newer record of their own; a prune's to prunes.jsonl (`failed`). A lock of an earlier
 * version, or one that cannot be read, names neither kind nor parts: it is only said.
 */
import type { LockInfo } from './lock.js';
import { appendRun, lastRunOf, readRuns, runsLogPath } from './runs-log.js';
import { appendPrune, prunesLogPath } from './prunes-log.js';
import { errnoCode } from '../core/errors.js';

export function recordTakeover(hostDirPath: string, holder: LockInfo, warn: (m: string) => void): void {
  const what = holder.kind ?? (/\bbackup\b/.test(holder.command) ? 'backup' : null);
  const recorded = what === 'prune' || (what === 'backup' && holder.parts !== undefined);
  warn(
    `took over a stale lock of pid ${holder.pid} (started ${holder.started}${holder.parts ? `, parts ${holder.parts.join(', ')}` : ''}): that ${what ?? 'run'} ended without a record (killed, out of memory, or the machine stopped)${recorded ? '; it is recorded as interrupted' : ''}`,
  );
  if (!recorded) return;
  const file = what === 'prune' ? prunesLogPath(hostDirPath) : runsLogPath(hostDirPath);
  try {
    if (what === 'prune') recordKilledPrune(hostDirPath, holder);
    else recordKilledBackup(hostDirPath, holder);
  } catch (err) {
    warn(`cannot record it in ${file}: ${errnoCode(err) ?? (err as Error).message}`);
  }
}

const killedWhy = (holder: LockInfo) =>
  `without a record (pid ${holder.pid}: killed, out of memory, or the machine stopped); found by pid ${process.pid}, which took its lock over`;

function recordKilledBackup(hostDirPath: string, holder: LockInfo): void {
  const started = Date.parse(holder.started);
  // a part with a record of a run that started after it (one that failed before the lock, say) is judged by that one
  const runs = readRuns(hostDirPath);
  const parts = holder.parts!.filter((p) => {
    const last = lastRunOf(runs, p);
    return !last || !(Date.parse(last.start) > started);
  });
  if (!parts.length) return;
  const now = new Date();
  appendRun(hostDirPath, {
    command: holder.command,
    start: holder.started,
    end: now.toISOString(),
    durationMs: Number.isFinite(started) ? Math.max(0, now.getTime() - started) : 0,
    generation: null,
    exit: 137,
    status: 'interrupted',
    killed: true,
    interrupted: killedWhy(holder),
    partNames: parts,
    parts: {},
    problems: 0,
    vanished: 0,
  });
}

function recordKilledPrune(hostDirPath: string, holder: LockInfo): void {
  appendPrune(hostDirPath, {
    command: holder.command,
    start: holder.started,
    end: new Date().toISOString(),
    status: 'failed',
    partNames: holder.parts ?? [],
    parts: {},
    error: `it ended ${killedWhy(holder)}`,
  });
}
