/**
 * What bin/hardsnap loads first: which part of the program a command line needs. `watch` runs
 * for days and loads only its own command (watch-main.ts); every other command the whole
 * command line (main.ts). Both are files of dist/bundle beside this one (rolldown.config.mjs).
 */
import { commandOf } from './command-of.js';

export function entryOf(nodeArgv: string[]): 'hardsnap-watch.js' | 'hardsnap-cli.js' {
  return commandOf(nodeArgv.slice(2)) === 'watch' ? 'hardsnap-watch.js' : 'hardsnap-cli.js';
}
