// End to end: bin/hardsnap backup as a user runs it, checked with the independent tree
// comparer (bytes, metadata to the nanosecond, hard-link structure, inode sharing) and rsync.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from './helpers/fixture.js';
import { compareTrees, makeTree, setMtimesNs, sharedInodes, assertSameInode, assertNotSameInode, readTree } from './helpers/tree.js';
import { rsyncDiff } from './helpers/oracle.js';
import { BIN, hardsnap } from './helpers/run.js';
import { ManifestReader } from '../src/manifest/reader.js';
import { copyTree, mktree, mutate } from './helpers/bench-tree.js';
import { makeSpool, nightlyIn } from './helpers/spool.js';
import { isRoot } from './helpers/robust.js';

const { at, genName, backup, partDir, gen, manifestFile } = nightlyIn({ host: 'h1', part: 'data', month: '2026-01' });

describe('backup: generations', () => {
  test("an unchanged file's record is carried over exactly; one whose hard link went, or whose mtime moved, is recorded anew", ({ tmp }) => {
    const src = path.join(tmp, 'src');
    makeTree(src, { 'same.txt': 'same\n', 'pair-a': 'pair\n', touched: 'touched\n', 'sub/deep.txt': 'deep\n' });
    fs.linkSync(path.join(src, 'pair-a'), path.join(src, 'pair-b'));
    expect(backup(tmp, 1).code).toBe(0);
    fs.rmSync(path.join(src, 'pair-b'));
    const t = fs.statSync(path.join(src, 'touched')).mtime;
    fs.utimesSync(path.join(src, 'touched'), t, new Date(t.getTime() + 5000));
    expect(backup(tmp, 2).code).toBe(0);
    const read = (n: number, dir: string) => {
      const m = ManifestReader.open(manifestFile(tmp, n));
      try {
        return Object.fromEntries(m.dir(Buffer.from(dir))!.map((e) => [e.name.toString(), e]));
      } finally {
        m.close();
      }
    };
    const [one, two] = [read(1, ''), read(2, '')];
    // (a ctime within a second of a scan is recorded as unknown, 0: these files are that new)
    const noCtime = <T extends object>(e: T) => ({ ...e, ctimeSec: 0, ctimeNsec: 0 });
    expect(noCtime(two['same.txt']!)).toEqual(noCtime(one['same.txt']!));
    expect(Object.values(read(2, 'sub')).map(noCtime)).toEqual(Object.values(read(1, 'sub')).map(noCtime));
    // linked, but no longer one of a group: no link group recorded, and the ctime the unlink of
    // its other name gave it (its attributes were read again)
    expect(one['pair-a']!.linkGroup).toBeGreaterThan(0);
    expect(noCtime(two['pair-a']!)).toEqual(noCtime({ ...one['pair-a']!, linkGroup: 0 }));
    expect(two['pair-b']).toBeUndefined();
    expect(two['touched']!.mtimeSec).toBe(one['touched']!.mtimeSec + 5);
    expect(two['touched']!.ino).not.toBe(one['touched']!.ino); // an inode carries its mtime: written anew
    expect(two['touched']!.hash).toBe(one['touched']!.hash);
    for (const [name, e] of Object.entries(two)) {
      if (e.type === 'file') expect(fs.statSync(path.join(gen(tmp, 2), name)).ino, name).toBe(e.ino);
    }
  });

  test('first generation is a full, exact copy of an odd tree (tree comparer and rsync oracle)', ({ tmp }) => {
    const src = path.join(tmp, 'src');
    mktree(src, { files: 300, odd: true });
    const r = backup(tmp, 1);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(''); // not a TTY, no --verbose: silent on success
    expect(compareTrees(src, gen(tmp, 1))).toEqual([]);
    expect(rsyncDiff(src, gen(tmp, 1))).toEqual([]);
    expect(fs.readlinkSync(path.join(partDir(tmp), 'last'))).toBe(genName(1));
    expect(fs.readdirSync(partDir(tmp)).sort()).toEqual(['.hardsnap', genName(1), 'LATEST', 'last']);
  });

  test('five generations with a day of changes between: each equals its source, unchanged files share inodes', ({ tmp }) => {
    const src = path.join(tmp, 'src');
    mktree(src, { files: 600, odd: true });
    for (let n = 1; n <= 5; n++) {
      if (n > 1) mutate(src, n);
      copyTree(src, path.join(tmp, `copy${n}`));
      const r = backup(tmp, n);
      expect(r.code, r.stderr).toBe(0);
      expect(compareTrees(path.join(tmp, `copy${n}`), gen(tmp, n))).toEqual([]);
      expect(rsyncDiff(src, gen(tmp, n))).toEqual([]);
      if (n > 1) {
        const s = sharedInodes(gen(tmp, n - 1), gen(tmp, n));
        expect(s.same).toBeGreaterThanOrEqual(Math.floor(s.total * 0.95));
        expect(s.same).toBeLessThan(s.total); // mutate changed something: not everything linked
      }
    }
    // every older generation is still exactly what it was
    for (let n = 1; n <= 5; n++) expect(compareTrees(path.join(tmp, `copy${n}`), gen(tmp, n))).toEqual([]);
    const list = JSON.parse(hardsnap(['list', '--spool', path.join(tmp, 'spool'), '--host', 'h1', '--json']).stdout);
    expect(list.map((g: { name: string }) => g.name)).toEqual([1, 2, 3, 4, 5].map(genName));
    expect(
      list.every(
        (g: { complete: boolean; part: string; path: string; time: string }) =>
          g.complete && g.part === 'data' && path.isAbsolute(g.path) && !Number.isNaN(Date.parse(g.time)),
      ),
    ).toBe(true);
  });

  test('a metadata-only change (chmod, chown, mtime) gives the new generation a new inode; unchanged ones are links', ({ tmp }) => {
    const src = path.join(tmp, 'src');
    makeTree(src, { 'a.txt': 'a', 'b.txt': 'b', 'c.txt': 'c', 'd.txt': 'd', 'same.txt': 'same' });
    expect(backup(tmp, 1).code).toBe(0);
    fs.chmodSync(path.join(src, 'a.txt'), 0o600);
    if (isRoot) fs.chownSync(path.join(src, 'b.txt'), 1234, 5678);
    setMtimesNs([[Buffer.from(path.join(src, 'c.txt')), 1_700_000_000_123_456_789n]]);
    fs.writeFileSync(path.join(src, 'd.txt'), 'D');
    expect(backup(tmp, 2).code).toBe(0);
    const [g1, g2] = [gen(tmp, 1), gen(tmp, 2)];
    assertNotSameInode(path.join(g1, 'a.txt'), path.join(g2, 'a.txt'));
    if (isRoot) assertNotSameInode(path.join(g1, 'b.txt'), path.join(g2, 'b.txt'));
    assertNotSameInode(path.join(g1, 'c.txt'), path.join(g2, 'c.txt'));
    assertNotSameInode(path.join(g1, 'd.txt'), path.join(g2, 'd.txt'));
    assertSameInode(path.join(g1, 'same.txt'), path.join(g2, 'same.txt'));
    // the older generation's inode was not touched by the chmod
    expect(fs.statSync(path.join(g1, 'a.txt')).mode & 0o777).toBe(0o644);
    expect(compareTrees(src, g2)).toEqual([]);
  });

  test('metadata is kept: ns mtimes of files, dirs and symlinks, modes, owners, empty dirs, dangling symlinks, hard links, FIFOs and sockets', ({ tmp }) => {
    const src = path.join(tmp, 'src');
    makeTree(src, {
      'd/ro.txt': { content: 'read only', mode: 0o400, mtime: 1_600_000_000_000_000_001n },
      'd/suid': { content: '#!/bin/sh\n', mode: 0o4755 },
      d: { dir: true, mode: 0o500, mtime: 1_600_000_000_999_999_999n },
      empty: { dir: true, mtime: 1_500_000_000_000_000_007n },
      link: { symlink: 'd/ro.txt', mtime: 1_400_000_000_000_000_003n },
      dangling: { symlink: '/nonexistent/\xe9', mtime: 1_400_000_000_000_000_004n },
      h1: 'shared content',
      h2: { hardlink: 'h1' },
      fifo: { fifo: true, mode: 0o640 },
      ...(isRoot ? { owned: { content: 'x', uid: 4242, gid: 4343 } } : {}),
    });
    execFileSync('python3', ['-c', 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])', path.join(src, 'sock')]);
    const r = backup(tmp, 1);
    expect(r.code, r.stderr).toBe(0);
    expect(compareTrees(src, gen(tmp, 1))).toEqual([]);
    expect(rsyncDiff(src, gen(tmp, 1))).toEqual([]);
    assertSameInode(path.join(gen(tmp, 1), 'h1'), path.join(gen(tmp, 1), 'h2'));
    expect(fs.lstatSync(path.join(gen(tmp, 1), 'sock')).isSocket()).toBe(true);
    // the second generation links both names of the hard-linked pair to one inode again
    expect(backup(tmp, 2).code).toBe(0);
    assertSameInode(path.join(gen(tmp, 2), 'h1'), path.join(gen(tmp, 2), 'h2'));
    assertSameInode(path.join(gen(tmp, 1), 'h1'), path.join(gen(tmp, 2), 'h2'));
    expect(compareTrees(src, gen(tmp, 2))).toEqual([]);
  });

  test.runIf(isRoot)('device nodes are recreated when root', ({ tmp }) => {
    const src = path.join(tmp, 'src');
    fs.mkdirSync(src);
    execFileSync('mknod', [path.join(src, 'null'), 'c', '1', '3']);
    expect(backup(tmp, 1).code).toBe(0);
    const st = fs.lstatSync(path.join(gen(tmp, 1), 'null'));
    expect(st.isCharacterDevice()).toBe(true);
    expect(st.rdev).toBe(fs.lstatSync(path.join(src, 'null')).rdev);
  });

  test('deleted entries are absent from the next generation; a file replaced by a directory is handled', ({ tmp }) => {
    const src = path.join(tmp, 'src');
    makeTree(src, { 'gone.txt': 'x', 'x/y.txt': 'y', flip: 'file first' });
    expect(backup(tmp, 1).code).toBe(0);
    fs.rmSync(path.join(src, 'gone.txt'));
    fs.rmSync(path.join(src, 'x'), { recursive: true });
    fs.rmSync(path.join(src, 'flip'));
    makeTree(src, { 'flip/inner': 'now a dir' });
    expect(backup(tmp, 2).code).toBe(0);
    expect(compareTrees(src, gen(tmp, 2))).toEqual([]);
    expect(fs.existsSync(path.join(gen(tmp, 1), 'gone.txt'))).toBe(true);
  });

  test('the previous manifest missing or damaged: the next run compares with the generation itself, says so, and still links', ({ tmp }) => {
    const src = path.join(tmp, 'src');
    mktree(src, { files: 100 });
    expect(backup(tmp, 1).code).toBe(0);
    const mf = manifestFile(tmp, 1);
    fs.rmSync(mf);
    const r2 = backup(tmp, 2, ['--verbose']);
    expect(r2.code).toBe(0);
    expect(r2.stderr).toMatch(/manifest of 2026-01-01T030000Z is missing; comparing with the generation itself/);
    expect(sharedInodes(gen(tmp, 1), gen(tmp, 2)).same).toBe(sharedInodes(gen(tmp, 1), gen(tmp, 2)).total);
    // damage the second one: flip a byte in its middle
    const mf2 = manifestFile(tmp, 2);
    const b = fs.readFileSync(mf2);
    b[Math.floor(b.length / 2)] ^= 0xff;
    fs.writeFileSync(mf2, b);
    const r3 = backup(tmp, 3, ['--verbose']);
    expect(r3.code).toBe(0);
    expect(r3.stderr).toMatch(/unreadable|damaged|checksum|comparing with/);
    const s = sharedInodes(gen(tmp, 2), gen(tmp, 3));
    expect(s.same).toBe(s.total);
    expect(rsyncDiff(src, gen(tmp, 3))).toEqual([]);
  });

  test('--exclude and --exclude-from leave entries out; --dry-run prints the plan and writes nothing', ({ tmp }) => {
    const src = path.join(tmp, 'src');
    makeTree(src, { 'keep.txt': 'k', 'a.tmp': 't', 'cache/x': 'x', 'sub/cache/y': 'y', 'sub/tmp/z': 'z', tmp: 'file named tmp' });
    fs.writeFileSync(path.join(tmp, 'ex'), '# comment\n/cache\n\ntmp/\n');
    const dry = backup(tmp, 1, ['--exclude', '*.tmp', '--exclude-from', path.join(tmp, 'ex'), '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/copy\s+data\/keep\.txt/);
    expect(dry.stdout).not.toMatch(/a\.tmp/);
    expect(fs.existsSync(path.join(tmp, 'spool', 'rsync'))).toBe(false);
    const r = backup(tmp, 1, ['--exclude', '*.tmp', '--exclude-from', path.join(tmp, 'ex')]);
    expect(r.code, r.stderr).toBe(0);
    const names = readTree(gen(tmp, 1))
      .map((e) => e.relPath.toString())
      .filter(Boolean)
      .sort();
    expect(names).toEqual(['keep.txt', 'sub', 'sub/cache', 'sub/cache/y', 'tmp']);
  });

  test('--dry-run says a further name of a source inode is linked to its first, as the run makes it (a review of issue 19: it said "copy (new)" for each name)', ({
    tmp,
  }) => {
    const src = path.join(tmp, 'src');
    makeTree(src, { h1: 'one inode\n', 'd/plain': 'p\n' });
    fs.linkSync(path.join(src, 'h1'), path.join(src, 'd/h2'));
    fs.linkSync(path.join(src, 'h1'), path.join(src, 'd/h3'));
    const dry = backup(tmp, 1, ['--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    const lines = dry.stdout.split('\n').filter((l) => /h[123]/.test(l));
    expect(lines).toHaveLength(3);
    // the first name in walk order is written; the others are its names
    expect(lines.filter((l) => /^copy\s/.test(l))).toHaveLength(1);
    const first = /^copy\s+data\/(\S+)/.exec(lines.find((l) => /^copy\s/.test(l))!)![1]!;
    expect(lines.filter((l) => l.startsWith('link ')).sort()).toEqual(
      ['h1', 'd/h2', 'd/h3']
        .filter((n) => n !== first)
        .map((n) => `link    data/${n}  (another name of data/${first})`)
        .sort(),
    );
    const real = backup(tmp, 1, ['--verbose']);
    expect(real.code, real.stderr).toBe(0);
    for (const n of ['h1', 'd/h2', 'd/h3'].filter((x) => x !== first)) expect(real.stdout).toContain(`hf+++++++++ data/${n} => data/${first}`);
  });

  test('a directory in the part named like a partial but not a generation (notes.partial) is not ours: backups leave it, and resume only what a run left', ({
    tmp,
  }) => {
    const src = path.join(tmp, 'src');
    makeTree(src, { 'a.txt': 'a' });
    expect(backup(tmp, 1).code).toBe(0);
    const notes = path.join(partDir(tmp), 'notes.partial');
    fs.mkdirSync(notes);
    fs.writeFileSync(path.join(notes, 'keep.txt'), 'an admin put this here');
    const r = backup(tmp, 2, ['--verbose']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/interrupted generation notes\.partial/);
    expect(fs.readFileSync(path.join(notes, 'keep.txt'), 'utf8')).toBe('an admin put this here');
    expect(fs.readlinkSync(path.join(partDir(tmp), 'last'))).toBe(genName(2));
  });

  test('a file named like a generation or a partial is not one: not listed, not resumed into or renamed, and backups go on (a re-attack: every backup failed with ENOTDIR)', ({
    tmp,
  }) => {
    const src = path.join(tmp, 'src');
    makeTree(src, { 'a.txt': 'a' });
    expect(backup(tmp, 1).code).toBe(0);
    const partialFile = path.join(partDir(tmp), `${genName(1)}-01.partial`);
    const genFile = path.join(partDir(tmp), '2026-01-01T000000Z');
    fs.writeFileSync(partialFile, 'not ours\n');
    fs.writeFileSync(genFile, 'not ours either\n');
    const list = hardsnap(['list', '--spool', path.join(tmp, 'spool'), '--host', 'h1']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).not.toContain(`${genName(1)}-01`);
    expect(list.stdout).not.toContain('2026-01-01T000000Z');
    expect(list.stdout).toContain(genName(1));
    for (const n of [2, 3]) {
      const r = backup(tmp, n);
      expect(r.code, r.stderr).toBe(0);
      expect(fs.readlinkSync(path.join(partDir(tmp), 'last'))).toBe(genName(n));
    }
    expect(fs.readFileSync(partialFile, 'utf8')).toBe('not ours\n');
    expect(fs.readFileSync(genFile, 'utf8')).toBe('not ours either\n');
  });

  test("a file or FIFO with tonight's generation name (or its partial's) is in the way: the run takes the next name (a third attack: ENOTDIR at publishing, exit 2, every night)", ({
    tmp,
  }) => {
    const src = path.join(tmp, 'src');
    makeTree(src, { 'a.txt': 'a' });
    expect(backup(tmp, 1).code).toBe(0);
    fs.writeFileSync(path.join(partDir(tmp), genName(2)), 'not ours\n');
    execFileSync('mkfifo', [path.join(partDir(tmp), `${genName(3)}.partial`)]);
    for (const n of [2, 3]) {
      const r = backup(tmp, n);
      expect(r.code, r.stderr).toBe(0);
      const last = fs.readlinkSync(path.join(partDir(tmp), 'last'));
      expect(last.startsWith(genName(n)) && last !== genName(n), last).toBe(true);
    }
    expect(fs.readFileSync(path.join(partDir(tmp), genName(2)), 'utf8')).toBe('not ours\n');
    expect(fs.lstatSync(path.join(partDir(tmp), `${genName(3)}.partial`)).isFIFO()).toBe(true);
  });

  test('a spool inside the source is excluded from it, and the run says so', ({ tmp }) => {
    const src = path.join(tmp, 'src');
    makeTree(src, { 'a.txt': 'a' });
    const spool = makeSpool(path.join(src, 'backups'));
    const r = hardsnap(['backup', '--spool', spool, '--host', 'h1', '--part', `self=${src}`, '--verbose'], at(1));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/spool .* lies inside the source of part 'self': excluded/);
    const g = path.join(spool, 'rsync', 'h1', 'self', genName(1));
    expect(fs.readdirSync(g).sort()).toEqual(['a.txt']);
    expect(hardsnap(['backup', '--spool', spool, '--host', 'h1', '--part', `self=${src}`], at(2)).code).toBe(0);
  });

  test.runIf(isRoot)(
    "--one-file-system keeps the mount point as an empty directory, with the mounted root's mode and mtime, and does not descend",
    ({ tmp }) => {
      const src = path.join(tmp, 'src');
      makeTree(src, { 'a.txt': 'a', 'mnt/.keep': '' });
      fs.rmSync(path.join(src, 'mnt/.keep'));
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0751', 'tmpfs', path.join(src, 'mnt')]);
      try {
        fs.writeFileSync(path.join(src, 'mnt', 'other-fs.txt'), 'x');
        fs.utimesSync(path.join(src, 'mnt'), 1_600_000_000, 1_600_000_000);
        const r = backup(tmp, 1, ['--one-file-system']);
        expect(r.code, r.stderr).toBe(0);
        expect(fs.readdirSync(path.join(gen(tmp, 1), 'mnt'))).toEqual([]);
        // it was left 0700 with the run's time
        const st = fs.statSync(path.join(gen(tmp, 1), 'mnt'));
        expect([(st.mode & 0o7777).toString(8), st.mtimeMs]).toEqual(['751', 1_600_000_000_000]);
        expect(backup(tmp, 2).code).toBe(0);
        expect(fs.readdirSync(path.join(gen(tmp, 2), 'mnt'))).toEqual(['other-fs.txt']);
      } finally {
        execFileSync('umount', [path.join(src, 'mnt')]);
      }
    },
  );

  test.runIf(spawnSync('strace', ['-V']).status === 0)(
    "one reading of the spool per run: the part's directory and its manifests are each listed once (strace), and what a killed run left there is still removed",
    ({ tmp }) => {
      const src = path.join(tmp, 'src');
      makeTree(src, { 'a.txt': 'a', 'd/b.txt': 'b' });
      expect(backup(tmp, 1).code).toBe(0);
      const pdir = partDir(tmp);
      // what a run killed while publishing, or while writing its manifest, leaves
      fs.symlinkSync(genName(1), path.join(pdir, '.last.999999.tmp'));
      fs.writeFileSync(path.join(pdir, '.LATEST.999999.tmp'), `${genName(1)}\n`);
      fs.writeFileSync(path.join(pdir, '.hardsnap', 'manifests', `${genName(1)}-01.hsm.tmp`), 'half a manifest');
      const out = path.join(tmp, 'strace');
      const r = spawnSync(
        'strace',
        ['-f', '-qq', '-e', 'trace=openat', '-o', out, BIN, 'backup', '--spool', path.join(tmp, 'spool'), '--host', 'h1', '--part', `data=${src}`],
        {
          env: { ...process.env, ...at(2).env },
          encoding: 'utf8',
        },
      );
      expect(r.status, r.stderr).toBe(0);
      // a listing is an opendir (O_NONBLOCK); the run opens the directories by descriptor too
      const listed = (dir: string) =>
        fs
          .readFileSync(out, 'utf8')
          .split('\n')
          .filter((l) => l.includes(`"${dir}", O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_DIRECTORY`)).length;
      expect(listed(pdir)).toBe(1);
      expect(listed(path.join(pdir, '.hardsnap', 'manifests'))).toBe(1);
      expect(fs.readdirSync(pdir).sort()).toEqual(['.hardsnap', genName(1), genName(2), 'LATEST', 'last'].sort());
      expect(fs.readdirSync(path.join(pdir, '.hardsnap', 'manifests')).sort()).toEqual([`${genName(1)}.hsm`, `${genName(2)}.hsm`]);
      expect(rsyncDiff(src, gen(tmp, 2))).toEqual([]);
    },
  );

  test('two parts in one run share one generation name; `last` of each is relative', ({ tmp }) => {
    makeTree(path.join(tmp, 'a'), { f: '1' });
    makeTree(path.join(tmp, 'b'), { g: '2' });
    const r = hardsnap(
      [
        'backup',
        '--spool',
        makeSpool(path.join(tmp, 'spool')),
        '--host',
        'h1',
        '--part',
        `mail/imap=${path.join(tmp, 'a')}`,
        '--part',
        `bm/pgsql=${path.join(tmp, 'b')}`,
      ],
      at(1),
    );
    expect(r.code, r.stderr).toBe(0);
    for (const p of ['mail/imap', 'bm/pgsql']) {
      expect(fs.readlinkSync(path.join(partDir(tmp, p), 'last'))).toBe(genName(1));
    }
    const list = JSON.parse(hardsnap(['list', '--spool', path.join(tmp, 'spool'), '--host', 'h1', '--json']).stdout);
    expect(list.map((g: { part: string }) => g.part).sort()).toEqual(['bm/pgsql', 'mail/imap']);
  });

  test('--parallel-parts builds every part at once, each identical to its source, under one name', ({ tmp }) => {
    mktree(path.join(tmp, 'a'), { files: 300, odd: true });
    mktree(path.join(tmp, 'b'), { files: 300, seed: 9 });
    const args = [
      'backup',
      '--spool',
      makeSpool(path.join(tmp, 'spool')),
      '--host',
      'h1',
      '--parallel-parts',
      '--part',
      `a=${path.join(tmp, 'a')}`,
      '--part',
      `b=${path.join(tmp, 'b')}`,
    ];
    for (const d of [1, 2]) {
      if (d === 2) mutate(path.join(tmp, 'a'), 2);
      const r = hardsnap(args, at(d));
      expect(r.code, r.stderr).toBe(0);
      for (const p of ['a', 'b']) {
        expect(compareTrees(path.join(tmp, p), gen(tmp, d, p))).toEqual([]);
        expect(fs.readlinkSync(path.join(partDir(tmp, p), 'last'))).toBe(genName(d));
      }
    }
    const s = sharedInodes(gen(tmp, 1, 'b'), gen(tmp, 2, 'b'));
    expect(s.same).toBe(s.total);
  });

  test("--no-parallel-parts overrides the config's parallel-parts: true (the parts are built one after the other)", ({ tmp }) => {
    mktree(path.join(tmp, 'a'), { files: 300, seed: 4 });
    mktree(path.join(tmp, 'b'), { files: 300, seed: 9 });
    const cfg = path.join(tmp, 'hs.yaml');
    fs.writeFileSync(
      cfg,
      `spool: ${makeSpool(path.join(tmp, 'spool'))}\nhost: h1\nparallel-parts: true\nparts:\n  a: ${path.join(tmp, 'a')}\n  b: ${path.join(tmp, 'b')}\n`,
    );
    const r = hardsnap(['backup', '--config', cfg, '--no-parallel-parts', '--verbose'], at(1));
    expect(r.code, r.stderr).toBe(0);
    // one after the other: every itemized line of part a comes before the first of part b
    const parts = r.stdout
      .split('\n')
      .filter((l) => /^(>f|c[dLSD]|h[fLSD])/.test(l))
      .map((l) => l.slice(12).split('/')[0]);
    expect(parts.length).toBeGreaterThan(600);
    expect(parts.lastIndexOf('a')).toBeLessThan(parts.indexOf('b'));
  });

  test('a now that is not later than the newest generation is refused (exit 2), nothing written', ({ tmp }) => {
    makeTree(path.join(tmp, 'src'), { f: '1' });
    expect(backup(tmp, 5).code).toBe(0);
    const r = backup(tmp, 5);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/not later than the newest generation/);
    expect(backup(tmp, 4).code).toBe(2);
    expect(fs.readdirSync(partDir(tmp)).sort()).toEqual(['.hardsnap', genName(5), 'LATEST', 'last']);
  });

  test('--verbose under cron prints a summary; a TTY-less successful run prints nothing', ({ tmp }) => {
    makeTree(path.join(tmp, 'src'), { f: '1' });
    const quiet = backup(tmp, 1);
    expect(quiet.stdout + quiet.stderr).toBe('');
    const v = backup(tmp, 2, ['--verbose']);
    expect(v.stdout).toMatch(/2026-01-02T030000Z: data: 1 entries, 1 linked, 0 written/);
    const j = backup(tmp, 3, ['--json']);
    const o = JSON.parse(j.stdout);
    expect(o.generation).toBe(genName(3));
    expect(o.parts[0].stats.linked).toBe(1);
  });
});

describe('backup: bad input is one clear line, exit 1, nothing created', () => {
  const cases: [string, (tmp: string) => string[], RegExp][] = [
    ['a source that is not a directory', (t) => ['--part', `x=${path.join(t, 'file')}`], /not a directory/],
    ['a source inside the spool', (t) => ['--part', `x=${path.join(t, 'spool', 'inner')}`], /lies inside the spool/],
    ['a nested part', (t) => ['--part', `bm=${path.join(t, 'src')}`, '--part', `bm/pgsql=${path.join(t, 'src')}`], /nest/],
    ['a reserved part name', (t) => ['--part', `mail/last=${path.join(t, 'src')}`], /'last' is reserved/],
    ['a part name with ..', (t) => ['--part', `../x=${path.join(t, 'src')}`], /not allowed/],
    ['a hidden part name', (t) => ['--part', `.x=${path.join(t, 'src')}`], /starts with '\.'/],
    ['the same part twice', (t) => ['--part', `a=${path.join(t, 'src')}`, '--part', `a=${path.join(t, 'src')}`], /given twice/],
    ['a malformed --part', () => ['--part', 'nopath'], /expected NAME=PATH/],
    ['no part at all', () => [], /at least one --part/],
    ['an unknown option', () => ['--frobnicate'], /unknown option/],
    ['a bad --host', (t) => ['--host', '../x', '--part', `a=${path.join(t, 'src')}`], /invalid host/],
  ];
  test.for(cases)('%s', ([_name, args, msg], { tmp }) => {
    makeTree(tmp, { 'src/f': '1', file: 'x' });
    fs.mkdirSync(path.join(makeSpool(path.join(tmp, 'spool')), 'inner'));
    const before = fs.readdirSync(path.join(tmp, 'spool'));
    const r = hardsnap(['backup', '--spool', path.join(tmp, 'spool'), '--host', 'h1', ...args(tmp)], at(1));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(msg);
    expect(r.stderr.trim().split('\n').length).toBeLessThanOrEqual(2);
    expect(fs.readdirSync(path.join(tmp, 'spool'))).toEqual(before);
  });

  test('a missing source root (an unmounted file system) fails with exit 2 and writes nothing', ({ tmp }) => {
    const r = backup(tmp, 1, [], {}, path.join(tmp, 'not-mounted'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/source of part 'data' is missing/);
    expect(fs.readdirSync(path.join(tmp, 'spool'))).toEqual(['.hardsnap-spool']);
  });

  test('an empty source root is refused (exit 2) unless --allow-empty; last stays', ({ tmp }) => {
    makeTree(path.join(tmp, 'src'), { f: '1' });
    expect(backup(tmp, 1).code).toBe(0);
    fs.rmSync(path.join(tmp, 'src', 'f'));
    const r = backup(tmp, 2);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/is empty/);
    expect(fs.readlinkSync(path.join(partDir(tmp), 'last'))).toBe(genName(1));
    expect(backup(tmp, 2, ['--allow-empty']).code).toBe(0);
  });

  test('an empty or missing source root never makes --prune remove generations (exit 2, all kept)', ({ tmp }) => {
    makeTree(path.join(tmp, 'src'), { f: '1' });
    for (const n of [1, 2, 3]) expect(backup(tmp, n).code).toBe(0);
    const gens = () =>
      fs
        .readdirSync(partDir(tmp))
        .filter((n) => /Z$/.test(n))
        .sort();
    const before = gens();
    expect(before).toHaveLength(3);
    fs.rmSync(path.join(tmp, 'src', 'f'));
    const empty = backup(tmp, 4, ['--prune', '--keep-last', '1']);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/is empty/);
    expect(gens()).toEqual(before);
    fs.rmSync(path.join(tmp, 'src'), { recursive: true });
    const missing = backup(tmp, 5, ['--prune', '--keep-last', '1']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/is missing/);
    expect(gens()).toEqual(before);
    expect(fs.readlinkSync(path.join(partDir(tmp), 'last'))).toBe(genName(3));
  });

  test.runIf(isRoot)('a spool that is not writable (read-only mount) is refused with exit 1', ({ tmp }) => {
    makeTree(tmp, { 'src/f': '1' });
    const spool = path.join(tmp, 'ro');
    fs.mkdirSync(spool);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', spool]);
    try {
      makeSpool(spool);
      execFileSync('mount', ['-o', 'remount,ro', spool]);
      const r = hardsnap(['backup', '--spool', spool, '--host', 'h1', '--part', `a=${path.join(tmp, 'src')}`], at(1));
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/not writable/);
    } finally {
      execFileSync('umount', [spool]);
    }
  });
});

describe('backup: runs never overlap', () => {
  test('a second run exits 3 naming the holder; a stale lock of a dead process is taken over', ({ tmp }) => {
    makeTree(path.join(tmp, 'src'), { f: '1' });
    expect(backup(tmp, 1).code).toBe(0);
    const lock = path.join(tmp, 'spool', 'rsync', 'h1', '.hardsnap', 'lock');
    // a live holder: this test process itself
    const me = {
      pid: process.pid,
      pidStart: null,
      hostname: (require('node:os') as typeof import('node:os')).hostname(),
      bootId: null,
      started: 'now',
      command: 'hardsnap backup (test holder)',
    };
    fs.writeFileSync(lock, JSON.stringify(me));
    const held = backup(tmp, 2);
    expect(held.code).toBe(3);
    expect(held.stderr).toMatch(new RegExp(`holds the lock.*pid ${process.pid}`));
    // a dead holder: a pid that does not exist
    const dead = spawnSync('true');
    fs.writeFileSync(lock, JSON.stringify({ ...me, pid: dead.pid }));
    const r = backup(tmp, 2, ['--verbose']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/took over a stale lock/);
    expect(fs.existsSync(lock)).toBe(false);
  });

  test('--wait waits for the holder to finish', async ({ tmp }) => {
    makeTree(path.join(tmp, 'src'), { f: '1' });
    expect(backup(tmp, 1).code).toBe(0);
    const lock = path.join(tmp, 'spool', 'rsync', 'h1', '.hardsnap', 'lock');
    fs.writeFileSync(
      lock,
      JSON.stringify({ pid: process.pid, pidStart: null, hostname: (await import('node:os')).hostname(), bootId: null, started: 'now', command: 'test' }),
    );
    setTimeout(() => fs.rmSync(lock), 1500);
    const { spawnHardsnap } = await import('./helpers/run.js');
    const child = spawnHardsnap(
      ['backup', '--spool', path.join(tmp, 'spool'), '--host', 'h1', '--part', `data=${path.join(tmp, 'src')}`, '--wait', '30s'],
      at(2),
    );
    const { code } = await child.exited;
    expect(code, child.out.stderr).toBe(0);
    expect(fs.existsSync(gen(tmp, 2))).toBe(true);
  });
});
