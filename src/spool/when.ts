/**
 * WHEN, the argument of `restore --at` and `diff` (SPEC.md): which generation a user means.
 *
 * - a generation name (`2026-11-20T030000Z`, `2026-11-20T030000Z-01`): exactly that generation;
 * - a date (`2026-11-20`): the END of that UTC day, 23:59:59.999, so "as of the 20th" includes
 *   the night's run of the 20th;
 * - a date-time (`2026-11-20T03:00:00Z`, `2026-11-20T03:00`, `2026-11-20 03:00:00+02:00`): UTC
 *   unless it carries an offset (the spool is in UTC; the machine's `TZ` must not matter);
 * - an age (`36h`, `3d`, `1d12h`): now minus that duration.
 *
 * Every form but the name selects the newest complete generation whose time is at or before
 * the cutoff. Parsing is separate from selection so the CLI can refuse a bad WHEN before it
 * opens the spool, and so both are pure and tested with tables.
 */
import { UsageError } from '../core/errors.js';
import { PARTIAL_SUFFIX, parseGenerationName } from './names.js';
import { parseIsoDate, parseIsoDateTime } from '../time/date-time.js';
import { looksLikeDuration, parseDuration } from '../time/duration.js';

export type When = { kind: 'name'; name: string } | { kind: 'time'; cutoff: Date; text: string };

const END_OF_DAY_MS = 24 * 60 * 60 * 1000 - 1;

export const WHEN_FORMS =
  'a generation name (2026-11-20T030000Z), a date (2026-11-20, the end of that day, UTC), ' +
  'a date-time (2026-11-20T03:00:00Z, 2026-11-20T03:00, 2026-11-20 03:00:00+02:00; UTC unless ' +
  'it has an offset) or an age (36h, 3d, 1d12h)';

/**
 * What `text` designates. `now` anchors ages; `what` names the argument in error messages
 * (`--at`, `diff A`).
 */
export function parseWhen(text: string, now: Date, what = 'WHEN'): When {
  const s = text.trim();
  if (parseGenerationName(s) !== null) return { kind: 'name', name: s };
  const day = parseIsoDate(s);
  if (day !== null) return { kind: 'time', cutoff: new Date(day.getTime() + END_OF_DAY_MS), text: s };
  const at = parseIsoDateTime(s);
  if (at !== null) return { kind: 'time', cutoff: at, text: s };
  if (looksLikeDuration(s)) {
    return { kind: 'time', cutoff: new Date(now.getTime() - parseDuration(s, what)), text: s };
  }
  const partial = s.endsWith(PARTIAL_SUFFIX) && parseGenerationName(s.slice(0, -PARTIAL_SUFFIX.length));
  throw new UsageError(
    partial
      ? `${what}: ${JSON.stringify(text)} is an incomplete generation, which cannot be restored or compared; ` + `name a complete one, or use a date or an age`
      : `${what}: cannot read ${JSON.stringify(text)}; use ${WHEN_FORMS}`,
    { code: 'EWHEN' },
  );
}

/**
 * The generation `when` designates among `gens`, or undefined when there is none: for a name,
 * the complete generation of that name; otherwise the newest complete generation whose time is
 * at or before the cutoff. Incomplete (`.partial`) generations are never chosen: their trees
 * may be half written.
 */
export function selectGeneration<G extends { name: string; time: Date; complete: boolean }>(gens: G[], when: When): G | undefined {
  if (when.kind === 'name') return gens.find((g) => g.complete && g.name === when.name);
  const cutoff = when.cutoff.getTime();
  let best: G | undefined;
  for (const g of gens) {
    if (!g.complete || !(g.time.getTime() <= cutoff)) continue;
    // equal times (two runs in one second): the name with the counter is the later run
    if (best === undefined || g.time > best.time || (+g.time === +best.time && g.name > best.name)) best = g;
  }
  return best;
}
