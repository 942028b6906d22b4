/**
 * What a backup run knows of its parts in the spool, read once, under the host lock, and handed
 * down to every step that needs it (the refusal of a symlink named like a generation, choosing
 * the generation's name, the source guard, building each part, the content index, publishing):
 * one listing of each part directory per run, not one per step (each listing is a round trip or
 * several on an NFS spool; the manifests directory is listed once too, with the trash). Only the
 * run changes these parts while it holds the lock (a prune takes the same lock), so the reading
 * stays true for the run.
 *
 * `--min-interval` decides before the lock (a skipped run takes no lock): its own, earlier
 * reading (min-interval.ts).
 */
import { LAST, LATEST, generationSymlinkError, partDir, readGenerations } from '../spool/layout.js';
import type { Generation } from '../spool/names.js';
import path from 'node:path';
import { fs } from '../fs/disk.js';
import { HardsnapError } from '../core/errors.js';

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
  /** every name in the part's directory (what else is in the way of a generation's name) */
  names: ReadonlySet<string>;
  /** the temporary names of `last` and `LATEST` a killed run left (removed before publishing) */
  lastLeftovers: string[];
}

export type RunState = ReadonlyMap<string, PartState>;

/**
 * One listing of the part's directory. A symlink named like a generation or its `.partial` is
 * refused (exit 2): a run would resume into, or link from, whatever it points to (hardsnap
 * never makes one; `list`, `status` and retention do not take it for a generation).
 */
export function readPartState(spool: string, host: string, part: string): PartState {
  const dir = partDir(spool, host, part);
  const { generations, symlinks, names } = readGenerations(dir, part);
  if (symlinks.length) throw generationSymlinkError(symlinks[0]!);
  // `last` is renamed over at publishing: a directory there (a `cp -r` of a generation) would
  // fail the run after its generation was published, every night
  const last = path.join(dir, LAST);
  if (names.has(LAST) && fs.lstatSync(last, { throwIfNoEntry: false })?.isDirectory())
    throw new HardsnapError('ELAST', `${last} is a directory, not the symlink hardsnap keeps there: refusing to back up part '${part}'`, {
      exit: 2,
      path: last,
      hint: 'move it out of the spool (a copy of a generation made with cp -r?); the next run makes the symlink again; nothing was written',
    });
  const complete = generations.filter((g) => g.complete);
  const lastLeftovers = [...names].filter((n) => (n.startsWith(`.${LAST}.`) || n.startsWith(`.${LATEST}.`)) && n.endsWith('.tmp'));
  return { name: part, dir, generations, complete, previous: complete[complete.length - 1] ?? null, names, lastLeftovers };
}

export function readRunState(spool: string, host: string, parts: readonly { name: string }[]): RunState {
  return new Map(parts.map((p) => [p.name, readPartState(spool, host, p.name)]));
}
