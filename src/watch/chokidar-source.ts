/**
 * The chokidar watcher (inotify), for where fanotify cannot be used: not root, an older kernel,
 * a file system fanotify cannot mark (FUSE, NFS). Only directories are watched (files are
 * `ignored`, so the inotify watches number the directories, not the files): an inotify watch on
 * a directory reports every change of its entries (create, delete, rename, write, chmod/chown),
 * and chokidar passes each one on as a `raw` event naming the watched directory and the entry,
 * which is what the journal records. New and removed directories (`addDir`, `unlinkDir`) also
 * mark the directory itself whole, since its watch begins only when chokidar has seen it.
 *
 * chokidar still lstat-s every entry of a directory when it reads one (at start, and after each
 * change in it): its cost grows with the files, where fanotify's does not (docs/WATCH.md).
 */
import { fs } from '../fs/disk.js';
import path from 'node:path';
import type { FSWatcher } from 'chokidar';
import { inotifyLimits, limitReason } from './inotify-limits.js';
import { markTree, type SourceSink, type WatchSource } from './watch-source.js';
import { mountPointsBelow } from '../fs/mountinfo.js';
import type { LogLevel } from './part-watcher.js';

export class ChokidarSource implements WatchSource {
  readonly kind = 'chokidar' as const;
  private w: FSWatcher | null = null;
  private closed = false;
  /** the mount points below the root when the watch began (relative) */
  private mountsAtStart: string[] = [];

  constructor(
    private readonly part: string,
    private readonly root: string,
    private readonly ignore: string[],
    private readonly sink: SourceSink,
    private readonly log: (level: LogLevel, message: string) => void,
  ) {}

  /** chokidar is loaded when used: a fanotify watcher does without its memory (~3 MB) */
  start(): void {
    this.mountsAtStart = mountsBelow(this.root);
    import('chokidar').then(
      ({ watch }) => {
        if (!this.closed) this.watch(watch);
      },
      (err: unknown) => this.sink.fail(`chokidar cannot be loaded: ${(err as Error).message}`),
    );
  }

  private watch(watch: typeof import('chokidar').watch): void {
    const limits = inotifyLimits();
    this.log('info', `${this.part}: inotify max_user_watches = ${limits.maxUserWatches ?? 'unknown'}`);
    const ignore = this.ignore.map((p) => path.resolve(p));
    const w = watch(this.root, {
      persistent: true,
      ignoreInitial: true,
      followSymlinks: false,
      ignorePermissionErrors: false,
      // directories only: their watches report every change of their entries
      ignored: (p: string, stats?: fs.Stats) => ignore.some((i) => p === i || p.startsWith(i + path.sep)) || (stats !== undefined && !stats.isDirectory()),
    });
    this.w = w;
    let ready = false;
    // A new directory's watch begins only after chokidar has read it, so a change made in it
    // meanwhile has no event: mark it again once its watch exists. chokidar has no event for
    // that; it registers the watch's closer then (internal API, checked below).
    const internal = w as unknown as { _addPathCloser?: (p: string, closer: unknown) => void };
    const addCloser = internal._addPathCloser;
    if (typeof addCloser === 'function') {
      internal._addPathCloser = (p: string, closer: unknown) => {
        addCloser.call(w, p, closer);
        if (ready) this.sink.markWhole(p);
      };
    } else {
      this.log('warn', `${this.part}: this chokidar has no _addPathCloser: a change made in a new directory before chokidar watches it is left to the audit`);
    }
    const ignored = (p: Buffer) =>
      ignore.some((i) => {
        const s = p.toString();
        return s === i || s.startsWith(i + path.sep);
      });
    w.on('raw', (ev, name, details) => {
      const watched = (details as { watchedPath?: string } | undefined)?.watchedPath;
      if (!watched) return;
      // fs.watch gives names as UTF-8 text: one that was not UTF-8 cannot be named again
      if (typeof name !== 'string' || !name || name.includes('\ufffd') || name.includes('/')) return this.sink.markWhole(watched);
      this.sink.markName(watched, Buffer.from(name));
      if (ev !== 'rename') return;
      // an entry made, removed or renamed: a directory renamed here, perhaps over a path the
      // previous generation knew, is new with all below it (chokidar compares names only, and
      // sees no new directory where the name was there before)
      const child = Buffer.from(path.join(watched, name));
      let st: fs.Stats;
      try {
        st = fs.lstatSync(child);
      } catch {
        return;
      }
      // a second name of a file (inotify cannot tell a link from a rename: only while it is one)
      if (!st.isDirectory() && st.nlink > 1) this.sink.created(watched, Buffer.from(name), st.birthtimeMs / 1000 || 1);
      if (!st.isDirectory() || ignored(child)) return;
      this.sink.markWhole(child);
      markTree(child, ignored, (p) => this.sink.markWhole(p));
    });
    const both = (p: string) => {
      this.sink.markWhole(p);
      this.sink.markName(path.dirname(p), Buffer.from(path.basename(p)));
    };
    let watched = 0;
    w.on('addDir', (p: string) => {
      watched++;
      if (ready) both(p);
    });
    w.on('unlinkDir', (p: string) => {
      watched--;
      both(p);
    });
    w.on('error', (err: unknown) => this.sink.fail(limitReason(err as NodeJS.ErrnoException, limits)));
    w.on('ready', () => {
      ready = true;
      if (this.w !== w) return;
      watched = Object.keys(w.getWatched()).filter((d) => d === this.root || d.startsWith(this.root + path.sep)).length;
      if (limits.maxUserWatches && watched > limits.maxUserWatches * 0.9) {
        this.log(
          'warn',
          `${this.part}: ${watched} directories watched, close to the inotify limit max_user_watches = ${limits.maxUserWatches}: raise it (sysctl fs.inotify.max_user_watches=...)`,
        );
      }
      this.sink.ready(watched);
    });
  }

  /**
   * The journal directory's marker is seen through the same inotify instance as the source's
   * watches (libuv has one per loop), after every event queued before it: nothing to wait for.
   */
  barrier(cb: () => void): void {
    cb();
  }

  /**
   * Checked when a backup asks: every mount below the source that chokidar began with is still
   * there. Its watches are on the directories it walked, what a mount showed then: once that
   * mount is gone, changes in the directory underneath make no event it hears. (A mount made
   * later leaves the watches on the directory underneath, and a backup reads what it shows.)
   */
  check(): string | null {
    const now = new Set(mountsBelow(this.root));
    const gone = this.mountsAtStart.filter((m) => !now.has(m));
    return gone.length
      ? `a mount below the source that chokidar began watching through is gone (${gone.join(', ')}): its watches were on what it showed`
      : null;
  }

  async close(): Promise<void> {
    this.closed = true;
    const w = this.w;
    this.w = null;
    if (w) await w.close();
  }

  describe(): string {
    return 'chokidar (one inotify watch per directory)';
  }
}

/** The mount points below `root`, relative. */
function mountsBelow(root: string): string[] {
  return mountPointsBelow(Buffer.from(root)).map((b) => b.toString());
}
