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
 *   restore-target: restore checked that its target is not in the spool, not opened it yet
 *   backup-ended:   the backup command's run (and --prune, the metrics file) is over and recorded,
 *                   its summary not printed yet
 *   after-scan:     the source directory HARDSNAP_TEST_PAUSE_DIR (relative to the part root;
 *                   unset: the root; several: one per line, an empty line for the root) was
 *                   scanned, none of its entries handled yet
 * The pauses at before-publish and after-scan are asynchronous (testPauseAsync): signals are
 * handled while they last (the run stops, as on an interruption at that moment), and one ended
 * by HARDSNAP_TEST_PAUSE_UNTIL removes FILE, so that a later pause waits for it again.
 */
import { fs } from './disk.js';
import { removeName } from './remove-tree.js';

export type PausePoint = 'before-publish' | 'before-last' | 'before-latest' | 'mid-prune' | 'mid-read' | 'after-scan' | 'restore-target' | 'backup-ended';

function pauseMs(): number {
  const ms = Number(process.env.HARDSNAP_TEST_PAUSE_MS ?? 60_000);
  return Number.isFinite(ms) ? ms : 60_000;
}

export function testPause(point: PausePoint): void {
  if (process.env.HARDSNAP_TEST_PAUSE_AT !== point) return;
  fs.writeSync(2, `hardsnap: test pause at ${point}\n`);
  const limit = pauseMs();
  const sleep = (t: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, t);
  // HARDSNAP_TEST_PAUSE_UNTIL=FILE: the pause ends as soon as FILE exists (at most the time above)
  const until = process.env.HARDSNAP_TEST_PAUSE_UNTIL;
  if (until) {
    for (const end = Date.now() + limit; Date.now() < end && !fs.existsSync(until);) sleep(20);
  } else if (limit > 0) {
    sleep(limit);
  }
}

/** Whether the pause at `point` is armed (a cheap check for hot paths). */
export function pauseArmed(point: PausePoint): boolean {
  return process.env.HARDSNAP_TEST_PAUSE_AT === point;
}

/** The directories after-scan pauses in, as bytes relative to the part root ('' = the root). */
export function pauseDirs(): Buffer[] {
  return (process.env.HARDSNAP_TEST_PAUSE_DIR ?? '').split('\n').map((d) => Buffer.from(d));
}

/** testPause without blocking the event loop: it also ends early when `signal` is aborted. */
export async function testPauseAsync(point: PausePoint, signal?: AbortSignal): Promise<void> {
  if (process.env.HARDSNAP_TEST_PAUSE_AT !== point) return;
  fs.writeSync(2, `hardsnap: test pause at ${point}\n`);
  const until = process.env.HARDSNAP_TEST_PAUSE_UNTIL;
  const end = Date.now() + pauseMs();
  while (Date.now() < end && !signal?.aborted && !(until && fs.existsSync(until))) {
    await new Promise((r) => setTimeout(r, Math.min(10, Math.max(1, end - Date.now()))));
  }
  if (until) removeName(until);
}
