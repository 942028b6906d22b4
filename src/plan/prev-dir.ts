/**
 * The planner's view of one directory of the previous generation (src/apply/prev-tree.ts reads
 * it from the manifest, or from a walk of the generation).
 */
import type { Meta } from '../fs/entry.js';
import type { ManifestEntry } from '../manifest/format.js';

/**
 * One directory's previous entries, sorted by name bytes. From a manifest they stay in the
 * block's bytes (RawDirBlock) and are decoded one by one when needed: most files of a nightly
 * run are linked unchanged, and their records are copied as they are (unchangedFile).
 */
export interface PrevDir {
  readonly length: number;
  /** entry i's name compared with `name`, as Buffer.compare(entry's, name) */
  compareName(i: number, name: Buffer): number;
  /** entry i, decoded */
  decode(i: number): ManifestEntry;
  /** the generation inode of entry i */
  ino(i: number): number;
  /** entry i's encoded record when it records the regular file `e` exactly (see RawDirBlock) */
  unchangedFile(i: number, e: Meta): Buffer | null;
  /** every entry, decoded */
  decodeAll(): ManifestEntry[];
}
