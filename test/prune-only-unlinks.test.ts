// Prune and trash deletion only remove names (issue 16): the faults are made for real, with
// chattr +i on a file and on a directory of a generation being pruned, a bind mount and a
// tmpfs mounted inside one, and a prune run as a user who owns the spool but is not root.
// Each test is named after the threat it pins.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, test } from './helpers/fixture.js';
import { BIN, REPO_ROOT, backupPart, hardsnap } from './helpers/run.js';
import { fingerprint, isRoot, assertNobodyCanRun } from './helpers/robust.js';
import { makeTree } from './helpers/tree.js';
import { generationNames, makeGeneration } from './helpers/ops.js';
import { dailyTimes, genName, makeSpool } from './helpers/spool.js';

const HOST = 'h1';

/**
 * What a surviving inode must keep: everything stat shows but the link count and atime, and
 * ctime unless asked (removing or adding a name of an inode updates its ctime: the kernel's).
 */
function inodeMeta(p: string, ctime = true): Record<string, unknown> {
  const s = fs.lstatSync(p, { bigint: true });
  return { ino: s.ino, mode: s.mode, uid: s.uid, gid: s.gid, size: s.size, mtimeNs: s.mtimeNs, ...(ctime ? { ctimeNs: s.ctimeNs } : {}) };
}

/**
 * A directory where `chattr +i` works: the test's own tmp when its file system takes it, else a
 * loop-mounted ext4 image. Returns the directory and a cleanup; a string is a reason to skip.
 */
function chattrDir(tmp: string): { dir: string; cleanup: () => void } | string {
  const probe = path.join(tmp, 'chattr-probe');
  fs.writeFileSync(probe, '');
  const ok = spawnSync('chattr', ['+i', probe], { stdio: 'ignore' }).status === 0;
  spawnSync('chattr', ['-i', probe], { stdio: 'ignore' });
  fs.rmSync(probe);
  if (ok) return { dir: tmp, cleanup: () => unflag(tmp) };
  if (!isRoot) return 'chattr +i needs root (CAP_LINUX_IMMUTABLE)';
  if (!fs.existsSync('/dev/loop-control')) return 'the test file system does not take chattr +i, and there is no loop device for an ext4 image';
  const img = path.join(tmp, 'ext4.img');
  const mnt = path.join(tmp, 'mnt');
  fs.mkdirSync(mnt);
  execFileSync('truncate', ['-s', '64M', img]);
  execFileSync('mkfs.ext4', ['-q', '-F', img], { stdio: 'pipe' });
  execFileSync('mount', ['-o', 'loop', img, mnt], { stdio: 'pipe' });
  return { dir: mnt, cleanup: () => (unflag(mnt), spawnSync('umount', ['-l', mnt])) };
}

/** chattr -i -a on everything below `dir`, so the fixture can remove it. */
function unflag(dir: string): void {
  spawnSync('chattr', ['-R', '-f', '-i', '-a', dir], { stdio: 'ignore' });
}

function prune(spool: string, extra: string[] = [], now = '2026-05-03T05:00:00Z') {
  return hardsnap(['prune', '--spool', spool, '--host', HOST, '--keep-last', '2', ...extra], { env: { HARDSNAP_NOW: now } });
}

/** A spool under `base` holding `days` daily generations (from 2026-05-01) of part p, a source of one file. */
async function daysOfOneFile(base: string, days: number): Promise<{ spool: string; src: string; times: string[] }> {
  const spool = makeSpool(path.join(base, 'spool'));
  const src = path.join(base, 'src');
  makeTree(src, { a: 'a' });
  const times = dailyTimes('2026-05-01', days);
  for (const t of times) await makeGeneration(spool, HOST, { p: src }, t);
  return { spool, src, times };
}

describe('prune and trash deletion only unlink names', () => {
  test('chattr +i on a file and on a directory of a pruned generation: no surviving inode is changed, backups go on, chattr -i lets the next prune empty the trash', async ({
    tmp,
    skip,
  }) => {
    const where = chattrDir(tmp);
    if (typeof where === 'string') return skip(where);
    try {
      const spool = makeSpool(path.join(where.dir, 'spool'));
      const src = path.join(where.dir, 'src');
      makeTree(src, { shared: 'same in every generation', 'd/inner': 'inner, same everywhere', 'd/other': 'o', plain: 'p' });
      const times = dailyTimes('2026-05-01', 3);
      for (const t of times) await makeGeneration(spool, HOST, { p: src }, t);
      const pdir = path.join(spool, 'rsync', HOST, 'p');
      const [g1, g2, g3] = times.map((t) => path.join(pdir, genName(t)));
      // the admin's (or an attacker's) flags in the oldest generation; `shared` and `d/inner`
      // are the inodes of the surviving generations too
      execFileSync('chattr', ['+i', path.join(g1!, 'shared')]);
      execFileSync('chattr', ['+i', path.join(g1!, 'd')]);
      const survivors = [g2!, g3!];
      const before = survivors.map((g) => fingerprint(g));
      const watched = [path.join(g3!, 'shared'), path.join(g3!, 'd', 'inner'), path.join(g2!, 'd', 'inner')];
      const meta = watched.map((p) => inodeMeta(p));
      const lastBefore = fs.readlinkSync(path.join(pdir, 'last'));

      const r = prune(spool);
      expect(r.code, r.stderr).toBe(0);
      // one line per thing to fix, each with errno, path and the chattr hint; not one per file
      const lines = r.stderr.trim().split('\n');
      expect(lines, r.stderr).toHaveLength(2);
      expect(lines[0]).toMatch(new RegExp(`warning: part 'p': cannot delete .*/\\.hardsnap/trash/${genName(times[0]!)}/d: EPERM .*chattr -i`));
      expect(lines[1]).toMatch(new RegExp(`cannot delete .*/\\.hardsnap/trash/${genName(times[0]!)}/shared: EPERM .*chattr -i`));
      expect(generationNames(spool, HOST, 'p')).toEqual(times.slice(1).map(genName));
      // nothing a surviving generation holds was changed: mode, owner, even the ctime of the
      // shared inodes (no name of theirs could be removed, and nothing else was done to them)
      expect(watched.map((p) => inodeMeta(p))).toEqual(meta);
      expect(survivors.map((g) => fingerprint(g))).toEqual(before);
      expect(fs.readlinkSync(path.join(pdir, 'last'))).toBe(lastBefore);
      const trash = path.join(pdir, '.hardsnap', 'trash');
      expect(fs.readdirSync(trash)).toEqual([genName(times[0]!)]);

      // later backups publish (exit 0), with the leftover as a warning, never a failure
      for (const [i, now] of ['2026-05-04T03:00:00Z', '2026-05-05T03:00:00Z'].entries()) {
        fs.writeFileSync(path.join(src, 'plain'), `day ${i}`);
        const b = backupPart({ spool, host: HOST, part: 'p', src }, now);
        expect(b.code, b.stderr).toBe(0);
        expect(b.stderr).toMatch(/cannot delete .*trash.*EPERM/);
        expect(b.stderr).not.toMatch(/ENOTDIR/);
        expect(fs.readlinkSync(path.join(pdir, 'last'))).toBe(genName(now));
        expect(fs.readFileSync(path.join(pdir, genName(now), 'shared'), 'utf8')).toBe('same in every generation');
      }
      // (the backups linked d/inner again: a new name, a new ctime; nothing else)
      const noCtime = (m: Record<string, unknown>) => ({ ...m, ctimeNs: undefined });
      expect(watched.map((p) => inodeMeta(p, false))).toEqual(meta.map(noCtime));
      // status says the trash is not empty
      const st = hardsnap(['status', '--spool', spool, '--host', HOST]);
      expect(st.stdout).toMatch(/trash/);
      expect(st.code).toBe(1);

      // the admin clears the flags: the next prune empties the trash
      unflag(where.dir);
      const again = prune(spool, [], '2026-05-05T05:00:00Z');
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).toBe('');
      expect(fs.readdirSync(trash)).toEqual([]);
    } finally {
      where.cleanup();
    }
  });

  test('a symlink in an immutable directory of a pruned generation: the file it points to outside the spool is never chmod-ed', async ({ tmp, skip }) => {
    const where = chattrDir(tmp);
    if (typeof where === 'string') return skip(where);
    try {
      const spool = makeSpool(path.join(where.dir, 'spool'));
      const src = path.join(where.dir, 'src');
      const target = path.join(where.dir, 'shadow');
      fs.writeFileSync(target, 'secret', { mode: 0o600 });
      fs.chmodSync(target, 0o600);
      makeTree(src, { 'd/a-link': { symlink: target }, 'd/b': 'b' });
      const times = dailyTimes('2026-05-01', 3);
      for (const t of times) await makeGeneration(spool, HOST, { p: src }, t);
      const pdir = path.join(spool, 'rsync', HOST, 'p');
      execFileSync('chattr', ['+i', path.join(pdir, genName(times[0]!), 'd')]);
      const before = inodeMeta(target);
      const r = prune(spool);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/cannot delete .*trash\/[^/]+\/d: EPERM/);
      expect(inodeMeta(target)).toEqual(before);
      expect(fs.statSync(target).mode & 0o7777).toBe(0o600);
    } finally {
      where.cleanup();
    }
  });

  test('chattr +a on a directory of a pruned generation: one line per prune, not one per entry and not one more each time; chattr -a lets the next prune finish', async ({
    tmp,
    skip,
  }) => {
    const where = chattrDir(tmp);
    if (typeof where === 'string') return skip(where);
    try {
      const spool = makeSpool(path.join(where.dir, 'spool'));
      const src = path.join(where.dir, 'src');
      makeTree(src, { 'log/a': 'a', 'log/b': 'b', 'log/c': 'c', other: 'o' });
      const times = dailyTimes('2026-05-01', 3);
      for (const t of times) await makeGeneration(spool, HOST, { p: src }, t);
      const pdir = path.join(spool, 'rsync', HOST, 'p');
      execFileSync('chattr', ['+a', path.join(pdir, genName(times[0]!), 'log')]);
      for (let i = 0; i < 3; i++) {
        const r = prune(spool);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
        expect(r.stderr).toMatch(new RegExp(`cannot delete .*/trash/${genName(times[0]!)}/log: EPERM .*chattr -i -a`));
      }
      unflag(where.dir);
      const r = prune(spool);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
      expect(fs.readdirSync(path.join(pdir, '.hardsnap', 'trash'))).toEqual([]);
    } finally {
      where.cleanup();
    }
  });

  test.runIf(isRoot)(
    'one generation immutable and one a mount point: status names each with its own cause (a re-attack: both were blamed on EPERM, immutable)',
    async ({ tmp, skip }) => {
      const where = chattrDir(tmp);
      if (typeof where === 'string') return skip(where);
      const { spool, times } = await daysOfOneFile(where.dir, 4);
      const g = (i: number) => path.join(spool, 'rsync', HOST, 'p', genName(times[i]!));
      execFileSync('chattr', ['+i', g(0)]);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', g(1)]);
      try {
        const r = prune(spool, ['--keep-last', '1'], '2026-05-05T05:00:00Z');
        expect(r.code, r.stderr).toBe(0);
        expect(generationNames(spool, HOST, 'p')).toEqual([genName(times[0]!), genName(times[1]!), genName(times[3]!)]);
        const st = hardsnap(['status', '--spool', spool, '--host', HOST], { env: { HARDSNAP_NOW: '2026-05-05T06:00:00Z' } });
        const line = st.stdout.split('\n').find((l) => l.includes('kept 2 generations'))!;
        expect(line, st.stdout).toMatch(new RegExp(`${genName(times[0]!)} \\(EPERM: [^)]*immutable`));
        expect(line).toMatch(new RegExp(`${genName(times[1]!)} \\((EBUSY|EXDEV): [^)]*mount`));
      } finally {
        spawnSync('umount', [g(1)]);
        where.cleanup();
      }
    },
  );

  test('chattr +i on the trash itself: prune keeps the generations and names the trash; backups go on (exit 0)', async ({ tmp, skip }) => {
    const where = chattrDir(tmp);
    if (typeof where === 'string') return skip(where);
    try {
      const { spool, src, times } = await daysOfOneFile(where.dir, 3);
      const pdir = path.join(spool, 'rsync', HOST, 'p');
      const trash = path.join(pdir, '.hardsnap', 'trash');
      fs.mkdirSync(path.join(trash, 'left-by-a-killed-prune'), { recursive: true, mode: 0o700 });
      execFileSync('chattr', ['+i', trash]);
      const r = prune(spool, ['--keep-last', '1']);
      expect(r.code, r.stderr).toBe(0);
      const lines = r.stderr.trim().split('\n');
      expect(lines[0]).toMatch(/the trash .*\/\.hardsnap\/trash refuses changes: EPERM/);
      expect(lines.slice(1)).toHaveLength(2);
      for (const l of lines.slice(1))
        expect(l).toMatch(/cannot move .* to the trash: EPERM \(the trash .* is immutable or append-only: `chattr -i -a` it\); the generation is kept/);
      expect(generationNames(spool, HOST, 'p')).toEqual(times.map(genName));
      // on record (prunes.jsonl), and status warns until a prune does its work (it said nothing)
      const status = (now: string) => hardsnap(['status', '--spool', spool, '--host', HOST, '--max-age', '0s'], { env: { HARDSNAP_NOW: now } });
      const st = status('2026-05-03T06:00:00Z');
      expect(st.code, st.stdout).toBe(1);
      expect(st.stdout).toMatch(
        /h1\/p: WARNING .* - the last prune \([^)]+\) kept 2 generations it was to remove \(EPERM: the trash .* is immutable or append-only: `chattr -i -a` it\): 2026-05-01T030000Z, 2026-05-02T030000Z; the next prune tries again/,
      );
      const log = () =>
        fs
          .readFileSync(path.join(spool, 'rsync', HOST, '.hardsnap', 'prunes.jsonl'), 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l));
      expect(log().at(-1)).toMatchObject({
        status: 'partial',
        partNames: ['p'],
        parts: { p: { removed: [], notMoved: [{ code: 'EPERM' }, { code: 'EPERM' }] } },
      });
      // backup --prune: the generation is published (exit 0), the prune's trouble on record
      const b = hardsnap(['backup', '--spool', spool, '--host', HOST, '--part', `p=${src}`, '--prune', '--keep-last', '1'], {
        env: { HARDSNAP_NOW: '2026-05-04T03:00:00Z' },
      });
      expect(b.code, b.stderr).toBe(0);
      expect(b.stderr).toMatch(/cannot move .* to the trash: EPERM/);
      expect(log()).toHaveLength(2);
      expect(log().at(-1)).toMatchObject({ status: 'partial', command: expect.stringMatching(/backup .*--prune/) });
      expect(status('2026-05-04T04:00:00Z').stdout).toMatch(/the last prune \([^)]+\) kept 3 generations it was to remove/);
      unflag(where.dir);
      const again = prune(spool, ['--keep-last', '1'], '2026-05-04T05:00:00Z');
      expect(again.code, again.stderr).toBe(0);
      expect(generationNames(spool, HOST, 'p')).toEqual(['2026-05-04T030000Z']);
      expect(fs.readdirSync(trash)).toEqual([]);
      expect(log().at(-1)).toMatchObject({ status: 'ok', parts: { p: { notMoved: [], leftovers: 0 } } });
      expect(log().at(-1).parts.p.removed).toHaveLength(3);
      const ok = status('2026-05-04T06:00:00Z');
      expect(ok.code, ok.stdout).toBe(0);
    } finally {
      where.cleanup();
    }
  });

  test('a prune that fails (its pins file a directory) is on record in prunes.jsonl and status warns until a prune succeeds; dry runs are not recorded', async ({
    tmp,
  }) => {
    const { spool, src, times } = await daysOfOneFile(tmp, 3);
    const log = path.join(spool, 'rsync', HOST, '.hardsnap', 'prunes.jsonl');
    expect(prune(spool, ['--keep-last', '1', '--dry-run']).code).toBe(0);
    expect(fs.existsSync(log)).toBe(false);
    const pins = path.join(spool, 'rsync', HOST, 'p', '.hardsnap', 'pins');
    fs.mkdirSync(pins, { mode: 0o700 });
    const r = prune(spool, ['--keep-last', '1']);
    expect(r.code, r.stderr).toBe(2);
    expect(JSON.parse(fs.readFileSync(log, 'utf8'))).toMatchObject({ status: 'failed', partNames: ['p'], error: expect.stringMatching(/EISDIR/) });
    const st = hardsnap(['status', '--spool', spool, '--host', HOST, '--max-age', '0s'], { env: { HARDSNAP_NOW: '2026-05-03T06:00:00Z' } });
    expect(st.code, st.stdout).toBe(1);
    expect(st.stdout).toMatch(/h1\/p: WARNING .* - the last prune \([^)]+\) failed: EISDIR.*; the generations it was to remove are still here/);
    fs.rmdirSync(pins);
    expect(prune(spool, ['--keep-last', '1']).code).toBe(0);
    expect(hardsnap(['status', '--spool', spool, '--host', HOST, '--max-age', '0s'], { env: { HARDSNAP_NOW: '2026-05-03T06:00:00Z' } }).code).toBe(0);
  });

  test('a generation whose own directory is immutable is kept where it is, reported in one line, and prune goes on', async ({ tmp, skip }) => {
    const where = chattrDir(tmp);
    if (typeof where === 'string') return skip(where);
    try {
      const { spool, src, times } = await daysOfOneFile(where.dir, 4);
      const pdir = path.join(spool, 'rsync', HOST, 'p');
      execFileSync('chattr', ['+i', path.join(pdir, genName(times[0]!))]);
      const r = prune(spool, [], '2026-05-04T05:00:00Z');
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(new RegExp(`cannot move .*/p/${genName(times[0]!)} to the trash: EPERM .*chattr -i.*kept`));
      // the second oldest was removed all the same
      expect(generationNames(spool, HOST, 'p')).toEqual([genName(times[0]!), genName(times[2]!), genName(times[3]!)]);
      const dry = prune(spool, ['--dry-run'], '2026-05-04T05:00:00Z');
      expect(dry.stdout).toMatch(new RegExp(`${genName(times[0]!)}\\s+remove`));
    } finally {
      where.cleanup();
    }
  });
});

describe.runIf(isRoot)('prune never crosses a mount point (needs root to mount)', () => {
  test('a bind mount and a tmpfs inside a pruned generation: their files survive, the rest is deleted, umount lets the next prune finish', async ({ tmp }) => {
    const spool = makeSpool(path.join(tmp, 'spool'));
    const src = path.join(tmp, 'src');
    const outside = path.join(tmp, 'outside');
    makeTree(src, { 'bind/x': 'x', 'tmpfs/y': 'y', 'gone/z': 'z' });
    makeTree(outside, { precious: 'precious data', 'deep/er': 'more' });
    const times = dailyTimes('2026-05-01', 3);
    for (const t of times) await makeGeneration(spool, HOST, { p: src }, t);
    const pdir = path.join(spool, 'rsync', HOST, 'p');
    const g1 = path.join(pdir, genName(times[0]!));
    const mounts: string[] = [];
    const mount = (args: string[], at: string) => {
      execFileSync('mount', [...args, at], { stdio: 'pipe' });
      mounts.push(at);
    };
    try {
      mount(['--bind', outside], path.join(g1, 'bind'));
      mount(['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs'], path.join(g1, 'tmpfs'));
      fs.writeFileSync(path.join(g1, 'tmpfs', 'on-tmpfs'), 'tmpfs data');
      const r = prune(spool, [], '2026-05-03T05:00:00Z');
      expect(r.code, r.stderr).toBe(0);
      const lines = r.stderr.trim().split('\n');
      expect(lines, r.stderr).toHaveLength(2);
      for (const l of lines) expect(l).toMatch(/cannot delete .*trash\/.*\/(bind|tmpfs): EXDEV \(a file system is mounted there: not crossed; umount it\)/);
      // the mounted files survive; what was not under a mount is gone
      expect(fs.readFileSync(path.join(outside, 'precious'), 'utf8')).toBe('precious data');
      expect(fs.readFileSync(path.join(outside, 'deep/er'), 'utf8')).toBe('more');
      const inTrash = path.join(pdir, '.hardsnap', 'trash', genName(times[0]!));
      expect(fs.readFileSync(path.join(inTrash, 'tmpfs', 'on-tmpfs'), 'utf8')).toBe('tmpfs data');
      expect(fs.existsSync(path.join(inTrash, 'gone'))).toBe(false);
      // a backup is not blocked by it
      const b = backupPart({ spool, host: HOST, part: 'p', src }, '2026-05-04T03:00:00Z');
      expect(b.code, b.stderr).toBe(0);
      expect(fs.readFileSync(path.join(outside, 'precious'), 'utf8')).toBe('precious data');
      // the admin unmounts them (they moved with the generation): the next prune finishes
      for (const m of ['bind', 'tmpfs']) execFileSync('umount', [path.join(inTrash, m)]);
      mounts.length = 0;
      const again = prune(spool, [], '2026-05-04T05:00:00Z');
      expect(again.code, again.stderr).toBe(0);
      expect(fs.readdirSync(path.join(pdir, '.hardsnap', 'trash'))).toEqual([]);
      expect(fs.readFileSync(path.join(outside, 'precious'), 'utf8')).toBe('precious data');
    } finally {
      // wherever they are now (moved into the trash with the generation)
      const table = fs.readFileSync('/proc/self/mounts', 'utf8');
      for (const line of table.split('\n').reverse()) {
        const at = line.split(' ')[1];
        if (at && at.startsWith(tmp)) spawnSync('umount', ['-l', at]);
      }
    }
  });

  test('a file bind-mounted over a file of a pruned generation is not deleted', async ({ tmp }) => {
    const spool = makeSpool(path.join(tmp, 'spool'));
    const src = path.join(tmp, 'src');
    const secret = path.join(tmp, 'secret');
    fs.writeFileSync(secret, 'keep me');
    makeTree(src, { f: 'f', g: 'g' });
    const times = dailyTimes('2026-05-01', 3);
    for (const t of times) await makeGeneration(spool, HOST, { p: src }, t);
    const pdir = path.join(spool, 'rsync', HOST, 'p');
    const target = path.join(pdir, genName(times[0]!), 'g');
    try {
      execFileSync('mount', ['--bind', secret, target]);
      const r = prune(spool, [], '2026-05-03T05:00:00Z');
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/cannot delete .*\/g: EBUSY/);
      expect(fs.readFileSync(secret, 'utf8')).toBe('keep me');
    } finally {
      const table = fs.readFileSync('/proc/self/mounts', 'utf8');
      for (const line of table.split('\n').reverse()) {
        const at = line.split(' ')[1];
        if (at && at.startsWith(tmp)) spawnSync('umount', ['-l', at]);
      }
    }
  });
});

const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => fs.existsSync(p));
describe.runIf(isRoot && setpriv)('a prune that is not root (setpriv to nobody, who owns the spool)', () => {
  test('read-only directories of a pruned generation are opened up, its read-only files shared with survivors are never chmod-ed', async ({ tmp }) => {
    assertNobodyCanRun(REPO_ROOT);
    const spool = makeSpool(path.join(tmp, 'spool'));
    const src = path.join(tmp, 'src');
    makeTree(src, { 'ro/f': 'f', 'ro/deeper/h': 'h', g: 'g' });
    fs.chmodSync(path.join(src, 'ro', 'f'), 0o444);
    fs.chmodSync(path.join(src, 'ro', 'deeper'), 0o500);
    fs.chmodSync(path.join(src, 'ro'), 0o555);
    const times = dailyTimes('2026-05-01', 3);
    for (const t of times) await makeGeneration(spool, HOST, { p: src }, t);
    fs.chmodSync(tmp, 0o755);
    expect(spawnSync('chown', ['-R', '65534:65534', spool]).status).toBe(0);
    const pdir = path.join(spool, 'rsync', HOST, 'p');
    const survivor = path.join(pdir, genName(times[2]!), 'ro', 'f');
    const meta = inodeMeta(survivor, false);
    const r = hardsnap(['--reuid=65534', '--regid=65534', '--clear-groups', BIN, 'prune', '--spool', spool, '--host', HOST, '--keep-last', '1'], {
      bin: setpriv!,
      env: { HARDSNAP_NOW: '2026-05-03T05:00:00Z' },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(generationNames(spool, HOST, 'p')).toEqual([genName(times[2]!)]);
    expect(fs.readdirSync(path.join(pdir, '.hardsnap', 'trash'))).toEqual([]);
    expect(inodeMeta(survivor, false)).toEqual(meta);
    expect(fs.statSync(path.join(pdir, genName(times[2]!), 'ro')).mode & 0o7777).toBe(0o555);
  });
});

describe("prune never moves or deletes through a symlink in the part's metadata", () => {
  for (const which of ['.hardsnap/trash', '.hardsnap'] as const) {
    test(`${which} made a symlink to a directory outside the spool: prune keeps every generation, deletes nothing there, says why (exit 0); a backup goes on past a trash symlink and refuses a .hardsnap symlink`, async ({
      tmp,
    }) => {
      const { spool, src, times } = await daysOfOneFile(tmp, 3);
      const pdir = path.join(spool, 'rsync', HOST, 'p');
      // outside the spool, world-readable, with something precious in a "trash" of its own
      const outside = path.join(tmp, 'outside');
      makeTree(outside, { 'trash/precious/data': 'keep me', 'manifests/x': '' });
      fs.chmodSync(outside, 0o755);
      if (which === '.hardsnap') {
        fs.cpSync(path.join(pdir, '.hardsnap', 'manifests'), path.join(outside, 'manifests'), { recursive: true });
        fs.rmSync(path.join(pdir, '.hardsnap'), { recursive: true });
        fs.symlinkSync(outside, path.join(pdir, '.hardsnap'));
      } else {
        fs.rmSync(path.join(pdir, '.hardsnap', 'trash'), { recursive: true, force: true });
        fs.symlinkSync(path.join(outside, 'trash'), path.join(pdir, '.hardsnap', 'trash'));
      }
      const before = fingerprint(outside);
      const r = prune(spool, ['--keep-last', '1']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/is a symlink: generations are never moved or deleted through it/);
      expect(generationNames(spool, HOST, 'p')).toEqual(times.map(genName));
      expect(fingerprint(outside)).toEqual(before);
      expect(fs.readFileSync(path.join(outside, 'trash/precious/data'), 'utf8')).toBe('keep me');
      const b = backupPart({ spool, host: HOST, part: 'p', src }, '2026-05-04T03:00:00Z');
      if (which === '.hardsnap') {
        // a backup does not write its manifests through it either (a cron trial: it did): refused
        expect(b.code, b.stderr).toBe(2);
        expect(b.stderr).toMatch(/p\/\.hardsnap is a symlink \(to .*outside\): hardsnap does not write through symlinks inside the spool/);
        expect(fingerprint(outside)).toEqual(before);
      } else expect(b.code, b.stderr).toBe(0);
      expect(fingerprint(outside).filter((l) => l.includes('trash'))).toEqual(before.filter((l) => l.includes('trash')));
    });
  }
});

// found by an attack: a name hardsnap removes (a leftover `.last.*.tmp`, which names a
// published generation) was removed with fs.rmSync, which, its unlink refused in an append-only
// part directory, read the symlink's target as a directory and deleted what was in it
describe('a leftover of a killed run is removed as a name, never through it', () => {
  test("a `.last.*.tmp` left by a killed run, naming the published generation, in a part directory made append-only (chattr +a): the backup fails naming it (EPERM), the generation keeps every file; without it, the run's own error is told", async ({
    tmp,
    skip,
  }) => {
    const where = chattrDir(tmp);
    if (typeof where === 'string') return skip(where);
    try {
      const spool = makeSpool(path.join(where.dir, 'spool'));
      const src = path.join(where.dir, 'src');
      makeTree(src, { a: 'a', 'd/b': 'b' });
      const s = { spool, host: HOST, part: 'p', src };
      const day1 = backupPart(s, '2026-05-01T03:00:00Z');
      expect(day1.code, day1.stderr).toBe(0);
      const part = path.join(spool, 'rsync', HOST, 'p');
      const gen = path.join(part, fs.readlinkSync(path.join(part, 'last')));
      const before = fingerprint(gen);
      // what a run killed between making the new `last` and renaming it leaves
      fs.symlinkSync(path.basename(gen), path.join(part, '.last.99999.tmp'));
      execFileSync('chattr', ['+a', part]);
      fs.writeFileSync(path.join(src, 'a'), 'changed');
      const r = backupPart(s, '2026-05-02T03:00:00Z');
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/EPERM.*\.last\.99999\.tmp/);
      expect(fingerprint(gen)).toEqual(before);
      // the leftover gone, the run fails where the append-only directory stops it, and says that
      execFileSync('chattr', ['-a', part]);
      fs.unlinkSync(path.join(part, '.last.99999.tmp'));
      execFileSync('chattr', ['+a', part]);
      const r2 = backupPart(s, '2026-05-03T03:00:00Z');
      expect(r2.code, r2.stderr).toBe(2);
      expect(r2.stderr).toMatch(/EPERM/);
      expect(r2.stderr).not.toMatch(/ENOENT|ENOTDIR/);
      expect(fingerprint(gen)).toEqual(before);
    } finally {
      where.cleanup();
    }
  });
});

// found by an attack: a bind mount of the same file system has the same st_dev, so the check
// that the trash is the part's own directory passed: prune and backup emptied the outside
// directory mounted on the trash (the backup silently, exit 0)
describe('an outside directory bind-mounted on the trash, on .hardsnap above it, or on the manifests directory', () => {
  test.for(['.hardsnap/trash', '.hardsnap', '.hardsnap/manifests'])(
    'mounted on %s: prune and backup delete nothing of it, each says why in one line; umount lets the next prune finish',
    async (where, { tmp }) => {
      if (!isRoot) throw new Error('needs root to mount');
      const spool = makeSpool(path.join(tmp, 'spool'));
      const src = path.join(tmp, 'src');
      makeTree(src, { a: 'a' });
      const times = dailyTimes('2026-05-01', 3);
      for (const t of times) await makeGeneration(spool, HOST, { p: src }, t);
      const pdir = path.join(spool, 'rsync', HOST, 'p');
      const outside = path.join(tmp, 'outside');
      // what the outside directory holds where the trash's content would be; on the manifests
      // directory, copies of the manifests (the part's generations keep theirs) and names prune
      // would remove there (a killed run's .hsm.tmp, a manifest whose generation is gone)
      if (where === '.hardsnap/manifests') {
        execFileSync('cp', ['-a', path.join(pdir, where), outside]);
        makeTree(outside, { 'notes.tmp': 'precious', 'db.hsm': 'precious too' });
      } else makeTree(outside, where === '.hardsnap' ? { 'trash/old/file': 'precious', top: 'p2' } : { 'sub/file': 'precious', top: 'p2' });
      const before = fingerprint(outside);
      const at = path.join(pdir, where);
      fs.mkdirSync(at, { recursive: true });
      execFileSync('mount', ['--bind', outside, at]);
      try {
        const r = prune(spool, [], '2026-05-03T05:00:00Z');
        expect(r.stderr).toMatch(/is a mount point: what is mounted there is not the spool's/);
        expect(fingerprint(outside)).toEqual(before);
        const b = backupPart({ spool, host: HOST, part: 'p', src }, '2026-05-04T03:00:00Z');
        expect(b.stderr).toMatch(/is a mount point: what is mounted there is not the spool's/);
        // (on .hardsnap the backup writes its manifest there, where the part's metadata is: nothing of it deleted)
        const kept = new Set(fingerprint(outside));
        for (const e of before.slice(1)) expect(kept.has(e), e).toBe(true);
      } finally {
        execFileSync('umount', [at]);
      }
      const again = prune(spool, [], '2026-05-05T05:00:00Z');
      expect(again.code, again.stderr).toBe(0);
      const kept = new Set(fingerprint(outside));
      for (const e of before.slice(1)) expect(kept.has(e), e).toBe(true);
    },
  );
});

// found by an attack: the removal recursed once per directory level, and a tree ~2,000 levels
// deep (any user can make one in what is backed up) overflowed the call stack: prune failed, the
// generation stayed in the trash, and every later backup failed emptying it; verify overflowed at
// ~4,000 levels
describe('a directory tree thousands of levels deep', () => {
  test('prune removes it, the next backup runs, verify and diff read it (no recursion to overflow)', ({ tmp }) => {
    const spool = makeSpool(path.join(tmp, 'spool'));
    const src = path.join(tmp, 'src');
    makeTree(src, { a: 'a' });
    try {
      // (past PATH_MAX: made one level at a time from the directory above)
      execFileSync('python3', [
        '-c',
        'import os,sys\nos.chdir(sys.argv[1])\nfor _ in range(5200):\n os.mkdir("d"); os.chdir("d")\nopen("leaf","w").write("deep\\n")',
        src,
      ]);
      const s = { spool, host: HOST, part: 'p', src };
      for (const day of ['01', '02']) {
        const b = backupPart(s, `2026-05-${day}T03:00:00Z`);
        expect(b.code, b.stderr).toBe(0);
        fs.writeFileSync(path.join(src, 'a'), 'changed');
      }
      // (diff overflowed at 5,000 levels: a re-attack)
      const d = hardsnap(['diff', '--spool', spool, '--host', HOST, '--part', 'p', '--json', '2026-05-01T030000Z', '2026-05-02T030000Z']);
      expect(d.code, d.stderr).toBe(0);
      expect(d.stdout).toMatch(/"path": "a"/);
      const r = prune(spool, ['--keep-last', '1'], '2026-05-02T05:00:00Z');
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
      expect(fs.readdirSync(path.join(spool, 'rsync', HOST, 'p', '.hardsnap', 'trash'))).toEqual([]);
      const b = backupPart(s, '2026-05-03T03:00:00Z');
      expect(b.code, b.stderr).toBe(0);
      const v = hardsnap(['verify', '--spool', spool, '--host', HOST]);
      expect(v.code, v.stdout + v.stderr).toBe(0);
    } finally {
      // (Node.js's own rm -rf, the fixture's, recurses too)
      execFileSync('rm', ['-rf', src, spool]);
    }
  });
});
