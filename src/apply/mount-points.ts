/**
 * The mount points below the source when the scan began (and the files there that back a loop
 * device, which the kernel writes with no event: src/fs/mountinfo.ts MountWatch.unwatched).
 * What a mount shows there is read and kept as it is, but it is not the source's own tree: a
 * bind mount of the source's own file system keeps the device number, and unmounting it makes
 * no event in the directory underneath.
 * So every entry at or below a mount point is recorded without its source inode (srcIno 0, as an
 * entry of another file system is: build-context.ts record()), and a journaled run reads such a
 * directory again every time (src/watch/unchanged-dirs.ts alwaysScanned) instead of taking it
 * from a manifest that recorded what the mount showed.
 */
import { joinRel } from '../paths/escape.js';
import { withoutSourceInode, type BlockEntry } from '../manifest/format.js';

export class MountPoints {
  /** the mount points, relative to the source root (latin1: bytes one for one) */
  private readonly points = new Set<string>();
  /** the directories holding one */
  private readonly parents = new Set<string>();

  constructor(rels: readonly Buffer[] = []) {
    for (const rel of rels) {
      this.points.add(rel.toString('latin1'));
      const cut = rel.lastIndexOf(0x2f);
      this.parents.add(cut < 0 ? '' : rel.subarray(0, cut).toString('latin1'));
    }
  }

  /** whether the directory `rel` (relative to the source root) is a mount point */
  isMountPoint(rel: Buffer): boolean {
    return this.points.size > 0 && this.points.has(rel.toString('latin1'));
  }

  /**
   * A directory's records as the manifest holds them: all of them without source inode when the
   * directory is at or below a mount point (`mounted`), else those of its mount points.
   */
  records(rel: Buffer, mounted: boolean, out: BlockEntry[]): BlockEntry[] {
    if (mounted) return out.map(withoutSourceInode);
    if (!this.parents.size || !this.parents.has(rel.toString('latin1'))) return out;
    return out.map((e) => (this.points.has(joinRel(rel, e.name).toString('latin1')) ? withoutSourceInode(e) : e));
  }
}
