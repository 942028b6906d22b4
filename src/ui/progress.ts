/**
 * Progress of a backup, from the core's events (BackupEvents.onPhase / onProgress):
 *   - 'bars'  on a terminal: one cli-progress bar per part (entries, bytes written, rates, and
 *             a percentage and ETA when the previous run of the part gives an expected count);
 *   - 'lines' not on a terminal with --verbose (cron): one plain line at most every minute;
 *   - 'off'   otherwise: nothing, and the core's per-entry path stays free of callbacks.
 * The core runs synchronously, so cli-progress's timer never fires during a build: rendering is
 * driven from the events here, throttled to `renderMs`.
 */
import { createRequire } from 'node:module';
import type { MultiBar, SingleBar } from 'cli-progress';
import type { BuildStats } from '../apply/types.js';
import { formatBytes } from './output.js';

export type ProgressMode = 'bars' | 'lines' | 'off';
export type Phase = 'scan' | 'built' | 'publish' | 'prune';

export interface ProgressChoice {
  /** --progress (true) / --no-progress (false) / neither (undefined) */
  progress?: boolean;
  quiet?: boolean;
  verbose?: boolean;
}

/**
 * --quiet and --no-progress: off. --progress: bars. Otherwise bars on a terminal (except with
 * --verbose, whose itemized lines are the progress), a line a minute with --verbose elsewhere.
 */
export function progressMode(o: ProgressChoice, tty: boolean): ProgressMode {
  if (o.quiet || o.progress === false) return 'off';
  if (o.progress === true) return 'bars';
  if (tty) return o.verbose ? 'off' : 'bars';
  return o.verbose ? 'lines' : 'off';
}

const PHASE_LABEL: Record<Phase, string> = { scan: 'link/copy', built: 'built', publish: 'publish', prune: 'prune' };

interface PartState {
  part: string;
  phase: Phase;
  bar?: SingleBar;
  started: number;
  /** when the part's tree was built: its rates stop there */
  ended?: number;
  stats?: BuildStats;
  expected?: number;
}

export interface ProgressSink {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export class BackupProgress {
  private readonly parts = new Map<string, PartState>();
  private multi: MultiBar | null = null;
  private current: PartState | null = null;
  private lastRender = 0;
  private lastLine: number;
  private readonly t0 = Date.now();

  constructor(
    readonly mode: ProgressMode,
    private readonly stream: ProgressSink = process.stderr,
    /** the expected number of entries of a part (its previous run's count), for % and ETA */
    private readonly expected: (part: string) => number | undefined = () => undefined,
    private readonly opts: { renderMs?: number; lineMs?: number } = {},
  ) {
    this.lastLine = Date.now();
  }

  get active(): boolean {
    return this.mode !== 'off';
  }

  /** A phase of one part (scan, built), or of the whole run (publish, prune: every part). */
  phase(phase: Phase, part?: string): void {
    if (part !== undefined) {
      let st = this.parts.get(part);
      if (!st) {
        st = { part, phase, started: Date.now(), expected: this.expected(part) };
        this.parts.set(part, st);
        if (this.mode === 'bars') this.addBar(st);
      }
      st.phase = phase;
      if (phase === 'built') st.ended = Date.now();
      this.current = st;
    } else {
      for (const p of this.parts.values()) p.phase = phase;
    }
    if (this.mode === 'bars') {
      for (const p of this.parts.values()) {
        if (p.bar && p.stats) p.bar.update(p.stats.entries, this.payload(p));
        else p.bar?.update(this.payload(p));
      }
      this.render(true);
    }
  }

  update(part: string, s: BuildStats): void {
    const st = this.parts.get(part) ?? this.current;
    if (!st) return;
    st.stats = s;
    const now = Date.now();
    if (this.mode === 'bars') {
      if (now - this.lastRender < (this.opts.renderMs ?? 100)) return;
      if (st.bar) {
        const total = st.bar.getTotal();
        if (total > 0 && s.entries > total) st.bar.setTotal(s.entries);
        st.bar.update(s.entries, this.payload(st));
      }
      this.render(false);
    } else if (this.mode === 'lines') {
      if (now - this.lastLine < (this.opts.lineMs ?? 60_000)) return;
      this.lastLine = now;
      this.stream.write(`hardsnap: progress: ${this.describe(st)}\n`);
    }
  }

  /** A line above the bars (warnings during a run), or straight to the stream. */
  log(line: string): boolean {
    if (this.mode !== 'bars' || !this.multi) return false;
    this.multi.log(line.endsWith('\n') ? line : line + '\n');
    this.render(true);
    return true;
  }

  /** Final state of every bar, then stop (leaves the bars on screen). */
  stop(failed = false): void {
    if (!this.multi) return;
    for (const p of this.parts.values()) {
      if (p.bar && p.stats) {
        if (!failed) p.bar.setTotal(Math.max(p.stats.entries, 1));
        p.bar.update(p.stats.entries, { ...this.payload(p), phase: failed ? 'FAILED' : 'done' });
      }
    }
    this.multi.update();
    this.multi.stop();
    this.multi = null;
  }

  private addBar(st: PartState): void {
    if (!this.multi) {
      // loaded with the first bar: a run without bars (cron) does not pay its ~15 ms
      const { MultiBar, Presets } = createRequire(import.meta.url)('cli-progress') as typeof import('cli-progress');
      this.multi = new MultiBar({
        stream: this.stream as NodeJS.WritableStream,
        // no terminal modes are touched (cursor, wrapping): a Ctrl-C during the synchronous
        // build kills the process at once, and must not leave the terminal damaged; cli-progress
        // cuts each line to the width itself when linewrap is true
        hideCursor: false,
        linewrap: true,
        clearOnComplete: false,
        autopadding: true,
        fps: 10,
        barsize: 20,
        formatValue: (v, _o, type) => (type === 'percentage' ? String(v).padStart(3) : String(v)),
      }, Presets.shades_classic);
    }
    const withTotal = '{part} {phase} |{bar}| {percentage}% {value} entries, {written} written, {rate} ETA {eta_formatted}';
    const noTotal = '{part} {phase} {value} entries, {written} written, {rate} {elapsed}';
    st.bar = this.multi.create(st.expected ?? 0, 0, this.payload(st), { format: st.expected ? withTotal : noTotal } as never);
  }

  private payload(p: PartState): Record<string, string> {
    const s = p.stats;
    const secs = Math.max(((p.ended ?? Date.now()) - p.started) / 1000, 0.001);
    return {
      part: p.part,
      phase: PHASE_LABEL[p.phase],
      written: formatBytes(s?.bytesWritten ?? 0),
      rate: `${compact((s?.entries ?? 0) / secs)}/s ${formatBytes((s?.bytesWritten ?? 0) / secs)}/s`,
      elapsed: `${Math.round((Date.now() - this.t0) / 1000)} s`,
    };
  }

  private describe(p: PartState): string {
    const s = p.stats;
    if (!s) return `${p.part}: ${PHASE_LABEL[p.phase]}`;
    const pl = this.payload(p);
    const pct = p.expected ? ` (~${Math.min(99, Math.floor((100 * s.entries) / p.expected))}% of ${p.expected} expected)` : '';
    return `${p.part}: ${s.entries} entries${pct}, ${s.linked} linked, ${s.copied} written (${pl.written}), ${pl.rate}, ${pl.elapsed} elapsed`;
  }

  private render(force: boolean): void {
    if (!this.multi) return;
    const now = Date.now();
    if (!force && now - this.lastRender < (this.opts.renderMs ?? 100)) return;
    this.lastRender = now;
    this.multi.update();
  }
}

function compact(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e4 ? `${Math.round(n / 1e3)}k` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(Math.round(n));
}

/**
 * A stream that cli-progress treats as a terminal (for --progress when stderr is not one,
 * e.g. piped through `less -R`).
 */
export function forcedTty(target: NodeJS.WriteStream = process.stderr): ProgressSink {
  return { isTTY: true, columns: target.columns || 100, write: (s: string) => target.write(s) };
}
