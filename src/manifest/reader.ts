/**
 * Reads a manifest: the trailer and the index first (small), then directory blocks on demand
 * by offset, so a run can look up the previous entries of any directory without holding the
 * whole manifest in memory.
 */
import { fs } from '../fs/disk.js';
import { crc32 } from 'node:zlib';
import {
  decodeDirBlock,
  END_MAGIC,
  layoutFor,
  MAGIC,
  ManifestFormatError,
  parseIndex,
  RawDirBlock,
  TRAILER_LEN,
  unframe,
  type EntryLayout,
  type ManifestEntry,
} from './format.js';
import type { ManifestFooter, ManifestHeader } from './writer.js';

/** Every format version this release reads (docs/FORMAT.md; fixtures in test/fixtures). */
export const READABLE_VERSIONS = [1, 2, 3, 4];

export class ManifestReader {
  private constructor(
    private readonly fd: number,
    readonly file: string,
    readonly header: ManifestHeader,
    readonly root: ManifestEntry,
    private readonly index: Map<string, { offset: number; length: number }>,
    private readonly order: string[],
    /** how entries are laid out and their attribute sets resolved */
    readonly layout: EntryLayout,
    /** the attribute-set table (format 3; empty before), by number - 1 */
    readonly xattrSets: readonly (Buffer | null)[],
    /** what the run recorded once the tree was built (format 3; {} before) */
    readonly footer: ManifestFooter,
  ) {}

  get version(): number {
    return this.header.format;
  }

  /**
   * Opens and checks a manifest; throws ManifestFormatError when it is damaged, or when it is
   * read as the record of a generation (`of`) and its header names another generation or
   * another part (a manifest copied over another's has valid checksums: it must not pass for
   * that generation's record).
   */
  static open(file: string, of?: ManifestOf): ManifestReader {
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      const size = fs.fstatSync(fd).size;
      if (size < 12 + TRAILER_LEN) throw new ManifestFormatError('file too short');
      const { header, trailer } = readHeadAndTrailer(fd, size, of);
      const indexOffset = trailer.readDoubleLE(0);
      const indexLen = trailer.readUInt32LE(8);
      if (indexOffset + indexLen + TRAILER_LEN !== size) throw new ManifestFormatError('index position mismatch');
      const ix = parseIndex(unframe(readAt(fd, indexOffset, indexLen)), header.format);
      const index = new Map<string, { offset: number; length: number }>();
      const order: string[] = [];
      for (const d of ix.dirs) {
        if (d.offset + d.length > indexOffset) throw new ManifestFormatError('index points past the blocks');
        index.set(d.key, { offset: d.offset, length: d.length });
        order.push(d.key);
      }
      const sets = ix.sets;
      const layout = layoutFor(header.format, (id) => {
        if (id === 0) return null;
        const b = sets[id - 1];
        if (!b) throw new ManifestFormatError(`attribute set ${id} is not in the manifest's table`);
        return b;
      });
      return new ManifestReader(fd, file, header, ix.root, index, order, layout, sets, ix.footer as ManifestFooter);
    } catch (err) {
      fs.closeSync(fd);
      if (err instanceof RangeError) throw new ManifestFormatError(`damaged: ${err.message}`);
      throw err;
    }
  }

  get dirCount(): number {
    return this.order.length;
  }

  /** Every directory's path (latin1 keys of the index: one char per byte), in walk order. */
  dirKeys(): readonly string[] {
    return this.order;
  }

  has(dir: Buffer): boolean {
    return this.index.has(dir.toString('latin1'));
  }

  /** The entries of one directory (sorted by name), or undefined when it was not there. */
  dir(dir: Buffer): ManifestEntry[] | undefined {
    const at = this.index.get(dir.toString('latin1'));
    if (!at) return undefined;
    return this.block(at).entries;
  }

  /**
   * The frame header of a directory's block (lengths and CRC of the compressed payload), by its
   * latin1 key: equal stamps mean equal blocks, so two generations' records of an unchanged
   * directory compare without being decoded.
   */
  stamp(key: string): string | undefined {
    const at = this.index.get(key);
    if (!at || at.length < 12) return undefined;
    return readAt(this.fd, at.offset, 12).toString('hex');
  }

  /** The entries of one directory by its latin1 key (as dirKeys() gives them). */
  dirByKey(key: string): ManifestEntry[] | undefined {
    const at = this.index.get(key);
    return at ? this.block(at).entries : undefined;
  }

  /** One directory's block by its latin1 key, undecoded (RawDirBlock). */
  rawDirByKey(key: string): RawDirBlock | undefined {
    const at = this.index.get(key);
    return at ? this.framed(at, (raw) => new RawDirBlock(raw, this.layout)) : undefined;
  }

  /** Every directory block, in the order they were written (the walk order of the run). */
  *walk(): Generator<{ dir: Buffer; entries: ManifestEntry[] }> {
    for (const key of this.order) yield this.block(this.index.get(key)!);
  }

  /** The same, undecoded. */
  *rawWalk(): Generator<RawDirBlock> {
    for (const key of this.order) yield this.rawDirByKey(key)!;
  }

  close(): void {
    fs.closeSync(this.fd);
  }

  private block(at: { offset: number; length: number }): { dir: Buffer; entries: ManifestEntry[] } {
    return this.framed(at, (raw) => decodeDirBlock(raw, this.layout));
  }

  private framed<T>(at: { offset: number; length: number }, decode: (raw: Buffer) => T): T {
    try {
      return decode(unframe(readAt(this.fd, at.offset, at.length)));
    } catch (err) {
      if (err instanceof RangeError) throw new ManifestFormatError(`damaged block: ${err.message}`);
      throw err;
    }
  }
}

/**
 * The header, checked against the trailer: from format 3 the trailer holds a CRC-32 of the
 * header's bytes (magic, length and JSON), so no byte of a manifest goes unchecked.
 */
/** Whose record a manifest is read as: its generation's name, and its part's and host's where known. */
export interface ManifestOf {
  generation: string;
  part?: string;
  host?: string;
}

/** A part name compared as it is written (an escaped name that is not UTF-8 is not compared: its forms may differ). */
const plainName = (s: string) => !/[\\\ufffd]/.test(s);

function readHeadAndTrailer(fd: number, size: number, of?: ManifestOf): { header: ManifestHeader; trailer: Buffer } {
  const head = readAt(fd, 0, 12);
  if (!head.subarray(0, 8).equals(MAGIC)) throw new ManifestFormatError('not a hardsnap manifest (bad magic)');
  const jsonLen = head.readUInt32LE(8);
  if (12 + jsonLen + TRAILER_LEN > size) throw new ManifestFormatError('header runs past the end');
  const json = readAt(fd, 12, jsonLen);
  const trailer = readAt(fd, size - TRAILER_LEN, TRAILER_LEN);
  if (!trailer.subarray(16).equals(END_MAGIC)) throw new ManifestFormatError('incomplete manifest (no trailer)');
  const crc = trailer.readUInt32LE(12);
  let header: ManifestHeader;
  try {
    header = JSON.parse(json.toString('utf8')) as ManifestHeader;
  } catch {
    throw new ManifestFormatError(crc ? 'header checksum mismatch' : 'unreadable header');
  }
  if (typeof header !== 'object' || header === null || typeof header.format !== 'number') throw new ManifestFormatError('unreadable header');
  if (!READABLE_VERSIONS.includes(header.format)) {
    throw new ManifestFormatError(`format version ${header.format} is newer than this hardsnap reads (${READABLE_VERSIONS.join(', ')})`);
  }
  // from format 3 the header is checksummed (a format number flipped down to 1 or 2 is caught
  // too: those trailers hold 0 there)
  if ((header.format >= 3 || crc !== 0) && crc32(json, crc32(head)) !== crc) throw new ManifestFormatError('header checksum mismatch');
  if (of && typeof header.generation === 'string' && header.generation !== of.generation)
    throw new ManifestFormatError(`it is the manifest of ${header.generation}, not of ${of.generation}`);
  if (of?.part !== undefined && typeof header.part === 'string' && plainName(header.part) && plainName(of.part) && header.part !== of.part)
    throw new ManifestFormatError(`it is the manifest of part '${header.part}', not of part '${of.part}'`);
  if (of?.host !== undefined && typeof header.host === 'string' && plainName(header.host) && plainName(of.host) && header.host !== of.host)
    throw new ManifestFormatError(`it is the manifest of host '${header.host}', not of host '${of.host}'`);
  return { header, trailer };
}

/** The header alone (the watcher reads the newest generation's scan start from it); checked as open() does. */
export function readManifestHeader(file: string, of?: ManifestOf): ManifestHeader {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const size = fs.fstatSync(fd).size;
    if (size < 12 + TRAILER_LEN) throw new ManifestFormatError('file too short');
    return readHeadAndTrailer(fd, size, of).header;
  } catch (err) {
    if (err instanceof RangeError) throw new ManifestFormatError(`damaged: ${err.message}`);
    throw err;
  } finally {
    fs.closeSync(fd);
  }
}

function readAt(fd: number, pos: number, len: number): Buffer {
  const b = Buffer.allocUnsafe(len);
  let done = 0;
  while (done < len) {
    const n = fs.readSync(fd, b, done, len - done, pos + done);
    if (n === 0) throw new ManifestFormatError('unexpected end of file');
    done += n;
  }
  return b;
}
