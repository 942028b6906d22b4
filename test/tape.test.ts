// The hand-off to tape (issue 21): lists of what changed fed to real GNU tar and rsync, restic
// through a stable path, a lease that prune respects while a job reads, LATEST beside last.
// Every recipe of docs/TAPE.md is run as written (test/helpers/tape.ts takes it from the doc)
// against a spool of several nights of real changes, and checked by the client's own report.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, test } from './helpers/fixture.js';
import { hardsnap, spawnHardsnap, waitFor } from './helpers/run.js';
import { rsyncDiff } from './helpers/oracle.js';
import { makeTree } from './helpers/tree.js';
import { makeSpoolAt } from './helpers/spool.js';
import { HOST, PART, hardsnapRaw, key, nightlySpool, nulList, realChanges, recipe, rsyncItemized, runRecipe, runSh, sorted, tarList } from './helpers/tape.js';
import { generationNames } from './helpers/ops.js';
import { listPath } from '../src/inspect/change-lists.js';

const isRoot = process.getuid?.() === 0;
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** diff's two lists between two generations of the nightly spool, as latin1 keys in their order. */
function lists(spoolOpts: string[], a: string, b: string): { changed: string[]; deleted: string[] } {
  const out = (which: string) => {
    const r = hardsnapRaw(['diff', ...spoolOpts, '--part', PART, a, b, '--null', which]);
    expect(r.status, r.stderr.toString()).toBe(0);
    expect(r.stderr.toString()).toBe('');
    return nulList(r.stdout);
  };
  return { changed: out('--changed'), deleted: out('--deleted') };
}

/** The paths and every directory above them, the root as '.'. */
function withParents(paths: Iterable<string>): Set<string> {
  const out = new Set<string>();
  for (const k of paths) {
    out.add(k);
    if (k === '.') continue;
    out.add('.');
    for (let i = k.indexOf('/'); i > 0; i = k.indexOf('/', i + 1)) out.add(k.slice(0, i));
  }
  return out;
}

/** Every listed path's parent directory, when listed, comes before it. */
function parentsFirst(list: string[]): void {
  const at = new Map(list.map((k, i) => [k, i]));
  for (const [i, k] of list.entries()) {
    const parent = k.includes('/') ? k.slice(0, k.lastIndexOf('/')) : k === '.' ? null : '.';
    if (parent !== null && at.has(parent)) expect(at.get(parent)!, `${JSON.stringify(parent)} before ${JSON.stringify(k)}`).toBeLessThan(i);
  }
}

describe('LATEST', () => {
  test("LATEST holds last's generation name after every backup: a plain file beside last, never in a generation, never listed as one", async ({ tmp }) => {
    const s = nightlySpool(tmp, 60);
    for (let i = 0; i < 3; i++) {
      const n = await s.next();
      const st = fs.lstatSync(path.join(s.pdir, 'LATEST'));
      expect(st.isFile()).toBe(true);
      expect(fs.readFileSync(path.join(s.pdir, 'LATEST'), 'utf8')).toBe(`${n.name}\n`);
      expect(fs.readlinkSync(path.join(s.pdir, 'last'))).toBe(n.name);
      expect(fs.existsSync(path.join(n.path, 'LATEST'))).toBe(false);
      expect(rsyncDiff(s.src, n.path)).toEqual([]); // the generation is the source, nothing more
      expect(fs.readdirSync(s.pdir).filter((x) => x.endsWith('.tmp'))).toEqual([]);
    }
    const list = hardsnap(['list', '--spool', s.spool, '--host', HOST, '--json']);
    expect(list.code, list.stderr).toBe(0);
    expect((JSON.parse(list.stdout) as { name: string }[]).map((g) => g.name)).toEqual(s.nights.map((n) => n.name));
    // diff of the newest against itself through its name: LATEST is not an entry of anything
    const d = hardsnapRaw(['diff', '--spool', s.spool, '--host', HOST, '--part', PART, s.nights[0]!.name, s.nights[2]!.name, '--null', '--changed']);
    expect(nulList(d.stdout).filter((k) => k.endsWith('LATEST'))).toEqual([]);
  });

  test('a run killed after last moved and before LATEST was written: LATEST one behind, prune keeps what it names, the next run catches up', async ({
    tmp,
  }) => {
    const src = path.join(tmp, 'src');
    const spool = path.join(tmp, 'spool');
    makeSpoolAt(spool);
    makeTree(src, { 'a.txt': 'a' });
    const pdir = path.join(spool, 'rsync', HOST, 'p');
    const args = ['backup', '--spool', spool, '--host', HOST, '--part', `p=${src}`];
    expect(hardsnap(args, { env: { HARDSNAP_NOW: '2026-03-01T03:00:00Z' } }).code).toBe(0);
    fs.writeFileSync(path.join(src, 'a.txt'), 'b');
    const child = spawnHardsnap(args, { env: { HARDSNAP_NOW: '2026-03-02T03:00:00Z', HARDSNAP_TEST_PAUSE_AT: 'before-latest' } });
    await waitFor(() => child.out.stderr.includes('test pause at before-latest'), 30_000, 10, 'the pause before LATEST');
    child.killGroup('SIGKILL');
    await child.exited;
    expect(fs.readlinkSync(path.join(pdir, 'last'))).toBe('2026-03-02T030000Z');
    expect(fs.readFileSync(path.join(pdir, 'LATEST'), 'utf8')).toBe('2026-03-01T030000Z\n');
    const dry = hardsnap(['prune', '--spool', spool, '--host', HOST, '--keep-last', '1', '--dry-run'], { env: { HARDSNAP_NOW: '2026-03-02T04:00:00Z' } });
    expect(dry.stdout).toMatch(/2026-03-01T030000Z\s+keep\s+protected \(LATEST\)/);
    fs.writeFileSync(path.join(src, 'a.txt'), 'c');
    const next = hardsnap(args, { env: { HARDSNAP_NOW: '2026-03-03T03:00:00Z' } });
    expect(next.code, next.stderr).toBe(0);
    expect(fs.readFileSync(path.join(pdir, 'LATEST'), 'utf8')).toBe('2026-03-03T030000Z\n');
    expect(fs.readdirSync(pdir).filter((x) => x.startsWith('.'))).toEqual(['.hardsnap']);
  });
});

describe('lists of what changed (diff --null)', () => {
  test('the changed and deleted lists equal the real changes, night after night and across nights, names not UTF-8 or with newlines included', async ({
    tmp,
  }) => {
    const s = nightlySpool(tmp);
    for (let i = 0; i < 5; i++) await s.next();
    const opts = ['--spool', s.spool, '--host', HOST];
    const pairs: [number, number][] = [
      [0, 1],
      [1, 2],
      [2, 3],
      [3, 4],
      [0, 4],
      [4, 0],
    ];
    for (const [i, j] of pairs) {
      const a = s.nights[i]!;
      const b = s.nights[j]!;
      const real = realChanges(a.path, b.path);
      const got = lists(opts, a.name, b.name);
      const what = `${a.name} -> ${b.name}`;
      expect(sorted(got.changed), `${what}: changed`).toEqual(sorted(real.changed));
      expect(sorted(got.deleted), `${what}: deleted`).toEqual(sorted(real.deleted));
      expect(new Set(got.changed).size).toBe(got.changed.length);
      parentsFirst(got.changed);
      parentsFirst(got.deleted);
      // every kind of change is really there to be found
      if (i === 0 && j === 4) {
        for (const k of [
          'odd/-leading-dash',
          'nl\ndir1/new\nline',
          `users/n\xff\xfe-1`,
          'odd/..dots../inner',
          'odd/empty dir',
          'odd/link-rel',
          'plain-4.txt',
        ]) {
          expect(got.changed, JSON.stringify(k)).toContain(k);
        }
        expect(got.deleted).toContain('odd/..dots..'); // a file that became a directory: in both lists
        expect(got.changed).toContain('odd/..dots..');
        expect(got.deleted.some((k) => k.startsWith('users/u0001/'))).toBe(true); // a renamed directory
      }
    }
    // --changed-to / --deleted-to write the same bytes, atomically, and --json says where
    const ch = path.join(tmp, 'changed');
    const de = path.join(tmp, 'deleted');
    const r = hardsnap(['diff', ...opts, '--part', PART, s.nights[1]!.name, s.nights[2]!.name, '--changed-to', ch, '--deleted-to', de, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { changed: { file: string; count: number }; deleted: { count: number } };
    const direct = lists(opts, s.nights[1]!.name, s.nights[2]!.name);
    expect(nulList(fs.readFileSync(ch))).toEqual(direct.changed);
    expect(nulList(fs.readFileSync(de))).toEqual(direct.deleted);
    expect(j.changed).toEqual({ file: ch, count: direct.changed.length });
    expect(j.deleted.count).toBe(direct.deleted.length);
    expect(fs.readdirSync(tmp).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    // nothing changed: empty lists
    expect(lists(opts, s.nights[3]!.name, s.nights[3]!.name)).toEqual({ changed: [], deleted: [] });
  });

  test('bad combinations of the list options are usage errors (exit 1, one line); a list that cannot be written is exit 2 and leaves nothing', async ({
    tmp,
  }) => {
    const s = nightlySpool(tmp, 20);
    await s.next();
    await s.next();
    const base = ['diff', '--spool', s.spool, '--host', HOST, '--part', PART, s.nights[0]!.name, s.nights[1]!.name];
    for (const bad of [
      ['--changed'],
      ['--null'],
      ['--null', '--changed', '--deleted'],
      ['--null', '--changed', '--json'],
      ['--null', '--changed', '--changed-to', 'x'],
      ['--changed-to', 'same', '--deleted-to', './same'],
      ['--null', '--deleted', '--parents'],
    ]) {
      const r = hardsnap([...base, ...bad]);
      expect(r.code, bad.join(' ')).toBe(1);
      expect(r.stderr.trim().split('\n'), bad.join(' ')).toHaveLength(1);
      expect(r.stdout).toBe('');
    }
    const r = hardsnap([...base, '--changed-to', path.join(tmp, 'no-such-dir', 'changed'), '--deleted-to', path.join(tmp, 'deleted')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot write the list .*no-such-dir\/changed: ENOENT/);
    expect(fs.readdirSync(tmp).filter((n) => n.includes('deleted'))).toEqual([]);
  });

  test('a path a tampered manifest could hold (.., NUL, empty component) stops the list: no tool is sent outside the generation', () => {
    const c = (p: string) => ({ kind: 'added' as const, path: Buffer.from(p, 'latin1'), type: 'file' as const, changes: [] });
    for (const bad of ['..', '../etc/shadow', 'a/../../x', 'a//b', '/etc/shadow', 'a/./b', 'a\0b', 'a/']) {
      expect(() => listPath(c(bad), 'm.hsm'), JSON.stringify(bad)).toThrow(/impossible path/);
    }
    expect(listPath(c('..dots../.x'), 'm.hsm').toString()).toBe('..dots../.x');
    expect(listPath(c(''), 'm.hsm').toString()).toBe('.');
  });
});

describe('recipes of docs/TAPE.md, run with the real clients', () => {
  test("tar: a full dump, then incrementals whose archives list exactly diff's changed paths; the restore chain equals the last generation", async ({
    tmp,
  }) => {
    const s = nightlySpool(tmp);
    const env = { HS_OPTS: s.hsOpts, PART, STATE: path.join(tmp, 'state'), ARCHIVES: path.join(tmp, 'archives') };
    for (let i = 0; i < 5; i++) {
      const n = await s.next();
      const r = runRecipe('tar', env);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
      const listed = sorted(tarList(path.join(env.ARCHIVES, `${n.name}.tar`)));
      if (i === 0) {
        expect(listed).toEqual(sorted(realChanges(path.join(tmp, 'empty-for-oracle'), n.path).changed)); // all of it
      } else {
        const prev = s.nights[i - 1]!;
        const real = realChanges(prev.path, n.path);
        const list = nulList(fs.readFileSync(path.join(env.STATE, 'changed')));
        expect(listed, `night ${i}: tar's own listing`).toEqual(sorted(list));
        expect(sorted(list), `night ${i}: the list (--parents)`).toEqual(sorted(withParents(real.changed)));
        parentsFirst(list);
        expect(sorted(nulList(fs.readFileSync(path.join(env.ARCHIVES, `${n.name}.deleted`)))), `night ${i}: deleted`).toEqual(sorted(real.deleted));
      }
      expect(fs.readdirSync(path.join(s.pdir, '.hardsnap', 'leases'))).toEqual([]); // released
    }
    const target = path.join(tmp, 'restored');
    const r = runRecipe('tar-restore', { ARCHIVES: env.ARCHIVES, TARGET: target });
    expect(r.code, r.stderr).toBe(0);
    expect(rsyncDiff(s.nights[4]!.path, target)).toEqual([]);
  }, 120_000);

  test("rsync: --files-from with diff's list copies exactly the changed set (rsync's itemized list), and the mirror equals each night's generation", async ({
    tmp,
  }) => {
    const s = nightlySpool(tmp);
    const env = { HS_OPTS: s.hsOpts, PART, STATE: path.join(tmp, 'state'), MIRROR: path.join(tmp, 'mirror') };
    for (let i = 0; i < 5; i++) {
      const n = await s.next();
      const r = runRecipe('rsync', { ...env, LC_ALL: 'C' });
      expect(r.code, r.stderr).toBe(0);
      expect(rsyncDiff(n.path, env.MIRROR), `night ${i}: the mirror`).toEqual([]);
      if (i > 0) {
        const real = realChanges(s.nights[i - 1]!.path, n.path);
        expect(sorted(rsyncItemized(r.stdout)), `night ${i}: what rsync says it copied`).toEqual(sorted(real.changed));
      }
    }
  }, 120_000);

  test.skipIf(!has('restic'))(
    "restic: through a stable path with --ignore-ctime, its counts of new, changed and unmodified files are the real changes; through the generation's own path every file is new (needs restic: apt-get install restic)",
    async ({ tmp }) => {
      const s = nightlySpool(tmp);
      const pw = path.join(tmp, 'restic-pw');
      fs.writeFileSync(pw, 'secret');
      const restic = { RESTIC_REPOSITORY: path.join(tmp, 'repo'), RESTIC_PASSWORD_FILE: pw, RESTIC_CACHE_DIR: path.join(tmp, 'cache') };
      const init = spawnSync('restic', ['init'], { env: { ...process.env, ...restic }, encoding: 'utf8' });
      expect(init.status, init.stderr).toBe(0);
      const env = { ...restic, HS_OPTS: s.hsOpts, PART, STATE: path.join(tmp, 'state') };
      const counts = (out: string) => {
        const m = /Files:\s+(\d+) new,\s+(\d+) changed,\s+(\d+) unmodified/.exec(out);
        expect(m, out).not.toBeNull();
        return { new: Number(m![1]), changed: Number(m![2]), unmodified: Number(m![3]) };
      };
      for (let i = 0; i < 5; i++) {
        const n = await s.next();
        const r = runRecipe('restic', env);
        expect(r.code, r.stderr).toBe(0);
        const real = realChanges(i ? s.nights[i - 1]!.path : path.join(tmp, 'none'), n.path).files;
        expect(counts(r.stdout.toString()), `night ${i}`).toEqual(real);
        if (i > 0) expect(real.changed + real.new).toBeGreaterThan(0);
      }
      // the same repository, the forms the docs warn against
      const resticAt = (dir: string, args: string[]) =>
        spawnSync('sh', ['-c', `cd "$1" && restic backup ${args.join(' ')} .`, 'sh', dir], { env: { ...process.env, ...restic }, encoding: 'utf8' });
      const n5 = await s.next();
      const direct = resticAt(fs.realpathSync(path.join(s.pdir, 'last')), ['--ignore-ctime']);
      expect(direct.status, direct.stderr).toBe(0);
      const all = realChanges(path.join(tmp, 'none'), n5.path).files.new;
      expect(counts(direct.stdout)).toEqual({ new: all, changed: 0, unmodified: 0 });
      // without --ignore-ctime, through the stable path (its parent is night 4's snapshot): every
      // file whose ctime moved (all of them, by link()) is read again; none is unmodified
      const link = path.join(env.STATE, PART.replace('/', '_'));
      fs.rmSync(link);
      fs.symlinkSync(n5.path, link);
      const noIgnore = resticAt(link, []);
      expect(noIgnore.status, noIgnore.stderr).toBe(0);
      const real = realChanges(s.nights[4]!.path, n5.path).files;
      expect(counts(noIgnore.stdout)).toEqual({ new: real.new, changed: real.changed + real.unmodified, unmodified: 0 });
    },
    180_000,
  );

  test.skipIf(!isRoot || !has('restic'))(
    'restic through a read-only bind mount of the leased generation: its counts are the real changes (needs root and restic)',
    async ({ tmp }) => {
      const s = nightlySpool(tmp, 200);
      const pw = path.join(tmp, 'restic-pw');
      fs.writeFileSync(pw, 'secret');
      const restic = { RESTIC_REPOSITORY: path.join(tmp, 'repo'), RESTIC_PASSWORD_FILE: pw, RESTIC_CACHE_DIR: path.join(tmp, 'cache') };
      expect(spawnSync('restic', ['init'], { env: { ...process.env, ...restic } }).status).toBe(0);
      const mount = path.join(tmp, 'mnt');
      fs.mkdirSync(mount);
      for (let i = 0; i < 3; i++) {
        const n = await s.next();
        const r = runRecipe('restic-bind', { ...restic, HS_OPTS: s.hsOpts, PART, MOUNT: mount });
        expect(r.code, r.stderr).toBe(0);
        const m = /Files:\s+(\d+) new,\s+(\d+) changed,\s+(\d+) unmodified/.exec(r.stdout.toString())!;
        expect({ new: Number(m[1]), changed: Number(m[2]), unmodified: Number(m[3]) }, `night ${i}`).toEqual(
          realChanges(i ? s.nights[i - 1]!.path : path.join(tmp, 'none'), n.path).files,
        );
        expect(spawnSync('mountpoint', ['-q', mount]).status, 'unmounted after').not.toBe(0);
      }
    },
    120_000,
  );
});
