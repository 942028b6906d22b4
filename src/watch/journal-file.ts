/**
 * The change journal of one part (`<part>/.hardsnap/watch/journal.json`), written by `hardsnap
 * watch` and read by `backup` (docs/WATCH.md). It names, per directory (path relative to the part
 * root, as chokidar's UTF-8 strings), the monotonic time of the last change the watcher saw in
 * it, inside one epoch: one uninterrupted life of the watcher on that part. Times are
 * CLOCK_MONOTONIC microseconds (`process.hrtime`, the same clock in every process of one boot),
 * so a wall-clock step cannot reorder them; the boot id says which boot they belong to.
 *
 * Since the watcher learned names (dirty-dirs.ts) it also records, per directory, the last change
 * that named no entry (`whole`) and the entries changed since (`names`); a reader that ignores
 * them rescans every changed directory whole, which is what an older backup does.
 *
 * The backup asks for a fresh flush by creating `sync-<nonce>` in the same directory: the
 * watcher sees it through inotify, after every event that was queued before it, and answers by
 * writing the journal with that nonce in `synced`.
 */
import { fs } from '../fs/disk.js';
import { AtomicFile, writeFileAtomic } from '../fs/atomic-file.js';
import { readTextIfExists } from '../fs/read.js';
import path from 'node:path';
import { partMetaDir } from '../spool/layout.js';
import { readProc } from '../fs/process.js';

export const JOURNAL_FORMAT = 1;

export interface Epoch {
  /** random id of this epoch */
  id: string;
  /** when the watcher's initial scan of the part was done (chokidar's `ready`), monotonic µs */
  startMono: number;
  startWall: string;
  /** set when the epoch is over: the watcher stopped, failed or hit a limit */
  ended: { mono: number; wall: string; reason: string } | null;
}

export interface Journal {
  format: number;
  part: string;
  /** the source the watcher watches (absolute, as given) */
  source: string;
  /**
   * dev:ino of the directory the watcher watches (the source's real path when its watch began).
   * The backup compares it with the root it opened: a symlink on the source's path repointed
   * since makes the same `source` name another tree, which nothing watches.
   */
  rootId: string | null;
  /**
   * the watcher's mount namespace (/proc/self/ns/mnt): one started in another (unshare -m, a
   * systemd unit with BindPaths= or TemporaryFileSystem=) may see other mounts over the source
   * than the backup, and watch directories the backup does not read
   */
  mountNs?: string | null;
  pid: number;
  pidStart: string | null;
  boot: string | null;
  epoch: Epoch | null;
  /** why the last attempt to watch failed before its epoch began (cleared when one begins) */
  failed: string | null;
  /** when this file was written, monotonic µs and wall clock */
  flushMono: number;
  flushWall: string;
  /** the last sync nonces answered (newest last) */
  synced: string[];
  /** entries older than this (monotonic µs; the newest generation's scan start) were dropped */
  prunedBefore: number;
  /** directory (relative, "" = root) -> monotonic µs of the last change seen in it */
  dirty: Record<string, number>;
  /** directory -> monotonic µs of the last change in it that named no entry (absent: none) */
  whole?: Record<string, number>;
  /** directory -> entry name (escaped, src/paths/escape.ts) -> monotonic µs of its last change, since `whole` */
  names?: Record<string, Record<string, number>>;
  /**
   * hard links made to files born before the newest generation's scan began: [directory, entry
   * name (escaped), the inode's birth time (s; 1 unknown), monotonic µs of the link]; a write
   * through such a name changes the file's other names with no event in their directories
   */
  links?: [string, string, number, number][];
  /** monotonic µs of the newest such link not named (beyond the watcher's bound) */
  linksLost?: number;
  /** directories watched (chokidar: one inotify watch each; fanotify: 0, it marks file systems) */
  watchedDirs: number;
  /** which watcher wrote it: 'fanotify' (a file-system mark) or 'chokidar' (inotify); absent before both existed */
  watcher?: WatcherKind;
}

export type WatcherKind = 'fanotify' | 'chokidar';

export function watchDir(partDirPath: string): string {
  return path.join(partMetaDir(partDirPath), 'watch');
}

export function journalPath(partDirPath: string): string {
  return path.join(watchDir(partDirPath), 'journal.json');
}

export function journalExists(partDirPath: string): boolean {
  return fs.existsSync(journalPath(partDirPath));
}

export const SYNC_PREFIX = 'sync-';

/** CLOCK_MONOTONIC in microseconds: comparable across processes of one boot. */
export function monoMicros(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

export function currentBoot(): string | null {
  return readProc('/proc/sys/kernel/random/boot_id');
}

/** This process's mount namespace (`mnt:[4026531840]`), or null without /proc. */
export function currentMountNs(): string | null {
  try {
    return fs.readlinkSync('/proc/self/ns/mnt');
  } catch {
    return null;
  }
}

/** The journal, or null when there is none; a damaged file reads as null too (never trusted). */
export function readJournal(partDirPath: string): Journal | null {
  const text = readTextIfExists(journalPath(partDirPath));
  if (text === null) return null;
  try {
    const j = JSON.parse(text) as Journal;
    if (j.format !== JOURNAL_FORMAT || typeof j.dirty !== 'object' || !Array.isArray(j.synced)) return null;
    return j;
  } catch {
    return null;
  }
}

/**
 * Writes the journal atomically like writeJournal, its change marks written piece by piece by
 * `marks` (JSON members: `"dirty":{...}` and the rest), so that a large journal is never one
 * string in memory.
 */
export function writeJournalMarks(
  partDirPath: string,
  head: Omit<Journal, 'dirty' | 'whole' | 'names' | 'links' | 'linksLost'>,
  marks: (write: (s: string) => void) => void,
): number {
  const file = journalPath(partDirPath);
  // not durable: a journal lost in a crash is never trusted anyway (another boot)
  const out = new AtomicFile(file, { durable: false });
  let bytes = 0;
  try {
    let buf = JSON.stringify(head).slice(0, -1) + ',';
    marks((s) => {
      buf += s;
      if (buf.length >= 65_536) {
        bytes += out.write(buf);
        buf = '';
      }
    });
    bytes += out.write(buf + '}');
    out.commit();
  } catch (err) {
    out.abandon();
    throw err;
  }
  return bytes;
}

/** Writes the journal atomically (a temporary file renamed over it). */
export function writeJournal(partDirPath: string, j: Journal): void {
  writeFileAtomic(journalPath(partDirPath), JSON.stringify(j), { durable: false });
}
