/**
 * The whole command line: every command (src/cli/program.ts runs it). bin/hardsnap loads it for
 * every command but `watch` (src/cli/entry.ts).
 */
import type { Command } from 'commander';
import { VERSION } from '../core/version.js';
import { loadConfig } from '../config/load.js';
import { createContext, type CliContext } from './context.js';
import { describeProgram, type ProgramModel } from './describe.js';
import { buildProgram as build, runProgram } from './program.js';
import * as backup from './commands/backup.js';
import * as list from './commands/list.js';
import * as restore from './commands/restore.js';
import * as diff from './commands/diff.js';
import * as history from './commands/history.js';
import * as du from './commands/du.js';
import * as verify from './commands/verify.js';
import * as prune from './commands/prune.js';
import * as pin from './commands/pin.js';
import * as init from './commands/init.js';
import * as status from './commands/status.js';
import * as check from './commands/check.js';
import * as watch from './commands/watch.js';
import * as lease from './commands/lease.js';
import * as completion from './commands/completion.js';

const COMMANDS = [backup, list, restore, diff, history, du, verify, prune, pin, lease, init, status, check, watch, completion];

export async function runCli(nodeArgv: string[]): Promise<void> {
  await runProgram(nodeArgv, COMMANDS);
}

/**
 * The whole command line as commander definitions: the commands, their options and help.
 * The man page and the shell completions are generated from it (scripts/gen-man.mjs,
 * `hardsnap completion`), so they cannot drift from what the parser accepts.
 */
export function buildProgram(ctx: CliContext, args: string[] = []): Command {
  return build(ctx, COMMANDS, args);
}

/** The command line as plain data (the man page and `hardsnap completion` are made from it). */
export function cliModel(): ProgramModel {
  return describeProgram(buildProgram(createContext(loadConfig)), VERSION);
}
