import type { Command } from 'commander';
import { UsageError } from '../../core/errors.js';
import { hostDir, listGenerations, listParts, partDir, requireHostDir } from '../../spool/layout.js';
import { readPins } from '../../retention/pins.js';
import { addCommon, partNameArg, type CommonOptions, spoolTarget } from '../common.js';
import { holderBuilds, liveLockHolder } from '../../spool/lock.js';
import type { Output } from '../../ui/output.js';
import type { CliContext } from '../context.js';

interface ListOptions extends CommonOptions {
  part?: string;
}

export function register(program: Command, ctx: CliContext): void {
  addCommon(
    program
      .command('list')
      .description('list the generations of a host, newest last; partial ones are marked: being written by the run in progress, or left by an interrupted run')
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
  const parts = part !== undefined ? [part] : listParts(spool, host);
  if (part !== undefined && !listParts(spool, host).includes(part)) throw new UsageError(`no part '${part}' for host '${host}' in ${spool}`);
  const pins = new Map(parts.map((p) => [p, readPins(partDir(spool, host, p))]));
  // a partial is the live lock holder's work in progress, or what an interrupted run left
  const holder = liveLockHolder(hostDir(spool, host));
  const rows = parts
    .flatMap((p) => listGenerations(spool, host, p))
    .map((g) => ({
      ...g,
      pinned: pins.get(g.part)!.has(g.name),
      state: g.complete ? 'complete' : holderBuilds(holder, g.part) ? 'in-progress' : 'interrupted',
    }));
  if (o.json) {
    out.json(
      rows.map((g) => ({ part: g.part, name: g.name, path: g.path, time: g.time.toISOString(), complete: g.complete, state: g.state, pinned: g.pinned })),
    );
    return 0;
  }
  const w = Math.max(4, ...rows.map((r) => r.part.length));
  const partial = (state: string) =>
    state === 'in-progress'
      ? `  (partial: being written by the run in progress, pid ${holder!.pid} since ${holder!.started})`
      : '  (partial: interrupted, resumed by the next run)';
  for (const g of rows) out.print(`${g.part.padEnd(w)}  ${g.name}${g.pinned ? '  (pinned)' : ''}${g.complete ? '' : partial(g.state)}`);
  return 0;
}
