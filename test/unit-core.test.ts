// Pure parts of the engine, table-tested without a disk: the decision, the escaped path form,
// generation names, part names.
import { describe, expect, it } from 'vitest';
import { decide } from '../src/plan/decide.js';
import { FLAG, type ManifestEntry } from '../src/manifest/format.js';
import type { Meta } from '../src/fs/entry.js';
import { displayPath, parseDisplayPath } from '../src/paths/escape.js';
import { formatGenerationName, newGenerationName, parseGenerationName } from '../src/spool/names.js';
import { checkNoNesting, validatePartName } from '../src/spool/part-name.js';

const file: Meta = { type: 'file', mode: 0o644, uid: 1, gid: 2, size: 10, mtimeSec: 100, mtimeNsec: 5, rdev: 0, target: null, xattrs: null };
const rec = (m: Partial<ManifestEntry> = {}): ManifestEntry => ({
  ...file,
  name: Buffer.from('f'),
  flags: 0,
  linkGroup: 0,
  ino: 7,
  hash: null,
  ctimeSec: 0,
  ctimeNsec: 0,
  ...m,
});
const ctx = { prevAvailable: true, asRoot: true };

describe('decide: link unchanged, write the rest, with the reason', () => {
  const cases: [string, Meta, ManifestEntry | undefined, string, string][] = [
    ['new file', file, undefined, 'copy', 'new'],
    ['unchanged', file, rec(), 'link', 'unchanged'],
    ['size', { ...file, size: 11 }, rec(), 'copy', 'size'],
    ['mtime ns', { ...file, mtimeNsec: 6 }, rec(), 'copy', 'mtime'],
    ['mode only', { ...file, mode: 0o600 }, rec(), 'copy', 'mode'],
    ['owner only', { ...file, uid: 9 }, rec(), 'copy', 'owner'],
    ['type', { ...file, type: 'symlink', target: Buffer.from('x') }, rec(), 'symlink', 'type file -> symlink'],
    ['unstable last time', file, rec({ flags: FLAG.UNSTABLE }), 'copy', 'changed while read last time'],
    ['absent last time', file, rec({ flags: FLAG.ABSENT }), 'copy', 'not materialized last time'],
    ['symlink same target', { ...file, type: 'symlink', target: Buffer.from('t') }, rec({ type: 'symlink', target: Buffer.from('t') }), 'link', 'unchanged'],
    ['symlink target', { ...file, type: 'symlink', target: Buffer.from('t2') }, rec({ type: 'symlink', target: Buffer.from('t') }), 'symlink', 'target'],
    ['fifo new', { ...file, type: 'fifo' }, undefined, 'mknod', 'new'],
    ['device other rdev', { ...file, type: 'char', rdev: 5 }, rec({ type: 'char', rdev: 6 }), 'mknod', 'device number'],
    ['directory', { ...file, type: 'dir' }, rec({ type: 'dir' }), 'mkdir', 'directory'],
  ];
  it.each(cases)('%s', (_n, e, p, action, reason) => {
    expect(decide(e, p, ctx)).toEqual({ action, reason });
  });
  it('a device is only recorded when not root', () => {
    expect(decide({ ...file, type: 'block', rdev: 1 }, undefined, { ...ctx, asRoot: false }).action).toBe('record');
  });
  it('an unchanged entry is written when the previous generation is not reachable', () => {
    expect(decide(file, rec(), { ...ctx, prevAvailable: false })).toEqual({ action: 'copy', reason: 'unchanged, previous generation not reachable' });
  });
});

describe('the escaped path form round-trips every byte string', () => {
  const cases: [Buffer, string][] = [
    [Buffer.from('plain/path.txt'), 'plain/path.txt'],
    [Buffer.from('back\\slash'), 'back\\\\slash'],
    [Buffer.from('new\nline'), 'new\\x0aline'],
    [Buffer.from('latin1-\xe9t\xe9', 'latin1'), 'latin1-\\xe9t\\xe9'],
    [Buffer.from('café-日本'), 'café-日本'],
    [Buffer.from([0x7f, 0xff, 0xfe]), '\\x7f\\xff\\xfe'],
    [Buffer.from([0xc2, 0x85]), '\\xc2\\x85'], // C1 control NEL: escaped
    [Buffer.from([0xed, 0xa0, 0x80]), '\\xed\\xa0\\x80'], // a surrogate: not valid UTF-8
  ];
  it.each(cases)('%j', (bytes, text) => {
    expect(displayPath(bytes)).toBe(text);
    expect(parseDisplayPath(text).equals(bytes)).toBe(true);
  });
  it('random byte strings', () => {
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed);
    for (let i = 0; i < 3000; i++) {
      const b = Buffer.from(Array.from({ length: rnd() % 40 }, () => rnd() % 256));
      const t = displayPath(b);
      expect(/[\x00-\x1f\x7f]/.test(t)).toBe(false);
      expect(parseDisplayPath(t).equals(b)).toBe(true);
    }
  });
  it('a malformed escape is refused', () => {
    expect(() => parseDisplayPath('a\\q')).toThrow(/bad escape/);
    expect(() => parseDisplayPath('a\\x4')).toThrow(/bad escape/);
  });
});

describe('generation names', () => {
  it('format, parse, sort chronologically, never collide', () => {
    const t = new Date('2026-11-20T03:00:00.700Z');
    expect(formatGenerationName(t)).toBe('2026-11-20T030000Z');
    expect(parseGenerationName('2026-11-20T030000Z')?.toISOString()).toBe('2026-11-20T03:00:00.000Z');
    expect(parseGenerationName('2026-11-20T030000Z-01')?.toISOString()).toBe('2026-11-20T03:00:00.000Z');
    expect(parseGenerationName('2026-02-30T030000Z')).toBeNull();
    expect(parseGenerationName('last')).toBeNull();
    const taken = new Set(['2026-11-20T030000Z']);
    const n = newGenerationName(t, (x) => taken.has(x));
    expect(n).toBe('2026-11-20T030000Z-01');
    const sorted = ['2026-11-20T030001Z', n, '2026-11-20T030000Z'].sort();
    expect(sorted).toEqual(['2026-11-20T030000Z', n, '2026-11-20T030001Z']);
    expect(n).not.toContain(':');
  });
});

describe('part names', () => {
  it.each(['mail', 'mail/imap', 'bm/pgsql', 'a-b_c.d'])('accepts %s', (n) => expect(validatePartName(n)).toBe(n));
  it.each(['', '/x', 'x/', 'a//b', '.', '..', 'a/../b', 'last', 'x/last', '.hardsnap', 'x/.hidden', 'tab\tname', '2026-11-20T030000Z'])('refuses %j', (n) =>
    expect(() => validatePartName(n)).toThrow(/invalid part name/),
  );
  it('refuses nesting among given and existing parts', () => {
    expect(() => checkNoNesting(['bm', 'bm/pgsql'])).toThrow(/nest/);
    expect(() => checkNoNesting(['bm/pgsql'], ['bm'])).toThrow(/already exists/);
    expect(() => checkNoNesting(['bm'], ['bm/pgsql'])).toThrow(/nest/);
    expect(() => checkNoNesting(['bm', 'bmx'])).not.toThrow();
    expect(() => checkNoNesting(['a', 'a'])).toThrow(/twice/);
  });
});
