/**
 * An entry the source cannot give in this run (a directory that cannot be opened or read, a
 * file that cannot be opened, read or stat-ed, attributes that cannot be read) keeps its
 * previous version in the new generation: linked from the previous generation (checked like any
 * link), recorded as the previous record with the CARRIED flag, reported (exit 23), and named
 * in the manifest's footer with the generation it comes from. So `last` never loses data to a
 * transient read error: the tape job that copies it saves yesterday's Maildir, not an empty one.
 * An entry that never had a previous version is reported as before and is absent.
 */
import { displayPath, joinRel } from '../paths/escape.js';
import type { SourceEntry } from '../fs/entry.js';
import { FLAG, type ManifestEntry } from '../manifest/format.js';
import type { BuildContext } from './build-context.js';
import type { Carry, Frame } from './frame.js';
import type { Linker } from './linker.js';
import type { EntryWriter } from './entry-writer.js';
import { errnoName, sys } from '../fs/native.js';
import type { PrevDir } from './prev-tree.js';

export class Carrier {
  /**
   * The carried link groups: the previous manifest's group id -> this manifest's, and the inode
   * its first carried name linked. Further carried names of the group link to the same inode
   * (they were one inode); ids are this manifest's own, never the previous one's.
   */
  private readonly groups = new Map<number, { id: number; ino: number }>();

  constructor(
    private readonly ctx: BuildContext,
    private readonly linker: Linker,
    private readonly writer: EntryWriter,
  ) {}

  /** Whether carrying is possible at all in this directory: a previous generation to link from, a new one to link into (not a dry run). */
  possible(f: Frame): boolean {
    return f.dst >= 0 && f.prev >= 0 && f.prevList !== null;
  }

  /** The previous record of `name` in f, if any. */
  previous(f: Frame, name: Buffer): ManifestEntry | undefined {
    return f.prevList && f.prev >= 0 ? find(f.prevList, name) : undefined;
  }

  /** The generation a record's version comes from (an entry carried twice keeps its origin). */
  origin(rel: Buffer, p: ManifestEntry): string {
    const o = this.ctx.o;
    // the footer lists the roots of what was carried (a directory's record is not flagged)
    const listed = o.prevCarried?.get(displayPath(rel));
    if (listed) return listed;
    if (p.flags & FLAG.CARRIED) return `an earlier generation (carried by ${o.prevGeneration})`;
    return o.prevGeneration ?? 'the previous generation';
  }

  /**
   * A non-directory entry of f the source could not give: its previous version, reported; or,
   * when there is none to link, the problem reported as such. Returns its record or null.
   */
  entry(f: Frame, e: SourceEntry, code: string, what: string): ManifestEntry | null {
    const p = this.possible(f) ? this.previous(f, e.name) : undefined;
    if (!p || p.type === 'dir' || p.flags & FLAG.ABSENT) {
      this.ctx.problem(joinRel(f.rel, e.name), code, what);
      return null;
    }
    return this.record(f, p, { from: this.origin(joinRel(f.rel, e.name), p), code }, what, true);
  }

  /**
   * Links the previous record p into f and records it CARRIED; `report` says whether this entry
   * is the root of what is carried (reported) or lies below a carried directory (counted).
   */
  record(f: Frame, p: ManifestEntry, carry: Carry, what: string, report: boolean): ManifestEntry | null {
    const rel = joinRel(f.rel, p.name);
    const group = p.linkGroup ? this.groups.get(p.linkGroup) : undefined;
    const { rc, ino } = this.linker.linkOne(f, p, p.ino);
    let m: ManifestEntry | null = null;
    if (rc === 0 && (group ? ino === group.ino : this.ctx.claims.claim(ino))) {
      this.ctx.stats.linked++;
      this.ctx.stats.bytesLinked += p.type === 'file' ? p.size : 0;
      m = { ...p, ino };
    } else if (rc === 0) {
      // its inode is an unrelated name's in this generation: a fresh copy of the version
      sys.unlinkat(f.dst, p.name, 0);
      this.ctx.stats.splitLinks++;
      m = group ? null : this.writer.copyPrevious(f, p);
    }
    if (!m) {
      const why =
        rc > 0 ? 'it drifted in the previous generation (changed in the spool)' : rc < 0 ? `the link failed: ${errnoName(rc)}` : 'it cannot be copied either';
      this.ctx.problem(rel, carry.code, `${what}: ${carry.code}; its previous version cannot be kept (${why}): not in this generation`, true);
      return null;
    }
    if (report) this.ctx.carried(rel, carry.from, carry.code, what);
    else this.ctx.stats.carried++;
    m.flags |= FLAG.CARRIED;
    if (p.linkGroup) {
      if (!group) this.groups.set(p.linkGroup, { id: this.ctx.newLinkGroup(), ino: m.ino });
      m.linkGroup = this.groups.get(p.linkGroup)!.id;
    }
    return m;
  }

  /**
   * A directory whose subtree is carried (it could not be opened or read): reported once for
   * the whole subtree; its entries are then the previous generation's (the caller makes its
   * frame carried). Returns the carry and the previous record, or null when it has no previous
   * version.
   */
  dir(f: Frame, name: Buffer, code: string, what: string): { carry: Carry; p: ManifestEntry } | null {
    const p = this.possible(f) ? this.previous(f, name) : undefined;
    if (!p || p.type !== 'dir') return null;
    const rel = joinRel(f.rel, name);
    const carry = { from: this.origin(rel, p), code };
    this.ctx.carried(rel, carry.from, code, what);
    return { carry, p };
  }

  /** A SourceEntry standing for a carried record (what the walk and the links need of it). */
  static asSource(p: ManifestEntry): SourceEntry {
    return {
      ...p,
      err: 0,
      nlink: 1,
      ino: 0,
      dev: 0,
      blocks: 0,
      xattrsRead: true,
      xattrErr: 0,
    };
  }
}

/** The record named `name` in a previous directory (binary search by name bytes). */
export function find(prev: PrevDir, name: Buffer): ManifestEntry | undefined {
  let lo = 0;
  let hi = prev.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const c = prev.compareName(mid, name);
    if (c === 0) return prev.decode(mid);
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}
