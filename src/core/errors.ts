/**
 * One base class for every error hardsnap raises on purpose: a stable string `code`, the path
 * it concerns (shown escaped) and the original errno error as `cause`. The CLI maps `exit` to
 * the process exit code; the core never exits.
 */
export type ExitCode = 0 | 1 | 2 | 3 | 23 | 24 | 129 | 130 | 143;

/** The signals that stop a run cleanly, and the exit code each gives (128 + its number). */
export const INTERRUPT_EXIT = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 } as const;
export type InterruptSignal = keyof typeof INTERRUPT_EXIT;

export class HardsnapError extends Error {
  readonly code: string;
  readonly path?: string;
  readonly exit: ExitCode;
  readonly hint?: string;

  constructor(code: string, message: string, opts: { path?: string; cause?: unknown; exit?: ExitCode; hint?: string } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'HardsnapError';
    this.code = code;
    this.path = opts.path;
    this.exit = opts.exit ?? 2;
    this.hint = opts.hint;
  }
}

/** Bad usage, configuration or input: nothing was written (exit 1). */
export class UsageError extends HardsnapError {
  constructor(message: string, opts: { path?: string; hint?: string; code?: string; cause?: unknown } = {}) {
    super(opts.code ?? 'EUSAGE', message, { ...opts, exit: 1 });
    this.name = 'UsageError';
  }
}

/** Another run holds the lock (exit 3). */
export class LockedError extends HardsnapError {
  constructor(message: string, opts: { path?: string; hint?: string } = {}) {
    super('ELOCKED', message, { ...opts, exit: 3 });
    this.name = 'LockedError';
  }
}

/**
 * The run was asked to stop (SIGINT, SIGTERM, SIGHUP): the CLI aborts the core's AbortSignal
 * with one of these, the core stops cleanly (jobs in flight finish, descriptors are closed,
 * nothing is published) and rethrows it with what was done. Exit 128 + the signal's number.
 */
export class InterruptedError extends HardsnapError {
  constructor(
    readonly signal: InterruptSignal,
    message = `interrupted by ${signal}`,
    opts: { hint?: string } = {},
  ) {
    super('EINTERRUPTED', message, { ...opts, exit: INTERRUPT_EXIT[signal] });
    this.name = 'InterruptedError';
  }
}

/** An errno-style error (from node:fs or the native seam) with its code, or undefined. */
export function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}
