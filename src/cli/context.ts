/**
 * The one place where results become exit codes and errors become one line on stderr
 * (with a hint; a stack trace only under --debug).
 */
import { HardsnapError } from '../core/errors.js';
import { Output } from '../ui/output.js';
import type { CommonOptions } from './common.js';
import type { Config } from '../config/schema.js';

export interface CliContext {
  /** runs a command body; sets the exit code it returns or its error's */
  run(o: CommonOptions, body: (out: Output) => Promise<number>): Promise<void>;
  /** the parsed --config file (empty when none) */
  config(o: CommonOptions): ConfigLike;
  exitCode: number;
  /** the exit code used for usage errors (3 for `status`, Nagios) */
  usageExit: number;
}

export type ConfigLike = Config;

export function createContext(loadConfig: (file: string) => ConfigLike): CliContext {
  const cache = new Map<string, ConfigLike>();
  const ctx: CliContext = {
    exitCode: 0,
    usageExit: 1,
    config(o) {
      if (!o.config) return {};
      let c = cache.get(o.config);
      if (!c) cache.set(o.config, (c = loadConfig(o.config)));
      return c;
    },
    async run(o, body) {
      const out = new Output(o);
      try {
        ctx.exitCode = await body(out);
      } catch (err) {
        ctx.exitCode = reportError(err, out, o.debug);
        if (ctx.exitCode === 1 && ctx.usageExit !== 1) ctx.exitCode = ctx.usageExit;
      }
    },
  };
  return ctx;
}

const ERRNO_HINTS: Record<string, string> = {
  EACCES: 'permission denied: check the owner and mode, or run as root',
  EPERM: 'operation not permitted: run as root, or check the mount (root_squash, immutable files)',
  ENOSPC: 'the file system is full: free space (prune) and run again',
  EDQUOT: 'the quota is exhausted',
  EROFS: 'the file system is mounted read-only',
  ENOENT: 'no such file or directory: check the path',
  ENOTDIR: 'a component of the path is not a directory',
  EIO: 'an I/O error: check the disk, the network mount and the kernel log',
  ESTALE: 'stale NFS file handle: remount the spool',
};

/** One line, whatever the message holds (a path with a newline stays on the line). */
function oneLine(s: string): string {
  return s.replace(/\r?\n/g, ' ');
}

export function reportError(err: unknown, out: Output, debug?: boolean): number {
  if (err instanceof HardsnapError) {
    out.error(oneLine(err.message + (err.hint ? ` (${err.hint})` : '')));
    if (debug) process.stderr.write(`${err.stack}\n${err.cause ? `cause: ${String((err.cause as Error).stack ?? err.cause)}\n` : ''}`);
    return err.exit;
  }
  const e = err as NodeJS.ErrnoException;
  const hint = e?.code ? ERRNO_HINTS[e.code] : undefined;
  const what = e?.code && e.path
    ? `${e.code}: ${e.syscall ?? 'operation'} failed on ${e.path}${hint ? ` (${hint})` : ''}`
    : e?.code
      ? `${String(e.message ?? err)}${hint ? ` (${hint})` : ''}`
      : `internal error: ${String(e?.message ?? err)} (a bug: run again with --debug for the stack trace, and report it)`;
  out.error(oneLine(what));
  if (debug) process.stderr.write(`${e?.stack ?? ''}\n`);
  return 2;
}
