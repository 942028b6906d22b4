/**
 * `hardsnap watch`: one PartWatcher per part, and the --backup-every schedule. Runs until
 * stop() (the CLI calls it on SIGTERM / SIGINT). Never prints: everything goes through `log`.
 */
import { fs } from '../fs/disk.js';
import path from 'node:path';
import { HardsnapError, UsageError } from '../core/errors.js';
import { partDir, validateHost } from '../spool/layout.js';
import { checkNoNesting, validatePartName } from '../spool/part-name.js';
import { alive, processStart } from '../fs/process.js';
import { BackupSchedule } from './backup-schedule.js';
import { readJournal } from './journal-file.js';
import { watcherHeap } from './heap.js';
import { PartWatcher, type LogLevel, type WatcherChoice } from './part-watcher.js';

export interface WatchOptions {
  spool: string;
  host: string;
  parts: { name: string; source: string }[];
  /** 0: never start backups */
  backupEveryMs: number;
  /** how long a burst of changes is waited out before a scheduled backup */
  quietMs: number;
  flushMs: number;
  restartMs: number;
  /** which watcher (default 'auto': fanotify where it can, chokidar elsewhere) */
  watcher?: WatcherChoice;
}

export interface WatchEvents {
  log(level: LogLevel, message: string): void;
  /** runs one backup of every part (the CLI spawns `hardsnap backup`); exit code */
  runBackup(): Promise<number>;
}

export interface WatchHandle {
  readonly watchers: ReadonlyMap<string, PartWatcher>;
  stop(): Promise<void>;
}

export function startWatch(o: WatchOptions, ev: WatchEvents): WatchHandle {
  validateHost(o.host);
  watcherHeap();
  if (!o.parts.length) throw new UsageError('nothing to watch: give at least one --part NAME=PATH (or parts: in --config)');
  for (const p of o.parts) validatePartName(p.name);
  checkNoNesting(
    o.parts.map((p) => p.name),
    [],
  );
  for (const p of o.parts) {
    let st: fs.Stats;
    try {
      st = fs.statSync(p.source);
    } catch (err) {
      throw new HardsnapError('ENOENT', `source of part '${p.name}' is missing: ${p.source}`, { exit: 2, cause: err });
    }
    if (!st.isDirectory()) throw new UsageError(`source of part '${p.name}' is not a directory: ${p.source}`);
  }
  const schedule =
    o.backupEveryMs > 0
      ? new BackupSchedule({
          everyMs: o.backupEveryMs,
          quietMs: o.quietMs,
          log: (m) => ev.log('info', m),
          run: async () => {
            const code = await ev.runBackup();
            for (const w of watchers.values()) w.backupDone();
            return code;
          },
        })
      : null;
  if (schedule) ev.log('info', `a backup every ${Math.round(o.backupEveryMs / 1000)} s at most, after changes (--backup-every)`);
  for (const p of o.parts) {
    const j = readJournal(partDir(o.spool, o.host, p.name));
    if (j && j.pid !== process.pid && alive(j.pid) && j.pidStart !== null && processStart(j.pid) === j.pidStart) {
      throw new HardsnapError('EBUSY', `part '${p.name}' is already watched by pid ${j.pid}`, {
        exit: 3,
        hint: 'one watcher per part: stop the other one first',
      });
    }
  }
  // the watchers name paths under the source's real path: the spool too, when it lies inside
  let spool = path.resolve(o.spool);
  try {
    spool = fs.realpathSync(spool);
  } catch {
    /* not made yet: it cannot lie under a source through a symlink that exists */
  }
  const watchers = new Map<string, PartWatcher>();
  for (const p of o.parts) {
    const w = new PartWatcher({
      part: p.name,
      source: p.source,
      partDir: partDir(o.spool, o.host, p.name),
      ignore: [spool],
      flushMs: o.flushMs,
      restartMs: o.restartMs,
      watcher: o.watcher,
      log: ev.log,
      onChange: schedule ? () => schedule.changed() : undefined,
    });
    watchers.set(p.name, w);
    w.start();
  }
  return {
    watchers,
    async stop() {
      schedule?.stop();
      for (const w of watchers.values()) await w.stop();
      ev.log('info', 'stopped: every epoch ended (the next backup scans everything)');
    },
  };
}
