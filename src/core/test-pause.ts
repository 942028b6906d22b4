/**
 * TEST-ONLY seam: with HARDSNAP_TEST_PAUSE_AT set to one of these points, the process says
 * `hardsnap: test pause at POINT` on stderr and sleeps there (HARDSNAP_TEST_PAUSE_MS, default a
 * minute; 0 only says it), so a test can SIGKILL it, or start a second run, at that exact moment
 * (or a measured delay after it); with HARDSNAP_TEST_PAUSE_UNTIL=FILE the pause ends as soon as
 * FILE exists. Never set it in production: it only ever delays a run.
 *   before-publish: every part built and flushed, nothing renamed yet
 *   before-last:    the generation renamed into place, `last` not moved yet
 *   before-latest:  `last` moved, `LATEST` not written yet
 *   mid-prune:      prune moved its first generation to the trash, nothing deleted yet
 *   mid-read:       verify or restore holds its lease and has read the generation's root
 *                   directory, not the directories below it
 */
import fs from 'node:fs';

export type PausePoint = 'before-publish' | 'before-last' | 'before-latest' | 'mid-prune' | 'mid-read';

export function testPause(point: PausePoint): void {
  if (process.env.HARDSNAP_TEST_PAUSE_AT !== point) return;
  fs.writeSync(2, `hardsnap: test pause at ${point}\n`);
  const ms = Number(process.env.HARDSNAP_TEST_PAUSE_MS ?? 60_000);
  const limit = Number.isFinite(ms) ? ms : 60_000;
  const sleep = (t: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, t);
  // HARDSNAP_TEST_PAUSE_UNTIL=FILE: the pause ends as soon as FILE exists (at most the time above)
  const until = process.env.HARDSNAP_TEST_PAUSE_UNTIL;
  if (until) {
    for (const end = Date.now() + limit; Date.now() < end && !fs.existsSync(until);) sleep(20);
  } else if (limit > 0) {
    sleep(limit);
  }
}
