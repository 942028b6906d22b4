/**
 * `last`: a relative symlink to the newest complete generation, replaced atomically (a new
 * link under a temporary name renamed over the old one), so that a reader of `last` (a tape
 * backup system) never sees it missing or pointing at a partial generation.
 *
 * `LATEST`: a plain file beside it holding the same generation's name and a newline, for tools
 * and file systems that do not follow symlinks (SMB exports, some tape agents). It is written
 * after `last` moves, the same way (a temporary file, fsync, rename), so it never names a
 * generation `last` has not named first; a run killed between the two renames leaves it one
 * generation behind until the next run.
 */
import { fs } from '../fs/disk.js';
import path from 'node:path';
import { testPause } from '../fs/test-pause.js';
import { LAST, LATEST } from './layout.js';
import { isGenerationName } from './names.js';
import { AtomicFile } from '../fs/atomic-file.js';
import { removeName } from '../fs/remove-tree.js';

export function readLast(partDirPath: string): string | null {
  try {
    return fs.readlinkSync(path.join(partDirPath, LAST));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EINVAL') return null;
    throw err;
  }
}

/** The generation name LATEST holds, or null when there is none (or it holds something else). */
export function readLatest(partDirPath: string): string | null {
  const buf = Buffer.alloc(128);
  let n: number;
  try {
    // never follow a link planted there (to /dev/zero, a FIFO), never read more than a name
    const fd = fs.openSync(path.join(partDirPath, LATEST), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    try {
      if (!fs.fstatSync(fd).isFile()) return null;
      n = fs.readSync(fd, buf, 0, buf.length, 0);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return null; // absent (a spool of an earlier version), or not a readable file: only a hint
  }
  const name = buf.toString('utf8', 0, n).trimEnd();
  return isGenerationName(name) ? name : null;
}

/**
 * `last` and `LATEST` naming `generation`, made under their temporary names (and LATEST's
 * content flushed) before anything is renamed: all the space they need is taken first, so a
 * full spool fails the run here, with the generation still `.partial` and `last` untouched,
 * not after the generation was put in place (the caller holds the host lock).
 */
export class PendingLast {
  private readonly tmp: string;
  private readonly latest: AtomicFile;

  /** `leftovers`: the `.last.*.tmp` and `.LATEST.*.tmp` names a killed run left there (the run's reading of the part) */
  constructor(
    private readonly partDirPath: string,
    generation: string,
    leftovers: readonly string[],
  ) {
    // any a killed run left between its write and its rename (we hold the lock)
    for (const n of leftovers) removeName(path.join(partDirPath, n));
    this.tmp = path.join(partDirPath, `.${LAST}.${process.pid}.tmp`);
    fs.symlinkSync(generation, this.tmp);
    try {
      this.latest = new AtomicFile(path.join(partDirPath, LATEST));
    } catch (err) {
      this.dropTmp();
      throw err;
    }
    try {
      this.latest.write(`${generation}\n`);
      this.latest.sync();
    } catch (err) {
      this.abandon();
      throw err;
    }
  }

  /** Moves `last`, then `LATEST`; durable when it returns (LATEST's commit fsyncs the part directory after both renames). */
  commit(): void {
    fs.renameSync(this.tmp, path.join(this.partDirPath, LAST));
    testPause('before-latest');
    this.latest.commit();
  }

  /** Leaves `last` and `LATEST` as they were. */
  abandon(): void {
    this.dropTmp();
    this.latest.abandon();
  }

  /**
   * The new `last` link removed, after something failed (whose error is the one to tell): one
   * that cannot be (an append-only part directory) is a leftover for the next run to remove,
   * or to name when it cannot.
   */
  private dropTmp(): void {
    try {
      removeName(this.tmp);
    } catch {
      /* left: see above */
    }
  }
}
