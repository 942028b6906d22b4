/**
 * What to do with one source entry, given the previous generation's record of the same name:
 * a pure function with its reason attached (restic's fileChanged is the model), so the
 * decisions are table-tested without a disk and `backup --dry-run` prints them.
 */
import { sameMeta, type Meta } from '../fs/entry.js';
import { parseXattrs, sameXattrs } from '../fs/xattrs.js';
import { FLAG, type ManifestEntry } from '../manifest/format.js';

export type Action =
  /** hard link to the previous generation's inode */
  | 'link'
  /** write a new inode with the source's content */
  | 'copy'
  | 'mkdir'
  | 'symlink'
  /** a FIFO, socket or device node, recreated */
  | 'mknod'
  /** a device node that cannot be created (not root): recorded in the manifest only */
  | 'record';

export interface Decision {
  action: Action;
  reason: string;
}

export interface DecideContext {
  /** the previous generation can be linked from */
  prevAvailable: boolean;
  asRoot: boolean;
  /** `--checksum`: an unchanged-looking file is linked only when its content hash is the same */
  checksum?: boolean;
  /**
   * extended attributes and ACLs count (the default; --no-xattrs turns them off): an entry
   * whose attributes changed gets a new inode, like a chmod
   */
  xattrs?: boolean;
  /**
   * the source root's device: a record's source inode number is compared with an entry's only
   * on it (below another file system mounted in the source, the ctime alone tells)
   */
  rootDev?: number;
  /**
   * the previous manifest records ctimes (format 3 and later): a record of it without one was
   * made while its file was changing (racy) or with a ctime ahead of the clock, and cannot
   * vouch for the file's content
   */
  prevRecordsCtime?: boolean;
}

/** The inode fields of a scanned entry (SourceEntry's) that tell whether it moved since its record. */
export interface InodeStamp {
  ino: number;
  dev: number;
  ctimeSec: number;
  ctimeNsec: number;
}

function changeReason(e: Meta, p: ManifestEntry, ctx: DecideContext): string {
  if (p.flags & FLAG.UNSTABLE) return 'changed while read last time';
  if (p.flags & FLAG.ABSENT) return 'not materialized last time';
  if (e.type !== p.type) return `type ${p.type} -> ${e.type}`;
  if (e.type === 'symlink' && !(e.target && p.target && e.target.equals(p.target))) return 'target';
  if (e.size !== p.size && e.type === 'file') return 'size';
  if (e.mtimeSec !== p.mtimeSec || e.mtimeNsec !== p.mtimeNsec) return 'mtime';
  if (e.uid !== p.uid || e.gid !== p.gid) return 'owner';
  if (e.mode !== p.mode) return 'mode';
  if (e.rdev !== p.rdev) return 'device number';
  if (ctx.xattrs && !sameXattrs(e.xattrs, p.xattrs)) return attributeReason(e.xattrs, p.xattrs);
  return 'changed';
}

/** 'acl', 'xattrs' or 'acl, xattrs': which of its extended attributes changed (itemize's a and x). */
export function attributeReason(a: Buffer | null, b: Buffer | null): string {
  const before = new Map(parseXattrs(b).map((x) => [x.name.toString('latin1'), x.value]));
  let acl = false;
  let other = false;
  const mark = (name: string) => {
    if (name.startsWith('system.posix_acl_')) acl = true;
    else other = true;
  };
  for (const x of parseXattrs(a)) {
    const n = x.name.toString('latin1');
    const v = before.get(n);
    before.delete(n);
    if (!v || !v.equals(x.value)) mark(n);
  }
  for (const n of before.keys()) mark(n);
  return acl && other ? 'acl, xattrs' : acl ? 'acl' : 'xattrs';
}

function create(e: Meta, ctx: DecideContext): Action {
  switch (e.type) {
    case 'dir':
      return 'mkdir';
    case 'file':
      return 'copy';
    case 'symlink':
      return 'symlink';
    case 'fifo':
    case 'socket':
      return 'mknod';
    case 'char':
    case 'block':
      return ctx.asRoot ? 'mknod' : 'record';
  }
}

function looksUnchanged(e: Meta, p: ManifestEntry, ctx: DecideContext): boolean {
  return !(p.flags & (FLAG.UNSTABLE | FLAG.ABSENT)) && sameMeta(e, p) && (!ctx.xattrs || sameXattrs(e.xattrs, p.xattrs));
}

/**
 * Whether a file to copy holds, by the rule that lets an unchanged file be linked (size and mtime
 * to the nanosecond), the content of its previous record: only its mode, owner or attributes
 * changed (a chmod, chown, setfacl). Its previous inode can then be cloned (a new inode with the
 * new metadata sharing the old data) where the spool clones (src/apply/clone.ts), once checked
 * against the record as a link would be. Empty files are simply written.
 */
export function sameContentAsRecord(e: Meta, p: ManifestEntry | undefined): boolean {
  return (
    p !== undefined &&
    e.type === 'file' &&
    p.type === 'file' &&
    p.hash !== null &&
    e.size > 0 &&
    !(p.flags & (FLAG.UNSTABLE | FLAG.ABSENT)) &&
    e.size === p.size &&
    e.mtimeSec === p.mtimeSec &&
    e.mtimeNsec === p.mtimeNsec
  );
}

/**
 * Why the source file may hold other bytes than its record says although its size and mtime are
 * the record's, or null: its ctime moved since the record was made, or another inode holds the
 * name (a write moves the ctime, and so does every change of metadata; nothing but the clock
 * sets it back); or the record has no ctime although its manifest records them (made while the
 * file was changing, within a second of its run's start or later: "racy", as git's index says;
 * or a ctime ahead of the clock). Such a file is linked, or its previous inode cloned, only when
 * its content hash is the record's: an edit that restores the mtime (`touch -r`, `cp -p` over
 * it, a clock set back) is not linked as unchanged. A record of format 2 (no ctimes), one read
 * from the previous generation itself for a damaged manifest block (no ctime, no hash) or a
 * scanned entry without a ctime (`e` not a SourceEntry) cannot tell: null, the size and mtime
 * decide, as before.
 */
export function compareReason(e: Meta & Partial<InodeStamp>, p: ManifestEntry, ctx: DecideContext): 'ctime moved' | 'no ctime recorded' | null {
  if (e.ctimeSec === undefined) return null;
  // (a record without a hash either is the generation's own file standing for a damaged
  // manifest block: nothing to compare with, size and mtime decide as they did)
  if (p.ctimeSec === 0 && p.ctimeNsec === 0) return ctx.prevRecordsCtime && p.hash !== null ? 'no ctime recorded' : null;
  if (e.ctimeSec !== p.ctimeSec || e.ctimeNsec !== p.ctimeNsec) return 'ctime moved';
  return p.srcIno && e.ino !== undefined && e.dev === ctx.rootDev && e.ino !== p.srcIno ? 'ctime moved' : null;
}

/** Whether compareReason() has one: the source's content must be compared with the record's. */
export function movedSinceRecord(e: Meta & Partial<InodeStamp>, p: ManifestEntry, ctx: DecideContext): boolean {
  return compareReason(e, p, ctx) !== null;
}

/**
 * Whether deciding needs the source's content hash: a regular file that size and mtime say is
 * unchanged, with a previous generation to link to, under `--checksum` or when its inode moved
 * since its record (movedSinceRecord).
 */
export function needsChecksum(e: Meta & Partial<InodeStamp>, p: ManifestEntry | undefined, ctx: DecideContext): boolean {
  return e.type === 'file' && p !== undefined && ctx.prevAvailable && looksUnchanged(e, p, ctx) && (Boolean(ctx.checksum) || movedSinceRecord(e, p, ctx));
}

/** Whether decide()'s reason says a file's bytes differ from its record's under the same size and mtime, found without --checksum. */
export function isSameStampChange(reason: string): boolean {
  return reason.startsWith('content differs (size and mtime kept');
}

/**
 * `sourceHash` is the source file's XXH64 (hex) when needsChecksum() asked for it; null when it
 * could not be read (the copy then reports why).
 */
export function decide(e: Meta & Partial<InodeStamp>, p: ManifestEntry | undefined, ctx: DecideContext, sourceHash?: string | null): Decision {
  if (e.type === 'dir') return { action: 'mkdir', reason: p?.type === 'dir' ? 'directory' : 'new directory' };
  if (!p) return { action: create(e, ctx), reason: 'new' };
  if (looksUnchanged(e, p, ctx)) {
    if (ctx.prevAvailable && needsChecksum(e, p, ctx)) {
      if (!ctx.checksum) {
        const why = compareReason(e, p, ctx)!;
        if (!p.hash) return { action: 'copy', reason: `no previous content hash (${why})` };
        if (!sourceHash) return { action: 'copy', reason: `source not hashed (${why})` };
        if (sourceHash !== p.hash) return { action: 'copy', reason: `content differs (size and mtime kept, ${why})` };
        return { action: 'link', reason: `unchanged (content compared: ${why})` };
      }
      if (!p.hash) return { action: 'copy', reason: 'no previous content hash (checksum)' };
      if (!sourceHash) return { action: 'copy', reason: 'source not hashed (checksum)' };
      if (sourceHash !== p.hash) return { action: 'copy', reason: 'content differs (checksum)' };
      return { action: 'link', reason: 'unchanged (checksum)' };
    }
    if (ctx.prevAvailable) return { action: 'link', reason: 'unchanged' };
    return { action: create(e, ctx), reason: 'unchanged, previous generation not reachable' };
  }
  return { action: create(e, ctx), reason: changeReason(e, p, ctx) };
}
