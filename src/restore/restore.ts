/**
 * `hardsnap restore`: brings a part (or one path of it, or every part of a host) back from a
 * complete generation into a target directory. It copies, never links (a restored file shares
 * no inode with the spool), never writes outside the target (see target.ts), and never replaces
 * what is already there unless told to (--force). Per-entry failures are data (problems, exit
 * 23); a failure that makes the whole restore impossible throws.
 */
import { fs } from '../fs/disk.js';
import path from 'node:path';
import { HardsnapError, UsageError, errnoCode } from '../core/errors.js';
import { formatBytes } from '../core/units.js';
import { displayPath, joinRel, parseDisplayPath } from '../paths/escape.js';
import { ST, errnoName, sys, isRoot } from '../fs/native.js';
import { typeOfMode } from '../fs/entry.js';
import { manifestPath } from '../spool/layout.js';
import { holdsSpoolMarker } from '../spool/marker.js';
import { testPause } from '../fs/test-pause.js';
import { pathBytes } from '../paths/aliases.js';
import { isInsideBytes, realBytes } from '../fs/byte-path.js';
import { fsLocation, locationInside, readMountsLatin1 } from '../fs/mountinfo.js';
import type { Generation } from '../spool/names.js';
import type { ManifestEntry } from '../manifest/format.js';
import { EntryError, SafeTarget, SpoolFence, asideSuffix, openTargetDir, lookAtTarget, type Replacement } from './target.js';
import { EntrySource, badName } from './source.js';
import { TreeRestorer, type DirFrame } from './walk.js';
import type { PartRestoreResult, RestoreEvents, RestoreProblem } from './types.js';

const O_DIR = sys.O_RDONLY | sys.O_DIRECTORY | sys.O_NOFOLLOW;

export interface RestorePartChoice {
  part: string;
  /** undefined: the part has no generation to give (--all); reported as a problem */
  generation: Generation | undefined;
  substituted: boolean;
  /** throws when the generation was pruned while being read (src/spool/reading.ts presenceCheck) */
  assertPresent?: () => void;
}

export interface RestoreRequest {
  /** the part directory of each part (<spool>/rsync/<host>/<part>) */
  partDirOf(part: string): string;
  parts: RestorePartChoice[];
  /** --all: each part into DIR/<part>; otherwise the one part into DIR */
  all: boolean;
  to: string;
  /** the spool: a target inside it is refused (a restore must never write into the spool) */
  spool: string;
  /** the host whose parts are restored (a manifest of another host's part is not taken for theirs) */
  host?: string;
  /** --path, in SPEC's escaped form */
  sub?: string;
  force: boolean;
  dryRun: boolean;
}

export interface RestoreResult {
  to: string;
  dryRun: boolean;
  parts: PartRestoreResult[];
  problems: RestoreProblem[];
}

/** `--path SUB` as name components (escaped form, '/'-separated); throws a UsageError. */
export function parseSubPath(text: string): Buffer[] {
  let bytes: Buffer;
  try {
    bytes = parseDisplayPath(text);
  } catch (err) {
    throw new UsageError(`--path: ${(err as Error).message}`, { code: 'EPATH' });
  }
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= bytes.length; i++) {
    if (i < bytes.length && bytes[i] !== 0x2f) continue;
    const c = bytes.subarray(start, i);
    start = i + 1;
    if (c.length === 0) continue; // leading, trailing or doubled '/'
    if (badName(c)) {
      throw new UsageError(`--path ${JSON.stringify(text)}: '.', '..' and NUL bytes are not allowed; name the path relative to the part's root`, {
        code: 'EPATH',
      });
    }
    parts.push(Buffer.from(c));
  }
  if (!parts.length)
    throw new UsageError(`--path ${JSON.stringify(text)} names the part's root; leave --path out to restore the whole part`, { code: 'EPATH' });
  return parts;
}

export function restore(req: RestoreRequest, ev: RestoreEvents): RestoreResult {
  const sub = req.sub !== undefined ? parseSubPath(req.sub) : null;
  const result: RestoreResult = { to: path.resolve(req.to), dryRun: req.dryRun, parts: [], problems: [] };
  const problem = (p: RestoreProblem) => {
    result.problems.push(p);
    ev.onProblem?.(p);
  };
  refuseInsideSpool(req.to, req.spool);
  testPause('restore-target');
  let rootFd = -1;
  let created = false;
  if (!req.dryRun) {
    const t = openTargetDir(req.to, true);
    rootFd = t.fd;
    created = t.created;
    // the path was checked before it was opened: a name swapped for a symlink in between would
    // lead into the spool; the directory opened is checked again, by its descriptor
    const inside = spoolAbove(rootFd, req.spool);
    if (inside) {
      sys.close(rootFd);
      throw new UsageError(`the target ${req.to} lies inside ${inside}: refusing to restore there`, {
        code: 'ETARGET',
        hint: 'restore into a directory outside the spool (was a name on its path replaced while the restore started?)',
      });
    }
    if (t.existing > 0 && !req.force) {
      sys.close(rootFd);
      throw notEmpty(req.to, t.existing);
    }
  } else {
    // opened as the real run opens it, never through a symlink at its last component; to look
    // at what is in the way (SafeTarget in a dry run only looks)
    const t = lookAtTarget(req.to);
    if (t) {
      rootFd = t.fd;
      if (t.existing > 0 && !req.force) {
        sys.close(rootFd);
        throw notEmpty(req.to, t.existing);
      }
    }
  }
  try {
    restoreInto(req, rootFd, sub, result, problem, ev);
    if (req.dryRun) for (const p of targetRefusals(req.to, result, (m) => (ev.onWarn ?? ev.onNote)?.(m))) problem(p);
  } catch (err) {
    // a usage error (bad --path) writes nothing: not even the DIR it created
    if (created && err instanceof HardsnapError && err.exit === 1) {
      try {
        fs.rmdirSync(pathBytes(req.to));
      } catch {
        // not empty after all: leave it
      }
    }
    throw err;
  }
  return result;
}

/**
 * What a dry run can tell of the target without writing: a target the real run could not
 * create (exit 2, as it would say), one on a read-only file system or that this user may not
 * write (problems: exit 23, as the run would end). Less free space than the files' bytes is
 * only a warning: sparse files, hard links, what --force replaces and root's reserved blocks
 * make the bytes a bound, not a forecast.
 */
function targetRefusals(to: string, result: RestoreResult, warn: (m: string) => void): RestoreProblem[] {
  const target = realBytes(to);
  const dir = nearestDirectory(target);
  const part = result.parts[0]?.part ?? '';
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (err) {
    const code = errnoCode(err) ?? 'EACCES';
    if (!dir.equals(target)) throw new HardsnapError('ETARGET', `cannot create the target ${to}: ${code}`, { path: to, exit: 2 });
    return [
      { part, path: Buffer.alloc(0), code, message: `${displayPath(dir)} cannot be written (${code}): nothing could be restored there`, kind: 'missing' },
    ];
  }
  const need = result.parts.reduce((n, p) => n + p.stats.bytes, 0);
  const st = fs.statfsSync(dir);
  const free = (isRoot() ? st.bfree : st.bavail) * st.bsize;
  if (need > free) warn(`the files to restore hold ${formatBytes(need)}, the target's file system has ${formatBytes(free)} free: the restore may not fit`);
  return [];
}

function notEmpty(to: string, n: number): UsageError {
  return new UsageError(`the target ${to} is not empty (${n} entries): refusing to restore into it`, {
    code: 'ENOTEMPTY',
    hint: 'use an empty or new directory, or --force to replace only the restored paths',
  });
}

/**
 * The target must not be the spool or lie inside it: --force there could replace backups.
 * Compared as bytes (the nearest existing ancestor resolved, plus the rest): two names that
 * differ only in bytes that are not UTF-8 are two names.
 */
function refuseInsideSpool(to: string, spool: string): void {
  const refuse = (what: string) =>
    new UsageError(`the target ${to} lies inside ${what}: refusing to restore there`, {
      code: 'ETARGET',
      hint: 'restore into a directory outside the spool',
    });
  const target = realBytes(to);
  if (isInsideBytes(target, realBytes(spool))) throw refuse(`the spool ${spool}`);
  // the same spool reached through another mount (a bind mount of it or of a subtree of it, the
  // NFS export mounted twice, or a subtree of it): where both are in their file system
  const mounts = readMountsLatin1();
  const spoolAt = mounts && fsLocation(mounts, realBytes(spool).toString('latin1'));
  const targetAt = mounts && fsLocation(mounts, target.toString('latin1'));
  if (spoolAt && targetAt && locationInside(targetAt, spoolAt))
    throw refuse(`the spool ${spool} (reached through the mount of ${JSON.stringify(targetAt.path)})`);
  // and by the spool directory's device and inode, any spool by its marker: from the nearest
  // existing ancestor up (a name too long, a directory not searchable: not there to look into,
  // the restore says why)
  const dir = nearestDirectory(target);
  const fd = sys.openat(sys.AT_FDCWD, dir, sys.O_PATH | sys.O_DIRECTORY, 0);
  if (fd < 0) return;
  try {
    const inside = spoolAbove(fd, spool, dir);
    if (inside) throw refuse(inside);
  } finally {
    sys.close(fd);
  }
}

/** `p`, or its nearest ancestor that is a directory. */
function nearestDirectory(p: Buffer): Buffer {
  let dir = p;
  while (dir.length > 1 && !isDirectory(dir)) dir = parentBytes(dir);
  return dir;
}

function isDirectory(p: Buffer): boolean {
  try {
    return fs.lstatSync(p, { throwIfNoEntry: false })?.isDirectory() ?? false;
  } catch {
    return false;
  }
}

/**
 * What spool the directory open at `fd` is, or lies below, walking up from the descriptor by
 * '..' (no path is resolved again, so none can be swapped under the check): the spool's root by
 * device and inode (reached through another mount), or any directory holding a spool marker;
 * null when neither is above it. `at`: the directory's resolved path, to name where it was found.
 */
function spoolAbove(fd: number, spool: string, at?: Buffer): string | null {
  const where = (depth: number) => {
    if (!at) return '';
    let d = at;
    for (let i = 0; i < depth; i++) d = parentBytes(d);
    return displayPath(d);
  };
  const root = fs.statSync(pathBytes(spool), { throwIfNoEntry: false });
  const st = new Float64Array(sys.STAT_FIELDS);
  const up = new Float64Array(sys.STAT_FIELDS);
  let cur = sys.openat(fd, '.', sys.O_PATH | sys.O_DIRECTORY, 0);
  if (cur < 0 || sys.fstat(cur, st) !== 0) {
    if (cur >= 0) sys.close(cur);
    return null;
  }
  try {
    for (let depth = 0; depth < 4096; depth++) {
      if (root && st[ST.DEV] === root.dev && st[ST.INO] === root.ino) return `the spool ${spool}${at ? ` (mounted a second time at ${where(depth)})` : ''}`;
      if (holdsSpoolMarker(cur)) return `a hardsnap spool${at ? ` (${where(depth)})` : ''}`;
      const parent = sys.openat(cur, '..', sys.O_PATH | sys.O_DIRECTORY, 0);
      if (parent < 0 || sys.fstat(parent, up) !== 0) {
        if (parent >= 0) sys.close(parent);
        return null;
      }
      sys.close(cur);
      cur = parent;
      if (up[ST.DEV] === st[ST.DEV] && up[ST.INO] === st[ST.INO]) return null; // the root directory
      st.set(up);
    }
    return null;
  } finally {
    sys.close(cur);
  }
}

/** The parent of an absolute path given as bytes ("/" for "/" and "/x"). */
function parentBytes(p: Buffer): Buffer {
  const i = p.lastIndexOf(0x2f);
  return i <= 0 ? Buffer.from('/') : p.subarray(0, i);
}

function restoreInto(
  req: RestoreRequest,
  rootFd: number,
  sub: Buffer[] | null,
  result: RestoreResult,
  problem: (p: RestoreProblem) => void,
  ev: RestoreEvents,
): void {
  const note = (m: string) => ev.onNote?.(m);
  const oldMask = process.umask(0);
  try {
    // a dry run looks at the target too, to say what would be moved aside or replaced
    const target = new SafeTarget(req.force, note, (m) => (ev.onWarn ?? note)(m), asideSuffix(new Date()), req.dryRun, new SpoolFence(req.spool, req.to));
    for (const c of req.parts) {
      if (!c.generation) {
        problem({
          part: c.part,
          path: Buffer.alloc(0),
          code: 'ENOGEN',
          message: `part '${c.part}' has no complete generation at or before the chosen one: not restored`,
          kind: 'missing',
        });
        continue;
      }
      let baseFd = rootFd;
      const to = req.all ? path.join(result.to, ...c.part.split('/')) : result.to;
      if (req.all) {
        try {
          baseFd = partTarget(target, rootFd, c.part, (r) => ev.onReplace?.(c.part, Buffer.alloc(0), r));
        } catch (err) {
          if (!(err instanceof EntryError)) throw err;
          problem({ part: c.part, path: Buffer.alloc(0), code: err.code, message: `${to}: ${err.message}`, kind: 'missing' });
          continue;
        }
      }
      try {
        const r = restorePart(
          {
            part: c.part,
            host: req.host,
            generation: c.generation,
            substituted: c.substituted,
            manifestFile: manifestPath(req.partDirOf(c.part), c.generation.name),
            baseFd,
            to,
            sub,
            target,
            setRootMeta: sub === null,
            assertPresent: c.assertPresent,
          },
          { ...ev, onProblem: undefined, onNote: note },
        );
        result.parts.push(r);
        for (const p of r.problems) problem(p);
      } catch (err) {
        if (!req.all || !(err instanceof HardsnapError) || err.exit === 1) throw err;
        problem({ part: c.part, path: Buffer.alloc(0), code: err.code, message: err.message, kind: 'missing' });
      } finally {
        if (baseFd !== rootFd && baseFd >= 0) sys.close(baseFd);
      }
    }
  } finally {
    process.umask(oldMask);
    if (rootFd >= 0) sys.close(rootFd);
  }
}

/**
 * DIR/<part> (a part name may hold '/', and is in the escaped form: a component that is not
 * UTF-8 is made with its real bytes): created beneath DIR, never through a link.
 */
function partTarget(target: SafeTarget, rootFd: number, part: string, onReplace: (r: Replacement) => void): number {
  let fd = rootFd;
  for (const c of part.split('/')) {
    const next = target.dir(fd, parseDisplayPath(c), c);
    if (next.replaced) onReplace(next.replaced);
    if (fd !== rootFd && fd >= 0) sys.close(fd);
    fd = next.fd;
  }
  return fd;
}

interface PartJob {
  part: string;
  host?: string;
  generation: Generation;
  substituted: boolean;
  manifestFile: string;
  baseFd: number;
  to: string;
  sub: Buffer[] | null;
  target: SafeTarget | null;
  setRootMeta: boolean;
  assertPresent?: () => void;
}

function restorePart(job: PartJob, ev: RestoreEvents): PartRestoreResult {
  const note = (m: string) => ev.onNote?.(`${job.part}: ${m}`);
  const source = EntrySource.open(job.manifestFile, { generation: job.generation.name, part: job.part, host: job.host }, note);
  if (source.missingReason)
    note(
      `the manifest of ${job.generation.name} is ${source.missingReason}: restoring from the generation's own tree (hard links found by inode, no content hashes to check)`,
    );
  const genFd = sys.openat(sys.AT_FDCWD, job.generation.path, O_DIR | sys.O_NOATIME, 0);
  if (genFd < 0) {
    source.close();
    job.assertPresent?.();
    throw new HardsnapError(errnoName(genFd), `cannot open the generation ${job.generation.path}: ${errnoName(genFd)}`, { path: job.generation.path, exit: 2 });
  }
  const asRoot = isRoot();
  const walker = new TreeRestorer({ part: job.part, source, target: job.target, baseFd: job.baseFd, asRoot, events: ev, assertPresent: job.assertPresent });
  const opened: DirFrame[] = [];
  try {
    const root: DirFrame = {
      rel: Buffer.alloc(0),
      src: genFd,
      dst: job.baseFd,
      meta: source.root() ?? rootFromStat(genFd),
      setMeta: job.setRootMeta,
      existed: true,
      owned: false,
      subdirs: [],
      next: 0,
    };
    if (!job.sub) {
      source.validate(root.rel, true);
      walker.tree(root);
    } else {
      // find SUB in the generation, before anything is written
      const chain: ManifestEntry[] = [];
      let srcFd = genFd;
      const srcFds: number[] = [];
      let rel: Buffer = Buffer.alloc(0);
      try {
        for (let i = 0; i < job.sub.length; i++) {
          const name = job.sub[i]!;
          const e = source.dir(rel, srcFd).find((x) => x.name.equals(name));
          const shown = displayPath(joinRel(rel, name));
          if (!e)
            throw new UsageError(`--path: ${JSON.stringify(shown)} is not in part '${job.part}' in generation ${job.generation.name}`, {
              code: 'EPATH',
              hint: `paths are relative to the part's root, in the escaped form 'hardsnap list' and 'diff' print`,
            });
          if (i < job.sub.length - 1 && e.type !== 'dir')
            throw new UsageError(`--path: ${JSON.stringify(shown)} is a ${e.type} in generation ${job.generation.name}, not a directory`, { code: 'EPATH' });
          chain.push(e);
          rel = joinRel(rel, name);
          if (i < job.sub.length - 1) {
            srcFd = sys.openat(srcFd, name, O_DIR | sys.O_NOATIME, 0);
            if (srcFd < 0)
              throw new HardsnapError(errnoName(srcFd), `cannot open ${JSON.stringify(shown)} in the generation: ${errnoName(srcFd)}`, { exit: 2 });
            srcFds.push(srcFd);
          }
        }
        const leaf = chain[chain.length - 1]!;
        source.validate(rel, leaf.type === 'dir');
        // the parents of SUB: made with the generation's metadata (set after the subtree) where
        // they are missing; one already in the target is only passed through, never changed
        let parent = root;
        for (let i = 0; i < chain.length - 1; i++) {
          const f = walker.enter(parent, chain[i]!);
          if (!f) return finish();
          f.setMeta = !f.existed;
          // enter() opened the source side again; keep the one already open
          if (f.src >= 0) sys.close(f.src);
          f.src = srcFds[i]!;
          f.owned = false;
          opened.push(f);
          parent = f;
        }
        if (leaf.type === 'dir') {
          const f = walker.enter(parent, leaf);
          if (f) walker.tree(f);
        } else {
          walker.leaf(parent, leaf);
        }
        for (let i = opened.length - 1; i >= 0; i--) {
          walker.leave(opened[i]!);
          if (opened[i]!.dst >= 0) sys.close(opened[i]!.dst);
        }
        opened.length = 0;
      } finally {
        for (const f of opened) if (f.dst >= 0) sys.close(f.dst);
        for (const fd of srcFds) sys.close(fd);
      }
    }
    return finish();
  } finally {
    walker.release();
    sys.close(genFd);
    source.close();
  }

  function finish(): PartRestoreResult {
    walker.finish();
    // restored from the generation's own tree where the manifest could not say: not exact
    // (attributes the spool refused, devices not created, contents unchecked): exit 23
    if (!job.target) {
      // a dry run writes nothing and reports nothing of the kind
    } else if (source.missingReason) {
      walker.problem(
        Buffer.alloc(0),
        'EMANIFEST',
        `the manifest of ${job.generation.name} is ${source.missingReason}: restored from the generation's own tree, without what only the manifest holds (attributes the spool refused, devices not created) and without checking contents against their hashes`,
        'inexact',
      );
    } else if (source.fallbackDirs) {
      walker.problem(
        Buffer.alloc(0),
        'EMANIFEST',
        `the manifest of ${job.generation.name} is damaged in ${source.fallbackDirs} ${source.fallbackDirs === 1 ? 'directory' : 'directories'}: those were restored from the generation's own tree (no attributes the spool refused, contents unchecked)`,
        'inexact',
      );
    }
    return {
      part: job.part,
      generation: job.generation.name,
      generationPath: job.generation.path,
      to: job.to,
      substituted: job.substituted,
      source: source.reader && source.fallbackDirs === 0 ? 'manifest' : 'generation',
      stats: walker.stats,
      problems: walker.problems,
    };
  }
}

function rootFromStat(fd: number): ManifestEntry {
  const st = new Float64Array(sys.STAT_FIELDS);
  const rc = sys.fstat(fd, st);
  if (rc < 0) throw new HardsnapError(errnoName(rc), `cannot stat the generation: ${errnoName(rc)}`, { exit: 2 });
  return {
    name: Buffer.alloc(0),
    type: typeOfMode(st[ST.MODE]!) ?? 'dir',
    mode: st[ST.MODE]! & 0o7777,
    uid: st[ST.UID]!,
    gid: st[ST.GID]!,
    size: 0,
    mtimeSec: st[ST.MTIME]!,
    mtimeNsec: st[ST.MTIME_NS]!,
    rdev: 0,
    target: null,
    flags: 0,
    linkGroup: 0,
    ino: st[ST.INO]!,
    hash: null,
    ctimeSec: 0,
    ctimeNsec: 0,
    xattrs: null,
  };
}
