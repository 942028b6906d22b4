/**
 * The one place where results become exit codes and errors become one line on stderr
 * (with a hint; a stack trace only under --debug).
 */
import { HardsnapError } from '../core/errors.js';
import { Output, type Failure } from '../ui/output.js';
import { showPaths } from '../paths/aliases.js';
import { displayPath } from '../paths/escape.js';
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
        ctx.exitCode = reportError(err, out, o.debug, ctx.usageExit);
      }
    },
  };
  return ctx;
}

const ERRNO_HINTS: Record<string, string> = {
  EACCES: 'permission denied: check the owner and mode, or run as root',
  EPERM: 'operation not permitted: run as root, or check the mount (root_squash, immutable files)',
  ENOSPC: 'the file system is full: free space (prune, which itself needs a free inode and a few KB for its lock: docs/OPERATIONS.md) and run again',
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

/**
 * Reports an error (one line; one JSON object under --json) and returns the exit code: the
 * error's own, a usage error mapped to `usageExit` (3 for `status`), 2 for anything else.
 */
export function reportError(err: unknown, out: Output, debug?: boolean, usageExit = 1): number {
  const f = describeError(err, usageExit);
  out.error(f.message, { code: f.code, exit: f.exit, hint: f.hint });
  if (debug) {
    const e = err as Error;
    process.stderr.write(showPaths(`${e?.stack ?? ''}\n${e?.cause ? `cause: ${String((e.cause as Error).stack ?? e.cause)}\n` : ''}`));
  }
  return f.exit;
}

export function describeError(err: unknown, usageExit = 1): Failure {
  if (err instanceof HardsnapError) {
    const exit = err.exit === 1 ? usageExit : err.exit;
    return { code: err.code, message: oneLine(err.message), exit, ...(err.hint ? { hint: oneLine(err.hint) } : {}) };
  }
  const e = err as NodeJS.ErrnoException;
  const hint = e?.code ? ERRNO_HINTS[e.code] : undefined;
  if (e?.code) {
    const what = e.path
      ? `${e.code}: ${e.syscall ?? 'operation'} failed on ${Buffer.isBuffer(e.path) ? displayPath(e.path) : showPaths(String(e.path))}`
      : String(e.message ?? err);
    return { code: e.code, message: oneLine(what), exit: 2, ...(hint ? { hint } : {}) };
  }
  return {
    code: 'EINTERNAL',
    message: oneLine(`internal error: ${String(e?.message ?? err)}`),
    exit: 2,
    hint: 'a bug: run again with --debug for the stack trace, and report it',
  };
}
