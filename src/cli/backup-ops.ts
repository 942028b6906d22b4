/**
 * The operational options of `backup` (--min-interval, hooks, --prune, --metrics-file), kept
 * apart from the backup command itself: they fill BackupOptions from the command line and the
 * config, and wrap the run with pruning and the metrics file.
 */
import type { Command } from 'commander';
import type { Config } from '../config/schema.js';
import type { BackupOptions, BackupResult } from '../backup/types.js';
import { DEFAULT_HOOK_TIMEOUT } from '../hooks/backup-hooks.js';
import { hookFailure, type HookResult } from '../hooks/run-hook.js';
import { applyPolicy } from '../retention/policy.js';
import { runPrune } from '../retention/prune.js';
import { warnLeftovers } from './commands/prune.js';
import { collectHost } from '../status/collect.js';
import { listParts } from '../spool/layout.js';
import { spoolState } from '../spool/marker.js';
import { hostFamilies } from '../metrics/host-metrics.js';
import { formatFamilies } from '../metrics/prometheus.js';
import { writeMetricsFile } from '../metrics/write.js';
import { parseDuration } from '../time/duration.js';
import { formatMs, type Output } from '../ui/output.js';
import { rulesFrom, type KeepOptions } from './retention-options.js';

export interface OpsOptions extends KeepOptions {
  prune?: boolean;
  minInterval?: string;
  preHook?: string;
  postHook?: string;
  hookTimeout?: string;
  metricsFile?: string;
}

export function addOpsOptions(cmd: Command): Command {
  return cmd
    .option('--min-interval <duration>', 'do nothing (exit 0) when every part has a generation younger than DURATION (e.g. 20h)')
    .option('--pre-hook <command>', 'run COMMAND with /bin/sh -c once the lock is held, before anything is written; its failure aborts the run (exit 2)')
    .option('--post-hook <command>', 'run COMMAND with /bin/sh -c after the run, whatever its result (HARDSNAP_STATUS says it)')
    .option('--hook-timeout <duration>', `kill a hook (its whole process group) after DURATION (default ${DEFAULT_HOOK_TIMEOUT})`)
    .option('--prune', 'after publishing, apply the retention rules (--keep-* or the config\'s retention:) to the parts backed up')
    .option('--metrics-file <file>', 'write Prometheus metrics for node_exporter\'s textfile collector after the run, atomically');
}

export interface BackupOps {
  /** runs the backup, then --prune (`onPrune` just before it: the progress bars say so) and the metrics file */
  around(run: () => Promise<BackupResult>, onPrune?: () => void): Promise<BackupResult>;
  onHook(which: 'pre' | 'post', r: HookResult): void;
}

/** Fills `opts` (min interval, hooks) and returns what wraps the run. Checks everything first. */
export function backupOps(o: OpsOptions, cfg: Config, opts: BackupOptions, out: Output): BackupOps {
  const minInterval = o.minInterval ?? cfg.minInterval;
  if (minInterval !== undefined) opts.minIntervalMs = parseDuration(minInterval, o.minInterval !== undefined ? '--min-interval' : 'min-interval');
  const pre = o.preHook !== undefined ? { shell: o.preHook } : cfg.hooks?.pre;
  const post = o.postHook !== undefined ? { shell: o.postHook } : cfg.hooks?.post;
  const timeout = o.hookTimeout ?? cfg.hooks?.timeout ?? DEFAULT_HOOK_TIMEOUT;
  const timeoutMs = parseDuration(timeout, o.hookTimeout !== undefined ? '--hook-timeout' : 'hooks.timeout');
  if (pre || post) opts.hooks = { ...(pre ? { pre } : {}), ...(post ? { post } : {}), timeoutMs };
  const rules = o.prune ? rulesFrom(o, cfg) : null;
  if (rules) applyPolicy([], rules, opts.now); // no rule: refuse now (exit 1), before any backup
  const metricsFile = o.metricsFile ?? cfg.metricsFile;

  return {
    onHook(which, r) {
      if (r.ok) {
        out.note(`${which} hook done in ${formatMs(r.durationMs)}: ${r.command}`);
        return;
      }
      const tail = r.output.trim() === '' ? '' : r.output.trimEnd().split('\n').slice(-20).map((l) => `  | ${l}`).join('\n');
      const after = which === 'post' ? '; the exit code is still the backup\'s' : '';
      out.warn(`${which} hook ${hookFailure(r)}: ${r.command}${after}${tail ? `; its output (end):\n${tail}` : ''}`);
    },
    async around(run, onPrune) {
      try {
        const r = await run();
        if (r.status === 'skipped') out.note(r.skipped!);
        // not after a signal (the run was asked to stop once the generation was published)
        if (rules && !opts.dryRun && r.status !== 'skipped' && !opts.signal?.aborted) {
          onPrune?.();
          try {
            const pruned = await runPrune(
              { spool: opts.spool, host: opts.host, parts: opts.parts.map((p) => p.name), rules, now: opts.now, dryRun: false, waitMs: opts.waitMs, command: opts.command },
              { onNote: (m) => out.note(m), onWarn: (m) => out.warn(m), onRemoved: (p, g) => out.note(`${p}: removed ${g}`) },
            );
            warnLeftovers(pruned, out);
            const n = pruned.reduce((k, p) => k + p.removed.length, 0);
            out.note(`pruned ${n} generation${n === 1 ? '' : 's'}`);
          } catch (err) {
            out.warn(`the generation is published, but prune failed: ${(err as Error).message}`);
          }
        }
        return r;
      } finally {
        // not for a spool that is missing or unmarked (unmounted): metrics of an empty spool
        // would drop the series alerts watch; the old file's age tells instead
        const st = metricsFile && !opts.dryRun ? spoolState(opts.spool) : null;
        if (metricsFile && (st === 'marked' || st === 'legacy')) {
          try {
            const host = collectHost(opts.spool, opts.host, opts.now, 0, [
              ...listParts(opts.spool, opts.host), ...opts.parts.map((p) => p.name),
            ]);
            writeMetricsFile(metricsFile, formatFamilies(hostFamilies([host])));
          } catch (err) {
            out.warn((err as Error).message);
          }
        }
      }
    },
  };
}
