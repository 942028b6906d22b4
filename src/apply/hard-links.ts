/**
 * Names of one source inode (nlink > 1: regular files, symlinks, FIFOs, sockets, devices)
 * become names of one generation inode: the first name is linked unchanged, content-linked or
 * written like any entry; each further name is a hard link to it. Done in walk order, on this
 * thread. A link refused with EMLINK (the inode is full) gets a fresh copy, which is the link
 * base from then on.
 */
import { joinRel } from '../paths/escape.js';
import type { SourceEntry } from '../fs/entry.js';
import { ST, errnoName, sys } from '../fs/native.js';
import { FLAG, type ManifestEntry } from '../manifest/format.js';
import type { Decision } from '../plan/decide.js';
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
}

export class HardLinks {
  private readonly groups = new Map<string, LinkGroup>();
  private readonly st = new Float64Array(sys.STAT_FIELDS);

  constructor(
    private readonly ctx: BuildContext,
    private readonly linker: Linker,
    private readonly writer: EntryWriter,
    private readonly content: ContentLinker | null,
  ) {}

  /** One name of a source inode with several; its record (null when it could not be backed up). */
  link(f: Frame, e: SourceEntry, p: ManifestEntry | undefined, d: Decision, sourceHash: string | null): ManifestEntry | null {
    const ctx = this.ctx;
    const key = `${e.dev}:${e.ino}`;
    const g = this.groups.get(key);
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
        ctx.stats.linked++;
        ctx.plan(f.rel, e, d, { via: 'hardlink', to: g.rel });
        return { ...g.entry, name: e.name, ctimeSec: e.ctimeSec, ctimeNsec: e.ctimeNsec };
      }
      if (errnoName(rc) !== 'EMLINK') ctx.fatal(rel, rc, 'cannot link into the spool');
      ctx.stats.emlinkCopies++;
    }
    // only its metadata changed: a clone of its previous inode where the spool clones (clone.ts)
    const clone = d.action === 'copy' ? (this.writer.cloner?.fromPreviousNow(f, e, p, sourceHash) ?? null) : null;
    const content = !clone && d.action === 'copy' && this.content ? this.content.linkNow(f, e, sourceHash) : null;
    ctx.plan(f.rel, e, d, clone ? { via: 'clone' } : content ? { via: content.via } : undefined);
    const m =
      d.action === 'link' && p
        ? this.linker.linkNow(f, e, ctx.record(e.name, e, 0, p.flags & FLAG.OFF_SPOOL, p.hash), p.ino)
        : (clone ?? content?.m ?? this.writer.materialize(f, e, d, false));
    if (!m) return null;
    if (g) {
      // the inode is full: this copy is the link base from now on
      g.entry = m;
      g.rel = rel;
      m.linkGroup = g.id;
    } else {
      m.linkGroup = ctx.newLinkGroup();
      this.groups.set(key, { id: m.linkGroup, rel, entry: m });
    }
    return m;
  }
}
