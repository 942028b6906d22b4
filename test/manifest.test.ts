// The manifest format: every released version stays readable (fixtures, never regenerated),
// writing and reading round-trip, and damage is detected rather than misread.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { crc32, deflateRawSync } from 'node:zlib';
import { describe, expect } from 'vitest';
import { test } from './helpers/fixture.js';
import { ManifestReader, READABLE_VERSIONS, readManifestHeader } from '../src/manifest/reader.js';
import { ManifestWriter } from '../src/manifest/writer.js';
import {
  ByteSink,
  EncodedEntry,
  encodeEntry,
  FLAG,
  frame,
  ManifestFormatError,
  RawDirBlock,
  unframe,
  XattrSets,
  type ManifestEntry,
} from '../src/manifest/format.js';
import { formatXattrs, parseXattrs } from '../src/fs/xattrs.js';
import { hashHex, hexWord } from '../src/fs/native.js';
import { decide } from '../src/plan/decide.js';

const FIXTURES = path.join(import.meta.dirname, 'fixtures');

describe('released manifest formats stay readable', () => {
  test('version 1 fixture (hardsnap 0.1.0) decodes to exactly what was written', () => {
    expect(READABLE_VERSIONS).toContain(1);
    const m = ManifestReader.open(path.join(FIXTURES, 'manifest-v1.hsm'));
    try {
      expect(m.header).toEqual({ format: 1, part: 'mail/imap', generation: '2026-11-20T030000Z', created: '2026-11-20T03:00:00.000Z', tool: 'hardsnap 0.1.0' });
      expect(m.root).toMatchObject({ type: 'dir', mode: 0o755, mtimeNsec: 42, name: Buffer.alloc(0) });
      expect(m.dirCount).toBe(2);
      const top = m.dir(Buffer.alloc(0))!;
      expect(top.map((e) => e.name.toString('latin1'))).toEqual(['dir', 'latin1-\xe9t\xe9', 'new\nline', 'sym', 'unstable']);
      expect(top[0]).toMatchObject({ type: 'dir', mode: 0o2750, uid: 8, gid: 12, mtimeSec: 1700000000, mtimeNsec: 1 });
      expect(top[1]).toMatchObject({ type: 'file', size: 15, hash: '0123456789abcdef', ino: 4294967297, linkGroup: 1, mtimeNsec: 123456789 });
      expect(top[2]).toMatchObject({ linkGroup: 1, ino: 4294967297, hash: 'fedcba9876543210' });
      expect(top[3]!.type).toBe('symlink');
      expect(top[3]!.target!.equals(Buffer.from([0x2f, 0xff, 0x41]))).toBe(true);
      expect(top[4]).toMatchObject({ flags: 2, hash: '00000000ffffffff' });
      const sub = m.dir(Buffer.from('dir'))!;
      expect(sub[0]).toMatchObject({ type: 'fifo', mode: 0o600 });
      expect(sub[1]).toMatchObject({ type: 'char', rdev: 259, flags: 4, hash: null });
      expect(sub[2]).toMatchObject({ size: 2 ** 40 + 3, mtimeSec: -1, mtimeNsec: 999999999, uid: 4294967294, gid: 65534, hash: 'ffffffffffffffff' });
      expect(sub[2]!.name.length).toBe(255);
      expect([...m.walk()].map((d) => d.dir.toString())).toEqual(['', 'dir']);
      expect(m.dir(Buffer.from('nope'))).toBeUndefined();
    } finally {
      m.close();
    }
  });

  test('version 2 fixture (watch mode) decodes its scan record and the root INCOMPLETE flag', () => {
    expect(READABLE_VERSIONS).toContain(2);
    const m = ManifestReader.open(path.join(FIXTURES, 'manifest-v2.hsm'));
    try {
      expect(m.header).toEqual({
        format: 2,
        part: 'home',
        generation: '2026-12-01T030000Z',
        created: '2026-12-01T03:00:00.000Z',
        tool: 'hardsnap 0.2.0',
        scan: {
          startMono: 123456789012,
          startWall: '2026-12-01T03:00:00.123Z',
          boot: '3c0e5f9a-1b2c-4d5e-8f90-a1b2c3d4e5f6',
          full: false,
          lastFull: '2026-11-28T03:00:00.000Z',
          rules: '0123456789abcdef0123456789abcdef',
        },
      });
      expect(m.root).toMatchObject({ type: 'dir', mode: 0o755, flags: FLAG.INCOMPLETE });
      expect(m.dirKeys()).toEqual(['', 'caf\xc3\xa9']);
      const top = m.dir(Buffer.alloc(0))!;
      expect(top.map((e) => e.name.toString('latin1'))).toEqual(['caf\xc3\xa9', 'notes.txt']);
      expect(top[0]).toMatchObject({ type: 'dir', mode: 0o750, hash: null });
      expect(top[1]).toMatchObject({ type: 'file', size: 3, mtimeNsec: 7, hash: '00112233445566ff', ino: 100 });
      const sub = m.dir(Buffer.from('caf\xc3\xa9', 'latin1'))!;
      expect(sub[0]).toMatchObject({ flags: FLAG.UNSTABLE, size: 0 });
      expect(sub[0]!.name.equals(Buffer.from([0xff, 0x2d, 0x72, 0x61, 0x77]))).toBe(true);
      expect(readManifestHeader(path.join(FIXTURES, 'manifest-v2.hsm'))).toEqual(m.header);
    } finally {
      m.close();
    }
  });

  test('version 3 fixture (attributes, ctime, carried entries, footer, checksummed header) decodes to exactly what was written', () => {
    expect(READABLE_VERSIONS).toContain(3);
    const m = ManifestReader.open(path.join(FIXTURES, 'manifest-v3.hsm'));
    try {
      expect(m.version).toBe(3);
      expect(m.header).toMatchObject({ format: 3, part: 'mail/imap', generation: '2026-12-06T030000Z', tool: 'hardsnap 0.3.0', scan: { full: true } });
      expect(m.footer).toEqual({
        spool: { fsid: 'a1b2c3d4:e5f60718', rootIno: 77 },
        carried: { count: 1, first: [{ path: 'old', from: '2026-12-05T030000Z', code: 'EACCES' }] },
        xattrsRefused: ['trusted'],
      });
      const label = Buffer.from('system_u:object_r:mail_spool_t:s0\0');
      expect(m.root).toMatchObject({ type: 'dir', mode: 0o750, ino: 77, flags: FLAG.INCOMPLETE, ctimeSec: 1_780_000_100, ctimeNsec: 987_654_321 });
      expect(parseXattrs(m.root.xattrs)).toEqual([{ name: Buffer.from('security.selinux'), value: label }]);
      // each distinct attribute set once: the label and the set with the ACL
      expect(m.xattrSets.length).toBe(2);
      const top = m.dir(Buffer.alloc(0))!;
      expect(top.map((e) => e.name.toString('latin1'))).toEqual(['INBOX', 'a', 'b', 'c', 'link', 'link2', 'old']);
      const inbox = parseXattrs(top[0]!.xattrs);
      expect(inbox.map((x) => x.name.toString('latin1'))).toEqual(['security.selinux', 'system.posix_acl_access', 'user.empty', 'user.\xff']);
      expect(inbox[2]!.value.length).toBe(0);
      expect(inbox[3]!.value.equals(Buffer.from([0, 1, 2, 0xff]))).toBe(true);
      expect(top[0]).toMatchObject({ type: 'dir', mode: 0o2770 });
      expect(top[1]!.xattrs!.equals(m.root.xattrs!)).toBe(true);
      expect(top[2]).toMatchObject({ linkGroup: 1, ino: 5002 });
      expect(top[4]).toMatchObject({ type: 'symlink', linkGroup: 2, ino: 5003, xattrs: null });
      expect(top[4]!.target!.equals(Buffer.from('INBOX/\xe9', 'latin1'))).toBe(true);
      expect(top[6]).toMatchObject({ flags: FLAG.CARRIED, ino: 4000 });
      const sub = m.dir(Buffer.from('INBOX'))!;
      expect(sub[0]).toMatchObject({ size: 2 ** 33 + 1, ino: 2 ** 40 + 7, mtimeNsec: 123_456_789, ctimeNsec: 987_654_321 });
      expect(sub[0]!.name.equals(Buffer.from([0xe9]))).toBe(true);
      expect(sub[0]!.xattrs!.equals(top[0]!.xattrs!)).toBe(true);
      expect(sub[1]).toMatchObject({ type: 'fifo', xattrs: null });
      expect(readManifestHeader(path.join(FIXTURES, 'manifest-v3.hsm'))).toEqual(m.header);
    } finally {
      m.close();
    }
  });

  test('every fixture in test/fixtures is of a readable version', () => {
    const files = fs.readdirSync(FIXTURES).filter((f) => f.startsWith('manifest-v') && f.endsWith('.hsm'));
    expect(files.length).toBeGreaterThanOrEqual(READABLE_VERSIONS.length);
    for (const f of files) ManifestReader.open(path.join(FIXTURES, f)).close();
  });
});

function entry(i: number): ManifestEntry {
  return {
    name: Buffer.from(`n${i}\xff`, 'latin1'),
    type: i % 3 === 0 ? 'symlink' : 'file',
    mode: i & 0o7777,
    uid: i * 7,
    gid: i * 11,
    size: i * 1000,
    mtimeSec: 1_600_000_000 + i,
    mtimeNsec: (i * 7919) % 1e9,
    rdev: 0,
    target: i % 3 === 0 ? Buffer.from(`t${i}`) : null,
    flags: 0,
    linkGroup: i % 5,
    ino: 10_000 + i,
    hash: i % 2 ? (i * 2654435761).toString(16).padStart(16, '0').slice(-16) : null,
    ctimeSec: 1_600_000_500 + i,
    ctimeNsec: (i * 104729) % 1e9,
    xattrs: i % 4 === 1 ? formatXattrs([{ name: Buffer.from(`user.k${i % 3}`), value: Buffer.from([i % 7, 0xff]) }]) : null,
    srcIno: 50_000 + i,
  };
}

describe('format 4', () => {
  test('version 4 fixture (the source inode of each entry) decodes to exactly what was written, the rest as in version 3', () => {
    expect(READABLE_VERSIONS).toContain(4);
    const m = ManifestReader.open(path.join(FIXTURES, 'manifest-v4.hsm'));
    const v3 = ManifestReader.open(path.join(FIXTURES, 'manifest-v3.hsm'));
    try {
      expect(m.version).toBe(4);
      expect(m.header).toMatchObject({ format: 4, part: 'mail/imap', generation: '2026-12-07T030000Z', host: 'mx1', tool: 'hardsnap 0.4.0' });
      expect(m.footer).toEqual(v3.footer);
      expect(m.root).toEqual({ ...v3.root, srcIno: 2 });
      const top = m.dir(Buffer.alloc(0))!;
      const top3 = v3.dir(Buffer.alloc(0))!;
      expect(top.map((e) => e.srcIno)).toEqual([9001, 9002, 9003, 9004, 9005, 9006, 0]); // the carried one: unknown
      expect(top.map(({ srcIno: _s, ...rest }) => rest)).toEqual(top3.map(({ srcIno: _s, ...rest }) => rest));
      expect(top3.every((e) => e.srcIno === 0)).toBe(true); // format 3 does not know it
      const sub = m.dir(Buffer.from('INBOX'))!;
      expect(sub.map((e) => e.srcIno)).toEqual([9007, 9008]);
      expect(readManifestHeader(path.join(FIXTURES, 'manifest-v4.hsm'))).toEqual(m.header);
    } finally {
      m.close();
      v3.close();
    }
  });
});

describe('writing and reading', () => {
  test('round trip of many directories, with lookups in any order', ({ tmp }) => {
    const file = path.join(tmp, 'm.hsm');
    const w = ManifestWriter.create(file, { part: 'p', generation: 'g', created: 'c', tool: 't' });
    const dirs: Buffer[] = [];
    for (let d = 0; d < 300; d++) {
      const dir = Buffer.from(d === 0 ? '' : `d${d}/sub\n${d}`);
      dirs.push(dir);
      w.addDir(
        dir,
        Array.from({ length: d % 17 }, (_, i) => entry(d * 100 + i)).sort((a, b) => Buffer.compare(a.name, b.name)),
      );
    }
    w.finish({ ...entry(0), name: Buffer.alloc(0), type: 'dir', target: null });
    const m = ManifestReader.open(file);
    for (const d of [...dirs].reverse()) {
      const idx = dirs.indexOf(d);
      const got = m.dir(d)!;
      expect(got.length).toBe(idx % 17);
      const want = Array.from({ length: idx % 17 }, (_, i) => entry(idx * 100 + i)).sort((a, b) => Buffer.compare(a.name, b.name));
      expect(got).toEqual(want);
    }
    m.close();
  });

  test('a flipped byte anywhere in the header (format 3) is detected: its checksum is in the trailer', ({ tmp }) => {
    const good = fs.readFileSync(path.join(FIXTURES, 'manifest-v3.hsm'));
    const jsonLen = good.readUInt32LE(8);
    const file = path.join(tmp, 'm.hsm');
    for (let at = 8; at < 12 + jsonLen; at++) {
      for (const bit of [0x01, 0x20]) {
        const b = Buffer.from(good);
        b[at] ^= bit;
        fs.writeFileSync(file, b);
        // a flipped byte in the magic reads as "not a manifest"; anywhere else as damage
        expect(() => ManifestReader.open(file), `byte ${at} ^ ${bit}`).toThrow(ManifestFormatError);
        expect(() => readManifestHeader(file), `byte ${at} ^ ${bit}`).toThrow(ManifestFormatError);
      }
    }
    // the format number itself flipped down to 2 (a version whose header had no checksum)
    const down = Buffer.from(good);
    down.write('{"format":2', 12);
    fs.writeFileSync(file, down);
    expect(() => ManifestReader.open(file)).toThrow(/header checksum/);
    // and in the trailer: the checksum, the index position, the end marker
    for (const at of [good.length - 12, good.length - 20, good.length - 1]) {
      const b = Buffer.from(good);
      b[at] ^= 0x04;
      fs.writeFileSync(file, b);
      expect(() => ManifestReader.open(file), `trailer byte ${at}`).toThrow(ManifestFormatError);
    }
  });

  test('every byte of a written manifest is covered: a flipped byte is refused when the part holding it is read', ({ tmp }) => {
    const good = fs.readFileSync(path.join(FIXTURES, 'manifest-v3.hsm'));
    const file = path.join(tmp, 'm.hsm');
    for (let at = 0; at < good.length; at++) {
      const b = Buffer.from(good);
      b[at] ^= 0x10;
      fs.writeFileSync(file, b);
      const readAll = () => {
        const m = ManifestReader.open(file);
        try {
          for (const key of m.dirKeys()) m.dirByKey(key);
        } finally {
          m.close();
        }
      };
      expect(readAll, `byte ${at} of ${good.length}`).toThrow(ManifestFormatError);
    }
  });

  test('attribute sets are stored once each; a writer seeded with the previous table keeps its numbers and empties unused slots', ({ tmp }) => {
    const label = formatXattrs([{ name: Buffer.from('security.selinux'), value: Buffer.from('unconfined_u:object_r:user_home_t:s0\0') }]);
    const other = formatXattrs([{ name: Buffer.from('user.x'), value: Buffer.from('1') }]);
    const f1 = path.join(tmp, 'a.hsm');
    const w = ManifestWriter.create(f1, { part: 'p', generation: 'g', created: 'c', tool: 't' });
    const many: ManifestEntry[] = Array.from({ length: 5000 }, (_, i) => ({
      ...entry(i),
      type: 'file',
      target: null,
      linkGroup: 0,
      flags: 0,
      rdev: 0,
      name: Buffer.from(`f${String(i).padStart(5, '0')}`),
      xattrs: i === 7 ? other : label,
    }));
    w.addDir(Buffer.alloc(0), many);
    w.finish({ ...entry(0), name: Buffer.alloc(0), type: 'dir', target: null, hash: null, xattrs: null });
    const m1 = ManifestReader.open(f1);
    expect(m1.xattrSets.map((b) => b && b.length)).toEqual([label!.length, other!.length]);
    // a second manifest seeded with the first's table, copying two records as bytes: the numbers
    // stay valid; the set nobody uses any more (other) is an empty slot
    const f2 = path.join(tmp, 'b.hsm');
    const w2 = ManifestWriter.create(f2, { part: 'p', generation: 'g2', created: 'c', tool: 't' });
    w2.seedXattrSets(m1.xattrSets);
    const raw = m1.rawDirByKey('')!;
    const copied = [0, 1].map((i) => new EncodedEntry(many[i]!.name, Buffer.from(raw.unchangedFile(i, { ...many[i]!, ino: many[i]!.srcIno! })!)));
    copied[1]!.ino = 424242;
    w2.addDir(Buffer.alloc(0), copied);
    w2.finish({ ...entry(0), name: Buffer.alloc(0), type: 'dir', target: null, hash: null, xattrs: null });
    m1.close();
    const m2 = ManifestReader.open(f2);
    try {
      expect(m2.xattrSets.map((b) => (b ? b.length : 0))).toEqual([label!.length, 0]);
      const got = m2.dir(Buffer.alloc(0))!;
      expect(got.map((e) => e.xattrs!.equals(label!))).toEqual([true, true]);
      expect(got.map((e) => e.ino)).toEqual([many[0]!.ino, 424242]);
    } finally {
      m2.close();
    }
    // a third, seeded with the second: the empty slot is gone, the numbers of copied records follow
    const f3 = path.join(tmp, 'c.hsm');
    const w3 = ManifestWriter.create(f3, { part: 'p', generation: 'g3', created: 'c', tool: 't' });
    const m2b = ManifestReader.open(f2);
    w3.seedXattrSets(m2b.xattrSets);
    const raw2 = m2b.rawDirByKey('')!;
    const first = m2b.dir(Buffer.alloc(0))![0]!;
    w3.addDir(Buffer.alloc(0), [new EncodedEntry(first.name, Buffer.from(raw2.unchangedFile(0, { ...first, ino: first.srcIno! })!))]);
    w3.finish({ ...entry(0), name: Buffer.alloc(0), type: 'dir', target: null, hash: null, xattrs: other });
    m2b.close();
    const m3 = ManifestReader.open(f3);
    try {
      expect(m3.xattrSets.map((x) => (x ? x.length : 0))).toEqual([label!.length, other!.length]);
      expect(m3.dir(Buffer.alloc(0))![0]!.xattrs!.equals(label!)).toBe(true);
      expect(m3.root.xattrs!.equals(other!)).toBe(true);
    } finally {
      m3.close();
    }
    expect(() => new XattrSets().markUsed(3)).toThrow(ManifestFormatError);
  });

  test('damage is detected: truncation, a flipped byte, a foreign file, a newer version', ({ tmp }) => {
    const good = fs.readFileSync(path.join(FIXTURES, 'manifest-v1.hsm'));
    const write = (name: string, b: Buffer) => (fs.writeFileSync(path.join(tmp, name), b), path.join(tmp, name));
    expect(() => ManifestReader.open(write('trunc', good.subarray(0, good.length - 5)))).toThrow(ManifestFormatError);
    expect(() => ManifestReader.open(write('short', good.subarray(0, 10)))).toThrow(ManifestFormatError);
    expect(() => ManifestReader.open(write('foreign', Buffer.from('not a manifest at all, just some text here')))).toThrow(/bad magic/);
    const newer = Buffer.from(good);
    newer.write('{"format":9', 12);
    expect(() => ManifestReader.open(write('newer', newer))).toThrow(/newer than this hardsnap reads/);
    // a flipped byte inside a directory block: opening works, reading that block fails loudly
    const flipped = Buffer.from(good);
    const jsonLen = good.readUInt32LE(8);
    flipped[12 + jsonLen + 14] ^= 0x55;
    const m = ManifestReader.open(write('flipped', flipped));
    expect(() => m.dir(Buffer.alloc(0))).toThrow(/checksum/);
    m.close();
  });
});

describe('block framing (native zlib stream)', () => {
  // frames made the way format 1 was first written (node:zlib), to compare byte for byte
  const nodeFrame = (raw: Buffer, rawLen = raw.length, packed = deflateRawSync(raw, { level: 1 })) => {
    const out = Buffer.alloc(12 + packed.length);
    out.writeUInt32LE(rawLen, 0);
    out.writeUInt32LE(packed.length, 4);
    out.writeUInt32LE(crc32(packed), 8);
    packed.copy(out, 12);
    return out;
  };
  const samples = [Buffer.alloc(0), Buffer.from('a'), randomBytes(70_000), Buffer.from('msg-0001.eml\0'.repeat(3000))];

  test('frame() writes the bytes node:zlib wrote, and unframe() reads them back, block after block', () => {
    for (let round = 0; round < 2; round++) {
      for (const raw of samples) {
        expect(frame(raw).equals(nodeFrame(raw))).toBe(true);
        expect(unframe(nodeFrame(raw)).equals(raw)).toBe(true);
        expect(unframe(frame(raw)).equals(raw)).toBe(true);
      }
    }
  });

  test('a stream that inflates to more or fewer bytes than recorded, or does not inflate, is an error', () => {
    const raw = Buffer.from('hello manifest '.repeat(100));
    expect(() => unframe(nodeFrame(raw, raw.length + 1))).toThrow(ManifestFormatError);
    expect(() => unframe(nodeFrame(raw, raw.length - 1))).toThrow(ManifestFormatError);
    expect(() => unframe(nodeFrame(raw, raw.length, Buffer.from([0xff, 0xff, 0xff, 0xff])))).toThrow(ManifestFormatError);
    // and the stream is usable again after a refused block
    expect(unframe(frame(raw)).equals(raw)).toBe(true);
  });
});

describe('undecoded blocks (RawDirBlock) and content-hash digits', () => {
  const fixtures = ['manifest-v1.hsm', 'manifest-v2.hsm', 'manifest-v3.hsm', 'manifest-v4.hsm'];

  test('each field read in place equals the decoded entry, in both fixtures and a written manifest', ({ tmp }) => {
    const file = path.join(tmp, 'm.hsm');
    const w = ManifestWriter.create(file, { part: 'p', generation: 'g', created: 'c', tool: 't' });
    w.addDir(
      Buffer.from('d\xff', 'latin1'),
      Array.from({ length: 40 }, (_, i) => ({ ...entry(i), flags: i % 7 === 0 ? FLAG.UNSTABLE : 0 })),
    );
    w.finish({ ...entry(0), name: Buffer.alloc(0), type: 'dir', target: null, hash: null });
    let seen = 0;
    for (const f of [...fixtures.map((x) => path.join(FIXTURES, x)), file]) {
      const m = ManifestReader.open(f);
      try {
        for (const key of m.dirKeys()) {
          const decoded = m.dirByKey(key)!;
          const raw = m.rawDirByKey(key)!;
          expect(raw.dir.toString('latin1')).toBe(key);
          expect(raw.length).toBe(decoded.length);
          decoded.forEach((e, i) => {
            expect(raw.isFile(i)).toBe(e.type === 'file');
            expect(raw.flags(i) & ~FLAG.HAS_HASH).toBe(e.flags);
            expect((raw.flags(i) & FLAG.HAS_HASH) !== 0).toBe(e.hash !== null);
            expect([raw.size(i), raw.mtimeSec(i), raw.mtimeNsec(i), raw.ino(i)]).toEqual([e.size, e.mtimeSec, e.mtimeNsec, e.ino]);
            expect(raw.decode(i)).toEqual(e);
            seen++;
          });
        }
        expect([...m.rawWalk()].map((b) => b.dir.toString('latin1'))).toEqual(m.dirKeys());
      } finally {
        m.close();
      }
    }
    expect(seen).toBeGreaterThan(45);
  });

  test('a damaged block is an error, never a misread: truncated entry, trailing bytes, unknown type, a count too big', () => {
    const good = Buffer.concat([Buffer.from([1, 0, 0, 0, 0x61]), Buffer.from([1, 0, 0, 0])]);
    const one = Buffer.alloc(58 + 1);
    one[0] = 1; // a regular file
    one.writeUInt16LE(1, 2);
    one[58] = 0x78;
    expect(new RawDirBlock(Buffer.concat([good, one])).length).toBe(1);
    for (const bad of [
      Buffer.concat([good, one.subarray(0, 40)]),
      Buffer.concat([good, one, Buffer.from([0])]),
      Buffer.concat([good, Buffer.from([99]), one.subarray(1)]),
      Buffer.concat([Buffer.from([1, 0, 0, 0, 0x61]), Buffer.from([0xff, 0xff, 0, 0]), one]),
      Buffer.from([200, 0, 0, 0, 1]),
    ]) {
      expect(() => new RawDirBlock(bad)).toThrow(ManifestFormatError);
    }
  });

  test('compareName orders like Buffer.compare; unchangedFile gives the exact record of a file, and null for any difference', ({ tmp }) => {
    const file = path.join(tmp, 'm.hsm');
    const w = ManifestWriter.create(file, { part: 'p', generation: 'g', created: 'c', tool: 't' });
    const plain = (i: number): ManifestEntry => ({ ...entry(i), type: 'file', target: null, linkGroup: 0, flags: 0, rdev: 0, xattrs: null });
    const entries = (
      [
        plain(1),
        plain(2),
        { ...plain(3), hash: null },
        { ...plain(4), flags: FLAG.UNSTABLE },
        { ...plain(5), linkGroup: 3 },
        entry(6) /* a symlink */,
        { ...plain(7), type: 'dir', size: 0 },
        { ...plain(8), name: Buffer.from([0xff, 0xfe]) },
        { ...plain(9), name: Buffer.from('n9\xff', 'latin1'), uid: 0xfffffffe },
      ] as ManifestEntry[]
    ).sort((a, b) => Buffer.compare(a.name, b.name));
    w.addDir(Buffer.from('d'), entries);
    w.finish({ ...plain(0), name: Buffer.alloc(0), type: 'dir', hash: null });
    const m = ManifestReader.open(file);
    try {
      const raw = m.rawDirByKey('d')!;
      const probes = [Buffer.alloc(0), Buffer.from('n'), Buffer.from('n1'), Buffer.from([0xff]), Buffer.from([0xff, 0xfe, 0]), ...entries.map((e) => e.name)];
      entries.forEach((e, i) => {
        for (const q of probes) expect(Math.sign(raw.compareName(i, q)), `${i} vs ${q.toString('hex')}`).toBe(Math.sign(Buffer.compare(e.name, q)));
        const exact = e.type === 'file' && e.flags === 0 && e.linkGroup === 0;
        // the source entry as scanned: its inode is the source's (the record's srcIno)
        const scanned = { ...e, ino: e.srcIno! };
        const got = raw.unchangedFile(i, scanned);
        if (!exact) {
          expect(got, e.name.toString('latin1')).toBeNull();
          return;
        }
        // the bytes are the entry's own encoding: what encodeEntry writes for it
        const sink = new ByteSink();
        encodeEntry(sink, e);
        expect(got!.equals(sink.view())).toBe(true);
        // the fast path is the one rule of "unchanged", narrowed: decide() links what it passes
        expect(decide(scanned, e, { prevAvailable: true, asRoot: true, xattrs: true }).action).toBe('link');
        for (const change of [
          { size: e.size + 1 },
          { mtimeSec: e.mtimeSec + 1 },
          { mtimeNsec: e.mtimeNsec + 1 },
          { mode: e.mode ^ 1 },
          { uid: (e.uid + 1) >>> 0 },
          { gid: e.gid + 1 },
          { rdev: 5 },
          { ctimeSec: e.ctimeSec + 1 },
          { ctimeNsec: e.ctimeNsec + 1 },
          { ino: e.srcIno! + 1 }, // another source inode with all the same (a tree renamed over another)
        ]) {
          expect(raw.unchangedFile(i, { ...scanned, ...change }), JSON.stringify(change)).toBeNull();
        }
      });
    } finally {
      m.close();
    }
  });

  test('an EncodedEntry is written as its bytes: a block mixing them with entries reads back the same', ({ tmp }) => {
    const file = path.join(tmp, 'm.hsm');
    const w = ManifestWriter.create(file, { part: 'p', generation: 'g', created: 'c', tool: 't' });
    const entries = Array.from({ length: 12 }, (_, i) => entry(i)).sort((a, b) => Buffer.compare(a.name, b.name));
    const sets = new XattrSets();
    const mixed = entries.map((e, i) => {
      if (i % 2) return e;
      const s = new ByteSink();
      encodeEntry(s, e, sets);
      return new EncodedEntry(e.name, Buffer.from(s.view()));
    });
    // the sets the encoded records refer to, numbered as the writer will number them
    w.seedXattrSets(sets.table);
    w.addDir(Buffer.from('x'), mixed);
    w.finish({ ...entry(0), name: Buffer.alloc(0), type: 'dir', target: null, hash: null });
    const m = ManifestReader.open(file);
    try {
      expect(m.dirByKey('x')).toEqual(entries);
    } finally {
      m.close();
    }
  });

  test('hashHex and hexWord are inverses; a hash that is not 16 hex digits is refused when written', () => {
    for (const [hi, lo] of [
      [0, 0],
      [0xffffffff, 1],
      [0x0123abcd, 0xfedc9870],
      [0x80000000, 0x7fffffff],
    ]) {
      const hex = hashHex(hi!, lo!);
      expect(hex).toBe(hi!.toString(16).padStart(8, '0') + lo!.toString(16).padStart(8, '0'));
      expect([hexWord(hex, 0), hexWord(hex, 8)]).toEqual([hi, lo]);
      expect(hexWord(hex.toUpperCase(), 0)).toBe(hi);
    }
    expect(hexWord('0123456g89abcdef', 0)).toBe(-1);
    for (const bad of ['0123456789abcde', '0123456789abcdeg', 'x123456789abcdef0']) {
      expect(() => encodeEntry(new ByteSink(), { ...entry(1), hash: bad }, new XattrSets())).toThrow(ManifestFormatError);
    }
  });
});
