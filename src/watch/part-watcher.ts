/**
 * Watches one part's source and keeps its change journal (journal-file.ts, dirty-dirs.ts).
 *
 * What sees the changes is a WatchSource: fanotify (fanotify-source.ts) where it can (root,
 * Linux >= 5.9, a file system it can mark), chokidar (chokidar-source.ts) elsewhere, or the one
 * `watcher` forces. Which one runs is logged and written in the journal.
 *
 * An epoch begins when the source is ready (fanotify: the mark is placed; chokidar: its initial
 * scan is done) and ends at the first error or when the watcher stops; after an error the
 * watcher starts a new epoch later (`restartMs`), choosing the watcher again. Events lost but
 * reported (a fanotify queue overflow) end the epoch and begin a new one at once. Nothing here
 * prints: it reports through `log`.
 */
import { fs } from '../fs/disk.js';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { processStart } from '../fs/process.js';
import { ensureSpoolDir } from '../spool/layout.js';
import {
  JOURNAL_FORMAT,
  SYNC_PREFIX,
  currentBoot,
  currentMountNs,
  monoMicros,
  watchDir,
  writeJournalMarks,
  type Epoch,
  type Journal,
  type WatcherKind,
} from './journal-file.js';
import { lastScan, pruneBefore } from './prev-scan.js';
import { holderBuilds, liveLockHolder } from '../spool/lock.js';
import { DirtyDirs } from './dirty-dirs.js';
import { ChokidarSource } from './chokidar-source.js';
import { FanotifySource } from './fanotify-source.js';
import type { SourceSink, WatchSource } from './watch-source.js';
import { removeName } from '../fs/remove-tree.js';

export type LogLevel = 'info' | 'warn' | 'error';

export interface PartWatchOptions {
  part: string;
  source: string;
  /** the part's directory in the spool (holds .hardsnap/watch/) */
  partDir: string;
  /** absolute paths never watched (the spool, when it lies inside the source) */
  ignore: string[];
  /** longest a change waits before the journal is written (ms) */
  flushMs: number;
  /** pause before a new epoch after an error (ms) */
  restartMs: number;
  log(level: LogLevel, message: string): void;
  /** a change was journaled (for --backup-every) */
  onChange?(): void;
  /** 'auto' (default): fanotify where it can, chokidar elsewhere */
  watcher?: WatcherChoice;
}

export type WatcherChoice = 'auto' | WatcherKind;

const KEEP_SYNCED = 16;

export class PartWatcher {
  private source: WatchSource | null = null;
  private markers: fs.FSWatcher | null = null;
  private epoch: Epoch | null = null;
  private failed: string | null = null;
  private prunedBefore = 0;
  /** dev:ino of the source root when the epoch's watch began (replacing it silences every watch) */
  private rootId: string | null = null;
  private readonly mountNs = currentMountNs();
  private readonly dirty = new DirtyDirs();
  private readonly synced: string[] = [];
  private watchedDirs = 0;
  private kind: WatcherKind | null = null;
  /** counts the sources started: a closed one's late events are ignored */
  private generation = 0;
  private flushTimer: NodeJS.Timeout | null = null;
  private restartTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** the journal directory exists and is watched */
  private journalReady = false;
  private waiting: NodeJS.Timeout | null = null;
  private readonly root: string;
  private readonly rootBytes: Buffer;
  private readonly ignore: string[];
  private readonly ignoreBytes: Buffer[];
  private readonly pidStart = processStart(process.pid);
  private readonly boot = currentBoot();

  constructor(private readonly o: PartWatchOptions) {
    // the watchers do not follow symlinks, and fanotify names directories by their real path:
    // watch the real directory; the journal names the source as the backup does
    this.root = fs.realpathSync(path.resolve(o.source));
    this.rootBytes = Buffer.from(this.root);
    this.ignore = o.ignore.map((p) => path.resolve(p));
    this.ignoreBytes = this.ignore.map((p) => Buffer.from(p));
  }

  /** Starts watching (the epoch begins when the watcher is ready). */
  start(): void {
    this.begin();
    this.openJournalDir();
  }

  /**
   * Sets up `.hardsnap/watch/` and its watch, once the part's directory exists: the watcher never
   * makes a spool (`hardsnap init --spool` does) nor a part directory (the first backup does), so
   * before the first backup it watches the source and waits.
   */
  private openJournalDir(): void {
    if (this.stopped) return;
    const dir = watchDir(this.o.partDir);
    if (!fs.existsSync(this.o.partDir)) {
      if (!this.waiting) this.o.log('info', `${this.o.part}: not backed up yet: the journal begins in ${dir} after the first backup`);
      this.waiting = setTimeout(() => this.openJournalDir(), 2_000);
      return;
    }
    this.waiting = null;
    ensureSpoolDir(dir);
    for (const n of fs.readdirSync(dir)) {
      if (n.startsWith(SYNC_PREFIX)) removeName(path.join(dir, n));
    }
    // chokidar: the same inotify instance as its watches (libuv has one per loop), so a marker is
    // seen after every change queued before it was created; fanotify: a barrier after it
    this.markers = fs.watch(dir, { persistent: true }, (_ev, name) => {
      if (typeof name === 'string' && name.startsWith(SYNC_PREFIX)) this.answerSync(name);
    });
    this.markers.on('error', (err) => this.fail(`the journal directory's watch failed: ${(err as Error).message}`));
    this.journalReady = true;
    this.flush();
  }

  /** A backup just ran: the part's directory may exist now (no need to wait for the next look). */
  backupDone(): void {
    if (!this.waiting) return;
    clearTimeout(this.waiting);
    this.openJournalDir();
  }

  /** Ends the epoch, writes the journal and closes every watch. */
  async stop(reason = 'the watcher stopped'): Promise<void> {
    this.stopped = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    if (this.waiting) clearTimeout(this.waiting);
    this.endEpoch(reason);
    this.markers?.close();
    this.markers = null;
    await this.closeSource();
  }

  get status(): { epoch: Epoch | null; dirty: number; watchedDirs: number; watcher: WatcherKind | null } {
    return { epoch: this.epoch, dirty: this.dirty.size, watchedDirs: this.watchedDirs, watcher: this.kind };
  }

  /** Chooses the watcher and starts it; the epoch begins at its ready. */
  private begin(): void {
    this.watchedDirs = 0;
    this.rootId = this.identity();
    const choice = this.o.watcher ?? 'auto';
    let source: WatchSource | null = null;
    const sink = this.sink();
    if (choice !== 'chokidar') {
      const f = FanotifySource.create(this.root, this.ignore, sink);
      if (typeof f !== 'string') source = f;
      else if (choice === 'fanotify') {
        this.failed = `fanotify cannot watch ${this.root}: ${f}`;
        this.o.log(
          'error',
          `${this.o.part}: ${this.failed} (--watcher fanotify): backups scan everything; trying again in ${Math.round(this.o.restartMs / 1000)} s`,
        );
        this.flush();
        this.restartTimer = setTimeout(() => {
          this.restartTimer = null;
          if (!this.stopped) this.begin();
        }, this.o.restartMs);
        return;
      } else {
        this.o.log('info', `${this.o.part}: fanotify cannot watch ${this.root}: ${f}; using chokidar`);
      }
    }
    source ??= new ChokidarSource(this.o.part, this.root, this.ignore, sink, this.o.log);
    this.source = source;
    this.kind = source.kind;
    this.o.log('info', `${this.o.part}: watching ${this.root} with ${source.describe()}`);
    source.start();
  }

  /** What the watcher hears from its source (a source closed since is not heard). */
  private sink(): SourceSink {
    const gen = ++this.generation;
    const live = () => !this.stopped && this.source !== null && gen === this.generation;
    const sink: SourceSink = {
      markWhole: (abs) => {
        if (!live()) return;
        const rel = this.rel(abs);
        if (rel !== null) this.changed(() => this.dirty.markWhole(rel, monoMicros()));
      },
      markName: (abs, name) => {
        if (!live()) return;
        const rel = this.rel(abs);
        if (rel !== null) this.changed(() => this.dirty.markName(rel, name, monoMicros()));
      },
      created: (abs, name, born) => {
        if (!live()) return;
        // a file born after the newest generation's scan began is new: its own creation is
        // journaled (the kernel's coarse clock lags, never leads: no file born before looks
        // after). While a backup of the part runs, its scan began later, and its generation may
        // be the next one's previous: every link is kept then.
        const scan = lastScan(this.o.partDir);
        if (scan && born > 1 && born >= Date.parse(scan.startWall) / 1000 && !holderBuilds(liveLockHolder(path.dirname(this.o.partDir)), this.o.part)) return;
        const rel = this.rel(abs);
        if (rel !== null) this.changed(() => this.dirty.markLink(rel, name, born, monoMicros()));
      },
      ready: (watchedDirs) => {
        if (!live()) return;
        this.watchedDirs = watchedDirs ?? 0;
        const startMono = monoMicros();
        this.epoch = { id: randomBytes(8).toString('hex'), startMono, startWall: new Date().toISOString(), ended: null };
        this.failed = null;
        this.flush();
        this.o.log('info', `${this.o.part}: epoch ${this.epoch.id} began (${this.kind}${watchedDirs === null ? '' : `: ${watchedDirs} directories watched`})`);
      },
      fail: (reason) => {
        if (live()) this.fail(reason);
      },
      mountsChanged: () => {
        if (!live() || !this.epoch || this.epoch.ended) return;
        // a mount of the source's own file system inside it, now; or any mount or unmount while a
        // backup of the part runs: its walk may have read what a mount showed for a moment,
        // recorded as the source's own entries, and the unmount makes no event
        const why =
          this.source?.check() ??
          (holderBuilds(liveLockHolder(path.dirname(this.o.partDir)), this.o.part) ? 'the mount table changed while a backup of the part ran' : null);
        if (why) sink.lost(why);
      },
      lost: (reason) => {
        if (!live()) return;
        this.o.log('error', `${this.o.part}: ${reason}: the journal's epoch ended, the next backup scans everything; a new epoch begins now`);
        this.endEpoch(reason);
        const startMono = monoMicros();
        this.epoch = { id: randomBytes(8).toString('hex'), startMono, startWall: new Date().toISOString(), ended: null };
        this.flush();
      },
    };
    return sink;
  }

  /** The path of directory `abs` relative to the part root, or null when it is not journaled. */
  private rel(abs: string | Buffer): string | null {
    // fanotify hands the same Buffer for a run of records of one directory
    if (abs === this.lastAbs) return this.lastRel;
    const rel = this.relOf(abs);
    this.lastAbs = abs;
    this.lastRel = rel;
    return rel;
  }

  private lastAbs: string | Buffer | null = null;
  private lastRel: string | null = null;

  private relOf(abs: string | Buffer): string | null {
    if (typeof abs === 'string') {
      const rel = path.relative(this.root, abs);
      if (rel.startsWith('..') || path.isAbsolute(rel)) return null;
      if (this.ignore.some((i) => abs === i || abs.startsWith(i + path.sep))) return null;
      return rel;
    }
    const root = this.rootBytes;
    if (abs.length < root.length || abs.compare(root, 0, root.length, 0, root.length) !== 0) return null;
    if (abs.length > root.length && abs[root.length] !== 0x2f && root.length > 1) return null;
    for (const i of this.ignoreBytes) {
      if (abs.length >= i.length && abs.compare(i, 0, i.length, 0, i.length) === 0 && (abs.length === i.length || abs[i.length] === 0x2f)) return null;
    }
    const rel = abs.subarray(root.length === 1 ? 1 : Math.min(abs.length, root.length + 1));
    // a path that is not UTF-8 cannot be a journal key: backups always read such directories
    return isUtf8(rel) ? rel.toString('utf8') : null;
  }

  private changed(mark: () => void): void {
    mark();
    this.o.onChange?.();
    this.scheduleFlush();
  }

  /**
   * The journal is written at most flushMs after a change; a large one less often (a second per
   * 256 KiB written last time, at most 30 s): rewriting a day of changes on a million files
   * every second is most of the watcher's allocation in a burst. A backup's sync request
   * always gets a fresh journal at once, so this only delays what `status` and a reader see.
   */
  private scheduleFlush(): void {
    if (this.flushTimer) return;
    const ms = Math.max(this.o.flushMs, Math.min(30_000, Math.floor(this.journalBytes / 262_144) * 1000));
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      this.flush();
    }, ms);
  }

  /** the size of the journal last written */
  private journalBytes = 0;

  private answerSync(name: string): void {
    const nonce = name.slice(SYNC_PREFIX.length);
    if (this.synced.includes(nonce)) return;
    // a source root removed and made again (or mounted over) has no watch of ours any more
    if (this.epoch && !this.epoch.ended && this.identity() !== this.rootId) {
      this.remember(nonce);
      return this.fail(`the source root ${this.root} was replaced or mounted over`);
    }
    const broken = this.epoch && !this.epoch.ended ? (this.source?.check() ?? null) : null;
    if (broken) {
      this.remember(nonce);
      return this.fail(broken);
    }
    const source = this.source;
    if (!source) {
      this.remember(nonce);
      return this.flush();
    }
    // every change made before the marker was handed over: then the answer
    source.barrier(() => {
      this.remember(nonce);
      this.flush();
    });
  }

  private remember(nonce: string): void {
    if (this.synced.includes(nonce)) return;
    this.synced.push(nonce);
    while (this.synced.length > KEEP_SYNCED) this.synced.shift();
  }

  private identity(): string | null {
    try {
      const st = fs.statSync(this.root);
      return `${st.dev}:${st.ino}`;
    } catch {
      return null;
    }
  }

  /** An error or limit: the epoch ends; a new one begins after restartMs. */
  private fail(reason: string): void {
    if (this.stopped || !this.source) return;
    this.o.log('error', `${this.o.part}: ${reason}: the journal's epoch ended, backups scan everything until a new epoch began before them`);
    if (!this.epoch || this.epoch.ended) this.failed = reason;
    this.endEpoch(reason);
    void this.closeSource().then(() => {
      if (this.stopped) return;
      this.o.log('info', `${this.o.part}: starting a new epoch in ${Math.round(this.o.restartMs / 1000)} s`);
      this.restartTimer = setTimeout(() => {
        this.restartTimer = null;
        if (!this.stopped) this.begin();
      }, this.o.restartMs);
    });
  }

  private endEpoch(reason: string): void {
    if (this.epoch && !this.epoch.ended) this.epoch.ended = { mono: monoMicros(), wall: new Date().toISOString(), reason };
    this.flush();
  }

  private async closeSource(): Promise<void> {
    const s = this.source;
    this.source = null;
    this.generation++;
    if (s) await s.close();
  }

  private flush(): void {
    if (this.flushTimer) {
      clearTimeout(this.flushTimer);
      this.flushTimer = null;
    }
    if (!this.journalReady) return;
    // what the newest generation's scan saw needs no journal any more
    const before = pruneBefore(this.o.partDir, this.boot);
    if (before !== null && before > this.prunedBefore) {
      this.dirty.prune(before);
      this.prunedBefore = before;
    }
    const head: Omit<Journal, 'dirty' | 'whole' | 'names'> = {
      format: JOURNAL_FORMAT,
      part: this.o.part,
      source: path.resolve(this.o.source),
      rootId: this.rootId,
      mountNs: this.mountNs,
      pid: process.pid,
      pidStart: this.pidStart,
      boot: this.boot,
      epoch: this.epoch,
      failed: this.failed,
      flushMono: monoMicros(),
      flushWall: new Date().toISOString(),
      synced: [...this.synced],
      prunedBefore: this.prunedBefore,
      watchedDirs: this.watchedDirs,
      watcher: this.kind ?? undefined,
    };
    try {
      this.journalBytes = writeJournalMarks(this.o.partDir, head, (write) => this.dirty.writeJson(write));
    } catch (err) {
      this.o.log('error', `${this.o.part}: cannot write the journal: ${(err as Error).message}`);
    }
  }
}
