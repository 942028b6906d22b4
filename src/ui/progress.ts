/**
 * Progress of a backup, from the core's events (BackupEvents.onPhase / onProgress):
 *   - 'bars'  on a terminal: one line per part, redrawn by cli-progress at most 10 times a
 *             second, each at most 80 columns (or the terminal's width when narrower);
 *   - 'lines' not on a terminal with --verbose (cron): one plain line at most every minute;
 *   - 'off'   otherwise: nothing, and the core's per-entry path stays free of callbacks.
 *
 * What a line says comes from `progressLine` (pure, tested by table): the part, its phase
 * (reading the previous manifest, indexing earlier generations, link/copy, publish ...), the
 * entries done, bytes written, rates, and a percentage and ETA only when there is a total to
 * trust. The total of a part is, best first: the count of its source tree made ahead of the
 * backup (src/backup/count-ahead.ts), once finished; the entries of its previous run
 * (runs.jsonl) or, on a first run whose source is the root of its file system, that file
 * system's used inodes (statfs), while the count is under way and as long as the run has not
 * passed them. A run that passes its estimate shows counts and rates, never "100%, ETA 0s"
 * while it still works; a percentage stays below 100 until the part is built.
 */
import { createRequire } from 'node:module';
import type { MultiBar, SingleBar } from 'cli-progress';
import type { BuildStats } from '../apply/types.js';
import type { CountAhead } from '../backup/count-ahead.js';
import { formatBytes } from './output.js';
import { showPaths } from '../paths/aliases.js';

export type ProgressMode = 'bars' | 'lines' | 'off';
export type Phase = 'prepare' | 'previous' | 'index' | 'journal' | 'scan' | 'built' | 'publish' | 'prune';

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

const PHASE_LABEL: Record<Phase, string> = {
  prepare: 'starting...',
  previous: 'reading the previous manifest...',
  index: 'indexing earlier generations...',
  journal: 'asking the watcher...',
  scan: 'link/copy',
  built: 'built',
  publish: 'publish',
  prune: 'prune',
};

/** Where a part's total comes from. */
export interface Estimates {
  /** the entry count of the part's previous run */
  previous?: number;
  /** a first run's guess: the used inodes of the source's file system, when the source is its root */
  fileSystem?: number;
  /** the count of the source made ahead of the backup */
  counter?: CountAhead | null;
}

/** Everything a progress line shows about one part. */
export interface PartView {
  part: string;
  phase: Phase | 'done' | 'FAILED';
  /** entries done */
  entries: number;
  bytesWritten: number;
  /** ms since the part started, and since its link/copy phase started (0: not yet) */
  elapsedMs: number;
  scanMs: number;
  estimates: Estimates;
}

/** The total to show a percentage against, and how sure it is; null: none to trust. */
export function partTotal(v: PartView): { total: number; exact: boolean } | null {
  const c = v.estimates.counter;
  if (c?.done) return { total: Math.max(c.count, 1), exact: true };
  // a count under way is a lower bound, not a total: it only raises an estimate
  const estimate = v.estimates.previous ?? v.estimates.fileSystem;
  if (estimate === undefined) return null;
  const guess = Math.max(estimate, c?.count ?? 0);
  return guess > v.entries ? { total: guess, exact: false } : null;
}

function compact(n: number): string {
  return n >= 1e9
    ? `${(n / 1e9).toFixed(1)}G`
    : n >= 1e6
      ? `${(n / 1e6).toFixed(1)}M`
      : n >= 1e4
        ? `${Math.round(n / 1e3)}k`
        : n >= 1e3
          ? `${(n / 1e3).toFixed(1)}k`
          : String(Math.round(n));
}

/** 0:07, 12:34, 1:02:03 */
export function clock(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** A name cut to `w` columns with a '~' where it was cut (names are ASCII-escaped or UTF-8). */
function fit(s: string, w: number): string {
  const chars = [...s];
  return chars.length <= w ? s.padEnd(w + s.length - chars.length) : chars.slice(0, w - 1).join('') + '~';
}

/** Fits `s` in `width` columns (no part is longer; a wide character counts one: names only). */
function cut(s: string, width: number): string {
  const chars = [...s];
  return chars.length <= width ? s : chars.slice(0, width).join('');
}

/**
 * One part's line, at most `width` columns (the bar takes what 80 columns leave: 8):
 *   etc        link/copy [###-----]  41%  12k/29k  1.2 GiB  3.4k/s  ETA 0:25
 *   etc        link/copy 12k entries (counting: 20k)  1.2 GiB  3.4k/s  0:07
 *   etc        reading the previous manifest...  0:03
 *   etc        done      29k entries, 1.2 GiB written, 3.4k/s 40.1 MiB/s  0:09
 */
export function progressLine(v: PartView, columns = 80): string {
  const width = Math.min(columns, 80);
  const name = fit(showPaths(v.part), 10);
  const phase = v.phase;
  if (phase === 'prepare' || phase === 'previous' || phase === 'index' || phase === 'journal') {
    return cut(`${name} ${PHASE_LABEL[phase]}  ${clock(v.elapsedMs)}`, width);
  }
  const secs = Math.max(v.scanMs / 1000, 0.001);
  const rate = `${compact(v.entries / secs)}/s ${formatBytes(v.bytesWritten / secs)}/s`;
  if (phase !== 'scan') {
    // built, publish, prune, and the last word: done or FAILED
    return cut(`${name} ${phase.padEnd(9)} ${compact(v.entries)} entries, ${formatBytes(v.bytesWritten)} written, ${rate}  ${clock(v.elapsedMs)}`, width);
  }
  const t = partTotal(v);
  if (!t) {
    const c = v.estimates.counter;
    const why = c && !c.done ? ` (counting: ${compact(c.count)})` : v.estimates.previous ? ` (last run: ${compact(v.estimates.previous)})` : '';
    return cut(
      `${name} link/copy ${compact(v.entries)} entries${why}  ${formatBytes(v.bytesWritten)}  ${compact(v.entries / secs)}/s  ${clock(v.elapsedMs)}`,
      width,
    );
  }
  // below 100 until the part is built: entries may still come (a run bigger than its estimate)
  const frac = Math.min(v.entries / t.total, 0.99);
  const pct = `${t.exact ? '' : '~'}${Math.floor(frac * 100)}%`.padStart(4);
  const perMs = v.entries / Math.max(v.scanMs, 1);
  const eta = v.entries > 0 && v.entries < t.total && v.scanMs >= 1000 ? `ETA ${clock((t.total - v.entries) / perMs)}` : clock(v.elapsedMs);
  const tail = ` ${pct}  ${compact(v.entries)}/${compact(t.total)}  ${formatBytes(v.bytesWritten)}  ${compact(v.entries / secs)}/s  ${eta}`;
  // a bar of a fixed width (it does not jump as the numbers grow): what the longest tail leaves
  const barWidth = Math.min(20, width - 70);
  const filled = Math.round(frac * barWidth);
  const bar = barWidth >= 4 ? `[${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}]` : '';
  return cut(`${name} link/copy ${bar}${tail}`, width);
}

interface PartState {
  part: string;
  phase: Phase;
  bar?: SingleBar;
  started: number;
  /** when link/copy began, and when the tree was built: the rates span that */
  scanStart?: number;
  ended?: number;
  stats?: BuildStats;
  estimates: Estimates;
  final?: 'done' | 'FAILED';
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
  private lastLine: number;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    readonly mode: ProgressMode,
    private readonly stream: ProgressSink = process.stderr,
    /** what is known of a part's size when it starts (its previous run, a count ahead, statfs) */
    private readonly estimates: (part: string) => Estimates = () => ({}),
    private readonly opts: { renderMs?: number; lineMs?: number } = {},
  ) {
    this.lastLine = Date.now();
  }

  get active(): boolean {
    return this.mode !== 'off';
  }

  private width(): number {
    return Math.max(20, Math.min(80, this.stream.columns || 80));
  }

  /** A phase of one part (prepare ... scan, built), or of the whole run (publish, prune: every part). */
  phase(phase: Phase, part?: string): void {
    const now = Date.now();
    if (part !== undefined) {
      let st = this.parts.get(part);
      if (!st) {
        st = { part, phase, started: now, estimates: this.estimates(part) };
        this.parts.set(part, st);
        if (this.mode === 'bars') this.addBar(st);
        if (this.mode === 'lines') this.startLines();
      }
      st.phase = phase;
      if (phase === 'scan' && st.scanStart === undefined) st.scanStart = now;
      if (phase === 'built') {
        st.ended = now;
        st.estimates.counter?.stop();
      }
      this.current = st;
    } else {
      for (const p of this.parts.values()) p.phase = phase;
    }
    this.multi?.update();
  }

  /** The part's live statistics (the core hands the object it updates, then updates it). */
  update(part: string, s: BuildStats): void {
    const st = this.parts.get(part) ?? this.current;
    if (!st) return;
    st.stats = s;
    if (this.mode === 'lines') this.maybeLine(st);
  }

  /** A line above the bars (warnings during a run), or straight to the stream. */
  log(line: string): boolean {
    if (this.mode !== 'bars' || !this.multi) return false;
    this.multi.log(line.endsWith('\n') ? line : line + '\n');
    this.multi.update();
    return true;
  }

  /** Final state of every line, then stop (leaves the lines on screen). */
  stop(failed = false): void {
    if (this.timer) (clearInterval(this.timer), (this.timer = null));
    for (const p of this.parts.values()) {
      p.estimates.counter?.stop();
      p.final = failed ? 'FAILED' : 'done';
      p.ended ??= Date.now();
    }
    if (!this.multi) return;
    this.multi.update();
    this.multi.stop();
    this.multi = null;
  }

  view(p: PartState): PartView {
    const now = Date.now();
    const end = p.ended ?? now;
    return {
      part: p.part,
      phase: p.final ?? p.phase,
      entries: p.stats?.entries ?? 0,
      bytesWritten: p.stats?.bytesWritten ?? 0,
      elapsedMs: end - p.started,
      scanMs: p.scanStart === undefined ? 0 : end - p.scanStart,
      estimates: p.estimates,
    };
  }

  private addBar(st: PartState): void {
    if (!this.multi) {
      // loaded with the first bar: a run without bars (cron) does not pay its ~15 ms
      const { MultiBar } = createRequire(import.meta.url)('cli-progress') as typeof import('cli-progress');
      this.multi = new MultiBar({
        stream: this.stream as NodeJS.WritableStream,
        // no terminal modes are touched (cursor, wrapping): a Ctrl-C during the synchronous
        // build kills the process at once, and must not leave the terminal damaged; each line
        // is made to fit the width (progressLine), so nothing wraps
        hideCursor: false,
        linewrap: true,
        clearOnComplete: false,
        fps: 1000 / (this.opts.renderMs ?? 100),
        // every redraw reads the part's live state: progress shows between the core's events
        format: (_o, _params, payload: { state: PartState }) => progressLine(this.view(payload.state), this.width()),
      });
    }
    st.bar = this.multi.create(1, 0, { state: st });
  }

  private startLines(): void {
    if (this.timer) return;
    // a line a minute even while one big directory keeps the core from sending events
    this.timer = setInterval(
      () => {
        if (this.current) this.maybeLine(this.current);
      },
      Math.min(this.opts.lineMs ?? 60_000, 1000),
    );
    this.timer.unref();
  }

  private maybeLine(st: PartState): void {
    const now = Date.now();
    if (now - this.lastLine < (this.opts.lineMs ?? 60_000)) return;
    this.lastLine = now;
    this.stream.write(`hardsnap: progress: ${this.describe(st)}\n`);
  }

  private describe(p: PartState): string {
    const v = this.view(p);
    if (!p.stats) return `${showPaths(p.part)}: ${PHASE_LABEL[p.phase]}`;
    const s = p.stats;
    const t = partTotal(v);
    const pct = t ? ` (${t.exact ? '' : '~'}${Math.min(99, Math.floor((100 * s.entries) / t.total))}% of ${t.total} ${t.exact ? 'counted' : 'expected'})` : '';
    const secs = Math.max(v.scanMs / 1000, 0.001);
    return (
      `${showPaths(p.part)}: ${s.entries} entries${pct}, ${s.linked} linked, ${s.copied} written (${formatBytes(s.bytesWritten)}), ` +
      `${compact(s.entries / secs)}/s ${formatBytes(s.bytesWritten / secs)}/s, ${Math.round(v.elapsedMs / 1000)} s elapsed`
    );
  }
}

/**
 * A stream that cli-progress treats as a terminal (for --progress when stderr is not one,
 * e.g. piped through `less -R`).
 */
export function forcedTty(target: NodeJS.WriteStream = process.stderr): ProgressSink {
  return { isTTY: true, columns: target.columns || 80, write: (s: string) => target.write(s) };
}
