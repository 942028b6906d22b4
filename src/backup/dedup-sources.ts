/**
 * Which generations the content index of a part is built from (docs/CONTENT.md):
 * `--dedup part` (the default): the previous generation of the part, and the files of up to
 * `generations - 1` complete generations before it that the previous one no longer holds;
 * `--dedup host`: also the newest complete generation of every other part of the host whose
 * directory is on the same file system as this part's (a hard link cannot cross file systems).
 */
import fs from 'node:fs';
import { DedupIndex, type DedupScope } from '../apply/dedup-index.js';
import { sys } from '../fs/native.js';
import { ManifestReader } from '../manifest/reader.js';
import { listGenerations, listParts, manifestPath, newestComplete, partDir } from '../spool/layout.js';
import type { BackupEvents } from './types.js';

export interface DedupSourcesInput {
  spool: string;
  host: string;
  part: string;
  scope: DedupScope;
  /** how many generations of the part to look in, the previous one included (default 7) */
  generations?: number;
  /** the previous generation's name and root (O_PATH), when it has a manifest */
  prev: { name: string; rootFd: number; reader: ManifestReader } | null;
}

export function buildDedupIndex(i: DedupSourcesInput, ev: BackupEvents): DedupIndex | null {
  if (i.scope === 'off') return null;
  const ix = new DedupIndex();
  try {
    if (i.prev) {
      ix.addManifest(ix.addRoot(i.prev.rootFd, `${i.part}/${i.prev.name}`, false), i.prev.reader, false);
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
 * from a backup; moved away and back): linked again instead of written again.
 */
function addOlderGenerations(ix: DedupIndex, i: DedupSourcesInput, ev: BackupEvents): void {
  const depth = (i.generations ?? DEDUP_GENERATIONS) - 1;
  if (depth <= 0) return;
  const pdir = partDir(i.spool, i.host, i.part);
  const gens = listGenerations(i.spool, i.host, i.part).filter((g) => g.complete);
  const at = gens.findIndex((g) => g.name === i.prev!.name);
  const before = at < 0 ? [] : gens.slice(Math.max(0, at - depth), at).reverse();
  for (const g of before) {
    let reader: ManifestReader;
    try {
      reader = ManifestReader.open(manifestPath(pdir, g.name));
    } catch (err) {
      ev.onNote(`part '${i.part}': not deduplicating against ${g.name}: its manifest is unreadable (${(err as Error).message})`);
      continue;
    }
    try {
      const fd = sys.openat(sys.AT_FDCWD, g.path, sys.O_PATH | sys.O_DIRECTORY | sys.O_NOFOLLOW, 0);
      if (fd < 0) continue;
      // the candidates are copied out of the manifest, which is closed right after
      ix.addDeparted(ix.addRoot(fd, `${i.part}/${g.name}`, true), reader, i.prev!.reader);
    } finally {
      reader.close();
    }
  }
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
      reader = ManifestReader.open(manifestPath(odir, gen.name));
    } catch (err) {
      ev.onNote(`part '${i.part}': not deduplicating against ${other}/${gen.name}: its manifest is unreadable (${(err as Error).message})`);
      continue;
    }
    const fd = sys.openat(sys.AT_FDCWD, gen.path, sys.O_PATH | sys.O_DIRECTORY | sys.O_NOFOLLOW, 0);
    if (fd < 0) {
      reader.close();
      continue;
    }
    // the index owns the reader from here (lookups decode blocks on demand) and closes it
    ix.addManifest(ix.addRoot(fd, `${other}/${gen.name}`, true), reader, true);
  }
}
