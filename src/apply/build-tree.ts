/**
 * Builds one generation of one part: walks the source, the previous generation and the new
 * (partial) generation together, directory by directory, with directory descriptors (so path
 * length is no limit and nothing is resolved twice), and for each entry links the previous
 * inode or writes a new one, as src/plan/decide.ts says. Directories get their own metadata
 * after their children (post-order). Each directory's manifest block is written as soon as it
 * is done, so memory stays bounded by the depth of the tree, not its size.
 *
 * Resuming: in a partial generation left by a killed run, an existing entry is kept when it is
 * provably what this run would write (the previous generation's inode, or a complete copy:
 * same size, mtime, mode and owner, since the copy sets the mtime last), else replaced; entries
 * that the source no longer has are removed. Existing inodes are never written to.
 */
import { HardsnapError } from '../core/errors.js';
import { joinRel } from '../paths/escape.js';
import { MODE_BITS, parseScan, type Meta, type SourceEntry } from '../fs/entry.js';
import { IO, ST, STAGE, errnoName, hashHex, splitStaged, sys } from '../fs/native.js';
import { FLAG, type ManifestEntry } from '../manifest/format.js';
import { decide, type Decision } from '../plan/decide.js';
import type { ManifestWriter } from '../manifest/writer.js';
import { removeChildAt } from './remove-tree.js';
import type { PrevTree } from './prev-tree.js';
import type { BuildStats, Problem } from './types.js';

export interface ExcludeFilter {
  readonly empty: boolean;
  excluded(relPath: Buffer, name: Buffer, isDir: boolean): boolean;
}

export interface BuildOptions {
  part: string;
  /** descriptor of the source root directory */
  srcRootFd: number;
  /** metadata of the source root */
  rootMeta: Meta & { dev: number };
  /** descriptor of the new generation's root (the .partial directory); -1 in a dry run */
  dstRootFd: number;
  /** descriptor (O_PATH) of the previous generation's root, or -1 */
  prevRootFd: number;
  prev: PrevTree | null;
  resume: boolean;
  asRoot: boolean;
  oneFileSystem: boolean;
  excludes: ExcludeFilter;
  /** directories never entered (dev:ino): the spool when it lies inside the source */
  skipDirs: Map<string, string>;
  manifest: ManifestWriter | null;
  dryRun: boolean;
  onProblem(p: Problem): void;
  onNote(message: string): void;
  onPlan?(rel: Buffer, d: Decision): void;
  onProgress?(s: BuildStats): void;
}

interface Frame {
  rel: Buffer;
  src: number;
  dst: number;
  prev: number;
  meta: Meta;
  subdirs: { name: Buffer; meta: SourceEntry; prevIsDir: boolean }[];
  next: number;
}

interface LinkGroup {
  id: number;
  rel: Buffer;
  entry: ManifestEntry;
}

const O_DIR = sys.O_RDONLY | sys.O_DIRECTORY | sys.O_NOFOLLOW;
const LINK_BATCH = 512;
const COPY_ATTEMPTS = 3;

export function newStats(): BuildStats {
  return {
    entries: 0, dirs: 0, files: 0, symlinks: 0, specials: 0, linked: 0, copied: 0,
    bytesWritten: 0, bytesLinked: 0, reused: 0, emlinkCopies: 0, prevMissing: 0, unstable: 0,
    excluded: 0, problems: 0, vanished: 0,
  };
}

export class TreeBuilder {
  readonly stats = newStats();
  private readonly io = new Float64Array(sys.IO_FIELDS);
  private readonly st = new Float64Array(sys.STAT_FIELDS);
  private readonly groups = new Map<string, LinkGroup>();
  private nextGroup = 1;
  private lastProgress = 0;

  constructor(private readonly o: BuildOptions) {}

  /** Builds the whole tree; returns the root's manifest entry. Throws on a fatal error. */
  run(): ManifestEntry {
    const o = this.o;
    const root: Frame = {
      rel: Buffer.alloc(0), src: o.srcRootFd, dst: o.dstRootFd, prev: o.prevRootFd,
      meta: o.rootMeta, subdirs: [], next: 0,
    };
    const stack: Frame[] = [root];
    this.processDir(root);
    try {
      while (stack.length) {
        const f = stack[stack.length - 1]!;
        if (f.next < f.subdirs.length) {
          const child = this.enter(f, f.subdirs[f.next++]!);
          if (child) {
            stack.push(child);
            this.processDir(child);
          }
          continue;
        }
        this.leave(f);
        stack.pop();
      }
    } finally {
      // after a fatal error, close what is still open (the roots belong to the caller)
      for (const f of stack) if (f !== root) this.closeFrame(f);
    }
    return this.manifestEntry(Buffer.alloc(0), o.rootMeta, 0, 0, null);
  }

  // ---------- directories ----------

  private enter(parent: Frame, sub: Frame['subdirs'][number]): Frame | null {
    const o = this.o;
    const rel = joinRel(parent.rel, sub.name);
    const src = sys.openat(parent.src, sub.name, O_DIR | sys.O_NOATIME, 0);
    if (src < 0) {
      this.problem(rel, errnoName(src), 'cannot open directory');
      // it stays empty, but with its own metadata rather than the 0700 it was made with
      if (!o.dryRun) {
        const m = sub.meta;
        const rc = sys.setmeta(parent.dst, sub.name, -1, m.uid, m.gid, m.mode, m.mtimeSec, m.mtimeNsec, (o.asRoot ? 1 : 0) | 2 | 4);
        if (rc < 0) this.fatal(rel, -(-rc & 0xffff), 'cannot set the metadata of a directory in the spool');
      }
      return null;
    }
    let dst = -1;
    if (!o.dryRun) {
      dst = sys.openat(parent.dst, sub.name, O_DIR, 0);
      if (dst < 0) {
        sys.close(src);
        this.fatal(rel, dst, 'cannot open the new directory in the spool');
      }
    }
    let prev = -1;
    if (sub.prevIsDir && parent.prev >= 0) {
      prev = sys.openat(parent.prev, sub.name, sys.O_PATH | sys.O_DIRECTORY | sys.O_NOFOLLOW, 0);
      if (prev < 0) prev = -1;
    }
    return { rel, src, dst, prev, meta: sub.meta, subdirs: [], next: 0 };
  }

  private leave(f: Frame): void {
    const o = this.o;
    if (!o.dryRun) {
      const m = f.meta;
      const rc = sys.setmeta(-1, '', f.dst, m.uid, m.gid, m.mode, m.mtimeSec, m.mtimeNsec, (o.asRoot ? 1 : 0) | 2 | 4);
      if (rc < 0) this.fatal(f.rel, rc, 'cannot set the metadata of a directory in the spool');
    }
    if (f.rel.length) this.closeFrame(f);
  }

  private closeFrame(f: Frame): void {
    sys.close(f.src);
    if (f.dst >= 0) sys.close(f.dst);
    if (f.prev >= 0) sys.close(f.prev);
  }

  private processDir(f: Frame): void {
    const o = this.o;
    const raw = sys.scandir(f.src);
    const out: ManifestEntry[] = [];
    if (typeof raw === 'number') {
      this.problem(f.rel, errnoName(raw), 'cannot read directory');
      o.manifest?.addDir(f.rel, out);
      return;
    }
    const entries = parseScan(raw);
    const prevList = this.prevEntries(f);
    const links: { e: SourceEntry; m: ManifestEntry; p: ManifestEntry }[] = [];
    let pi = 0;
    for (const e of entries) {
      while (pi < prevList.length && Buffer.compare(prevList[pi]!.name, e.name) < 0) pi++;
      const p = pi < prevList.length && prevList[pi]!.name.equals(e.name) ? prevList[pi] : undefined;
      this.stats.entries++;
      if (e.err) {
        if (e.err === -1) this.problem(joinRel(f.rel, e.name), 'EINVAL', 'unknown file type');
        else this.problem(joinRel(f.rel, e.name), errnoName(e.err), 'cannot stat');
        continue;
      }
      const isDir = e.type === 'dir';
      if (!o.excludes.empty && o.excludes.excluded(joinRel(f.rel, e.name), e.name, isDir)) {
        this.stats.excluded++;
        continue;
      }
      if (isDir) {
        const skip = o.skipDirs.get(`${e.dev}:${e.ino}`);
        if (skip) {
          o.onNote(`${skip} lies inside the source of part '${o.part}': excluded from it`);
          continue;
        }
      }
      const d = decide(e, p, { prevAvailable: f.prev >= 0, asRoot: o.asRoot });
      o.onPlan?.(joinRel(f.rel, e.name), d);
      if (isDir) {
        this.stats.dirs++;
        if (!o.dryRun) this.mkdir(f, e);
        out.push(this.manifestEntry(e.name, e, 0, 0, null));
        const crossesMount = o.oneFileSystem && e.dev !== o.rootMeta.dev;
        if (crossesMount) o.onNote(`${o.part}: not crossing into another file system at ${joinRel(f.rel, e.name).toString()}`);
        else f.subdirs.push({ name: e.name, meta: e, prevIsDir: p?.type === 'dir' });
        continue;
      }
      if (e.type === 'file') this.stats.files++;
      else if (e.type === 'symlink') this.stats.symlinks++;
      else this.stats.specials++;
      if (o.dryRun) {
        out.push(this.manifestEntry(e.name, e, 0, 0, null));
        continue;
      }
      if (e.nlink > 1 && e.type !== 'symlink') {
        const m = this.hardLinked(f, e, p, d);
        if (m) out.push(m);
        continue;
      }
      if (d.action === 'link') {
        const m = this.manifestEntry(e.name, e, p!.ino, 0, p!.hash);
        out.push(m);
        links.push({ e, m, p: p! });
        if (links.length >= LINK_BATCH) this.flushLinks(f, links, out);
        continue;
      }
      const m = this.materialize(f, e, d);
      if (m) out.push(m);
    }
    this.flushLinks(f, links, out);
    if (o.resume && !o.dryRun) this.removeStale(f, out);
    o.manifest?.addDir(f.rel, out);
    if (o.onProgress && this.stats.entries - this.lastProgress >= 2048) {
      this.lastProgress = this.stats.entries;
      o.onProgress(this.stats);
    }
  }

  private prevEntries(f: Frame): ManifestEntry[] {
    const prev = this.o.prev;
    if (!prev) return [];
    try {
      return prev.dir(f.rel, f.prev) ?? [];
    } catch (err) {
      this.o.onNote(`previous manifest unreadable at ${f.rel.toString() || '/'} (${(err as Error).message}): comparing with the previous generation itself`);
      return prev.walkDir(f.prev);
    }
  }

  private mkdir(f: Frame, e: SourceEntry): void {
    let rc = sys.mkdirat(f.dst, e.name, 0o700);
    if (rc === -17 /* EEXIST */ && this.o.resume) {
      if (sys.fstatat(f.dst, e.name, this.st, 1) === 0 && (this.st[ST.MODE]! & 0o170000) === 0o040000) {
        rc = sys.setmeta(f.dst, e.name, -1, 0, 0, 0o700, 0, 0, 2);
      } else {
        removeChildAt(f.dst, e.name);
        rc = sys.mkdirat(f.dst, e.name, 0o700);
      }
    }
    if (rc < 0) this.fatal(joinRel(f.rel, e.name), rc, 'cannot create directory in the spool');
  }

  /** Removes what a killed run left in this directory that the source no longer has. */
  private removeStale(f: Frame, out: ManifestEntry[]): void {
    const raw = sys.scandir(f.dst);
    if (typeof raw === 'number') this.fatal(f.rel, raw, 'cannot read the partial generation');
    const keep = new Set(out.map((m) => m.name.toString('latin1')));
    for (const e of parseScan(raw)) {
      if (!keep.has(e.name.toString('latin1'))) removeChildAt(f.dst, e.name);
    }
  }

  // ---------- non-directories ----------

  private flushLinks(f: Frame, links: { e: SourceEntry; m: ManifestEntry; p: ManifestEntry }[], out: ManifestEntry[]): void {
    if (!links.length) return;
    let size = 0;
    for (const l of links) size += 2 + l.e.name.length;
    const names = Buffer.allocUnsafe(size);
    let o = 0;
    for (const l of links) {
      names.writeUInt16LE(l.e.name.length, o);
      l.e.name.copy(names, o + 2);
      o += 2 + l.e.name.length;
    }
    const res = new Int32Array(links.length);
    sys.linkBatch(f.prev, f.dst, names, res);
    for (let i = 0; i < links.length; i++) {
      const { e, m, p } = links[i]!;
      const rc = res[i]!;
      if (rc === 0) {
        this.stats.linked++;
        this.stats.bytesLinked += e.size;
        continue;
      }
      if (rc === -17 /* EEXIST */ && this.o.resume && this.isPrevInode(f, e.name, p)) {
        this.stats.linked++;
        this.stats.reused++;
        continue;
      }
      const redo = this.afterFailedLink(f, e, rc);
      if (redo) Object.assign(m, redo);
      else out.splice(out.indexOf(m), 1);
    }
    links.length = 0;
  }

  private isPrevInode(f: Frame, name: Buffer, p: ManifestEntry): boolean {
    return sys.fstatat(f.dst, name, this.st, 1) === 0 && this.st[ST.INO] === p.ino;
  }

  /** A link to the previous generation failed: make a fresh inode instead, when that helps. */
  private afterFailedLink(f: Frame, e: SourceEntry, rc: number): ManifestEntry | null {
    const code = errnoName(rc);
    if (code === 'EMLINK') this.stats.emlinkCopies++;
    else if (code === 'ENOENT' || code === 'EPERM' || code === 'EXDEV') this.stats.prevMissing++;
    else if (code === 'EEXIST' && this.o.resume) removeChildAt(f.dst, e.name);
    else this.fatal(joinRel(f.rel, e.name), rc, 'cannot link into the spool');
    return this.materialize(f, e, { action: e.type === 'file' ? 'copy' : e.type === 'symlink' ? 'symlink' : 'mknod', reason: code });
  }

  /** Second and later names of one source inode become names of one generation inode. */
  private hardLinked(f: Frame, e: SourceEntry, p: ManifestEntry | undefined, d: Decision): ManifestEntry | null {
    const key = `${e.dev}:${e.ino}`;
    const g = this.groups.get(key);
    const rel = joinRel(f.rel, e.name);
    if (g) {
      let rc = sys.linkat(this.o.dstRootFd, g.rel, f.dst, e.name);
      if (rc === -17 && this.o.resume) {
        if (sys.fstatat(f.dst, e.name, this.st, 1) === 0 && this.st[ST.INO] === g.entry.ino) rc = 0;
        else {
          removeChildAt(f.dst, e.name);
          rc = sys.linkat(this.o.dstRootFd, g.rel, f.dst, e.name);
        }
      }
      if (rc === 0) {
        this.stats.linked++;
        return { ...g.entry, name: e.name };
      }
      if (errnoName(rc) !== 'EMLINK') this.fatal(rel, rc, 'cannot link into the spool');
      this.stats.emlinkCopies++;
    }
    let m: ManifestEntry | null;
    if (d.action === 'link' && p) {
      m = this.manifestEntry(e.name, e, p.ino, 0, p.hash);
      const links = [{ e, m, p }];
      const out = [m];
      this.flushLinks(f, links, out);
      m = out[0] ?? null;
    } else {
      m = this.materialize(f, e, d);
    }
    if (!m) return null;
    if (g) {
      // the inode is full: this copy is the link base from now on
      g.entry = m;
      g.rel = rel;
      m.linkGroup = g.id;
    } else {
      m.linkGroup = this.nextGroup++;
      this.groups.set(key, { id: m.linkGroup, rel, entry: m });
    }
    return m;
  }

  /** Creates a new inode for a non-directory entry; null when it could not be (reported). */
  private materialize(f: Frame, e: SourceEntry, d: Decision): ManifestEntry | null {
    switch (d.action) {
      case 'copy':
        return this.copy(f, e);
      case 'symlink':
        return this.special(f, e, () => sys.symlinkat(e.target!, f.dst, e.name));
      case 'mknod':
        return this.special(f, e, () => sys.mknodat(f.dst, e.name, MODE_BITS[e.type] | 0o600, e.type === 'char' || e.type === 'block' ? e.rdev : 0));
      case 'record':
        this.problem(joinRel(f.rel, e.name), 'EPERM', `${e.type} device not created (only root can): recorded in the manifest`, true);
        return this.manifestEntry(e.name, e, 0, FLAG.ABSENT, null);
      default:
        return null;
    }
  }

  private copy(f: Frame, e: SourceEntry): ManifestEntry | null {
    const io = this.io;
    const rel = () => joinRel(f.rel, e.name);
    for (let attempt = 1; ; attempt++) {
      io[IO.FLAGS] = (this.o.asRoot ? 1 : 0) | 2;
      const rc = sys.copy(f.src, e.name, f.dst, e.name, io);
      if (rc === 0) {
        const changed = io[IO.CHANGED] === 1;
        if (changed && attempt < COPY_ATTEMPTS) {
          sys.unlinkat(f.dst, e.name, 0);
          continue;
        }
        const s = IO.STAT;
        const meta: Meta = {
          type: 'file', mode: io[s + ST.MODE]! & 0o7777, uid: io[s + ST.UID]!, gid: io[s + ST.GID]!,
          size: io[IO.BYTES]!, mtimeSec: io[s + ST.MTIME]!, mtimeNsec: io[s + ST.MTIME_NS]!, rdev: 0, target: null,
        };
        this.stats.copied++;
        this.stats.bytesWritten += io[IO.BYTES]!;
        if (changed) {
          this.stats.unstable++;
          this.problem(rel(), 'ECHANGED', `changed while it was read (${COPY_ATTEMPTS} attempts): the copy may be inconsistent and will be copied again next run`, true);
        }
        return this.manifestEntry(e.name, meta, io[IO.NEW_INO]!, changed ? FLAG.UNSTABLE : 0, hashHex(io[IO.HASH_HI]!, io[IO.HASH_LO]!));
      }
      const { stage, code } = splitStaged(rc);
      if (stage === STAGE.OPEN_DST && code === 'EEXIST' && this.o.resume && attempt === 1) {
        const kept = this.reuseCopy(f, e);
        if (kept) return kept;
        removeChildAt(f.dst, e.name);
        continue;
      }
      if (stage === STAGE.OPEN_SRC && code === 'ENOENT') {
        this.vanished(rel());
        return null;
      }
      if (stage === STAGE.NOT_REG || (stage === STAGE.OPEN_SRC && (code === 'ELOOP' || code === 'ENXIO'))) {
        this.problem(rel(), 'ECHANGED', 'changed type between scan and copy (not followed, not opened for data); it will be backed up next run', true);
        return null;
      }
      if (stage === STAGE.OPEN_SRC || stage === STAGE.READ) {
        this.problem(rel(), code, stage === STAGE.READ ? 'read error' : 'cannot open');
        return null;
      }
      this.fatal(rel(), -(-rc & 0xffff), stage === STAGE.META ? 'cannot set metadata in the spool' : 'cannot write to the spool');
    }
  }

  /** Resume: keeps a copy a killed run completed (the copy sets the mtime last). */
  private reuseCopy(f: Frame, e: SourceEntry): ManifestEntry | null {
    const st = this.st;
    if (sys.fstatat(f.dst, e.name, st, 1) !== 0) return null;
    const ok = (st[ST.MODE]! & 0o170000) === 0o100000 && st[ST.NLINK] === 1 && st[ST.SIZE] === e.size &&
      st[ST.MTIME] === e.mtimeSec && st[ST.MTIME_NS] === e.mtimeNsec && (st[ST.MODE]! & 0o7777) === e.mode &&
      (!this.o.asRoot || (st[ST.UID] === e.uid && st[ST.GID] === e.gid));
    if (!ok) return null;
    const io = this.io;
    if (sys.hashat(f.dst, e.name, io) !== 0) return null;
    this.stats.reused++;
    this.stats.copied++;
    return this.manifestEntry(e.name, e, st[ST.INO]!, 0, hashHex(io[IO.HASH_HI]!, io[IO.HASH_LO]!));
  }

  /** Symlinks, FIFOs, sockets and devices: create, then owner, mode and mtime. */
  private special(f: Frame, e: SourceEntry, create: () => number): ManifestEntry | null {
    let rc = create();
    if (rc === -17 && this.o.resume) {
      removeChildAt(f.dst, e.name);
      rc = create();
    }
    if (rc < 0) this.fatal(joinRel(f.rel, e.name), rc, `cannot create ${e.type} in the spool`);
    const what = (this.o.asRoot ? 1 : 0) | (e.type === 'symlink' ? 0 : 2) | 4;
    rc = sys.setmeta(f.dst, e.name, -1, e.uid, e.gid, e.mode, e.mtimeSec, e.mtimeNsec, what);
    if (rc < 0) this.fatal(joinRel(f.rel, e.name), -(-rc & 0xffff), `cannot set the metadata of a ${e.type} in the spool`);
    rc = sys.fstatat(f.dst, e.name, this.st, 1);
    this.stats.copied++;
    return this.manifestEntry(e.name, e, rc === 0 ? this.st[ST.INO]! : 0, 0, null);
  }

  // ---------- records and problems ----------

  private manifestEntry(name: Buffer, m: Meta, ino: number, flags: number, hash: string | null): ManifestEntry {
    return {
      name, type: m.type, mode: m.mode, uid: m.uid, gid: m.gid, size: m.type === 'dir' ? 0 : m.size,
      mtimeSec: m.mtimeSec, mtimeNsec: m.mtimeNsec, rdev: m.rdev, target: m.target,
      flags, linkGroup: 0, ino, hash,
    };
  }

  private vanished(rel: Buffer): void {
    this.stats.vanished++;
    this.o.onProblem({ part: this.o.part, path: rel, code: 'ENOENT', message: 'vanished during the run', severity: 'vanished' });
  }

  /** A per-file problem: recorded and reported, the run goes on (exit 23). */
  private problem(rel: Buffer, code: string, what: string, whole = false): void {
    if (code === 'ENOENT') return this.vanished(rel);
    this.stats.problems++;
    this.o.onProblem({ part: this.o.part, path: rel, code, message: whole ? what : `${what}: ${code}`, severity: 'error' });
  }

  private fatal(rel: Buffer, rc: number, what: string): never {
    const code = errnoName(rc);
    const hint = code === 'ENOSPC' ? 'the spool is full: free space (prune) and run again; the next run resumes'
      : code === 'EDQUOT' ? 'the spool quota is exhausted' : undefined;
    throw new HardsnapError(code, `${what}: ${code} (part '${this.o.part}', ${JSON.stringify(rel.toString('latin1'))})`, {
      exit: 2, path: rel.toString('latin1'), hint,
    });
  }
}
