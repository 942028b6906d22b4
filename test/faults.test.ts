// SIGKILL at many moments of a backup, made to happen for real (the other faults are in
// test/faults-io.test.ts). Each kill is followed by the checks of SPEC.md "What a user can count
// on": published generations unchanged to the inode, `last` intact, the next run completes.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from './helpers/fixture.js';
import { rsyncDiff } from './helpers/oracle.js';
import { hardsnap, spawnHardsnap, waitFor, type HardsnapChild } from './helpers/run.js';
import { mktree, mutate } from './helpers/bench-tree.js';
import { fingerprint, rng, seedOf, shmdir } from './helpers/robust.js';
import { makeSpool } from './helpers/spool.js';

const PART_ENTRIES = new Set(['last', 'LATEST', '.hardsnap']);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What is in a part directory besides generations, partials, `last`, `LATEST` and `.hardsnap`. */
/** What a part directory holds besides its own entries; `publishing`: a run killed while it published may leave last's and LATEST's new names (the next run removes them). */
function strays(pdir: string, publishing = false): string[] {
  return fs
    .readdirSync(pdir)
    .filter((n) => !PART_ENTRIES.has(n) && !/^\d{4}-\d\d-\d\dT\d{6}Z(\.partial)?$/.test(n) && !(publishing && /^\.(last|LATEST)\.\d+\.tmp$/.test(n)));
}

describe('SIGKILL at any moment', () => {
  test('20+ SIGKILLs at seeded random and targeted moments, mid-prune included: surviving published generations stay byte-identical (inodes too), last intact, the next run resumes and matches the source', async () => {
    const seed = seedOf(20261122);
    const r = rng(seed);
    const base = shmdir();
    const src = path.join(base, 'src');
    const spool = makeSpool(path.join(base, 'spool'));
    const pdir = path.join(spool, 'rsync', 'h1', 'data');
    const last = path.join(pdir, 'last');
    mktree(src, { files: 2000, seed: 7 });
    const BIG = 64 << 20;
    fs.writeFileSync(path.join(src, 'big.bin'), randomBytes(BIG));
    let minute = 0;
    const env = (extra: Record<string, string> = {}) => ({ HARDSNAP_NOW: new Date(Date.UTC(2026, 0, 1, 3, minute++)).toISOString(), ...extra });
    // every run prunes to the newest KEEP generations, so kills land mid-prune too
    const KEEP = 3;
    const args = ['backup', '--spool', spool, '--host', 'h1', '--part', `data=${src}`, '--verbose', '--prune', '--keep-last', String(KEEP)];
    const trash = path.join(pdir, '.hardsnap', 'trash');
    const trashed = () => (fs.existsSync(trash) ? fs.readdirSync(trash) : []);

    const first = hardsnap(args, { env: env() });
    expect(first.code, first.stderr).toBe(0);
    // one typical run (a day of changes, big.bin rewritten), timed: the random delays spread over it
    const poke = () => {
      const fd = fs.openSync(path.join(src, 'big.bin'), 'r+');
      fs.writeSync(fd, randomBytes(8), 0, 8, Math.floor(r() * (BIG - 8)));
      fs.closeSync(fd);
    };
    mutate(src, 1000, { change: 3, add: 1, delete: 1, rename: 1 });
    poke();
    const t0 = Date.now();
    const second = hardsnap(args, { env: env() });
    const duration = Date.now() - t0;
    expect(second.code, second.stderr).toBe(0);
    const published = new Map<string, string[]>();
    const record = (name: string) => published.set(name, fingerprint(path.join(pdir, name)));
    for (const n of fs.readdirSync(pdir).filter((x) => /Z$/.test(x))) record(n);
    let lastName = fs.readlinkSync(last);
    expect(published.size).toBe(2);

    const ctx = `seed ${seed} (replay with HARDSNAP_TEST_SEED=${seed})`;
    const pruned: string[] = [];
    const checkIntact = (label: string, expectLast = true, publishing = false) => {
      // a generation gone from view was pruned: only ever one with KEEP newer ones beside it, never `last`
      const present = fs.readdirSync(pdir).filter((n) => /^\d{4}-.*Z$/.test(n));
      for (const name of [...published.keys()]) {
        if (present.includes(name)) continue;
        expect(name, `${ctx}, ${label}: last was pruned`).not.toBe(lastName);
        expect(present.filter((n) => n > name).length, `${ctx}, ${label}: ${name} pruned with fewer than ${KEEP} newer`).toBeGreaterThanOrEqual(KEEP);
        published.delete(name);
        pruned.push(name);
      }
      for (const [name, fp] of published) {
        const now = fingerprint(path.join(pdir, name));
        expect(now.filter((l, i) => l !== fp[i]).slice(0, 5), `${ctx}, ${label}: generation ${name} changed`).toEqual([]);
        expect(now.length, `${ctx}, ${label}: ${name}`).toBe(fp.length);
      }
      if (expectLast) expect(fs.readlinkSync(last), `${ctx}, ${label}: last`).toBe(lastName);
      expect(strays(pdir, publishing), `${ctx}, ${label}`).toEqual([]);
    };

    // prune-delay: a seeded delay after the prune's first generation went to the trash, so the
    // kill lands while it is being deleted (or after; then the run is simply over)
    type Point = 'delay' | 'mid-file' | 'before-publish' | 'before-last' | 'mid-prune' | 'prune-delay';
    const PAUSED: Partial<Record<Point, Record<string, string>>> = {
      'before-publish': { HARDSNAP_TEST_PAUSE_AT: 'before-publish' },
      'before-last': { HARDSNAP_TEST_PAUSE_AT: 'before-last' },
      'mid-prune': { HARDSNAP_TEST_PAUSE_AT: 'mid-prune' },
      'prune-delay': { HARDSNAP_TEST_PAUSE_AT: 'mid-prune', HARDSNAP_TEST_PAUSE_MS: '0' },
    };
    const kills: string[] = [];
    const killOnce = async (point: Point): Promise<boolean> => {
      // resumed runs are quicker than the timed one (they keep what was done): 70% of it
      const delay = Math.floor(r() * duration * 0.7);
      const child: HardsnapChild = spawnHardsnap(args, { env: env(PAUSED[point] ?? {}) });
      let done = false;
      void child.exited.then(() => (done = true));
      if (point === 'delay') {
        await sleep(delay);
      } else if (point === 'mid-file') {
        // the copy of big.bin is under way: its new inode exists and is not full yet
        await waitFor(
          () => {
            if (done) return true;
            const p = fs.readdirSync(pdir).find((n) => n.endsWith('.partial'));
            const st = p && fs.statSync(path.join(pdir, p, 'big.bin'), { throwIfNoEntry: false });
            return Boolean(st && st.size > 0 && st.size < BIG);
          },
          30_000,
          1,
          'big.bin half copied',
        );
      } else {
        const at = PAUSED[point]!.HARDSNAP_TEST_PAUSE_AT;
        await waitFor(() => done || child.out.stderr.includes(`test pause at ${at}`), 30_000, 1, point);
        if (point === 'prune-delay') await sleep(Math.floor(r() * 40));
      }
      child.killGroup('SIGKILL');
      const ex = await child.exited;
      if (ex.signal !== 'SIGKILL') {
        // finished before the kill: a complete run, which must be a good one
        expect(ex.code, `${ctx}: run that ended before its kill (${point}): ${child.out.stderr}`).toBe(0);
        lastName = fs.readlinkSync(last);
        expect(rsyncDiff(src, path.join(pdir, lastName))).toEqual([]);
        record(lastName);
        return false;
      }
      const inPrune = point === 'mid-prune' || point === 'prune-delay';
      const label =
        point === 'delay' ? `kill after ${delay} ms` : inPrune ? `kill ${point}${trashed().length ? ' (trash not empty)' : ''}` : `kill at ${point}`;
      kills.push(label);
      // the pause is certain: the prune's first generation is in the trash, not yet deleted
      if (point === 'mid-prune') expect(trashed().length, `${ctx}: ${label}`).toBeGreaterThan(0);
      if (point === 'before-last') {
        // the generation is in place and complete; only `last` has not moved yet
        const newest = fs
          .readdirSync(pdir)
          .filter((n) => /^\d{4}-.*Z$/.test(n))
          .sort()
          .pop()!;
        expect(newest > lastName, `${ctx}: ${label}: a new generation was published`).toBe(true);
        expect(rsyncDiff(src, path.join(pdir, newest))).toEqual([]);
        checkIntact(label, true, true);
        record(newest);
      } else {
        const moved = fs.readlinkSync(last);
        if (moved !== lastName) {
          // killed after `last` moved (writing the run log, releasing the lock): published
          expect(published.has(moved), `${ctx}: ${label}: last moved to a known generation`).toBe(false);
          expect(rsyncDiff(src, path.join(pdir, moved)), `${ctx}: ${label}`).toEqual([]);
          checkIntact(label, false, true);
          lastName = moved;
          record(moved);
          return true;
        }
        // a kill while it published may leave last's and LATEST's new names (the next run removes them)
        checkIntact(label, true, true);
      }
      return true;
    };

    const targeted: Point[] = [
      'mid-file',
      'before-publish',
      'before-last',
      'mid-prune',
      'mid-file',
      'before-publish',
      'before-last',
      'prune-delay',
      'mid-prune',
      'prune-delay',
    ];
    for (let round = 1; kills.length < 20 || targeted.length; round++) {
      expect(round, `${ctx}: too many rounds without enough kills: ${kills.join(', ')}`).toBeLessThan(40);
      mutate(src, round, { change: 3, add: 1, delete: 1, rename: 1 });
      poke();
      // 3-5 kills in a row (each run resumes the last one's partial), then a run to the end;
      // a targeted point comes first in its round (mid-file: big.bin is then copied afresh)
      const n = 3 + Math.floor(r() * 3);
      for (let k = 0; k < n; k++) {
        const point: Point = k === 0 && targeted.length ? targeted.shift()! : 'delay';
        await killOnce(point);
      }
      const lockHeld = fs.existsSync(path.join(spool, 'rsync', 'h1', '.hardsnap', 'lock'));
      const hadPartial = fs.readdirSync(pdir).some((n) => n.endsWith('.partial'));
      // generous: on a loaded machine (the full suite beside other work) a run may be slow; the
      // last itemized lines say how far a run that overran got
      const next = hardsnap(args, { env: env(), timeoutMs: 150_000 });
      const tail = next.stdout.trimEnd().split('\n').slice(-5).join('\n');
      expect(next.code, `${ctx}: the run after ${kills.slice(-n).join(', ')}: ${next.stderr}\nlast stdout lines:\n${tail}`).toBe(0);
      if (lockHeld) expect(next.stderr).toMatch(/took over a stale lock of pid \d+/);
      if (hadPartial) expect(next.stderr).toMatch(/resuming the interrupted generation/);
      lastName = fs.readlinkSync(last);
      expect(fs.readFileSync(path.join(pdir, 'LATEST'), 'utf8'), `${ctx}: LATEST after the completing run`).toBe(`${lastName}\n`);
      expect(rsyncDiff(src, path.join(pdir, lastName)), `${ctx}: after ${kills.slice(-n).join(', ')}`).toEqual([]);
      checkIntact('after the completing run');
      // nothing the killed runs left behind stays: no partial, no half-written manifest
      expect(fs.readdirSync(pdir).filter((n) => n.endsWith('.partial'))).toEqual([]);
      expect(
        fs.readdirSync(path.join(pdir, '.hardsnap', 'manifests')).filter((n) => !n.endsWith('.hsm')),
        ctx,
      ).toEqual([]);
      // ... no trash of a killed prune, and one manifest per generation (none of a pruned one)
      expect(trashed(), `${ctx}: trash after the completing run`).toEqual([]);
      expect(fs.readdirSync(path.join(pdir, '.hardsnap', 'manifests')).sort(), ctx).toEqual(
        fs
          .readdirSync(pdir)
          .filter((n) => /^\d{4}-.*Z$/.test(n))
          .sort()
          .map((n) => `${n}.hsm`),
      );
      record(lastName);
    }
    // and every surviving generation still matches its manifest, file by file (rehashed)
    const v = hardsnap(['verify', '--spool', spool, '--host', 'h1', '--deep', '--json']);
    expect(v.code, `${ctx}: verify --deep: ${v.stdout}${v.stderr}`).toBe(0);
    expect((JSON.parse(v.stdout) as { generations: unknown[] }).generations.length).toBe(published.size);
    console.log(
      `faults: ${kills.length} kills (${kills.filter((k) => k.includes('trash not empty')).length} mid-prune) over ${published.size + pruned.length} generations, ${pruned.length} pruned, ${ctx}`,
    );
    expect(kills.length).toBeGreaterThanOrEqual(20);
    expect(kills.filter((k) => k === 'kill at mid-file').length).toBeGreaterThan(0);
    expect(kills.filter((k) => k.startsWith('kill mid-prune (trash not empty)')).length).toBeGreaterThan(0);
    expect(pruned.length).toBeGreaterThan(0);
  }, 600_000);
});
