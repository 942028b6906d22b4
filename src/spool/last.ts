/**
 * `last`: a relative symlink to the newest complete generation, replaced atomically (a new
 * link under a temporary name renamed over the old one), so that a reader of `last` (a tape
 * backup system) never sees it missing or pointing at a partial generation.
 */
import fs from 'node:fs';
import path from 'node:path';
import { LAST } from './layout.js';

export function readLast(partDirPath: string): string | null {
  try {
    return fs.readlinkSync(path.join(partDirPath, LAST));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EINVAL') return null;
    throw err;
  }
}

export function setLast(partDirPath: string, generation: string): void {
  const tmp = path.join(partDirPath, `.${LAST}.${process.pid}.tmp`);
  // ours, and any a killed run left between its symlink and its rename (we hold the lock)
  for (const n of fs.readdirSync(partDirPath)) {
    if (n.startsWith(`.${LAST}.`) && n.endsWith('.tmp')) fs.rmSync(path.join(partDirPath, n), { force: true });
  }
  fs.symlinkSync(generation, tmp);
  fs.renameSync(tmp, path.join(partDirPath, LAST));
}
