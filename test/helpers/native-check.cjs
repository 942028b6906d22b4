// Loads one build of the native module and checks the calls native/glibc-compat.h routes
// (fstatat, fstat, mknodat) and a scan against Node.js's own fs (libuv's statx: another path
// into the kernel). Plain CommonJS, so that any Node.js runs it, an arm64 one under qemu too.
//   node test/helpers/native-check.cjs MODULE.node DIR
// Prints "ok <arch> <checks>" and exits 0, or prints what differs and exits 1.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const [file, dir] = process.argv.slice(2);
const m = require(path.resolve(file));
const bad = [];
let checks = 0;
function same(what, got, want) {
  checks++;
  if (got !== want) bad.push(`${what}: ${got} != ${want}`);
}

const ST = { MODE: 0, UID: 1, GID: 2, NLINK: 3, SIZE: 4, MTIME: 5, MTIME_NS: 6, INO: 7, RDEV: 9 };
function compare(what, out, st) {
  same(`${what} mode`, out[ST.MODE], Number(st.mode));
  same(`${what} uid`, out[ST.UID], Number(st.uid));
  same(`${what} gid`, out[ST.GID], Number(st.gid));
  same(`${what} nlink`, out[ST.NLINK], Number(st.nlink));
  same(`${what} size`, out[ST.SIZE], Number(st.size));
  same(`${what} ino`, out[ST.INO], Number(st.ino));
  same(`${what} rdev`, out[ST.RDEV], Number(st.rdev));
  same(`${what} mtime`, out[ST.MTIME] * 1e9 + out[ST.MTIME_NS], Number(st.mtimeNs));
}

fs.writeFileSync(path.join(dir, 'file'), 'x'.repeat(12345));
fs.linkSync(path.join(dir, 'file'), path.join(dir, 'link'));
fs.utimesSync(path.join(dir, 'file'), 1_000_000_000.123456789, 1_234_567_890.987654321);
fs.symlinkSync('file', path.join(dir, 'sym'));
const dirfd = m.openat(m.AT_FDCWD, dir, m.O_RDONLY | m.O_DIRECTORY, 0);
if (dirfd < 0) throw new Error(`openat ${dir}: ${dirfd}`);

const out = new Float64Array(m.STAT_FIELDS);
for (const name of ['file', 'sym', '.']) {
  same(`fstatat ${name}`, m.fstatat(dirfd, name, out, 1), 0);
  compare(`fstatat ${name}`, out, fs.lstatSync(path.join(dir, name), { bigint: true }));
}
same('fstatat following sym', m.fstatat(dirfd, 'sym', out, 0), 0);
compare('fstatat following sym', out, fs.statSync(path.join(dir, 'file'), { bigint: true }));
same('fstatat of a missing name', m.fstatat(dirfd, 'missing', out, 1), -2); // -ENOENT

const fd = fs.openSync(path.join(dir, 'file'), 'r');
same('fstat', m.fstat(fd, out), 0);
compare('fstat', out, fs.fstatSync(fd, { bigint: true }));
fs.closeSync(fd);

same('mknodat fifo', m.mknodat(dirfd, 'fifo', 0o10640, 0), 0);
const fifo = fs.lstatSync(path.join(dir, 'fifo'));
same('mknodat fifo is a FIFO', fifo.isFIFO(), true);
same('mknodat fifo mode', fifo.mode & 0o777, 0o640 & ~process.umask());
if (process.getuid() === 0) {
  const rdev = (1 << 8) | 3; // 1:3, /dev/null's numbers (makedev for majors and minors < 256)
  same('mknodat char device', m.mknodat(dirfd, 'null', 0o20600, rdev), 0);
  const dev = fs.lstatSync(path.join(dir, 'null'), { bigint: true });
  same('mknodat char device is one', fs.lstatSync(path.join(dir, 'null')).isCharacterDevice(), true);
  same('mknodat char device rdev', Number(dev.rdev), rdev);
}
same('mknodat over an existing name', m.mknodat(dirfd, 'fifo', 0o10600, 0), -17); // -EEXIST

const scan = m.scandir(dirfd);
same('scandir', Buffer.isBuffer(scan), true);
same('xxh64', m.xxh64(Buffer.from('abc')).join(), '1153182965,2910259609'); // 0x44bc2cf5ad770999
m.close(dirfd);

if (bad.length) {
  console.log(bad.join('\n'));
  process.exit(1);
}
console.log(`ok ${process.arch} ${checks}`);
