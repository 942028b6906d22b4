// Realistic source trees from the shared benchmark scripts (mail-spool-like, plus odd names).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from './run.js';

/** `shared/` lives beside the repository (CI clones the repo next to it). */
export const SHARED_DIR = path.resolve(REPO_ROOT, '..', 'shared');

function script(name: string): string {
  const p = path.join(SHARED_DIR, 'bench', name);
  if (!fs.existsSync(p)) {
    throw new Error(`${p} not found: the tests expect the shared/ folder beside the repository (${SHARED_DIR})`);
  }
  return p;
}

function run(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`, { cause: err });
  }
}

function summary(line: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of line.matchAll(/(\w+)=(\d+)/g)) out[m[1]!] = Number(m[2]);
  return out;
}

export interface MktreeOptions {
  files: number;
  /** add odd/: spaces, unicode, newline, latin1 bytes, 255-byte name, symlinks, 40-deep path, a hard link */
  odd?: boolean;
  seed?: number;
  /** number of big (8-64 MiB) files under db/ */
  big?: number;
  /** add twins/: separate files with identical bytes and times, one of them also hard-linked */
  twins?: boolean;
}

/** `mktree.py DIR ...`; returns its summary, e.g. `{ files, bytes }`. */
export function mktree(dir: string, opts: MktreeOptions): { files: number; bytes: number } {
  const args = [script('mktree.py'), dir, '--files', String(opts.files)];
  if (opts.seed !== undefined) args.push('--seed', String(opts.seed));
  if (opts.big !== undefined) args.push('--big', String(opts.big));
  if (opts.odd) args.push('--odd');
  if (opts.twins) args.push('--twins');
  const s = summary(run('python3', args));
  return { files: s.files ?? 0, bytes: s.bytes ?? 0 };
}

export interface MutateOptions {
  /** percentages of the regular files found */
  change?: number;
  add?: number;
  delete?: number;
  rename?: number;
}

/** `mutate.py DIR --seed S ...`: one deterministic day of changes; returns its summary. */
export function mutate(dir: string, seed: number, opts: MutateOptions = {}): Record<string, number> {
  const args = [script('mutate.py'), dir, '--seed', String(seed)];
  for (const k of ['change', 'add', 'delete', 'rename'] as const) {
    if (opts[k] !== undefined) args.push(`--${k}`, String(opts[k]));
  }
  return summary(run('python3', args));
}

/** `cp -a src dst`: an exact copy (dst must not exist). */
export function copyTree(src: string, dst: string): void {
  run('cp', ['-a', '--', src, dst]);
}

/** `cp -al src dst`: a copy whose files are hard links to src's (dst must not exist). */
export function linkTree(src: string, dst: string): void {
  run('cp', ['-al', '--', src, dst]);
}
