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
import { ByteSink, EncodedEntry, encodeEntry, FLAG, frame, ManifestFormatError, RawDirBlock, unframe, type ManifestEntry } from '../src/manifest/format.js';
import { hashHex, hexWord } from '../src/fs/native.js';

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
        format: 2, part: 'home', generation: '2026-12-01T030000Z', created: '2026-12-01T03:00:00.000Z', tool: 'hardsnap 0.2.0',
        scan: {
          startMono: 123456789012, startWall: '2026-12-01T03:00:00.123Z', boot: '3c0e5f9a-1b2c-4d5e-8f90-a1b2c3d4e5f6',
          full: false, lastFull: '2026-11-28T03:00:00.000Z', rules: '0123456789abcdef0123456789abcdef',
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

  test('every fixture in test/fixtures is of a readable version', () => {
    const files = fs.readdirSync(FIXTURES).filter((f) => f.startsWith('manifest-v') && f.endsWith('.hsm'));
    expect(files.length).toBeGreaterThanOrEqual(READABLE_VERSIONS.length);
    for (const f of files) ManifestReader.open(path.join(FIXTURES, f)).close();
  });
});

function entry(i: number): ManifestEntry {
  return {
    name: Buffer.from(`n${i}\xff`, 'latin1'), type: i % 3 === 0 ? 'symlink' : 'file', mode: i & 0o7777, uid: i * 7, gid: i * 11,
    size: i * 1000, mtimeSec: 1_600_000_000 + i, mtimeNsec: (i * 7919) % 1e9, rdev: 0,
    target: i % 3 === 0 ? Buffer.from(`t${i}`) : null, flags: 0, linkGroup: i % 5, ino: 10_000 + i,
    hash: i % 2 ? (i * 2654435761).toString(16).padStart(16, '0').slice(-16) : null,
  };
}

describe('writing and reading', () => {
  test('round trip of many directories, with lookups in any order', ({ tmp }) => {
    const file = path.join(tmp, 'm.hsm');
    const w = ManifestWriter.create(file, { part: 'p', generation: 'g', created: 'c', tool: 't' });
    const dirs: Buffer[] = [];
    for (let d = 0; d < 300; d++) {
      const dir = Buffer.from(d === 0 ? '' : `d${d}/sub\n${d}`);
      dirs.push(dir);
      w.addDir(dir, Array.from({ length: d % 17 }, (_, i) => entry(d * 100 + i)).sort((a, b) => Buffer.compare(a.name, b.name)));
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
  const fixtures = ['manifest-v1.hsm', 'manifest-v2.hsm'];

  test('each field read in place equals the decoded entry, in both fixtures and a written manifest', ({ tmp }) => {
    const file = path.join(tmp, 'm.hsm');
    const w = ManifestWriter.create(file, { part: 'p', generation: 'g', created: 'c', tool: 't' });
    w.addDir(Buffer.from('d\xff', 'latin1'), Array.from({ length: 40 }, (_, i) => ({ ...entry(i), flags: i % 7 === 0 ? FLAG.UNSTABLE : 0 })));
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
    const plain = (i: number): ManifestEntry => ({ ...entry(i), type: 'file', target: null, linkGroup: 0, flags: 0, rdev: 0 });
    const entries = ([
      plain(1), plain(2), { ...plain(3), hash: null }, { ...plain(4), flags: FLAG.UNSTABLE }, { ...plain(5), linkGroup: 3 },
      entry(6) /* a symlink */, { ...plain(7), type: 'dir', size: 0 }, { ...plain(8), name: Buffer.from([0xff, 0xfe]) },
      { ...plain(9), name: Buffer.from('n9\xff', 'latin1'), uid: 0xfffffffe },
    ] as ManifestEntry[]).sort((a, b) => Buffer.compare(a.name, b.name));
    w.addDir(Buffer.from('d'), entries);
    w.finish({ ...plain(0), name: Buffer.alloc(0), type: 'dir', hash: null });
    const m = ManifestReader.open(file);
    try {
      const raw = m.rawDirByKey('d')!;
      const probes = [Buffer.alloc(0), Buffer.from('n'), Buffer.from('n1'), Buffer.from([0xff]), Buffer.from([0xff, 0xfe, 0]), ...entries.map((e) => e.name)];
      entries.forEach((e, i) => {
        for (const q of probes) expect(Math.sign(raw.compareName(i, q)), `${i} vs ${q.toString('hex')}`).toBe(Math.sign(Buffer.compare(e.name, q)));
        const exact = e.type === 'file' && e.flags === 0 && e.linkGroup === 0;
        const got = raw.unchangedFile(i, e);
        if (!exact) {
          expect(got, e.name.toString('latin1')).toBeNull();
          return;
        }
        // the bytes are the entry's own encoding: what encodeEntry writes for it
        const sink = new ByteSink();
        encodeEntry(sink, e);
        expect(got!.equals(sink.view())).toBe(true);
        for (const change of [{ size: e.size + 1 }, { mtimeSec: e.mtimeSec + 1 }, { mtimeNsec: e.mtimeNsec + 1 }, { mode: e.mode ^ 1 },
          { uid: (e.uid + 1) >>> 0 }, { gid: e.gid + 1 }, { rdev: 5 }]) {
          expect(raw.unchangedFile(i, { ...e, ...change }), JSON.stringify(change)).toBeNull();
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
    const mixed = entries.map((e, i) => {
      if (i % 2) return e;
      const s = new ByteSink();
      encodeEntry(s, e);
      return new EncodedEntry(e.name, Buffer.from(s.view()));
    });
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
    for (const [hi, lo] of [[0, 0], [0xffffffff, 1], [0x0123abcd, 0xfedc9870], [0x80000000, 0x7fffffff]]) {
      const hex = hashHex(hi!, lo!);
      expect(hex).toBe(hi!.toString(16).padStart(8, '0') + lo!.toString(16).padStart(8, '0'));
      expect([hexWord(hex, 0), hexWord(hex, 8)]).toEqual([hi, lo]);
      expect(hexWord(hex.toUpperCase(), 0)).toBe(hi);
    }
    expect(hexWord('0123456g89abcdef', 0)).toBe(-1);
    for (const bad of ['0123456789abcde', '0123456789abcdeg', 'x123456789abcdef0']) {
      expect(() => encodeEntry(new ByteSink(), { ...entry(1), hash: bad })).toThrow(ManifestFormatError);
    }
  });
});
