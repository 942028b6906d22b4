/**
 * Names of one source inode (nlink > 1: regular files, symlinks, FIFOs, sockets, devices)
 * become names of one generation inode: the plan says which name is the first and which are
 * further names of it (src/plan/link-names.ts); the first name is linked unchanged,
 * content-linked or written like any entry; each further name is a hard link to what it became
 * (to the next name instead when the first could not be backed up). A further name that showed
 * what the first name showed is linked to the first name's inode when that inode holds what the
 * first name showed (showsRead); any other joins a group of the inode only when it is what that
 * group was backed up with (holdsGroupFile: the file may have changed between the reads, or its
 * number be another file's now), else it starts a group of its own. Names not on the first
 * name's inode are counted and said in one warning line of the run. Names are not always read
 * in walk order (a directory is scanned ahead with its siblings): a name walked after a split
 * may have been read before the change. Done in walk order, on this thread. A link refused with
 * EMLINK (the inode is full) gets a fresh copy, which is the link base from then on (said: two
 * inodes where the source has one). Where the spool's limit is known (ext4, btrfs), a group is
 * not linked to a previous inode that cannot take all its names: one fresh copy for them all,
 * rather than some names on the old inode and the rest on a copy.
 */
import { displayPath, joinRel } from '../paths/escape.js';
import type { SourceEntry } from '../fs/entry.js';
import { ST, errnoName, sys } from '../fs/native.js';
import { FLAG, type ManifestEntry } from '../manifest/format.js';
import type { Decision } from '../plan/decide.js';
import type { LinkTo } from '../plan/link-names.js';
import { sameContent } from '../fs/compare.js';
import { matches } from './manifest-table.js';
import { removeChildAt } from '../fs/remove-tree.js';
import type { BuildContext } from './build-context.js';
import type { ContentLinker } from './content-links.js';
import type { EntryWriter } from './entry-writer.js';
import type { Frame } from './frame.js';
import type { Linker } from './linker.js';
import { E } from '../fs/errno.js';

interface LinkGroup {
  id: number;
  /** the name in this generation further names link to */
  rel: Buffer;
  entry: ManifestEntry;
  /**
   * its base name showed what the source inode's first name showed when read (the first name
   * itself, or a further name with the same type, size, mtime and ctime), and its inode holds
   * what that name showed (showsRead): a further name that showed the same is linked to it
   * without a look at its content
   */
  asFirst: boolean;
}

export class HardLinks {
  /**
   * by source inode: its groups in this generation, the first name's first, then one for each
   * further name that changed between the reads of the names (usually one, never empty)
   */
  private readonly groups = new Map<string, LinkGroup[]>();
  private readonly st = new Float64Array(sys.STAT_FIELDS);

  constructor(
    private readonly ctx: BuildContext,
    private readonly linker: Linker,
    private readonly writer: EntryWriter,
    private readonly content: ContentLinker | null,
  ) {}

  /**
   * One name of a source inode with several, planned as its first name (`linkTo` null) or as a
   * further name of the one at `linkTo.to`; its record (null when it could not be backed up).
   */
  link(f: Frame, e: SourceEntry, p: ManifestEntry | undefined, d: Decision, sourceHash: string | null, linkTo: LinkTo | null): ManifestEntry | null {
    const ctx = this.ctx;
    const key = `${e.dev}:${e.ino}`;
    // a first name: an earlier group of that inode number is another file's; never linked to again
    if (!linkTo) this.groups.delete(key);
    // (none when the names before could not be backed up: this one is made as the first)
    const list = linkTo ? this.groups.get(key) : undefined;
    let g: LinkGroup | undefined;
    const primary = list?.find((x) => x.asFirst);
    if (list) {
      // a further name that showed what its first name showed is linked to the first name's
      // group; one that showed other metadata (link-names.ts) joins a group only when it is what
      // that group was backed up with (metadata and content: a group split off before it may be
      // the one, as names are not always read in walk order); else the number is another file's
      // now, or the file changed between the reads: the first of a group of its own
      if (!linkTo!.changed) g = primary;
      g ??= list.find((x) => this.holdsGroupFile(f, e, x));
    }
    // apart from its first name's inode: not in the first name's group, or, when that group is
    // not there (the first name could not be backed up), the start of another one; counted once
    // the name is in the generation (one that vanishes is not)
    const apart = !!list && (primary ? g !== primary : !g);
    const rel = joinRel(f.rel, e.name);
    if (g) {
      let rc = sys.linkat(ctx.o.dstRootFd, g.rel, f.dst, e.name);
      if (rc === -E.EEXIST && ctx.o.resume) {
        if (sys.fstatat(f.dst, e.name, this.st, 1) === 0 && this.st[ST.INO] === g.entry.ino) rc = 0;
        else {
          removeChildAt(f.dst, e.name);
          rc = sys.linkat(ctx.o.dstRootFd, g.rel, f.dst, e.name);
        }
      }
      if (rc === 0) {
        if (apart) ctx.linkGroupSplit(rel, linkTo!.to);
        ctx.stats.linked++;
        ctx.plan(f.rel, e, d, { via: 'hardlink', to: g.rel });
        return { ...g.entry, name: e.name, ...ctx.recordedCtime(e) };
      }
      if (errnoName(rc) !== 'EMLINK') ctx.fatal(rel, rc, 'cannot link into the spool');
      ctx.stats.emlinkCopies++;
      // the group's inode filled while the run went on (checked before its first name was
      // linked: another part's content links, an `ln` from outside): the names before stay on
      // it, this one and the next on a fresh copy. Two inodes where the source has one: said
      // (exit 23); the next run gives the group one fresh inode again.
      ctx.problem(
        rel,
        'EMLINK',
        `its inode in the spool filled during the run: this name and the next are a copy, the names before (${displayPath(g.rel)}) stay on the full inode (one inode in the source, two in this generation; the next run joins them)`,
        true,
      );
    }
    // the previous inode cannot take all the names of the group: one fresh copy for them all
    const fresh = !g && d.action === 'link' && p !== undefined && !this.roomFor(f, e);
    if (fresh) {
      ctx.stats.emlinkCopies++;
      d = this.writer.freshDecision(e, 'its previous inode cannot take all its names (link limit)');
    }
    // only its metadata changed: a clone of its previous inode where the spool clones (clone.ts)
    const clone = d.action === 'copy' && !fresh ? (this.writer.cloner?.fromPreviousNow(f, e, p, sourceHash) ?? null) : null;
    const content = !clone && !fresh && d.action === 'copy' && this.content ? this.content.linkNow(f, e, sourceHash) : null;
    const linking = d.action === 'link' && p !== undefined;
    // (a link is said by the linker once made; refused, as the new inode written instead)
    if (!linking) ctx.plan(f.rel, e, d, clone ? { via: 'clone' } : content ? { via: content.via } : undefined);
    const m = linking
      ? this.linker.linkNow(f, e, ctx.record(e.name, e, 0, p!.flags & FLAG.OFF_SPOOL, p!.hash), p!.ino, d)
      : (clone ?? content?.m ?? this.writer.materialize(f, e, d, false));
    if (!m) return null;
    if (apart) ctx.linkGroupSplit(rel, linkTo!.to);
    if (g) {
      // the inode is full: this copy is the link base from now on
      g.entry = m;
      g.rel = rel;
      g.asFirst &&= showsRead(m, e);
      m.linkGroup = g.id;
    } else {
      m.linkGroup = ctx.newLinkGroup();
      const made = { id: m.linkGroup, rel, entry: m, asFirst: !linkTo?.changed && showsRead(m, e) };
      if (list) list.push(made);
      else this.groups.set(key, [made]);
    }
    return m;
  }

  /**
   * Whether e, as read, is what the group's inode in this generation holds: the metadata a hard
   * link shares (mode, owner, mtime, attributes: manifest-table.ts matches) and the content
   * (bytes, symlink target, device number; a FIFO or a socket has none).
   */
  private holdsGroupFile(f: Frame, e: SourceEntry, g: LinkGroup): boolean {
    const m = g.entry;
    if (m.type !== e.type || !matches(e, m)) return false;
    if (e.type === 'file') return sameContent(f.src, e.name, this.ctx.o.dstRootFd, g.rel) === true;
    if (e.type === 'symlink') return !!e.target && !!m.target && e.target.equals(m.target);
    if (e.type === 'char' || e.type === 'block') return e.rdev === m.rdev;
    return true;
  }

  /**
   * Whether e's previous inode can take as many more names as e has (on a spool whose link limit
   * is known; any type: symlinks, FIFOs and devices fill up as files do).
   */
  private roomFor(f: Frame, e: SourceEntry): boolean {
    const max = this.ctx.linkMax();
    if (max === Infinity || f.prev < 0) return true;
    // not there, or not stat-able: the link says why
    if (sys.fstatat(f.prev, e.name, this.st, 1) !== 0) return true;
    return this.st[ST.NLINK]! + e.nlink <= max;
  }
}

/**
 * Whether a name's new record holds what the name showed when read: not a carried previous
 * version, not a copy of a file that changed or was replaced while it was read, and the type,
 * size, mtime, mode, owner and attributes read (a copy takes them from the file as it opened it:
 * a chmod between the scan and the copy shows here).
 */
function showsRead(m: ManifestEntry, e: SourceEntry): boolean {
  return !(m.flags & (FLAG.UNSTABLE | FLAG.CARRIED)) && m.type === e.type && matches(e, m);
}
