// Run a program with arguments that are bytes (child_process.spawn takes strings and sends them
// as UTF-8: a byte that is not UTF-8 cannot be passed). python3's os.execv takes bytes: each
// argument travels hex-encoded to a tiny python3 that execs the program with the real bytes.
import { spawnSync } from 'node:child_process';
import { BIN, REPO_ROOT } from './run.js';

export type ByteArg = string | Buffer;

export interface ByteRunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout as bytes */
  out: Buffer;
}

const EXEC = 'import os,sys; a=[bytes.fromhex(x) for x in sys.argv[1:]]; os.execv(a[0], a)';

/** Runs `file args...` (bytes exactly), stdin empty, no TTY. */
export function runBytes(
  file: ByteArg,
  args: ByteArg[],
  opts: { env?: Record<string, string | undefined>; timeoutMs?: number; cwd?: string } = {},
): ByteRunResult {
  const hex = [file, ...args].map((a) => Buffer.from(a).toString('hex'));
  const r = spawnSync('python3', ['-c', EXEC, ...hex], {
    env: { ...process.env, ...opts.env },
    cwd: opts.cwd ?? REPO_ROOT,
    input: '',
    timeout: opts.timeoutMs ?? 60_000,
    killSignal: 'SIGKILL',
    maxBuffer: 256 << 20,
  });
  if (r.error) throw r.error;
  return { code: r.status ?? 128 + 9, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8'), out: r.stdout };
}

/** bin/hardsnap with byte arguments. */
export function hardsnapBytes(args: ByteArg[], opts: { env?: Record<string, string | undefined>; timeoutMs?: number; cwd?: string } = {}): ByteRunResult {
  return runBytes(BIN, args, opts);
}

/** Concatenates strings and Buffers into one byte path. */
export function b(...parts: ByteArg[]): Buffer {
  return Buffer.concat(parts.map((p) => Buffer.from(p)));
}
