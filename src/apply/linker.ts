/**
 * Links from the previous generation: unchanged entries are hard-linked in batches on the pool
 * (one native call per batch of a directory), each link checked in the same job against what
 * the manifest recorded (link-records.ts), and claimed for this generation (claims.ts). What
 * cannot be linked as recorded gets a fresh inode from the source instead:
 * - the previous inode drifted (someone chmod-ed or replaced it in the old generation): copied,
 *   counted, the first path reported once per run;
 * - the inode is already an unrelated name's in this generation: copied (the source's names
 *   stay the source's inodes);
 * - it is full (EMLINK), gone (ENOENT), or refused (EPERM, EXDEV): copied.
 * The inode number recorded is the one the stat of the new link gave, never the previous
 * manifest's: a spool copied to another disk (new inode numbers) gets true numbers from the
 * first run after the move.
 */
import { joinRel } from '../paths/escape.js';
import type { Meta, SourceEntry } from '../fs/entry.js';
import { ST, errnoName, sys } from '../fs/native.js';
import { EncodedEntry, type BlockEntry, type ManifestEntry } from '../manifest/format.js';
import { removeChildAt } from '../fs/remove-tree.js';
import { packLinkRecords } from './link-records.js';
import type { BuildContext } from './build-context.js';
import type { EntryWriter } from './entry-writer.js';
import type { Frame, PendingLink } from './frame.js';
import type { JobPool } from './jobs.js';
import type { Decision } from '../plan/decide.js';
import { E } from '../fs/errno.js';

/** Unchanged entries linked per native call */
export const LINK_BATCH = 256;

export class Linker {
  private readonly st = new Float64Array(sys.STAT_FIELDS);
  private readonly st2 = new Float64Array(sys.STAT_FIELDS);

  constructor(
    private readonly ctx: BuildContext,
    private readonly pool: JobPool,
    private readonly writer: EntryWriter,
  ) {}

  /**
   * Queues an unchanged entry of f and its record; the batch goes out when it is full. `prevIno`
   * is the inode the previous manifest records for it (checked when its numbers are the spool's).
   */
  add(f: Frame, e: SourceEntry, rec: EncodedEntry | ManifestEntry, prevIno: number, d: Decision | null = null): Promise<void> | void {
    f.links.push({ e, at: f.out.push(rec) - 1, rec, prevIno: this.ctx.o.prevInodesCurrent ? prevIno : 0, d });
    // a promise only when the batch goes out (most calls: none to await)
    if (f.links.length >= LINK_BATCH) return this.flush(f);
  }

  /** Links what f has queued, on the pool. */
  async flush(f: Frame): Promise<void> {
    const links = f.links;
    if (!links.length) return;
    f.links = [];
    const packed = packLinkRecords(links, this.ctx.o.asRoot);
    // a slot the batch never reached must not read as "linked"
    const res = new Int32Array(links.length).fill(-E.EIO);
    const inos = new Float64Array(links.length);
    await this.pool.slot();
    this.pool.run(f, sys.linkBatchAsync(f.prev, f.dst, packed, res, inos), (rc) => {
      if (rc < 0) this.ctx.fatal(f.rel, rc, 'cannot link into the spool');
      for (let i = 0; i < links.length; i++) {
        const l = links[i]!;
        f.out[l.at] = this.settle(f, l, res[i]!, inos[i]!);
      }
    });
  }

  /** Links one unchanged entry now (a first name of a source hard link): its record, or a fresh copy's. */
  linkNow(f: Frame, e: SourceEntry, rec: ManifestEntry, prevIno: number, d: Decision | null = null): ManifestEntry | null {
    const { rc, ino } = this.linkOne(f, e, prevIno);
    return this.settle(f, { e, at: -1, rec, prevIno, d }, rc, ino) as ManifestEntry | null;
  }

  /**
   * One checked link of `name` from the previous directory, on this thread: linkBatch's result
   * and inode. `into` -1: nothing linked, the previous name only checked (a dry run).
   */
  linkOne(f: Frame, m: Meta & { name: Buffer }, prevIno: number, into = f.dst): { rc: number; ino: number } {
    const res = new Int32Array(1).fill(-5);
    const inos = new Float64Array(1);
    const ino = this.ctx.o.prevInodesCurrent ? prevIno : 0;
    sys.linkBatch(f.prev, into, packLinkRecords([{ e: m, prevIno: ino }], this.ctx.o.asRoot), res, inos);
    return { rc: res[0]!, ino: inos[0]! };
  }

  /**
   * What a dry run says of an unchanged entry: `d` (the link) when its previous inode shows
   * what the manifest recorded, else the fresh inode the run would write instead, the drift
   * counted as the run counts it. Nothing is linked.
   */
  wouldLink(f: Frame, e: SourceEntry, prevIno: number, d: Decision): Decision {
    if (f.prev < 0) return d;
    const { rc, ino } = this.linkOne(f, e, prevIno, -1);
    if (rc === 0) {
      if (this.ctx.claims.claim(ino)) return d;
      // as settle(): an unrelated name of this generation holds that inode already
      this.ctx.stats.splitLinks++;
      return this.writer.freshDecision(e, "its previous inode is another name's in this generation");
    }
    if (rc > 0) this.ctx.drift(joinRel(f.rel, e.name));
    else this.ctx.prevUnlinkable(joinRel(f.rel, e.name), errnoName(rc));
    return this.writer.freshDecision(e, rc > 0 ? 'it drifted in the previous generation (changed in the spool)' : errnoName(rc));
  }

  /** What a link result makes of the entry: its record (with the inode linked), or a fresh inode's. */
  private settle(f: Frame, l: PendingLink, r: number, ino: number): BlockEntry | null {
    const ctx = this.ctx;
    const e = l.e;
    const stats = ctx.stats;
    if (r === 0 || (r === -E.EEXIST && ctx.o.resume && (ino = this.resumed(f, e)) >= 0)) {
      if (!ctx.claims.claim(ino)) {
        // an unrelated name of this generation uses that inode already
        sys.unlinkat(f.dst, e.name, 0);
        stats.splitLinks++;
        // a carried entry: a fresh copy of its previous version (the source cannot be read)
        if (f.src < 0 && !(l.rec instanceof EncodedEntry))
          return this.writer.copyPrevious(f, l.rec) ?? this.refused(f, e, "its previous inode is another name's in this generation");
        return this.refused(f, e, "its previous inode is another name's in this generation");
      }
      stats.linked++;
      stats.bytesLinked += e.size;
      if (r !== 0) stats.reused++;
      l.rec.ino = ino;
      // said once it is so (a link refused below is said as the new inode written instead)
      if (l.d) ctx.plan(f.rel, e, l.d);
      return l.rec;
    }
    if (r > 0) {
      // (in a carried subtree no copy from the source follows: refused() says so instead)
      if (f.src >= 0) ctx.drift(joinRel(f.rel, e.name));
      return this.refused(f, e, 'it drifted in the previous generation (changed in the spool)');
    }
    const code = errnoName(r);
    if (code === 'EMLINK') stats.emlinkCopies++;
    // EACCES: a directory of the previous generation this user may not search (a mode 000
    // directory carried there by a run that could not read it)
    else if (code === 'ENOENT' || code === 'EPERM' || code === 'EXDEV' || code === 'EACCES') {
      if (f.src >= 0) ctx.prevUnlinkable(joinRel(f.rel, e.name), code);
      else stats.prevMissing++;
    } else if (code === 'EEXIST' && ctx.o.resume) removeChildAt(f.dst, e.name);
    else ctx.fatal(joinRel(f.rel, e.name), r, 'cannot link into the spool');
    return this.refused(f, e, code);
  }

  /** An entry that could not be linked: a fresh inode from the source (none in a carried subtree). */
  private refused(f: Frame, e: SourceEntry, why: string): ManifestEntry | null {
    if (f.src < 0) {
      this.ctx.problem(
        joinRel(f.rel, e.name),
        'ECARRY',
        `its previous version cannot be linked (${why}) and the source cannot be read: not in this generation`,
        true,
      );
      return null;
    }
    return this.writer.fresh(f, e, why);
  }

  /**
   * Resume: the name exists in the partial generation already. It stands when it is the
   * previous generation's inode (a killed run linked it) and still shows what was recorded;
   * returns its inode number, or -1 (the caller removes it).
   */
  private resumed(f: Frame, e: SourceEntry): number {
    const a = this.st;
    const b = this.st2;
    if (sys.fstatat(f.dst, e.name, a, 1) !== 0 || sys.fstatat(f.prev, e.name, b, 1) !== 0) return -1;
    if (a[ST.INO] !== b[ST.INO] || a[ST.DEV] !== b[ST.DEV]) return -1;
    const sameMode = e.type === 'symlink' || (a[ST.MODE]! & 0o7777) === e.mode;
    const sameOwner = !this.ctx.o.asRoot || (a[ST.UID] === e.uid && a[ST.GID] === e.gid);
    const sameTime = a[ST.MTIME] === e.mtimeSec && a[ST.MTIME_NS] === e.mtimeNsec;
    const sameSize = e.type !== 'file' || a[ST.SIZE] === e.size;
    return sameMode && sameOwner && sameTime && sameSize ? a[ST.INO]! : -1;
  }
}
