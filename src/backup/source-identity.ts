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
import { spawnSync } from 'node:child_process';
import { HardsnapError } from '../core/errors.js';
import { ST, sys } from '../fs/native.js';
import type { RunRecord } from '../spool/runs-log.js';

export interface SourceIdentity {
  /** statfs f_type of the file system of the source root (0xef53: ext4) */
  fsType: number;
  /** statfs f_fsid as "hex:hex", or null when it could not be read */
  fsid: string | null;
  /** st_dev of the source root, "major:minor" (shown to humans; it may change on reboot) */
  dev: string;
  /** entries the walk saw (the builder's count), once the tree is built */
  entries?: number;
}

/** The default largest share of its entries a source may lose from one run to the next. */
export const DEFAULT_MAX_SOURCE_LOSS = 0.5;

/** glibc's major() and minor() of a dev_t. */
function majorMinor(dev: number): string {
  const d = BigInt(dev);
  const major = ((d >> 32n) & 0xfffff000n) | ((d >> 8n) & 0xfffn);
  const minor = ((d >> 12n) & 0xffffff00n) | (d & 0xffn);
  return `${major}:${minor}`;
}

/**
 * statfs f_type and f_fsid of the file system holding `path`. (Node's statfs gives no f_fsid:
 * coreutils' `stat -f` reads both; a native fstatfs replaces this with manifest format 3.)
 */
function statfsOf(path: string): { type: number; fsid: string | null } | null {
  const r = spawnSync('stat', ['-f', '-c', '%t %i', '--', path], { encoding: 'utf8', timeout: 10_000 });
  const m = r.status === 0 ? /^([0-9a-f]+) ([0-9a-f]+)\s*$/.exec(r.stdout) : null;
  if (!m) return null;
  // %i prints f_fsid as one hex number: its two 32-bit words, high then low
  const id = m[2]!.padStart(16, '0');
  return { type: parseInt(m[1]!, 16), fsid: `${parseInt(id.slice(0, 8), 16).toString(16)}:${parseInt(id.slice(8), 16).toString(16)}` };
}

/** The file-system identity of an open source root (entries come later, from the walk). */
export function rootIdentity(rootFd: number, path: string): SourceIdentity {
  const st = new Float64Array(sys.STAT_FIELDS);
  const rc = sys.fstat(rootFd, st);
  const dev = rc === 0 ? st[ST.DEV]! : 0;
  // the descriptor, through /proc: the directory opened, not whatever the path names now
  const fs = statfsOf(`/proc/${process.pid}/fd/${rootFd}`) ?? statfsOf(path);
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
  return new HardsnapError('ESOURCEMOVED',
    `source of part '${part}' (${source}) is not on the file system it was on for ${prevGen} (${describeFs(prev)} then, ${describeFs(now)} now): is it mounted? refusing the run, nothing written`,
    { exit: 2, path: source, hint: ACCEPT });
}

/**
 * After the walk, before publishing: the source must not have lost more than `maxLoss` (a
 * fraction) of the entries the previous generation's walk saw. null when fine.
 */
export function shrunkError(part: string, source: string, prevGen: string, prev: SourceIdentity | undefined, entries: number, maxLoss: number, left: string): HardsnapError | null {
  if (!prev || typeof prev.entries !== 'number' || prev.entries <= 0 || maxLoss >= 1) return null;
  const lost = (prev.entries - entries) / prev.entries;
  if (lost <= maxLoss) return null;
  const pct = (x: number) => `${Math.round(x * 1000) / 10}%`;
  return new HardsnapError('ESOURCESHRANK',
    `source of part '${part}' (${source}) has ${entries} ${entries === 1 ? 'entry' : 'entries'}, ${pct(lost)} fewer than the ${prev.entries} of ${prevGen} (more than max-source-loss ${pct(maxLoss)}): is it the tree you meant? refusing to publish; ${left}`,
    { exit: 2, path: source, hint: `${ACCEPT}, or raise max-source-loss for the part` });
}

/** After the walk: excludes (or problems) that leave nothing of a non-empty source. */
export function nothingLeftError(part: string, source: string, seen: number, kept: number, left: string): HardsnapError | null {
  if (kept > 0 || seen === 0) return null;
  return new HardsnapError('EEMPTYRESULT',
    `nothing of part '${part}' (${source}) is left to back up: the walk saw ${seen} entries and kept none (every one excluded or unreadable); refusing to publish an empty generation; ${left}`,
    { exit: 2, path: source, hint: 'check --exclude and the config\'s exclude:; --allow-empty publishes it anyway' });
}

/**
 * The identity recorded for a part's generation: in the line of runs.jsonl of the run that
 * published it (`parts[part].source`); undefined for a generation made before it was recorded.
 */
export function recordedIdentity(runs: RunRecord[], part: string, generation: string): SourceIdentity | undefined {
  for (let i = runs.length - 1; i >= 0; i--) {
    const r = runs[i]!;
    if (r.generation !== generation) continue;
    const src = (r.parts?.[part] as Record<string, unknown> | undefined)?.source as SourceIdentity | undefined;
    if (src && typeof src.fsType === 'number') return src;
  }
  return undefined;
}
