/**
 * The ISO 8601 dates and date-times hardsnap reads (`HARDSNAP_NOW`, WHEN). Written by hand
 * rather than with `Date.parse`, because `Date.parse` reads a date-time without a zone as LOCAL
 * time, accepts `2026-02-30` as March 2nd, and takes many non-ISO forms depending on the
 * engine: a backup tool run from cron must not restore a different day because of `TZ`.
 *
 * Accepted: `YYYY-MM-DD`, then `T`, `t` or one space, then `HH:MM`, optionally `:SS` and a
 * fraction (`.` or `,`, 1 to 9 digits, kept to the millisecond), optionally a zone: `Z`, or an
 * offset `+HH:MM`, `+HHMM`, `+HH` (or `-`). Every field is range-checked against the calendar.
 */

const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME_RE = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?$/;

/**
 * The instant of a UTC calendar time, or null when a field is out of range. Uses
 * `setUTCFullYear` because `Date.UTC` maps the years 0 to 99 to 1900 to 1999.
 */
function utc(y: number, mo: number, d: number, h = 0, mi = 0, s = 0, ms = 0): Date | null {
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 59) return null;
  const t = new Date(0);
  t.setUTCFullYear(y, mo - 1, d);
  t.setUTCHours(h, mi, s, ms);
  // a day past the month's end (02-30) rolls over: refuse it rather than move the date
  if (t.getUTCMonth() !== mo - 1 || t.getUTCDate() !== d) return null;
  return t;
}

/** The start (00:00:00.000 UTC) of the calendar day `YYYY-MM-DD`, or null. */
export function parseIsoDate(text: string): Date | null {
  const m = DATE_RE.exec(text);
  if (!m) return null;
  return utc(Number(m[1]), Number(m[2]), Number(m[3]));
}

/**
 * The instant an ISO 8601 date-time stands for, or null when `text` is not one. Without a zone
 * it is read as UTC, unless `requireZone` is set, in which case it is refused (null).
 */
export function parseIsoDateTime(text: string, opts: { requireZone?: boolean } = {}): Date | null {
  const m = DATE_TIME_RE.exec(text);
  if (!m) return null;
  const [, y, mo, d, h, mi, s, frac, z, sign, oh, om] = m;
  const hasOffset = sign !== undefined;
  if (opts.requireZone && z === undefined && !hasOffset) return null;
  const ms = frac === undefined ? 0 : Math.floor(Number(frac.padEnd(9, '0')) / 1e6);
  const t = utc(Number(y), Number(mo), Number(d), Number(h), Number(mi), Number(s ?? 0), ms);
  if (t === null) return null;
  if (!hasOffset) return t;
  const offH = Number(oh);
  const offM = Number(om ?? 0);
  if (offH > 23 || offM > 59) return null;
  // local time = UTC + offset, so UTC = local time - offset
  const offsetMs = (sign === '-' ? -1 : 1) * (offH * 60 + offM) * 60_000;
  return new Date(t.getTime() - offsetMs);
}
