/**
 * `history`: every version of one path across the complete generations of a part, from the
 * manifests alone (one directory block per generation is read).
 */
import type { ManifestEntry } from '../manifest/format.js';
import type { ManifestReader } from '../manifest/reader.js';
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
  /** a new inode with other content (or content that cannot be compared) */
  | 'content'
  /** a new inode with the same content: metadata (mode, owner, mtime) changed */
  | 'metadata';

/** How `cur` differs from `prev`, the path's entry in the generation before (if it had one). */
export function versionChange(prev: ManifestEntry | undefined, cur: ManifestEntry): Change {
  if (!prev) return 'new';
  if (prev.type !== cur.type) return 'content';
  if (cur.type === 'dir') {
    const same = prev.mode === cur.mode && prev.uid === cur.uid && prev.gid === cur.gid &&
      prev.mtimeSec === cur.mtimeSec && prev.mtimeNsec === cur.mtimeNsec;
    return same ? 'same' : 'metadata';
  }
  if (cur.ino !== 0 && prev.ino === cur.ino) return 'same';
  if (cur.type === 'symlink') return prev.target && cur.target && prev.target.equals(cur.target) ? 'metadata' : 'content';
  if (cur.type === 'file') {
    if (prev.size !== cur.size) return 'content';
    if (prev.hash !== null && cur.hash !== null) return prev.hash === cur.hash ? 'metadata' : 'content';
    return 'content';
  }
  return prev.rdev === cur.rdev ? 'metadata' : 'content';
}
