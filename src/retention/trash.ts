/**
 * The trash of a part, `<part>/.hardsnap/trash/`: a generation to delete is first renamed into
 * it (one rename: it vanishes from `list`, `last` and restore at once), its manifest after it,
 * and only then deleted. A prune killed while deleting leaves the rest in the trash, and the
 * next prune or backup empties it before doing anything else.
 *
 * Deleting only unlinks names (src/fs/remove-tree.ts): nothing a surviving generation may
 * share is changed, no mount point is crossed. What cannot be deleted (an immutable file, a
 * file system mounted inside) stays in the trash, is reported as a `TrashLeftover` and tried
 * again by every later prune and backup; it never fails either.
 */
import { fs } from '../fs/disk.js';
import path from 'node:path';
import { TreeRemover, leftoverHint, type Leftover } from '../fs/remove-tree.js';
import { HardsnapError, errnoCode } from '../core/errors.js';
import { errnoName, sys } from '../fs/native.js';
import { chmodDir } from '../fs/dir-mode.js';
import { displayPath } from '../paths/escape.js';
import { META_DIR, ensureSpoolDir, manifestDir, manifestPath, trashDir } from '../spool/layout.js';
import { E } from '../fs/errno.js';
import { PARTIAL_SUFFIX } from '../spool/names.js';
import { removeName } from '../fs/remove-tree.js';

const MANIFEST_SUFFIX = '.hsm';

/**
 * Why the trash cannot be used, or null: `.hardsnap` and `.hardsnap/trash` must be plain
 * directories on the part's own file system. A symlink there (an admin keeping the metadata
 * elsewhere) would move whole generations out of the spool's 0700 tree and delete what lies
 * at its target: never followed. A missing one is fine (made when needed).
 */
export function trashRefusal(partDirPath: string): string | null {
  // followed: a part whose name is not UTF-8 is reached through an alias (/proc/self/fd/N), a
  // symlink of procfs (its own components are never symlinks: refuseSpoolSymlinks)
  const part = fs.statSync(partDirPath, { throwIfNoEntry: false });
  // the trash, and the manifests directory (a manifest whose generation is gone is moved to the
  // trash from there, a `.hsm.tmp` a killed run left is deleted there)
  for (const p of [path.dirname(trashDir(partDirPath)), trashDir(partDirPath), manifestDir(partDirPath)]) {
    const st = fs.lstatSync(p, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isSymbolicLink()) return `${p} is a symlink: generations are never moved or deleted through it (make it a plain directory of the spool)`;
    if (!st.isDirectory()) return `${p} is not a directory`;
    if (part && st.dev !== part.dev) return `${p} is on another file system than its part: generations are never moved there`;
  }
  // a bind mount of the same file system has the same st_dev: what is mounted there is not the
  // spool's (an attack bind-mounted an outside directory on the trash, then on the manifests
  // directory: prune and backup deleted its files)
  for (const dir of [trashDir(partDirPath), manifestDir(partDirPath)]) {
    const fd = openBelowPart(partDirPath, dir, sys.O_PATH | sys.O_DIRECTORY);
    if (fd === -E.EXDEV)
      return `${dir} (or the ${META_DIR} directory above it) is a mount point: what is mounted there is not the spool's, and nothing is moved there nor deleted in it (umount it)`;
    if (fd >= 0) sys.close(fd);
  }
  return null;
}

/**
 * `dir`, a directory of the part's META_DIR, opened from its part directory without crossing a
 * mount point or following a symlink (openat2 RESOLVE_NO_XDEV): a descriptor, or -errno (EXDEV:
 * something is mounted on it or on the directory above it; ENOENT: not made yet).
 */
function openBelowPart(partDirPath: string, dir: string, flags = O_DIR): number {
  // followed: the part itself may be reached through an alias (above)
  const pfd = sys.openat(sys.AT_FDCWD, partDirPath, sys.O_PATH | sys.O_DIRECTORY, 0);
  if (pfd < 0) return pfd;
  try {
    const rel = path.relative(partDirPath, dir);
    const fd = sys.openat2(pfd, rel, flags, 0, sys.RESOLVE_BENEATH | sys.RESOLVE_NO_SYMLINKS | sys.RESOLVE_NO_XDEV);
    // (Linux before 5.6 has no openat2: the st_dev comparison above alone)
    return fd === -E.ENOSYS ? sys.openat(pfd, rel, flags | sys.O_NOFOLLOW, 0) : fd;
  } finally {
    sys.close(pfd);
  }
}

/** The trash opened as openBelowPart does. */
function openTrash(partDirPath: string, flags = O_DIR): number {
  return openBelowPart(partDirPath, trashDir(partDirPath), flags);
}

/** A trash that must not be used (trashRefusal), as the one leftover it reports; else null. */
function unsafeTrash(partDirPath: string): TrashReport | null {
  const refused = trashRefusal(partDirPath);
  if (!refused) return null;
  return { deleted: [], leftovers: [{ path: Buffer.from(trashDir(partDirPath)), code: 'ETRASH', why: 'error', hint: refused, trashItself: true }] };
}

function refuseUnsafeTrash(partDirPath: string): void {
  const why = trashRefusal(partDirPath);
  if (why) throw new HardsnapError('ETRASH', why, { exit: 2 });
}
const O_DIR = sys.O_RDONLY | sys.O_DIRECTORY | sys.O_NOFOLLOW;

/** Something the trash still holds: its absolute path (bytes), errno and what to do. */
export interface TrashLeftover extends Leftover {
  /** absolute path (bytes) */
  path: Buffer;
  hint: string;
  /** a generation that could not even be moved into the trash: it stays where it is */
  notMoved?: boolean;
  /** the trash directory itself refuses changes (immutable or append-only) */
  trashItself?: boolean;
  /** in the manifests directory (a killed run's `.hsm.tmp`, or a manifest to move to the trash): it stays there */
  inManifests?: boolean;
}

/** One line for a human: what, where, why, what to do. */
export function describeLeftover(part: string, l: TrashLeftover): string {
  const where = displayPath(l.path);
  if (l.trashItself)
    return `part '${part}': the trash ${where} refuses changes: ${l.code} (${l.hint}); what it holds stays, and the next prune or backup tries again`;
  if (l.notMoved) return `part '${part}': cannot move ${where} to the trash: ${l.code} (${l.hint}); the generation is kept, and the next prune tries again`;
  if (l.inManifests) return `part '${part}': cannot remove ${where}: ${l.code} (${l.hint}); it stays where it is, and the next prune or backup tries again`;
  return `part '${part}': cannot delete ${where}: ${l.code} (${l.hint}); it stays in the trash, and the next prune or backup tries again`;
}

/** At most `max` lines, then one that counts the rest. */
export function describeLeftovers(part: string, list: readonly TrashLeftover[], max = 5): string[] {
  const lines = list.slice(0, max).map((l) => describeLeftover(part, l));
  if (list.length > max) lines.push(`part '${part}': and ${list.length - max} more entries that cannot be deleted (see \`hardsnap status\`)`);
  return lines;
}

export interface TrashReport {
  /** names in the trash that were deleted */
  deleted: string[];
  leftovers: TrashLeftover[];
}

function exists(p: string): boolean {
  return fs.lstatSync(p, { throwIfNoEntry: false }) !== undefined;
}

/** `base`, or `base.1`, `base.2`, ... : a name not taken in the trash (a stuck earlier one may be). */
function freeName(trash: string, base: string): string {
  let n = base;
  for (let i = 1; exists(path.join(trash, n)); i++) n = `${base}.${i}`;
  return n;
}

/** Moves one generation (and its manifest) into the trash; returns its name there. */
export function moveToTrash(partDirPath: string, generation: string): string {
  refuseUnsafeTrash(partDirPath);
  const trash = trashDir(partDirPath);
  ensureSpoolDir(trash);
  const name = freeName(trash, generation);
  const src = path.join(partDirPath, generation);
  try {
    fs.renameSync(src, path.join(trash, name));
  } catch (err) {
    // moving a directory to another parent rewrites its `..`: without root that needs write
    // permission on it, which a read-only source root gave away. A generation's directory is
    // its own (never shared), and it goes anyway; a symlink named like one is never followed.
    if (errnoCode(err) !== 'EACCES' || !grantWrite(src)) throw err;
    fs.renameSync(src, path.join(trash, name));
  }
  const m = manifestPath(partDirPath, generation);
  if (exists(m)) fs.renameSync(m, path.join(trash, freeName(trash, name + MANIFEST_SUFFIX)));
  return name;
}

/** Undoes moveToTrash (nothing of it was deleted yet): a lease appeared in between. */
export function moveBackFromTrash(partDirPath: string, generation: string, name: string): void {
  const trash = trashDir(partDirPath);
  const m = path.join(trash, name + MANIFEST_SUFFIX);
  if (exists(m)) fs.renameSync(m, manifestPath(partDirPath, generation));
  fs.renameSync(path.join(trash, name), path.join(partDirPath, generation));
}

/** u+rwx on a directory, checked through the descriptor the change is made on. */
function grantWrite(p: string): boolean {
  return chmodDir(sys.AT_FDCWD, p, (m) => m | 0o700) !== null;
}

/** Deletes the named entries of the trash (a generation, its manifest). Never throws. */
export function deleteFromTrash(partDirPath: string, names: string[]): TrashReport {
  const unsafe = unsafeTrash(partDirPath);
  if (unsafe) return unsafe;
  const trash = trashDir(partDirPath);
  const report: TrashReport = { deleted: [], leftovers: [] };
  const fd = openTrash(partDirPath);
  if (fd < 0) {
    if (errnoName(fd) !== 'ENOENT') report.leftovers.push(leftover(trash, { path: Buffer.alloc(0), code: errnoName(fd), why: 'error' }));
    return report;
  }
  try {
    const remover = TreeRemover.at(fd);
    for (const n of names) {
      if (remover.remove(fd, n, Buffer.from(n))) report.deleted.push(n);
    }
    let left = remover.leftovers;
    // entries of the trash itself refused: the trash directory may be the one with the flag
    const top = (l: Leftover) => l.code === 'EPERM' && !l.path.includes(0x2f);
    if (left.some(top) && remover.refusesChanges(fd)) {
      left = [{ path: Buffer.alloc(0), code: 'EPERM', why: 'immutable' }, ...left.filter((l) => !top(l))];
    }
    report.leftovers.push(...left.map((l) => ({ ...leftover(trash, l), ...(l.path.length ? {} : { trashItself: true }) })));
  } finally {
    sys.close(fd);
  }
  return report;
}

/**
 * Deletes everything in the trash; also moves there a manifest whose generation is gone (a
 * prune killed between the two renames), and deletes the manifests a killed backup was writing
 * (`<gen>.hsm.tmp`): one listing of the manifests directory. The caller holds the host lock.
 * Never throws: what cannot be deleted is reported.
 */
export function emptyTrash(partDirPath: string): TrashReport {
  const unsafe = unsafeTrash(partDirPath);
  if (unsafe) return unsafe;
  const report: TrashReport = { deleted: [], leftovers: [] };
  collectOrphanManifests(partDirPath, report);
  const trash = trashDir(partDirPath);
  let names: string[];
  try {
    names = fs.readdirSync(trash);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') report.leftovers.push(leftover(trash, { path: Buffer.alloc(0), code: errnoCode(err) ?? 'EIO', why: 'error' }));
    return report;
  }
  const r = deleteFromTrash(partDirPath, names.sort());
  report.deleted.push(...r.deleted);
  report.leftovers.push(...r.leftovers);
  return report;
}

function collectOrphanManifests(partDirPath: string, report: TrashReport): void {
  let names: string[];
  try {
    names = fs.readdirSync(manifestDir(partDirPath));
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT')
      report.leftovers.push(leftover(manifestDir(partDirPath), { path: Buffer.alloc(0), code: errnoCode(err) ?? 'EIO', why: 'error' }));
    return;
  }
  for (const n of names) {
    // a manifest a killed run was writing (`<gen>.hsm.tmp`): as big as a manifest, never read
    // (the caller holds the host lock: no run is writing one now)
    if (n.endsWith('.tmp')) {
      try {
        removeName(path.join(manifestDir(partDirPath), n));
      } catch (err) {
        const code = errnoCode(err) ?? 'EIO';
        report.leftovers.push(manifestLeftover(partDirPath, n, code));
      }
      continue;
    }
    if (!n.endsWith(MANIFEST_SUFFIX)) continue;
    const gen = n.slice(0, -MANIFEST_SUFFIX.length);
    // a manifest is published just before its generation: a `.partial` still owns it
    if (exists(path.join(partDirPath, gen)) || exists(path.join(partDirPath, gen + PARTIAL_SUFFIX))) continue;
    const trash = trashDir(partDirPath);
    try {
      ensureSpoolDir(trash);
      fs.renameSync(path.join(manifestDir(partDirPath), n), path.join(trash, freeName(trash, n)));
    } catch (err) {
      const code = errnoCode(err) ?? 'EIO';
      report.leftovers.push(manifestLeftover(partDirPath, n, code));
    }
  }
}

/** What could not be removed from the manifests directory (or moved from it to the trash). */
function manifestLeftover(partDirPath: string, name: string, code: string): TrashLeftover {
  return {
    ...leftover(path.join(manifestDir(partDirPath), name), { path: Buffer.alloc(0), code, why: code === 'EPERM' ? 'immutable' : 'error' }),
    inManifests: true,
  };
}

function leftover(base: string, l: Leftover): TrashLeftover {
  const abs = l.path.length ? Buffer.concat([Buffer.from(base + '/'), l.path]) : Buffer.from(base);
  return { ...l, path: abs, hint: leftoverHint(l) };
}

/** The names the trash holds (a prune was interrupted, or something could not be deleted). */
export function trashContents(partDirPath: string): string[] {
  try {
    return fs.readdirSync(trashDir(partDirPath)).sort();
  } catch {
    return [];
  }
}

/** True when the trash holds something (a prune was interrupted). */
export function trashHasContent(partDirPath: string): boolean {
  return trashContents(partDirPath).length > 0;
}

/** Whether the trash directory itself refuses changes (chattr +i / +a on it). */
export function trashRefusesChanges(partDirPath: string): boolean {
  const fd = openTrash(partDirPath);
  if (fd < 0) return false;
  try {
    return TreeRemover.at(fd).refusesChanges(fd);
  } finally {
    sys.close(fd);
  }
}
