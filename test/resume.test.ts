// A run killed with SIGKILL at any moment leaves older generations and `last` untouched, and
// the next run resumes the partial tree without writing again what is already there.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from './helpers/fixture.js';
import { compareTrees, readTree } from './helpers/tree.js';
import { rsyncDiff } from './helpers/oracle.js';
import { hardsnap, spawnHardsnap, waitFor } from './helpers/run.js';
import { copyTree, mktree, mutate } from './helpers/bench-tree.js';
import { calendar, makeSpool } from './helpers/spool.js';

const { at, dayEnv } = calendar('2026-02');

describe('SIGKILL mid-run, then resume', () => {
  test('killed at several moments: older generations and last intact; the next run resumes and keeps finished work', async ({ tmp }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    mktree(src, { files: 1500, big: 2, odd: true });
    const args = ['backup', '--spool', spool, '--host', 'h', '--part', `p=${src}`];
    expect(hardsnap(args, at(1)).code).toBe(0);
    const pdir = path.join(spool, 'rsync', 'h', 'p');
    const g1 = path.join(pdir, '2026-02-01T030000Z');
    // nlink is left out: later generations linking to these inodes raise it, by design
    const snap = () => readTree(g1).map(({ nlink: _n, ...e }) => e);
    const before = snap();
    copyTree(src, path.join(tmp, 'copy1'));
    mutate(src, 2, { change: 30 }); // lots to write, so a kill lands mid-way
    // big changed files: mid-file kills, and a run that cannot finish before the kill
    for (let k = 0; k < 3; k++) fs.writeFileSync(path.join(src, 'db', `dump-${k}.sql`), Buffer.alloc(64 << 20, 7 + k));
    let kills = 0;
    // each kill lands a little later into a run that has visibly started writing its partial
    for (const [d, delayMs] of [
      [2, 0],
      [3, 60],
      [4, 150],
      [5, 300],
    ] as const) {
      // the killed runs may never publish: they pause there (a test-only seam) if they get that far
      const child = spawnHardsnap(args, { env: { ...dayEnv(d), HARDSNAP_TEST_PAUSE_AT: 'before-publish', HARDSNAP_TEST_PAUSE_MS: '60000' } });
      await waitFor(() => fs.readdirSync(pdir).some((n) => n.endsWith('.partial') && fs.readdirSync(path.join(pdir, n)).length > 0), 30_000);
      await new Promise((r) => setTimeout(r, delayMs));
      child.killGroup('SIGKILL');
      const { signal } = await child.exited;
      if (signal === 'SIGKILL') kills++;
      // the published generation is untouched (content, metadata, inodes) and last still points at it
      expect(snap()).toEqual(before);
      expect(compareTrees(path.join(tmp, 'copy1'), g1)).toEqual([]);
      expect(fs.readlinkSync(path.join(pdir, 'last'))).toBe('2026-02-01T030000Z');
      const names = fs.readdirSync(pdir).filter((n) => n.startsWith('2026'));
      expect(names.filter((n) => !n.endsWith('.partial'))).toEqual(['2026-02-01T030000Z']);
      expect(names.filter((n) => n.endsWith('.partial')).length).toBeLessThanOrEqual(1);
    }
    expect(kills).toBe(4);
    // what the killed runs finished: regular files whose mtime already equals the source's
    const partial = fs.readdirSync(pdir).find((n) => n.endsWith('.partial'));
    expect(partial, 'a killed run leaves its partial generation').toBeDefined();
    const listed = JSON.parse(hardsnap(['list', '--spool', spool, '--host', 'h', '--json']).stdout) as { name: string; complete: boolean }[];
    expect(listed.map((g) => [g.name, g.complete])).toEqual([
      ['2026-02-01T030000Z', true],
      [partial!.replace(/\.partial$/, ''), false],
    ]);
    expect(hardsnap(['list', '--spool', spool, '--host', 'h']).stdout).toMatch(/\(partial: interrupted/);
    const done = new Map<string, bigint>();
    if (partial) {
      const srcTree = new Map(readTree(src).map((e) => [e.relPath.toString('latin1'), e]));
      for (const e of readTree(path.join(pdir, partial))) {
        const s = srcTree.get(e.relPath.toString('latin1'));
        if (e.type === 'file' && s && s.mtimeNs === e.mtimeNs && s.size === e.size && e.nlink === 1n) done.set(e.relPath.toString('latin1'), e.ino);
      }
    }
    const r = hardsnap([...args, '--json'], at(6));
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    const g6 = path.join(pdir, '2026-02-06T030000Z');
    expect(rsyncDiff(src, g6)).toEqual([]);
    expect(compareTrees(src, g6)).toEqual([]);
    expect(fs.readlinkSync(path.join(pdir, 'last'))).toBe('2026-02-06T030000Z');
    expect(fs.readdirSync(pdir).some((n) => n.endsWith('.partial'))).toBe(false);
    if (partial) {
      expect(out.parts[0].resumed).toBe(true);
      expect(out.notes.join('\n')).toMatch(/resuming the interrupted generation/);
      // finished copies were kept, not written again
      const after = new Map(readTree(g6).map((e) => [e.relPath.toString('latin1'), e.ino]));
      let kept = 0;
      for (const [p, ino] of done) if (after.get(p) === ino) kept++;
      expect(kept).toBe(done.size);
      expect(out.parts[0].stats.reused).toBeGreaterThanOrEqual(done.size);
    }
    expect(compareTrees(path.join(tmp, 'copy1'), g1)).toEqual([]);
  });
});
