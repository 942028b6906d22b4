import { commandLine } from '../argv.js';
import type { Command } from 'commander';
import { UsageError } from '../../core/errors.js';
import { isRoot } from '../../fs/native.js';
import { displayPath } from '../../paths/escape.js';
import { now } from '../../time/now.js';
import { parseWhen } from '../../spool/when.js';
import { verifyGenerations, verifyTargets } from '../../inspect/verify-spool.js';
import { addCommon, partNameArg, type CommonOptions, spoolTarget } from '../common.js';
import { formatBytes, type Output } from '../../ui/output.js';
import type { CliContext } from '../context.js';

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
      .addHelpText(
        'after',
        `
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
  hardsnap verify --config /etc/hardsnap.yaml --json`,
      ),
  ).action(async (o: VerifyCliOptions) => ctx.run(o, (out) => verify(o, ctx, out)));
}

async function verify(o: VerifyCliOptions, ctx: CliContext, out: Output): Promise<number> {
  const when = o.generation !== undefined ? parseWhen(o.generation, now(), '--generation') : undefined;
  const t = spoolTarget(o, ctx.config(o), out);
  const { targets, unmatched, gone } = verifyTargets(t, { part: o.part !== undefined ? partNameArg(o.part) : undefined, when });
  for (const part of unmatched) out.note(`${part}: no complete generation matches --generation ${o.generation}`);
  if (when && !targets.length) {
    throw new UsageError(`--generation ${JSON.stringify(o.generation)}: no complete generation matches in ${o.part ? `part '${o.part}'` : 'any part'}`, {
      hint: 'see `hardsnap list`',
    });
  }
  const found = new Map<string, { kind: string; path: string; message: string }[]>();
  const r = verifyGenerations(
    t,
    targets,
    { deep: Boolean(o.deep), owners: isRoot(), command: commandLine() },
    {
      onProblem(g, p) {
        const path = p.path.length ? displayPath(p.path) : '.';
        const key = `${g.part}/${g.name}`;
        if (!found.has(key)) found.set(key, []);
        found.get(key)!.push({ kind: p.kind, path, message: p.message });
        if (!o.json) out.print(`${g.part} ${g.name} ${path}: ${p.message}`);
      },
      onNote: (m) => out.note(m),
      onWarn: (m) => out.warn(m),
    },
  );
  // generations the spool names that are not there: one problem each
  const results = [
    ...gone.map(({ generation: g, message }) => {
      if (!o.json) out.print(`${g.part} ${g.name} .: ${message}`);
      found.set(`${g.part}/${g.name}`, [{ kind: 'gone', path: '.', message }]);
      return { part: g.part, generation: g.name, entries: 0, hashed: 0, problems: 1 };
    }),
    ...r.generations,
  ];
  const problems = results.reduce((s, g) => s + g.problems, 0);
  const bad = results.filter((g) => g.problems).length;
  if (o.json) {
    out.json({
      ok: problems === 0,
      deep: Boolean(o.deep),
      problems,
      generations: results.map((g) => ({
        part: g.part,
        generation: g.generation,
        entries: g.entries,
        hashed: g.hashed,
        problems: found.get(`${g.part}/${g.generation}`) ?? [],
      })),
    });
  }
  const what =
    `${results.length} generation${results.length === 1 ? '' : 's'}, ${results.reduce((s, g) => s + g.entries, 0)} entries` +
    (o.deep ? `, ${formatBytes(r.bytesHashed)} hashed` : '');
  if (problems) {
    out.error(`verify: ${problems} problem${problems === 1 ? '' : 's'} in ${bad} of ${what}`);
    return 2;
  }
  if (!results.length) out.note('no complete generation to verify');
  else out.summary(`verified ${what}: no problem found`);
  return 0;
}
