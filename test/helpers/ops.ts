// Shared by the ops tests (prune, hooks, status, tape, ...): make generations quickly with the
// real engine in-process (runBackup: the same code bin/hardsnap runs, without a Node start per
// generation), and read a spool back with plain node:fs, independent of src/spool.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runBackup } from '../../src/backup/run.js';
import type { BackupOptions } from '../../src/backup/types.js';
import { partDirOf } from './spool.js';

export function makeGeneration(spool: string, host: string, parts: Record<string, string>, now: string, extra: Partial<BackupOptions> = {}): Promise<unknown> {
  return runBackup(
    {
      spool,
      host,
      parts: Object.entries(parts).map(([name, source]) => ({ name, source })),
      exclude: [],
      oneFileSystem: false,
      dryRun: false,
      allowEmpty: false,
      flush: false,
      waitMs: 0,
      parallelParts: false,
      now: new Date(now),
      command: 'test',
      ...extra,
    },
    { onProblem: () => {}, onNote: () => {} },
  );
}

/** The complete generation names of a part, read with readdir. */
export function generationNames(spool: string, host: string, part: string): string[] {
  const dir = partDirOf({ spool, host, part });
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((n) => /^\d{4}-\d\d-\d\dT\d{6}Z(-\d\d)?$/.test(n))
    .sort();
}

/** The records of a host's runs.jsonl, oldest first ([] when there is none); `T` types them. */
export function readRunsLog<T = Record<string, unknown>>(spool: string, host: string): T[] {
  const f = path.join(spool, 'rsync', host, '.hardsnap', 'runs.jsonl');
  return fs.existsSync(f)
    ? fs
        .readFileSync(f, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as T)
    : [];
}
