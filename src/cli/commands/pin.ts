import type { Command } from 'commander';
import { UsageError } from '../../core/errors.js';
import { listGenerations, listParts, partDir } from '../../spool/layout.js';
import { setPinned } from '../../retention/pins.js';
import type { Output } from '../../ui/output.js';
import { addCommon, partNameArg, type CommonOptions, spoolTarget } from '../common.js';
import type { CliContext } from '../context.js';

interface PinOptions extends CommonOptions {
  part?: string;
}

export function register(program: Command, ctx: CliContext): void {
  for (const pinned of [true, false]) {
    const name = pinned ? 'pin' : 'unpin';
    addCommon(
      program
        .command(`${name} <generation>`)
        .description(
          pinned
            ? 'keep a generation whatever the retention rules say (prune never removes it)'
            : 'let the retention rules decide about a pinned generation again',
        )
        .requiredOption('--part <name>', 'the part of the generation')
        .addHelpText(
          'after',
          `
Pins live in <part>/.hardsnap/pins, one generation name a line.

Examples:
  hardsnap ${name} --spool /var/backups/hs --host web1 --part mail/imap 2026-11-20T030000Z
  hardsnap list --spool /var/backups/hs --host web1 --part mail/imap   # pinned ones are marked`,
        ),
    ).action(async (generation: string, o: PinOptions) => ctx.run(o, (out) => pin(generation, o, pinned, ctx, out)));
  }
}

async function pin(generation: string, o: PinOptions, pinned: boolean, ctx: CliContext, out: Output): Promise<number> {
  const cfg = ctx.config(o);
  const { spool, host } = spoolTarget(o, cfg, out, true);
  const part = partNameArg(o.part!);
  if (!listParts(spool, host).includes(part)) throw new UsageError(`no part '${part}' for host '${host}' in ${spool}`, { hint: "see 'hardsnap list'" });
  const pdir = partDir(spool, host, part);
  if (pinned) {
    const g = listGenerations(spool, host, part).find((x) => x.name === generation);
    if (!g) throw new UsageError(`no generation ${JSON.stringify(generation)} in part '${part}'`, { hint: "see 'hardsnap list'" });
    if (!g.complete)
      throw new UsageError(`generation ${generation} of part '${part}' is partial (an interrupted run); only complete generations can be pinned`);
  }
  const changed = setPinned(pdir, generation, pinned);
  if (o.json) out.json({ host, part, generation, pinned, changed });
  else
    out.note(changed ? `${part}: ${pinned ? 'pinned' : 'unpinned'} ${generation}` : `${part}: ${generation} was already ${pinned ? 'pinned' : 'not pinned'}`);
  return 0;
}
