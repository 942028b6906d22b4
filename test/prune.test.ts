// prune end to end: bin/hardsnap prune over generations made by the real engine at chosen
// times (HARDSNAP_NOW), checked against survivor lists worked out by hand.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, test } from './helpers/fixture.js';
import { BIN, hardsnap, spawnHardsnap, waitFor } from './helpers/run.js';
import { makeTree, assertSameInode, readTree, type TreeEntry } from './helpers/tree.js';
import { generationNames, makeGeneration } from './helpers/ops.js';
import { isRoot } from './helpers/robust.js';
import { dailyTimes, genName, makeSpool } from './helpers/spool.js';

const HOST = 'h1';

async function ninetyDailies(tmp: string): Promise<{ spool: string; src: string; names: string[] }> {
  const spool = makeSpool(path.join(tmp, 'spool'));
  const src = path.join(tmp, 'src');
  makeTree(src, { a: 'alpha', b: 'beta', 'd/c': 'gamma', 'd/e': 'eps', f: 'phi' });
  const times = dailyTimes('2026-08-01', 90); // 2026-08-01 .. 2026-10-29
  for (const [i, t] of times.entries()) {
    fs.writeFileSync(path.join(src, 'f'), `day ${i}`); // one file changes every day
    await makeGeneration(spool, HOST, { p: src }, t);
  }
  return { spool, src, names: times.map(genName) };
}

/** `days` daily generations (from 2026-03-01) of part p, whose source is one file. */
async function dailiesOfOneFile(tmp: string, days: number): Promise<{ spool: string; names: string[]; pdir: string }> {
  const spool = makeSpool(path.join(tmp, 'spool'));
  const src = path.join(tmp, 'src');
  makeTree(src, { a: 'x' });
  const times = dailyTimes('2026-03-01', days);
  for (const t of times) await makeGeneration(spool, HOST, { p: src }, t);
  return { spool, names: times.map(genName), pdir: path.join(spool, 'rsync', HOST, 'p') };
}

const RULES = ['--keep-daily', '7', '--keep-weekly', '4', '--keep-monthly', '3'];
const NOW = { HARDSNAP_NOW: '2026-10-29T05:00:00Z' };

// By hand: daily 7 = Oct 23..29; ISO weeks 44 (Oct 29), 43 (Sun Oct 25), 42 (Sun Oct 18),
// 41 (Sun Oct 11); months Oct (29), Sep (30), Aug (31).
const SURVIVORS = [
  '2026-08-31',
  '2026-09-30',
  '2026-10-11',
  '2026-10-18',
  '2026-10-23',
  '2026-10-24',
  '2026-10-25',
  '2026-10-26',
  '2026-10-27',
  '2026-10-28',
  '2026-10-29',
].map((d) => `${d}T030000Z`);

describe('prune', () => {
  test('90 dailies with daily 7 / weekly 4 / monthly 3 keep exactly the hand-computed 11, intact', async ({ tmp }) => {
    const { spool, names } = await ninetyDailies(tmp);
    expect(generationNames(spool, HOST, 'p')).toEqual(names);
    const pdir = path.join(spool, 'rsync', HOST, 'p');

    const dry = hardsnap(['prune', '--spool', spool, '--host', HOST, ...RULES, '--dry-run'], { env: NOW });
    expect(dry.code, dry.stderr).toBe(0);
    const lines = dry.stdout.trim().split('\n');
    expect(lines).toHaveLength(90); // every generation, with its fate
    expect(lines.find((l) => l.includes('2026-10-25T030000Z'))).toMatch(/keep\s+daily 2026-10-25, weekly 2026-W43/);
    expect(lines.find((l) => l.includes('2026-08-30T030000Z'))).toMatch(/remove\s+no rule keeps it/);
    expect(generationNames(spool, HOST, 'p')).toHaveLength(90); // dry run removed nothing

    // everything of the survivors but link counts, to prove removal only unlinked names
    const meta = (e: TreeEntry) => ({ ...e, nlink: undefined });
    const before = SURVIVORS.map((n) => readTree(path.join(pdir, n)).map(meta));
    const r = hardsnap(['prune', '--spool', spool, '--host', HOST, ...RULES], { env: NOW });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toBe(''); // silent under cron
    expect(generationNames(spool, HOST, 'p')).toEqual(SURVIVORS);
    expect(SURVIVORS.map((n) => readTree(path.join(pdir, n)).map(meta))).toEqual(before);
    expect(fs.readlinkSync(path.join(pdir, 'last'))).toBe('2026-10-29T030000Z');
    expect(fs.readdirSync(path.join(pdir, '.hardsnap', 'trash'))).toEqual([]);
    // the manifests of removed generations went with them
    expect(fs.readdirSync(path.join(pdir, '.hardsnap', 'manifests')).sort()).toEqual(SURVIVORS.map((n) => `${n}.hsm`));
    // survivors still share their unchanged files and hold their own content
    assertSameInode(path.join(pdir, SURVIVORS[0]!, 'a'), path.join(pdir, SURVIVORS[10]!, 'a'));
    expect(fs.readFileSync(path.join(pdir, '2026-08-31T030000Z', 'f'), 'utf8')).toBe('day 30');
    expect(fs.readFileSync(path.join(pdir, '2026-10-29T030000Z', 'd', 'c'), 'utf8')).toBe('gamma');

    // repeated prunes without new backups (runs failing for weeks) keep what the rules kept
    for (const later of ['2026-10-30T05:00:00Z', '2026-11-20T05:00:00Z', '2026-12-05T05:00:00Z']) {
      const again = hardsnap(['prune', '--spool', spool, '--host', HOST, ...RULES], { env: { HARDSNAP_NOW: later } });
      expect(again.code, again.stderr).toBe(0);
      expect(generationNames(spool, HOST, 'p')).toEqual(SURVIVORS);
    }
    // and the next backup still links against what is left
    const b = hardsnap(['backup', '--spool', spool, '--host', HOST, '--part', `p=${path.join(tmp, 'src')}`], { env: { HARDSNAP_NOW: '2026-10-30T03:00:00Z' } });
    expect(b.code, b.stderr).toBe(0);
    assertSameInode(path.join(pdir, '2026-10-29T030000Z', 'a'), path.join(pdir, '2026-10-30T030000Z', 'a'));
  });

  test('the target of last, the newest and pinned generations survive rules that keep none of them', async ({ tmp }) => {
    const { spool, names, pdir } = await dailiesOfOneFile(tmp, 6);
    // `last` pointing at an older generation (e.g. set by hand while restoring)
    fs.symlinkSync(names[1]!, path.join(pdir, 'last.tmp'));
    fs.renameSync(path.join(pdir, 'last.tmp'), path.join(pdir, 'last'));
    const pin = hardsnap(['pin', '--spool', spool, '--host', HOST, '--part', 'p', names[3]!]);
    expect(pin.code, pin.stderr).toBe(0);
    expect(fs.readFileSync(path.join(pdir, '.hardsnap', 'pins'), 'utf8')).toBe(`${names[3]}\n`);
    const list = hardsnap(['list', '--spool', spool, '--host', HOST, '--json']);
    expect((JSON.parse(list.stdout) as { name: string; pinned: boolean }[]).filter((g) => g.pinned).map((g) => g.name)).toEqual([names[3]]);

    // keep-within 1h keeps nothing by age (now is days later): only the protected stay
    const r = hardsnap(['prune', '--spool', spool, '--host', HOST, '--keep-within', '1h'], { env: { HARDSNAP_NOW: '2026-04-01T00:00:00Z' } });
    expect(r.code, r.stderr).toBe(0);
    expect(generationNames(spool, HOST, 'p')).toEqual([names[1], names[3], names[5]]);

    const unpin = hardsnap(['unpin', '--spool', spool, '--host', HOST, '--part', 'p', names[3]!]);
    expect(unpin.code, unpin.stderr).toBe(0);
    const r2 = hardsnap(['prune', '--spool', spool, '--host', HOST, '--keep-within', '1h'], { env: { HARDSNAP_NOW: '2026-04-01T00:00:00Z' } });
    expect(r2.code, r2.stderr).toBe(0);
    expect(generationNames(spool, HOST, 'p')).toEqual([names[1], names[5]]);
  });

  test('a pins file edited by hand: a name with a trailing slash (tab completion) or as a path pins it; a typo is said, not silently ignored (a re-attack: `NAME/` pinned nothing and the generation was pruned, exit 0)', async ({
    tmp,
  }) => {
    const { spool, names, pdir } = await dailiesOfOneFile(tmp, 5);
    fs.writeFileSync(
      path.join(pdir, '.hardsnap', 'pins'),
      `${names[0]}/\n  ${pdir}/${names[1]}  \r\n2026-13-01T030000Z\n2026-03-10T030000Z\n${path.join(spool, 'rsync', HOST, 'q', names[2]!)}\n${'x'.repeat(5000)}\n`,
    );
    const list = hardsnap(['list', '--spool', spool, '--host', HOST, '--json']);
    expect((JSON.parse(list.stdout) as { name: string; pinned: boolean }[]).filter((g) => g.pinned).map((g) => g.name)).toEqual([names[0], names[1]]);
    const r = hardsnap(['prune', '--spool', spool, '--host', HOST, '--keep-last', '1'], { env: { HARDSNAP_NOW: '2026-04-01T00:00:00Z' } });
    expect(r.code, r.stderr).toBe(0);
    expect(generationNames(spool, HOST, 'p')).toEqual([names[0], names[1], names[4]]);
    expect(r.stderr).toMatch(/"2026-13-01T030000Z" in .*pins is not a generation name: it pins nothing/);
    // a mistyped date, a path into another part: said, not silently ignored (a re-attack)
    expect(r.stderr).toMatch(/"2026-03-10T030000Z" in .*pins names no generation of this part: it pins nothing/);
    expect(r.stderr).toMatch(/"\/.*\/q\/2026-03-03T030000Z" in .*pins is not a generation name: it pins nothing/);
    expect(r.stderr).toMatch(/"x{77}\.\.\." in /);
    expect(r.stderr.length).toBeLessThan(5000);
    // a path through a second mount of the spool (an NFS spool mounted elsewhere on another host) pins too
    if (isRoot) {
      const other = path.join(tmp, 'second-mount');
      fs.mkdirSync(other);
      execFileSync('mount', ['--bind', spool, other]);
      try {
        fs.writeFileSync(path.join(pdir, '.hardsnap', 'pins'), `${path.join(other, 'rsync', HOST, 'p', names[4]!)}\n`);
        const l = hardsnap(['list', '--spool', spool, '--host', HOST, '--json']);
        expect((JSON.parse(l.stdout) as { name: string; pinned: boolean }[]).filter((g) => g.pinned).map((g) => g.name)).toEqual([names[4]]);
      } finally {
        spawnSync('umount', [other]);
      }
    }
  });

  test('prune without any rule refuses with exit 1 and removes nothing; a held lock gives exit 3', async ({ tmp }) => {
    const spool = makeSpool(path.join(tmp, 'spool'));
    const src = path.join(tmp, 'src');
    makeTree(src, { a: 'x' });
    for (const t of dailyTimes('2026-03-01', 3)) await makeGeneration(spool, HOST, { p: src }, t);
    const r = hardsnap(['prune', '--spool', spool, '--host', HOST]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no retention rule given/);
    const zero = hardsnap(['prune', '--spool', spool, '--host', HOST, '--keep-daily', '0']);
    expect(zero.code).toBe(1);
    expect(generationNames(spool, HOST, 'p')).toHaveLength(3);

    // the lock of a live process (this test's own pid)
    const lock = path.join(spool, 'rsync', HOST, '.hardsnap', 'lock');
    fs.writeFileSync(
      lock,
      JSON.stringify({ pid: process.pid, pidStart: null, hostname: (await import('node:os')).hostname(), bootId: null, started: 'now', command: 'test' }),
    );
    const locked = hardsnap(['prune', '--spool', spool, '--host', HOST, '--keep-last', '1']);
    expect(locked.code, locked.stderr).toBe(3);
    expect(generationNames(spool, HOST, 'p')).toHaveLength(3);
  });

  test('a prune killed with SIGKILL while deleting is finished by the next one, and nothing else is lost', async ({ tmp }) => {
    const spool = makeSpool(path.join(tmp, 'spool'));
    const src = path.join(tmp, 'src');
    // a big first generation (many files, a read-only directory), then small ones
    for (let d = 0; d < 40; d++) {
      fs.mkdirSync(path.join(src, 'big', `d${d}`), { recursive: true });
      for (let f = 0; f < 500; f++) fs.writeFileSync(path.join(src, 'big', `d${d}`, `f${f}`), '');
    }
    fs.mkdirSync(path.join(src, 'ro'));
    fs.writeFileSync(path.join(src, 'ro', 'x'), 'x');
    fs.chmodSync(path.join(src, 'ro'), 0o555);
    const times = dailyTimes('2026-05-01', 4);
    await makeGeneration(spool, HOST, { p: src }, times[0]!);
    fs.chmodSync(path.join(src, 'ro'), 0o755);
    fs.rmSync(path.join(src, 'big'), { recursive: true });
    fs.writeFileSync(path.join(src, 'keep'), 'k');
    // big/ went on purpose: the source lost most of its entries
    for (const t of times.slice(1)) await makeGeneration(spool, HOST, { p: src }, t, { acceptSourceChange: true });
    const names = times.map(genName);
    const pdir = path.join(spool, 'rsync', HOST, 'p');
    const trash = path.join(pdir, '.hardsnap', 'trash');

    const child = spawnHardsnap(['prune', '--spool', spool, '--host', HOST, '--keep-last', '3']);
    let killedInTrash = false;
    await waitFor(
      () => {
        if (fs.existsSync(trash) && fs.readdirSync(trash).length > 0) {
          child.killGroup('SIGKILL');
          killedInTrash = true;
          return true;
        }
        return child.exitCode !== null;
      },
      30_000,
      1,
      'the trash to fill',
    );
    const { signal } = await child.exited;
    if (!killedInTrash || signal !== 'SIGKILL') {
      // the prune won the race: the test proves nothing about resuming, say so
      throw new Error(`prune finished before it could be killed (signal ${signal}); make the big generation bigger`);
    }
    // what was moved to the trash is gone from view at once, the others are intact
    expect(generationNames(spool, HOST, 'p')).toEqual(names.slice(1));
    expect(fs.readdirSync(trash).length).toBeGreaterThan(0);

    const again = hardsnap(['prune', '--spool', spool, '--host', HOST, '--keep-last', '3']);
    expect(again.code, again.stderr).toBe(0); // the stale lock of the killed run is taken over
    expect(fs.readdirSync(trash)).toEqual([]);
    expect(generationNames(spool, HOST, 'p')).toEqual(names.slice(1));
    for (const n of names.slice(1)) expect(fs.readFileSync(path.join(pdir, n, 'keep'), 'utf8')).toBe('k');
    expect(fs.readdirSync(path.join(pdir, '.hardsnap', 'manifests')).sort()).toEqual(names.slice(1).map((n) => `${n}.hsm`));
  });

  const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => fs.existsSync(p));
  test.skipIf(process.getuid?.() !== 0 || !setpriv)(
    'read-only generations are removed by a prune that does not run as root (needs root and setpriv to switch user)',
    async ({ tmp }) => {
      const spool = makeSpool(path.join(tmp, 'spool'));
      const src = path.join(tmp, 'src');
      makeTree(src, { 'ro/f': 'f', g: 'g' });
      fs.chmodSync(path.join(src, 'ro'), 0o555);
      fs.chmodSync(src, 0o555);
      const times = dailyTimes('2026-05-01', 3);
      for (const t of times) await makeGeneration(spool, HOST, { p: src }, t);
      fs.chmodSync(tmp, 0o755);
      const chown = (await import('node:child_process')).spawnSync('chown', ['-R', '65534:65534', spool]);
      expect(chown.status).toBe(0);
      const pdir = path.join(spool, 'rsync', HOST, 'p');
      expect(fs.statSync(path.join(pdir, genName(times[0]!))).mode & 0o777).toBe(0o555);
      const r = hardsnap(['--reuid=65534', '--regid=65534', '--clear-groups', BIN, 'prune', '--spool', spool, '--host', HOST, '--keep-last', '1'], {
        bin: setpriv!,
      });
      expect(r.code, r.stderr).toBe(0);
      expect(generationNames(spool, HOST, 'p')).toEqual([genName(times[2]!)]);
      expect(fs.readdirSync(path.join(pdir, '.hardsnap', 'trash'))).toEqual([]);
    },
  );

  test('a backup empties the trash a killed prune left, orphaned manifest included', async ({ tmp }) => {
    const spool = makeSpool(path.join(tmp, 'spool'));
    const src = path.join(tmp, 'src');
    makeTree(src, { a: 'x' });
    for (const t of dailyTimes('2026-05-01', 2)) await makeGeneration(spool, HOST, { p: src }, t);
    const pdir = path.join(spool, 'rsync', HOST, 'p');
    // what a killed prune leaves: a generation half deleted in the trash
    const trash = path.join(pdir, '.hardsnap', 'trash');
    fs.mkdirSync(path.join(trash, '2026-04-01T030000Z', 'sub'), { recursive: true });
    fs.writeFileSync(path.join(trash, '2026-04-01T030000Z', 'sub', 'f'), 'f');
    // killed between the two renames: the manifest of a generation already in the trash
    const orphan = path.join(pdir, '.hardsnap', 'manifests', '2026-04-01T030000Z.hsm');
    fs.writeFileSync(orphan, 'not read');
    const r = hardsnap(['backup', '--spool', spool, '--host', HOST, '--part', `p=${src}`], { env: { HARDSNAP_NOW: '2026-05-03T03:00:00Z' } });
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readdirSync(trash)).toEqual([]);
    expect(fs.existsSync(orphan)).toBe(false);
    expect(generationNames(spool, HOST, 'p')).toHaveLength(3);
    expect(fs.readdirSync(path.join(pdir, '.hardsnap', 'manifests'))).toHaveLength(3);
  });

  test('backup --prune applies the config retention after publishing', async ({ tmp }) => {
    const spool = makeSpool(path.join(tmp, 'spool'));
    const src = path.join(tmp, 'src');
    makeTree(src, { a: 'x' });
    for (const t of dailyTimes('2026-05-01', 5)) await makeGeneration(spool, HOST, { p: src }, t);
    const cfg = path.join(tmp, 'hs.yaml');
    fs.writeFileSync(cfg, `spool: ${spool}\nhost: ${HOST}\nparts:\n  p: ${src}\nretention:\n  keep-last: 2\n`);
    const r = hardsnap(['backup', '--config', cfg, '--prune'], { env: { HARDSNAP_NOW: '2026-05-06T03:00:00Z' } });
    expect(r.code, r.stderr).toBe(0);
    expect(generationNames(spool, HOST, 'p')).toEqual(['2026-05-05T030000Z', '2026-05-06T030000Z']);
    // the command line overrides the file's key
    const r2 = hardsnap(['backup', '--config', cfg, '--prune', '--keep-last', '1'], { env: { HARDSNAP_NOW: '2026-05-07T03:00:00Z' } });
    expect(r2.code, r2.stderr).toBe(0);
    expect(generationNames(spool, HOST, 'p')).toEqual(['2026-05-07T030000Z']);
    // --prune without any rule is refused before anything is written
    const bare = path.join(tmp, 'bare.yaml');
    fs.writeFileSync(bare, `spool: ${spool}\nhost: ${HOST}\nparts:\n  p: ${src}\n`);
    const r3 = hardsnap(['backup', '--config', bare, '--prune'], { env: { HARDSNAP_NOW: '2026-05-08T03:00:00Z' } });
    expect(r3.code).toBe(1);
    expect(generationNames(spool, HOST, 'p')).toEqual(['2026-05-07T030000Z']);
    // prune: true in the config prunes without --prune (what watch --backup-every's backups get);
    // --no-prune overrides it for one run
    const auto = path.join(tmp, 'auto.yaml');
    fs.writeFileSync(auto, `spool: ${spool}\nhost: ${HOST}\nprune: true\nparts:\n  p: ${src}\nretention:\n  keep-last: 1\n`);
    const r4 = hardsnap(['backup', '--config', auto, '--no-prune'], { env: { HARDSNAP_NOW: '2026-05-09T03:00:00Z' } });
    expect(r4.code, r4.stderr).toBe(0);
    expect(generationNames(spool, HOST, 'p')).toEqual(['2026-05-07T030000Z', '2026-05-09T030000Z']);
    const r5 = hardsnap(['backup', '--config', auto], { env: { HARDSNAP_NOW: '2026-05-10T03:00:00Z' } });
    expect(r5.code, r5.stderr).toBe(0);
    expect(generationNames(spool, HOST, 'p')).toEqual(['2026-05-10T030000Z']);
  });
});
