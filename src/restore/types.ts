/** The data of a restore: what to restore where, and what happened (the core never prints). */
import type { ManifestEntry } from '../manifest/format.js';
import type { Replacement } from './target.js';

/**
 * What a problem means for the target (each is exit 23):
 * - `missing`: the entry is not in the target (not restored, or not all of it: its files);
 * - `inexact`: it is there, but not as the generation has it (content that does not match its
 *   hash, metadata or attributes that could not be set, taken without the manifest);
 * - `leftover`: it is restored, and something this restore made is left in the target (a
 *   private directory it could not remove).
 */
export type ProblemKind = 'missing' | 'inexact' | 'leftover';

/** A per-entry problem: the entry was not restored (or restored with a defect); the run goes on. */
export interface RestoreProblem {
  part: string;
  /** path relative to the part root, bytes */
  path: Buffer;
  /** errno name (ELOOP, EEXIST, ...) or EHASH / ESIZE / EPERM */
  code: string;
  message: string;
  kind: ProblemKind;
}

export interface RestoreStats {
  dirs: number;
  files: number;
  symlinks: number;
  specials: number;
  /** names restored as hard links to another restored name */
  hardlinks: number;
  bytes: number;
  problems: number;
}

export function newRestoreStats(): RestoreStats {
  return { dirs: 0, files: 0, symlinks: 0, specials: 0, hardlinks: 0, bytes: 0, problems: 0 };
}

export interface RestoreEvents {
  onProblem?(p: RestoreProblem): void;
  onNote?(message: string): void;
  /** something the user must hear about even under cron (a symlink removed from the target) */
  onWarn?(message: string): void;
  /** each entry, in restore order (the listing of --dry-run); rel is relative to the part root */
  onEntry?(part: string, rel: Buffer, e: ManifestEntry): void;
  /** something of the target in the way of entry `rel` was (in a dry run: would be) moved aside or removed */
  onReplace?(part: string, rel: Buffer, r: Replacement): void;
}

export interface PartRestoreResult {
  part: string;
  /** the generation restored */
  generation: string;
  /** absolute path of the generation directory */
  generationPath: string;
  /** where the part (or --path) landed */
  to: string;
  /** --all: the part lacked the chosen generation and an older one was used */
  substituted: boolean;
  /** 'manifest', or 'generation' when the manifest was missing or damaged and the tree was walked */
  source: 'manifest' | 'generation';
  stats: RestoreStats;
  problems: RestoreProblem[];
}
