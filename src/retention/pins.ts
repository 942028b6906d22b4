/**
 * Pins: generations `prune` never removes, one name a line in `<part>/.hardsnap/pins`. The file
 * is replaced atomically (written under a temporary name, fsync-ed, renamed), so a reader sees
 * the old list or the new one, never half of it.
 */
import { writeFileAtomic } from '../fs/atomic-file.js';
import { readTextIfExists } from '../fs/read.js';
import path from 'node:path';
import { fs } from '../fs/disk.js';
import { UsageError } from '../core/errors.js';
import { ensureSpoolDir, partMetaDir } from '../spool/layout.js';
import { isGenerationName } from '../spool/names.js';

export function pinsPath(partDirPath: string): string {
  return path.join(partMetaDir(partDirPath), 'pins');
}

/**
 * The pinned names of a part (empty when it has no pins file). A line written by hand may name
 * a generation as a path (`2026-11-20T030000Z/` from tab completion, `.../p/2026-11-20T030000Z`):
 * its last component is the name (such a pin was ignored, and the generation pruned).
 */
export function readPins(partDirPath: string): Set<string> {
  const text = readTextIfExists(pinsPath(partDirPath));
  if (text === null) return new Set();
  return new Set(
    text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => pinnedName(partDirPath, l)),
  );
}

/**
 * The generation name a pins line stands for: the line itself, or its last component when it
 * ends in `/` or is a path to this part's directory (`./NAME`, `/spool/rsync/h/p/NAME`). A path
 * into another directory stays as it is (it pins nothing here, and prune says so).
 */
function pinnedName(partDirPath: string, line: string): string {
  const l = line.replace(/\/+$/, '') || line;
  if (!l.includes('/')) return l;
  const dir = path.dirname(l);
  // the same directory by device and inode: through a symlink or a second mount of the spool too
  const id = (p: string) => {
    const st = fs.statSync(p, { throwIfNoEntry: false });
    return st ? `${st.dev}:${st.ino}` : null;
  };
  const here = id(partDirPath);
  return dir === '.' || (here !== null && id(path.resolve(partDirPath, dir)) === here) ? path.basename(l) : line;
}

/**
 * Lines of the pins file that pin nothing: not a generation name (a typo), or the name of no
 * generation of the part (a mistyped date: the generation meant is not kept). Prune says them.
 */
export function strayPins(pins: ReadonlySet<string>, generations: readonly string[]): string[] {
  const there = new Set(generations);
  return [...pins].filter((n) => !isGenerationName(n) || !there.has(n));
}

export function writePins(partDirPath: string, pins: Set<string>): void {
  const file = pinsPath(partDirPath);
  ensureSpoolDir(path.dirname(file));
  writeFileAtomic(
    file,
    [...pins]
      .sort()
      .map((n) => `${n}\n`)
      .join(''),
  );
}

/** Adds (pin) or removes (unpin) a name; returns false when nothing changed. */
export function setPinned(partDirPath: string, name: string, pinned: boolean): boolean {
  if (!isGenerationName(name)) {
    throw new UsageError(`${JSON.stringify(name)} is not a generation name`, { hint: "see 'hardsnap list' for the names" });
  }
  const pins = readPins(partDirPath);
  if (pins.has(name) === pinned) return false;
  if (pinned) pins.add(name);
  else pins.delete(name);
  writePins(partDirPath, pins);
  return true;
}
