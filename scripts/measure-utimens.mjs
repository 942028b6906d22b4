// Per-call cost of setting an mtime: Node's fs.utimesSync (float seconds: loses the last
// nanosecond digits) vs the native utimensat (exact). Prints both and the precision each keeps.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const sys = createRequire(import.meta.url)('../build/Release/hardsnap.node');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hs-utimens-'));
const N = 20000;
const names = Array.from({ length: N }, (_, i) => `f${i}`);
for (const n of names) fs.writeFileSync(path.join(dir, n), '');
const dfd = sys.openat(sys.AT_FDCWD, dir, sys.O_RDONLY | sys.O_DIRECTORY, 0);
const sec = 1_700_000_000, nsec = 123_456_789;

let t = process.hrtime.bigint();
for (const n of names) fs.utimesSync(path.join(dir, n), sec + nsec / 1e9, sec + nsec / 1e9);
const node = Number(process.hrtime.bigint() - t) / N;
const nodeNs = fs.statSync(path.join(dir, names[0]), { bigint: true }).mtimeNs % 1_000_000_000n;

t = process.hrtime.bigint();
for (const n of names) sys.setmeta(dfd, n, -1, 0, 0, 0, sec, nsec, 4);
const native = Number(process.hrtime.bigint() - t) / N;
const nativeNs = fs.statSync(path.join(dir, names[0]), { bigint: true }).mtimeNs % 1_000_000_000n;

console.log(`fs.utimesSync (path):        ${node.toFixed(0)} ns/call, keeps ...${nodeNs} ns (wanted ${nsec})`);
console.log(`native utimensat (dirfd):    ${native.toFixed(0)} ns/call, keeps ...${nativeNs} ns`);
fs.rmSync(dir, { recursive: true });
