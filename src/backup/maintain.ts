/**
 * A backup as cron runs it: the run itself (run.ts: lock, hooks, build, publish), then, once a
 * generation is published, the retention rules (`--prune`) and the metrics file. The CLI only
 * parses, calls this and prints what the events say.
 *
 * Prune comes after the post hook and takes the lock again (it is its own operation: a failing
 * prune leaves the new generation standing, a warning, not a failed backup). A signal after
 * publishing skips it. The metrics file is written whatever the result (a failed run is what
 * the alerts must see), except for a dry run or a spool that is missing or unmarked: metrics of
 * an empty spool would drop the series the alerts watch; the old file's age tells instead.
 */
import { runBackup } from './run.js';
import type { BackupEvents, BackupOptions, BackupResult } from './types.js';
import { runPrune, type PartPrune } from '../retention/prune.js';
import { collectHost } from '../status/collect.js';
import { listParts } from '../spool/layout.js';
import { spoolState } from '../spool/marker.js';
import { hostFamilies } from '../metrics/host-metrics.js';
import { formatFamilies } from '../metrics/prometheus.js';
import { writeMetricsFile } from '../metrics/write.js';

export interface MaintainEvents extends BackupEvents {
  /** prune starts (after the generation was published) */
  onPruneStart?(): void;
  onRemoved?(part: string, generation: string): void;
  /** prune is done: what it removed, and what it could not delete (left in the trash) */
  onPruned?(result: PartPrune[]): void;
}

export async function backupAndMaintain(opts: BackupOptions, ev: MaintainEvents): Promise<BackupResult> {
  const warn = (m: string) => (ev.onWarn ?? ev.onNote)(m);
  try {
    const r = await runBackup(opts, ev);
    // not after a signal (the run was asked to stop once the generation was published)
    if (opts.prune && !opts.dryRun && r.status !== 'skipped' && !opts.signal?.aborted) {
      ev.onPruneStart?.();
      try {
        const pruned = await runPrune(
          {
            spool: opts.spool,
            host: opts.host,
            parts: opts.parts.map((p) => p.name),
            rules: opts.prune,
            now: opts.now,
            dryRun: false,
            waitMs: opts.waitMs,
            command: opts.command,
            signal: opts.signal,
          },
          { onNote: ev.onNote, onWarn: warn, onRemoved: ev.onRemoved },
        );
        ev.onPruned?.(pruned);
      } catch (err) {
        warn(`the generation is published, but prune failed: ${(err as Error).message}`);
      }
    }
    return r;
  } finally {
    if (opts.metricsFile && !opts.dryRun) writeMetrics(opts, opts.metricsFile, warn);
  }
}

function writeMetrics(opts: BackupOptions, file: string, warn: (m: string) => void): void {
  const st = spoolState(opts.spool);
  if (st !== 'marked' && st !== 'legacy') return;
  try {
    const host = collectHost(opts.spool, opts.host, opts.now, 0, [...listParts(opts.spool, opts.host), ...opts.parts.map((p) => p.name)]);
    writeMetricsFile(file, formatFamilies(hostFamilies([host])));
  } catch (err) {
    warn((err as Error).message);
  }
}
