// Clones where the spool has them (issue 20, docs/CONTENT.md "Clones"): on XFS and btrfs loop
// images, a chmod of every file (~200 MB) and a renamed 100 MB file with a new mtime take ~0
// new data blocks (df), written as new inodes that share the earlier data; on ext4 the same
// scenario copies as before and counts no clone. Every generation passes the oracles, and the
// previous generation's files are left exactly as they were.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, vi } from 'vitest';
import { describe, expect, test } from './helpers/fixture.js';
import { linksDiff, rsyncDiff } from './helpers/oracle.js';
import { hardsnap, pastRacyWindow, spawnHardsnap } from './helpers/run.js';
import { makeSpool, nightly } from './helpers/spool.js';
import { readRunsLog } from './helpers/ops.js';
import { assertNotSameInode, setMtimesNs } from './helpers/tree.js';
import { mountLoop, usedBytes, type LoopFs, type LoopKind } from './helpers/loop-fs.js';
import { runBackup } from '../src/backup/run.js';
import { DRIFT, IO, STAGE, SETMETA, splitStaged, sys } from '../src/fs/native.js';
import { packLinkRecords } from '../src/apply/link-records.js';
import { sameContentAsRecord } from '../src/plan/decide.js';
import type { Meta } from '../src/fs/entry.js';
import type { ManifestEntry } from '../src/manifest/format.js';
import { FLAG } from '../src/manifest/format.js';
import { CLONE_MIN_SIZE } from '../src/apply/dedup-index.js';
import type { BuildStats } from '../src/apply/types.js';

const MiB = 1 << 20;
/** what a clone may cost in data blocks (metadata, manifests, btrfs's tree blocks) */
const CLONE_SLACK = 5 * MiB;
const T0 = 1_700_000_000_000_000_000n;

const mounts: LoopFs[] = [];
afterAll(() => {
  for (const m of mounts) m.unmount();
});
afterEach(() => {
  vi.restoreAllMocks();
});

/**
 * Runs `body` with a loop-mounted file system of `kind` (skipped, saying why, where none can be
 * mounted); unmounted after, before the test's directory is removed.
 */
async function onLoop(tmp: string, kind: LoopKind, sizeMiB: number, skip: (why: string) => void, body: (m: LoopFs) => void | Promise<void>): Promise<void> {
  const m = mountLoop(tmp, kind, sizeMiB);
  if (typeof m === 'string') return skip(m);
  mounts.push(m);
  try {
    await body(m);
  } finally {
    m.unmount();
  }
}

// backupJson(spool, src, n, extra?): the backup of day n with --json, which must exit 0 (5 minutes
// allowed: the loop images are slow), its part's generation and stats, and spoolClones
const { day, at, dayEnv, genName, backup, backupJson } = nightly<BuildStats>({ host: 'h', part: 'p', month: '2026-11', timeoutMs: 300_000 });

/** The last line of runs.jsonl, part p. */
function lastRun(spool: string): Record<string, unknown> {
  return readRunsLog<{ parts: Record<string, Record<string, unknown>> }>(spool, 'h').at(-1)!.parts.p!;
}

/**
 * Inode, mode, mtime and size of every file of a generation: what a run must leave as it was;
 * with `ctime`, the ctime too (a clone only reads its source; a hard link to it moves its ctime).
 */
function inodesOf(gen: string, ctime = false): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    for (const d of fs.readdirSync(path.join(gen, rel), { withFileTypes: true })) {
      const r = path.join(rel, d.name);
      if (d.isDirectory()) walk(r);
      else {
        const s = fs.lstatSync(path.join(gen, r), { bigint: true });
        out.set(r, `${s.ino} ${s.mode.toString(8)} ${s.mtimeNs} ${s.size}${ctime ? ` ${s.ctimeNs}` : ''}`);
      }
    }
  };
  walk('');
  return out;
}

function expectOracles(src: string, gen: string): void {
  expect(rsyncDiff(src, gen)).toEqual([]);
  expect(linksDiff(src, gen)).toEqual([]);
}

/**
 * ~100 MB in ten files of distinct sizes (a size shared by many files is no clue for a clone),
 * one 100 MB file, a small file and a hard-linked pair.
 */
function makeSource(src: string): void {
  fs.mkdirSync(path.join(src, 'docs'), { recursive: true });
  fs.mkdirSync(path.join(src, 'media'), { recursive: true });
  for (let i = 0; i < 10; i++) fs.writeFileSync(path.join(src, 'docs', `f${i}`), randomBytes(10 * MiB + i * 4099));
  fs.writeFileSync(path.join(src, 'media', 'movie.bin'), randomBytes(100 * MiB));
  fs.writeFileSync(path.join(src, 'docs', 'small.txt'), 'a small file\n');
  fs.linkSync(path.join(src, 'docs', 'f0'), path.join(src, 'docs', 'f0-alias'));
  const all = ['docs/f0', ...Array.from({ length: 9 }, (_, i) => `docs/f${i + 1}`), 'media/movie.bin', 'docs/small.txt'];
  setMtimesNs(all.map((p, i) => [path.join(src, p), T0 + BigInt(i)]));
}

/** Every regular file of the source (the chmod of case a). */
const FILES = 12; // f0..f9 (f0-alias is f0), movie.bin, small.txt

describe("which changed files hold their previous record's content (sameContentAsRecord: the clone of case a)", () => {
  const file: Meta = { type: 'file', mode: 0o644, uid: 0, gid: 0, size: 100, mtimeSec: 5, mtimeNsec: 7, rdev: 0, target: null, xattrs: null };
  const rec = (over: Partial<ManifestEntry> = {}): ManifestEntry => ({
    ...file,
    name: Buffer.from('f'),
    flags: FLAG.HAS_HASH,
    linkGroup: 0,
    ino: 9,
    hash: '0123456789abcdef',
    ctimeSec: 0,
    ctimeNsec: 0,
    ...over,
  });
  test.each([
    ['a chmod', { mode: 0o600 }, {}, true],
    ['a chown', { uid: 1000 }, {}, true],
    ['new attributes', { xattrs: Buffer.from('x') }, {}, true],
    ['a new mtime (touched: content unknown, hashed by the content index instead)', { mtimeNsec: 8 }, {}, false],
    ['a new size', { size: 101 }, {}, false],
    ['no previous hash', {}, { hash: null }, false],
    ['changed while read last time', {}, { flags: FLAG.HAS_HASH | FLAG.UNSTABLE }, false],
    ['not a file before', {}, { type: 'symlink' as const }, false],
    ['empty', { size: 0 }, { size: 0 }, false],
  ] as const)('%s: %s', (_what, e, p, want) => {
    expect(sameContentAsRecord({ ...file, ...e }, rec(p))).toBe(want);
  });
  test('no previous record', () => expect(sameContentAsRecord(file, undefined)).toBe(false));
});

describe('native clone(): a new inode, the source only read, checked first', () => {
  test('drift, an existing destination, a symlink or a path out of the root: nothing made, nothing changed', ({ tmp, skip }) =>
    onLoop(tmp, 'xfs', 300, skip, (m) => {
      const dir = path.join(m.mnt, 'd');
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'src'), randomBytes(100_000));
      fs.writeFileSync(path.join(dir, 'taken'), 'keep me');
      fs.symlinkSync('src', path.join(dir, 'link'));
      const st = fs.statSync(path.join(dir, 'src'), { bigint: true });
      const dfd = sys.openat(sys.AT_FDCWD, dir, sys.O_RDONLY | sys.O_DIRECTORY, 0);
      try {
        const io = new Float64Array(sys.IO_FIELDS);
        const rec = (mode: number) =>
          packLinkRecords(
            [
              {
                e: {
                  name: Buffer.from('src'),
                  type: 'file',
                  mode,
                  uid: 0,
                  gid: 0,
                  size: Number(st.size),
                  mtimeSec: Number(st.mtimeNs / 1_000_000_000n),
                  mtimeNsec: Number(st.mtimeNs % 1_000_000_000n),
                  rdev: 0,
                  target: null,
                  xattrs: null,
                },
                prevIno: Number(st.ino),
              },
            ],
            true,
          );
        const what = SETMETA.OWNER | SETMETA.MODE | SETMETA.TIMES;
        // the record says 0600, the inode shows 0644: drift, no clone
        expect(sys.clone(dfd, 'src', dfd, 'new', rec(0o600), io, 0, 0, 0o640, 1, 2, what, null)).toBe(DRIFT.MODE);
        expect(fs.existsSync(path.join(dir, 'new'))).toBe(false);
        // an existing name is never written into
        const taken = sys.clone(dfd, 'src', dfd, 'taken', rec(Number(st.mode) & 0o7777), io, 0, 0, 0o640, 1, 2, what, null);
        expect(splitStaged(taken)).toEqual({ stage: STAGE.OPEN_DST, code: 'EEXIST' });
        expect(fs.readFileSync(path.join(dir, 'taken'), 'utf8')).toBe('keep me');
        // never through a symlink, never out of the root given
        expect(splitStaged(sys.clone(dfd, 'link', dfd, 'new', null, io, 0, 0, 0o640, 1, 2, what, null))).toEqual({ stage: STAGE.OPEN_SRC, code: 'ELOOP' });
        expect(splitStaged(sys.clone(dfd, '../d/src', dfd, 'new', null, io, 0, 0, 0o640, 1, 2, what, null)).stage).toBe(STAGE.OPEN_SRC);
        expect(fs.existsSync(path.join(dir, 'new'))).toBe(false);
        // as recorded: a new inode with the metadata given, the source as it was
        expect(sys.clone(dfd, 'src', dfd, 'new', rec(Number(st.mode) & 0o7777), io, 0, 0, 0o640, 1, 2, what, null)).toBe(0);
        const n = fs.statSync(path.join(dir, 'new'), { bigint: true });
        expect(n.ino).not.toBe(st.ino);
        expect(Number(n.ino)).toBe(io[IO.NEW_INO]);
        expect(n.mode & 0o7777n).toBe(0o640n);
        expect(n.mtimeNs).toBe(1_000_000_002n);
        expect(fs.readFileSync(path.join(dir, 'new')).equals(fs.readFileSync(path.join(dir, 'src')))).toBe(true);
        const after = fs.statSync(path.join(dir, 'src'), { bigint: true });
        expect([after.ino, after.mode, after.mtimeNs, after.ctimeNs, after.nlink]).toEqual([st.ino, st.mode, st.mtimeNs, st.ctimeNs, st.nlink]);
      } finally {
        sys.close(dfd);
      }
    }));

  test("where the file system cannot clone (the default temporary directory, ext4 or tmpfs here), the ioctl's refusal, nothing made", ({ tmp }) => {
    fs.writeFileSync(path.join(tmp, 'src'), 'data');
    if (spawnSync('cp', ['--reflink=always', path.join(tmp, 'src'), path.join(tmp, 'probe')]).status === 0) return; // it clones here
    const dfd = sys.openat(sys.AT_FDCWD, tmp, sys.O_RDONLY | sys.O_DIRECTORY, 0);
    try {
      const rc = sys.clone(dfd, 'src', dfd, 'new', null, new Float64Array(sys.IO_FIELDS), 0, 0, 0o600, 0, 0, 0, null);
      expect(splitStaged(rc).stage).toBe(STAGE.CLONE);
      expect(fs.existsSync(path.join(tmp, 'new'))).toBe(false);
    } finally {
      sys.close(dfd);
    }
  });
});

describe.each(['xfs', 'btrfs', 'ext4'] as const)('clones on %s', (kind) => {
  test(`a chmod of every file, then a renamed and touched 100 MB file: ${kind === 'ext4' ? 'copied as before, no clone' : 'clones, ~0 new data blocks'}`, ({
    tmp,
    skip,
  }) =>
    onLoop(tmp, kind, 1024, skip, async (m) => {
      const clones = kind !== 'ext4';
      const src = path.join(tmp, 'src');
      const spool = makeSpool(path.join(m.mnt, 'spool'));
      makeSource(src);

      const chk = hardsnap(['check', '--spool', spool, '--json']);
      expect(chk.code).toBe(0);
      const report = JSON.parse(chk.stdout) as { clones: boolean; checks: { id: string; status: string }[] };
      expect(report.clones).toBe(clones);
      expect(report.checks.find((c) => c.id === 'clone')!.status).toBe(clones ? 'pass' : 'info');

      const g1 = backupJson(spool, src, 1);
      expect(g1.spoolClones).toBe(clones);
      expect(g1.stats.copied).toBe(FILES);
      expect(g1.stats.cloned).toBe(0);
      expectOracles(src, g1.gen);

      // (a) a chmod of every file: content, size and mtime unchanged, a new mode
      for (const f of [...Array.from({ length: 10 }, (_, i) => `docs/f${i}`), 'media/movie.bin', 'docs/small.txt']) fs.chmodSync(path.join(src, f), 0o640);
      // (so that day 2's records hold the ctimes: day 3 then reads only the renamed file)
      await pastRacyWindow();
      const dry = backupJson(spool, src, 2, ['--dry-run']);
      expect(dry.stats.cloned).toBe(0);
      expect(dry.spoolClones).toBe(false);
      const before1 = inodesOf(g1.gen, true);
      const used1 = usedBytes(m.mnt);
      const verbose = backup(spool, src, 2, ['--verbose']);
      expect(verbose.code, verbose.stderr).toBe(0);
      const grown1 = usedBytes(m.mnt) - used1;
      const g2 = path.join(path.dirname(g1.gen), genName(2));
      const s2 = lastRun(spool) as unknown as BuildStats & { spoolClones: boolean };
      expect(inodesOf(g1.gen, true)).toEqual(before1); // the previous generation is only read (no file of it is linked)
      expectOracles(src, g2);
      for (const f of ['docs/f3', 'media/movie.bin', 'docs/small.txt']) assertNotSameInode(path.join(g1.gen, f), path.join(g2, f));
      const out = verbose.stdout + verbose.stderr;
      if (clones) {
        expect(s2.cloned).toBe(FILES);
        expect(s2.copied).toBe(0);
        expect(s2.bytesWritten).toBe(0);
        expect(s2.bytesCloned).toBeGreaterThan(199 * MiB);
        expect(s2.spoolClones).toBe(true);
        expect(grown1).toBeLessThan(CLONE_SLACK);
        expect(out).toMatch(/>f\.\.\.p\.\.\.\.\. p\/media\/movie\.bin \(clone\)/);
        expect(out).toMatch(/p: \d+ entries, \d+ linked, 0 written \(0 B\), 12 cloned \(200(\.\d)? MiB shared\)/);
      } else {
        expect(s2.cloned).toBe(0);
        expect(s2.copied).toBe(FILES);
        expect(s2.bytesWritten).toBeGreaterThan(199 * MiB);
        expect(grown1).toBeGreaterThan(190 * MiB);
        expect(out).toMatch(/>f\.\.\.p\.\.\.\.\. p\/media\/movie\.bin\n/);
        expect(out).not.toMatch(/cloned/);
      }

      // (b) git checkout of a rename: a new name and a new mtime, the same content
      fs.renameSync(path.join(src, 'media/movie.bin'), path.join(src, 'media/film.bin'));
      const now = new Date();
      fs.utimesSync(path.join(src, 'media/film.bin'), now, now);
      const before2 = inodesOf(g2);
      const used2 = usedBytes(m.mnt);
      const g3 = backupJson(spool, src, 3);
      const grown2 = usedBytes(m.mnt) - used2;
      expect(inodesOf(g2)).toEqual(before2);
      expectOracles(src, g3.gen);
      assertNotSameInode(path.join(g2, 'media/movie.bin'), path.join(g3.gen, 'media/film.bin'));
      expect(g3.stats.linked).toBe(12); // the rest unchanged: f0..f9, f0-alias, small.txt
      if (clones) {
        expect(g3.stats.cloned).toBe(1);
        expect(g3.stats.copied).toBe(0);
        expect(g3.stats.hashedFiles).toBe(1); // the source read once, to hash it; nothing written
        expect(grown2).toBeLessThan(CLONE_SLACK);
      } else {
        expect(g3.stats.cloned).toBe(0);
        expect(g3.stats.copied).toBe(1);
        expect(g3.stats.hashedFiles).toBe(0); // ext4: no clone candidates, the file is read once
        expect(grown2).toBeGreaterThan(95 * MiB);
      }
      // every generation agrees with its manifest: inode numbers, metadata, and content hashes (the
      // clones' are their earlier copies', or the source's as it was hashed)
      const v = hardsnap(['verify', '--spool', spool, '--host', 'h', '--deep'], { timeoutMs: 300_000 });
      expect(v.code, v.stdout + v.stderr).toBe(0);
      console.log(
        `${kind}: df used grew ${(grown1 / 1024).toFixed(0)} KiB for the chmod of ${FILES} files (200 MiB), ` +
          `${(grown2 / 1024).toFixed(0)} KiB for the renamed and touched 100 MiB file`,
      );
    }));
});

describe('clones: the previous generation is evidence, not truth', () => {
  test('a previous inode chmod-ed in the spool is not cloned: the file is copied from the source and the drift reported', ({ tmp, skip }) =>
    onLoop(tmp, 'xfs', 300, skip, async (m) => {
      const src = path.join(tmp, 'src');
      const spool = makeSpool(path.join(m.mnt, 'spool'));
      fs.mkdirSync(src);
      fs.writeFileSync(path.join(src, 'a'), randomBytes(CLONE_MIN_SIZE * 2));
      fs.writeFileSync(path.join(src, 'b'), randomBytes(CLONE_MIN_SIZE * 3));
      const g1 = backupJson(spool, src, 1);
      // someone changes the old generation's copy of a: its content can no longer be vouched for
      fs.chmodSync(path.join(g1.gen, 'a'), 0o600);
      fs.chmodSync(path.join(src, 'a'), 0o640);
      fs.chmodSync(path.join(src, 'b'), 0o640);
      const g2 = backupJson(spool, src, 2);
      expect(g2.stats.drifted).toBe(1);
      expect(g2.stats.copied).toBe(1);
      expect(g2.stats.cloned).toBe(1);
      expect(g2.stderr).toMatch(/no longer matched its manifest/);
      expectOracles(src, g2.gen);
    }));

  // with --checksum, and without: a chmod moves the ctime, so the content is compared before the
  // previous inode is cloned (a write whose mtime was set back moves it too)
  test.for([
    ['with --checksum', ['--checksum']],
    ['without --checksum: its ctime moved', []],
  ] as const)('a chmod-ed file whose bytes changed under the same size and mtime is copied, not cloned, %s', ([, extra], { tmp, skip }) =>
    onLoop(tmp, 'xfs', 300, skip, async (m) => {
      const src = path.join(tmp, 'src');
      const spool = makeSpool(path.join(m.mnt, 'spool'));
      fs.mkdirSync(src);
      const f = path.join(src, 'db');
      fs.writeFileSync(f, Buffer.alloc(200_000, 1));
      setMtimesNs([[f, T0]]);
      await pastRacyWindow();
      backupJson(spool, src, 1, [...extra]);
      fs.writeFileSync(f, Buffer.alloc(200_000, 2));
      setMtimesNs([[f, T0]]);
      fs.chmodSync(f, 0o600);
      await pastRacyWindow();
      const g2 = backupJson(spool, src, 2, [...extra]);
      // (copied for its mode, as on a spool without clones: not counted as a change under the same size and mtime)
      expect([g2.stats.cloned, g2.stats.copied, g2.stats.sameStampChanged]).toEqual([0, 1, 0]);
      expect(fs.readFileSync(path.join(g2.gen, 'db'))[0]).toBe(2);
      expectOracles(src, g2.gen);
      // a chmod alone: read, found the record's, cloned
      fs.chmodSync(f, 0o644);
      const g3 = backupJson(spool, src, 3, [...extra]);
      expect([g3.stats.cloned, g3.stats.copied]).toEqual([1, 0]);
      expect(g3.stats.hashedFiles).toBe(1);
      expectOracles(src, g3.gen);
    }),
  );

  test('a renamed file whose bytes differ from a same-size candidate with the same XXH64 (the collision seam) is written, not cloned', ({ tmp, skip }) =>
    onLoop(tmp, 'xfs', 300, skip, async (m) => {
      const src = path.join(tmp, 'src');
      const spool = makeSpool(path.join(m.mnt, 'spool'));
      fs.mkdirSync(src);
      fs.writeFileSync(path.join(src, 'old'), Buffer.alloc(CLONE_MIN_SIZE * 2, 1));
      backupJson(spool, src, 1);
      fs.writeFileSync(path.join(src, 'new'), Buffer.alloc(CLONE_MIN_SIZE * 2, 2));
      const r = hardsnap(['backup', '--spool', spool, '--host', 'h', '--part', `p=${src}`, '--json', '--verbose'], {
        env: { ...dayEnv(2), HARDSNAP_TEST_HASH_COLLIDE: '1' },
      });
      expect(r.code, r.stderr).toBe(0);
      const j = JSON.parse(r.stdout) as { parts: { path: string; stats: BuildStats }[] };
      expect(j.parts[0]!.stats.cloned).toBe(0);
      expect(j.parts[0]!.stats.copied).toBe(1);
      expect(j.parts[0]!.stats.dedupMismatches).toBe(1);
      expect(r.stderr).toMatch(/but different bytes: written, not cloned/);
      expectOracles(src, j.parts[0]!.path);
    }));
});

describe('clones: interrupted runs', () => {
  test('a run killed after its clones were made is resumed: the clones are kept (checked and rehashed), not made again', ({ tmp, skip }) =>
    onLoop(tmp, 'xfs', 300, skip, async (m) => {
      const src = path.join(tmp, 'src');
      const spool = makeSpool(path.join(m.mnt, 'spool'));
      fs.mkdirSync(src);
      for (let i = 0; i < 6; i++) fs.writeFileSync(path.join(src, `f${i}`), randomBytes(CLONE_MIN_SIZE * (i + 1)));
      const g1 = backupJson(spool, src, 1);
      for (let i = 0; i < 6; i++) fs.chmodSync(path.join(src, `f${i}`), 0o600);
      const args = ['backup', '--spool', spool, '--host', 'h', '--part', `p=${src}`];
      const child = spawnHardsnap(args, { env: { ...dayEnv(2), HARDSNAP_TEST_PAUSE_AT: 'before-publish', HARDSNAP_TEST_PAUSE_MS: '60000' } });
      for (const end = Date.now() + 30_000; !child.out.stderr.includes('test pause at before-publish') && Date.now() < end;)
        await new Promise((r) => setTimeout(r, 50));
      child.killGroup('SIGKILL');
      await child.exited;
      const pdir = path.dirname(g1.gen);
      const partial = fs.readdirSync(pdir).find((n) => n.endsWith('.partial'))!;
      expect(partial).toBeDefined();
      const made = new Map(fs.readdirSync(path.join(pdir, partial)).map((n) => [n, fs.statSync(path.join(pdir, partial, n)).ino]));
      expect(made.size).toBe(6);
      const before = inodesOf(g1.gen, true);
      const g2 = backupJson(spool, src, 3);
      expect(g2.stats.reused).toBe(6);
      expect(g2.stats.cloned).toBe(0);
      for (const [n, ino] of made) expect(fs.statSync(path.join(g2.gen, n)).ino).toBe(ino);
      expect(inodesOf(g1.gen, true)).toEqual(before);
      expectOracles(src, g2.gen);
      const v = hardsnap(['verify', '--spool', spool, '--host', 'h', '--deep']);
      expect(v.code, v.stdout + v.stderr).toBe(0);
    }));
});

describe('clones: interrupted runs, the source changed before the resume', () => {
  test('a run killed after it linked an unchanged file, then the file chmod-ed: the resumed run clones it (it wrote it in full), the previous inode untouched', ({
    tmp,
    skip,
  }) =>
    onLoop(tmp, 'xfs', 300, skip, async (m) => {
      const src = path.join(tmp, 'src');
      const spool = makeSpool(path.join(m.mnt, 'spool'));
      fs.mkdirSync(path.join(src, 'a'), { recursive: true });
      fs.mkdirSync(path.join(src, 'z'), { recursive: true });
      fs.writeFileSync(path.join(src, 'a', 'big'), randomBytes(8 * MiB));
      fs.writeFileSync(path.join(src, 'z', 'f'), 'z');
      const g1 = backupJson(spool, src, 1);
      fs.writeFileSync(path.join(src, 'z', 'g'), 'new');
      // killed with a/ done (big linked to g1's inode) and z/ scanned
      const args = ['backup', '--spool', spool, '--host', 'h', '--part', `p=${src}`];
      const child = spawnHardsnap(args, { env: { ...dayEnv(2), HARDSNAP_TEST_PAUSE_AT: 'before-publish', HARDSNAP_TEST_PAUSE_MS: '60000' } });
      for (const end = Date.now() + 30_000; !child.out.stderr.includes('test pause at before-publish') && Date.now() < end;)
        await new Promise((r) => setTimeout(r, 50));
      child.killGroup('SIGKILL');
      await child.exited;
      const prevIno = fs.statSync(path.join(g1.gen, 'a', 'big')).ino;
      fs.chmodSync(path.join(src, 'a', 'big'), 0o600);
      // not its ctime: the partial's link to it goes (GUARANTEES.md, resume)
      const before = inodesOf(g1.gen);
      const used = usedBytes(m.mnt);
      const g2 = backupJson(spool, src, 3);
      expect(g2.stats.cloned).toBe(1);
      expect(g2.stats.bytesWritten).toBeLessThan(MiB);
      expect(usedBytes(m.mnt) - used).toBeLessThan(CLONE_SLACK);
      expect(fs.statSync(path.join(g2.gen, 'a', 'big')).ino).not.toBe(prevIno);
      expect(inodesOf(g1.gen)).toEqual(before);
      expectOracles(src, g2.gen);
    }));
});

describe('clones: refused by the file system', () => {
  test('the first clone refused (EOPNOTSUPP) is copied and turns clones off for the rest of the run: one attempt, said once', ({ tmp, skip }) =>
    onLoop(tmp, 'xfs', 300, skip, async (m) => {
      const src = path.join(tmp, 'src');
      const spool = makeSpool(path.join(m.mnt, 'spool'));
      fs.mkdirSync(src);
      for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(src, `f${i}`), randomBytes(1000 + i));
      const opts = {
        spool,
        host: 'h',
        parts: [{ name: 'p', source: src }],
        exclude: [],
        oneFileSystem: false,
        dryRun: false,
        allowEmpty: false,
        flush: false,
        waitMs: 0,
        command: 'test',
        parallelParts: false,
      };
      const notes: string[] = [];
      const ev = {
        onProblem: (p: { message: string }) => {
          throw new Error(p.message);
        },
        onNote: (n: string) => void notes.push(n),
      };
      expect((await runBackup({ ...opts, now: new Date(day(1)) }, ev)).exit).toBe(0);
      for (let i = 0; i < 20; i++) fs.chmodSync(path.join(src, `f${i}`), 0o600);
      // the probe (sys.clone) passes; every clone of a file is refused as ext4 would refuse it
      const refused = vi.spyOn(sys, 'cloneAsync').mockImplementation(() => new Promise((r) => setImmediate(() => r(-((STAGE.CLONE << 16) | 95)))));
      const r = await runBackup({ ...opts, now: new Date(day(2)) }, ev);
      expect(r.exit).toBe(0);
      expect(refused).toHaveBeenCalledTimes(1);
      expect(r.parts[0]!.stats.cloned).toBe(0);
      expect(r.parts[0]!.stats.copied).toBe(20);
      expect(notes.filter((n) => /refused a clone \(ENOTSUP\).*copied for the rest of this run/.test(n))).toHaveLength(1);
      expectOracles(src, r.parts[0]!.path);
    }));

  test('a spool on tmpfs or ext4 is never sent a clone: the probe decides once for the part', async ({ tmp }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    fs.mkdirSync(src);
    for (let i = 0; i < 5; i++) fs.writeFileSync(path.join(src, `f${i}`), randomBytes(100_000 + i));
    const probe = spawnSync('cp', ['--reflink=always', path.join(src, 'f0'), path.join(tmp, 'probe')]);
    if (probe.status === 0) return; // the default temporary directory clones here: nothing to show
    const opts = {
      spool,
      host: 'h',
      parts: [{ name: 'p', source: src }],
      exclude: [],
      oneFileSystem: false,
      dryRun: false,
      allowEmpty: false,
      flush: false,
      waitMs: 0,
      command: 'test',
      parallelParts: false,
    };
    const ev = {
      onProblem: (p: { message: string }) => {
        throw new Error(p.message);
      },
      onNote: () => {},
    };
    await runBackup({ ...opts, now: new Date(day(1)) }, ev);
    for (let i = 0; i < 5; i++) fs.chmodSync(path.join(src, `f${i}`), 0o600);
    const sync = vi.spyOn(sys, 'clone');
    const pooled = vi.spyOn(sys, 'cloneAsync');
    const r = await runBackup({ ...opts, now: new Date(day(2)) }, ev);
    expect(sync).toHaveBeenCalledTimes(1); // the probe
    expect(pooled).not.toHaveBeenCalled();
    expect(r.parts[0]!.spoolClones).toBe(false);
    expect(r.parts[0]!.stats.copied).toBe(5);
  });
});

describe('an XFS spool and POSIX ACLs', () => {
  // XFS shows root each ACL a second time as trusted.SGI_ACL_FILE / _DEFAULT: verify called
  // every file with an ACL "not recorded", every night, on the file system clones want
  test('files and directories with ACLs on an XFS spool: verify finds nothing, and the ACLs come back exactly', ({ tmp, skip }) =>
    onLoop(tmp, 'xfs', 300, skip, async (m) => {
      if (spawnSync('setfacl', ['--version']).status !== 0) return skip('setfacl is not installed (apt-get install acl)');
      const src = path.join(tmp, 'src');
      fs.mkdirSync(path.join(src, 'shared'), { recursive: true });
      fs.writeFileSync(path.join(src, 'shared', 'f'), 'x');
      fs.writeFileSync(path.join(src, 'g'), 'y');
      spawnSync('setfacl', ['-m', 'u:65534:r', path.join(src, 'g')]);
      spawnSync('setfacl', ['-m', 'u:65534:rx', '-m', 'd:g:65534:rx', path.join(src, 'shared')]);
      const spool = makeSpool(path.join(m.mnt, 'spool'));
      const run = (n: number) => hardsnap(['backup', '--spool', spool, '--host', 'h', '--part', `p=${src}`], at(n));
      expect(run(1).code).toBe(0);
      fs.chmodSync(path.join(src, 'g'), 0o640);
      expect(run(2).code).toBe(0);
      // the spool's files really carry XFS's second view (else this test proves nothing)
      const listed = spawnSync('getfattr', ['-m', '-', '-d', path.join(spool, 'rsync', 'h', 'p', 'last', 'shared')], { encoding: 'utf8' }).stdout;
      if (!/trusted\.SGI_ACL/.test(listed)) return skip('this kernel does not show XFS ACLs as trusted.SGI_ACL_*');
      const v = hardsnap(['verify', '--spool', spool, '--host', 'h']);
      expect(v.code, v.stdout + v.stderr).toBe(0);
      const to = path.join(tmp, 'restored');
      expect(hardsnap(['restore', '--spool', spool, '--host', 'h', '--part', 'p', '--to', to]).code).toBe(0);
      expect(rsyncDiff(src, to)).toEqual([]);
    }));
});
