/**
 * Where a directory's entries come from when not from a scan of the source: the tree builder's
 * seam for watch mode (src/watch/unchanged-dirs.ts implements it). Owned here, by its consumer.
 */
import type { SourceEntry } from '../fs/entry.js';
import type { ManifestEntry } from '../manifest/format.js';

export interface DirEntrySource {
  /** this directory's entries, or null when it must be scanned */
  entries(rel: Buffer, srcFd: number, prev: ManifestEntry[]): SourceEntry[] | null;
  /** stop using the journal for the rest of the run (say why) */
  disable(reason: string): void;
}
