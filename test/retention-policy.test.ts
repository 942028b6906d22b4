import { describe, expect, it } from 'vitest';
import { UsageError } from '../src/core/errors.js';
import { bucketKey, isoWeek } from '../src/retention/buckets.js';
import { applyPolicy, hasAnyRule, parseKeepCount, type PolicyInput, type RetentionRules } from '../src/retention/policy.js';
import { formatGenerationName } from '../src/spool/names.js';
import { random } from './helpers/random.js';

const H = 60 * 60 * 1000;
const D = 24 * H;

/** A complete generation named after its time, as the spool names it. */
function gen(iso: string, extra: Partial<PolicyInput> = {}): PolicyInput {
  const time = new Date(iso);
  return { name: formatGenerationName(time), time, complete: true, ...extra };
}
const names = (ds: { name: string }[]) => ds.map((d) => d.name);
const n = (iso: string) => formatGenerationName(new Date(iso));
const NOW = new Date('2027-06-01T00:00:00Z');

describe('buckets', () => {
  it.each([
    ['2026-11-20T12:00:00Z', '2026-W47'],
    ['2026-12-28T00:00:00Z', '2026-W53'], // Monday
    ['2026-12-31T23:59:59Z', '2026-W53'],
    ['2027-01-01T00:00:00Z', '2026-W53'],
    ['2027-01-03T23:59:59Z', '2026-W53'], // Sunday
    ['2027-01-04T00:00:00Z', '2027-W01'],
    ['2024-12-30T00:00:00Z', '2025-W01'], // Monday of a week whose Thursday is in 2025
    ['2021-01-03T00:00:00Z', '2020-W53'],
    ['2026-01-01T00:00:00Z', '2026-W01'], // a Thursday
  ])('%s is in ISO week %s', (iso, week) => {
    expect(isoWeek(new Date(iso))).toBe(week);
  });

  it.each([
    ['hourly', '2026-11-20T03'],
    ['daily', '2026-11-20'],
    ['weekly', '2026-W47'],
    ['monthly', '2026-11'],
    ['yearly', '2026'],
  ] as const)('the %s key of 2026-11-20T03:04:05Z is %s, in UTC', (rule, key) => {
    expect(bucketKey(rule, new Date('2026-11-20T03:04:05Z'))).toBe(key);
  });
});

describe('applyPolicy', () => {
  type Case = {
    title: string;
    gens: PolicyInput[];
    rules: RetentionRules;
    protect?: string[];
    now?: Date;
    keep: string[];
  };
  const cases: Case[] = [
    {
      title: 'one generation only is always kept',
      gens: [gen('2020-01-01T00:00:00Z')],
      rules: { within: D },
      keep: [n('2020-01-01T00:00:00Z')],
    },
    {
      title: 'ties: of two generations in one day, the newer wins',
      gens: [gen('2026-11-19T03:00:00Z'), gen('2026-11-19T01:00:00Z'), gen('2026-11-19T22:00:00Z'), gen('2026-11-20T03:00:00Z')],
      rules: { daily: 2 },
      keep: [n('2026-11-19T22:00:00Z'), n('2026-11-20T03:00:00Z')],
    },
    {
      title: 'ties: two runs in one second, the one with the counter is the later',
      gens: [
        { name: '2026-11-19T030000Z-01', time: new Date('2026-11-19T03:00:00Z'), complete: true },
        gen('2026-11-19T03:00:00Z'),
        gen('2026-11-18T03:00:00Z'),
        gen('2026-11-20T03:00:00Z'),
      ],
      rules: { daily: 2 },
      keep: ['2026-11-19T030000Z-01', n('2026-11-20T03:00:00Z')],
    },
    {
      title: 'a day boundary: 23:59:59 and 00:00:00 are different days',
      gens: [gen('2026-11-20T23:59:59Z'), gen('2026-11-21T00:00:00Z'), gen('2026-11-20T00:00:00Z'), gen('2026-11-19T23:59:59Z')],
      rules: { daily: 3 },
      keep: [n('2026-11-19T23:59:59Z'), n('2026-11-20T23:59:59Z'), n('2026-11-21T00:00:00Z')],
    },
    {
      title: 'an hour boundary',
      gens: [gen('2026-11-20T02:59:59Z'), gen('2026-11-20T03:00:00Z'), gen('2026-11-20T03:30:00Z'), gen('2026-11-20T02:00:00Z')],
      rules: { hourly: 2 },
      keep: [n('2026-11-20T02:59:59Z'), n('2026-11-20T03:30:00Z')],
    },
    {
      title: 'ISO week across the year end: 2026-12-31 and 2027-01-01 share 2026-W53',
      gens: [gen('2026-12-27T03:00:00Z'), gen('2026-12-31T03:00:00Z'), gen('2027-01-01T03:00:00Z'), gen('2026-12-20T03:00:00Z')],
      rules: { weekly: 2 },
      keep: [n('2026-12-27T03:00:00Z'), n('2027-01-01T03:00:00Z')],
    },
    {
      title: 'a gap of months: monthly skips the empty ones and keeps the next',
      gens: ['2026-01-15', '2026-02-15', '2026-02-20', '2026-05-15', '2026-06-15'].map((d) => gen(`${d}T03:00:00Z`)),
      rules: { monthly: 3 },
      keep: [n('2026-02-20T03:00:00Z'), n('2026-05-15T03:00:00Z'), n('2026-06-15T03:00:00Z')],
    },
    {
      title: 'a gap of weeks: weekly counts weeks with a generation',
      gens: ['2026-09-01', '2026-10-01', '2026-10-02', '2026-11-20'].map((d) => gen(`${d}T03:00:00Z`)),
      rules: { weekly: 3 },
      keep: [n('2026-09-01T03:00:00Z'), n('2026-10-02T03:00:00Z'), n('2026-11-20T03:00:00Z')],
    },
    {
      title: 'yearly across gaps',
      gens: ['2019-06-01', '2020-03-01', '2020-12-31', '2024-01-01', '2026-01-01'].map((d) => gen(`${d}T03:00:00Z`)),
      rules: { yearly: 3 },
      keep: [n('2020-12-31T03:00:00Z'), n('2024-01-01T03:00:00Z'), n('2026-01-01T03:00:00Z')],
    },
    {
      title: 'last N keeps the N newest, whatever the input order',
      gens: ['2026-11-22', '2026-11-19', '2026-11-21', '2026-11-20'].map((d) => gen(`${d}T03:00:00Z`)),
      rules: { last: 2 },
      keep: [n('2026-11-21T03:00:00Z'), n('2026-11-22T03:00:00Z')],
    },
    {
      title: 'within D keeps every generation at or after now - D, the boundary included',
      gens: [gen('2026-11-20T00:00:00Z'), gen('2026-11-19T23:59:59Z'), gen('2026-11-21T00:00:00Z'), gen('2026-11-21T12:00:00Z')],
      rules: { within: 2 * D },
      now: new Date('2026-11-22T00:00:00Z'),
      keep: [n('2026-11-20T00:00:00Z'), n('2026-11-21T00:00:00Z'), n('2026-11-21T12:00:00Z')],
    },
    {
      title: 'the newest is kept even when no rule selects it',
      gens: [gen('2026-01-01T00:00:00Z'), gen('2026-01-02T00:00:00Z')],
      rules: { within: H },
      keep: [n('2026-01-02T00:00:00Z')],
    },
    {
      title: 'pinned and protected generations are kept; an unknown protected name is ignored',
      gens: [gen('2026-01-01T00:00:00Z', { pinned: true }), gen('2026-01-02T00:00:00Z'), gen('2026-01-03T00:00:00Z'), gen('2026-01-04T00:00:00Z')],
      rules: { last: 1 },
      protect: [n('2026-01-02T00:00:00Z'), '1999-01-01T000000Z'],
      keep: [n('2026-01-01T00:00:00Z'), n('2026-01-02T00:00:00Z'), n('2026-01-04T00:00:00Z')],
    },
    {
      title: 'incomplete generations are neither kept nor removed, and never count as newest',
      gens: [gen('2026-01-01T00:00:00Z'), gen('2026-01-02T00:00:00Z'), gen('2026-01-03T00:00:00Z', { complete: false })],
      rules: { last: 1 },
      keep: [n('2026-01-02T00:00:00Z')],
    },
  ];

  it.each(cases)('$title', ({ gens, rules, protect, now, keep }) => {
    const r = applyPolicy(gens, rules, now ?? NOW, protect);
    expect(names(r.keep)).toEqual(keep);
    const complete = gens.filter((g) => g.complete).map((g) => g.name);
    expect(names(r.remove)).toEqual(complete.filter((x) => !keep.includes(x)).sort());
    expect(names(r.decisions)).toEqual([...complete].sort());
  });

  it('a year of dailies with daily 7, weekly 4, monthly 3 leaves exactly the expected survivors', () => {
    const gens: PolicyInput[] = [];
    for (let t = Date.parse('2026-01-01T03:00:00Z'); t <= Date.parse('2026-12-31T03:00:00Z'); t += D) {
      gens.push(gen(new Date(t).toISOString()));
    }
    expect(gens).toHaveLength(365);
    const r = applyPolicy(gens, { daily: 7, weekly: 4, monthly: 3 }, new Date('2027-01-01T00:00:00Z'));
    // By hand: 2026-12-31 is a Thursday in 2026-W53 (Mon 12-28 .. Sun 2027-01-03).
    // daily 7: 12-25 .. 12-31. weekly 4: the newest of W53 (12-31), W52 (Sun 12-27),
    // W51 (Sun 12-20), W50 (Sun 12-13). monthly 3: 12-31, 11-30, 10-31.
    const survivors = ['10-31', '11-30', '12-13', '12-20', '12-25', '12-26', '12-27', '12-28', '12-29', '12-30', '12-31'];
    expect(names(r.keep)).toEqual(survivors.map((d) => n(`2026-${d}T03:00:00Z`)));
    expect(r.remove).toHaveLength(365 - survivors.length);
    expect(r.keep.find((d) => d.name === n('2026-12-27T03:00:00Z'))?.reasons).toEqual(['daily 2026-12-27', 'weekly 2026-W52']);
    expect(r.keep.find((d) => d.name === n('2026-10-31T03:00:00Z'))?.reasons).toEqual(['monthly 2026-10']);
  });

  it('gives every reason that keeps a generation, and one for a removal', () => {
    const gens = [gen('2026-11-18T03:00:00Z', { pinned: true }), gen('2026-11-19T03:00:00Z'), gen('2026-11-20T03:00:00Z'), gen('2026-11-20T04:00:00Z')];
    // within 2d 9h of 11-21T12:00 reaches back to 11-19T03:00 exactly: the boundary is kept
    const r = applyPolicy(gens, { last: 1, hourly: 1, daily: 2, weekly: 1, monthly: 1, yearly: 1, within: 2 * D + 9 * H }, new Date('2026-11-21T12:00:00Z'), [
      n('2026-11-20T04:00:00Z'),
    ]);
    expect(r.decisions).toEqual([
      { name: n('2026-11-18T03:00:00Z'), keep: true, reasons: ['pinned'] },
      { name: n('2026-11-19T03:00:00Z'), keep: true, reasons: ['daily 2026-11-19', 'within 2d 9h'] },
      { name: n('2026-11-20T03:00:00Z'), keep: true, reasons: ['within 2d 9h'] },
      {
        name: n('2026-11-20T04:00:00Z'),
        keep: true,
        reasons: [
          'newest',
          'protected (last)',
          'last 1',
          'hourly 2026-11-20T04',
          'daily 2026-11-20',
          'weekly 2026-W47',
          'monthly 2026-11',
          'yearly 2026',
          'within 2d 9h',
        ],
      },
    ]);
    const r2 = applyPolicy(gens.slice(1), { last: 1 }, NOW);
    expect(r2.remove).toEqual([
      { name: n('2026-11-19T03:00:00Z'), keep: false, reasons: ['no rule keeps it'] },
      { name: n('2026-11-20T03:00:00Z'), keep: false, reasons: ['no rule keeps it'] },
    ]);
  });

  it('does not modify its input', () => {
    const gens = [gen('2026-01-02T00:00:00Z'), gen('2026-01-01T00:00:00Z'), gen('2026-01-03T00:00:00Z')];
    const copy = structuredClone(gens);
    applyPolicy(gens, { last: 1 }, NOW);
    expect(gens).toEqual(copy);
  });

  it.each<[string, RetentionRules, RegExp]>([
    ['no rules at all', {}, /no retention rule/],
    ['only zero rules', { last: 0, daily: 0, within: 0 }, /no retention rule/],
    ['a negative count', { daily: -1 }, /^--keep-daily: -1 is not a count/],
    ['a fractional count', { last: 1.5 }, /^--keep-last: 1.5 is not a count/],
    ['a NaN count', { weekly: NaN }, /^--keep-weekly: NaN/],
    ['an infinite within', { within: Infinity }, /^--keep-within: Infinity/],
    ['a negative within', { daily: 1, within: -1 }, /^--keep-within: -1/],
  ])('refuses %s with a UsageError', (_, rules, message) => {
    expect(() => applyPolicy([gen('2026-01-01T00:00:00Z')], rules, NOW)).toThrow(UsageError);
    expect(() => applyPolicy([gen('2026-01-01T00:00:00Z')], rules, NOW)).toThrow(message);
  });
});

describe('hasAnyRule', () => {
  it.each<[RetentionRules, boolean]>([
    [{}, false],
    [{ last: 0, hourly: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0, within: 0 }, false],
    [{ last: 1 }, true],
    [{ hourly: 1 }, true],
    [{ daily: 1 }, true],
    [{ weekly: 1 }, true],
    [{ monthly: 1 }, true],
    [{ yearly: 1 }, true],
    [{ within: 1 }, true],
  ])('%j: %s', (rules, expected) => {
    expect(hasAnyRule(rules)).toBe(expected);
  });
});

describe('parseKeepCount', () => {
  it.each([
    ['0', 0],
    ['7', 7],
    [' 12 ', 12],
    ['007', 7],
    ['999999999', 999999999],
  ])('%j is %d', (text, count) => {
    expect(parseKeepCount(text, '--keep-daily')).toBe(count);
  });

  it.each(['', '-1', '+1', '1.5', '1e3', '0x10', 'seven', '7d', 'Infinity', '1 2', '1234567890'])('refuses %j', (text) => {
    expect(() => parseKeepCount(text, '--keep-daily')).toThrow(UsageError);
    expect(() => parseKeepCount(text, '--keep-daily')).toThrow(/^--keep-daily: ".*" is not a count; use a whole number/);
  });
});

describe('repeated prune without new backups (the rsnapshot rotation failure)', () => {
  /** Apply, remove what it says, and return the survivors. */
  const prune = (gens: PolicyInput[], rules: RetentionRules, now: Date, protect?: string[]) => {
    const r = applyPolicy(gens, rules, now, protect);
    const kept = new Set(names(r.keep));
    return { survivors: gens.filter((g) => !g.complete || kept.has(g.name)), removed: r.remove.length };
  };

  it('with bucket and last rules, a second application removes nothing, at the same or any later now', () => {
    const rnd = random(20261120);
    const pick = (max: number) => Math.floor(rnd() * (max + 1));
    for (let trial = 0; trial < 300; trial++) {
      // irregular runs: bursts within an hour, gaps of weeks, over about two years
      const gens: PolicyInput[] = [];
      let t = Date.parse('2025-01-01T00:00:00Z');
      const count = 1 + pick(80);
      for (let i = 0; i < count; i++) {
        t += [pick(59) * 60_000, pick(48) * H, pick(40) * D][pick(2)]! + 1000;
        gens.push(gen(new Date(t).toISOString(), { pinned: rnd() < 0.03, complete: rnd() > 0.05 }));
      }
      const rules: RetentionRules = {};
      for (const k of ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const) if (rnd() < 0.5) rules[k] = pick(6);
      if (!hasAnyRule(rules)) rules.daily = 1 + pick(5);
      const now = new Date(t + pick(10) * D);

      const first = prune(gens, rules, now);
      let current = first.survivors;
      for (const later of [0, H, 40 * D, 3 * 365 * D]) {
        const again = prune(current, rules, new Date(now.getTime() + later));
        expect(again.removed, `trial ${trial}, rules ${JSON.stringify(rules)}, +${later} ms`).toBe(0);
        current = again.survivors;
      }
      expect(names(current)).toEqual(names(first.survivors));
    }
  });

  it('a hundred daily prunes of a week of dailies keep the same seven', () => {
    let gens = ['01', '02', '03', '04', '05', '06', '07', '08', '09', '10'].map((d) => gen(`2026-11-${d}T03:00:00Z`));
    gens = prune(gens, { daily: 7 }, new Date('2026-11-10T12:00:00Z')).survivors;
    const afterFirst = names(gens);
    expect(afterFirst).toHaveLength(7);
    for (let day = 1; day <= 100; day++) {
      gens = prune(gens, { daily: 7 }, new Date(Date.parse('2026-11-10T12:00:00Z') + day * D)).survivors;
    }
    expect(names(gens)).toEqual(afterFirst);
  });

  it('within, by contrast, is meant to depend on now: later prunes remove more, but never the newest', () => {
    const gens = ['01', '02', '03'].map((d) => gen(`2026-11-${d}T03:00:00Z`));
    expect(prune(gens, { within: 2 * D }, new Date('2026-11-03T12:00:00Z')).removed).toBe(1);
    const later = prune(gens, { within: 2 * D }, new Date('2026-12-01T00:00:00Z'));
    expect(names(later.survivors)).toEqual([n('2026-11-03T03:00:00Z')]);
  });
});
