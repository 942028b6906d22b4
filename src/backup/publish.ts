/**
 * Publishing: flush what was written to stable storage (one syncfs per file system the parts
 * live on), then per part rename the manifest and the generation into place and move `last`
 * atomically, fsync-ing the part directory so the renames themselves are durable.
 */
import { fs } from '../fs/disk.js';
import { testPause } from '../fs/test-pause.js';
import { check, sys } from '../fs/native.js';
import { syncDir } from '../fs/atomic-file.js';
import { PendingLast } from '../spool/last.js';
import type { BuiltPart } from './part-run.js';

/** syncfs of every distinct file system among the given directories. */
export function flushFileSystems(dirs: string[]): void {
  const seen = new Set<number>();
  for (const d of dirs) {
    const dev = fs.statSync(d).dev;
    if (seen.has(dev)) continue;
    seen.add(dev);
    const fd = check(sys.openat(sys.AT_FDCWD, d, sys.O_RDONLY | sys.O_DIRECTORY, 0), 'open', d);
    try {
      check(sys.syncfs(fd), 'syncfs', d);
    } finally {
      sys.close(fd);
    }
  }
}

export function publishPart(p: BuiltPart): void {
  // what needs space first (last's and LATEST's new names): a full spool fails here, nothing renamed
  const last = new PendingLast(p.partDir, p.generation, p.lastLeftovers);
  const manifest = p.manifestTmp.replace(/\.tmp$/, '');
  let placed = false;
  let moved = false;
  try {
    fs.renameSync(p.manifestTmp, manifest);
    placed = true;
    fs.renameSync(p.partialPath, p.path);
    moved = true;
    syncDir(p.partDir);
  } catch (err) {
    last.abandon();
    // the generation did not take its name: its manifest must not stand for a name that is
    // not a generation (it was left, for a name a later run or an admin may give to another tree)
    if (placed && !moved) {
      try {
        fs.renameSync(manifest, p.manifestTmp);
      } catch {
        // left as an orphan: the next emptying of the trash collects it (trash.ts)
      }
    }
    throw err;
  }
  testPause('before-last');
  // durable when it returns: LATEST's commit fsyncs the part directory after both renames
  last.commit();
}
