/**
 * Where the CLI's words go (SPEC.md "Output"): on a terminal, notes and a closing summary;
 * not on a terminal (cron mails whatever a job prints), nothing on success unless --verbose;
 * warnings and errors always on stderr. Machine output (--json) alone on stdout, with its
 * format version; under --json every stderr line is a JSON object too (docs/CLI.md "JSON").
 * Every word passes through showPaths: a path alias (src/paths/aliases.ts) or a byte of an
 * argument that is not UTF-8 is shown in the escaped form.
 */
import { showPaths, showPathsDeep } from '../paths/aliases.js';
export { formatBytes, formatMs } from '../core/units.js';

/** The version of every JSON document hardsnap prints (docs/CLI.md "JSON"); raised on an incompatible change. */
export const JSON_FORMAT = 1;

/** What an error is, for its one line (or its JSON object under --json). */
export interface Failure {
  code: string;
  message: string;
  hint?: string;
  exit: number;
}

export interface OutputOptions {
  json?: boolean;
  verbose?: boolean;
  quiet?: boolean;
  debug?: boolean;
}

export class Output {
  readonly tty: boolean;
  /** while progress bars are drawn: takes a stderr line (returns true) so the bars stay intact */
  interject: ((line: string) => boolean) | null = null;
  constructor(
    readonly opts: OutputOptions,
    private readonly out: NodeJS.WriteStream = process.stdout,
    private readonly err: NodeJS.WriteStream = process.stderr,
  ) {
    this.tty = Boolean(err.isTTY);
  }

  /** Informational notes: on a terminal or with --verbose, never with --quiet. */
  get chatty(): boolean {
    return !this.opts.quiet && (this.tty || Boolean(this.opts.verbose));
  }

  note(msg: string): void {
    if (this.chatty) this.line('info', msg);
  }

  /** A long-running command's log line (watch): always on stderr, except with --quiet. */
  log(msg: string): void {
    if (!this.opts.quiet) this.line('info', msg);
  }

  warn(msg: string): void {
    this.line('warning', msg);
  }

  /** An error line; `f` adds the code, hint and exit of a failure (its JSON object under --json). */
  error(msg: string, f?: Omit<Failure, 'message'>): void {
    if (this.opts.json) {
      this.err.write(
        JSON.stringify(
          showPathsDeep({
            format: JSON_FORMAT,
            level: 'error',
            code: f?.code ?? 'ERROR',
            message: msg,
            ...(f?.hint ? { hint: f.hint } : {}),
            ...(f ? { exit: f.exit } : {}),
          }),
        ) + '\n',
      );
      return;
    }
    this.line('error', f?.hint ? `${msg} (${f.hint})` : msg);
  }

  private line(level: 'info' | 'warning' | 'error', msg: string): void {
    if (this.opts.json) {
      this.err.write(JSON.stringify(showPathsDeep({ format: JSON_FORMAT, level, message: msg })) + '\n');
      return;
    }
    const text = showPaths(level === 'info' ? `hardsnap: ${msg}` : `hardsnap: ${level}: ${msg}`);
    if (!this.interject?.(text)) this.err.write(text + '\n');
  }

  /** Result text on stdout (not in --json mode). */
  print(text: string): void {
    if (!this.opts.json) this.out.write(showPaths(text.endsWith('\n') ? text : text + '\n'));
  }

  /** A summary: stdout, only when chatty. */
  summary(text: string): void {
    if (this.chatty && !this.opts.json) this.out.write(showPaths(text) + '\n');
  }

  /**
   * The --json document on stdout, with its format version: `"format": 1` first in an object,
   * and in each object of an array (SPEC.md keeps `list --json` an array).
   */
  json(value: unknown): void {
    this.out.write(JSON.stringify(showPathsDeep(withFormat(value)), null, 2) + '\n');
  }
}

export function withFormat(value: unknown): unknown {
  const stamp = (v: unknown) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? { format: JSON_FORMAT, ...v } : v);
  return Array.isArray(value) ? value.map(stamp) : stamp(value);
}
