/**
 * What a backup run knows of its parts in the spool, read once, under the host lock, and handed
 * down to every step that needs it (choosing the generation's name, the source guard, building
 * each part, the content index): one listing of each part directory per run, not one per step
 * (each listing is a round trip or several on an NFS spool). Only the run changes these parts
 * while it holds the lock (a prune takes the same lock), so the reading stays true for the run.
 *
 * `--min-interval` decides before the lock (a skipped run takes no lock): its own, earlier
 * reading (min-interval.ts).
 */
import { listGenerations, partDir } from '../spool/layout.js';
import type { Generation } from '../spool/names.js';

export interface PartState {
  name: string;
  /** the part's directory in the spool (it may not exist yet: a new part) */
  dir: string;
  /** every generation, partial ones included, oldest first */
  generations: Generation[];
  /** the complete ones, oldest first */
  complete: Generation[];
  /** the newest complete generation: what the run compares with and links to */
  previous: Generation | null;
}

export type RunState = ReadonlyMap<string, PartState>;

export function readPartState(spool: string, host: string, part: string): PartState {
  const generations = listGenerations(spool, host, part);
  const complete = generations.filter((g) => g.complete);
  return { name: part, dir: partDir(spool, host, part), generations, complete, previous: complete[complete.length - 1] ?? null };
}

export function readRunState(spool: string, host: string, parts: readonly { name: string }[]): RunState {
  return new Map(parts.map((p) => [p.name, readPartState(spool, host, p.name)]));
}
