/**
 * The pre and post hooks of a backup run: their environment and how their results enter the
 * run record. The pre hook runs once the lock is held and before anything is written; the post
 * hook runs after every run that got that far, success or failure, before the lock is released.
 */
import { argText } from '../paths/arg-text.js';
import { pathBytes } from '../paths/aliases.js';
import { parseDisplayPath } from '../paths/escape.js';
import { absoluteBytes } from '../fs/byte-path.js';
import type { HookCommand } from '../config/schema.js';
import { runHook, type HookResult } from './run-hook.js';

export interface HooksOptions {
  pre?: HookCommand;
  post?: HookCommand;
  timeoutMs: number;
}

/** Default hook timeout (SPEC: hooks have a timeout; a database dump may take a while). */
export const DEFAULT_HOOK_TIMEOUT = '1h';

export interface HookContext {
  spool: string;
  host: string;
  generation: string | null;
  parts: string[];
}

/**
 * The hook's environment. Paths and part names are the real bytes (as arg text, which
 * runHook passes on exactly): a spool given as an alias (a path that is not UTF-8) is its real
 * path, a part name in the escaped form is its directory's name.
 */
export function hookEnv(c: HookContext, post?: { status: string; exit: number }): Record<string, string> {
  const env: Record<string, string> = {
    HARDSNAP_SPOOL: argText(absoluteBytes(pathBytes(c.spool))),
    HARDSNAP_HOST: c.host,
    HARDSNAP_GENERATION: c.generation ?? '',
    // one name per line: a part name may hold spaces, never a control character (part-name.ts)
    HARDSNAP_PARTS: c.parts.map((p) => argText(parseDisplayPath(p))).join('\n'),
  };
  if (post) {
    env.HARDSNAP_STATUS = post.status;
    env.HARDSNAP_EXIT = String(post.exit);
  }
  return env;
}

/** What the run record keeps of a hook. */
export interface HookRecord {
  command: string;
  exit: number | null;
  signal?: string;
  timedOut?: boolean;
  error?: string;
  durationMs: number;
  output: string;
}

export function hookRecord(r: HookResult): HookRecord {
  return {
    command: r.command,
    exit: r.exit,
    ...(r.signal ? { signal: r.signal } : {}),
    ...(r.timedOut ? { timedOut: true } : {}),
    ...(r.error ? { error: r.error } : {}),
    durationMs: r.durationMs,
    output: r.output,
  };
}

export { runHook };
