/**
 * One part of a backup run: choose the previous generation, prepare (or resume) the partial
 * directory, build the tree with its manifest. Publishing is the caller's, once every part is
 * built, so that all parts of a run share one generation name.
 */
import { fs } from '../fs/disk.js';
import { HardsnapError } from '../core/errors.js';
import path from 'node:path';
import { TreeBuilder } from '../apply/build-tree.js';
import type { ExcludeMatcher } from '../exclude/patterns.js';
import { prevFromManifest, prevFromWalk, type PrevTree } from '../apply/prev-tree.js';
import { deleteFromTrash, describeLeftovers, moveToTrash } from '../retention/trash.js';
import { ST, SysError, check, fsIdentity, isRoot, sys } from '../fs/native.js';
import { bypassesPermissions } from '../fs/process.js';
import { typeOfMode } from '../fs/entry.js';
import { ManifestReader } from '../manifest/reader.js';
import { inodeNumbers } from '../inspect/manifests.js';
import { ManifestWriter } from '../manifest/writer.js';
import { PARTIAL_SUFFIX } from '../spool/names.js';
import { ensurePartDir, ensureSpoolDir, manifestDir, manifestPath, partDir, partMetaDir } from '../spool/layout.js';
import type { PartState } from './part-state.js';
import { resetMadeDir } from '../fs/dir-mode.js';
import { probeClone } from '../fs/clone.js';
import { isRemoteFsType } from '../fs/thread-pool.js';
import { TOOL } from '../core/version.js';
import { errnoCode } from '../core/errors.js';
import type { DedupIndex } from '../apply/dedup-index.js';
import { buildDedupIndex } from './dedup-sources.js';
import { rootIdentity, sourceCounts, type SourceIdentity } from './source-identity.js';
import { FLAG } from '../manifest/format.js';
import { MountWatch } from '../fs/mountinfo.js';
import { monoMicros } from '../watch/journal-file.js';
import { DEFAULT_JOURNAL } from '../watch/journal-use.js';
import { chooseScan, finishReport, scanNote } from '../watch/scan-choice.js';
import type { BackupEvents, BackupOptions, PartResult, PartSpec } from './types.js';
import { removeName } from '../fs/remove-tree.js';

export interface BuiltPart extends PartResult {
  /** the source root's file system and the walk's entry count (in the manifest's footer too) */
  sourceIdentity: SourceIdentity;
  partDir: string;
  partialPath: string;
  manifestTmp: string;
  /** what a killed run left of `last` and `LATEST` (PartState) */
  lastLeftovers: string[];
}

const O_DIR = sys.O_RDONLY | sys.O_DIRECTORY;

/** Opens the previous generation's manifest, or falls back to walking it, and says why. */
function openPrev(pdir: string, prevName: string, ev: BackupEvents, part: string, host: string): { tree: PrevTree; reader: ManifestReader | null } {
  const file = manifestPath(pdir, prevName);
  try {
    const reader = ManifestReader.open(file, { generation: prevName, part, host });
    return { tree: prevFromManifest(reader), reader };
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'is missing' : `is unreadable (${(err as Error).message})`;
    // a warning (not a note): the previous generation's own tree is weaker evidence than its manifest
    (ev.onWarn ?? ev.onNote)(`part '${part}': the manifest of ${prevName} ${why}; comparing with the generation itself instead`);
    return { tree: prevFromWalk(), reader: null };
  }
}

/**
 * Makes `<gen>.partial`, or takes over the newest partial a killed run left (resume). The
 * partials are the run's reading of the part (part-state.ts): generation names only, so a
 * `<anything>.partial` that is not one is not ours and stays.
 */
function preparePartial(pdir: string, state: PartState, generation: string, part: string, ev: BackupEvents): { partialPath: string; resumed: boolean } {
  const target = path.join(pdir, generation + PARTIAL_SUFFIX);
  // another user's partial (a run as root interrupted in a spool a user backs up): never
  // resumed, moved or deleted by this user's runs (it could not make it its own: EACCES every
  // night); left where it is, said each run
  const euid = process.geteuid?.() ?? 0;
  const partials = state.generations
    .filter((g) => !g.complete)
    .map((g) => g.path)
    .filter((p) => {
      const owner = euid === 0 ? 0 : (fs.lstatSync(p, { throwIfNoEntry: false })?.uid ?? euid);
      if (owner === euid) return true;
      (ev.onWarn ?? ev.onNote)(
        `part '${part}': the interrupted generation ${path.basename(p)} is owned by uid ${owner} (a run as another user left it): not resumed, left where it is; remove it as that user (or run once as root, which resumes it)`,
      );
      return false;
    });
  const newest = partials.pop();
  for (const old of partials) {
    ev.onNote(`part '${part}': removing an older interrupted generation ${path.basename(old)}`);
    // through the trash: what cannot be deleted (chattr +i, a mount) stays there, reported, and never fails the run
    let name: string;
    try {
      name = moveToTrash(pdir, path.basename(old));
    } catch (err) {
      (ev.onWarn ?? ev.onNote)(
        `part '${part}': cannot move the older interrupted generation ${old} to the trash (${errnoCode(err) ?? (err as Error).message}): left where it is, the next backup tries again`,
      );
      continue;
    }
    for (const line of describeLeftovers(part, deleteFromTrash(pdir, [name]).leftovers)) (ev.onWarn ?? ev.onNote)(line);
  }
  if (newest) {
    if (newest !== target) {
      fs.renameSync(newest, target);
      // a run killed between publishing its manifest and renaming its generation left the
      // manifest of a name that now never becomes a generation (verify called it deleted by hand)
      removeName(manifestPath(pdir, path.basename(newest).slice(0, -PARTIAL_SUFFIX.length)));
    }
    // a killed run may have given the root its final (read-only) mode and attributes already
    madeDir(target);
    ev.onNote(`part '${part}': resuming the interrupted generation ${path.basename(newest)} as ${generation}`);
    return { partialPath: target, resumed: true };
  }
  fs.mkdirSync(target, { mode: 0o700 });
  madeDir(target);
  return { partialPath: target, resumed: false };
}

/**
 * The partial generation's root: 0700, no attributes, whatever the part directory's default
 * ACL would have it inherit (and pass on to everything the run makes below it).
 */
function madeDir(dir: string): void {
  const rc = resetMadeDir(dir);
  if (rc < 0) throw new SysError(rc, 'setmeta', dir);
}

export async function buildPart(
  o: BackupOptions,
  spec: PartSpec,
  state: PartState,
  generation: string,
  excludes: ExcludeMatcher,
  skipDirs: Map<string, string>,
  ev: BackupEvents,
): Promise<BuiltPart> {
  // the scan begins here: a change after this instant may be missed by this run, never by the next
  const startMono = monoMicros();
  const startWall = new Date().toISOString();
  // a part whose name is not UTF-8 has its directory made by its bytes (layout.ts)
  const pdir = o.dryRun ? partDir(o.spool, o.host, spec.name) : ensurePartDir(o.spool, o.host, spec.name);
  const prevGen = state.previous;
  const dry = o.dryRun;
  let partialPath = path.join(pdir, generation + PARTIAL_SUFFIX);
  let resumed = false;
  // whether the spool clones (src/apply/clone.ts): decided once for the part, never in a dry run
  let clones = false;
  if (!dry) {
    // (a manifest a killed run was writing was removed with the trash: retention/trash.ts)
    ensureSpoolDir(manifestDir(pdir));
    ({ partialPath, resumed } = preparePartial(pdir, state, generation, spec.name, ev));
    clones = probeClone(partMetaDir(pdir)).clones;
  }
  const manifestTmp = manifestPath(pdir, generation) + '.tmp';
  const fds: number[] = [];
  let reader: ManifestReader | null = null;
  let writer: ManifestWriter | null = null;
  let dedup: DedupIndex | null = null;
  // a mount below the source is read as it is now, and its entries recorded as not the source's
  // own (src/apply/mount-points.ts); one made or removed while the source is read is told to the
  // next run, which then scans everything
  const mountWatch = new MountWatch(spec.source);
  try {
    const srcRootFd = check(sys.openat(sys.AT_FDCWD, spec.source, O_DIR | sys.O_NOATIME, 0), 'open', spec.source);
    fds.push(srcRootFd);
    const st = new Float64Array(sys.STAT_FIELDS);
    check(sys.fstat(srcRootFd, st), 'fstat', spec.source);
    // the source root's file system, for the manifest (the next run compares: source-guard.ts)
    const sourceId = rootIdentity(srcRootFd);
    const dstRootFd = dry ? -1 : check(sys.openat(sys.AT_FDCWD, partialPath, O_DIR | sys.O_NOFOLLOW, 0), 'open', partialPath);
    if (dstRootFd >= 0) fds.push(dstRootFd);
    let prevRootFd = -1;
    let prev: PrevTree | null = null;
    if (prevGen) {
      prevRootFd = sys.openat(sys.AT_FDCWD, prevGen.path, sys.O_PATH | sys.O_DIRECTORY | sys.O_NOFOLLOW, 0);
      if (prevRootFd < 0) throw new SysError(prevRootFd, 'open', prevGen.path);
      fds.push(prevRootFd);
      ev.onPhase?.('previous', spec.name);
      const opened = openPrev(pdir, prevGen.name, ev, spec.name, o.host);
      prev = opened.tree;
      reader = opened.reader;
    }
    // whether the previous generation's inodes are the ones its manifest recorded, or the spool
    // was copied to another disk since (cp -a, rsync -aH, a tape restore): a copy that did not
    // keep attributes (rsync without -AX) left its inodes without theirs
    const prevInodes = reader && prevGen ? inodeNumbers(reader, prevGen.path) : 'unknown';
    if (!dry) {
      ev.onPhase?.('index', spec.name);
      dedup = buildDedupIndex(
        {
          spool: o.spool,
          host: o.host,
          part: spec.name,
          scope: o.dedup ?? 'part',
          generations: o.dedupGenerations,
          complete: state.complete,
          prev: prevGen && reader ? { name: prevGen.name, rootFd: prevRootFd, reader, moved: prevInodes === 'moved' } : null,
          clones,
          xattrs: o.xattrs !== false,
        },
        ev,
      );
    }
    ev.onPhase?.('journal', spec.name);
    const scan = await chooseScan({
      partDir: pdir,
      source: spec.source,
      prev: prevGen ? { name: prevGen.name, reader } : null,
      now: o.now,
      patterns: [...o.exclude, ...(spec.exclude ?? [])],
      oneFileSystem: o.oneFileSystem,
      settings: o.journal ?? DEFAULT_JOURNAL,
      excludes,
      skipDirs,
      rootDev: st[ST.DEV]!,
      rootId: `${st[ST.DEV]!}:${st[ST.INO]!}`,
      mountPoints: mountWatch.unwatched,
      srcRootFd,
      startMono,
      startWall,
      excluded: dry ? 'a dry run does not use the journal' : o.checksum ? '--checksum reads every file' : null,
    });
    const xattrs = o.xattrs !== false;
    // attributes are read and written through /proc/self/fd/<dir>/<name> (descriptor-relative,
    // never following the entry): without /proc every entry would read as vanished
    if (xattrs && !dry && !fs.existsSync('/proc/self/fd')) {
      throw new HardsnapError('ENOPROC', 'extended attributes are read through /proc/self/fd, and /proc is not mounted here: nothing was written', {
        exit: 2,
        hint: 'mount /proc, or back up without attributes (--no-xattrs)',
      });
    }
    // the previous records tell an entry's attributes when its ctime did not move (format 3,
    // recorded with attributes on); else every entry's are read
    // a source root on another file system than the previous generation's (accepted with
    // --accept-source-change): its records describe other inodes, and stand for nothing
    const prevSource = reader?.footer.source;
    const sourceMoved = prevSource !== undefined && (prevSource.fsid !== sourceId.fsid || prevSource.fsType !== sourceId.fsType);
    const prevXattrsTrusted = xattrs && reader !== null && reader.version >= 3 && !reader.footer.xattrsSkipped && !sourceMoved && prevInodes !== 'moved';
    // the previous generation was made with --no-xattrs (its records say nothing of the
    // attributes its inodes carry: linked from a generation made with them), or the spool was
    // copied since (its inodes may have lost theirs: an attack moved a spool with rsync -aH, and
    // every later generation linked inodes without their ACLs, exit 0): each one's are read from
    // the inode before it is linked again (this run only: the next links this run's inodes)
    const prevXattrsUnrecorded = xattrs && reader !== null && reader.version >= 3 && (!!reader.footer.xattrsSkipped || prevInodes === 'moved');
    if (!dry) {
      removeName(manifestTmp);
      writer = ManifestWriter.create(manifestTmp, {
        host: o.host,
        part: spec.name,
        generation,
        created: o.now.toISOString(),
        tool: TOOL,
        scan: scan.record,
        owners: isRoot(),
      });
      // unchanged records are copied from the previous manifest with their attribute-set numbers
      if (reader && reader.version >= 3) writer.seedXattrSets(reader.xattrSets);
    }
    let rootX: Buffer | null = null;
    if (xattrs) {
      const r = sys.getxattrs(-1, '', srcRootFd);
      if (typeof r === 'number') throw new SysError(r, 'listxattr', spec.source);
      rootX = r.length ? r : null;
    }
    const builder = new TreeBuilder({
      part: spec.name,
      srcRootFd,
      rootMeta: {
        type: typeOfMode(st[ST.MODE]!) ?? 'dir',
        mode: st[ST.MODE]! & 0o7777,
        uid: st[ST.UID]!,
        gid: st[ST.GID]!,
        size: 0,
        mtimeSec: st[ST.MTIME]!,
        mtimeNsec: st[ST.MTIME_NS]!,
        rdev: 0,
        target: null,
        dev: st[ST.DEV]!,
        xattrs: rootX,
      },
      dstRootFd,
      prevRootFd,
      prev,
      prevGeneration: prevGen?.name ?? null,
      prevInodesCurrent: prevInodes === 'current',
      prevCarried: carriedOf(reader),
      xattrs,
      prevXattrsTrusted,
      prevXattrsUnrecorded,
      prevRecordsCtime: reader !== null && reader.version >= 3,
      // (a record of format 3 has no source inode and never stands for attributes: the scan reads them all)
      xattrCtimeMin: prevXattrsTrusted && reader!.version >= 4 ? ctimeMinOf(reader!) : -Infinity,
      sourceRemote: isRemoteFsType(sourceId.fsType),
      prevRecordsStand: !sourceMoved,
      racyCtimeSec: Math.floor(Date.parse(startWall) / 1000) - 1,
      resume: resumed,
      asRoot: isRoot(),
      readsAll: bypassesPermissions(),
      oneFileSystem: o.oneFileSystem,
      excludes,
      skipDirs,
      mountWatch,
      manifest: writer,
      dedup,
      dedupVerify: o.dedupVerify ?? true,
      clones,
      checksum: o.checksum ?? false,
      unchangedDirs: scan.dirs,
      onProblem: ev.onProblem,
      onNote: ev.onNote,
      onWarn: ev.onWarn,
      onPlan: ev.onPlan ? (rel, d, e, how) => ev.onPlan!(spec.name, rel, d, e, how) : undefined,
      onProgress: ev.onProgress ? (s) => ev.onProgress!(spec.name, s) : undefined,
      signal: o.signal,
    });
    ev.onPartStarted?.(spec.name, builder.stats, path.basename(partialPath), resumed);
    ev.onPhase?.('scan', spec.name);
    ev.onProgress?.(spec.name, builder.stats); // the live statistics: progress reads them between events
    const root = await builder.run();
    const mountsChanged = mountWatch.check();
    root.ctimeSec = st[ST.CTIME]!;
    root.ctimeNsec = st[ST.CTIME_NS]!;
    if (builder.stats.problems) root.flags |= FLAG.INCOMPLETE;
    const found = builder.findings;
    if (found.driftFirst) {
      ev.onWarn?.(
        `part '${spec.name}': ${builder.stats.drifted} unchanged ${builder.stats.drifted === 1 ? 'entry' : 'entries'} of the previous generation ` +
          `no longer matched its manifest (changed in the spool; first: ${found.driftFirst}): copied anew from the source, not linked`,
      );
    }
    if (found.unlinkable.first) {
      const n = found.unlinkable.count;
      ev.onWarn?.(
        `part '${spec.name}': ${n} unchanged ${n === 1 ? 'entry' : 'entries'} could not be linked from the previous generation ` +
          `(deleted, made immutable or mounted over there; first: ${found.unlinkable.first}): copied anew from the source`,
      );
    }
    if (found.linkGroupSplit) {
      const n = builder.stats.linkGroupSplits;
      const { name, first } = found.linkGroupSplit;
      const what = n === 1 ? '1 name of a hard-linked file changed or was replaced' : `${n} names of hard-linked files changed or were replaced`;
      ev.onWarn?.(
        `part '${spec.name}': ${what} between the reads of ${n === 1 ? 'its' : 'their'} names (first: ${name}, a name of ${first}): ` +
          `${n === 1 ? 'an inode of its own' : 'inodes of their own'} in this generation, holding what ${n === 1 ? 'it was' : 'each was'} read with; ` +
          `the next run links the names again if they are still one file`,
      );
    }
    const spoolId = dstRootFd >= 0 ? fsIdentity(dstRootFd) : null;
    const sourceIdentity = { ...sourceId, ...sourceCounts(builder.stats) };
    writer?.finish(root, {
      ...(spoolId ? { spool: { fsid: spoolId.fsid, rootIno: root.ino } } : {}),
      ...(builder.stats.carried ? { carried: { count: builder.stats.carried, first: found.carried } } : {}),
      ...(found.xattrsRefused.length ? { xattrsRefused: found.xattrsRefused } : {}),
      ...(xattrs ? {} : { xattrsSkipped: true }),
      ...(mountsChanged ? { mountsChanged: true } : {}),
      source: sourceIdentity,
    });
    writer = null;
    const journal = finishReport(scan);
    const note = scanNote(spec.name, scan, journal);
    if (note) ev.onNote(note);
    return {
      part: spec.name,
      source: spec.source,
      generation,
      path: path.join(pdir, generation),
      previous: prevGen?.name ?? null,
      compared: prev ? prev.kind : 'none',
      resumed,
      spoolClones: clones,
      journal,
      stats: builder.stats,
      findings: builder.findings,
      sourceIdentity,
      partDir: pdir,
      partialPath,
      manifestTmp,
      lastLeftovers: state.lastLeftovers,
    };
  } finally {
    writer?.abort();
    dedup?.close();
    reader?.close();
    for (const fd of fds) sys.close(fd);
    mountWatch.close();
  }
}

/** The previous generation's carried entries (footer), by escaped path: where each one is from. */
function carriedOf(reader: ManifestReader | null): Map<string, string> | undefined {
  const list = reader?.footer.carried?.first;
  return list?.length ? new Map(list.map((c) => [c.path, c.from])) : undefined;
}

/**
 * The ctime (seconds) from which the scan reads entries' attributes: a little before the
 * previous generation's scan began. Older ctimes mean unchanged attributes wherever the previous
 * manifest has a record of the same ctime (an entry without one is read anyway).
 */
function ctimeMinOf(reader: ManifestReader): number {
  const t = Date.parse(reader.header.scan?.startWall ?? '');
  return Number.isFinite(t) ? Math.floor(t / 1000) - 2 : -Infinity;
}
