// A tape job's lease (issue 21): `hardsnap lease` resolves `last` once and holds that
// generation against prune until `hardsnap release` or an expiry; a file, not a process, so it
// holds across hosts. Attacks: an expired lease, a lease file garbled or removed, a generation
// pruned by something that did not see the lease, another host, a read-only spool.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fsDefault from 'node:fs';
import { vi } from 'vitest';
import { describe, expect, test } from './helpers/fixture.js';
import { BIN, REPO_ROOT, backupPart, hardsnap, sleep } from './helpers/run.js';
import { rsyncDiff } from './helpers/oracle.js';
import { mutate } from './helpers/bench-tree.js';
import { HOST, PART, key, nightlySpool, realChanges, runRecipe, runSh, tarList, type Spool } from './helpers/tape.js';
import { generationNames } from './helpers/ops.js';
import { readTree } from './helpers/tree.js';
import { isRoot } from './helpers/robust.js';
import { leaseLast } from '../src/spool/lease-last.js';

interface Leased {
  id: string;
  part: string;
  path: string;
}

function lease(s: Spool, args: string[], env: Record<string, string> = {}): Leased[] {
  const r = hardsnap(['lease', '--spool', s.spool, '--host', HOST, ...args], { env });
  expect(r.code, r.stderr).toBe(0);
  expect(r.stderr).toBe('');
  return r.stdout
    .trimEnd()
    .split('\n')
    .map((l) => {
      const [id, part, p] = l.split('\t') as [string, string, string];
      return { id, part, path: p };
    });
}

const opts = (s: Spool) => ['--spool', s.spool, '--host', HOST];
const leaseFiles = (s: Spool) => {
  const dir = path.join(s.pdir, '.hardsnap', 'leases');
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => !n.startsWith('.')) : [];
};
const names = (s: Spool) => generationNames(s.spool, HOST, PART);

describe('hardsnap lease', () => {
  test('holds what last named while a backup publishes and prunes: a copy of the leased path made meanwhile is exact; prune says why it keeps it; release lets it go', async ({
    tmp,
  }) => {
    const s = nightlySpool(tmp, 600);
    await s.next();
    const n1 = await s.next();
    const before = Date.now();
    const [l] = lease(s, ['--part', PART, '--for', '1h', '--holder', 'tape job']);
    expect(l).toMatchObject({ part: PART, path: n1.path });
    expect(l!.id).toMatch(/^[0-9a-f]{16}$/);
    const [file] = leaseFiles(s);
    expect(file).toMatch(new RegExp(`^${n1.name}\\.\\d+\\.${l!.id}\\.lease$`));
    const info = JSON.parse(fs.readFileSync(path.join(s.pdir, '.hardsnap', 'leases', file!), 'utf8')) as Record<string, unknown>;
    expect(info).toMatchObject({ generation: n1.name, holder: 'tape job', detached: true, id: l!.id });
    const expires = Date.parse(info.expires as string);
    expect(expires - before).toBeGreaterThanOrEqual(3_600_000 - 1000);
    expect(expires - Date.now()).toBeLessThanOrEqual(3_600_000);

    // a slow copy of the leased path, and meanwhile a night's changes, a backup and a prune
    const copy = path.join(tmp, 'copy');
    const rsync = spawn('rsync', ['-aHAX', '--numeric-ids', '--modify-window=-1', '--bwlimit=400', `${l!.path}/`, `${copy}/`], { stdio: 'ignore' });
    const copied = new Promise<number | null>((r) => rsync.on('close', (code) => r(code)));
    let copyDone = false;
    void copied.then(() => (copyDone = true));
    await sleep(300);
    mutate(s.src, 77, { change: 5, add: 3, delete: 3, rename: 3 });
    const b = backupPart({ spool: s.spool, host: HOST, part: PART, src: s.src }, '2026-03-03T03:15:00Z', ['--prune', '--keep-last', '1']);
    expect(b.code, b.stderr).toBe(0);
    expect(copyDone, 'the copy was still running when the backup and its prune were done').toBe(false);
    expect(fs.readlinkSync(path.join(s.pdir, 'last'))).toBe('2026-03-03T031500Z');
    expect(names(s)).toEqual([n1.name, '2026-03-03T031500Z']); // the oldest pruned, the leased one kept
    expect(await copied).toBe(0);
    expect(rsyncDiff(n1.path, copy), 'the copy is the leased generation, whole').toEqual([]);

    const dry = hardsnap(['prune', ...opts(s), '--keep-last', '1', '--dry-run'], { env: { HARDSNAP_NOW: '2026-03-03T04:00:00Z' } });
    expect(dry.stdout).toMatch(new RegExp(`${n1.name}\\s+keep\\s+leased by tape job until \\S+ \\(lease ${l!.id}\\)`));
    const st = hardsnap(['status', ...opts(s), '--max-age', '0s', '--json'], { env: { HARDSNAP_NOW: '2026-03-03T04:00:00Z' } });
    const part = (JSON.parse(st.stdout) as { hosts: { parts: { leases: Record<string, unknown>[] }[] }[] }).hosts[0]!.parts[0]!;
    expect(part.leases).toEqual([expect.objectContaining({ generation: n1.name, holder: 'tape job', id: l!.id, detached: true, stale: null })]);
    const text = hardsnap(['status', ...opts(s), '--max-age', '0s'], { env: { HARDSNAP_NOW: '2026-03-03T04:00:00Z' } });
    expect(text.code, text.stdout).toBe(0);
    expect(text.stdout).toContain(`1 lease: ${n1.name} leased by tape job until`);

    const rel = hardsnap(['release', ...opts(s), l!.id]);
    expect(rel.code, rel.stderr).toBe(0);
    expect(rel.stderr + rel.stdout).toBe(''); // quiet under cron
    expect(leaseFiles(s)).toEqual([]);
    const p = hardsnap(['prune', ...opts(s), '--keep-last', '1'], { env: { HARDSNAP_NOW: '2026-03-03T04:00:00Z' } });
    expect(p.code, p.stderr).toBe(0);
    expect(names(s)).toEqual(['2026-03-03T031500Z']);
  }, 120_000);

  test('an expired lease no longer holds: status warns it is stale, prune removes the generation and the file, release says the copy may be incomplete (exit 2)', async ({
    tmp,
  }) => {
    const s = nightlySpool(tmp, 30);
    const n0 = await s.next();
    const [l] = lease(s, ['--part', PART, '--for', '1s', '--holder', 'bacula']);
    await sleep(1500);
    const st = hardsnap(['status', ...opts(s), '--max-age', '0s']);
    expect(st.code).toBe(1);
    expect(st.stdout).toMatch(new RegExp(`1 stale lease \\(${n0.name} leased by bacula until \\S+ \\(lease ${l!.id}\\): it expired at`));
    await s.next();
    const p = hardsnap(['prune', ...opts(s), '--keep-last', '1'], { env: { HARDSNAP_NOW: '2026-03-02T04:00:00Z' } });
    expect(p.code, p.stderr).toBe(0);
    expect(names(s)).not.toContain(n0.name);
    expect(leaseFiles(s)).toEqual([]);
    const rel = hardsnap(['release', ...opts(s), l!.id]);
    expect(rel.code).toBe(2);
    expect(rel.stderr).toMatch(/no lease [0-9a-f]{16} in the spool: released already, or it expired and a prune removed it/);
    expect(rel.stderr.trim().split('\n')).toHaveLength(1);
  });

  test('a lease that expired but whose generation is still there: release warns and exits 0; releasing twice is exit 2', async ({ tmp }) => {
    const s = nightlySpool(tmp, 30);
    const n0 = await s.next();
    const [l] = lease(s, ['--part', PART, '--for', '1s']);
    await sleep(1500);
    const rel = hardsnap(['release', ...opts(s), l!.id]);
    expect(rel.code, rel.stderr).toBe(0);
    expect(rel.stderr).toMatch(
      new RegExp(`warning: lease ${l!.id} on ${PART} ${n0.name} stopped counting before it was released \\(it expired at .*\\); the generation is still there`),
    );
    expect(hardsnap(['release', ...opts(s), l!.id]).code).toBe(2);
  });

  test('a garbled lease file holds for a minute, then not; a lease file removed by hand holds nothing; release tells which', async ({ tmp }) => {
    const s = nightlySpool(tmp, 30);
    const n0 = await s.next();
    const [garbled] = lease(s, ['--part', PART, '--for', '1h']);
    await s.next();
    const file = path.join(s.pdir, '.hardsnap', 'leases', leaseFiles(s)[0]!);
    fs.writeFileSync(file, '{"generation": 12, garb');
    const now = { HARDSNAP_NOW: '2026-03-02T04:00:00Z' };
    const dry = hardsnap(['prune', ...opts(s), '--keep-last', '1', '--dry-run'], { env: now });
    expect(dry.stdout).toMatch(new RegExp(`${n0.name}\\s+keep\\s+leased by an unreadable lease file`));
    const st = hardsnap(['status', ...opts(s), '--max-age', '0s'], { env: now });
    expect(st.stdout).toContain(`1 lease: ${n0.name} leased by an unreadable lease file`);
    // a minute later it no longer counts (a disk that damaged it must not pin forever)
    const old = new Date(Date.now() - 120_000);
    fs.utimesSync(file, old, old);
    const st2 = hardsnap(['status', ...opts(s), '--max-age', '0s'], { env: now });
    expect(st2.code).toBe(1);
    expect(st2.stdout).toMatch(/stale lease .*it is unreadable/);
    // released now: the generation is still there, so the job's copy was whole
    const rel = hardsnap(['release', ...opts(s), garbled!.id]);
    expect(rel.code, rel.stderr).toBe(0);
    expect(rel.stderr).toMatch(/stopped counting before it was released \(its file was unreadable\); the generation is still there/);

    // removed by hand: nothing holds the generation, a prune removes it, release says so
    const [removed] = lease(s, ['--part', PART, '--for', '1h']);
    const gen = removed!.path;
    fs.rmSync(path.join(s.pdir, '.hardsnap', 'leases', leaseFiles(s)[0]!));
    await s.next();
    const p = hardsnap(['prune', ...opts(s), '--keep-last', '1'], { env: { HARDSNAP_NOW: '2026-03-03T04:00:00Z' } });
    expect(p.code, p.stderr).toBe(0);
    expect(fs.existsSync(gen)).toBe(false);
    expect(hardsnap(['release', ...opts(s), removed!.id]).code).toBe(2);
  });

  test('a generation removed by a prune that did not see the lease: release says the copy may be incomplete (exit 2)', async ({ tmp }) => {
    const s = nightlySpool(tmp, 30);
    await s.next();
    const [l] = lease(s, ['--part', PART, '--for', '1h']);
    await s.next();
    const dir = path.join(s.pdir, '.hardsnap', 'leases');
    const aside = path.join(tmp, 'aside');
    fs.renameSync(dir, aside); // what an older hardsnap, or a host that cannot see the file, does
    expect(hardsnap(['prune', ...opts(s), '--keep-last', '1'], { env: { HARDSNAP_NOW: '2026-03-02T04:00:00Z' } }).code).toBe(0);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(aside, dir);
    const rel = hardsnap(['release', ...opts(s), l!.id]);
    expect(rel.code).toBe(2);
    expect(rel.stderr).toMatch(new RegExp(`error: ${PART} \\S+, held by lease ${l!.id}, is gone: something that did not see the lease removed it`));
  });

  test.skipIf(!isRoot)(
    'a lease taken on another host (another UTS namespace: other hostname, its process gone) holds here, and is released from here (needs root: unshare -u)',
    async ({ tmp }) => {
      const s = nightlySpool(tmp, 30);
      const n0 = await s.next();
      const r = spawnSync(
        'unshare',
        ['-u', 'sh', '-c', `hostname tape-host-b && exec "${BIN}" lease --spool "${s.spool}" --host ${HOST} --part ${PART} --for 1h --holder "NetBackup on b"`],
        { encoding: 'utf8' },
      );
      expect(r.status, r.stderr).toBe(0);
      const id = r.stdout.split('\t')[0]!;
      const info = JSON.parse(fs.readFileSync(path.join(s.pdir, '.hardsnap', 'leases', leaseFiles(s)[0]!), 'utf8')) as { hostname: string; pid: number };
      expect(info.hostname).toBe('tape-host-b');
      expect(() => process.kill(info.pid, 0)).toThrow(); // its process is gone: a detached lease does not care
      await s.next();
      const p = hardsnap(['prune', ...opts(s), '--keep-last', '1', '--verbose'], { env: { HARDSNAP_NOW: '2026-03-02T04:00:00Z' } });
      expect(p.code, p.stderr).toBe(0);
      expect(names(s)).toContain(n0.name);
      const rel = hardsnap(['release', ...opts(s), id]);
      expect(rel.code, rel.stderr).toBe(0);
      expect(hardsnap(['prune', ...opts(s), '--keep-last', '1'], { env: { HARDSNAP_NOW: '2026-03-02T04:00:00Z' } }).code).toBe(0);
      expect(names(s)).not.toContain(n0.name);
    },
  );

  test('every part or none: --all with a part that has no generation is exit 2 and leaves no lease; usage errors are exit 1; a last naming a missing generation is exit 2', async ({
    tmp,
  }) => {
    const s = nightlySpool(tmp, 30);
    await s.next();
    const other = path.join(s.spool, 'rsync', HOST, 'empty');
    fs.mkdirSync(path.join(other, '.hardsnap'), { recursive: true }); // a part whose first backup never finished
    const r = hardsnap(['lease', ...opts(s), '--all', '--for', '1h']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/part 'empty' has no complete generation to lease/);
    expect(leaseFiles(s)).toEqual([]);
    expect(r.stdout).toBe('');
    fs.rmSync(other, { recursive: true });
    // usage errors
    for (const bad of [
      ['--part', PART],
      ['--for', '1h'],
      ['--part', PART, '--all', '--for', '1h'],
      ['--part', 'nope', '--for', '1h'],
      ['--part', PART, '--for', '0s'],
      ['--part', PART, '--for', 'soon'],
    ]) {
      const u = hardsnap(['lease', ...opts(s), ...bad]);
      expect(u.code, bad.join(' ')).toBe(1);
      expect(u.stderr.trim().split('\n')).toHaveLength(1);
    }
    for (const bad of ['xyz', '0123456789abcdeg', '../../etc']) expect(hardsnap(['release', ...opts(s), bad]).code, bad).toBe(1);
    // `last` naming a generation that is not there
    fs.symlinkSync('2031-01-01T000000Z', path.join(s.pdir, 'last.new'));
    fs.renameSync(path.join(s.pdir, 'last.new'), path.join(s.pdir, 'last'));
    const gone = hardsnap(['lease', ...opts(s), '--part', PART, '--for', '1h']);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toMatch(/`last` names 2031-01-01T000000Z, which is not there/);
    expect(leaseFiles(s)).toEqual([]);
  });

  test.skipIf(!isRoot)(
    'a spool mounted read-only where the job runs: exit 2 naming EROFS, nothing leased (needs root: a read-only bind mount)',
    async ({ tmp }) => {
      const s = nightlySpool(tmp, 30);
      await s.next();
      expect(spawnSync('mount', ['--bind', '-o', 'ro', s.pdir, s.pdir]).status).toBe(0);
      try {
        const r = hardsnap(['lease', ...opts(s), '--part', PART, '--for', '1h']);
        expect(r.code).toBe(2);
        expect(r.stderr, r.stderr).toMatch(/cannot write a lease in .*leases: EROFS \(the spool is mounted read-only here/);
        expect(r.stdout).toBe('');
      } finally {
        spawnSync('umount', [s.pdir]);
      }
    },
  );
});

describe('Bacula: the ClientRunBeforeJob / ClientRunAfterJob scripts of docs/TAPE.md', () => {
  test.skipIf(!isRoot)(
    'begin leases last and mounts it read-only on the fixed mount point; a prune keeps it; end unmounts and releases (needs root: mount --bind)',
    async ({ tmp }) => {
      const s = nightlySpool(tmp, 100);
      await s.next();
      const n1 = await s.next();
      const env = { HS_OPTS: s.hsOpts, PART, STATE: path.join(tmp, 'state'), MOUNT: path.join(tmp, 'mnt', 'hardsnap-tape') };
      const begin = runRecipe('bacula-begin', env);
      expect(begin.code, begin.stderr).toBe(0);
      try {
        expect(fs.statSync(env.MOUNT).ino).toBe(fs.statSync(n1.path).ino);
        expect(rsyncDiff(n1.path, env.MOUNT)).toEqual([]);
        expect(() => fs.writeFileSync(path.join(env.MOUNT, 'x'), 'x')).toThrow(/EROFS/);
        mutate(s.src, 9, { change: 5, add: 2, delete: 2, rename: 2 });
        const b = backupPart({ spool: s.spool, host: HOST, part: PART, src: s.src }, '2026-03-03T03:15:00Z', ['--prune', '--keep-last', '1']);
        expect(b.code, b.stderr).toBe(0);
        expect(names(s)).toEqual([n1.name, '2026-03-03T031500Z']);
        expect(rsyncDiff(n1.path, env.MOUNT)).toEqual([]);
      } finally {
        const end = runRecipe('bacula-end', env);
        expect(end.code, end.stderr).toBe(0);
      }
      expect(spawnSync('mountpoint', ['-q', env.MOUNT]).status).not.toBe(0);
      expect(leaseFiles(s)).toEqual([]);
    },
  );
});

describe('why tar --listed-incremental of the generations dumps everything: two causes, each enough alone', () => {
  /** What a tar archive holds that is not a directory, decoded (tarList), against a tree's non-directories. */
  const nonDirsIn = (archive: string, tree: string) => {
    const dirs = new Set(
      readTree(tree)
        .filter((e) => e.type === 'dir')
        .map((e) => key(e.relPath)),
    );
    return tarList(archive)
      .filter((k) => !dirs.has(k))
      .sort();
  };

  test('1. ctime: the same generation dumped again after a later backup linked its files comes out whole', async ({ tmp }) => {
    const s = nightlySpool(tmp, 100);
    await s.next();
    const n1 = await s.next();
    const snar = path.join(tmp, 'snar');
    expect(runSh(`tar -C "$G" --listed-incremental="$S" -cf "$T/l0.tar" .`, { G: n1.path, S: snar, T: tmp }).code).toBe(0);
    await sleep(1100);
    // control: nothing happened in between, the incremental of the same directory is empty
    fs.copyFileSync(snar, `${snar}.a`);
    expect(runSh(`tar -C "$G" --listed-incremental="$S" -cf "$T/a.tar" .`, { G: n1.path, S: `${snar}.a`, T: tmp }).code).toBe(0);
    expect(nonDirsIn(path.join(tmp, 'a.tar'), n1.path)).toEqual([]);
    const n2 = await s.next(); // links every unchanged file of n1 into the new generation: their ctime moves
    expect(runSh(`tar -C "$G" --listed-incremental="$S" -cf "$T/l1.tar" .`, { G: n1.path, S: snar, T: tmp }).code).toBe(0);
    // n1 itself did not change at all; what tar dumps again is every file of it linked into n2
    const inN2 = new Set(readTree(n2.path).map((e) => e.ino));
    const linked = readTree(n1.path)
      .filter((e) => e.type !== 'dir' && inN2.has(e.ino))
      .map((e) => key(e.relPath));
    expect(linked.length).toBeGreaterThan(50);
    expect(nonDirsIn(path.join(tmp, 'l1.tar'), n1.path)).toEqual(linked.sort());
  });

  test("2. new directory inodes: generation N+1 against N's snapshot comes out whole, though every ctime is older than the snapshot", async ({ tmp }) => {
    const s = nightlySpool(tmp, 100);
    const n0 = await s.next();
    const n1 = await s.next(); // its links moved the ctimes, before the snapshot below
    await sleep(1100);
    const snar = path.join(tmp, 'snar');
    expect(runSh(`tar -C "$G" --listed-incremental="$S" -cf "$T/l0.tar" .`, { G: n0.path, S: snar, T: tmp }).code).toBe(0);
    const r = runSh(`tar -C "$G" --listed-incremental="$S" -cf "$T/l1.tar" .`, { G: n1.path, S: snar, T: tmp });
    expect(r.code, r.stderr).toBe(0);
    const all = readTree(n1.path)
      .filter((e) => e.type !== 'dir')
      .map((e) => key(e.relPath));
    expect(nonDirsIn(path.join(tmp, 'l1.tar'), n1.path)).toEqual(all.sort()); // all, not just the changes
    expect(realChanges(n0.path, n1.path).files.unmodified).toBeGreaterThan(50);
  });
});

describe("README's BlueMind-style post hook", () => {
  test('leases what the run published, for every part of the run, before telling the tape system; a prune keeps it until release', async ({ tmp }) => {
    const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const at = readme.indexOf('# /usr/local/sbin/hardsnap-post');
    expect(at).toBeGreaterThan(-1);
    const start = readme.lastIndexOf('```sh\n', at);
    const script = readme.slice(start + 6, readme.indexOf('```', at)).replaceAll('/var/lib/hardsnap/', `${tmp}/state/`);
    fs.mkdirSync(path.join(tmp, 'state'));
    const hook = path.join(tmp, 'hardsnap-post');
    fs.writeFileSync(hook, script, { mode: 0o755 });
    const stubs = path.join(tmp, 'stubs');
    fs.mkdirSync(stubs);
    fs.writeFileSync(path.join(stubs, 'bconsole'), `#!/bin/sh\ncat >> "${tmp}/state/bconsole.in"\n`, { mode: 0o755 });
    const s = nightlySpool(tmp, 30);
    await s.next();
    const other = path.join(tmp, 'other src');
    fs.mkdirSync(other);
    fs.writeFileSync(path.join(other, 'f'), 'f');
    const env = { PATH: `${stubs}:${path.dirname(BIN)}:${process.env.PATH}`, HARDSNAP_NOW: '2026-03-02T03:15:00Z' };
    const r = hardsnap(['backup', ...opts(s), '--part', `${PART}=${s.src}`, '--part', `bm/pg dump=${other}`, '--post-hook', hook], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe(''); // the hook succeeded
    const lines = fs
      .readFileSync(path.join(tmp, 'state', 'tape-lease'), 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => l.split('\t'));
    const gen = '2026-03-02T031500Z';
    expect(lines.map((l) => l.slice(1))).toEqual([
      [PART, path.join(s.pdir, gen)],
      ['bm/pg dump', path.join(s.spool, 'rsync', HOST, 'bm', 'pg dump', gen)],
    ]);
    expect(new Set(lines.map((l) => l[0])).size).toBe(1);
    expect(fs.readFileSync(path.join(tmp, 'state', 'bconsole.in'), 'utf8')).toBe('run job=bluemind-spool-to-tape yes\n');
    // the next night publishes and prunes; the leased generation stays until the release
    const r2 = hardsnap(['backup', ...opts(s), '--part', `${PART}=${s.src}`, '--part', `bm/pg dump=${other}`, '--prune', '--keep-last', '1'], {
      env: { HARDSNAP_NOW: '2026-03-03T03:15:00Z' },
    });
    expect(r2.code, r2.stderr).toBe(0);
    expect(names(s)).toEqual([gen, '2026-03-03T031500Z']);
    expect(hardsnap(['release', ...opts(s), lines[0]![0]!]).code).toBe(0);
  });
});

describe('adversarial corners', () => {
  test("last moved and its old generation pruned between lease's read of last and its lease file: the new one is leased, no lease left on the old", async ({
    tmp,
  }) => {
    const s = nightlySpool(tmp, 20);
    await s.next();
    const n1 = await s.next();
    // the race made certain: the first read of `last` returns a generation already pruned
    const real = fsDefault.readlinkSync.bind(fsDefault);
    let first = true;
    const spy = vi.spyOn(fsDefault, 'readlinkSync').mockImplementation(((p: fs.PathLike, o?: unknown) => {
      if (first && String(p).endsWith('/last')) {
        first = false;
        return '2026-02-28T031500Z';
      }
      return real(p, o as fs.EncodingOption);
    }) as typeof fs.readlinkSync);
    try {
      const l = leaseLast({ spool: s.spool, host: HOST, parts: [PART], forMs: 60_000, holder: 'race', command: 'test' });
      expect(l.parts).toEqual([expect.objectContaining({ generation: n1.name, path: n1.path })]);
    } finally {
      spy.mockRestore();
    }
    expect(first).toBe(false);
    expect(leaseFiles(s)).toEqual([expect.stringMatching(new RegExp(`^${n1.name}\\.`))]);
  });

  test('LATEST planted as a symlink to /dev/zero or a FIFO is not followed or read (prune stays quick); a holder with a newline is refused', async ({
    tmp,
  }) => {
    const s = nightlySpool(tmp, 20);
    await s.next();
    await s.next();
    const latest = path.join(s.pdir, 'LATEST');
    for (const plant of [() => fs.symlinkSync('/dev/zero', latest), () => spawnSync('mkfifo', [latest])]) {
      fs.rmSync(latest);
      plant();
      const t0 = Date.now();
      const p = hardsnap(['prune', ...opts(s), '--keep-last', '5', '--dry-run'], { timeoutMs: 20_000 });
      expect(p.code, p.stderr).toBe(0);
      expect(Date.now() - t0).toBeLessThan(15_000);
      expect(p.stdout).not.toMatch(/protected \(LATEST\)/);
    }
    const r = hardsnap(['lease', ...opts(s), '--part', PART, '--for', '1h', '--holder', 'a\nb']);
    expect(r.code).toBe(1);
    expect(leaseFiles(s)).toEqual([]);
  });
});
