// The directory calls that run on the libuv pool (src/apply/build-tree.ts keeps many spool
// directories in flight with them): same results as their synchronous counterparts.
import * as fs from 'node:fs';
import path from 'node:path';
import { sys } from '../src/fs/native.js';
import { describe, expect, test } from './helpers/fixture.js';

const O_DIR = sys.O_RDONLY | sys.O_DIRECTORY | sys.O_NOFOLLOW;

describe('spoolDirAsync and setmetaAsync', () => {
  test('makes the new directory and opens it and the previous one; says EEXIST without opening; -EBADF for what was not asked', async ({ tmp }) => {
    fs.mkdirSync(path.join(tmp, 'new'));
    fs.mkdirSync(path.join(tmp, 'prev/d'), { recursive: true });
    const nd = sys.openat(sys.AT_FDCWD, path.join(tmp, 'new'), O_DIR, 0);
    const pd = sys.openat(sys.AT_FDCWD, path.join(tmp, 'prev'), O_DIR, 0);
    const res = new Int32Array(4);
    expect(await sys.spoolDirAsync(nd, pd, Buffer.from('d'), 1, res, -1, 0, 0)).toBe(0);
    expect(res[0]).toBe(0);
    expect(res[1]).toBeGreaterThan(2);
    expect(res[2]).toBeGreaterThan(2);
    const st = new Float64Array(sys.STAT_FIELDS);
    sys.fstat(res[1]!, st);
    expect(st[7]).toBe(fs.statSync(path.join(tmp, 'new/d')).ino);
    expect(st[0]! & 0o7777).toBe(0o700);
    sys.fstat(res[2]!, st);
    expect(st[7]).toBe(fs.statSync(path.join(tmp, 'prev/d')).ino);
    sys.close(res[1]!);
    sys.close(res[2]!);
    const again = new Int32Array(4);
    await sys.spoolDirAsync(nd, -1, 'd', 1, again, -1, 0, 0);
    expect([...again]).toEqual([-17, -17, -9, -9]);
    const missingPrev = new Int32Array(4);
    await sys.spoolDirAsync(-1, pd, 'nothing', 1, missingPrev, -1, 0, 0);
    expect([...missingPrev]).toEqual([0, -9, -2, -9]);
    // the results array must hold four slots
    expect(await sys.spoolDirAsync(nd, -1, 'e', 1, new Int32Array(3), -1, 0, 0)).toBe(-22);
    sys.close(nd);
    sys.close(pd);
  });

  test('with flags & 2 it opens and scans the source directory too: the same records as scandir(), or the errno', async ({ tmp }) => {
    fs.mkdirSync(path.join(tmp, 'new'));
    fs.mkdirSync(path.join(tmp, 'src/d/sub'), { recursive: true });
    fs.writeFileSync(path.join(tmp, 'src/d/b'), 'bb');
    fs.writeFileSync(Buffer.concat([Buffer.from(path.join(tmp, 'src/d/')), Buffer.from([0xff])]), 'x');
    fs.symlinkSync('target', path.join(tmp, 'src/d/a'));
    fs.writeFileSync(path.join(tmp, 'src/f'), '');
    const nd = sys.openat(sys.AT_FDCWD, path.join(tmp, 'new'), O_DIR, 0);
    const sd = sys.openat(sys.AT_FDCWD, path.join(tmp, 'src'), O_DIR, 0);
    const res = new Int32Array(4);
    const scan = await sys.spoolDirAsync(nd, -1, 'd', 1 | 2, res, sd, 0, 0);
    expect(Buffer.isBuffer(scan)).toBe(true);
    expect(res[3]).toBeGreaterThan(2);
    const st = new Float64Array(sys.STAT_FIELDS);
    sys.fstat(res[3]!, st);
    expect(st[7]).toBe(fs.statSync(path.join(tmp, 'src/d')).ino);
    const sync = sys.scandir(res[3]!);
    expect(Buffer.isBuffer(sync) && (scan as Buffer).equals(sync)).toBe(true);
    sys.close(res[1]!);
    sys.close(res[3]!);
    // a file, a missing name: the open's errno both as the result and in res[3]; nothing opened
    for (const [name, errno] of [
      ['f', -20],
      ['gone', -2],
    ] as const) {
      const r = new Int32Array(4);
      expect(await sys.spoolDirAsync(-1, -1, name, 2, r, sd, 0, 0)).toBe(errno);
      expect([...r]).toEqual([0, -9, -9, errno]);
    }
    sys.close(nd);
    sys.close(sd);
  });

  test('setmetaAsync sets mode and nanosecond mtime on a descriptor, and says which step failed', async ({ tmp }) => {
    fs.mkdirSync(path.join(tmp, 'd'), { mode: 0o700 });
    const fd = sys.openat(sys.AT_FDCWD, path.join(tmp, 'd'), O_DIR, 0);
    expect(await sys.setmetaAsync(-1, '', fd, 0, 0, 0o751, 1_600_000_000, 123_456_789, 2 | 4, null)).toBe(0);
    const st = fs.statSync(path.join(tmp, 'd'), { bigint: true });
    expect(Number(st.mode & 0o7777n)).toBe(0o751);
    expect(st.mtimeNs).toBe(1_600_000_000_123_456_789n);
    sys.close(fd);
    // a closed descriptor: the chmod step (2) fails with EBADF
    expect(await sys.setmetaAsync(-1, '', fd, 0, 0, 0o755, 0, 0, 2, null)).toBe(-((2 << 16) | 9));
  });

  test("hashatAsync gives hashat's results; sameContent(Async) says same, different, or -errno, never following a symlink in the spool", async ({ tmp }) => {
    fs.mkdirSync(path.join(tmp, 'src'));
    fs.mkdirSync(path.join(tmp, 'gen/d'), { recursive: true });
    const big = Buffer.alloc(600 * 1024, 7); // across the 256 KiB compare chunk
    fs.writeFileSync(path.join(tmp, 'src/a'), big);
    fs.writeFileSync(path.join(tmp, 'gen/d/same'), big);
    const late = Buffer.from(big);
    late[late.length - 1] = 8; // differs in the last chunk only
    fs.writeFileSync(path.join(tmp, 'gen/d/late'), late);
    fs.writeFileSync(path.join(tmp, 'gen/d/short'), big.subarray(0, 1000));
    fs.symlinkSync(path.join(tmp, 'gen/d/same'), path.join(tmp, 'gen/d/link'));
    fs.symlinkSync('d', path.join(tmp, 'gen/viadir'));
    const sd = sys.openat(sys.AT_FDCWD, path.join(tmp, 'src'), O_DIR, 0);
    const gd = sys.openat(sys.AT_FDCWD, path.join(tmp, 'gen'), O_DIR, 0);
    const a = new Float64Array(sys.IO_FIELDS);
    const b = new Float64Array(sys.IO_FIELDS);
    expect(sys.hashat(sd, 'a', a)).toBe(0);
    expect(await sys.hashatAsync(sd, 'a', b)).toBe(0);
    expect([...b]).toEqual([...a]);
    expect(await sys.hashatAsync(sd, 'missing', b)).toBeLessThan(0);
    const cases: [string, number][] = [
      ['d/same', 1],
      ['d/late', 0],
      ['d/short', 0],
      ['d/link', -40],
      ['viadir/same', -40],
      ['../src/a', -18],
      ['d/none', -2],
    ];
    for (const [rel, want] of cases) {
      expect(sys.sameContent(sd, 'a', gd, rel), rel).toBe(want);
      expect(await sys.sameContentAsync(sd, 'a', gd, rel), rel).toBe(want);
    }
    expect(sys.sameContent(sd, 'missing', gd, 'd/same')).toBe(-2);
    sys.close(sd);
    sys.close(gd);
  });

  test('a pool job with a wrong argument is refused with -errno before anything is queued', () => {
    const io = new Float64Array(sys.IO_FIELDS);
    const res = new Int32Array(4);
    const bad = sys as unknown as Record<string, (...a: unknown[]) => unknown>;
    expect(bad.hashatAsync!(-1, 'a\0b', io)).toBe(-22);
    expect(bad.hashatAsync!(-1, 'x'.repeat(5000), io)).toBe(-36);
    expect(bad.hashatAsync!(-1, 'a', new Float64Array(2))).toBe(-22);
    expect(bad.copyAsync!(-1, 'a', 'not a descriptor', 'b', io)).toBe(-22);
    expect(bad.linkBatchAsync!(-1, -1, 'not a buffer', res)).toBe(-22);
    expect(bad.linkBatchAsync!(-1, -1, Buffer.alloc(0), new Float64Array(4))).toBe(-22);
    expect(bad.setmetaAsync!(-1, '', -1, 0, 0, 0, 0, 0, 0)).toBe(-22); // one argument short
    expect(bad.sameContentAsync!(-1, 'a', -1, Buffer.from([0x61, 0, 0x62]))).toBe(-22);
  });
});
