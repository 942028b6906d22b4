/**
 * The audit of a journaled backup: a random sample of the directories the journal says are
 * unchanged is read from the source and compared with the previous manifest, entry by entry
 * (names; type, size, mtime, mode, owner of non-directories; type, mode, owner of
 * directories, whose times change with their entries). A dropped inotify event, or a change
 * chokidar could not name, shows up here; any mismatch makes the run scan everything.
 */
import { sameMetaBesideEntries, type SourceEntry } from '../fs/entry.js';
import { byName } from '../manifest/merge.js';
import { scanBelow } from './scan-below.js';
import type { ManifestEntry } from '../manifest/format.js';
import type { ManifestReader } from '../manifest/reader.js';
import { displayPath, joinRel } from '../paths/escape.js';
import type { ExcludeMatcher } from '../exclude/patterns.js';
import { alwaysScanned, isDirtyDir } from './unchanged-dirs.js';

export interface AuditQuery {
  /** the source root the backup opened (a symlink on the source's path is followed once, there) */
  rootFd: number;
  reader: ManifestReader;
  dirty: ReadonlySet<string>;
  /** of the dirty directories, those whose changed entries the journal names (latin1 keys) */
  names?: ReadonlyMap<string, ReadonlySet<string>>;
  sample: number;
  excludes: ExcludeMatcher;
  skipDirs: Map<string, string>;
  /** [0, 1) random numbers; Math.random by default */
  random?: () => number;
}

export interface AuditResult {
  checked: number;
  /** the first difference found, escaped for humans; null when the sample matched */
  mismatch: string | null;
}

export function audit(q: AuditQuery): AuditResult {
  const random = q.random ?? Math.random;
  const keys = q.reader.dirKeys().filter((k) => !isDirtyDir(Buffer.from(k, 'latin1'), q.dirty));
  const n = Math.min(q.sample, keys.length);
  // a partial Fisher-Yates shuffle: the first n are the sample
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(random() * (keys.length - i));
    [keys[i], keys[j]] = [keys[j]!, keys[i]!];
  }
  let checked = 0;
  for (let i = 0; i < n; i++) {
    const rel = Buffer.from(keys[i]!, 'latin1');
    const prev = q.reader.dir(rel) ?? [];
    if (alwaysScanned(prev)) continue; // the backup reads it anyway
    const diff = auditDir(q, rel, prev);
    if (diff === GONE_WITH_ANCESTOR) continue;
    checked++;
    if (diff) return { checked, mismatch: diff };
  }
  return { checked, mismatch: null };
}

/**
 * A directory above `rel` changed where `rel`'s path goes through it (it was read whole, or the
 * entry on the path was named): a sampled `rel` that is gone was renamed or removed with that
 * ancestor, which the journal records there, not in `rel` (fanotify names the ancestor's entry
 * only), and the backup, reading the ancestor, does not look for it.
 */
function changedAbove(rel: Buffer, dirty: ReadonlySet<string>, names?: ReadonlyMap<string, ReadonlySet<string>>): boolean {
  if (!rel.length) return false;
  for (let start = 0; ;) {
    const end = rel.indexOf(0x2f, start);
    const parent = rel.subarray(0, start === 0 ? 0 : start - 1);
    const comp = rel.subarray(start, end < 0 ? rel.length : end);
    if (isDirtyDir(parent, dirty)) {
      const named = names?.get(parent.toString('utf8'));
      if (!named || named.has(comp.toString('latin1'))) return true;
    }
    if (end < 0) return false;
    start = end + 1;
  }
}

const GONE_WITH_ANCESTOR = '';

/** The first difference between one source directory and its manifest block, or null. */
function auditDir(q: AuditQuery, rel: Buffer, prev: ManifestEntry[]): string | null {
  const read = scanBelow(q.rootFd, rel);
  if ('failed' in read && read.failed === 'open' && changedAbove(rel, q.dirty, q.names)) return GONE_WITH_ANCESTOR;
  if ('failed' in read) return `${displayPath(rel) || '/'}: cannot be ${read.failed === 'open' ? 'opened' : 'read'} any more`;
  for (const [p, e] of byName(
    prev,
    read.entries.filter((x) => !skipped(q, rel, x)),
  )) {
    if (!e) return `${displayPath(joinRel(rel, p!.name))}: gone`;
    const path = displayPath(joinRel(rel, e.name));
    if (!p) return `${path}: new`;
    if (e.err) return `${path}: cannot be read`;
    if (!sameMetaBesideEntries(e, p)) return `${path}: changed`;
  }
  return null;
}

/** Entries the backup does not record: excluded ones, the spool. */
function skipped(q: AuditQuery, rel: Buffer, e: SourceEntry): boolean {
  const isDir = e.type === 'dir';
  if (!q.excludes.empty && q.excludes.excluded(joinRel(rel, e.name), e.name, isDir)) return true;
  return isDir && q.skipDirs.has(`${e.dev}:${e.ino}`);
}
