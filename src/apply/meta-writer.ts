/**
 * The metadata of the inodes this run makes (owner, mode, extended attributes and ACLs where
 * the spool accepts them, the manifest holding them either way, then the mtime) and the
 * generation's directories: made 0700, given their own metadata once their children are done.
 */
import { joinRel } from '../paths/escape.js';
import { readDirAt, type Meta } from '../fs/entry.js';
import { META_STAGE, SETMETA, ST, refusedNamespaces, splitStaged, sys } from '../fs/native.js';
import { removeChildAt } from '../fs/remove-tree.js';
import type { BuildContext } from './build-context.js';
import type { Frame } from './frame.js';
import type { JobPool } from './jobs.js';
import { E } from '../fs/errno.js';

export class MetaWriter {
  private readonly st = new Float64Array(sys.STAT_FIELDS);

  constructor(
    private readonly ctx: BuildContext,
    private readonly pool: JobPool,
  ) {}

  /** setmeta's `what` for an entry of this type with these attributes */
  metaBits(m: Meta): number {
    const o = this.ctx.o;
    return (o.asRoot ? SETMETA.OWNER : 0) | (m.type === 'symlink' ? 0 : SETMETA.MODE) | SETMETA.TIMES | (o.xattrs && m.xattrs ? SETMETA.XATTRS : 0);
  }

  /**
   * Owner, attributes, mode and times of an inode this run made (dirfd/name, or fd); the mask of
   * attribute namespaces the spool refused (0: every one kept).
   */
  setMeta(dirfd: number, name: Buffer | string, fd: number, m: Meta, what: string, rel: Buffer): number {
    const rc = sys.setmeta(dirfd, name, fd, m.uid, m.gid, m.mode, m.mtimeSec, m.mtimeNsec, this.metaBits(m), this.ctx.o.xattrs ? m.xattrs : null);
    return this.metaResult(rc, what, rel);
  }

  private metaResult(rc: number, what: string, rel: Buffer): number {
    if (rc > 0) this.ctx.refused(rc, refusedNamespaces);
    else if (rc < 0) {
      const { stage } = splitStaged(rc);
      this.ctx.fatal(rel, -(-rc & 0xffff), stage === META_STAGE.XATTRS ? `${what} (malformed attributes)` : what);
    }
    return Math.max(rc, 0);
  }

  /** A directory's own metadata, after its children (on the pool). */
  async dirMeta(f: Frame): Promise<void> {
    const m = f.meta;
    const rc = await this.pool.track(
      sys.setmetaAsync(-1, '', f.dst, m.uid, m.gid, m.mode, m.mtimeSec, m.mtimeNsec, this.metaBits(m), this.ctx.o.xattrs ? m.xattrs : null),
    );
    this.metaResult(rc, 'cannot set the metadata of a directory in the spool', f.rel);
  }

  /**
   * A directory that stays empty in the generation (not entered: it could not be opened and has
   * no previous version, or it is another file system under --one-file-system) gets its own
   * metadata now, rather than the 0700 and the run's time it was made with.
   */
  emptyDirMeta(parent: Frame, name: Buffer, m: Meta): void {
    this.setMeta(parent.dst, name, -1, m, 'cannot set the metadata of a directory in the spool', joinRel(parent.rel, name));
  }

  /**
   * Makes a directory in the spool; `first` is the result of a mkdirat already tried. On resume
   * a directory a killed run made is reused: mode 0700 again and no attributes (a default ACL
   * set on it would be inherited by what this run creates in it).
   */
  mkdir(f: Frame, name: Buffer, first?: number): void {
    let rc = first ?? sys.mkdirat(f.dst, name, 0o700);
    if (rc === -E.EEXIST && this.ctx.o.resume) {
      if (sys.fstatat(f.dst, name, this.st, 1) === 0 && (this.st[ST.MODE]! & 0o170000) === 0o040000) {
        rc = sys.setmeta(f.dst, name, -1, 0, 0, 0o700, 0, 0, SETMETA.MODE | SETMETA.XATTRS_EXACT, null);
      } else {
        removeChildAt(f.dst, name);
        rc = sys.mkdirat(f.dst, name, 0o700);
      }
    }
    if (rc < 0) this.ctx.fatal(joinRel(f.rel, name), rc, 'cannot create directory in the spool');
  }

  /** Resume: removes what a killed run left in this directory that this run did not record. */
  removeStale(f: Frame): void {
    const read = readDirAt(f.dst);
    if (typeof read === 'number') this.ctx.fatal(f.rel, read, 'cannot read the partial generation');
    const keep = new Set(f.out.flatMap((m) => (m ? [m.name.toString('latin1')] : [])));
    for (const e of read) {
      if (!keep.has(e.name.toString('latin1'))) removeChildAt(f.dst, e.name);
    }
  }
}
