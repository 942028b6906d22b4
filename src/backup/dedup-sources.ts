/**
 * Which generations the content index of a part is built from (docs/CONTENT.md):
 * `--dedup part` (the default): the previous generation of the part, and the files of up to
 * `generations - 1` complete generations before it that the previous one no longer holds;
 * `--dedup host`: also the newest complete generation of every other part of the host whose
 * directory is on the same file system as this part's (a hard link cannot cross file systems).
 */
import { fs } from '../fs/disk.js';
import { DedupIndex, type DedupScope } from '../apply/dedup-index.js';
import { sys } from '../fs/native.js';
import { ManifestReader } from '../manifest/reader.js';
import { inodeNumbers } from '../inspect/manifests.js';
import { listParts, manifestPath, newestComplete, partDir } from '../spool/layout.js';
import type { Generation } from '../spool/names.js';
import type { BackupEvents } from './types.js';

export interface DedupSourcesInput {
  spool: string;
  host: string;
  part: string;
  scope: DedupScope;
  /** how many generations of the part to look in, the previous one included (default 7) */
  generations?: number;
  /** the part's complete generations, oldest first (part-state.ts) */
  complete: readonly Generation[];
  /**
   * the previous generation's name and root (O_PATH), when it has a manifest; moved: the spool
   * was copied since it was made (inspect/manifests.ts inodeNumbers)
   */
  prev: { name: string; rootFd: number; reader: ManifestReader; moved: boolean } | null;
  /** the spool clones: index big files by size too, for clones of renamed and touched files */
  clones?: boolean;
  /**
   * the run keeps attributes: a manifest written with --no-xattrs is no content source (its
   * records say nothing of the attributes their inodes carry)
   */
  xattrs?: boolean;
}

/** Whether a manifest's records may stand for their inodes in a run that does or does not keep attributes. */
function standsFor(reader: ManifestReader, xattrs: boolean): boolean {
  return !xattrs || !reader.footer.xattrsSkipped;
}

export function buildDedupIndex(i: DedupSourcesInput, ev: BackupEvents): DedupIndex | null {
  if (i.scope === 'off') return null;
  const ix = new DedupIndex(i.clones ?? false);
  try {
    if (i.prev) {
      if (standsFor(i.prev.reader, i.xattrs ?? false))
        ix.addManifest(ix.addRoot(i.prev.rootFd, `${i.part}/${i.prev.name}`, false, i.prev.moved), i.prev.reader, false);
      addOlderGenerations(ix, i, ev);
    }
    if (i.scope === 'host') addOtherParts(ix, i, ev);
  } catch (err) {
    ix.close();
    ev.onNote(`part '${i.part}': content deduplication off for this run: ${(err as Error).message}`);
    return null;
  }
  return ix;
}

/** Default of --dedup-generations: a week of daily generations. */
export const DEDUP_GENERATIONS = 7;

/**
 * Files that left the part since an older generation (deleted, then restored into the source
 * from a backup; moved away and back) are linked again instead of written again. Generations
 * are read newest first, and only the directories whose manifest block differs from the next
 * newer generation's are decoded (equal frame headers mean equal blocks, whose files were
 * considered already); a file is indexed unless the previous generation holds its inode in the
 * same directory (then the previous generation's own index has it).
 */
function addOlderGenerations(ix: DedupIndex, i: DedupSourcesInput, ev: BackupEvents): void {
  const depth = (i.generations ?? DEDUP_GENERATIONS) - 1;
  if (depth <= 0) return;
  const pdir = partDir(i.spool, i.host, i.part);
  const gens = i.complete;
  const at = gens.findIndex((g) => g.name === i.prev!.name);
  const before = at < 0 ? [] : gens.slice(Math.max(0, at - depth), at).reverse();
  const prev = i.prev!.reader;
  const held = new PrevInodes(prev);
  let newer: ManifestReader = prev;
  try {
    for (const g of before) {
      let older: ManifestReader;
      try {
        older = ManifestReader.open(manifestPath(pdir, g.name), { generation: g.name, part: i.part, host: i.host });
      } catch (err) {
        // a gap: the next older one is compared with the last one read
        ev.onNote(`part '${i.part}': not deduplicating against ${g.name}: its manifest is unreadable (${(err as Error).message})`);
        continue;
      }
      if (!standsFor(older, i.xattrs ?? false)) {
        older.close();
        continue;
      }
      let full = false;
      try {
        const fd = sys.openat(sys.AT_FDCWD, g.path, sys.O_PATH | sys.O_DIRECTORY | sys.O_NOFOLLOW, 0);
        full = fd >= 0 && !indexDeparted(ix, ix.addRoot(fd, `${i.part}/${g.name}`, true, inodeNumbers(older, g.path) === 'moved'), older, newer, held);
      } catch (err) {
        // a damaged block: what was indexed of it stays (every link is checked), the rest is skipped
        ev.onNote(`part '${i.part}': not deduplicating against all of ${g.name}: ${(err as Error).message}`);
        older.close();
        continue;
      }
      if (newer !== prev) newer.close();
      newer = older;
      if (full) break;
    }
  } finally {
    if (newer !== prev) newer.close();
  }
}

/** Indexes one older generation's departed files; false once the index takes no more. */
function indexDeparted(ix: DedupIndex, root: number, older: ManifestReader, newer: ManifestReader, held: PrevInodes): boolean {
  for (const key of older.dirKeys()) {
    const stamp = older.stamp(key);
    if (stamp !== undefined && stamp === newer.stamp(key)) continue;
    const b = older.rawDirByKey(key);
    if (!b) continue;
    const inos = held.of(key);
    for (let i = 0; i < b.length; i++) {
      // decoded only when departed: most files of an older generation are the previous one's
      if (!b.isFile(i) || (inos && sortedHas(inos, b.ino(i)))) continue;
      if (!ix.addDeparted(root, b.dir, b.decode(i))) return false;
    }
  }
  return true;
}

/** The inode numbers of the previous generation's files, by directory, decoded once each. */
class PrevInodes {
  private readonly seen = new Map<string, Float64Array | null>();
  constructor(private readonly prev: ManifestReader) {}

  of(key: string): Float64Array | null {
    let v = this.seen.get(key);
    if (v === undefined) {
      const b = this.prev.rawDirByKey(key);
      if (b) {
        const inos: number[] = [];
        for (let i = 0; i < b.length; i++) if (b.isFile(i)) inos.push(b.ino(i));
        v = Float64Array.from(inos).sort();
      } else v = null;
      this.seen.set(key, v);
    }
    return v;
  }
}

function sortedHas(a: Float64Array, x: number): boolean {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo < a.length && a[lo] === x;
}

function addOtherParts(ix: DedupIndex, i: DedupSourcesInput, ev: BackupEvents): void {
  const mine = partDir(i.spool, i.host, i.part);
  const dev = fs.statSync(mine).dev;
  for (const other of listParts(i.spool, i.host)) {
    if (other === i.part) continue;
    const gen = newestComplete(i.spool, i.host, other);
    if (!gen) continue;
    const odir = partDir(i.spool, i.host, other);
    if (fs.statSync(odir).dev !== dev) continue;
    let reader: ManifestReader;
    try {
      reader = ManifestReader.open(manifestPath(odir, gen.name), { generation: gen.name, part: other, host: i.host });
    } catch (err) {
      ev.onNote(`part '${i.part}': not deduplicating against ${other}/${gen.name}: its manifest is unreadable (${(err as Error).message})`);
      continue;
    }
    if (!standsFor(reader, i.xattrs ?? false)) {
      reader.close();
      continue;
    }
    const fd = sys.openat(sys.AT_FDCWD, gen.path, sys.O_PATH | sys.O_DIRECTORY | sys.O_NOFOLLOW, 0);
    if (fd < 0) {
      reader.close();
      continue;
    }
    // the index owns the reader from here (lookups decode blocks on demand) and closes it
    ix.addManifest(ix.addRoot(fd, `${other}/${gen.name}`, true, inodeNumbers(reader, gen.path) === 'moved'), reader, true);
  }
}
