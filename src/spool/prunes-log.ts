/**
 * `<host>/.hardsnap/prunes.jsonl`: one JSON line per prune that was not a dry run (`hardsnap
 * prune`, `backup --prune`), so that one that could not do its work is on record: `status` warns
 * about a part whose last prune failed or kept generations it could not move to the trash,
 * until a later prune of that part does its work. (What could not be deleted from the trash is
 * seen in the trash itself.) runs.jsonl stays the log of backups.
 */
import path from 'node:path';
import { displayPath } from '../paths/escape.js';
import { appendJsonLine, readJsonLines } from './runs-log.js';

export interface PrunePartRecord {
  removed: string[];
  /** generations to remove that were kept: they could not be moved to the trash, or their leases cannot be read (ELEASES) */
  notMoved: { generation: string; code: string; hint: string }[];
  /** entries the trash still holds after it (could not be deleted) */
  leftovers: number;
}

export interface PruneRecord {
  command: string;
  start: string;
  end: string;
  /**
   * ok: done; partial: some generation was kept or something stays in the trash; interrupted:
   * a signal stopped it before some generations (kept, EINTR); failed: an error stopped it
   */
  status: 'ok' | 'partial' | 'interrupted' | 'failed';
  partNames: string[];
  parts: Record<string, PrunePartRecord>;
  error?: string;
}

export function prunesLogPath(hostDirPath: string): string {
  return path.join(hostDirPath, '.hardsnap', 'prunes.jsonl');
}

export function readPrunes(hostDirPath: string): PruneRecord[] {
  return readJsonLines<PruneRecord>(prunesLogPath(hostDirPath));
}

/** The newest prune of this part, if any. */
export function lastPruneOf(prunes: PruneRecord[], part: string): PruneRecord | null {
  return prunes.findLast((r) => Array.isArray(r.partNames) && r.partNames.includes(part)) ?? null;
}

/** What a prune did in one part (retention/prune.ts's PartPrune, as far as the record needs it). */
export interface PrunedPart {
  part: string;
  removed: string[];
  leftovers: { path: Buffer; code: string; hint: string; notMoved?: boolean }[];
  /** generations it was to remove and kept because their leases cannot be read */
  leasesUnreadable: { name: string; why: string }[];
  /** generations it was to remove when a signal stopped it */
  stoppedBefore: string[];
}

/** The record of a prune from its results (a failure: what it had done before, and why it stopped). */
export function pruneRecord(command: string, start: Date, partNames: string[], results: PrunedPart[], error?: Error, signal?: string): PruneRecord {
  const parts: Record<string, PrunePartRecord> = {};
  for (const r of results) {
    parts[r.part] = {
      removed: r.removed,
      notMoved: [
        ...r.leftovers.filter((l) => l.notMoved).map((l) => ({ generation: path.basename(displayPath(l.path)), code: l.code, hint: l.hint })),
        ...r.leasesUnreadable.map((k) => ({ generation: k.name, code: 'ELEASES', hint: k.why })),
        ...r.stoppedBefore.map((g) => ({ generation: g, code: 'EINTR', hint: `the prune was stopped${signal ? ` by ${signal}` : ''}` })),
      ],
      leftovers: r.leftovers.filter((l) => !l.notMoved).length,
    };
  }
  const troubled = Object.values(parts).some((p) => p.notMoved.length || p.leftovers);
  return {
    command,
    start: start.toISOString(),
    end: new Date().toISOString(),
    status: error ? 'failed' : results.some((r) => r.stoppedBefore.length) ? 'interrupted' : troubled ? 'partial' : 'ok',
    partNames,
    parts,
    ...(error ? { error: error.message } : {}),
  };
}

export function appendPrune(hostDirPath: string, rec: PruneRecord): void {
  appendJsonLine(prunesLogPath(hostDirPath), rec);
}
