/**
 * Options every command shares, and turning them (plus --config) into a spool and host.
 * They are taken before the command too (`hardsnap --config FILE backup`): the program defines
 * the same options, and before a command runs (`mergeGlobals`) a value given after the command
 * name wins over one given before it (docs/CLI.md).
 *
 * Every option value is arg text (src/paths/arg-text.ts): the bytes of the command line, with
 * those that are not UTF-8 as lone surrogates. Path arguments become exact paths here
 * (`pathArg`: the string itself when it is UTF-8, else an alias of src/fs/byte-path.ts).
 */
import { Command, Option } from 'commander';
import { UsageError } from '../core/errors.js';
import { primaryIPv4 } from '../spool/host-id.js';
import { validateHost, type Target } from '../spool/layout.js';
import type { Output, OutputOptions } from '../ui/output.js';
import { hasRawBytes, showArg, unescapeArg } from '../paths/arg-text.js';
import { displayPath } from '../paths/escape.js';
import { exactPath } from '../fs/byte-path.js';
import { requireSpool } from '../spool/marker.js';

export interface CommonOptions extends OutputOptions {
  spool?: string;
  host?: string;
  config?: string;
}

/** The shared options: [flags, description, hidden]. */
const COMMON: [string, string, boolean?][] = [
  ['--spool <dir>', 'the backup spool (the directory holding rsync/<host>/)'],
  ['--host <id>', 'host ID: the spool subdirectory of this host (default: its primary IPv4 address)'],
  ['--config <file>', 'YAML configuration file (command-line options override it)'],
  ['--json', 'machine-readable JSON on stdout (errors and messages: one JSON object a line on stderr)'],
  ['-v, --verbose', 'say more (also under cron)'],
  ['-q, --quiet', 'errors only'],
  ['--debug', 'show stack traces of errors', true],
];

/** The keys of the shared options, as commander names them. */
export const COMMON_KEYS = ['spool', 'host', 'config', 'json', 'verbose', 'quiet', 'debug'] as const;

export function addCommon(cmd: Command): Command {
  for (const [flags, desc, hidden] of COMMON) {
    const o = new Option(flags, desc);
    cmd.addOption(hidden ? o.hideHelp() : o);
  }
  return cmd;
}

/**
 * Before a command runs: the shared options given before the command name (the program's)
 * fill in those not given after it. --spool, --host, --config: the later one wins. -v and -q
 * are one choice: either given after the command replaces both before it. --json and --debug
 * cannot be turned off: given anywhere, they hold.
 */
export function mergeGlobals(program: Command, cmd: Command): void {
  const fromCli = (c: Command, k: string) => c.getOptionValueSource(k) === 'cli';
  const verbosityAfter = fromCli(cmd, 'verbose') || fromCli(cmd, 'quiet');
  for (const k of COMMON_KEYS) {
    if (!fromCli(program, k) || fromCli(cmd, k)) continue;
    if ((k === 'verbose' || k === 'quiet') && verbosityAfter) continue;
    cmd.setOptionValueWithSource(k, program.getOptionValue(k), 'cli');
  }
  // --spool as an exact path for every command (the string itself when it is UTF-8)
  const spool: unknown = cmd.getOptionValue('spool');
  if (typeof spool === 'string' && hasRawBytes(spool)) cmd.setOptionValueWithSource('spool', pathArg(spool), 'cli');
}

export type { Target };

/** The exact path of a path argument (arg text): itself when it is UTF-8, else its alias. */
export function pathArg(value: string): string {
  return hasRawBytes(value) ? exactPath(value) : value;
}

/** --spool, or the config's `spool:`, as an exact path; a usage error when neither is given. */
export function spoolOf(o: CommonOptions, fromConfig: { spool?: string } = {}): string {
  const spool = o.spool !== undefined ? pathArg(o.spool) : fromConfig.spool;
  if (!spool) throw new UsageError('no spool given', { hint: 'use --spool DIR or set spool: in --config' });
  return spool;
}

/** A host ID (--host): one path component, UTF-8 text. */
export function hostArg(value: string): string {
  if (hasRawBytes(value)) {
    throw new UsageError(`invalid host ID ${JSON.stringify(showArg(value))}: it must be UTF-8 text`, { hint: 'host IDs are names like 192.0.2.10 or web1' });
  }
  return validateHost(value);
}

export function resolveTarget(o: CommonOptions, fromConfig: { spool?: string; host?: string } = {}): Target {
  const spool = spoolOf(o, fromConfig);
  const host = hostArg(o.host ?? fromConfig.host ?? primaryIPv4());
  return { spool, host };
}

/**
 * A part name as given on the command line, in the one form hardsnap uses for it: SPEC's
 * escaped form of its bytes (`\xHH` for a byte that is not UTF-8). Both `$'caf\xe9'` (the raw
 * byte) and 'caf\xe9' (the escaped form list prints) name the part whose directory is
 * `caf<0xe9>`; a name that is plain UTF-8 without a backslash is unchanged.
 */
export function partNameArg(value: string): string {
  if (!hasRawBytes(value) && !value.includes('\\')) return value;
  try {
    return displayPath(unescapeArg(value));
  } catch (err) {
    throw new UsageError(`invalid part name: ${(err as Error).message}`, { hint: "write a byte that is not UTF-8 as \\xHH, as 'hardsnap list' shows it" });
  }
}

/** --part NAME=PATH: the name in its escaped form, the path exact. */
export function partSpecArg(arg: string): { name: string; source: string } {
  const i = arg.indexOf('=');
  if (i <= 0 || i === arg.length - 1) {
    throw new UsageError(`malformed --part ${JSON.stringify(showArg(arg))}: expected NAME=PATH`, { hint: 'for example --part mail=/var/spool/mail' });
  }
  return { name: partNameArg(arg.slice(0, i)), source: pathArg(arg.slice(i + 1)) };
}

/**
 * resolveTarget for a command that uses the spool: a missing or unmarked spool (an unmounted
 * file system) is refused with the same error by every command (exit 2). `mark`: the command
 * writes to the spool, and marks one an earlier version made.
 */
export function spoolTarget(o: CommonOptions, fromConfig: { spool?: string; host?: string }, out: Output, mark = false): Target {
  const t = resolveTarget(o, fromConfig);
  requireSpool(t.spool, { mark, onNote: (m) => out.warn(m) });
  return t;
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
