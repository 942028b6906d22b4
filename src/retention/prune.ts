/**
 * `prune`: applies the retention policy to the parts of a host, under the host lock. Per part:
 * empty the trash a killed prune left, judge the complete generations (policy.ts), then move
 * each one to remove into the trash and delete it. The newest complete generation, the target
 * of `last` and pinned generations are never removed; `.partial` ones are not judged (they are
 * the next backup's resume point).
 */
import path from 'node:path';
import { removeTree } from '../apply/remove-tree.js';
import { hostDir, listGenerations, listParts, partDir, trashDir } from '../spool/layout.js';
import { readLast } from '../spool/last.js';
import { acquireLock, type LockHandle } from '../spool/lock.js';
import { UsageError } from '../core/errors.js';
import { testPause } from '../core/test-pause.js';
import { applyPolicy, type Decision, type RetentionRules } from './policy.js';
import { readPins } from './pins.js';
import { emptyTrash, moveToTrash } from './trash.js';

export interface PruneOptions {
  spool: string;
  host: string;
  /** the parts to prune; all parts of the host when empty */
  parts: string[];
  rules: RetentionRules;
  now: Date;
  dryRun: boolean;
  waitMs: number;
  command: string;
  /** the caller already holds the host lock (backup --prune) */
  locked?: boolean;
}

export interface PartPrune {
  part: string;
  /** every generation oldest first; partial ones with keep true and reason `partial` */
  decisions: (Decision & { complete: boolean })[];
  removed: string[];
  /** names left in the trash by an interrupted prune, now deleted */
  trashEmptied: string[];
}

export interface PruneEvents {
  onNote(message: string): void;
  onRemoved?(part: string, generation: string): void;
}

export async function runPrune(o: PruneOptions, ev: PruneEvents): Promise<PartPrune[]> {
  const all = listParts(o.spool, o.host);
  for (const p of o.parts) {
    if (!all.includes(p)) throw new UsageError(`no part '${p}' for host '${o.host}' in ${o.spool}`, { hint: "see 'hardsnap list'" });
  }
  const parts = o.parts.length ? o.parts : all;
  // refuse missing rules before taking the lock or touching anything
  applyPolicy([], o.rules, o.now);
  let lock: LockHandle | null = null;
  if (!o.dryRun && !o.locked) {
    lock = await acquireLock(hostDir(o.spool, o.host), o.command, {
      waitMs: o.waitMs,
      onWait: (h) => ev.onNote(`waiting for the lock held by pid ${h.pid} (${h.command})`),
    });
  }
  try {
    return parts.map((p) => prunePart(o, p, ev));
  } finally {
    lock?.release();
  }
}

function prunePart(o: PruneOptions, part: string, ev: PruneEvents): PartPrune {
  const pdir = partDir(o.spool, o.host, part);
  const trashEmptied = o.dryRun ? [] : emptyTrash(pdir);
  if (trashEmptied.length) ev.onNote(`part '${part}': finished deleting what an interrupted prune left in the trash (${trashEmptied.join(', ')})`);
  const gens = listGenerations(o.spool, o.host, part);
  const pins = readPins(pdir);
  const last = readLast(pdir);
  const result = applyPolicy(
    gens.map((g) => ({ name: g.name, time: g.time, complete: g.complete, pinned: pins.has(g.name) })),
    o.rules,
    o.now,
    last ? [path.basename(last)] : [],
  );
  const protect = new Set([last ? path.basename(last) : '', result.keep.at(-1)?.name ?? '']);
  const removed: string[] = [];
  if (!o.dryRun) {
    for (const d of result.remove) {
      // a pin written after this prune started still counts
      if (readPins(pdir).has(d.name)) {
        d.keep = true;
        d.reasons = ['pinned'];
        continue;
      }
      if (protect.has(d.name)) throw new Error(`internal error: prune was about to remove the protected generation ${d.name}`);
      moveToTrash(pdir, d.name);
      if (removed.length === 0) testPause('mid-prune');
      removeTree(path.join(trashDir(pdir), d.name));
      removed.push(d.name);
      ev.onRemoved?.(part, d.name);
    }
    emptyTrash(pdir);
  }
  const byName = new Map(result.decisions.map((d) => [d.name, d]));
  const decisions = gens.map((g) =>
    g.complete
      ? { ...byName.get(g.name)!, complete: true }
      : { name: g.name, keep: true, reasons: ['partial (resumed by the next backup)'], complete: false },
  );
  return { part, decisions, removed, trashEmptied };
}
