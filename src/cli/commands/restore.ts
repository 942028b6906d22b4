import { commandLine } from '../argv.js';
import type { Command } from 'commander';
import { UsageError } from '../../core/errors.js';
import { displayPath, joinRel, parseDisplayPath } from '../../paths/escape.js';
import { listGenerations, listParts, partDir, requireHostDir } from '../../spool/layout.js';
import { now } from '../../time/now.js';
import { parseWhen, type When } from '../../spool/when.js';
import { chooseAll, chooseGeneration } from '../../restore/select.js';
import { restore, type RestorePartChoice, type RestoreResult } from '../../restore/restore.js';
import type { Replacement } from '../../restore/target.js';
import type { ProblemKind, RestoreProblem } from '../../restore/types.js';
import { formatBytes, type Output } from '../../ui/output.js';
import { addCommon, partNameArg, pathArg, type CommonOptions, spoolTarget } from '../common.js';
import { unescapeArg } from '../../paths/arg-text.js';
import { ProblemReport, SHOWN_ERRORS } from '../../ui/problem-report.js';
import type { CliContext } from '../context.js';
import { GenerationGoneError } from '../../spool/leases.js';
import { leaseForReading, presenceCheck } from '../../spool/reading.js';

interface RestoreCliOptions extends CommonOptions {
  part?: string;
  all?: boolean;
  at?: string;
  path?: string;
  to?: string;
  force?: boolean;
  dryRun?: boolean;
}

export function register(program: Command, ctx: CliContext): void {
  addCommon(
    program
      .command('restore')
      .description('copy a part, one path of it, or every part of a host, as it was at WHEN, into DIR (copies, never links; never writes outside DIR)')
      .option('--part <name>', 'the part to restore')
      .option('--all', 'every part of the host, each into DIR/<part>, from one generation')
      .option(
        '--at <when>',
        'a generation name, a date (end of that day, UTC), a date-time (UTC unless it has an offset) or an age (36h, 3d); default: the newest complete generation',
      )
      .option(
        '--path <sub>',
        "only this file or directory of the part (relative to its root, escaped as 'diff' and 'history' print it: \\\\ and \\xHH); lands at DIR/SUB",
      )
      .option('--to <dir>', 'the target directory (created when missing; must be empty unless --force)')
      .option(
        '--force',
        'restore into a non-empty DIR, replacing only the restored paths: a file or symlink in the way is removed (a symlink never followed), a directory in the way of a non-directory is moved aside to NAME.hardsnap-aside-<UTC time>, never deleted',
      )
      .option('-n, --dry-run', 'list what would be written, and under --force what would be moved aside or replaced; write nothing')
      .addHelpText(
        'after',
        `
Exit codes: 0 all restored; 1 bad usage or input (no generation at or before WHEN, unknown part,
bad --path, DIR not empty without --force); 2 failed; 23 some entries not restored, restored
not exact (content not matching its hash, metadata or attributes not set) or something left in
the target (each listed on stderr by what it means, escaped path and errno).

Examples:
  hardsnap restore --spool /var/backups/hs --host web1 --part etc --to /root/etc.restored
  hardsnap restore --spool /var/backups/hs --host mail1 --part mail/imap --at 2026-11-17 \\
      --path 'users/jdoe/Maildir' --to /tmp/jdoe-tuesday
  hardsnap restore --spool /var/backups/hs --host web1 --part etc --at 3d \\
      --path 'odd/latin1-\\xe9t\\xe9' --to /tmp/one-file
  hardsnap restore --spool /mnt/nfs/dp_spool --host 192.0.2.10 --all --at 2026-11-20T030000Z --to /srv/restore`,
      ),
  ).action(async (o: RestoreCliOptions) => ctx.run(o, (out) => restoreCmd(o, ctx, out)));
}

async function restoreCmd(o: RestoreCliOptions, ctx: CliContext, out: Output): Promise<number> {
  if (!o.to) throw new UsageError('restore needs --to DIR', { hint: 'the directory to restore into; it is created when missing' });
  if (o.all && o.part) throw new UsageError('--all and --part exclude each other', { hint: '--all restores every part into DIR/<part>' });
  if (o.all && o.path !== undefined) throw new UsageError('--path needs --part, not --all');
  if (!o.all && !o.part) throw new UsageError('restore needs --part NAME or --all');
  const cfg = ctx.config(o);
  const { spool, host } = spoolTarget(o, cfg, out);
  const part = o.part !== undefined ? partNameArg(o.part) : undefined;
  const to = pathArg(o.to);
  const when: When | undefined = o.at !== undefined ? parseWhen(o.at, now(), '--at') : undefined;
  requireHostDir(spool, host);
  const known = listParts(spool, host);
  let parts: RestorePartChoice[];
  let chosen: string;
  if (o.all) {
    if (!known.length) throw new UsageError(`host '${host}' has no parts in ${spool}`);
    const c = chooseAll(new Map(known.map((p) => [p, listGenerations(spool, host, p)])), when, o.at);
    parts = c.parts;
    chosen = c.name;
  } else {
    if (!known.includes(part!)) {
      throw new UsageError(`no part '${part}' for host '${host}' in ${spool}`, {
        hint: known.length ? `its parts: ${known.join(', ')}` : 'run a backup first',
      });
    }
    const g = chooseGeneration(part!, listGenerations(spool, host, part!), when, o.at);
    parts = [{ part: part!, generation: g, substituted: false }];
    chosen = g.name;
  }
  for (const p of parts) {
    if (p.substituted) out.warn(`part '${p.part}' has no generation ${chosen}: restoring its newest complete one before it, ${p.generation!.name}`);
  }
  // leases: a prune running meanwhile keeps what is being restored
  const readings = parts.filter((p) => p.generation).map((p) => leaseForReading(spool, host, p.part, [p.generation!], commandLine(), (m) => out.note(m)));
  try {
    for (const rd of readings) {
      for (const g of rd.gone) throw new GenerationGoneError(g.part, g.name, 'nothing was restored');
    }
    for (const p of parts)
      if (p.generation) p.assertPresent = presenceCheck(p.generation, 'the restore stopped; the target holds what was restored until then');
    return restoreParts(o, spool, host, to, parts, chosen, out);
  } finally {
    for (const rd of readings) rd.release();
  }
}

/** What was (or would be) in the way, as restore --dry-run lists it and --json reports it. */
interface Replaced {
  part: string;
  path: string;
  action: Replacement['action'];
  found: Replacement['found'];
  aside?: string;
  target?: string;
}

function replacedOf(part: string, rel: Buffer, r: Replacement, all: boolean): Replaced {
  const shown = (b: Buffer) => displayPath(all ? joinRel(parseDisplayPath(part), b) : b) || '.';
  const slash = rel.lastIndexOf(0x2f);
  const parent = slash < 0 ? Buffer.alloc(0) : rel.subarray(0, slash);
  return {
    part,
    path: shown(rel),
    action: r.action,
    found: r.found,
    ...(r.aside ? { aside: shown(joinRel(parent, r.aside)) } : {}),
    ...(r.target ? { target: displayPath(r.target) } : {}),
  };
}

/** One line of the dry-run listing, after the entry it concerns. */
function replacedLine(x: Replaced): string {
  if (x.action === 'move-aside') return `would move aside: ${x.path}/ -> ${x.aside}/ (a directory in the target; nothing in it is deleted)`;
  return `would replace: ${x.path} (${x.found === 'symlink' ? `a symlink${x.target !== undefined ? ` -> ${x.target}` : ''}, removed, not followed` : 'a file or special file, removed'})`;
}

function restoreParts(o: RestoreCliOptions, spool: string, host: string, to: string, parts: RestorePartChoice[], chosen: string, out: Output): number {
  const replaced: Replaced[] = [];
  // the first few problems, one line each; every one with --verbose (or in --json)
  const report = new ProblemReport(out, { verbose: o.verbose, quiet: o.quiet, failed: 'with a problem' });
  const r = restore(
    {
      partDirOf: (p) => partDir(spool, host, p),
      host,
      spool,
      parts,
      all: Boolean(o.all),
      to,
      sub: subPath(o.path),
      force: Boolean(o.force),
      dryRun: Boolean(o.dryRun),
    },
    {
      onNote: (m) => out.note(m),
      onWarn: (m) => out.warn(m),
      onProblem: (p) => report.error(`${SAID[p.kind]}: ${p.part}: ${JSON.stringify(displayPath(p.path) || '.')}: ${p.code}: ${p.message}`),
      onEntry:
        o.dryRun && !o.json
          ? (part, rel, e) =>
              out.print(
                `${displayPath(o.all ? joinRel(parseDisplayPath(part), rel) : rel)}${e.type === 'dir' ? '/' : e.type === 'symlink' ? ` -> ${displayPath(e.target!)}` : ''}`,
              )
          : undefined,
      onReplace: (part, rel, x) => {
        const item = replacedOf(part, rel, x, Boolean(o.all));
        replaced.push(item);
        if (o.dryRun && !o.json) out.print(replacedLine(item));
      },
    },
  );
  const code = r.problems.length ? 23 : 0; // the closing count is the line below
  if (o.json) {
    // past the first lines shown, their count (the JSON document on stdout lists them all)
    report.close();
    out.json({ ...(toJson(r, chosen, code) as object), replaced });
  } else {
    for (const p of r.parts) {
      const s = p.stats;
      out.summary(
        `${p.part}: ${o.dryRun ? 'would restore' : 'restored'} ${s.files + s.hardlinks} files (${s.hardlinks} hard links), ${s.dirs} directories, ${s.symlinks} symlinks, ${s.specials} special files, ${formatBytes(s.bytes)} from ${p.generation} into ${p.to}`,
      );
    }
    if (code)
      out.error(
        `${problemCounts(r.problems)}${r.problems.length > SHOWN_ERRORS && !o.verbose ? ` (the first ${SHOWN_ERRORS} listed above; every one with --verbose)` : ' (listed above)'}`,
      );
  }
  return code;
}

/** How a problem line starts: what it means for the target (RestoreProblem's kind). */
const SAID: Record<ProblemKind, string> = { missing: 'not restored', inexact: 'restored, not exact', leftover: 'left in the target' };

/** The closing line's counts, by kind: "2 entries not restored, 1 entry restored, not exact". */
function problemCounts(problems: RestoreProblem[]): string {
  const n = (k: ProblemKind) => problems.filter((p) => p.kind === k).length;
  return (['missing', 'inexact', 'leftover'] as const)
    .filter((k) => n(k) > 0)
    .map((k) => `${n(k)} ${n(k) === 1 ? 'entry' : 'entries'} ${SAID[k]}`)
    .join(', ');
}

/**
 * --path SUB as restore takes it (SPEC's escaped form): a byte of the argument that is not UTF-8
 * stands for itself, as do escapes (`\xHH`, `\\`).
 */
function subPath(arg: string | undefined): string | undefined {
  if (arg === undefined) return undefined;
  try {
    return displayPath(unescapeArg(arg));
  } catch (err) {
    throw new UsageError(`--path: ${(err as Error).message}`, { code: 'EPATH' });
  }
}

function toJson(r: RestoreResult, chosen: string, exit: number): unknown {
  return {
    to: r.to,
    dryRun: r.dryRun,
    generation: chosen,
    parts: r.parts.map((p) => ({
      part: p.part,
      generation: p.generation,
      substituted: p.substituted,
      path: p.generationPath,
      to: p.to,
      source: p.source,
      ...p.stats,
    })),
    problems: r.problems.map((p) => ({ part: p.part, path: displayPath(p.path), code: p.code, message: p.message, kind: p.kind })),
    exit,
  };
}
