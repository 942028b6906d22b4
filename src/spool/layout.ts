/**
 * Where things live in a spool (SPEC.md "Spool layout"; docs/FORMAT.md):
 *   <spool>/rsync/<host>/.hardsnap/{lock,runs.jsonl}
 *   <spool>/rsync/<host>/<part>/<generation>[.partial]/
 *   <spool>/rsync/<host>/<part>/last -> <generation>
 *   <spool>/rsync/<host>/<part>/.hardsnap/{manifests/<generation>.hsm,trash/,pins}
 */
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../core/errors.js';
import { PARTIAL_SUFFIX, compareGenerations, parseGenerationName, type Generation } from './names.js';

export const META_DIR = '.hardsnap';
export const LAST = 'last';
/** The mode of a spool directory hardsnap creates (`hardsnap init`): not readable by others. */
export const SPOOL_DIR_MODE = 0o700;

export function hostDir(spool: string, host: string): string {
  return path.join(path.resolve(spool), 'rsync', host);
}
export function hostMetaDir(spool: string, host: string): string {
  return path.join(hostDir(spool, host), META_DIR);
}
export function partDir(spool: string, host: string, part: string): string {
  return path.join(hostDir(spool, host), ...part.split('/'));
}
export function partMetaDir(partDirPath: string): string {
  return path.join(partDirPath, META_DIR);
}
export function manifestDir(partDirPath: string): string {
  return path.join(partDirPath, META_DIR, 'manifests');
}
export function manifestPath(partDirPath: string, generation: string): string {
  return path.join(manifestDir(partDirPath), `${generation}.hsm`);
}
export function trashDir(partDirPath: string): string {
  return path.join(partDirPath, META_DIR, 'trash');
}

/** Checks a host ID as given with --host: one path component, not hidden. */
export function validateHost(host: string): string {
  if (!host || host.includes('/') || host.startsWith('.') || host.includes('\0') || /[\x00-\x1f\x7f]/.test(host)) {
    throw new UsageError(`invalid host ID ${JSON.stringify(host)}: it must be one path component that does not start with '.'`);
  }
  return host;
}

/** The generations of a part, oldest first; `.partial` ones marked incomplete. */
export function listGenerations(spool: string, host: string, part: string): Generation[] {
  const dir = partDir(spool, host, part);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: Generation[] = [];
  for (const n of names) {
    const partial = n.endsWith(PARTIAL_SUFFIX);
    const name = partial ? n.slice(0, -PARTIAL_SUFFIX.length) : n;
    const time = parseGenerationName(name);
    if (!time) continue;
    out.push({ part, name, path: path.join(dir, n), time, complete: !partial });
  }
  return out.sort((a, b) => compareGenerations(a, b) || Number(a.complete) - Number(b.complete));
}

/** The newest complete generation of a part, if any. */
export function newestComplete(spool: string, host: string, part: string): Generation | undefined {
  const gens = listGenerations(spool, host, part).filter((g) => g.complete);
  return gens[gens.length - 1];
}

/**
 * The parts of a host: directories below the host directory holding a `.hardsnap/` of their
 * own. Parts never nest, so the walk stops at the first one on each branch.
 */
export function listParts(spool: string, host: string): string[] {
  const root = hostDir(spool, host);
  const out: string[] = [];
  const walk = (dir: string, rel: string[], depth: number) => {
    let ents: fs.Dirent[];
    try {
      ents = fs.readdirSync(dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const e of ents) {
      if (!e.isDirectory() || e.name.startsWith('.') || e.name === LAST) continue;
      if (parseGenerationName(e.name.replace(/\.partial$/, ''))) continue;
      const sub = path.join(dir, e.name);
      if (fs.existsSync(path.join(sub, META_DIR))) out.push([...rel, e.name].join('/'));
      else if (depth < 16) walk(sub, [...rel, e.name], depth + 1);
    }
  };
  walk(root, [], 0);
  return out.sort();
}

/** The hosts of a spool (directories of <spool>/rsync). */
export function listHosts(spool: string): string[] {
  try {
    return fs
      .readdirSync(path.join(path.resolve(spool), 'rsync'), { withFileTypes: true })
      .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
      .map((e) => e.name)
      .sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}
