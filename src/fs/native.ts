/**
 * The typed wrapper of the native seam (native/hardsnap.c). Every file-system call of the
 * engine goes through `src/fs`; tests inject faults by spying on the `sys` object here.
 */
import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

type PathArg = Buffer | string;

export interface NativeBinding {
  fstatat(dirfd: number, name: PathArg, out: Float64Array, nofollow: number): number;
  fstat(fd: number, out: Float64Array): number;
  /** whether the mount table changed since `fd` (/proc/self/mountinfo) was opened: 1, 0, or -errno */
  mountsChanged(fd: number): number;
  /**
   * A directory's entries, stat-ed, sorted by name bytes (records: src/fs/entry.ts parseScan);
   * xflags: whose extended attributes to read with the stat (SCAN_XATTR); skip: names (u16
   * length + bytes each) not to stat, whose records carry only the name and err SCAN_SKIPPED
   */
  scandir(fd: number, xflags?: number, ctimeMin?: number, skip?: Buffer): Buffer | number;
  openat(dirfd: number, name: PathArg, flags: number, mode: number): number;
  openat2(dirfd: number, path: PathArg, flags: number, mode: number, resolve: number): number;
  close(fd: number): number;
  mkdirat(dirfd: number, name: PathArg, mode: number): number;
  /** flags: AT_EMPTY_PATH links the inode an O_PATH descriptor olddirfd holds (oldname '') */
  linkat(olddirfd: number, oldname: PathArg, newdirfd: number, newname: PathArg, flags?: number): number;
  /**
   * Links names from one directory into another, each checked after the link against what was
   * recorded (packed by src/apply/link-records.ts): results 0 (inos: the inode), -errno, or a
   * drift mask (DRIFT) with the link removed again
   */
  linkBatch(olddirfd: number, newdirfd: number, packed: Buffer, results: Int32Array, inos: Float64Array): number;
  symlinkat(target: PathArg, dirfd: number, name: PathArg): number;
  mknodat(dirfd: number, name: PathArg, mode: number, rdev: number): number;
  unlinkat(dirfd: number, name: PathArg, flags: number): number;
  renameat(olddirfd: number, oldname: PathArg, newdirfd: number, newname: PathArg, flags: number): number;
  readlinkat(dirfd: number, name: PathArg): Buffer | number;
  /**
   * what: SETMETA bits; returns a staged failure (< 0), else the mask of attribute namespaces
   * the file system refused (XNS bits, 0 when none)
   */
  setmeta(
    dirfd: number,
    name: PathArg,
    fd: number,
    uid: number,
    gid: number,
    mode: number,
    mtimeSec: number,
    mtimeNsec: number,
    what: number,
    xattrs?: Buffer | null,
  ): number;
  /** the canonical attributes of dirfd/name (not followed), or of fd when fd >= 0; empty when none */
  getxattrs(dirfd: number, name: PathArg, fd?: number): Buffer | number;
  /** removes one attribute of dirfd/name (not followed), or of fd when fd >= 0 */
  removexattrAt(dirfd: number, name: PathArg, fd: number, xattrName: PathArg): number;
  syncfs(fd: number): number;
  /** fstatfs: out[0] f_type, out[1..2] f_fsid's words, out[3] f_files, out[4] f_ffree */
  statfs(fd: number, out: Float64Array): number;
  fsync(fd: number): number;
  raiseNofile(): number;
  /** io[IO.FLAGS]: COPY bits; xattrs: the canonical attributes to give the copy (COPY.XATTRS) */
  copy(srcdirfd: number, srcname: PathArg, dstdirfd: number, dstname: PathArg, io: Float64Array, xattrs?: Buffer | null): number;
  hashat(dirfd: number, name: PathArg, io: Float64Array): number;
  /** hashat on the pool; io must not be shared with another job in flight */
  hashatAsync(dirfd: number, name: PathArg, io: Float64Array): Promise<number> | number;
  /**
   * Byte comparison of srcdirfd/srcname (O_NOFOLLOW, O_NOATIME where permitted) with the spool
   * file rel below rootfd (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS): 1 same, 0 different,
   * -errno when one cannot be opened or read
   */
  sameContent(srcdirfd: number, srcname: PathArg, rootfd: number, rel: PathArg): number;
  /** sameContent on the pool */
  sameContentAsync(srcdirfd: number, srcname: PathArg, rootfd: number, rel: PathArg): Promise<number> | number;
  /** linkBatch on the libuv thread pool: many spool operations in flight (NFS latency) */
  linkBatchAsync(olddirfd: number, newdirfd: number, packed: Buffer, results: Int32Array, inos: Float64Array): Promise<number> | number;
  /** copy on the libuv thread pool; io must not be shared with another job in flight */
  copyAsync(srcdirfd: number, srcname: PathArg, dstdirfd: number, dstname: PathArg, io: Float64Array, xattrs: Buffer | null): Promise<number> | number;
  /**
   * Entering a directory, on the pool: with flags & 1 mkdirat(newdirfd, name, 0700), then open
   * it (when the mkdir succeeded or was not asked; newdirfd -1: neither); open prevdirfd/name
   * O_PATH (prevdirfd -1: not); with flags & 2 open srcdirfd/name (O_NOATIME where permitted)
   * and scan it. res: [mkdir 0 | -errno, new fd | -errno, previous fd | -errno, source fd |
   * -errno]; the caller owns and closes the descriptors. With flags & 2 it resolves to the
   * scan (as scandir() returns it) or -errno, else to 0.
   */
  spoolDirAsync(
    newdirfd: number,
    prevdirfd: number,
    name: PathArg,
    flags: number,
    res: Int32Array,
    srcdirfd: number,
    xflags: number,
    ctimeMin: number,
  ): Promise<Buffer | number> | number;
  /**
   * A new inode dstdirfd/dstname sharing the data of the spool file srcpath below srcdirfd
   * (FICLONE; the source only read, opened RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, O_NOFOLLOW),
   * with the metadata given (`what`: SETMETA bits). `check`: one link record
   * (src/apply/link-records.ts) the source's fstat must match, or null. Returns 0 (io:
   * IO.NEW_INO, IO.BYTES, IO.STAT of the source, IO.XREFUSED), a drift mask > 0 (DRIFT, nothing
   * made), or a staged failure (STAGE.CLONE: the file system cannot clone)
   */
  clone(
    srcdirfd: number,
    srcpath: PathArg,
    dstdirfd: number,
    dstname: PathArg,
    check: Buffer | null,
    io: Float64Array,
    uid: number,
    gid: number,
    mode: number,
    mtimeSec: number,
    mtimeNsec: number,
    what: number,
    xattrs?: Buffer | null,
  ): number;
  /** clone on the pool (check: an empty Buffer for none); io must not be shared with another job in flight */
  cloneAsync(
    srcdirfd: number,
    srcpath: PathArg,
    dstdirfd: number,
    dstname: PathArg,
    check: Buffer,
    io: Float64Array,
    uid: number,
    gid: number,
    mode: number,
    mtimeSec: number,
    mtimeNsec: number,
    what: number,
    xattrs: Buffer | null,
  ): Promise<number> | number;
  /** setmeta on the pool */
  setmetaAsync(
    dirfd: number,
    name: PathArg,
    fd: number,
    uid: number,
    gid: number,
    mode: number,
    mtimeSec: number,
    mtimeNsec: number,
    what: number,
    xattrs: Buffer | null,
  ): Promise<number> | number;
  xxh64(data: Buffer): [number, number];
  /** a manifest block framed: u32 rawLen | u32 packedLen | u32 crc32 | deflate-raw, or -errno */
  deflateFrame(raw: Buffer): Buffer | number;
  /** deflate-raw data inflated to exactly rawLen bytes, or -EINVAL (corrupt, other length) */
  inflateRaw(packed: Buffer, rawLen: number): Buffer | number;
  AT_FDCWD: number;
  AT_REMOVEDIR: number;
  AT_EMPTY_PATH: number;
  AT_SYMLINK_FOLLOW: number;
  O_PATH: number;
  O_DIRECTORY: number;
  O_NOFOLLOW: number;
  O_NOATIME: number;
  O_RDONLY: number;
  O_WRONLY: number;
  O_CREAT: number;
  O_EXCL: number;
  O_NONBLOCK: number;
  O_TRUNC: number;
  RESOLVE_BENEATH: number;
  RESOLVE_NO_SYMLINKS: number;
  RESOLVE_NO_MAGICLINKS: number;
  RESOLVE_NO_XDEV: number;
  RENAME_NOREPLACE: number;
  RENAME_EXCHANGE: number;
  STAT_FIELDS: number;
  IO_FIELDS: number;
  REC_HEAD: number;
  /** the err of a scandir record whose name was in its skip list */
  SCAN_SKIPPED: number;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

/**
 * The native module as node-gyp-build finds it, as the install script did: a build of this
 * checkout or install (build/Release, build/Debug), else the package's prebuilt one for this
 * machine (prebuilds/linux-x64, linux-arm64: scripts/prebuild.sh).
 */
function load(): NativeBinding {
  const root = path.join(here, '..', '..');
  const rebuild =
    'build it with `npm rebuild -g --allow-scripts=hardsnap hardsnap` (python3, make and a C compiler; in a clone: `npm install`; docs/INSTALL.md)';
  let file: string;
  try {
    file = (require('node-gyp-build') as { resolve(dir: string): string }).resolve(root);
  } catch (err) {
    // node-gyp-build's message names the machine: "No native build was found for platform=..."
    throw new Error(`hardsnap's native module was not built, and no prebuilt one fits this machine (${firstLine(err)}): ${rebuild}`);
  }
  try {
    return require(file) as NativeBinding;
  } catch (err) {
    throw new Error(`hardsnap's native module ${file} does not load (${firstLine(err)}): ${rebuild}`);
  }
}

function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err)
    .split('\n')[0]!
    .trim();
}

/** The raw binding. Tests replace its methods with vi.spyOn to inject faults. */
export const sys: NativeBinding = { ...load() }; // a plain object: the addon's own properties cannot be spied on

/** Indexes into the Float64Array filled by fstatat/fstat and into copy()'s io array. */
export const ST = {
  MODE: 0,
  UID: 1,
  GID: 2,
  NLINK: 3,
  SIZE: 4,
  MTIME: 5,
  MTIME_NS: 6,
  INO: 7,
  DEV: 8,
  RDEV: 9,
  BLOCKS: 10,
  CTIME: 11,
  CTIME_NS: 12,
  ATIME: 13,
  ATIME_NS: 14,
} as const;
export const IO = {
  FLAGS: 0,
  HASH_HI: 1,
  HASH_LO: 2,
  BYTES: 3,
  CHANGED: 4,
  NEW_INO: 5,
  STAT: 6,
  XREFUSED: 21,
  XCHANGED: 22,
  META: 23,
  WITHHELD: 28,
  KEPT: 29,
} as const;
/** copy()'s io[IO.FLAGS] bits */
export const COPY = {
  /** give the copy the source's owner */
  OWNER: 1,
  /** give the copy the source's mode and mtime */
  MODE_TIMES: 2,
  /** give the copy the attributes passed (after the owner, before the mode and mtime) */
  XATTRS: 4,
  /** and remove any other (inherited from a default ACL) */
  XATTRS_EXACT: 8,
  /** check that the source still has the attributes passed (io[IO.XCHANGED]) */
  XATTRS_VERIFY: 16,
  /** the owner, group, mode, mtime and its ns to give (OWNER, MODE_TIMES) are io[IO.META..+4], not the source's */
  META_GIVEN: 32,
  /**
   * made without a name (O_TMPFILE) and linked in once complete: no one who can write the
   * directory opens it half made. Where the file system has no O_TMPFILE it is made under its
   * name, and when it is given to another user its set-id bits and file capability are withheld
   * (io[IO.WITHHELD] = 1): that user could write it before they were set
   */
  UNNAMED: 64,
  /** keep an O_PATH descriptor of the copy made: io[IO.KEPT] (-errno when none; the caller closes it) */
  KEEP: 128,
} as const;
/**
 * setmeta()'s `what` bits. By name (fd < 0), the entry is opened once without following it and
 * changed through that descriptor; FRESH: it must be owned by this process's user and have one
 * name (an entry it has just made, not yet given its owner) and be of the type `expectType()`
 * (src/fs/entry.ts) adds; else nothing is changed (META_STAGE.ENTRY, ESTALE).
 */
export const SETMETA = { OWNER: 1, MODE: 2, TIMES: 4, XATTRS: 8, XATTRS_EXACT: 16, FRESH: 32 } as const;
/**
 * scandir()'s xflags: whose extended attributes are read with the stat; of those, only entries
 * whose ctime (seconds) is at or after ctimeMin (an older one means attributes unchanged since
 * the previous scan: its record's, when it has the same ctime; plan-dir.ts attributesKnown)
 */
export const SCAN_XATTR = {
  /** directories, symlinks and special files */
  OTHER: 1,
  /** regular files */
  FILES: 2,
} as const;
/**
 * scandir()'s xflags bit for a directory on a file system where each stat is a network round
 * trip (NFS, FUSE, ...: thread-pool.ts isRemoteFsType): its entries are stat-ed by several
 * threads at once (native/hardsnap.c pscan), the same records in the same order.
 */
export const SCAN_PARALLEL = 4;
/** the namespace bits of setmeta's and copy's refusal masks */
export const XNS = { user: 1, trusted: 2, security: 4, system: 8, other: 16 } as const;
/** the namespaces in a refusal mask */
export function refusedNamespaces(mask: number): string[] {
  return (Object.keys(XNS) as (keyof typeof XNS)[]).filter((k) => mask & XNS[k]);
}
/** linkBatch()'s drift mask bits: what the linked inode showed other than recorded */
export const DRIFT = { TYPE: 1, MODE: 2, OWNER: 4, SIZE: 8, MTIME: 16, UNSTATABLE: 32, REPLACED: 64, CHANGED: 128 } as const;
/** Failure stages of copy(), hashat() and clone() (CLONE: the FICLONE ioctl itself). */
export const STAGE = { OPEN_SRC: 1, NOT_REG: 2, OPEN_DST: 3, READ: 4, WRITE: 5, META: 6, CLONE: 7 } as const;
/** Failure stages of setmeta(). */
export const META_STAGE = { CHOWN: 1, CHMOD: 2, TIMES: 3, XATTRS: 4, ENTRY: 5 } as const;

const errnoNames = new Map<number, string>();
for (const [k, v] of Object.entries(osConstants.errno)) if (!errnoNames.has(v)) errnoNames.set(v, k);

/** 'ENOENT' for -2 (or 2). */
export function errnoName(rc: number): string {
  const n = Math.abs(rc) & 0xffff;
  return errnoNames.get(n) ?? `E${n}`;
}

/** Splits a copy()/hashat()/setmeta() failure into its stage and errno name. */
export function splitStaged(rc: number): { stage: number; code: string } {
  const v = -rc;
  return { stage: v >>> 16, code: errnoName(v & 0xffff) };
}

/** An Error shaped like node:fs's (code, errno, syscall, path). */
export class SysError extends Error {
  readonly code: string;
  readonly errno: number;
  readonly syscall: string;
  readonly path?: string;
  constructor(rc: number, syscall: string, where?: string) {
    const code = errnoName(rc);
    super(`${code}: ${syscall}${where ? ` '${where}'` : ''}`);
    this.code = code;
    this.errno = -(Math.abs(rc) & 0xffff);
    this.syscall = syscall;
    this.path = where;
  }
}

/** Throws a SysError when rc < 0, otherwise returns rc. */
export function check(rc: number, syscall: string, where?: string): number {
  if (rc < 0) throw new SysError(rc, syscall, where);
  return rc;
}

/** 4 hex digits of every 16-bit value, made on first use (Number#toString(16) was 7x slower). */
let HEX4: string[] | null = null;

/** An XXH64 as 16 hex digits, from its high and low 32-bit words (one per manifest entry read). */
export function hashHex(hi: number, lo: number): string {
  const t = (HEX4 ??= Array.from({ length: 65536 }, (_, i) => i.toString(16).padStart(4, '0')));
  return t[hi >>> 16]! + t[hi & 0xffff]! + t[lo >>> 16]! + t[lo & 0xffff]!;
}

/** Digit values of '0'-'9', 'a'-'f', 'A'-'F' by char code; -1 elsewhere. */
const HEX_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < 16; i++) HEX_VALUE['0123456789abcdef'.charCodeAt(i)] = HEX_VALUE['0123456789ABCDEF'.charCodeAt(i)] = i;

/** 8 hex digits of `hex` from `at` as a 32-bit word (the inverse of hashHex, a half at a time); -1 when not hex. */
export function hexWord(hex: string, at: number): number {
  let v = 0;
  for (let i = at; i < at + 8; i++) {
    const d = HEX_VALUE[hex.charCodeAt(i)] ?? -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** A file system's identity and type, by an open descriptor on it (fstatfs). */
export interface FsIdentity {
  /** statfs f_type */
  type: number;
  /** statfs f_fsid as "hex:hex" (derived from the UUID on ext4, XFS, btrfs: stable across reboots) */
  fsid: string;
  /** inodes in use (f_files - f_ffree), an estimate of the entries below a root */
  inodesUsed: number;
}

export function fsIdentity(fd: number): FsIdentity | null {
  const out = new Float64Array(5);
  if (sys.statfs(fd, out) < 0) return null;
  return { type: out[0]!, fsid: `${out[1]!.toString(16)}:${out[2]!.toString(16)}`, inodesUsed: Math.max(0, out[3]! - out[4]!) };
}
