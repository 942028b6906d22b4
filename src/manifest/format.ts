/**
 * Manifest format version 2 (docs/FORMAT.md is the reference; keep both in step). Version 1
 * is the same without the header's `scan` and the root's INCOMPLETE flag; both are read.
 *
 *   header   "HSNAPMF1" | u32 jsonLen | JSON {format, part, generation, created, tool, scan}
 *   blocks   one per directory: u32 rawLen | u32 packedLen | u32 crc32(packed) | deflate-raw(raw)
 *            raw = u32 dirPathLen | dirPath | u32 count | entries (sorted by name bytes)
 *   index    a block of the same framing whose raw payload is
 *            root entry | u32 dirCount | per dir: u32 pathLen | path | f64 offset | u32 length
 *   trailer  f64 indexOffset | u32 indexLength | u32 0 | "HSNAPEND"
 *
 * An entry: u8 type | u8 flags | u16 nameLen | u32 mode | u32 uid | u32 gid | f64 size |
 * f64 mtimeSec | u32 mtimeNsec | u32 linkGroup | f64 ino | f64 rdev | u16 targetLen |
 * [u32 hashHi | u32 hashLo when flags & HAS_HASH] | name | target.
 * Integers are little-endian; f64 holds integers exactly up to 2^53.
 */
import { crc32 } from 'node:zlib';
import { CODE_TYPE, TYPE_CODE, type Meta } from '../fs/entry.js';
import { hashHex, hexWord, sys } from '../fs/native.js';

export const MAGIC = Buffer.from('HSNAPMF1');
export const END_MAGIC = Buffer.from('HSNAPEND');
export const FORMAT_VERSION = 2;
export const TRAILER_LEN = 24;

export const FLAG = {
  /** the content hash is recorded */
  HAS_HASH: 1,
  /** the file changed while it was copied: never link it as unchanged */
  UNSTABLE: 2,
  /** recorded but not present in the generation (a device when not root) */
  ABSENT: 4,
  /** (format 2, on the root entry only) some entries could not be backed up in this generation */
  INCOMPLETE: 8,
} as const;

export interface ManifestEntry extends Meta {
  name: Buffer;
  flags: number;
  /** 0 = not hard-linked in the source; else an id shared by the names of one source inode */
  linkGroup: number;
  /** the generation file's own inode number */
  ino: number;
  /** XXH64 of the content, 16 hex digits, or null */
  hash: string | null;
}

export class ManifestFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ManifestFormatError';
  }
}

/** Where each fixed field of an entry starts (the layout above); the name follows at FIXED (+ 8 with a hash). */
const enum At {
  type = 0, flags = 1, nameLen = 2, mode = 4, uid = 8, gid = 12, size = 16, mtimeSec = 24, mtimeNsec = 32,
  linkGroup = 36, ino = 40, rdev = 48, targetLen = 56,
}
const FIXED = 58;

/** A growable byte buffer for encoding. */
export class ByteSink {
  buf: Buffer;
  len = 0;
  constructor(size = 1 << 16) {
    this.buf = Buffer.allocUnsafe(size);
  }
  reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }
  u32(v: number): void {
    this.reserve(4);
    this.buf.writeUInt32LE(v >>> 0, this.len);
    this.len += 4;
  }
  f64(v: number): void {
    this.reserve(8);
    this.buf.writeDoubleLE(v, this.len);
    this.len += 8;
  }
  bytes(b: Buffer): void {
    this.reserve(b.length);
    b.copy(this.buf, this.len);
    this.len += b.length;
  }
  view(): Buffer {
    return this.buf.subarray(0, this.len);
  }
  reset(): void {
    this.len = 0;
  }
}

export function encodeEntry(s: ByteSink, e: ManifestEntry): void {
  const target = e.target ?? EMPTY;
  const hasHash = e.hash !== null;
  s.reserve(FIXED + 8 + e.name.length + target.length);
  const b = s.buf;
  let o = s.len;
  b[o + At.type] = TYPE_CODE[e.type];
  b[o + At.flags] = (e.flags & ~FLAG.HAS_HASH) | (hasHash ? FLAG.HAS_HASH : 0);
  b.writeUInt16LE(e.name.length, o + At.nameLen);
  b.writeUInt32LE(e.mode, o + At.mode);
  b.writeUInt32LE(e.uid >>> 0, o + At.uid);
  b.writeUInt32LE(e.gid >>> 0, o + At.gid);
  b.writeDoubleLE(e.size, o + At.size);
  b.writeDoubleLE(e.mtimeSec, o + At.mtimeSec);
  b.writeUInt32LE(e.mtimeNsec, o + At.mtimeNsec);
  b.writeUInt32LE(e.linkGroup, o + At.linkGroup);
  b.writeDoubleLE(e.ino, o + At.ino);
  b.writeDoubleLE(e.rdev, o + At.rdev);
  b.writeUInt16LE(target.length, o + At.targetLen);
  o += FIXED;
  if (hasHash) {
    const hi = hexWord(e.hash!, 0);
    const lo = hexWord(e.hash!, 8);
    if (e.hash!.length !== 16 || hi < 0 || lo < 0) throw new ManifestFormatError(`not a content hash: ${e.hash}`);
    b.writeUInt32LE(hi, o);
    b.writeUInt32LE(lo, o + 4);
    o += 8;
  }
  e.name.copy(b, o);
  o += e.name.length;
  target.copy(b, o);
  s.len = o + target.length;
}

const EMPTY = Buffer.alloc(0);

/**
 * An entry kept in its encoded bytes: a file linked unchanged is recorded exactly as the
 * previous manifest recorded it (RawDirBlock.unchangedFile says when), so its bytes are copied
 * rather than decoded and encoded again (most entries of a nightly run).
 */
export class EncodedEntry {
  constructor(readonly name: Buffer, readonly bytes: Buffer) {}
}

/** What a directory block is written from. */
export type BlockEntry = ManifestEntry | EncodedEntry;

export function encodeBlockEntry(s: ByteSink, e: BlockEntry): void {
  if (e instanceof EncodedEntry) s.bytes(e.bytes);
  else encodeEntry(s, e);
}

export function decodeEntry(b: Buffer, off: number): [ManifestEntry, number] {
  if (off + FIXED > b.length) throw new ManifestFormatError('entry runs past the end of its block');
  const type = CODE_TYPE[b[off + At.type]!];
  if (!type) throw new ManifestFormatError(`unknown entry type ${b[off + At.type]}`);
  const flags = b[off + At.flags]!;
  const nameLen = b.readUInt16LE(off + At.nameLen);
  const targetLen = b.readUInt16LE(off + At.targetLen);
  let o = off + FIXED;
  let hash: string | null = null;
  if (flags & FLAG.HAS_HASH) {
    hash = hashHex(b.readUInt32LE(o), b.readUInt32LE(o + 4));
    o += 8;
  }
  if (o + nameLen + targetLen > b.length) throw new ManifestFormatError('entry name runs past the end of its block');
  const name = Buffer.from(b.subarray(o, o + nameLen));
  o += nameLen;
  const target = type === 'symlink' ? Buffer.from(b.subarray(o, o + targetLen)) : null;
  o += targetLen;
  return [
    {
      type, flags: flags & ~FLAG.HAS_HASH, name, target, hash,
      mode: b.readUInt32LE(off + At.mode),
      uid: b.readUInt32LE(off + At.uid),
      gid: b.readUInt32LE(off + At.gid),
      size: b.readDoubleLE(off + At.size),
      mtimeSec: b.readDoubleLE(off + At.mtimeSec),
      mtimeNsec: b.readUInt32LE(off + At.mtimeNsec),
      linkGroup: b.readUInt32LE(off + At.linkGroup),
      ino: b.readDoubleLE(off + At.ino),
      rdev: b.readDoubleLE(off + At.rdev),
    },
    o,
  ];
}

/**
 * Frames a raw payload: u32 rawLen | u32 packedLen | u32 crc32 | deflate-raw (level 1). The
 * native module does it with one long-lived zlib stream: node:zlib's sync calls set a new stream
 * up for every block, which was most of the cost of a small block (the bytes are the same).
 */
export function frame(raw: Buffer): Buffer {
  const out = sys.deflateFrame(raw);
  if (typeof out === 'number') throw new ManifestFormatError(`block does not deflate (${out})`);
  return out;
}

/** The inverse of frame(); checks lengths and the checksum. */
export function unframe(framed: Buffer): Buffer {
  if (framed.length < 12) throw new ManifestFormatError('truncated block');
  const rawLen = framed.readUInt32LE(0);
  const packedLen = framed.readUInt32LE(4);
  if (framed.length !== 12 + packedLen) throw new ManifestFormatError('block length mismatch');
  const packed = framed.subarray(12);
  if (crc32(packed) !== framed.readUInt32LE(8)) throw new ManifestFormatError('block checksum mismatch');
  const raw = sys.inflateRaw(packed, rawLen);
  if (typeof raw === 'number') throw new ManifestFormatError('block does not inflate to its recorded length');
  return raw;
}

/** A directory block decoded whole (RawDirBlock checks its structure). */
export function decodeDirBlock(raw: Buffer): { dir: Buffer; entries: ManifestEntry[] } {
  const b = new RawDirBlock(raw);
  return { dir: Buffer.from(b.dir), entries: b.decodeAll() };
}

/**
 * A directory block left in its bytes: the entries' offsets, fixed fields read in place, an
 * entry decoded only when asked for. For readers that look at a few fields of many entries and
 * keep almost none of them (the content index reads every file's size, mtime and inode of
 * several generations; the walk links most files as they were recorded): a decoded entry is
 * two Buffers and an object. The constructor checks the block's whole structure.
 */
export class RawDirBlock {
  readonly dir: Buffer;
  /** where each entry starts; offsets[length] is where the last one ends */
  private readonly offsets: Uint32Array;

  constructor(private readonly raw: Buffer) {
    const pathLen = raw.readUInt32LE(0);
    if (4 + pathLen + 4 > raw.length) throw new ManifestFormatError('directory path runs past the end of its block');
    this.dir = raw.subarray(4, 4 + pathLen);
    let o = 4 + pathLen;
    const count = raw.readUInt32LE(o);
    o += 4;
    if (count > (raw.length - o) / FIXED) throw new ManifestFormatError('entry count runs past the end of its block');
    this.offsets = new Uint32Array(count + 1);
    for (let i = 0; i < count; i++) {
      if (o + FIXED > raw.length) throw new ManifestFormatError('entry runs past the end of its block');
      if (!CODE_TYPE[raw[o + At.type]!]) throw new ManifestFormatError(`unknown entry type ${raw[o + At.type]}`);
      this.offsets[i] = o;
      o += FIXED + (raw[o + At.flags]! & FLAG.HAS_HASH ? 8 : 0) + raw.readUInt16LE(o + At.nameLen) + raw.readUInt16LE(o + At.targetLen);
    }
    if (o !== raw.length) throw new ManifestFormatError(o > raw.length ? 'entry name runs past the end of its block' : 'trailing bytes in a directory block');
    this.offsets[count] = o;
  }

  get length(): number {
    return this.offsets.length - 1;
  }

  /** Entry i's name compared with `name` (bytes), as Buffer.compare(entry's, name). */
  compareName(i: number, name: Buffer): number {
    const o = this.offsets[i]!;
    const start = o + FIXED + (this.raw[o + At.flags]! & FLAG.HAS_HASH ? 8 : 0);
    return this.raw.compare(name, 0, name.length, start, start + this.raw.readUInt16LE(o + At.nameLen));
  }

  /**
   * Entry i's bytes when it records the regular file `e` (same name, already matched) exactly as
   * the builder would record a link of it: a file with nothing but a hash among its flags, no
   * link group, and e's mode, owner, size, mtime and device number. Else null.
   */
  unchangedFile(i: number, e: Meta): Buffer | null {
    const r = this.raw;
    const o = this.offsets[i]!;
    if (r[o + At.type] !== TYPE_CODE.file || (r[o + At.flags]! & ~FLAG.HAS_HASH) !== 0 || r.readUInt16LE(o + At.targetLen) !== 0) return null;
    if (r.readUInt32LE(o + At.mode) !== e.mode || r.readUInt32LE(o + At.uid) !== e.uid >>> 0 || r.readUInt32LE(o + At.gid) !== e.gid >>> 0) return null;
    if (r.readDoubleLE(o + At.size) !== e.size || r.readDoubleLE(o + At.mtimeSec) !== e.mtimeSec || r.readUInt32LE(o + At.mtimeNsec) !== e.mtimeNsec) return null;
    if (r.readUInt32LE(o + At.linkGroup) !== 0 || r.readDoubleLE(o + At.rdev) !== e.rdev) return null;
    return r.subarray(o, this.offsets[i + 1]!);
  }

  isFile(i: number): boolean {
    return this.raw[this.offsets[i]! + At.type] === TYPE_CODE.file;
  }

  /** the entry's flags, HAS_HASH included (decode() clears it: there, hash !== null says it) */
  flags(i: number): number {
    return this.raw[this.offsets[i]! + At.flags]!;
  }

  size(i: number): number {
    return this.raw.readDoubleLE(this.offsets[i]! + At.size);
  }

  mtimeSec(i: number): number {
    return this.raw.readDoubleLE(this.offsets[i]! + At.mtimeSec);
  }

  mtimeNsec(i: number): number {
    return this.raw.readUInt32LE(this.offsets[i]! + At.mtimeNsec);
  }

  ino(i: number): number {
    return this.raw.readDoubleLE(this.offsets[i]! + At.ino);
  }

  decode(i: number): ManifestEntry {
    return decodeEntry(this.raw, this.offsets[i]!)[0];
  }

  decodeAll(): ManifestEntry[] {
    const out: ManifestEntry[] = new Array(this.length);
    for (let i = 0; i < out.length; i++) out[i] = this.decode(i);
    return out;
  }
}
