/**
 * The retention policy, as a pure function from generations and rules to keep/remove decisions
 * with reasons (restic's `ApplyPolicy`, borg's `prune`): `prune --dry-run` prints it, `prune`
 * deletes what it says, and tables of inputs test it without a disk.
 *
 * Semantics:
 * - Only complete generations are judged. A `.partial` is neither kept nor removed here: it is
 *   the next run's resume point, and cleaning it up is the backup's business.
 * - `last N` keeps the N newest.
 * - A bucket rule (`hourly`, `daily`, `weekly`, `monthly`, `yearly` N) walks from newest to
 *   oldest and keeps the newest generation of each distinct UTC hour, day, ISO week, month or
 *   year, until it has kept N of them. Buckets without a generation are skipped, not counted:
 *   `monthly 3` after a two-month gap still keeps three generations.
 * - `within D` keeps every generation whose time is at or after `now - D`.
 * - Pinned generations, the newest one, and any name in `protect` (the target of `last`) are
 *   always kept. What no rule keeps is removed.
 *
 * Why repeating `prune` cannot eat the history (the rsnapshot failure, where every run rotates
 * `daily.0 → daily.1 → …` whether or not a new backup arrived, until nothing is left): the
 * decisions are computed from the generations' own times, never from counters or from `now`
 * (except `within`, whose whole point is to depend on `now`). With only `last` and bucket
 * rules, applying the policy to what it kept keeps all of it again: `last N` finds the same N
 * newest; for a bucket rule, the kept set still holds one generation of each of the N newest
 * buckets it chose and nothing in a bucket newer than the N-th, so those N buckets are again
 * the N newest, and in each the chosen generation, the newest of the bucket before, is still
 * the newest. So a second `prune` without new backups removes nothing, at any later `now`.
 */
import { UsageError } from '../core/errors.js';
import { formatDuration } from '../time/duration.js';
import { bucketKey, type BucketRule } from './buckets.js';

export interface RetentionRules {
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
  /** milliseconds */
  within?: number;
}

export interface PolicyInput {
  name: string;
  time: Date;
  complete: boolean;
  pinned?: boolean;
}

/**
 * One generation's fate. Reasons: `pinned`, `newest`, `protected (last)`, `last 3`,
 * `hourly 2026-11-20T03`, `daily 2026-11-20`, `weekly 2026-W47`, `monthly 2026-11`,
 * `yearly 2026`, `within 2d`; a removed one has `no rule keeps it`.
 */
export interface Verdict {
  name: string;
  keep: boolean;
  reasons: string[];
}

export interface PolicyResult {
  /** oldest first */
  keep: Verdict[];
  /** oldest first */
  remove: Verdict[];
  /** every complete generation, oldest first */
  decisions: Verdict[];
}

const BUCKET_RULES: readonly BucketRule[] = ['hourly', 'daily', 'weekly', 'monthly', 'yearly'];
const COUNT_RULES = ['last', ...BUCKET_RULES] as const;

/** The command-line option that sets a rule, for error messages. */
export function ruleOption(rule: keyof RetentionRules): string {
  return `--keep-${rule}`;
}

/**
 * A `--keep-*` count: a whole number, 0 or more, in plain decimal digits (no sign, exponent,
 * fraction or hex, which `Number()` would quietly accept).
 */
export function parseKeepCount(text: string, option: string): number {
  const s = text.trim();
  const n = /^\d{1,9}$/.test(s) ? Number(s) : NaN;
  if (!Number.isSafeInteger(n)) {
    throw new UsageError(`${option}: ${JSON.stringify(text)} is not a count; use a whole number, 0 or more (e.g. ${option} 7)`, {
      code: 'EKEEPCOUNT',
    });
  }
  return n;
}

/**
 * True when the rules would keep something beyond the newest generation. A count of 0 or
 * `within` 0 is no rule: `prune --keep-daily 0` alone would delete all but one generation,
 * which is never what someone meant.
 */
export function hasAnyRule(r: RetentionRules): boolean {
  return COUNT_RULES.some((k) => (r[k] ?? 0) > 0) || (r.within ?? 0) > 0;
}

/** Rules from a config file or a caller arrive unchecked: refuse what the CLI would refuse. */
function checkRules(r: RetentionRules): void {
  for (const k of COUNT_RULES) {
    const v = r[k];
    if (v !== undefined && !(Number.isSafeInteger(v) && v >= 0)) {
      throw new UsageError(`${ruleOption(k)}: ${v} is not a count; use a whole number, 0 or more`, {
        code: 'EKEEPCOUNT',
      });
    }
  }
  if (r.within !== undefined && !(Number.isFinite(r.within) && r.within >= 0)) {
    throw new UsageError(`${ruleOption('within')}: ${r.within} is not a duration; use e.g. 36h, 7d or 2w`, {
      code: 'EKEEPCOUNT',
    });
  }
}

/** Newest first; equal times (two runs in one second) are ordered by name, the counter later. */
function newestFirst(a: PolicyInput, b: PolicyInput): number {
  return b.time.getTime() - a.time.getTime() || (a.name < b.name ? 1 : a.name > b.name ? -1 : 0);
}

export function applyPolicy(
  gens: PolicyInput[],
  rules: RetentionRules,
  now: Date,
  /** names always kept: a list (reason `protected (last)`), or name -> reason */
  protect: string[] | ReadonlyMap<string, string> = [],
): PolicyResult {
  checkRules(rules);
  if (!hasAnyRule(rules)) {
    throw new UsageError(
      'no retention rule given, so prune would remove every generation but the newest; ' +
        'set at least one of --keep-last, --keep-hourly, --keep-daily, --keep-weekly, ' +
        '--keep-monthly, --keep-yearly, --keep-within',
      { code: 'ENORULES' },
    );
  }
  const sorted = gens.filter((g) => g.complete).sort(newestFirst);
  const reasons = new Map<PolicyInput, string[]>(sorted.map((g) => [g, []]));
  const why = (g: PolicyInput, reason: string) => reasons.get(g)!.push(reason);
  const protectedNames: ReadonlyMap<string, string> = Array.isArray(protect) ? new Map(protect.map((n) => [n, 'protected (last)'])) : protect;

  for (const g of sorted) {
    if (g.pinned) why(g, 'pinned');
    if (g === sorted[0]) why(g, 'newest');
    const p = protectedNames.get(g.name);
    if (p) why(g, p);
  }

  const last = rules.last ?? 0;
  for (const g of sorted.slice(0, last)) why(g, `last ${last}`);

  for (const rule of BUCKET_RULES) {
    const count = rules[rule] ?? 0;
    const seen = new Set<string>();
    for (const g of sorted) {
      if (seen.size >= count) break;
      const key = bucketKey(rule, g.time);
      if (seen.has(key)) continue; // an older generation of a bucket already kept
      seen.add(key);
      why(g, `${rule} ${key}`);
    }
  }

  if (rules.within !== undefined && rules.within > 0) {
    const since = now.getTime() - rules.within;
    const reason = `within ${formatDuration(rules.within)}`;
    for (const g of sorted) if (g.time.getTime() >= since) why(g, reason);
  }

  const decisions = sorted.reverse().map((g): Verdict => {
    const r = reasons.get(g)!;
    return r.length > 0 ? { name: g.name, keep: true, reasons: r } : { name: g.name, keep: false, reasons: ['no rule keeps it'] };
  });
  return {
    keep: decisions.filter((d) => d.keep),
    remove: decisions.filter((d) => !d.keep),
    decisions,
  };
}
