/**
 * The fanotify watcher (Linux >= 5.9, root): one fanotify group per process, one file-system
 * mark per source file system (FAN_MARK_FILESYSTEM, FAN_REPORT_DFID_NAME), read by a native
 * thread that names each event's directory (native/watch.c) and hands over only those under a
 * watched root. Nothing is walked at start and nothing is kept per file or per directory
 * watched: the epoch begins as soon as the mark is placed.
 *
 * What an event means for the journal (dirty-dirs.ts):
 * - an entry created, deleted, renamed, written, closed after writing, chmod-ed: that entry of
 *   its directory changed;
 * - a directory created or moved in: also that directory whole, and for a move every directory
 *   below it (its path may be one the previous generation knew with other contents);
 * - an event on a directory itself (name "."): that directory whole, and its entry in its parent.
 * - FAN_Q_OVERFLOW (the kernel dropped events): the epoch ends and a new one begins at once;
 *   the next backup scans everything (docs/WATCH.md).
 * - a root no longer at its path (renamed with a directory above it, its mount moved or
 *   detached: native/watch.c check_root): the epoch ends and the path is watched again.
 * - a file written through a name it no longer has while it has another (native/watch.c
 *   dead_name): the epoch ends and a new one begins at once.
 *
 * A sync request is answered after a barrier (fanBarrier): an event of our own that the reader
 * sees after every event queued before it.
 */
import { fs } from '../fs/disk.js';
import path from 'node:path';
import { errnoName } from '../fs/native.js';
import { createdBorn, FAN_REC, forEachFanRecord, wsys, type FanHandle } from '../fs/watch-native.js';
import { readProc } from '../fs/process.js';
import { mountPointsBelow } from '../fs/mountinfo.js';
import { markTree, type SourceSink, type WatchSource } from './watch-source.js';
import { collectAfterBurst } from './heap.js';

const SLASH = 0x2f;

interface Listener {
  root: Buffer;
  ignore: Buffer[];
  sink: SourceSink;
  id: number;
}

/** The process's fanotify group, shared by every part watched with fanotify. */
class FanotifyGroup {
  private static current: FanotifyGroup | null = null;
  private readonly listeners = new Set<Listener>();
  private readonly excluded = new Set<string>();
  /** callbacks of the barrier in flight, and of those asked for since */
  private inFlight: (() => void)[] | null = null;
  private waiting: (() => void)[] = [];
  private closed = false;
  /** the queue's size, as the kernel gave it to this group when it was made (the sysctl may change since) */
  private readonly queueMax = readProc('/proc/sys/fs/fanotify/max_queued_events') ?? 'unknown';

  private constructor(private readonly h: FanHandle) {}

  get handle(): FanHandle {
    return this.h;
  }

  /** The group, opened on first use; a reason when fanotify cannot be used here. */
  static get(): FanotifyGroup | string {
    if (FanotifyGroup.current) return FanotifyGroup.current;
    let g: FanotifyGroup | null = null;
    const h = wsys.fanOpen((buf) => g?.deliver(buf));
    if (typeof h === 'number') {
      const code = errnoName(h);
      if (code === 'EPERM') return 'fanotify needs root (CAP_SYS_ADMIN)';
      if (code === 'EINVAL') return 'this kernel has no fanotify with directory file handles (FAN_REPORT_DFID_NAME: Linux >= 5.9)';
      if (code === 'ENOSYS') return 'this kernel has no fanotify';
      return `fanotify_init: ${code}`;
    }
    g = new FanotifyGroup(h);
    FanotifyGroup.current = g;
    return g;
  }

  add(root: Buffer, ignore: Buffer[], sink: SourceSink): Listener | string {
    const id = wsys.fanAddRoot(this.h, root);
    if (id < 0) {
      const code = errnoName(id);
      const why =
        code === 'ENODEV' || code === 'EOPNOTSUPP' || code === 'EXDEV'
          ? 'its file system cannot be marked by fanotify (no file handles, or no unique fsid: FUSE, NFS, a btrfs subvolume)'
          : code === 'EPERM'
            ? 'fanotify needs root (CAP_SYS_ADMIN)'
            : `fanotify_mark: ${code}`;
      if (!this.listeners.size) this.close();
      return why;
    }
    for (const i of ignore) {
      const key = i.toString('latin1');
      if (this.excluded.has(key)) continue;
      this.excluded.add(key);
      wsys.fanExclude(this.h, i);
    }
    const l: Listener = { root, ignore, sink, id };
    this.listeners.add(l);
    return l;
  }

  remove(l: Listener): void {
    if (!this.listeners.delete(l)) return;
    wsys.fanRemoveRoot(this.h, l.id);
    if (!this.listeners.size) this.close();
  }

  /** cb runs once every event queued before this call was delivered. */
  barrier(cb: () => void): void {
    this.waiting.push(cb);
    if (!this.inFlight) this.nextBarrier();
  }

  private nextBarrier(): void {
    if (!this.waiting.length || this.closed) return;
    this.inFlight = this.waiting;
    this.waiting = [];
    const rc = wsys.fanBarrier(this.h);
    if (rc < 0) {
      const cbs = this.inFlight;
      this.inFlight = null;
      this.fail(`fanotify: the barrier failed: ${errnoName(rc)}`);
      for (const cb of cbs) cb();
    }
  }

  /**
   * The records of one hand-over, in order, in place: a burst is tens of thousands of records,
   * and objects for all of them at once would be the watcher's memory peak. One Buffer per
   * distinct directory in a row, one per name (short-lived).
   */
  private deliver(buf: Buffer): void {
    if (this.closed) return;
    // a write is often several events (MODIFY, CLOSE_WRITE) of one entry in a row: once is enough
    const kindBits = wsys.FAN_ONDIR | wsys.FAN_CREATE | wsys.FAN_MOVED_TO;
    let dir: Buffer | null = null;
    let lastName = -1,
      lastNameEnd = -1,
      lastBits = -1;
    forEachFanRecord(buf, (kind, mask, errno, dirStart, dirEnd, nameEnd) => {
      if (this.closed) return;
      if (kind === FAN_REC.CREATED) {
        const cdir = buf.subarray(dirStart, dirEnd);
        const cname = buf.subarray(dirEnd, nameEnd);
        for (const l of this.listeners) {
          if (under(cdir, l.root) && !l.ignore.some((i) => under(cdir, i))) l.sink.created(cdir, cname, createdBorn(errno, mask));
        }
        return;
      }
      if (kind === FAN_REC.DEAD) {
        // the file's other name may be in any source on that file system: every epoch ends
        const what = `${buf.subarray(dirStart, dirEnd).toString()}/${buf.subarray(dirEnd, nameEnd).toString()}`;
        for (const l of [...this.listeners]) {
          l.sink.lost(
            `${what} was written through after that name was removed or given to another file, and the file has another name (linked or renamed elsewhere while open, or an O_TMPFILE linked in): which one is unknown`,
          );
        }
        return;
      }
      if (kind === FAN_REC.ROOT) {
        // a root no longer at its path: its descriptor names everything below it elsewhere
        const root = buf.subarray(dirStart, dirEnd);
        const now = buf.subarray(dirEnd, nameEnd).toString();
        for (const l of [...this.listeners]) {
          if (l.root.equals(root))
            l.sink.fail(`the source root ${root.toString()} was moved or its mount moved or detached (it is now at ${now}): its changes are named outside it`);
        }
        return;
      }
      if (kind !== FAN_REC.CHANGE) {
        dir = null;
        lastName = -1;
        return this.special(kind, errno);
      }
      const sameDir = dir !== null && dir.length === dirEnd - dirStart && buf.compare(dir, 0, dir.length, dirStart, dirEnd) === 0;
      if (
        sameDir &&
        lastName >= 0 &&
        (mask & kindBits) === lastBits &&
        nameEnd - dirEnd === lastNameEnd - lastName &&
        buf.compare(buf, lastName, lastNameEnd, dirEnd, nameEnd) === 0
      )
        return;
      if (!sameDir) dir = buf.subarray(dirStart, dirEnd);
      lastName = dirEnd;
      lastNameEnd = nameEnd;
      lastBits = mask & kindBits;
      const name = buf.subarray(dirEnd, nameEnd);
      for (const l of this.listeners) {
        if (under(dir!, l.root) && !l.ignore.some((i) => under(dir!, i))) change(l, dir!, name, mask);
      }
    });
    collectAfterBurst();
  }

  private special(kind: number, errno: number): void {
    if (kind === FAN_REC.MOUNTS) {
      for (const l of this.listeners) l.sink.mountsChanged?.();
    } else if (kind === FAN_REC.BARRIER) {
      const cbs = this.inFlight ?? [];
      this.inFlight = null;
      for (const cb of cbs) cb();
      this.nextBarrier();
    } else if (kind === FAN_REC.OVERFLOW) {
      for (const l of this.listeners) {
        l.sink.lost(
          `the fanotify queue overflowed: events were lost (its size: ${this.queueMax} events, fs.fanotify.max_queued_events when the watcher started)`,
        );
      }
      // our barrier may have been among the lost events: answer now (the epoch has ended)
      const cbs = this.inFlight ?? [];
      this.inFlight = null;
      for (const cb of cbs) cb();
      this.nextBarrier();
    } else if (errnoName(-errno) === 'ENOTDIR') {
      this.fail(
        'fanotify: a file connected to no directory was changed (written through a file handle: an NFS server, open_by_handle_at): its directory cannot be told',
      );
    } else {
      this.fail(`fanotify: a directory could not be named or the queue read: ${errnoName(-(errno || 5))}`);
    }
  }

  private fail(reason: string): void {
    for (const l of [...this.listeners]) l.sink.fail(reason);
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    wsys.fanClose(this.h);
    if (FanotifyGroup.current === this) FanotifyGroup.current = null;
    const cbs = [...(this.inFlight ?? []), ...this.waiting];
    this.inFlight = null;
    this.waiting = [];
    for (const cb of cbs) cb();
  }
}

/** dir is root or lies below it (bytes). */
function under(dir: Buffer, root: Buffer): boolean {
  if (dir.length < root.length || dir.compare(root, 0, root.length, 0, root.length) !== 0) return false;
  return dir.length === root.length || dir[root.length] === SLASH || (root.length === 1 && root[0] === SLASH);
}

function join(dir: Buffer, name: Buffer): Buffer {
  return Buffer.concat([dir, Buffer.from('/'), name]);
}

/** One event, for one part (see the header). */
function change(l: Listener, dir: Buffer, name: Buffer, mask: number): void {
  const s = l.sink;
  if (name.length === 1 && name[0] === 0x2e) {
    // the directory itself: its entries may all have changed, and its entry in its parent did
    s.markWhole(dir);
    if (dir.length > l.root.length) {
      const cut = dir.lastIndexOf(SLASH);
      s.markName(dir.subarray(0, cut), dir.subarray(cut + 1));
    }
    return;
  }
  s.markName(dir, name);
  if (!(mask & wsys.FAN_ONDIR) || !(mask & (wsys.FAN_CREATE | wsys.FAN_MOVED_TO))) return;
  const child = join(dir, name);
  if (l.ignore.some((i) => under(child, i))) return;
  s.markWhole(child);
  if (mask & wsys.FAN_MOVED_TO)
    markTree(
      child,
      (p) => l.ignore.some((i) => under(p, i)),
      (p) => s.markWhole(p),
    );
}

/**
 * Mounts of the root's own file system inside the source (bind mounts), made at any time: the
 * kernel names each directory by one path, so changes seen through the other are journaled
 * under the wrong name. Another file system mounted inside is fine: a backup always reads the
 * directories of another device (unchanged-dirs.ts).
 */
export function sameFsMountInside(root: string, rootDev: number): string | null {
  const dir = Buffer.from(root);
  for (const rel of mountPointsBelow(dir)) {
    const at = Buffer.concat([dir, Buffer.from('/'), rel]);
    try {
      if (fs.statSync(at).dev === rootDev) return at.toString();
    } catch {
      /* unmounted meanwhile */
    }
  }
  return null;
}

export class FanotifySource implements WatchSource {
  readonly kind = 'fanotify' as const;
  private listener: { group: FanotifyGroup; l: Listener } | null = null;

  private constructor(
    private readonly root: string,
    private readonly sink: SourceSink,
  ) {}

  /** A source ready to start, or why fanotify cannot watch this root. */
  static create(root: string, ignore: string[], sink: SourceSink): FanotifySource | string {
    const dev = fs.statSync(root).dev;
    const inside = sameFsMountInside(root, dev);
    if (inside) return `a mount of the source's own file system lies inside it (${inside}): fanotify would journal its changes under one path only`;
    const g = FanotifyGroup.get();
    if (typeof g === 'string') return g;
    const s = new FanotifySource(root, sink);
    const l = g.add(
      Buffer.from(root),
      ignore.map((i) => Buffer.from(i)),
      sink,
    );
    if (typeof l === 'string') return l;
    s.listener = { group: g, l };
    return s;
  }

  start(): void {
    // the mark is in place (create): every change from now on makes an event
    this.sink.ready(null);
  }

  barrier(cb: () => void): void {
    if (!this.listener) return cb();
    this.listener.group.barrier(cb);
  }

  /** Checked when a backup asks: a bind mount of the source's file system made inside it since. */
  check(): string | null {
    let dev: number;
    try {
      dev = fs.statSync(this.root).dev;
    } catch {
      return null; // the root replaced or gone: the watcher's identity check says so
    }
    const inside = sameFsMountInside(this.root, dev);
    return inside ? `a mount of the source's own file system was made inside it (${inside}): fanotify would journal its changes under one path only` : null;
  }

  async close(): Promise<void> {
    const x = this.listener;
    this.listener = null;
    x?.group.remove(x.l);
  }

  describe(): string {
    const linksSeen = this.listener ? wsys.fanTargets(this.listener.group.handle) === 1 : true;
    return `fanotify (a mark on the file system of ${path.resolve(this.root)})${linksSeen ? '' : '; Linux < 5.17 does not name the file a new name is made for: a hard link made and removed again between two backups is left to the audit'}`;
  }
}
