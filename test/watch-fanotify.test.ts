// Watch mode with each watcher (issue 22): fanotify (root's default: a file-system mark) and
// chokidar (the fallback: not root, or forced). Every generation must equal the source (tree
// comparer and rsync oracle); where a test passes --audit-sample 0, only the journal can have
// told the backup about the change, so the test fails if the watcher missed it.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect, test } from './helpers/fixture.js';
import { compareTrees, makeTree } from './helpers/tree.js';
import { rsyncDiff } from './helpers/oracle.js';
import { BIN, spawnHardsnap, target, waitFor, type HardsnapChild, type Spot } from './helpers/run.js';
import { makeSpool, partDirOf } from './helpers/spool.js';
import {
  backupAsync,
  linkWriteUnlink,
  dayEnv,
  expectSame,
  fakeWatcher,
  scanOf,
  spot,
  startWatcher,
  stopWatcher,
  watchedFromDay2,
  wideTree,
} from './helpers/watch.js';
import { readJournal } from '../src/watch/journal-file.js';
import { isRoot } from './helpers/robust.js';

function needRoot(what: string): void {
  if (!isRoot) throw new Error(`${what}: run it as root (CI does)`);
}

const kinds = [
  { name: 'fanotify', args: [] as string[] },
  { name: 'chokidar', args: ['--watcher', 'chokidar'] },
] as const;

function watcherOf(s: Spot): string | undefined {
  return readJournal(partDirOf(s))?.watcher;
}

describe('watch: fanotify and chokidar journal the same changes', () => {
  for (const k of kinds) {
    test(`${k.name}: files and directories renamed across directories, over a path the previous generation knew, and in from outside the source: the journal alone finds every change`, async ({
      tmp,
    }) => {
      if (k.name === 'fanotify') needRoot('the fanotify watcher needs root');
      const s = spot(tmp);
      wideTree(s.src);
      makeTree(path.join(tmp, 'outside'), { 'tree/a/x': 'outside x', 'tree/b/c/y': 'outside y' });
      await watchedFromDay2(s, async () => {
        expect(watcherOf(s)).toBe(k.name);
        for (let round = 3; round < 6; round++) {
          fs.renameSync(path.join(s.src, `d${round}/f1`), path.join(s.src, `d${round + 5}/moved-${round}`));
          // d{r} (with d{r}/sub) goes away; d{r+10} takes its name, its sub too: the previous
          // manifest's d{r}/sub block describes another directory now
          fs.renameSync(path.join(s.src, `d${round}`), path.join(s.src, `old-${round}`));
          fs.appendFileSync(path.join(s.src, `d${round + 10}/sub/leaf`), `changed before the move ${round}\n`);
          fs.renameSync(path.join(s.src, `d${round + 10}`), path.join(s.src, `d${round}`));
          fs.writeFileSync(path.join(s.src, `d${round}/sub/after-${round}`), 'written after the move\n');
          fs.renameSync(path.join(s.src, 'mv'), path.join(s.src, `d${round + 6}/mv-${round}`));
          fs.renameSync(path.join(s.src, `d${round + 6}/mv-${round}`), path.join(s.src, 'mv'));
          if (round === 3) fs.renameSync(path.join(tmp, 'outside/tree'), path.join(s.src, 'd16/from-outside'));
          fs.appendFileSync(path.join(s.src, 'd16/from-outside/b/c/y'), `round ${round}\n`);
          const g = await backupAsync(s, ['--audit-sample', '0'], dayEnv(round));
          expect(g.code).toBe(0);
          expect(g.part.journal).toMatchObject({ used: true, reason: null, audited: 0 });
          expectSame(s, g.part.path);
          // put the names back for the next round's moves
          fs.renameSync(path.join(s.src, `d${round}`), path.join(s.src, `d${round + 10}`));
          fs.renameSync(path.join(s.src, `old-${round}`), path.join(s.src, `d${round}`));
        }
      }, [...k.args]);
    });
  }

  test('chokidar forced: edits, creates, deletes, renames and chmods, and mutate rounds give exact generations with the journal', async ({ tmp }) => {
    const s = spot(tmp);
    wideTree(s.src);
    await watchedFromDay2(
      s,
      async (w) => {
        expect(w.out.stderr).toMatch(/data: watching .* with chokidar/);
        expect(watcherOf(s)).toBe('chokidar');
        fs.appendFileSync(path.join(s.src, 'd1/f1'), 'edited\n');
        fs.writeFileSync(path.join(s.src, 'd2/new'), 'created\n');
        fs.rmSync(path.join(s.src, 'd3/f0'));
        fs.renameSync(path.join(s.src, 'd4/f1'), path.join(s.src, 'd5/f1-moved'));
        fs.chmodSync(path.join(s.src, 'perm/p'), 0o600);
        fs.chmodSync(path.join(s.src, 'd7/sub'), 0o700);
        fs.mkdirSync(path.join(s.src, 'fresh/inner'), { recursive: true });
        fs.writeFileSync(path.join(s.src, 'fresh/inner/x'), 'x');
        const g = await backupAsync(s, ['--audit-sample', '0'], dayEnv(3));
        expect(g.part.journal).toMatchObject({ used: true, reason: null });
        expect(g.part.journal.skippedDirs).toBeGreaterThan(10);
        expectSame(s, g.part.path);
      },
      ['--watcher', 'chokidar'],
    );
  });
});

describe('watch: fanotify', () => {
  test('a queue overflow (the watcher stopped while more events than the queue holds are made) ends the epoch: the next backup scans everything, the one after uses the journal again', async ({
    tmp,
  }) => {
    needRoot('the fanotify watcher needs root');
    const s = spot(tmp);
    wideTree(s.src);
    const max = Number(fs.readFileSync('/proc/sys/fs/fanotify/max_queued_events', 'utf8'));
    await watchedFromDay2(s, async (w) => {
      expect(watcherOf(s)).toBe('fanotify');
      const before = readJournal(partDirOf(s))!.epoch!.id;
      // the sysctl raised after the group was made: its queue stays as it was, and the log says
      // that size (an attacker's finding: it said the sysctl's value now)
      fs.writeFileSync('/proc/sys/fs/fanotify/max_queued_events', String(max * 2));
      // SIGSTOP: nothing reads the queue while the flood comes in
      w.killGroup('SIGSTOP');
      try {
        fs.mkdirSync(path.join(s.src, 'flood'));
        for (let i = 0; i < max + 2_000; i++) fs.writeFileSync(path.join(s.src, 'flood', `f${i}`), '');
      } finally {
        w.killGroup('SIGCONT');
        fs.writeFileSync('/proc/sys/fs/fanotify/max_queued_events', String(max));
      }
      await waitFor(() => /the fanotify queue overflowed/.test(w.out.stderr), 60_000, 50, 'the overflow to be reported');
      expect(w.out.stderr).toMatch(new RegExp(`its size: ${max} events, fs\\.fanotify\\.max_queued_events when the watcher started`));
      const g3 = await backupAsync(s, [], dayEnv(3));
      expect(g3.part.journal.used).toBe(false);
      expect(g3.part.journal.reason).toMatch(/epoch (ended at .*: the fanotify queue overflowed|began .* after the previous generation's scan began)/);
      expectSame(s, g3.part.path);
      // a new epoch began at once, before generation 3's scan: generation 4 may use it
      expect(readJournal(partDirOf(s))!.epoch!.id).not.toBe(before);
      fs.appendFileSync(path.join(s.src, 'd2/f2'), 'after the overflow\n');
      fs.rmSync(path.join(s.src, 'flood/f7'));
      const g4 = await backupAsync(s, ['--audit-sample', '0'], dayEnv(4));
      expect(g4.part.journal).toMatchObject({ used: true, reason: null });
      expectSame(s, g4.part.path);
    });
  });

  test("a file system mounted inside the source after the watcher started is read (another device), and a bind mount of the source's own file system ends the epoch", async ({
    tmp,
  }) => {
    needRoot('this test mounts a tmpfs and a bind mount');
    const s = spot(tmp);
    wideTree(s.src);
    const mounted: string[] = [];
    const mount = (...args: string[]) => {
      const r = spawnSync('mount', args, { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`mount ${args.join(' ')}: ${r.stderr}`);
      mounted.push(args.at(-1)!);
    };
    try {
      await watchedFromDay2(s, async (w) => {
        expect(watcherOf(s)).toBe('fanotify');
        mount('-t', 'tmpfs', '-o', 'size=1m', 'none', path.join(s.src, 'd3'));
        fs.writeFileSync(path.join(s.src, 'd3/on-tmpfs'), 'no mark on this file system');
        fs.mkdirSync(path.join(s.src, 'd3/sub'));
        fs.writeFileSync(path.join(s.src, 'd4/f0'), 'a change the journal knows');
        // no audit: only the device rule can save this generation
        const g3 = await backupAsync(s, ['--audit-sample', '0'], dayEnv(3));
        expect(g3.part.journal).toMatchObject({ used: true, reason: null });
        expectSame(s, g3.part.path);
        // the same file system bound inside the source: its directories have two paths, and
        // fanotify names one
        mount('--bind', path.join(s.src, 'd5'), path.join(s.src, 'd6/sub'));
        fs.appendFileSync(path.join(s.src, 'd6/sub/f0'), 'written through the bind mount\n');
        const g4 = await backupAsync(s, ['--audit-sample', '0'], dayEnv(4));
        expect(g4.part.journal.used).toBe(false);
        // the watcher sees the mount when it is made (the mount table is polled), or when the backup asks
        expect(g4.part.journal.reason).toMatch(
          /epoch ended at .*: a mount of the source's own file system was made inside it \(.*d6\/sub\)|epoch began .* after the previous generation's scan began/,
        );
        // one inode of one name under two paths (the bind mount): two files in the copy, as
        // rsync -aH makes (links.py, which groups by inode number, would call them one)
        expect(compareTrees(s.src, g4.part.path, { links: false })).toEqual([]);
        expect(rsyncDiff(s.src, g4.part.path)).toEqual([]);
        expect(fs.statSync(path.join(g4.part.path, 'd6/sub/f0')).ino).not.toBe(fs.statSync(path.join(g4.part.path, 'd5/f0')).ino);
        expect(w.out.stderr).toMatch(/a mount of the source's own file system was made inside it/);
      });
    } finally {
      for (const m of mounted.reverse()) spawnSync('umount', [m]);
    }
  });

  test('a directory moved out of a parent that is then removed (mv a/X b/X && rmdir a, read late): its later changes are journaled under its new path (an attack on issue 22: they went to a/X, and the backup linked the old file, exit 0)', async ({
    tmp,
  }) => {
    needRoot('the fanotify watcher needs root');
    // the spool on a file system of its own (a tmpfs): the backups' renames in the spool would
    // otherwise clear the watcher's cache of directory paths, hiding the stale entry
    const spoolFs = path.join(tmp, 'spoolfs');
    fs.mkdirSync(spoolFs);
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', spoolFs]).status).toBe(0);
    try {
      const s = { ...spot(tmp), spool: makeSpool(path.join(spoolFs, 'spool')) };
      wideTree(s.src);
      makeTree(s.src, { 'a/X/f': 'first\n', b: { dir: true } });
      // a directory moved in from outside the source, whose old parent goes too
      const outside = path.join(tmp, 'outside');
      makeTree(outside, { 'p/Y/f': 'from outside\n' });
      await watchedFromDay2(s, async (w) => {
        expect(watcherOf(s)).toBe('fanotify');
        fs.appendFileSync(path.join(s.src, 'a/X/f'), 'seen at a/X\n');
        fs.appendFileSync(path.join(outside, 'p/Y/f'), 'seen outside\n');
        expectSame(s, (await backupAsync(s, [], dayEnv(3))).part.path);
        // SIGSTOP: the old parents are gone when the watcher reads the moves
        w.killGroup('SIGSTOP');
        try {
          fs.renameSync(path.join(s.src, 'a/X'), path.join(s.src, 'b/X'));
          fs.rmdirSync(path.join(s.src, 'a'));
          fs.renameSync(path.join(outside, 'p/Y'), path.join(s.src, 'Y'));
          fs.rmdirSync(path.join(outside, 'p'));
        } finally {
          w.killGroup('SIGCONT');
        }
        expectSame(s, (await backupAsync(s, [], dayEnv(4))).part.path);
        fs.appendFileSync(path.join(s.src, 'b/X/f'), 'changed after the move\n');
        fs.appendFileSync(path.join(s.src, 'Y/f'), 'changed after the move in\n');
        // no audit: only the journal can have told the backup
        const g5 = await backupAsync(s, ['--audit-sample', '0'], dayEnv(5));
        expect(g5.part.journal).toMatchObject({ used: true, reason: null });
        expectSame(s, g5.part.path);
      });
    } finally {
      spawnSync('umount', ['-l', spoolFs]);
    }
  });

  test('the journal names the entries that changed: a changed directory is read for those only (the others come from the manifest), and a whole change reads it all', async ({
    tmp,
  }) => {
    // a hand-written journal: d7 changed, and only its entry f1 is named
    const s = spot(tmp);
    wideTree(s.src);
    const g1 = await backupAsync(s, [], dayEnv(1));
    const start = scanOf(s, g1.part.generation).startMono;
    const t = start + 1;
    let gen2 = '';
    const fake = fakeWatcher(s, {
      epoch: { id: 'e1', startMono: start - 1, startWall: 'then', ended: null },
      watcher: 'fanotify',
      dirty: { d7: t },
      names: { d7: { f1: t } },
      whole: {},
    });
    try {
      fs.appendFileSync(path.join(s.src, 'd7/f1'), 'named in the journal\n');
      fs.writeFileSync(path.join(s.src, 'd7/new'), 'a new name: not in the manifest, read\n');
      // changed behind the journal's back (same directory, not named): proof that the entries
      // not named really come from the manifest
      fs.appendFileSync(path.join(s.src, 'd7/f3'), 'the journal never heard of this\n');
      const g2 = await backupAsync(s, ['--audit-sample', '0'], dayEnv(2));
      expect(g2.part.journal).toMatchObject({ used: true, reason: null });
      expect(g2.part.journal.namedDirs).toBe(1);
      gen2 = g2.part.generation;
      const gen = g2.part.path;
      expect(fs.readFileSync(path.join(gen, 'd7/f1'), 'utf8')).toMatch(/named in the journal/);
      expect(fs.readFileSync(path.join(gen, 'd7/new'), 'utf8')).toMatch(/a new name/);
      expect(fs.readFileSync(path.join(gen, 'd7/f3'), 'utf8')).toBe('file 7/3\n');
    } finally {
      fake.stop();
    }
    // the same with a whole mark after the names: d7 is read whole, f3 is found
    const g2 = scanOf(s, gen2).startMono;
    const fake2 = fakeWatcher(s, {
      epoch: { id: 'e2', startMono: g2 - 1, startWall: 'then', ended: null },
      watcher: 'fanotify',
      dirty: { d7: g2 + 2 },
      names: { d7: { f1: g2 + 2 } },
      whole: { d7: g2 + 1 },
    });
    try {
      const g3 = await backupAsync(s, ['--audit-sample', '0'], dayEnv(3));
      expect(g3.part.journal).toMatchObject({ used: true, reason: null });
      expectSame(s, g3.part.path);
    } finally {
      fake2.stop();
    }
  });

  test.runIf(spawnSync('strace', ['-V']).status === 0)(
    "a journaled run reads no attributes of the entries it takes from the manifest (it read each one's: on NFS-like latency the journaled backup was slower than a full scan)",
    async ({ tmp }) => {
      const s = spot(tmp);
      wideTree(s.src);
      execFileSync('setfattr', ['-n', 'user.tag', '-v', 'kept', path.join(s.src, 'd3/f2')]);
      // a ctime within a second of a scan is recorded as unknown (racy): these are older
      await new Promise((r) => setTimeout(r, 2100));
      const g1 = await backupAsync(s, [], dayEnv(1));
      const start = scanOf(s, g1.part.generation).startMono;
      const fake = fakeWatcher(s, {
        epoch: { id: 'e1', startMono: start - 1, startWall: 'then', ended: null },
        watcher: 'fanotify',
        dirty: { d7: start + 1 },
        names: { d7: { f1: start + 1 } },
        whole: {},
      });
      try {
        fs.appendFileSync(path.join(s.src, 'd7/f1'), 'named in the journal\n');
        const trace = path.join(tmp, 'strace');
        const c = spawnHardsnap(
          ['-f', '-qq', '-e', 'trace=listxattr,llistxattr,flistxattr', '-o', trace, BIN, 'backup', ...target(s), '--json', '--audit-sample', '0'],
          { bin: 'strace', env: dayEnv(2) },
        );
        expect((await c.exited).code, c.out.stderr).toBe(0);
        const g2 = JSON.parse(c.out.stdout) as { parts: { journal: { used: boolean; namedDirs: number }; path: string }[] };
        expect(g2.parts[0]!.journal).toMatchObject({ used: true, namedDirs: 1 });
        expectSame(s, g2.parts[0]!.path);
        // read: the root, d7's named entry f1 (and its copy) and d7's subdirectory; the ~130 other
        // entries (d7's other files too) are the manifest's (each one was read before: 169 calls)
        const reads = fs
          .readFileSync(trace, 'utf8')
          .split('\n')
          .filter((l) => /listxattr\(/.test(l));
        expect(reads.filter((l) => /"\/proc\/self\/fd\/\d+\/(?!f1"|sub")/.test(l))).toEqual([]);
        expect(reads.length, reads.join('\n')).toBeLessThanOrEqual(6);
      } finally {
        fake.stop();
      }
    },
  );

  test('a hard link made, written through and removed, to a file born in the future (a clock stepped back since): its age cannot be told, so the next run scans everything (a re-attack on issue 22: it passed for new, journal used)', async ({
    tmp,
  }) => {
    needRoot('a loop-mounted ext4 and the fanotify watcher need root');
    const img = path.join(tmp, 'img');
    const s = spot(tmp);
    fs.mkdirSync(s.src);
    execFileSync('truncate', ['-s', '32M', img]);
    execFileSync('mkfs.ext4', ['-q', '-F', img]);
    execFileSync('mount', ['-o', 'loop', img, s.src]);
    try {
      makeTree(s.src, { 'd/f': 'original\n', 'o/x': 'x\n' });
      execFileSync('umount', [s.src]);
      // the birth time a machine whose clock was a year ahead wrote
      execFileSync('debugfs', ['-w', '-R', `set_inode_field /d/f crtime ${new Date().getUTCFullYear() + 1}0301120000`, img], { stdio: 'ignore' });
      execFileSync('mount', ['-o', 'loop', img, s.src]);
      await watchedFromDay2(s, async () => {
        linkWriteUnlink(path.join(s.src, 'd/f'), path.join(s.src, 'o/t'), 'written through o/t\n');
        const g3 = await backupAsync(s, ['--audit-sample', '0'], dayEnv(3));
        expect(g3.part.journal).toMatchObject({ used: false, reason: expect.stringMatching(/^o\/t has a hard link made since/) });
        expect(fs.readFileSync(path.join(g3.part.path, 'd/f'), 'utf8')).toMatch(/written through o\/t/);
        expect(rsyncDiff(s.src, g3.part.path)).toEqual([]);
      });
    } finally {
      spawnSync('umount', [s.src]);
    }
  });

  test("a bind mount of the source's own file system made while a backup walks it, and gone before the next (no event): the epoch ends, the next run scans everything (a third attack on issue 22: the mounted directory's files stayed in every journaled generation)", async ({
    tmp,
  }) => {
    needRoot('the fanotify watcher and bind mounts need root');
    const s = spot(tmp);
    wideTree(s.src);
    makeTree(path.join(tmp, 'outside'), { 'other.txt': 'outside the source\n' });
    const zz = path.join(s.src, 'd9');
    let mounted = false;
    try {
      await watchedFromDay2(s, async () => {
        fs.appendFileSync(path.join(s.src, 'd1/f1'), 'a change\n');
        const release = path.join(tmp, 'release');
        // paused once the root is read, before its directories are entered: the mount lands in the walk
        const env = { ...dayEnv(3), HARDSNAP_TEST_PAUSE_AT: 'after-scan', HARDSNAP_TEST_PAUSE_UNTIL: release, HARDSNAP_TEST_PAUSE_MS: '60000' };
        const c = spawnHardsnap(['backup', ...target(s), '--json', '--audit-sample', '0'], { env });
        await waitFor(() => c.out.stderr.includes('test pause at after-scan'), 30_000, 20, 'generation 3 to reach the pause');
        expect(spawnSync('mount', ['--bind', path.join(tmp, 'outside'), zz]).status).toBe(0);
        mounted = true;
        fs.writeFileSync(release, '');
        expect((await c.exited).code, c.out.stderr).toBe(0);
        expect(spawnSync('umount', [zz]).status).toBe(0);
        mounted = false;
        const g4 = await backupAsync(s, ['--audit-sample', '0'], dayEnv(4));
        expect(g4.part.journal.used).toBe(false);
        expect(fs.existsSync(path.join(g4.part.path, 'd9/other.txt'))).toBe(false);
        expectSame(s, g4.part.path);
      });
    } finally {
      if (mounted) spawnSync('umount', [zz]);
    }
  });

  // a fourth attack on issue 22: the mounted directory's files stayed in every journaled generation
  const moves = [
    { name: 'fanotify, the mount removed with umount', watcher: [] as string[], away: 'umount' },
    { name: 'fanotify, the mount moved away with mount --move', watcher: [] as string[], away: 'move' },
    { name: 'chokidar (blind to mounts), the mount removed with umount', watcher: ['--watcher', 'chokidar'] as string[], away: 'umount' },
  ] as const;
  for (const k of moves) {
    test(`${k.name}: a bind mount of the source's own file system kept through a backup and gone while none runs: the next journaled run reads the directory again, not the manifest's view of the mount`, async ({
      tmp,
    }) => {
      needRoot('bind mounts need root');
      const s = spot(tmp);
      wideTree(s.src);
      // a subdirectory the directory underneath has too (a vanished one would send it back to a scan)
      makeTree(path.join(tmp, 'outside'), { 'other.txt': 'outside the source\n', 'sub/other': 'deeper\n' });
      const zz = path.join(s.src, 'd9');
      const parked = path.join(tmp, 'parked');
      fs.mkdirSync(parked);
      const mounts: string[] = [];
      try {
        await watchedFromDay2(
          s,
          async (w) => {
            expect(spawnSync('mount', ['--bind', path.join(tmp, 'outside'), zz]).status).toBe(0);
            mounts.push(zz);
            // the fanotify watcher ends its epoch for such a mount and begins a new one
            if (!k.watcher.length)
              await waitFor(() => /a mount of the source's own file system was made inside it/.test(w.out.stderr), 10_000, 20, 'the watcher to see the mount');
            const g3 = await backupAsync(s, ['--audit-sample', '0'], dayEnv(3));
            expect(fs.existsSync(path.join(g3.part.path, 'd9/sub/other'))).toBe(true);
            if (k.away === 'umount') expect(spawnSync('umount', [zz]).status).toBe(0);
            else expect(spawnSync('mount', ['--move', zz, parked]).status).toBe(0);
            mounts[0] = k.away === 'umount' ? '' : parked;
            // an epoch that began before generation 3's scan: the journal serves generation 4
            const g4 = await backupAsync(s, ['--audit-sample', '0'], dayEnv(4));
            expect(g4.part.journal.used, JSON.stringify(g4.part.journal)).toBe(true);
            expect(fs.existsSync(path.join(g4.part.path, 'd9/other.txt'))).toBe(false);
            expect(fs.existsSync(path.join(g4.part.path, 'd9/sub/other'))).toBe(false);
            expectSame(s, g4.part.path);
          },
          k.watcher,
        );
      } finally {
        for (const m of mounts) if (m) spawnSync('umount', [m]);
      }
    });
  }

  // the umount after the backup (the poll at its end sees it), or before its walk ends (only the
  // poll between directories sees it): either way the next run must not take d9 from the journal
  for (const removed of ['after it', 'before its walk ends'] as const) {
    test(`chokidar (blind to mounts): a bind mount made while a backup walks the source and removed ${removed}: the backup saw the mount table change, so the next run scans everything (a fourth attack on issue 22)`, async ({
      tmp,
    }) => {
      needRoot('bind mounts need root');
      const s = spot(tmp);
      wideTree(s.src);
      makeTree(path.join(tmp, 'outside'), { 'other.txt': 'outside the source\n' });
      const zz = path.join(s.src, 'd9');
      const during = removed === 'before its walk ends';
      let mounted = false;
      try {
        await watchedFromDay2(s, async () => {
          const release = path.join(tmp, 'release');
          // paused once the root is read (the mount lands before d9 is entered), and, to
          // remove it during the walk, once perm (entered after d9) is read
          const env = {
            ...dayEnv(3),
            HARDSNAP_TEST_PAUSE_AT: 'after-scan',
            HARDSNAP_TEST_PAUSE_DIR: during ? '\nperm' : '',
            HARDSNAP_TEST_PAUSE_UNTIL: release,
            HARDSNAP_TEST_PAUSE_MS: '60000',
          };
          const c = spawnHardsnap(['backup', ...target(s), '--json', '--audit-sample', '0'], { env });
          const pauses = () => c.out.stderr.split('test pause at after-scan').length - 1;
          await waitFor(() => pauses() === 1, 30_000, 20, 'generation 3 to pause after the root');
          expect(spawnSync('mount', ['--bind', path.join(tmp, 'outside'), zz]).status).toBe(0);
          mounted = true;
          fs.writeFileSync(release, '');
          const umount = () => {
            expect(spawnSync('umount', [zz]).status).toBe(0);
            mounted = false;
          };
          if (during) {
            await waitFor(() => pauses() === 2 || c.exitCode !== null, 30_000, 20, 'generation 3 to pause after perm');
            umount();
            fs.writeFileSync(release, '');
          }
          expect((await c.exited).code, c.out.stderr).toBe(0);
          expect(fs.existsSync(path.join((JSON.parse(c.out.stdout) as { parts: { path: string }[] }).parts[0]!.path, 'd9/other.txt'))).toBe(true);
          if (!during) umount();
          const g4 = await backupAsync(s, ['--audit-sample', '0'], dayEnv(4));
          expect(g4.part.journal.used).toBe(false);
          expect(g4.part.journal.reason).toMatch(/mounted or unmounted while the previous generation .* was scanned/);
          expect(fs.existsSync(path.join(g4.part.path, 'd9/other.txt'))).toBe(false);
          expectSame(s, g4.part.path);
        }, ['--watcher', 'chokidar']);
      } finally {
        if (mounted) spawnSync('umount', [zz]);
      }
    });
  }

  // a fifth attack on issue 22: each of these left a stale generation, journal used, exit 0
  for (const how of ['umount -l', 'mount --move'] as const) {
    test(`fanotify: the source root's mount taken away (${how}) and the directory mounted again in its place: its changes are named outside the watched path, so the epoch ends`, async ({
      tmp,
    }) => {
      needRoot('the fanotify watcher and bind mounts need root');
      const s = spot(tmp);
      const real = path.join(tmp, 'real');
      const old = path.join(tmp, 'old');
      wideTree(real);
      fs.mkdirSync(s.src);
      fs.mkdirSync(old);
      const mounts: string[] = [];
      const mount = (...args: string[]) => expect(spawnSync('mount', args).status).toBe(0);
      mount('--bind', real, s.src);
      mounts.push(s.src);
      try {
        await watchedFromDay2(s, async (w) => {
          if (how === 'umount -l') expect(spawnSync('umount', ['-l', s.src]).status).toBe(0);
          else {
            mount('--move', s.src, old);
            mounts.push(old);
          }
          mount('--bind', real, s.src);
          fs.appendFileSync(path.join(s.src, 'd1/f1'), 'a change\n');
          fs.writeFileSync(path.join(s.src, 'd2/new'), 'new\n');
          await waitFor(() => /was moved or its mount moved or detached/.test(w.out.stderr), 10_000, 20, 'the watcher to see its root gone');
          const g3 = await backupAsync(s, ['--audit-sample', '0'], dayEnv(3));
          expect(g3.part.journal.used).toBe(false);
          expectSame(s, g3.part.path);
        });
      } finally {
        for (const m of mounts.reverse()) spawnSync('umount', [m]);
      }
    });
  }

  test('fanotify: a directory above the source renamed away, the source changed there, and renamed back: the epoch ends', async ({ tmp }) => {
    needRoot('the fanotify watcher needs root');
    const s = { ...spot(tmp), src: path.join(tmp, 'p', 'src') };
    wideTree(s.src);
    await watchedFromDay2(s, async (w) => {
      fs.renameSync(path.join(tmp, 'p'), path.join(tmp, 'p.away'));
      fs.appendFileSync(path.join(tmp, 'p.away/src/d1/f1'), 'changed while away\n');
      fs.mkdirSync(path.join(tmp, 'p.away/src/newdir'));
      fs.writeFileSync(path.join(tmp, 'p.away/src/newdir/f'), 'new\n');
      // the watcher reads the events while the source is away (it names directories when it reads them)
      await new Promise((r) => setTimeout(r, 500));
      fs.renameSync(path.join(tmp, 'p.away'), path.join(tmp, 'p'));
      await waitFor(
        () => /was moved or its mount moved or detached \(it is now at .*p\.away\/src\)/.test(w.out.stderr),
        10_000,
        20,
        'the watcher to see its root moved',
      );
      const g3 = await backupAsync(s, ['--audit-sample', '0'], dayEnv(3));
      expect(g3.part.journal.used).toBe(false);
      expectSame(s, g3.part.path);
    });
  });

  for (const k of kinds) {
    test(`${k.name}: the source reached through a symlink repointed for one backup and back again: the previous generation read another directory, so its manifest does not stand for this one`, async ({
      tmp,
    }) => {
      const s = { ...spot(tmp), src: path.join(tmp, 'cur') };
      const a = path.join(tmp, 'A');
      const b = path.join(tmp, 'B');
      wideTree(a);
      wideTree(b);
      fs.writeFileSync(path.join(b, 'd1/f1'), 'release B, longer than A\n');
      fs.symlinkSync(a, s.src);
      await watchedFromDay2(s, async () => {
        const repoint = (to: string) => {
          fs.symlinkSync(to, s.src + '.new');
          fs.renameSync(s.src + '.new', s.src);
        };
        repoint(b);
        const g3 = await backupAsync(s, ['--audit-sample', '0'], dayEnv(3));
        expect(g3.part.journal.used).toBe(false);
        repoint(a);
        const g4 = await backupAsync(s, ['--audit-sample', '0'], dayEnv(4));
        expect(g4.part.journal.used).toBe(false);
        expect(g4.part.journal.reason).toMatch(/was read from another directory than/);
        expectSame({ ...s, src: a }, g4.part.path);
        const g5 = await backupAsync(s, ['--audit-sample', '0'], dayEnv(5));
        expect(g5.part.journal.used).toBe(true);
        expectSame({ ...s, src: a }, g5.part.path);
      }, [...k.args]);
    });
  }

  for (const k of kinds) {
    for (const through of ['its path', 'a bind mount of the source elsewhere'] as const) {
      test(`${k.name}: a disk image inside the source attached to a loop device (through ${through}) and written through it (the kernel writes it with no event): its directory is read by every journaled run`, async ({
        tmp,
      }) => {
        needRoot('loop devices need root');
        const s = spot(tmp);
        wideTree(s.src);
        const img = path.join(s.src, 'd5', 'disk.img');
        fs.writeFileSync(img, '');
        fs.truncateSync(img, 8 << 20);
        expect(spawnSync('mkfs.ext4', ['-q', '-F', img]).status).toBe(0);
        const mnt = path.join(tmp, 'mnt');
        fs.mkdirSync(mnt);
        // (a seventh attack: attached through another mount, its backing file's path is not below the source)
        const alias = path.join(tmp, 'alias');
        fs.mkdirSync(alias);
        const aliased = through !== 'its path';
        if (aliased) expect(spawnSync('mount', ['--bind', s.src, alias]).status).toBe(0);
        const loop = spawnSync('losetup', ['-f', '--show', aliased ? path.join(alias, 'd5', 'disk.img') : img], { encoding: 'utf8' });
        expect(loop.status, loop.stderr).toBe(0);
        const dev = loop.stdout.trim();
        let mounted = false;
        try {
          expect(spawnSync('mount', [dev, mnt]).status).toBe(0);
          mounted = true;
          await watchedFromDay2(s, async () => {
            fs.writeFileSync(path.join(mnt, 'secret'), Buffer.alloc(1 << 20, 7));
            expect(spawnSync('sync').status).toBe(0);
            const g3 = await backupAsync(s, ['--audit-sample', '0'], dayEnv(3));
            expectSame(s, g3.part.path);
          }, [...k.args]);
        } finally {
          if (mounted) spawnSync('umount', [mnt]);
          spawnSync('losetup', ['-d', dev]);
          if (aliased) spawnSync('umount', [alias]);
        }
      });
    }
  }

  // a sixth attack on issue 22: each of these left a stale generation, journal used, exit 0
  for (const k of kinds) {
    test(`${k.name}: a watcher started in a mount namespace of its own (unshare -m; a systemd unit's TemporaryFileSystem=) where a directory of the source is mounted over: a backup in another namespace does not take its journal`, async ({
      tmp,
    }) => {
      needRoot('mount namespaces need root');
      const s = spot(tmp);
      wideTree(s.src);
      await backupAsync(s, [], dayEnv(1));
      const over = path.join(s.src, 'd5');
      const script = 'mount -t tmpfs t "$1" && shift && exec "$@"';
      const w = spawnHardsnap(['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', over, BIN, 'watch', ...target(s), ...k.args], { bin: 'unshare' });
      try {
        await waitFor(() => /epoch \w+ began/.test(w.out.stderr) || w.exitCode !== null, 60_000, 20, "the watcher's epoch to begin");
        expect(w.exitCode, w.out.stderr).toBe(null);
        await backupAsync(s, [], dayEnv(2));
        fs.appendFileSync(path.join(over, 'f0'), 'changed where the watcher sees a tmpfs\n');
        fs.writeFileSync(path.join(over, 'new'), 'new\n');
        const g3 = await backupAsync(s, ['--audit-sample', '0'], dayEnv(3));
        expect(g3.part.journal.used).toBe(false);
        // (fanotify may end its epoch first, and begin another: in its namespace the written file
        // is not at its name; chokidar's reason is always the namespace)
        expect(g3.part.journal.reason).toMatch(
          k.name === 'chokidar'
            ? /the watcher runs in another mount namespace/
            : /the watcher runs in another mount namespace|epoch began .* after the previous generation's scan began/,
        );
        expectSame(s, g3.part.path);
      } finally {
        await stopWatcher(w);
      }
    });
  }

  test('chokidar: a bind mount over a directory of the source when the watcher starts, removed later: its watches were on the mount, so the epoch ends', async ({
    tmp,
  }) => {
    needRoot('bind mounts need root');
    const s = spot(tmp);
    wideTree(s.src);
    makeTree(path.join(tmp, 'outside'), { 'other.txt': 'outside\n' });
    const over = path.join(s.src, 'd5');
    await backupAsync(s, [], dayEnv(1));
    expect(spawnSync('mount', ['--bind', path.join(tmp, 'outside'), over]).status).toBe(0);
    let mounted = true;
    const w = await startWatcher(s, ['--watcher', 'chokidar']);
    try {
      expect(spawnSync('umount', [over]).status).toBe(0);
      mounted = false;
      await backupAsync(s, [], dayEnv(2));
      fs.appendFileSync(path.join(over, 'f0'), 'changed after the umount\n');
      fs.writeFileSync(path.join(over, 'new'), 'new\n');
      const g3 = await backupAsync(s, ['--audit-sample', '0'], dayEnv(3));
      expect(g3.part.journal.used).toBe(false);
      expect(g3.part.journal.reason).toMatch(/a mount below the source that chokidar began watching through is gone \(d5\)/);
      expectSame(s, g3.part.path);
    } finally {
      await stopWatcher(w);
      if (mounted) spawnSync('umount', [over]);
    }
  });

  test('fanotify: the source below a bind mount of a subtree, a directory moved out of what the mount shows, and back: later changes in it are journaled', async ({
    tmp,
  }) => {
    needRoot('the fanotify watcher and bind mounts need root');
    const real = path.join(tmp, 'real');
    const bm = path.join(tmp, 'bm');
    const s = { ...spot(tmp), src: path.join(bm, 'src') };
    wideTree(path.join(real, 'x', 'src'));
    fs.mkdirSync(path.join(real, 'y'), { recursive: true });
    fs.mkdirSync(bm);
    expect(spawnSync('mount', ['--bind', path.join(real, 'x'), bm]).status).toBe(0);
    const settle = () => new Promise((r) => setTimeout(r, 500));
    try {
      await watchedFromDay2(s, async () => {
        fs.renameSync(path.join(real, 'x/src/d3'), path.join(real, 'y/d3'));
        await settle();
        fs.appendFileSync(path.join(real, 'y/d3/sub/leaf'), 'changed where the mount does not reach\n');
        await settle();
        fs.renameSync(path.join(real, 'y/d3'), path.join(real, 'x/src/d3'));
        await settle();
        const g3 = await backupAsync(s, ['--audit-sample', '0'], dayEnv(3));
        expectSame(s, g3.part.path);
        fs.appendFileSync(path.join(s.src, 'd3/sub/leaf'), 'changed after it came back\n');
        const g4 = await backupAsync(s, ['--audit-sample', '0'], dayEnv(4));
        expect(g4.part.journal.used).toBe(true);
        expectSame(s, g4.part.path);
      });
    } finally {
      spawnSync('umount', [bm]);
    }
  });

  test('fanotify: a file written through a file handle once its entry left the caches (as the kernel NFS server writes an export): the kernel names no directory, so the epoch ends', async ({
    tmp,
  }) => {
    needRoot('the fanotify watcher, open_by_handle_at and a loop mount need root');
    // on a file system of its own: such a write ends the epoch of every watcher of its file
    // system, and other tests' watchers run beside this one
    const fsImg = path.join(tmp, 'fs.img');
    fs.writeFileSync(fsImg, '');
    fs.truncateSync(fsImg, 64 << 20);
    expect(spawnSync('mkfs.ext4', ['-q', '-F', fsImg]).status).toBe(0);
    const own = path.join(tmp, 'own');
    fs.mkdirSync(own);
    expect(spawnSync('mount', ['-o', 'loop', fsImg, own]).status).toBe(0);
    const s = spot(own);
    wideTree(s.src);
    // name_to_handle_at, drop the dentry caches, open_by_handle_at: a file connected to no directory
    const byHandle = [
      'import ctypes, os, struct, sys',
      'libc = ctypes.CDLL(None, use_errno=True)',
      'p = sys.argv[1].encode(); buf = ctypes.create_string_buffer(8 + 128); struct.pack_into("I", buf, 0, 128); mnt = ctypes.c_int()',
      'assert libc.name_to_handle_at(-100, p, buf, ctypes.byref(mnt), 0) == 0',
      'mfd = os.open(os.path.dirname(p), os.O_RDONLY | os.O_DIRECTORY)',
      'os.sync(); open("/proc/sys/vm/drop_caches", "w").write("2\\n")',
      'fd = libc.open_by_handle_at(mfd, buf, os.O_WRONLY | os.O_APPEND)',
      'assert fd >= 0, os.strerror(ctypes.get_errno())',
      'os.write(fd, b"written by handle\\n"); os.close(fd)',
    ].join('\n');
    try {
      await watchedFromDay2(s, async (w) => {
        fs.appendFileSync(path.join(s.src, 'd2/f2'), 'an ordinary change\n');
        const r = spawnSync('python3', ['-c', byHandle, path.join(s.src, 'd1/f1')], { encoding: 'utf8' });
        expect(r.status, r.stderr).toBe(0);
        await waitFor(() => /a file connected to no directory was changed/.test(w.out.stderr), 10_000, 20, 'the watcher to see the write');
        const g3 = await backupAsync(s, ['--audit-sample', '0'], dayEnv(3));
        expect(g3.part.journal.used).toBe(false);
        expectSame(s, g3.part.path);
      });
    } finally {
      spawnSync('umount', [own]);
    }
  });

  // the old name removed (ln d/f e/g; rm d/f), then: nothing more; the name given to a new file
  // (a seventh attack); the name's directory renamed; the name replaced by a rename (an atomic
  // save over it); all of it done before the watcher started (an eighth attack for the last three)
  const deadNames = [
    { then: '', after: null },
    { then: ', the name made again for a new file', after: 'again' },
    { then: ', its directory renamed', after: 'dir-renamed' },
    { then: ', the name taken by a rename over it', after: 'renamed-over' },
    { then: ', all before the watcher started', after: 'before-watcher' },
    // the new file of that name removed right after the write explains nothing (a ninth attack)
    { then: ', the name taken by a rename and that file removed right after the write', after: 'renamed-over-removed' },
  ] as const;
  for (const k of deadNames) {
    test(`fanotify: a file kept open, given another name and its first removed (ln d/f e/g; rm d/f)${k.then}, then written through the descriptor: the write names a name the file no longer has, so the epoch ends`, async ({
      tmp,
    }) => {
      needRoot('the fanotify watcher needs root');
      const s = spot(tmp);
      wideTree(s.src);
      const src = (p: string) => path.join(s.src, p);
      let fd = -1;
      const detach = () => {
        fd = fs.openSync(src('d1/f1'), 'a');
        fs.linkSync(src('d1/f1'), src('d2/moved'));
        fs.unlinkSync(src('d1/f1'));
        if (k.after === 'again') fs.writeFileSync(src('d1/f1'), 'a new file of the old name\n');
        if (k.after === 'dir-renamed') fs.renameSync(src('d1'), src('d1-renamed'));
        if (k.after === 'renamed-over' || k.after === 'before-watcher' || k.after === 'renamed-over-removed') {
          fs.writeFileSync(src('d1/f1.tmp'), 'saved over the old name\n');
          fs.renameSync(src('d1/f1.tmp'), src('d1/f1'));
        }
      };
      try {
        if (k.after === 'before-watcher') detach();
        await watchedFromDay2(s, async (w) => {
          if (k.after !== 'before-watcher') detach();
          const g3 = await backupAsync(s, ['--audit-sample', '0'], dayEnv(3));
          expectSame(s, g3.part.path);
          fs.writeSync(fd, 'written through the descriptor of the removed name\n');
          if (k.after === 'renamed-over-removed') fs.unlinkSync(src('d1/f1'));
          await waitFor(
            () => /was written through after that name was removed or given to another file/.test(w.out.stderr),
            10_000,
            20,
            'the watcher to see the write',
          );
          const g4 = await backupAsync(s, ['--audit-sample', '0'], dayEnv(4));
          expect(g4.part.journal.used).toBe(false);
          expectSame(s, g4.part.path);
        });
      } finally {
        if (fd >= 0) fs.closeSync(fd);
      }
    });
  }

  test('fanotify, two parts: a file of one part kept open, linked into the other and its first name removed, then written: both epochs end (the other name may be in any part)', async ({
    tmp,
  }) => {
    needRoot('the fanotify watcher needs root');
    const a = spot(tmp);
    const b = { ...a, part: 'other', src: path.join(tmp, 'src-b') };
    wideTree(a.src);
    wideTree(b.src);
    for (const s of [a, b]) await backupAsync(s, [], dayEnv(1));
    const w = spawnHardsnap(['watch', '--spool', a.spool, '--host', a.host, '--part', `${a.part}=${a.src}`, '--part', `${b.part}=${b.src}`]);
    try {
      await waitFor(() => (w.out.stderr.match(/epoch \w+ began/g) ?? []).length >= 2 || w.exitCode !== null, 60_000, 20, 'both epochs to begin');
      for (const s of [a, b]) await backupAsync(s, [], dayEnv(2));
      const fd = fs.openSync(path.join(a.src, 'd1/f1'), 'a');
      try {
        fs.linkSync(path.join(a.src, 'd1/f1'), path.join(b.src, 'd2/from-a'));
        fs.unlinkSync(path.join(a.src, 'd1/f1'));
        for (const s of [a, b]) await backupAsync(s, ['--audit-sample', '0'], dayEnv(3));
        fs.writeSync(fd, 'written through the removed name in the first part\n');
      } finally {
        fs.closeSync(fd);
      }
      await waitFor(() => (w.out.stderr.match(/was written through after that name was removed/g) ?? []).length >= 2, 10_000, 20, 'both epochs to end');
      const gb = await backupAsync(b, ['--audit-sample', '0'], dayEnv(4));
      expect(gb.part.journal.used).toBe(false);
      expectSame(b, gb.part.path);
    } finally {
      await stopWatcher(w);
    }
  });

  test('fanotify: an O_TMPFILE linked into the source, then written through the same descriptor: the kernel names its internal name, so the epoch ends', async ({
    tmp,
  }) => {
    needRoot('the fanotify watcher needs root');
    const s = spot(tmp);
    wideTree(s.src);
    const release = path.join(tmp, 'release');
    const linked = path.join(tmp, 'linked');
    const script = [
      'import ctypes, os, sys, time',
      'd, rel, done = sys.argv[1], sys.argv[2], sys.argv[3]',
      'fd = os.open(d, os.O_TMPFILE | os.O_WRONLY, 0o644)',
      'os.write(fd, b"first\\n")',
      // linkat(AT_FDCWD, "/proc/self/fd/N", AT_FDCWD, name, AT_SYMLINK_FOLLOW)
      'libc = ctypes.CDLL(None, use_errno=True)',
      'assert libc.linkat(-100, f"/proc/self/fd/{fd}".encode(), -100, os.path.join(d, "made").encode(), 0x400) == 0, os.strerror(ctypes.get_errno())',
      'open(done, "w").close()',
      'while not os.path.exists(rel): time.sleep(0.02)',
      'os.write(fd, b"written after the link\\n"); os.close(fd)',
    ].join('\n');
    await watchedFromDay2(s, async (w) => {
      const py = spawnHardsnap(['-c', script, path.join(s.src, 'd3'), release, linked], { bin: 'python3' });
      try {
        await waitFor(() => fs.existsSync(linked) || py.exitCode !== null, 10_000, 20, 'the temporary file to be linked');
        await new Promise((r) => setTimeout(r, 300));
        const g3 = await backupAsync(s, ['--audit-sample', '0'], dayEnv(3));
        expectSame(s, g3.part.path);
        fs.writeFileSync(release, '');
        expect((await py.exited).code, py.out.stderr).toBe(0);
      } finally {
        if (py.exitCode === null) py.killGroup('SIGKILL');
      }
      await waitFor(() => /d3\/#\d+ was written through after that name was removed/.test(w.out.stderr), 10_000, 20, 'the watcher to see the write');
      const g4 = await backupAsync(s, ['--audit-sample', '0'], dayEnv(4));
      expect(g4.part.journal.used).toBe(false);
      expectSame(s, g4.part.path);
    });
  });

  test('fanotify: mail delivered the Maildir way (written in tmp, linked into new, tmp removed; or renamed), files written then their directory renamed, and a file removed while open and written: no false alarm, the journal serves', async ({
    tmp,
  }) => {
    needRoot('the fanotify watcher needs root');
    const s = spot(tmp);
    makeTree(s.src, { 'Maildir/cur/old': 'old\n', 'Maildir/tmp': { dir: true }, 'Maildir/new': { dir: true } });
    await watchedFromDay2(s, async (w) => {
      const md = (p: string) => path.join(s.src, 'Maildir', p);
      for (let i = 0; i < 20; i++) {
        const fd = fs.openSync(md(`tmp/m${i}`), 'w');
        fs.writeSync(fd, `message ${i}\n`);
        fs.linkSync(md(`tmp/m${i}`), md(`new/m${i}`));
        fs.unlinkSync(md(`tmp/m${i}`));
        fs.closeSync(fd); // closed after the move: nothing written through the old name
        fs.writeFileSync(md(`tmp/r${i}`), `renamed ${i}\n`);
        fs.renameSync(md(`tmp/r${i}`), md(`cur/r${i}`));
      }
      // files written, then their directory renamed at once (a staging directory published; a
      // ninth attack: the check looked at the directory's cached old path)
      for (let i = 0; i < 30; i++) {
        fs.mkdirSync(md(`stage${i}`));
        fs.writeFileSync(md(`stage${i}/key`), 'a');
        await new Promise((r) => setTimeout(r, 20));
        fs.appendFileSync(md(`stage${i}/key`), 'b');
        fs.renameSync(md(`stage${i}`), md(`pub${i}`));
      }
      const fd = fs.openSync(md('tmp/scratch'), 'w');
      fs.unlinkSync(md('tmp/scratch'));
      fs.writeSync(fd, 'a temporary file with no name left\n');
      fs.closeSync(fd);
      const g3 = await backupAsync(s, ['--audit-sample', '0'], dayEnv(3));
      expect(g3.part.journal.used, JSON.stringify(g3.part.journal)).toBe(true);
      expect(w.out.stderr).not.toMatch(/was written through after that name was removed/);
      expectSame(s, g3.part.path);
    });
  });

  test('the fallback: a watcher that is not root (setpriv) runs chokidar, says why in its log, the journal and status, and its journal gives exact generations', async ({
    tmp,
  }) => {
    needRoot('setpriv switches to another user');
    const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => fs.existsSync(p));
    if (!setpriv) throw new Error('setpriv (util-linux) is needed');
    fs.chmodSync(tmp, 0o755);
    const s = spot(tmp);
    wideTree(s.src);
    spawnSync('chown', ['-R', '65534:65534', s.src, s.spool]);
    const as = ['--reuid=65534', '--regid=65534', '--clear-groups', BIN];
    const run = async (args: string[], env: Record<string, string> = {}) => {
      const c = spawnHardsnap([...as, ...args], { bin: setpriv, env });
      return { c, ...(await c.exited) };
    };
    // a spool made by `init`, by its user (spot() made it with the marker already: init says so)
    expect((await run(['init', '--spool', s.spool])).code).toBe(0);
    const backup = async (n: number, extra: string[] = []) => {
      const r = await run(['backup', ...target(s), '--json', ...extra], dayEnv(n));
      expect(r.code, r.c.out.stderr).toBe(0);
      return JSON.parse(r.c.out.stdout).parts[0] as { journal: { used: boolean; reason: string | null; watcher: string | null }; path: string };
    };
    await backup(1);
    const w: HardsnapChild = spawnHardsnap([...as, 'watch', ...target(s)], { bin: setpriv });
    try {
      await waitFor(() => /epoch \w+ began/.test(w.out.stderr) || w.exitCode !== null, 60_000, 20, 'the epoch to begin');
      expect(w.out.stderr).toMatch(/data: fanotify cannot watch .*: fanotify needs root \(CAP_SYS_ADMIN\); using chokidar/);
      expect(w.out.stderr).toMatch(/data: watching .* with chokidar/);
      await waitFor(() => readJournal(partDirOf(s))?.epoch != null, 10_000, 20, 'the journal');
      expect(watcherOf(s)).toBe('chokidar');
      await backup(2);
      fs.appendFileSync(path.join(s.src, 'd1/f1'), 'edited by root, seen by the watcher\n');
      fs.renameSync(path.join(s.src, 'd2/f2'), path.join(s.src, 'd8/f2-moved'));
      fs.mkdirSync(path.join(s.src, 'd9/new-dir'));
      fs.writeFileSync(path.join(s.src, 'd9/new-dir/x'), 'x');
      // a backup that is not root cannot give root's files their owner: nobody's, then
      spawnSync('chown', ['-R', '65534:65534', path.join(s.src, 'd9/new-dir')]);
      const g3 = await backup(3, ['--audit-sample', '0']);
      expect(g3.journal).toMatchObject({ used: true, reason: null, watcher: 'chokidar' });
      expectSame(s, g3.path);
      const st = await run(['status', '--spool', s.spool, '--host', s.host]);
      expect(st.c.out.stdout).toMatch(/h1\/data: .*watcher chokidar \(pid \d+\)/);
    } finally {
      await stopWatcher(w);
    }
  });
});
