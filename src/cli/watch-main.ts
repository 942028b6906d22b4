/**
 * `hardsnap watch` alone: the program with only the watch command, so that the long-running
 * watcher does not hold the code of every other command (3 MB of its memory:
 * docs/PERFORMANCE.md#watch-mode). bin/hardsnap loads it when the command is `watch`
 * (src/cli/entry.ts); the backups it starts are `hardsnap backup` processes.
 */
import { runProgram } from './program.js';
import * as watch from './commands/watch.js';

export async function runCli(nodeArgv: string[]): Promise<void> {
  await runProgram(nodeArgv, [watch]);
}
