/**
 * Durations as people type them on a command line or in a config file: `90s`, `30m`, `36h`,
 * `3d`, `2w`, `1y`, and concatenations such as `1d12h`. Options like `--min-interval`,
 * `--keep-within` and the age form of WHEN all go through `parseDuration`, so they accept and
 * reject exactly the same texts and say so in the same words.
 *
 * Units: s (second), m (minute), h (hour), d (day = 24h), w (week = 7d), y (year = 365d; a
 * fixed length, because a duration must not depend on the calendar it is applied to). There is
 * no month unit: `m` is minutes, as in `30m`, and a "month" has no fixed length.
 *
 * Rules, chosen so a typo is refused rather than guessed at:
 * - lowercase units only (`30M` could be read as months);
 * - in a concatenation the units go largest first, each at most once (`1d12h`, not `12h1d` or
 *   `1h1h`);
 * - no sign, no fraction, no spaces inside (`1.5h` is `1h30m`); surrounding spaces are trimmed;
 * - zero is allowed (`0s`): callers for which zero means "off" (`--min-interval 0s`) need it,
 *   and callers that need a positive duration check that themselves;
 * - at most 100 years, so a stray digit cannot produce a date outside what `Date` can hold.
 */
import { UsageError } from '../core/errors.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const WEEK = 7 * DAY;
const YEAR = 365 * DAY;

/** The longest duration accepted: 100 years of 365 days. */
export const MAX_DURATION_MS = 100 * YEAR;

/** Largest first: the order a concatenation must follow. */
const UNITS: readonly (readonly [string, number])[] = [
  ['y', YEAR],
  ['w', WEEK],
  ['d', DAY],
  ['h', HOUR],
  ['m', MINUTE],
  ['s', SECOND],
];
const UNIT_MS = new Map(UNITS);
const UNIT_RANK = new Map(UNITS.map(([u], i) => [u, i]));

const WHOLE_RE = /^(?:\d+[ywdhms])+$/;
const PART_RE = /(\d+)([ywdhms])/g;

export const DURATION_FORMS = '90s, 30m, 36h, 3d, 2w, 1y or a combination like 1d12h (units largest first)';

/** True when `text` has the shape of a duration (it may still be too long to accept). */
export function looksLikeDuration(text: string): boolean {
  return WHOLE_RE.test(text.trim());
}

/**
 * The duration `text` stands for, in milliseconds. `what` names the option or argument in the
 * error message (`--min-interval`), so the user knows which of their inputs to fix.
 */
export function parseDuration(text: string, what = 'duration'): number {
  const s = text.trim();
  const refuse = (why: string): never => {
    throw new UsageError(`${what}: ${JSON.stringify(text)} ${why}; use ${DURATION_FORMS}`, { code: 'EDURATION' });
  };
  if (!WHOLE_RE.test(s)) refuse(s === '' ? 'is empty' : 'is not a duration');
  let total = 0;
  let lastRank = -1;
  for (const [, digits, unit] of s.matchAll(PART_RE)) {
    const rank = UNIT_RANK.get(unit!)!;
    if (rank <= lastRank) refuse('repeats a unit or has them out of order');
    lastRank = rank;
    total += Number(digits) * UNIT_MS.get(unit!)!;
    // checked on every step: a 400-digit number is Infinity, and Infinity - Infinity is NaN
    if (!(total <= MAX_DURATION_MS)) refuse('is longer than 100 years');
  }
  return total;
}

/** Units shown by `formatDuration`: weeks and years read worse than days in a status line. */
const SHOWN: readonly (readonly [string, number])[] = [
  ['d', DAY],
  ['h', HOUR],
  ['m', MINUTE],
  ['s', SECOND],
];

/**
 * A duration for humans: its two most significant units, rounded down (`2d 3h`, `45m`, `12s`,
 * `1h 5m`); `2d` rather than `2d 0h`. Under a second it shows milliseconds (`350ms`), so a
 * tiny non-zero duration never reads as nothing; a negative one (a clock set back) gets a `-`.
 * The output of `formatDuration` without the space is accepted by `parseDuration` whenever it
 * has no `ms`.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 0) return `-${formatDuration(-ms)}`;
  if (ms < SECOND) return ms === 0 ? '0s' : `${Math.ceil(ms)}ms`;
  const i = SHOWN.findIndex(([, size]) => ms >= size);
  const [unit, size] = SHOWN[i]!;
  const n = Math.floor(ms / size);
  const next = SHOWN[i + 1];
  const m = next ? Math.floor((ms - n * size) / next[1]) : 0;
  return m > 0 ? `${n}${unit} ${m}${next![0]}` : `${n}${unit}`;
}
