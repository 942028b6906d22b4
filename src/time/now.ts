/**
 * "Now" for every command. `HARDSNAP_NOW` (an ISO 8601 date-time with `Z` or an offset) fixes
 * it, so that tests can make generations at chosen times and check ages, retention and WHEN
 * without waiting or faking the system clock; unset or empty, it is the real clock.
 *
 * Only calendar decisions use this "now" (the new generation's name, ages, retention, WHEN);
 * durations, timeouts and lock staleness measure the real clock (SPEC.md).
 *
 * A zone is required: a zoneless time would be read in some time zone, and a test that means
 * one instant must not get another on a machine with a different `TZ`.
 */
import { UsageError } from '../core/errors.js';
import { parseIsoDateTime } from './date-time.js';

export const NOW_VARIABLE = 'HARDSNAP_NOW';

export function now(env: NodeJS.ProcessEnv = process.env): Date {
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
  return t;
}
