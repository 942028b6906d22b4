/**
 * `prune`: applies the retention policy to the parts of a host, under the host lock. Per part:
 * empty the trash a killed prune left, judge the complete generations (policy.ts), then move
 * each one to remove into the trash and delete it. The newest complete generation, the target
 * of `last`, pinned generations and generations under a live lease (being read: src/spool/
 * leases.ts) are never removed; `.partial` ones are not judged (they are the next backup's
 * resume point).
 *
 * Deleting only unlinks names and never crosses a mount point (src/fs/remove-tree.ts): what
 * cannot be deleted stays in the trash as a leftover, reported, and tried again by every later
 * prune and backup. A generation that cannot even be moved to the trash is kept, reported.
 */
import path from 'node:path';
import { leftoverHint, leftoverWhy, type Leftover } from '../fs/remove-tree.js';
import { hostDir, listGenerations, listParts, partDir, trashDir } from '../spool/layout.js';
import { readLast, readLatest } from '../spool/last.js';
import { acquireLock, type LockHandle } from '../spool/lock.js';
import { recordTakeover } from '../spool/takeover.js';
import { describeLease, leasesDir, liveLeases, removeStaleLeases } from '../spool/leases.js';
import { InterruptedError, UsageError, errnoCode } from '../core/errors.js';
import { handlePendingSignals } from '../core/event-loop.js';
import { testPause } from '../fs/test-pause.js';
import { applyPolicy, type Verdict, type RetentionRules } from './policy.js';
import { appendPrune, pruneRecord, prunesLogPath, type PruneRecord } from '../spool/prunes-log.js';
import { pinsPath, readPins, strayPins } from './pins.js';
import { isGenerationName } from '../spool/names.js';
import { deleteFromTrash, emptyTrash, moveBackFromTrash, moveToTrash, trashRefusesChanges, type TrashLeftover } from './trash.js';

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
  /**
   * aborted (SIGTERM, SIGINT, SIGHUP): the prune stops before the next generation, and what it
   * was to remove stays for the next prune (a generation being deleted is finished first)
   */
  signal?: AbortSignal;
}

export interface PartPrune {
  part: string;
  /** every generation oldest first; partial ones with keep true and reason `partial` */
  decisions: (Verdict & { complete: boolean })[];
  removed: string[];
  /** names left in the trash by an interrupted prune, now deleted */
  trashEmptied: string[];
  /** what could not be deleted (it stays in the trash) or moved to the trash (it stays in place) */
  leftovers: TrashLeftover[];
  /** generations to remove kept because the part's leases cannot be read */
  leasesUnreadable: { name: string; why: string }[];
  /** stopped by a signal before these generations it was to remove */
  stoppedBefore: string[];
}

export interface PruneEvents {
  onNote(message: string): void;
  /** something an admin must hear about, also under cron (leases that cannot be read) */
  onWarn?(message: string): void;
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
      parts,
      kind: 'prune',
      onWait: (h) => ev.onNote(`waiting for the lock held by pid ${h.pid} (${h.command})`),
    });
  }
  const started = new Date();
  const results: PartPrune[] = [];
  try {
    if (lock?.tookOver) recordTakeover(hostDir(o.spool, o.host), lock.tookOver, ev.onWarn ?? ev.onNote);
    for (const p of parts) results.push(await prunePart(o, p, ev));
    if (!o.dryRun) record(o, pruneRecord(o.command, started, parts, results, undefined, signalName(o.signal)), ev);
    return results;
  } catch (err) {
    if (!o.dryRun) record(o, pruneRecord(o.command, started, parts, results, err as Error), ev);
    throw err;
  } finally {
    lock?.release();
  }
}

/** On record in prunes.jsonl; a log that cannot be written (a full spool) is a warning, not a failed prune. */
function record(o: PruneOptions, rec: PruneRecord, ev: PruneEvents): void {
  try {
    appendPrune(hostDir(o.spool, o.host), rec);
  } catch (err) {
    (ev.onWarn ?? ev.onNote)(`cannot record the prune in ${prunesLogPath(hostDir(o.spool, o.host))}: ${errnoCode(err) ?? (err as Error).message}`);
  }
}

async function prunePart(o: PruneOptions, part: string, ev: PruneEvents): Promise<PartPrune> {
  const pdir = partDir(o.spool, o.host, part);
  const leftovers: TrashLeftover[] = [];
  let trashEmptied: string[] = [];
  if (!o.dryRun) {
    const t = emptyTrash(pdir);
    trashEmptied = t.deleted;
    leftovers.push(...t.leftovers);
    try {
      removeStaleLeases(pdir);
    } catch (err) {
      ev.onNote(`part '${part}': cannot remove stale leases in ${leasesDir(pdir)}: ${errnoCode(err) ?? (err as Error).message}`);
    }
  }
  if (trashEmptied.length) ev.onNote(`part '${part}': finished deleting what an interrupted prune left in the trash (${trashEmptied.join(', ')})`);
  const gens = listGenerations(o.spool, o.host, part);
  const pins = readPins(pdir);
  for (const n of strayPins(
    pins,
    gens.map((g) => g.name),
  )) {
    const shown = JSON.stringify(n.length > 80 ? `${n.slice(0, 77)}...` : n);
    (ev.onWarn ?? ev.onNote)(
      `part '${part}': ${shown} in ${pinsPath(pdir)} ${isGenerationName(n) ? 'names no generation of this part' : 'is not a generation name'}: it pins nothing`,
    );
  }
  const last = readLast(pdir);
  // LATEST names last's generation, or the one before when a run was killed between the two
  const latest = readLatest(pdir);
  const result = applyPolicy(
    gens.map((g) => ({ name: g.name, time: g.time, complete: g.complete, pinned: pins.has(g.name) })),
    o.rules,
    o.now,
    new Map([...(latest ? [[latest, 'protected (LATEST)'] as const] : []), ...(last ? [[path.basename(last), 'protected (last)'] as const] : [])]),
  );
  const protect = new Set([last ? path.basename(last) : '', result.keep.at(-1)?.name ?? '']);
  // leases that cannot be read (EACCES, EIO, a file where the directory should be) keep everything
  let warned = false;
  const leasesUnreadable: { name: string; why: string }[] = [];
  const leased = (name: string): string | null => {
    let live;
    try {
      live = liveLeases(pdir);
    } catch (err) {
      const why = `its leases cannot be read (${errnoCode(err) ?? (err as Error).message}: ${leasesDir(pdir)})`;
      if (!warned) (ev.onWarn ?? ev.onNote)(`part '${part}': nothing is removed: ${why.slice(4)}; make it a readable directory`);
      warned = true;
      if (!leasesUnreadable.some((k) => k.name === name)) leasesUnreadable.push({ name, why });
      return why;
    }
    const l = live.get(name);
    return l ? describeLease(l[0]!) : null;
  };
  const keepFor = (d: Verdict, why: string) => {
    d.keep = true;
    d.reasons = [why];
  };
  for (const d of result.remove) {
    const why = leased(d.name);
    if (why) keepFor(d, why);
  }
  const removed: string[] = [];
  const stoppedBefore: string[] = [];
  if (!o.dryRun) {
    for (const d of result.remove) {
      if (d.keep) continue;
      if (o.signal) await handlePendingSignals(); // the deleting is synchronous
      if (o.signal?.aborted) {
        stoppedBefore.push(d.name);
        keepFor(d, `the prune was stopped by ${signalName(o.signal) ?? 'a signal'}`);
        continue;
      }
      // a pin or a lease taken after this prune started still counts
      if (readPins(pdir).has(d.name)) {
        keepFor(d, 'pinned');
        continue;
      }
      let why = leased(d.name);
      if (why) {
        keepFor(d, why);
        continue;
      }
      if (protect.has(d.name)) throw new Error(`internal error: prune was about to remove the protected generation ${d.name}`);
      let inTrash: string;
      try {
        inTrash = moveToTrash(pdir, d.name);
      } catch (err) {
        const code = errnoCode(err) ?? 'EIO';
        const l: Leftover = { path: Buffer.from(path.join(pdir, d.name)), code, why: leftoverWhy(code) };
        const hint =
          code === 'ETRASH'
            ? (err as Error).message
            : code === 'EXDEV'
              ? `the trash ${trashDir(pdir)} is on another file system than the generation (something mounted there?): umount it`
              : code === 'EPERM' && trashRefusesChanges(pdir)
                ? `the trash ${trashDir(pdir)} is immutable or append-only: \`chattr -i -a\` it`
                : leftoverHint(l);
        leftovers.push({ ...l, hint, notMoved: true });
        keepFor(d, `cannot be moved to the trash: ${code}`);
        continue;
      }
      // a reader that took its lease while the generation was being moved: it goes back, whole
      why = leased(d.name);
      if (why) {
        moveBackFromTrash(pdir, d.name, inTrash);
        keepFor(d, why);
        continue;
      }
      if (removed.length === 0) testPause('mid-prune');
      leftovers.push(...deleteFromTrash(pdir, [inTrash, `${inTrash}.hsm`]).leftovers);
      removed.push(d.name);
      ev.onRemoved?.(part, d.name);
    }
    leftovers.push(...emptyTrash(pdir).leftovers);
  }
  const byName = new Map(result.decisions.map((d) => [d.name, d]));
  const decisions = gens.map((g) =>
    g.complete ? { ...byName.get(g.name)!, complete: true } : { name: g.name, keep: true, reasons: ['partial (resumed by the next backup)'], complete: false },
  );
  return { part, decisions, removed, trashEmptied, leftovers: dedupe(leftovers), leasesUnreadable: o.dryRun ? [] : leasesUnreadable, stoppedBefore };
}

/** The final emptyTrash names again what deleteFromTrash left: once each. */
function dedupe(list: TrashLeftover[]): TrashLeftover[] {
  const seen = new Set<string>();
  return list.filter((l) => {
    const k = l.path.toString('latin1');
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** The signal that aborted `signal` (SIGTERM), if one did. */
function signalName(signal: AbortSignal | undefined): string | undefined {
  return signal?.aborted && signal.reason instanceof InterruptedError ? signal.reason.signal : undefined;
}
