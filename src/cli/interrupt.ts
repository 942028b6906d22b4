/**
 * SIGINT, SIGTERM and SIGHUP while a command runs: the first aborts the AbortSignal the core
 * was given (with an InterruptedError naming the signal), so the run stops cleanly: jobs in
 * flight finish, descriptors are closed, the lock is released, the run log records it, and
 * the command ends with one line and exit 128 + the signal's number. A second signal means
 * "now": one line, and the process exits at once (the lock it leaves is taken over by the next
 * run, as after a SIGKILL).
 */
import { INTERRUPT_EXIT, InterruptedError, type InterruptSignal } from '../core/errors.js';

const SIGNALS = Object.keys(INTERRUPT_EXIT) as InterruptSignal[];

export interface Interrupts {
  readonly signal: AbortSignal;
  /** the first signal received, or null */
  readonly received: InterruptSignal | null;
  /**
   * The run is over (recorded, its lock released): a signal from now on stops nothing. It is
   * said in one line and the command ends as the run did (the default action would have killed
   * it: exit 143 with no line, while every record said the run succeeded).
   */
  dispose(): void;
}

export function catchInterrupts(): Interrupts {
  const ac = new AbortController();
  let received: InterruptSignal | null = null;
  const on = (sig: NodeJS.Signals) => {
    const s = sig as InterruptSignal;
    if (received) {
      process.stderr.write(`hardsnap: error: interrupted again by ${s}: exiting at once (the next run takes over the lock and resumes)\n`);
      process.exit(INTERRUPT_EXIT[s]);
    }
    received = s;
    ac.abort(new InterruptedError(s));
  };
  for (const s of SIGNALS) process.on(s, on);
  return {
    signal: ac.signal,
    get received() {
      return received;
    },
    dispose() {
      let said = false;
      const late = (sig: NodeJS.Signals) => {
        if (said) return;
        said = true;
        process.stderr.write(`hardsnap: note: ${sig} arrived after the run had ended: nothing was stopped\n`);
      };
      for (const s of SIGNALS) {
        process.removeListener(s, on);
        process.on(s, late);
      }
    },
  };
}
