/**
 * `hardsnap init --spool DIR`: the one way a spool comes to be. Creates DIR (or takes an existing
 * empty one: a freshly mounted file system, `lost+found` aside), runs the file-system preflight
 * (hard links above all) and leaves the marker later runs check. On a spool it is a no-op, and
 * on a spool of an earlier version (one with a published generation) it adds the marker.
 */
import { fs } from '../fs/disk.js';
import { HardsnapError, UsageError } from '../core/errors.js';
import { exchangeableBy, nearestExisting, preflightNewSpool } from './preflight.js';
import { SPOOL_DIR_MODE } from '../spool/layout.js';
import { SPOOL_MARKER, hasLegacyTraces, notMountedError, spoolState, unmountedFstabMountAbove, writeMarker } from '../spool/marker.js';
import { absoluteBytes, ensureDirBytes } from '../fs/byte-path.js';
import { displayPath } from '../paths/escape.js';
import { pathBytes } from '../paths/aliases.js';
import { removeTree } from '../fs/remove-tree.js';

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
  // (not on a file system that should be mounted there: what an earlier version wrote below it)
  refuseUnmounted(spool, state);
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
    // (an attack: in a directory others could write, the spool made was exchanged for a symlink
    // to a directory of theirs, and the marker written through it into a root-owned directory)
    const unsafe = exchangeableBy(nearestExisting(parent.toString('latin1')));
    if (unsafe) throw new HardsnapError('EUNSAFE', `refusing to make a spool at ${spool}: ${unsafe}`, { exit: 2, path: spool });
    fs.mkdirSync(parent, { recursive: true });
    // exclusive: a directory someone else made meanwhile is not ours to remove if the probe fails
    spool = ensureDirBytes(parent, abs.subarray(cut + 1), SPOOL_DIR_MODE, true);
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
    if (created) removeTree(spool); // ours, and the probe left it empty
    throw err;
  }
  for (const w of warnings) onNote(w);
  return created ? 'created' : 'initialized';
}

/**
 * A spool made where a file system should be mounted and is not would be on the disk below it,
 * and every backup after it too (a provisioning script runs init every time): refused, exit 2.
 * Two signs: the spool path is a symlink to nothing (to a directory of an unmounted share: a
 * seventh cron trial saw init remove the symlink, and the next init make a local spool), or it
 * is at or below a mount point /etc/fstab lists that nothing is mounted on.
 */
function refuseUnmounted(spool: string, state: string): void {
  const bytes = absoluteBytes(pathBytes(spool));
  const st = fs.lstatSync(bytes, { throwIfNoEntry: false });
  if (state === 'missing' && st?.isSymbolicLink()) {
    const to = displayPath(fs.readlinkSync(bytes, { encoding: 'buffer' }));
    throw new HardsnapError('ENOSPOOL', `${spool} is a symlink to ${to}, which does not exist: is it mounted?`, {
      exit: 2,
      path: spool,
      hint: 'mount the file system it points into, then run init again; nothing was made',
    });
  }
  const mp = unmountedFstabMountAbove(spool);
  if (mp) throw notMountedError(spool, mp, 'run init again; nothing was made: a spool made now would be on the disk below it');
}
