/**
 * TEST-ONLY seam: with HARDSNAP_TEST_PAUSE_AT set to one of these points, the process says
 * `hardsnap: test pause at POINT` on stderr and sleeps there (HARDSNAP_TEST_PAUSE_MS, default a
 * minute; 0 only says it), so a test can SIGKILL it, or start a second run, at that exact moment
 * (or a measured delay after it). Never set it in production: it only ever delays a run.
 *   before-publish: every part built and flushed, nothing renamed yet
 *   before-last:    the generation renamed into place, `last` not moved yet
 *   mid-prune:      prune moved its first generation to the trash, nothing deleted yet
 */
import fs from 'node:fs';

export type PausePoint = 'before-publish' | 'before-last' | 'mid-prune';

export function testPause(point: PausePoint): void {
  if (process.env.HARDSNAP_TEST_PAUSE_AT !== point) return;
  fs.writeSync(2, `hardsnap: test pause at ${point}\n`);
  const ms = Number(process.env.HARDSNAP_TEST_PAUSE_MS ?? 60_000);
  if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number.isFinite(ms) ? ms : 60_000);
}
