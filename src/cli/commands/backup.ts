import { plural } from '../../core/units.js';
import { handlePendingSignals } from '../../core/event-loop.js';
import type { Command } from 'commander';
import { displayPath } from '../../paths/escape.js';
import { now } from '../../time/now.js';
import { parseDuration } from '../../time/duration.js';
import { backupAndMaintain } from '../../backup/maintain.js';
import { sizeThreadPool } from '../../fs/thread-pool.js';
import { testPause } from '../../fs/test-pause.js';
import type { BackupOptions, BackupResult, PartSpec } from '../../backup/types.js';
import { formatBytes, formatMs, type Output } from '../../ui/output.js';
import { BackupProgress, forcedTty, progressMode, type Estimates } from '../../ui/progress.js';
import { countAhead } from '../../backup/count-ahead.js';
import { isAlias } from '../../paths/aliases.js';
import { compileExcludes, readExcludeFile } from '../../exclude/patterns.js';
import { fs } from '../../fs/disk.js';
import path from 'node:path';
import { itemize } from '../../ui/itemize.js';
import { ProblemReport, SHOWN_ERRORS } from '../../ui/problem-report.js';
import { readRuns } from '../../spool/runs-log.js';
import { hostDir } from '../../spool/layout.js';
import { addCommon, collect, partSpecArg, resolveTarget, type CommonOptions } from '../common.js';
import { commandLine } from '../argv.js';
import { bytesOfArg, hasRawBytes } from '../../paths/arg-text.js';
import type { CliContext } from '../context.js';
import { addKeepOptions, type KeepOptions } from '../retention-options.js';
import { opsOptions, opsPrinter, addOpsOptions, type OpsOptions } from '../backup-ops.js';
import type { DedupScope } from '../../apply/dedup-index.js';
import { DEDUP_GENERATIONS } from '../../backup/dedup-sources.js';
import { DEFAULT_MAX_SOURCE_LOSS } from '../../backup/source-identity.js';
import { parsePercent } from '../../config/percent.js';
import { INTERRUPT_EXIT, UsageError } from '../../core/errors.js';
import { catchInterrupts } from '../interrupt.js';
import { DEFAULT_JOURNAL, type JournalSettings } from '../../watch/journal-use.js';

interface BackupCliOptions extends CommonOptions, KeepOptions, OpsOptions {
  part?: string[];
  exclude?: string[];
  excludeFrom?: string[];
  oneFileSystem?: boolean;
  dryRun?: boolean;
  wait?: string | boolean;
  allowEmpty?: boolean;
  acceptSourceChange?: boolean;
  maxSourceLoss?: string;
  flush?: boolean;
  dedup?: string;
  dedupVerify?: boolean;
  dedupGenerations?: string;
  checksum?: boolean;
  xattrs?: boolean;
  parallelParts?: boolean;
  progress?: boolean;
  journal?: boolean;
  fullScanEvery?: string;
  auditSample?: string;
  journalTimeout?: string;
}

export function register(program: Command, ctx: CliContext): void {
  addCommon(
    addKeepOptions(
      addOpsOptions(
        program
          .command('backup')
          .description('make one new generation of each part: unchanged files are hard links to the previous generation')
          .option('--part <name=path>', 'a part to back up (repeatable)', collect)
          .option(
            '--exclude <pattern>',
            'leave out matching entries (repeatable; *, **, ?, [..]; leading / anchors at the part root, trailing / matches directories)',
            collect,
          )
          .option('--exclude-from <file>', 'read exclude patterns from a file, one per line (repeatable)', collect)
          .option('-x, --one-file-system', 'do not cross into other file systems below a source')
          .option('-n, --dry-run', 'print what would be done (link / copy / mkdir ...) and write nothing')
          .option('--wait [duration]', 'wait for a running backup to finish instead of exiting with code 3 (optionally at most DURATION, e.g. 2h)')
          .option(
            '--allow-empty',
            'publish a generation even when a source root is empty, or the excludes leave nothing of it (refused by default: an unmounted file system looks empty)',
          )
          .option(
            '--accept-source-change',
            'for this run, accept a source root on another file system than for the previous generation, or one that lost more than --max-source-loss of its entries (refused by default: an unmounted file system, a stray file in its mount point)',
          )
          .option(
            '--max-source-loss <percent>',
            `refuse to publish a part whose source lost more than this share of the entries the previous generation saw (default ${DEFAULT_MAX_SOURCE_LOSS * 100}%; 100% turns it off; overrides the config's, also per part)`,
          )
          .option(
            '--dedup <scope>',
            'link a new or changed file to an identical one already in the spool: off, part (the previous generation of the part; default) or host (also the newest generation of every other part of the host on the same file system)',
          )
          .option(
            '--dedup-generations <n>',
            `how many generations of the part a new file is looked for in: the previous one and n-1 before it (default ${DEDUP_GENERATIONS}; 1: the previous one only)`,
          )
          .option('--dedup-verify', 'compare bytes before a content link (default)')
          .option('--no-dedup-verify', 'trust size, metadata and XXH64 alone for content links (faster; see docs/CONTENT.md)')
          .option('--checksum', 'decide "unchanged" by content hash, not only size and mtime (reads every source file)')
          .option(
            '--no-checksum',
            'decide "unchanged" by size and mtime, reading only files whose ctime moved (the default; overrides the config\'s checksum: true)',
          )
          .option('--no-xattrs', 'leave extended attributes, POSIX ACLs, capabilities and SELinux labels out (rsync -a behaviour; the default keeps them)')
          .option('--parallel-parts', 'back up all parts at the same time (worth it when they are on different drives)')
          .option('--no-parallel-parts', 'back up the parts one after the other (the default; overrides the config)')
          .option('--no-journal', "scan every directory even when the watcher's journal could be used (hardsnap watch, docs/WATCH.md)")
          .option('--full-scan-every <duration>', 'with a journal: scan everything at least this often anyway (default 7d)')
          .option('--audit-sample <n>', 'with a journal: how many skipped directories to check against the previous manifest (default 100)')
          .option('--journal-timeout <duration>', 'how long to wait for the watcher to answer (default 10s)')
          .option('--no-flush', 'do not syncfs the spool before publishing (unsafe on power loss; for measurements only)')
          .option('--progress', 'show progress bars even when stderr is not a terminal')
          .option('--no-progress', 'no progress bars, even on a terminal (the summary line stays)')
          .addHelpText(
            'after',
            `
Exit codes: 0 published; 1 bad usage or input (nothing written); 2 failed (nothing published,
'last' untouched: also a spool that is not mounted, a source root missing or empty, on another
file system than last time, or with more than --max-source-loss fewer entries); 3 another run
holds the lock; 23 published but some entries could not be transferred (listed on stderr); 24
published, some source files vanished during the run; 130/143/129 stopped by SIGINT/SIGTERM/
SIGHUP (nothing published, recorded; the next run resumes).

Output: on a terminal, a progress bar per part and a summary line. Not on a terminal (cron),
nothing on success; warnings and errors on stderr. -v/--verbose: one line per written entry on
stdout, like rsync -i (>f+++++++++ new file, >f..t...... changed, hf unchanged and hard-linked,
hf+++++++++ PATH (content link) linked to an identical file, hf+++++++++ PATH => OTHER a second
name of one source inode, cd+++++++++ new directory) and, not on a terminal, a progress line at most every minute.
-q/--quiet: errors and warnings only, and no line for vanished files (exit 24 says it).
Per-file problems: the first ${SHOWN_ERRORS} errors one line each, then a closing count; vanished
files one closing line with the count and the first paths; every one with --verbose.
See docs/CLI.md.

Examples:
  hardsnap backup --spool /var/backups/hs --part etc=/etc
  hardsnap backup --spool /mnt/nfs/dp_spool --host 192.0.2.10 \\
      --part mail/imap=/var/spool/cyrus/data --part bm/pgsql=/var/backups/pgsql --exclude '*.tmp'
  hardsnap backup --config /etc/hardsnap.yaml --dry-run
  hardsnap backup --spool /srv/hs --part home=/home --dedup host --checksum
  hardsnap backup --config /etc/hardsnap.yaml --min-interval 20h --prune --keep-daily 7 \\
      --pre-hook '/usr/local/sbin/dump-pgsql /var/backups/pgsql' --metrics-file /var/lib/node_exporter/hardsnap.prom`,
          ),
      ),
    ),
  ).action(async (o: BackupCliOptions) => ctx.run(o, (out) => backup(o, ctx, out)));
}

/**
 * What is known of a part's size when it starts, for the percentage and ETA of its progress
 * (src/ui/progress.ts): its previous run's count; on a first run, the used inodes of the
 * source's file system when the source is that file system's root; and a count of the source
 * made ahead of the backup, started here.
 */
function estimatesOf(opts: BackupOptions, part: string): Estimates {
  const spec = opts.parts.find((p) => p.name === part);
  const previous = expectedEntries(opts.spool, opts.host, part);
  // with a previous count, no count ahead: on an incremental run its directory reads would
  // compete with the backup's own (measured: docs/CLI.md "Progress")
  if (!spec || previous !== undefined) return { previous };
  let counter: Estimates['counter'] = null;
  try {
    const skip = new Set<string>();
    const sp = fs.statSync(opts.spool, { throwIfNoEntry: false });
    if (sp) skip.add(`${sp.dev}:${sp.ino}`);
    counter = countAhead({
      source: spec.source,
      excludes: compileExcludes([...opts.exclude, ...(spec.exclude ?? [])]),
      oneFileSystem: opts.oneFileSystem,
      skip,
    });
  } catch {
    /* no count: the bar shows what else it knows */
  }
  return { fileSystem: fileSystemEstimate(spec.source), counter };
}

/** The used inodes of the source's file system, when the source is its root (else unknown). */
function fileSystemEstimate(source: string): number | undefined {
  if (isAlias(source)) return undefined; // its parent is not path.join(source, '..')
  try {
    const st = fs.statSync(source);
    const up = fs.statSync(path.join(source, '..'));
    if (st.dev === up.dev && st.ino !== up.ino) return undefined; // not a mount root
    const s = fs.statfsSync(source);
    const used = s.files - s.ffree;
    return s.files > 0 && used > 0 ? used : undefined;
  } catch {
    return undefined;
  }
}

/** The entry count of the part's last run that published. */
function expectedEntries(spool: string, host: string, part: string): number | undefined {
  try {
    const runs = readRuns(hostDir(spool, host));
    for (let i = runs.length - 1; i >= 0; i--) {
      // a run that published (an interrupted or refused one counted only part of the tree)
      if (runs[i]!.status !== 'ok' && runs[i]!.status !== 'partial') continue;
      const n = runs[i]!.parts?.[part]?.entries;
      if (typeof n === 'number' && n > 0) return n;
    }
  } catch {
    /* no estimate: the bar shows counts and rates without a percentage */
  }
  return undefined;
}

function dedupScope(v: string): DedupScope {
  if (v === 'off' || v === 'part' || v === 'host') return v;
  throw new UsageError(`invalid --dedup ${JSON.stringify(v)}: expected off, part or host`);
}

function journalSettings(o: BackupCliOptions, cfg: ReturnType<CliContext['config']>): JournalSettings {
  const every = o.fullScanEvery ?? cfg.fullScanEvery;
  const timeout = o.journalTimeout ?? cfg.journalTimeout;
  const sample = o.auditSample !== undefined ? wholeNumber(o.auditSample, '--audit-sample', 0) : (cfg.auditSample ?? DEFAULT_JOURNAL.auditSample);
  return {
    enabled: o.journal !== false && cfg.journal !== false,
    fullScanEveryMs: every ? parseDuration(every, '--full-scan-every') : DEFAULT_JOURNAL.fullScanEveryMs,
    auditSample: sample,
    syncTimeoutMs: timeout ? parseDuration(timeout, '--journal-timeout') : DEFAULT_JOURNAL.syncTimeoutMs,
  };
}

function wholeNumber(v: string, flag: string, min: number): number {
  if (!/^\d{1,9}$/.test(v) || Number(v) < min) throw new UsageError(`invalid ${flag} ${JSON.stringify(v)}: expected a whole number >= ${min}`);
  return Number(v);
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
    ? o.part.map((a) => partSpecArg(a))
    : (cfg.parts ?? []).map((p) => ({ name: p.name, source: p.path, exclude: p.exclude }));
  // max-source-loss of the part in the config, else the config's; --part replaces the config's
  // parts with their settings (CONFIG.md): its parts get the config's top-level value, as their excludes
  const fromMap = o.part?.length ? [] : (cfg.parts ?? []);
  for (const p of parts) p.maxSourceLoss = fromMap.find((c) => c.name === p.name)?.maxSourceLoss ?? cfg.maxSourceLoss;
  // a pattern with bytes that are not UTF-8 is matched as those bytes
  const exclude: (string | Buffer)[] = o.exclude ? o.exclude.map((x) => (hasRawBytes(x) ? bytesOfArg(x) : x)) : [...(cfg.exclude ?? [])];
  for (const f of o.excludeFrom ?? cfg.excludeFrom ?? []) exclude.push(...readExcludeFile(f));
  const at = now();
  const opts: BackupOptions = {
    spool,
    host,
    parts,
    exclude,
    oneFileSystem: Boolean(o.oneFileSystem ?? cfg.oneFileSystem),
    dryRun: Boolean(o.dryRun),
    allowEmpty: Boolean(o.allowEmpty),
    acceptSourceChange: Boolean(o.acceptSourceChange),
    maxSourceLoss: o.maxSourceLoss !== undefined ? parsePercent(o.maxSourceLoss, '--max-source-loss') : undefined,
    flush: o.flush !== false,
    parallelParts: Boolean(o.parallelParts ?? cfg.parallelParts),
    waitMs: waitMs(o.wait ?? cfg.wait),
    now: at,
    command: commandLine(),
    // the command line overrides the config, which overrides the defaults (part, verify, no checksum)
    dedup: o.dedup !== undefined ? dedupScope(o.dedup) : (cfg.dedup ?? 'part'),
    dedupVerify: (o.dedupVerify ?? cfg.dedupVerify) !== false,
    dedupGenerations:
      o.dedupGenerations !== undefined ? wholeNumber(o.dedupGenerations, '--dedup-generations', 1) : (cfg.dedupGenerations ?? DEDUP_GENERATIONS),
    checksum: Boolean(o.checksum ?? cfg.checksum),
    xattrs: o.xattrs !== false && cfg.xattrs !== false,
    journal: journalSettings(o, cfg),
    ...opsOptions(o, cfg, at),
  };
  // before the first job on the pool: its size depends on where the spool and sources are
  const pool = sizeThreadPool([spool, ...parts.map((p) => p.source)]);
  if (pool?.limit)
    out.note(
      `the process limit (ulimit -u ${pool.limit}) leaves room for ${pool.size} thread${pool.size === 1 ? '' : 's'} in the I/O pool only: the run may be slower`,
    );
  // a dry run prints one line per entry on stdout: no bars over it unless asked for; under
  // --json stderr carries JSON lines: no bars either
  const mode = progressMode({ ...o, progress: o.progress ?? (opts.dryRun || o.json ? false : undefined) }, out.tty);
  const progress = new BackupProgress(mode, o.progress === true && !out.tty ? forcedTty() : process.stderr, (p) => estimatesOf(opts, p));
  if (mode === 'bars') out.interject = (line) => progress.log(line);
  const itemized = Boolean(o.verbose) && !o.quiet && !o.json && !opts.dryRun;
  const itemLine = (l: string) => (mode === 'bars' && process.stdout.isTTY ? progress.log(l) : out.print(l));
  let result: BackupResult;
  let ok = false;
  // SIGINT, SIGTERM, SIGHUP: the run stops cleanly and says so (src/cli/interrupt.ts)
  const interrupts = catchInterrupts();
  opts.signal = interrupts.signal;
  // a few lines and closing counts, never one line per vanished file (src/ui/problem-report.ts)
  const report = new ProblemReport(out, {
    verbose: o.verbose,
    quiet: o.quiet,
    failed: 'could not be transferred',
    rest: opts.dryRun ? undefined : 'runs.jsonl keeps the first 50',
  });
  try {
    result = await backupAndMaintain(opts, {
      ...opsPrinter(out),
      onProblem: (p) =>
        p.severity === 'vanished' ? report.vanish(`${p.part}: ${displayPath(p.path)}`) : report.error(`${p.part}: ${displayPath(p.path)}: ${p.message}`),
      onNote: (m) => out.note(m),
      onWarn: (m) => out.warn(m),
      onPlan:
        opts.dryRun && !o.json
          ? (part, rel, d, _e, how) =>
              out.print(
                how?.via === 'hardlink'
                  ? `${'link'.padEnd(7)} ${part}/${displayPath(rel)}  (another name of ${part}/${displayPath(how.to)})`
                  : `${d.action.padEnd(7)} ${part}/${displayPath(rel)}  (${d.reason})`,
              )
          : itemized
            ? (part, rel, d, e, how) => {
                const l = itemize(part, rel, d, e, how);
                if (l !== null) itemLine(l);
              }
            : undefined,
      onPhase: progress.active ? (phase, part) => progress.phase(phase, part) : undefined,
      onProgress: progress.active ? (part, s) => progress.update(part, s) : undefined,
      onPruneStart: progress.active ? () => progress.phase('prune') : undefined,
    });
    if (result.status === 'skipped') out.note(result.skipped!);
    ok = true;
    // a signal that arrived while synchronous work ran (publishing, deleting a generation) is
    // handled now, before the handlers go: it must not be dropped (exit 0, no line)
    await handlePendingSignals();
  } finally {
    progress.stop(!ok);
    out.interject = null;
    interrupts.dispose();
    report.close();
  }
  testPause('backup-ended');
  // a signal that came meanwhile is said before the process ends (dispose(): nothing to stop)
  await handlePendingSignals();
  if (interrupts.received && result.status !== 'skipped') {
    // the signal came after the generation was published (during the post hook or prune)
    out.warn(
      `interrupted by ${interrupts.received} after publishing ${result.generation}: the generation stands; what was to follow it (post hook, --prune) was stopped or skipped`,
    );
    return INTERRUPT_EXIT[interrupts.received];
  }
  if (o.json) out.json(toJson(result));
  else if (result.status !== 'skipped') out.summary(summaryLine(result));
  return result.exit;
}

export function summaryLine(r: BackupResult): string {
  const per = r.parts.map((p) => {
    const s = p.stats;
    return (
      `${p.part}: ${s.entries} entries, ${s.linked} linked, ${s.copied} written (${formatBytes(s.bytesWritten)})` +
      (s.cloned ? `, ${s.cloned} cloned (${formatBytes(s.bytesCloned)} shared)` : '') +
      (s.dedupLinked ? `, ${s.dedupLinked} deduplicated (${formatBytes(s.dedupBytes)} saved)` : '') +
      (s.checksumChanged ? `, ${s.checksumChanged} changed by checksum only` : '') +
      (s.sameStampChanged ? `, ${s.sameStampChanged} changed under the same size and mtime` : '') +
      (p.journal.used ? `, journal: ${p.journal.rescannedDirs} directories scanned, ${p.journal.skippedDirs} skipped` : '') +
      (p.resumed ? `, resumed (${s.reused} kept)` : '') +
      (s.emlinkCopies ? `, ${s.emlinkCopies} EMLINK copies` : '')
    );
  });
  const verdict =
    r.status === 'dry-run'
      ? 'dry run, nothing written'
      : r.exit === 0
        ? 'published'
        : `published with ${plural(r.problems, 'problem')}, ${r.vanished} vanished`;
  return `hardsnap: ${r.generation}: ${per.join('; ')}; ${verdict} in ${formatMs(r.durationMs)}`;
}

function toJson(r: BackupResult): unknown {
  return { ...r, parts: r.parts.map((p) => ({ ...p })) };
}
