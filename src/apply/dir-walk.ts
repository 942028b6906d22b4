/**
 * The walk's directories and their descriptors: entering a directory (mkdir in the new
 * generation, open it and its previous version, open and scan the source), started ahead of
 * the walk on the pool so that many are in flight (Linux serializes creates within one
 * directory, and on NFS each is a round trip), and leaving it (its metadata once its entries
 * have settled, then its descriptors closed). Every descriptor opened here is closed here, once,
 * on every way out, and never while a job on the pool may still use it.
 */
import { joinRel } from '../paths/escape.js';
import { readDirAt } from '../fs/entry.js';
import { errnoName, sys } from '../fs/native.js';
import { E } from '../fs/errno.js';
import { removeChildAt } from '../fs/remove-tree.js';
import type { BuildContext, BuildOptions } from './build-context.js';
import type { JobPool } from './jobs.js';
import { newFrame, type Frame, type Subdir } from './frame.js';
import type { EntryWriter } from './entry-writer.js';
import type { Carrier } from './carry.js';

const O_DIR = sys.O_RDONLY | sys.O_DIRECTORY | sys.O_NOFOLLOW;
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
/** spoolDirAsync's flags: make the spool directory; open the source's and scan it; open it only */
const SPOOL_MKDIR = 1;
const SPOOL_SCAN = 2;
const SPOOL_OPEN_SRC = 4;

export class DirWalk {
  /** directories whose spool side was started ahead and that are not entered yet */
  private readonly prepared = new Set<Subdir>();
  /** directories waiting for their jobs before their metadata is set */
  private finishing = 0;
  private readonly finishWaiters: (() => void)[] = [];
  private readonly scanMaxAge = Number(process.env.HARDSNAP_TEST_SCAN_AHEAD_MAX_AGE_MS ?? SCAN_AHEAD_MAX_AGE_MS);

  constructor(
    private readonly o: BuildOptions,
    private readonly ctx: BuildContext,
    private readonly pool: JobPool,
    private readonly writer: EntryWriter,
    private readonly carrier: Carrier,
    /** scandir's attribute flags for this run */
    private readonly xflags: number,
  ) {}

  /** Waits until every directory left has its metadata set and its descriptors closed. */
  async allFinished(): Promise<void> {
    while (this.finishing > 0) await new Promise<void>((r) => this.finishWaiters.push(r));
  }

  /** Closes what was prepared and never entered (the walk stopped: a failure, a signal). */
  closeUnentered(): void {
    for (const sub of this.prepared) this.closePrepared(sub.spool!);
    this.prepared.clear();
  }

  /** Starts the spool side of f's next directories on the pool, so many are in flight. */
  prepareAhead(f: Frame): void {
    for (let i = f.next; i < f.subdirs.length && i < f.next + LOOKAHEAD; i++) {
      const sub = f.subdirs[i]!;
      if (sub.ready) continue;
      if (i > f.next && this.prepared.size >= MAX_PREPARED) break;
      // -EBADF until the job fills them: a job that never ran leaves nothing to close or use
      sub.spool = new Int32Array(4).fill(-9);
      this.prepared.add(sub);
      const prev = sub.prevIsDir ? f.prev : -1;
      // a carried one has no source; in watch mode one whose entries may come from the manifest
      // (the journal knows it unchanged, or names its changed entries) is opened, not scanned
      const known = this.o.unchangedDirs;
      const ahead = !sub.carry && f.src >= 0;
      const rel = joinRel(f.rel, sub.name);
      const whole = !known || f.mounted || this.ctx.mounts.isMountPoint(rel) || known.scansWhole(rel, sub.prevIsDir);
      sub.scanAhead = ahead && sub.meta.size <= SCAN_AHEAD_MAX_DIR_SIZE && whole;
      sub.openAhead = ahead;
      const flags = (f.dst >= 0 ? SPOOL_MKDIR : 0) | (sub.scanAhead ? SPOOL_SCAN : ahead ? SPOOL_OPEN_SRC : 0);
      sub.scannedAt = Date.now();
      sub.ready = this.pool.track(sys.spoolDirAsync(f.dst, prev, sub.name, flags, sub.spool, f.src, this.xflags, this.o.xattrCtimeMin));
    }
  }

  /** Closes what a prepared directory that was never entered opened. */
  private closePrepared(res: Int32Array): void {
    for (let i = 1; i < 4; i++) {
      if (res[i]! >= 0) sys.close(res[i]!);
      res[i] = -1;
    }
  }

  async enter(parent: Frame, sub: Subdir): Promise<Frame | null> {
    const o = this.o;
    const rel = joinRel(parent.rel, sub.name);
    const scanned = await sub.ready;
    this.prepared.delete(sub);
    const res = sub.spool!;
    // the descriptors are this function's from here on, closed once on every way out
    const made = res[0]!;
    let dst = res[1]!;
    let prev = res[2]! >= 0 ? res[2]! : -1;
    // the previous manifest has a directory here that the previous generation no longer holds
    // as one (deleted, or replaced by a symlink, in the spool): its entries are copied anew, and
    // the run says the previous generation drifted
    if (prev < 0 && sub.prevIsDir && parent.prev >= 0 && !sub.carry) this.ctx.drift(rel);
    const srcAhead = sub.openAhead ? res[3]! : null;
    res[1] = res[2] = res[3] = -1;
    const closeSpoolSide = () => {
      if (dst >= 0) sys.close(dst);
      if (prev >= 0) sys.close(prev);
      dst = prev = -1;
    };
    try {
      this.pool.throwIfFailed();
      if (parent.dst >= 0) {
        // a resumed run may find it made already: the checks of mkdir(), on this thread
        if (made === -E.EEXIST && o.resume) {
          this.writer.meta.mkdir(parent, sub.name, made);
          dst = sys.openat(parent.dst, sub.name, O_DIR, 0);
        } else if (made < 0) this.ctx.fatal(rel, made, 'cannot create directory in the spool');
        if (dst < 0) this.ctx.fatal(rel, dst, 'cannot open the new directory in the spool');
      }
    } catch (err) {
      closeSpoolSide();
      if (srcAhead !== null && srcAhead >= 0) sys.close(srcAhead);
      throw err;
    }
    // a dry run has no spool side (the job made and opened nothing there)
    if (parent.dst < 0) dst = -1;
    if (sub.carry) {
      // below a directory the source could not give: the previous generation's subtree
      if (prev >= 0) return this.below(parent, newFrame(rel, -1, dst, prev, sub.meta, sub.carry));
      closeSpoolSide();
      this.ctx.problem(rel, sub.carry.code, 'its previous version cannot be opened in the previous generation either: left empty', false);
      return null;
    }
    // opened ahead on the pool (or not: the walk started no job for it); its errno if that failed
    const src = srcAhead ?? sys.openat(parent.src, sub.name, O_DIR | sys.O_NOATIME, 0);
    if (src < 0) {
      const code = errnoName(src);
      const carried = code !== 'ENOENT' && prev >= 0 ? this.carrier.dir(parent, sub.name, code, 'cannot open directory') : null;
      if (carried) {
        if (o.resume) this.emptyResumed(parent, sub.name, dst);
        // its own metadata is what the scan read of it now (the parent's block records that);
        // what is below it is the previous generation's
        return this.below(parent, newFrame(rel, -1, dst, prev, sub.meta, carried.carry));
      }
      closeSpoolSide();
      this.ctx.problem(rel, code, 'cannot open directory');
      if (parent.dst >= 0) {
        // what a killed run left in it is not in this generation's manifest: it goes
        if (o.resume) this.emptyResumed(parent, sub.name, -1);
        this.writer.meta.emptyDirMeta(parent, sub.name, sub.meta);
      }
      return null;
    }
    const child = this.below(parent, newFrame(rel, src, dst, prev, sub.meta));
    // a scan that failed says so; one that is too old is made again (listDir)
    if (sub.scanAhead && (typeof scanned === 'number' || Date.now() - sub.scannedAt! <= this.scanMaxAge)) child.scan = scanned;
    return child;
  }

  /** The child frame of `parent`, at or below a mount point when its parent is or it is one. */
  private below(parent: Frame, child: Frame): Frame {
    child.mounted = parent.mounted || this.ctx.mounts.isMountPoint(child.rel);
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
    this.writer.meta.mkdir(parent, name);
  }

  /**
   * Done with a directory's subtree: once its own jobs have settled, give it its owner, mode,
   * attributes and times and close its descriptors. The walk does not wait for that (its
   * children's jobs never touch it), so many directories stay in flight.
   */
  leave(f: Frame): void {
    const finish = async () => {
      try {
        if (!this.pool.failed && f.dst >= 0) await this.writer.meta.dirMeta(f);
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

  closeFrame(f: Frame): void {
    if (f.src >= 0) sys.close(f.src);
    if (f.dst >= 0) sys.close(f.dst);
    if (f.prev >= 0) sys.close(f.prev);
  }
}
