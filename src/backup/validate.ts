/**
 * Checks everything about a backup's input before anything is written: part names, sources,
 * the spool. Bad input is a UsageError (exit 1, nothing created); a spool that is missing or
 * unmarked, or a source root that is missing or empty (an unmounted file system), is a failure
 * of the run (exit 2).
 */
import { fs } from '../fs/disk.js';
import path from 'node:path';
import { HardsnapError, UsageError, errnoCode } from '../core/errors.js';
import { hostDir, listParts, partDir, validateHost, refuseSpoolSymlinks } from '../spool/layout.js';
import { markLegacy, notMountedError, requireSpool, unmountedFstabMountAbove } from '../spool/marker.js';
import { checkNoNesting, validatePartName } from '../spool/part-name.js';
import { isInsideBytes, realBytes } from '../fs/byte-path.js';
import type { BackupOptions } from './types.js';

/** 'NAME=PATH' of --part. */
export function parsePartArg(arg: string): { name: string; source: string } {
  const i = arg.indexOf('=');
  if (i <= 0 || i === arg.length - 1) {
    throw new UsageError(`malformed --part ${JSON.stringify(arg)}: expected NAME=PATH`, { hint: 'for example --part mail=/var/spool/mail' });
  }
  return { name: arg.slice(0, i), source: arg.slice(i + 1) };
}

export function validateBackup(o: BackupOptions, onNote: (m: string) => void = () => {}): void {
  validateHost(o.host);
  if (!o.parts.length) throw new UsageError('nothing to back up: give at least one --part NAME=PATH');
  for (const p of o.parts) validatePartName(p.name);
  // never create a spool: a missing or unmarked one is an unmounted file system (exit 2)
  const spoolState = requireSpool(o.spool);
  refuseSpoolSymlinks(
    o.spool,
    o.host,
    o.parts.map((p) => p.name),
  );
  // a host directory or a part on a file system of its own (a bind mount from another disk,
  // listed in /etc/fstab) that is not mounted: the run would fill the disk below (a tenth cron trial)
  for (const dir of [hostDir(o.spool, o.host), ...o.parts.map((p) => partDir(o.spool, o.host, p.name))]) {
    const mp = unmountedFstabMountAbove(dir);
    if (mp) throw notMountedError(dir, mp, 'run the backup again; nothing was written');
  }
  checkNoNesting(
    o.parts.map((p) => p.name),
    listParts(o.spool, o.host),
  );
  // compared as bytes: two paths that differ only in bytes that are not UTF-8 are two paths
  // (the spool exists: requireSpool said so)
  const spoolReal = realBytes(o.spool);
  if (!o.dryRun) {
    try {
      fs.accessSync(o.spool, fs.constants.W_OK);
    } catch (err) {
      throw new UsageError(`spool ${o.spool} is not writable (${(err as NodeJS.ErrnoException).code})`, {
        hint: 'check its permissions and that it is mounted read-write',
      });
    }
  }
  for (const p of o.parts) {
    if (!path.isAbsolute(p.source) && !p.source) throw new UsageError(`part '${p.name}' has an empty source path`);
    let st: fs.Stats;
    try {
      st = fs.statSync(p.source);
    } catch (err) {
      throw new HardsnapError('ENOSOURCE', `source of part '${p.name}' is missing: ${p.source} (${(err as NodeJS.ErrnoException).code})`, {
        exit: 2,
        path: p.source,
        hint: 'is its file system mounted? nothing was written',
      });
    }
    if (!st.isDirectory()) throw new UsageError(`source of part '${p.name}' is not a directory: ${p.source}`);
    if (isInsideBytes(realBytes(p.source), spoolReal)) {
      throw new UsageError(`source of part '${p.name}' (${p.source}) lies inside the spool ${o.spool}`, { hint: 'back up something outside the spool' });
    }
  }
  if (spoolState === 'legacy' && !o.dryRun) markLegacy(o.spool, onNote);
}

/** An empty source root is most often an unmounted file system: refuse to publish it. */
export function checkNotEmpty(o: BackupOptions): void {
  if (o.allowEmpty) return;
  for (const p of o.parts) {
    let names: string[];
    try {
      names = fs.readdirSync(p.source);
    } catch (err) {
      // recorded as a failed run like a missing source (status CRITICAL), not an internal error
      const code = errnoCode(err) ?? 'EIO';
      throw new HardsnapError('ESOURCEUNREADABLE', `source of part '${p.name}' cannot be read: ${code}: ${p.source}; nothing written`, {
        exit: 2,
        path: p.source,
        hint: 'give the backup user read and search access to the source root (or run it as root)',
      });
    }
    if (names.length === 0) {
      throw new HardsnapError('EEMPTYSOURCE', `source of part '${p.name}' is empty: ${p.source}; refusing to publish an empty generation`, {
        exit: 2,
        path: p.source,
        hint: 'is its file system mounted? use --allow-empty if empty is expected',
      });
    }
  }
}
