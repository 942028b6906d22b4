// Readers and prune do not step on each other (issue 16): a reader holds a lease on what it
// reads, prune keeps a leased generation, and a reader whose generation is removed under it
// anyway (by a prune that did not see the lease) says so in one line, not one per file.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, test } from './helpers/fixture.js';
import { hardsnap, spawnHardsnap, waitFor } from './helpers/run.js';
import { makeTree } from './helpers/tree.js';
import { generationNames, makeGeneration } from './helpers/ops.js';
import { describeLease, leaseStaleReason, listLeases, liveLeases, takeLeases } from '../src/spool/leases.js';
import { dailyTimes, genName, makeSpool } from './helpers/spool.js';

const HOST = 'h1';

/** A source of `dirs` directories of `files` files each, so that a generation has many files below its root. */
function bigTree(src: string, dirs: number, files: number): void {
  const spec: Record<string, string> = { top: 'top' };
  for (let d = 0; d < dirs; d++) for (let f = 0; f < files; f++) spec[`d${d}/f${f}`] = `content ${d}/${f}`;
  makeTree(src, spec);
}

async function threeGenerations(tmp: string): Promise<{ spool: string; src: string; pdir: string; names: string[] }> {
  const spool = makeSpool(path.join(tmp, 'spool'));
  const src = path.join(tmp, 'src');
  bigTree(src, 20, 100);
  const times = dailyTimes('2026-05-01', 3);
  for (const [i, t] of times.entries()) {
    fs.writeFileSync(path.join(src, 'd0', 'f0'), `day ${i}`);
    await makeGeneration(spool, HOST, { p: src }, t);
  }
  return { spool, src, pdir: path.join(spool, 'rsync', HOST, 'p'), names: times.map(genName) };
}

const NOW = { HARDSNAP_NOW: '2026-05-03T05:00:00Z' };

function startPaused(tmp: string, args: string[]) {
  const go = path.join(tmp, 'go');
  const child = spawnHardsnap(args, { env: { HARDSNAP_TEST_PAUSE_AT: 'mid-read', HARDSNAP_TEST_PAUSE_MS: '60000', HARDSNAP_TEST_PAUSE_UNTIL: go, ...NOW } });
  return { child, resume: () => fs.writeFileSync(go, '') };
}

describe('readers and prune', () => {
  test('a prune started while verify --deep reads a generation keeps it, and says who reads it', async ({ tmp }) => {
    const { spool, pdir, names } = await threeGenerations(tmp);
    const { child, resume } = startPaused(tmp, ['verify', '--spool', spool, '--host', HOST, '--part', 'p', '--generation', names[0]!, '--deep']);
    try {
      await waitFor(() => child.out.stderr.includes('test pause at mid-read'), 20_000, 20, 'verify to hold its lease');
      const leases = listLeases(pdir);
      expect(leases).toHaveLength(1);
      expect(leases[0]!.info).toMatchObject({ generation: names[0], pid: child.pid, holder: 'verify', expires: null, detached: false });
      expect(leases[0]!.stale).toBeNull();

      const dry = hardsnap(['prune', '--spool', spool, '--host', HOST, '--keep-last', '1', '--dry-run'], { env: NOW });
      expect(dry.stdout).toMatch(new RegExp(`${names[0]}\\s+keep\\s+being read by pid ${child.pid} on \\S+ \\(verify\\)`));
      const r = hardsnap(['prune', '--spool', spool, '--host', HOST, '--keep-last', '1'], { env: NOW });
      expect(r.code, r.stderr).toBe(0);
      expect(generationNames(spool, HOST, 'p')).toEqual([names[0], names[2]]);
      resume();
      const done = await child.exited;
      expect(done.code, child.out.stderr).toBe(0);
      expect(child.out.stdout).toBe('');
      expect(listLeases(pdir)).toEqual([]); // released
    } finally {
      child.killGroup('SIGKILL');
    }
    // the lease gone, the next prune removes it
    const again = hardsnap(['prune', '--spool', spool, '--host', HOST, '--keep-last', '1'], { env: NOW });
    expect(again.code, again.stderr).toBe(0);
    expect(generationNames(spool, HOST, 'p')).toEqual([names[2]]);
  });

  test('the lease of a reader killed with SIGKILL is stale: the next prune removes the generation and the lease file', async ({ tmp }) => {
    const { spool, pdir, names } = await threeGenerations(tmp);
    const { child } = startPaused(tmp, ['verify', '--spool', spool, '--host', HOST, '--part', 'p', '--generation', names[0]!]);
    await waitFor(() => child.out.stderr.includes('test pause at mid-read'), 20_000, 20, 'verify to hold its lease');
    child.killGroup('SIGKILL');
    await child.exited;
    expect(listLeases(pdir)[0]!.stale).toMatch(/is gone/);
    const r = hardsnap(['prune', '--spool', spool, '--host', HOST, '--keep-last', '1'], { env: NOW });
    expect(r.code, r.stderr).toBe(0);
    expect(generationNames(spool, HOST, 'p')).toEqual([names[2]]);
    expect(listLeases(pdir)).toEqual([]);
  });

  test('verify --deep whose generation is pruned under it (a prune that did not see its lease) prints one line, not one per file', async ({ tmp }) => {
    const { spool, pdir, names } = await threeGenerations(tmp);
    const { child, resume } = startPaused(tmp, ['verify', '--spool', spool, '--host', HOST, '--part', 'p', '--generation', names[0]!, '--deep']);
    try {
      await waitFor(() => child.out.stderr.includes('test pause at mid-read'), 20_000, 20, 'verify to hold its lease');
      // what an older hardsnap (or one on a host that cannot see the file) would do
      for (const l of listLeases(pdir)) fs.rmSync(l.file);
      const r = hardsnap(['prune', '--spool', spool, '--host', HOST, '--keep-last', '1'], { env: NOW });
      expect(r.code, r.stderr).toBe(0);
      expect(generationNames(spool, HOST, 'p')).toEqual([names[2]]);
      resume();
      const done = await child.exited;
      const lines = child.out.stderr
        .trim()
        .split('\n')
        .filter((l) => !l.includes('test pause'));
      expect(lines, child.out.stderr).toEqual([`hardsnap: warning: part 'p': generation ${names[0]} was pruned while being read: verify of it stopped`]);
      expect(child.out.stdout).toBe('');
      expect(done.code).toBe(0); // nothing damaged was found: the generation is simply gone
    } finally {
      child.killGroup('SIGKILL');
    }
  });

  test('restore whose generation is pruned under it stops with one line (exit 2), not one per file', async ({ tmp }) => {
    const { spool, pdir, names } = await threeGenerations(tmp);
    const to = path.join(tmp, 'restored');
    const { child, resume } = startPaused(tmp, ['restore', '--spool', spool, '--host', HOST, '--part', 'p', '--at', names[0]!, '--to', to]);
    try {
      await waitFor(() => child.out.stderr.includes('test pause at mid-read'), 20_000, 20, 'restore to hold its lease');
      expect(listLeases(pdir).map((l) => l.info.holder)).toEqual(['restore']);
      const kept = hardsnap(['prune', '--spool', spool, '--host', HOST, '--keep-last', '1'], { env: NOW });
      expect(kept.code, kept.stderr).toBe(0);
      expect(generationNames(spool, HOST, 'p')).toEqual([names[0], names[2]]); // leased: kept
      for (const l of listLeases(pdir)) fs.rmSync(l.file);
      const r = hardsnap(['prune', '--spool', spool, '--host', HOST, '--keep-last', '1'], { env: NOW });
      expect(r.code, r.stderr).toBe(0);
      expect(generationNames(spool, HOST, 'p')).toEqual([names[2]]);
      resume();
      const done = await child.exited;
      const lines = child.out.stderr
        .trim()
        .split('\n')
        .filter((l) => !l.includes('test pause'));
      expect(lines, child.out.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`^hardsnap: error: part 'p': generation ${names[0]} was pruned while being read: the restore stopped`));
      expect(done.code).toBe(2);
    } finally {
      child.killGroup('SIGKILL');
    }
  });

  test('leases that cannot be read (a file where their directory should be): prune removes nothing, and says so in one line', async ({ tmp }) => {
    const { spool, pdir, names } = await threeGenerations(tmp);
    fs.writeFileSync(path.join(pdir, '.hardsnap', 'leases'), 'not a directory');
    const r = hardsnap(['prune', '--spool', spool, '--host', HOST, '--keep-last', '1'], { env: NOW });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^hardsnap: warning: part 'p': nothing is removed: leases cannot be read \(ENOTDIR: .*leases\); make it a readable directory$/),
    ]);
    expect(generationNames(spool, HOST, 'p')).toEqual(names);
    // on record, and status warns until a prune does its work
    const log = fs
      .readFileSync(path.join(spool, 'rsync', HOST, '.hardsnap', 'prunes.jsonl'), 'utf8')
      .trim()
      .split('\n');
    expect(JSON.parse(log.at(-1)!)).toMatchObject({
      status: 'partial',
      parts: {
        p: {
          removed: [],
          notMoved: [
            { generation: names[0], code: 'ELEASES' },
            { generation: names[1], code: 'ELEASES' },
          ],
        },
      },
    });
    const st = hardsnap(['status', '--spool', spool, '--host', HOST, '--max-age', '0s'], { env: NOW });
    expect(st.code, st.stdout).toBe(1);
    expect(st.stdout).toMatch(
      /h1\/p: WARNING .* - the last prune \([^)]+\) kept 2 generations it was to remove \(ELEASES: its leases cannot be read \(ENOTDIR: /,
    );
  });

  test('diff, du and history take leases and leave none behind', async ({ tmp }) => {
    const { spool, pdir, names } = await threeGenerations(tmp);
    for (const args of [
      ['diff', '--part', 'p', names[0]!, names[2]!],
      ['du', '--part', 'p'],
      ['history', '--part', 'p', 'top'],
    ]) {
      const r = hardsnap([...args, '--spool', spool, '--host', HOST], { env: NOW });
      expect(r.code, `${args[0]}: ${r.stderr}`).toBe(0);
    }
    expect(listLeases(pdir)).toEqual([]);
    // the lease directory exists (only taking a lease makes it), and is empty again
    expect(fs.readdirSync(path.join(pdir, '.hardsnap', 'leases'))).toEqual([]);
  });
});

describe('the lease primitive (src/spool/leases.ts), for readers and for a tape job (issue 21)', () => {
  test('a detached lease with an expiry outlives its process and counts until it expires; then prune would not see it', ({ tmp }) => {
    const pdir = path.join(tmp, 'p');
    fs.mkdirSync(path.join(pdir, '.hardsnap'), { recursive: true });
    const soon = new Date(Date.now() + 60_000);
    const h = takeLeases(pdir, ['2026-05-01T030000Z'], { command: 'hardsnap lease --part p', holder: 'tape job nightly', expires: soon, detached: true });
    const info = h.leases[0]!.info;
    expect(describeLease(info)).toBe(`leased by tape job nightly until ${soon.toISOString()}`);
    // a process that is gone does not end a detached lease; its expiry does
    expect(leaseStaleReason({ ...info, pid: 2 ** 22 + 1 })).toBeNull();
    expect(leaseStaleReason(info, soon.getTime() + 1)).toMatch(/expired/);
    expect([...liveLeases(pdir).keys()]).toEqual(['2026-05-01T030000Z']);
    expect(liveLeases(pdir, soon.getTime() + 1).size).toBe(0);
    expect(fs.statSync(path.join(pdir, '.hardsnap', 'leases')).mode & 0o777).toBe(0o700);
    h.release();
    expect(listLeases(pdir)).toEqual([]);
    expect(() => takeLeases(pdir, ['x'], { command: 'c', detached: true })).toThrow(/expiry/);
  });
});
