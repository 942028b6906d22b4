/**
 * One base class for every error hardsnap raises on purpose: a stable string `code`, the path
 * it concerns (shown escaped) and the original errno error as `cause`. The CLI maps `exit` to
 * the process exit code; the core never exits.
 */
export type ExitCode = 0 | 1 | 2 | 3 | 23 | 24;

export class HardsnapError extends Error {
  readonly code: string;
  readonly path?: string;
  readonly exit: ExitCode;
  readonly hint?: string;

  constructor(
    code: string,
    message: string,
    opts: { path?: string; cause?: unknown; exit?: ExitCode; hint?: string } = {},
  ) {
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

/** An errno-style error (from node:fs or the native seam) with its code, or undefined. */
export function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err
    ? String((err as { code: unknown }).code)
    : undefined;
}
