/**
 * `du`: space per generation, from manifests alone (no tree walk, no stat of the spool).
 *
 * - logical: the sum of the sizes of the generation's regular files, one per name (what a plain
 *   copy of it would hold);
 * - unique: the sizes of the regular-file inodes (manifest `ino`) that no other generation of
 *   the part references, each counted once however many names it has. It is exactly what
 *   deleting that generation alone would free (directories, symlinks and file-system
 *   overhead aside);
 * - freed with older: what deleting that generation and every older one together would free
 *   (the inodes no newer generation references): what pruning up to there gives back;
 * - a selection (any set of generations): what deleting them together would free, the inodes
 *   every reference to which is in the set (more than the sum of their unique sizes when
 *   they share inodes only with each other);
 * - the part's total: the sizes of its distinct inodes.
 *
 * Two passes over the manifests: the first counts, for every inode, how many generations
 * reference it; the second adds up each generation's unique inodes. Memory: one map entry per
 * distinct inode of the part (about 100 bytes each: ~100 MB for a million files), plus one
 * generation's inode set at a time.
 */
import type { ManifestReader } from '../manifest/reader.js';
import { FLAG } from '../manifest/format.js';
import { joinRel } from '../paths/escape.js';
import { currentIno, inodeNumbers } from './manifests.js';

export interface GenerationUsage {
  generation: string;
  /** regular-file names */
  files: number;
  /** bytes: the sum of the sizes of its files, one per name */
  logical: number;
  /** bytes in inodes no other generation of the part references: what deleting it alone frees */
  unique: number;
  /** bytes deleting it and every older generation together would free */
  freedWithOlder: number;
}

/** What deleting a set of generations together would free. */
export interface SelectionUsage {
  generations: string[];
  /** bytes in the inodes referenced by these generations only */
  freed: number;
  /** those inodes */
  files: number;
}

export interface PartUsage {
  part: string;
  generations: GenerationUsage[];
  /** bytes: the sizes of the part's distinct file inodes */
  total: number;
  /** distinct file inodes */
  inodes: number;
  /** generations whose manifest could not be read: the numbers above leave them out */
  unreadable: { generation: string; message: string }[];
  /** when generations were selected: what deleting them together would free */
  selection?: SelectionUsage;
}

interface Inode {
  size: number;
  /** how many generations reference it */
  gens: number;
  /** how many of the selected ones */
  sel: number;
  /** the index (among the readable generations, oldest first) of the newest one referencing it */
  newest: number;
}

/**
 * Usage of one part. `open(g)` opens generation g's manifest (throwing when it is missing or
 * damaged); the generations are given oldest first. `pathOf(g)`, when given, is the generation's
 * directory: a generation whose manifest's inode numbers are from before the spool was copied to
 * another disk (cp -a, rsync -aH renumber every inode) has its files stat-ed there instead.
 * `selected`: the generations whose deletion together is asked about (PartUsage.selection).
 */
export function partUsage(
  part: string,
  generations: string[],
  open: (g: string) => ManifestReader,
  pathOf?: (g: string) => string,
  selected?: ReadonlySet<string>,
): PartUsage {
  const inodes = new Map<number, Inode>();
  const unreadable: PartUsage['unreadable'] = [];
  const usable: GenerationUsage[] = [];
  for (const g of generations) {
    const u: GenerationUsage = { generation: g, files: 0, logical: 0, unique: 0, freedWithOlder: 0 };
    const index = usable.length;
    const sel = selected?.has(g) ? 1 : 0;
    try {
      // counted into a map of this generation's first, then merged: a manifest that fails
      // half-way leaves no trace in the numbers
      const mine = new Map<number, number>();
      forEachFile(open, g, pathOf, (ino, size, first) => {
        u.files++;
        u.logical += size;
        if (first) mine.set(ino, size);
      });
      for (const [ino, size] of mine) {
        const n = inodes.get(ino);
        if (n) (n.gens++, (n.sel += sel), (n.newest = index));
        else inodes.set(ino, { size, gens: 1, sel, newest: index });
      }
      usable.push(u);
    } catch (err) {
      unreadable.push({ generation: g, message: (err as Error).message });
    }
  }
  for (const u of usable) {
    forEachFile(open, u.generation, pathOf, (ino, _size, first) => {
      if (!first) return;
      const n = inodes.get(ino)!;
      if (n.gens === 1) u.unique += n.size;
    });
  }
  // freed with older: the inodes whose newest reference is at or before each generation
  const byNewest = new Array<number>(usable.length).fill(0);
  let total = 0;
  const selection: SelectionUsage | undefined = selected
    ? { generations: usable.map((u) => u.generation).filter((g) => selected.has(g)), freed: 0, files: 0 }
    : undefined;
  for (const n of inodes.values()) {
    total += n.size;
    byNewest[n.newest]! += n.size;
    if (selection && n.sel === n.gens) ((selection.freed += n.size), selection.files++);
  }
  let acc = 0;
  usable.forEach((u, i) => (u.freedWithOlder = acc += byNewest[i]!));
  return { part, generations: usable, total, inodes: inodes.size, unreadable, ...(selection ? { selection } : {}) };
}

/** Every present regular file of a generation; `first` is false for another name of an inode. */
function forEachFile(
  open: (g: string) => ManifestReader,
  g: string,
  pathOf: ((g: string) => string) | undefined,
  fn: (ino: number, size: number, first: boolean) => void,
): void {
  const m = open(g);
  const seen = new Set<number>();
  try {
    const genPath = pathOf?.(g);
    const moved = genPath !== undefined && inodeNumbers(m, genPath) === 'moved';
    for (const { dir, entries } of m.walk()) {
      for (const e of entries) {
        if (e.type !== 'file' || e.flags & FLAG.ABSENT || e.ino === 0) continue;
        const ino = moved ? currentIno(genPath!, joinRel(dir, e.name)) : e.ino;
        if (ino === 0) continue;
        const first = !seen.has(ino);
        if (first) seen.add(ino);
        fn(ino, e.size, first);
      }
    }
  } finally {
    m.close();
  }
}
