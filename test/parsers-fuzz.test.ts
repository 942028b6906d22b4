/**
 * Every user-typed value goes through one of these parsers; each must either return a valid
 * value or throw a UsageError (exit 1 with a clear line), never another exception and never
 * NaN or an Invalid Date that would travel on into the spool code.
 */
import { describe, expect, it } from 'vitest';
import { UsageError } from '../src/core/errors.js';
import { parseKeepCount } from '../src/retention/policy.js';
import { MAX_DURATION_MS, parseDuration } from '../src/time/duration.js';
import { now } from '../src/time/now.js';
import { parseWhen } from '../src/spool/when.js';
import { random } from './helpers/random.js';

/**
 * Random strings biased towards the parsers' own alphabet, plus mutations of valid inputs, so
 * that many of them get deep into the grammar instead of failing at the first character.
 */
function generator(seed: number): () => string {
  const rnd = random(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const alphabet = [...'0123456789', ...'smhdwyMHDWY', '-', '+', ':', '.', ',', 'T', 't', 'Z', 'z', ' ', 'e', 'x', '\u00e9', '\0', '\n', '\u{1f600}'];
  const seeds = [
    '2026-11-20T030000Z',
    '2026-11-20T030000Z-01',
    '2026-11-20',
    '2026-11-20T03:00:00Z',
    '2026-11-20 03:00:00+02:00',
    '2026-11-20T03:00:00.123456789-0430',
    '1d12h',
    '36h',
    '100y',
    '99999999999999999999w',
    '7',
    '0',
  ];
  return () => {
    if (rnd() < 0.5) {
      const chars = [...pick(seeds)];
      for (let k = 1 + Math.floor(rnd() * 3); k > 0; k--) {
        const at = Math.floor(rnd() * (chars.length + 1));
        const op = Math.floor(rnd() * 3);
        if (op === 0) chars.splice(at, 1);
        else if (op === 1) chars.splice(at, 0, pick(alphabet));
        else chars[at] = pick(alphabet);
      }
      return chars.join('');
    }
    let s = '';
    for (let len = Math.floor(rnd() * 24); len > 0; len--) s += pick(alphabet);
    return s;
  };
}

/** The value, or undefined when a UsageError was thrown; anything else fails the test. */
function attempt<T>(input: string, f: () => T): T | undefined {
  try {
    return f();
  } catch (err) {
    if (!(err instanceof UsageError)) throw new Error(`not a UsageError for ${JSON.stringify(input)}: ${String(err)}`);
    expect(err.message, JSON.stringify(input)).not.toMatch(/[\n\r]/);
    return undefined;
  }
}

const ROUNDS = 4000;

describe('parsers on random input', () => {
  it('parseDuration returns a whole number of ms in [0, 100 years] or throws a UsageError', () => {
    const next = generator(1);
    let accepted = 0;
    for (let i = 0; i < ROUNDS; i++) {
      const s = next();
      const ms = attempt(s, () => parseDuration(s, '--min-interval'));
      if (ms === undefined) continue;
      accepted++;
      expect(Number.isSafeInteger(ms) && ms >= 0 && ms <= MAX_DURATION_MS, JSON.stringify(s)).toBe(true);
    }
    expect(accepted).toBeGreaterThan(50); // the generator does reach valid inputs
  });

  it('parseWhen returns a name or a valid cutoff, or throws a UsageError', () => {
    const next = generator(2);
    const at = new Date('2026-11-22T12:00:00Z');
    let accepted = 0;
    for (let i = 0; i < ROUNDS; i++) {
      const s = next();
      const w = attempt(s, () => parseWhen(s, at, '--at'));
      if (w === undefined) continue;
      accepted++;
      if (w.kind === 'name') expect(w.name).toMatch(/^\d{4}-\d{2}-\d{2}T\d{6}Z(-\d{2})?$/);
      else expect(Number.isNaN(w.cutoff.getTime()), JSON.stringify(s)).toBe(false);
    }
    expect(accepted).toBeGreaterThan(50);
  });

  it('parseKeepCount returns a whole number >= 0 or throws a UsageError', () => {
    const next = generator(3);
    let accepted = 0;
    for (let i = 0; i < ROUNDS; i++) {
      const s = next();
      const c = attempt(s, () => parseKeepCount(s, '--keep-daily'));
      if (c === undefined) continue;
      accepted++;
      expect(Number.isSafeInteger(c) && c >= 0, JSON.stringify(s)).toBe(true);
    }
    expect(accepted).toBeGreaterThan(20);
  });

  it('now() with a random HARDSNAP_NOW returns a valid Date or throws a UsageError', () => {
    const next = generator(4);
    for (let i = 0; i < ROUNDS; i++) {
      const s = next();
      const t = attempt(s, () => now({ HARDSNAP_NOW: s }));
      if (t !== undefined) expect(Number.isNaN(t.getTime()), JSON.stringify(s)).toBe(false);
    }
  });
});
