/**
 * The command line: commander wiring only. Each command lives in src/cli/commands/ and calls
 * the core; this is the only place that exits the process.
 */
import { Command, CommanderError } from 'commander';
import { VERSION } from '../core/version.js';
import { loadConfig } from '../config/load.js';
import { Output } from '../ui/output.js';
import { createContext, reportError } from './context.js';
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

const COMMANDS = [backup, list, restore, diff, history, du, verify, prune, pin, lease, init, status, check, watch];

const EPILOG = `
Exit codes (every command; 'status' follows Nagios instead: 0 OK, 1 WARNING, 2 CRITICAL,
3 UNKNOWN):
  0   success (backup: generation published, or nothing to do)
  1   bad usage, configuration or input; nothing written
  2   failed (backup: nothing published, 'last' untouched)
  3   another run holds the lock
  23  some entries could not be transferred (listed on stderr); a backup is published anyway,
      and a copy back out of the spool copies all the rest
  24  backup: published; some source files vanished during the run

Output: on a terminal, progress bars and a summary line; not on a terminal (cron), nothing on
success unless --verbose; warnings and errors on stderr, one line each, with a hint; --json for
machine-readable output on stdout; --debug adds stack traces.

Run 'hardsnap help COMMAND' (or 'hardsnap COMMAND --help') for a command's options and
examples. Documentation: docs/CLI.md in the package.

Examples:
  hardsnap check --spool /var/backups/hs
  hardsnap backup --spool /var/backups/hs --part etc=/etc --part home=/home
  hardsnap list --spool /var/backups/hs`;

/**
 * A reader that went away is not an error worth a stack trace: `hardsnap diff ... | head` exits
 * as a process killed by SIGPIPE would (128 + 13); a closed stderr is ignored.
 */
function tolerateClosedPipes(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(141);
    throw err;
  });
  process.stderr.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
}

export async function runCli(argv: string[]): Promise<void> {
  tolerateClosedPipes();
  const debug = argv.includes('--debug');
  try {
    await parse(argv);
  } catch (err) {
    // anything that escaped a command (a bug, or an error from commander itself): one line,
    // the stack only under --debug
    process.exitCode = reportError(err, new Output({ debug }), debug);
  }
}

/** Where to look after a usage error: the command's help, or the list of commands. */
function usageHint(argv: string[]): string {
  const sub = COMMANDS_NAMES.has(argv[2] ?? '') ? argv[2] : null;
  return sub ? ` (see 'hardsnap help ${sub}')` : " (see 'hardsnap --help' for the commands)";
}

const COMMANDS_NAMES = new Set<string>();

async function parse(argv: string[]): Promise<void> {
  const ctx = createContext(loadConfig);
  const program = new Command('hardsnap')
    .description('Dated, complete, hard-linked generations of directory trees in a backup spool: ' +
      'rsync --link-dest and rsnapshot done natively. Unchanged files are hard links to the ' +
      'previous generation; every generation is a complete, browsable copy.')
    .version(VERSION, '-V, --version', 'print the version and exit')
    .helpCommand('help [command]', 'show the help of a command')
    .showSuggestionAfterError(true)
    .exitOverride()
    .addHelpText('after', EPILOG)
    // one line per error (cron mail, log greps): commander's "(Did you mean --x?)" and the
    // hint where to look join it
    .configureOutput({ outputError: (s, write) => write(`hardsnap: ${s.trimEnd().replace(/\n+/g, ' ')}${usageHint(argv)}\n`) });
  for (const c of COMMANDS) c.register(program, ctx);
  for (const c of program.commands) {
    c.exitOverride();
    COMMANDS_NAMES.add(c.name());
  }
  // `status` follows the Nagios convention: a usage error there is 3 (UNKNOWN)
  if (argv[2] === 'status') ctx.usageExit = 3;
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) {
        process.exitCode = 0;
        return;
      }
      process.exitCode = ctx.usageExit;
      return;
    }
    throw err;
  }
  process.exitCode = ctx.exitCode;
}
