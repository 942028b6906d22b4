/**
 * Whether a backup may trust the watcher's journal for one part, and which directories it
 * must rescan when it does (docs/WATCH.md). Every "no" comes with the reason the run reports.
 *
 * The rule: the journal's epoch began before the previous generation's scan began, has not
 * ended, and its watcher (alive) answered a sync request made after this scan began, so every
 * change made before this scan began is in it. The directories to rescan are those with a
 * change at or after the previous generation's scan start (the same monotonic clock, the same
 * boot).
 */
import { fs } from '../fs/disk.js';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { FLAG } from '../manifest/format.js';
import type { ManifestReader } from '../manifest/reader.js';
import type { ScanRecord } from '../manifest/writer.js';
import { alive, processStart } from '../fs/process.js';
import { formatDuration } from '../time/duration.js';
import { parseDisplayPath } from '../paths/escape.js';
import { newLinkReason } from './new-links.js';
import { MAX_LINKS } from './dirty-dirs.js';
import { SYNC_PREFIX, currentBoot, currentMountNs, journalExists, readJournal, watchDir, type Journal } from './journal-file.js';
import { removeName } from '../fs/remove-tree.js';

export interface JournalSettings {
  /** false: never use a journal (--no-journal) */
  enabled: boolean;
  /** a full scan at least this often (ms) */
  fullScanEveryMs: number;
  /** directories skipped by the journal whose entries are checked against the manifest */
  auditSample: number;
  /** how long to wait for the watcher to answer a sync request (ms) */
  syncTimeoutMs: number;
}

export const DEFAULT_JOURNAL: JournalSettings = {
  enabled: true,
  fullScanEveryMs: 7 * 86_400_000,
  auditSample: 100,
  syncTimeoutMs: 10_000,
};

export type JournalDecision =
  | {
      use: true;
      epoch: string;
      dirty: Set<string>;
      /** dirty directories whose changed entries are all named: entry names (latin1 keys of their bytes) */
      names: Map<string, Set<string>>;
      watcher: string | null;
      journalFound: true;
    }
  | { use: false; reason: string; journalFound: boolean };

export interface JournalQuery {
  partDir: string;
  source: string;
  /** dev:ino of the source root this backup opened (and reads) */
  rootId: string;
  /** the mount points below the source when this scan began (relative to it) */
  mountPoints: readonly Buffer[];
  /** the previous generation's manifest, or null (none, or unreadable) */
  prev: { name: string; reader: ManifestReader | null } | null;
  /** this run's time (`now`) */
  now: Date;
  /** this run's rules fingerprint */
  rules: string;
  settings: JournalSettings;
}

const no = (reason: string, journalFound = false): JournalDecision => ({ use: false, reason, journalFound });

/** Decides; may wait up to settings.syncTimeoutMs for the watcher's answer. */
export async function consultJournal(q: JournalQuery): Promise<JournalDecision> {
  const s = q.settings;
  const found = journalExists(q.partDir);
  if (!s.enabled) return no('the journal is off (--no-journal)', found);
  if (!q.prev) return no('no previous generation', found);
  if (!q.prev.reader) return no(`the previous generation ${q.prev.name} has no readable manifest`, found);
  const scan: ScanRecord | undefined = q.prev.reader.header.scan;
  if (!scan) return no(`the previous generation ${q.prev.name} records no scan start (manifest format ${q.prev.reader.header.format})`, found);
  if (q.prev.reader.footer.mountsChanged) return no(`something was mounted or unmounted while the previous generation ${q.prev.name} was scanned`, found);
  if (q.prev.reader.root.flags & FLAG.INCOMPLETE) return no(`some entries of the previous generation ${q.prev.name} could not be backed up`, found);
  if (scan.rules !== q.rules) return no('the exclude rules or --one-file-system changed since the previous generation', found);
  const sinceFull = q.now.getTime() - Date.parse(scan.lastFull);
  if (!(sinceFull < s.fullScanEveryMs)) {
    return no(`the last full scan was ${formatDuration(Math.max(0, sinceFull))} ago (--full-scan-every ${formatDuration(s.fullScanEveryMs)})`, found);
  }
  const j = readJournal(q.partDir);
  if (!j) return no(found ? 'the journal is unreadable' : 'no journal (hardsnap watch is not running for this part)', found);
  const boot = currentBoot();
  const why = journalUnusable(j, q, scan, boot);
  if (why) return no(why, true);
  const synced = await sync(q.partDir, s.syncTimeoutMs);
  if (!synced) return no(`the watcher (pid ${j.pid}) did not answer within ${formatDuration(s.syncTimeoutMs)}`, true);
  const after = journalUnusable(synced, q, scan, boot);
  if (after) return no(after, true);
  if (synced.epoch!.id !== j.epoch!.id) return no('the watcher began a new epoch during the check', true);
  // after the sync: a root replaced under the watcher ends its epoch (the better reason, above)
  const root = rootMismatch(synced, q);
  if (root) return no(root, true);
  // its entries stand for unchanged directories only if it read this same directory (a symlink
  // on the source's path repointed and back, or one run of the part from elsewhere, since)
  if (!scan.rootId) return no(`the previous generation ${q.prev.name} does not record which directory it read (made before 2026-12-07)`, true);
  if (scan.rootId !== q.rootId) {
    return no(`the previous generation ${q.prev.name} was read from another directory than ${q.source} (dev:ino ${scan.rootId}, now ${q.rootId})`, true);
  }
  const link = linkSince(synced, scan.startMono, Date.parse(scan.startWall) / 1000);
  if (link) return no(link, true);
  const { dirty, names } = changedSince(synced, scan.startMono);
  for (const dir of mountDirs(q.mountPoints)) {
    dirty.add(dir);
    names.delete(dir);
  }
  return { use: true, epoch: synced.epoch!.id, dirty, names, watcher: synced.watcher ?? null, journalFound: true };
}

/**
 * Directories (relative, as the journal names them) that hold a mount point, or are one, below
 * the source (`mountPoints`, relative to it): mounting makes no event, and a file system mounted
 * there is not watched, so a change on it is in no journal. A directory mounted over is read
 * anyway (its entries are recorded as not the source's own: build-context.ts record()); a file
 * mounted over (a bind mount of one file from another file system) is an entry of a directory
 * on the source's device, which is read whole for it.
 */
export function mountDirs(mountPoints: readonly Buffer[]): string[] {
  const out = new Set<string>();
  for (const rel of mountPoints) {
    out.add(rel.toString('utf8'));
    const cut = rel.lastIndexOf(0x2f);
    out.add(cut < 0 ? '' : rel.subarray(0, cut).toString('utf8'));
  }
  return [...out];
}

/**
 * Why the journal cannot serve a backup whose previous scan began at `since` (monotonic µs) and
 * `sinceWall` (seconds): a hard link made since to a file born before that scan, even one removed
 * again. That file's other names, which the previous manifest records, change through the new
 * one with no event in their directories (`ln a/f b/t; echo x >> b/t; rm b/t`), and only a full
 * scan finds them (new-links.ts finds the links that are still there); null when there was none.
 */
export function linkSince(j: Pick<Journal, 'links' | 'linksLost'>, since: number, sinceWall: number): string | null {
  for (const [dir, name, born, t] of j.links ?? []) {
    if (t >= since && (born <= 1 || !(born >= sinceWall))) return newLinkReason(dir ? `${dir}/${name}` : name);
  }
  if ((j.linksLost ?? 0) >= since) return newLinkReason(`one of more than ${MAX_LINKS} new names`);
  return null;
}

/**
 * The directories with a change at or after `since`, and, for those whose every such change
 * named its entry (no whole mark at or after `since`), the entries named. A journal without
 * names (an older watcher) makes every directory whole.
 */
export function changedSince(j: Pick<Journal, 'dirty' | 'whole' | 'names'>, since: number): { dirty: Set<string>; names: Map<string, Set<string>> } {
  const dirty = new Set<string>();
  const names = new Map<string, Set<string>>();
  for (const [dir, t] of Object.entries(j.dirty)) {
    if (t < since) continue;
    dirty.add(dir);
    if ((j.whole?.[dir] ?? 0) >= since) continue;
    const set = new Set<string>();
    let ok = true;
    for (const [key, nt] of Object.entries(j.names?.[dir] ?? {})) {
      if (nt < since) continue;
      try {
        set.add(parseDisplayPath(key).toString('latin1'));
      } catch {
        ok = false;
      }
    }
    // a change with no entry named at or after `since` cannot be: read the directory whole
    if (ok && set.size) names.set(dir, set);
  }
  return { dirty, names };
}

function journalUnusable(j: Journal, q: JournalQuery, scan: ScanRecord, boot: string | null): string | null {
  if (j.source !== path.resolve(q.source)) return `the journal is of another source (${j.source})`;
  if (!boot || j.boot !== boot) return 'the journal was written before the last reboot';
  if (scan.boot !== boot) return 'the previous generation was scanned before the last reboot';
  if (!j.epoch) return j.failed ? `the watcher failed: ${j.failed}` : "the watcher has not finished its initial scan (chokidar's ready)";
  if (j.epoch.ended) return `the watcher's epoch ended at ${j.epoch.ended.wall}: ${j.epoch.ended.reason}`;
  if (!alive(j.pid) || (j.pidStart !== null && processStart(j.pid) !== j.pidStart)) return `the watcher (pid ${j.pid}) is not running`;
  if ((j.prunedBefore ?? 0) > scan.startMono) return 'the journal has forgotten changes since the previous generation (a newer generation was removed?)';
  if (j.epoch.startMono >= scan.startMono) {
    return `the watcher's epoch began (${j.epoch.startWall}) after the previous generation's scan began (${scan.startWall})`;
  }
  return null;
}

/** The same source name, another directory: a symlink on its path repointed since the watcher began. */
function rootMismatch(j: Journal, q: JournalQuery): string | null {
  if (!j.rootId) return 'the journal does not say which directory the watcher watches (a watcher older than this backup: restart it)';
  if (j.rootId !== q.rootId) return `the source ${q.source} is not the directory the watcher watches (a symlink on its path repointed, or the root replaced)`;
  const ns = currentMountNs();
  if (j.mountNs === undefined) return 'the journal does not say which mount namespace the watcher runs in (a watcher older than this backup: restart it)';
  if (j.mountNs !== ns)
    return `the watcher runs in another mount namespace (${j.mountNs ?? 'unknown'}, this backup ${ns ?? 'unknown'}): it may see other mounts over the source than this backup`;
  return null;
}

/**
 * Asks the watcher for a journal that includes every change made before now: creates
 * `sync-<nonce>`, which the watcher sees after every inotify event queued before it, and waits
 * for a journal naming the nonce. Null on timeout.
 */
async function sync(partDir: string, timeoutMs: number): Promise<Journal | null> {
  const nonce = randomBytes(8).toString('hex');
  const marker = path.join(watchDir(partDir), SYNC_PREFIX + nonce);
  fs.writeFileSync(marker, '', { flag: 'wx' });
  const deadline = Date.now() + timeoutMs;
  try {
    for (let wait = 2; ; wait = Math.min(wait * 2, 50)) {
      const j = readJournal(partDir);
      if (j?.synced.includes(nonce)) return j;
      if (Date.now() >= deadline) return null;
      await new Promise((r) => setTimeout(r, wait));
    }
  } finally {
    removeName(marker);
  }
}
