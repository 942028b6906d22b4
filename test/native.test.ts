// The native XXH64 (native/xxh64.c, used by copy() and hashat()) must give exactly the hashes of
// xxhash-wasm, the reference implementation named in SPEC.md: manifests written by either must
// compare equal, and a wrong hash would make content deduplication link different files.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import path from 'node:path';
import xxhash from 'xxhash-wasm';
import { beforeAll } from 'vitest';
import { IO, sys } from '../src/fs/native.js';
import { describe, expect, test } from './helpers/fixture.js';

let h64Raw: (b: Uint8Array, seed?: bigint) => bigint;
beforeAll(async () => {
  ({ h64Raw } = await xxhash());
});

const big = (hi: number, lo: number) => (BigInt(hi) << 32n) | BigInt(lo);

function nativeBuf(b: Buffer): bigint {
  const [hi, lo] = sys.xxh64(b);
  return big(hi, lo);
}

function nativeFile(file: string): { hash: bigint; bytes: number } {
  const io = new Float64Array(sys.IO_FIELDS);
  const rc = sys.hashat(sys.AT_FDCWD, file, io);
  expect(rc).toBe(0);
  return { hash: big(io[IO.HASH_HI]!, io[IO.HASH_LO]!), bytes: io[IO.BYTES]! };
}

// every length 0..100 (the 32-byte stripe and 8/4/1-byte tails), stripe and chunk boundaries
const SIZES = [
  ...Array.from({ length: 101 }, (_, i) => i),
  127,
  128,
  129,
  255,
  256,
  257,
  1000,
  4095,
  4096,
  4097,
  65535,
  65536,
  65537,
  (1 << 20) - 1,
  1 << 20,
  (1 << 20) + 1,
  3 * (1 << 20) + 17,
];

describe('native XXH64 equals xxhash-wasm h64', () => {
  test('on random buffers of every size class', () => {
    for (const n of SIZES) {
      const b = randomBytes(n);
      expect(nativeBuf(b), `size ${n}`).toBe(h64Raw(b));
    }
  });

  test('on files through hashat, across the 1 MiB read chunk', ({ tmp }) => {
    for (const n of [0, 1, 31, 32, 33, 4096, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 2 * (1 << 20) + 12345]) {
      const b = randomBytes(n);
      const f = path.join(tmp, `f${n}`);
      fs.writeFileSync(f, b);
      const r = nativeFile(f);
      expect(r.hash, `size ${n}`).toBe(h64Raw(b));
      expect(r.bytes).toBe(n);
    }
  });

  test('on sparse files: holes hash as zeros, at the start, in the middle and at the end', ({ tmp }) => {
    const size = 9 * (1 << 20) + 333;
    const f = path.join(tmp, 'sparse');
    const full = Buffer.alloc(size);
    const fd = fs.openSync(f, 'w');
    fs.ftruncateSync(fd, size);
    for (const at of [3 * (1 << 20) + 5, 6 * (1 << 20)]) {
      const d = randomBytes(70_000);
      fs.writeSync(fd, d, 0, d.length, at);
      d.copy(full, at);
    }
    fs.closeSync(fd);
    const st = fs.statSync(f);
    expect(st.blocks * 512, 'the file really is sparse').toBeLessThan(size / 2);
    const r = nativeFile(f);
    expect(r.hash).toBe(h64Raw(full));
    expect(r.bytes).toBe(size);
  });

  test('copy() records the same hash as hashat() and xxhash-wasm', ({ tmp }) => {
    const b = randomBytes(1_500_000);
    fs.writeFileSync(path.join(tmp, 'src'), b);
    const dir = sys.openat(sys.AT_FDCWD, tmp, sys.O_RDONLY | sys.O_DIRECTORY, 0);
    try {
      const io = new Float64Array(sys.IO_FIELDS);
      io[IO.FLAGS] = 2;
      expect(sys.copy(dir, 'src', dir, 'dst', io)).toBe(0);
      expect(big(io[IO.HASH_HI]!, io[IO.HASH_LO]!)).toBe(h64Raw(b));
      expect(fs.readFileSync(path.join(tmp, 'dst')).equals(b)).toBe(true);
    } finally {
      sys.close(dir);
    }
  });
});
