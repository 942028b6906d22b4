/**
 * Counting a source tree's entries ahead of its backup, for the progress bar's percentage and
 * ETA (src/ui/progress.ts). It counts what the backup will count (BuildStats.entries): every
 * name in every directory the backup enters, an excluded name included, below an excluded
 * directory, another file system (--one-file-system) or the spool nothing. It reads directories
 * only (getdents: names and types, no stat per entry; a stat per directory with
 * --one-file-system), eight at a time on libuv's pool, so that it finishes long before the
 * backup (which stats, links and copies every entry) and costs it little (docs/CLI.md,
 * "Progress": measured). It runs only when progress is shown, never under cron.
 */
import { fs } from '../fs/disk.js';
import type { ExcludeMatcher } from '../exclude/patterns.js';
import { joinRel } from '../paths/escape.js';

export interface CountAhead {
  /** entries counted so far */
  readonly count: number;
  /** true once the whole tree is counted */
  readonly done: boolean;
  /** stops the walk (the backup ended first) */
  stop(): void;
}

export interface CountOptions {
  /** the source root (an exact path: src/fs/byte-path.ts) */
  source: string;
  excludes: ExcludeMatcher;
  oneFileSystem: boolean;
  /** directories never entered, as dev:ino (the spool inside the source) */
  skip: ReadonlySet<string>;
  /** directories read at once */
  concurrency?: number;
}

const SLASH = Buffer.from('/');

export function countAhead(o: CountOptions): CountAhead {
  const state = { count: 0, done: false, stopped: false };
  const root = Buffer.from(o.source);
  const queue: Buffer[] = [Buffer.alloc(0)];
  let rootDev = -1;
  let running = 0;

  const enter = async (rel: Buffer): Promise<void> => {
    const dir = rel.length ? Buffer.concat([root, SLASH, rel]) : root;
    if (o.oneFileSystem || o.skip.size) {
      const st = await fs.promises.stat(dir).catch(() => null);
      if (!st) return;
      if (rel.length === 0) rootDev = st.dev;
      else if (o.skip.has(`${st.dev}:${st.ino}`) || (o.oneFileSystem && st.dev !== rootDev)) return;
    }
    let ents: fs.Dirent<Buffer>[];
    try {
      ents = await fs.promises.readdir(dir, { withFileTypes: true, encoding: 'buffer' });
    } catch {
      return; // the backup reports it
    }
    for (const e of ents) {
      if (state.stopped) return;
      state.count++;
      if (!e.isDirectory()) continue;
      const sub = joinRel(rel, e.name);
      if (!o.excludes.empty && o.excludes.excluded(sub, e.name, true)) continue;
      queue.push(sub);
    }
  };

  const pump = (): void => {
    const limit = o.concurrency ?? 8;
    while (!state.stopped && running < limit && queue.length) {
      const rel = queue.pop()!;
      running++;
      void enter(rel).finally(() => {
        running--;
        pump();
      });
    }
    if (!running && !queue.length && !state.stopped) state.done = true;
  };
  pump();

  return {
    get count() {
      return state.count;
    },
    get done() {
      return state.done;
    },
    stop() {
      state.stopped = true;
    },
  };
}
