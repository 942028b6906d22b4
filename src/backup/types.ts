import type { ExitCode } from '../core/errors.js';
import type { BuildFindings, BuildStats, PlanOutcome, Problem } from '../apply/types.js';
import type { Decision } from '../plan/decide.js';
import type { Meta } from '../fs/entry.js';
import type { HooksOptions } from '../hooks/backup-hooks.js';
import type { HookResult } from '../hooks/run-hook.js';
import type { DedupScope } from '../apply/dedup-index.js';
import type { JournalSettings } from '../watch/journal-use.js';
import type { JournalReport } from '../watch/scan-choice.js';
import type { RetentionRules } from '../retention/policy.js';

export interface PartSpec {
  name: string;
  source: string;
  exclude?: (string | Buffer)[];
  /** the largest share (0..1) of its entries the source may lose since the previous generation */
  maxSourceLoss?: number;
}

export interface BackupOptions {
  spool: string;
  host: string;
  parts: PartSpec[];
  /** patterns for every part */
  exclude: (string | Buffer)[];
  oneFileSystem: boolean;
  dryRun: boolean;
  /** allow publishing a generation of an empty source root, or one the excludes leave empty */
  allowEmpty: boolean;
  /**
   * publish even when a source root is on another file system than for the previous generation,
   * or lost more than its max-source-loss of its entries (said as a note); otherwise exit 2
   */
  acceptSourceChange?: boolean;
  /** max-source-loss for every part (the command line's), over each part's own */
  maxSourceLoss?: number;
  /** flush the spool before publishing (SPEC.md); off only for measurements */
  flush: boolean;
  /** build all parts at the same time (parts on different drives) */
  parallelParts: boolean;
  /** how long to wait for the lock; 0 = fail at once */
  waitMs: number;
  now: Date;
  /** the command line, recorded in the lock and the run log */
  command: string;
  /** skip the run when every part has a generation younger than this (ms; 0 = off) */
  minIntervalMs?: number;
  hooks?: HooksOptions;
  /** after publishing, apply these retention rules to the parts backed up (maintain.ts) */
  prune?: RetentionRules;
  /** write Prometheus metrics here after the run (maintain.ts) */
  metricsFile?: string;
  /** content deduplication scope (docs/CONTENT.md); default 'part' */
  dedup?: DedupScope;
  /** generations of the part the content index looks in, the previous one included; default 7 */
  dedupGenerations?: number;
  /** compare bytes before a content link; default true */
  dedupVerify?: boolean;
  /** decide "unchanged" by content hash instead of size and mtime */
  checksum?: boolean;
  /** read, record and write extended attributes and ACLs (default true; --no-xattrs) */
  xattrs?: boolean;
  /** watch mode: when and how to use the watcher's journal (docs/WATCH.md) */
  journal?: JournalSettings;
  /**
   * aborted when the run must stop (the CLI's SIGINT/SIGTERM/SIGHUP, with an InterruptedError
   * as its reason): the run stops cleanly, publishes nothing, records itself as interrupted and
   * throws an InterruptedError; the partial generation stays for the next run to resume
   */
  signal?: AbortSignal;
}

export interface BackupEvents {
  onProblem(p: Problem): void;
  onNote(message: string): void;
  /** something the user should know although the run succeeds (one line, not per file: a trash that cannot be emptied, drift in the previous generation) */
  onWarn?(message: string): void;
  onProgress?(part: string, s: BuildStats): void;
  /** each entry's decision (dry runs and real runs alike); set it only when needed: it costs a path join per entry */
  onPlan?(part: string, rel: Buffer, d: Decision, e: Meta, how?: PlanOutcome): void;
  /**
   * 'prepare' when a part starts, then 'previous' (reading the previous manifest), 'index'
   * (earlier generations for content links), 'journal' (the watcher), 'scan' (the walk: link
   * and copy; onProgress gets the live statistics at once), 'built' when its tree is done;
   * 'publish' once for the run
   */
  onPhase?(phase: 'prepare' | 'previous' | 'index' | 'journal' | 'scan' | 'built' | 'publish', part?: string): void;
  /** a hook finished (its result says whether it failed) */
  onHook?(which: 'pre' | 'post', r: HookResult): void;
  /** a part's tree build began, into `partial` (`stats` are live: what is done so far) */
  onPartStarted?(part: string, stats: BuildStats, partial: string, resumed: boolean): void;
}

export interface PartResult {
  part: string;
  source: string;
  generation: string;
  path: string;
  previous: string | null;
  /** where the previous entries came from */
  compared: 'manifest' | 'walk' | 'none';
  resumed: boolean;
  /** the spool's file system clones (FICLONE: XFS, btrfs), probed for the part; false in a dry run */
  spoolClones: boolean;
  /** whether the watcher's journal was used, and why not (docs/WATCH.md) */
  journal: JournalReport;
  stats: BuildStats;
  /** drift, refused attribute namespaces, carried entries */
  findings: BuildFindings;
}

export interface BackupResult {
  generation: string;
  exit: ExitCode;
  status: 'ok' | 'partial' | 'failed' | 'dry-run' | 'skipped';
  /** why the run was skipped (--min-interval) */
  skipped?: string;
  parts: PartResult[];
  problems: number;
  vanished: number;
  notes: string[];
  started: string;
  ended: string;
  durationMs: number;
}
