/**
 * Calendar buckets for the retention rules: the key of the UTC hour, day, ISO week, month or
 * year a time falls in. Two times share a bucket exactly when their keys are equal; the keys
 * are also what the reasons show (`daily 2026-11-20`, `weekly 2026-W47`).
 *
 * UTC, like generation names: a bucket must not depend on the `TZ` of whoever runs `prune`,
 * or two hosts sharing a spool could disagree about what to delete.
 */
export type BucketRule = 'hourly' | 'daily' | 'weekly' | 'monthly' | 'yearly';

const pad = (n: number, w = 2) => String(n).padStart(w, '0');
const year = (y: number) => (y < 0 ? `-${pad(-y, 4)}` : pad(y, 4));
const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * ISO 8601 week: weeks start on Monday, and week 1 is the week holding the year's first
 * Thursday, so a week belongs to the year of its Thursday (2026-12-31 and 2027-01-01 are both
 * in 2026-W53; 2024-12-30 is in 2025-W01).
 */
export function isoWeek(t: Date): string {
  const thursday = new Date(t.getTime());
  thursday.setUTCHours(0, 0, 0, 0);
  const weekday = thursday.getUTCDay() || 7; // Monday 1 .. Sunday 7
  thursday.setUTCDate(thursday.getUTCDate() + 4 - weekday);
  const jan1 = new Date(thursday.getTime());
  jan1.setUTCMonth(0, 1);
  const week = Math.floor((thursday.getTime() - jan1.getTime()) / DAY_MS / 7) + 1;
  return `${year(thursday.getUTCFullYear())}-W${pad(week)}`;
}

export function bucketKey(rule: BucketRule, t: Date): string {
  const y = year(t.getUTCFullYear());
  const m = pad(t.getUTCMonth() + 1);
  const d = pad(t.getUTCDate());
  switch (rule) {
    case 'hourly':
      return `${y}-${m}-${d}T${pad(t.getUTCHours())}`;
    case 'daily':
      return `${y}-${m}-${d}`;
    case 'weekly':
      return isoWeek(t);
    case 'monthly':
      return `${y}-${m}`;
    case 'yearly':
      return y;
  }
}
