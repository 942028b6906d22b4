/**
 * What `status` reports, as data: per host and part the newest complete generation, its age,
 * and the result of the part's own last run (from runs.jsonl: a run of other parts says nothing
 * about it), each part judged OK, WARNING or CRITICAL with the reasons. Runs skipped by
 * --min-interval are not "the last run": they did nothing.
 */
import { fs } from '../fs/disk.js';
import { formatBytes, plural } from '../core/units.js';
import path from 'node:path';
import { hostDir, listParts, readGenerations, manifestPath, partDir, trashDir } from '../spool/layout.js';
import type { Generation } from '../spool/names.js';
import { FUTURE_TOLERANCE_MS } from '../time/now.js';
import { holderBuilds, liveLockHolder, lockConcerns, staleLockHolder } from '../spool/lock.js';
import { alive, processStart } from '../fs/process.js';
import { trashContents } from '../retention/trash.js';
import { readLast } from '../spool/last.js';
import { describeOpenDirs, fixPermissionsCommand, openSpoolDirs } from '../spool/permissions.js';
import { lastRunOf, partialLeftBy, readRuns, type RunRecord } from '../spool/runs-log.js';
import { lastPruneOf, readPrunes } from '../spool/prunes-log.js';
import { unmountedFstabMountAbove } from '../spool/marker.js';
import { formatDuration } from '../time/duration.js';
import { readJournal } from '../watch/journal-file.js';
import { partLeases, type LeaseStatus } from './leases.js';

export type State = 'OK' | 'WARNING' | 'CRITICAL';

export interface PartStatus {
  host: string;
  part: string;
  newest: string | null;
  /** ISO time of the newest complete generation */
  newestTime: string | null;
  ageMs: number | null;
  generations: number;
  partials: number;
  /** what the part's trash holds while no run is deleting it: entries that could not be deleted */
  trash: string[];
  /** the leases on its generations (readers', tape jobs'), live or stale: src/status/leases.ts */
  leases: LeaseStatus[];
  /** counts of the newest run that built this part */
  stats: Record<string, unknown> | null;
  /** the newest run for this part (not skipped): what its state is judged by */
  lastRun: RunSummary | null;
  /** a run holding the lock is building this part now (its `.partial` is in progress) */
  running: boolean;
  /** the newest `.partial` when it is newer than every complete generation and no run is building it */
  interrupted: string | null;
  state: State;
  reasons: string[];
  /** the watcher that keeps this part's journal (hardsnap watch), from the journal; null: none ever ran */
  watcher: WatcherStatus | null;
}

export interface WatcherStatus {
  /** fanotify or chokidar (null: a journal older than the field) */
  kind: string | null;
  pid: number;
  running: boolean;
}

/** What the part's journal says about its watcher (docs/WATCH.md). */
function watcherOf(spool: string, host: string, part: string): WatcherStatus | null {
  let j;
  try {
    j = readJournal(partDir(spool, host, part));
  } catch {
    return null;
  }
  if (!j) return null;
  const running = alive(j.pid) && (j.pidStart === null || processStart(j.pid) === j.pidStart);
  return { kind: j.watcher ?? null, pid: j.pid, running };
}

export interface RunSummary {
  status: RunRecord['status'];
  exit: number;
  start: string;
  end: string;
  durationMs: number;
  generation: string | null;
  problems: number;
  vanished: number;
  error?: string;
  /** an interrupted run: its signal and where it stopped */
  signal?: string;
  interrupted?: string;
  /** a run that ended without a record, recorded by the run that took its lock over */
  killed?: boolean;
}

export interface HostStatus {
  host: string;
  /** the newest run of the host, whatever parts it was for (metrics) */
  lastRun: RunSummary | null;
  /** the newest run skipped by --min-interval, when it is newer than lastRun */
  lastSkipped: string | null;
  parts: PartStatus[];
  /** a problem of the host as a whole (no backups at all) */
  problem: string | null;
  /** warnings of the host as a whole: its spool tree is open to other users */
  warnings: string[];
}

function summary(r: RunRecord): RunSummary {
  return {
    status: r.status,
    exit: r.exit,
    start: r.start,
    end: r.end,
    durationMs: r.durationMs,
    generation: r.generation,
    problems: r.problems,
    vanished: r.vanished,
    ...(r.error ? { error: r.error } : {}),
    ...(r.signal ? { signal: r.signal } : {}),
    ...(r.interrupted ? { interrupted: r.interrupted } : {}),
    ...(r.killed ? { killed: true } : {}),
  };
}

const MiB = 1024 * 1024;

/**
 * The spool's file system full (CRITICAL: the next backup fails, and a run that failed for it
 * may not have been able to record so) or nearly (WARNING: under 2% of its space or inodes).
 */
export function spoolSpace(spool: string): { state: State; why: string } | null {
  let s: ReturnType<typeof fs.statfsSync>;
  try {
    s = fs.statfsSync(spool);
  } catch {
    return null; // a spool that cannot be read is reported for what it is, elsewhere
  }
  const free = s.bavail * s.bsize;
  const total = s.blocks * s.bsize;
  const what = `${formatBytes(free)} of ${formatBytes(total)} free${s.files > 0 ? `, ${s.ffree} of ${s.files} inodes free` : ''}`;
  if (free < 16 * MiB || (s.files > 0 && s.ffree < 64)) {
    return { state: 'CRITICAL', why: `the spool's file system is full (${what}): backups fail until space is freed (prune, or grow it)` };
  }
  if (free < total * 0.02 || (s.files > 0 && s.ffree < s.files * 0.02)) {
    return { state: 'WARNING', why: `the spool's file system is nearly full (${what})` };
  }
  return null;
}

/**
 * `expected`: the parts that should exist (from --config): exactly these are judged, even when
 * the spool has none of them yet, and parts left in the spool but no longer configured are
 * not; empty: every part found in the spool.
 * `maxAgeMs`: older newest generations are a WARNING; 0 turns the check off.
 */
export function collectHost(spool: string, host: string, now: Date, maxAgeMs: number, expected: string[] = []): HostStatus {
  const hdir = hostDir(spool, host);
  const runs = fs.existsSync(hdir) ? readRuns(hdir) : [];
  const prunes = fs.existsSync(hdir) ? readPrunes(hdir) : [];
  const real = runs.filter((r) => r.status !== 'skipped');
  const hostLast = real.at(-1) ?? null;
  const lastAny = runs.at(-1);
  const names = expected.length ? [...new Set(expected)].sort() : listParts(spool, host);
  // a run holding the lock may be emptying a trash right now: only a trash left behind counts
  const holder = fs.existsSync(hdir) ? liveLockHolder(hdir) : null;
  const running = holder !== null;
  const stale = fs.existsSync(hdir) && !running ? staleLockHolder(hdir) : null;
  const space = spoolSpace(spool);
  const parts = names.map((part): PartStatus => {
    // one listing: the generations, and symlinks named like them (said below)
    const { generations: gens, symlinks } = readGenerations(partDir(spool, host, part), part);
    const complete = gens.filter((g) => g.complete);
    const newest = complete.at(-1) ?? null;
    const ageMs = newest ? now.getTime() - newest.time.getTime() : null;
    const withStats = [...real].reverse().find((r) => r.parts && r.parts[part]);
    // each part by its own last run: a run of other parts says nothing about this one
    const last = lastRunOf(runs, part);
    const reasons: string[] = [];
    let state: State = 'OK';
    const raise = (s: State, why: string) => {
      reasons.push(why);
      if (s === 'CRITICAL' || state === 'OK') state = s;
    };
    // a `.partial` newer than every complete generation that no live run is building: the
    // newest thing of the part is an interrupted run (a signal, a SIGKILL, a crash)
    const building = holderBuilds(holder, part);
    const partial = gens.filter((g) => !g.complete && (!newest || g.time >= newest.time)).at(-1) ?? null;
    const interrupted = partial && !building ? path.basename(partial.path) : null;
    // a host directory or part on a file system of its own that is not mounted: what is seen is the disk below
    const notMounted = unmountedFstabMountAbove(partDir(spool, host, part));
    if (notMounted)
      raise('CRITICAL', `${partDir(spool, host, part)} is at or below ${notMounted}, a mount point in /etc/fstab with nothing mounted on it: is it mounted?`);
    for (const l of symlinks)
      raise(
        'WARNING',
        `${l.path} is a symlink named like a generation: hardsnap never makes one, and backups of this part refuse to run until it is removed (rm, not rm -r)`,
      );
    // `last` (what a tape job copies, what a restore by hand starts from) leading nowhere
    const lastPath = path.join(partDir(spool, host, part), 'last');
    const lastSt = fs.lstatSync(lastPath, { throwIfNoEntry: false });
    const lastName = lastSt?.isSymbolicLink() ? readLast(partDir(spool, host, part)) : null;
    if (lastName && !complete.some((g) => g.name === lastName) && !building)
      raise(
        'CRITICAL',
        `\`last\` names ${lastName}, which is not a complete generation of the part${gens.some((g) => g.name === lastName) || fs.existsSync(lastPath) ? '' : ' (deleted by hand?)'}: the next backup moves it`,
      );
    else if (lastSt?.isDirectory())
      raise('CRITICAL', `${lastPath} is a directory, not the symlink hardsnap keeps there: backups of this part refuse to run until it is moved away`);
    else if (lastSt && !lastSt.isSymbolicLink()) raise('WARNING', `${lastPath} is not the symlink hardsnap keeps there: the next backup replaces it`);
    if (!newest) raise('CRITICAL', 'no complete generation');
    if (last?.status === 'failed') raise('CRITICAL', `last run failed (exit ${last.exit})${last.error ? `: ${last.error}` : ''}`);
    if (last?.status === 'partial') {
      // a run of several parts: this part's own counts, when the record has them
      const own = last.parts?.[part];
      const [problems, vanished] = own ? [Number(own.problems ?? 0), Number(own.vanished ?? 0)] : [last.problems, last.vanished];
      if (problems || vanished || !own) raise('WARNING', `last run published with ${plural(problems, 'problem')}, ${vanished} vanished (exit ${last.exit})`);
    }
    // stopped after publishing (while publishing, or during the post hook): the generation stands, the hook and --prune did not run to the end
    if (last && last.status !== 'interrupted' && last.signal)
      raise(
        'WARNING',
        `last run stopped by ${last.signal} ${last.interrupted ?? 'after publishing'} (exit ${last.exit}): the generation stands; what was to follow it (post hook, --prune) was stopped or skipped`,
      );
    // who left the newest `.partial`: the part's last run when its record names it; else a run
    // that left no record (killed), maybe one that resumed the last recorded run's partial
    const leftBy = interrupted ? partialLeftBy(last, part, interrupted) : null;
    if (last?.killed) {
      raise(
        'WARNING',
        `last run (started ${last.start}) ended without a record: killed, out of memory, or the machine stopped (a later run took its lock over)${interrupted ? `; ${interrupted} is left for the next run to resume` : ''}`,
      );
    } else if (interrupted && !leftBy) {
      raise(
        'WARNING',
        `an interrupted run left ${interrupted} (killed, or the machine stopped${space ? '; or a full spool kept it from recording its failure' : ''}); the next run resumes it`,
      );
    } else if (last?.status === 'interrupted') {
      raise(
        'WARNING',
        `last run interrupted by ${last.signal ?? 'a signal'}${last.interrupted ? ` ${last.interrupted}` : ''}, nothing published${interrupted ? `; ${interrupted} is left for the next run to resume` : ''}`,
      );
    } else if (interrupted && leftBy?.status === 'failed') {
      raise('WARNING', `${interrupted} is left by that run; the next run resumes it`);
    }
    // killed before its `.partial` existed (or while pruning): only its lock tells of it
    if (stale && !interrupted && lockConcerns(stale.holder, part))
      raise(
        'WARNING',
        `a run ended without a record: its lock is left (pid ${stale.holder.pid}, started ${stale.holder.started}: ${stale.reason}): killed (SIGKILL, out of memory) or the machine stopped; the next run takes the lock over`,
      );
    // the part's last prune did not do its work: its generations are still here (a trash that
    // holds what could not be deleted is said below, from the trash itself)
    const prune = lastPruneOf(prunes, part);
    const notMoved = prune?.parts?.[part]?.notMoved ?? [];
    if (prune?.status === 'failed' && !prune.parts?.[part])
      raise('WARNING', `the last prune (${prune.end}) failed: ${prune.error ?? 'unknown error'}; the generations it was to remove are still here`);
    else if (notMoved.length) {
      // each reason with its own generations (an immutable one and a mount point are not one cause)
      const why = new Map<string, string[]>();
      for (const n of notMoved) why.set(`${n.code}: ${n.hint}`, [...(why.get(`${n.code}: ${n.hint}`) ?? []), n.generation]);
      const list = (g: string[]) => `${g.slice(0, 3).join(', ')}${g.length > 3 ? ', ...' : ''}`;
      const what =
        why.size === 1
          ? ` (${[...why.keys()][0]}): ${list(notMoved.map((n) => n.generation))}`
          : `: ${[...why].map(([w, g]) => `${list(g)} (${w})`).join('; ')}`;
      raise('WARNING', `the last prune (${prune!.end}) kept ${plural(notMoved.length, 'generation')} it was to remove${what}; the next prune tries again`);
    }
    if (space) raise(space.state, space.why);
    if (newest && maxAgeMs > 0 && ageMs! > maxAgeMs)
      raise('WARNING', `newest generation is ${formatDuration(ageMs!)} old, more than --max-age ${formatDuration(maxAgeMs)}`);
    const future = gens.filter((g) => g.time.getTime() - now.getTime() > FUTURE_TOLERANCE_MS);
    if (future.length) raise('WARNING', futureWarning(spool, host, part, future[future.length - 1]!, future.length, now));
    const leases = partLeases(partDir(spool, host, part), raise);
    const trash = running ? [] : trashContents(partDir(spool, host, part));
    if (trash.length) {
      raise(
        'WARNING',
        `the trash holds ${trash.length} ${trash.length === 1 ? 'entry' : 'entries'} that could not be deleted (${trash.slice(0, 3).join(', ')}${trash.length > 3 ? ', ...' : ''}): the next prune or backup warns why (an immutable entry: chattr -i; a mount: umount)`,
      );
    }
    return {
      host,
      part,
      newest: newest?.name ?? null,
      newestTime: newest?.time.toISOString() ?? null,
      ageMs,
      generations: complete.length,
      partials: gens.length - complete.length,
      trash,
      leases,
      stats: withStats ? withStats.parts[part]! : null,
      lastRun: last ? summary(last) : null,
      running: building,
      interrupted,
      state,
      reasons,
      watcher: watcherOf(spool, host, part),
    };
  });
  return {
    host,
    lastRun: hostLast ? summary(hostLast) : null,
    lastSkipped: lastAny && lastAny.status === 'skipped' ? lastAny.end : null,
    parts,
    warnings: openTreeWarnings(spool, host),
    problem: parts.length ? null : noPartsProblem(spool, host, hdir),
  };
}

/** Why a host shows no parts: its directory on a file system that is not mounted, or none yet. */
function noPartsProblem(spool: string, host: string, hdir: string): string {
  const mp = unmountedFstabMountAbove(hdir);
  if (mp) return `${hdir} is at or below ${mp}, a mount point in /etc/fstab with nothing mounted on it: is it mounted?`;
  return fs.existsSync(hdir) ? `host '${host}' has no parts in ${spool}` : `no backups of host '${host}' in ${spool}`;
}

/** The spool tree of the host readable by other users (a spool made by an earlier version): a WARNING, with the fix. */
function openTreeWarnings(spool: string, host: string): string[] {
  const open = describeOpenDirs(openSpoolDirs(spool, [host]));
  return open ? [`${open}; run \`${fixPermissionsCommand(spool)}\``] : [];
}

/**
 * A generation dated in the future (a wrong clock, or HARDSNAP_NOW, when it was made): every
 * later backup is refused until it is gone, and prune keeps it as the newest. The fix, in the
 * line: move it and its manifest into the trash (the next prune or backup deletes them), or
 * rename both to the time it was really made (docs/OPERATIONS.md).
 */
function futureWarning(spool: string, host: string, part: string, g: Generation, n: number, now: Date): string {
  const pdir = partDir(spool, host, part);
  const ahead = formatDuration(g.time.getTime() - now.getTime());
  const more = n > 1 ? ` (and ${n - 1} more)` : '';
  return (
    `generation ${g.name}${more} is dated ${ahead} in the future (a wrong clock or HARDSNAP_NOW when it was made): ` +
    `every backup is refused until it is gone; fix: mkdir -pm 700 ${trashDir(pdir)} && mv ${g.path} ${manifestPath(pdir, g.name)} ${trashDir(pdir)}/ ` +
    `(the next prune or backup deletes it), or rename both to the time it was made (docs/OPERATIONS.md)`
  );
}
