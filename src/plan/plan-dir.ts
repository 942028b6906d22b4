/**
 * The plan of one directory: each source entry, merged by name with the previous generation's
 * record of the same name, becomes a step with what to do and why. Pure: no I/O (restic's
 * archiver keeps the same split: decide, then act). The tree builder (src/apply/build-tree.ts)
 * carries the steps out, `backup --dry-run` prints them. One directory at a time, so memory
 * stays bounded by the widest directory.
 *
 * A step is one of:
 * - `unreadable`: the scan could not stat the entry or read its attributes (the builder keeps
 *   its previous version when there is one: `pi` >= 0);
 * - `excluded`, `spool` (the spool itself, lying inside the source);
 * - `record-copy`: a regular file recorded exactly as it is now (the common case of a nightly
 *   run): linked, its record copied byte for byte;
 * - `inspect`: deciding needs a read first (its extended attributes, or its content hash: under
 *   --checksum, or where size and mtime match a record whose ctime or inode moved since:
 *   decide.ts movedSinceRecord); the builder reads, then calls decide();
 * - `decided`: decide()'s verdict, with, for a directory, whether it is another file system's
 *   root under --one-file-system.
 *
 * An `inspect` or `decided` step of a further name of a source inode (nlink > 1) says which name
 * it is a hard link to (`linkTo`: the first name met in this run, link-names.ts); the first
 * name's own step has `linkTo` null and is carried out as any entry, the builder then linking
 * the further names to what it made of it (one whose metadata moved since the first was read,
 * `linkTo.changed`, only when it is what the group holds: src/apply/hard-links.ts).
 */
import { errnoName } from '../fs/native.js';
import type { SourceEntry } from '../fs/entry.js';
import type { ManifestEntry } from '../manifest/format.js';
import type { PrevDir } from './prev-dir.js';
import type { ExcludeMatcher } from '../exclude/patterns.js';
import type { LinkTo, SourceLinkNames } from './link-names.js';
import { joinRel } from '../paths/escape.js';
import { decide, needsChecksum, type DecideContext, type Decision } from './decide.js';

export interface PlanContext extends DecideContext {
  excludes: ExcludeMatcher;
  /** directories never entered (dev:ino -> what they are): the spool inside the source */
  skipDirs: ReadonlyMap<string, string>;
  oneFileSystem: boolean;
  /** the source root's device (--one-file-system) */
  rootDev: number;
  /** unchanged regular files may be recorded by copying their previous record (not with --checksum, not in a dry run) */
  recordCopies: boolean;
  /** records of the previous manifest tell an entry's attributes when its ctime is unchanged */
  prevXattrsTrusted: boolean;
  /**
   * the previous records were made with attributes off: what a previous inode carries is read
   * from it (step 'inspect', need 'prev-xattrs') before it may be linked
   */
  prevXattrsUnrecorded?: boolean;
  /** the run's names of source inodes with several (none: each name planned on its own) */
  linkNames?: SourceLinkNames;
}

export type Step =
  | { kind: 'unreadable'; e: SourceEntry; pi: number; code: string; what: string }
  | { kind: 'excluded'; e: SourceEntry }
  | { kind: 'spool'; e: SourceEntry; what: string }
  | { kind: 'record-copy'; e: SourceEntry; pi: number; bytes: Buffer }
  | { kind: 'inspect'; e: SourceEntry; pi: number; p: ManifestEntry | undefined; need: 'xattrs' | 'checksum' | 'prev-xattrs'; linkTo: LinkTo | null }
  | { kind: 'decided'; e: SourceEntry; pi: number; p: ManifestEntry | undefined; d: Decision; crossesMount: boolean; linkTo: LinkTo | null };

/** decide()'s verdict on a file recorded exactly as it is now */
export const UNCHANGED: Readonly<Decision> = Object.freeze({ action: 'link', reason: 'unchanged' });

/**
 * Completes a scanned entry's attributes from its previous record where that is certain (the
 * ctime did not move since the record was made); true when they are known.
 */
export function attributesKnown(e: SourceEntry, p: ManifestEntry | undefined, ctx: PlanContext): boolean {
  if (!ctx.xattrs || e.xattrsRead) return true;
  // the same ctime on the same inode (format 4 records the source's inode; an older record does not stand)
  if (
    p &&
    ctx.prevXattrsTrusted &&
    (p.ctimeSec !== 0 || p.ctimeNsec !== 0) &&
    p.ctimeSec === e.ctimeSec &&
    p.ctimeNsec === e.ctimeNsec &&
    !!p.srcIno &&
    p.srcIno === e.ino &&
    // an inode number names one file only on one file system, and the record does not say
    // which: below another file system mounted in the source, attributes are read
    e.dev === ctx.rootDev
  ) {
    e.xattrs = p.xattrs;
    e.xattrsRead = true;
    return true;
  }
  return false;
}

/** The steps of one directory whose path is `rel`; `entries` sorted by name bytes (as scanned). */
export function planDir(rel: Buffer, entries: readonly SourceEntry[], prev: PrevDir, ctx: PlanContext): Step[] {
  const steps: Step[] = new Array(entries.length);
  let pi = 0;
  const pn = prev.length;
  for (let k = 0; k < entries.length; k++) {
    const e = entries[k]!;
    while (pi < pn && prev.compareName(pi, e.name) < 0) pi++;
    const at = pi < pn && prev.compareName(pi, e.name) === 0 ? pi : -1;
    const step = (steps[k] = planEntry(rel, e, at, prev, ctx));
    // a name of a source inode with several (not excluded, readable): the first met, or a further one
    if (e.nlink > 1 && e.type !== 'dir' && ctx.linkNames && (step.kind === 'inspect' || step.kind === 'decided')) step.linkTo = ctx.linkNames.linkTo(rel, e);
  }
  return steps;
}

/**
 * The step of one entry; `pi` is its previous record's index in `prev`, or -1; `linkTo` the
 * first name it is a further name of (planDir tells; again when an inspected entry is planned on).
 */
export function planEntry(rel: Buffer, e: SourceEntry, pi: number, prev: PrevDir, ctx: PlanContext, linkTo: LinkTo | null = null): Step {
  if (e.err) {
    return e.err === -1
      ? { kind: 'unreadable', e, pi, code: 'EINVAL', what: 'unknown file type' }
      : { kind: 'unreadable', e, pi, code: errnoName(e.err), what: 'cannot stat' };
  }
  if (e.xattrErr && ctx.xattrs) return { kind: 'unreadable', e, pi, code: errnoName(e.xattrErr), what: 'cannot read its extended attributes' };
  const isDir = e.type === 'dir';
  if (!ctx.excludes.empty && ctx.excludes.excluded(joinRel(rel, e.name), e.name, isDir)) return { kind: 'excluded', e };
  if (pi >= 0 && ctx.recordCopies && ctx.prevAvailable && e.type === 'file' && e.nlink === 1 && e.dev === ctx.rootDev) {
    const bytes = prev.unchangedFile(pi, e);
    // (its attributes are the record's: its ctime did not move; not decoded here, the builder
    // reads them from the source should the link fail and a copy be needed)
    if (bytes) return { kind: 'record-copy', e, pi, bytes };
  }
  const p = pi >= 0 ? prev.decode(pi) : undefined;
  if (isDir) {
    const skip = ctx.skipDirs.get(`${e.dev}:${e.ino}`);
    if (skip) return { kind: 'spool', e, what: skip };
  }
  if (!attributesKnown(e, p, ctx)) return { kind: 'inspect', e, pi, p, need: 'xattrs', linkTo };
  if (ctx.prevXattrsUnrecorded && ctx.xattrs && p && p.type !== 'dir') return { kind: 'inspect', e, pi, p, need: 'prev-xattrs', linkTo };
  return afterAttributes(e, pi, p, ctx, linkTo);
}

/** The step of an entry whose own and previous attributes are known: a checksum to take first, or the decision. */
export function afterAttributes(e: SourceEntry, pi: number, p: ManifestEntry | undefined, ctx: PlanContext, linkTo: LinkTo | null = null): Step {
  if (needsChecksum(e, p, ctx)) return { kind: 'inspect', e, pi, p, need: 'checksum', linkTo };
  return decided(e, pi, p, ctx, undefined, linkTo);
}

/** The `decided` step of an entry whose attributes are known (and, for --checksum, whose hash is given). */
export function decided(
  e: SourceEntry,
  pi: number,
  p: ManifestEntry | undefined,
  ctx: PlanContext,
  sourceHash?: string | null,
  linkTo: LinkTo | null = null,
): Step {
  const d = decide(e, p, ctx, sourceHash);
  return { kind: 'decided', e, pi, p, d, crossesMount: e.type === 'dir' && ctx.oneFileSystem && e.dev !== ctx.rootDev, linkTo };
}
