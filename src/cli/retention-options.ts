/** The --keep-* options of `prune` and `backup --prune`, merged over the config's `retention:`. */
import type { Command } from 'commander';
import type { Config } from '../config/schema.js';
import { parseKeepCount, type RetentionRules } from '../retention/policy.js';
import { parseDuration } from '../time/duration.js';

export interface KeepOptions {
  keepLast?: string;
  keepHourly?: string;
  keepDaily?: string;
  keepWeekly?: string;
  keepMonthly?: string;
  keepYearly?: string;
  keepWithin?: string;
}

export function addKeepOptions(cmd: Command): Command {
  return cmd
    .option('--keep-last <n>', 'keep the N newest generations')
    .option('--keep-hourly <n>', 'keep the newest generation of each of the last N hours (UTC)')
    .option('--keep-daily <n>', 'keep the newest generation of each of the last N days (UTC)')
    .option('--keep-weekly <n>', 'keep the newest generation of each of the last N ISO weeks')
    .option('--keep-monthly <n>', 'keep the newest generation of each of the last N months')
    .option('--keep-yearly <n>', 'keep the newest generation of each of the last N years')
    .option('--keep-within <duration>', 'keep every generation younger than DURATION (e.g. 2d)');
}

/** Each option replaces its key of the config's `retention:`. */
export function rulesFrom(o: KeepOptions, cfg: Config): RetentionRules {
  const c = cfg.retention ?? {};
  const count = (opt: string | undefined, name: string, fromCfg: number | undefined) => (opt !== undefined ? parseKeepCount(opt, name) : fromCfg);
  const r: RetentionRules = {
    last: count(o.keepLast, '--keep-last', c.last),
    hourly: count(o.keepHourly, '--keep-hourly', c.hourly),
    daily: count(o.keepDaily, '--keep-daily', c.daily),
    weekly: count(o.keepWeekly, '--keep-weekly', c.weekly),
    monthly: count(o.keepMonthly, '--keep-monthly', c.monthly),
    yearly: count(o.keepYearly, '--keep-yearly', c.yearly),
    within:
      o.keepWithin !== undefined
        ? parseDuration(o.keepWithin, '--keep-within')
        : c.within !== undefined
          ? parseDuration(c.within, 'retention.keep-within')
          : undefined,
  };
  return Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as RetentionRules;
}
