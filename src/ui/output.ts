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
    if (this.chatty) this.err.write(`hardsnap: ${msg}\n`);
  }

  warn(msg: string): void {
    this.err.write(`hardsnap: warning: ${msg}\n`);
  }

  error(msg: string): void {
    this.err.write(`hardsnap: error: ${msg}\n`);
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
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

export function formatMs(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(2)} s` : ms < 120_000 ? `${(ms / 1000).toFixed(0)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}
