/**
 * What the parts of a tree build share: the options, the counters, the one way to report a
 * per-file problem, a fatal error, a decision (for --dry-run and --verbose), and how a manifest
 * record is made. The coordinator (build-tree.ts) owns it and hands it to the collaborators
 * (linker.ts, entry-writer.ts, content-links.ts, hard-links.ts, carry.ts).
 */
import { HardsnapError } from '../core/errors.js';
import { displayPath, joinRel } from '../paths/escape.js';
import { IO, ST, errnoName, hashHex, sys } from '../fs/native.js';
import type { Meta, SourceEntry } from '../fs/entry.js';
import type { ManifestEntry } from '../manifest/format.js';
import type { ManifestWriter } from '../manifest/writer.js';
import type { Decision } from '../plan/decide.js';
import type { ExcludeMatcher } from '../exclude/patterns.js';
import type { DedupIndex } from './dedup-index.js';
import type { PrevTree } from './prev-tree.js';
import type { DirEntrySource } from './dir-entry-source.js';
import { ClaimedInodes } from './claims.js';
import { MountPoints } from './mount-points.js';
import type { MountWatch } from '../fs/mountinfo.js';
import type { BuildFindings, BuildStats, PlanOutcome, Problem } from './types.js';

export interface BuildOptions {
  part: string;
  /** descriptor of the source root directory */
  srcRootFd: number;
  /** metadata of the source root (its extended attributes included) */
  rootMeta: Meta & { dev: number };
  /**
   * descriptor of the new generation's root (the .partial directory); -1 in a dry run, which is
   * a build with no spool side: it walks, plans and says the plan (steps.ts `say`), and nothing
   * that writes runs (every frame's dst is -1)
   */
  dstRootFd: number;
  /** descriptor (O_PATH) of the previous generation's root, or -1 */
  prevRootFd: number;
  prev: PrevTree | null;
  /**
   * the previous manifest's inode numbers are the spool's (format 3, not copied to another disk
   * since): a linked inode must also be the recorded one (a replaced file is not linked)
   */
  prevInodesCurrent: boolean;
  /** the previous generation's name (what a carried entry is a version of) */
  prevGeneration: string | null;
  /** entries the previous generation carried itself, by escaped path: from which generation */
  prevCarried?: ReadonlyMap<string, string>;
  resume: boolean;
  asRoot: boolean;
  /** the run reads and searches every directory whatever its mode (src/fs/process.ts bypassesPermissions) */
  readsAll: boolean;
  oneFileSystem: boolean;
  excludes: ExcludeMatcher;
  /** directories never entered (dev:ino): the spool when it lies inside the source */
  skipDirs: Map<string, string>;
  /** the mount points below the source when the scan began, polled once per directory (mount-points.ts) */
  mountWatch?: MountWatch | null;
  manifest: ManifestWriter | null;
  /** read, record, compare and write extended attributes and ACLs (off: --no-xattrs) */
  xattrs: boolean;
  /**
   * the previous manifest's attributes can be trusted for an entry whose ctime is unchanged
   * (format 3, written with attributes on); otherwise every entry's attributes are read
   */
  prevXattrsTrusted: boolean;
  /** the previous manifest records ctimes (format 3 and later): plan/decide.ts compareReason */
  prevRecordsCtime: boolean;
  /**
   * the previous manifest was written with attributes off (--no-xattrs): an unchanged entry's
   * previous inode may carry attributes its record does not name, read before it is linked
   */
  prevXattrsUnrecorded?: boolean;
  /**
   * ctimes (seconds) at or after this are recorded as unknown (0): within a second of the scan's
   * start, a later attribute change may not move them (see record())
   */
  racyCtimeSec: number;
  /**
   * the scan reads the attributes of entries whose ctime (seconds) is at or after this
   * (changed since about when the previous generation's scan began; -Infinity: all)
   */
  xattrCtimeMin: number;
  /** the source is on a file system where each stat is a round trip: directories are stat-ed in parallel */
  sourceRemote?: boolean;
  /** false: the previous records are never copied as they are (the source root moved to another file system) */
  prevRecordsStand?: boolean;
  /** content index: new or changed files identical to one in it are linked, not written */
  dedup?: DedupIndex | null;
  /** compare bytes before a content link or a clone of a content match (docs/CONTENT.md) */
  dedupVerify?: boolean;
  /**
   * the spool's file system clones (probed once for the part, src/fs/clone.ts): a file whose
   * content is in the spool but whose metadata differs is written as a clone (src/apply/clone.ts)
   */
  clones?: boolean;
  /** decide "unchanged" by content hash (reads the source of every unchanged-looking file) */
  checksum?: boolean;
  /** watch mode: entries of directories the journal knows are unchanged (src/watch/unchanged-dirs.ts) */
  unchangedDirs?: DirEntrySource | null;
  onProblem(p: Problem): void;
  onNote(message: string): void;
  /** what the user must hear about even under cron, once per run (not per file) */
  onWarn?(message: string): void;
  /**
   * each entry's decision (dry runs print it; --verbose itemizes it), before it is carried out;
   * for a file to copy, once a content link was tried, and for a further name of a source inode,
   * once it is linked, so that `how` says what was done instead of a copy
   */
  onPlan?(rel: Buffer, d: Decision, e: Meta, how?: PlanOutcome): void;
  onProgress?(s: BuildStats): void;
  /**
   * the run was asked to stop (a signal): no new job is started, those in flight finish, every
   * descriptor is closed, and run() throws the signal's reason; the partial tree stays to resume
   */
  signal?: AbortSignal;
}

export function newStats(): BuildStats {
  return {
    entries: 0,
    dirs: 0,
    files: 0,
    symlinks: 0,
    specials: 0,
    linked: 0,
    copied: 0,
    bytesWritten: 0,
    bytesLinked: 0,
    cloned: 0,
    bytesCloned: 0,
    reused: 0,
    emlinkCopies: 0,
    prevMissing: 0,
    unstable: 0,
    excluded: 0,
    problems: 0,
    vanished: 0,
    dedupLinked: 0,
    dedupBytes: 0,
    dedupMismatches: 0,
    hashedFiles: 0,
    hashedBytes: 0,
    checksumChanged: 0,
    sameStampChanged: 0,
    drifted: 0,
    splitLinks: 0,
    linkGroupSplits: 0,
    carried: 0,
    xattrReads: 0,
  };
}

/** Links an inode may have, by statfs f_type, where the limit is low enough to meet (else EMLINK alone tells). */
const LINK_MAX_BY_FS: ReadonlyMap<number, number> = new Map([
  [0xef53, 65000], // ext2, ext3, ext4
  [0x9123683e, 65535], // btrfs
]);

/** How many carried entries the manifest footer names (the count is always exact). */
const CARRIED_LISTED = 1000;

export class BuildContext {
  readonly stats = newStats();
  readonly findings: BuildFindings = {
    driftFirst: null,
    unlinkable: { count: 0, first: null },
    linkGroupSplit: null,
    xattrsRefused: [],
    carried: [],
  };
  /** the spool inodes this generation uses (claims.ts) */
  readonly claims = new ClaimedInodes();
  /** the mount points below the source: what is below one is recorded as not the source's own */
  readonly mounts: MountPoints;
  private refusedMask = 0;
  private nextGroup = 1;
  private linkLimit: number | undefined;

  /** A new link-group id of this manifest (names of one source inode share it). */
  newLinkGroup(): number {
    return this.nextGroup++;
  }

  constructor(readonly o: BuildOptions) {
    this.mounts = new MountPoints(o.mountWatch?.unwatched);
  }

  /**
   * The names an inode of the spool may have, where the file system's limit is known (ext4,
   * btrfs: statfs); Infinity elsewhere (EMLINK alone tells there). A group of source names is
   * linked to an inode only when it can take them all (hard-links.ts, content-links.ts).
   */
  linkMax(): number {
    if (this.linkLimit === undefined) {
      const out = new Float64Array(8);
      const fd = this.o.dstRootFd;
      this.linkLimit = fd >= 0 && sys.statfs(fd, out) === 0 ? (LINK_MAX_BY_FS.get(out[0]!) ?? Infinity) : Infinity;
    }
    return this.linkLimit;
  }

  /** A per-file problem: recorded and reported, the run goes on (exit 23). */
  problem(rel: Buffer, code: string, what: string, whole = false): void {
    if (code === 'ENOENT') return this.vanished(rel);
    this.stats.problems++;
    this.o.onProblem({ part: this.o.part, path: rel, code, message: whole ? what : `${what}: ${code}`, severity: 'error' });
  }

  vanished(rel: Buffer): void {
    this.stats.vanished++;
    this.o.onProblem({ part: this.o.part, path: rel, code: 'ENOENT', message: 'vanished during the run', severity: 'vanished' });
  }

  /** A failure that makes the generation untrustworthy: the run stops (exit 2). */
  fatal(rel: Buffer, rc: number, what: string): never {
    const code = errnoName(rc);
    const hint =
      code === 'ENOSPC'
        ? 'the spool is full: free space (prune) and run again; the next run resumes'
        : code === 'EDQUOT'
          ? 'the spool quota is exhausted'
          : undefined;
    throw new HardsnapError(code, `${what}: ${code} (part '${this.o.part}', ${JSON.stringify(displayPath(rel))})`, {
      exit: 2,
      path: displayPath(rel),
      hint,
    });
  }

  plan(dirRel: Buffer, e: SourceEntry, d: Decision, how?: PlanOutcome): void {
    if (this.o.onPlan) this.o.onPlan(joinRel(dirRel, e.name), d, e, how);
  }

  /**
   * An unchanged entry whose previous inode could not be linked (`code`: ENOENT, EPERM, EXDEV,
   * EACCES): counted; the first one kept for the report, unless it is EACCES (a directory of the
   * previous generation this user may not search: no damage, said where it was carried).
   */
  prevUnlinkable(rel: Buffer, code: string): void {
    this.stats.prevMissing++;
    if (code === 'EACCES') return;
    const u = this.findings.unlinkable;
    u.count++;
    u.first ??= `${displayPath(rel)} (${code})`;
  }

  /** An unchanged entry whose previous inode drifted: counted, the first one kept for the report. */
  drift(rel: Buffer): void {
    this.stats.drifted++;
    this.findings.driftFirst ??= displayPath(rel);
  }

  /** A further name of a source inode made an inode of its own (hard-links.ts): counted, the first kept for the report. */
  linkGroupSplit(rel: Buffer, first: Buffer): void {
    this.stats.linkGroupSplits++;
    this.findings.linkGroupSplit ??= { name: displayPath(rel), first: displayPath(first) };
  }

  /** Namespaces the spool refused (setmeta's and copy's mask): reported once each per run. */
  refused(mask: number, names: (mask: number) => string[]): void {
    const fresh = mask & ~this.refusedMask;
    if (!fresh) return;
    this.refusedMask |= fresh;
    for (const ns of names(fresh)) {
      this.findings.xattrsRefused.push(ns);
      (this.o.onWarn ?? this.o.onNote)(
        `${this.o.part}: the spool's file system refused ${ns}.* extended attributes: they are kept in the manifest only (restore applies them)`,
      );
    }
  }

  /** A carried entry (the source could not give it): counted, listed, reported (exit 23). */
  carried(rel: Buffer, from: string, code: string, what: string): void {
    this.stats.carried++;
    if (this.findings.carried.length < CARRIED_LISTED) this.findings.carried.push({ path: displayPath(rel), from, code });
    this.problem(rel, code, `${what}: ${code}; kept its previous version (from ${from})`, true);
  }

  /**
   * The source's XXH64 from a hashat() of it (rc, io), when it is still the file that was scanned
   * (the inode scanned, the same size and mtime while it was read: another file renamed over the
   * name with the same size and mtime is not it); else null. Counted.
   */
  hashed(e: Meta & { ino: number }, io: Float64Array, rc: number): string | null {
    if (rc !== 0) return null;
    this.stats.hashedFiles++;
    this.stats.hashedBytes += io[IO.BYTES]!;
    const s = IO.STAT;
    const same =
      io[IO.CHANGED] === 0 && io[s + ST.INO] === e.ino && io[s + ST.SIZE] === e.size && io[s + ST.MTIME] === e.mtimeSec && io[s + ST.MTIME_NS] === e.mtimeNsec;
    return same ? hashHex(io[IO.HASH_HI]!, io[IO.HASH_LO]!) : null;
  }

  /** The ctime a record of `m` keeps: 0 (unknown) when too close to the scan's start or after it (racy, below). */
  recordedCtime(m: { ctimeSec?: number; ctimeNsec?: number }): { ctimeSec: number; ctimeNsec: number } {
    const racy = (m.ctimeSec ?? 0) >= this.o.racyCtimeSec;
    return { ctimeSec: racy ? 0 : (m.ctimeSec ?? 0), ctimeNsec: racy ? 0 : (m.ctimeNsec ?? 0) };
  }

  /**
   * A manifest record of `m` as it is in the generation (inode `ino`). A ctime too close to the
   * scan's start is recorded as 0 (unknown): an attribute change in the same clock tick as the
   * one the scan saw would leave the ctime as it was, and the next run must read the attributes
   * rather than trust it (git's "racy" timestamps).
   */
  record(
    name: Buffer,
    m: Meta & { ctimeSec?: number; ctimeNsec?: number; ino?: number; dev?: number; srcIno?: number },
    ino: number,
    flags: number,
    hash: string | null,
  ): ManifestEntry {
    const ctime = this.recordedCtime(m);
    return {
      name,
      type: m.type,
      mode: m.mode,
      uid: m.uid,
      gid: m.gid,
      size: m.type === 'dir' ? 0 : m.size,
      mtimeSec: m.mtimeSec,
      mtimeNsec: m.mtimeNsec,
      rdev: m.rdev,
      target: m.target,
      flags,
      linkGroup: 0,
      ino,
      hash,
      ...ctime,
      xattrs: this.o.xattrs ? m.xattrs : null,
      // a scanned entry's inode (a record standing for an earlier one keeps its srcIno); 0 for
      // one on another file system mounted in the source: its number would name another file
      // once that file system is gone
      srcIno: m.dev !== undefined && m.dev !== this.o.rootMeta.dev ? 0 : (m.srcIno ?? m.ino ?? 0),
    };
  }
}
