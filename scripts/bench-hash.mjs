#!/usr/bin/env node
// Hash throughput side by side on one file (default 512 MiB, in $TMPDIR or --dir):
//   plain read (1 MiB pread loop), xxhash-wasm h64 (streaming, over the same reads),
//   native XXH64 via hashat() (what --checksum and dedup candidates cost), and native copy()
//   (read + XXH64 + write, what every written file costs).
// Usage: node scripts/bench-hash.mjs [--size-mib 512] [--dir /path/on/the/disk/to/measure]
// Run `npm run build` first. The file is read once before measuring, so numbers are for the
// page cache unless it is larger than RAM; pass a file system you care about with --dir.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import xxhash from 'xxhash-wasm';
import { IO, sys } from '../dist/fs/native.js';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const sizeMiB = Number(arg('--size-mib', '512'));
const dir = fs.mkdtempSync(path.join(arg('--dir', os.tmpdir()), 'hardsnap-bench-hash-'));
const file = path.join(dir, 'data');
const CHUNK = 1 << 20;

function makeFile() {
  const fd = fs.openSync(file, 'w');
  const buf = Buffer.alloc(CHUNK);
  for (let i = 0; i < sizeMiB; i++) {
    for (let j = 0; j < CHUNK; j += 4) buf.writeUInt32LE((Math.imul(i * CHUNK + j, 2654435761) >>> 0), j);
    fs.writeSync(fd, buf);
  }
  fs.closeSync(fd);
}

function readLoop(onChunk) {
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.allocUnsafe(CHUNK);
  let pos = 0;
  for (;;) {
    const n = fs.readSync(fd, buf, 0, CHUNK, pos);
    if (n === 0) break;
    onChunk(n === CHUNK ? buf : buf.subarray(0, n));
    pos += n;
  }
  fs.closeSync(fd);
}

function time(label, fn) {
  const t = process.hrtime.bigint();
  const out = fn();
  const s = Number(process.hrtime.bigint() - t) / 1e9;
  return { label, s, mbps: (sizeMiB * CHUNK) / 1e6 / s, out };
}

try {
  makeFile();
  const { create64 } = await xxhash();
  readLoop(() => {}); // warm the cache the same way for every row
  const io = new Float64Array(sys.IO_FIELDS);
  const rows = [
    time('plain read (node fs.readSync, 1 MiB)', () => readLoop(() => {})),
    time('xxhash-wasm h64 (streaming over the reads)', () => {
      const h = create64();
      readLoop((b) => h.update(b));
      return h.digest().toString(16).padStart(16, '0');
    }),
    time('native XXH64 (sys.hashat)', () => {
      if (sys.hashat(sys.AT_FDCWD, file, io) !== 0) throw new Error('hashat failed');
      return io[IO.HASH_HI].toString(16).padStart(8, '0') + io[IO.HASH_LO].toString(16).padStart(8, '0');
    }),
    time('native copy + XXH64 (sys.copy)', () => {
      const d = sys.openat(sys.AT_FDCWD, dir, sys.O_RDONLY | sys.O_DIRECTORY, 0);
      sys.unlinkat(d, 'copy', 0);
      io[IO.FLAGS] = 2;
      const rc = sys.copy(d, 'data', d, 'copy', io);
      sys.close(d);
      if (rc !== 0) throw new Error(`copy failed: ${rc}`);
      return io[IO.HASH_HI].toString(16).padStart(8, '0') + io[IO.HASH_LO].toString(16).padStart(8, '0');
    }),
  ];
  console.log(`hash throughput on a ${sizeMiB} MiB file in ${dir} (${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version})`);
  for (const r of rows) console.log(`${r.label.padEnd(46)} ${r.mbps.toFixed(0).padStart(7)} MB/s  ${r.s.toFixed(2).padStart(6)} s${r.out ? `  ${r.out}` : ''}`);
  const hashes = new Set(rows.map((r) => r.out).filter(Boolean));
  console.log(hashes.size === 1 ? 'all hashes agree' : `HASHES DIFFER: ${[...hashes].join(' ')}`);
  if (hashes.size !== 1) process.exitCode = 1;
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
