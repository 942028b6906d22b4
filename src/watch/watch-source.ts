/**
 * What a part's watcher needs from the thing that sees changes (fanotify-source.ts,
 * chokidar-source.ts), and what it gives back (part-watcher.ts implements the sink).
 */
import { fs } from '../fs/disk.js';
import type { WatcherKind } from './journal-file.js';

export interface SourceSink {
  /** something changed in directory `abs` that no entry name describes (or `abs` is new) */
  markWhole(abs: string | Buffer): void;
  /** the entry `name` of directory `abs` changed */
  markName(abs: string | Buffer, name: Buffer): void;
  /**
   * the non-directory `name` was made in directory `abs`, naming an inode born at `born` (wall
   * seconds; 1 unknown): one born before the previous scan is a hard link to a file that scan
   * saw, whose other names may change through this one with no event in their directories
   */
  created(abs: string | Buffer, name: Buffer, born: number): void;
  /** every change from now on will be seen: the epoch may begin (directories watched, if counted) */
  ready(watchedDirs: number | null): void;
  /** the watch broke (an error, a limit): the epoch ends; a new one is tried later */
  fail(reason: string): void;
  /** the mount table changed (fanotify's reader thread polls it; chokidar cannot) */
  mountsChanged?(): void;
  /** events were lost but the watch goes on: the epoch ends and a new one begins now */
  lost(reason: string): void;
}

export interface WatchSource {
  readonly kind: WatcherKind;
  start(): void;
  /** cb runs once every change made before this call has been handed to the sink */
  barrier(cb: () => void): void;
  /** a reason the journal can no longer be trusted, checked when a backup asks; null if none */
  check(): string | null;
  close(): Promise<void>;
  /** for the log: what watches the source */
  describe(): string;
}

/**
 * A directory moved in (or renamed over a path the previous generation knew): every directory
 * below it is marked whole, as it is now (its paths may be ones the previous manifest describes
 * with other contents). A directory moved away again meanwhile is marked where its own move
 * lands it. `skip`: paths never journaled (the spool).
 */
export function markTree(top: Buffer, skip: (p: Buffer) => boolean, markWhole: (p: Buffer) => void): void {
  const stack = [top];
  while (stack.length) {
    const dir = stack.pop()!;
    let list: fs.Dirent<Buffer>[];
    try {
      list = fs.readdirSync(dir, { withFileTypes: true, encoding: 'buffer' });
    } catch {
      continue; // gone, or not a directory any more: its own events say what happened
    }
    for (const e of list) {
      if (!e.isDirectory()) continue;
      const sub = Buffer.concat([dir, Buffer.from('/'), e.name]);
      if (skip(sub)) continue;
      markWhole(sub);
      stack.push(sub);
    }
  }
}
