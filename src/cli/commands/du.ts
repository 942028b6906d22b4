import type { Command } from 'commander';
import { partUsage, type PartUsage } from '../../inspect/du.js';
import { completeGenerations, openManifest, partsOf } from '../../inspect/manifests.js';
import { addCommon, spoolTarget, type CommonOptions } from '../common.js';
import { formatBytes, type Output } from '../../ui/output.js';
import type { CliContext } from '../context.js';
import { leaseForReading } from '../reading.js';

interface DuOptions extends CommonOptions {
  part?: string;
}

export function register(program: Command, ctx: CliContext): void {
  addCommon(
    program
      .command('du')
      .description('space per generation: logical size, bytes unique to it (what deleting it would free), totals')
      .option('--part <name>', 'only this part (default: every part of the host)')
      .addHelpText('after', `
From the manifests only: the spool tree is not walked. Per complete generation:
  LOGICAL  the sizes of its regular files, one per name (what a plain copy would hold)
  UNIQUE   the sizes of its file inodes that no other generation of the part shares: what
           deleting that generation alone would free
Per part: the sizes of its distinct file inodes (its real footprint); per host: their sum.
Directories, symlinks and file-system overhead are not counted. Memory: about 100 bytes per
distinct file of the part (a million files: ~100 MB).
Exit codes: 0 done; 1 bad usage; 2 a manifest is missing or damaged (that generation is left
out and the numbers of the others may be too high).

Examples:
  hardsnap du --spool /var/backups/hs --host web1
  hardsnap du --spool /var/backups/hs --part mail --json`),
  ).action(async (o: DuOptions) => ctx.run(o, (out) => du(o, ctx, out)));
}

async function du(o: DuOptions, ctx: CliContext, out: Output): Promise<number> {
  const t = spoolTarget(o, ctx.config(o), out);
  const parts: PartUsage[] = [];
  for (const part of partsOf(t, o.part)) {
    // a lease on every generation counted: a prune running meanwhile keeps them all
    const reading = leaseForReading(t.spool, t.host, part, completeGenerations(t, part), out);
    try {
      const paths = new Map(reading.present.map((g) => [g.name, g.path]));
      const u = partUsage(part, reading.present.map((g) => g.name), (g) => openManifest(t, part, g), (g) => paths.get(g)!);
      for (const bad of u.unreadable) out.error(`${bad.message}: left out of the numbers`);
      parts.push(u);
    } finally {
      reading.release();
    }
  }
  const hostTotal = parts.reduce((s, p) => s + p.total, 0);
  if (o.json) {
    out.json({ host: t.host, total: hostTotal, parts });
  } else {
    for (const p of parts) {
      out.print(`${p.part}:`);
      out.print(`  ${'GENERATION'.padEnd(22)} ${'FILES'.padStart(9)} ${'LOGICAL'.padStart(11)} ${'UNIQUE'.padStart(11)} ${'FREED IF DELETED'.padStart(17)}`);
      for (const g of p.generations) {
        out.print(`  ${g.generation.padEnd(22)} ${String(g.files).padStart(9)} ${formatBytes(g.logical).padStart(11)} ${formatBytes(g.unique).padStart(11)} ${formatBytes(g.freed).padStart(17)}`);
      }
      out.print(`  total: ${p.generations.length} generations, ${p.inodes} distinct files, ${formatBytes(p.total)}`);
    }
    out.print(`host ${t.host}: ${formatBytes(hostTotal)} in ${parts.length} part${parts.length === 1 ? '' : 's'}`);
  }
  return parts.some((p) => p.unreadable.length) ? 2 : 0;
}
