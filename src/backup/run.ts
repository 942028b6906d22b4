/**
 * A backup run: validate, lock the host, build every part under one generation name, flush,
 * publish, record the run. The core never prints or exits: it reports through `events` and
 * returns (or throws a HardsnapError carrying its exit code).
 */
import { fs } from '../fs/disk.js';
import path from 'node:path';
import { HardsnapError, InterruptedError, type ExitCode } from '../core/errors.js';
import { displayPath } from '../paths/escape.js';
import { isRoot } from '../fs/native.js';
import { compileExcludes } from '../exclude/patterns.js';
import { acquireLock, type LockHandle } from '../spool/lock.js';
import { hostDir, manifestPath } from '../spool/layout.js';
import { readRunState, type RunState } from './part-state.js';
import { PARTIAL_SUFFIX, newGenerationName } from '../spool/names.js';
import { appendRun, type RunRecord } from '../spool/runs-log.js';
import { recordTakeover } from '../spool/takeover.js';
import { handlePendingSignals } from '../core/event-loop.js';
import type { Problem } from '../apply/types.js';
import { describeLeftovers, emptyTrash } from '../retention/trash.js';
import { hookEnv, hookRecord, runHook } from '../hooks/backup-hooks.js';
import { hookFailure, type HookResult } from '../hooks/run-hook.js';
import { skipReason } from './min-interval.js';
import { buildPart, type BuiltPart } from './part-run.js';
import { flushFileSystems, publishPart } from './publish.js';
import { testPauseAsync } from '../fs/test-pause.js';
import { FUTURE_TOLERANCE_MS } from '../time/now.js';
import { interruptedParts, interruption, type StartedPart } from './interrupted.js';
import { checkBuiltSources, checkSourceRoots, type RootCheck } from './source-guard.js';
import { checkNotEmpty, validateBackup } from './validate.js';
import type { BackupEvents, BackupOptions, BackupResult } from './types.js';

const SAMPLE = 50;

export function exitFor(problems: number, vanished: number): ExitCode {
  return problems ? 23 : vanished ? 24 : 0;
}

/** Picks a name no part uses yet, and refuses a `now` that is not after every generation. */
function chooseName(o: BackupOptions, state: RunState): string {
  let newest: { name: string; time: Date } | undefined;
  const taken = new Set<string>();
  for (const p of state.values()) {
    for (const g of p.generations) {
      taken.add(g.name);
      if (g.complete && (!newest || g.time > newest.time)) newest = g;
    }
  }
  if (newest && o.now.getTime() <= newest.time.getTime()) {
    // a generation made with a wrong clock blocks every backup until it is moved away: say how to find out
    const ahead = newest.time.getTime() - Date.now() > FUTURE_TOLERANCE_MS;
    throw new HardsnapError('ECLOCK', `now (${o.now.toISOString()}) is not later than the newest generation ${newest.name}: refusing to back up`, {
      exit: 2,
      hint: ahead
        ? `${newest.name} is dated in the future (made with a wrong clock or HARDSNAP_NOW): 'hardsnap status' says how to move it away`
        : 'check the clock (or HARDSNAP_NOW)',
    });
  }
  // a manifest without its tree (a run killed while publishing) takes the name too, and so does
  // anything else there by that name (a file named like a generation is not one, but is in the way)
  return newGenerationName(
    o.now,
    (n) => taken.has(n) || [...state.values()].some((p) => p.names.has(n) || p.names.has(n + PARTIAL_SUFFIX) || fs.existsSync(manifestPath(p.dir, n))),
  );
}

export async function runBackup(o: BackupOptions, ev: BackupEvents): Promise<BackupResult> {
  const started = new Date();
  try {
    validateBackup(o, (m) => (ev.onWarn ?? ev.onNote)(m)); // marking a spool is said once, under cron too
    const skipped = skipReason(
      o.spool,
      o.host,
      o.parts.map((p) => p.name),
      o.now,
      o.minIntervalMs ?? 0,
    );
    if (skipped) return skip(o, started, skipped);
    if (!o.hooks?.pre) checkNotEmpty(o); // with a pre hook, after it: it may fill a part
  } catch (err) {
    recordEarlyFailure(o, started, err);
    throw err;
  }
  const notes: string[] = [];
  const sample: Problem[] = [];
  let problems = 0;
  let vanished = 0;
  const events: BackupEvents = {
    ...ev,
    onNote(m) {
      notes.push(m);
      ev.onNote(m);
    },
    onProblem(p) {
      if (p.severity === 'vanished') vanished++;
      else problems++;
      if (sample.length < SAMPLE) sample.push(p);
      ev.onProblem(p);
    },
  };
  if (!isRoot() && !o.dryRun) events.onNote('not running as root: owners and groups are recorded in the manifest but not applied to the files in the spool');
  // where the run is, and each part's work so far: what an interruption reports
  let phase = 'while waiting for the lock';
  const begun = new Map<string, StartedPart>();
  events.onPartStarted = (part, stats, partial, resumed) => {
    begun.set(part, { stats, partial, resumed, built: false });
    ev.onPartStarted?.(part, stats, partial, resumed);
  };
  const stopIfAsked = () => {
    if (o.signal?.aborted) throw o.signal.reason;
  };

  const hdir = hostDir(o.spool, o.host);
  let lock: LockHandle | null;
  try {
    stopIfAsked();
    lock = o.dryRun
      ? null
      : await acquireLock(hdir, o.command, {
          waitMs: o.waitMs,
          parts: o.parts.map((p) => p.name),
          kind: 'backup',
          signal: o.signal,
          onWait: (h) => events.onNote(`waiting for the lock held by pid ${h.pid} (${h.command})`),
        });
  } catch (err) {
    if (!o.signal?.aborted) throw err;
    const stop = interruption(o.signal.reason, phase, begun);
    recordEarlyFailure(o, started, stop, phase);
    throw stop;
  }

  const built: BuiltPart[] = [];
  let generation: string | null = null;
  let failure: HardsnapError | null = null;
  const skipDirs = new Map<string, string>();
  const hooks: Record<string, HookResult> = {};
  let roots = new Map<string, RootCheck>();
  try {
    if (lock?.tookOver) recordTakeover(hdir, lock.tookOver, events.onWarn ?? events.onNote);
    // the parts as the spool holds them now, under the lock: read once, handed down
    const state = readRunState(o.spool, o.host, o.parts);
    generation = chooseName(o, state);
    if (lock && o.hooks?.pre) {
      phase = 'while the pre hook ran';
      const r = (hooks.pre = await runHook(o.hooks.pre, hookEnv({ ...o, generation, parts: o.parts.map((p) => p.name) }), o.hooks.timeoutMs, o.signal));
      ev.onHook?.('pre', r);
      stopIfAsked(); // the hook was stopped with the run: not a failure of the hook
      if (!r.ok)
        throw new HardsnapError('EPREHOOK', `pre hook ${hookFailure(r)}: ${r.command}; nothing was written`, {
          exit: 2,
          hint: 'its output is in the run log (runs.jsonl) and above',
        });
      checkNotEmpty(o);
    }
    // a source that is not the one of yesterday (another file system): before anything is written
    roots = checkSourceRoots(o, state, events.onNote);
    // a prune killed mid-way; what cannot be deleted (chattr +i, a mount) stays, and never fails the run
    if (lock) {
      for (const p of o.parts) {
        for (const line of describeLeftovers(p.name, emptyTrash(state.get(p.name)!.dir).leftovers)) (ev.onWarn ?? events.onNote)(line);
      }
    }
    if (fs.existsSync(o.spool)) {
      const st = fs.statSync(o.spool);
      skipDirs.set(`${st.dev}:${st.ino}`, `the spool ${o.spool}`);
    }
    const one = async (spec: (typeof o.parts)[number]) => {
      stopIfAsked();
      phase = o.parallelParts ? 'while building the parts' : `while building part '${spec.name}'`;
      ev.onPhase?.('prepare', spec.name);
      const b = await buildPart(o, spec, state.get(spec.name)!, generation!, compileExcludes([...o.exclude, ...(spec.exclude ?? [])]), skipDirs, events);
      begun.get(spec.name)!.built = true;
      ev.onPhase?.('built', spec.name);
      return b;
    };
    if (o.parallelParts) {
      // parts on different drives in parallel shorten the window (eXo's advice); every part
      // settles before anything is published or the lock is released
      const settled = await Promise.allSettled(o.parts.map(one));
      for (const r of settled) if (r.status === 'fulfilled') built.push(r.value);
      const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    } else {
      for (const spec of o.parts) built.push(await one(spec));
    }
    // ... or that lost most of its entries, or that the excludes leave empty: before publishing
    checkBuiltSources(o, built, roots, events.onNote);
    if (!o.dryRun) {
      phase = 'before publishing';
      stopIfAsked();
      ev.onPhase?.('publish');
      if (o.flush) flushFileSystems(built.map((b) => b.partDir));
      await testPauseAsync('before-publish', o.signal);
      // the last moment to stop: publishing itself is synchronous, it is never cut in the middle
      // (a signal that came during the flush, which may take minutes, is handled here)
      await handlePendingSignals();
      stopIfAsked();
      for (const b of built) publishPart(b);
    }
  } catch (err) {
    failure = o.signal?.aborted
      ? interruption(o.signal.reason, phase, begun)
      : err instanceof HardsnapError
        ? err
        : new HardsnapError((err as NodeJS.ErrnoException).code ?? 'EFAIL', `backup failed: ${(err as Error).message}`, { cause: err, exit: 2 });
    throw failure;
  } finally {
    // a signal during publishing (synchronous): the record and the exit code say it
    await handlePendingSignals();
    const ended = new Date();
    const exit: ExitCode = failure ? failure.exit : exitFor(problems, vanished);
    const stopped = failure instanceof InterruptedError ? failure : null;
    const status = stopped ? 'interrupted' : failure ? 'failed' : exit === 0 ? 'ok' : 'partial';
    // asked to stop: no post hook (it may run for an hour; the run log and status tell)
    if (lock && o.hooks?.post && !stopped) {
      const env = hookEnv({ ...o, generation: failure ? null : generation, parts: o.parts.map((p) => p.name) }, { status, exit });
      const r = (hooks.post = await runHook(o.hooks.post, env, o.hooks.timeoutMs, o.signal));
      ev.onHook?.('post', r);
    }
    if (!o.dryRun && lock) {
      const rec: RunRecord = {
        command: o.command,
        start: started.toISOString(),
        end: ended.toISOString(),
        durationMs: ended.getTime() - started.getTime(),
        generation: failure ? null : generation,
        // stopped during the post hook: the process exits 128 + N (the generation stands)
        exit: !stopped && o.signal?.aborted && o.signal.reason instanceof InterruptedError ? o.signal.reason.exit : exit,
        status,
        partNames: o.parts.map((p) => p.name),
        // stopped or failed: each begun part's `.partial` stays, named (who left it: list, status)
        parts: stopped ? interruptedParts(begun) : failure ? { ...builtParts(built), ...interruptedParts(begun) } : builtParts(built),
        ...(stopped
          ? { signal: stopped.signal, interrupted: phase }
          : o.signal?.aborted
            ? { signal: (o.signal.reason as InterruptedError).signal, interrupted: hooks.post ? 'after publishing (during the post hook)' : 'after publishing' }
            : {}),
        problems,
        vanished,
        ...(failure ? { error: failure.message } : {}),
        ...(Object.keys(hooks).length ? { hooks: Object.fromEntries(Object.entries(hooks).map(([k, r]) => [k, hookRecord(r)])) } : {}),
        sample: sample.map((p) => ({ part: p.part, path: displayPath(p.path), code: p.code, message: p.message })),
      };
      try {
        appendRun(hdir, rec);
      } catch (err) {
        // the generation's fate is decided: a run log that cannot be written must not turn a
        // published generation into "failed, nothing published" (exit 2), nor hide a failure
        const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
        const msg = `cannot record the run: ${code} (status will not show it)`;
        if (failure) events.onNote(`${path.join(hdir, '.hardsnap', 'runs.jsonl')}: ${msg}`);
        else events.onProblem({ part: `host ${o.host}`, path: Buffer.from('.hardsnap/runs.jsonl'), code, message: msg, severity: 'error' });
      } finally {
        lock.release();
      }
    }
  }
  const ended = new Date();
  const exit = exitFor(problems, vanished);
  return {
    generation: generation!,
    exit,
    status: o.dryRun ? 'dry-run' : exit === 0 ? 'ok' : 'partial',
    parts: built.map(({ partDir: _p, partialPath: _q, manifestTmp: _m, ...r }) => ({ ...r, path: o.dryRun ? r.path : path.join(_p, r.generation) })),
    problems,
    vanished,
    notes,
    started: started.toISOString(),
    ended: ended.toISOString(),
    durationMs: ended.getTime() - started.getTime(),
  };
}

/** A run with nothing to do (--min-interval): recorded, exit 0. */
function skip(o: BackupOptions, started: Date, reason: string): BackupResult {
  const ended = new Date();
  if (!o.dryRun) {
    appendRun(hostDir(o.spool, o.host), {
      command: o.command,
      start: started.toISOString(),
      end: ended.toISOString(),
      durationMs: ended.getTime() - started.getTime(),
      generation: null,
      exit: 0,
      status: 'skipped',
      skipped: reason,
      partNames: o.parts.map((p) => p.name),
      parts: {},
      problems: 0,
      vanished: 0,
    });
  }
  return {
    generation: '',
    exit: 0,
    status: 'skipped',
    skipped: reason,
    parts: [],
    problems: 0,
    vanished: 0,
    notes: [reason],
    started: started.toISOString(),
    ended: ended.toISOString(),
    durationMs: ended.getTime() - started.getTime(),
  };
}

/**
 * A source missing or empty (exit 2) fails the run before the lock: still record it, so that
 * `status` and the metrics see the failure, but only in a host directory that exists (never
 * create one under the mount point of an unmounted spool).
 */
function recordEarlyFailure(o: BackupOptions, started: Date, err: unknown, phase?: string): void {
  const stopped = err instanceof InterruptedError ? err : null;
  if (o.dryRun || !(err instanceof HardsnapError) || (err.exit !== 2 && !stopped)) return;
  // a refused spool is not one, and a symlink or an unmounted mount point in it leads to the wrong disk: what is there stays as it is
  if (err.code === 'ENOSPOOL' || err.code === 'ENOTSPOOL' || err.code === 'ESPOOLSYMLINK' || err.code === 'ENOTMOUNTED') return;
  const hdir = hostDir(o.spool, o.host);
  if (!fs.existsSync(hdir)) return;
  const ended = new Date();
  appendRun(hdir, {
    command: o.command,
    start: started.toISOString(),
    end: ended.toISOString(),
    durationMs: ended.getTime() - started.getTime(),
    generation: null,
    exit: err.exit,
    status: stopped ? 'interrupted' : 'failed',
    error: err.message,
    ...(stopped ? { signal: stopped.signal, interrupted: phase } : {}),
    partNames: o.parts.map((p) => p.name),
    parts: {},
    problems: 0,
    vanished: 0,
  });
}

/** The run log's parts of a run that built them: their counts and how they were built. */
function builtParts(built: BuiltPart[]): Record<string, Record<string, unknown>> {
  return Object.fromEntries(
    built.map((b) => [
      b.part,
      {
        ...b.stats,
        resumed: b.resumed,
        spoolClones: b.spoolClones,
        compared: b.compared,
        previous: b.previous,
        source: b.sourceIdentity,
        journal: b.journal.used,
        journalReason: b.journal.reason,
        journalDirty: b.journal.dirty,
        journalAudited: b.journal.audited,
        journalSkippedDirs: b.journal.skippedDirs,
      },
    ]),
  );
}
