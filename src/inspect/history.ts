/**
 * `history`: every version of one path across the complete generations of a part, from the
 * manifests alone (one directory block per generation is read).
 */
import { FLAG, type ManifestEntry } from '../manifest/format.js';
import type { ManifestReader } from '../manifest/reader.js';
import { classify } from './diff.js';
import { findEntry } from './manifests.js';

/** The entry at `path` (bytes relative to the part root; empty = the root), or undefined. */
export function lookup(m: ManifestReader, path: Buffer): ManifestEntry | undefined {
  if (path.length === 0) return m.root;
  const slash = path.lastIndexOf(0x2f);
  const dir = slash < 0 ? Buffer.alloc(0) : path.subarray(0, slash);
  const name = slash < 0 ? path : path.subarray(slash + 1);
  const entries = m.dir(dir);
  return entries ? findEntry(entries, name) : undefined;
}

export type Change =
  /** first generation holding the path, or back after an absence */
  | 'new'
  /** the same generation inode as the generation before: nothing changed */
  | 'same'
  /** other content (or type, symlink target, device number): see classify() in diff.ts */
  | 'content'
  /** the same content, other mode, owner or mtime */
  | 'metadata'
  /** a new inode with the same content and metadata (written again: link limit, resume) */
  | 'rewritten'
  /** the source could not be read: this generation holds the version of an older one */
  | 'carried';

/** How `cur` differs from `prev`, the path's entry in the generation before (if it had one). */
export function versionChange(prev: ManifestEntry | undefined, cur: ManifestEntry): Change {
  if (cur.flags & FLAG.CARRIED) return 'carried';
  if (!prev) return 'new';
  const kind = classify(prev, cur);
  if (kind) return kind;
  return cur.type === 'dir' || (cur.ino !== 0 && prev.ino === cur.ino) ? 'same' : 'rewritten';
}
