import { mkdtempSync, rmSync, writeFileSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { UsageError } from '../src/core/errors.js';
import { exampleConfig } from '../src/config/example.js';
import { ConfigError, loadConfig, parseConfig } from '../src/config/load.js';
import { unknownKeyMessage, type Config } from '../src/config/schema.js';
import { validateHost } from '../src/spool/layout.js';
import { checkNoNesting, validatePartName } from '../src/spool/part-name.js';
import { parseDuration } from '../src/time/duration.js';
import { random } from './helpers/random.js';

const FILE = 'hardsnap.yaml';

/** The problems parseConfig reports for `text`, or a failure when it accepts it. */
function problemsOf(text: string): string[] {
  try {
    parseConfig(text, FILE);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error(`accepted:\n${text}`);
}

describe('good configs', () => {
  test.each<[string, string, Config]>([
    [
      'a part given as a string',
      'spool: /srv/spool\nparts:\n  mail/imap: /var/spool/cyrus/data\n',
      { spool: '/srv/spool', parts: [{ name: 'mail/imap', path: '/var/spool/cyrus/data', exclude: [] }] },
    ],
    [
      'a part given as a mapping',
      'parts:\n  etc:\n    path: /etc\n    exclude: ["*.bak", shadow-]\n',
      { parts: [{ name: 'etc', path: '/etc', exclude: ['*.bak', 'shadow-'] }] },
    ],
    [
      'JSON syntax',
      '{"spool": "/s", "host": "10.0.0.5", "parts": {"a": "/a"}, "one-file-system": true, "retention": {"keep-last": 3}}',
      { spool: '/s', host: '10.0.0.5', parts: [{ name: 'a', path: '/a', exclude: [] }], oneFileSystem: true, retention: { last: 3 } },
    ],
    ['a single string stands for a list of one, and nothing for an empty list', 'exclude: "*.tmp"\nexclude-from:\n', { exclude: ['*.tmp'], excludeFrom: [] }],
    [
      'every retention key and duration form',
      'retention:\n  keep-last: 0\n  keep-hourly: 24\n  keep-daily: 7\n  keep-weekly: 4\n  keep-monthly: 12\n  keep-yearly: 2\n  keep-within: 1d12h\n',
      { retention: { last: 0, hourly: 24, daily: 7, weekly: 4, monthly: 12, yearly: 2, within: '1d12h' } },
    ],
    [
      'hooks as argv and as shell',
      'hooks:\n  pre: [/usr/local/bin/dump-db, --fast]\n  post:\n    shell: "tar c x | gzip > y"\n  timeout: 90s\n',
      { hooks: { pre: { argv: ['/usr/local/bin/dump-db', '--fast'] }, post: { shell: 'tar c x | gzip > y' }, timeout: '90s' } },
    ],
    [
      'the remaining scalar settings',
      'min-interval: 20h\nparallel-parts: true\nmetrics-file: /m.prom\ndedup: host\nchecksum: true\nwait: true\n',
      { minInterval: '20h', parallelParts: true, metricsFile: '/m.prom', dedup: 'host', checksum: true, wait: true },
    ],
    ['wait as a duration', 'wait: 10m\n', { wait: '10m' }],
    ['dedup off, as a word or false, and dedup-verify', 'dedup: off\ndedup-verify: false\n', { dedup: 'off', dedupVerify: false }],
    ['dedup: false is off', 'dedup: false\n', { dedup: 'off' }],
    [
      'anchors and aliases',
      'exclude: &common ["*.tmp"]\nparts:\n  a: { path: /a, exclude: *common }\n',
      { exclude: ['*.tmp'], parts: [{ name: 'a', path: '/a', exclude: ['*.tmp'] }] },
    ],
    ['a numeric part name as written', 'parts:\n  2024: /data/2024\n', { parts: [{ name: '2024', path: '/data/2024', exclude: [] }] }],
  ])('%s', (_name, text, expected) => {
    expect(parseConfig(text, FILE)).toEqual(expected);
  });
});

describe('bad configs name FILE:LINE:COL and the problem', () => {
  test.each<[string, string, string]>([
    ['empty file', '', '1:1: config is empty'],
    ['only comments', '# nothing yet\n', '1:1: config is empty'],
    ['a null document', '~\n', '1:1: config is empty'],
    ['not a mapping', '- spool\n', '1:1: expected a mapping of settings'],
    ['two documents', 'spool: /a\n---\nspool: /b\n', '2:1: a config is one YAML document'],
    ['duplicate key', 'spool: /a\nhost: h\nspool: /b\n', '3:1: duplicate key'],
    ['YAML syntax: unclosed flow list', 'exclude: [a, b\nspool: /x\n', '2:1: '],
    ['YAML syntax: unclosed quote', 'spool: "/a\n', '2:1: Missing closing "quote'],
    ['YAML syntax: nested compact mapping', 'spool: a: b\n', '1:8: Nested mappings'],
    ['unknown tag', 'spool: !!nope /a\n', '1:8: Unresolved tag'],
    ['unknown key with a near miss', 'retention:\n  keep-dayly: 7\n', '2:3: retention.keep-dayly: unknown key; did you mean keep-daily?'],
    ['camelCase key', 'oneFileSystem: true\n', '1:1: oneFileSystem: unknown key; did you mean one-file-system?'],
    ['hook-timeout at top level', 'hook-timeout: 5m\n', '1:1: hook-timeout: unknown key here; write it as timeout inside hooks'],
    ['unknown key far from all', 'colour: blue\n', '1:1: colour: unknown key; known keys here: spool, host'],
    ['part path of the wrong type', 'parts:\n  mail:\n    path: 5\n', '3:11: parts.mail.path: expected a string, got a number'],
    ['part without path', 'parts:\n  mail:\n    exclude: [x]\n', '3:5: parts.mail: missing path'],
    ['empty parts map', 'parts: {}\n', '1:8: parts: is empty'],
    ['parts with nothing', 'parts:\n', '1:1: parts: expected a mapping of part name -> path'],
    ['parts as a list', 'parts:\n  - /a\n', '2:3: parts: expected a mapping of part name -> path'],
    ['relative part path', 'parts:\n  mail: var/mail\n', '2:9: parts.mail: must be an absolute path (starting with /), got "var/mail"'],
    ['relative spool', 'spool: backups\n', '1:8: spool: must be an absolute path'],
    ['spool with nothing points at the key', 'host: h\nspool:\n', '2:1: spool: expected a string, got nothing'],
    ['empty string', 'spool: ""\n', '1:8: spool: must not be empty'],
    ['part named last', 'parts:\n  mail/last: /a\n', `2:3: parts.mail/last: invalid part name "mail/last": 'last' is reserved (use names like`],
    [
      'part name starting with a dot',
      'parts:\n  .hardsnap: /a\n',
      `2:3: parts..hardsnap: invalid part name ".hardsnap": component '.hardsnap' starts with '.'`,
    ],
    ['part name with an empty component', 'parts:\n  "a//b": /a\n', '2:3: parts.a//b: invalid part name "a//b": it has an empty component'],
    ['part name like a generation', 'parts:\n  x/2026-11-20T030000Z: /a\n', '2:3: parts.x/2026-11-20T030000Z: invalid part name'],
    ['nested parts', 'parts:\n  bm: /a\n  bm/pgsql: /b\n', "3:3: parts.bm/pgsql: parts 'bm' and 'bm/pgsql' nest"],
    ['the same name as a number and a string', 'parts:\n  1: /a\n  "1": /b\n', "3:3: parts.1: part '1' is given twice"],
    ['null part name', 'parts:\n  ~: /a\n', '2:3: parts: a key must be a plain word'],
    ['part as a list', 'parts:\n  a: [/a]\n', '2:6: parts.a: expected a path, or a mapping with path and exclude, got a list'],
    ['negative keep count', 'retention:\n  keep-daily: -1\n', '2:15: retention.keep-daily: expected a whole number >= 0, got -1'],
    ['fractional keep count', 'retention: {keep-weekly: 1.5}\n', '1:26: retention.keep-weekly: expected a whole number >= 0, got 1.5'],
    ['quoted keep count', 'retention: {keep-last: "3"}\n', '1:24: retention.keep-last: expected a whole number >= 0, got a string'],
    ['infinite keep count', 'retention: {keep-last: .inf}\n', '1:24: retention.keep-last: expected a whole number >= 0, got Infinity'],
    ['duration typo', 'min-interval: 20x\n', '1:15: min-interval: "20x" is not a duration; use 90s, 30m'],
    ['fractional duration', 'min-interval: 1.5h\n', '1:15: min-interval: "1.5h" is not a duration'],
    ['duration units out of order', 'hooks: {timeout: 12h1d}\n', '1:18: hooks.timeout: "12h1d" repeats a unit or has them out of order'],
    [
      'duration without unit',
      'min-interval: 20\n',
      '1:15: min-interval: expected a duration (90s, 30m, 36h, 3d, 2w, 1y or a combination like 1d12h (units largest first)), got a number',
    ],
    ['keep-within typo', 'retention:\n  keep-within: 2 days\n', '2:16: retention.keep-within: "2 days" is not a duration'],
    ['boolean as a word', 'checksum: yes\n', '1:11: checksum: expected true or false, got a string'],
    ['dedup value', 'dedup: file\n', '1:8: dedup: expected off, part or host, got "file"'],
    ['dedup-verify as a word', 'dedup-verify: maybe\n', '1:15: dedup-verify: expected true or false, got a string'],
    ['wait as a number', 'wait: 5\n', '1:7: wait: expected true, false or a duration'],
    ['hook as a plain string', 'hooks:\n  pre: /usr/bin/dump\n', '2:8: hooks.pre: expected an argv list such as'],
    [
      'hook with an empty argv',
      'hooks:\n  pre: []\n',
      '2:8: hooks.pre: expected an argv list such as ["/usr/local/bin/dump-db", "--fast"], or { shell: "..." } to run it through /bin/sh, got an empty list',
    ],
    ['hook argv with a number', 'hooks:\n  pre: [/bin/sleep, 5]\n', '2:21: hooks.pre[1]: expected a string, got a number'],
    ['hook mapping without shell', 'hooks:\n  post: {sh: x}\n', '2:9: hooks.post: missing shell'],
    ['hook mapping with a misspelt key', 'hooks:\n  post: {shel: x, shell: y}\n', '2:10: hooks.post.shel: unknown key; did you mean shell?'],
    ['a newline in a value stays on one line', 'spool: "a\n\n  b"\n', '1:8: spool: must be an absolute path (starting with /), got "a\\x0ab"'],
    ['hook timeout typo', 'hooks:\n  timeout: 5mn\n', '2:12: hooks.timeout: "5mn" is not a duration'],
    ['relative exclude-from', 'exclude-from: [/a, b]\n', '1:20: exclude-from[1]: must be an absolute path'],
    ['exclude item of the wrong type', 'exclude:\n  - {a: 1}\n', '2:5: exclude[0]: expected a string, got a mapping'],
    ['relative metrics-file', 'metrics-file: m.prom\n', '1:15: metrics-file: must be an absolute path'],
    ['host with a slash', 'host: a/b\n', '1:7: host: invalid host ID "a/b"'],
    ['host as a number', 'host: 42\n', '1:7: host: expected a string, got a number'],
    ['alias without anchor', 'exclude: *nope\n', '1:10: exclude: alias *nope has no anchor &nope before it'],
    ['verbose is not a config key', 'verbose: true\n', '1:1: verbose: unknown key here; verbose is a command-line option only'],
  ])('%s', (_name, text, expected) => {
    const problems = problemsOf(text);
    expect(problems[0]).toContain(`${FILE}:${expected}`);
    expect(problems[0]!.startsWith(`${FILE}:${expected.slice(0, expected.indexOf(': ') + 2)}`)).toBe(true);
  });

  test('the message has one line per problem, in file order', () => {
    const text = 'wait: 5\nretention:\n  keep-daily: -1\nspool: rel\n';
    let err: unknown;
    try {
      parseConfig(text, FILE);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).exit).toBe(1);
    expect((err as UsageError).code).toBe('ECONFIG');
    expect((err as UsageError).path).toBe(FILE);
    expect((err as Error).message.split('\n').map((l) => l.slice(0, l.indexOf(': ')))).toEqual([`${FILE}:1:7`, `${FILE}:3:15`, `${FILE}:4:8`]);
  });

  test('a part of the wrong type reports the type, not also a missing path', () => {
    expect(problemsOf('parts:\n  mail:\n    path: 5\n')).toHaveLength(1);
  });
});

describe('loadConfig', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'hardsnap-config-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('reads and parses a file', () => {
    const file = join(dir, 'c.yaml');
    writeFileSync(file, 'spool: /s\n');
    expect(loadConfig(file)).toEqual({ spool: '/s' });
  });

  test('names the file in parse errors', () => {
    const file = join(dir, 'c.yaml');
    writeFileSync(file, 'spool: s\n');
    expect(() => loadConfig(file)).toThrow(`${file}:1:8: spool: must be an absolute path`);
  });

  test.each([
    ['a missing file', 'nope.yaml', 'ENOENT'],
    ['a directory', 'sub', 'EISDIR'],
  ])('%s is a UsageError naming the path and errno code', (_name, name, code) => {
    mkdirSync(join(dir, 'sub'));
    const file = join(dir, name);
    expect(() => loadConfig(file)).toThrow(UsageError);
    expect(() => loadConfig(file)).toThrow(`${file}: cannot read config file (${code})`);
  });
});

describe('exampleConfig', () => {
  test('parses into the values it describes', () => {
    expect(parseConfig(exampleConfig(), 'example.yaml')).toEqual({
      spool: '/var/backups/bluemind/dp_spool',
      parts: [
        { name: 'mail/imap', path: '/var/spool/cyrus/data', exclude: ['cyrus.squat'] },
        { name: 'mail/archive', path: '/var/spool/bm-hsm', exclude: [] },
        { name: 'filehosting/data', path: '/var/spool/bm-filehosting', exclude: [] },
        { name: 'bm/pgsql', path: '/var/backups/bluemind/pgsql-dump', exclude: [] },
      ],
      exclude: ['lost+found', '*.tmp'],
      excludeFrom: [],
      oneFileSystem: true,
      retention: { daily: 7, weekly: 4, monthly: 3 },
      hooks: {
        pre: { argv: ['/usr/local/sbin/dump-pgsql', '/var/backups/bluemind/pgsql-dump'] },
        post: { shell: "echo 'run job=bluemind-last yes' | /usr/sbin/bconsole" },
        timeout: '30m',
      },
      minInterval: '20h',
      parallelParts: false,
      metricsFile: '/var/lib/prometheus/node-exporter/hardsnap.prom',
      dedup: 'part',
      dedupGenerations: 7,
      dedupVerify: true,
      checksum: false,
      wait: '1h',
    } satisfies Config);
  });

  test('comments every key it sets', () => {
    const lines = exampleConfig().split('\n');
    lines.forEach((line, i) => {
      const key = /^(\s*)([a-z-]+):/.exec(line);
      // A part's own path is what its comment above the parts map explains.
      if (!key || key[2] === 'path') return;
      const above = lines[i - 1] ?? '';
      const commented = line.includes('#') || above.trim().startsWith('#');
      expect(commented, `line ${i + 1}: ${line}`).toBe(true);
    });
  });
});

describe('helpers', () => {
  test('unknownKeyMessage suggests only near misses', () => {
    expect(unknownKeyMessage('exlude', ['exclude', 'spool'])).toBe('unknown key; did you mean exclude?');
    expect(unknownKeyMessage('keep_daily', ['keep-daily'])).toBe('unknown key; did you mean keep-daily?');
    expect(unknownKeyMessage('zzz', ['exclude', 'spool'])).toBe('unknown key; known keys here: exclude, spool');
  });
});

const NOISE = [...'abz09:-_ /\n\t"\'[]{},#&*!|>%@?~.\\', 'é', '\u0000'];
const VALUES = ['123', '-1', '1.5', 'true', '~', '[a, 1]', '{x: 1}', '"str"', '/abs', 'rel/path', '20x', '3d', '*a', '&a 1'];

function mutate(text: string, next: () => number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  const pos = Math.floor(next() * (text.length + 1));
  const lines = text.split('\n');
  switch (Math.floor(next() * 4)) {
    case 0:
      return text.slice(0, pos) + text.slice(pos + 1);
    case 1:
      return text.slice(0, pos) + pick(NOISE) + text.slice(pos);
    case 2: {
      const i = Math.floor(next() * lines.length);
      const j = Math.floor(next() * lines.length);
      [lines[i], lines[j]] = [lines[j]!, lines[i]!];
      return lines.join('\n');
    }
    default: {
      const candidates = lines.flatMap((l, i) => (/^\s*[\w/-]+:\s+\S/.test(l) ? [i] : []));
      const i = pick(candidates);
      lines[i] = lines[i]!.replace(/^(\s*[\w/-]+:\s+).*$/, `$1${pick(VALUES)}`);
      return lines.join('\n');
    }
  }
}

/** What every accepted config must satisfy, checked independently of the validator. */
function expectValid(c: Config): void {
  const abs = (p: unknown) => expect(typeof p === 'string' && p.startsWith('/')).toBe(true);
  const dur = (d: unknown) => expect(typeof d === 'string' && parseDuration(d) >= 0).toBe(true);
  if (c.spool !== undefined) abs(c.spool);
  if (c.host !== undefined) validateHost(c.host);
  if (c.parts !== undefined) {
    expect(c.parts.length).toBeGreaterThan(0);
    checkNoNesting(c.parts.map((p) => p.name));
    for (const p of c.parts) {
      abs(p.path);
      validatePartName(p.name);
      expect(p.exclude.every((e) => typeof e === 'string' && e !== '')).toBe(true);
    }
  }
  for (const n of [c.retention?.last, c.retention?.hourly, c.retention?.daily, c.retention?.weekly, c.retention?.monthly, c.retention?.yearly]) {
    if (n !== undefined) expect(Number.isSafeInteger(n) && n >= 0).toBe(true);
  }
  for (const d of [c.retention?.within, c.hooks?.timeout, c.minInterval]) if (d !== undefined) dur(d);
  for (const h of [c.hooks?.pre, c.hooks?.post]) {
    if (h === undefined) continue;
    if ('argv' in h) expect(h.argv.length > 0 && h.argv.every((a) => typeof a === 'string')).toBe(true);
    else expect(typeof h.shell === 'string' && h.shell !== '').toBe(true);
  }
  for (const b of [c.oneFileSystem, c.parallelParts, c.checksum, c.dedupVerify]) if (b !== undefined) expect(typeof b).toBe('boolean');
  if (c.wait !== undefined && typeof c.wait !== 'boolean') dur(c.wait);
  if (c.dedup !== undefined) expect(['off', 'part', 'host']).toContain(c.dedup);
}

test('fuzz: mutated examples parse into a valid Config or fail with FILE:LINE:COL', () => {
  const next = random(20261120);
  const base = exampleConfig();
  let accepted = 0;
  let rejected = 0;
  for (let n = 0; n < 2000; n++) {
    let text = base;
    const rounds = 1 + Math.floor(next() * 3);
    for (let r = 0; r < rounds; r++) text = mutate(text, next);
    let config: Config | undefined;
    try {
      config = parseConfig(text, FILE);
    } catch (err) {
      if (!(err instanceof UsageError)) throw new Error(`case ${n} threw ${String(err)} for:\n${text}`);
      const bad = err.message.split('\n').find((line) => !/^hardsnap\.yaml:\d+:\d+: \S/.test(line));
      if (bad !== undefined) expect.fail(`case ${n}: ${JSON.stringify(bad)} for:\n${text}`);
      rejected++;
      continue;
    }
    expectValid(config);
    accepted++;
  }
  // Both outcomes must occur, or the mutations are not exercising anything.
  expect(accepted).toBeGreaterThan(100);
  expect(rejected).toBeGreaterThan(100);
});

describe('config examples in the documentation', () => {
  // a doc (the long form of the README's unattended section, since merged into docs/OPERATIONS.md)
  // once listed parts as a sequence of {name, path}, which the parser rejects
  test('every YAML block of README.md and docs/ that is a whole config (top-level spool, parts or hooks) parses', () => {
    const root = join(import.meta.dirname, '..');
    const files = [
      'README.md',
      ...readdirSync(join(root, 'docs'))
        .filter((f) => f.endsWith('.md'))
        .map((f) => `docs/${f}`),
    ];
    let checked = 0;
    for (const f of files) {
      const text = readFileSync(join(root, f), 'utf8');
      for (const m of text.matchAll(/```yaml\n([\s\S]*?)```/g)) {
        const block = m[1]!;
        if (!/^(spool|parts|hooks):/m.test(block)) continue; // a fragment (one hook, an alert rule)
        expect(() => parseConfig(block, f), `${f}:\n${block}`).not.toThrow();
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(4);
  });
});
