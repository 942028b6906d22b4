import type { Command } from 'commander';
import { UsageError } from '../../core/errors.js';
import { hostDir, listGenerations, listParts, partDir, requireHostDir } from '../../spool/layout.js';
import { readPins } from '../../retention/pins.js';
import { addCommon, partNameArg, type CommonOptions, spoolTarget } from '../common.js';
import { holderBuilds, liveLockHolder } from '../../spool/lock.js';
import { lastRunOf, partialLeftBy, readRuns } from '../../spool/runs-log.js';
import path from 'node:path';
import type { Output } from '../../ui/output.js';
import type { Generation } from '../../spool/names.js';
import type { CliContext } from '../context.js';

interface ListOptions extends CommonOptions {
  part?: string;
}

export function register(program: Command, ctx: CliContext): void {
  addCommon(
    program
      .command('list')
      .description(
        'list the generations of a host, newest last; partial ones are marked: being written by the run in progress, or left by an interrupted or failed run',
      )
      .option('--part <name>', 'only this part')
      .addHelpText(
        'after',
        `
Examples:
  hardsnap list --spool /var/backups/hs --host web1
  hardsnap list --spool /var/backups/hs --host web1 --part mail --json`,
      ),
  ).action(async (o: ListOptions) => ctx.run(o, (out) => list(o, ctx, out)));
}

async function list(o: ListOptions, ctx: CliContext, out: Output): Promise<number> {
  const cfg = ctx.config(o);
  const { spool, host } = spoolTarget(o, cfg, out);
  requireHostDir(spool, host);
  const part = o.part !== undefined ? partNameArg(o.part) : undefined;
  const all = listParts(spool, host);
  const parts = part !== undefined ? [part] : all;
  if (part !== undefined && !all.includes(part)) throw new UsageError(`no part '${part}' for host '${host}' in ${spool}`);
  // a host directory with no part (a first run that failed, or parts whose .hardsnap was deleted)
  if (!all.length) throw new UsageError(`no backups of host '${host}' in ${spool}`, { hint: 'no part has a .hardsnap directory there' });
  const pins = new Map(parts.map((p) => [p, readPins(partDir(spool, host, p))]));
  // a partial is the live lock holder's work in progress, or what an interrupted run left
  // or a failed one (a refused source): a run that leaves one records its name
  const holder = liveLockHolder(hostDir(spool, host));
  const runs = readRuns(hostDir(spool, host));
  const state = (g: Generation) => {
    if (g.complete) return 'complete';
    if (holderBuilds(holder, g.part)) return 'in-progress';
    return partialLeftBy(lastRunOf(runs, g.part), g.part, path.basename(g.path))?.status === 'failed' ? 'failed' : 'interrupted';
  };
  const rows = parts.flatMap((p) => listGenerations(spool, host, p)).map((g) => ({ ...g, pinned: pins.get(g.part)!.has(g.name), state: state(g) }));
  if (o.json) {
    out.json(
      rows.map((g) => ({ part: g.part, name: g.name, path: g.path, time: g.time.toISOString(), complete: g.complete, state: g.state, pinned: g.pinned })),
    );
    return 0;
  }
  const w = Math.max(4, ...rows.map((r) => r.part.length));
  const partial = (g: (typeof rows)[number]) =>
    g.state === 'in-progress'
      ? `  (partial: being written by the run in progress, pid ${holder!.pid} since ${holder!.started})`
      : g.state === 'failed'
        ? `  (partial: left by the last run, which failed (exit ${lastRunOf(runs, g.part)!.exit}); resumed by the next run)`
        : '  (partial: interrupted, resumed by the next run)';
  for (const g of rows) out.print(`${g.part.padEnd(w)}  ${g.name}${g.pinned ? '  (pinned)' : ''}${g.complete ? '' : partial(g)}`);
  return 0;
}
