/**
 * Streams a manifest to disk one directory block at a time, so memory does not grow with the
 * tree; the index of blocks, the attribute-set table, the footer and the trailer are written by
 * finish(). The caller writes to a temporary name and renames it when the generation is
 * published.
 */
import { fs } from '../fs/disk.js';
import { crc32 } from 'node:zlib';
import {
  ByteSink,
  encodeBlockEntry,
  encodeEntry,
  frame,
  FORMAT_VERSION,
  MAGIC,
  END_MAGIC,
  TRAILER_LEN,
  XattrSets,
  type BlockEntry,
  type ManifestEntry,
} from './format.js';

export interface ManifestHeader {
  format: number;
  /** the host the part belongs to (written since 2026-12-06; absent before: not compared) */
  host?: string;
  part: string;
  generation: string;
  created: string;
  tool: string;
  /** format 2: how the source was scanned (docs/WATCH.md) */
  scan?: ScanRecord;
  /**
   * whether the run gave the spool's inodes their recorded owners (it ran as root); false: the
   * owners are in the manifest only (`verify` does not compare them). Absent before: true.
   */
  owners?: boolean;
}

/** When and how a generation's scan of its source began (the journal's epoch rule needs it). */
export interface ScanRecord {
  /** CLOCK_MONOTONIC µs when the scan began (before the journal was consulted) */
  startMono: number;
  startWall: string;
  /** the boot the monotonic time belongs to */
  boot: string | null;
  /** every directory was read from the source (no journal) */
  full: boolean;
  /** the run time (`now`) of the newest full scan, this one or an earlier one */
  lastFull: string;
  /** fingerprint of what decides which entries are recorded (excludes, --one-file-system) */
  rules: string;
  /** dev:ino of the source root the scan opened (absent before 2026-12-07) */
  rootId?: string;
}

/** An entry carried from an earlier generation because the source could not be read. */
export interface CarriedRecord {
  /** escaped path relative to the part root (src/paths/escape.ts) */
  path: string;
  /** the generation whose version it is (the last one that read it from the source) */
  from: string;
  /** why it could not be read: errno name */
  code: string;
}

/**
 * The source a generation was made from (src/backup/source-identity.ts): the next run refuses a
 * source root on another file system, or one that lost most of its entries.
 */
export interface SourceIdentity {
  /** statfs f_type of the file system of the source root (0xef53: ext4) */
  fsType: number;
  /** statfs f_fsid as "hex:hex" (stable across reboots on ext4, XFS, btrfs), or null when unknown */
  fsid: string | null;
  /** st_dev of the source root, "major:minor" (for humans; it may change on reboot) */
  dev: string;
  /** entries the walk saw, once the tree is built */
  entries?: number;
  /** of those, the entries in the generation (not excluded); absent before: only `entries` is compared */
  kept?: number;
}

/**
 * What is known only once the tree is built (format 3), in the checksummed index block. Every
 * field is optional: a reader of a manifest of an older format gets an empty footer.
 */
export interface ManifestFooter {
  /**
   * the file system and the generation root that the entries' inode numbers belong to: when the
   * spool was copied to another disk (cp -a, rsync -aH), the generation root's inode (or the
   * file system) differs, and the recorded inode numbers describe the old copy
   */
  spool?: { fsid: string; rootIno: number };
  /** entries carried from an earlier generation (CARRIED): count, and the first ones */
  carried?: { count: number; first: CarriedRecord[] };
  /** attribute namespaces the spool's file system refused: held by the manifest only */
  xattrsRefused?: string[];
  /** extended attributes were not read at all (--no-xattrs) */
  xattrsSkipped?: boolean;
  /**
   * something was mounted or unmounted (anywhere) while the tree was scanned: what the scan read
   * below the source may be what a mount showed for a moment, and the next run does not take
   * entries from this manifest on the journal's word (docs/WATCH.md)
   */
  mountsChanged?: boolean;
  /** the part's source: its root's file system and the walk's entry count */
  source?: SourceIdentity;
  [key: string]: unknown;
}

const FLUSH_AT = 1 << 20;

export class ManifestWriter {
  private readonly sink = new ByteSink();
  private readonly out = new ByteSink(FLUSH_AT * 2);
  /**
   * The index of blocks, encoded as it grows (dir length, dir bytes, offset, length): kept as
   * objects it held one small Buffer per directory, each pinning an 8 KiB pool slab (~80 MB
   * for the 20,000 directories of a million files).
   */
  private readonly index = new ByteSink(1 << 16);
  /** the attribute sets, numbered as the previous manifest numbered them (seedXattrSets) */
  readonly sets = new XattrSets();
  private blocks = 0;
  private offset = 0;
  private closed = false;
  private headerCrc = 0;

  private constructor(private readonly fd: number) {}

  static create(file: string, header: Omit<ManifestHeader, 'format'>): ManifestWriter {
    const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, 0o600);
    const w = new ManifestWriter(fd);
    const json = Buffer.from(JSON.stringify({ format: FORMAT_VERSION, ...header }));
    const head = Buffer.allocUnsafe(12);
    MAGIC.copy(head, 0);
    head.writeUInt32LE(json.length, 8);
    w.headerCrc = crc32(json, crc32(head));
    w.put(head);
    w.put(json);
    return w;
  }

  /**
   * Numbers attribute sets as `blobs` (the previous manifest's table) does, so that records
   * copied from that manifest (EncodedEntry) stay valid. Before the first addDir().
   */
  seedXattrSets(blobs: readonly (Buffer | null)[]): void {
    this.sets.seed(blobs);
  }

  /** Adds the block of one directory; entries must be sorted by name bytes. */
  addDir(dir: Buffer, entries: BlockEntry[]): void {
    const s = this.sink;
    s.reset();
    s.u32(dir.length);
    s.bytes(dir);
    s.u32(entries.length);
    for (const e of entries) encodeBlockEntry(s, e, this.sets);
    const framed = frame(s.view());
    const ix = this.index;
    ix.u32(dir.length);
    ix.bytes(dir);
    ix.f64(this.offset);
    ix.u32(framed.length);
    this.blocks++;
    this.put(framed);
  }

  /** Writes the index (the part root's own entry, the attribute sets, the footer) and the trailer, and closes. */
  finish(root: ManifestEntry, footer: ManifestFooter = {}): void {
    const s = this.sink;
    s.reset();
    encodeEntry(s, root, this.sets);
    s.u32(this.blocks);
    s.bytes(this.index.view());
    this.sets.encode(s);
    const json = Buffer.from(JSON.stringify(footer));
    s.u32(json.length);
    s.bytes(json);
    const framed = frame(s.view());
    const indexOffset = this.offset;
    this.put(framed);
    const trailer = Buffer.alloc(TRAILER_LEN);
    trailer.writeDoubleLE(indexOffset, 0);
    trailer.writeUInt32LE(framed.length, 8);
    trailer.writeUInt32LE(this.headerCrc, 12);
    END_MAGIC.copy(trailer, 16);
    this.put(trailer);
    this.flush();
    this.closed = true;
    fs.closeSync(this.fd);
  }

  /** Closes without finishing (the file is left unreadable on purpose). */
  abort(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.flush();
    } finally {
      fs.closeSync(this.fd);
    }
  }

  private put(b: Buffer): void {
    this.out.bytes(b);
    this.offset += b.length;
    if (this.out.len >= FLUSH_AT) this.flush();
  }

  private flush(): void {
    let done = 0;
    const v = this.out.view();
    while (done < v.length) done += fs.writeSync(this.fd, v, done, v.length - done);
    this.out.reset();
  }
}
