/**
 * Clones (reflinks): a new inode that shares the data extents of a file already in the spool,
 * made by native/hardsnap.c do_clone (the FICLONE ioctl: XFS with reflink, btrfs, NFS 4.2 on a
 * server that has them). Here: whether a spool's file system clones at all (one probe, for
 * `hardsnap check` and once per part of a backup), and what a failed clone means.
 */
import fs from 'node:fs';
import path from 'node:path';
import { IO, STAGE, errnoName, splitStaged, sys } from './native.js';
import { removeName } from './remove-tree.js';

/** What a probe found: `clones`, or why not (the errno name of the failed step). */
export interface CloneProbe {
  clones: boolean;
  /** null when it clones; else the errno of the step that failed (EOPNOTSUPP on ext4, tmpfs) */
  code: string | null;
  /** the step that failed, for humans: 'clone', 'create', 'verify' */
  step: string | null;
}

/** The probe's file names in the directory probed (a killed run's are removed by the next probe). */
const PROBE_PREFIX = '.hardsnap-clone-probe.';
/** A full block and more (a file this small could be kept inline by btrfs; this one is a real extent). */
const PROBE_BYTES = 8192;

/**
 * Whether the file system of directory `dir` clones: writes a small file there, clones it into a
 * second one (no metadata set), reads the clone back, and removes both. Never throws: a
 * directory that cannot take the probe file says so in `code`.
 */
export function probeClone(dir: string): CloneProbe {
  for (const n of safeReaddir(dir)) if (n.startsWith(PROBE_PREFIX)) removeName(path.join(dir, n));
  const a = `${PROBE_PREFIX}${process.pid}.a`;
  const b = `${PROBE_PREFIX}${process.pid}.b`;
  const data = Buffer.alloc(PROBE_BYTES, 'hardsnap clone probe\n');
  const dfd = sys.openat(sys.AT_FDCWD, dir, sys.O_RDONLY | sys.O_DIRECTORY | sys.O_NOFOLLOW, 0);
  if (dfd < 0) return { clones: false, code: errnoName(dfd), step: 'open' };
  try {
    try {
      fs.writeFileSync(path.join(dir, a), data, { flag: 'wx', mode: 0o600 });
    } catch (err) {
      return { clones: false, code: (err as NodeJS.ErrnoException).code ?? 'EIO', step: 'create' };
    }
    const io = new Float64Array(sys.IO_FIELDS);
    const rc = sys.clone(dfd, a, dfd, b, null, io, 0, 0, 0o600, 0, 0, 0, null);
    if (rc !== 0)
      return { clones: false, code: rc < 0 ? splitStaged(rc).code : 'ECHANGED', step: rc < 0 && splitStaged(rc).stage === STAGE.CLONE ? 'clone' : 'create' };
    const back = fs.readFileSync(path.join(dir, b));
    if (io[IO.BYTES] !== PROBE_BYTES || !back.equals(data)) return { clones: false, code: 'EIO', step: 'verify' };
    return { clones: true, code: null, step: null };
  } finally {
    sys.unlinkat(dfd, a, 0);
    sys.unlinkat(dfd, b, 0);
    sys.close(dfd);
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return []; // the probe's own open says why
  }
}

/**
 * What a clone() result that is neither 0 nor a drift mask means:
 * - `unsupported`: the file system (or this pair of files) cannot clone (EOPNOTSUPP, EINVAL,
 *   EXDEV, ENOTTY, ...): copy instead, and stop cloning for the rest of the run;
 * - `fatal`: the spool failed as a copy's write would (ENOSPC, EDQUOT, EIO, EROFS; metadata);
 * - `other`: this file cannot be cloned (its source is gone or unreadable, the name exists on
 *   resume): copy it, as before.
 */
export function cloneFailure(rc: number): { kind: 'unsupported' | 'fatal' | 'other'; stage: number; code: string } {
  const { stage, code } = splitStaged(rc);
  const spoolFull = code === 'ENOSPC' || code === 'EDQUOT' || code === 'EIO' || code === 'EROFS';
  if (stage === STAGE.META || stage === STAGE.WRITE || (spoolFull && stage !== STAGE.OPEN_SRC)) return { kind: 'fatal', stage, code };
  if (stage === STAGE.CLONE) return { kind: 'unsupported', stage, code };
  return { kind: 'other', stage, code };
}
