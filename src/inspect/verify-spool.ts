/**
 * `verify` over a spool: the generations asked for (every complete one of each part, or the one
 * a WHEN selects), each under a reader's lease so that a prune running meanwhile keeps it, each
 * compared with its manifest by GenerationVerifier (verify.ts). An inode's hash is computed once
 * per part however many generations share it. Problems are data: each goes to onProblem, the
 * run goes on; a generation pruned before or while it was verified is a warning, not a problem.
 */
import path from 'node:path';
import { parseGenerationName, type Generation } from '../spool/names.js';
import { manifestDir, partDir, trashDir } from '../spool/layout.js';
import { readLast } from '../spool/last.js';
import { readDirTypesIfExists } from '../fs/read.js';
import { selectGeneration, type When } from '../spool/when.js';
import { GenerationGoneError } from '../spool/leases.js';
import { leaseForReading, presenceCheck } from '../spool/reading.js';
import { completeGenerations, openManifest, partsOf, type Target } from './manifests.js';
import { GenerationVerifier, type VerifyProblem } from './verify.js';

export interface VerifyTargetOptions {
  /** only this part (default: every part of the host) */
  part?: string;
  /** only the newest complete generation at or before this, in each part that has one */
  when?: When;
}

export interface SpoolVerifyOptions {
  deep: boolean;
  owners: boolean;
  /** recorded in the reader's leases */
  command: string;
}

export interface SpoolVerifyEvents {
  onProblem(g: Generation, p: VerifyProblem): void;
  onNote(message: string): void;
  onWarn(message: string): void;
}

export interface VerifiedGeneration {
  part: string;
  generation: string;
  entries: number;
  hashed: number;
  problems: number;
}

export interface SpoolVerifyResult {
  generations: VerifiedGeneration[];
  bytesHashed: number;
}

/** A generation the spool names that is not there: by its manifest, or by `last`. */
export interface GoneGeneration {
  generation: Generation;
  message: string;
}

/**
 * The generations the part's manifests or its `last` name that are not in the spool (deleted by
 * hand: `last` then leads nowhere, a tape job copies nothing). A generation a prune is deleting
 * (in the trash, its manifest not yet) is not one of them.
 */
function goneGenerations(t: Target, part: string, present: readonly Generation[]): GoneGeneration[] {
  const dir = partDir(t.spool, t.host, part);
  const there = new Set(present.map((g) => g.name));
  const pruning = readDirTypesIfExists(trashDir(dir)).map((e) => e.name);
  const gone = new Map<string, string>();
  for (const { name: n } of readDirTypesIfExists(manifestDir(dir))) {
    if (!n.endsWith('.hsm')) continue;
    const name = n.slice(0, -4);
    if (!there.has(name) && parseGenerationName(name) && !pruning.some((x) => x.startsWith(name)))
      gone.set(name, 'the generation is not there, but its manifest is (deleted by hand?)');
  }
  const last = readLast(dir);
  if (last && !there.has(last) && parseGenerationName(last))
    gone.set(last, `\`last\` names this generation, which is not there (deleted by hand?): ${gone.has(last) ? 'its manifest is' : 'no manifest either'}`);
  return [...gone].map(([name, message]) => ({
    generation: { part, name, path: path.join(dir, name), time: parseGenerationName(name)!, complete: true },
    message,
  }));
}

/**
 * The generations `verify` looks at, part by part; `unmatched`: the parts where `when` selects
 * none; `gone`: those the spool names that are not there (every generation asked for only).
 */
export function verifyTargets(t: Target, o: VerifyTargetOptions): { targets: Generation[]; unmatched: string[]; gone: GoneGeneration[] } {
  const targets: Generation[] = [];
  const unmatched: string[] = [];
  const gone: GoneGeneration[] = [];
  for (const part of partsOf(t, o.part)) {
    const gens = completeGenerations(t, part);
    if (!o.when) {
      targets.push(...gens);
      gone.push(...goneGenerations(t, part, gens));
    } else {
      const g = selectGeneration(gens, o.when);
      if (g) targets.push(g);
      else unmatched.push(part);
    }
  }
  return { targets, unmatched, gone };
}

export function verifyGenerations(t: Target, targets: readonly Generation[], o: SpoolVerifyOptions, ev: SpoolVerifyEvents): SpoolVerifyResult {
  const out: VerifiedGeneration[] = [];
  let bytes = 0;
  let hashes = new Map<number, string>();
  let part: string | null = null;
  for (const g of targets) {
    if (g.part !== part) {
      part = g.part;
      hashes = new Map();
    }
    const reading = leaseForReading(t.spool, t.host, g.part, [g], o.command, ev.onNote);
    try {
      if (reading.gone.length) {
        ev.onWarn(`${g.part} ${g.name}: pruned before it could be verified: skipped`);
        continue;
      }
      const r: VerifiedGeneration = { part: g.part, generation: g.name, entries: 0, hashed: 0, problems: 0 };
      const report = (p: VerifyProblem) => {
        r.problems++;
        ev.onProblem(g, p);
      };
      const assertPresent = presenceCheck(g, 'verify of it stopped');
      let m;
      try {
        m = openManifest(t, g.part, g.name);
      } catch (err) {
        try {
          assertPresent();
        } catch (gone) {
          ev.onWarn((gone as Error).message);
          continue;
        }
        out.push(r);
        report({ kind: 'manifest', path: Buffer.alloc(0), message: (err as Error).message });
        continue;
      }
      try {
        const v = new GenerationVerifier(m, { deep: o.deep, owners: o.owners && m.header.owners !== false, hashes, assertPresent }, report);
        v.run(g.path);
        if (v.inodeNote) ev.onNote(`${g.part} ${g.name}: ${v.inodeNote}`);
        r.entries = v.stats.entries;
        r.hashed = v.stats.hashed;
        bytes += v.stats.bytesHashed;
        out.push(r);
      } catch (err) {
        // pruned under us (by something that did not see the lease): one line, not one per file
        if (!(err instanceof GenerationGoneError)) throw err;
        ev.onWarn(err.message);
      } finally {
        m.close();
      }
    } finally {
      reading.release();
    }
  }
  return { generations: out, bytesHashed: bytes };
}
