import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UsageError } from '../src/core/errors.js';
import { compileExcludes, readExcludeFile } from '../src/exclude/patterns.js';

/** Raw bytes written as latin1 text: one char per byte, so '\xe9' is the single byte 0xe9. */
const bytes = (latin1: string) => Buffer.from(latin1, 'latin1');

/** Asks the matcher the way the walker does: relPath plus its last component. */
function excluded(patterns: (string | Buffer)[], rel: string | Buffer, isDir: boolean): boolean {
  const relPath = typeof rel === 'string' ? Buffer.from(rel, 'utf8') : rel;
  const name = relPath.subarray(relPath.lastIndexOf(0x2f) + 1);
  return compileExcludes(patterns).excluded(relPath, name, isDir);
}

type Row = [pattern: string | Buffer, relPath: string | Buffer, isDir: boolean, expected: boolean];

const F = false;
const D = true;

describe('compileExcludes', () => {
  describe.each<[string, Row[]]>([
    [
      'name patterns match the name at any depth',
      [
        ['*.tmp', 'a.tmp', F, true],
        ['*.tmp', 'x/y/z/a.tmp', F, true],
        ['*.tmp', 'x/y/a.tmp', D, true],
        ['*.tmp', 'a.tmpx', F, false],
        ['*.tmp', 'a.tmp/inside', F, false],
        ['core', 'deep/er/core', F, true],
        ['core', 'deep/er/core.1', F, false],
        ['core', 'xcore', F, false],
      ],
    ],
    [
      '* and ? never cross /',
      [
        ['a*', 'a', F, true],
        ['a*', 'abc', F, true],
        ['a*c', 'a/c', F, false],
        ['a/*', 'a/b', F, true],
        ['a/*', 'a/b/c', F, false],
        ['?.log', 'x.log', F, true],
        ['?.log', 'xy.log', F, false],
        ['?.log', '.log', F, false],
        ['a?c', 'a/c', F, false],
      ],
    ],
    [
      '[...] byte classes',
      [
        ['[abc].txt', 'b.txt', F, true],
        ['[abc].txt', 'd.txt', F, false],
        ['[a-c]x', 'cx', F, true],
        ['[a-c]x', 'dx', F, false],
        ['[!a-c]x', 'dx', F, true],
        ['[!a-c]x', 'bx', F, false],
        ['[^a-c]x', 'dx', F, true],
        ['[^a-c]x', 'ax', F, false],
        ['[]]x', ']x', F, true],
        ['[!]]x', ']x', F, false],
        ['[!]]x', 'ax', F, true],
        ['[a-]x', '-x', F, true],
        ['[\\]]x', ']x', F, true],
        ['[[:digit:]]*.log', '7.log', F, true],
        ['[[:digit:]]*.log', 'a.log', F, false],
        ['[[:upper:][:digit:]]', 'Q', F, true],
        ['[[:upper:][:digit:]]', 'q', F, false],
        ['d/[!x]', 'd/y', F, true],
        ['d[!x]y', 'd/y', F, false],
        ['q/d[!x]y', 'q/d/y', F, false],
        ['q/d[!x]y', 'q/dzy', F, true],
      ],
    ],
    [
      '** crosses / and may match no component',
      [
        ['a/**/b', 'a/b', F, true],
        ['a/**/b', 'a/x/b', F, true],
        ['a/**/b', 'a/x/y/b', F, true],
        ['a/**/b', 'a/xb', F, false],
        ['a/**/b', 'q/a/x/b', F, true],
        ['**/b', 'b', F, true],
        ['**/b', 'x/y/b', F, true],
        ['**/b', 'x/yb', F, false],
        ['a/**', 'a/x', F, true],
        ['a/**', 'a/x/y', F, true],
        ['a/**', 'a', D, false],
        ['a/***', 'a', D, true],
        ['a/***', 'a/x/y', F, true],
        ['a/***', 'ab', D, false],
        ['x**y', 'x/1/y', F, true],
        ['x**y', 'q/x/1/y', F, true],
        ['x**y', 'qx/1/y', F, false],
        ['**', 'any/thing', F, true],
        ['**/nm/', 'a/b/nm', D, true],
        ['**/nm/', 'nm', D, true],
        ['**/nm/', 'a/nm', F, false],
        ['**/**/nm', 'a/nm', F, true],
        ['**/a/b', 'x/a/b', F, true],
        ['**/a/b', 'a/b', F, true],
        ['**/a/b', 'x/za/b', F, false],
      ],
    ],
    [
      'several * or ** in a row',
      [
        ['*a*b*', 'xaybz', F, true],
        ['*a*b*', 'xbya', F, false],
        ['*a*a*b', 'aab', F, true],
        ['*a*a*b', 'ab', F, false],
        ['*a*a*b', 'XaYaZb', F, true],
        ['a*b*c', 'abc', F, true],
        ['a*b*c', 'acb', F, false],
        ['*ab?*', 'aab', F, false],
        ['*ab?*', 'aabx', F, true],
        ['x/*a*b/y', 'x/QaQb/y', F, true],
        ['x/*a*b/y', 'x/ba/y', F, false],
        ['x/*a*b/y', 'x/a/b/y', F, false],
        ['x/*a*b', 'x/a/b', F, false],
        ['x/*a*b', 'x/Q/ab', F, false],
        ['**a**b**', 'xa/yb/z', F, true],
        ['**a**b**', 'xb/ya/z', F, false],
        ['**a/b**c', 'q/a/b/zc', F, true],
        ['**a/b**c', 'q/a/zb/c', F, false],
      ],
    ],
    [
      '\\ makes the next character literal',
      [
        ['\\*.txt', '*.txt', F, true],
        ['\\*.txt', 'a.txt', F, false],
        ['a\\?', 'a?', F, true],
        ['a\\?', 'ab', F, false],
        ['\\[x]', '[x]', F, true],
        ['\\[x]', 'x', F, false],
        ['back\\\\slash', 'back\\slash', F, true],
        ['a\\b', 'ab', F, true],
        ['(x).+', '(x).+', F, true],
        ['(x).+', '(x)a', F, false],
        ['^$|', '^$|', F, true],
        ['^$|', 'a', F, false],
      ],
    ],
    [
      'a leading / anchors at the part root',
      [
        ['/cache', 'cache', D, true],
        ['/cache', 'cache', F, true],
        ['/cache', 'x/cache', D, false],
        ['/a/b', 'a/b', F, true],
        ['/a/b', 'x/a/b', F, false],
        ['/*.iso', 'big.iso', F, true],
        ['/*.iso', 'd/big.iso', F, false],
        ['/**/b', 'b', F, true],
        ['/**/b', 'x/b', F, true],
        ['\\/cache', 'x/cache', F, false],
      ],
    ],
    [
      'a trailing / matches directories only',
      [
        ['tmp/', 'tmp', D, true],
        ['tmp/', 'tmp', F, false],
        ['tmp/', 'a/b/tmp', D, true],
        ['tmp/', 'a/b/tmp', F, false],
        ['/tmp/', 'tmp', D, true],
        ['/tmp/', 'x/tmp', D, false],
        ['a/tmp/', 'a/tmp', D, true],
        ['a/tmp/', 'a/tmp', F, false],
        ['a/tmp', 'a/tmp', F, true],
        ['a/tmp', 'a/tmp', D, true],
      ],
    ],
    [
      'a / inside matches the end of the path on component boundaries',
      [
        ['Maildir/tmp', 'users/u1/Maildir/tmp', D, true],
        ['Maildir/tmp', 'Maildir/tmp', D, true],
        ['Maildir/tmp', 'users/u1/XMaildir/tmp', D, false],
        ['Maildir/tmp', 'users/u1/Maildir/tmpx', D, false],
        ['Maildir/tmp', 'users/u1/Maildir/tmp/x', F, false],
        ['u*/Maildir', 'home/users/Maildir', D, true],
        ['u*/Maildir', 'home/xusers/Maildir', D, false],
      ],
    ],
    [
      'names are bytes',
      [
        [bytes('latin1-\xe9t\xe9'), bytes('d/latin1-\xe9t\xe9'), F, true],
        [bytes('latin1-\xe9t\xe9'), 'd/latin1-été', F, false],
        ['latin1-été', 'd/latin1-été', F, true],
        ['latin1-été', bytes('d/latin1-\xe9t\xe9'), F, false],
        [bytes('*\xe9*'), bytes('x\xe9y'), F, true],
        [bytes('*\xe9*'), 'xéy', F, false],
        ['?t', bytes('\xe9t'), F, true],
        ['?t', 'ét', F, false],
        ['??t', 'ét', F, true],
        ['*', bytes('\xff\xfe'), F, true],
        [bytes('\xff*'), bytes('a/\xff\xfe'), F, true],
        [bytes('\xff*'), bytes('a/\xfe\xff'), F, false],
        [bytes('[\xe0-\xef]x'), bytes('\xe9x'), F, true],
        [bytes('[\xe0-\xef]x'), bytes('\xf0x'), F, false],
        [bytes('[!\xe9]x'), bytes('\xe9x'), F, false],
        ['*.log', 'line\nbreak.log', F, true],
        ['*.log', 'a.log\nb', F, false],
        ['line?break', 'line\nbreak', F, true],
        ['a*', 'x\na', F, false],
        ['[!a]b', '\nb', F, true],
      ],
    ],
  ])('%s', (_title, rows) => {
    it.each(rows)('%s vs %s (dir %s) -> %s', (pattern, rel, isDir, expected) => {
      expect(excluded([pattern], rel, isDir)).toBe(expected);
    });
  });

  it.each<[string[], string, boolean, boolean]>([
    [['*.tmp', '/cache', 'tmp/', 'Maildir/tmp'], 'a/b.tmp', F, true],
    [['*.tmp', '/cache', 'tmp/', 'Maildir/tmp'], 'cache', D, true],
    [['*.tmp', '/cache', 'tmp/', 'Maildir/tmp'], 'x/tmp', D, true],
    [['*.tmp', '/cache', 'tmp/', 'Maildir/tmp'], 'x/tmp', F, false],
    [['*.tmp', '/cache', 'tmp/', 'Maildir/tmp'], 'u/Maildir/tmp', F, true],
    [['*.tmp', '/cache', 'tmp/', 'Maildir/tmp'], 'u/Maildir/cur', D, false],
    [['a/', 'b'], 'a', F, false],
    [['a/', 'b'], 'b', F, true],
    [['/x/a/', 'y/b'], 'x/a', F, false],
    [['/x/a/', 'y/b'], 'x/a', D, true],
    [['/x/a/', 'y/b'], 'q/y/b', F, true],
    [['*.tmp', '*.swp', '*~', 'core'], 'd/a.swp', F, true],
    [['*.tmp', '*.swp', '*~', 'core'], 'd/a~', F, true],
    [['*.tmp', '*.swp', '*~', 'core'], 'd/core', F, true],
    [['*.tmp', '*.swp', '*~', 'core'], 'd/a.swpx', F, false],
    [['*.tmp', '*.swp', '*~', 'core'], 'd/xcore', F, false],
    [['*.tmp', '*.swp', '*~', 'core'], 'a.tmp/x', F, false],
    [['*', 'x/y'], 'any', F, true],
    [['*/tmp', '*/new', '/*/cur'], 'a/b/new', F, true],
    [['*/tmp', '*/new', '/*/cur'], 'b/cur', D, true],
    [['*/tmp', '*/new', '/*/cur'], 'a/b/cur', D, false],
    [['*/tmp', '*/new', '/*/cur'], 'a/b/newx', F, false],
    [['*/tmp', '*/new', 'a/cur'], 'x/a/cur', D, true],
    [['*/tmp', '*/new', 'a/cur'], 'x/a/new', D, true],
    [['*/tmp', '*/new', 'a/cur'], 'x/za/cur', D, false],
    [['x', 'a/b'], 'q/x', F, true],
    [['x', 'a/b'], 'x/q', F, false],
    [['x', 'a/b'], 'q/a/b', F, true],
    [['x/', '/x/y'], 'x/q', D, false],
    [['x/', '/x/y'], 'q/x', D, true],
  ])('several patterns %j vs %s (dir %s) -> %s', (patterns, rel, isDir, expected) => {
    expect(excluded(patterns, rel, isDir)).toBe(expected);
  });

  it.each<[string, string]>([
    ['*a*a*a*a*b', 'a'.repeat(255)],
    ['**a**a**a**b', ('a'.repeat(200) + '/').repeat(5) + 'a'],
  ])('does not backtrack for ever on %s (took 73 s per name before)', (pattern, rel) => {
    expect(excluded([pattern], rel, false)).toBe(false);
    expect(excluded([pattern], rel + 'b', false)).toBe(true);
  });

  it('with no pattern is empty and excludes nothing', () => {
    const m = compileExcludes([]);
    expect(m.empty).toBe(true);
    expect(m.excluded(Buffer.from('a'), Buffer.from('a'), true)).toBe(false);
    expect(compileExcludes(['x']).empty).toBe(false);
  });

  it.each<[string | Buffer, RegExp]>([
    ['', /empty pattern/],
    ['/', /matches nothing/],
    ['//', /empty path component/],
    ['a//b', /empty path component/],
    ['[abc', /unterminated \[ class/],
    ['[]', /unterminated \[ class/],
    ['[!]', /unterminated \[ class/],
    ['x[a\\', /unterminated \[ class/],
    ['[[:alpha:]', /unterminated \[ class/],
    ['[z-a]', /reversed range z-a/],
    ['[[:bogus:]]', /unknown class \[:bogus:\]/],
    ['[/]', /matches no byte/],
    ['abc\\', /lone \\/],
    [bytes('[\xe9'), /"\[\\xe9"/],
  ])('rejects %j with a UsageError naming it', (pattern, message) => {
    const attempt = () => compileExcludes(['ok', pattern]);
    expect(attempt).toThrow(UsageError);
    expect(attempt).toThrow(message);
    expect(attempt).toThrow(/^bad exclude pattern "/);
  });
});

describe('readExcludeFile', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'hardsnap-exclude-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const write = (content: Buffer | string) => {
    const file = path.join(dir, 'excludes');
    writeFileSync(file, content);
    return file;
  };

  it.each<[string, Buffer | string, string[]]>([
    ['one pattern per line', '*.tmp\n/cache\ntmp/\n', ['*.tmp', '/cache', 'tmp/']],
    ['no final newline', '*.tmp\n/cache', ['*.tmp', '/cache']],
    ['comments and blank lines skipped', '# junk\n\n*.tmp\n  # not a comment\n\n', ['*.tmp', '  # not a comment']],
    ['CRLF line ends', '*.tmp\r\n# c\r\n\r\n/cache\r\n', ['*.tmp', '/cache']],
    ['only the last \\r is stripped', 'a\r\r\n', ['a\r']],
    ['an empty file', '', []],
    ['non-UTF-8 bytes kept', bytes('latin1-\xe9t\xe9\n\xff*\n'), ['latin1-\xe9t\xe9', '\xff*']],
  ])('%s', (_title, content, expected) => {
    const got = readExcludeFile(write(content));
    expect(got.map((b) => b.toString('latin1'))).toEqual(expected);
  });

  it('gives patterns that match byte-exactly', () => {
    const m = compileExcludes(readExcludeFile(write(bytes('latin1-\xe9t\xe9\r\n'))));
    const name = bytes('latin1-\xe9t\xe9');
    expect(m.excluded(Buffer.concat([bytes('d/'), name]), name, false)).toBe(true);
    const utf8 = Buffer.from('latin1-été');
    expect(m.excluded(utf8, utf8, false)).toBe(false);
  });

  it.each<[string, (file: string) => string, RegExp]>([
    ['a missing file', (f) => f + '.missing', /exclude file .*excludes\.missing does not exist/],
    ['a directory', (f) => (mkdirSync(f + '.d'), f + '.d'), /exclude file .*excludes\.d cannot be read \(EISDIR\)/],
    ['a bad pattern, by line', (f) => (writeFileSync(f, '# c\nok\n[abc\n'), f), /excludes:3: bad exclude pattern "\[abc"/],
  ])('rejects %s with a UsageError naming it', (_title, make, message) => {
    const file = make(path.join(dir, 'excludes'));
    expect(() => readExcludeFile(file)).toThrow(UsageError);
    expect(() => readExcludeFile(file)).toThrow(message);
  });
});
