// Watch mode, the pure or in-process parts: the journal's verdict on manifests that cannot
// vouch for a journal (format 1, an incomplete generation, other rules), and the
// --backup-every schedule (fake timers).
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, vi } from 'vitest';
import { describe, expect, test } from './helpers/fixture.js';
import { ManifestReader } from '../src/manifest/reader.js';
import { ManifestWriter, type ScanRecord } from '../src/manifest/writer.js';
import { ByteSink, decodeEntry, EncodedEntry, encodeEntry, FLAG, layoutFor, type BlockEntry, type ManifestEntry } from '../src/manifest/format.js';
import { MountPoints } from '../src/apply/mount-points.js';
import { MountWatch } from '../src/fs/mountinfo.js';
import { isRoot } from './helpers/robust.js';
import { changedSince, consultJournal, DEFAULT_JOURNAL, linkSince } from '../src/watch/journal-use.js';
import { DirtyDirs, MAX_LINKS, MAX_NAMES_PER_DIR } from '../src/watch/dirty-dirs.js';
import { SCAN_XATTR, sys } from '../src/fs/native.js';
import { parseScan } from '../src/fs/entry.js';
import { parseFanRecords, wsys, type FanRecord } from '../src/fs/watch-native.js';
import { execFileSync, spawnSync } from 'node:child_process';
import { rulesFingerprint } from '../src/watch/scan-choice.js';
import { BackupSchedule } from '../src/watch/backup-schedule.js';
import { currentBoot } from '../src/watch/journal-file.js';
import { fakeWatcher } from './helpers/watch.js';
import { partDirOf } from './helpers/spool.js';

const root = (flags = 0): ManifestEntry => ({
  name: Buffer.alloc(0),
  type: 'dir',
  mode: 0o755,
  uid: 0,
  gid: 0,
  size: 0,
  mtimeSec: 1,
  mtimeNsec: 0,
  rdev: 0,
  target: null,
  flags,
  linkGroup: 0,
  ino: 1,
  hash: null,
  ctimeSec: 0,
  ctimeNsec: 0,
  xattrs: null,
});

function manifest(tmp: string, scan: ScanRecord | undefined, flags = 0): ManifestReader {
  const file = path.join(tmp, `m${Math.random()}.hsm`);
  const w = ManifestWriter.create(file, { part: 'p', generation: 'g', created: 'c', tool: 't', ...(scan ? { scan } : {}) });
  w.addDir(Buffer.alloc(0), []);
  w.finish(root(flags));
  return ManifestReader.open(file);
}

const rules = rulesFingerprint([], false);
const scan: ScanRecord = { startMono: 10, startWall: 'w', boot: currentBoot(), full: true, lastFull: '2026-01-01T00:00:00.000Z', rules, rootId: '0:0' };
const now = new Date('2026-01-02T00:00:00Z');

describe('consultJournal: manifests that cannot vouch for a journal', () => {
  test('format 1, an incomplete generation, other exclude rules, no journal', async ({ tmp }) => {
    const ask = (reader: ManifestReader | null, r = rules) =>
      consultJournal({ partDir: tmp, source: tmp, rootId: '0:0', mountPoints: [], prev: { name: 'g', reader }, now, rules: r, settings: DEFAULT_JOURNAL });
    const v1 = ManifestReader.open(path.join(import.meta.dirname, 'fixtures', 'manifest-v1.hsm'));
    try {
      expect(await ask(v1)).toMatchObject({ use: false, reason: 'the previous generation g records no scan start (manifest format 1)' });
    } finally {
      v1.close();
    }
    expect(await ask(null)).toMatchObject({ use: false, reason: 'the previous generation g has no readable manifest' });
    const bad = manifest(tmp, scan, FLAG.INCOMPLETE);
    expect(await ask(bad)).toMatchObject({ use: false, reason: 'some entries of the previous generation g could not be backed up' });
    const good = manifest(tmp, scan);
    expect(await ask(good, rulesFingerprint(['*.tmp'], false))).toMatchObject({
      reason: 'the exclude rules or --one-file-system changed since the previous generation',
    });
    expect(await ask(good, rulesFingerprint([], true))).toMatchObject({
      reason: 'the exclude rules or --one-file-system changed since the previous generation',
    });
    expect(await ask(good)).toMatchObject({ use: false, journalFound: false, reason: 'no journal (hardsnap watch is not running for this part)' });
    fs.mkdirSync(path.join(tmp, '.hardsnap', 'watch'), { recursive: true });
    fs.writeFileSync(path.join(tmp, '.hardsnap', 'watch', 'journal.json'), '{"format": 1, "dirty": ');
    expect(await ask(good)).toMatchObject({ use: false, journalFound: true, reason: 'the journal is unreadable' });
    for (const r of [bad, good]) r.close();
  });

  test('a journal of another root directory (a symlink on the path repointed), or one that names no root, is not used', async ({ tmp }) => {
    const good = manifest(tmp, { ...scan, rootId: '5:6' });
    const spot = { spool: path.join(tmp, 'spool'), host: 'h', part: 'p', src: tmp };
    const ask = (reader = good) =>
      consultJournal({
        partDir: partDirOf(spot),
        source: tmp,
        rootId: '5:6',
        mountPoints: [],
        prev: { name: 'g', reader },
        now,
        rules,
        settings: DEFAULT_JOURNAL,
      });
    const epoch = { id: 'e', startMono: 1, startWall: 'w', ended: null };
    let fake = fakeWatcher(spot, { epoch, rootId: '5:7' });
    try {
      expect(await ask()).toMatchObject({
        use: false,
        journalFound: true,
        reason: `the source ${tmp} is not the directory the watcher watches (a symlink on its path repointed, or the root replaced)`,
      });
      expect(fake.answered()).toBe(1);
    } finally {
      fake.stop();
    }
    fake = fakeWatcher(spot, { epoch, rootId: null });
    try {
      expect(await ask()).toMatchObject({
        use: false,
        reason: 'the journal does not say which directory the watcher watches (a watcher older than this backup: restart it)',
      });
    } finally {
      fake.stop();
    }
    fake = fakeWatcher(spot, { epoch, rootId: '5:6' });
    try {
      expect(await ask()).toMatchObject({ use: true });
      // the previous generation read another directory (a symlink repointed and back, a run from elsewhere), or does not say
      const elsewhere = manifest(tmp, { ...scan, rootId: '9:9' });
      expect(await ask(elsewhere)).toMatchObject({
        use: false,
        reason: `the previous generation g was read from another directory than ${tmp} (dev:ino 9:9, now 5:6)`,
      });
      elsewhere.close();
      const unsaid = manifest(tmp, { ...scan, rootId: undefined });
      expect(await ask(unsaid)).toMatchObject({
        use: false,
        reason: 'the previous generation g does not record which directory it read (made before 2026-12-07)',
      });
      unsaid.close();
    } finally {
      fake.stop();
    }
    good.close();
  });

  test('rules fingerprints tell string and byte patterns apart, and order matters', () => {
    expect(rulesFingerprint(['a'], false)).not.toBe(rulesFingerprint([Buffer.from('a')], false));
    expect(rulesFingerprint(['a', 'b'], false)).not.toBe(rulesFingerprint(['b', 'a'], false));
    expect(rulesFingerprint(['ab'], false)).not.toBe(rulesFingerprint(['a', 'b'], false));
  });
});

describe('--backup-every schedule', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  test('nothing without changes; a burst is one backup after a quiet moment; at most one per period', async () => {
    vi.useFakeTimers({ now: 0 });
    const runs: number[] = [];
    const s = new BackupSchedule({ everyMs: 60_000, quietMs: 2_000, run: async () => (runs.push(Date.now()), 0), log: () => {} });
    await vi.advanceTimersByTimeAsync(120_000);
    expect(runs).toEqual([]);
    // a burst: a change every second for 5 s
    for (let i = 0; i < 5; i++) {
      s.changed();
      await vi.advanceTimersByTimeAsync(1_000);
    }
    await vi.advanceTimersByTimeAsync(5_000);
    expect(runs).toEqual([126_000]); // 2 s after the last change
    s.changed();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(runs).toHaveLength(1); // the period is not over
    await vi.advanceTimersByTimeAsync(60_000);
    expect(runs).toEqual([126_000, 186_000]);
    s.stop();
  });

  test('changes that never pause still get a backup within one period; a locked run is retried', async () => {
    vi.useFakeTimers({ now: 0 });
    const runs: number[] = [];
    let code = 3;
    const s = new BackupSchedule({ everyMs: 10_000, quietMs: 2_000, run: async () => (runs.push(Date.now()), code), log: () => {} });
    for (let i = 0; i < 15; i++) {
      s.changed();
      await vi.advanceTimersByTimeAsync(1_000);
    }
    expect(runs).toEqual([10_000]);
    code = 0;
    await vi.advanceTimersByTimeAsync(20_000);
    expect(runs.length).toBeGreaterThanOrEqual(2); // retried, without a new change
    const n = runs.length;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(runs).toHaveLength(n); // and then nothing more to do
    s.stop();
  });
});

describe('the journal of changed entries (dirty-dirs.ts) and what a backup reads of it (changedSince)', () => {
  const b = (s: string) => Buffer.from(s, 'latin1');

  test('entries named since the previous scan are read by name; a whole mark at or after it reads the directory whole', () => {
    const d = new DirtyDirs();
    d.markName('a', b('x'), 10);
    d.markName('a', b('y'), 20);
    d.markWhole('b', 15);
    d.markName('b', b('after-whole'), 25);
    d.markName('c', b('caf\xe9 \\ odd\nname'), 30);
    const j = d.toJournal();
    // what the watcher writes, piece by piece, is the same
    let json = '';
    d.writeJson((s) => (json += s));
    expect(JSON.parse(`{${json}}`)).toEqual(j);
    expect(j).toEqual({
      dirty: { a: 20, b: 25, c: 30 },
      whole: { b: 15 },
      names: { a: { x: 10, y: 20 }, b: { 'after-whole': 25 }, c: { 'caf\\xe9 \\\\ odd\\x0aname': 30 } },
    });
    // a previous scan at 12: a only for y; b whole (its whole mark is after 12); c by its name, bytes intact
    const at12 = changedSince(j, 12);
    expect([...at12.dirty].sort()).toEqual(['a', 'b', 'c']);
    expect([...at12.names.get('a')!]).toEqual(['y']);
    expect(at12.names.has('b')).toBe(false);
    expect([...at12.names.get('c')!]).toEqual([b('caf\xe9 \\ odd\nname').toString('latin1')]);
    // at 16: b's whole mark is older, and every change since named its entry
    expect([...changedSince(j, 16).names.get('b')!]).toEqual(['after-whole']);
    // a journal of a watcher that kept no names: every changed directory whole
    expect(changedSince({ dirty: j.dirty }, 0).names.size).toBe(0);
  });

  test('too many names make a directory whole; pruning forgets what a newer scan saw', () => {
    const d = new DirtyDirs();
    for (let i = 0; i < MAX_NAMES_PER_DIR; i++) d.markName('big', b(`n${i}`), 5);
    expect(d.toJournal().whole).toEqual({});
    d.markName('big', b('one-too-many'), 6);
    expect(d.toJournal().whole).toEqual({ big: 6 });
    expect(d.toJournal().names.big).toBeUndefined();
    d.markName('big', b('later'), 9);
    d.markName('old', b('x'), 3);
    d.prune(7);
    // big's whole mark (6) is older than any scan the journal still serves; old is gone
    expect(d.toJournal()).toEqual({ dirty: { big: 9 }, whole: {}, names: { big: { later: 9 } } });
    expect(d.size).toBe(1);
  });
});

describe('hard links made to older files (dirty-dirs.ts markLink, journal-use.ts linkSince)', () => {
  test('a link made since the previous scan to a file born before it sends the run to a full scan; older links, and links to newer files, do not', () => {
    const d = new DirtyDirs();
    d.markLink('b', Buffer.from('tmp'), 1000, 50);
    d.markLink('', Buffer.from('caf\xe9', 'latin1'), 1, 60);
    let json = '';
    d.writeJson((x) => (json += x));
    const j = JSON.parse(`{${json}}`) as ReturnType<DirtyDirs['toJournal']>;
    expect(j).toEqual(d.toJournal());
    expect(j.links).toEqual([
      ['b', 'tmp', 1000, 50],
      ['', 'caf\\xe9', 1, 60],
    ]);
    // a previous scan at 40 (µs), 2000 s wall: b/tmp's file (born 1000) was seen by it
    expect(linkSince(j, 40, 2000)).toMatch(/^b\/tmp has a hard link made since the previous generation's scan/);
    // a scan at 55: only the unknown birth time (1) is left, and it counts as old
    expect(linkSince(j, 55, 2000)).toMatch(/^caf\\xe9 has a hard link/);
    // a scan at 40 that began before the file was born: its creation is journaled itself
    expect(linkSince({ links: [['b', 'tmp', 1000, 50]] }, 40, 900)).toBeNull();
    expect(linkSince(j, 61, 2000)).toBeNull();
    d.prune(55);
    expect(d.toJournal().links).toEqual([['', 'caf\\xe9', 1, 60]]);
    d.prune(61);
    expect(d.toJournal().links).toBeUndefined();
  });

  test('beyond MAX_LINKS the names are not kept, the time of the last one is', () => {
    const d = new DirtyDirs();
    for (let i = 0; i <= MAX_LINKS; i++) d.markLink('d', Buffer.from(`n${i}`), 5, 100 + i);
    const j = d.toJournal();
    expect(j.links).toHaveLength(MAX_LINKS);
    expect(j.linksLost).toBe(100 + MAX_LINKS);
    expect(linkSince(j, 100 + MAX_LINKS, 10)).toMatch(/^one of more than 1000 new names has a hard link/);
    d.prune(100 + MAX_LINKS + 1);
    expect(d.toJournal().linksLost).toBeUndefined();
  });
});

describe("watch mode native functions (native/watch.c, scandir's skip list)", () => {
  test('scandir with a skip list gives the same records (attributes too), except the names it is told to skip, which are not stat-ed', ({ tmp }) => {
    fs.writeFileSync(path.join(tmp, 'a'), 'a');
    fs.writeFileSync(path.join(tmp, 'b'), 'bb');
    fs.symlinkSync('target', path.join(tmp, 'link'));
    fs.mkdirSync(path.join(tmp, 'sub'));
    fs.writeFileSync(Buffer.from(`${tmp}/caf\xe9`, 'latin1'), 'odd');
    const fd = sys.openat(sys.AT_FDCWD, tmp, sys.O_RDONLY | sys.O_DIRECTORY, 0);
    try {
      const names = [Buffer.from('b'), Buffer.from('caf\xe9', 'latin1'), Buffer.from('not-there')];
      const skip = Buffer.concat(names.flatMap((n) => [Buffer.from([n.length, 0]), n]));
      const x = SCAN_XATTR.OTHER | SCAN_XATTR.FILES;
      const full = parseScan(sys.scandir(fd, x, 0) as Buffer);
      const some = parseScan(sys.scandir(fd, x, 0, skip) as Buffer);
      expect(full.find((e) => e.name.toString() === 'a')!.xattrsRead).toBe(true);
      expect(some.map((e) => e.name.toString('latin1'))).toEqual(full.map((e) => e.name.toString('latin1')));
      for (let i = 0; i < full.length; i++) {
        const skipped = names.slice(0, 2).some((n) => n.equals(full[i]!.name));
        if (skipped) expect(some[i]).toMatchObject({ err: sys.SCAN_SKIPPED, xattrsRead: false });
        else expect(some[i]).toEqual(full[i]);
      }
    } finally {
      sys.close(fd);
    }
  });

  test.skipIf(process.getuid?.() !== 0)(
    'a fanotify group reports changes under its root (not elsewhere, not in an excluded directory), then the barrier after them (root only)',
    async ({ tmp }) => {
      const root = path.join(tmp, 'root');
      const spool = path.join(root, 'spool');
      fs.mkdirSync(path.join(root, 'd'), { recursive: true });
      fs.mkdirSync(spool);
      fs.mkdirSync(path.join(tmp, 'elsewhere'));
      const got: FanRecord[] = [];
      const h = wsys.fanOpen((buf) => got.push(...parseFanRecords(buf)));
      expect(typeof h).toBe('object');
      try {
        expect(wsys.fanAddRoot(h as object, Buffer.from(fs.realpathSync(root)))).toBeGreaterThan(0);
        wsys.fanExclude(h as object, Buffer.from(fs.realpathSync(spool)));
        // another process makes the changes (the group ignores its own process's, but its barrier)
        execFileSync('sh', ['-c', 'echo x > "$1/d/f"; echo y > "$1/spool/s"; echo z > "$2/e"; mv "$1/d/f" "$1/g"', 'sh', root, path.join(tmp, 'elsewhere')]);
        expect(wsys.fanBarrier(h as object)).toBe(0);
        await vi.waitFor(() => expect(got.some((r) => r.kind === 'barrier')).toBe(true), { timeout: 10_000 });
        const real = fs.realpathSync(root);
        const changes = got.filter((r) => r.kind === 'change').map((r) => `${r.dir.toString()}|${r.name.toString()}`);
        expect(changes).toContain(`${real}/d|f`);
        expect(changes).toContain(`${real}|g`);
        expect(changes.filter((c) => c.includes('spool') || c.includes('elsewhere'))).toEqual([]);
        // the barrier comes after every change made before it
        expect(got.at(-1)!.kind).toBe('barrier');
      } finally {
        wsys.fanClose(h as object);
      }
    },
  );

  test.skipIf(process.getuid?.() !== 0)(
    "a new name is said with the birth time of the inode it names: a new file's is now, a hard link's (even one removed at once) its file's (root only; Linux >= 5.17)",
    async ({ tmp }) => {
      const root = path.join(tmp, 'root');
      fs.mkdirSync(path.join(root, 'a'), { recursive: true });
      fs.writeFileSync(path.join(root, 'a/old'), 'old');
      const bornOld = fs.statSync(path.join(root, 'a/old')).birthtimeMs / 1000;
      await new Promise((r) => setTimeout(r, 2100));
      const got: FanRecord[] = [];
      const h = wsys.fanOpen((buf) => got.push(...parseFanRecords(buf)));
      expect(typeof h).toBe('object');
      try {
        expect(wsys.fanTargets(h as object)).toBe(1);
        expect(wsys.fanAddRoot(h as object, Buffer.from(fs.realpathSync(root)))).toBeGreaterThan(0);
        const before = Date.now() / 1000 - 0.05;
        execFileSync('sh', ['-c', 'ln "$1/a/old" "$1/t"; echo x >> "$1/t"; rm "$1/t"; echo n > "$1/new"; mkdir "$1/dir"', 'sh', root]);
        expect(wsys.fanBarrier(h as object)).toBe(0);
        await vi.waitFor(() => expect(got.some((r) => r.kind === 'barrier')).toBe(true), { timeout: 10_000 });
        const created = got.flatMap((r) => (r.kind === 'created' ? [[r.name.toString(), r.born] as const] : []));
        expect(created.map(([n]) => n)).toEqual(['t', 'new']);
        expect(created[0]![1]).toBeCloseTo(bornOld, 2);
        expect(created[1]![1]).toBeGreaterThanOrEqual(before);
      } finally {
        wsys.fanClose(h as object);
      }
    },
  );
});

describe('mounts below the source (src/apply/mount-points.ts, src/fs/mountinfo.ts MountWatch)', () => {
  const rec = (name: string, srcIno: number): ManifestEntry => ({
    name: Buffer.from(name),
    type: 'file',
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: 1,
    mtimeSec: 1,
    mtimeNsec: 0,
    rdev: 0,
    target: null,
    flags: 0,
    linkGroup: 0,
    ino: 7,
    hash: null,
    ctimeSec: 1,
    ctimeNsec: 0,
    xattrs: null,
    srcIno,
  });
  const srcInos = (out: BlockEntry[]) =>
    out.map((e) => {
      if (!(e instanceof EncodedEntry)) return e.srcIno;
      return decodeEntry(e.bytes, 0, layoutFor(4))[0].srcIno;
    });

  test('every record at or below a mount point, and the mount point itself in its parent, loses its source inode; others keep theirs', () => {
    const m = new MountPoints([Buffer.from('a/mnt'), Buffer.from('top')]);
    expect(m.isMountPoint(Buffer.from('a/mnt'))).toBe(true);
    expect(m.isMountPoint(Buffer.from('a'))).toBe(false);
    expect(srcInos(m.records(Buffer.from('a'), false, [rec('f', 5), rec('mnt', 6)]))).toEqual([5, 0]);
    expect(srcInos(m.records(Buffer.alloc(0), false, [rec('a', 1), rec('top', 2)]))).toEqual([1, 0]);
    expect(srcInos(m.records(Buffer.from('b'), false, [rec('mnt', 3)]))).toEqual([3]);
    // below one: all, the records kept as bytes (copied from the previous manifest) too
    const s = new ByteSink();
    encodeEntry(s, rec('x', 9));
    const enc = new EncodedEntry(Buffer.from('x'), Buffer.from(s.buf.subarray(0, s.len)));
    enc.ino = 11;
    const out = m.records(Buffer.from('a/mnt/deep'), true, [rec('y', 8), enc]);
    expect(srcInos(out)).toEqual([0, 0]);
    expect((out[1] as EncodedEntry).ino).toBe(11);
    expect(srcInos([enc])).toEqual([9]); // the previous manifest's bytes are not written into
  });

  test('MountWatch: a mount below the source made and removed again is seen; one elsewhere is not', ({ tmp }) => {
    if (!isRoot) throw new Error('mounting a tmpfs needs root (CI runs as root)');
    const src = path.join(tmp, 'src');
    fs.mkdirSync(path.join(src, 'm'), { recursive: true });
    fs.mkdirSync(path.join(tmp, 'elsewhere'));
    const quiet = new MountWatch(src);
    const moved = new MountWatch(src);
    try {
      expect(quiet.points).toEqual([]);
      expect(spawnSync('mount', ['-t', 'tmpfs', 'none', path.join(tmp, 'elsewhere')]).status).toBe(0);
      expect(spawnSync('umount', [path.join(tmp, 'elsewhere')]).status).toBe(0);
      expect(quiet.check()).toBe(false);
      expect(spawnSync('mount', ['-t', 'tmpfs', 'none', path.join(src, 'm')]).status).toBe(0);
      try {
        expect(moved.check()).toBe(true);
        expect(new MountWatch(src).points.map(String)).toEqual(['m']);
      } finally {
        expect(spawnSync('umount', [path.join(src, 'm')]).status).toBe(0);
      }
      expect(moved.check()).toBe(true);
      // made and removed between two checks: the poll says the table changed, the points are those of the start
      expect(quiet.check()).toBe(false);
    } finally {
      quiet.close();
      moved.close();
    }
  });
});
