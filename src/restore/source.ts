/**
 * Where a restore learns what to write: the generation's manifest (metadata, link groups,
 * content hashes), directory by directory; where the manifest is missing or a block of it is
 * damaged, the generation directory itself (scandir), and the run says so.
 */
import { displayPath, joinRel } from '../paths/escape.js';
import { readDirAt } from '../fs/entry.js';
import { SCAN_XATTR, errnoName } from '../fs/native.js';
import { HardsnapError } from '../core/errors.js';
import { ManifestReader, type ManifestOf } from '../manifest/reader.js';
import type { ManifestEntry } from '../manifest/format.js';

/** Flag of entries read from the generation's tree rather than the manifest (never on disk). */
export const FROM_SCAN = 0x80;

/** A name that cannot be one directory entry: a tampered or damaged spool. */
export function badName(name: Buffer): boolean {
  return (
    name.length === 0 ||
    name.includes(0x2f) ||
    name.includes(0) ||
    (name.length === 1 && name[0] === 0x2e) ||
    (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e)
  );
}

export class EntrySource {
  /** directories whose manifest block could not be used */
  fallbackDirs = 0;

  private constructor(
    readonly reader: ManifestReader | null,
    /** why there is no manifest (null when there is one) */
    readonly missingReason: string | null,
    private readonly onNote: (m: string) => void,
  ) {}

  /** The manifest of a generation (checked to be that generation's, of that part), or why there is none. */
  static open(manifestFile: string, of: ManifestOf, onNote: (m: string) => void): EntrySource {
    try {
      return new EntrySource(ManifestReader.open(manifestFile, of), null, onNote);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'missing' : code ? `unreadable (${code})` : `damaged (${(err as Error).message})`;
      return new EntrySource(null, why, onNote);
    }
  }

  /** The root entry's metadata, from the manifest when it has it. */
  root(): ManifestEntry | null {
    return this.reader?.root ?? null;
  }

  /**
   * The entries of directory `rel` (sorted by name bytes); `srcFd` is that directory in the
   * generation, scanned when the manifest cannot answer. Link groups of scanned entries are
   * keyed by inode (`ino`) with linkGroup 0.
   */
  dir(rel: Buffer, srcFd: number): ManifestEntry[] {
    if (this.reader) {
      try {
        const e = this.reader.dir(rel);
        if (e) return e;
        this.fallback(rel, 'has no block for it');
      } catch (err) {
        this.fallback(rel, `is damaged there (${(err as Error).message})`);
      }
    }
    if (srcFd < 0) return [];
    // with the attributes the spool kept (what the manifest would have said, where the spool holds them)
    const read = readDirAt(srcFd, SCAN_XATTR.OTHER | SCAN_XATTR.FILES, -Infinity);
    if (typeof read === 'number')
      throw new HardsnapError(errnoName(read), `cannot read the generation's directory ${displayPath(rel) || '.'}: ${errnoName(read)}`, { exit: 2 });
    return read
      .filter((e) => e.err === 0)
      .map((e) => ({
        ...e,
        flags: FROM_SCAN,
        linkGroup: 0,
        hash: null,
        ctimeSec: 0,
        ctimeNsec: 0,
        // a name whose inode has other names in this generation: a hard link of the source
        ino: e.type !== 'dir' && e.nlink > 1 ? e.ino : 0,
      }));
  }

  /**
   * Checks every name below `rel` (the manifest's, before anything is written): a name with '/',
   * NUL, '.', '..' or empty could make a restore write elsewhere. Throws (exit 2).
   */
  validate(rel: Buffer, isDir: boolean): void {
    if (!this.reader || !isDir) return;
    const stack = [rel];
    while (stack.length) {
      const d = stack.pop()!;
      let entries: ManifestEntry[] | undefined;
      try {
        entries = this.reader.dir(d);
      } catch {
        continue; // the restore walks the generation there, whose names come from the kernel
      }
      for (const e of entries ?? []) {
        if (badName(e.name)) {
          throw new HardsnapError(
            'ETAMPERED',
            `the manifest ${this.reader.file} holds an impossible name ${JSON.stringify(displayPath(e.name))} in ${JSON.stringify(displayPath(d) || '.')}: nothing restored`,
            {
              exit: 2,
              hint: 'the spool was tampered with or is damaged; run hardsnap verify',
            },
          );
        }
        if (e.type === 'dir') stack.push(joinRel(d, e.name));
      }
    }
  }

  close(): void {
    this.reader?.close();
  }

  private fallback(rel: Buffer, why: string): void {
    this.fallbackDirs++;
    this.onNote(`the manifest ${why} at ${JSON.stringify(displayPath(rel) || '.')}: restoring that directory from the generation's own tree`);
  }
}
