import type { ExitCode } from '../core/errors.js';
import type { BuildStats, Problem } from '../apply/types.js';
import type { Decision } from '../plan/decide.js';

export interface PartSpec {
  name: string;
  source: string;
  exclude?: (string | Buffer)[];
}

export interface BackupOptions {
  spool: string;
  host: string;
  parts: PartSpec[];
  /** patterns for every part */
  exclude: (string | Buffer)[];
  oneFileSystem: boolean;
  dryRun: boolean;
  /** allow publishing a generation of an empty source root */
  allowEmpty: boolean;
  /** flush the spool before publishing (SPEC.md); off only for measurements */
  flush: boolean;
  /** build all parts at the same time (parts on different drives) */
  parallelParts: boolean;
  /** how long to wait for the lock; 0 = fail at once */
  waitMs: number;
  now: Date;
  /** the command line, recorded in the lock and the run log */
  command: string;
}

export interface BackupEvents {
  onProblem(p: Problem): void;
  onNote(message: string): void;
  onProgress?(part: string, s: BuildStats): void;
  onPlan?(part: string, rel: Buffer, d: Decision): void;
  onPhase?(phase: 'scan' | 'publish', part?: string): void;
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
  stats: BuildStats;
}

export interface BackupResult {
  generation: string;
  exit: ExitCode;
  status: 'ok' | 'partial' | 'failed' | 'dry-run';
  parts: PartResult[];
  problems: number;
  vanished: number;
  notes: string[];
  started: string;
  ended: string;
  durationMs: number;
}
