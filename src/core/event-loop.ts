/**
 * Signals (SIGTERM, SIGINT, SIGHUP) reach JavaScript only when the event loop polls: one that
 * arrives while synchronous work runs (syncfs, renames, deleting a generation) waits for it.
 * Two turns of the loop (setImmediate twice: a poll phase lies between them, whatever phase this
 * is called in) let such a signal be handled before a decision it must change: to publish, what
 * to record, the exit code.
 */
const immediate = () => new Promise<void>((resolve) => setImmediate(resolve));

export async function handlePendingSignals(): Promise<void> {
  await immediate();
  await immediate();
}
