/**
 * Content deduplication (docs/CONTENT.md): a new or changed file identical to one already in
 * the spool (an older generation's: renamed, moved, restored from a backup) is hard-linked to
 * it instead of written. Only files with a candidate in the content index (same size, mtime,
 * mode, owner and attributes) are hashed, so nothing is read that would be thrown away; the
 * bytes are compared before linking (--dedup-verify, the default). A candidate whose inode this
 * generation already uses is never taken: two separate source files stay two inodes.
 *
 * Where the spool clones (clone.ts), a file with the content of an indexed file whose metadata
 * differs (a size match of cloneCandidates(): renamed and touched; or a file whose link was
 * refused: the inode is full, or another name's in this generation) is written as a clone of
 * it, after the same hash match and byte comparison, instead of a copy.
 *
 * Two ways in: linkNow() on this thread (for the first name of a source hard link, whose
 * group is settled in order), linkLater() with the hashing and comparing on the pool while the
 * walk goes on. Both drive one candidate loop (choose(): attempt(), then clones).
 */
import { joinRel } from '../paths/escape.js';
import type { SourceEntry } from '../fs/entry.js';
import { ST, errnoName, sys } from '../fs/native.js';
import { sameContent, sameness, type Sameness } from '../fs/compare.js';
import { FLAG, type ManifestEntry } from '../manifest/format.js';
import type { Decision } from '../plan/decide.js';
import type { BuildContext } from './build-context.js';
import type { Candidate, DedupIndex } from './dedup-index.js';
import type { EntryWriter } from './entry-writer.js';
import type { Frame } from './frame.js';
import type { JobPool } from './jobs.js';
import { E } from '../fs/errno.js';

/** 'taken': the inode holds the content but is another name's in this generation (it may be cloned) */
type Attempt = 'linked' | 'EMLINK' | 'taken' | 'no';

/** A file the content may be cloned from, and its byte comparison (undefined: not made yet, or not asked). */
interface CloneSource {
  c: Candidate;
  rel: Buffer;
  same: Sameness | undefined;
}

/** What the candidate loop asks its driver for: a byte comparison, or a clone from a candidate. */
type Ask = { kind: 'compare'; c: Candidate; rel: Buffer } | { kind: 'clone'; s: CloneSource };

/** What linkNow() made instead of a copy. */
export interface Instead {
  m: ManifestEntry;
  via: 'content' | 'clone';
}

export class ContentLinker {
  private readonly io = new Float64Array(sys.IO_FIELDS);
  private readonly st = new Float64Array(sys.STAT_FIELDS);
  private readonly srcSt = new Float64Array(sys.STAT_FIELDS);

  constructor(
    private readonly ctx: BuildContext,
    private readonly pool: JobPool,
    private readonly writer: EntryWriter,
    private readonly index: DedupIndex,
  ) {}

  /**
   * Files in the content index this new or changed file may be linked to, then, where the spool
   * clones, those of its size it may only be cloned from.
   */
  candidates(e: SourceEntry): Candidate[] {
    if (e.type !== 'file') return [];
    const linkable = this.index.candidates(e);
    return this.writer.cloner?.enabled ? linkable.concat(this.index.cloneCandidates(e)) : linkable;
  }

  /** Links e to an identical file (or clones one), on this thread; null when none could be (the caller copies). */
  linkNow(f: Frame, e: SourceEntry, knownHash: string | null = null): Instead | null {
    const cands = this.candidates(e);
    if (!cands.length) return null;
    const hash = knownHash ?? this.ctx.hashed(e, this.io, sys.hashat(f.src, e.name, this.io));
    if (!hash) return null;
    const it = this.choose(f, e, cands, hash);
    for (let r = it.next(); ;) {
      if (r.done) return r.value;
      const a = r.value;
      r = it.next(
        a.kind === 'compare'
          ? sameContent(f.src, e.name, this.index.rootFd(a.c), a.rel)
          : this.writer.cloner!.fromCandidateNow(f, e, a.s.c, this.index.rootFd(a.s.c), a.s.rel, hash, () => this.index.forget(a.s.c)),
      );
    }
  }

  /**
   * linkNow() with the hashing, the byte comparisons and the clones on the pool, then the link,
   * or the copy started; its record lands at f.out[at]. Holds a slot and the frame open
   * throughout: its descriptors stay valid.
   */
  async linkLater(f: Frame, e: SourceEntry, d: Decision, cands: Candidate[], at: number, knownHash: string | null): Promise<void> {
    const pool = this.pool;
    pool.hold(f);
    try {
      const io = new Float64Array(sys.IO_FIELDS);
      const hash = knownHash ?? this.ctx.hashed(e, io, await pool.track(sys.hashatAsync(f.src, e.name, io)));
      if (pool.failed) return;
      let made: Instead | null = null;
      if (hash) {
        const it = this.choose(f, e, cands, hash);
        for (let r = it.next(); ;) {
          if (r.done) {
            made = r.value;
            break;
          }
          const a = r.value;
          const answer =
            a.kind === 'compare'
              ? sameness(await pool.track(sys.sameContentAsync(f.src, e.name, this.index.rootFd(a.c), a.rel)))
              : await this.writer.cloner!.fromCandidate(f, e, a.s.c, this.index.rootFd(a.s.c), a.s.rel, hash, () => this.index.forget(a.s.c));
          if (pool.failed) return;
          r = it.next(answer);
        }
      }
      this.ctx.plan(f.rel, e, d, made ? { via: made.via } : undefined);
      if (made) f.out[at] = made.m;
      else this.writer.startCopy(f, e, at);
    } catch (err) {
      pool.fail(err);
    } finally {
      pool.release(f);
    }
  }

  /**
   * The candidate loop of both ways in, once: links the first candidate holding the content
   * (attempt()), else, where the spool clones, clones from one. It yields each byte comparison
   * (--dedup-verify) and each clone it needs, answered by its driver on this thread (linkNow)
   * or on the pool (linkLater); returns what was made, or null (the caller copies), having
   * counted a full inode met on the way.
   */
  private *choose(f: Frame, e: SourceEntry, cands: Candidate[], hash: string): Generator<Ask, Instead | null, Sameness | undefined | ManifestEntry | null> {
    const verify = this.ctx.o.dedupVerify;
    let emlink = false;
    const clones: CloneSource[] = [];
    for (const c of this.matching(cands, hash)) {
      const rel = this.index.relPath(c);
      if (!c.sameMeta || this.keptBySource(c, rel)) {
        clones.push({ c, rel, same: undefined });
        continue;
      }
      const same = verify ? ((yield { kind: 'compare', c, rel }) as Sameness) : undefined;
      const r = this.attempt(f, e, c, rel, hash, same);
      if (r === 'linked') return { m: this.linked(e, hash, c), via: 'content' };
      emlink ||= r === 'EMLINK';
      if (r === 'EMLINK' || r === 'taken') clones.unshift({ c, rel, same });
    }
    // the copy (or clone) that follows is the link base for the next ones
    if (emlink) this.ctx.stats.emlinkCopies++;
    if (!this.writer.cloner?.enabled) return null;
    for (const s of clones) {
      const same = s.same !== undefined || !verify ? s.same : ((yield { kind: 'compare', c: s.c, rel: s.rel }) as Sameness);
      if (!this.proven(f, e, s.c, s.rel, hash, same)) continue;
      const m = (yield { kind: 'clone', s }) as ManifestEntry | null;
      if (m) return { m, via: 'clone' };
    }
    return null;
  }

  /**
   * Whether a candidate of the previous generation is the inode an unchanged file of the source
   * will be linked to again (its path still there, looking as recorded): a content link must not
   * take it first, or that file would lose its inode to a separate one and be written anew,
   * the link saving nothing (it may still be cloned from). A guess from one stat: wrong, it only
   * costs a link.
   */
  private keptBySource(c: Candidate, rel: Buffer): boolean {
    const o = this.ctx.o;
    if (o.prevRootFd < 0 || o.srcRootFd < 0 || this.index.rootFd(c) !== o.prevRootFd) return false;
    const st = this.srcSt;
    if (sys.fstatat(o.srcRootFd, rel, st, 1) !== 0) return false;
    return (
      (st[ST.MODE]! & 0o170000) === 0o100000 &&
      st[ST.SIZE] === c.size &&
      st[ST.MTIME] === c.mtimeSec &&
      st[ST.MTIME_NS] === c.mtimeNsec &&
      (st[ST.MODE]! & 0o7777) === c.mode &&
      (!o.asRoot || (st[ST.UID] === c.uid && st[ST.GID] === c.gid))
    );
  }

  /** The candidates whose recorded hash is the source's */
  private matching(cands: Candidate[], hash: string): Candidate[] {
    return cands.filter((c) => this.index.sameHash(c.hash, hash));
  }

  private linked(e: SourceEntry, hash: string, c: Candidate): ManifestEntry {
    this.ctx.stats.dedupLinked++;
    this.ctx.stats.dedupBytes += e.size;
    return this.ctx.record(e.name, e, this.st[ST.INO]!, c.flags & FLAG.OFF_SPOOL, hash);
  }

  /**
   * Whether a candidate whose hash matched holds the source's content: `same` is the byte
   * comparison's result (undefined: not asked, --no-dedup-verify: the hash is trusted). Different
   * bytes are counted and reported.
   */
  private proven(f: Frame, e: SourceEntry, c: Candidate, rel: Buffer, hash: string, same: Sameness | undefined): boolean {
    if (same === false) {
      const ctx = this.ctx;
      ctx.stats.dedupMismatches++;
      ctx.o.onNote(
        `${ctx.o.part}: ${joinRel(f.rel, e.name).toString()} has the size${c.sameMeta ? ', metadata' : ''} and XXH64 (${hash}) of ${this.index.rootLabel(c)}/${rel.toString()} but different bytes: written, not ${c.sameMeta ? 'linked' : 'cloned'}`,
      );
    }
    return same === undefined || same === true;
  }

  /**
   * Links one candidate (at rel below its root) whose hash matched; `same` is the byte
   * comparison's result (undefined: not asked, --no-dedup-verify). this.st holds the new link's
   * stat when it says 'linked'.
   */
  private attempt(f: Frame, e: SourceEntry, c: Candidate, rel: Buffer, hash: string, same: Sameness | undefined): Attempt {
    const ix = this.index;
    const ctx = this.ctx;
    if (!this.proven(f, e, c, rel, hash, same)) return 'no';
    let rc = sys.linkat(ix.rootFd(c), rel, f.dst, e.name);
    if (rc === -E.EEXIST && ctx.o.resume) {
      sys.unlinkat(f.dst, e.name, 0);
      rc = sys.linkat(ix.rootFd(c), rel, f.dst, e.name);
    }
    if (rc < 0) {
      const code = errnoName(rc);
      if (code === 'EMLINK' || code === 'ENOENT' || code === 'EXDEV' || code === 'EPERM') ix.forget(c);
      return code === 'EMLINK' ? 'EMLINK' : 'no';
    }
    // the inode linked must show exactly the source's metadata (the manifest's inode number
    // is not required to match: a spool copied to another disk keeps its manifests), and be
    // no other name's in this generation
    const st = this.st;
    const ok =
      sys.fstatat(f.dst, e.name, st, 1) === 0 &&
      (st[ST.MODE]! & 0o170000) === 0o100000 &&
      st[ST.SIZE] === e.size &&
      st[ST.MTIME] === e.mtimeSec &&
      st[ST.MTIME_NS] === e.mtimeNsec &&
      (st[ST.MODE]! & 0o7777) === e.mode &&
      (!ctx.o.asRoot || (st[ST.UID] === e.uid && st[ST.GID] === e.gid));
    // the first name of a source inode with several: the inode must take the others too (a
    // group split over a full inode and a copy is two inodes where the source has one)
    if (ok && e.nlink > 1 && st[ST.NLINK]! + e.nlink - 1 > ctx.linkMax()) {
      sys.unlinkat(f.dst, e.name, 0);
      return 'EMLINK';
    }
    if (!ok || !ctx.claims.claim(st[ST.INO]!)) {
      sys.unlinkat(f.dst, e.name, 0);
      ix.forget(c);
      // an inode another name of this generation holds shows the content it was checked for
      return ok ? 'taken' : 'no';
    }
    return 'linked';
  }
}
