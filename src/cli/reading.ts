/**
 * What the reading commands (verify, restore, diff, du, history) share: a lease on the
 * generations they read, so that a prune running meanwhile keeps them (src/spool/leases.ts),
 * and the check, once the lease is held, that they are still there.
 */
import { commandLine } from './argv.js';
import { fs } from '../fs/disk.js';
import { partDir } from '../spool/layout.js';
import { GenerationGoneError, generationGone, readerLease, type LeaseHandle } from '../spool/leases.js';
import type { Generation } from '../spool/names.js';
import type { Output } from '../ui/output.js';

export interface Reading {
  /** the generations asked for that are still there, in the order given */
  present: Generation[];
  /** the ones a prune removed before the lease was taken */
  gone: Generation[];
  release(): void;
}


/** Leases `gens` (all of one part) for reading; generations already gone are sorted out. */
export function leaseForReading(spool: string, host: string, part: string, gens: readonly Generation[], out: Output): Reading {
  const lease: LeaseHandle = gens.length
    ? readerLease(partDir(spool, host, part), gens.map((g) => g.name), commandLine(), (m) => out.note(m))
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
