import type { Command } from 'commander';
import { UsageError } from '../../core/errors.js';
import { isRoot } from '../../fs/native.js';
import { displayPath } from '../../paths/escape.js';
import { now } from '../../time/now.js';
import { parseWhen, selectGeneration } from '../../spool/when.js';
import { GenerationVerifier, type VerifyProblem } from '../../inspect/verify.js';
import { completeGenerations, openManifest, partsOf } from '../../inspect/manifests.js';
import { addCommon, partNameArg, type CommonOptions, spoolTarget } from '../common.js';
import { formatBytes, type Output } from '../../ui/output.js';
import type { CliContext } from '../context.js';
import type { Generation } from '../../spool/names.js';
import { GenerationGoneError } from '../../spool/leases.js';
import { leaseForReading, presenceCheck } from '../reading.js';

interface VerifyCliOptions extends CommonOptions {
  part?: string;
  generation?: string;
  deep?: boolean;
}

export function register(program: Command, ctx: CliContext): void {
  addCommon(
    program
      .command('verify')
      .description('check generations against their manifests: missing, extra, replaced or drifted entries; --deep: content')
      .option('--part <name>', 'only this part (default: every part of the host)')
      .option('--generation <when>', 'only this generation (a name, or any WHEN: the newest complete one at or before it)')
      .option('--deep', 'also read every file and compare its XXH64 with the recorded one (O_NOATIME where permitted)')
      .addHelpText('after', `
Every complete generation is checked (or the one --generation names, in each part that has it).
Found: a manifest missing or damaged; entries missing from the tree or not in the manifest; a
changed type; metadata that drifted (mode, owner when run as root, size, mtime to the
nanosecond, symlink target; a chmod of a file shared by several generations shows in each);
a file replaced (another inode than the recorded one); with --deep, content that no longer
matches its recorded hash (files with no recorded hash: size and mtime only).
One line per problem on stdout: PART GENERATION PATH: what (PATH escaped, . for the root).
Exit codes: 0 no problem found; 1 bad usage; 2 problems found (all listed).

Examples:
  hardsnap verify --spool /var/backups/hs --host web1
  hardsnap verify --spool /var/backups/hs --part mail --generation 2026-11-21T030000Z --deep
  hardsnap verify --config /etc/hardsnap.yaml --json`),
  ).action(async (o: VerifyCliOptions) => ctx.run(o, (out) => verify(o, ctx, out)));
}

interface Checked {
  part: string;
  generation: string;
  entries: number;
  hashed: number;
  problems: { kind: string; path: string; message: string }[];
}

async function verify(o: VerifyCliOptions, ctx: CliContext, out: Output): Promise<number> {
  const when = o.generation !== undefined ? parseWhen(o.generation, now(), '--generation') : undefined;
  const t = spoolTarget(o, ctx.config(o), out);
  const targets: Generation[] = [];
  for (const part of partsOf(t, o.part !== undefined ? partNameArg(o.part) : undefined)) {
    const gens = completeGenerations(t, part);
    if (!when) targets.push(...gens);
    else {
      const g = selectGeneration(gens, when);
      if (g) targets.push(g);
      else out.note(`${part}: no complete generation matches --generation ${o.generation}`);
    }
  }
  if (when && !targets.length) {
    throw new UsageError(`--generation ${JSON.stringify(o.generation)}: no complete generation matches in ${o.part ? `part '${o.part}'` : 'any part'}`, {
      hint: 'see `hardsnap list`',
    });
  }
  const results: Checked[] = [];
  let bytes = 0;
  let hashes = new Map<number, string>();
  for (const g of targets) {
    if (results.length && results[results.length - 1]!.part !== g.part) hashes = new Map();
    // a lease, so that a prune running meanwhile keeps what is being verified
    const reading = leaseForReading(t.spool, t.host, g.part, [g], out);
    try {
      if (reading.gone.length) {
        out.warn(`${g.part} ${g.name}: pruned before it could be verified: skipped`);
        continue;
      }
      const r: Checked = { part: g.part, generation: g.name, entries: 0, hashed: 0, problems: [] };
      const report = (p: VerifyProblem) => {
        const path = p.path.length ? displayPath(p.path) : '.';
        r.problems.push({ kind: p.kind, path, message: p.message });
        if (!o.json) out.print(`${g.part} ${g.name} ${path}: ${p.message}`);
      };
      const assertPresent = presenceCheck(g, 'verify of it stopped');
      let m;
      try {
        m = openManifest(t, g.part, g.name);
      } catch (err) {
        try {
          assertPresent();
        } catch (gone) {
          out.warn((gone as Error).message);
          continue;
        }
        results.push(r);
        report({ kind: 'manifest', path: Buffer.alloc(0), message: (err as Error).message });
        continue;
      }
      try {
        const v = new GenerationVerifier(m, { deep: Boolean(o.deep), owners: isRoot(), hashes, assertPresent }, report);
        v.run(g.path);
        if (v.inodeNote) out.note(`${g.part} ${g.name}: ${v.inodeNote}`);
        r.entries = v.stats.entries;
        r.hashed = v.stats.hashed;
        bytes += v.stats.bytesHashed;
        results.push(r);
      } catch (err) {
        // pruned under us (by something that did not see the lease): one line, not one per file
        if (!(err instanceof GenerationGoneError)) throw err;
        out.warn(err.message);
      } finally {
        m.close();
      }
    } finally {
      reading.release();
    }
  }
  const problems = results.reduce((s, r) => s + r.problems.length, 0);
  const bad = results.filter((r) => r.problems.length).length;
  if (o.json) out.json({ ok: problems === 0, deep: Boolean(o.deep), problems, generations: results });
  const what = `${results.length} generation${results.length === 1 ? '' : 's'}, ${results.reduce((s, r) => s + r.entries, 0)} entries` +
    (o.deep ? `, ${formatBytes(bytes)} hashed` : '');
  if (problems) {
    out.error(`verify: ${problems} problem${problems === 1 ? '' : 's'} in ${bad} of ${what}`);
    return 2;
  }
  if (!results.length) out.note('no complete generation to verify');
  else out.summary(`verified ${what}: no problem found`);
  return 0;
}
