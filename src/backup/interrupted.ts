/**
 * A run asked to stop (SIGINT, SIGTERM, SIGHUP, caught by the CLI and passed in as an aborted
 * AbortSignal): what it says and what the run log keeps of it. Nothing is published; the
 * `.partial` generation of each part it had begun stays, and the next run resumes it.
 */
import { InterruptedError, type InterruptSignal } from '../core/errors.js';
import type { BuildStats } from '../apply/types.js';

/** A part whose build began: its live counts and its partial directory. */
export interface StartedPart {
  stats: BuildStats;
  partial: string;
  resumed: boolean;
  /** its tree was complete (the run stopped later) */
  built: boolean;
}

function signalOf(reason: unknown): InterruptSignal {
  return reason instanceof InterruptedError ? reason.signal : 'SIGTERM';
}

/** The error a stopped run ends with: one line saying when it stopped and what is left. */
export function interruption(reason: unknown, phase: string, started: Map<string, StartedPart>): InterruptedError {
  const sig = signalOf(reason);
  const left = [...started].map(([part, s]) => `${part}/${s.partial}`);
  const done = [...started].reduce((n, [, s]) => n + s.stats.entries, 0);
  const what = started.size ? ` (${done} entries done)` : '';
  const next = left.length ? `; the next run resumes ${left.join(', ')}` : '';
  return new InterruptedError(sig, `interrupted by ${sig} ${phase}${what}: nothing published, 'last' untouched${next}`);
}

/** The run log's parts of a stopped run: what each part had done, and where it stopped. */
export function interruptedParts(started: Map<string, StartedPart>): Record<string, Record<string, unknown>> {
  return Object.fromEntries([...started].map(([part, s]) => [part, { ...s.stats, partial: s.partial, resumed: s.resumed, built: s.built }]));
}
