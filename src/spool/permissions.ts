/**
 * The spool never widens access (SPEC.md): the directories hardsnap makes above the
 * generations are created SPOOL_DIR_MODE (0700, layout.ts), so a file its source hid behind a
 * 0700 directory stays hidden in the spool. A spool made by an older version (0755) is found
 * here, for `check` and `status` to warn about, and tightened only when asked
 * (`hardsnap check --fix-permissions`): never silently.
 *
 * The spool tree: `<spool>/rsync`, each host directory and its `.hardsnap`, the directories of
 * each part's name and the part directory, its `.hardsnap` and the directories directly in it
 * (manifests, trash, leases, watch). Never a generation, nor anything in one or in the trash:
 * a generation keeps its source's modes. Symlinks are never followed.
 */
import { fs } from '../fs/disk.js';
import path from 'node:path';
import { chmodDir } from '../fs/dir-mode.js';
import { sys } from '../fs/native.js';
import { META_DIR, SPOOL_DIR_MODE, hostDir, listHosts, listParts, partDir } from './layout.js';

/** Permission bits other users get through (group or other: read, write or search). */
export const OPEN_BITS = 0o077 & ~SPOOL_DIR_MODE;

export interface SpoolDirMode {
  path: string;
  /** permission bits (07777) */
  mode: number;
}

function dirMode(p: string): number | null {
  const st = fs.lstatSync(p, { throwIfNoEntry: false });
  return st && st.isDirectory() ? st.mode & 0o7777 : null;
}

/** The directories of the spool tree of `hosts` (every host of the spool when omitted), that exist. */
export function spoolTreeDirs(spool: string, hosts?: readonly string[]): SpoolDirMode[] {
  const out: SpoolDirMode[] = [];
  const add = (p: string): boolean => {
    const m = dirMode(p);
    if (m !== null) out.push({ path: p, mode: m });
    return m !== null;
  };
  const meta = (dir: string) => {
    const m = path.join(dir, META_DIR);
    if (!add(m)) return;
    let names: string[] = [];
    try {
      names = fs.readdirSync(m);
    } catch {
      /* unreadable: the directory itself is listed */
    }
    for (const n of names.sort()) add(path.join(m, n)); // manifests, trash, leases, watch (not their contents)
  };
  if (!add(path.join(path.resolve(spool), 'rsync'))) return out;
  for (const host of hosts ?? listHosts(spool)) {
    const h = hostDir(spool, host);
    if (!add(h)) continue;
    meta(h);
    const seen = new Set<string>();
    for (const part of listParts(spool, host)) {
      const comps = part.split('/');
      for (let i = 1; i <= comps.length; i++) {
        // partDir: a component that is not UTF-8 (escaped in the name) is reached by its bytes
        const d = partDir(spool, host, comps.slice(0, i).join('/'));
        if (seen.has(d)) continue;
        seen.add(d);
        add(d);
      }
      meta(partDir(spool, host, part));
    }
  }
  return out;
}

/** The directories of the spool tree other users can read, write or search. */
export function openSpoolDirs(spool: string, hosts?: readonly string[]): SpoolDirMode[] {
  return spoolTreeDirs(spool, hosts).filter((d) => (d.mode & OPEN_BITS) !== 0);
}

export interface Tightened {
  path: string;
  before: number;
  after: number;
}

/**
 * Takes group and other access away from every open directory of the spool tree (`chmod
 * go-rwx`, the owner's bits and set-id bits kept): what `hardsnap check --fix-permissions` does.
 * Returns what it changed; a directory it could not change is returned with `after` null.
 */
export function tightenSpoolDirs(spool: string, hosts?: readonly string[]): (Tightened | { path: string; before: number; after: null })[] {
  return openSpoolDirs(spool, hosts).map((d) => {
    const r = chmodDir(sys.AT_FDCWD, d.path, (m) => m & ~OPEN_BITS);
    return r ? { path: d.path, before: r.before, after: r.after } : { path: d.path, before: d.mode, after: null };
  });
}

/** "0755" */
export function octalMode(mode: number): string {
  return '0' + (mode & 0o7777).toString(8).padStart(3, '0');
}

/** What is open, in one sentence; null when nothing is. */
export function describeOpenDirs(open: readonly SpoolDirMode[]): string | null {
  if (!open.length) return null;
  const first = open[0]!;
  return (
    `${open.length} ${open.length === 1 ? 'directory' : 'directories'} of the spool tree can be read or searched by other users ` +
    `(${first.path} is ${octalMode(first.mode)}): backed-up files may be readable by them`
  );
}

/** The command that fixes it. */
export function fixPermissionsCommand(spool: string): string {
  return `hardsnap check --spool ${spool} --fix-permissions`;
}
