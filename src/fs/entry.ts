/**
 * The metadata of one directory entry, as the scan reads it from the source and as the
 * manifest records it. Names are bytes.
 */
import { sys } from './native.js';
import { joinRel } from '../paths/escape.js';

export type EntryType = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'char' | 'block';

/** On-disk type codes of the manifest (docs/FORMAT.md). */
export const TYPE_CODE: Record<EntryType, number> = {
  file: 1,
  dir: 2,
  symlink: 3,
  fifo: 4,
  socket: 5,
  char: 6,
  block: 7,
};
export const CODE_TYPE: (EntryType | undefined)[] = [undefined, 'file', 'dir', 'symlink', 'fifo', 'socket', 'char', 'block'];

const S_IFMT = 0o170000;
export function typeOfMode(mode: number): EntryType | undefined {
  switch (mode & S_IFMT) {
    case 0o100000:
      return 'file';
    case 0o040000:
      return 'dir';
    case 0o120000:
      return 'symlink';
    case 0o010000:
      return 'fifo';
    case 0o140000:
      return 'socket';
    case 0o020000:
      return 'char';
    case 0o060000:
      return 'block';
    default:
      return undefined;
  }
}
export const MODE_BITS: Record<EntryType, number> = {
  file: 0o100000,
  dir: 0o040000,
  symlink: 0o120000,
  fifo: 0o010000,
  socket: 0o140000,
  char: 0o020000,
  block: 0o060000,
};

/** setmeta()'s `what` bits that require the entry it names to be of `type` (SETMETA.FRESH: one just made). */
export function expectType(type: EntryType): number {
  return (MODE_BITS[type] >>> 12) << 8;
}

/** What "unchanged" compares, and what restore puts back. */
export interface Meta {
  type: EntryType;
  /** permission bits (07777) */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeSec: number;
  mtimeNsec: number;
  rdev: number;
  /** symlink target bytes, null for other types */
  target: Buffer | null;
  /**
   * extended attributes and POSIX ACLs in their canonical form (src/fs/xattrs.ts), null when
   * there are none (or, for a scanned entry, when they were not read: see SourceEntry.xattrsRead)
   */
  xattrs: Buffer | null;
}

/** One entry of a source directory as the scan saw it. */
export interface SourceEntry extends Meta {
  name: Buffer;
  /** errno of lstat/readlink (ENOENT: vanished between readdir and lstat), 0 when fine */
  err: number;
  nlink: number;
  ino: number;
  dev: number;
  blocks: number;
  ctimeSec: number;
  ctimeNsec: number;
  /** whether `xattrs` was read (the scan reads them only where they may have changed) */
  xattrsRead: boolean;
  /** errno of reading the extended attributes (the entry is unreadable in this run), 0 when fine */
  xattrErr: number;
}

const XATTR_NOT_READ = 0xffffffff;

/**
 * A directory's entries by descriptor, sorted by name bytes, each stat-ed (sys.scandir,
 * decoded), or -errno. xflags (SCAN_XATTR) and ctimeMin: whose extended attributes come too.
 */
export function readDirAt(fd: number, xflags = 0, ctimeMin = 0): SourceEntry[] | number {
  const raw = sys.scandir(fd, xflags, ctimeMin);
  return typeof raw === 'number' ? raw : parseScan(raw);
}

/** Decodes the records of sys.scandir() (layout in native/hardsnap.c). */
export function parseScan(buf: Buffer): SourceEntry[] {
  const out: SourceEntry[] = [];
  const head = sys.REC_HEAD;
  let off = 0;
  while (off < buf.length) {
    const nameLen = buf.readUInt16LE(off);
    const targetLen = buf.readUInt16LE(off + 2);
    const err = buf.readInt32LE(off + 4);
    const rawMode = buf.readUInt32LE(off + 8);
    const xattrLen = buf.readUInt32LE(off + 88);
    const type = typeOfMode(rawMode);
    const nameStart = off + head;
    const name = buf.subarray(nameStart, nameStart + nameLen);
    const xStart = nameStart + nameLen + targetLen;
    const xattrsRead = xattrLen !== XATTR_NOT_READ;
    const xLen = xattrsRead ? xattrLen : 0;
    out.push({
      name,
      err: err !== 0 ? err : type === undefined ? -1 : 0,
      type: type ?? 'file',
      mode: rawMode & 0o7777,
      uid: buf.readUInt32LE(off + 12),
      gid: buf.readUInt32LE(off + 16),
      nlink: buf.readUInt32LE(off + 20),
      size: buf.readDoubleLE(off + 24),
      mtimeSec: buf.readDoubleLE(off + 32),
      mtimeNsec: buf.readUInt32LE(off + 40),
      ctimeNsec: buf.readUInt32LE(off + 44),
      ctimeSec: buf.readDoubleLE(off + 48),
      ino: buf.readDoubleLE(off + 56),
      dev: buf.readDoubleLE(off + 64),
      rdev: buf.readDoubleLE(off + 72),
      blocks: buf.readDoubleLE(off + 80),
      target: type === 'symlink' ? buf.subarray(nameStart + nameLen, nameStart + nameLen + targetLen) : null,
      xattrs: xLen ? buf.subarray(xStart, xStart + xLen) : null,
      xattrsRead,
      xattrErr: buf.readInt32LE(off + 92),
    });
    off = xStart + xLen;
  }
  return out;
}

/**
 * Same type, permission bits, owner, size, mtime to the nanosecond, device and target: the one
 * definition of "unchanged" (src/plan/decide.ts links an entry by it, with its extended
 * attributes compared apart: a scanned entry may not have read them; the manifest's byte-level
 * fast path, RawDirBlock.unchangedFile, is this rule narrowed, and test/manifest.test.ts holds it
 * to that).
 */
export function sameMeta(a: Meta, b: Meta): boolean {
  if (a.type !== b.type || a.mtimeSec !== b.mtimeSec || a.mtimeNsec !== b.mtimeNsec) return false;
  if (a.uid !== b.uid || a.gid !== b.gid) return false;
  switch (a.type) {
    case 'file':
      return a.size === b.size && a.mode === b.mode;
    case 'symlink':
      return a.target !== null && b.target !== null && a.target.equals(b.target);
    case 'char':
    case 'block':
      return a.rdev === b.rdev && a.mode === b.mode;
    default:
      return a.mode === b.mode;
  }
}

/**
 * sameMeta without a directory's mtime, which moves with its entries: for what compares those
 * entries one by one itself (the watch journal's audit, src/watch/audit.ts).
 */
export function sameMetaBesideEntries(a: Meta, b: Meta): boolean {
  if (a.type !== 'dir') return sameMeta(a, b);
  return b.type === 'dir' && a.mode === b.mode && a.uid === b.uid && a.gid === b.gid;
}

/**
 * The number of entries below the directory `fd` (not counting it), its subdirectories opened
 * beneath it without following symlinks; -errno when the directory itself cannot be read.
 * Unreadable subdirectories count as empty.
 */
export function countTreeAt(fd: number): number {
  let n = 0;
  let failed = 0;
  descendDirs(
    fd,
    Buffer.alloc(0),
    (dfd, rel) => {
      const entries = readDirAt(dfd);
      if (typeof entries === 'number') {
        if (!rel.length) failed = entries; // (the directory itself; one below counts as empty)
        return null;
      }
      n += entries.length;
      return entries.filter((e) => e.type === 'dir').map((e) => e.name);
    },
    (parent, name) => {
      const sub = sys.openat(parent, name, sys.O_RDONLY | sys.O_DIRECTORY | sys.O_NOFOLLOW, 0);
      return sub < 0 ? null : sub;
    },
  );
  return failed || n;
}

/**
 * Visits the directory `fd` (at `rel`) and every one below it, depth first: `visit` reads one
 * and returns the names of its subdirectories to enter (null: none); `open` opens one beneath its
 * parent (null: not entered, said or not by the caller). A stack of its own, one descriptor per
 * level open, and no recursion a tree thousands of levels deep could overflow (an attack: the
 * removal, verify and this count did). `fd` stays the caller's.
 */
export function descendDirs(
  fd: number,
  rel: Buffer,
  visit: (fd: number, rel: Buffer) => Buffer[] | null,
  open: (parent: number, name: Buffer, rel: Buffer) => number | null,
): void {
  const first = visit(fd, rel);
  if (!first) return;
  const stack: { fd: number; rel: Buffer; subdirs: Buffer[]; next: number }[] = [{ fd, rel, subdirs: first, next: 0 }];
  try {
    while (stack.length) {
      const f = stack[stack.length - 1]!;
      if (f.next >= f.subdirs.length) {
        if (stack.length > 1) sys.close(f.fd);
        stack.pop();
        continue;
      }
      const name = f.subdirs[f.next++]!;
      const path = joinRel(f.rel, name);
      const sub = open(f.fd, name, path);
      if (sub === null) continue;
      const below = visit(sub, path);
      if (below) stack.push({ fd: sub, rel: path, subdirs: below, next: 0 });
      else sys.close(sub);
    }
  } finally {
    for (const f of stack.slice(1)) sys.close(f.fd);
  }
}
