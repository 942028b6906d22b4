/**
 * Builds one generation of one part: walks the source, the previous generation and the new
 * (partial) generation together, directory by directory, with directory descriptors (so path
 * length is no limit and nothing is resolved twice), and for each entry links the previous
 * inode or writes a new one, as src/plan/decide.ts says. Directories get their own metadata
 * after their children (post-order). Each directory's manifest block is written as soon as it
 * is done, so memory stays bounded by the depth of the tree, not its size.
 *
 * Resuming: in a partial generation left by a killed run, an existing entry is kept when it is
 * provably what this run would write (the previous generation's inode, or a complete copy:
 * same size, mtime, mode and owner, since the copy sets the mtime last), else replaced; entries
 * that the source no longer has are removed. Existing inodes are never written to.
 */
import { HardsnapError } from '../core/errors.js';
import { pauseArmed, pauseDir, testPauseAsync } from '../core/test-pause.js';
import { joinRel } from '../paths/escape.js';
import { MODE_BITS, parseScan, type Meta, type SourceEntry } from '../fs/entry.js';
import { IO, ST, STAGE, errnoName, hashHex, splitStaged, sys } from '../fs/native.js';
import { EncodedEntry, FLAG, type BlockEntry, type ManifestEntry } from '../manifest/format.js';
import { decide, needsChecksum, type Decision } from '../plan/decide.js';
import { sameContent, sameness, type Sameness } from '../fs/compare.js';
import type { Candidate, DedupIndex } from './dedup-index.js';
import type { ManifestWriter } from '../manifest/writer.js';
import { removeChildAt } from './remove-tree.js';
import { NO_PREV_DIR, type PrevDir, type PrevTree } from './prev-tree.js';
import type { DirEntrySource } from '../watch/unchanged-dirs.js';
import type { BuildStats, PlanOutcome, Problem } from './types.js';

export interface ExcludeFilter {
  readonly empty: boolean;
  excluded(relPath: Buffer, name: Buffer, isDir: boolean): boolean;
}

export interface BuildOptions {
  part: string;
  /** descriptor of the source root directory */
  srcRootFd: number;
  /** metadata of the source root */
  rootMeta: Meta & { dev: number };
  /** descriptor of the new generation's root (the .partial directory); -1 in a dry run */
  dstRootFd: number;
  /** descriptor (O_PATH) of the previous generation's root, or -1 */
  prevRootFd: number;
  prev: PrevTree | null;
  resume: boolean;
  asRoot: boolean;
  oneFileSystem: boolean;
  excludes: ExcludeFilter;
  /** directories never entered (dev:ino): the spool when it lies inside the source */
  skipDirs: Map<string, string>;
  manifest: ManifestWriter | null;
  dryRun: boolean;
  /** content index: new or changed files identical to one in it are linked, not written */
  dedup?: DedupIndex | null;
  /** compare bytes before a content link (docs/CONTENT.md) */
  dedupVerify?: boolean;
  /** decide "unchanged" by content hash (reads the source of every unchanged-looking file) */
  checksum?: boolean;
  /** watch mode: entries of directories the journal knows are unchanged (src/watch/unchanged-dirs.ts) */
  unchangedDirs?: DirEntrySource | null;
  onProblem(p: Problem): void;
  onNote(message: string): void;
  /**
   * each entry's decision (dry runs print it; --verbose itemizes it), before it is carried out;
   * for a file to copy, once a content link was tried, and for a further name of a source inode,
   * once it is linked, so that `how` says what was done instead of a copy
   */
  onPlan?(rel: Buffer, d: Decision, e: Meta, how?: PlanOutcome): void;
  onProgress?(s: BuildStats): void;
  /**
   * the run was asked to stop (a signal): no new job is started, those in flight finish, every
   * descriptor is closed, and run() throws the signal's reason; the partial tree stays to resume
   */
  signal?: AbortSignal;
}

interface Frame {
  rel: Buffer;
  src: number;
  dst: number;
  prev: number;
  meta: Meta;
  /** its scan, when it was read ahead on the pool (a Buffer as sys.scandir gives it, or -errno) */
  scan?: Buffer | number;
  subdirs: Subdir[];
  next: number;
  /** this directory's manifest entries, in name order; null entries were dropped */
  out: (BlockEntry | null)[];
  /** jobs of this directory still in flight */
  pending: number;
  /** all entries of the directory have been handed out */
  sealed: boolean;
  complete: boolean;
  done: Promise<void>;
  settle: () => void;
}

interface Subdir {
  name: Buffer;
  meta: SourceEntry;
  prevIsDir: boolean;
  /** entering it (mkdir, open new and previous, open and scan the source), started ahead of the walk */
  ready?: Promise<Buffer | number>;
  /** spoolDirAsync's results: mkdir rc, new directory fd, previous directory fd, source fd */
  spool?: Int32Array;
  /** whether the job opens and scans the source directory too */
  scanAhead?: boolean;
  /** when the job that scans it was started (Date.now()): the scan is at most this old */
  scannedAt?: number;
}

interface PendingLink {
  e: SourceEntry;
  /** the previous generation's inode */
  ino: number;
  /** index of its entry in the frame's out */
  at: number;
}

interface LinkGroup {
  id: number;
  rel: Buffer;
  entry: ManifestEntry;
}

const O_DIR = sys.O_RDONLY | sys.O_DIRECTORY | sys.O_NOFOLLOW;
const LINK_BATCH = 256;
const COPY_ATTEMPTS = 3;
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
/** decide()'s verdict on a file recorded exactly as it is now (the fast path of processDir) */
const UNCHANGED: Readonly<Decision> = Object.freeze({ action: 'link', reason: 'unchanged' });
/** spoolDirAsync's flags */
const SPOOL_MKDIR = 1;
const SPOOL_SCAN = 2;

function newFrame(rel: Buffer, src: number, dst: number, prev: number, meta: Meta): Frame {
  let settle!: () => void;
  const done = new Promise<void>((r) => (settle = r));
  return { rel, src, dst, prev, meta, subdirs: [], next: 0, out: [], pending: 0, sealed: false, complete: false, done, settle };
}

export function newStats(): BuildStats {
  return {
    entries: 0, dirs: 0, files: 0, symlinks: 0, specials: 0, linked: 0, copied: 0,
    bytesWritten: 0, bytesLinked: 0, reused: 0, emlinkCopies: 0, prevMissing: 0, unstable: 0,
    excluded: 0, problems: 0, vanished: 0, dedupLinked: 0, dedupBytes: 0, dedupMismatches: 0,
    hashedFiles: 0, hashedBytes: 0, checksumChanged: 0,
  };
}

export class TreeBuilder {
  readonly stats = newStats();
  private readonly io = new Float64Array(sys.IO_FIELDS);
  private readonly st = new Float64Array(sys.STAT_FIELDS);
  private readonly groups = new Map<string, LinkGroup>();
  private nextGroup = 1;
  /** the source hash --checksum just computed, reused by the content link of the same entry */
  private knownHash: { e: SourceEntry; hash: string } | null = null;
  /** this generation as a dedup root (files written by this run join the index) */
  private selfRoot = -1;
  private lastProgress = 0;
  private lastProgressAt = 0;
  /** frames in walk (pre-)order whose manifest block is not written yet */
  private readonly blockQueue: Frame[] = [];
  private inFlight = 0;
  private readonly waiters: (() => void)[] = [];
  private fatalError: unknown = null;
  /** directories waiting for their jobs before their metadata is set */
  private finishing = 0;
  private readonly finishWaiters: (() => void)[] = [];
  /** directories whose spool side was started ahead and that are not entered yet */
  private readonly prepared = new Set<Subdir>();
  private readonly scanMaxAge = Number(process.env.HARDSNAP_TEST_SCAN_AHEAD_MAX_AGE_MS ?? SCAN_AHEAD_MAX_AGE_MS);

  private readonly onAbort = () => {
    this.fatalError ??= this.o.signal!.reason;
  };

  constructor(private readonly o: BuildOptions) {
    if (o.dedup && !o.dryRun) this.selfRoot = o.dedup.addRoot(o.dstRootFd, 'this generation', false);
  }

  /** Builds the whole tree; returns the root's manifest entry. Throws on a fatal error. */
  async run(): Promise<ManifestEntry> {
    const o = this.o;
    const root = newFrame(Buffer.alloc(0), o.srcRootFd, o.dstRootFd, o.prevRootFd, o.rootMeta);
    const stack: Frame[] = [root];
    o.signal?.throwIfAborted();
    o.signal?.addEventListener('abort', this.onAbort, { once: true });
    try {
      await this.processDir(root);
      while (stack.length) {
        this.throwIfFailed();
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
      this.throwIfFailed();
    } finally {
      // never close a descriptor a job on the pool may still use
      while (this.inFlight > 0) await new Promise<void>((r) => this.waiters.push(r));
      await this.allFinished();
      for (const f of stack) if (f !== root) this.closeFrame(f);
      for (const sub of this.prepared) this.closePrepared(sub.spool!);
      o.signal?.removeEventListener('abort', this.onAbort);
    }
    return this.manifestEntry(Buffer.alloc(0), o.rootMeta, 0, 0, null);
  }

  // ---------- jobs in flight ----------

  /** Waits until every directory left has its metadata set and its descriptors closed. */
  private async allFinished(): Promise<void> {
    while (this.finishing > 0) await new Promise<void>((r) => this.finishWaiters.push(r));
  }

  private throwIfFailed(): void {
    if (this.fatalError) throw this.fatalError;
  }

  /** Waits until another native job may start. */
  private async slot(): Promise<void> {
    while (this.inFlight >= MAX_IN_FLIGHT) await new Promise<void>((r) => this.waiters.push(r));
  }

  /** Counts an async native job that belongs to no directory's entries; resolves to its rc. */
  private track<T extends Buffer | number>(p: Promise<T> | number): Promise<T | number> {
    if (typeof p === 'number') return Promise.resolve(p);
    this.inFlight++;
    return p.then((rc) => rc, (err: unknown) => {
      this.fatalError ??= err;
      return -5;
    }).finally(() => {
      this.inFlight--;
      this.waiters.shift()?.();
    });
  }

  /** Runs an async native job for frame f; `then` handles its result on the main thread. */
  private job(f: Frame, p: Promise<number> | number, then: (rc: number) => void): void {
    this.inFlight++;
    f.pending++;
    const finish = (rc: number) => {
      try {
        if (!this.fatalError) then(rc);
      } catch (err) {
        this.fatalError ??= err;
      }
      this.inFlight--;
      f.pending--;
      this.waiters.shift()?.();
      this.checkDone(f);
    };
    if (typeof p === 'number') finish(p);
    else p.then(finish, (err: unknown) => {
      this.fatalError ??= err;
      finish(-5);
    });
  }

  /** A directory whose entries are all settled: resume cleanup, then its block may be written. */
  private checkDone(f: Frame): void {
    if (!f.sealed || f.pending > 0 || f.complete) return;
    f.complete = true;
    try {
      if (this.o.resume && !this.o.dryRun && !this.fatalError) this.removeStale(f);
    } catch (err) {
      this.fatalError ??= err;
    }
    f.settle();
    // manifest blocks go out in walk order, so readers see parents before children
    const q = this.blockQueue;
    while (q.length && q[0]!.complete) {
      const h = q.shift()!;
      if (!this.fatalError) this.o.manifest?.addDir(h.rel, h.out.filter((m): m is BlockEntry => m !== null));
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
      // watch mode may not scan it at all (the journal knows it unchanged)
      sub.scanAhead = !this.o.unchangedDirs && sub.meta.size <= SCAN_AHEAD_MAX_DIR_SIZE;
      const flags = SPOOL_MKDIR | (sub.scanAhead ? SPOOL_SCAN : 0);
      sub.scannedAt = Date.now();
      sub.ready = this.track(sys.spoolDirAsync(this.o.dryRun ? -1 : f.dst, prev, sub.name, flags, sub.spool, f.src));
    }
  }

  /**
   * A directory that stays empty in the generation (not entered: it could not be opened, or it
   * is another file system under --one-file-system) gets its own metadata now, rather than
   * the 0700 and the run's time it was made with.
   */
  private emptyDirMeta(parent: Frame, name: Buffer, m: Meta): void {
    const rc = sys.setmeta(parent.dst, name, -1, m.uid, m.gid, m.mode, m.mtimeSec, m.mtimeNsec, (this.o.asRoot ? 1 : 0) | 2 | 4);
    if (rc < 0) this.fatal(joinRel(parent.rel, name), -(-rc & 0xffff), 'cannot set the metadata of a directory in the spool');
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
      this.throwIfFailed();
      if (!o.dryRun) {
        // a resumed run may find it made already: the checks of mkdir(), on this thread
        if (made === -17 /* EEXIST */ && o.resume) {
          this.mkdir(parent, sub.name, made);
          dst = sys.openat(parent.dst, sub.name, O_DIR, 0);
        } else if (made < 0) this.fatal(rel, made, 'cannot create directory in the spool');
      }
    } catch (err) {
      closeSpoolSide();
      if (srcAhead !== null && srcAhead >= 0) sys.close(srcAhead);
      throw err;
    }
    const src = srcAhead ?? sys.openat(parent.src, sub.name, O_DIR | sys.O_NOATIME, 0);
    if (src < 0) {
      closeSpoolSide();
      this.problem(rel, errnoName(src), 'cannot open directory');
      if (!o.dryRun) {
        if (o.resume) {
          // what a killed run left in it is not in this generation's manifest: it goes
          removeChildAt(parent.dst, sub.name);
          this.mkdir(parent, sub.name);
        }
        this.emptyDirMeta(parent, sub.name, sub.meta);
      }
      return null;
    }
    if (!o.dryRun && dst < 0) {
      const rc = dst;
      sys.close(src);
      closeSpoolSide();
      this.fatal(rel, rc, 'cannot open the new directory in the spool');
    }
    if (o.dryRun) dst = -1;
    const child = newFrame(rel, src, dst, prev, sub.meta);
    // a scan that failed says so; one that is too old is made again (listDir)
    if (srcAhead !== null && (typeof scanned === 'number' || Date.now() - sub.scannedAt! <= this.scanMaxAge)) child.scan = scanned;
    return child;
  }

  /**
   * Done with a directory's subtree: once its own jobs have settled, give it its owner, mode
   * and times and close its descriptors. The walk does not wait for that (its children's
   * jobs never touch it), so many directories stay in flight.
   */
  private leave(f: Frame): void {
    const finish = async () => {
      try {
        if (!this.fatalError && !this.o.dryRun) {
          const m = f.meta;
          const rc = await this.track(sys.setmetaAsync(-1, '', f.dst, m.uid, m.gid, m.mode, m.mtimeSec, m.mtimeNsec, (this.o.asRoot ? 1 : 0) | 2 | 4));
          if (rc < 0) this.fatal(f.rel, -(-rc & 0xffff), 'cannot set the metadata of a directory in the spool');
        }
      } catch (err) {
        this.fatalError ??= err;
      } finally {
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
    sys.close(f.src);
    if (f.dst >= 0) sys.close(f.dst);
    if (f.prev >= 0) sys.close(f.prev);
  }

  private async processDir(f: Frame): Promise<void> {
    const o = this.o;
    this.blockQueue.push(f);
    const prevList = this.prevEntries(f);
    const entries = this.listDir(f, prevList);
    if (pauseArmed('after-scan') && f.rel.equals(pauseDir())) await testPauseAsync('after-scan', o.signal);
    if (typeof entries === 'number') {
      this.problem(f.rel, errnoName(entries), 'cannot read directory');
      f.sealed = true;
      this.checkDone(f);
      return;
    }
    let links: PendingLink[] = [];
    let pi = 0;
    const pn = prevList.length;
    // a regular file recorded exactly as it is now is linked, its record copied (the common case)
    const fastLinks = f.prev >= 0 && !o.checksum && !o.dryRun;
    for (const e of entries) {
      if (this.fatalError) break; // a fatal error or a signal: nothing more is started
      while (pi < pn && prevList.compareName(pi, e.name) < 0) pi++;
      const hit = pi < pn && prevList.compareName(pi, e.name) === 0;
      this.stats.entries++;
      if (e.err) {
        if (e.err === -1) this.problem(joinRel(f.rel, e.name), 'EINVAL', 'unknown file type');
        else this.problem(joinRel(f.rel, e.name), errnoName(e.err), 'cannot stat');
        continue;
      }
      const isDir = e.type === 'dir';
      if (!o.excludes.empty && o.excludes.excluded(joinRel(f.rel, e.name), e.name, isDir)) {
        this.stats.excluded++;
        continue;
      }
      if (hit && fastLinks && e.type === 'file' && e.nlink === 1) {
        const bytes = prevList.unchangedFile(pi, e);
        if (bytes) {
          this.stats.files++;
          this.plan(f, e, UNCHANGED);
          links.push({ e, ino: prevList.ino(pi), at: f.out.push(new EncodedEntry(e.name, bytes)) - 1 });
          if (links.length >= LINK_BATCH) {
            await this.fireLinks(f, links);
            links = [];
          }
          continue;
        }
      }
      const p = hit ? prevList.decode(pi) : undefined;
      if (isDir) {
        const skip = o.skipDirs.get(`${e.dev}:${e.ino}`);
        if (skip) {
          o.onNote(`${skip} lies inside the source of part '${o.part}': excluded from it`);
          continue;
        }
      }
      const ctx = { prevAvailable: f.prev >= 0, asRoot: o.asRoot, checksum: o.checksum };
      const sourceHash = needsChecksum(e, p, ctx) ? this.hashSource(f, e) : undefined;
      const d = decide(e, p, ctx, sourceHash);
      if (d.reason === 'content differs (checksum)') this.stats.checksumChanged++;
      this.knownHash = sourceHash ? { e, hash: sourceHash } : null;
      if (isDir) {
        this.plan(f, e, d);
        this.stats.dirs++;
        f.out.push(this.manifestEntry(e.name, e, 0, 0, null));
        const crossesMount = o.oneFileSystem && e.dev !== o.rootMeta.dev;
        if (crossesMount) {
          if (!o.dryRun) {
            this.mkdir(f, e.name);
            this.emptyDirMeta(f, e.name, e);
          }
          o.onNote(`${o.part}: not crossing into another file system at ${joinRel(f.rel, e.name).toString()}`);
        } else f.subdirs.push({ name: e.name, meta: e, prevIsDir: p?.type === 'dir' }); // made when entered
        continue;
      }
      if (e.type === 'file') this.stats.files++;
      else if (e.type === 'symlink') this.stats.symlinks++;
      else this.stats.specials++;
      if (o.dryRun) {
        this.plan(f, e, d);
        f.out.push(this.manifestEntry(e.name, e, 0, 0, null));
        continue;
      }
      if (e.nlink > 1 && e.type !== 'symlink') {
        // one source inode, several names: done in order, on this thread
        f.out.push(this.hardLinked(f, e, p, d));
        continue;
      }
      if (d.action === 'link') {
        this.plan(f, e, d);
        const m = this.manifestEntry(e.name, e, p!.ino, 0, p!.hash);
        links.push({ e, ino: p!.ino, at: f.out.push(m) - 1 });
        if (links.length >= LINK_BATCH) {
          await this.fireLinks(f, links);
          links = [];
        }
        continue;
      }
      if (d.action === 'copy') {
        // a file with a content-link candidate is hashed (and compared) on the pool, then linked
        // or copied; the walk goes on meanwhile
        const cands = this.contentCandidates(e);
        await this.slot();
        if (cands.length) void this.fireContentLink(f, e, d, cands, f.out.push(null) - 1, sourceHash ?? null);
        else {
          this.plan(f, e, d);
          if (!this.fatalError) this.startCopy(f, e, f.out.push(null) - 1);
        }
        continue;
      }
      this.plan(f, e, d);
      f.out.push(this.materialize(f, e, d));
    }
    if (links.length && !this.fatalError) await this.fireLinks(f, links);
    f.sealed = true;
    this.checkDone(f);
    if (o.onProgress) {
      // every 2048 entries, or every 200 ms when directories are few and files big
      const t = Date.now();
      if (this.stats.entries - this.lastProgress >= 2048 || t - this.lastProgressAt >= 200) {
        this.lastProgress = this.stats.entries;
        this.lastProgressAt = t;
        o.onProgress(this.stats);
      }
    }
  }

  private plan(f: Frame, e: SourceEntry, d: Decision, how?: PlanOutcome): void {
    if (this.o.onPlan) this.o.onPlan(joinRel(f.rel, e.name), d, e, how);
  }

  /**
   * This directory's entries: scanned from the source, or, in watch mode, taken from the previous
   * manifest when the journal knows the directory is unchanged.
   */
  private listDir(f: Frame, prevList: PrevDir): SourceEntry[] | number {
    const known = f.prev >= 0 && this.o.unchangedDirs ? this.o.unchangedDirs.entries(f.rel, f.src, prevList.decodeAll()) : null;
    if (known) return known;
    const raw = f.scan ?? sys.scandir(f.src);
    f.scan = undefined;
    return typeof raw === 'number' ? raw : parseScan(raw);
  }

  private prevEntries(f: Frame): PrevDir {
    const prev = this.o.prev;
    if (!prev) return NO_PREV_DIR;
    try {
      return prev.dir(f.rel, f.prev) ?? NO_PREV_DIR;
    } catch (err) {
      this.o.onNote(`previous manifest unreadable at ${f.rel.toString() || '/'} (${(err as Error).message}): comparing with the previous generation itself`);
      this.o.unchangedDirs?.disable('the previous manifest is damaged');
      return prev.walkDir(f.prev);
    }
  }

  /** Makes a directory in the spool; `first` is the result of a mkdirat already tried. */
  private mkdir(f: Frame, name: Buffer, first?: number): void {
    let rc = first ?? sys.mkdirat(f.dst, name, 0o700);
    if (rc === -17 /* EEXIST */ && this.o.resume) {
      if (sys.fstatat(f.dst, name, this.st, 1) === 0 && (this.st[ST.MODE]! & 0o170000) === 0o040000) {
        rc = sys.setmeta(f.dst, name, -1, 0, 0, 0o700, 0, 0, 2);
      } else {
        removeChildAt(f.dst, name);
        rc = sys.mkdirat(f.dst, name, 0o700);
      }
    }
    if (rc < 0) this.fatal(joinRel(f.rel, name), rc, 'cannot create directory in the spool');
  }

  /** Removes what a killed run left in this directory that the source no longer has. */
  private removeStale(f: Frame): void {
    const raw = sys.scandir(f.dst);
    if (typeof raw === 'number') this.fatal(f.rel, raw, 'cannot read the partial generation');
    const keep = new Set(f.out.flatMap((m) => (m ? [m.name.toString('latin1')] : [])));
    for (const e of parseScan(raw)) {
      if (!keep.has(e.name.toString('latin1'))) removeChildAt(f.dst, e.name);
    }
  }

  // ---------- non-directories ----------

  /** Links a batch of unchanged entries from the previous generation, on the pool. */
  private async fireLinks(f: Frame, links: PendingLink[]): Promise<void> {
    let size = 0;
    for (const l of links) size += 2 + l.e.name.length;
    const names = Buffer.allocUnsafe(size);
    let o = 0;
    for (const l of links) {
      names.writeUInt16LE(l.e.name.length, o);
      l.e.name.copy(names, o + 2);
      o += 2 + l.e.name.length;
    }
    // a slot the batch never reached must not read as "linked"
    const res = new Int32Array(links.length).fill(-5 /* EIO */);
    await this.slot();
    this.job(f, sys.linkBatchAsync(f.prev, f.dst, names, res), (rc) => {
      if (rc < 0) this.fatal(f.rel, rc, 'cannot link into the spool');
      for (let i = 0; i < links.length; i++) {
        const l = links[i]!;
        if (!this.linked(f, l.e, l.ino, res[i]!)) f.out[l.at] = this.afterFailedLink(f, l.e, res[i]!);
      }
    });
  }

  /** Links one unchanged entry now; the entry, or its fresh copy when the link was refused. */
  private linkNow(f: Frame, e: SourceEntry, p: ManifestEntry): ManifestEntry | null {
    const res = new Int32Array(1);
    const name = Buffer.allocUnsafe(2 + e.name.length);
    name.writeUInt16LE(e.name.length, 0);
    e.name.copy(name, 2);
    sys.linkBatch(f.prev, f.dst, name, res);
    return this.linked(f, e, p.ino, res[0]!) ? this.manifestEntry(e.name, e, p.ino, 0, p.hash) : this.afterFailedLink(f, e, res[0]!);
  }

  /** Counts a link result; false when the entry must be written fresh instead. */
  /** ino: the previous generation's inode the entry was linked to */
  private linked(f: Frame, e: SourceEntry, ino: number, rc: number): boolean {
    if (rc === 0 || (rc === -17 /* EEXIST */ && this.o.resume && this.isPrevInode(f, e.name, ino))) {
      this.stats.linked++;
      this.stats.bytesLinked += e.size;
      if (rc !== 0) this.stats.reused++;
      return true;
    }
    return false;
  }

  private isPrevInode(f: Frame, name: Buffer, ino: number): boolean {
    return sys.fstatat(f.dst, name, this.st, 1) === 0 && this.st[ST.INO] === ino;
  }

  /** A link to the previous generation failed: make a fresh inode instead, when that helps. */
  private afterFailedLink(f: Frame, e: SourceEntry, rc: number): ManifestEntry | null {
    const code = errnoName(rc);
    if (code === 'EMLINK') this.stats.emlinkCopies++;
    else if (code === 'ENOENT' || code === 'EPERM' || code === 'EXDEV') this.stats.prevMissing++;
    else if (code === 'EEXIST' && this.o.resume) removeChildAt(f.dst, e.name);
    else this.fatal(joinRel(f.rel, e.name), rc, 'cannot link into the spool');
    // no content link here: the previous inode is the best candidate, and it just refused
    return this.materialize(f, e, { action: e.type === 'file' ? 'copy' : e.type === 'symlink' ? 'symlink' : 'mknod', reason: code }, false);
  }

  /** Second and later names of one source inode become names of one generation inode. */
  private hardLinked(f: Frame, e: SourceEntry, p: ManifestEntry | undefined, d: Decision): ManifestEntry | null {
    const key = `${e.dev}:${e.ino}`;
    const g = this.groups.get(key);
    const rel = joinRel(f.rel, e.name);
    if (g) {
      let rc = sys.linkat(this.o.dstRootFd, g.rel, f.dst, e.name);
      if (rc === -17 && this.o.resume) {
        if (sys.fstatat(f.dst, e.name, this.st, 1) === 0 && this.st[ST.INO] === g.entry.ino) rc = 0;
        else {
          removeChildAt(f.dst, e.name);
          rc = sys.linkat(this.o.dstRootFd, g.rel, f.dst, e.name);
        }
      }
      if (rc === 0) {
        this.stats.linked++;
        this.plan(f, e, d, { via: 'hardlink', to: g.rel });
        return { ...g.entry, name: e.name };
      }
      if (errnoName(rc) !== 'EMLINK') this.fatal(rel, rc, 'cannot link into the spool');
      this.stats.emlinkCopies++;
    }
    const content = d.action === 'copy' ? this.contentLink(f, e) : null;
    this.plan(f, e, d, content ? { via: 'content' } : undefined);
    const m = d.action === 'link' && p ? this.linkNow(f, e, p) : content ?? this.materialize(f, e, d, false);
    if (!m) return null;
    if (g) {
      // the inode is full: this copy is the link base from now on
      g.entry = m;
      g.rel = rel;
      m.linkGroup = g.id;
    } else {
      m.linkGroup = this.nextGroup++;
      this.groups.set(key, { id: m.linkGroup, rel, entry: m });
    }
    return m;
  }

  /** Creates a new inode for a non-directory entry; null when it could not be (reported). */
  private materialize(f: Frame, e: SourceEntry, d: Decision, dedup = true): ManifestEntry | null {
    switch (d.action) {
      case 'copy':
        return (dedup ? this.contentLink(f, e) : null) ?? this.copy(f, e);
      case 'symlink':
        return this.special(f, e, () => sys.symlinkat(e.target!, f.dst, e.name));
      case 'mknod':
        return this.special(f, e, () => sys.mknodat(f.dst, e.name, MODE_BITS[e.type] | 0o600, e.type === 'char' || e.type === 'block' ? e.rdev : 0));
      case 'record':
        this.problem(joinRel(f.rel, e.name), 'EPERM', `${e.type} device not created (only root can): recorded in the manifest`, true);
        return this.manifestEntry(e.name, e, 0, FLAG.ABSENT, null);
      default:
        return null;
    }
  }

  /** Copies a new or changed file on the pool; unusual outcomes are redone on this thread. */
  private startCopy(f: Frame, e: SourceEntry, at: number): void {
    const io = new Float64Array(sys.IO_FIELDS);
    io[IO.FLAGS] = (this.o.asRoot ? 1 : 0) | 2;
    this.job(f, sys.copyAsync(f.src, e.name, f.dst, e.name, io), (rc) => {
      if (rc === 0 && io[IO.CHANGED] !== 1) {
        f.out[at] = this.copied(f, e, io, false);
        return;
      }
      if (rc === 0) sys.unlinkat(f.dst, e.name, 0);
      f.out[at] = this.copy(f, e);
    });
  }

  private copied(f: Frame, e: SourceEntry, io: Float64Array, changed: boolean): ManifestEntry {
    const s = IO.STAT;
    const meta: Meta = {
      type: 'file', mode: io[s + ST.MODE]! & 0o7777, uid: io[s + ST.UID]!, gid: io[s + ST.GID]!,
      size: io[IO.BYTES]!, mtimeSec: io[s + ST.MTIME]!, mtimeNsec: io[s + ST.MTIME_NS]!, rdev: 0, target: null,
    };
    this.stats.copied++;
    this.stats.bytesWritten += io[IO.BYTES]!;
    const m = this.manifestEntry(e.name, meta, io[IO.NEW_INO]!, changed ? FLAG.UNSTABLE : 0, hashHex(io[IO.HASH_HI]!, io[IO.HASH_LO]!));
    // a written file can be the content-link target of a later one in this run
    if (this.selfRoot >= 0) this.o.dedup!.addEntry(this.selfRoot, f.rel, m);
    return m;
  }

  private copy(f: Frame, e: SourceEntry): ManifestEntry | null {
    const io = this.io;
    const rel = () => joinRel(f.rel, e.name);
    for (let attempt = 1; ; attempt++) {
      io[IO.FLAGS] = (this.o.asRoot ? 1 : 0) | 2;
      const rc = sys.copy(f.src, e.name, f.dst, e.name, io);
      if (rc === 0) {
        const changed = io[IO.CHANGED] === 1;
        if (changed && attempt < COPY_ATTEMPTS) {
          sys.unlinkat(f.dst, e.name, 0);
          continue;
        }
        if (changed) {
          this.stats.unstable++;
          this.problem(rel(), 'ECHANGED', `changed while it was read (${COPY_ATTEMPTS} attempts): the copy may be inconsistent and will be copied again next run`, true);
        }
        return this.copied(f, e, io, changed);
      }
      const { stage, code } = splitStaged(rc);
      if (stage === STAGE.OPEN_DST && code === 'EEXIST' && this.o.resume && attempt === 1) {
        const kept = this.reuseCopy(f, e);
        if (kept) return kept;
        removeChildAt(f.dst, e.name);
        continue;
      }
      if (stage === STAGE.OPEN_SRC && code === 'ENOENT') {
        this.vanished(rel());
        return null;
      }
      if (stage === STAGE.NOT_REG || (stage === STAGE.OPEN_SRC && (code === 'ELOOP' || code === 'ENXIO'))) {
        this.problem(rel(), 'ECHANGED', 'changed type between scan and copy (not followed, not opened for data); it will be backed up next run', true);
        return null;
      }
      if (stage === STAGE.OPEN_SRC || stage === STAGE.READ) {
        this.problem(rel(), code, stage === STAGE.READ ? 'read error' : 'cannot open');
        return null;
      }
      this.fatal(rel(), -(-rc & 0xffff), stage === STAGE.META ? 'cannot set metadata in the spool' : 'cannot write to the spool');
    }
  }

  /**
   * The source's XXH64 when it is still the file that was scanned (same size and mtime while it
   * was read), else null. Reads the source only, never the spool.
   */
  private hashSource(f: Frame, e: SourceEntry): string | null {
    return this.hashRead(e, this.io, sys.hashat(f.src, e.name, this.io));
  }

  /** hashSource on the pool */
  private async hashSourceAsync(f: Frame, e: SourceEntry): Promise<string | null> {
    const io = new Float64Array(sys.IO_FIELDS);
    return this.hashRead(e, io, await this.track(sys.hashatAsync(f.src, e.name, io)));
  }

  private hashRead(e: SourceEntry, io: Float64Array, rc: number): string | null {
    if (rc !== 0) return null;
    this.stats.hashedFiles++;
    this.stats.hashedBytes += io[IO.BYTES]!;
    const s = IO.STAT;
    const same = io[IO.CHANGED] === 0 && io[s + ST.SIZE] === e.size && io[s + ST.MTIME] === e.mtimeSec &&
      io[s + ST.MTIME_NS] === e.mtimeNsec;
    return same ? hashHex(io[IO.HASH_HI]!, io[IO.HASH_LO]!) : null;
  }

  /** Files in the content index this new or changed file may be linked to (none in a dry run). */
  private contentCandidates(e: SourceEntry): Candidate[] {
    const ix = this.o.dedup;
    return !ix || this.o.dryRun || e.type !== 'file' ? [] : ix.candidates(e);
  }

  /**
   * Content deduplication: links a new or changed file to an identical one already in the spool
   * instead of writing it. Only files with a candidate (same size, mtime, mode and owner in the
   * index) are hashed first, so nothing is written that would be thrown away. Returns null when
   * no link was made (the caller copies). On this thread; fireContentLink() is the same on the pool.
   */
  private contentLink(f: Frame, e: SourceEntry): ManifestEntry | null {
    const cands = this.contentCandidates(e);
    if (!cands.length) return null;
    const hash = this.knownHash?.e === e ? this.knownHash.hash : this.hashSource(f, e);
    if (!hash) return null;
    let emlink = false;
    for (const c of cands) {
      const ix = this.o.dedup!;
      if (!ix.sameHash(c.hash, hash)) continue;
      const rel = ix.relPath(c);
      const same = this.o.dedupVerify ? sameContent(f.src, e.name, ix.rootFd(c), rel) : undefined;
      const r = this.linkCandidate(f, e, c, rel, hash, same);
      if (r === 'linked') return this.contentLinked(e, hash);
      if (r === 'EMLINK') emlink = true;
    }
    // the copy that follows joins the index and is the link base for the next ones
    if (emlink) this.stats.emlinkCopies++;
    return null;
  }

  /**
   * contentLink() with the hashing and the byte comparison on the pool, then the link, or the
   * copy started. Holds a slot and the frame open throughout: its descriptors stay valid.
   */
  private async fireContentLink(f: Frame, e: SourceEntry, d: Decision, cands: Candidate[], at: number, known: string | null): Promise<void> {
    this.inFlight++;
    f.pending++;
    try {
      const ix = this.o.dedup!;
      const hash = known ?? await this.hashSourceAsync(f, e);
      let m: ManifestEntry | null = null;
      let emlink = false;
      for (const c of hash ? cands : []) {
        if (this.fatalError) return;
        if (!ix.sameHash(c.hash, hash!)) continue;
        const rel = ix.relPath(c);
        const same = this.o.dedupVerify ? sameness(await this.track(sys.sameContentAsync(f.src, e.name, ix.rootFd(c), rel))) : undefined;
        if (this.fatalError) return;
        const r = this.linkCandidate(f, e, c, rel, hash!, same);
        if (r === 'linked') {
          m = this.contentLinked(e, hash!);
          break;
        }
        if (r === 'EMLINK') emlink = true;
      }
      if (this.fatalError) return;
      if (emlink && !m) this.stats.emlinkCopies++;
      this.plan(f, e, d, m ? { via: 'content' } : undefined);
      if (m) f.out[at] = m;
      else this.startCopy(f, e, at);
    } catch (err) {
      this.fatalError ??= err;
    } finally {
      this.inFlight--;
      this.waiters.shift()?.();
      f.pending--;
      this.checkDone(f);
    }
  }

  private contentLinked(e: SourceEntry, hash: string): ManifestEntry {
    this.stats.dedupLinked++;
    this.stats.dedupBytes += e.size;
    return this.manifestEntry(e.name, e, this.st[ST.INO]!, 0, hash);
  }

  /**
   * Links one candidate (at rel below its root) whose hash matched; `same` is the byte
   * comparison's result (undefined: not asked, --no-dedup-verify). this.st holds the new
   * link's stat when it says 'linked'.
   */
  private linkCandidate(f: Frame, e: SourceEntry, c: Candidate, rel: Buffer, hash: string, same: Sameness | undefined): 'linked' | 'EMLINK' | 'no' {
    const ix = this.o.dedup!;
    const rootFd = ix.rootFd(c);
    if (same !== undefined) {
      if (same === false) {
        this.stats.dedupMismatches++;
        this.o.onNote(`${this.o.part}: ${joinRel(f.rel, e.name).toString()} has the size, metadata and XXH64 (${hash}) of ${ix.rootLabel(c)}/${rel.toString()} but different bytes: written, not linked`);
      }
      if (same !== true) return 'no';
    }
    let rc = sys.linkat(rootFd, rel, f.dst, e.name);
    if (rc === -17 /* EEXIST */ && this.o.resume) {
      removeChildAt(f.dst, e.name);
      rc = sys.linkat(rootFd, rel, f.dst, e.name);
    }
    if (rc < 0) {
      const code = errnoName(rc);
      if (code === 'EMLINK' || code === 'ENOENT' || code === 'EXDEV' || code === 'EPERM') ix.forget(c);
      return code === 'EMLINK' ? 'EMLINK' : 'no';
    }
    // the inode linked must show exactly the source's metadata (the manifest's inode number
    // is not required to match: a spool copied to another disk keeps its manifests)
    const st = this.st;
    const ok = sys.fstatat(f.dst, e.name, st, 1) === 0 && (st[ST.MODE]! & 0o170000) === 0o100000 &&
      st[ST.SIZE] === e.size && st[ST.MTIME] === e.mtimeSec && st[ST.MTIME_NS] === e.mtimeNsec &&
      (st[ST.MODE]! & 0o7777) === e.mode && (!this.o.asRoot || (st[ST.UID] === e.uid && st[ST.GID] === e.gid));
    if (!ok) {
      sys.unlinkat(f.dst, e.name, 0);
      ix.forget(c);
      return 'no';
    }
    return 'linked';
  }

  /** Resume: keeps a copy a killed run completed (the copy sets the mtime last). */
  private reuseCopy(f: Frame, e: SourceEntry): ManifestEntry | null {
    const st = this.st;
    if (sys.fstatat(f.dst, e.name, st, 1) !== 0) return null;
    const ok = (st[ST.MODE]! & 0o170000) === 0o100000 && st[ST.NLINK] === 1 && st[ST.SIZE] === e.size &&
      st[ST.MTIME] === e.mtimeSec && st[ST.MTIME_NS] === e.mtimeNsec && (st[ST.MODE]! & 0o7777) === e.mode &&
      (!this.o.asRoot || (st[ST.UID] === e.uid && st[ST.GID] === e.gid));
    if (!ok) return null;
    const io = this.io;
    if (sys.hashat(f.dst, e.name, io) !== 0) return null;
    this.stats.reused++;
    this.stats.copied++;
    return this.manifestEntry(e.name, e, st[ST.INO]!, 0, hashHex(io[IO.HASH_HI]!, io[IO.HASH_LO]!));
  }

  /** Symlinks, FIFOs, sockets and devices: create, then owner, mode and mtime. */
  private special(f: Frame, e: SourceEntry, create: () => number): ManifestEntry | null {
    let rc = create();
    if (rc === -17 && this.o.resume) {
      removeChildAt(f.dst, e.name);
      rc = create();
    }
    if (rc < 0) this.fatal(joinRel(f.rel, e.name), rc, `cannot create ${e.type} in the spool`);
    const what = (this.o.asRoot ? 1 : 0) | (e.type === 'symlink' ? 0 : 2) | 4;
    rc = sys.setmeta(f.dst, e.name, -1, e.uid, e.gid, e.mode, e.mtimeSec, e.mtimeNsec, what);
    if (rc < 0) this.fatal(joinRel(f.rel, e.name), -(-rc & 0xffff), `cannot set the metadata of a ${e.type} in the spool`);
    rc = sys.fstatat(f.dst, e.name, this.st, 1);
    this.stats.copied++;
    return this.manifestEntry(e.name, e, rc === 0 ? this.st[ST.INO]! : 0, 0, null);
  }

  // ---------- records and problems ----------

  private manifestEntry(name: Buffer, m: Meta, ino: number, flags: number, hash: string | null): ManifestEntry {
    return {
      name, type: m.type, mode: m.mode, uid: m.uid, gid: m.gid, size: m.type === 'dir' ? 0 : m.size,
      mtimeSec: m.mtimeSec, mtimeNsec: m.mtimeNsec, rdev: m.rdev, target: m.target,
      flags, linkGroup: 0, ino, hash,
    };
  }

  private vanished(rel: Buffer): void {
    this.stats.vanished++;
    this.o.onProblem({ part: this.o.part, path: rel, code: 'ENOENT', message: 'vanished during the run', severity: 'vanished' });
  }

  /** A per-file problem: recorded and reported, the run goes on (exit 23). */
  private problem(rel: Buffer, code: string, what: string, whole = false): void {
    if (code === 'ENOENT') return this.vanished(rel);
    this.stats.problems++;
    this.o.onProblem({ part: this.o.part, path: rel, code, message: whole ? what : `${what}: ${code}`, severity: 'error' });
  }

  private fatal(rel: Buffer, rc: number, what: string): never {
    const code = errnoName(rc);
    const hint = code === 'ENOSPC' ? 'the spool is full: free space (prune) and run again; the next run resumes'
      : code === 'EDQUOT' ? 'the spool quota is exhausted' : undefined;
    throw new HardsnapError(code, `${what}: ${code} (part '${this.o.part}', ${JSON.stringify(rel.toString('latin1'))})`, {
      exit: 2, path: rel.toString('latin1'), hint,
    });
  }
}
