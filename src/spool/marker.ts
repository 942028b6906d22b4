/**
 * The spool's marker, `<spool>/.hardsnap-spool`: made by `hardsnap init --spool DIR` (or, for a
 * spool an earlier version made, on its first use), checked by every command that uses a spool.
 * A spool that does not exist, or a directory without the marker, is what an unmounted file
 * system looks like (its mount point, empty or holding a stray file): nothing is read from or
 * written to it, and the error says so (exit 2). A backup never creates a spool.
 */
import { fs } from '../fs/disk.js';
import path from 'node:path';
import { HardsnapError, UsageError } from '../core/errors.js';
import { TOOL } from '../core/version.js';
import { hostMetaDir, listGenerations, listHosts, listParts, manifestPath, partDir } from './layout.js';
import { writeFileAtomic } from '../fs/atomic-file.js';
import { MAGIC } from '../manifest/format.js';
import { readUnmountedFstabMount } from '../fs/mountinfo.js';
import { realBytes } from '../fs/byte-path.js';
import { ST, sys } from '../fs/native.js';

export const SPOOL_MARKER = '.hardsnap-spool';
export const MARKER_FORMAT = 1;

export type SpoolState =
  /** nothing at the path */
  | 'missing'
  /** something that is not a directory */
  | 'not-dir'
  /** a directory with the marker */
  | 'marked'
  /** no marker, but the layout an earlier version made (rsync/<host>/.hardsnap or a part) */
  | 'legacy'
  /** a directory without marker or layout: a bare mount point, or not a spool at all */
  | 'bare';

/** Whether the directory open at `dirfd` holds a spool marker (a regular file): it is a spool. */
export function holdsSpoolMarker(dirfd: number): boolean {
  const st = new Float64Array(sys.STAT_FIELDS);
  return sys.fstatat(dirfd, SPOOL_MARKER, st, 1) === 0 && (st[ST.MODE]! & 0o170000) === 0o100000;
}

export function markerPath(spool: string): string {
  return path.join(path.resolve(spool), SPOOL_MARKER);
}

/** What is at `spool`, without writing anything. */
export function spoolState(spool: string): SpoolState {
  let st: fs.Stats;
  try {
    st = fs.statSync(spool);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return 'missing';
    throw err;
  }
  if (!st.isDirectory()) return 'not-dir';
  const m = fs.lstatSync(markerPath(spool), { throwIfNoEntry: false });
  if (m?.isFile()) return 'marked';
  return hasLegacyLayout(spool) ? 'legacy' : 'bare';
}

/**
 * A spool an earlier version made: a part with a published generation and its manifest (every
 * version wrote one). Traces alone (a host's .hardsnap/, an empty part, a directory named like
 * a generation) are what a run left on an unmounted mount point, or what someone made there:
 * taken for a spool they would let a backup write onto the disk below and mark it for good.
 * `init` refuses them too, naming them (hasLegacyTraces).
 */
function hasLegacyLayout(spool: string): boolean {
  return listHosts(spool).some((host) =>
    listParts(spool, host).some((part) =>
      listGenerations(spool, host, part).some((g) => g.complete && isManifest(manifestPath(partDir(spool, host, part), g.name))),
    ),
  );
}

/** Whether a file starts as a manifest does (its magic): an empty or garbage file is no proof. */
function isManifest(file: string): boolean {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return false;
  }
  try {
    const head = Buffer.alloc(MAGIC.length);
    return fs.readSync(fd, head, 0, head.length, 0) === head.length && head.equals(MAGIC);
  } finally {
    fs.closeSync(fd);
  }
}

/** What runs leave even when none published: a host directory with its .hardsnap/, or a part (init's refusal names them). */
export function hasLegacyTraces(spool: string): boolean {
  return listHosts(spool).some((host) => fs.existsSync(hostMetaDir(spool, host)) || listParts(spool, host).length > 0);
}

/** Writes the marker (a temporary file renamed into place). */
export function writeMarker(spool: string): void {
  const file = markerPath(spool);
  const body = JSON.stringify({ hardsnap: 'spool', format: MARKER_FORMAT, created: new Date().toISOString(), tool: TOOL }) + '\n';
  writeFileAtomic(file, body);
}

export function missingSpoolError(spool: string): HardsnapError {
  return new HardsnapError('ENOSPOOL', `spool ${spool} does not exist: is it mounted?`, {
    exit: 2,
    path: spool,
    hint: `mount it; a new spool is made with 'hardsnap init --spool ${spool}'`,
  });
}

export function bareSpoolError(spool: string): HardsnapError {
  return new HardsnapError('ENOTSPOOL', `${spool} is not a hardsnap spool (no ${SPOOL_MARKER}): is it mounted?`, {
    exit: 2,
    path: spool,
    hint: `an empty mount point looks like this: mount the spool, or make a new one there with 'hardsnap init --spool ${spool}'`,
  });
}

export interface RequireSpoolOptions {
  /**
   * mark a spool an earlier version made (commands that write to the spool); read-only
   * commands and dry runs recognise it without writing
   */
  mark?: boolean;
  onNote?: (message: string) => void;
}

/**
 * Refuses (exit 2) a spool that is missing or unmarked, the same way for every command; a spool
 * of an earlier version (recognised by its layout) is accepted, and marked when `mark` says so.
 * Returns what it found ('marked' or 'legacy').
 */
export function requireSpool(spool: string, o: RequireSpoolOptions = {}): 'marked' | 'legacy' {
  const state = spoolState(spool);
  if (state === 'marked') return state;
  if (state === 'missing') throw missingSpoolError(spool);
  if (state === 'not-dir') throw new UsageError(`spool ${spool} is not a directory`, { hint: 'check --spool' });
  if (state === 'bare') throw bareSpoolError(spool);
  if (o.mark) markLegacy(spool, o.onNote);
  return state;
}

/** Marks a spool an earlier version made, and says so (once: it is marked from then on). */
export function markLegacy(spool: string, onNote?: (message: string) => void): void {
  writeMarker(spool);
  onNote?.(`marked ${spool} as a hardsnap spool (${SPOOL_MARKER}): it was made by an earlier version`);
}

/**
 * The mount point /etc/fstab lists at or above `p` (symlinks resolved) with nothing mounted on
 * it, or null: what is there is the disk below the file system meant for it (a spool, a host
 * directory bind-mounted from another disk, a part on its own file system).
 */
export function unmountedFstabMountAbove(p: string): string | null {
  return readUnmountedFstabMount(realBytes(p).toString('latin1'));
}

/** The refusal of a path below an unmounted fstab mount point (exit 2, code ENOTMOUNTED). */
export function notMountedError(p: string, mountPoint: string, then: string): HardsnapError {
  return new HardsnapError('ENOTMOUNTED', `${p} is at or below ${mountPoint}, a mount point in /etc/fstab with nothing mounted on it: is it mounted?`, {
    exit: 2,
    path: p,
    hint: `mount ${mountPoint}, then ${then}`,
  });
}
