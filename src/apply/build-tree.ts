/**
 * Builds one generation of one part: walks the source, the previous generation and the new
 * (partial) generation together, directory by directory, with directory descriptors (so path
 * length is no limit and nothing is resolved twice). Each directory is planned
 * (src/plan/plan-dir.ts: pure, one step per entry) and the plan carried out by the
 * collaborators: linker.ts (unchanged entries, checked links from the previous generation),
 * entry-writer.ts and meta-writer.ts (new inodes and metadata), content-links.ts (identical files already in the
 * spool), hard-links.ts (names of one source inode), carry.ts (what the source cannot give in
 * this run). Directories get their own metadata after their children (post-order). Each
 * directory's manifest block is written as soon as its entries have settled, in walk order, so
 * memory stays bounded by the depth of the tree, not its size.
 *
 * This file is the coordinator: the walk's order and the manifest blocks. dir-walk.ts enters
 * and leaves directories (descriptors, look-ahead on the pool); steps.ts carries out a
 * directory's plan; jobs.ts bounds the native jobs in flight.
 *
 * Resuming: in a partial generation left by a killed run, an existing entry is kept when it is
 * provably what this run would write (the previous generation's inode, or a complete copy:
 * same size, mtime, mode and owner, since the copy sets the mtime last), else replaced; entries
 * that the source no longer has are removed. Existing inodes are never written to.
 */
import { displayPath } from '../paths/escape.js';
import { pauseArmed, pauseDirs, testPauseAsync } from '../fs/test-pause.js';
import { parseScan, type Meta, type SourceEntry } from '../fs/entry.js';
import { SCAN_PARALLEL, SCAN_XATTR, ST, errnoName, sys } from '../fs/native.js';
import type { BlockEntry, ManifestEntry } from '../manifest/format.js';
import { planDir } from '../plan/plan-dir.js';
import { NO_PREV_DIR, type PrevDir } from './prev-tree.js';
import { BuildContext, type BuildOptions } from './build-context.js';
import { JobPool } from './jobs.js';
import { newFrame, type Frame } from './frame.js';
import { EntryWriter } from './entry-writer.js';
import { Linker } from './linker.js';
import { ContentLinker } from './content-links.js';
import { HardLinks } from './hard-links.js';
import { Carrier } from './carry.js';
import { DirWalk } from './dir-walk.js';
import { StepRunner } from './steps.js';
import type { BuildFindings, BuildStats } from './types.js';
import type { ScanDir } from './dir-entry-source.js';

export type { BuildOptions } from './build-context.js';
export { newStats } from './build-context.js';

/** native jobs in flight at once (links and copies on the libuv pool) */
const MAX_IN_FLIGHT = 64;

export class TreeBuilder {
  private readonly ctx: BuildContext;
  private readonly pool: JobPool;
  private readonly writer: EntryWriter;
  private readonly linker: Linker;
  private readonly carrier: Carrier;
  private readonly walk: DirWalk;
  private readonly steps: StepRunner;
  private lastProgress = 0;
  private lastProgressAt = 0;
  /** frames in walk (pre-)order whose manifest block is not written yet */
  private readonly blockQueue: Frame[] = [];
  /** scandir's attribute flags for this run */
  private readonly xflags: number;
  /** the directory the test seam pauses in after its scan (src/fs/test-pause.ts), or null: read once, not per directory */
  private readonly pauseAfterScan = pauseArmed('after-scan') ? pauseDirs() : null;
  /** a scan with this run's attribute flags that does not stat the names given (watch mode) */
  private readonly scanSkip: ScanDir = (fd, skip) => sys.scandir(fd, this.xflags, this.o.xattrCtimeMin, skip);

  constructor(private readonly o: BuildOptions) {
    const ctx = (this.ctx = new BuildContext(o));
    const pool = (this.pool = new JobPool(MAX_IN_FLIGHT, (f) => this.checkDone(f as Frame)));
    const writer = (this.writer = new EntryWriter(ctx, pool));
    const linker = (this.linker = new Linker(ctx, pool, writer));
    const content = o.dedup && o.dstRootFd >= 0 ? new ContentLinker(ctx, pool, writer, o.dedup) : null;
    const carrier = (this.carrier = new Carrier(ctx, linker, writer));
    writer.content = content;
    writer.carrier = carrier;
    const hardLinks = new HardLinks(ctx, linker, writer, content);
    this.xflags = (o.xattrs ? SCAN_XATTR.OTHER | SCAN_XATTR.FILES : 0) | (o.sourceRemote ? SCAN_PARALLEL : 0);
    this.walk = new DirWalk(o, ctx, pool, writer, carrier, this.xflags);
    this.steps = new StepRunner(o, ctx, pool, writer, linker, content, hardLinks, carrier);
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
    const walk = this.walk;
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
          o.mountWatch?.check();
          walk.prepareAhead(f);
          const child = await walk.enter(f, f.subdirs[f.next++]!);
          if (child) {
            stack.push(child);
            await this.processDir(child);
          }
          continue;
        }
        walk.leave(f);
        stack.pop();
      }
      await walk.allFinished();
      this.pool.throwIfFailed();
    } finally {
      // never close a descriptor a job on the pool may still use
      await this.pool.drain();
      await walk.allFinished();
      for (const f of stack) if (f !== root) walk.closeFrame(f);
      walk.closeUnentered();
      o.signal?.removeEventListener('abort', onAbort);
    }
    const st = new Float64Array(sys.STAT_FIELDS);
    const rootIno = o.dstRootFd >= 0 && sys.fstat(o.dstRootFd, st) === 0 ? st[ST.INO]! : 0;
    return this.ctx.record(Buffer.alloc(0), o.rootMeta, rootIno, 0, null);
  }

  /** A directory whose entries are all settled: resume cleanup, then its block may be written. */
  private checkDone(f: Frame): void {
    if (!f.sealed || f.pending > 0 || f.complete) return;
    f.complete = true;
    try {
      if (this.o.resume && f.dst >= 0 && !this.pool.failed) this.writer.meta.removeStale(f);
    } catch (err) {
      this.pool.fail(err);
    }
    f.settle();
    // manifest blocks go out in walk order, so readers see parents before children
    const q = this.blockQueue;
    while (q.length && q[0]!.complete) {
      const h = q.shift()!;
      if (!this.pool.failed)
        this.o.manifest?.addDir(
          h.rel,
          this.ctx.mounts.records(
            h.rel,
            h.mounted,
            h.out.filter((m): m is BlockEntry => m !== null),
          ),
        );
      h.out = [];
    }
  }

  private seal(f: Frame): void {
    f.sealed = true;
    this.checkDone(f);
  }

  /** Plans one directory and carries the plan out (its subdirectories are entered later). */
  private async processDir(f: Frame): Promise<void> {
    const steps = this.steps;
    this.blockQueue.push(f);
    const prevList = (f.prevList = this.prevEntries(f));
    if (f.carry) {
      await steps.carryDir(f, prevList, f.carry);
      return this.seal(f);
    }
    const entries = this.listDir(f, prevList);
    if (this.pauseAfterScan?.some((d) => f.rel.equals(d))) await testPauseAsync('after-scan', this.o.signal);
    if (typeof entries === 'number') {
      const code = errnoName(entries);
      const carry = f.rel.length && code !== 'ENOENT' && this.carrier.possible(f) && prevList.length ? steps.carrierForSelf(f, code) : null;
      if (carry) {
        f.carry = carry;
        await steps.carryDir(f, prevList, carry);
      } else this.ctx.problem(f.rel, code, 'cannot read directory');
      return this.seal(f);
    }
    const pctx = steps.planContext(f);
    for (const step of planDir(f.rel, entries, prevList, pctx)) {
      if (this.pool.failed) break; // a fatal error or a signal: nothing more is started
      this.ctx.stats.entries++;
      const wait = steps.carryOut(f, step, pctx);
      if (wait) await wait;
    }
    if (!this.pool.failed) await this.linker.flush(f);
    this.seal(f);
    this.progress();
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
   * manifest when the journal knows the directory is unchanged (never at or below a mount point:
   * what a mount shows changes with no event where the journal looks).
   */
  private listDir(f: Frame, prevList: PrevDir): SourceEntry[] | number {
    const known = f.prev >= 0 && !f.mounted && this.o.unchangedDirs ? this.o.unchangedDirs.entries(f.rel, f.src, prevList.decodeAll(), this.scanSkip) : null;
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
      (this.o.onWarn ?? this.o.onNote)(
        `${this.o.part}: the previous manifest is damaged at ${displayPath(f.rel) || '.'} (${(err as Error).message}): comparing with the previous generation itself there`,
      );
      this.o.unchangedDirs?.disable('the previous manifest is damaged');
      return prev.walkDir(f.prev);
    }
  }
}

export type { Meta };
