/**
 * TEST-ONLY seam: with HARDSNAP_TEST_PAUSE_AT set to one of these points, the process says
 * `hardsnap: test pause at POINT` on stderr and sleeps there (HARDSNAP_TEST_PAUSE_MS, default a
 * minute; 0 only says it), so a test can SIGKILL it, or start a second run, at that exact moment
 * (or a measured delay after it). Never set it in production: it only ever delays a run.
 *   before-publish: every part built and flushed, nothing renamed yet
 *   before-last:    the generation renamed into place, `last` not moved yet
 *   mid-prune:      prune moved its first generation to the trash, nothing deleted yet
 *   after-scan:     the source directory HARDSNAP_TEST_PAUSE_DIR (relative to the part root;
 *                   unset: the root) was scanned, none of its entries handled yet
 * The pauses at before-publish and after-scan are asynchronous: signals are handled while they
 * last (the run stops, as on an interruption at that moment), and they end early once the file
 * HARDSNAP_TEST_PAUSE_RELEASE exists (so a test can change the source there, then let it go on).
 */
import fs from 'node:fs';

export type PausePoint = 'before-publish' | 'before-last' | 'mid-prune' | 'after-scan';

function pauseMs(): number {
  const ms = Number(process.env.HARDSNAP_TEST_PAUSE_MS ?? 60_000);
  return Number.isFinite(ms) ? ms : 60_000;
}

export function testPause(point: PausePoint): void {
  if (process.env.HARDSNAP_TEST_PAUSE_AT !== point) return;
  fs.writeSync(2, `hardsnap: test pause at ${point}\n`);
  const ms = pauseMs();
  if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Whether the asynchronous pause at `point` is armed (a cheap check for hot paths). */
export function pauseArmed(point: PausePoint): boolean {
  return process.env.HARDSNAP_TEST_PAUSE_AT === point;
}

/** The directory after-scan pauses in, as bytes relative to the part root ('' = the root). */
export function pauseDir(): Buffer {
  return Buffer.from(process.env.HARDSNAP_TEST_PAUSE_DIR ?? '');
}

/** testPause without blocking the event loop: it ends early on `signal` or the release file. */
export async function testPauseAsync(point: PausePoint, signal?: AbortSignal): Promise<void> {
  if (process.env.HARDSNAP_TEST_PAUSE_AT !== point) return;
  fs.writeSync(2, `hardsnap: test pause at ${point}\n`);
  const release = process.env.HARDSNAP_TEST_PAUSE_RELEASE;
  const end = Date.now() + pauseMs();
  while (Date.now() < end && !signal?.aborted && !(release && fs.existsSync(release))) {
    await new Promise((r) => setTimeout(r, Math.min(10, Math.max(1, end - Date.now()))));
  }
}
