import type { Command } from 'commander';
import { HardsnapError, UsageError } from '../../core/errors.js';
import { ManifestFormatError } from '../../manifest/format.js';
import { displayPath } from '../../paths/escape.js';
import { now } from '../../time/now.js';
import { parseWhen } from '../../time/when.js';
import { diffManifests, type Change } from '../../inspect/diff.js';
import { generationAt, openManifest, partsOf, type Target } from '../../inspect/manifests.js';
import { GenerationGoneError } from '../../spool/leases.js';
import type { Generation } from '../../spool/names.js';
import { leaseForReading } from '../reading.js';
import { addCommon, partNameArg, type CommonOptions, spoolTarget } from '../common.js';
import type { Output } from '../../ui/output.js';
import type { CliContext } from '../context.js';

interface DiffOptions extends CommonOptions {
  part?: string;
}

export function register(program: Command, ctx: CliContext): void {
  addCommon(
    program
      .command('diff')
      .description('what changed in a part between two generations (from their manifests)')
      .argument('<A>', 'the older generation: a name, a date, a date-time or an age (WHEN)')
      .argument('<B>', 'the newer generation (WHEN)')
      .option('--part <name>', 'the part to compare (required)')
      .addHelpText('after', `
One line per entry, paths relative to the part root in the escaped form (\\\\ and \\xHH):
  + PATH                added in B (every entry of an added directory is listed)
  - PATH                removed in B
  M PATH (size 10->12)  content changed (or type, symlink target, device number)
  m PATH (mode 0644->0600)  metadata only: mode, owner, mtime, ACL or extended attributes
  C PATH (carried G: EACCES)  B holds PATH's version of generation G: the source could not be
                        read (an unreadable directory carries everything below it)
WHEN: a generation name, a date (end of that day, UTC), a date-time (UTC unless it has an
offset) or an age (36h, 3d); the newest complete generation at or before it is used.
Exit codes: 0 done (whether or not something changed); 1 bad usage, no such generation;
2 a manifest is missing or damaged.

Examples:
  hardsnap diff --spool /var/backups/hs --part mail 2026-11-20 2026-11-21
  hardsnap diff --spool /var/backups/hs --part mail 2d 1d --json`),
  ).action(async (a: string, b: string, o: DiffOptions) => ctx.run(o, (out) => diff(a, b, o, ctx, out)));
}

async function diff(aText: string, bText: string, o: DiffOptions, ctx: CliContext, out: Output): Promise<number> {
  if (!o.part) throw new UsageError('diff needs --part NAME', { hint: 'see `hardsnap list` for the parts' });
  const t0 = now();
  const whenA = parseWhen(aText, t0, 'diff A');
  const whenB = parseWhen(bText, t0, 'diff B');
  const t = spoolTarget(o, ctx.config(o), out);
  const [part] = partsOf(t, partNameArg(o.part)) as [string];
  const ga = generationAt(t, part, whenA, aText, 'diff A');
  const gb = generationAt(t, part, whenB, bText, 'diff B');
  // a lease on both: a prune running meanwhile keeps them
  const reading = leaseForReading(t.spool, t.host, part, ga.name === gb.name ? [ga] : [ga, gb], out);
  try {
    for (const g of reading.gone) throw new GenerationGoneError(g.part, g.name, 'nothing was compared');
    return diffLeased(ga, gb, part, t, o, out);
  } finally {
    reading.release();
  }
}

function diffLeased(ga: Generation, gb: Generation, part: string, t: Target, o: DiffOptions, out: Output): number {
  const ma = openManifest(t, part, ga.name);
  try {
    const mb = openManifest(t, part, gb.name);
    try {
      const rows: Change[] = [];
      let counts;
      try {
        counts = diffManifests(ma, mb, (c) => (o.json ? rows.push(c) : out.print(line(c))));
      } catch (err) {
        // a block damaged past the header and index (those are checked when opened)
        if (!(err instanceof ManifestFormatError)) throw err;
        throw new HardsnapError('EMANIFEST', `a manifest of part '${part}' (${ga.name} or ${gb.name}) is damaged: ${err.message}`, {
          cause: err, exit: 2, hint: 'run `hardsnap verify` on those generations',
        });
      }
      if (o.json) {
        const pick = (k: Change['kind']) => rows.filter((c) => c.kind === k).map((c) => ({
          path: c.path.length ? displayPath(c.path) : '.', type: c.type, ...(c.changes.length ? { changes: c.changes } : {}),
        }));
        out.json({
          part, from: ga.name, to: gb.name,
          added: pick('added'), removed: pick('removed'), content: pick('content'), metadata: pick('metadata'), carried: pick('carried'),
        });
      } else {
        out.summary(`${part}: ${ga.name} -> ${gb.name}: ${counts.added} added, ${counts.removed} removed, ${counts.content} changed, ${counts.metadata} metadata only` +
          (counts.carried ? `, ${counts.carried} carried from an older generation (unreadable in the source)` : ''));
      }
      return 0;
    } finally {
      mb.close();
    }
  } finally {
    ma.close();
  }
}

const MARK = { added: '+', removed: '-', content: 'M', metadata: 'm', carried: 'C' } as const;

function line(c: Change): string {
  const path = c.path.length ? displayPath(c.path) : '.';
  const what = c.kind === 'carried' ? `carried ${c.changes[0]!.from}: ${c.changes[0]!.to}`
    : c.changes.map((d) => `${d.field} ${d.from}->${d.to}`).join(', ');
  return `${MARK[c.kind]} ${path}${what ? ` (${what})` : ''}`;
}
