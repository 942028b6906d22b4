// Tests of the test helpers: a comparer that cannot fail is a defect.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { copyTree, linkTree, mktree, mutate } from './helpers/bench-tree.js';
import { describe, expect, test, tmpdir } from './helpers/fixture.js';
import { rsyncDiff } from './helpers/oracle.js';
import { BIN, hardsnap, spawnHardsnap, waitFor, waitForFile } from './helpers/run.js';
import {
  assertNotSameInode,
  assertSameInode,
  compareTrees,
  displayPath,
  makeTree,
  readTree,
  setMtimesNs,
  sharedInodes,
  type TreeEntry,
} from './helpers/tree.js';

const isRoot = process.getuid?.() === 0;
const LATIN1 = Buffer.from('latin1-\xe9t\xe9', 'latin1');
const T1 = 1_700_000_000_123_456_789n;
const T2 = 1_600_000_000_987_654_321n;
const T3 = 1_650_000_000_000_000_001n;

function byPath(entries: TreeEntry[], rel: string | Buffer): TreeEntry {
  const b = Buffer.isBuffer(rel) ? rel : Buffer.from(rel);
  const e = entries.find((x) => x.relPath.equals(b));
  if (!e) throw new Error(`no entry ${displayPath(b)}`);
  return e;
}

/** A small tree exercising every kind makeTree supports, with explicit ns mtimes. */
function sample(root: string): void {
  makeTree(root, {
    'a.txt': { content: 'hello', mode: 0o640, mtime: T1 },
    'bin.dat': Buffer.from([0, 1, 2, 255]),
    'sub/deeper/file': { content: 'x', mtime: T2 },
    'sub/deeper': { dir: true, mode: 0o750, mtime: T3 },
    sub: { dir: true, mtime: T2 },
    'sub/link': { symlink: '../a.txt', mtime: T3 },
    'sub/hard': { hardlink: 'a.txt' },
    fifo: { fifo: true, mode: 0o600, mtime: T1 },
    'empty-dir': { dir: true, mtime: T1 },
  });
  makeTree(root, [
    [Buffer.concat([Buffer.from('sub/'), LATIN1]), { content: 'bytes', mtime: T1 }],
    ['sub', { dir: true, mtime: T2 }],
  ]);
}

/** Replace the content of p by `content` of the same size, keeping its mtime and inode. */
function rewriteKeepingMtime(p: string, content: string): void {
  const st = fs.lstatSync(p, { bigint: true });
  expect(Buffer.byteLength(content)).toBe(Number(st.size));
  fs.writeFileSync(p, content);
  setMtimesNs([[Buffer.from(p), st.mtimeNs]]);
}

describe('makeTree and readTree', () => {
  test('round trip keeps ns mtimes of files, dirs and symlinks, modes, links, fifos, byte names', ({ tmp }) => {
    sample(tmp);
    const t = readTree(tmp);
    expect(t[0]!.relPath.length).toBe(0);
    expect(t[0]!.type).toBe('dir');

    const a = byPath(t, 'a.txt');
    expect(a).toMatchObject({ type: 'file', mode: 0o640, mtimeNs: T1, size: 5n, nlink: 2n });
    expect(a.sha256).toBe('2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
    expect(byPath(t, 'bin.dat')).toMatchObject({ type: 'file', mode: 0o644, size: 4n });
    expect(byPath(t, 'sub/deeper/file').mtimeNs).toBe(T2);
    expect(byPath(t, 'sub/deeper')).toMatchObject({ type: 'dir', mode: 0o750, mtimeNs: T3 });
    // sub got children after its spec entry (link, hard, latin1 name) and still has T2
    expect(byPath(t, 'sub')).toMatchObject({ type: 'dir', mtimeNs: T2 });
    const link = byPath(t, 'sub/link');
    expect(link).toMatchObject({ type: 'symlink', mtimeNs: T3 });
    expect(link.target).toEqual(Buffer.from('../a.txt'));
    const hard = byPath(t, 'sub/hard');
    expect([hard.dev, hard.ino]).toEqual([a.dev, a.ino]);
    expect(byPath(t, 'fifo')).toMatchObject({ type: 'fifo', mode: 0o600, mtimeNs: T1 });
    expect(byPath(t, 'empty-dir')).toMatchObject({ type: 'dir', mtimeNs: T1 });
    const l1 = byPath(t, Buffer.concat([Buffer.from('sub/'), LATIN1]));
    expect(l1).toMatchObject({ type: 'file', mtimeNs: T1, size: 5n });

    // independent check of the nanoseconds with stat(1)
    const out = execFileSync('stat', ['-c', '%.9Y', path.join(tmp, 'sub/link')], { encoding: 'utf8' });
    expect(out.trim()).toBe('1650000000.000000001');
  });

  test('entries come sorted by path bytes', ({ tmp }) => {
    makeTree(tmp, { b: '', 'a/z': '', 'a-b': '', A: '' });
    makeTree(tmp, [[Buffer.from([0xff]), '']]);
    const names = readTree(tmp).map((e) => e.relPath.toString('latin1'));
    expect(names).toEqual(['', 'A', 'a', 'a-b', 'a/z', 'b', '\xff']);
  });

  test('a read-only directory keeps its mode over children created later', ({ tmp }) => {
    makeTree(tmp, { ro: { dir: true, mode: 0o500 }, 'ro/f': 'x', 'ro/g/h': 'y' });
    expect(byPath(readTree(tmp), 'ro').mode).toBe(0o500);
    expect(byPath(readTree(tmp), 'ro/g/h').sha256).toBeDefined();
  });

  test.runIf(isRoot)('owners are set and read back', ({ tmp }) => {
    makeTree(tmp, { f: { content: 'x', uid: 1234, gid: 5678 }, l: { symlink: 'f', uid: 42, gid: 43 } });
    const t = readTree(tmp);
    expect(byPath(t, 'f')).toMatchObject({ uid: 1234, gid: 5678 });
    expect(byPath(t, 'l')).toMatchObject({ uid: 42, gid: 43 });
  });

  test('rejects paths that escape the root', ({ tmp }) => {
    expect(() => makeTree(tmp, { '../evil': 'x' })).toThrow(/bad relative path/);
    expect(() => makeTree(tmp, { '/abs': 'x' })).toThrow(/bad relative path/);
  });

  test('displayPath escapes what is not printable ASCII or valid UTF-8', () => {
    expect(displayPath(LATIN1)).toBe('latin1-\\xe9t\\xe9');
    expect(displayPath(Buffer.from('new\nline\\café'))).toBe('new\\x0aline\\\\café');
    expect(displayPath(Buffer.alloc(0))).toBe('.');
  });
});

describe('compareTrees', () => {
  function pair(tmp: string): { a: string; b: string } {
    const a = path.join(tmp, 'a');
    const b = path.join(tmp, 'b');
    sample(a);
    copyTree(a, b);
    return { a, b };
  }

  test('finds nothing between a tree and its cp -a copy', ({ tmp }) => {
    const { a, b } = pair(tmp);
    expect(compareTrees(a, b)).toEqual([]);
  });

  test('finds a changed byte with same size and mtime', ({ tmp }) => {
    const { a, b } = pair(tmp);
    rewriteKeepingMtime(path.join(b, 'a.txt'), 'hellO');
    // sub/hard is the same inode as a.txt
    expect(compareTrees(a, b)).toEqual([
      expect.stringMatching(/^content differs: "a.txt": sha256 2cf24dba\w+ vs 04a6f55f\w+$/),
      expect.stringMatching(/^content differs: "sub\/hard"/),
    ]);
  });

  test('finds a chmod', ({ tmp }) => {
    const { a, b } = pair(tmp);
    fs.chmodSync(path.join(b, 'bin.dat'), 0o600);
    expect(compareTrees(a, b)).toEqual(['mode differs: "bin.dat": 0644 vs 0600']);
  });

  test('finds an mtime off by 1 ns', ({ tmp }) => {
    const { a, b } = pair(tmp);
    setMtimesNs([[Buffer.from(path.join(b, 'sub/deeper/file')), T2 + 1n]]);
    expect(compareTrees(a, b)).toEqual([expect.stringMatching(/^mtime differs: "sub\/deeper\/file": .* \(1 ns\)$/)]);
  });

  test('finds an mtime off by 1 ns on a directory and on a symlink', ({ tmp }) => {
    const { a, b } = pair(tmp);
    setMtimesNs([
      [Buffer.from(path.join(b, 'empty-dir')), T1 - 1n],
      [Buffer.from(path.join(b, 'sub/link')), T3 + 1n],
    ]);
    const d = compareTrees(a, b);
    expect(d).toHaveLength(2);
    expect(d.join('\n')).toMatch(/mtime differs: "empty-dir"/);
    expect(d.join('\n')).toMatch(/mtime differs: "sub\/link"/);
  });

  test('finds a changed symlink target', ({ tmp }) => {
    const { a, b } = pair(tmp);
    const l = path.join(b, 'sub/link');
    fs.unlinkSync(l);
    fs.symlinkSync('../b.txt', l);
    setMtimesNs([
      [Buffer.from(l), T3],
      [Buffer.from(path.join(b, 'sub')), T2],
    ]);
    expect(compareTrees(a, b)).toEqual(['symlink target differs: "sub/link": "../a.txt" vs "../b.txt"']);
  });

  test('finds a broken hard link pair, both ways', ({ tmp }) => {
    const { a, b } = pair(tmp);
    const h = path.join(b, 'sub/hard');
    fs.copyFileSync(path.join(a, 'a.txt'), h + '.tmp');
    fs.chmodSync(h + '.tmp', 0o640);
    fs.renameSync(h + '.tmp', h);
    setMtimesNs([
      [Buffer.from(h), T1],
      [Buffer.from(path.join(b, 'sub')), T2],
    ]);
    expect(compareTrees(a, b)).toEqual(['hard links differ: "a.txt": one inode in a ["a.txt", "sub/hard"], in b ["a.txt"]']);
    expect(compareTrees(b, a)).toEqual(['hard links differ: "a.txt": one inode in a ["a.txt"], in b ["a.txt", "sub/hard"]']);
  });

  test('finds an extra file', ({ tmp }) => {
    const { a, b } = pair(tmp);
    fs.writeFileSync(path.join(b, 'extra'), '');
    expect(compareTrees(a, b, { ignoreRootMtime: true })).toEqual(['only in b: "extra" (file)']);
  });

  test('finds a missing directory', ({ tmp }) => {
    const { a, b } = pair(tmp);
    fs.rmdirSync(path.join(b, 'empty-dir'));
    expect(compareTrees(a, b, { ignoreRootMtime: true })).toEqual(['only in a: "empty-dir" (dir)']);
    expect(compareTrees(a, b)).toHaveLength(2);
  });

  test('finds a type change', ({ tmp }) => {
    const { a, b } = pair(tmp);
    fs.unlinkSync(path.join(b, 'fifo'));
    fs.mkdirSync(path.join(b, 'fifo'));
    expect(compareTrees(a, b, { ignoreRootMtime: true })).toEqual(['type differs: "fifo": fifo vs dir']);
  });

  test('finds a size change', ({ tmp }) => {
    const { a, b } = pair(tmp);
    fs.appendFileSync(path.join(b, 'bin.dat'), 'x');
    setMtimesNs([[Buffer.from(path.join(b, 'bin.dat')), byPath(readTree(a), 'bin.dat').mtimeNs]]);
    const d = compareTrees(a, b);
    expect(d).toHaveLength(2);
    expect(d[0]).toBe('size differs: "bin.dat": 4 vs 5');
    expect(d[1]).toMatch(/^content differs: "bin.dat"/);
  });

  test('finds a difference under a non-UTF-8 name and shows it escaped', ({ tmp }) => {
    const { a, b } = pair(tmp);
    fs.chmodSync(Buffer.concat([Buffer.from(b + '/sub/'), LATIN1]), 0o600);
    expect(compareTrees(a, b)).toEqual([`mode differs: ${JSON.stringify('sub/latin1-\\xe9t\\xe9')}: 0644 vs 0600`]);
  });

  test.runIf(isRoot)('finds an owner change unless owner: false', ({ tmp }) => {
    const { a, b } = pair(tmp);
    fs.lchownSync(path.join(b, 'sub/link'), 4321, 4321);
    expect(compareTrees(a, b)).toEqual([expect.stringMatching(/^owner differs: "sub\/link": 0:0 vs 4321:4321$/)]);
    expect(compareTrees(a, b, { owner: false })).toEqual([]);
  });

  test('ignoreRootMtime ignores the root mtime only', ({ tmp }) => {
    const { a, b } = pair(tmp);
    setMtimesNs([[Buffer.from(b), 5n]]);
    expect(compareTrees(a, b)).toEqual([expect.stringMatching(/^mtime differs: "\."/)]);
    expect(compareTrees(a, b, { ignoreRootMtime: true })).toEqual([]);
  });
});

describe('rsyncDiff', () => {
  test('finds nothing on a cp -a copy', ({ tmp }) => {
    const a = path.join(tmp, 'a');
    sample(a);
    copyTree(a, path.join(tmp, 'b'));
    expect(rsyncDiff(a, path.join(tmp, 'b'))).toEqual([]);
  });

  test('finds a 1-ns mtime difference', ({ tmp }) => {
    const a = path.join(tmp, 'a');
    const b = path.join(tmp, 'b');
    sample(a);
    copyTree(a, b);
    setMtimesNs([[Buffer.from(path.join(b, 'a.txt')), T1 + 1n]]);
    const d = rsyncDiff(a, b);
    expect(d.some((l) => / a\.txt$/.test(l))).toBe(true);
  });

  test('finds a content change of same size and mtime', ({ tmp }) => {
    const a = path.join(tmp, 'a');
    const b = path.join(tmp, 'b');
    sample(a);
    copyTree(a, b);
    rewriteKeepingMtime(path.join(b, 'sub/deeper/file'), 'y');
    expect(rsyncDiff(a, b)).toEqual([expect.stringMatching(/^>fc.* sub\/deeper\/file$/)]);
  });

  test('finds a file only in the destination', ({ tmp }) => {
    const a = path.join(tmp, 'a');
    const b = path.join(tmp, 'b');
    sample(a);
    copyTree(a, b);
    fs.writeFileSync(path.join(b, 'extra'), '');
    setMtimesNs([[Buffer.from(b), byPath(readTree(a), '').mtimeNs]]);
    expect(rsyncDiff(a, b)).toEqual(['*deleting   extra']);
  });

  test('finds a hard link pair of the source that is two inodes in the destination', ({ tmp }) => {
    // (the reverse, two source inodes linked in the destination, is invisible to rsync:
    // compareTrees catches it)
    const a = path.join(tmp, 'a');
    const b = path.join(tmp, 'b');
    sample(a);
    copyTree(a, b);
    const h = path.join(b, 'sub/hard');
    execFileSync('cp', ['-p', path.join(b, 'a.txt'), h + '.tmp']);
    fs.renameSync(h + '.tmp', h);
    setMtimesNs([[path.join(b, 'sub'), T2]]);
    expect(rsyncDiff(a, b)).toEqual([expect.stringMatching(/^hf.* sub\/hard => a\.txt$/)]);
  });

  test('throws clearly on a missing source', ({ tmp }) => {
    expect(() => rsyncDiff(path.join(tmp, 'nope'), tmp)).toThrow(/rsyncDiff: rsync .* exited with 23/);
  });
});

describe('sharedInodes and inode assertions', () => {
  test('counts files linked by cp -al and lists the ones replaced', ({ tmp }) => {
    const a = path.join(tmp, 'a');
    const b = path.join(tmp, 'b');
    sample(a);
    linkTree(a, b);
    expect(sharedInodes(a, b)).toEqual({ same: 5, total: 5, differing: [] });
    // replace one file by a copy, add one new file
    fs.copyFileSync(path.join(a, 'bin.dat'), path.join(b, 'bin.tmp'));
    fs.renameSync(path.join(b, 'bin.tmp'), path.join(b, 'bin.dat'));
    fs.writeFileSync(path.join(b, 'new'), '');
    const s = sharedInodes(a, b);
    expect(s.same).toBe(4);
    expect(s.total).toBe(6);
    expect(s.differing.map((p) => p.toString())).toEqual(['bin.dat', 'new']);
  });

  test('assertSameInode and assertNotSameInode pass and fail as they should', ({ tmp }) => {
    makeTree(tmp, { f: 'x', g: { hardlink: 'f' }, h: 'x', l: { symlink: 'f' } });
    const p = (n: string): string => path.join(tmp, n);
    assertSameInode(p('f'), p('g'));
    assertNotSameInode(p('f'), p('h'));
    assertNotSameInode(p('f'), p('l')); // a symlink is not followed
    expect(() => assertSameInode(p('f'), p('h'))).toThrow(/should be the same inode/);
    expect(() => assertNotSameInode(Buffer.from(p('f')), Buffer.from(p('g')))).toThrow(/should not be/);
  });
});

describe('bench trees', () => {
  test('mktree --odd output is read exactly by readTree, and copies compare equal', ({ tmp }) => {
    const src = path.join(tmp, 'src');
    const summary = mktree(src, { files: 30, odd: true, seed: 7 });
    expect(summary.files).toBe(30 + 9);
    const t = readTree(src);
    const odd = (name: string | Buffer): TreeEntry => byPath(t, Buffer.concat([Buffer.from('odd/'), Buffer.isBuffer(name) ? name : Buffer.from(name)]));
    expect(odd('x'.repeat(255)).sha256).toBeDefined();
    expect(odd('new\nline').type).toBe('file');
    expect(odd(LATIN1).size).toBe(BigInt(4 + LATIN1.length));
    expect(odd('link-dangling').target).toEqual(Buffer.from('/nonexistent/target'));
    const deep = Array.from({ length: 40 }, (_, i) => `deep${String(i).padStart(2, '0')}`).join('/');
    expect(odd(`${deep}/leaf`).type).toBe('file');
    const ws = odd('with space');
    expect(odd('hardlink-to-with-space').ino).toBe(ws.ino);

    const copy = path.join(tmp, 'copy');
    copyTree(src, copy);
    expect(compareTrees(src, copy)).toEqual([]);
    expect(rsyncDiff(src, copy)).toEqual([]);

    mutate(copy, 3, { change: 10 });
    expect(compareTrees(src, copy).length).toBeGreaterThan(0);
    expect(rsyncDiff(src, copy).length).toBeGreaterThan(0);
  });
});

describe('fixture and waiting', () => {
  let previous: string | undefined;
  let previousTmpdir: string | undefined;

  test('tmp is a fresh empty directory; tmpdir() gives another', ({ tmp }) => {
    expect(path.basename(tmp)).toMatch(/^hardsnap-test-/);
    expect(fs.readdirSync(tmp)).toEqual([]);
    makeTree(tmp, { 'ro/f': 'x', ro: { dir: true, mode: 0o500 }, 'ro2/inner': { dir: true, mode: 0 } });
    previous = tmp;
    previousTmpdir = tmpdir();
    expect(previousTmpdir).not.toBe(tmp);
    fs.writeFileSync(path.join(previousTmpdir, 'f'), '');
  });

  test("the previous test's directories, read-only parts included, are gone", () => {
    expect(previous).toBeDefined();
    expect(fs.existsSync(previous!)).toBe(false);
    expect(fs.existsSync(previousTmpdir!)).toBe(false);
  });

  test('waitFor resolves when the predicate holds and rejects after its timeout', async ({ tmp }) => {
    const f = path.join(tmp, 'later');
    setTimeout(() => fs.writeFileSync(f, ''), 50);
    await waitForFile(f, 5_000);
    let n = 0;
    await waitFor(() => ++n >= 3, 1_000, 1);
    expect(n).toBe(3);
    await expect(waitFor(() => false, 50, 5, 'never')).rejects.toThrow(/never not met within 50 ms/);
  });
});

describe('running the CLI', () => {
  test('bin/hardsnap is an executable script', () => {
    fs.accessSync(BIN, fs.constants.X_OK);
    expect(fs.readFileSync(BIN, 'utf8')).toMatch(/^#!/);
  });

  /** A stand-in for bin/hardsnap that shows what the runner gave it. */
  function fakeBin(dir: string): string {
    const p = path.join(dir, 'fake');
    fs.writeFileSync(
      p,
      [
        '#!/bin/sh',
        'echo "args=$*"',
        'echo "cwd=$(pwd)"',
        'echo "FOO=$FOO PATH_SET=${PATH:+yes}"',
        '[ -t 0 ] || [ -t 1 ] || [ -t 2 ] && echo tty || echo notty',
        'echo "stdin=$(cat)"',
        'echo "to stderr" >&2',
        '[ "$1" = sleep ] && { touch "$2"; sleep 30; }', // a grandchild holding the pipes
        '[ "$1" = execsleep ] && exec sleep 30',
        'exit ${EXIT:-0}',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    return p;
  }

  test('hardsnap() passes args, env over process.env, input and cwd, without a TTY', ({ tmp }) => {
    const r = hardsnap(['backup', '--part', 'a b=/x'], {
      bin: fakeBin(tmp),
      env: { FOO: 'bar', EXIT: '23' },
      input: 'hello',
      cwd: tmp,
    });
    expect(r).toEqual({
      code: 23,
      stdout: `args=backup --part a b=/x\ncwd=${tmp}\nFOO=bar PATH_SET=yes\nnotty\nstdin=hello\n`,
      stderr: 'to stderr\n',
    });
  });

  test('hardsnap() reports a timeout as a SIGKILL', ({ tmp }) => {
    const r = hardsnap(['execsleep'], { bin: fakeBin(tmp), timeoutMs: 500 });
    expect(r.signal).toBe('SIGKILL');
    expect(r.code).toBe(137);
    expect(r.stderr).toMatch(/timed out after 500 ms/);
  });

  test('spawnHardsnap() gives a child that can be killed mid-run', async ({ tmp }) => {
    const started = path.join(tmp, 'started');
    const child = spawnHardsnap(['sleep', started], { bin: fakeBin(tmp) });
    await waitForFile(started, 10_000);
    child.killGroup('SIGKILL');
    const t0 = Date.now();
    expect(await child.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(Date.now() - t0).toBeLessThan(5_000); // the sleep it started died too
    expect(child.out.stdout).toMatch(/^args=sleep /);
  });
});
