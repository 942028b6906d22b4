/**
 * Which generation a restore uses (SPEC.md "WHEN"): pure functions over lists of generations,
 * so the error for "nothing at or before WHEN" can name the nearest ones.
 */
import { UsageError } from '../core/errors.js';
import { compareGenerations, type Generation } from '../spool/names.js';
import { selectGeneration, type When } from '../spool/when.js';

/** The newest complete generation, or the one `when` designates; throws a UsageError (exit 1). */
export function chooseGeneration(part: string, gens: Generation[], when: When | undefined, whenText?: string): Generation {
  const complete = gens.filter((g) => g.complete);
  const g = when ? selectGeneration(complete, when) : complete[complete.length - 1];
  if (g) return g;
  if (!complete.length) {
    throw new UsageError(`part '${part}' has no complete generation to restore`, {
      code: 'ENOGEN',
      hint: gens.length ? 'its only generation is partial: let the next backup finish it' : 'run a backup first',
    });
  }
  throw new UsageError(
    `part '${part}' has no complete generation ${when!.kind === 'name' ? `named ${when!.name}` : `at or before ${JSON.stringify(whenText ?? '')} (${when!.cutoff.toISOString()})`}; ` +
      `nearest: ${nearest(complete, when!).join(', ')}`,
    { code: 'ENOGEN', hint: "see 'hardsnap list'" },
  );
}

/** Up to two complete generations on each side of WHEN's time, oldest first. */
export function nearest(complete: Generation[], when: When): string[] {
  const t = when.kind === 'name' ? nameTime(complete, when.name) : when.cutoff.getTime();
  const before = complete.filter((g) => g.time.getTime() <= t).slice(-2);
  const after = complete.filter((g) => g.time.getTime() > t).slice(0, 2);
  return [...before, ...after].map((g) => g.name);
}

function nameTime(gens: Generation[], name: string): number {
  // names sort chronologically; a name not in the list still has a position
  const i = gens.findIndex((g) => g.name > name);
  return i < 0 ? Number.POSITIVE_INFINITY : i === 0 ? -1 : gens[i - 1]!.time.getTime();
}

export interface AllChoice {
  /** the one generation name the restore is about */
  name: string;
  parts: { part: string; generation: Generation | undefined; substituted: boolean }[];
}

/**
 * `restore --all`: one generation name for the whole host (the newest complete one at or before
 * WHEN over all parts, or WHEN's name); each part gets that generation, or its newest complete
 * one before it (substituted), or none.
 */
export function chooseAll(byPart: Map<string, Generation[]>, when: When | undefined, whenText?: string): AllChoice {
  const all = [...byPart.values()]
    .flat()
    .filter((g) => g.complete)
    .sort(compareGenerations);
  let name: string;
  if (when?.kind === 'name') {
    if (!all.some((g) => g.name === when.name)) {
      throw new UsageError(`no part of this host has a complete generation named ${when.name}; nearest: ${nearest(dedupe(all), when).join(', ') || 'none'}`, {
        code: 'ENOGEN',
        hint: "see 'hardsnap list'",
      });
    }
    name = when.name;
  } else {
    const g = when ? selectGeneration(all, when) : all[all.length - 1];
    if (!g) {
      throw new UsageError(
        all.length
          ? `no complete generation at or before ${JSON.stringify(whenText ?? '')} (${when!.cutoff.toISOString()}); nearest: ${nearest(dedupe(all), when!).join(', ')}`
          : 'this host has no complete generation to restore',
        { code: 'ENOGEN', hint: "see 'hardsnap list'" },
      );
    }
    name = g.name;
  }
  const parts = [...byPart.entries()].map(([part, gens]) => {
    const ok = gens.filter((g) => g.complete && g.name <= name);
    const generation = ok[ok.length - 1];
    return { part, generation, substituted: generation !== undefined && generation.name !== name };
  });
  return { name, parts };
}

function dedupe(gens: Generation[]): Generation[] {
  const seen = new Set<string>();
  return gens.filter((g) => !seen.has(g.name) && (seen.add(g.name), true));
}
