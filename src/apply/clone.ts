/**
 * Clones where the spool has them (docs/CONTENT.md "Clones"). A hard link shares the inode's
 * metadata, so a file whose content is already in the spool but whose metadata differs from
 * every copy there cannot be linked: a chmod, chown or attribute change of an unchanged file, a
 * file renamed by `git checkout` or touched (new mtime). On a file system that clones (XFS,
 * btrfs, NFS 4.2 on those) such a file is written as a clone (native do_clone: FICLONE): a new
 * inode, made O_EXCL in the generation being built, with the source's metadata, sharing the data
 * extents of the earlier file, which is only read. No data block is written; the source is read
 * (hashed) only where its content must be found the record's (fromPrevious below).
 *
 * Two ways in, each on the pool or (for the first name of a source hard link) on this thread:
 * - fromPrevious(): the previous generation's inode at the same path, when the file's size and
 *   mtime are its record's (plan/decide.ts sameContentAsRecord: the rule that links an
 *   unchanged file; its hash too under --checksum, or when its ctime moved since the record,
 *   as it has after a chmod: decide.ts movedSinceRecord). In the same call, before cloning, the inode
 *   is checked against its record as a link from the previous generation is (drift_of: type,
 *   mode, owner, size, mtime, inode number): drift is copied from the source and reported.
 * - fromCandidate(): a file of the content index whose recorded hash is the source's (hashed as
 *   it was read), its bytes compared with the source's (--dedup-verify) by content-links.ts;
 *   checked against its own record in the same call.
 * Whether the spool clones is decided once per part by a probe (src/fs/clone.ts); a clone the
 * file system refuses after all turns clones off for the rest of the run (said once), and the
 * file is copied as before. Until a clone of the run has succeeded, clones on the pool go one
 * at a time, so such a file system is sent one clone, not one per job in flight. Dry runs
 * never clone.
 */
import { displayPath, joinRel } from '../paths/escape.js';
import type { SourceEntry } from '../fs/entry.js';
import { IO, STAGE, refusedNamespaces, sys } from '../fs/native.js';
import { cloneFailure } from '../fs/clone.js';
import { E } from '../fs/errno.js';
import { removeChildAt } from '../fs/remove-tree.js';
import { FLAG, type ManifestEntry } from '../manifest/format.js';
import { movedSinceRecord, sameContentAsRecord, type Decision } from '../plan/decide.js';
import { packLinkRecords } from './link-records.js';
import type { BuildContext } from './build-context.js';
import type { Candidate } from './dedup-index.js';
import type { EntryWriter } from './entry-writer.js';
import type { Frame } from './frame.js';
import type { JobPool } from './jobs.js';

type MetaArgs = [uid: number, gid: number, mode: number, mtimeSec: number, mtimeNsec: number, what: number, xattrs: Buffer | null];

export class Cloner {
  private on = true;
  /** the refusal that turned clones off was said */
  private refusalSaid = false;
  /** a clone of this run succeeded: the file system takes them */
  private confirmed = false;
  /** the clone in flight while none is confirmed (the others wait for it) */
  private trial: Promise<number> | null = null;
  private readonly io = new Float64Array(sys.IO_FIELDS);

  constructor(
    private readonly ctx: BuildContext,
    private readonly pool: JobPool,
    private readonly writer: EntryWriter,
  ) {}

  /** Clones are on: the spool's probe cloned, and no clone was refused since. */
  get enabled(): boolean {
    return this.on;
  }

  /**
   * A file to copy whose content is its previous record's (only its metadata changed): cloned
   * from the previous generation's inode on the pool, its record landing at f.out[at], or copied
   * when that cannot be. False when it does not apply (the caller goes on as before).
   */
  fromPrevious(f: Frame, e: SourceEntry, p: ManifestEntry | undefined, d: Decision, at: number, sourceHash: string | null): boolean {
    if (!this.applies(f, e, p)) return false;
    void this.previousLater(f, e, p!, d, at, sourceHash);
    return true;
  }

  /** fromPrevious() on this thread: the clone's record, or null (the caller copies). */
  fromPreviousNow(f: Frame, e: SourceEntry, p: ManifestEntry | undefined, sourceHash: string | null): ManifestEntry | null {
    if (!this.applies(f, e, p)) return null;
    const io = this.io;
    const compare = this.compares(e, p!);
    if (compare && !sameHash(sourceHash ?? this.ctx.hashed(e, io, sys.hashat(f.src, e.name, io)), p!, true)) return null;
    const rc = sys.clone(f.prev, e.name, f.dst, e.name, this.prevCheck(p!), io, ...this.metaArgs(e));
    return this.settle(f, e, rc, io, p!.hash, null);
  }

  /**
   * A clone of the content-index file c (at rel below rootFd) whose hash is the source's `hash`,
   * on the pool: its record, or null (`forget` drops a candidate that drifted).
   */
  async fromCandidate(f: Frame, e: SourceEntry, c: Candidate, rootFd: number, rel: Buffer, hash: string, forget: () => void): Promise<ManifestEntry | null> {
    const io = new Float64Array(sys.IO_FIELDS);
    const rc = await this.pooled(() => sys.cloneAsync(rootFd, rel, f.dst, e.name, this.candidateCheck(c), io, ...this.metaArgs(e)));
    return rc === null || this.pool.failed ? null : this.settle(f, e, rc, io, hash, forget);
  }

  /** fromCandidate() on this thread. */
  fromCandidateNow(f: Frame, e: SourceEntry, c: Candidate, rootFd: number, rel: Buffer, hash: string, forget: () => void): ManifestEntry | null {
    if (!this.on) return null;
    const rc = sys.clone(rootFd, rel, f.dst, e.name, this.candidateCheck(c), this.io, ...this.metaArgs(e));
    return this.settle(f, e, rc, this.io, hash, forget);
  }

  private applies(f: Frame, e: SourceEntry, p: ManifestEntry | undefined): boolean {
    if (!(this.on && f.prev >= 0 && f.src >= 0 && sameContentAsRecord(e, p))) return false;
    // resuming: what the killed run left at this name (a link to the previous inode, a copy) is
    // replaced by the clone; only its name goes (never written into)
    if (this.ctx.o.resume) this.clearResumed(f, e);
    return true;
  }

  /**
   * Resume: a complete copy or clone of this entry a killed run made stays (the clone fails on
   * its name and the copy path keeps it: entry-writer.ts reuseCopy); anything else there (a link
   * to the previous inode, made before the source was chmod-ed; a partial copy) goes, by its
   * name only, so that the clone takes its place.
   */
  private clearResumed(f: Frame, e: SourceEntry): void {
    if (this.writer.completeCopyAt(f, e)) return;
    const rc = sys.unlinkat(f.dst, e.name, 0);
    if (rc === 0 || rc === -E.ENOENT) return;
    removeChildAt(f.dst, e.name); // a directory, or a refusal: removeChildAt says which
  }

  private async previousLater(f: Frame, e: SourceEntry, p: ManifestEntry, d: Decision, at: number, sourceHash: string | null): Promise<void> {
    const pool = this.pool;
    pool.hold(f);
    try {
      const io = new Float64Array(sys.IO_FIELDS);
      let m: ManifestEntry | null = null;
      const compare = this.compares(e, p);
      const hash = compare ? (sourceHash ?? this.ctx.hashed(e, io, await pool.track(sys.hashatAsync(f.src, e.name, io)))) : p.hash;
      if (pool.failed) return;
      if (sameHash(hash, p, compare)) {
        const rc = await this.pooled(() => sys.cloneAsync(f.prev, e.name, f.dst, e.name, this.prevCheck(p), io, ...this.metaArgs(e)));
        if (pool.failed) return;
        if (rc !== null) m = this.settle(f, e, rc, io, p.hash, null);
      }
      this.ctx.plan(f.rel, e, d, m ? { via: 'clone' } : undefined);
      if (m) f.out[at] = m;
      else this.writer.startCopy(f, e, at);
    } catch (err) {
      pool.fail(err);
    } finally {
      pool.release(f);
    }
  }

  /**
   * A clone job on the pool, once clones are known to work, or after the trial in flight; null
   * when clones were turned off meanwhile (the caller copies).
   */
  private async pooled(job: () => Promise<number> | number): Promise<number | null> {
    while (!this.confirmed && this.trial) await this.trial;
    if (!this.on) return null;
    const p = this.pool.track(job());
    if (this.confirmed) return p;
    this.trial = p;
    const rc = await p;
    if (rc === 0) this.confirmed = true;
    // before those waiting go on (settle() says so after them)
    else if (rc < 0 && cloneFailure(rc).kind === 'unsupported') this.on = false;
    if (this.trial === p) this.trial = null;
    return rc;
  }

  /**
   * Whether the source's content must be found the record's, not only its size and mtime: under
   * --checksum, and whenever its ctime moved since the record (a chmod moves it; so does a write
   * whose mtime was set back): the source is read and hashed, never the spool.
   */
  private compares(e: SourceEntry, p: ManifestEntry): boolean {
    const o = this.ctx.o;
    return o.checksum || movedSinceRecord(e, p, { prevAvailable: true, asRoot: o.asRoot, rootDev: o.rootMeta.dev, prevRecordsCtime: o.prevRecordsCtime });
  }

  /** The link record the previous inode must match: linkBatch's check (inode number when the manifest's are the spool's). */
  private prevCheck(p: ManifestEntry): Buffer {
    return packLinkRecords([{ e: p, prevIno: this.ctx.o.prevInodesCurrent ? p.ino : 0 }], this.ctx.o.asRoot);
  }

  /** The record a content-index file must match (as a content link checks it: not its inode number). */
  private candidateCheck(c: Candidate): Buffer {
    const m = {
      name: Buffer.alloc(0),
      type: 'file' as const,
      mode: c.mode,
      uid: c.uid,
      gid: c.gid,
      size: c.size,
      mtimeSec: c.mtimeSec,
      mtimeNsec: c.mtimeNsec,
      rdev: 0,
      target: null,
      xattrs: null,
    };
    return packLinkRecords([{ e: m, prevIno: 0 }], this.ctx.o.asRoot);
  }

  /** The new inode's metadata: the source entry's, as a copy gets it. */
  private metaArgs(e: SourceEntry): MetaArgs {
    return [e.uid, e.gid, e.mode, e.mtimeSec, e.mtimeNsec, this.writer.meta.metaBits(e), this.ctx.o.xattrs ? e.xattrs : null];
  }

  /**
   * What a clone() result makes of the entry: its record (the hash is its content's: the
   * previous record's, or the source's as hashed), or null, and the caller copies.
   */
  private settle(f: Frame, e: SourceEntry, rc: number, io: Float64Array, hash: string | null, forget: (() => void) | null): ManifestEntry | null {
    const ctx = this.ctx;
    if (rc === 0) {
      ctx.stats.cloned++;
      ctx.stats.bytesCloned += io[IO.BYTES]!;
      const refused = io[IO.XREFUSED]!;
      if (refused) ctx.refused(refused, refusedNamespaces);
      return ctx.record(e.name, e, io[IO.NEW_INO]!, refused ? FLAG.OFF_SPOOL : 0, hash);
    }
    if (rc > 0) {
      // drifted: the previous inode is reported as a link's would be; a candidate is dropped
      if (forget) forget();
      else ctx.drift(joinRel(f.rel, e.name));
      return null;
    }
    const why = cloneFailure(rc);
    if (why.kind === 'fatal') {
      ctx.fatal(joinRel(f.rel, e.name), -(-rc & 0xffff), why.stage === STAGE.META ? 'cannot set metadata in the spool' : 'cannot write to the spool');
    }
    if (why.kind === 'unsupported') this.on = false;
    if (why.kind === 'unsupported' && !this.refusalSaid) {
      this.refusalSaid = true;
      ctx.o.onNote(
        `${ctx.o.part}: the spool refused a clone (${why.code}) at ${JSON.stringify(displayPath(joinRel(f.rel, e.name)))}: ` +
          'files are copied for the rest of this run',
      );
    }
    return null;
  }
}

/**
 * Whether the source's hash is the record's, when it was compared. A difference is not counted
 * here: checksumChanged and sameStampChanged count decide()'s verdicts (steps.ts), which a dry
 * run and a spool without clones give alike; a file this finds changed was to be copied anyway
 * (its mode, owner or attributes changed).
 */
function sameHash(hash: string | null, p: ManifestEntry, compared: boolean): boolean {
  return !compared || (hash !== null && hash === p.hash);
}
