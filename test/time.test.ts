import { describe, expect, it } from 'vitest';
import { UsageError } from '../src/core/errors.js';
import { parseIsoDateTime } from '../src/time/date-time.js';
import { formatDuration, MAX_DURATION_MS, parseDuration } from '../src/time/duration.js';
import { now } from '../src/time/now.js';
import { parseWhen, selectGeneration, type When } from '../src/spool/when.js';

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

describe('parseDuration', () => {
  it.each([
    ['90s', 90 * S],
    ['30m', 30 * M],
    ['36h', 36 * H],
    ['3d', 3 * D],
    ['2w', 14 * D],
    ['1y', 365 * D],
    ['1d12h', 36 * H],
    ['1w2d3h4m5s', 9 * D + 3 * H + 4 * M + 5 * S],
    ['0s', 0],
    ['  45m ', 45 * M],
    ['007d', 7 * D],
    ['100y', MAX_DURATION_MS],
  ])('%j is %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each([
    ['', /is empty/],
    ['   ', /is empty/],
    ['-3d', /is not a duration/],
    ['+3d', /is not a duration/],
    ['3', /is not a duration/],
    ['d', /is not a duration/],
    ['3x', /is not a duration/],
    ['3D', /is not a duration/],
    ['1.5h', /is not a duration/],
    ['1d 12h', /is not a duration/],
    ['3days', /is not a duration/],
    ['12h1d', /out of order/],
    ['1h1h', /repeats a unit/],
    ['100y1s', /longer than 100 years/],
    ['5300w', /longer than 100 years/],
    ['9'.repeat(400) + 's', /longer than 100 years/],
  ])('refuses %j', (text, message) => {
    expect(() => parseDuration(text, '--min-interval')).toThrow(UsageError);
    expect(() => parseDuration(text, '--min-interval')).toThrow(message);
  });

  it('names the option and the accepted forms in its error', () => {
    expect(() => parseDuration('soon', '--keep-within')).toThrow(
      /^--keep-within: "soon" is not a duration; use 90s, 30m, 36h, 3d, 2w, 1y or a combination like 1d12h/,
    );
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [350, '350ms'],
    [0.4, '1ms'],
    [12 * S, '12s'],
    [12 * S + 999, '12s'],
    [45 * M, '45m'],
    [H + 5 * M + 7 * S, '1h 5m'],
    [2 * D + 3 * H, '2d 3h'],
    [2 * D + 5 * M, '2d'],
    [400 * D + 23 * H + 59 * M, '400d 23h'],
    [-90 * M, '-1h 30m'],
  ])('%d ms is %j', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it.each([[90 * S], [36 * H], [3 * D], [D + 12 * H]])('round-trips %d through parseDuration', (ms) => {
    expect(parseDuration(formatDuration(ms).replace(' ', ''))).toBe(ms);
  });
});

describe('now', () => {
  it('is the real clock without HARDSNAP_NOW, or with it empty', () => {
    for (const env of [{}, { HARDSNAP_NOW: '' }]) {
      const before = Date.now();
      const t = now(env).getTime();
      expect(t).toBeGreaterThanOrEqual(before);
      expect(t).toBeLessThanOrEqual(Date.now());
    }
  });

  it.each([
    ['2026-11-20T03:00:00Z', '2026-11-20T03:00:00.000Z'],
    ['2026-11-20T05:00:00+02:00', '2026-11-20T03:00:00.000Z'],
    ['2026-11-19T22:30:00-0430', '2026-11-20T03:00:00.000Z'],
    ['2026-11-20T03:00:00.123456Z', '2026-11-20T03:00:00.123Z'],
    ['2026-11-20T03:00Z', '2026-11-20T03:00:00.000Z'],
  ])('HARDSNAP_NOW=%s is %s', (text, iso) => {
    expect(now({ HARDSNAP_NOW: text }).toISOString()).toBe(iso);
  });

  it.each(['2026-11-20T03:00:00', '2026-11-20', 'yesterday', '2026-02-30T00:00:00Z', '2026-11-20T24:00:00Z', '1700000000'])(
    'refuses HARDSNAP_NOW=%s, naming the variable',
    (text) => {
      expect(() => now({ HARDSNAP_NOW: text })).toThrow(UsageError);
      expect(() => now({ HARDSNAP_NOW: text })).toThrow(/^HARDSNAP_NOW=/);
    },
  );
});

describe('parseIsoDateTime', () => {
  it('reads years below 100 as themselves (Date.UTC would make 0050 into 1950)', () => {
    expect(parseIsoDateTime('0050-01-01T00:00Z')?.getUTCFullYear()).toBe(50);
  });

  it('does not depend on TZ: a zoneless time is UTC', () => {
    expect(parseIsoDateTime('2026-07-01T12:00')?.toISOString()).toBe('2026-07-01T12:00:00.000Z');
  });
});

describe('parseWhen', () => {
  const NOW = new Date('2026-11-22T12:00:00Z');
  const cutoff = (text: string) => {
    const w = parseWhen(text, NOW);
    if (w.kind !== 'time') throw new Error(`${text} parsed as a name`);
    return w.cutoff.toISOString();
  };

  it.each(['2026-11-20T030000Z', '2026-11-20T030000Z-01', ' 2026-11-20T030000Z '])('%j is a generation name', (text) => {
    expect(parseWhen(text, NOW)).toEqual({ kind: 'name', name: text.trim() });
  });

  it.each([
    ['2026-11-20', '2026-11-20T23:59:59.999Z'],
    ['2024-02-29', '2024-02-29T23:59:59.999Z'],
    ['2026-11-20T03:00:00Z', '2026-11-20T03:00:00.000Z'],
    ['2026-11-20T03:00', '2026-11-20T03:00:00.000Z'],
    ['2026-11-20T03:00:00', '2026-11-20T03:00:00.000Z'],
    ['2026-11-20 03:00:00+02:00', '2026-11-20T01:00:00.000Z'],
    ['2026-11-20t03:00:00.5z', '2026-11-20T03:00:00.500Z'],
    ['2026-11-20T03:00-01', '2026-11-20T04:00:00.000Z'],
    ['36h', '2026-11-21T00:00:00.000Z'],
    ['3d', '2026-11-19T12:00:00.000Z'],
    ['1d12h', '2026-11-21T00:00:00.000Z'],
    ['0s', '2026-11-22T12:00:00.000Z'],
  ])('%j means at or before %s', (text, iso) => {
    expect(cutoff(text)).toBe(iso);
  });

  it('keeps the text for messages', () => {
    expect(parseWhen(' 3d ', NOW)).toMatchObject({ kind: 'time', text: '3d' });
  });

  it.each([
    '',
    'yesterday',
    '2026-11-31',
    '2026-13-01',
    '2026-11-20T25:00',
    '2026-11-20T03:00:00+24:00',
    '2026-11-20T03',
    '20261120',
    '2026-11-20T300000Z',
    '2026-11-32T030000Z',
    '-3d',
    '3 days',
  ])('refuses %j, listing the accepted forms', (text) => {
    expect(() => parseWhen(text, NOW, '--at')).toThrow(UsageError);
    expect(() => parseWhen(text, NOW, '--at')).toThrow(/^--at: cannot read .*generation name.*a date.*date-time.*an age/);
  });

  it('says why a .partial name cannot be used', () => {
    expect(() => parseWhen('2026-11-20T030000Z.partial', NOW)).toThrow(/incomplete generation/);
  });

  it('refuses an age beyond 100 years, naming the argument', () => {
    expect(() => parseWhen('101y', NOW, 'diff B')).toThrow(/^diff B: "101y" is longer than 100 years/);
  });
});

describe('selectGeneration', () => {
  const gen = (name: string, iso: string, complete = true) => ({ name, time: new Date(iso), complete });
  const gens = [
    gen('2026-11-20T030000Z', '2026-11-20T03:00:00Z'),
    gen('2026-11-21T030000Z', '2026-11-21T03:00:00Z'),
    gen('2026-11-21T030000Z-01', '2026-11-21T03:00:00Z'),
    gen('2026-11-22T030000Z', '2026-11-22T03:00:00Z', false),
  ];
  // shuffled, so that the result does not come from the input order
  const shuffled = [gens[2]!, gens[0]!, gens[3]!, gens[1]!];
  const at = (iso: string): When => ({ kind: 'time', cutoff: new Date(iso), text: iso });

  it.each<[string, When, string | undefined]>([
    ['an exact name', { kind: 'name', name: '2026-11-20T030000Z' }, '2026-11-20T030000Z'],
    ['a name that does not exist', { kind: 'name', name: '2026-11-20T030001Z' }, undefined],
    ['the name of a partial generation', { kind: 'name', name: '2026-11-22T030000Z' }, undefined],
    ['a cutoff equal to a generation time (at or before)', at('2026-11-20T03:00:00Z'), '2026-11-20T030000Z'],
    ['a cutoff a millisecond before it', at('2026-11-20T02:59:59.999Z'), undefined],
    ['a cutoff between generations', at('2026-11-20T23:59:59.999Z'), '2026-11-20T030000Z'],
    ['two runs in one second: the later (counter) one', at('2026-11-21T12:00:00Z'), '2026-11-21T030000Z-01'],
    ['a cutoff after a partial: never the partial', at('2026-11-23T00:00:00Z'), '2026-11-21T030000Z-01'],
  ])('%s', (_, when, expected) => {
    expect(selectGeneration(shuffled, when)?.name).toBe(expected);
  });

  it('finds nothing in an empty list', () => {
    expect(selectGeneration([], at('2026-11-23T00:00:00Z'))).toBeUndefined();
  });

  it('works end to end: a date means the end of that day', () => {
    const when = parseWhen('2026-11-21', new Date('2026-12-01T00:00:00Z'));
    expect(selectGeneration(gens, when)?.name).toBe('2026-11-21T030000Z-01');
  });
});
