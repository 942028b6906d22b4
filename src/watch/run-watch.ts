/**
 * `hardsnap watch`: one PartWatcher per part, and the --backup-every schedule. Runs until
 * stop() (the CLI calls it on SIGTERM / SIGINT). Never prints: everything goes through `log`.
 */
import { fs } from '../fs/disk.js';
import path from 'node:path';
import net from 'node:net';
import { createHash } from 'node:crypto';
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

export async function startWatch(o: WatchOptions, ev: WatchEvents): Promise<WatchHandle> {
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
  const claims: net.Server[] = [];
  try {
    for (const p of o.parts) {
      const busy = (by: string) =>
        new HardsnapError('EBUSY', `part '${p.name}' is already watched by ${by}`, { exit: 3, hint: 'one watcher per part: stop the other one first' });
      const j = readJournal(partDir(o.spool, o.host, p.name));
      const watcherPid = j && j.pid !== process.pid && alive(j.pid) && j.pidStart !== null && processStart(j.pid) === j.pidStart ? j.pid : null;
      if (watcherPid !== null) throw busy(`pid ${watcherPid}`);
      const claim = await claimPart(o.spool, o.host, p.name);
      if (!claim) throw busy('another watcher (starting: its journal is not written yet)');
      claims.push(claim);
    }
  } catch (err) {
    for (const c of claims) c.close();
    throw err;
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
      for (const c of claims) c.close();
      ev.log('info', 'stopped: every epoch ended (the next backup scans everything)');
    },
  };
}

/**
 * The part's claim: a socket in the abstract namespace (unix(7)) named after the spool's real
 * path, the host and the part, which one process at a time can bind and which the kernel
 * releases when that process ends, however it ends. Two watchers started at the same moment
 * both found no journal of the other (the check above): only one binds. Null when another
 * process holds it. (A watcher in another network namespace does not see it.)
 */
async function claimPart(spool: string, host: string, part: string): Promise<net.Server | null> {
  let real = path.resolve(spool);
  try {
    real = fs.realpathSync(real);
  } catch {
    /* checked by the caller's spool validation; the name is then only less certain */
  }
  const key = createHash('sha256').update(`${real}\0${host}\0${part}`).digest('hex').slice(0, 40);
  const server = net.createServer((c) => c.destroy());
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' ? resolve(null) : reject(err)));
    server.listen({ path: `\0hardsnap-watch-${key}` }, () => {
      server.unref();
      resolve(server);
    });
  });
}
