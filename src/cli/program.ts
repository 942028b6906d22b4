/**
 * The command line's program: commander wiring only, for a given set of commands (main.ts: all
 * of them; watch-main.ts: the long-running watcher's one, so that it does not load the rest).
 * Each command lives in src/cli/commands/ and calls the core; this is the only place that exits
 * the process.
 */
import { limitPoolToHeadroom } from '../fs/thread-pool.js';
import { Command, CommanderError } from 'commander';
import { VERSION } from '../core/version.js';
import { loadConfig } from '../config/load.js';
import { Output } from '../ui/output.js';
import { createContext, reportError, type CliContext } from './context.js';
import { addCommon, mergeGlobals } from './common.js';
import { byteArgv, setUserArgs } from './argv.js';
import { describeProgram } from './describe.js';
import { JSON_FORMAT } from '../ui/output.js';
import { showPaths } from '../paths/aliases.js';
import { commandOf } from './command-of.js';

/** A module of src/cli/commands/: it adds its command to the program. */
export interface CommandModule {
  register(program: Command, ctx: CliContext): void;
}

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

The options above are taken before the command as well as after it ('hardsnap --config FILE
backup'); given in both places, the one after the command wins. Run 'hardsnap help COMMAND'
(or 'hardsnap COMMAND --help') for a command's options and examples. Documentation: 'man
hardsnap', docs/CLI.md in the package.

Examples:
  hardsnap check --spool /var/backups/hs
  hardsnap --config /etc/hardsnap.yaml backup
  hardsnap backup --spool /var/backups/hs --part etc=/etc --part home=/home
  hardsnap --spool /var/backups/hs --host web1 list --json`;

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

/** Runs the command line `nodeArgv` (process.argv) with these commands. */
export async function runProgram(nodeArgv: string[], commands: readonly CommandModule[]): Promise<void> {
  tolerateClosedPipes();
  // before anything runs on libuv's pool: a pool the process limit has no room for aborts
  limitPoolToHeadroom();
  // the arguments' bytes (Node's own argv has U+FFFD for every byte that is not UTF-8)
  const { argv } = byteArgv(nodeArgv);
  setUserArgs(argv.slice(2));
  const debug = argv.includes('--debug');
  try {
    await parse(argv, commands);
  } catch (err) {
    // anything that escaped a command (a bug, or an error from commander itself): one line,
    // the stack only under --debug
    process.exitCode = reportError(err, new Output({ debug, json: jsonWanted(argv.slice(2)) }), debug);
  }
}

const HELP_OR_VERSION = new Set(['-h', '--help', '-V', '--version']);

/** A usage error under --json: one JSON object, one line (as every error under --json). */
function usageErrorJson(message: string, hint: string, exit: number): string {
  return JSON.stringify({ format: JSON_FORMAT, level: 'error', code: 'EUSAGE', message, hint, exit }) + '\n';
}

/** Whether --json is on the command line (before a `--`): usage errors are JSON then too. */
function jsonWanted(args: string[]): boolean {
  const end = args.indexOf('--');
  return (end < 0 ? args : args.slice(0, end)).includes('--json');
}

/** Where to look after a usage error: the command's help, or the list of commands. */
function usageHint(args: string[], names: Set<string>): string {
  const sub = commandOf(args);
  return sub !== null && names.has(sub) ? `see 'hardsnap help ${sub}'` : "see 'hardsnap --help' for the commands";
}

const PROGRAM_DESCRIPTION =
  'Dated, complete, hard-linked generations of directory trees in a backup spool: ' +
  'rsync --link-dest and rsnapshot done natively. Unchanged files are hard links to the ' +
  'previous generation; every generation is a complete, browsable copy.';

/**
 * The whole command line as commander definitions: the commands, their options and help.
 * The man page and the shell completions are generated from it (scripts/gen-man.mjs,
 * `hardsnap completion`), so they cannot drift from what the parser accepts.
 */
export function buildProgram(ctx: CliContext, commands: readonly CommandModule[], args: string[] = []): Command {
  const names = new Set<string>();
  const program = new Command('hardsnap')
    .description(PROGRAM_DESCRIPTION)
    .version(VERSION, '-V, --version', 'print the version and exit')
    .helpCommand('help [command]', 'show the help of a command')
    .showSuggestionAfterError(true)
    // the shared options are the program's too, taken before the command; after the command
    // name they are the command's own (and win: mergeGlobals)
    .enablePositionalOptions()
    .exitOverride()
    .addHelpText('after', EPILOG)
    // one line per error (cron mail, log greps): commander's "(Did you mean --x?)" and the
    // hint where to look join it; one JSON object under --json
    .configureOutput({
      outputError: (s, write) => {
        const message = showPaths(
          s
            .trimEnd()
            .replace(/\n+/g, ' ')
            .replace(/^error: /, ''),
        );
        const hint = usageHint(args, names);
        write(jsonWanted(args) ? usageErrorJson(message, hint, ctx.usageExit) : `hardsnap: error: ${message} (${hint})\n`);
      },
    });
  addCommon(program);
  for (const c of commands) c.register(program, ctx);
  for (const c of program.commands) {
    c.exitOverride();
    names.add(c.name());
  }
  program.hook('preAction', (_program, cmd) => mergeGlobals(program, cmd));
  return program;
}

async function parse(argv: string[], commands: readonly CommandModule[]): Promise<void> {
  const ctx = createContext(loadConfig);
  const args = argv.slice(2);
  // `status` follows the Nagios convention: a usage error there is 3 (UNKNOWN)
  if (commandOf(args) === 'status') ctx.usageExit = 3;
  const program = buildProgram(ctx, commands, args);
  // --version and help under --json: JSON too (the version; the command definitions, as
  // `completion --json` prints them, narrowed to the command asked about)
  if (jsonWanted(args)) {
    const sub = commandOf(args);
    if (sub === null && args.some((a) => a === '-V' || a === '--version')) {
      process.stdout.write(JSON.stringify({ format: JSON_FORMAT, version: VERSION }) + '\n');
      return;
    }
    const helpOf =
      sub === 'help'
        ? (args.slice(args.indexOf('help') + 1).find((a) => !a.startsWith('-')) ?? null)
        : args.some((a) => a === '-h' || a === '--help')
          ? sub
          : undefined;
    if (helpOf !== undefined) {
      const model = describeProgram(program, VERSION);
      const commands = helpOf === null ? model.commands : model.commands.filter((c) => c.name === helpOf);
      if (helpOf !== null && !commands.length) {
        process.stderr.write(usageErrorJson(`unknown command '${helpOf}'`, "see 'hardsnap --help' for the commands", ctx.usageExit));
        process.exitCode = ctx.usageExit;
        return;
      }
      process.stdout.write(JSON.stringify({ format: JSON_FORMAT, ...model, commands }, null, 2) + '\n');
      return;
    }
  }
  // no command: commander prints the help on stderr; under --json a script reads one JSON line
  if (commandOf(args) === null && jsonWanted(args) && !args.some((a) => HELP_OR_VERSION.has(a))) {
    const hint = "see 'hardsnap --help' for the commands";
    process.stderr.write(usageErrorJson('no command given', hint, ctx.usageExit));
    process.exitCode = ctx.usageExit;
    return;
  }
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
