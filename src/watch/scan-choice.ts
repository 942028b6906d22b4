/**
 * One part's choice between a full scan and a journaled one, as the backup makes it: the
 * journal's verdict (journal-use.ts), hard links the previous manifest does not know
 * (new-links.ts), then the audit (audit.ts), and what the generation's
 * manifest records about its scan (manifest format 2 `scan`).
 */
import { createHash } from 'node:crypto';
import type { ExcludeMatcher } from '../exclude/patterns.js';
import type { ManifestReader } from '../manifest/reader.js';
import type { ScanRecord } from '../manifest/writer.js';
import { audit } from './audit.js';
import { currentBoot, journalExists } from './journal-file.js';
import { consultJournal, type JournalSettings } from './journal-use.js';
import { newLinkReason, unrecordedLink } from './new-links.js';
import { UnchangedDirs } from './unchanged-dirs.js';

export interface JournalReport {
  /** the journal decided which directories were scanned */
  used: boolean;
  /** why not, when it was not used */
  reason: string | null;
  epoch: string | null;
  /** directories the journal named as changed since the previous generation's scan */
  dirty: number;
  /** directories audited against the manifest */
  audited: number;
  /** directories whose entries came from the previous manifest */
  skippedDirs: number;
  /** directories scanned */
  rescannedDirs: number;
  /** directories read for the entries the journal named (the others taken from the manifest) */
  namedDirs: number;
  /** the watcher that wrote the journal (fanotify, chokidar), when one was consulted */
  watcher: string | null;
}

export interface ScanChoice {
  /** the builder's seam, or null for a full scan */
  dirs: UnchangedDirs | null;
  /** what the new manifest records */
  record: ScanRecord;
  report: JournalReport;
  /** a journal file exists for the part (the run then says what it did with it) */
  journalFound: boolean;
}

export interface ScanQuery {
  partDir: string;
  source: string;
  prev: { name: string; reader: ManifestReader | null } | null;
  now: Date;
  patterns: (string | Buffer)[];
  oneFileSystem: boolean;
  settings: JournalSettings;
  excludes: ExcludeMatcher;
  skipDirs: Map<string, string>;
  rootDev: number;
  /** dev:ino of the opened source root */
  rootId: string;
  /** the mount points below the source when this scan began (relative to it) */
  mountPoints: readonly Buffer[];
  /** the opened source root (the audit reads through it) */
  srcRootFd: number;
  /** when this scan began: taken before anything else is decided */
  startMono: number;
  startWall: string;
  /** why the journal cannot be used by this kind of run (dry run, --checksum), or null */
  excluded: string | null;
}

/** Which entries a generation records: two runs with a different answer cannot share a journal. */
export function rulesFingerprint(patterns: (string | Buffer)[], oneFileSystem: boolean): string {
  const h = createHash('sha256');
  h.update(oneFileSystem ? 'x1' : 'x0');
  for (const p of patterns) h.update(`|${Buffer.isBuffer(p) ? 'b' + p.toString('hex') : 's' + Buffer.from(p).toString('hex')}`);
  return h.digest('hex').slice(0, 32);
}

export async function chooseScan(q: ScanQuery): Promise<ScanChoice> {
  const rules = rulesFingerprint(q.patterns, q.oneFileSystem);
  const full = (reason: string, journalFound: boolean, audited = 0): ScanChoice => ({
    dirs: null,
    record: { startMono: q.startMono, startWall: q.startWall, boot: currentBoot(), full: true, lastFull: q.now.toISOString(), rules, rootId: q.rootId },
    report: { used: false, reason, epoch: null, dirty: 0, audited, skippedDirs: 0, rescannedDirs: 0, namedDirs: 0, watcher: null },
    journalFound,
  });
  if (q.excluded) return full(q.excluded, journalExists(q.partDir));
  const d = await consultJournal({
    partDir: q.partDir,
    source: q.source,
    rootId: q.rootId,
    mountPoints: q.mountPoints,
    prev: q.prev,
    now: q.now,
    rules,
    settings: q.settings,
  });
  if (!d.use) return full(d.reason, d.journalFound);
  const reader = q.prev!.reader!;
  const link = unrecordedLink({ rootFd: q.srcRootFd, rootDev: q.rootDev, reader, dirty: d.dirty, names: d.names, excludes: q.excludes });
  if (link) return full(newLinkReason(link), true);
  const a = audit({ rootFd: q.srcRootFd, reader, dirty: d.dirty, names: d.names, sample: q.settings.auditSample, excludes: q.excludes, skipDirs: q.skipDirs });
  if (a.mismatch) return full(`the audit found a change the journal does not know: ${a.mismatch}`, true, a.checked);
  return {
    dirs: new UnchangedDirs(d.dirty, q.rootDev, d.names),
    record: {
      startMono: q.startMono,
      startWall: q.startWall,
      boot: currentBoot(),
      full: false,
      lastFull: reader.header.scan!.lastFull,
      rules,
      rootId: q.rootId,
    },
    report: {
      used: true,
      reason: null,
      epoch: d.epoch,
      dirty: d.dirty.size,
      audited: a.checked,
      skippedDirs: 0,
      rescannedDirs: 0,
      namedDirs: 0,
      watcher: d.watcher,
    },
    journalFound: true,
  };
}

/** The report once the tree is built (the builder's counts). */
export function finishReport(c: ScanChoice): JournalReport {
  const s = c.dirs?.stats;
  if (!s) return c.report;
  return { ...c.report, skippedDirs: s.skipped, rescannedDirs: s.rescanned, namedDirs: s.named, ...(s.disabled ? { reason: `partly: ${s.disabled}` } : {}) };
}

/** The note a run prints about it (null: nothing worth saying, no journal in play). */
export function scanNote(part: string, c: ScanChoice, r: JournalReport): string | null {
  if (r.used) {
    return (
      `part '${part}': journal used (${r.watcher ?? 'watcher'}, epoch ${r.epoch}): ${r.dirty} directories changed since the previous scan; ` +
      `${r.rescannedDirs} directories scanned, ${r.namedDirs} read for the entries named, ${r.skippedDirs} taken from the previous manifest; audit of ${r.audited} directories matched` +
      (r.reason ? ` (${r.reason})` : '')
    );
  }
  return c.journalFound ? `part '${part}': full scan: ${r.reason}` : null;
}
