/**
 * `hardsnap init --spool DIR`: the one way a spool comes to be. Creates DIR (or takes an existing
 * empty one: a freshly mounted file system, `lost+found` aside), runs the file-system preflight
 * (hard links above all) and leaves the marker later runs check. On a spool it is a no-op, and
 * on a spool of an earlier version (one with a published generation) it adds the marker.
 */
import { fs } from '../fs/disk.js';
import { UsageError } from '../core/errors.js';
import { preflightNewSpool } from './preflight.js';
import { SPOOL_DIR_MODE } from '../spool/layout.js';
import { SPOOL_MARKER, hasLegacyTraces, spoolState, writeMarker } from '../spool/marker.js';
import { absoluteBytes, ensureDirBytes } from '../fs/byte-path.js';
import { pathBytes } from '../paths/aliases.js';

export type InitOutcome = 'created' | 'initialized' | 'marked' | 'exists';

/** Entries an empty file system has from mkfs: not content of the directory. */
const FROM_MKFS = new Set(['lost+found']);

export function initSpool(spool: string, onNote: (m: string) => void = () => {}): InitOutcome {
  const state = spoolState(spool);
  if (state === 'marked') return 'exists';
  if (state === 'not-dir') throw new UsageError(`${spool} exists and is not a directory: cannot make a spool there`);
  // a spool of an earlier version (a published generation with its manifest): marked. What runs
  // left without publishing (an empty rsync/<host>/.hardsnap/, a part, a .partial) is what an
  // unmounted mount point holds after a run went to the disk below: refused like anything else
  if (state === 'legacy') {
    writeMarker(spool);
    return 'marked';
  }
  let created = false;
  if (state === 'missing') {
    // made by its bytes (a path that is not UTF-8 reaches here as an alias of a directory that
    // does not exist yet), then named by an alias of what was made
    const abs = absoluteBytes(pathBytes(spool));
    const cut = abs.lastIndexOf(0x2f);
    const parent = cut <= 0 ? Buffer.from('/') : abs.subarray(0, cut);
    fs.mkdirSync(parent, { recursive: true });
    spool = ensureDirBytes(parent, abs.subarray(cut + 1), SPOOL_DIR_MODE);
    created = true;
  } else {
    const other = fs.readdirSync(spool).filter((n) => !FROM_MKFS.has(n));
    if (other.length) {
      const held = `it holds ${other
        .slice(0, 3)
        .map((n) => JSON.stringify(n))
        .join(', ')}${other.length > 3 ? ', ...' : ''}`;
      throw new UsageError(`${spool} is not empty and is not a hardsnap spool (no ${SPOOL_MARKER}): refusing to make a spool there`, {
        hint: hasLegacyTraces(spool)
          ? `${held}: traces of hardsnap runs but no published generation; if it is the mount point of a spool that is not mounted, mount it; if they are leftovers of runs that never published, remove them`
          : `${held}; give an empty or new directory`,
      });
    }
  }
  // the probe's warnings are for a spool that is made: a refusal is one line
  const warnings: string[] = [];
  try {
    preflightNewSpool(spool, (m) => warnings.push(m));
    writeMarker(spool);
  } catch (err) {
    if (created) fs.rmSync(spool, { recursive: true, force: true }); // ours, and the probe left it empty
    throw err;
  }
  for (const w of warnings) onNote(w);
  return created ? 'created' : 'initialized';
}
