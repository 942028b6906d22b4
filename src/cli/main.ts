/**
 * The command line: commander wiring only. Each command lives in src/cli/commands/ and calls
 * the core; this is the only place that exits the process.
 */
import { Command, CommanderError } from 'commander';
import { VERSION } from '../core/version.js';
import { loadConfig } from '../config/load.js';
import { createContext } from './context.js';
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

const COMMANDS = [backup, list, restore, diff, history, du, verify, prune, pin, init, status];

export async function runCli(argv: string[]): Promise<void> {
  // `hardsnap diff ... | head`: a reader that stops early is not an error worth a stack trace;
  // exit as a process killed by SIGPIPE would (128 + 13)
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(141);
    throw err;
  });
  const ctx = createContext(loadConfig);
  const program = new Command('hardsnap')
    .description('Dated, complete, hard-linked generations of directory trees in a backup spool.')
    .version(VERSION, '-V, --version')
    .showSuggestionAfterError(true)
    .exitOverride()
    // one line per error (cron mail, log greps): commander's "(Did you mean --x?)" joins it
    .configureOutput({ outputError: (s, write) => write(`hardsnap: ${s.trimEnd().replace(/\n+/g, ' ')}\n`) });
  for (const c of COMMANDS) c.register(program, ctx);
  for (const c of program.commands) c.exitOverride();
  // `status` follows the Nagios convention: a usage error there is 3 (UNKNOWN)
  if (argv[2] === 'status') ctx.usageExit = 3;
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      const ok = err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help';
      process.exitCode = ok ? 0 : ctx.usageExit;
      if (!ok && err.code === 'commander.unknownCommand') process.stderr.write("hardsnap: see 'hardsnap --help' for the commands\n");
      return;
    }
    throw err;
  }
  process.exitCode = ctx.exitCode;
}
