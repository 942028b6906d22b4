/**
 * Making new inodes in the generation: a copy of a source file (on the pool, or on this thread
 * when its first attempt came back unusual), a symlink, FIFO, socket or device node; their
 * metadata goes through meta-writer.ts. Never writes into an inode that exists: copies are
 * created O_EXCL.
 */
import { joinRel } from '../paths/escape.js';
import { MODE_BITS, type Meta, type SourceEntry } from '../fs/entry.js';
import { COPY, IO, ST, STAGE, errnoName, hashHex, refusedNamespaces, splitStaged, sys } from '../fs/native.js';
import { FLAG, type ManifestEntry } from '../manifest/format.js';
import type { Decision } from '../plan/decide.js';
import { removeChildAt } from '../fs/remove-tree.js';
import type { BuildContext } from './build-context.js';
import type { ContentLinker } from './content-links.js';
import { Cloner } from './clone.js';
import { MetaWriter } from './meta-writer.js';
import type { Carrier } from './carry.js';
import type { Frame } from './frame.js';
import type { JobPool } from './jobs.js';
import { E } from '../fs/errno.js';

const COPY_ATTEMPTS = 3;
const EEXIST = -E.EEXIST;

export class EntryWriter {
  private readonly io = new Float64Array(sys.IO_FIELDS);
  private readonly st = new Float64Array(sys.STAT_FIELDS);
  /** set by the coordinator once they exist (they refer to each other) */
  content: ContentLinker | null = null;
  carrier: Carrier | null = null;
  /** clones instead of copies where the spool has them (never in a dry run) */
  readonly cloner: Cloner | null;
  /** the metadata of what this run makes, and the generation's directories */
  readonly meta: MetaWriter;

  constructor(
    private readonly ctx: BuildContext,
    private readonly pool: JobPool,
  ) {
    this.cloner = ctx.o.clones && ctx.o.dstRootFd >= 0 ? new Cloner(ctx, pool, this) : null;
    this.meta = new MetaWriter(ctx, pool);
  }

  private copyFlags(e: Meta): number {
    const o = this.ctx.o;
    return (o.asRoot ? COPY.OWNER : 0) | COPY.MODE_TIMES | (o.xattrs ? COPY.XATTRS_VERIFY | (e.xattrs ? COPY.XATTRS : 0) : 0);
  }

  /**
   * Reads an entry's extended attributes when the scan did not (and its previous record could
   * not tell them); false when they cannot be read (reported, the caller keeps what it can).
   */
  ensureXattrs(f: Frame, e: SourceEntry): boolean {
    if (!this.ctx.o.xattrs || e.xattrsRead || f.src < 0) return true;
    const r = sys.getxattrs(f.src, e.name);
    this.ctx.stats.xattrReads++;
    if (typeof r === 'number') {
      e.xattrErr = -r;
      return false;
    }
    e.xattrs = r.length ? r : null;
    e.xattrsRead = true;
    return true;
  }

  /** Creates a new inode for a non-directory entry; null when it could not be (reported). */
  materialize(f: Frame, e: SourceEntry, d: Decision, dedup = true): ManifestEntry | null {
    switch (d.action) {
      case 'copy':
        return (dedup ? (this.content?.linkNow(f, e)?.m ?? null) : null) ?? this.copy(f, e);
      case 'symlink':
        return this.special(f, e, () => sys.symlinkat(e.target!, f.dst, e.name));
      case 'mknod':
        return this.special(f, e, () => sys.mknodat(f.dst, e.name, MODE_BITS[e.type] | 0o600, e.type === 'char' || e.type === 'block' ? e.rdev : 0));
      case 'record':
        this.ctx.problem(joinRel(f.rel, e.name), 'EPERM', `${e.type} device not created (only root can): recorded in the manifest`, true);
        return this.ctx.record(e.name, e, 0, FLAG.ABSENT, null);
      default:
        return null;
    }
  }

  /**
   * A fresh inode for an entry whose link was refused (the previous inode drifted, is full, is
   * gone, or belongs to another name of this generation): no content link (the previous inode
   * was the best candidate).
   */
  fresh(f: Frame, e: SourceEntry, reason: string): ManifestEntry | null {
    if (!this.ensureXattrs(f, e)) {
      this.ctx.problem(joinRel(f.rel, e.name), errnoName(e.xattrErr), 'cannot read its extended attributes');
      return null;
    }
    const d = this.freshDecision(e, reason);
    this.ctx.plan(f.rel, e, d);
    return this.materialize(f, e, d, false);
  }

  /** The decision for a fresh inode of `e` in place of a refused link. */
  freshDecision(e: SourceEntry, reason: string): Decision {
    const action =
      e.type === 'file' ? 'copy' : e.type === 'symlink' ? 'symlink' : (e.type === 'char' || e.type === 'block') && !this.ctx.o.asRoot ? 'record' : 'mknod';
    return { action, reason };
  }

  /** Copies a new or changed file on the pool; unusual outcomes are redone on this thread. */
  startCopy(f: Frame, e: SourceEntry, at: number): void {
    const io = new Float64Array(sys.IO_FIELDS);
    io[IO.FLAGS] = this.copyFlags(e);
    this.pool.run(f, sys.copyAsync(f.src, e.name, f.dst, e.name, io, this.ctx.o.xattrs ? e.xattrs : null), (rc) => {
      if (rc === 0 && io[IO.CHANGED] !== 1 && io[IO.XCHANGED] !== 1) {
        f.out[at] = this.copied(f, e, io, false);
        return;
      }
      if (rc === 0) sys.unlinkat(f.dst, e.name, 0);
      f.out[at] = this.copy(f, e);
    });
  }

  private copied(f: Frame, e: SourceEntry, io: Float64Array, changed: boolean): ManifestEntry {
    const s = IO.STAT;
    const meta: Meta = {
      type: 'file',
      mode: io[s + ST.MODE]! & 0o7777,
      uid: io[s + ST.UID]!,
      gid: io[s + ST.GID]!,
      size: io[IO.BYTES]!,
      mtimeSec: io[s + ST.MTIME]!,
      mtimeNsec: io[s + ST.MTIME_NS]!,
      rdev: 0,
      target: null,
      xattrs: e.xattrs,
    };
    const stats = this.ctx.stats;
    stats.copied++;
    stats.bytesWritten += io[IO.BYTES]!;
    // the file opened is not the one the scan read (another file renamed over the name in
    // between, as editors and mail delivery save): what is there now is copied, recorded as
    // changed while read (the next run copies it again; names of the scanned file are not
    // linked to it as if it were that file: hard-links.ts)
    const replaced = io[s + ST.INO] !== e.ino;
    const refused = io[IO.XREFUSED]!;
    if (refused) this.ctx.refused(refused, refusedNamespaces);
    // the scan's ctime, not the copy's: the attributes recorded are the scan's (checked against
    // the source's when the copy was made), and a change in between must make the next run read
    // them again
    return this.ctx.record(
      e.name,
      { ...meta, ctimeSec: e.ctimeSec, ctimeNsec: e.ctimeNsec, ino: e.ino, dev: e.dev },
      io[IO.NEW_INO]!,
      (changed || replaced ? FLAG.UNSTABLE : 0) | (refused ? FLAG.OFF_SPOOL : 0),
      hashHex(io[IO.HASH_HI]!, io[IO.HASH_LO]!),
    );
  }

  /** Copies a file on this thread, retrying a copy the source changed under; null when it could not be (reported). */
  copy(f: Frame, e: SourceEntry): ManifestEntry | null {
    const io = this.io;
    const ctx = this.ctx;
    const rel = () => joinRel(f.rel, e.name);
    for (let attempt = 1; ; attempt++) {
      io[IO.FLAGS] = this.copyFlags(e);
      const rc = sys.copy(f.src, e.name, f.dst, e.name, io, ctx.o.xattrs ? e.xattrs : null);
      if (rc === 0 && io[IO.XCHANGED] === 1 && attempt < COPY_ATTEMPTS) {
        // its attributes changed since the scan read them: read them again, copy again
        sys.unlinkat(f.dst, e.name, 0);
        e.xattrsRead = false;
        if (!this.ensureXattrs(f, e)) {
          ctx.problem(rel(), errnoName(e.xattrErr), 'cannot read its extended attributes');
          return null;
        }
        continue;
      }
      if (rc === 0) {
        const changed = io[IO.CHANGED] === 1 || io[IO.XCHANGED] === 1;
        if (changed && attempt < COPY_ATTEMPTS) {
          sys.unlinkat(f.dst, e.name, 0);
          continue;
        }
        if (changed) {
          ctx.stats.unstable++;
          ctx.problem(
            rel(),
            'ECHANGED',
            `changed while it was read (${COPY_ATTEMPTS} attempts): the copy may be inconsistent and will be copied again next run`,
            true,
          );
        }
        return this.copied(f, e, io, changed);
      }
      const { stage, code } = splitStaged(rc);
      if (stage === STAGE.OPEN_DST && code === 'EEXIST' && ctx.o.resume && attempt === 1) {
        const kept = this.reuseCopy(f, e);
        if (kept) return kept;
        removeChildAt(f.dst, e.name);
        continue;
      }
      if (stage === STAGE.OPEN_SRC && code === 'ENOENT') {
        ctx.vanished(rel());
        return null;
      }
      if (stage === STAGE.NOT_REG || (stage === STAGE.OPEN_SRC && (code === 'ELOOP' || code === 'ENXIO'))) {
        ctx.problem(rel(), 'ECHANGED', 'changed type between scan and copy (not followed, not opened for data); it will be backed up next run', true);
        return null;
      }
      if (stage === STAGE.OPEN_SRC || stage === STAGE.READ) {
        // the source cannot give it in this run: its previous version, when there is one
        const what = stage === STAGE.READ ? 'read error' : 'cannot open';
        if (this.carrier) return this.carrier.entry(f, e, code, what);
        ctx.problem(rel(), code, what);
        return null;
      }
      ctx.fatal(rel(), -(-rc & 0xffff), stage === STAGE.META ? 'cannot set metadata in the spool' : 'cannot write to the spool');
    }
  }

  /**
   * Resume: whether what a killed run left at e's name is a complete copy (or clone) of e: its
   * own inode with e's size, mtime, mode and owner (a copy sets the mtime last). Leaves its stat
   * in this.st. A file with attributes is never taken for one (they are not compared here).
   */
  completeCopyAt(f: Frame, e: SourceEntry): boolean {
    const st = this.st;
    if (e.xattrs && this.ctx.o.xattrs) return false;
    if (sys.fstatat(f.dst, e.name, st, 1) !== 0) return false;
    return (
      (st[ST.MODE]! & 0o170000) === 0o100000 &&
      st[ST.NLINK] === 1 &&
      st[ST.SIZE] === e.size &&
      st[ST.MTIME] === e.mtimeSec &&
      st[ST.MTIME_NS] === e.mtimeNsec &&
      (st[ST.MODE]! & 0o7777) === e.mode &&
      (!this.ctx.o.asRoot || (st[ST.UID] === e.uid && st[ST.GID] === e.gid))
    );
  }

  /**
   * Resume: keeps a copy a killed run completed (the copy sets the mtime last) when its bytes are
   * the source's too: a crash before the killed run's flush (power loss, a panic) can leave a file
   * of the right size and mtime that holds zeros, which no later run would look at again.
   */
  private reuseCopy(f: Frame, e: SourceEntry): ManifestEntry | null {
    if (!this.completeCopyAt(f, e)) return null;
    const st = this.st;
    const io = this.io;
    if (sys.hashat(f.dst, e.name, io) !== 0) return null;
    const hi = io[IO.HASH_HI]!;
    const lo = io[IO.HASH_LO]!;
    // the scanned inode's bytes (ctx.hashed): another file renamed over the name since holds
    // other bytes, and names of the scanned file would be linked to its copy (hard-links.ts)
    if (this.ctx.hashed(e, io, sys.hashat(f.src, e.name, io)) !== hashHex(hi, lo)) return null;
    this.ctx.stats.reused++;
    this.ctx.stats.copied++;
    return this.ctx.record(e.name, e, st[ST.INO]!, 0, hashHex(hi, lo));
  }

  /** Symlinks, FIFOs, sockets and devices: create, then owner, mode, attributes and mtime. */
  special(f: Frame, e: SourceEntry, create: () => number): ManifestEntry | null {
    let rc = create();
    if (rc === EEXIST && this.ctx.o.resume) {
      removeChildAt(f.dst, e.name);
      rc = create();
    }
    if (rc < 0) this.ctx.fatal(joinRel(f.rel, e.name), rc, `cannot create ${e.type} in the spool`);
    const refused = this.meta.setMeta(f.dst, e.name, -1, e, `cannot set the metadata of a ${e.type} in the spool`, joinRel(f.rel, e.name));
    rc = sys.fstatat(f.dst, e.name, this.st, 1);
    this.ctx.stats.copied++;
    return this.ctx.record(e.name, e, rc === 0 ? this.st[ST.INO]! : 0, refused ? FLAG.OFF_SPOOL : 0, null);
  }

  /**
   * A fresh inode with the previous generation's version of e (its record p): for a carried
   * entry whose previous inode cannot be linked as it is (another name of this generation
   * holds it). Copied from the spool, never from the source (which cannot be read).
   */
  copyPrevious(f: Frame, p: ManifestEntry): ManifestEntry | null {
    if (p.type !== 'file') return null;
    const io = this.io;
    io[IO.FLAGS] = (this.ctx.o.asRoot ? COPY.OWNER : 0) | COPY.MODE_TIMES | (this.ctx.o.xattrs && p.xattrs ? COPY.XATTRS : 0);
    const rc = sys.copy(f.prev, p.name, f.dst, p.name, io, this.ctx.o.xattrs ? p.xattrs : null);
    if (rc < 0) return null;
    if (hashHex(io[IO.HASH_HI]!, io[IO.HASH_LO]!) !== p.hash || io[IO.CHANGED] === 1) {
      sys.unlinkat(f.dst, p.name, 0);
      return null;
    }
    this.ctx.stats.copied++;
    this.ctx.stats.bytesWritten += io[IO.BYTES]!;
    return { ...p, ino: io[IO.NEW_INO]!, flags: p.flags | (io[IO.XREFUSED] ? FLAG.OFF_SPOOL : 0) };
  }
}
