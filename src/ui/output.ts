/**
 * Where the CLI's words go (SPEC.md "Output"): on a terminal, notes and a closing summary;
 * not on a terminal (cron mails whatever a job prints), nothing on success unless --verbose;
 * warnings and errors always on stderr. Machine output (--json) alone on stdout.
 */
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
    if (this.chatty) this.line(`hardsnap: ${msg}`);
  }

  /** A long-running command's log line (watch): always on stderr, except with --quiet. */
  log(msg: string): void {
    if (!this.opts.quiet) this.line(`hardsnap: ${msg}`);
  }

  warn(msg: string): void {
    this.line(`hardsnap: warning: ${msg}`);
  }

  error(msg: string): void {
    this.line(`hardsnap: error: ${msg}`);
  }

  private line(text: string): void {
    if (!this.interject?.(text)) this.err.write(text + '\n');
  }

  /** Result text on stdout (not in --json mode). */
  print(text: string): void {
    if (!this.opts.json) this.out.write(text.endsWith('\n') ? text : text + '\n');
  }

  /** A summary: stdout, only when chatty. */
  summary(text: string): void {
    if (this.chatty && !this.opts.json) this.out.write(text + '\n');
  }

  json(value: unknown): void {
    this.out.write(JSON.stringify(value, null, 2) + '\n');
  }
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) (n /= 1024), i++;
  return `${i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
}

export function formatMs(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(2)} s` : ms < 120_000 ? `${(ms / 1000).toFixed(0)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}
