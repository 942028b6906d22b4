/**
 * "Now" for every command. `HARDSNAP_NOW` (an ISO 8601 date-time with `Z` or an offset) fixes
 * it, so that tests can make generations at chosen times and check ages, retention and WHEN
 * without waiting or faking the system clock; unset or empty, it is the real clock.
 *
 * Only calendar decisions use this "now" (the new generation's name, ages, retention, WHEN);
 * durations, timeouts and lock staleness measure the real clock (SPEC.md).
 *
 * A zone is required: a zoneless time would be read in some time zone, and a test that means
 * one instant must not get another on a machine with a different `TZ`. A time more than a day
 * ahead of the real clock is refused (MAX_NOW_AHEAD_MS).
 */
import { UsageError } from '../core/errors.js';
import { parseIsoDateTime } from './date-time.js';

export const NOW_VARIABLE = 'HARDSNAP_NOW';

/**
 * How far ahead of the real clock HARDSNAP_NOW may be. A generation named in the future is
 * poison: every later backup on the real clock is refused (its "now" is not after the newest
 * generation) and prune keeps it as the newest, until it is removed by hand.
 */
export const MAX_NOW_AHEAD_MS = 24 * 3600_000;

/** A generation dated more than this after "now" was made with a wrong clock: status warns. */
export const FUTURE_TOLERANCE_MS = 10 * 60_000;

export function now(env: NodeJS.ProcessEnv = process.env, realClock: number = Date.now()): Date {
  const text = env[NOW_VARIABLE];
  if (text === undefined || text === '') return new Date();
  const t = parseIsoDateTime(text.trim(), { requireZone: true });
  if (t === null) {
    throw new UsageError(
      `${NOW_VARIABLE}=${JSON.stringify(text)} is not an ISO 8601 date-time with a zone; ` +
        `set it like 2026-11-20T03:00:00Z or 2026-11-20T05:00:00+02:00, or unset it`,
      { code: 'ENOW' },
    );
  }
  if (t.getTime() - realClock > MAX_NOW_AHEAD_MS) {
    throw new UsageError(
      `${NOW_VARIABLE}=${text.trim()} is more than a day ahead of the clock (${new Date(realClock).toISOString()}): ` +
        'refusing it, nothing was written (a generation named in the future would make every later backup fail)',
      { code: 'ENOW', hint: `unset ${NOW_VARIABLE}, or fix the clock` },
    );
  }
  return t;
}
