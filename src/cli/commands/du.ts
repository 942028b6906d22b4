import { plural } from '../../core/units.js';
import { commandLine } from '../argv.js';
import type { Command } from 'commander';
import { partUsage, type PartUsage } from '../../inspect/du.js';
import { completeGenerations, openManifest, partsOf } from '../../inspect/manifests.js';
import { addCommon, partNameArg, type CommonOptions, spoolTarget } from '../common.js';
import { formatBytes, type Output } from '../../ui/output.js';
import type { CliContext } from '../context.js';
import { UsageError } from '../../core/errors.js';
import { now } from '../../time/now.js';
import { parseWhen, selectGeneration, type When } from '../../spool/when.js';
import type { Generation } from '../../spool/names.js';
import { leaseForReading } from '../../spool/reading.js';

interface DuOptions extends CommonOptions {
  part?: string;
}

export function register(program: Command, ctx: CliContext): void {
  addCommon(
    program
      .command('du')
      .description(
        'space per generation: logical size, bytes unique to it, what pruning up to it would free; with GENERATIONS, what deleting them together would free',
      )
      .argument(
        '[generations...]',
        'generations to delete together, each a WHEN (name, date, date-time, age) or a range A..B of them (inclusive; ..B from the oldest, A.. to the newest)',
      )
      .option('--part <name>', 'only this part (default: every part of the host)')
      .addHelpText(
        'after',
        `
From the manifests only: the spool tree is not walked. Per complete generation:
  LOGICAL           the sizes of its regular files, one per name (what a plain copy would hold)
  UNIQUE            the sizes of its file inodes that no other generation of the part shares:
                    what deleting that generation alone would free
  FREED WITH OLDER  what deleting it and every older generation together would free (the
                    inodes no newer generation shares): what pruning up to there gives back
With GENERATIONS (in each part): what deleting exactly those generations together would free,
which can be more than the sum of their UNIQUE sizes (inodes they share only with each other).
Per part: the sizes of its distinct file inodes (its real footprint); per host: their sum.
Directories, symlinks and file-system overhead are not counted. Memory: about 100 bytes per
distinct file of the part (a million files: ~100 MB).
Exit codes: 0 done; 1 bad usage (a WHEN that matches no generation); 2 a manifest is missing
or damaged (that generation is left out and the numbers of the others may be too high).

Examples:
  hardsnap du --spool /var/backups/hs --host web1
  hardsnap du --spool /var/backups/hs --part mail --json
  hardsnap du --spool /var/backups/hs --part mail 2026-11-01..2026-11-30
  hardsnap du --spool /var/backups/hs ..90d                 # everything older than 90 days
  hardsnap du --spool /var/backups/hs --part mail 2026-11-20T030000Z 2026-11-22T030000Z`,
      ),
  ).action(async (sel: string[], o: DuOptions) => ctx.run(o, (out) => du(sel, o, ctx, out)));
}

type Pick = { one: When; text: string } | { from: When | null; to: When | null; text: string };

/** GENERATIONS: each a WHEN, or A..B with either side left out. */
function parseSelection(args: string[]): Pick[] {
  const t = now();
  return args.map((text) => {
    const i = text.indexOf('..');
    if (i < 0) return { one: parseWhen(text, t, 'du GENERATION'), text };
    const a = text.slice(0, i);
    const b = text.slice(i + 2);
    if (!a && !b) throw new UsageError(`du: ${JSON.stringify(text)} is not a range: give A..B, ..B or A..`);
    return { from: a ? parseWhen(a, t, 'du range start') : null, to: b ? parseWhen(b, t, 'du range end') : null, text };
  });
}

/** The generations of a part a selection names (a range: from the one A selects through the one B selects). */
function selectIn(gens: Generation[], picks: Pick[]): Set<string> {
  const out = new Set<string>();
  for (const p of picks) {
    if ('one' in p) {
      const g = selectGeneration(gens, p.one);
      if (g) out.add(g.name);
      continue;
    }
    const from = p.from ? selectGeneration(gens, p.from) : gens[0];
    const to = p.to ? selectGeneration(gens, p.to) : gens[gens.length - 1];
    if (!to) continue;
    const lo = from ? gens.indexOf(from) : 0; // A before every generation: from the oldest
    const hi = gens.indexOf(to);
    for (let i = lo; i <= hi; i++) out.add(gens[i]!.name);
  }
  return out;
}

async function du(args: string[], o: DuOptions, ctx: CliContext, out: Output): Promise<number> {
  const picks = args.length ? parseSelection(args) : null;
  const t = spoolTarget(o, ctx.config(o), out);
  const parts: PartUsage[] = [];
  for (const part of partsOf(t, o.part !== undefined ? partNameArg(o.part) : undefined)) {
    // a lease on every generation counted: a prune running meanwhile keeps them all
    const reading = leaseForReading(t.spool, t.host, part, completeGenerations(t, part), commandLine(), (m) => out.note(m));
    try {
      const paths = new Map(reading.present.map((g) => [g.name, g.path]));
      const selected = picks ? selectIn(reading.present, picks) : undefined;
      const u = partUsage(
        part,
        reading.present.map((g) => g.name),
        (g) => openManifest(t, part, g),
        (g) => paths.get(g)!,
        selected,
      );
      for (const bad of u.unreadable) {
        // a block found damaged while counting says only what is wrong: name the generation
        const what = bad.message.includes(bad.generation) ? bad.message : `the manifest of part '${part}' ${bad.generation}: ${bad.message}`;
        out.error(`${what}: left out of the numbers`);
      }
      parts.push(u);
    } finally {
      reading.release();
    }
  }
  if (picks && !parts.some((p) => p.selection?.generations.length)) {
    throw new UsageError(`du: ${args.map((a) => JSON.stringify(a)).join(' ')} matches no complete generation${o.part ? ` of part '${o.part}'` : ''}`, {
      hint: "see 'hardsnap list'",
    });
  }
  const hostTotal = parts.reduce((s, p) => s + p.total, 0);
  if (o.json) {
    out.json({ host: t.host, total: hostTotal, parts });
  } else {
    for (const p of parts) {
      out.print(`${p.part}:`);
      out.print(`  ${'GENERATION'.padEnd(22)} ${'FILES'.padStart(9)} ${'LOGICAL'.padStart(11)} ${'UNIQUE'.padStart(11)} ${'FREED WITH OLDER'.padStart(17)}`);
      for (const g of p.generations) {
        const mark = p.selection?.generations.includes(g.generation) ? ' *' : '';
        out.print(
          `  ${g.generation.padEnd(22)} ${String(g.files).padStart(9)} ${formatBytes(g.logical).padStart(11)} ${formatBytes(g.unique).padStart(11)} ${formatBytes(g.freedWithOlder).padStart(17)}${mark}`,
        );
      }
      out.print(`  total: ${plural(p.generations.length, 'generation')}, ${plural(p.inodes, 'distinct file')}, ${formatBytes(p.total)}`);
      if (p.selection) {
        const n = p.selection.generations.length;
        out.print(
          n
            ? `  deleting the ${n} generation${n === 1 ? '' : 's'} marked * together would free ${formatBytes(p.selection.freed)} (${p.selection.files} files)`
            : '  no generation of this part is selected',
        );
      }
    }
    out.print(`host ${t.host}: ${formatBytes(hostTotal)} in ${parts.length} part${parts.length === 1 ? '' : 's'}`);
  }
  return parts.some((p) => p.unreadable.length) ? 2 : 0;
}
