import type { Command } from 'commander';
import { plural } from '../../core/units.js';
import { now } from '../../time/now.js';
import { parseDuration } from '../../time/duration.js';
import { runPrune, type PartPrune } from '../../retention/prune.js';
import { describeLeftovers } from '../../retention/trash.js';
import { displayPath } from '../../paths/escape.js';
import type { Output } from '../../ui/output.js';
import { addCommon, collect, partNameArg, type CommonOptions, spoolTarget } from '../common.js';
import { commandLine } from '../argv.js';
import type { CliContext } from '../context.js';
import { addKeepOptions, rulesFrom, type KeepOptions } from '../retention-options.js';

interface PruneCliOptions extends CommonOptions, KeepOptions {
  part?: string[];
  dryRun?: boolean;
  wait?: string | boolean;
}

export function register(program: Command, ctx: CliContext): void {
  addCommon(
    addKeepOptions(
      program
        .command('prune')
        .description("remove the generations no retention rule keeps (rules from --keep-* or the config's retention:)")
        .option('--part <name>', 'only this part (repeatable; default: every part of the host)', collect)
        .option('-n, --dry-run', 'list every generation with keep/remove and the rules that decided; remove nothing'),
    )
      .option('--wait [duration]', 'wait for a running backup to finish instead of exiting with code 3')
      .addHelpText(
        'after',
        `
In each UTC calendar bucket (hour, day, ISO week, month, year) the newest generation is kept;
a generation kept by any rule stays. Never removed: the newest complete generation, the target
of 'last', pinned generations ('hardsnap pin'), and interrupted (.partial) ones. Without any
rule (here or in the config) prune refuses (exit 1). A removed generation is first renamed into
<part>/.hardsnap/trash/ and then deleted; a prune killed mid-way is finished by the next prune
or backup.

Exit codes: 0 done; 1 bad usage or no rule; 2 failed; 3 another run holds the lock.

Examples:
  hardsnap prune --spool /var/backups/hs --host web1 --keep-daily 7 --keep-weekly 4 --keep-monthly 3
  hardsnap prune --config /etc/hardsnap.yaml --dry-run
  hardsnap prune --config /etc/hardsnap.yaml --part mail/imap --keep-within 2d`,
      ),
  ).action(async (o: PruneCliOptions) => ctx.run(o, (out) => prune(o, ctx, out)));
}

async function prune(o: PruneCliOptions, ctx: CliContext, out: Output): Promise<number> {
  const cfg = ctx.config(o);
  const { spool, host } = spoolTarget(o, cfg, out, !o.dryRun);
  const rules = rulesFrom(o, cfg);
  const wait = o.wait ?? cfg.wait;
  const result = await runPrune(
    {
      spool,
      host,
      parts: (o.part ?? []).map(partNameArg),
      rules,
      now: now(),
      dryRun: Boolean(o.dryRun),
      waitMs: wait === undefined || wait === false ? 0 : wait === true ? Number.POSITIVE_INFINITY : parseDuration(wait, '--wait'),
      command: commandLine(),
    },
    { onNote: (m) => out.note(m), onWarn: (m) => out.warn(m), onRemoved: (p, g) => out.note(`${p}: removed ${g}`) },
  );
  printPrune(result, Boolean(o.dryRun), out);
  return 0;
}

/** What prune could not delete: warnings, even under cron (an admin must act: chattr -i, umount). */
export function warnLeftovers(result: PartPrune[], out: Output): void {
  for (const r of result) for (const line of describeLeftovers(r.part, r.leftovers)) out.warn(line);
}

export function printPrune(result: PartPrune[], dryRun: boolean, out: Output): void {
  warnLeftovers(result, out);
  if (out.opts.json) {
    out.json(
      result.map((r) => ({
        ...r,
        leftovers: r.leftovers.map((l) => ({ path: displayPath(l.path), code: l.code, why: l.why, hint: l.hint, ...(l.notMoved ? { notMoved: true } : {}) })),
      })),
    );
    return;
  }
  if (dryRun) {
    const w = Math.max(4, ...result.map((r) => r.part.length));
    for (const r of result) {
      for (const d of r.decisions) out.print(`${r.part.padEnd(w)}  ${d.name}  ${d.keep ? 'keep  ' : 'remove'}  ${d.reasons.join(', ')}`);
    }
    return;
  }
  const removed = result.reduce((n, r) => n + r.removed.length, 0);
  const kept = result.reduce((n, r) => n + r.decisions.filter((d) => d.keep && d.complete).length, 0);
  out.summary(`hardsnap: pruned ${plural(removed, 'generation')}, kept ${kept}`);
}
