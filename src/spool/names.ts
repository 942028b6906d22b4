/**
 * Generation names: `YYYY-MM-DDTHHMMSSZ` in UTC (the time the run started), sortable as
 * strings, no `:`. When a name is already taken (two runs in one second) a counter is added:
 * `2026-11-20T030000Z-01`, which sorts after the plain name and before the next second.
 */
const NAME_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2})(\d{2})(\d{2})Z(?:-(\d{2}))?$/;
export const PARTIAL_SUFFIX = '.partial';

export interface Generation {
  part: string;
  /** directory name, without `.partial` */
  name: string;
  /** absolute path of the directory (with `.partial` for an incomplete one) */
  path: string;
  /** the time in its name: when its run started */
  time: Date;
  complete: boolean;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

export function formatGenerationName(t: Date, counter = 0): string {
  const base =
    `${pad(t.getUTCFullYear(), 4)}-${pad(t.getUTCMonth() + 1)}-${pad(t.getUTCDate())}` +
    `T${pad(t.getUTCHours())}${pad(t.getUTCMinutes())}${pad(t.getUTCSeconds())}Z`;
  return counter ? `${base}-${pad(counter)}` : base;
}

/** The time a generation name stands for, or null when the name is not one. */
export function parseGenerationName(name: string): Date | null {
  const m = NAME_RE.exec(name);
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const t = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  if (t.getUTCMonth() !== mo - 1 || t.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) return null;
  return t;
}

export function isGenerationName(name: string): boolean {
  return parseGenerationName(name) !== null;
}

/** A name for a run starting at `now` that none of `taken` uses. */
export function newGenerationName(now: Date, taken: (name: string) => boolean): string {
  for (let i = 0; i < 100; i++) {
    const n = formatGenerationName(now, i);
    if (!taken(n)) return n;
  }
  throw new Error(`more than 100 generations in the second of ${now.toISOString()}`);
}

/** Newest last; ties cannot happen (names are unique within a part). */
export function compareGenerations(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}
