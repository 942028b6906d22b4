import type { Command } from 'commander';
import { displayPath } from '../../paths/escape.js';
import { now } from '../../time/now.js';
import { parseDuration } from '../../time/duration.js';
import { runBackup } from '../../backup/run.js';
import { parsePartArg } from '../../backup/validate.js';
import { readExcludeFile } from '../../scan/exclude.js';
import type { BackupOptions, BackupResult, PartSpec } from '../../backup/types.js';
import { formatBytes, formatMs, type Output } from '../../ui/output.js';
import { addCommon, collect, resolveTarget, type CommonOptions } from '../common.js';
import type { CliContext } from '../context.js';

interface BackupCliOptions extends CommonOptions {
  part?: string[];
  exclude?: string[];
  excludeFrom?: string[];
  oneFileSystem?: boolean;
  dryRun?: boolean;
  wait?: string | boolean;
  allowEmpty?: boolean;
  flush?: boolean;
  parallelParts?: boolean;
}

export function register(program: Command, ctx: CliContext): void {
  addCommon(
    program
      .command('backup')
      .description('make one new generation of each part: unchanged files are hard links to the previous generation')
      .option('--part <name=path>', 'a part to back up (repeatable)', collect)
      .option('--exclude <pattern>', 'leave out matching entries (repeatable; *, **, ?, [..]; leading / anchors at the part root, trailing / matches directories)', collect)
      .option('--exclude-from <file>', 'read exclude patterns from a file, one per line (repeatable)', collect)
      .option('-x, --one-file-system', 'do not cross into other file systems below a source')
      .option('-n, --dry-run', 'print what would be done (link / copy / mkdir ...) and write nothing')
      .option('--wait [duration]', 'wait for a running backup to finish instead of exiting with code 3 (optionally at most DURATION, e.g. 2h)')
      .option('--allow-empty', 'publish a generation even when a source root is empty (refused by default: an unmounted file system looks empty)')
      .option('--parallel-parts', 'back up all parts at the same time (worth it when they are on different drives)')
      .option('--no-flush', 'do not syncfs the spool before publishing (unsafe on power loss; for measurements only)')
      .addHelpText('after', `
Exit codes: 0 published; 1 bad usage or input (nothing written); 2 failed (nothing published,
'last' untouched); 3 another run holds the lock; 23 published but some entries could not be
transferred (listed on stderr); 24 published, some source files vanished during the run.

Examples:
  hardsnap backup --spool /var/backups/hs --part etc=/etc
  hardsnap backup --spool /mnt/nfs/dp_spool --host 192.0.2.10 \\
      --part mail/imap=/var/spool/cyrus/data --part bm/pgsql=/var/backups/pgsql --exclude '*.tmp'
  hardsnap backup --config /etc/hardsnap.yaml --dry-run`),
  ).action(async (o: BackupCliOptions) => ctx.run(o, (out) => backup(o, ctx, out)));
}

function waitMs(w: string | boolean | undefined): number {
  if (w === undefined || w === false) return 0;
  if (w === true) return Number.POSITIVE_INFINITY;
  return parseDuration(w, '--wait');
}

async function backup(o: BackupCliOptions, ctx: CliContext, out: Output): Promise<number> {
  const cfg = ctx.config(o);
  const { spool, host } = resolveTarget(o, cfg);
  const parts: PartSpec[] = o.part?.length
    ? o.part.map((a) => ({ ...parsePartArg(a) }))
    : (cfg.parts ?? []).map((p) => ({ name: p.name, source: p.path, exclude: p.exclude }));
  const exclude: (string | Buffer)[] = [...(o.exclude ?? cfg.exclude ?? [])];
  for (const f of o.excludeFrom ?? cfg.excludeFrom ?? []) exclude.push(...readExcludeFile(f));
  const opts: BackupOptions = {
    spool, host, parts, exclude,
    oneFileSystem: Boolean(o.oneFileSystem ?? cfg.oneFileSystem),
    dryRun: Boolean(o.dryRun),
    allowEmpty: Boolean(o.allowEmpty),
    flush: o.flush !== false,
    parallelParts: Boolean(o.parallelParts ?? cfg.parallelParts),
    waitMs: waitMs(o.wait ?? cfg.wait),
    now: now(),
    command: ['hardsnap', ...process.argv.slice(2)].join(' '),
  };
  const result = await runBackup(opts, {
    onProblem: (p) => out.warn(`${p.part}: ${displayPath(p.path)}: ${p.message}`),
    onNote: (m) => out.note(m),
    onPlan: opts.dryRun && !o.json ? (part, rel, d) => out.print(`${d.action.padEnd(7)} ${part}/${displayPath(rel)}  (${d.reason})`) : undefined,
  });
  if (o.json) out.json(toJson(result));
  else out.summary(summaryLine(result));
  return result.exit;
}

export function summaryLine(r: BackupResult): string {
  const per = r.parts.map((p) => {
    const s = p.stats;
    return `${p.part}: ${s.entries} entries, ${s.linked} linked, ${s.copied} written (${formatBytes(s.bytesWritten)})` +
      (p.resumed ? `, resumed (${s.reused} kept)` : '') + (s.emlinkCopies ? `, ${s.emlinkCopies} EMLINK copies` : '');
  });
  const verdict = r.status === 'dry-run' ? 'dry run, nothing written' : r.exit === 0 ? 'published' : `published with ${r.problems} problems, ${r.vanished} vanished`;
  return `hardsnap: ${r.generation}: ${per.join('; ')}; ${verdict} in ${formatMs(r.durationMs)}`;
}

function toJson(r: BackupResult): unknown {
  return { ...r, parts: r.parts.map((p) => ({ ...p })) };
}
