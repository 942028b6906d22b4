/**
 * The tree builder's "where do this directory's entries come from" seam when a journal is used:
 * a directory the journal says is unchanged takes its entries from the previous manifest
 * instead of a scan of the source. Its files are still linked one by one (the generation is
 * complete); its subdirectories are lstat-ed (their own times change when their entries do, and
 * they may be dirty themselves), and a subdirectory that is no longer one sends the whole
 * directory back to a scan.
 *
 * A directory the journal names is read, but when the journal also names every entry that changed
 * in it (dirty-dirs.ts), only those entries, and the ones the previous manifest does not have,
 * are stat-ed (the builder's scan with a skip list): the others, unchanged, come from the manifest. Its subdirectories
 * are stat-ed too, as always.
 *
 * Always scanned whole: directories the journal names without names, directories whose path is not valid UTF-8
 * (chokidar's string paths cannot name them), directories the previous manifest has no (or an
 * empty) block for, blocks holding hard links or flagged entries (a write through another
 * name of a hard-linked file changes this directory's entry without an event in it), and
 * directories on another device than the source root (mounting makes no inotify event).
 */
import { isUtf8 } from 'node:buffer';
import type { SourceEntry } from '../fs/entry.js';
import { typeOfMode } from '../fs/entry.js';
import { ST, sys } from '../fs/native.js';
import { parseScan } from '../fs/entry.js';
import type { ManifestEntry } from '../manifest/format.js';
import type { DirEntrySource, ScanDir } from '../apply/dir-entry-source.js';

export type { DirEntrySource };

export interface UnchangedDirStats {
  /** directories whose entries came from the previous manifest */
  skipped: number;
  /** directories scanned because the journal (or the rules above) said so */
  rescanned: number;
  /** directories read for the entries the journal named (the others from the manifest) */
  named: number;
  /** directories the journal called unchanged whose subdirectory was not one any more */
  inconsistent: number;
  /** why the journal stopped being used mid-run, if it did */
  disabled: string | null;
}

/** The journal's dirty directories, as chokidar names them (UTF-8 paths relative to the root). */
export function isDirtyDir(rel: Buffer, dirty: ReadonlySet<string>): boolean {
  return !isUtf8(rel) || dirty.has(rel.toString('utf8'));
}

/**
 * A block that is scanned whatever the journal says: empty, or holding hard links, flagged
 * entries, or entries that were on another file system at the previous scan (source inode 0,
 * format 4: a file system mounted there, or a file bind-mounted from one, may be gone since, and
 * unmounting makes no event: what is under it now is unknown).
 */
export function alwaysScanned(prev: readonly ManifestEntry[]): boolean {
  return !prev.length || prev.some((p) => p.linkGroup !== 0 || p.flags !== 0 || p.srcIno === 0);
}

export class UnchangedDirs implements DirEntrySource {
  readonly stats: UnchangedDirStats = { skipped: 0, rescanned: 0, named: 0, inconsistent: 0, disabled: null };
  private readonly st = new Float64Array(sys.STAT_FIELDS);

  /**
   * dirty: the directories with a change since the previous scan; names: of those, the ones whose
   * every change named its entry, with the names (latin1 keys of their bytes).
   */
  constructor(
    private readonly dirty: ReadonlySet<string>,
    private readonly rootDev: number,
    private readonly names: ReadonlyMap<string, ReadonlySet<string>> = new Map(),
  ) {}

  disable(reason: string): void {
    this.stats.disabled ??= reason;
  }

  scansWhole(rel: Buffer, hadPrev: boolean): boolean {
    return !hadPrev || this.stats.disabled !== null || (isDirtyDir(rel, this.dirty) && !this.names.has(rel.toString('utf8')));
  }

  entries(rel: Buffer, srcFd: number, prev: ManifestEntry[], scan: ScanDir): SourceEntry[] | null {
    if (this.stats.disabled || alwaysScanned(prev)) return this.rescan();
    let named: ReadonlySet<string> | undefined;
    if (isDirtyDir(rel, this.dirty)) {
      named = this.names.get(rel.toString('utf8'));
      if (!named) return this.rescan();
    }
    // another file system mounted here (a mount makes no inotify event): always read it
    if (sys.fstat(srcFd, this.st) !== 0 || this.st[ST.DEV] !== this.rootDev) return this.rescan();
    if (named) return this.readNamed(srcFd, prev, named, scan);
    const out: SourceEntry[] = new Array(prev.length);
    for (let i = 0; i < prev.length; i++) {
      const p = prev[i]!;
      if (p.type !== 'dir') {
        out[i] = this.fromManifest(p);
        continue;
      }
      const st = this.st;
      if (sys.fstatat(srcFd, p.name, st, 1) !== 0 || typeOfMode(st[ST.MODE]!) !== 'dir') {
        this.stats.inconsistent++;
        return this.rescan();
      }
      out[i] = {
        name: p.name,
        err: 0,
        type: 'dir',
        mode: st[ST.MODE]! & 0o7777,
        uid: st[ST.UID]!,
        gid: st[ST.GID]!,
        nlink: st[ST.NLINK]!,
        size: st[ST.SIZE]!,
        mtimeSec: st[ST.MTIME]!,
        mtimeNsec: st[ST.MTIME_NS]!,
        ino: st[ST.INO]!,
        dev: st[ST.DEV]!,
        rdev: 0,
        blocks: st[ST.BLOCKS]!,
        target: null,
        // its attributes: the record's when its ctime is unchanged, else read (src/plan/plan-dir.ts)
        ctimeSec: st[ST.CTIME]!,
        ctimeNsec: st[ST.CTIME_NS]!,
        xattrs: null,
        xattrsRead: false,
        xattrErr: 0,
      };
    }
    this.stats.skipped++;
    return out;
  }

  /** An entry the journal says is unchanged, as the previous manifest records it. */
  private fromManifest(p: ManifestEntry): SourceEntry {
    // a literal of one shape (as parseScan makes), not a spread: this is the hot loop
    return {
      name: p.name,
      err: 0,
      type: p.type,
      mode: p.mode,
      uid: p.uid,
      gid: p.gid,
      nlink: 1,
      size: p.size,
      mtimeSec: p.mtimeSec,
      mtimeNsec: p.mtimeNsec,
      // the inode the record was made from (0 when its format does not say): with the ctime it
      // makes the record's attributes stand (plan-dir.ts attributesKnown) instead of a read of
      // each entry's, which on NFS-like latency cost a journaled run more than a full scan
      ino: p.srcIno ?? 0,
      dev: this.rootDev,
      rdev: p.rdev,
      blocks: 0,
      target: p.target,
      // an attribute change is an event in its directory: the record's ctime (and with it its
      // attributes, where the previous manifest recorded them: src/plan/plan-dir.ts) stands
      ctimeSec: p.ctimeSec,
      ctimeNsec: p.ctimeNsec,
      xattrs: null,
      xattrsRead: false,
      xattrErr: 0,
    };
  }

  /**
   * A changed directory whose changed entries are named: its names are read (the truth: created
   * and removed entries), the named ones, the new ones and every directory are stat-ed, and the
   * other entries come from the manifest.
   */
  private readNamed(srcFd: number, prev: ManifestEntry[], named: ReadonlySet<string>, scan: ScanDir): SourceEntry[] | null {
    const keep = new Map<string, ManifestEntry>();
    let size = 0;
    for (const p of prev) {
      if (p.type === 'dir') continue;
      const key = p.name.toString('latin1');
      if (named.has(key)) continue;
      keep.set(key, p);
      size += 2 + p.name.length;
    }
    const skip = Buffer.allocUnsafe(size);
    let o = 0;
    for (const p of keep.values()) {
      skip.writeUInt16LE(p.name.length, o);
      p.name.copy(skip, o + 2);
      o += 2 + p.name.length;
    }
    const raw = scan(srcFd, skip);
    // unreadable: the builder's own scan reports the problem
    if (typeof raw === 'number') return this.rescan();
    const out = parseScan(raw);
    for (let i = 0; i < out.length; i++) {
      if (out[i]!.err !== sys.SCAN_SKIPPED) continue;
      const p = keep.get(out[i]!.name.toString('latin1'));
      if (!p) return this.rescan(); // cannot be: skipped names come from the manifest
      out[i] = this.fromManifest(p);
    }
    this.stats.named++;
    return out;
  }

  private rescan(): null {
    this.stats.rescanned++;
    return null;
  }
}
