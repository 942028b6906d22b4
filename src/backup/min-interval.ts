/**
 * `--min-interval`: a run is skipped when every part's newest complete generation is younger
 * than the interval (BlueMind keeps at least a day between backups while cron may call hourly).
 * One part without a recent generation (a new part, or one whose runs failed) is enough to run.
 */
import { formatDuration } from '../time/duration.js';
import { newestComplete } from '../spool/layout.js';
import { FUTURE_TOLERANCE_MS } from '../time/now.js';

/** Why the run can be skipped, or null when it must run. */
export function skipReason(spool: string, host: string, parts: string[], now: Date, minIntervalMs: number): string | null {
  if (!(minIntervalMs > 0) || parts.length === 0) return null;
  const ages: string[] = [];
  for (const p of parts) {
    const g = newestComplete(spool, host, p);
    if (!g) return null;
    const age = now.getTime() - g.time.getTime();
    // a generation dated after now (a clock gone back): not "recent"; the run goes on and is refused, loudly
    if (age >= minIntervalMs || age < -FUTURE_TOLERANCE_MS) return null;
    ages.push(`${p} ${g.name} (${formatDuration(age)} old)`);
  }
  return `every part has a generation younger than --min-interval ${formatDuration(minIntervalMs)}: ${ages.join(', ')}; nothing to do`;
}
