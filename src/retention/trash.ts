/**
 * The trash of a part, `<part>/.hardsnap/trash/`: a generation to delete is first renamed into
 * it (one rename: it vanishes from `list`, `last` and restore at once), its manifest after it,
 * and only then deleted. A prune killed while deleting leaves the rest in the trash, and the
 * next prune or backup empties it before doing anything else.
 */
import fs from 'node:fs';
import path from 'node:path';
import { removeTree } from '../apply/remove-tree.js';
import { manifestDir, manifestPath, trashDir } from '../spool/layout.js';
import { PARTIAL_SUFFIX } from '../spool/names.js';

const MANIFEST_SUFFIX = '.hsm';

function exists(p: string): boolean {
  return fs.lstatSync(p, { throwIfNoEntry: false }) !== undefined;
}

/** Moves one generation (and its manifest) into the trash. */
export function moveToTrash(partDirPath: string, generation: string): void {
  const trash = trashDir(partDirPath);
  fs.mkdirSync(trash, { recursive: true });
  const dst = path.join(trash, generation);
  if (exists(dst)) removeTree(dst); // left by an earlier prune killed mid-way
  const src = path.join(partDirPath, generation);
  try {
    fs.renameSync(src, dst);
  } catch (err) {
    // moving a directory to another parent rewrites its `..`: without root that needs write
    // permission on it, which a read-only source root gave away. It is ours and goes anyway.
    if ((err as NodeJS.ErrnoException).code !== 'EACCES') throw err;
    fs.chmodSync(src, fs.lstatSync(src).mode | 0o700);
    fs.renameSync(src, dst);
  }
  const m = manifestPath(partDirPath, generation);
  if (exists(m)) fs.renameSync(m, path.join(trash, generation + MANIFEST_SUFFIX));
}

/**
 * Deletes everything in the trash; also moves there a manifest whose generation is gone (a
 * prune killed between the two renames). Returns the names deleted.
 */
export function emptyTrash(partDirPath: string): string[] {
  collectOrphanManifests(partDirPath);
  const trash = trashDir(partDirPath);
  let names: string[];
  try {
    names = fs.readdirSync(trash);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  for (const n of names.sort()) removeTree(path.join(trash, n));
  return names;
}

function collectOrphanManifests(partDirPath: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(manifestDir(partDirPath));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  for (const n of names) {
    if (!n.endsWith(MANIFEST_SUFFIX)) continue;
    const gen = n.slice(0, -MANIFEST_SUFFIX.length);
    // a manifest is published just before its generation: a `.partial` still owns it
    if (exists(path.join(partDirPath, gen)) || exists(path.join(partDirPath, gen + PARTIAL_SUFFIX))) continue;
    const trash = trashDir(partDirPath);
    fs.mkdirSync(trash, { recursive: true });
    fs.renameSync(path.join(manifestDir(partDirPath), n), path.join(trash, n));
  }
}

/** True when the trash holds something (a prune was interrupted). */
export function trashHasContent(partDirPath: string): boolean {
  try {
    return fs.readdirSync(trashDir(partDirPath)).length > 0;
  } catch {
    return false;
  }
}
