// Hostile and odd input: names that are not text, names at NAME_MAX, paths past PATH_MAX and
// deeper than 100, symlink loops and links to `/`, sparse and > 4 GiB files, a run as a user
// who owns nothing, and command lines a fuzzer makes up. Each either comes out byte-exact or
// fails one entry (or the whole command line) clearly.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from './helpers/fixture.js';
import { compareTrees, latin1 as b, makeTree } from './helpers/tree.js';
import { rsyncDiff } from './helpers/oracle.js';
import { BIN, REPO_ROOT, hardsnap, spawnHardsnap } from './helpers/run.js';
import { assertNobodyCanRun, hardsnapAsNobody, isRoot, rng, seedOf } from './helpers/robust.js';
import { ST, IO, hashHex, sys } from '../src/fs/native.js';
import { parseScan } from '../src/fs/entry.js';
import { ManifestReader } from '../src/manifest/reader.js';
import { removeTree } from '../src/fs/remove-tree.js';
import { makeSpool, nightlyIn } from './helpers/spool.js';

const { day, at, genName, backup, gen, manifestFile } = nightlyIn({ host: 'h1', part: 'data', month: '2026-01' });

/** `hardsnap restore` of generation n into tmp/restored-n (exit 0 expected); returns the target. */
function restoreGen(tmp: string, n: number): string {
  const to = path.join(tmp, `restored-${n}`);
  const r = hardsnap(['restore', '--spool', path.join(tmp, 'spool'), '--host', 'h1', '--part', 'data', '--at', genName(n), '--to', to]);
  expect(r.code, r.stderr).toBe(0);
  return to;
}

function ok(rc: number, what: string): number {
  if (rc < 0) throw new Error(`${what}: errno ${-rc & 0xffff}`);
  return rc;
}

/**
 * Compares two trees by descriptors only (no path is ever longer than one name), so it reaches
 * past PATH_MAX: names, types, modes, sizes, mtimes to the ns, symlink targets, content hashes.
 */
function compareByFd(a: number, b2: number, rel = '', out: string[] = []): string[] {
  const ra = sys.scandir(a);
  const rb = sys.scandir(b2);
  if (typeof ra === 'number' || typeof rb === 'number') return [...out, `${rel}: scandir failed`];
  const ea = parseScan(ra);
  const eb = parseScan(rb);
  if (ea.map((e) => e.name.toString('latin1')).join('\0') !== eb.map((e) => e.name.toString('latin1')).join('\0')) {
    out.push(`${rel}: names differ`);
    return out;
  }
  const io = new Float64Array(sys.IO_FIELDS);
  for (let i = 0; i < ea.length; i++) {
    const x = ea[i]!;
    const y = eb[i]!;
    const r = `${rel}/${x.name.toString('latin1')}`;
    if (x.type !== y.type || x.mode !== y.mode || x.size !== y.size || x.mtimeSec !== y.mtimeSec || x.mtimeNsec !== y.mtimeNsec) {
      out.push(`${r}: metadata differs`);
      continue;
    }
    if (x.type === 'symlink' && !x.target!.equals(y.target!)) out.push(`${r}: target differs`);
    if (x.type === 'file') {
      ok(sys.hashat(a, x.name, io), 'hashat');
      const ha = hashHex(io[IO.HASH_HI]!, io[IO.HASH_LO]!);
      ok(sys.hashat(b2, y.name, io), 'hashat');
      if (ha !== hashHex(io[IO.HASH_HI]!, io[IO.HASH_LO]!)) out.push(`${r}: content differs`);
    }
    if (x.type === 'dir') {
      const fa = ok(sys.openat(a, x.name, sys.O_RDONLY | sys.O_DIRECTORY | sys.O_NOFOLLOW, 0), 'open');
      const fb = ok(sys.openat(b2, y.name, sys.O_RDONLY | sys.O_DIRECTORY | sys.O_NOFOLLOW, 0), 'open');
      try {
        compareByFd(fa, fb, r, out);
      } finally {
        sys.close(fa);
        sys.close(fb);
      }
    }
  }
  return out;
}

function withDir<T>(p: string, fn: (fd: number) => T): T {
  const fd = ok(sys.openat(sys.AT_FDCWD, p, sys.O_RDONLY | sys.O_DIRECTORY, 0), `open ${p}`);
  try {
    return fn(fd);
  } finally {
    sys.close(fd);
  }
}

describe('names that are bytes', () => {
  test('0xff/0xfe names, names differing only in those bytes, a non-UTF-8 symlink target, 255-byte names, a symlink loop and a link to / are backed up and restored byte-exact', ({
    tmp,
  }) => {
    const src = path.join(tmp, 'src');
    const n255 = 'n'.repeat(254) + '\xff';
    const d255 = 'd'.repeat(255);
    makeTree(src, [
      [b('a\xff'), 'ff'],
      [b('a\xfe'), 'fe'],
      [b('x\xff\xfe/inner\xfe'), 'inside'],
      [b('target-bad'), { symlink: b('\xff\xfe/\x80\xc3(') }],
      [b(n255), 'long name'],
      [b(`${d255}/${n255}`), 'long dir'],
      [b('loop1'), { symlink: 'loop2' }],
      [b('loop2'), { symlink: 'loop1' }],
      [b('root'), { symlink: '/' }],
      [b('-leading dash'), 'dash'],
      [b('new\nline'), 'nl'],
    ]);
    const r = backup(tmp, 1);
    expect(r.code, r.stderr).toBe(0);
    expect(compareTrees(src, gen(tmp, 1))).toEqual([]);
    expect(rsyncDiff(src, gen(tmp, 1))).toEqual([]);
    // the link to / was not followed: the generation holds a symlink, not a copy of /
    expect(fs.readlinkSync(path.join(gen(tmp, 1), 'root'))).toBe('/');
    // and a restore brings back the same bytes (the link to / still a link)
    const restored = restoreGen(tmp, 1);
    expect(compareTrees(src, restored)).toEqual([]);
    expect(rsyncDiff(src, restored)).toEqual([]);
    expect(fs.readlinkSync(path.join(restored, 'root'))).toBe('/');
    // and the manifest holds the same bytes
    const m = ManifestReader.open(manifestFile(tmp, 1));
    try {
      const names = m.dir(Buffer.alloc(0))!.map((e) => e.name.toString('latin1'));
      expect(names).toEqual(expect.arrayContaining(['a\xff', 'a\xfe', n255, d255]));
      expect(m.dir(Buffer.alloc(0))!.find((e) => e.name.equals(b('target-bad')))!.target).toEqual(b('\xff\xfe/\x80\xc3('));
    } finally {
      m.close();
    }
    // the second run links them all
    const r2 = backup(tmp, 2);
    expect(r2.code, r2.stderr).toBe(0);
    expect(fs.statSync(Buffer.from(path.join(gen(tmp, 2), n255), 'latin1')).ino).toBe(fs.statSync(Buffer.from(path.join(gen(tmp, 1), n255), 'latin1')).ino);
  });

  test('255-byte names survive a resumed run (no temporary name grows a 255-byte name past NAME_MAX)', async ({ tmp }) => {
    const src = path.join(tmp, 'src');
    const n255 = 'q'.repeat(255);
    makeTree(src, [
      [b(n255), 'x'.repeat(100_000)],
      [b(`${n255.slice(1)}d/${n255}`), 'deep'],
    ]);
    const c = spawnHardsnap(['backup', '--spool', makeSpool(path.join(tmp, 'spool')), '--host', 'h1', '--part', `data=${src}`], {
      env: { HARDSNAP_NOW: day(1), HARDSNAP_TEST_PAUSE_AT: 'before-publish' },
    });
    const t0 = Date.now();
    while (!c.out.stderr.includes('test pause at') && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 10));
    c.killGroup('SIGKILL');
    await c.exited;
    const r = backup(tmp, 2, ['--verbose']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/resuming/);
    expect(rsyncDiff(src, gen(tmp, 2))).toEqual([]);
  });

  test('a path over 4,096 bytes and 120 levels deep (made with descriptor calls) is backed up and restored exactly', ({ tmp }) => {
    const src = path.join(tmp, 'src');
    fs.mkdirSync(src);
    try {
      deepTree(tmp, src);
    } finally {
      // node's rm cannot reach past PATH_MAX: remove these trees by descriptors
      removeTree(src);
      for (const n of [1, 2]) if (fs.existsSync(gen(tmp, n))) removeTree(gen(tmp, n));
      if (fs.existsSync(path.join(tmp, 'restored-1'))) removeTree(path.join(tmp, 'restored-1'));
    }
  });
});

function deepTree(tmp: string, src: string): void {
  {
    const DEPTH = 120;
    const seg = b('s'.repeat(40) + '\xe9');
    let fd = ok(sys.openat(sys.AT_FDCWD, src, sys.O_RDONLY | sys.O_DIRECTORY, 0), 'open src');
    for (let i = 0; i < DEPTH; i++) {
      ok(sys.mkdirat(fd, seg, 0o755), 'mkdirat');
      const next = ok(sys.openat(fd, seg, sys.O_RDONLY | sys.O_DIRECTORY | sys.O_NOFOLLOW, 0), 'openat');
      if (i === DEPTH - 1) {
        const f = ok(sys.openat(next, 'bottom.txt', sys.O_WRONLY | sys.O_CREAT | sys.O_EXCL, 0o640), 'create');
        fs.writeSync(f, 'at the bottom');
        fs.closeSync(f);
        ok(sys.symlinkat(b('../\xff'), next, 'up'), 'symlinkat');
      }
      sys.close(fd);
      fd = next;
    }
    sys.close(fd);
    expect(DEPTH * (seg.length + 1)).toBeGreaterThan(4096);
    const r = backup(tmp, 1);
    expect(r.code, r.stderr).toBe(0);
    const diffs = withDir(src, (a) => withDir(gen(tmp, 1), (g) => compareByFd(a, g)));
    expect(diffs).toEqual([]);
    // descend to the bottom of the generation by descriptors and read the file
    let g = ok(sys.openat(sys.AT_FDCWD, gen(tmp, 1), sys.O_RDONLY | sys.O_DIRECTORY, 0), 'open gen');
    for (let i = 0; i < DEPTH; i++) {
      const next = ok(sys.openat(g, seg, sys.O_RDONLY | sys.O_DIRECTORY | sys.O_NOFOLLOW, 0), 'openat gen');
      sys.close(g);
      g = next;
    }
    const st = new Float64Array(sys.STAT_FIELDS);
    ok(sys.fstatat(g, 'bottom.txt', st, 1), 'fstatat');
    expect(st[ST.MODE]! & 0o7777).toBe(0o640);
    expect(st[ST.SIZE]).toBe('at the bottom'.length);
    sys.close(g);
    // a restore reaches the bottom too (descriptor-relative all the way)
    const restored = restoreGen(tmp, 1);
    expect(withDir(src, (a) => withDir(restored, (c) => compareByFd(a, c)))).toEqual([]);
    // a second run over it links everything, deep files included
    expect(backup(tmp, 2).code).toBe(0);
    expect(withDir(gen(tmp, 1), (a) => withDir(gen(tmp, 2), (c) => compareByFd(a, c)))).toEqual([]);
  }
}

describe('sparse and huge files', () => {
  test('a sparse 1 GiB file holding a few bytes stays sparse in the generation and in its restore, content exact', ({ tmp }) => {
    const src = path.join(tmp, 'src');
    fs.mkdirSync(src);
    const f = path.join(src, 'sparse.img');
    const fd = fs.openSync(f, 'w');
    fs.writeSync(fd, 'head', 0);
    fs.writeSync(fd, 'middle', 512 << 20);
    fs.ftruncateSync(fd, 1 << 30);
    fs.closeSync(fd);
    const r = backup(tmp, 1);
    expect(r.code, r.stderr).toBe(0);
    const s = fs.statSync(f);
    const g = fs.statSync(path.join(gen(tmp, 1), 'sparse.img'));
    expect(g.size).toBe(1 << 30);
    expect(g.blocks).toBeLessThanOrEqual(s.blocks + 64);
    const io = new Float64Array(sys.IO_FIELDS);
    const hash = (p: string) => withDir(path.dirname(p), (d) => (ok(sys.hashat(d, path.basename(p), io), 'hashat'), hashHex(io[IO.HASH_HI]!, io[IO.HASH_LO]!)));
    expect(hash(path.join(gen(tmp, 1), 'sparse.img'))).toBe(hash(f));
    const restored = path.join(restoreGen(tmp, 1), 'sparse.img');
    expect(fs.statSync(restored).size).toBe(1 << 30);
    expect(fs.statSync(restored).blocks).toBeLessThanOrEqual(s.blocks + 64);
    expect(hash(restored)).toBe(hash(f));
  });

  test('a sparse file over 4 GiB is streamed (peak RSS under 400 MiB): size, bytes past 4 GiB and hash right, still sparse', ({ tmp }) => {
    const src = path.join(tmp, 'src');
    fs.mkdirSync(src);
    const f = path.join(src, 'huge.img');
    const fd = fs.openSync(f, 'w');
    const FOUR = 4 * 1024 ** 3;
    fs.writeSync(fd, 'first', 0);
    fs.writeSync(fd, 'past four gib', FOUR + 12345);
    fs.ftruncateSync(fd, FOUR + (1 << 30));
    fs.closeSync(fd);
    // run under a python parent that reports the child's peak RSS (getrusage RUSAGE_CHILDREN)
    const peak =
      'import resource, subprocess, sys\nrc = subprocess.run(sys.argv[1:]).returncode\nprint(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\nsys.exit(rc)';
    const r = hardsnap(['-c', peak, BIN, 'backup', '--spool', makeSpool(path.join(tmp, 'spool')), '--host', 'h1', '--part', `data=${src}`], {
      bin: 'python3',
      env: { HARDSNAP_NOW: day(1) },
    });
    expect(r.code, r.stderr).toBe(0);
    // never read whole into memory: the 5 GiB file goes through a peak RSS far below its size
    const peakMiB = Number(r.stdout.trim().split('\n').pop()) / 1024;
    expect(peakMiB).toBeGreaterThan(10);
    expect(peakMiB, `peak RSS ${peakMiB.toFixed(0)} MiB`).toBeLessThan(400);
    const copy = path.join(gen(tmp, 1), 'huge.img');
    const st = fs.statSync(copy);
    expect(st.size).toBe(FOUR + (1 << 30));
    expect(st.blocks).toBeLessThanOrEqual(fs.statSync(f).blocks + 64);
    const buf = Buffer.alloc(13);
    const cfd = fs.openSync(copy, 'r');
    fs.readSync(cfd, buf, 0, 13, FOUR + 12345);
    fs.closeSync(cfd);
    expect(buf.toString()).toBe('past four gib');
    // the manifest's hash is the hash of the whole source, holes read as zeros
    const io = new Float64Array(sys.IO_FIELDS);
    withDir(src, (d) => ok(sys.hashat(d, 'huge.img', io), 'hashat'));
    const m = ManifestReader.open(manifestFile(tmp, 1));
    try {
      expect(m.dir(Buffer.alloc(0))!.find((e) => e.name.equals(b('huge.img')))!.hash).toBe(hashHex(io[IO.HASH_HI]!, io[IO.HASH_LO]!));
    } finally {
      m.close();
    }
  });
});

/** A source and a spool in `tmp` for runs as nobody (who must be able to reach them). */
function nobodysSource(tmp: string, tree: Parameters<typeof makeTree>[1]): { src: string; spool: string } {
  assertNobodyCanRun(REPO_ROOT);
  fs.chmodSync(tmp, 0o755);
  const src = path.join(tmp, 'src');
  const spool = makeSpool(path.join(tmp, 'spool'));
  makeTree(src, tree);
  return { src, spool };
}

describe.runIf(isRoot)('a run as a user who owns nothing (setpriv to nobody)', () => {
  test('O_NOATIME refused with EPERM is retried without it; 0500 dirs and 0400 files keep their modes; owners are recorded in the manifest, files belong to the user, and the run says so', ({
    tmp,
  }) => {
    const { src, spool } = nobodysSource(tmp, {
      'roots/owned-by-root.txt': { content: 'root file', mode: 0o644, uid: 0, gid: 0 },
      'mine/ro.txt': { content: 'read only', mode: 0o400, uid: 65534, gid: 65534 },
      mine: { dir: true, mode: 0o500, uid: 65534, gid: 65534 },
      'other-owner.txt': { content: 'x', mode: 0o644, uid: 1234, gid: 4321 },
    });
    fs.chownSync(spool, 65534, 65534);
    const run = (n: number) => hardsnapAsNobody(['backup', '--spool', spool, '--host', 'h1', '--part', `data=${src}`, '--verbose'], at(n));
    const r = run(1);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/not running as root: owners and groups are recorded in the manifest but not applied/);
    const g = gen(tmp, 1);
    expect(compareTrees(src, g, { owner: false })).toEqual([]);
    expect(fs.statSync(path.join(g, 'mine')).mode & 0o7777).toBe(0o500);
    expect(fs.statSync(path.join(g, 'mine/ro.txt')).mode & 0o7777).toBe(0o400);
    for (const p of ['roots/owned-by-root.txt', 'other-owner.txt', 'mine/ro.txt']) expect(fs.statSync(path.join(g, p)).uid).toBe(65534);
    const m = ManifestReader.open(manifestFile(tmp, 1));
    try {
      const other = m.dir(Buffer.alloc(0))!.find((e) => e.name.equals(b('other-owner.txt')))!;
      expect([other.uid, other.gid]).toEqual([1234, 4321]);
      const rootFile = m.dir(b('roots'))!.find((e) => e.name.equals(b('owned-by-root.txt')))!;
      expect([rootFile.uid, rootFile.gid]).toEqual([0, 0]);
    } finally {
      m.close();
    }
    // the next run as the same user reads the read-only generation and links into it
    const r2 = run(2);
    expect(r2.code, r2.stderr).toBe(0);
    expect(fs.statSync(path.join(gen(tmp, 2), 'mine/ro.txt')).ino).toBe(fs.statSync(path.join(g, 'mine/ro.txt')).ino);
  });

  test("a partial another user left (root's, mode 000) in a spool a non-root user backs up: not resumed, left alone, said once; the run builds anew and publishes (a re-attack: every run failed with EACCES, no hint)", ({
    tmp,
  }) => {
    const { src, spool } = nobodysSource(tmp, { 'a.txt': 'a', 'd/b.txt': 'b' });
    fs.chmodSync(src, 0o755);
    fs.chmodSync(path.join(src, 'd'), 0o755);
    fs.chownSync(spool, 65534, 65534);
    const run = (n: number) => hardsnapAsNobody(['backup', '--spool', spool, '--host', 'h1', '--part', `data=${src}`], at(n));
    expect(run(1).code).toBe(0);
    // a run as root was interrupted here: its partial is root's, 000
    const foreign = path.join(spool, 'rsync', 'h1', 'data', `${genName(2)}.partial`);
    fs.mkdirSync(foreign, { mode: 0o700 });
    fs.writeFileSync(path.join(foreign, 'a.txt'), 'root was here');
    fs.chmodSync(foreign, 0o000);
    for (const n of [3, 4]) {
      const r = run(n);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr.split('\n').filter((l) => l.includes(path.basename(foreign)))).toEqual([expect.stringMatching(/warning: .*owned by uid 0.*not resumed/)]);
      expect(compareTrees(src, gen(tmp, n), { owner: false })).toEqual([]);
    }
    expect(fs.statSync(foreign).uid).toBe(0);
    expect(fs.statSync(foreign).mode & 0o7777).toBe(0);
    fs.chmodSync(foreign, 0o700);
    expect(fs.readFileSync(path.join(foreign, 'a.txt'), 'utf8')).toBe('root was here');
    // the user's own partial at mode 000 (a killed run gave its root the source's mode): resumed (a re-attack: EACCES every night)
    fs.rmSync(foreign, { recursive: true });
    const own = path.join(spool, 'rsync', 'h1', 'data', `${genName(5)}.partial`);
    fs.mkdirSync(path.join(own, 'd'), { recursive: true });
    fs.writeFileSync(path.join(own, 'd', 'b.txt'), 'b');
    execFileSync('chown', ['-R', '65534:65534', own]);
    fs.chmodSync(own, 0o000);
    const r = run(6);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.existsSync(own)).toBe(false); // resumed into the new generation
    expect(compareTrees(src, gen(tmp, 6), { owner: false })).toEqual([]);
  });
});

describe('command lines a fuzzer makes up', () => {
  test('seeded random bad argv for backup: exit 1, one line on stderr, nothing created', ({ tmp }) => {
    const seed = seedOf(8);
    const r = rng(seed);
    const src = path.join(tmp, 'src');
    makeTree(src, { 'a.txt': 'a' });
    const spool = makeSpool(path.join(tmp, 'spool'));
    const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
    const junk = () => Array.from({ length: 1 + Math.floor(r() * 8) }, () => pick([...'abcxyz-_=/.:é\\ '])).join('');
    const mutations: (() => string[])[] = [
      () => [`--${junk().replace(/^-+/, '')}zz`],
      () => ['--part'],
      () => ['--wait', pick(['abc', '-1h', '1x', '', 'h', '1.5.2d', '10 years', '∞', '0x10s'])],
      () => [
        '--part',
        pick(
          [
            '=x',
            `=${src}`,
            'data=',
            'data',
            '../x=' + src,
            '.hidden=' + src,
            'last=' + src,
            'a//b=' + src,
            'a/=' + src,
            '/abs=' + src,
            'a/.hardsnap=' + src,
            `${junk()}\0=${src}`,
          ].filter((x) => !x.includes('\0')),
        ),
      ],
      () => ['--host', pick(['', '..', 'a/b', '.', '.hardsnap'])],
      () => ['--spool'],
      () => [pick(['-Z', '--', '---part', '--part=', '--exclude'])],
    ];
    const cases: string[][] = [];
    for (let i = 0; i < 24; i++) {
      const base = ['backup', '--spool', spool, '--host', 'h1', '--part', `data=${src}`];
      const bad = pick(mutations)();
      // the bad words go at a random place after the command (or at the end, for missing values)
      // (a missing value, or a --host that must override the good one, goes last)
      const last = (bad.length === 1 && ['--part', '--spool', '--exclude', '--part='].includes(bad[0]!)) || bad[0] === '--host';
      const at = last ? base.length : 1 + 2 * Math.floor(r() * 4);
      cases.push([...base.slice(0, at), ...bad, ...base.slice(at)]);
    }
    for (const argv of cases) {
      const res = hardsnap(argv, at(1));
      const label = `seed ${seed}: ${JSON.stringify(argv.slice(1))}: ${res.stderr}`;
      expect(res.code, label).toBe(1);
      expect(res.stderr.trim().split('\n'), label).toHaveLength(1);
      expect(res.stderr, label).toMatch(/^hardsnap: /);
      expect(fs.readdirSync(spool), label).toEqual(['.hardsnap-spool']);
    }
  });
});
