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

export function reportError(err: unknown, out: Output, debug?: boolean): number {
  if (err instanceof HardsnapError) {
    out.error(err.message + (err.hint ? ` (${err.hint})` : ''));
    if (debug) process.stderr.write(`${err.stack}\n${err.cause ? `cause: ${String((err.cause as Error).stack ?? err.cause)}\n` : ''}`);
    return err.exit;
  }
  const e = err as NodeJS.ErrnoException;
  const what = e.code && e.path ? `${e.code}: ${e.syscall ?? 'operation'} failed on ${e.path}` : String(e?.message ?? err);
  out.error(what);
  if (debug) process.stderr.write(`${e?.stack ?? ''}\n`);
  return 2;
}
