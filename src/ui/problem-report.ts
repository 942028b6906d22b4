/**
 * Per-file problems on stderr without flooding it (cron mails whatever a job prints): a busy
 * mail spool has thousands of files vanish during every run, and one line each was a mail of
 * thousands of lines a night.
 *   - errors (exit 23): the first few, one line each as they happen, then one closing line
 *     with the count when there were more;
 *   - vanished files (exit 24): one closing line with the count and the first paths;
 *     --quiet leaves it out (exit 24 and the run log say it);
 *   - --verbose: every one, as it happens, and the closing count.
 * The run log (runs.jsonl) keeps its own sample of the first problems.
 */
import type { Output } from './output.js';

/** Error lines shown before they are only counted. */
export const SHOWN_ERRORS = 10;
/** Paths of vanished files named in the closing line. */
export const SHOWN_VANISHED = 5;

export interface ProblemReportOptions {
  verbose?: boolean;
  quiet?: boolean;
  /** what the closing error line says of them, e.g. 'could not be transferred' */
  failed: string;
  /** where the rest is kept, for the closing lines (e.g. 'runs.jsonl has the first 50') */
  rest?: string;
}

export class ProblemReport {
  private errors = 0;
  private vanished = 0;
  private readonly firstVanished: string[] = [];

  constructor(
    private readonly out: Output,
    private readonly o: ProblemReportOptions,
  ) {}

  /** An entry that could not be handled; `line` names it and says why. */
  error(line: string): void {
    this.errors++;
    if (this.o.verbose || this.errors <= SHOWN_ERRORS) this.out.warn(line);
  }

  /** A source entry that vanished while the run read it (`where`: part and path). */
  vanish(where: string): void {
    this.vanished++;
    if (this.firstVanished.length < SHOWN_VANISHED) this.firstVanished.push(where);
    if (this.o.verbose && !this.o.quiet) this.out.warn(`${where}: vanished during the run`);
  }

  /** The closing lines: the counts of what was not shown one by one. */
  close(): void {
    const more = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
    const rest = this.o.rest ? `; ${this.o.rest}` : '';
    if (this.errors > SHOWN_ERRORS && !this.o.verbose) {
      this.out.warn(`${this.errors} entries ${this.o.failed} in all (the first ${SHOWN_ERRORS} above; every one with --verbose${rest})`);
    }
    if (this.vanished && !this.o.quiet) {
      const named = this.firstVanished.join(', ') + (this.vanished > this.firstVanished.length ? ', ...' : '');
      const tail = this.o.verbose ? '' : ` (every path with --verbose${rest})`;
      this.out.warn(`${more(this.vanished, 'source file')} vanished during the run: ${named}${tail}`);
    }
  }
}
