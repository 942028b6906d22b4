/** `<host>/.hardsnap/runs.jsonl`: one JSON line per backup run, appended with one write. */
import { fs } from '../fs/disk.js';
import path from 'node:path';
import { showPathsDeep } from '../paths/aliases.js';
import { ensureSpoolDir } from './layout.js';
import { readTextIfExists } from '../fs/read.js';

export interface RunRecord {
  command: string;
  start: string;
  end: string;
  durationMs: number;
  generation: string | null;
  exit: number;
  status: 'ok' | 'partial' | 'failed' | 'skipped' | 'interrupted';
  /**
   * the parts the run was for, also when it failed before building any (absent in records of
   * 0.1.0: see runConcerns)
   */
  partNames?: string[];
  /** per part built: its counts */
  parts: Record<string, Record<string, unknown>>;
  problems: number;
  vanished: number;
  error?: string;
  /** an interrupted run: the signal that stopped it, and where it was then */
  signal?: string;
  interrupted?: string;
  /**
   * a run that ended without writing its record (SIGKILL, the OOM killer, a crash, a reboot),
   * recorded by the run that took its stale lock over (status `interrupted`, exit 137)
   */
  killed?: boolean;
  /** why a run was skipped (--min-interval) */
  skipped?: string;
  /** the pre and post hooks: exit status and output (the end of it) */
  hooks?: Record<string, { command: string; exit: number | null; signal?: string; timedOut?: boolean; error?: string; durationMs: number; output: string }>;
  /** the first problems, by escaped path */
  sample?: { part: string; path: string; code: string; message: string }[];
}

export function runsLogPath(hostDirPath: string): string {
  return path.join(hostDirPath, '.hardsnap', 'runs.jsonl');
}

export function appendRun(hostDirPath: string, rec: RunRecord): void {
  appendJsonLine(runsLogPath(hostDirPath), rec);
}

export function readRuns(hostDirPath: string): RunRecord[] {
  return readJsonLines<RunRecord>(runsLogPath(hostDirPath));
}

/**
 * Appends one record to a JSON-lines log of the spool (runs.jsonl, prunes.jsonl) with one
 * write, paths as a human reads them (an alias of a path that is not UTF-8 in its escaped form).
 */
export function appendJsonLine(file: string, rec: object): void {
  ensureSpoolDir(path.dirname(file));
  const line = Buffer.from(JSON.stringify(showPathsDeep(rec)) + '\n');
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600);
  try {
    const size = fs.fstatSync(fd).size;
    // a line torn by an earlier full disk or crash: this record starts on a line of its own
    const torn = size > 0 && !endsWithNewline(fd, size);
    const out = torn ? Buffer.concat([Buffer.from('\n'), line]) : line;
    try {
      for (let done = 0; done < out.length;) done += fs.writeSync(fd, out, done, out.length - done);
    } catch (err) {
      // all of the line or none of it (ENOSPC mid-line): the log stays whole lines
      try {
        fs.ftruncateSync(fd, size);
      } catch {
        /* the error below says the record could not be written */
      }
      throw err;
    }
  } finally {
    fs.closeSync(fd);
  }
}

function endsWithNewline(fd: number, size: number): boolean {
  const b = Buffer.alloc(1);
  return fs.readSync(fd, b, 0, 1, size - 1) === 1 && b[0] === 0x0a;
}

/** The records of a JSON-lines log, oldest first; none when it does not exist. */
export function readJsonLines<T>(file: string): T[] {
  const text = readTextIfExists(file);
  if (text === null) return [];
  const out: T[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as T);
    } catch {
      /* a line cut by a crash: skip it */
    }
  }
  return out;
}

/**
 * Whether a run was for this part: its `partNames`, else (a record of 0.1.0) the parts it built;
 * an old record that names no part at all (it failed before building) is taken as the whole
 * host's, as 0.1.0's status took it.
 */
export function runConcerns(r: RunRecord, part: string): boolean {
  if (Array.isArray(r.partNames)) return r.partNames.includes(part);
  const built = r.parts ? Object.keys(r.parts) : [];
  return built.length ? built.includes(part) : true;
}

/** A part's own last run (runs skipped by --min-interval did nothing: they are not it). */
export function lastRunOf(runs: RunRecord[], part: string): RunRecord | null {
  return runs.findLast((r) => r.status !== 'skipped' && runConcerns(r, part)) ?? null;
}

/**
 * The run that left a part's `.partial` (named as on disk): the part's last run when its record
 * names it (an interrupted or failed run records the partial it leaves), else null: a run that
 * left no record (killed), or one whose partial a later killed run resumed under its own name.
 */
export function partialLeftBy(last: RunRecord | null, part: string, partialName: string): RunRecord | null {
  return last?.parts?.[part]?.partial === partialName ? last : null;
}
