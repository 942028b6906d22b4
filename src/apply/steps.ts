/**
 * Carrying out one directory's plan (src/plan/plan-dir.ts), step by step: each step goes to the
 * collaborator that owns it: linker.ts (unchanged entries), entry-writer.ts and meta-writer.ts
 * (new inodes and their metadata), content-links.ts (identical files already in the spool), hard-links.ts
 * (names of one source inode), carry.ts (what the source cannot give in this run).
 */
import { displayPath, joinRel } from '../paths/escape.js';
import type { SourceEntry } from '../fs/entry.js';
import { errnoName, sys } from '../fs/native.js';
import { E } from '../fs/errno.js';
import { EncodedEntry, FLAG, type ManifestEntry } from '../manifest/format.js';
import { afterAttributes, decided, planEntry, UNCHANGED, type PlanContext, type Step } from '../plan/plan-dir.js';
import { isSameStampChange, type Decision } from '../plan/decide.js';
import type { PrevDir } from '../plan/prev-dir.js';
import { NO_PREV_DIR } from './prev-tree.js';
import type { BuildContext, BuildOptions } from './build-context.js';
import type { JobPool } from './jobs.js';
import type { Carry, Frame } from './frame.js';
import type { EntryWriter } from './entry-writer.js';
import type { Linker } from './linker.js';
import type { ContentLinker } from './content-links.js';
import type { HardLinks } from './hard-links.js';
import { SourceLinkNames, type LinkTo } from '../plan/link-names.js';
import { Carrier } from './carry.js';

export class StepRunner {
  private readonly io = new Float64Array(sys.IO_FIELDS);
  /** the names of source inodes with several, as the plan met them (the walk's order) */
  private readonly linkNames = new SourceLinkNames();

  constructor(
    private readonly o: BuildOptions,
    private readonly ctx: BuildContext,
    private readonly pool: JobPool,
    private readonly writer: EntryWriter,
    private readonly linker: Linker,
    private readonly content: ContentLinker | null,
    private readonly hardLinks: HardLinks,
    private readonly carrier: Carrier,
  ) {}

  /** How f's entries are planned in this run. */
  planContext(f: Frame): PlanContext {
    const o = this.o;
    return {
      prevAvailable: f.prev >= 0,
      asRoot: o.asRoot,
      checksum: o.checksum,
      xattrs: o.xattrs,
      excludes: o.excludes,
      skipDirs: o.skipDirs,
      oneFileSystem: o.oneFileSystem,
      rootDev: o.rootMeta.dev,
      // a record is copied only when it stands for the entry's attributes too, and where the
      // link is made (a dry run checks each link it says: say() below)
      recordCopies: f.prev >= 0 && f.dst >= 0 && !o.checksum && (!o.xattrs || o.prevXattrsTrusted) && o.prevRecordsStand !== false,
      prevXattrsTrusted: o.prevXattrsTrusted,
      prevRecordsCtime: o.prevRecordsCtime,
      prevXattrsUnrecorded: (o.prevXattrsUnrecorded ?? false) && f.prev >= 0,
      linkNames: this.linkNames,
    };
  }

  /** A directory whose listing failed after it was entered: carried as a whole (reported once). */
  carrierForSelf(f: Frame, code: string): Carry | null {
    const from = this.o.prevCarried?.get(displayPath(f.rel)) ?? this.o.prevGeneration;
    if (!from) return null;
    this.ctx.carried(f.rel, from, code, 'cannot read directory');
    return { from, code };
  }

  /**
   * Carries out one step of f's plan. A promise only when the step must wait (a link batch or
   * a copy waiting for a slot on the pool): most steps settle here, and an await per entry of
   * a million-entry walk is a cost of its own.
   */
  carryOut(f: Frame, step: Step, pctx: PlanContext): Promise<void> | void {
    const o = this.o;
    const ctx = this.ctx;
    const e = step.e;
    switch (step.kind) {
      case 'unreadable':
        return this.unreadable(f, step.pi, e, step.code, step.what);
      case 'excluded':
        ctx.stats.excluded++;
        return;
      case 'spool':
        o.onNote(`${step.what} lies inside the source of part '${o.part}': excluded from it`);
        return;
      case 'record-copy':
        ctx.stats.files++;
        return this.linker.add(f, e, new EncodedEntry(e.name, step.bytes), f.prevList!.ino(step.pi), UNCHANGED);
      case 'inspect': {
        if (step.need === 'xattrs') {
          if (!this.writer.ensureXattrs(f, e)) return this.unreadable(f, step.pi, e, errnoName(e.xattrErr), 'cannot read its extended attributes');
          return this.carryOut(f, planEntry(f.rel, e, step.pi, f.prevList ?? NO_PREV_DIR, pctx, step.linkTo), pctx);
        }
        if (step.need === 'prev-xattrs') {
          // what the previous inode carries, read from it: the record made with --no-xattrs does not say
          const p = step.p!;
          const r = sys.getxattrs(f.prev, e.name);
          if (typeof r === 'number') return this.carryOut(f, afterAttributes(e, step.pi, undefined, pctx, step.linkTo), pctx);
          p.xattrs = r.length ? r : null;
          return this.carryOut(f, afterAttributes(e, step.pi, p, pctx, step.linkTo), pctx);
        }
        const hash = this.sourceHash(f, e, step.linkTo);
        const s = decided(e, step.pi, step.p, pctx, hash, step.linkTo);
        // counted once per source inode: a further name that showed what its first name showed is its inode
        if (s.kind === 'decided' && !(step.linkTo && !step.linkTo.changed)) {
          if (s.d.reason === 'content differs (checksum)') ctx.stats.checksumChanged++;
          else if (isSameStampChange(s.d.reason)) ctx.stats.sameStampChanged++;
        }
        if (s.kind === 'decided') return this.apply(f, e, s.p, s.d, s.crossesMount, hash, s.linkTo);
        return;
      }
      case 'decided':
        return this.apply(f, e, step.p, step.d, step.crossesMount, null, step.linkTo);
    }
  }

  /**
   * The content hash of e as scanned (null when it cannot be had), read from the source; a
   * further name of a source inode whose first name was read in this run and which shows what
   * that one showed takes its hash instead (one read per inode, not one per name).
   */
  private sourceHash(f: Frame, e: SourceEntry, linkTo: LinkTo | null): string | null {
    if (e.nlink > 1 && linkTo && !linkTo.changed) {
      const known = this.linkNames.hashOf(e);
      if (known !== undefined) return known;
    }
    const hash = this.ctx.hashed(e, this.io, sys.hashat(f.src, e.name, this.io));
    if (e.nlink > 1 && !linkTo && hash !== null) this.linkNames.rememberHash(e, hash);
    return hash;
  }

  /** An entry the scan could not stat or read: its previous version when there is one. */
  private unreadable(f: Frame, pi: number, e: SourceEntry, code: string, what: string): void {
    this.keepPrevious(f, pi >= 0 && this.carrier.possible(f) ? f.prevList!.decode(pi) : undefined, e, code, what);
  }

  /**
   * A run that cannot bypass permissions (not root, or root without CAP_DAC_READ_SEARCH and
   * CAP_DAC_OVERRIDE) owns the directories it makes in the spool, so one recorded with
   * owner bits that deny reading or searching (a Maildir made 000 or 0444) could not be searched by the
   * next run: it would link nothing from it, and a directory that stays unreadable would be left
   * empty the second night. Such a directory is opened here, before its record is made: when the
   * source refuses it, it is carried now, with its previous version's metadata (the state its
   * content is from), rather than after its record already holds the mode of now. The errno,
   * or null (readable, gone, or not such a directory: entered as any other).
   */
  private deniedNow(f: Frame, e: SourceEntry, p: ManifestEntry | undefined): string | null {
    if (this.o.readsAll || (e.mode & 0o500) === 0o500 || p?.type !== 'dir' || f.src < 0 || !this.carrier.possible(f)) return null;
    const fd = sys.openat(f.src, e.name, sys.O_RDONLY | sys.O_DIRECTORY | sys.O_NOFOLLOW, 0);
    if (fd < 0) return fd === -E.ENOENT ? null : errnoName(fd);
    // reading it is not enough: listing it stats each entry, a lookup that needs search (0444)
    const self = sys.openat(fd, '.', sys.O_PATH | sys.O_DIRECTORY, 0);
    sys.close(fd);
    if (self < 0) return errnoName(self);
    sys.close(self);
    return null;
  }

  /** An entry the source cannot give in this run: its previous version p (reported), or the problem. */
  private keepPrevious(f: Frame, p: ManifestEntry | undefined, e: SourceEntry, code: string, what: string): void {
    const ctx = this.ctx;
    if (!p || p.flags & FLAG.ABSENT) return ctx.problem(joinRel(f.rel, e.name), code, what);
    if (p.type === 'dir') {
      const carried = this.carrier.dir(f, e.name, code, what);
      if (!carried) return ctx.problem(joinRel(f.rel, e.name), code, what);
      ctx.stats.dirs++;
      f.out.push({ ...p, flags: p.flags | FLAG.CARRIED });
      f.subdirs.push({ name: p.name, meta: Carrier.asSource(p), prevIsDir: true, carry: carried.carry });
      return;
    }
    f.out.push(this.carrier.record(f, p, { from: this.carrier.origin(joinRel(f.rel, e.name), p), code }, what, true));
  }

  /** A carried directory's entries: the previous generation's, linked (no source to read). */
  async carryDir(f: Frame, prevList: PrevDir, carry: Carry): Promise<void> {
    for (const p of prevList.decodeAll()) {
      this.ctx.stats.entries++;
      if (p.flags & FLAG.ABSENT) {
        f.out.push({ ...p, flags: p.flags | FLAG.CARRIED });
        continue;
      }
      if (p.type === 'dir') {
        this.ctx.stats.dirs++;
        f.out.push({ ...p, flags: p.flags | FLAG.CARRIED });
        f.subdirs.push({ name: p.name, meta: Carrier.asSource(p), prevIsDir: true, carry });
        continue;
      }
      if (p.linkGroup) {
        // names of one inode: linked in order, one group of this manifest's (carry.ts)
        f.out.push(this.carrier.record(f, p, carry, 'below a directory that cannot be read', false));
        continue;
      }
      this.ctx.stats.carried++;
      const wait = this.linker.add(f, Carrier.asSource(p), { ...p, flags: p.flags | FLAG.CARRIED }, p.ino);
      if (wait) await wait;
    }
    await this.linker.flush(f);
  }

  /** Carries out a decision about one entry (`linkTo`: the first name it is a further name of, planned so). */
  private apply(
    f: Frame,
    e: SourceEntry,
    p: ManifestEntry | undefined,
    d: Decision,
    crossesMount: boolean,
    sourceHash: string | null,
    linkTo: LinkTo | null,
  ): Promise<void> | void {
    const o = this.o;
    const ctx = this.ctx;
    if (e.type === 'dir') {
      const denied = this.deniedNow(f, e, p);
      if (denied) return this.keepPrevious(f, p, e, denied, 'cannot open directory');
      ctx.plan(f.rel, e, d);
      ctx.stats.dirs++;
      f.out.push(ctx.record(e.name, e, 0, 0, null));
      if (crossesMount) {
        if (f.dst >= 0) {
          this.writer.meta.mkdir(f, e.name);
          this.writer.meta.emptyDirMeta(f, e.name, e);
        }
        o.onNote(`${o.part}: not crossing into another file system at ${joinRel(f.rel, e.name).toString()}`);
      } else f.subdirs.push({ name: e.name, meta: e, prevIsDir: p?.type === 'dir', carry: null }); // made when entered
      return;
    }
    if (e.type === 'file') ctx.stats.files++;
    else if (e.type === 'symlink') ctx.stats.symlinks++;
    else ctx.stats.specials++;
    if (f.dst < 0) return this.say(f, e, p, d, linkTo);
    if (e.nlink > 1) {
      // one source inode, several names: done in order, on this thread
      f.out.push(this.hardLinks.link(f, e, p, d, sourceHash, linkTo));
      return;
    }
    if (d.action === 'link') return this.linker.add(f, e, ctx.record(e.name, e, 0, p!.flags & FLAG.OFF_SPOOL, p!.hash), p!.ino, d);
    if (d.action === 'copy') return this.copy(f, e, p, d, sourceHash);
    ctx.plan(f.rel, e, d);
    f.out.push(this.writer.materialize(f, e, d));
  }

  /**
   * A file to write: hashed (and compared) on the pool when it has a content-link candidate,
   * then linked or copied; cloned where only its metadata changed and the spool clones. The walk
   * goes on meanwhile.
   */
  private async copy(f: Frame, e: SourceEntry, p: ManifestEntry | undefined, d: Decision, sourceHash: string | null): Promise<void> {
    await this.pool.slot();
    const at = f.out.push(null) - 1;
    // only its metadata changed: a clone of its previous inode where the spool clones (clone.ts)
    if (this.writer.cloner?.fromPrevious(f, e, p, d, at, sourceHash)) return;
    const cands = this.content?.candidates(e) ?? [];
    if (cands.length) void this.content!.linkLater(f, e, d, cands, at, sourceHash);
    else {
      this.ctx.plan(f.rel, e, d);
      if (!this.pool.failed) this.writer.startCopy(f, e, at);
    }
  }

  /**
   * A dry run's step for a non-directory entry: its decision said and counted as the run would
   * count it, nothing carried out. A link is said only when the previous inode would pass the
   * run's check (linker.ts); a further name of a source inode is said linked to its first name
   * (one whose metadata moved mid-run may be written instead: the comparison needs the copy a
   * dry run never makes).
   */
  private say(f: Frame, e: SourceEntry, p: ManifestEntry | undefined, d: Decision, linkTo: LinkTo | null): void {
    const ctx = this.ctx;
    const final = !linkTo && d.action === 'link' ? this.linker.wouldLink(f, e, p!.ino, d) : d;
    ctx.plan(f.rel, e, final, linkTo ? { via: 'hardlink', to: linkTo.to } : undefined);
    if (linkTo)
      ctx.stats.linked++; // (a further name adds no bytes, as in the run)
    else if (final.action === 'link') {
      ctx.stats.linked++;
      ctx.stats.bytesLinked += e.size;
    } else if (final.action === 'copy') {
      ctx.stats.copied++;
      ctx.stats.bytesWritten += e.size;
    }
    f.out.push(ctx.record(e.name, e, 0, 0, null));
  }
}
