/**
 * Hard links the previous generation does not know about. A write through one name of a
 * hard-linked file makes an inotify event only in the directory of that name; the tree builder
 * rescans every directory whose block records a hard-linked name (unchanged-dirs.ts), but a link
 * made after the previous generation's scan is not in any block yet: `ln d2/f other/g`, then a
 * write through other/g, marks `other` and never `d2`, whose entry is then taken, stale, from
 * the manifest.
 *
 * Every such link made a change (the new name) in a directory the journal names, so before the
 * journal is trusted the journal's dirty directories that exist are read (one scandir each,
 * dirty directories only; where the journal names the entries that changed, only those are
 * stat-ed: the new name is one of them): a non-directory with more than one name that the previous manifest
 * does not record as hard-linked (a new name, or linkGroup 0) sends the run to a full scan,
 * which records it. A second name outside the source cannot be seen at all (docs/WATCH.md).
 */
import { scanBelow } from './scan-below.js';
import { ST, sys } from '../fs/native.js';
import { typeOfMode } from '../fs/entry.js';

// O_PATH: fstat and fstatat are all this needs; on FUSE or NFS it spares the open and release of
// the directory (two round trips per changed directory)
const O_DIR_PATH = sys.O_PATH | sys.O_DIRECTORY | sys.O_NOFOLLOW;
const DOT = Buffer.from('.');
import type { ManifestReader } from '../manifest/reader.js';
import { displayPath, joinRel } from '../paths/escape.js';
import type { ExcludeMatcher } from '../exclude/patterns.js';

export interface NewLinkQuery {
  /** the source root the backup opened */
  rootFd: number;
  rootDev: number;
  reader: ManifestReader;
  /** the journal's dirty directories (UTF-8, relative to the root) */
  dirty: ReadonlySet<string>;
  /** of those, the ones whose changed entries the journal names (latin1 keys of the names) */
  names?: ReadonlyMap<string, ReadonlySet<string>>;
  excludes: ExcludeMatcher;
}

/** Why a journaled run scans everything after a hard link was made (`shown`: its name, escaped). */
export function newLinkReason(shown: string): string {
  return `${shown} has a hard link made since the previous generation's scan (a write through another name makes no event in its directory)`;
}

/** The first name (escaped for humans) of a hard link the previous manifest does not record, or null. */
export function unrecordedLink(q: NewLinkQuery): string | null {
  for (const dir of q.dirty) {
    const rel = Buffer.from(dir, 'utf8');
    if (excludedDir(q.excludes, rel)) continue;
    const named = q.names?.get(dir);
    if (named) {
      const found = namedLink(q, rel, named);
      if (found) return found;
      continue;
    }
    const read = scanBelow(q.rootFd, rel);
    // gone or no longer a directory: the scan of its parent (dirty too) sees that; unreadable:
    // the builder's scan of it reports the problem; a hard link never crosses file systems,
    // and another device's directory is scanned anyway
    if ('failed' in read || read.dev !== q.rootDev) continue;
    const linked = new Map<string, number>();
    for (const p of q.reader.dir(rel) ?? []) if (p.type !== 'dir') linked.set(p.name.toString('latin1'), p.linkGroup);
    for (const e of read.entries) {
      // every non-directory with several names is grouped by the builder, symlinks too
      if (e.err || e.type === 'dir' || e.nlink < 2) continue;
      const relPath = joinRel(rel, e.name);
      if (!q.excludes.empty && q.excludes.excluded(relPath, e.name, false)) continue;
      if (!linked.get(e.name.toString('latin1'))) return displayPath(relPath);
    }
  }
  return null;
}

/** The named entries of one directory: the first with an unrecorded link, or null. */
function namedLink(q: NewLinkQuery, rel: Buffer, named: ReadonlySet<string>): string | null {
  const fd = sys.openat(q.rootFd, rel.length ? rel : DOT, O_DIR_PATH, 0);
  if (fd < 0) return null; // gone: its parent's scan sees that; unreadable: the builder reports it
  try {
    const st = new Float64Array(sys.STAT_FIELDS);
    if (sys.fstat(fd, st) !== 0 || st[ST.DEV] !== q.rootDev) return null;
    let linked: Map<string, number> | null = null;
    for (const key of named) {
      const name = Buffer.from(key, 'latin1');
      if (sys.fstatat(fd, name, st, 1) !== 0) continue; // gone since
      const type = typeOfMode(st[ST.MODE]!);
      if (type === 'dir' || st[ST.NLINK]! < 2) continue;
      const relPath = joinRel(rel, name);
      if (!q.excludes.empty && q.excludes.excluded(relPath, name, false)) continue;
      if (!linked) {
        linked = new Map();
        for (const p of q.reader.dir(rel) ?? []) if (p.type !== 'dir') linked.set(p.name.toString('latin1'), p.linkGroup);
      }
      if (!linked.get(key)) return displayPath(relPath);
    }
    return null;
  } finally {
    sys.close(fd);
  }
}

/** The directory, or one above it, is excluded: the backup records nothing in it. */
function excludedDir(excludes: ExcludeMatcher, rel: Buffer): boolean {
  if (excludes.empty || !rel.length) return false;
  for (let i = rel.indexOf(0x2f); ; i = rel.indexOf(0x2f, i + 1)) {
    const end = i < 0 ? rel.length : i;
    const prefix = rel.subarray(0, end);
    const start = prefix.lastIndexOf(0x2f) + 1;
    if (excludes.excluded(prefix, prefix.subarray(start), true)) return true;
    if (i < 0) return false;
  }
}
