// Content deduplication, --checksum and EMLINK (docs/CONTENT.md), end to end through bin/hardsnap.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import path from 'node:path';
import { mktree, mutate } from './helpers/bench-tree.js';
import { describe, expect, test } from './helpers/fixture.js';
import { linksDiff, rsyncDiff } from './helpers/oracle.js';
import { hardsnap, pastRacyWindow, spawnHardsnap, waitFor } from './helpers/run.js';
import { formatBytes } from '../src/ui/output.js';
import { decide, needsChecksum } from '../src/plan/decide.js';
import type { Meta } from '../src/fs/entry.js';
import type { ManifestEntry } from '../src/manifest/format.js';
import { assertNotSameInode, assertSameInode, makeTree, setMtimesNs, toBuf } from './helpers/tree.js';
import xxhash from 'xxhash-wasm';
import { afterEach, vi } from 'vitest';
import { sys } from '../src/fs/native.js';
import { runBackup } from '../src/backup/run.js';
import { makeSpool, manifestEntries, manifestFileOf, nightly } from './helpers/spool.js';
import { readRunsLog } from './helpers/ops.js';

afterEach(() => {
  vi.restoreAllMocks();
});

interface Stats {
  entries: number;
  linked: number;
  copied: number;
  dedupLinked: number;
  dedupBytes: number;
  dedupMismatches: number;
  hashedFiles: number;
  emlinkCopies: number;
  checksumChanged: number;
  sameStampChanged: number;
  hashedBytes: number;
  bytesWritten: number;
}

const T0 = 1_700_000_000_000_000_000n;

// backupJson(spool, src, n, extra?, opts?): the backup of day n with --json (it must exit 0), the
// generation and stats of its part
const { at, backupJson, gen, manifestFile, partDir } = nightly<Stats>({ host: 'h', part: 'p', month: '2026-11' });
type RunRecord = { parts: Record<string, Stats> };

describe('content deduplication', () => {
  test('renamed and moved files are linked to the older inode; a cp -p copy of a file still there is written (separate source files stay separate inodes), as is a cp copy with a new mtime', ({
    tmp,
  }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    const big = Buffer.alloc(200_000, 7);
    big.write('distinct head');
    makeTree(src, {
      'a/report.pdf': { content: big, mtime: T0 },
      'a/notes.txt': { content: 'some notes\n', mtime: T0 + 5n, mode: 0o600 },
      'a/keep.txt': { content: 'unchanged\n', mtime: T0 + 9n },
      'b/.keep': '',
    });
    const g1 = backupJson(spool, src, 1);
    fs.renameSync(path.join(src, 'a/report.pdf'), path.join(src, 'a/report-final.pdf'));
    fs.renameSync(path.join(src, 'a/notes.txt'), path.join(src, 'b/notes.txt'));
    execFileSync('cp', ['-p', path.join(src, 'a/keep.txt'), path.join(src, 'b/keep-copy.txt')]);
    execFileSync('cp', [path.join(src, 'a/keep.txt'), path.join(src, 'b/keep-fresh.txt')]);
    const g2 = backupJson(spool, src, 2);

    assertSameInode(path.join(g1.gen, 'a/report.pdf'), path.join(g2.gen, 'a/report-final.pdf'));
    assertSameInode(path.join(g1.gen, 'a/notes.txt'), path.join(g2.gen, 'b/notes.txt'));
    // keep.txt is still in the source, linked unchanged: its inode is taken in this generation
    assertSameInode(path.join(g1.gen, 'a/keep.txt'), path.join(g2.gen, 'a/keep.txt'));
    assertNotSameInode(path.join(g1.gen, 'a/keep.txt'), path.join(g2.gen, 'b/keep-copy.txt'));
    assertNotSameInode(path.join(g1.gen, 'a/keep.txt'), path.join(g2.gen, 'b/keep-fresh.txt'));
    expect(g2.stats.dedupLinked).toBe(2);
    expect(g2.stats.dedupBytes).toBe(big.length + 'some notes\n'.length);
    expect(g2.stats.copied).toBe(2); // keep-copy.txt (its twin holds the inode) and keep-fresh.txt (new mtime: no candidate)
    expect(rsyncDiff(src, g2.gen)).toEqual([]);
    expect(linksDiff(src, g2.gen)).toEqual([]);
    // the run log carries the same counters as --json
    expect(readRunsLog<RunRecord>(spool, 'h').at(-1)!.parts.p!.dedupLinked).toBe(2);
  });

  test.for([
    ['in one directory', 'x', 'w', 'w2'],
    ['across directories', 'a/x', 'a/w', 'b/w2'],
  ])(
    'an unchanged file keeps its inode when a new twin of it with a second name (cp -p, then ln) appears, %s (an attack on issue 17: the twin took it, the unchanged file was written anew and reported as linked)',
    ([, x, w, w2], { tmp }) => {
      const src = path.join(tmp, 'src');
      const spool = makeSpool(path.join(tmp, 'spool'));
      makeTree(src, { [x]: { content: Buffer.alloc(300_000, 9), mtime: T0 }, 'b/.keep': '' });
      const g1 = backupJson(spool, src, 1);
      execFileSync('cp', ['-p', path.join(src, x), path.join(src, w)]);
      fs.linkSync(path.join(src, w), path.join(src, w2));
      const g2 = backupJson(spool, src, 2);
      assertSameInode(path.join(g1.gen, x), path.join(g2.gen, x));
      assertNotSameInode(path.join(g2.gen, x), path.join(g2.gen, w));
      assertSameInode(path.join(g2.gen, w), path.join(g2.gen, w2));
      expect(g2.stats.bytesWritten).toBe(300_000); // the twin, once; not the unchanged file
      expect(readRunsLog<{ parts: Record<string, { splitLinks: number }> }>(spool, 'h').at(-1)!.parts.p!.splitLinks).toBe(0);
      expect(rsyncDiff(src, g2.gen)).toEqual([]);
      expect(linksDiff(src, g2.gen)).toEqual([]);
    },
  );

  test('the summary line, --json and runs.jsonl report the same files and bytes saved by content links', ({ tmp }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    makeTree(src, { 'x/data.bin': { content: Buffer.alloc(3000, 1), mtime: T0 }, 'x/small': { content: 'tiny\n', mtime: T0 } });
    backupJson(spool, src, 1);
    fs.renameSync(path.join(src, 'x'), path.join(src, 'y'));
    const saved = 3000 + 'tiny\n'.length;
    const r = hardsnap(['backup', '--spool', spool, '--host', 'h', '--part', `p=${src}`, '--verbose'], at(2));
    expect(r.code).toBe(0);
    expect(r.stdout + r.stderr).toContain(`p: 3 entries, 0 linked, 0 written (0 B), 2 deduplicated (${formatBytes(saved)} saved)`);
    const log = readRunsLog<RunRecord>(spool, 'h').at(-1)!.parts.p!;
    expect([log.dedupLinked, log.dedupBytes]).toEqual([2, saved]);
    fs.renameSync(path.join(src, 'y'), path.join(src, 'z'));
    const j = backupJson(spool, src, 3);
    expect([j.stats.dedupLinked, j.stats.dedupBytes, j.stats.copied]).toEqual([2, saved, 0]);
    const log3 = readRunsLog<RunRecord>(spool, 'h').at(-1)!.parts.p!;
    expect([log3.dedupLinked, log3.dedupBytes]).toEqual([2, saved]);
  });

  test('after a mutate.py day only the changed and added files are written; renamed ones are content-linked', ({ tmp }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    mktree(src, { files: 600, seed: 11 });
    backupJson(spool, src, 1);
    const changes = mutate(src, 5, { change: 3, add: 2, delete: 2, rename: 5 });
    expect(changes.renamed).toBeGreaterThan(10);
    const g2 = backupJson(spool, src, 2);
    expect(g2.stats.copied).toBe(changes.changed! + changes.added!);
    expect(g2.stats.dedupLinked).toBe(changes.renamed);
    expect(rsyncDiff(src, g2.gen)).toEqual([]);
  });

  test('a spool copied to another disk (new inode numbers, same manifests) still content-links', ({ tmp }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    const moved = path.join(tmp, 'moved-spool');
    makeTree(src, { 'a/f': { content: 'payload', mtime: T0 } });
    backupJson(spool, src, 1);
    execFileSync('cp', ['-a', spool, moved]);
    fs.renameSync(path.join(src, 'a/f'), path.join(src, 'a/g'));
    const g2 = backupJson(moved, src, 2);
    expect(g2.stats.dedupLinked).toBe(1);
    assertSameInode(path.join(moved, 'rsync/h/p/2026-11-01T030000Z/a/f'), path.join(g2.gen, 'a/g'));
  });

  test('a file deleted, then restored into the source from an older generation, is linked to its old inode, not written again', ({ tmp }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    const mail = Buffer.alloc(100_000, 3);
    mail.write('a folder a user deleted');
    makeTree(src, { 'inbox/1.eml': { content: mail, mtime: T0 }, 'inbox/2.eml': { content: 'second\n', mtime: T0 + 1n }, 'keep.txt': 'k' });
    const g1 = backupJson(spool, src, 1);
    fs.rmSync(path.join(src, 'inbox'), { recursive: true });
    backupJson(spool, src, 2, ['--accept-source-change']); // 5 entries to 1: on purpose
    backupJson(spool, src, 3);
    // day 4: the admin restores the folder into the source as it was on day 1
    execFileSync('cp', ['-a', path.join(g1.gen, 'inbox'), path.join(src, 'inbox')]);
    const g4 = backupJson(spool, src, 4);
    assertSameInode(path.join(g1.gen, 'inbox/1.eml'), path.join(g4.gen, 'inbox/1.eml'));
    assertSameInode(path.join(g1.gen, 'inbox/2.eml'), path.join(g4.gen, 'inbox/2.eml'));
    expect([g4.stats.dedupLinked, g4.stats.dedupBytes, g4.stats.bytesWritten]).toEqual([2, mail.length + 'second\n'.length, 0]);
    expect(rsyncDiff(src, g4.gen)).toEqual([]);
  });

  test('--dedup-generations bounds how far back: 2 generations do not reach a file gone for two, 4 do', ({ tmp }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    makeTree(src, { 'd/old.bin': { content: Buffer.alloc(5000, 9), mtime: T0 }, 'keep.txt': 'k' });
    const g1 = backupJson(spool, src, 1);
    fs.rmSync(path.join(src, 'd'), { recursive: true });
    backupJson(spool, src, 2, ['--accept-source-change']); // 3 entries to 1: on purpose
    backupJson(spool, src, 3);
    execFileSync('cp', ['-a', path.join(g1.gen, 'd'), path.join(src, 'd')]);
    // day 4 looks at days 3 and 2 only: old.bin is written again
    const short = backupJson(spool, src, 4, ['--dedup-generations', '2']);
    assertNotSameInode(path.join(g1.gen, 'd/old.bin'), path.join(short.gen, 'd/old.bin'));
    expect([short.stats.dedupLinked, short.stats.copied]).toEqual([0, 1]);
    fs.rmSync(path.join(src, 'd'), { recursive: true });
    backupJson(spool, src, 5, ['--accept-source-change']);
    execFileSync('cp', ['-a', path.join(g1.gen, 'd'), path.join(src, 'd')]);
    // day 6 looks at days 5, 4, 3 and 2: day 4's copy is found
    const reach = backupJson(spool, src, 6, ['--dedup-generations', '4']);
    assertSameInode(path.join(short.gen, 'd/old.bin'), path.join(reach.gen, 'd/old.bin'));
    expect(reach.stats.dedupLinked).toBe(1);
    const bad = hardsnap(['backup', '--spool', spool, '--host', 'h', '--part', `p=${src}`, '--dedup-generations', '0'], at(7));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('invalid --dedup-generations "0": expected a whole number >= 1');
  });

  test("a damaged block in an older generation's manifest skips that generation only: the previous one still content-links, the run succeeds", ({ tmp }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    makeTree(src, { 'old/gone.bin': { content: Buffer.alloc(4000, 5), mtime: T0 }, 'keep/moved.bin': { content: Buffer.alloc(3000, 6), mtime: T0 } });
    const g1 = backupJson(spool, src, 1);
    fs.rmSync(path.join(src, 'old'), { recursive: true });
    backupJson(spool, src, 2);
    // flip a byte inside the first directory block (the root's, which differs from day 2's)
    const mf = manifestFileOf(partDir(spool), path.basename(g1.gen));
    const bytes = fs.readFileSync(mf);
    const at = 12 + bytes.readUInt32LE(8) + 12 + 2;
    bytes[at] = bytes[at]! ^ 0xff;
    fs.writeFileSync(mf, bytes);
    execFileSync('cp', ['-a', path.join(g1.gen, 'old'), path.join(src, 'old')]);
    fs.renameSync(path.join(src, 'keep/moved.bin'), path.join(src, 'keep/renamed.bin'));
    const g3 = backupJson(spool, src, 3);
    expect(JSON.parse(g3.stdout).notes.join('\n')).toMatch(/not deduplicating against all of 2026-11-01T030000Z: /);
    expect(g3.stats.dedupLinked).toBe(1); // renamed.bin, through day 2
    assertNotSameInode(path.join(g1.gen, 'old/gone.bin'), path.join(g3.gen, 'old/gone.bin'));
    expect(rsyncDiff(src, g3.gen)).toEqual([]);
  });

  test("a damaged block in the previous generation's manifest turns content links off for the run, said once; the run succeeds and its generation is exact", ({
    tmp,
  }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    makeTree(src, { 'a/x': 'hello\n', 'b/y': 'world\n', 'b/z': { content: Buffer.alloc(5000, 4), mtime: T0 } });
    const g1 = backupJson(spool, src, 1);
    // flip a byte inside the first directory block (the root's)
    const mf = manifestFileOf(partDir(spool), path.basename(g1.gen));
    const bytes = fs.readFileSync(mf);
    const at = 12 + bytes.readUInt32LE(8) + 12 + 2;
    bytes[at] = bytes[at]! ^ 0xff;
    fs.writeFileSync(mf, bytes);
    fs.renameSync(path.join(src, 'b/z'), path.join(src, 'a/z2'));
    const g2 = backupJson(spool, src, 2);
    const notes = (JSON.parse(g2.stdout) as { notes: string[] }).notes.filter((n) => /deduplication off/.test(n));
    expect(notes).toEqual(["part 'p': content deduplication off for this run: block checksum mismatch"]);
    expect(g2.stats.dedupLinked).toBe(0);
    assertNotSameInode(path.join(g1.gen, 'b/z'), path.join(g2.gen, 'a/z2'));
    expect(rsyncDiff(src, g2.gen)).toEqual([]);
  });

  test('--dedup off writes renamed files again', ({ tmp }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    makeTree(src, { 'a/f': { content: 'payload', mtime: T0 } });
    backupJson(spool, src, 1);
    fs.renameSync(path.join(src, 'a/f'), path.join(src, 'a/g'));
    const g2 = backupJson(spool, src, 2, ['--dedup', 'off']);
    expect(g2.stats.dedupLinked).toBe(0);
    expect(g2.stats.copied).toBe(1);
    const bad = hardsnap(['backup', '--spool', spool, '--host', 'h', '--part', `p=${src}`, '--dedup', 'everything']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--dedup/);
  });

  test('--dedup host links a file moved from one part to another on the same file system', ({ tmp }) => {
    const srcA = path.join(tmp, 'a');
    const srcB = path.join(tmp, 'b');
    const spool = makeSpool(path.join(tmp, 'spool'));
    makeTree(srcA, { 'dump.sql': { content: Buffer.alloc(50_000, 3), mtime: T0 } });
    makeTree(srcB, { other: 'x' });
    const args = (day: number, extra: string[]) =>
      hardsnap(['backup', '--spool', spool, '--host', 'h', '--part', `a=${srcA}`, '--part', `b=${srcB}`, '--json', ...extra], at(day));
    expect(args(1, []).code).toBe(0);
    fs.renameSync(path.join(srcA, 'dump.sql'), path.join(srcB, 'dump.sql'));
    fs.writeFileSync(path.join(srcA, 'placeholder'), 'p');
    const r = args(2, ['--dedup', 'host']);
    expect(r.code).toBe(0);
    const parts = (JSON.parse(r.stdout) as { parts: { part: string; path: string; stats: Stats }[] }).parts;
    const b = parts.find((p) => p.part === 'b')!;
    expect(b.stats.dedupLinked).toBe(1);
    const gen1a = path.join(spool, 'rsync/h/a/2026-11-01T030000Z/dump.sql');
    assertSameInode(gen1a, path.join(b.path, 'dump.sql'));
  });
});

describe('hash first, then decide', () => {
  test('a candidate with the same size and metadata but another hash is written, not linked', async ({ tmp }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    makeTree(src, { one: { content: 'AAAAAAAA', mtime: T0 } });
    // (day 1's record of one holds its ctime: day 2 reads only the new file)
    await pastRacyWindow();
    const g1 = backupJson(spool, src, 1);
    makeTree(src, { two: { content: 'BBBBBBBB', mtime: T0 } });
    const g2 = backupJson(spool, src, 2);
    assertNotSameInode(path.join(g1.gen, 'one'), path.join(g2.gen, 'two'));
    expect(g2.stats).toMatchObject({ hashedFiles: 1, dedupLinked: 0, dedupMismatches: 0, copied: 1 });
    expect(rsyncDiff(src, g2.gen)).toEqual([]);
  });

  test('identical new files in one run stay separate inodes, and a later copy of one is written, not linked to a twin', ({ tmp }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    const body = Buffer.alloc(100_000, 9);
    makeTree(src, { 'a/iso': { content: body, mtime: T0 }, 'b/iso-copy': { content: body, mtime: T0 }, 'c/unrelated': { content: body, mtime: T0 + 1n } });
    const g1 = backupJson(spool, src, 1);
    assertNotSameInode(path.join(g1.gen, 'a/iso'), path.join(g1.gen, 'c/unrelated'));
    assertNotSameInode(path.join(g1.gen, 'a/iso'), path.join(g1.gen, 'b/iso-copy'));
    expect(g1.stats).toMatchObject({ copied: 3, dedupLinked: 0 });
    expect(rsyncDiff(src, g1.gen)).toEqual([]);
    expect(linksDiff(src, g1.gen)).toEqual([]);
    // a third copy on the next day: both twins are still in the source, their inodes taken
    execFileSync('cp', ['-p', path.join(src, 'a/iso'), path.join(src, 'c/iso-third')]);
    const g2 = backupJson(spool, src, 2);
    expect(g2.stats).toMatchObject({ copied: 1, dedupLinked: 0, linked: 3 });
    expect(linksDiff(src, g2.gen)).toEqual([]);
    // the day after, iso-copy is gone: the new iso-fourth may take its inode
    fs.rmSync(path.join(src, 'b/iso-copy'));
    execFileSync('cp', ['-p', path.join(src, 'a/iso'), path.join(src, 'c/iso-fourth')]);
    const g3 = backupJson(spool, src, 3);
    expect(g3.stats).toMatchObject({ copied: 0, dedupLinked: 1 });
    assertSameInode(path.join(g2.gen, 'b/iso-copy'), path.join(g3.gen, 'c/iso-fourth'));
    expect(linksDiff(src, g3.gen)).toEqual([]);
    expect(rsyncDiff(src, g3.gen)).toEqual([]);
  });
});

describe('hash collisions (test seam HARDSNAP_TEST_HASH_COLLIDE: every hash compares equal)', () => {
  function collidingPair(tmp: string) {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    makeTree(src, { one: { content: 'AAAAAAAA', mtime: T0 } });
    const g1 = backupJson(spool, src, 1);
    // same size, mode, owner and mtime, different bytes; 'one' leaves the source (a candidate
    // still there unchanged is its own file's to link again, never a content link's)
    fs.rmSync(path.join(src, 'one'));
    makeTree(src, { two: { content: 'BBBBBBBB', mtime: T0 } });
    return { src, spool, g1 };
  }
  const collide = { env: { HARDSNAP_TEST_HASH_COLLIDE: '1' } };

  test('two different files with colliding hashes are not linked when bytes are verified (the default)', ({ tmp }) => {
    const { src, spool, g1 } = collidingPair(tmp);
    const g2 = backupJson(spool, src, 2, [], collide);
    assertNotSameInode(path.join(g1.gen, 'one'), path.join(g2.gen, 'two'));
    expect(fs.readFileSync(path.join(g2.gen, 'two'), 'utf8')).toBe('BBBBBBBB');
    expect(g2.stats.dedupMismatches).toBe(1);
    expect(g2.stats.dedupLinked).toBe(0);
  });

  test('the seam works: with --no-dedup-verify the colliding files ARE (wrongly) linked', ({ tmp }) => {
    const { src, spool, g1 } = collidingPair(tmp);
    const g2 = backupJson(spool, src, 2, ['--no-dedup-verify'], collide);
    assertSameInode(path.join(g1.gen, 'one'), path.join(g2.gen, 'two'));
    expect(fs.readFileSync(path.join(g2.gen, 'two'), 'utf8')).toBe('AAAAAAAA');
  });
});

describe('--checksum', () => {
  const file = (over: Partial<Meta> = {}): Meta => ({
    type: 'file',
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: 10,
    mtimeSec: 100,
    mtimeNsec: 5,
    rdev: 0,
    target: null,
    xattrs: null,
    ...over,
  });
  const prev = (hash: string | null, over: Partial<ManifestEntry> = {}): ManifestEntry => ({
    ...file(),
    name: Buffer.from('f'),
    flags: 0,
    linkGroup: 0,
    ino: 7,
    hash,
    ctimeSec: 0,
    ctimeNsec: 0,
    ...over,
  });
  const ctx = { prevAvailable: true, asRoot: true, checksum: true };
  test.each<[string, Meta, ManifestEntry, string | null | undefined, string, string]>([
    ['same hash', file(), prev('00000000000000aa'), '00000000000000aa', 'link', 'unchanged (checksum)'],
    ['other hash', file(), prev('00000000000000aa'), '00000000000000bb', 'copy', 'content differs (checksum)'],
    ['no previous hash', file(), prev(null), '00000000000000aa', 'copy', 'no previous content hash (checksum)'],
    ['source unreadable', file(), prev('00000000000000aa'), null, 'copy', 'source not hashed (checksum)'],
    ['mtime differs: no hashing needed', file({ mtimeNsec: 6 }), prev('00000000000000aa'), undefined, 'copy', 'mtime'],
  ])('decide: %s', (_name, e, p, h, action, reason) => {
    expect(needsChecksum(e, p, ctx)).toBe(h !== undefined);
    expect(decide(e, p, ctx, h)).toEqual({ action, reason });
  });
  test('decide without --checksum asks for a hash only where the ctime or the inode moved since the record, or the record has none', () => {
    const noCk = { prevAvailable: true, asRoot: true, rootDev: 3, prevRecordsCtime: true };
    const stamp = { ino: 9, dev: 3, ctimeSec: 200, ctimeNsec: 7 };
    const rec = { ctimeSec: 200, ctimeNsec: 7, srcIno: 9 };
    const h = '00000000000000aa';
    // the same ctime on the same inode: size and mtime decide, nothing is read
    expect(needsChecksum({ ...file(), ...stamp }, prev(h, rec), noCk)).toBe(false);
    expect(decide({ ...file(), ...stamp }, prev(h, rec), noCk)).toEqual({ action: 'link', reason: 'unchanged' });
    // a record without a ctime in a manifest that records them (racy: changed within a second of
    // its run's start or later, or a ctime ahead of the clock) vouches for nothing: compared
    expect(needsChecksum({ ...file(), ...stamp }, prev(h), noCk)).toBe(true);
    expect(decide({ ...file(), ...stamp }, prev(h), noCk, h)).toEqual({ action: 'link', reason: 'unchanged (content compared: no ctime recorded)' });
    expect(decide({ ...file(), ...stamp }, prev(h), noCk, '00000000000000bb')).toEqual({
      action: 'copy',
      reason: 'content differs (size and mtime kept, no ctime recorded)',
    });
    // a manifest of format 2 records none: size and mtime decide, as they did
    expect(needsChecksum({ ...file(), ...stamp }, prev(h), { ...noCk, prevRecordsCtime: false })).toBe(false);
    // an entry that is not a scanned one (no ctime) cannot either
    expect(needsChecksum(file(), prev(h, rec), noCk)).toBe(false);
    for (const [what, e] of [
      ['ctime seconds', { ...file(), ...stamp, ctimeSec: 201 }],
      ['ctime nanoseconds', { ...file(), ...stamp, ctimeNsec: 8 }],
      ['another inode', { ...file(), ...stamp, ino: 10 }],
    ] as const) {
      expect(needsChecksum(e, prev(h, rec), noCk), what).toBe(true);
      expect(decide(e, prev(h, rec), noCk, h), what).toEqual({ action: 'link', reason: 'unchanged (content compared: ctime moved)' });
      expect(decide(e, prev(h, rec), noCk, '00000000000000bb'), what).toEqual({ action: 'copy', reason: 'content differs (size and mtime kept, ctime moved)' });
      expect(decide(e, prev(null, rec), noCk, h), what).toEqual({ action: 'copy', reason: 'no previous content hash (ctime moved)' });
      expect(decide(e, prev(h, rec), noCk, null), what).toEqual({ action: 'copy', reason: 'source not hashed (ctime moved)' });
    }
    // an inode number is compared only on the source root's file system (below a mount, the ctime tells)
    expect(needsChecksum({ ...file(), ...stamp, ino: 10, dev: 4 }, prev(h, rec), noCk)).toBe(false);
    // a changed size or mtime is a copy without reading
    expect(needsChecksum({ ...file({ size: 11 }), ...stamp, ctimeSec: 201 }, prev(h, rec), noCk)).toBe(false);
    // nothing to link to: nothing to compare
    expect(needsChecksum({ ...file(), ...stamp, ctimeSec: 201 }, prev(h, rec), { ...noCk, prevAvailable: false })).toBe(false);
  });

  // an edit that keeps the size and sets the mtime back (touch -r, cp -p over it, a clock set
  // back): rsync's quick check links it as unchanged; borg and restic see the ctime move
  test('a same-size edit with its mtime set back is caught by its ctime without --checksum; a chmod back and forth is read, found the same and linked', async ({
    tmp,
  }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    const f = path.join(src, 'db.conf');
    makeTree(src, {
      'db.conf': { content: 'port=5432\n', mtime: T0 + 123_456_789n },
      other: { content: 'same', mtime: T0 },
      perm: { content: 'mode goes and comes back', mtime: T0 },
    });
    await pastRacyWindow();
    const g1 = backupJson(spool, src, 1);
    fs.writeFileSync(f, 'port=6543\n');
    setMtimesNs([[toBuf(f), T0 + 123_456_789n]]);
    fs.chmodSync(path.join(src, 'perm'), 0o600);
    fs.chmodSync(path.join(src, 'perm'), 0o644);
    // (so that day 2's records hold the ctimes: they tell day 3's change)
    await pastRacyWindow();

    const dry = hardsnap(['backup', '--spool', spool, '--host', 'h', '--part', `p=${src}`, '--dry-run'], at(2));
    expect(dry.stdout).toMatch(/copy +p\/db\.conf +\(content differs \(size and mtime kept, ctime moved\)\)/);
    expect(dry.stdout).toMatch(/link +p\/perm +\(unchanged \(content compared: ctime moved\)\)/);
    expect(dry.stdout).toMatch(/link +p\/other +\(unchanged\)/);

    const g2 = backupJson(spool, src, 2);
    assertNotSameInode(path.join(g1.gen, 'db.conf'), path.join(g2.gen, 'db.conf'));
    expect(fs.readFileSync(path.join(g2.gen, 'db.conf'), 'utf8')).toBe('port=6543\n');
    assertSameInode(path.join(g1.gen, 'perm'), path.join(g2.gen, 'perm'));
    assertSameInode(path.join(g1.gen, 'other'), path.join(g2.gen, 'other'));
    expect(g2.stats.sameStampChanged).toBe(1);
    expect(g2.stats.checksumChanged).toBe(0);
    // db.conf and perm read to hash them (db.conf again to copy it); other not read
    expect(g2.stats.hashedFiles).toBe(2);
    expect(rsyncDiff(src, g2.gen)).toEqual([]);
    expect(readRunsLog<RunRecord>(spool, 'h').at(-1)!.parts.p!.sameStampChanged).toBe(1);

    // said in the summary
    fs.writeFileSync(f, 'port=7654\n');
    setMtimesNs([[toBuf(f), T0 + 123_456_789n]]);
    const r3 = hardsnap(['backup', '--spool', spool, '--host', 'h', '--part', `p=${src}`, '--verbose'], at(3));
    expect(r3.code, r3.stderr).toBe(0);
    expect(r3.stdout).toMatch(/1 changed under the same size and mtime/);
    // day 3's record of db.conf has no ctime (written just before the run: racy): day 4 reads it
    // (found the same: linked) and records its ctime; day 5 reads nothing
    await pastRacyWindow();
    const g4 = backupJson(spool, src, 4);
    expect([g4.stats.hashedFiles, g4.stats.linked, g4.stats.sameStampChanged]).toEqual([1, 3, 0]);
    expect(fs.readFileSync(path.join(g4.gen, 'db.conf'), 'utf8')).toBe('port=7654\n');
    const g5 = backupJson(spool, src, 5);
    expect([g5.stats.hashedFiles, g5.stats.linked]).toEqual([0, 3]);

    // --checksum reads every file, as before
    const g6 = backupJson(spool, src, 6, ['--checksum']);
    expect(g6.stats.hashedFiles).toBe(3);
    expect(g6.stats.linked).toBe(3);
  });

  // a record made while its file was changing has no ctime (racy, as git's index calls it): it
  // vouches for nothing, so the next run compares the content (an attack: an edit made long after
  // that run, keeping size and mtime, was linked as unchanged in every later run)
  test('a record without a ctime (the file changed while the run read it) has its file compared by content the next run; --checksum compares every file', async ({
    tmp,
  }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    const f = path.join(src, 'b/db.conf');
    makeTree(src, { 'a/x': 'x', 'b/db.conf': { content: 'port=5432\n', mtime: T0 }, 'b/other': { content: 'same', mtime: T0 } });
    await pastRacyWindow();
    // day 1, paused after reading a: db.conf's ctime moves (a chmod to its own mode) after the run began
    const go = path.join(tmp, 'go');
    const c = spawnHardsnap(['backup', '--spool', spool, '--host', 'h', '--part', `p=${src}`], {
      env: {
        ...at(1).env,
        HARDSNAP_TEST_PAUSE_AT: 'after-scan',
        HARDSNAP_TEST_PAUSE_DIR: 'a',
        HARDSNAP_TEST_PAUSE_UNTIL: go,
        HARDSNAP_TEST_SCAN_AHEAD_MAX_AGE_MS: '0',
      },
    });
    await waitFor(() => c.out.stderr.includes('test pause at after-scan') || c.exitCode !== null, 60_000, 5, 'the pause after a');
    fs.chmodSync(f, 0o644);
    fs.writeFileSync(go, '');
    expect((await c.exited).code, c.out.stderr).toBe(0);
    const rec = manifestEntries(manifestFile(spool, 1)).get('b/db.conf')!;
    expect([rec.ctimeSec, rec.ctimeNsec]).toEqual([0, 0]);
    const g1 = gen(spool, 1);

    // long after day 1, an edit that keeps the size and sets the mtime back
    await pastRacyWindow();
    fs.writeFileSync(f, 'port=6543\n');
    setMtimesNs([[toBuf(f), T0]]);
    await pastRacyWindow();
    const dry = hardsnap(['backup', '--spool', spool, '--host', 'h', '--part', `p=${src}`, '--dry-run'], at(2));
    expect(dry.stdout).toMatch(/copy +p\/b\/db\.conf +\(content differs \(size and mtime kept, no ctime recorded\)\)/);
    expect(dry.stdout).toMatch(/link +p\/b\/other +\(unchanged\)$/m);
    const g2 = backupJson(spool, src, 2);
    assertNotSameInode(path.join(g1, 'b/db.conf'), path.join(g2.gen, 'b/db.conf'));
    expect(fs.readFileSync(path.join(g2.gen, 'b/db.conf'), 'utf8')).toBe('port=6543\n');
    expect([g2.stats.sameStampChanged, g2.stats.hashedFiles]).toEqual([1, 1]);
    // day 2's record holds the ctime: day 3 reads nothing
    const g3 = backupJson(spool, src, 3);
    expect([g3.stats.hashedFiles, g3.stats.linked]).toEqual([0, 3]);

    // --checksum reads every file and says so
    const dry4 = hardsnap(['backup', '--spool', spool, '--host', 'h', '--part', `p=${src}`, '--checksum', '--dry-run'], at(4));
    expect(dry4.stdout).toMatch(/link +p\/b\/db\.conf +\(unchanged \(checksum\)\)/);
    fs.writeFileSync(f, 'port=7654\n');
    setMtimesNs([[toBuf(f), T0]]);
    const g4 = backupJson(spool, src, 4, ['--checksum']);
    assertNotSameInode(path.join(g3.gen, 'b/db.conf'), path.join(g4.gen, 'b/db.conf'));
    assertSameInode(path.join(g3.gen, 'b/other'), path.join(g4.gen, 'b/other'));
    expect(fs.readFileSync(path.join(g4.gen, 'b/db.conf'), 'utf8')).toBe('port=7654\n');
    expect([g4.stats.checksumChanged, g4.stats.sameStampChanged]).toEqual([1, 0]);
    expect(g4.stats.hashedFiles).toBe(3); // each source file read once to hash (the changed one again to copy)
    expect(fs.statSync(path.join(g4.gen, 'b/db.conf'), { bigint: true }).mtimeNs).toBe(T0);
  });

  // found by an attack: each name of a hard-linked file whose ctime moved was read (20 MiB with
  // 21 names: 440 MB read) and counted as changed
  test('a hard-linked file whose ctime moved is read once for all its names, and counted once', async ({ tmp }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    const f = path.join(src, 'a/f');
    makeTree(src, { 'a/f': { content: Buffer.alloc(100_000, 1), mtime: T0 } });
    for (let i = 0; i < 5; i++) fs.linkSync(f, path.join(src, `a/n${i}`));
    fs.mkdirSync(path.join(src, 'z'));
    fs.linkSync(f, path.join(src, 'z/far'));
    await pastRacyWindow();
    backupJson(spool, src, 1);
    fs.chmodSync(f, 0o600);
    fs.chmodSync(f, 0o644);
    await pastRacyWindow();
    const g2 = backupJson(spool, src, 2);
    expect([g2.stats.hashedFiles, g2.stats.hashedBytes, g2.stats.sameStampChanged]).toEqual([1, 100_000, 0]);
    expect(linksDiff(src, g2.gen)).toEqual([]);
    // an edit through one name, the mtime set back: read once, counted once, one new inode for all seven names
    fs.writeFileSync(path.join(src, 'z/far'), Buffer.alloc(100_000, 2));
    setMtimesNs([[toBuf(f), T0]]);
    await pastRacyWindow();
    const g3 = backupJson(spool, src, 3);
    expect([g3.stats.hashedFiles, g3.stats.sameStampChanged, g3.stats.copied]).toEqual([1, 1, 1]);
    expect(fs.readFileSync(path.join(g3.gen, 'a/n3'))[0]).toBe(2);
    expect(linksDiff(src, g3.gen)).toEqual([]);
    expect(rsyncDiff(src, g3.gen)).toEqual([]);
  });
});

// ext4 refuses a link beyond 65,000 names of one inode (EMLINK).
const EXT4_LINK_MAX = 65_000;

/** Links `base` from a directory `pad` beside it on its file system until it has `upTo` names (lstat: symlinks too). */
function fillLinks(mnt: string, base: string, upTo: number): void {
  const pad = path.join(mnt, 'pad');
  fs.mkdirSync(pad, { recursive: true });
  for (let i = fs.readdirSync(pad).length, n = Number(fs.lstatSync(base).nlink); n < upTo; i++, n++) fs.linkSync(base, path.join(pad, String(i)));
  expect(Number(fs.lstatSync(base).nlink)).toBe(upTo);
}

function mountExt4(dir: string): string | null {
  if (process.getuid?.() !== 0) return 'needs root to mount a loop device';
  const img = path.join(dir, 'ext4.img');
  const mnt = path.join(dir, 'mnt');
  fs.mkdirSync(mnt);
  fs.writeFileSync(img, '');
  fs.truncateSync(img, 64 << 20);
  const mk = spawnSync('mkfs.ext4', ['-q', '-F', '-N', '4096', img], { encoding: 'utf8' });
  if (mk.status !== 0) return `mkfs.ext4 unavailable or failed: ${(mk.stderr || String(mk.error)).trim()}`;
  const m = spawnSync('mount', ['-o', 'loop', img, mnt], { encoding: 'utf8' });
  if (m.status !== 0) return `cannot mount a loop device here: ${m.stderr.trim()}`;
  return null;
}

describe('EMLINK', () => {
  // (symlinks and FIFOs: a later attack; the check was made for regular files only, and a
  // hard-linked symlink group split between the full inode and a copy, exit 0)
  test.for(['file', 'symlink', 'fifo'])(
    'a source hard link (%s) whose previous inode has room for only some of its names: one fresh copy for all of them, not two inodes (an attack with real faults: links.py failed, exit 0)',
    (type, { tmp, skip }) => {
      const why = mountExt4(tmp);
      if (why) return skip(why);
      const mnt = path.join(tmp, 'mnt');
      try {
        const src = path.join(tmp, 'src');
        const spool = makeSpool(path.join(mnt, 'spool'));
        makeTree(src, { 'b/.keep': '' });
        fs.mkdirSync(path.join(src, 'a'));
        if (type === 'file') makeTree(src, { 'a/one': { content: 'shared\n', mtime: T0 } });
        else if (type === 'symlink') fs.symlinkSync('target', path.join(src, 'a/one'));
        else execFileSync('mkfifo', [path.join(src, 'a/one')]);
        fs.linkSync(path.join(src, 'a/one'), path.join(src, 'a/two'));
        fs.linkSync(path.join(src, 'a/one'), path.join(src, 'b/three'));
        const g1 = backupJson(spool, src, 1);
        const base = path.join(g1.gen, 'a/one');
        // room for one more name only: the group has three
        fillLinks(mnt, base, EXT4_LINK_MAX - 1);
        const g2 = backupJson(spool, src, 2);
        expect(g2.code).toBe(0);
        assertNotSameInode(base, path.join(g2.gen, 'a/one'));
        assertSameInode(path.join(g2.gen, 'a/one'), path.join(g2.gen, 'a/two'));
        assertSameInode(path.join(g2.gen, 'a/one'), path.join(g2.gen, 'b/three'));
        expect(Number(fs.lstatSync(base).nlink)).toBe(EXT4_LINK_MAX - 1); // nothing linked to it, nothing left half-done
        expect(g2.stats.copied).toBe(1);
        expect(rsyncDiff(src, g2.gen)).toEqual([]);
        expect(linksDiff(src, g2.gen)).toEqual([]);
      } finally {
        spawnSync('umount', ['-l', mnt]);
      }
    },
  );

  test('a new source hard link identical to a file in the spool whose inode has room for only some of its names: one fresh copy for all of them, not a content link for the first and a copy for the rest (an attack: links.py failed, exit 0)', ({
    tmp,
    skip,
  }) => {
    const why = mountExt4(tmp);
    if (why) return skip(why);
    const mnt = path.join(tmp, 'mnt');
    try {
      const src = path.join(tmp, 'src');
      const spool = makeSpool(path.join(mnt, 'spool'));
      makeTree(src, { 'old/f': { content: 'the same bytes\n', mtime: T0 }, 'keep/k': 'k\n' });
      const g1 = backupJson(spool, src, 1);
      const base = path.join(g1.gen, 'old/f');
      fillLinks(mnt, base, EXT4_LINK_MAX - 1); // room for one more name only
      // day 2: the file is gone, a new one with the same bytes and times has three names
      fs.rmSync(path.join(src, 'old'), { recursive: true });
      makeTree(src, { 'new/a': { content: 'the same bytes\n', mtime: T0 }, 'new/b': { hardlink: 'new/a' }, 'other/c': { hardlink: 'new/a' } });
      const g2 = backupJson(spool, src, 2);
      assertNotSameInode(base, path.join(g2.gen, 'new/a'));
      assertSameInode(path.join(g2.gen, 'new/a'), path.join(g2.gen, 'new/b'));
      assertSameInode(path.join(g2.gen, 'new/a'), path.join(g2.gen, 'other/c'));
      expect(Number(fs.statSync(base).nlink)).toBe(EXT4_LINK_MAX - 1); // nothing linked to it, nothing left half-done
      expect(g2.stats.dedupLinked).toBe(0);
      expect(rsyncDiff(src, g2.gen)).toEqual([]);
      expect(linksDiff(src, g2.gen)).toEqual([]);
    } finally {
      spawnSync('umount', ['-l', mnt]);
    }
  });

  // found by re-attacking the two tests above: the room is checked when the first name is
  // linked; the inode may fill before the last name (another part's content links with
  // --parallel-parts --dedup host, an ln from outside): the group was split, exit 0, unsaid
  test('a group whose inode fills while the run goes on (between its names): the split is said, exit 23, and the next run joins the names again', async ({
    tmp,
    skip,
  }) => {
    const why = mountExt4(tmp);
    if (why) return skip(why);
    const mnt = path.join(tmp, 'mnt');
    try {
      const src = path.join(tmp, 'src');
      const spool = makeSpool(path.join(mnt, 'spool'));
      makeTree(src, { 'd1/reg': { content: 'group\n', mtime: T0 }, 'd2/reg': { hardlink: 'd1/reg' }, 'd2/reg2': { hardlink: 'd1/reg' } });
      const g1 = backupJson(spool, src, 1);
      const base = path.join(g1.gen, 'd1/reg');
      fillLinks(mnt, base, EXT4_LINK_MAX - 3); // room for the group's three names exactly
      const go = path.join(tmp, 'go');
      const c = spawnHardsnap(['backup', '--spool', spool, '--host', 'h', '--part', `p=${src}`], {
        env: { HARDSNAP_NOW: '2026-11-02T03:00:00Z', HARDSNAP_TEST_PAUSE_AT: 'after-scan', HARDSNAP_TEST_PAUSE_DIR: 'd2', HARDSNAP_TEST_PAUSE_UNTIL: go },
      });
      await waitFor(() => c.out.stderr.includes('test pause at after-scan') || c.exitCode !== null, 60_000, 5, 'the scan of d2');
      // d1/reg is linked by now: fill the inode to the limit
      fillLinks(mnt, base, EXT4_LINK_MAX);
      fs.writeFileSync(go, '');
      const { code } = await c.exited;
      expect(code, c.out.stderr).toBe(23);
      expect(c.out.stderr).toMatch(
        /p: d2\/reg: its inode in the spool filled during the run: this name and the next are a copy, the names before \(d1\/reg\) stay on the full inode/,
      );
      const g2 = path.join(partDir(spool), '2026-11-02T030000Z');
      expect(rsyncDiff(src, g2).filter((l) => !l.startsWith('hf'))).toEqual([]);
      assertSameInode(path.join(g2, 'd2/reg'), path.join(g2, 'd2/reg2'));
      // the next run: one fresh inode for the group
      const g3 = backupJson(spool, src, 3);
      expect(linksDiff(src, g3.gen)).toEqual([]);
      expect(rsyncDiff(src, g3.gen)).toEqual([]);
    } finally {
      spawnSync('umount', ['-l', mnt]);
    }
  });

  test('an inode at the ext4 link limit gets a fresh copy that source hard links share and the next run links to', ({ tmp, skip }) => {
    const why = mountExt4(tmp);
    if (why) return skip(why);
    const mnt = path.join(tmp, 'mnt');
    try {
      const src = path.join(tmp, 'src');
      const spool = makeSpool(path.join(mnt, 'spool'));
      makeTree(src, { 'mail/big': { content: 'x'.repeat(5000), mtime: T0 }, 'mail/big-alias': { hardlink: 'mail/big' } });

      const g1 = backupJson(spool, src, 1);
      const base = path.join(g1.gen, 'mail/big');
      // fill the generation inode up to the limit (it has 2 names already)
      fillLinks(mnt, base, EXT4_LINK_MAX);
      // a separate copy with the same metadata: its content link to the full inode is refused too
      execFileSync('cp', ['-p', path.join(src, 'mail/big'), path.join(src, 'mail/big-copy')]);

      const g2 = backupJson(spool, src, 2);
      expect(g2.code).toBe(0);
      expect(g2.stats.emlinkCopies).toBeGreaterThanOrEqual(1);
      // both names of the source inode share the one fresh copy
      assertNotSameInode(base, path.join(g2.gen, 'mail/big'));
      assertSameInode(path.join(g2.gen, 'mail/big'), path.join(g2.gen, 'mail/big-alias'));
      // ... and the separate copy stays separate: written, never joined to its twin's fresh inode
      assertNotSameInode(path.join(g2.gen, 'mail/big'), path.join(g2.gen, 'mail/big-copy'));
      expect(g2.stats.copied).toBe(2);
      expect(g2.stats.dedupLinked).toBe(0);
      expect(rsyncDiff(src, g2.gen)).toEqual([]);
      expect(linksDiff(src, g2.gen)).toEqual([]);

      // the fresh copy is the link base from then on
      const g3 = backupJson(spool, src, 3);
      expect(g3.stats.emlinkCopies).toBe(0);
      expect(g3.stats.copied).toBe(0);
      assertSameInode(path.join(g2.gen, 'mail/big'), path.join(g3.gen, 'mail/big'));
      assertSameInode(path.join(g2.gen, 'mail/big'), path.join(g3.gen, 'mail/big-alias'));
    } finally {
      spawnSync('umount', ['-l', mnt]);
    }
  });
});

describe('config keys dedup, dedup-verify and checksum (bin/hardsnap --config; the command line overrides them)', () => {
  function withConfig(tmp: string, yaml: string): string[] {
    const cfg = path.join(tmp, 'hardsnap.yaml');
    fs.writeFileSync(cfg, yaml);
    return ['--config', cfg];
  }

  test('config dedup: off makes backup write a renamed file again; --dedup part overrides it', ({ tmp }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    const cfg = withConfig(tmp, 'dedup: off\n');
    makeTree(src, { 'a/f': { content: 'payload', mtime: T0 } });
    const g1 = backupJson(spool, src, 1, cfg);
    fs.renameSync(path.join(src, 'a/f'), path.join(src, 'a/g'));
    const g2 = backupJson(spool, src, 2, cfg);
    expect([g2.stats.dedupLinked, g2.stats.copied]).toEqual([0, 1]);
    assertNotSameInode(path.join(g1.gen, 'a/f'), path.join(g2.gen, 'a/g'));
    fs.renameSync(path.join(src, 'a/g'), path.join(src, 'a/h'));
    const g3 = backupJson(spool, src, 3, [...cfg, '--dedup', 'part']);
    expect([g3.stats.dedupLinked, g3.stats.copied]).toEqual([1, 0]);
    assertSameInode(path.join(g2.gen, 'a/g'), path.join(g3.gen, 'a/h'));
  });

  test('config dedup: host widens content links to other parts', ({ tmp }) => {
    const srcA = path.join(tmp, 'a');
    const srcB = path.join(tmp, 'b');
    const spool = makeSpool(path.join(tmp, 'spool'));
    const cfg = withConfig(tmp, `spool: ${spool}\nhost: h\nparts:\n  a: ${srcA}\n  b: ${srcB}\ndedup: host\n`);
    makeTree(srcA, { 'dump.sql': { content: Buffer.alloc(50_000, 3), mtime: T0 } });
    makeTree(srcB, { other: 'x' });
    const run = (day: number) => hardsnap(['backup', ...cfg, '--json'], at(day));
    expect(run(1).code).toBe(0);
    fs.renameSync(path.join(srcA, 'dump.sql'), path.join(srcB, 'dump.sql'));
    fs.writeFileSync(path.join(srcA, 'placeholder'), 'p');
    const r = run(2);
    expect(r.code).toBe(0);
    const b = (JSON.parse(r.stdout) as { parts: { part: string; path: string; stats: Stats }[] }).parts.find((p) => p.part === 'b')!;
    expect(b.stats.dedupLinked).toBe(1);
    assertSameInode(path.join(spool, 'rsync/h/a/2026-11-01T030000Z/dump.sql'), path.join(b.path, 'dump.sql'));
  });

  test('config checksum: true reads every unchanged-looking file; --no-checksum overrides it', async ({ tmp }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    const cfg = withConfig(tmp, 'checksum: true\n');
    makeTree(src, { 'db.conf': { content: 'port=5432\n', mtime: T0 } });
    // (day 1's record holds the ctime: without --checksum nothing is read)
    await pastRacyWindow();
    const g1 = backupJson(spool, src, 1, cfg);
    const dry = (extra: string[]) => hardsnap(['backup', ...cfg, '--spool', spool, '--host', 'h', '--part', `p=${src}`, '--dry-run', ...extra], at(2)).stdout;
    expect(dry([])).toMatch(/link +p\/db\.conf +\(unchanged \(checksum\)\)/);
    expect(dry(['--no-checksum'])).toMatch(/link +p\/db\.conf +\(unchanged\)$/m);
    const g2 = backupJson(spool, src, 2, [...cfg, '--no-checksum']);
    expect(g2.stats.hashedFiles).toBe(0);
    assertSameInode(path.join(g1.gen, 'db.conf'), path.join(g2.gen, 'db.conf'));
    const g3 = backupJson(spool, src, 3, cfg);
    expect(g3.stats.hashedFiles).toBe(1);
  });

  test('config dedup-verify: false trusts the hash (colliding files linked by the seam); --dedup-verify overrides it', ({ tmp }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    const cfg = withConfig(tmp, 'dedup-verify: false\n');
    const collide = { env: { HARDSNAP_TEST_HASH_COLLIDE: '1' } };
    makeTree(src, { one: { content: 'AAAAAAAA', mtime: T0 } });
    const g1 = backupJson(spool, src, 1, cfg);
    // 'one' leaves the source: its inode is not this generation's, a candidate free to take
    fs.rmSync(path.join(src, 'one'));
    makeTree(src, { two: { content: 'BBBBBBBB', mtime: T0 } });
    const verified = backupJson(spool, src, 2, [...cfg, '--dedup-verify'], collide);
    expect(verified.stats.dedupMismatches).toBe(1);
    assertNotSameInode(path.join(g1.gen, 'one'), path.join(verified.gen, 'two'));
    fs.rmSync(path.join(src, 'two'));
    makeTree(src, { three: { content: 'CCCCCCCC', mtime: T0 } });
    const trusted = backupJson(spool, src, 3, cfg, collide);
    expect(fs.readFileSync(path.join(trusted.gen, 'three'), 'utf8')).not.toBe('CCCCCCCC'); // wrongly linked: the key was read
  });

  test('a bad dedup value in the config is one error naming the key, nothing written', ({ tmp }) => {
    const spool = makeSpool(path.join(tmp, 'spool'));
    const src = path.join(tmp, 'src');
    makeTree(src, { f: 'x' });
    const r = hardsnap(['backup', ...withConfig(tmp, 'dedup: everything\n'), '--spool', spool, '--host', 'h', '--part', `p=${src}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/hardsnap\.yaml:1:8: dedup: expected off, part or host/);
    expect(fs.readdirSync(spool)).toEqual(['.hardsnap-spool']);
  });
});

describe('content hashes in the manifest', () => {
  test('every regular file has its XXH64 (xxhash-wasm) in the manifest: computed when written, inherited when linked', async ({ tmp }) => {
    const { h64Raw } = await xxhash();
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    mktree(src, { files: 200, seed: 5 });
    const g1 = backupJson(spool, src, 1);
    mutate(src, 9, { change: 5, add: 5, delete: 2, rename: 3 });
    const g2 = backupJson(spool, src, 2);
    expect(g2.stats.linked).toBeGreaterThan(100);
    const isFile = (e: ManifestEntry) => e.type === 'file';
    const [m1, m2] = [
      manifestEntries(manifestFileOf(partDir(spool), path.basename(g1.gen)), isFile),
      manifestEntries(manifestFileOf(partDir(spool), path.basename(g2.gen)), isFile),
    ];
    for (const [gen, m] of [
      [g1.gen, m1],
      [g2.gen, m2],
    ] as const) {
      expect(m.size).toBeGreaterThan(150);
      for (const [rel, e] of m) {
        const want = h64Raw(fs.readFileSync(Buffer.from(path.join(gen, rel), 'latin1')))
          .toString(16)
          .padStart(16, '0');
        expect(e.hash, `${gen}/${rel}`).toBe(want);
      }
    }
    // a linked entry carries the previous generation's hash (it was not read again)
    let inherited = 0;
    for (const [rel, e] of m2) {
      const old = m1.get(rel);
      if (old && old.ino === e.ino) {
        expect(e.hash).toBe(old.hash);
        inherited++;
      }
    }
    expect(inherited).toBe(g2.stats.linked);
  });

  test('--checksum reads the sources, never the spool: every hash of an unchanged-looking file is taken in the source tree', async ({ tmp }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    mktree(src, { files: 60, seed: 3 });
    backupJson(spool, src, 1);
    const dirsHashed: string[] = [];
    const real = sys.hashat.bind(sys);
    vi.spyOn(sys, 'hashat').mockImplementation((dirfd, name, io) => {
      dirsHashed.push(fs.readlinkSync(`/proc/self/fd/${dirfd}`));
      return real(dirfd, name, io);
    });
    const r = await runBackup(
      {
        spool,
        host: 'h',
        parts: [{ name: 'p', source: src }],
        exclude: [],
        oneFileSystem: false,
        dryRun: false,
        allowEmpty: false,
        flush: false,
        waitMs: 0,
        now: new Date('2026-11-02T03:00:00Z'),
        command: 'test',
        parallelParts: false,
        dedup: 'part',
        dedupVerify: true,
        checksum: true,
      },
      {
        onProblem: (p) => {
          throw new Error(p.message);
        },
        onNote: () => {},
      },
    );
    expect(r.exit).toBe(0);
    const stats = r.parts[0]!.stats;
    expect(stats.hashedFiles).toBeGreaterThan(50);
    expect(dirsHashed.length).toBe(stats.hashedFiles);
    const realSrc = fs.realpathSync(src);
    for (const d of dirsHashed) expect(d === realSrc || d.startsWith(`${realSrc}/`), d).toBe(true);
    expect(stats.linked).toBe(stats.files); // all unchanged, by content
  });
});
