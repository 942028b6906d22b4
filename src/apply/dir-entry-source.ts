/**
 * Where a directory's entries come from when not from a scan of the source: the tree builder's
 * seam for watch mode (src/watch/unchanged-dirs.ts implements it). Owned here, by its consumer.
 */
import type { SourceEntry } from '../fs/entry.js';
import type { ManifestEntry } from '../manifest/format.js';

/**
 * The builder's scan of a source directory (sys.scandir with the run's attribute options),
 * not stat-ing the names in skip (u16 length + bytes each): their records have err SCAN_SKIPPED.
 */
export type ScanDir = (fd: number, skip: Buffer) => Buffer | number;

export interface DirEntrySource {
  /**
   * Whether the directory at rel will be scanned whole whatever its previous block holds (so the
   * walk may scan it ahead on the pool): one the previous generation did not have as a
   * directory, or one the journal names without naming its entries.
   */
  scansWhole(rel: Buffer, hadPrev: boolean): boolean;
  /** this directory's entries, or null when it must be scanned */
  entries(rel: Buffer, srcFd: number, prev: ManifestEntry[], scan: ScanDir): SourceEntry[] | null;
  /** stop using the journal for the rest of the run (say why) */
  disable(reason: string): void;
}
