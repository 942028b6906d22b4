/**
 * Manifest format version 3 (docs/FORMAT.md is the reference; keep both in step). Versions 1
 * and 2 are read too: their entries lack the ctime and the attribute set, their index lacks
 * the attribute table and the footer, and their header is not checksummed.
 *
 *   header   "HSNAPMF1" | u32 jsonLen | JSON {format, host, part, generation, created, tool, scan, owners}
 *   blocks   one per directory: u32 rawLen | u32 packedLen | u32 crc32(packed) | deflate-raw(raw)
 *            raw = u32 dirPathLen | dirPath | u32 count | entries (sorted by name bytes)
 *   index    a block of the same framing whose raw payload is
 *            root entry | u32 dirCount | per dir: u32 pathLen | path | f64 offset | u32 length
 *            (format 3:) | u32 setCount | per attribute set: u32 len | blob
 *                        | u32 footerLen | footer JSON
 *   trailer  f64 indexOffset | u32 indexLength | u32 crc32(header) (0 before format 3) | "HSNAPEND"
 *
 * An entry: u8 type | u8 flags | u16 nameLen | u32 mode | u32 uid | u32 gid | f64 size |
 * f64 mtimeSec | u32 mtimeNsec | u32 linkGroup | f64 ino | f64 rdev | u16 targetLen |
 * (format 3:) f64 ctimeSec | u32 ctimeNsec | u32 xattrSet | (format 4:) f64 srcIno |
 * [u32 hashHi | u32 hashLo when flags & HAS_HASH] | name | target.
 * Integers are little-endian; f64 holds integers exactly up to 2^53. An attribute set is
 * numbered from 1 in the order of the table (0: no attributes); a slot of length 0 is unused.
 */
import { crc32 } from 'node:zlib';
import { CODE_TYPE, TYPE_CODE, type Meta } from '../fs/entry.js';
import { hashHex, hexWord, sys } from '../fs/native.js';

export const MAGIC = Buffer.from('HSNAPMF1');
export const END_MAGIC = Buffer.from('HSNAPEND');
export const FORMAT_VERSION = 4;
export const TRAILER_LEN = 24;

export const FLAG = {
  /** the content hash is recorded */
  HAS_HASH: 1,
  /** the file changed while it was copied, or another was renamed over it before: never link it as unchanged */
  UNSTABLE: 2,
  /** recorded but not present in the generation (a device when not root) */
  ABSENT: 4,
  /** (format 2, on the root entry only) some entries could not be backed up in this generation */
  INCOMPLETE: 8,
  /**
   * (format 3) the source could not be read in this run: the entry (and, for a directory,
   * everything below it) is the previous generation's version, linked (the footer's `carried`
   * says from which generation and why)
   */
  CARRIED: 16,
  /**
   * (format 3) the spool's inode lacks some of the recorded attributes: its file system refused
   * them when the inode was written (the manifest alone holds them; restore applies them)
   */
  OFF_SPOOL: 32,
} as const;

export interface ManifestEntry extends Meta {
  name: Buffer;
  flags: number;
  /** 0 = not hard-linked in the source; else an id shared by the names of one source inode */
  linkGroup: number;
  /**
   * the generation file's own inode number, as a stat of it said when it was written or linked
   * (format 3; before, a linked entry may carry the previous generation's record)
   */
  ino: number;
  /** XXH64 of the content, 16 hex digits, or null */
  hash: string | null;
  /** the source's ctime when the entry was recorded (format 3; 0 = unknown) */
  ctimeSec: number;
  ctimeNsec: number;
  /**
   * the source's inode number when the entry was recorded (format 4; 0 or absent = unknown): an
   * unchanged ctime stands for unchanged attributes only on the same inode (a tree renamed over
   * another made in the same clock tick has children of equal ctimes at the same paths)
   */
  srcIno?: number;
}

export class ManifestFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ManifestFormatError';
  }
}

/** Where each fixed field of an entry starts (the layout above). */
const enum At {
  type = 0,
  flags = 1,
  nameLen = 2,
  mode = 4,
  uid = 8,
  gid = 12,
  size = 16,
  mtimeSec = 24,
  mtimeNsec = 32,
  linkGroup = 36,
  ino = 40,
  rdev = 48,
  targetLen = 56,
  ctimeSec = 58,
  ctimeNsec = 66,
  xattrSet = 70,
  srcIno = 74,
}

/**
 * The entry layout of one format version: the length of an entry's fixed part (the hash, then
 * the name, follow it), and how attribute-set numbers resolve to blobs.
 */
export interface EntryLayout {
  readonly version: number;
  readonly fixed: number;
  /** the blob of attribute set `id` (1-based), or null; throws for an unknown number */
  xattrSet(id: number): Buffer | null;
}

const NO_SETS = (id: number): Buffer | null => {
  if (id !== 0) throw new ManifestFormatError(`attribute set ${id} is not in the manifest's table`);
  return null;
};

/** Versions 1 and 2: 58 fixed bytes, no ctime, no attributes. */
export const LAYOUT_V2: EntryLayout = { version: 2, fixed: 58, xattrSet: NO_SETS };

export function layoutFor(version: number, xattrSet: (id: number) => Buffer | null = NO_SETS): EntryLayout {
  if (version >= 4) return { version, fixed: 82, xattrSet };
  return version === 3 ? { version, fixed: 74, xattrSet } : version === 1 ? { ...LAYOUT_V2, version: 1 } : LAYOUT_V2;
}

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

/**
 * The numbering of a manifest's attribute sets while it is written: each distinct blob once.
 * It starts as a copy of the previous generation's table (the same numbers), so that the
 * records of unchanged files can be copied from the previous manifest byte for byte.
 */
export class XattrSets {
  private readonly ids = new Map<string, number>();
  private readonly blobs: (Buffer | null)[] = [];
  private used = new Uint8Array(16);
  /**
   * The previous manifest's number -> this one's, for records copied as bytes: its unused
   * (empty) slots are dropped, so the table holds what the previous generation used and what
   * this one adds, and never grows without end.
   */
  private remap: Uint32Array | null = null;

  /** Takes over another manifest's sets, renumbered without its unused slots (before anything is encoded). */
  seed(blobs: readonly (Buffer | null)[]): void {
    if (this.blobs.length) throw new Error('XattrSets.seed after use');
    const remap = new Uint32Array(blobs.length + 1);
    blobs.forEach((b, i) => {
      if (!b || !b.length) return;
      this.blobs.push(b);
      this.ids.set(b.toString('latin1'), this.blobs.length);
      remap[i + 1] = this.blobs.length;
    });
    this.remap = remap;
  }

  /** This manifest's number for a record copied from the seeding manifest (0 stays 0). */
  renumber(old: number): number {
    if (old === 0 || !this.remap) return old;
    const id = old < this.remap.length ? this.remap[old]! : 0;
    if (id === 0) throw new ManifestFormatError(`attribute set ${old} of a copied record is not in the previous table`);
    return id;
  }

  /** The number of a set (0 for none), allocated on first sight; marks it used. */
  idOf(blob: Buffer | null): number {
    if (!blob || !blob.length) return 0;
    const key = blob.toString('latin1');
    let id = this.ids.get(key);
    if (id === undefined) {
      this.blobs.push(Buffer.from(blob));
      id = this.blobs.length;
      this.ids.set(key, id);
    }
    this.markUsed(id);
    return id;
  }

  markUsed(id: number): void {
    if (id === 0) return;
    if (id > this.blobs.length) throw new ManifestFormatError(`attribute set ${id} is not in the table`);
    if (id >= this.used.length) {
      const u = new Uint8Array(Math.max(id + 1, this.used.length * 2));
      u.set(this.used);
      this.used = u;
    }
    this.used[id] = 1;
  }

  /** The sets by number - 1 (for a writer to be seeded with). */
  get table(): readonly (Buffer | null)[] {
    return this.blobs;
  }

  /** The table as written: every number keeps its slot, a set no entry uses is left empty. */
  encode(s: ByteSink): void {
    s.u32(this.blobs.length);
    for (let i = 0; i < this.blobs.length; i++) {
      const b = this.used[i + 1] ? this.blobs[i]! : null;
      s.u32(b ? b.length : 0);
      if (b) s.bytes(b);
    }
  }
}

/** Encodes one entry in the current format (the writer's attribute numbering resolves sets). */
export function encodeEntry(s: ByteSink, e: ManifestEntry, sets: XattrSets | null = null): void {
  const target = e.target ?? EMPTY;
  const hasHash = e.hash !== null;
  const FIXED = 82;
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
  b.writeDoubleLE(e.ctimeSec, o + At.ctimeSec);
  b.writeUInt32LE(e.ctimeNsec, o + At.ctimeNsec);
  if (e.xattrs && e.xattrs.length && !sets) throw new ManifestFormatError("an entry with extended attributes needs the writer's attribute table");
  b.writeUInt32LE(sets ? sets.idOf(e.xattrs) : 0, o + At.xattrSet);
  b.writeDoubleLE(e.srcIno ?? 0, o + At.srcIno);
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
 * An entry kept in its encoded bytes (format 3, its attribute set numbered as in the table the
 * writer was seeded with; renumbered when written): a file linked unchanged is recorded as the previous manifest recorded it
 * (RawDirBlock.unchangedFile says when), so its bytes are copied rather than decoded and encoded
 * again (most entries of a nightly run). `ino`, when set, replaces the recorded inode number:
 * the one a stat of the new link gave.
 */
export class EncodedEntry {
  ino = -1;
  constructor(
    readonly name: Buffer,
    readonly bytes: Buffer,
  ) {}
}

/** What a directory block is written from. */
export type BlockEntry = ManifestEntry | EncodedEntry;

/** The entry recorded without its source inode (0: not known to be the source's own). */
export function withoutSourceInode(e: BlockEntry): BlockEntry {
  if (!(e instanceof EncodedEntry)) return e.srcIno ? { ...e, srcIno: 0 } : e;
  const bytes = Buffer.from(e.bytes);
  bytes.writeDoubleLE(0, At.srcIno);
  const out = new EncodedEntry(e.name, bytes);
  out.ino = e.ino;
  return out;
}

export function encodeBlockEntry(s: ByteSink, e: BlockEntry, sets: XattrSets | null = null): void {
  if (!(e instanceof EncodedEntry)) return encodeEntry(s, e, sets);
  const at = s.len;
  s.bytes(e.bytes);
  if (e.ino >= 0) s.buf.writeDoubleLE(e.ino, at + At.ino);
  if (sets) {
    const id = sets.renumber(s.buf.readUInt32LE(at + At.xattrSet));
    s.buf.writeUInt32LE(id, at + At.xattrSet);
    sets.markUsed(id);
  }
}

/** The byte length of the entry at `off` (its fields unchecked beyond what the length needs). */
function entryLength(b: Buffer, off: number, layout: EntryLayout): number {
  return layout.fixed + (b[off + At.flags]! & FLAG.HAS_HASH ? 8 : 0) + b.readUInt16LE(off + At.nameLen) + b.readUInt16LE(off + At.targetLen);
}

export function decodeEntry(b: Buffer, off: number, layout: EntryLayout = LAYOUT_V2): [ManifestEntry, number] {
  const FIXED = layout.fixed;
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
  const v3 = FIXED > At.xattrSet;
  const v4 = FIXED > At.srcIno;
  return [
    {
      type,
      flags: flags & ~FLAG.HAS_HASH,
      name,
      target,
      hash,
      mode: b.readUInt32LE(off + At.mode),
      uid: b.readUInt32LE(off + At.uid),
      gid: b.readUInt32LE(off + At.gid),
      size: b.readDoubleLE(off + At.size),
      mtimeSec: b.readDoubleLE(off + At.mtimeSec),
      mtimeNsec: b.readUInt32LE(off + At.mtimeNsec),
      linkGroup: b.readUInt32LE(off + At.linkGroup),
      ino: b.readDoubleLE(off + At.ino),
      rdev: b.readDoubleLE(off + At.rdev),
      ctimeSec: v3 ? b.readDoubleLE(off + At.ctimeSec) : 0,
      ctimeNsec: v3 ? b.readUInt32LE(off + At.ctimeNsec) : 0,
      xattrs: v3 ? layout.xattrSet(b.readUInt32LE(off + At.xattrSet)) : null,
      srcIno: v4 ? b.readDoubleLE(off + At.srcIno) : 0,
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
export function decodeDirBlock(raw: Buffer, layout: EntryLayout = LAYOUT_V2): { dir: Buffer; entries: ManifestEntry[] } {
  const b = new RawDirBlock(raw, layout);
  return { dir: Buffer.from(b.dir), entries: b.decodeAll() };
}

/**
 * The index block's payload, parsed (format 1 to 3): the root entry, the directories' block
 * positions, and (format 3) the attribute-set table and the footer JSON.
 */
export interface IndexPayload {
  root: ManifestEntry;
  dirs: { key: string; offset: number; length: number }[];
  sets: (Buffer | null)[];
  footer: Record<string, unknown>;
}

export function parseIndex(raw: Buffer, version: number): IndexPayload {
  const sets: (Buffer | null)[] = [];
  const setOf = (id: number): Buffer | null => {
    if (id === 0) return null;
    if (id > sets.length) throw new ManifestFormatError(`attribute set ${id} is not in the manifest's table`);
    const b = sets[id - 1]!;
    if (!b) throw new ManifestFormatError(`attribute set ${id} is recorded as unused`);
    return b;
  };
  const layout = layoutFor(version, setOf);
  // the root entry comes first but may refer to the table after the directories: skip it now
  if (layout.fixed > raw.length) throw new ManifestFormatError('index too short');
  const rootEnd = entryLength(raw, 0, layout);
  let o = rootEnd;
  const count = raw.readUInt32LE(o);
  o += 4;
  const dirs: IndexPayload['dirs'] = [];
  for (let i = 0; i < count; i++) {
    const len = raw.readUInt32LE(o);
    const key = raw.toString('latin1', o + 4, o + 4 + len);
    o += 4 + len;
    dirs.push({ key, offset: raw.readDoubleLE(o), length: raw.readUInt32LE(o + 8) });
    o += 12;
  }
  let footer: Record<string, unknown> = {};
  if (version >= 3) {
    const n = raw.readUInt32LE(o);
    o += 4;
    for (let i = 0; i < n; i++) {
      const len = raw.readUInt32LE(o);
      o += 4;
      if (o + len > raw.length) throw new ManifestFormatError('attribute set runs past the end of the index');
      sets.push(len ? Buffer.from(raw.subarray(o, o + len)) : null);
      o += len;
    }
    const jl = raw.readUInt32LE(o);
    o += 4;
    if (o + jl !== raw.length) throw new ManifestFormatError('index footer length mismatch');
    try {
      footer = JSON.parse(raw.toString('utf8', o, o + jl)) as Record<string, unknown>;
    } catch {
      throw new ManifestFormatError('unreadable index footer');
    }
    if (typeof footer !== 'object' || footer === null || Array.isArray(footer)) throw new ManifestFormatError('index footer is not an object');
  } else if (o !== raw.length) {
    throw new ManifestFormatError('trailing bytes in the index');
  }
  const [root, end] = decodeEntry(raw, 0, layout);
  if (end !== rootEnd) throw new ManifestFormatError('root entry length mismatch');
  return { root, dirs, sets, footer };
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
  private readonly fixed: number;

  constructor(
    private readonly raw: Buffer,
    readonly layout: EntryLayout = LAYOUT_V2,
  ) {
    const FIXED = (this.fixed = layout.fixed);
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
      o += entryLength(raw, o, layout);
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
    const start = o + this.fixed + (this.raw[o + At.flags]! & FLAG.HAS_HASH ? 8 : 0);
    return this.raw.compare(name, 0, name.length, start, start + this.raw.readUInt16LE(o + At.nameLen));
  }

  /**
   * Entry i's bytes when it records the regular file `e` (same name, already matched) exactly as
   * the builder would record a link of it, in the current format: a file with nothing but a hash
   * and OFF_SPOOL among its flags, no link group, and e's mode, owner, size, mtime, device number, ctime and source inode
   * (an unchanged ctime means unchanged extended attributes, which are then not compared). Else
   * null (a record of an older format never qualifies: its layout differs). The fast path of
   * sameMeta (src/fs/entry.ts), narrowed: what it returns, decide() would link.
   */
  unchangedFile(i: number, e: Meta & { ctimeSec: number; ctimeNsec: number; ino: number }): Buffer | null {
    if (this.fixed !== 82) return null;
    const r = this.raw;
    const o = this.offsets[i]!;
    if (r[o + At.type] !== TYPE_CODE.file || (r[o + At.flags]! & ~(FLAG.HAS_HASH | FLAG.OFF_SPOOL)) !== 0 || r.readUInt16LE(o + At.targetLen) !== 0)
      return null;
    if (r.readUInt32LE(o + At.mode) !== e.mode || r.readUInt32LE(o + At.uid) !== e.uid >>> 0 || r.readUInt32LE(o + At.gid) !== e.gid >>> 0) return null;
    if (r.readDoubleLE(o + At.size) !== e.size || r.readDoubleLE(o + At.mtimeSec) !== e.mtimeSec || r.readUInt32LE(o + At.mtimeNsec) !== e.mtimeNsec)
      return null;
    if (r.readUInt32LE(o + At.linkGroup) !== 0 || r.readDoubleLE(o + At.rdev) !== e.rdev) return null;
    if (r.readDoubleLE(o + At.ctimeSec) !== e.ctimeSec || r.readUInt32LE(o + At.ctimeNsec) !== e.ctimeNsec) return null;
    // the same ctime on another inode is no evidence (a tree renamed over another: format 4)
    if (r.readDoubleLE(o + At.srcIno) !== e.ino) return null;
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

  /** the attribute-set number of entry i (0: none, and always 0 before format 3) */
  xattrSet(i: number): number {
    return this.fixed > At.xattrSet ? this.raw.readUInt32LE(this.offsets[i]! + At.xattrSet) : 0;
  }

  decode(i: number): ManifestEntry {
    return decodeEntry(this.raw, this.offsets[i]!, this.layout)[0];
  }

  decodeAll(): ManifestEntry[] {
    const out: ManifestEntry[] = new Array(this.length);
    for (let i = 0; i < out.length; i++) out[i] = this.decode(i);
    return out;
  }
}
