/**
 * What the reading commands (verify, restore, diff, du, history) share: a lease on the
 * generations they read, so that a prune running meanwhile keeps them (src/spool/leases.ts),
 * and the check, once the lease is held, that they are still there.
 */
import { fs } from '../fs/disk.js';
import { partDir } from './layout.js';
import { GenerationGoneError, generationGone, readerLease, type LeaseHandle } from './leases.js';
import type { Generation } from './names.js';

export interface Reading {
  /** the generations asked for that are still there, in the order given */
  present: Generation[];
  /** the ones a prune removed before the lease was taken */
  gone: Generation[];
  release(): void;
}

/**
 * Leases `gens` (all of one part) for reading; generations already gone are sorted out.
 * `command` is recorded in the lease (status shows it); `onNote` hears about a lease that
 * could not be written (the read goes on without one).
 */
export function leaseForReading(spool: string, host: string, part: string, gens: readonly Generation[], command: string, onNote: (m: string) => void): Reading {
  const lease: LeaseHandle = gens.length
    ? readerLease(
        partDir(spool, host, part),
        gens.map((g) => g.name),
        command,
        onNote,
      )
    : { leases: [], release() {} };
  const present: Generation[] = [];
  const gone: Generation[] = [];
  for (const g of gens) (generationGone(g.path) ? gone : present).push(g);
  return { present, gone, release: () => lease.release() };
}

/**
 * A check for a reader to call when something it reads is missing: throws GenerationGoneError
 * (one line) when the generation was pruned under it, instead of one line per missing file.
 */
export function presenceCheck(g: Generation, what: string): () => void {
  const ino = fs.lstatSync(g.path, { throwIfNoEntry: false })?.ino;
  return () => {
    if (generationGone(g.path, ino)) throw new GenerationGoneError(g.part, g.name, what);
  };
}
