/**
 * `diff`: what changed between two generations, from their manifests alone. Both manifests
 * hold each directory's entries sorted by name bytes, so the two are merged directory by
 * directory, depth first; memory is bounded by the depth of the tree and one directory's
 * entries per level.
 *
 * Each entry present in both is classified by classify() (pure):
 * - the same generation inode (manifest `ino`) is unchanged, whatever else (unless the two
 *   manifests name different file systems: a spool copied to another disk in between);
 * - content: type changed; files whose size or recorded hash differ (or whose mtime differs
 *   when either hash is unknown); symlinks whose target differs; devices whose number differs;
 * - metadata only: mode, owner, mtime, POSIX ACLs, other extended attributes (directories, or
 *   files with the same content).
 * Entries the newer generation carried from an older one (the source could not be read) are
 * listed as `carried` (the roots the manifest's footer names), whatever else changed.
 */
import { displayPath, joinRel, parseDisplayPath } from '../paths/escape.js';
import { attributeReason } from '../plan/decide.js';
import { sameXattrs } from '../fs/xattrs.js';
import { FLAG, type ManifestEntry } from '../manifest/format.js';
import type { ManifestReader } from '../manifest/reader.js';
import { byName, type Pair } from '../manifest/merge.js';
import { isoNs, octal } from './manifests.js';

export type ChangeKind = 'added' | 'removed' | 'content' | 'metadata' | 'carried';

export interface MetaChange {
  field: 'type' | 'mode' | 'uid' | 'gid' | 'mtime' | 'size' | 'target' | 'rdev' | 'hash' | 'acl' | 'xattrs' | 'carried';
  from: string;
  to: string;
}

export interface Change {
  kind: ChangeKind;
  /** path relative to the part root, bytes */
  path: Buffer;
  /** the entry's type (the newer one for a change) */
  type: ManifestEntry['type'];
  /** for content and metadata changes: what differs */
  changes: MetaChange[];
  /** the entry (the newer one of a change) is recorded but not in the generation's tree (a device when not root) */
  absent?: boolean;
}

export interface DiffCounts {
  added: number;
  removed: number;
  content: number;
  metadata: number;
  carried: number;
}

/** Whether a manifest records entries' attributes (format 3, not made with --no-xattrs). */
export function recordsAttributes(m: ManifestReader): boolean {
  return m.version >= 3 && !m.footer.xattrsSkipped;
}

/** Calls onChange for every difference, in depth-first, name-sorted order; returns counts. */

export function diffManifests(a: ManifestReader, b: ManifestReader, onChange: (c: Change) => void): DiffCounts {
  const attrs = recordsAttributes(a) && recordsAttributes(b);
  const counts: DiffCounts = { added: 0, removed: 0, content: 0, metadata: 0, carried: 0 };
  const emit = (c: Change) => {
    counts[c.kind]++;
    onChange(c);
  };
  const rootChanges = metaChanges(a.root, b.root, attrs);
  if (rootChanges.length) emit({ kind: 'metadata', path: Buffer.alloc(0), type: 'dir', changes: rootChanges });
  mergeDir(a, b, Buffer.alloc(0), emit, attrs, inodesComparable(a, b));
  for (const c of b.footer.carried?.first ?? []) {
    let path: Buffer;
    try {
      path = parseDisplayPath(c.path);
    } catch {
      continue;
    }
    emit({ kind: 'carried', path, type: 'file', changes: [{ field: 'carried', from: c.from, to: c.code }] });
  }
  return counts;
}

/**
 * Whether the two manifests' inode numbers belong to one file system: not when their footers
 * name different ones (the spool was copied to another disk between them, and an old number
 * may be reused by another file). Manifests older than format 3 name none: trusted as before.
 */
function inodesComparable(a: ManifestReader, b: ManifestReader): boolean {
  const fa = a.footer.spool?.fsid;
  const fb = b.footer.spool?.fsid;
  return !fa || !fb || fa === fb;
}

/** One directory being compared (both sides) or listed (one side only) by mergeDir. */
type Level =
  | { both: true; rel: Buffer; pairs: Iterator<Pair<ManifestEntry, ManifestEntry>> }
  | { both: false; m: ManifestReader; rel: Buffer; kind: 'added' | 'removed'; entries: Iterator<ManifestEntry> };

/**
 * The changes below `top` between a and b, in order (an entry, then what is below it): a walk
 * with a stack of its own (a tree 5,000 levels deep overflowed the call stack).
 */
function mergeDir(a: ManifestReader, b: ManifestReader, top: Buffer, emit: (c: Change) => void, attrs: boolean, sameFs: boolean): void {
  const both = (rel: Buffer): Level => ({ both: true, rel, pairs: byName(a.dir(rel) ?? [], b.dir(rel) ?? []) });
  const one = (m: ManifestReader, rel: Buffer, kind: 'added' | 'removed'): Level => ({
    both: false,
    m,
    rel,
    kind,
    entries: (m.dir(rel) ?? [])[Symbol.iterator](),
  });
  const stack: Level[] = [both(top)];
  while (stack.length) {
    const l = stack[stack.length - 1]!;
    if (!l.both) {
      // an entry on one side only, and everything below it when it is a directory
      const n = l.entries.next();
      if (n.done) {
        stack.pop();
        continue;
      }
      const path = joinRel(l.rel, n.value.name);
      emit({ kind: l.kind, path, type: n.value.type, changes: [], ...absent(n.value) });
      if (n.value.type === 'dir') stack.push(one(l.m, path, l.kind));
      continue;
    }
    const n = l.pairs.next();
    if (n.done) {
      stack.pop();
      continue;
    }
    const [x, y] = n.value;
    const e = (x ?? y)!;
    const path = joinRel(l.rel, e.name);
    if (!y || !x) {
      const kind = y ? 'added' : 'removed';
      emit({ kind, path, type: e.type, changes: [], ...absent(e) });
      if (e.type === 'dir') stack.push(one(y ? b : a, path, kind));
      continue;
    }
    const kind = classify(x, y, attrs, sameFs);
    if (kind) emit({ kind, path, type: y.type, changes: kind === 'metadata' ? metaChanges(x, y, attrs) : contentChanges(x, y, attrs), ...absent(y) });
    if (x.type === 'dir' && y.type === 'dir') stack.push(both(path));
    else if (x.type === 'dir') stack.push(one(a, path, 'removed'));
    else if (y.type === 'dir') stack.push(one(b, path, 'added'));
  }
}

const absent = (e: ManifestEntry): { absent?: true } => (e.flags & FLAG.ABSENT ? { absent: true } : {});

/**
 * How an entry present in both generations changed, or null when it did not. `attrs`: both
 * records come from manifests that record attributes (recordsAttributes()); `sameFs`: the two
 * records' inode numbers belong to one file system (one generation inode is one content).
 */
export function classify(a: ManifestEntry, b: ManifestEntry, attrs = true, sameFs = true): 'content' | 'metadata' | null {
  if (a.type !== b.type) return 'content';
  if (sameFs && a.type !== 'dir' && a.ino !== 0 && a.ino === b.ino) return null;
  switch (a.type) {
    case 'file':
      if (a.size !== b.size) return 'content';
      if (a.hash !== null && b.hash !== null) {
        if (a.hash !== b.hash) return 'content';
      } else if (a.mtimeSec !== b.mtimeSec || a.mtimeNsec !== b.mtimeNsec) {
        return 'content';
      }
      break;
    case 'symlink':
      if (!a.target || !b.target || !a.target.equals(b.target)) return 'content';
      break;
    case 'char':
    case 'block':
      if (a.rdev !== b.rdev) return 'content';
      break;
    default:
      break;
  }
  return metaChanges(a, b, attrs).length ? 'metadata' : null;
}

/** Mode, owner and mtime differences (the metadata a content-preserving change can touch). */
export function metaChanges(a: ManifestEntry, b: ManifestEntry, attrs = true): MetaChange[] {
  const out: MetaChange[] = [];
  if (a.mode !== b.mode && a.type !== 'symlink') out.push({ field: 'mode', from: octal(a.mode), to: octal(b.mode) });
  if (a.uid !== b.uid) out.push({ field: 'uid', from: String(a.uid), to: String(b.uid) });
  if (a.gid !== b.gid) out.push({ field: 'gid', from: String(a.gid), to: String(b.gid) });
  if (a.mtimeSec !== b.mtimeSec || a.mtimeNsec !== b.mtimeNsec) {
    out.push({ field: 'mtime', from: isoNs(a.mtimeSec, a.mtimeNsec), to: isoNs(b.mtimeSec, b.mtimeNsec) });
  }
  // attributes are compared only where both manifests record them
  if (attrs && !sameXattrs(a.xattrs, b.xattrs)) {
    const r = attributeReason(b.xattrs, a.xattrs);
    if (r.includes('acl')) out.push({ field: 'acl', from: 'before', to: 'changed' });
    if (r.includes('xattrs')) out.push({ field: 'xattrs', from: 'before', to: 'changed' });
  }
  return out;
}

function contentChanges(a: ManifestEntry, b: ManifestEntry, attrs: boolean): MetaChange[] {
  const out: MetaChange[] = [];
  if (a.type !== b.type) return [{ field: 'type', from: a.type, to: b.type }];
  if (a.size !== b.size) out.push({ field: 'size', from: String(a.size), to: String(b.size) });
  if (a.hash !== null && b.hash !== null && a.hash !== b.hash) out.push({ field: 'hash', from: a.hash, to: b.hash });
  if (a.type === 'symlink') out.push({ field: 'target', from: displayPath(a.target ?? Buffer.alloc(0)), to: displayPath(b.target ?? Buffer.alloc(0)) });
  if (a.type === 'char' || a.type === 'block') out.push({ field: 'rdev', from: String(a.rdev), to: String(b.rdev) });
  return [...out, ...metaChanges(a, b, attrs)];
}
