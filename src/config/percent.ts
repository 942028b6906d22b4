import { UsageError } from '../core/errors.js';

/** `50%`, `50` or `12.5%` as a fraction (0.5), from 0% to 100%. */
export function parsePercent(v: string | number, what: string): number {
  const s = String(v).trim();
  const m = /^(\d{1,3}(?:\.\d+)?)\s*%?$/.exec(s);
  const n = m ? Number(m[1]) : NaN;
  if (!m || n > 100) throw new UsageError(`invalid ${what} ${JSON.stringify(String(v))}: expected a percentage from 0% to 100%, such as 50%`);
  return n / 100;
}
