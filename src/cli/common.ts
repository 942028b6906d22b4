/** Options every command shares, and turning them (plus --config) into a spool and host. */
import { Command, Option } from 'commander';
import { UsageError } from '../core/errors.js';
import { primaryIPv4 } from '../spool/host-id.js';
import { validateHost } from '../spool/layout.js';
import { requireSpool } from '../spool/marker.js';
import type { Output, OutputOptions } from '../ui/output.js';

export interface CommonOptions extends OutputOptions {
  spool?: string;
  host?: string;
  config?: string;
}

export function addCommon(cmd: Command): Command {
  return cmd
    .option('--spool <dir>', 'the backup spool (the directory holding rsync/<host>/)')
    .option('--host <id>', 'host ID: the spool subdirectory of this host (default: its primary IPv4 address)')
    .option('--config <file>', 'YAML configuration file (command-line options override it)')
    .option('--json', 'machine-readable JSON on stdout')
    .option('-v, --verbose', 'say more (also under cron)')
    .option('-q, --quiet', 'errors only')
    .addOption(new Option('--debug', 'show stack traces of errors').hideHelp());
}

export interface Target {
  spool: string;
  host: string;
}

export function resolveTarget(o: CommonOptions, fromConfig: { spool?: string; host?: string } = {}): Target {
  const spool = o.spool ?? fromConfig.spool;
  if (!spool) throw new UsageError('no spool given', { hint: 'use --spool DIR or set spool: in --config' });
  const host = validateHost(o.host ?? fromConfig.host ?? primaryIPv4());
  return { spool, host };
}

/**
 * resolveTarget for a command that uses the spool: a missing or unmarked spool (an unmounted
 * file system) is refused with the same error by every command (exit 2). `mark`: the command
 * writes to the spool, and marks one an earlier version made.
 */
export function spoolTarget(o: CommonOptions, fromConfig: { spool?: string; host?: string }, out: Output, mark = false): Target {
  const t = resolveTarget(o, fromConfig);
  requireSpool(t.spool, { mark, onNote: (m) => out.note(m) });
  return t;
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
