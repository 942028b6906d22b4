/**
 * Builds one generation of one part: walks the source, the previous generation and the new
 * (partial) generation together, directory by directory, with directory descriptors (so path
 * length is no limit and nothing is resolved twice). Each directory is planned
 * (src/plan/plan-dir.ts: pure, one step per entry) and the plan carried out by the
 * collaborators: linker.ts (unchanged entries, checked links from the previous generation),
 * entry-writer.ts (new inodes and metadata), content-links.ts (identical files already in the
 * spool), hard-links.ts (names of one source inode), carry.ts (what the source cannot give in
 * this run). Directories get their own metadata after their children (post-order). Each
 * directory's manifest block is written as soon as its entries have settled, in walk order, so
 * memory stays bounded by the depth of the tree, not its size.
 *
 * Resuming: in a partial generation left by a killed run, an existing entry is kept when it is
 * provably what this run would write (the previous generation's inode, or a complete copy:
 * same size, mtime, mode and owner, since the copy sets the mtime last), else replaced; entries
 * that the source no longer has are removed. Existing inodes are never written to.
 */
import { displayPath, joinRel } from '../paths/escape.js';
import { pauseArmed, pauseDir, testPauseAsync } from '../core/test-pause.js';
import { readDirAt, parseScan, type Meta, type SourceEntry } from '../fs/entry.js';
import { SCAN_XATTR, ST, errnoName, sys } from '../fs/native.js';
import { EncodedEntry, FLAG, type BlockEntry, type ManifestEntry } from '../manifest/format.js';
import { decided, planDir, planEntry, UNCHANGED, type PlanContext, type Step } from '../plan/plan-dir.js';
import type { Decision } from '../plan/decide.js';
import { removeChildAt } from '../fs/remove-tree.js';
import { NO_PREV_DIR, type PrevDir } from './prev-tree.js';
import { BuildContext, type BuildOptions } from './build-context.js';
import { JobPool } from './jobs.js';
import { newFrame, type Carry, type Frame, type Subdir } from './frame.js';
import { EntryWriter } from './entry-writer.js';
import { Linker } from './linker.js';
import { ContentLinker } from './content-links.js';
import { HardLinks } from './hard-links.js';
import { Carrier } from './carry.js';
import type { BuildFindings, BuildStats } from './types.js';
import type { ScanDir } from './dir-entry-source.js';
import { E } from '../fs/errno.js';

export type { BuildOptions } from './build-context.js';
export { newStats } from './build-context.js';

const O_DIR = sys.O_RDONLY | sys.O_DIRECTORY | sys.O_NOFOLLOW;
/** native jobs in flight at once (links and copies on the libuv pool) */
const MAX_IN_FLIGHT = 64;
/**
 * Directories of one parent whose spool side (mkdir, opens) is started ahead of the walk, and
 * how many may wait to be entered in all: Linux serializes creates within one directory, so
 * on a high-latency spool the speed comes from many directories in flight.
 */
const LOOKAHEAD = 16;
const MAX_PREPARED = 64;
/**
 * A directory is read ahead on the pool (open and scan of the source, as well as its spool
 * side) when its own size is at most this: taking the scan off the main thread lets it overlap
 * with the main thread's work (and with source round trips on NFS). Size is about proportional
 * to the entry count on common file systems (ext4: ~32 bytes an entry), so the scans waiting to
 * be used stay small (at most MAX_PREPARED of them); a bigger directory is scanned when entered.
 */
const SCAN_AHEAD_MAX_DIR_SIZE = 64 * 1024;
/**
 * A scan read ahead is used only this long after it was made: the subtrees of the siblings
 * before it may take hours to walk, and a directory must not be backed up as it was then
 * (what was deleted since still linked, what was made since missed). An older one is read
 * again when the directory is entered, as it always was. (Test seam:
 * HARDSNAP_TEST_SCAN_AHEAD_MAX_AGE_MS, read when a build starts.)
 */
const SCAN_AHEAD_MAX_AGE_MS = 1000;
/** spoolDirAsync's flags */
const SPOOL_MKDIR = 1;
const SPOOL_SCAN = 2;

export class TreeBuilder {
  private readonly ctx: BuildContext;
  private readonly pool: JobPool;
  private readonly writer: EntryWriter;
  private readonly linker: Linker;
  private readonly content: ContentLinker | null;
  private readonly hardLinks: HardLinks;
  private readonly carrier: Carrier;
  private readonly io = new Float64Array(sys.IO_FIELDS);
  private lastProgress = 0;
  private lastProgressAt = 0;
  /** frames in walk (pre-)order whose manifest block is not written yet */
  private readonly blockQueue: Frame[] = [];
  /** directories waiting for their jobs before their metadata is set */
  private finishing = 0;
  private readonly finishWaiters: (() => void)[] = [];
  /** directories whose spool side was started ahead and that are not entered yet */
  private readonly prepared = new Set<Subdir>();
  private readonly scanMaxAge = Number(process.env.HARDSNAP_TEST_SCAN_AHEAD_MAX_AGE_MS ?? SCAN_AHEAD_MAX_AGE_MS);
  /** scandir's attribute flags for this run */
  private readonly xflags: number;
  /** a scan with this run's attribute flags that does not stat the names given (watch mode) */
  private readonly scanSkip: ScanDir = (fd, skip) => sys.scandir(fd, this.xflags, this.o.xattrCtimeMin, skip);

  constructor(private readonly o: BuildOptions) {
    this.ctx = new BuildContext(o);
    this.pool = new JobPool(MAX_IN_FLIGHT, (f) => this.checkDone(f as Frame));
    this.writer = new EntryWriter(this.ctx, this.pool);
    this.linker = new Linker(this.ctx, this.pool, this.writer);
    this.content = o.dedup && !o.dryRun ? new ContentLinker(this.ctx, this.pool, this.writer, o.dedup) : null;
    this.carrier = new Carrier(this.ctx, this.linker, this.writer);
    this.writer.content = this.content;
    this.writer.carrier = this.carrier;
    this.hardLinks = new HardLinks(this.ctx, this.linker, this.writer, this.content);
    this.xflags = o.xattrs ? SCAN_XATTR.OTHER | SCAN_XATTR.FILES : 0;
  }

  get stats(): BuildStats {
    return this.ctx.stats;
  }

  get findings(): BuildFindings {
    return this.ctx.findings;
  }

  /** Builds the whole tree; returns the root's manifest record. Throws on a fatal error. */
  async run(): Promise<ManifestEntry> {
    const o = this.o;
    const root = newFrame(Buffer.alloc(0), o.srcRootFd, o.dstRootFd, o.prevRootFd, o.rootMeta);
    const stack: Frame[] = [root];
    // a signal: nothing more is started, the jobs in flight finish, run() throws its reason
    o.signal?.throwIfAborted();
    const onAbort = () => this.pool.fail(o.signal!.reason);
    o.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await this.processDir(root);
      while (stack.length) {
        this.pool.throwIfFailed();
        const f = stack[stack.length - 1]!;
        if (f.next < f.subdirs.length) {
          this.prepareAhead(f);
          const child = await this.enter(f, f.subdirs[f.next++]!);
          if (child) {
            stack.push(child);
            await this.processDir(child);
          }
          continue;
        }
        this.leave(f);
        stack.pop();
      }
      await this.allFinished();
      this.pool.throwIfFailed();
    } finally {
      // never close a descriptor a job on the pool may still use
      await this.pool.drain();
      await this.allFinished();
      for (const f of stack) if (f !== root) this.closeFrame(f);
      for (const sub of this.prepared) this.closePrepared(sub.spool!);
      o.signal?.removeEventListener('abort', onAbort);
    }
    const st = new Float64Array(sys.STAT_FIELDS);
    const rootIno = o.dstRootFd >= 0 && sys.fstat(o.dstRootFd, st) === 0 ? st[ST.INO]! : 0;
    return this.ctx.record(Buffer.alloc(0), o.rootMeta, rootIno, 0, null);
  }

  /** Waits until every directory left has its metadata set and its descriptors closed. */
  private async allFinished(): Promise<void> {
    while (this.finishing > 0) await new Promise<void>((r) => this.finishWaiters.push(r));
  }

  /** A directory whose entries are all settled: resume cleanup, then its block may be written. */
  private checkDone(f: Frame): void {
    if (!f.sealed || f.pending > 0 || f.complete) return;
    f.complete = true;
    try {
      if (this.o.resume && !this.o.dryRun && !this.pool.failed) this.writer.removeStale(f);
    } catch (err) {
      this.pool.fail(err);
    }
    f.settle();
    // manifest blocks go out in walk order, so readers see parents before children
    const q = this.blockQueue;
    while (q.length && q[0]!.complete) {
      const h = q.shift()!;
      if (!this.pool.failed) this.o.manifest?.addDir(h.rel, h.out.filter((m): m is BlockEntry => m !== null));
      h.out = [];
    }
  }

  // ---------- directories ----------

  /** Starts the spool side of f's next directories on the pool, so many are in flight. */
  private prepareAhead(f: Frame): void {
    for (let i = f.next; i < f.subdirs.length && i < f.next + LOOKAHEAD; i++) {
      const sub = f.subdirs[i]!;
      if (sub.ready) continue;
      if (i > f.next && this.prepared.size >= MAX_PREPARED) break;
      // -EBADF until the job fills them: a job that never ran leaves nothing to close or use
      sub.spool = new Int32Array(4).fill(-9);
      this.prepared.add(sub);
      const prev = sub.prevIsDir ? f.prev : -1;
      // watch mode may not scan it at all (the journal knows it unchanged); a carried one has no source
      sub.scanAhead = !this.o.unchangedDirs && !sub.carry && f.src >= 0 && sub.meta.size <= SCAN_AHEAD_MAX_DIR_SIZE;
      const flags = SPOOL_MKDIR | (sub.scanAhead ? SPOOL_SCAN : 0);
      sub.scannedAt = Date.now();
      sub.ready = this.pool.track(sys.spoolDirAsync(this.o.dryRun ? -1 : f.dst, prev, sub.name, flags, sub.spool, f.src,
        this.xflags, this.o.xattrCtimeMin));
    }
  }

  /** Closes what a prepared directory that was never entered opened. */
  private closePrepared(res: Int32Array): void {
    for (let i = 1; i < 4; i++) {
      if (res[i]! >= 0) sys.close(res[i]!);
      res[i] = -1;
    }
  }

  private async enter(parent: Frame, sub: Subdir): Promise<Frame | null> {
    const o = this.o;
    const rel = joinRel(parent.rel, sub.name);
    const scanned = await sub.ready;
    this.prepared.delete(sub);
    const res = sub.spool!;
    // the descriptors are this function's from here on, closed once on every way out
    const made = res[0]!;
    let dst = res[1]!;
    let prev = res[2]! >= 0 ? res[2]! : -1;
    const srcAhead = sub.scanAhead ? res[3]! : null;
    res[1] = res[2] = res[3] = -1;
    const closeSpoolSide = () => {
      if (dst >= 0) sys.close(dst);
      if (prev >= 0) sys.close(prev);
      dst = prev = -1;
    };
    try {
      this.pool.throwIfFailed();
      if (!o.dryRun) {
        // a resumed run may find it made already: the checks of mkdir(), on this thread
        if (made === -E.EEXIST && o.resume) {
          this.writer.mkdir(parent, sub.name, made);
          dst = sys.openat(parent.dst, sub.name, O_DIR, 0);
        } else if (made < 0) this.ctx.fatal(rel, made, 'cannot create directory in the spool');
        if (dst < 0) this.ctx.fatal(rel, dst, 'cannot open the new directory in the spool');
      }
    } catch (err) {
      closeSpoolSide();
      if (srcAhead !== null && srcAhead >= 0) sys.close(srcAhead);
      throw err;
    }
    if (o.dryRun) dst = -1;
    if (sub.carry) {
      // below a directory the source could not give: the previous generation's subtree
      if (prev >= 0) return newFrame(rel, -1, dst, prev, sub.meta, sub.carry);
      closeSpoolSide();
      this.ctx.problem(rel, sub.carry.code, 'its previous version cannot be opened in the previous generation either: left empty', false);
      return null;
    }
    const src = srcAhead ?? sys.openat(parent.src, sub.name, O_DIR | sys.O_NOATIME, 0);
    if (src < 0) {
      const code = errnoName(src);
      const carried = code !== 'ENOENT' && prev >= 0 ? this.carrier.dir(parent, sub.name, code, 'cannot open directory') : null;
      if (carried) {
        if (o.resume) this.emptyResumed(parent, sub.name, dst);
        // its own metadata is what the scan read of it now (the parent's block records that);
        // what is below it is the previous generation's
        return newFrame(rel, -1, dst, prev, sub.meta, carried.carry);
      }
      closeSpoolSide();
      this.ctx.problem(rel, code, 'cannot open directory');
      if (!o.dryRun) {
        // what a killed run left in it is not in this generation's manifest: it goes
        if (o.resume) this.emptyResumed(parent, sub.name, -1);
        this.writer.emptyDirMeta(parent, sub.name, sub.meta);
      }
      return null;
    }
    const child = newFrame(rel, src, dst, prev, sub.meta);
    // a scan that failed says so; one that is too old is made again (listDir)
    if (srcAhead !== null && (typeof scanned === 'number' || Date.now() - sub.scannedAt! <= this.scanMaxAge)) child.scan = scanned;
    return child;
  }

  /** Resume: what a killed run put in a directory that is now empty or carried goes. */
  private emptyResumed(parent: Frame, name: Buffer, dst: number): void {
    if (dst >= 0) {
      const read = readDirAt(dst);
      if (typeof read !== 'number') for (const e of read) removeChildAt(dst, e.name);
      return;
    }
    removeChildAt(parent.dst, name);
    this.writer.mkdir(parent, name);
  }

  /**
   * Done with a directory's subtree: once its own jobs have settled, give it its owner, mode,
   * attributes and times and close its descriptors. The walk does not wait for that (its
   * children's jobs never touch it), so many directories stay in flight.
   */
  private leave(f: Frame): void {
    const finish = async () => {
      try {
        if (!this.pool.failed && !this.o.dryRun) await this.writer.dirMeta(f);
      } catch (err) {
        this.pool.fail(err);
      } finally {
        f.prevList = null;
        if (f.rel.length) this.closeFrame(f);
      }
    };
    // counted, not kept: a million-file tree has tens of thousands of directories
    this.finishing++;
    void (f.complete ? finish() : f.done.then(finish)).then(() => {
      if (--this.finishing === 0) for (const w of this.finishWaiters.splice(0)) w();
    });
  }

  private closeFrame(f: Frame): void {
    if (f.src >= 0) sys.close(f.src);
    if (f.dst >= 0) sys.close(f.dst);
    if (f.prev >= 0) sys.close(f.prev);
  }

  private seal(f: Frame): void {
    f.sealed = true;
    this.checkDone(f);
  }

  private async processDir(f: Frame): Promise<void> {
    const ctx = this.ctx;
    this.blockQueue.push(f);
    const prevList = (f.prevList = this.prevEntries(f));
    if (f.carry) {
      await this.carryDir(f, prevList, f.carry);
      return this.seal(f);
    }
    const entries = this.listDir(f, prevList);
    if (pauseArmed('after-scan') && f.rel.equals(pauseDir())) await testPauseAsync('after-scan', this.o.signal);
    if (typeof entries === 'number') {
      const code = errnoName(entries);
      const carry = f.rel.length && code !== 'ENOENT' && this.carrier.possible(f) && prevList.length
        ? this.carrierForSelf(f, code) : null;
      if (carry) {
        f.carry = carry;
        await this.carryDir(f, prevList, carry);
      } else ctx.problem(f.rel, code, 'cannot read directory');
      return this.seal(f);
    }
    const pctx = this.planContext(f);
    for (const step of planDir(f.rel, entries, prevList, pctx)) {
      if (this.pool.failed) break; // a fatal error or a signal: nothing more is started
      ctx.stats.entries++;
      await this.carryOut(f, step, pctx);
    }
    if (!this.pool.failed) await this.linker.flush(f);
    this.seal(f);
    this.progress();
  }

  /** A directory whose listing failed after it was entered: carried as a whole (reported once). */
  private carrierForSelf(f: Frame, code: string): Carry | null {
    const from = this.o.prevCarried?.get(displayPath(f.rel)) ?? this.o.prevGeneration;
    if (!from) return null;
    this.ctx.carried(f.rel, from, code, 'cannot read directory');
    return { from, code };
  }

  private planContext(f: Frame): PlanContext {
    const o = this.o;
    return {
      prevAvailable: f.prev >= 0, asRoot: o.asRoot, checksum: o.checksum, xattrs: o.xattrs,
      excludes: o.excludes, skipDirs: o.skipDirs, oneFileSystem: o.oneFileSystem, rootDev: o.rootMeta.dev,
      // a record is copied only when it stands for the entry's attributes too
      recordCopies: f.prev >= 0 && !o.checksum && !o.dryRun && (!o.xattrs || o.prevXattrsTrusted), prevXattrsTrusted: o.prevXattrsTrusted,
    };
  }

  /** Carries out one step of f's plan. */
  private async carryOut(f: Frame, step: Step, pctx: PlanContext): Promise<void> {
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
        ctx.plan(f.rel, e, UNCHANGED);
        return this.linker.add(f, e, new EncodedEntry(e.name, step.bytes), f.prevList!.ino(step.pi));
      case 'inspect': {
        if (step.need === 'xattrs') {
          if (!this.writer.ensureXattrs(f, e)) return this.unreadable(f, step.pi, e, errnoName(e.xattrErr), 'cannot read its extended attributes');
          return this.carryOut(f, planEntry(f.rel, e, step.pi, f.prevList ?? NO_PREV_DIR, pctx), pctx);
        }
        const hash = this.ctx.hashed(e, this.io, sys.hashat(f.src, e.name, this.io));
        const s = decided(e, step.pi, step.p, pctx, hash);
        if (s.kind === 'decided' && s.d.reason === 'content differs (checksum)') ctx.stats.checksumChanged++;
        if (s.kind === 'decided') return this.apply(f, e, s.p, s.d, s.crossesMount, hash);
        return;
      }
      case 'decided':
        return this.apply(f, e, step.p, step.d, step.crossesMount, null);
    }
  }

  /** An entry the scan could not stat or read: its previous version when there is one. */
  private unreadable(f: Frame, pi: number, e: SourceEntry, code: string, what: string): void {
    const ctx = this.ctx;
    const p = pi >= 0 && this.carrier.possible(f) ? f.prevList!.decode(pi) : undefined;
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
  private async carryDir(f: Frame, prevList: PrevDir, carry: Carry): Promise<void> {
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
      if (this.o.dryRun) {
        f.out.push({ ...p, flags: p.flags | FLAG.CARRIED });
        continue;
      }
      if (p.linkGroup) {
        // names of one inode: linked in order, one group of this manifest's (carry.ts)
        f.out.push(this.carrier.record(f, p, carry, 'below a directory that cannot be read', false));
        continue;
      }
      this.ctx.stats.carried++;
      await this.linker.add(f, Carrier.asSource(p), { ...p, flags: p.flags | FLAG.CARRIED }, p.ino);
    }
    await this.linker.flush(f);
  }

  /** Carries out a decision about one entry. */
  private async apply(f: Frame, e: SourceEntry, p: ManifestEntry | undefined, d: Decision, crossesMount: boolean, sourceHash: string | null): Promise<void> {
    const o = this.o;
    const ctx = this.ctx;
    if (e.type === 'dir') {
      ctx.plan(f.rel, e, d);
      ctx.stats.dirs++;
      f.out.push(ctx.record(e.name, e, 0, 0, null));
      if (crossesMount) {
        if (!o.dryRun) {
          this.writer.mkdir(f, e.name);
          this.writer.emptyDirMeta(f, e.name, e);
        }
        o.onNote(`${o.part}: not crossing into another file system at ${joinRel(f.rel, e.name).toString()}`);
      } else f.subdirs.push({ name: e.name, meta: e, prevIsDir: p?.type === 'dir', carry: null }); // made when entered
      return;
    }
    if (e.type === 'file') ctx.stats.files++;
    else if (e.type === 'symlink') ctx.stats.symlinks++;
    else ctx.stats.specials++;
    if (o.dryRun) {
      ctx.plan(f.rel, e, d);
      f.out.push(ctx.record(e.name, e, 0, 0, null));
      return;
    }
    if (e.nlink > 1) {
      // one source inode, several names: done in order, on this thread
      f.out.push(this.hardLinks.link(f, e, p, d, sourceHash));
      return;
    }
    if (d.action === 'link') {
      ctx.plan(f.rel, e, d);
      return this.linker.add(f, e, ctx.record(e.name, e, 0, p!.flags & FLAG.OFF_SPOOL, p!.hash), p!.ino);
    }
    if (d.action === 'copy') {
      // a file with a content-link candidate is hashed (and compared) on the pool, then linked
      // or copied; the walk goes on meanwhile
      await this.pool.slot();
      const at = f.out.push(null) - 1;
      // only its metadata changed: a clone of its previous inode where the spool clones (clone.ts)
      if (this.writer.cloner?.fromPrevious(f, e, p, d, at, sourceHash)) return;
      const cands = this.content?.candidates(e) ?? [];
      if (cands.length) void this.content!.linkLater(f, e, d, cands, at, sourceHash);
      else {
        ctx.plan(f.rel, e, d);
        if (!this.pool.failed) this.writer.startCopy(f, e, at);
      }
      return;
    }
    ctx.plan(f.rel, e, d);
    f.out.push(this.writer.materialize(f, e, d));
  }

  private progress(): void {
    const o = this.o;
    if (!o.onProgress) return;
    // every 2048 entries, or every 200 ms when directories are few and files big
    const t = Date.now();
    const s = this.ctx.stats;
    if (s.entries - this.lastProgress >= 2048 || t - this.lastProgressAt >= 200) {
      this.lastProgress = s.entries;
      this.lastProgressAt = t;
      o.onProgress(s);
    }
  }

  /**
   * This directory's entries: scanned from the source, or, in watch mode, taken from the previous
   * manifest when the journal knows the directory is unchanged.
   */
  private listDir(f: Frame, prevList: PrevDir): SourceEntry[] | number {
    const known = f.prev >= 0 && this.o.unchangedDirs ? this.o.unchangedDirs.entries(f.rel, f.src, prevList.decodeAll(), this.scanSkip) : null;
    if (known) return known;
    const raw = f.scan ?? sys.scandir(f.src, this.xflags, this.o.xattrCtimeMin);
    f.scan = undefined;
    return typeof raw === 'number' ? raw : parseScan(raw);
  }

  private prevEntries(f: Frame): PrevDir {
    const prev = this.o.prev;
    if (!prev || f.prev < 0) return NO_PREV_DIR;
    try {
      return prev.dir(f.rel, f.prev) ?? NO_PREV_DIR;
    } catch (err) {
      (this.o.onWarn ?? this.o.onNote)(`${this.o.part}: the previous manifest is damaged at ${displayPath(f.rel) || '.'} (${(err as Error).message}): comparing with the previous generation itself there`);
      this.o.unchangedDirs?.disable('the previous manifest is damaged');
      return prev.walkDir(f.prev);
    }
  }
}

export type { Meta };
