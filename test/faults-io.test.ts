// Faults made to happen for real, beside SIGKILL (test/faults.test.ts): a spool that runs out of
// space or inodes, read errors, source files that change or are swapped while they are copied,
// two runs at once. Injected faults go through the src/fs seam (vi.spyOn on `sys`).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, vi } from 'vitest';
import { describe, expect, test } from './helpers/fixture.js';
import { makeTree } from './helpers/tree.js';
import { rsyncDiff } from './helpers/oracle.js';
import { REPO_ROOT, hardsnap, spawnHardsnap, waitFor, waitForFile } from './helpers/run.js';
import { mktree } from './helpers/bench-tree.js';
import { fingerprint, hardsnapAsNobody, isRoot, shmdir } from './helpers/robust.js';
import { sys } from '../src/fs/native.js';
import { runBackup } from '../src/backup/run.js';
import { FLAG } from '../src/manifest/format.js';
import type { BackupOptions, BackupResult } from '../src/backup/types.js';
import type { Problem } from '../src/apply/types.js';
import { makeSpool, manifestEntries, nightly } from './helpers/spool.js';

const { day, at, genName, backup, partDir, gen, manifestFile } = nightly({ host: 'h1', part: 'data', month: '2026-01' });

afterEach(() => {
  vi.restoreAllMocks();
});

/** runBackup in this process (so sys can be spied on); problems and notes collected. */
async function backupInProcess(spool: string, src: string, n: number, extra: Partial<BackupOptions> = {}): Promise<BackupResult & { reported: Problem[] }> {
  const reported: Problem[] = [];
  const o: BackupOptions = {
    spool,
    host: 'h1',
    parts: [{ name: 'data', source: src }],
    exclude: [],
    oneFileSystem: false,
    dryRun: false,
    allowEmpty: false,
    flush: true,
    waitMs: 0,
    now: new Date(day(n)),
    command: 'test',
    parallelParts: false,
    ...extra,
  };
  const r = await runBackup(o, { onProblem: (p) => reported.push(p), onNote: () => {} });
  return { ...r, reported };
}

const nameOf = (n: Buffer | string) => (Buffer.isBuffer(n) ? n.toString('latin1') : n);

type CopyFn = (sd: number, sn: Buffer | string, dd: number, dn: Buffer | string, io: Float64Array, x?: Buffer | null) => number;

/**
 * Intercepts every file copy at the fs seam, synchronous (`sys.copy`) or in a worker
 * (`sys.copyAsync`, where the engine has it): `fn` gets the arguments and the real copy.
 */
function interceptCopy(fn: (real: CopyFn, ...a: Parameters<CopyFn>) => number): void {
  const real: CopyFn = sys.copy.bind(sys);
  vi.spyOn(sys, 'copy').mockImplementation((sd, sn, dd, dn, io, x) => fn(real, sd, sn, dd, dn, io, x));
  const s = sys as unknown as Record<string, unknown>;
  if (typeof s.copyAsync === 'function') {
    vi.spyOn(s as { copyAsync: CopyFn }, 'copyAsync').mockImplementation((sd, sn, dd, dn, io, x) => fn(real, sd, sn, dd, dn, io, x));
  }
}

type OpenFn = (dirfd: number, name: Buffer | string, flags: number, mode: number) => number;

/**
 * Intercepts every open of a source directory at the fs seam: the builder's own (`sys.openat`
 * with O_NOATIME, which `fn` also sees for source files a content link compares) and the
 * read-ahead on the pool (`sys.spoolDirAsync` with its scan flag 2, done here on the main
 * thread with the same results), so that a fault `fn` injects hits a directory whichever way
 * the builder enters it.
 */
function interceptSourceDirOpen(fn: (real: OpenFn, ...a: Parameters<OpenFn>) => number): void {
  const openat: OpenFn = sys.openat.bind(sys);
  vi.spyOn(sys, 'openat').mockImplementation((d, n, f, m) => (f & sys.O_NOATIME ? fn(openat, d, n, f, m) : openat(d, n, f, m)));
  const spoolDir = sys.spoolDirAsync.bind(sys);
  vi.spyOn(sys, 'spoolDirAsync').mockImplementation(async (nd, pd, name, flags, res, sd, xf, cmin) => {
    await spoolDir(nd, pd, name, flags & ~2, res, -1, xf, cmin);
    if (!(flags & 2)) return 0;
    const fd = fn(openat, sd, name, sys.O_RDONLY | sys.O_DIRECTORY | sys.O_NOFOLLOW | sys.O_NOATIME, 0);
    res[3] = fd;
    return fd < 0 ? fd : sys.scandir(fd, xf, cmin);
  });
}

describe('a crash before the flush (power loss): a partial copy of the right size and mtime', () => {
  test('a file of the partial zero-filled by a crash (size and mtime as copied) is copied again on resume, not published as zeros (an attack on faults: exit 0, verify --deep passed)', async ({
    tmp,
  }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    makeTree(src, { small: 's\n' });
    expect(backup(spool, src, 1).code).toBe(0);
    const big = Buffer.alloc(1 << 20);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7 + 3) & 0xff;
    fs.writeFileSync(path.join(src, 'big'), big);
    const args = ['backup', '--spool', spool, '--host', 'h1', '--part', `data=${src}`];
    const a = spawnHardsnap(args, { env: { HARDSNAP_NOW: day(2), HARDSNAP_TEST_PAUSE_AT: 'before-publish' } });
    await waitFor(() => a.out.stderr.includes('test pause at before-publish'), 30_000, 10, 'the run to pause before publishing');
    a.killGroup('SIGKILL');
    await a.exited;
    // what a crash leaves of a copy whose pages were never written back: its size and mtime, zeros
    const partial = path.join(partDir(spool), `${genName(2)}.partial`, 'big');
    const ref = path.join(tmp, 'mtime-ref');
    fs.writeFileSync(ref, '');
    execFileSync('touch', ['-r', partial, ref]); // to the nanosecond
    fs.writeFileSync(partial, Buffer.alloc(big.length));
    execFileSync('touch', ['-r', ref, partial]);
    const r = hardsnap([...args, '--verbose'], at(2));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/resuming the interrupted generation/);
    const last = path.join(partDir(spool), 'last');
    expect(fs.readFileSync(path.join(last, 'big')).equals(big)).toBe(true);
    expect(rsyncDiff(src, last)).toEqual([]);
    expect(hardsnap(['verify', '--spool', spool, '--host', 'h1', '--deep']).code).toBe(0);
  });
});

describe('a publish that fails', () => {
  test('the generation cannot take its name (a file put there meanwhile): no manifest is left for that name (a re-attack: manifests/<gen>.hsm stood for a name that never became a generation)', async ({
    tmp,
  }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    makeTree(src, { a: 'a\n' });
    expect(backup(spool, src, 1).code).toBe(0);
    fs.writeFileSync(path.join(src, 'b'), 'b\n');
    const go = path.join(tmp, 'go');
    const args = ['backup', '--spool', spool, '--host', 'h1', '--part', `data=${src}`];
    const a = spawnHardsnap(args, { env: { HARDSNAP_NOW: day(2), HARDSNAP_TEST_PAUSE_AT: 'before-publish', HARDSNAP_TEST_PAUSE_UNTIL: go } });
    await waitFor(() => a.out.stderr.includes('test pause at before-publish'), 30_000, 10, 'the run to pause before publishing');
    const inTheWay = path.join(partDir(spool), genName(2));
    fs.writeFileSync(inTheWay, 'not ours\n');
    fs.writeFileSync(go, '');
    expect((await a.exited).code).toBe(2);
    expect(a.out.stderr).toMatch(/ENOTDIR/);
    expect(fs.existsSync(manifestFile(spool, 2))).toBe(false);
    expect(fs.readFileSync(inTheWay, 'utf8')).toBe('not ours\n');
    // the next run resumes the partial under a name of its own, and everything reads
    const r = backup(spool, src, 3);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readdirSync(path.join(partDir(spool), '.hardsnap', 'manifests')).sort()).toEqual([`${genName(1)}.hsm`, `${genName(3)}.hsm`]);
    expect(hardsnap(['verify', '--spool', spool, '--host', 'h1']).code).toBe(0);
  });
});

describe('killed between publishing the manifest and renaming the generation', () => {
  test('the next run resumes the partial under its own name and removes the manifest of the old one (a re-attack: verify then said the generation was deleted by hand, exit 2)', async ({
    tmp,
  }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    makeTree(src, { a: 'a\n', 'd/b': 'b\n' });
    expect(backup(spool, src, 1).code).toBe(0);
    fs.writeFileSync(path.join(src, 'c'), 'c\n');
    const args = ['backup', '--spool', spool, '--host', 'h1', '--part', `data=${src}`];
    const a = spawnHardsnap(args, { env: { HARDSNAP_NOW: day(2), HARDSNAP_TEST_PAUSE_AT: 'before-publish' } });
    await waitFor(() => a.out.stderr.includes('test pause at before-publish'), 30_000, 10, 'the run to pause before publishing');
    a.killGroup('SIGKILL');
    await a.exited;
    // what the window between the two renames leaves (a SIGKILL, a power cut): the manifest published, the generation not
    const mdir = path.join(partDir(spool), '.hardsnap', 'manifests');
    fs.renameSync(path.join(mdir, `${genName(2)}.hsm.tmp`), path.join(mdir, `${genName(2)}.hsm`));
    const r = backup(spool, src, 3);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readdirSync(mdir).sort()).toEqual([`${genName(1)}.hsm`, `${genName(3)}.hsm`]);
    const v = hardsnap(['verify', '--spool', spool, '--host', 'h1']);
    expect(v.code, v.stdout + v.stderr).toBe(0);
  });
});

describe('read errors', () => {
  test('EIO reading one source file (injected at the fs seam): reported by path, exit 23, absent from the manifest, others intact, copied by the next run', async ({
    tmp,
  }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    makeTree(src, { 'a.txt': 'a', 'x/bad.txt': 'unreadable today', 'x/good.txt': 'good', 'z/c.txt': 'c' });
    interceptCopy((copy, sd, sn, dd, dn, io) => (nameOf(sn) === 'bad.txt' ? -((4 << 16) | 5) : copy(sd, sn, dd, dn, io)));
    const r1 = await backupInProcess(spool, src, 1);
    expect(r1.exit).toBe(23);
    expect(r1.reported.map((p) => [p.path.toString(), p.code])).toEqual([['x/bad.txt', 'EIO']]);
    const g1 = gen(spool, 1);
    expect(rsyncDiff(src, g1).filter((l) => !l.startsWith('.d'))).toEqual(['>f+++++++++ x/bad.txt']);
    const m1 = manifestEntries(manifestFile(spool, 1));
    expect(m1.has('x/bad.txt')).toBe(false);
    expect(m1.has('x/good.txt')).toBe(true);
    vi.restoreAllMocks();
    const r2 = await backupInProcess(spool, src, 2);
    expect(r2.exit).toBe(0);
    expect(rsyncDiff(src, gen(spool, 2))).toEqual([]);
    expect(fs.readFileSync(path.join(gen(spool, 2), 'x/bad.txt'), 'utf8')).toBe('unreadable today');
  });

  test('a source directory that cannot be opened (EACCES at the seam): reported by path, exit 23; its copy in the generation still has its mode and mtime; the next run fills it', async ({
    tmp,
  }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    makeTree(src, { 'locked/in.txt': 'in', locked: { dir: true, mode: 0o750, mtime: 1_600_000_000_123_456_789n }, 'open.txt': 'o' });
    interceptSourceDirOpen((openat, dirfd, name, flags, mode) => (nameOf(name) === 'locked' ? -13 : openat(dirfd, name, flags, mode)));
    const r1 = await backupInProcess(spool, src, 1);
    expect(r1.exit).toBe(23);
    expect(r1.reported.map((p) => [p.path.toString(), p.code, p.message])).toEqual([['locked', 'EACCES', 'cannot open directory: EACCES']]);
    const g1 = gen(spool, 1);
    const st = fs.statSync(path.join(g1, 'locked'), { bigint: true });
    expect(Number(st.mode & 0o7777n).toString(8)).toBe('750');
    expect(st.mtimeNs).toBe(1_600_000_000_123_456_789n);
    vi.restoreAllMocks();
    const r2 = await backupInProcess(spool, src, 2);
    expect(r2.exit).toBe(0);
    expect(rsyncDiff(src, gen(spool, 2))).toEqual([]);
  });

  test.runIf(isRoot)('EACCES for real as a non-root user (setpriv to nobody): exit 23, the path named, the rest published', ({ tmp }) => {
    fs.chmodSync(tmp, 0o755);
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    makeTree(src, { 'ok.txt': 'fine', 'sub/secret.txt': { content: 'no', mode: 0o000 }, 'sub/other.txt': 'other' });
    execFileSync('chown', ['-R', '65534:65534', src, spool]);
    const r = hardsnapAsNobody(['backup', '--spool', spool, '--host', 'h1', '--part', `data=${src}`], at(1));
    expect(r.code, r.stderr).toBe(23);
    expect(r.stderr).toMatch(/data: sub\/secret\.txt: cannot open: EACCES/);
    const g = gen(spool, 1);
    expect(fs.readFileSync(path.join(g, 'sub/other.txt'), 'utf8')).toBe('other');
    expect(fs.existsSync(path.join(g, 'sub/secret.txt'))).toBe(false);
    expect(fs.readlinkSync(path.join(partDir(spool), 'last'))).toBe(genName(1));
  });
});

describe.runIf(isRoot)('files that change while they are copied (needs root: fanotify holds each read until the file changed)', () => {
  // a child process changes the file during every read of it (test/helpers/change-on-read.py):
  // each copy attempt sees a change for certain, on a loaded machine too (a free-running writer
  // sometimes missed one attempt there, and the run exited 0)
  const kinds = ['grows', 'shrinks and regrows', 'is rewritten in place'] as const;
  test.for(kinds)('a file that %s during the copy: detected, retried, reported, flagged UNSTABLE, copied again by the next run', async (kind, { tmp }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    makeTree(src, { 'calm.txt': 'calm', 'live/busy.dat': Buffer.alloc(64 << 20, 1) });
    const busy = path.join(src, 'live/busy.dat');
    const ready = path.join(tmp, 'writer-ready');
    const child = spawn('python3', [path.join(REPO_ROOT, 'test/helpers/change-on-read.py'), kind, busy, ready], { stdio: ['ignore', 'ignore', 'pipe'] });
    let childErr = '';
    child.stderr!.on('data', (d) => (childErr += d));
    try {
      await waitFor(() => fs.existsSync(ready) || child.exitCode !== null, 10_000, 5, 'the writer to start');
      expect(child.exitCode, childErr).toBeNull();
      const r1 = backup(spool, src, 1);
      expect(r1.code, r1.stderr).toBe(23);
      expect(r1.stderr).toMatch(/data: live\/busy\.dat: changed while it was read \(3 attempts\)/);
    } finally {
      child.kill('SIGKILL');
    }
    await new Promise((r) => child.on('close', r));
    const e = manifestEntries(manifestFile(spool, 1)).get('live/busy.dat')!;
    expect(e.flags & FLAG.UNSTABLE).toBe(FLAG.UNSTABLE);
    // the manifest describes the copy that was kept (reading stops at the size seen at open:
    // a file appended to faster than it is read is not read forever)
    const g1Path = path.join(gen(spool, 1), 'live/busy.dat');
    expect(fs.statSync(g1Path).size).toBe(e.size);
    // even with the source now at rest and its metadata equal to what was recorded, the next
    // run copies it again (a new inode), never links the possibly torn copy
    const g1 = path.join(gen(spool, 1), 'live/busy.dat');
    const r2 = backup(spool, src, 2);
    expect(r2.code, r2.stderr).toBe(0);
    const g2 = path.join(gen(spool, 2), 'live/busy.dat');
    expect(fs.statSync(g2).ino).not.toBe(fs.statSync(g1).ino);
    expect(fs.statSync(path.join(gen(spool, 2), 'calm.txt')).ino).toBe(fs.statSync(path.join(gen(spool, 1), 'calm.txt')).ino);
    expect(rsyncDiff(src, gen(spool, 2))).toEqual([]);
    expect(manifestEntries(manifestFile(spool, 2)).get('live/busy.dat')!.flags & FLAG.UNSTABLE).toBe(0);
  });
});

describe('a source file swapped between scan and open', () => {
  test.for(['symlink to a secret file outside', 'FIFO'])(
    'swapped for a %s: never followed, never opened for data, reported as changed type; the next run records it as what it is',
    async (kind, { tmp }) => {
      const src = path.join(tmp, 'src');
      const spool = makeSpool(path.join(tmp, 'spool'));
      const secret = path.join(tmp, 'secret.txt');
      fs.writeFileSync(secret, 'TOP-SECRET-CONTENT');
      makeTree(src, { 'd/victim': 'harmless', 'd/other': 'other' });
      const victim = path.join(src, 'd/victim');
      let swapped = 0;
      interceptCopy((copy, sd, sn, dd, dn, io) => {
        if (nameOf(sn) === 'victim' && !swapped) {
          swapped = 1;
          fs.rmSync(victim);
          if (kind === 'FIFO') execFileSync('mkfifo', [victim]);
          else fs.symlinkSync(secret, victim);
        }
        return copy(sd, sn, dd, dn, io);
      });
      const r1 = await backupInProcess(spool, src, 1); // a FIFO opened for reading would hang here
      expect(swapped).toBe(1);
      expect(r1.exit).toBe(23);
      expect(r1.reported.map((p) => [p.path.toString(), p.code, p.message])).toEqual([
        ['d/victim', 'ECHANGED', 'changed type between scan and copy (not followed, not opened for data); it will be backed up next run'],
      ]);
      const g1 = gen(spool, 1);
      expect(fs.existsSync(path.join(g1, 'd/victim'))).toBe(false);
      expect(fs.readFileSync(path.join(g1, 'd/other'), 'utf8')).toBe('other');
      expect(manifestEntries(manifestFile(spool, 1)).has('d/victim')).toBe(false);
      // the secret's bytes are nowhere in the spool, manifests included
      const grep = spawnSync('grep', ['-rl', 'TOP-SECRET-CONTENT', spool], { encoding: 'utf8' });
      expect(grep.stdout).toBe('');
      vi.restoreAllMocks();
      const r2 = await backupInProcess(spool, src, 2);
      expect(r2.exit).toBe(0);
      const st = fs.lstatSync(path.join(gen(spool, 2), 'd/victim'));
      expect(kind === 'FIFO' ? st.isFIFO() : st.isSymbolicLink()).toBe(true);
      expect(rsyncDiff(src, gen(spool, 2))).toEqual([]);
    },
  );
});

describe('resume meets a source directory it cannot open', () => {
  test('what a killed run left in it is replaced by its previous version (carried, as its manifest says), and verify passes', async ({ tmp }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    makeTree(src, { 'locked/in.txt': 'in', 'locked/sub/deep.txt': 'deep', 'open.txt': 'o' });
    expect((await backupInProcess(spool, src, 1)).exit).toBe(0);
    // a killed run of day 2 got as far as this partial (linked from day 1, as a run does), and
    // left something of its own in the directory
    const pdir = partDir(spool);
    execFileSync('cp', ['-al', path.join(pdir, genName(1)), path.join(pdir, `${genName(2)}.partial`)]);
    fs.writeFileSync(path.join(pdir, `${genName(2)}.partial`, 'locked', 'stray'), 'left by the killed run');
    interceptSourceDirOpen((openat, dirfd, name, flags, mode) => (nameOf(name) === 'locked' ? -13 : openat(dirfd, name, flags, mode)));
    // 5 entries seen on day 1, 2 now (locked/ is not read): more than max-source-loss, accepted
    const r2 = await backupInProcess(spool, src, 2, { acceptSourceChange: true });
    expect(r2.exit).toBe(23);
    vi.restoreAllMocks();
    expect(fs.readdirSync(pdir).filter((n) => n.endsWith('.partial'))).toEqual([]);
    const locked = path.join(pdir, r2.generation, 'locked');
    expect(fs.readdirSync(locked).sort()).toEqual(['in.txt', 'sub']);
    expect(fs.statSync(path.join(locked, 'sub/deep.txt')).ino).toBe(fs.statSync(path.join(pdir, genName(1), 'locked/sub/deep.txt')).ino);
    expect(r2.reported.map((p) => [p.path.toString(), p.code])).toEqual([['locked', 'EACCES']]);
    const v = hardsnap(['verify', '--spool', spool, '--host', 'h1']);
    expect(v.code, v.stdout + v.stderr).toBe(0);
  });
});

describe('descriptors', () => {
  test("a source directory that cannot be opened closes its spool descriptors once each (a second close could hit a pool job's reused descriptor)", async ({
    tmp,
  }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    const tree: Record<string, string> = { 'open.txt': 'o' };
    for (let i = 0; i < 20; i++) tree[`locked${i}/in.txt`] = 'in';
    makeTree(src, tree);
    interceptSourceDirOpen((openat, dirfd, name, flags, mode) => (nameOf(name).startsWith('locked') ? -13 : openat(dirfd, name, flags, mode)));
    const close = sys.close;
    const badCloses: number[] = [];
    vi.spyOn(sys, 'close').mockImplementation((fd) => {
      const rc = close(fd);
      if (rc !== 0 && rc !== undefined) badCloses.push(fd);
      return rc;
    });
    const r1 = await backupInProcess(spool, src, 1);
    expect(r1.exit).toBe(23);
    expect(r1.reported).toHaveLength(20);
    expect(badCloses).toEqual([]);
  });
});

describe('a source directory read ahead on the pool', () => {
  /**
   * Changes b/ right after its scan was read ahead (files made and deleted while the walk is
   * still in a/): a scan older than the age limit must be made again when b/ is entered.
   */
  async function changedAfterScan(tmp: string, maxAgeMs: string, exit: number): Promise<string[]> {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    makeTree(src, { 'a/one.txt': '1', 'b/old.txt': 'old' });
    const real = sys.spoolDirAsync.bind(sys);
    let changed = 0;
    vi.spyOn(sys, 'spoolDirAsync').mockImplementation(async (nd, pd, name, flags, res, sd, xf, cmin) => {
      const out = await real(nd, pd, name, flags, res, sd, xf, cmin);
      if (nameOf(name) === 'b' && flags & 2 && !changed++) {
        fs.writeFileSync(path.join(src, 'b/late.txt'), 'late');
        fs.rmSync(path.join(src, 'b/old.txt'));
        await new Promise((r) => setTimeout(r, 30));
      }
      return out;
    });
    vi.stubEnv('HARDSNAP_TEST_SCAN_AHEAD_MAX_AGE_MS', maxAgeMs);
    try {
      const r = await backupInProcess(spool, src, 1);
      expect(changed).toBe(1);
      expect(r.exit, JSON.stringify(r.reported)).toBe(exit);
    } finally {
      vi.unstubAllEnvs();
    }
    return fs.readdirSync(path.join(gen(spool, 1), 'b')).sort();
  }

  test('a scan older than the limit is made again on entry: the generation holds the directory as it is then', async ({ tmp }) => {
    expect(await changedAfterScan(tmp, '10', 0)).toEqual(['late.txt']);
  });

  test('(the seam works) within the limit the scan read ahead is used as it is', async ({ tmp }) => {
    // old.txt was listed, then vanished before its copy (reported: exit 24, not in the
    // generation); late.txt was made after the scan
    expect(await changedAfterScan(tmp, '60000', 24)).toEqual([]);
  });
});

describe('a source directory swapped between scan and descent', () => {
  test('swapped for a symlink to a secret directory: not followed (reported by path: O_NOFOLLOW|O_DIRECTORY gives ENOTDIR), nothing of the secret in the spool; the next run keeps it as a symlink', async ({
    tmp,
  }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    makeTree(tmp, { 'secret/key.pem': 'TOP-SECRET-KEY' });
    makeTree(src, { 'd/inner.txt': 'inner', 'e/x.txt': 'x' });
    let swapped = 0;
    interceptSourceDirOpen((openat, dirfd, name, flags, mode) => {
      if (nameOf(name) === 'd' && !swapped++) {
        fs.renameSync(path.join(src, 'd'), path.join(tmp, 'd-moved'));
        fs.symlinkSync(path.join(tmp, 'secret'), path.join(src, 'd'));
      }
      return openat(dirfd, name, flags, mode);
    });
    const r1 = await backupInProcess(spool, src, 1);
    expect(swapped).toBe(1);
    expect(r1.exit).toBe(23);
    expect(r1.reported.map((p) => [p.path.toString(), p.code, p.message])).toEqual([['d', 'ENOTDIR', 'cannot open directory: ENOTDIR']]);
    const grep = spawnSync('grep', ['-rl', 'TOP-SECRET-KEY', spool], { encoding: 'utf8' });
    expect(grep.stdout).toBe('');
    expect(fs.readdirSync(path.join(gen(spool, 1), 'd'))).toEqual([]);
    vi.restoreAllMocks();
    const r2 = await backupInProcess(spool, src, 2);
    expect(r2.exit).toBe(0);
    expect(fs.readlinkSync(path.join(gen(spool, 2), 'd'))).toBe(path.join(tmp, 'secret'));
    expect(rsyncDiff(src, gen(spool, 2))).toEqual([]);
  });
});

describe('two runs at once', () => {
  test('two backups at once: the one holding the lock publishes, the other exits 3 naming the holder, nothing of it in the spool', async () => {
    const tmp = shmdir();
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    mktree(src, { files: 1500, seed: 3 });
    const args = ['backup', '--spool', spool, '--host', 'h1', '--part', `data=${src}`];
    // the first run is held (test seam) with everything built, so the second surely meets it
    const a = spawnHardsnap(args, { env: { HARDSNAP_NOW: day(1), HARDSNAP_TEST_PAUSE_AT: 'before-publish', HARDSNAP_TEST_PAUSE_MS: '3000' } });
    await waitFor(() => a.out.stderr.includes('test pause at before-publish'), 30_000, 5, 'the first run to pause');
    const b = spawnHardsnap(args, at(2));
    const eb = await b.exited;
    const ea = await a.exited;
    const [winner, loser] = [
      { c: a, e: ea },
      { c: b, e: eb },
    ];
    winner.c.out.stderr = winner.c.out.stderr.replace('hardsnap: test pause at before-publish\n', '');
    expect(winner.e.code, winner.c.out.stderr).toBe(0);
    expect(loser.e.code, loser.c.out.stderr).toBe(3);
    expect(loser.c.out.stderr.trim().split('\n')).toHaveLength(1);
    expect(loser.c.out.stderr).toMatch(new RegExp(`another hardsnap run holds the lock .*pid ${winner.c.pid}\\b`));
    const pdir = partDir(spool);
    expect(fs.readdirSync(pdir).sort()).toEqual(['.hardsnap', fs.readlinkSync(path.join(pdir, 'last')), 'LATEST', 'last'].sort());
    expect(rsyncDiff(src, path.join(pdir, 'last'))).toEqual([]);
  });

  test('a stale lock of a SIGKILLed run: the next run takes over, says so, and publishes', async () => {
    const tmp = shmdir();
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    mktree(src, { files: 1500, seed: 4 });
    const args = ['backup', '--spool', spool, '--host', 'h1', '--part', `data=${src}`];
    const a = spawnHardsnap(args, { env: { HARDSNAP_NOW: day(1), HARDSNAP_TEST_PAUSE_AT: 'before-publish' } });
    const lock = path.join(spool, 'rsync', 'h1', '.hardsnap', 'lock');
    await waitForFile(lock, 30_000);
    // the lock is created, then written: wait for the JSON, not only the name
    const parsed = () => {
      try {
        return JSON.parse(fs.readFileSync(lock, 'utf8')) as { pid: number };
      } catch {
        return null;
      }
    };
    await waitFor(() => parsed() !== null, 10_000, 10, 'the lock to be written');
    expect(parsed()!.pid).toBe(a.pid);
    a.killGroup('SIGKILL');
    await a.exited;
    const r = hardsnap([...args, '--verbose'], at(2));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`took over a stale lock of pid ${a.pid}\\b`));
    expect(fs.existsSync(lock)).toBe(false);
    expect(rsyncDiff(src, gen(spool, 2))).toEqual([]);
  });
});

describe('a lock that is not a lock file', () => {
  // a dangling symlink in the lock's place read as "released" for ever: a busy loop at full CPU
  test('a dangling symlink where the lock is: exit 3 at once, or after --wait, never a spin; nothing followed', async () => {
    const tmp = shmdir();
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    makeTree(src, { f: '1' });
    const args = ['backup', '--spool', spool, '--host', 'h1', '--part', `data=${src}`];
    expect(hardsnap(args, at(1)).code).toBe(0);
    const lock = path.join(spool, 'rsync', 'h1', '.hardsnap', 'lock');
    const target = path.join(tmp, 'nowhere');
    fs.symlinkSync(target, lock);
    const t0 = Date.now();
    const r = hardsnap(args, { ...at(2), timeoutMs: 20_000 });
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/holds the lock/);
    const w = hardsnap([...args, '--wait', '2s'], { ...at(2), timeoutMs: 20_000 });
    expect(w.code, w.stderr).toBe(3);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(fs.existsSync(target)).toBe(false);
    expect(fs.readlinkSync(lock)).toBe(target);
  });
});

describe.runIf(isRoot)('a full spool (tmpfs with a size: a real ENOSPC)', () => {
  test('out of inodes at every point of publishing (0 left, 1 left, ... until a run succeeds; tmpfs charges links too): a failed run published nothing (no generation put in place beside an unmoved last), a run that succeeded moved last; the next run publishes (an attack with real faults: exit 2 "nothing published" with the generation in place)', () => {
    const tmp = shmdir();
    const seen = new Set<number>();
    for (let free = 0; free <= 32 && !seen.has(0); free++) {
      const mnt = path.join(tmp, `m${free}`);
      fs.mkdirSync(mnt);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m,nr_inodes=300', 'tmpfs', mnt]);
      try {
        const spool = makeSpool(path.join(mnt, 'spool'));
        const src = path.join(tmp, `src${free}`);
        makeTree(src, Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`f${i}`, `${i}\n`])));
        const args = ['backup', '--spool', spool, '--host', 'h1', '--part', `data=${src}`];
        expect(hardsnap(args, at(1)).code).toBe(0);
        fs.writeFileSync(path.join(src, 'f1'), 'changed\n');
        const fill = path.join(mnt, 'fill');
        fs.mkdirSync(fill);
        for (let i = 0; fs.statfsSync(mnt).ffree > free; i++) fs.writeFileSync(path.join(fill, String(i)), '');
        const r = hardsnap(args, at(2));
        seen.add(r.code);
        const pdir = partDir(spool);
        if (r.code === 0) {
          expect(fs.readlinkSync(path.join(pdir, 'last'))).toBe(genName(2));
        } else {
          expect(r.code, r.stderr).toBe(2);
          expect(r.stderr).toMatch(/ENOSPC/);
          expect(fs.readlinkSync(path.join(pdir, 'last')), `${free} inodes left`).toBe(genName(1));
          expect(fs.existsSync(path.join(pdir, genName(2))), `${free} inodes left: ${r.stderr}`).toBe(false);
          const list = JSON.parse(hardsnap(['list', '--spool', spool, '--host', 'h1', '--json']).stdout) as {
            generation?: string;
            name?: string;
            state: string;
          }[];
          expect(list.filter((g) => g.state === 'complete').length, `${free} inodes left`).toBe(1);
        }
        fs.rmSync(fill, { recursive: true });
        const next = hardsnap(args, at(3));
        expect(next.code, next.stderr).toBe(0);
        expect(rsyncDiff(src, path.join(pdir, 'last'))).toEqual([]);
      } finally {
        execFileSync('umount', [mnt]);
      }
    }
    // the sweep met both ends: runs that failed for want of inodes, and runs that had enough
    expect([...seen].sort()).toEqual([0, 2]);
  });

  test('a run that fails for a full spool leaves no lock behind; status says the spool is full; once space is freed the next run publishes', () => {
    const tmp = shmdir();
    const src = path.join(tmp, 'src');
    const spool = path.join(tmp, 'spool');
    fs.mkdirSync(spool);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', spool]);
    try {
      makeSpool(spool);
      makeTree(src, { a: 'a', b: 'b' });
      const args = ['backup', '--spool', spool, '--host', 'h1', '--part', `data=${src}`];
      expect(hardsnap(args, at(1)).code).toBe(0);
      fs.writeFileSync(path.join(src, 'big'), Buffer.alloc(2 << 20, 7));
      // fill it: dd stops at ENOSPC
      spawnSync('dd', ['if=/dev/zero', `of=${path.join(spool, 'filler')}`, 'bs=1M'], { encoding: 'utf8' });
      const failed = hardsnap(args, at(2));
      expect(failed.code, failed.stderr).toBe(2);
      expect(failed.stderr).toMatch(/ENOSPC/);
      expect(fs.existsSync(path.join(spool, 'rsync', 'h1', '.hardsnap', 'lock'))).toBe(false);
      const st = hardsnap(['status', '--spool', spool, '--host', 'h1']);
      expect(st.code, st.stdout).toBe(2);
      expect(st.stdout).toMatch(/file system is full/);
      // the run log holds whole lines only
      const log = fs.readFileSync(path.join(spool, 'rsync', 'h1', '.hardsnap', 'runs.jsonl'), 'utf8');
      expect(log.endsWith('\n')).toBe(true);
      for (const line of log.trim().split('\n')) expect(() => JSON.parse(line)).not.toThrow();
      fs.rmSync(path.join(spool, 'filler'));
      const r = hardsnap(args, at(3));
      expect(r.code, r.stderr).toBe(0);
      expect(rsyncDiff(src, path.join(partDir(spool), 'last'))).toEqual([]);
    } finally {
      execFileSync('umount', [spool]);
    }
  });

  test('an empty lock (its write failed, or its run was killed between create and write): held while young, taken over once old', () => {
    const tmp = shmdir();
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    makeTree(src, { f: '1' });
    const args = ['backup', '--spool', spool, '--host', 'h1', '--part', `data=${src}`];
    expect(hardsnap(args, at(1)).code).toBe(0);
    const lock = path.join(spool, 'rsync', 'h1', '.hardsnap', 'lock');
    fs.writeFileSync(lock, '');
    const young = hardsnap(args, at(2));
    expect(young.code, young.stderr).toBe(3);
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(lock, old, old);
    const r = hardsnap([...args, '--verbose'], at(2));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/took over a stale lock/);
    expect(fs.existsSync(lock)).toBe(false);
  });

  test('a run log whose last line was torn (a full disk, a crash): the next record starts a line of its own and status reads it', () => {
    const tmp = shmdir();
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    makeTree(src, { f: '1' });
    const args = ['backup', '--spool', spool, '--host', 'h1', '--part', `data=${src}`];
    expect(hardsnap(args, at(1)).code).toBe(0);
    const log = path.join(spool, 'rsync', 'h1', '.hardsnap', 'runs.jsonl');
    fs.appendFileSync(log, '{"command":"hardsnap backup","start":"2026-01-01T0');
    fs.rmSync(src, { recursive: true });
    const failed = hardsnap(args, at(2));
    expect(failed.code).toBe(2);
    const lines = fs.readFileSync(log, 'utf8').trim().split('\n');
    expect(JSON.parse(lines.at(-1)!).status).toBe('failed');
    const st = hardsnap(['status', '--spool', spool, '--host', 'h1']);
    expect(st.code, st.stdout).toBe(2);
    expect(st.stdout).toMatch(/last run failed/);
  });
});

describe('a run SIGKILLed while taking over a stale lock', () => {
  // a killed run can leave lock.takeover behind (created, not yet removed); the next run spun on
  // it at full CPU for a minute (found by a SIGKILL stress loop: a completing run timed out)
  const deadPid = () => {
    const r = spawnSync('sh', ['-c', 'echo $$']);
    return Number(r.stdout.toString().trim());
  };
  test.for(['of a dead run', 'half-written (killed between create and write)'])('a takeover guard %s does not stall the next run', async (kind, { tmp }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    makeTree(src, { 'a.txt': 'a' });
    const dir = path.join(spool, 'rsync', 'h1', '.hardsnap');
    fs.mkdirSync(dir, { recursive: true });
    const dead = {
      pid: deadPid(),
      pidStart: null,
      hostname: os.hostname(),
      bootId: fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(),
      started: 'then',
      command: 'hardsnap backup',
    };
    fs.writeFileSync(path.join(dir, 'lock'), JSON.stringify(dead));
    fs.writeFileSync(path.join(dir, 'lock.takeover'), kind.startsWith('half') ? '' : JSON.stringify({ ...dead, command: 'takeover' }));
    const t0 = Date.now();
    const r = hardsnap(['backup', '--spool', spool, '--host', 'h1', '--part', `data=${src}`, '--verbose'], { ...at(1), timeoutMs: 50_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`took over a stale lock of pid ${dead.pid}\\b`));
    // not the minute it took: a dead holder's guard goes at once, an unreadable one after 2 s
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(fs.readdirSync(dir).filter((n) => n.startsWith('lock'))).toEqual([]);
  });
});

describe('the run log', () => {
  test('a run log that cannot be written does not turn a published generation into "failed, nothing published" (exit 23 with a warning, not 2)', ({ tmp }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    makeTree(src, { 'a.txt': 'a' });
    fs.mkdirSync(path.join(spool, 'rsync', 'h1', '.hardsnap', 'runs.jsonl'), { recursive: true });
    const r = backup(spool, src, 1);
    expect(r.code, r.stderr).toBe(23);
    expect(r.stderr).toBe('hardsnap: warning: host h1: .hardsnap/runs.jsonl: cannot record the run: EISDIR (status will not show it)\n');
    expect(fs.readlinkSync(path.join(partDir(spool), 'last'))).toBe(genName(1));
    expect(rsyncDiff(src, gen(spool, 1))).toEqual([]);
    expect(fs.existsSync(path.join(spool, 'rsync', 'h1', '.hardsnap', 'lock'))).toBe(false);
  });
});

// ---------- a spool that fills up ----------

const haveLoop = isRoot && fs.existsSync('/dev/loop-control') && spawnSync('which', ['mkfs.ext4']).status === 0;
const loopWhy = !isRoot ? 'needs root to mount a loop device' : 'no /dev/loop-control or mkfs.ext4 on this machine';

/** A small ext4 file system mounted at tmp/mnt for the duration of fn; always unmounted. */
async function withSmallExt4(tmp: string, mkfsArgs: string[], fn: (mnt: string) => Promise<void> | void): Promise<void> {
  const img = path.join(tmp, 'spool.img');
  const mnt = path.join(tmp, 'mnt');
  fs.mkdirSync(mnt);
  execFileSync('truncate', ['-s', '32M', img]);
  execFileSync('mkfs.ext4', ['-q', '-F', ...mkfsArgs, img], { stdio: 'pipe' });
  execFileSync('mount', ['-o', 'loop', img, mnt], { stdio: 'pipe' });
  try {
    await fn(mnt);
  } finally {
    spawnSync('umount', [mnt]);
  }
}

/** `verify --deep` over every generation of the spool (rehashing every file): exit 0, no problem. */
function expectVerifyPasses(spool: string): void {
  const v = hardsnap(['verify', '--spool', spool, '--host', 'h1', '--deep', '--json']);
  expect(v.code, v.stdout + v.stderr).toBe(0);
  expect(v.stderr).toBe('');
  const j = JSON.parse(v.stdout) as { ok: boolean; generations: { generation: string; hashed: number }[] };
  expect(j.ok).toBe(true);
  // both complete generations were checked, and their files rehashed
  expect(j.generations.map((g) => g.generation)).toEqual([genName(1), genName(3)]);
  expect(j.generations.every((g) => g.hashed > 0)).toBe(true);
}

describe.skipIf(!haveLoop)(`a spool that runs out (${haveLoop ? 'loop-mounted ext4' : loopWhy})`, () => {
  const checkFailedRun = (r: { code: number; stderr: string }, spool: string, before: string[]) => {
    const pdir = partDir(spool);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/ENOSPC/);
    expect(fs.readlinkSync(path.join(pdir, 'last'))).toBe(genName(1));
    expect(fs.readdirSync(pdir).filter((n) => /Z$/.test(n))).toEqual([genName(1)]);
    expect(fingerprint(path.join(pdir, genName(1)))).toEqual(before);
  };

  test('ENOSPC mid-file: exit 2 naming ENOSPC, no truncated file published, last unchanged; after space is freed the next run passes the oracle and verify --deep', async ({
    tmp,
  }) => {
    await withSmallExt4(tmp, [], async (mnt) => {
      const src = path.join(tmp, 'src');
      const spool = makeSpool(path.join(mnt, 'spool'));
      makeTree(src, { 'small/a.txt': 'a', 'small/b.txt': 'b'.repeat(100_000) });
      const args = ['backup', '--spool', spool, '--host', 'h1', '--part', `data=${src}`];
      expect(hardsnap(args, at(1)).code).toBe(0);
      const before = fingerprint(gen(spool, 1));
      // fill the file system, then add a file bigger than what is left
      const filler = path.join(mnt, 'filler');
      spawnSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=1M', 'count=20'], { stdio: 'ignore' });
      const free = fs.statfsSync(mnt).bavail * fs.statfsSync(mnt).bsize;
      fs.writeFileSync(path.join(src, 'big.bin'), Buffer.alloc(free + (2 << 20), 7));
      const r2 = hardsnap(args, at(2));
      checkFailedRun(r2, spool, before);
      expect(r2.stderr.trim().split('\n')).toHaveLength(1);
      expect(r2.stderr).toMatch(/^hardsnap: error: cannot write to the spool: ENOSPC \(part 'data', "big\.bin"\)/);
      fs.rmSync(filler);
      const r3 = hardsnap(args, at(3));
      expect(r3.code, r3.stderr).toBe(0);
      const pdir = partDir(spool);
      expect(fs.readlinkSync(path.join(pdir, 'last'))).toBe(genName(3));
      expect(rsyncDiff(src, path.join(pdir, genName(3)))).toEqual([]);
      expect(fingerprint(path.join(pdir, genName(1)))).toEqual(before);
      expectVerifyPasses(spool);
    });
  });

  test('out of inodes: exit 2 naming ENOSPC, last unchanged; after inodes are freed the next run passes the oracle and verify --deep', async ({ tmp }) => {
    await withSmallExt4(tmp, ['-N', '128'], async (mnt) => {
      const src = path.join(tmp, 'src');
      const spool = makeSpool(path.join(mnt, 'spool'));
      makeTree(src, { 'a/1.txt': '1', 'a/2.txt': '2' });
      const args = ['backup', '--spool', spool, '--host', 'h1', '--part', `data=${src}`];
      expect(hardsnap(args, at(1)).code).toBe(0);
      const before = fingerprint(gen(spool, 1));
      const filler = path.join(mnt, 'filler');
      fs.mkdirSync(filler);
      const left = fs.statfsSync(mnt).ffree;
      for (let i = 0; i < left - 20; i++) fs.writeFileSync(path.join(filler, String(i)), '');
      makeTree(src, Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`many/${i}.txt`, String(i)])));
      const r2 = hardsnap(args, at(2));
      checkFailedRun(r2, spool, before);
      fs.rmSync(filler, { recursive: true });
      const r3 = hardsnap(args, at(3));
      expect(r3.code, r3.stderr).toBe(0);
      expect(rsyncDiff(src, gen(spool, 3))).toEqual([]);
      expect(fingerprint(gen(spool, 1))).toEqual(before);
      expectVerifyPasses(spool);
    });
  });
});
