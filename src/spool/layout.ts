/**
 * Where things live in a spool (SPEC.md "Spool layout"; docs/FORMAT.md):
 *   <spool>/rsync/<host>/.hardsnap/{lock,runs.jsonl}
 *   <spool>/rsync/<host>/<part>/<generation>[.partial]/
 *   <spool>/rsync/<host>/<part>/last -> <generation>, and LATEST holding its name
 *   <spool>/rsync/<host>/<part>/.hardsnap/{manifests/<generation>.hsm,trash/,pins}
 */
import { fs } from '../fs/disk.js';
import path from 'node:path';
import { HardsnapError, UsageError, errnoCode } from '../core/errors.js';
import { PARTIAL_SUFFIX, compareGenerations, parseGenerationName, type Generation } from './names.js';
import { displayPath, parseDisplayPath } from '../paths/escape.js';
import { pathBytes } from '../paths/aliases.js';
import { ensureDirBytes, pathOfBytes } from '../fs/byte-path.js';
import { readDirTypesIfExists } from '../fs/read.js';
import { resetMadeDir } from '../fs/dir-mode.js';
import { SysError } from '../fs/native.js';

/** Where a host's backups are: the spool (an exact path: an alias when its bytes are not UTF-8) and the host ID. */
export interface Target {
  spool: string;
  host: string;
}

export const META_DIR = '.hardsnap';
/** below a part's META_DIR: one manifest per generation */
const MANIFESTS_DIR = 'manifests';
export const LAST = 'last';
/** a plain file beside `last` naming the same generation (src/spool/last.ts) */
export const LATEST = 'LATEST';

/**
 * The mode of every directory hardsnap creates above the generations: the spool itself
 * (`hardsnap init --spool`), `<spool>/rsync`,
 * `<host>`, the directories of a part's name, the part directory, and the `.hardsnap`
 * directories with everything in them. Owner only: a generation is a copy of a tree whose
 * parents may have kept other users out (`/var/backups/private` 0700), and the spool must not
 * let them in (SPEC.md "The spool never widens access"; docs/FORMAT.md). A directory that
 * already exists is never changed silently: `hardsnap check --fix-permissions` does it.
 */
export const SPOOL_DIR_MODE = 0o700;

/** mkdir -p with SPOOL_DIR_MODE for each directory it creates; existing ones are left as they are. */
export function ensureSpoolDir(dir: string): void {
  const first = fs.mkdirSync(dir, { recursive: true, mode: SPOOL_DIR_MODE });
  // what was made here inherited any default ACL above it: none, so that nothing below does
  if (first !== undefined) {
    for (let d = path.resolve(dir); ; d = path.dirname(d)) {
      const rc = resetMadeDir(d);
      if (rc < 0) throw new SysError(rc, 'setmeta', d);
      if (d === path.resolve(first) || d === path.dirname(d)) break;
    }
  }
}

export function hostDir(spool: string, host: string): string {
  return path.join(path.resolve(spool), 'rsync', host);
}
export function hostMetaDir(spool: string, host: string): string {
  return path.join(hostDir(spool, host), META_DIR);
}
/**
 * Refuses (exit 2) a symlink on the way from the spool root to a host's or part's directory
 * (rsync/, the host directory, each component of a part's name) or as their .hardsnap/ (and a
 * part's manifests/): a backup writes through them, and behind a symlink may be a mount point
 * whose file system is not mounted, which the run would fill as it would fill an unmounted
 * spool. Bind mounts are the way to put a host elsewhere. Only components that exist are
 * looked at (what a run makes is made as directories).
 */
export function refuseSpoolSymlinks(spool: string, host: string, parts: readonly string[]): void {
  const steps = ['rsync', host];
  const check = (rel: string[]) => {
    const p = path.join(spool, ...rel);
    const st = fs.lstatSync(p, { throwIfNoEntry: false });
    if (st?.isSymbolicLink()) {
      throw new HardsnapError('ESPOOLSYMLINK', `${p} is a symlink (to ${fs.readlinkSync(p)}): hardsnap does not write through symlinks inside the spool`, {
        exit: 2,
        path: p,
        hint: 'a file system behind it that is not mounted would be filled; put a real directory there (a bind mount to put a host elsewhere)',
      });
    }
  };
  for (let i = 1; i <= steps.length; i++) check(steps.slice(0, i));
  check([...steps, META_DIR]); // the host's lock and run log
  for (const part of parts) {
    if (part.includes('\\')) continue; // made by its bytes (ensurePartDir), never through a symlink
    const comps = part.split('/');
    for (let i = 1; i <= comps.length; i++) check([...steps, ...comps.slice(0, i)]);
    check([...steps, ...comps, META_DIR]); // the part's manifests, trash and leases
    check([...steps, ...comps, META_DIR, MANIFESTS_DIR]);
    // (a generation or `.partial` that is a symlink: refused from the run's one reading of the
    // part, src/backup/part-state.ts)
  }
}

/**
 * A part's directory. A part name is in the escaped form (src/spool/part-name.ts): a name with
 * a backslash has bytes that are not UTF-8, and its directory is reached by those bytes, through
 * an alias (src/fs/byte-path.ts; a part that does not exist yet: an alias where every lookup
 * fails with ENOENT, until ensurePartDir makes it).
 */
export function partDir(spool: string, host: string, part: string): string {
  if (!part.includes('\\')) return path.join(hostDir(spool, host), ...part.split('/'));
  return pathOfBytes(Buffer.concat([pathBytes(hostDir(spool, host)), Buffer.from('/'), parseDisplayPath(part)]));
}

/**
 * The part's directory for a run that writes into it: for a name that is not UTF-8 it is made
 * here, by its bytes, below the host directory (which the run's lock already made), with
 * SPOOL_DIR_MODE.
 * Other names are made by the run as before.
 */
export function ensurePartDir(spool: string, host: string, part: string): string {
  if (!part.includes('\\')) return partDir(spool, host, part);
  return ensureDirBytes(pathBytes(hostDir(spool, host)), parseDisplayPath(part), SPOOL_DIR_MODE);
}
export function partMetaDir(partDirPath: string): string {
  return path.join(partDirPath, META_DIR);
}
export function manifestDir(partDirPath: string): string {
  return path.join(partDirPath, META_DIR, MANIFESTS_DIR);
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

/**
 * The generations of a part, oldest first; `.partial` ones marked incomplete. Directories only:
 * a file named like a generation is not one (it was listed, resumed into and renamed every
 * night), nor is a symlink (hardsnap never makes one: it was listed, and counted by status and
 * by retention, so that a real generation was pruned in its place). Backups refuse such a
 * symlink with a message (generationSymlinkError, from their one reading: src/backup/part-state.ts).
 */
export function listGenerations(spool: string, host: string, part: string): Generation[] {
  return readGenerations(partDir(spool, host, part), part).generations;
}

/** One listing of a part's directory (`dir`): its generations, symlinks named like them, and every name there. */
export function readGenerations(dir: string, part: string): { generations: Generation[]; symlinks: Generation[]; names: Set<string> } {
  const generations: Generation[] = [];
  const symlinks: Generation[] = [];
  const names = new Set<string>();
  for (const { name: n, isDir, isSymlink } of readDirTypesIfExists(dir)) {
    names.add(n);
    if (!isDir && !isSymlink) continue;
    const partial = n.endsWith(PARTIAL_SUFFIX);
    const name = partial ? n.slice(0, -PARTIAL_SUFFIX.length) : n;
    const time = parseGenerationName(name);
    if (!time) continue;
    (isSymlink ? symlinks : generations).push({ part, name, path: path.join(dir, n), time, complete: !partial });
  }
  const order = (a: Generation, b: Generation) => compareGenerations(a, b) || Number(a.complete) - Number(b.complete);
  return { generations: generations.sort(order), symlinks: symlinks.sort(order), names };
}

/** The refusal of a symlink named like a generation (a run would resume into, or link from, whatever it points to). */
export function generationSymlinkError(g: Generation): HardsnapError {
  return new HardsnapError('EGENSYMLINK', `${g.path} is a symlink (to ${fs.readlinkSync(g.path)}): hardsnap does not write through symlinks inside the spool`, {
    exit: 2,
    path: g.path,
    hint: 'hardsnap never makes one: remove the symlink (rm, not rm -r) once you know who made it',
  });
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
  // names read as bytes: a part whose name is not UTF-8 is listed in its escaped form
  const root = Buffer.from(hostDir(spool, host));
  const out: string[] = [];
  const walk = (dir: Buffer, rel: string[], depth: number) => {
    let ents: fs.Dirent<Buffer>[];
    try {
      ents = fs.readdirSync(dir, { withFileTypes: true, encoding: 'buffer' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const e of ents) {
      const name = displayPath(e.name);
      if (!e.isDirectory() || name.startsWith('.') || name === LAST) continue;
      if (parseGenerationName(name.replace(/\.partial$/, ''))) continue;
      const sub = Buffer.concat([dir, Buffer.from('/'), e.name]);
      if (fs.existsSync(Buffer.concat([sub, Buffer.from('/' + META_DIR)]))) out.push([...rel, name].join('/'));
      else if (depth < 16) walk(sub, [...rel, name], depth + 1);
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

/**
 * Checks that the host directory of a spool exists and can be read: a usage error when it does
 * not exist, a clear failure (exit 2) when this user may not enter the spool (it is 0700).
 */
export function requireHostDir(spool: string, host: string): void {
  const dir = hostDir(spool, host);
  let found: boolean;
  try {
    found = fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory() ?? false;
    if (found) fs.accessSync(dir, fs.constants.R_OK | fs.constants.X_OK);
  } catch (err) {
    const code = errnoCode(err) ?? 'EIO';
    throw new HardsnapError(code, `cannot read the backups of host '${host}' in ${spool}: ${code}`, {
      path: dir,
      cause: err,
      exit: 2,
      hint:
        code === 'EACCES' ? `the spool is closed to other users (mode ${SPOOL_DIR_MODE.toString(8).padStart(4, '0')}): run as its owner or root` : undefined,
    });
  }
  if (!found) throw new UsageError(`no backups of host '${host}' in the spool ${spool}`, { hint: 'check --spool and --host' });
}
