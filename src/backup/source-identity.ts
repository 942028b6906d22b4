/**
 * A source that is not the one of yesterday: an unmounted file system's mount point holding a
 * stray file is neither missing nor empty, and was backed up, and `--prune` then deleted the
 * real history. Each generation records its part's source identity: the file system of the
 * source root (statfs f_type and f_fsid, stable across reboots on ext4, XFS and btrfs; st_dev
 * for humans) and how many entries the walk saw. A run whose source root is on another file
 * system than the previous generation's (checked before the walk), or whose walk saw fewer
 * than (1 - max loss) of the previous count (checked after the walk, before publishing), is
 * refused with exit 2, unless the run accepts it (--accept-source-change). Decisions are pure
 * functions of the two identities.
 */
import { HardsnapError } from '../core/errors.js';
import { ST, fsIdentity, sys } from '../fs/native.js';
import { ManifestReader, type ManifestOf } from '../manifest/reader.js';
import type { SourceIdentity } from '../manifest/writer.js';

export type { SourceIdentity } from '../manifest/writer.js';

/** The default largest share of its entries a source may lose from one run to the next. */
export const DEFAULT_MAX_SOURCE_LOSS = 0.5;

/** glibc's major() and minor() of a dev_t. */
function majorMinor(dev: number): string {
  const d = BigInt(dev);
  const major = ((d >> 32n) & 0xfffff000n) | ((d >> 8n) & 0xfffn);
  const minor = ((d >> 12n) & 0xffffff00n) | (d & 0xffn);
  return `${major}:${minor}`;
}

/** The file-system identity of an open source root (entries come later, from the walk). */
export function rootIdentity(rootFd: number): SourceIdentity {
  const st = new Float64Array(sys.STAT_FIELDS);
  const dev = sys.fstat(rootFd, st) === 0 ? st[ST.DEV]! : 0;
  const fs = fsIdentity(rootFd);
  return { fsType: fs?.type ?? 0, fsid: fs?.fsid ?? null, dev: majorMinor(dev) };
}

function describeFs(id: SourceIdentity): string {
  return `file system type 0x${id.fsType.toString(16)}, fsid ${id.fsid ?? '?'}, device ${id.dev}`;
}

const ACCEPT = 'if the source really moved or shrank, run once with --accept-source-change';

/**
 * Before the walk: the source root must be on the file system it was on for the previous
 * generation. null when it is (or nothing is known to compare), else the refusal.
 */
export function movedError(part: string, source: string, prevGen: string, prev: SourceIdentity | undefined, now: SourceIdentity): HardsnapError | null {
  if (!prev || !prev.fsid || !now.fsid) return null;
  if (prev.fsid === now.fsid && prev.fsType === now.fsType) return null;
  return new HardsnapError(
    'ESOURCEMOVED',
    `source of part '${part}' (${source}) is not on the file system it was on for ${prevGen} (${describeFs(prev)} then, ${describeFs(now)} now): is it mounted? refusing the run, nothing written`,
    { exit: 2, path: source, hint: ACCEPT },
  );
}

/** A walk's counts as the source identity records them: entries seen, and of those the ones kept (not excluded). */
export function sourceCounts(s: { entries: number; excluded: number }): { entries: number; kept: number } {
  return { entries: s.entries, kept: s.entries - s.excluded };
}

/**
 * After the walk, before publishing: the source must not have lost more than `maxLoss` (a
 * fraction) of the entries of the previous generation: the entries kept (not excluded) when
 * both generations recorded them, else the entries the walks saw (manifests of earlier
 * versions). Kept, so that excludes that leave the directories and drop every file (`--exclude
 * '*[0-9]'`) count as the loss they are: the walk still sees what it excludes. null when fine.
 */
export function shrunkError(
  part: string,
  source: string,
  prevGen: string,
  prev: SourceIdentity | undefined,
  now: { entries: number; kept: number },
  maxLoss: number,
  left: string,
): HardsnapError | null {
  if (!prev || maxLoss >= 1) return null;
  const keptKnown = typeof prev.kept === 'number';
  const before = keptKnown ? prev.kept! : prev.entries;
  if (typeof before !== 'number' || before <= 0) return null;
  const entries = keptKnown ? now.kept : now.entries;
  const lost = (before - entries) / before;
  if (lost <= maxLoss) return null;
  const pct = (x: number) => `${Math.round(x * 1000) / 10}%`;
  const what = (n: number) => `${n} ${n === 1 ? 'entry' : 'entries'}${keptKnown ? ' backed up' : ''}`;
  return new HardsnapError(
    'ESOURCESHRANK',
    `source of part '${part}' (${source}) has ${what(entries)}, ${pct(lost)} fewer than the ${before} of ${prevGen} (more than max-source-loss ${pct(maxLoss)}): is it the tree you meant (and are the excludes the ones you meant)? refusing to publish; ${left}`,
    { exit: 2, path: source, hint: `${ACCEPT}, or raise max-source-loss for the part` },
  );
}

/** After the walk: excludes (or problems) that leave nothing of a non-empty source. */
export function nothingLeftError(
  part: string,
  source: string,
  counts: { seen: number; kept: number; keptNonDirs: number; excluded: number },
  left: string,
): HardsnapError | null {
  const hint = { exit: 2 as const, path: source, hint: "check --exclude and the config's exclude:; --allow-empty publishes it anyway" };
  if (counts.seen === 0) return null;
  if (counts.kept === 0) {
    return new HardsnapError(
      'EEMPTYRESULT',
      `nothing of part '${part}' (${source}) is left to back up: the walk saw ${counts.seen} entries and kept none (every one excluded or unreadable); refusing to publish an empty generation; ${left}`,
      hint,
    );
  }
  // excludes that drop every file and keep the directories: a tree of empty directories (also on a first run, with nothing to compare to)
  if (counts.keptNonDirs === 0 && counts.excluded > 0) {
    return new HardsnapError(
      'EEMPTYRESULT',
      `nothing of part '${part}' (${source}) but directories is left to back up: the excludes dropped ${counts.excluded} of the ${counts.seen} entries the walk saw and every file with them; refusing to publish a tree of empty directories; ${left}`,
      hint,
    );
  }
  return null;
}

/**
 * The identity recorded in a generation's manifest (format 3 footer); undefined for a manifest
 * without one (older formats, a dry run's) or one that cannot be read (the run says so itself).
 */
export function recordedIdentity(manifestFile: string, of: ManifestOf): SourceIdentity | undefined {
  let r: ManifestReader;
  try {
    r = ManifestReader.open(manifestFile, of);
  } catch {
    return undefined;
  }
  try {
    const src = r.footer.source;
    return src && typeof src.fsType === 'number' ? src : undefined;
  } finally {
    r.close();
  }
}
