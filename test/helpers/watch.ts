// Watch mode helpers: a real `hardsnap watch` started and awaited through its log and its
// journal, backups run asynchronously (so this process can play the watcher), and a
// hand-written journal that answers sync requests like a watcher would.
import fs from 'node:fs';
import path from 'node:path';
import { processStart } from '../../src/fs/process.js';
import { calendar, makeSpool, partDirOf } from './spool.js';
import {
  JOURNAL_FORMAT,
  SYNC_PREFIX,
  currentBoot,
  currentMountNs,
  journalPath,
  readJournal,
  watchDir,
  writeJournal,
  type Journal,
} from '../../src/watch/journal-file.js';
import { readManifestHeader } from '../../src/manifest/reader.js';
import { expect } from 'vitest';
import { spawnHardsnap, target, waitFor, type HardsnapChild, type Spot } from './run.js';
import { compareTrees, makeTree, type TreeSpec } from './tree.js';
import { rsyncDiff, linksDiff } from './oracle.js';

/** Starts `hardsnap watch` and waits for its epoch to begin (its log line, and the journal). */
export async function startWatcher(s: Spot, extra: string[] = [], env: Record<string, string> = {}): Promise<HardsnapChild> {
  const w = spawnHardsnap(['watch', ...target(s), ...extra], { env });
  await waitFor(() => /epoch \w+ began/.test(w.out.stderr) || w.exitCode !== null, 60_000, 20, "the watcher's epoch to begin");
  if (w.exitCode !== null) throw new Error(`the watcher exited early: ${w.out.stderr}`);
  // before the first backup there is no part directory, and no journal yet
  if (fs.existsSync(partDirOf(s))) await waitFor(() => Boolean(readJournal(partDirOf(s))?.epoch), 10_000, 20, 'the journal to name the epoch');
  return w;
}

export async function stopWatcher(w: HardsnapChild, signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (w.exitCode === null && w.signalCode === null) w.killGroup(signal);
  return w.exited;
}

export interface BackupRun {
  code: number;
  stdout: string;
  stderr: string;
  /** the first part's --json record */
  part: {
    journal: {
      used: boolean;
      reason: string | null;
      dirty: number;
      audited: number;
      skippedDirs: number;
      rescannedDirs: number;
      namedDirs: number;
      watcher: string | null;
    };
    generation: string;
    path: string;
  };
}

/** `hardsnap backup --json` without blocking this process's event loop. */
export async function backupAsync(s: Spot, extra: string[] = [], env: Record<string, string> = {}): Promise<BackupRun> {
  const c = spawnHardsnap(['backup', ...target(s), '--json', ...extra], { env });
  const { code } = await c.exited;
  let part: BackupRun['part'];
  try {
    part = (JSON.parse(c.out.stdout) as { parts: BackupRun['part'][] }).parts[0]!;
  } catch {
    throw new Error(`backup exited ${code} without JSON: ${c.out.stderr}`);
  }
  return { code: code ?? -1, stdout: c.out.stdout, stderr: c.out.stderr, part };
}

/** The scan record of a generation's manifest. */
export function scanOf(s: Spot, generation: string) {
  return readManifestHeader(path.join(partDirOf(s), '.hardsnap', 'manifests', `${generation}.hsm`)).scan!;
}

/**
 * This test process as a watcher of its own making: writes the journal it is given and
 * answers every sync request with it, until stop(). Lets a test say exactly what the journal
 * knows (or fails to know).
 */
export function fakeWatcher(s: Spot, journal: Partial<Journal>): { stop(): void; answered: () => number } {
  const pdir = partDirOf(s);
  fs.mkdirSync(watchDir(pdir), { recursive: true });
  const st = fs.statSync(s.src);
  const base: Journal = {
    format: JOURNAL_FORMAT,
    part: s.part,
    source: path.resolve(s.src),
    rootId: `${st.dev}:${st.ino}`,
    mountNs: currentMountNs(),
    pid: process.pid,
    pidStart: processStart(process.pid),
    boot: currentBoot(),
    epoch: null,
    failed: null,
    flushMono: 0,
    flushWall: new Date().toISOString(),
    synced: [],
    prunedBefore: 0,
    dirty: {},
    watchedDirs: 0,
    ...journal,
  };
  writeJournal(pdir, base);
  let answered = 0;
  const w = fs.watch(watchDir(pdir), (_ev, name) => {
    if (typeof name !== 'string' || !name.startsWith(SYNC_PREFIX)) return;
    const nonce = name.slice(SYNC_PREFIX.length);
    if (base.synced.includes(nonce)) return;
    base.synced.push(nonce);
    answered++;
    writeJournal(pdir, base);
  });
  return { stop: () => w.close(), answered: () => answered };
}

export function journalFile(s: Spot): string {
  return journalPath(partDirOf(s));
}

/** The nights of the watch tests: `dayEnv(n)` is { HARDSNAP_NOW: 2026-01-0n at 03:00Z }. */
export const { dayEnv } = calendar('2026-01');

export function spot(tmp: string): Spot {
  return { spool: makeSpool(path.join(tmp, 'spool')), host: 'h1', part: 'data', src: path.join(tmp, 'src') };
}

/** The generation equals the source: the tree comparer and the rsync oracle. */
export function expectSame(s: Spot, genPath: string): void {
  expect(compareTrees(s.src, genPath)).toEqual([]);
  expect(rsyncDiff(s.src, genPath)).toEqual([]);
  expect(linksDiff(s.src, genPath)).toEqual([]);
}

/** A tree of many small directories, so that a journaled backup has much to skip. */
export function wideTree(src: string): void {
  const spec: TreeSpec = {};
  for (let d = 0; d < 20; d++) {
    for (let f = 0; f < 5; f++) spec[`d${d}/f${f}`] = `file ${d}/${f}\n`;
    spec[`d${d}/sub/leaf`] = `leaf ${d}\n`;
  }
  spec['perm/p'] = 'p';
  spec['mv/sub/m'] = 'm';
  spec['empty'] = { dir: true };
  makeTree(src, spec);
}

/**
 * Generation 1, a watcher started (with `watcherArgs`), generation 2 (whose scan begins inside
 * the watcher's epoch, so the journal may serve generation 3 on), then `body`; the watcher is
 * stopped however it ends.
 */
export async function watchedFromDay2(s: Spot, body: (w: HardsnapChild) => Promise<void>, watcherArgs: string[] = []): Promise<void> {
  await backupAsync(s, [], dayEnv(1));
  const w = await startWatcher(s, watcherArgs);
  try {
    await backupAsync(s, [], dayEnv(2));
    await body(w);
  } finally {
    await stopWatcher(w);
  }
}

/**
 * A second name given to `file` at `via`, a write through it, the name removed again: the
 * events are in via's directory only (the journal must still send the next run to a full scan).
 */
export function linkWriteUnlink(file: string, via: string, text: string): void {
  fs.linkSync(file, via);
  fs.appendFileSync(via, text);
  fs.unlinkSync(via);
}
