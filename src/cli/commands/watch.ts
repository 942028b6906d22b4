import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { parseDuration } from '../../time/duration.js';
import type { Output } from '../../ui/output.js';
import { addCommon, collect, partSpecArg, type CommonOptions, spoolTarget } from '../common.js';
import { exactExec } from '../../hooks/exact-exec.js';
import { isAlias } from '../../paths/aliases.js';
import { partDir } from '../../spool/layout.js';
import { UsageError } from '../../core/errors.js';
import type { CliContext } from '../context.js';

interface WatchCliOptions extends CommonOptions {
  part?: string[];
  backupEvery?: string;
  watcher?: string;
}

export function register(program: Command, ctx: CliContext): void {
  addCommon(
    program
      .command('watch')
      .description("watch every part's source and journal which directories change, so that the next backup scans only those")
      .option('--part <name=path>', 'a part to watch (repeatable; default: the parts of --config)', collect)
      .option('--backup-every <duration>', 'start a backup at most this often, after changes (e.g. 1h); default: never')
      .option(
        '--watcher <kind>',
        'auto (default): fanotify where it can (root, Linux >= 5.9, a file system it can mark), chokidar elsewhere; or fanotify, or chokidar',
      )
      .addHelpText(
        'after',
        `
Runs in the foreground until SIGTERM or SIGINT (for systemd), logging on stderr what it does,
which watcher runs for each part among them (also in the journal and in 'status').
Per part it keeps <spool>/rsync/<host>/<part>/.hardsnap/watch/journal.json; a backup uses it
only when it is trustworthy (the watcher ran, without an error, since before the previous
generation's scan began) and says so; otherwise it scans everything and says why.
A backup started by --backup-every runs 'hardsnap backup' with the same --config, --spool,
--host and --part; put any other backup option in the config file. See docs/WATCH.md.

Examples:
  hardsnap watch --config /etc/hardsnap.yaml
  hardsnap watch --config /etc/hardsnap.yaml --backup-every 1h`,
      ),
  ).action(async (o: WatchCliOptions) => ctx.run(o, (out) => watch(o, ctx, out)));
}

/** The command line of the backups --backup-every starts: the same target and parts. */
function backupArgs(o: WatchCliOptions): string[] {
  const args = ['backup'];
  if (o.config) args.push('--config', o.config);
  if (o.spool) args.push('--spool', o.spool);
  if (o.host) args.push('--host', o.host);
  for (const p of o.part ?? []) args.push('--part', p);
  if (o.verbose) args.push('--verbose');
  if (o.quiet) args.push('--quiet');
  return args;
}

async function watch(o: WatchCliOptions, ctx: CliContext, out: Output): Promise<number> {
  const cfg = ctx.config(o);
  const { spool, host } = spoolTarget(o, cfg, out, true);
  const parts = o.part?.length ? o.part.map((a) => partSpecArg(a)) : (cfg.parts ?? []).map((p) => ({ name: p.name, source: p.path }));
  // the watchers (chokidar, fanotify) name what they see by string paths
  const bytePath = [spool, ...parts.flatMap((p) => [p.source, partDir(spool, host, p.name)])].find(isAlias);
  if (bytePath !== undefined) {
    throw new UsageError(`watch does not take paths that are not UTF-8 yet: ${bytePath}`, {
      hint: 'back such a tree up without the journal (a backup works); see docs/WATCH.md',
    });
  }
  const every = o.backupEvery ?? cfg.backupEvery;
  const watcher = o.watcher ?? cfg.watcher ?? 'auto';
  if (watcher !== 'auto' && watcher !== 'fanotify' && watcher !== 'chokidar') {
    throw new UsageError(`--watcher must be auto, fanotify or chokidar, not '${watcher}'`);
  }
  // loaded here, not with the CLI: chokidar and the watcher cost every other command ~15 ms
  const { startWatch } = await import('../../watch/run-watch.js');
  const handle = await startWatch(
    {
      spool,
      host,
      parts,
      backupEveryMs: every ? parseDuration(every, '--backup-every') : 0,
      // HARDSNAP_TEST_WATCH_FLUSH_MS (a test seam): a watcher that writes its journal only when asked
      watcher,
      quietMs: 2_000,
      flushMs: Number(process.env.HARDSNAP_TEST_WATCH_FLUSH_MS ?? 1000),
      restartMs: 60_000,
    },
    {
      log: (level, m) => (level === 'info' ? out.log(m) : level === 'warn' ? out.warn(m) : out.error(m)),
      runBackup: () =>
        new Promise<number>((resolve, reject) => {
          // the arguments as given (arg text): a path that is not UTF-8 reaches the backup exactly
          const plan = exactExec(process.execPath, [process.argv[1]!, ...backupArgs(o)], process.env);
          const child = spawn(plan.file, plan.args, { stdio: ['ignore', 'inherit', 'inherit'], env: plan.env });
          child.on('error', reject);
          child.on('exit', (code, signal) => resolve(code ?? 128 + (signal === 'SIGKILL' ? 9 : 15)));
        }),
    },
  );
  await new Promise<void>((resolve) => {
    const stop = (sig: NodeJS.Signals) => {
      out.log(`${sig}: stopping`);
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      void handle.stop().then(resolve);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  return 0;
}
