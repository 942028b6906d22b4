/**
 * Watches one part's source with chokidar and keeps its change journal (journal-file.ts).
 *
 * Only directories are watched (files are `ignored`, so the inotify watches number the
 * directories, not the files): an inotify watch on a directory reports every change of its
 * entries (create, delete, rename, write, chmod/chown), and chokidar passes each one on as a
 * `raw` event naming the watched directory, which is all the journal needs: "something in this
 * directory changed". New and removed directories (`addDir`, `unlinkDir`) also mark the
 * directory itself, since its watch begins only when chokidar has seen it.
 *
 * An epoch begins at chokidar's `ready` and ends at the first error (an inotify limit, EMFILE,
 * a directory that cannot be read) or when the watcher stops; after an error the watcher starts
 * a new epoch later (`restartMs`). Nothing here prints: it reports through `log`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { watch, type FSWatcher } from 'chokidar';
import { processStart } from '../spool/lock.js';
import { ensureSpoolDir } from '../spool/layout.js';
import {
  JOURNAL_FORMAT, SYNC_PREFIX, currentBoot, monoMicros, watchDir, writeJournal, type Epoch, type Journal,
} from './journal-file.js';
import { inotifyLimits, limitReason } from './inotify-limits.js';
import { pruneBefore } from './prev-scan.js';

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
}

const KEEP_SYNCED = 16;

export class PartWatcher {
  private chokidar: FSWatcher | null = null;
  private markers: fs.FSWatcher | null = null;
  private epoch: Epoch | null = null;
  private failed: string | null = null;
  private prunedBefore = 0;
  /** dev:ino of the source root when the epoch's watch began (replacing it silences every watch) */
  private rootId: string | null = null;
  private readonly dirty = new Map<string, number>();
  private readonly synced: string[] = [];
  private watchedDirs = 0;
  private flushTimer: NodeJS.Timeout | null = null;
  private restartTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** the journal directory exists and is watched */
  private journalReady = false;
  private waiting: NodeJS.Timeout | null = null;
  private readonly root: string;
  private readonly pidStart = processStart(process.pid);
  private readonly boot = currentBoot();

  constructor(private readonly o: PartWatchOptions) {
    // chokidar does not follow symlinks here, so it watches the real directory; the journal names
    // the source as the backup does
    this.root = fs.realpathSync(path.resolve(o.source));
  }

  /** Starts watching (the epoch begins later, at chokidar's ready). */
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
      if (n.startsWith(SYNC_PREFIX)) fs.rmSync(path.join(dir, n), { force: true });
    }
    // the same inotify instance as chokidar's watches (libuv has one per loop), so a marker is
    // seen after every change queued before it was created
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
    await this.closeChokidar();
  }

  get status(): { epoch: Epoch | null; dirty: number; watchedDirs: number } {
    return { epoch: this.epoch, dirty: this.dirty.size, watchedDirs: this.watchedDirs };
  }

  private begin(): void {
    const limits = inotifyLimits();
    this.o.log('info', `${this.o.part}: watching ${this.root} (inotify max_user_watches = ${limits.maxUserWatches ?? 'unknown'})`);
    this.watchedDirs = 0;
    this.rootId = this.identity();
    const ignore = this.o.ignore.map((p) => path.resolve(p));
    const w = watch(this.root, {
      persistent: true,
      ignoreInitial: true,
      followSymlinks: false,
      ignorePermissionErrors: false,
      // directories only: their watches report every change of their entries
      ignored: (p: string, stats?: fs.Stats) =>
        ignore.some((i) => p === i || p.startsWith(i + path.sep)) || (stats !== undefined && !stats.isDirectory()),
    });
    this.chokidar = w;
    let ready = false;
    // A new directory's watch begins only after chokidar has read it, so a change made in it
    // meanwhile has no event: mark it again once its watch exists. chokidar has no event for
    // that; it registers the watch's closer then (internal API, checked below).
    const internal = w as unknown as { _addPathCloser?: (p: string, closer: unknown) => void };
    const addCloser = internal._addPathCloser;
    if (typeof addCloser === 'function') {
      internal._addPathCloser = (p: string, closer: unknown) => {
        addCloser.call(w, p, closer);
        if (ready) this.mark(p);
      };
    } else {
      this.o.log('warn', `${this.o.part}: this chokidar has no _addPathCloser: a change made in a new directory before chokidar watches it is left to the audit`);
    }
    w.on('raw', (_ev, _name, details) => {
      const watched = (details as { watchedPath?: string } | undefined)?.watchedPath;
      if (watched) this.mark(watched);
    });
    w.on('addDir', (p: string) => {
      this.watchedDirs++;
      if (ready) {
        this.mark(p);
        this.mark(path.dirname(p));
      }
    });
    w.on('unlinkDir', (p: string) => {
      this.watchedDirs--;
      this.mark(p);
      this.mark(path.dirname(p));
    });
    w.on('error', (err: unknown) => this.fail(limitReason(err as NodeJS.ErrnoException, limits)));
    w.on('ready', () => {
      ready = true;
      if (this.chokidar !== w || this.stopped) return;
      this.watchedDirs = Object.keys(w.getWatched()).filter((d) => d === this.root || d.startsWith(this.root + path.sep)).length;
      const startMono = monoMicros();
      this.epoch = { id: randomBytes(8).toString('hex'), startMono, startWall: new Date().toISOString(), ended: null };
      this.failed = null;
      this.flush();
      this.o.log('info', `${this.o.part}: epoch ${this.epoch.id} began: ${this.watchedDirs} directories watched`);
      if (limits.maxUserWatches && this.watchedDirs > limits.maxUserWatches * 0.9) {
        this.o.log('warn', `${this.o.part}: ${this.watchedDirs} directories watched, close to the inotify limit max_user_watches = ${limits.maxUserWatches}: raise it (sysctl fs.inotify.max_user_watches=...)`);
      }
    });
  }

  /** Something changed in the directory `abs` (or `abs` itself). */
  private mark(abs: string): void {
    const rel = path.relative(this.root, abs);
    if (rel.startsWith('..') || path.isAbsolute(rel)) return;
    this.dirty.set(rel, monoMicros());
    this.o.onChange?.();
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      this.flush();
    }, this.o.flushMs);
  }

  private answerSync(name: string): void {
    const nonce = name.slice(SYNC_PREFIX.length);
    if (this.synced.includes(nonce)) return;
    this.synced.push(nonce);
    while (this.synced.length > KEEP_SYNCED) this.synced.shift();
    // a source root removed and made again (or mounted over) has no watch of ours any more
    if (this.epoch && !this.epoch.ended && this.identity() !== this.rootId) this.fail(`the source root ${this.root} was replaced or mounted over`);
    else this.flush();
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
    if (this.stopped || !this.chokidar) return;
    this.o.log('error', `${this.o.part}: ${reason}: the journal's epoch ended, backups scan everything until a new epoch began before them`);
    if (!this.epoch || this.epoch.ended) this.failed = reason;
    this.endEpoch(reason);
    void this.closeChokidar().then(() => {
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

  private async closeChokidar(): Promise<void> {
    const w = this.chokidar;
    this.chokidar = null;
    if (w) await w.close();
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
      for (const [k, t] of this.dirty) if (t < before) this.dirty.delete(k);
      this.prunedBefore = before;
    }
    const j: Journal = {
      format: JOURNAL_FORMAT, part: this.o.part, source: path.resolve(this.o.source), rootId: this.rootId, pid: process.pid, pidStart: this.pidStart,
      boot: this.boot, epoch: this.epoch, failed: this.failed, flushMono: monoMicros(), flushWall: new Date().toISOString(),
      synced: [...this.synced], prunedBefore: this.prunedBefore, dirty: Object.fromEntries(this.dirty), watchedDirs: this.watchedDirs,
    };
    try {
      writeJournal(this.o.partDir, j);
    } catch (err) {
      this.o.log('error', `${this.o.part}: cannot write the journal: ${(err as Error).message}`);
    }
  }
}
