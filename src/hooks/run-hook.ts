/**
 * Runs one hook: an argv list without a shell, or `/bin/sh -c TEXT`. The hook gets its own
 * process group (so a timeout kills it and everything it started), stdin from /dev/null, and
 * its stdout and stderr captured together, in order, keeping the last OUTPUT_LIMIT bytes for
 * the run log. It never throws for the hook's own failure: the result says what happened.
 */
import { spawn } from 'node:child_process';
import { showArg } from '../paths/arg-text.js';
import { exactExec } from './exact-exec.js';
import type { HookCommand } from '../config/schema.js';

export const OUTPUT_LIMIT = 64 * 1024;
/** After SIGTERM on timeout, how long the group gets before SIGKILL. */
const KILL_GRACE_MS = 5_000;
/** After the hook exits, how long a background child may keep its output pipes open. */
const PIPE_GRACE_MS = 500;
/** Signals that stop hardsnap: passed on to a running hook's group first. */
const FORWARDED: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];

export interface HookResult {
  /** the command as shown in messages */
  command: string;
  /** exit status, or null when killed by a signal or not started */
  exit: number | null;
  signal: string | null;
  timedOut: boolean;
  /** could not be started at all (ENOENT, EACCES) */
  error?: string;
  /** stdout and stderr interleaved, at most OUTPUT_LIMIT bytes (the end) */
  output: string;
  durationMs: number;
  ok: boolean;
  /** killed because hardsnap itself was asked to stop (a signal), not for its own failure */
  stopped?: boolean;
}

/** The command as messages and the run log show it (bytes that are not UTF-8 escaped: \xHH). */
export function describeHook(h: HookCommand): string {
  return 'argv' in h ? h.argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(showArg(a)))).join(' ') : showArg(h.shell);
}

/** Why a hook failed, in a few words (for messages). */
export function hookFailure(r: HookResult): string {
  if (r.error) return `could not be started (${r.error})`;
  if (r.timedOut) return 'timed out and was killed';
  if (r.signal) return `was killed by ${r.signal}`;
  return `exited with status ${r.exit}`;
}

/**
 * `signal`: the run is stopping (hardsnap got SIGINT, SIGTERM or SIGHUP): the hook's group gets
 * SIGTERM (SIGKILL after the grace time) and the result says it was killed. Without one, the
 * process's own signals are watched instead, and re-raised once the group has been told.
 */
export function runHook(h: HookCommand, env: Record<string, string>, timeoutMs: number, signal?: AbortSignal): Promise<HookResult> {
  const [file, args] = 'argv' in h ? [h.argv[0]!, h.argv.slice(1)] : ['/bin/sh', ['-c', h.shell]];
  const command = describeHook(h);
  const started = Date.now();
  const chunks: Buffer[] = [];
  let kept = 0;
  let cut = 0;
  const take = (b: Buffer) => {
    chunks.push(b);
    kept += b.length;
    while (kept - chunks[0]!.length >= OUTPUT_LIMIT) {
      cut += chunks[0]!.length;
      kept -= chunks.shift()!.length;
    }
  };
  const output = () => {
    let all = Buffer.concat(chunks);
    let dropped = cut;
    if (all.length > OUTPUT_LIMIT) {
      dropped += all.length - OUTPUT_LIMIT;
      all = all.subarray(all.length - OUTPUT_LIMIT);
    }
    const text = all.toString('utf8');
    return dropped ? `[... ${dropped} bytes cut ...]\n${text}` : text;
  };

  return new Promise((resolve) => {
    let settled = false;
    let stoppedByUs = false;
    let timedOut = false;
    const timers: NodeJS.Timeout[] = [];
    // a command or an environment value with bytes that are not UTF-8 (arg text) keeps them
    const plan = exactExec(file, args, { ...process.env, ...env });
    const child = spawn(plan.file, plan.args, {
      env: plan.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const killGroup = (sig: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, sig);
      } catch {
        /* already gone */
      }
    };
    // hardsnap itself stopped (cron's kill, Ctrl-C): the hook's own group would outlive it
    const onSignal = (sig: NodeJS.Signals) => {
      killGroup('SIGTERM');
      for (const s of FORWARDED) process.removeListener(s, onSignal);
      process.kill(process.pid, sig);
    };
    const onAbort = () => {
      stoppedByUs = true;
      killGroup('SIGTERM');
      timers.push(setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS));
    };
    if (signal) {
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    } else for (const s of FORWARDED) process.once(s, onSignal);
    const finish = (exit: number | null, sig: string | null, error?: string) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      for (const s of FORWARDED) process.removeListener(s, onSignal);
      for (const t of timers) clearTimeout(t);
      if (timedOut) killGroup('SIGKILL'); // whatever of the group ignored SIGTERM
      child.stdout?.destroy();
      child.stderr?.destroy();
      const r: HookResult = { command, exit, signal: sig, timedOut, output: output(), durationMs: Date.now() - started, ok: false };
      if (error) r.error = error;
      if (stoppedByUs) r.stopped = true;
      r.ok = !error && !timedOut && exit === 0;
      resolve(r);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', (err: NodeJS.ErrnoException) => finish(null, null, `${err.code ?? 'error'}: ${showArg(file)}`));
    let exited: { code: number | null; signal: string | null } | null = null;
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      // a background child of the hook may hold the pipes: do not wait for it forever
      timers.push(setTimeout(() => finish(code, signal), PIPE_GRACE_MS));
    });
    child.on('close', (code, signal) => finish(exited?.code ?? code, exited?.signal ?? signal));
    timers.push(
      setTimeout(() => {
        timedOut = true;
        killGroup('SIGTERM');
        timers.push(setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS));
      }, timeoutMs),
    );
  });
}
