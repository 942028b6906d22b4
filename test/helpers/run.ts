// Run bin/hardsnap as a user (or cron) would: no TTY, captured output, exit code.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is test/helpers/run.ts). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(REPO_ROOT, 'bin', 'hardsnap');

export interface RunOptions {
  /** merged over process.env */
  env?: Record<string, string | undefined>;
  /** stdin; default empty */
  input?: string;
  cwd?: string;
  /** default 60 s */
  timeoutMs?: number;
  /** another executable to run instead of bin/hardsnap (for testing this runner) */
  bin?: string;
}

export interface RunResult {
  /** exit code; 128+signal number when killed by a signal */
  code: number;
  stdout: string;
  stderr: string;
  /** set when the process was killed by a signal (e.g. on timeout) */
  signal?: NodeJS.Signals;
}

function envOf(opts: RunOptions): NodeJS.ProcessEnv {
  return { ...process.env, ...opts.env };
}

/** Run `bin/hardsnap args...` to completion, stdin/stdout/stderr on pipes (no TTY). */
export function hardsnap(args: string[], opts: RunOptions = {}): RunResult {
  const bin = opts.bin ?? BIN;
  const r = spawnSync(bin, args, {
    env: envOf(opts),
    input: opts.input ?? '',
    cwd: opts.cwd ?? REPO_ROOT,
    timeout: opts.timeoutMs ?? 60_000,
    killSignal: 'SIGKILL',
    encoding: 'utf8',
    maxBuffer: 256 << 20,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  if (r.error && (r.error as NodeJS.ErrnoException).code !== 'ETIMEDOUT') {
    throw new Error(`could not run ${bin}: ${r.error.message}`, { cause: r.error });
  }
  const res: RunResult = { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  if (r.signal) {
    res.signal = r.signal;
    res.code = 128 + (signalNumber(r.signal) ?? 0);
    if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT') {
      res.stderr += `\n[test helper: hardsnap ${args.join(' ')} timed out after ${opts.timeoutMs ?? 60_000} ms]`;
    }
  }
  return res;
}

/** One part of one host in a spool, and the source it is backed up from. */
export interface Spot {
  spool: string;
  host: string;
  part: string;
  src: string;
}

/** The arguments that name a spot: `--spool SPOOL --host HOST --part PART=SRC`. */
export const target = (s: Spot) => ['--spool', s.spool, '--host', s.host, '--part', `${s.part}=${s.src}`];

/** Options that run bin/hardsnap at `now` (HARDSNAP_NOW): `hardsnap(args, at('2026-06-01T03:00:00Z'))`. */
export function at(now: string): RunOptions {
  return { env: { HARDSNAP_NOW: now } };
}

/**
 * `hardsnap backup --spool SPOOL --host HOST --part P1 --part P2 ...` (each P is NAME=SRC) at
 * `now` (HARDSNAP_NOW; `opts.env` merged over it), then `extra`.
 */
export function backupParts(where: { spool: string; host: string }, parts: string[], now: string, extra: string[] = [], opts: RunOptions = {}): RunResult {
  return hardsnap(['backup', '--spool', where.spool, '--host', where.host, ...parts.flatMap((p) => ['--part', p]), ...extra], {
    ...opts,
    env: { HARDSNAP_NOW: now, ...opts.env },
  });
}

/** `hardsnap backup` of one part at `now` (HARDSNAP_NOW; `opts.env` merged over it), then `extra`. */
export function backupPart(s: Spot, now: string, extra: string[] = [], opts: RunOptions = {}): RunResult {
  return backupParts(s, [`${s.part}=${s.src}`], now, extra, opts);
}

function signalNumber(sig: NodeJS.Signals): number | undefined {
  return ({ SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15 } as Record<string, number>)[sig];
}

export interface HardsnapChild extends ChildProcess {
  /** stdout and stderr collected so far */
  out: { stdout: string; stderr: string };
  /** resolves when the process has exited and its output pipes are closed */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** send a signal to the child's whole process group (it and anything it started) */
  killGroup(signal?: NodeJS.Signals): void;
}

/**
 * Start `bin/hardsnap args...` in its own process group, stdio on pipes, stdin closed; e.g. to
 * SIGKILL it mid-run with `killGroup('SIGKILL')` (which also kills the processes it started,
 * which would otherwise keep the pipes, and `exited`, open).
 */
export function spawnHardsnap(args: string[], opts: Omit<RunOptions, 'input' | 'timeoutMs'> = {}): HardsnapChild {
  const child = spawn(opts.bin ?? BIN, args, {
    env: envOf(opts),
    cwd: opts.cwd ?? REPO_ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  const out = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out.stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out.stderr += d));
  child.stdin.end();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  const killGroup = (signal: NodeJS.Signals = 'SIGTERM'): void => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err; // already gone
    }
  };
  return Object.assign(child, { out, exited, killGroup });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until what the test changed so far is past a backup's racy window: a backup records no
 * ctime for an entry whose ctime is within a second of its start (part-run.ts racyCtimeSec, as
 * git's index does), and a record without a ctime cannot tell a later write that kept the size
 * and mtime (plan/decide.ts movedSinceRecord). A test of that comparison backs up after this.
 */
export const pastRacyWindow = (): Promise<void> => sleep(2100);

/** Poll `predicate` every `intervalMs` until it returns true; reject after `timeoutMs`. */
export async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000, intervalMs = 10, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() >= deadline) throw new Error(`waitFor: ${what} not met within ${timeoutMs} ms`);
    await sleep(intervalMs);
  }
}

/** Wait until `p` exists (lstat, so a dangling symlink counts). */
export function waitForFile(p: string | Buffer, timeoutMs = 10_000): Promise<void> {
  return waitFor(() => fs.lstatSync(p, { throwIfNoEntry: false }) !== undefined, timeoutMs, 10, `file ${String(p)} to appear`);
}
