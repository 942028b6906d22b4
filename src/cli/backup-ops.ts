/**
 * The operational options of `backup` (--min-interval, hooks, --prune, --metrics-file), kept
 * apart from the backup command itself: the part of BackupOptions they make from the command
 * line and the config, and how hook results and prune are printed. What they do is the core's
 * (src/backup/maintain.ts).
 */
import { plural } from '../core/units.js';
import type { Command } from 'commander';
import type { Config } from '../config/schema.js';
import type { BackupOptions } from '../backup/types.js';
import type { MaintainEvents } from '../backup/maintain.js';
import { applyPolicy } from '../retention/policy.js';
import { DEFAULT_HOOK_TIMEOUT } from '../hooks/backup-hooks.js';
import { hookFailure } from '../hooks/run-hook.js';
import { warnLeftovers } from './commands/prune.js';
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
    .option('--prune', "after publishing, apply the retention rules (--keep-* or the config's retention:) to the parts backed up")
    .option('--no-prune', "do not prune after this backup, over the config's prune: true")
    .option('--metrics-file <file>', "write Prometheus metrics for node_exporter's textfile collector after the run, atomically");
}

type OpsPart = Pick<BackupOptions, 'minIntervalMs' | 'hooks' | 'prune' | 'metricsFile'>;

/** What the operational options add to BackupOptions. Checks everything first (before any lock). */
export function opsOptions(o: OpsOptions, cfg: Config, now: Date): OpsPart {
  const r: OpsPart = {};
  const minInterval = o.minInterval ?? cfg.minInterval;
  if (minInterval !== undefined) r.minIntervalMs = parseDuration(minInterval, o.minInterval !== undefined ? '--min-interval' : 'min-interval');
  const pre = o.preHook !== undefined ? { shell: o.preHook } : cfg.hooks?.pre;
  const post = o.postHook !== undefined ? { shell: o.postHook } : cfg.hooks?.post;
  const timeout = o.hookTimeout ?? cfg.hooks?.timeout ?? DEFAULT_HOOK_TIMEOUT;
  const timeoutMs = parseDuration(timeout, o.hookTimeout !== undefined ? '--hook-timeout' : 'hooks.timeout');
  if (pre || post) r.hooks = { ...(pre ? { pre } : {}), ...(post ? { post } : {}), timeoutMs };
  if (o.prune ?? cfg.prune) {
    r.prune = rulesFrom(o, cfg);
    applyPolicy([], r.prune, now); // no rule: refuse now (exit 1), before any backup
  }
  const metricsFile = o.metricsFile ?? cfg.metricsFile;
  if (metricsFile !== undefined) r.metricsFile = metricsFile;
  return r;
}

/** How hooks and prune are reported on the terminal (and in cron mail). */
export function opsPrinter(out: Output): Pick<MaintainEvents, 'onHook' | 'onRemoved' | 'onPruned'> {
  return {
    onHook(which, r) {
      if (r.ok) {
        out.note(`${which} hook done in ${formatMs(r.durationMs)}: ${r.command}`);
        return;
      }
      // stopped by a signal while the pre hook ran: the run's one line says so ("while the pre hook ran")
      if (r.stopped && which === 'pre') return;
      const tail =
        r.output.trim() === ''
          ? ''
          : r.output
              .trimEnd()
              .split('\n')
              .slice(-20)
              .map((l) => `  | ${l}`)
              .join('\n');
      // killed because hardsnap was stopped: the exit code is the signal's (EXIT-CODES.md)
      const after = which !== 'post' ? '' : r.stopped ? "; the generation stands, the exit code is the signal's" : "; the exit code is still the backup's";
      out.warn(`${which} hook ${hookFailure(r)}: ${r.command}${after}${tail ? `; its output (end):\n${tail}` : ''}`);
    },
    onRemoved: (p, g) => out.note(`${p}: removed ${g}`),
    onPruned(pruned) {
      warnLeftovers(pruned, out);
      const n = pruned.reduce((k, p) => k + p.removed.length, 0);
      out.note(`pruned ${plural(n, 'generation')}`);
    },
  };
}
