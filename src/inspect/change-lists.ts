/**
 * Lists of what changed between two generations, for tools that take file lists (GNU tar
 * `--null -T`, rsync `--from0 --files-from`, Bacula `File = "<list"`): an incremental tape job
 * that needs no ctime and no directory inode of its own (docs/TAPE.md).
 *
 * From the changes `diffManifests` reports (src/inspect/diff.ts), two lists of paths, relative
 * to the generation's root, as raw bytes (the root itself is `.`), in the diff's order (depth
 * first, names sorted by bytes, a directory before what is in it):
 * - changed: every entry of B that is not in A (every entry of an added directory), and every
 *   entry of both whose content, type or metadata (mode, owner, mtime, ACL, attributes)
 *   differs. A directory is listed when it is new or its own metadata changed (its mtime moves
 *   when a name in it is added, removed or renamed), never just because something below it
 *   changed: the tools are meant to run without recursion (tar `--no-recursion`; rsync does
 *   not recurse with `--files-from`). An entry carried from an older generation (the source
 *   could not be read) is judged like any other, by its record: it is the same inode as in the
 *   generation it was carried from.
 * - deleted: every entry of A that is not in B (every entry of a removed directory), and every
 *   path whose type changed (the old entry went; the new one is in `changed` too).
 * Entries recorded but not in the generation's tree (a device node when the backup was not
 * run as root: flag ABSENT) are in neither list: a tool could not read them.
 */
import { HardsnapError } from '../core/errors.js';
import { displayPath } from '../paths/escape.js';
import type { Change } from './diff.js';

export type ListName = 'changed' | 'deleted';

/** Which of the two lists a change belongs in (both for a change of type). */
export function listsOf(c: Change): ListName[] {
  if (c.absent) return [];
  switch (c.kind) {
    case 'added':
    case 'metadata':
      return ['changed'];
    case 'removed':
      return ['deleted'];
    case 'content':
      return c.changes.some((d) => d.field === 'type') ? ['deleted', 'changed'] : ['changed'];
    case 'carried':
      return []; // a footer's note about roots; their entries were classified in the merge
  }
}

/**
 * The path as a list holds it: the bytes relative to the root; the root itself is `.`. A path
 * no file system can hold (a NUL byte, a leading `/`, an empty, `.` or `..` component: a
 * tampered manifest) would make a tool read outside the generation, or split the list: it
 * stops the list (exit 2) before anything is written.
 */
export function listPath(c: Change, manifest: string): Buffer {
  if (!c.path.length) return DOT;
  if (impossible(c.path)) {
    throw new HardsnapError('ETAMPERED', `the manifest ${manifest} holds an impossible path ${JSON.stringify(displayPath(c.path))}: no list written`, {
      exit: 2,
      hint: 'the spool was tampered with or is damaged; run hardsnap verify',
    });
  }
  return c.path;
}

function impossible(p: Buffer): boolean {
  if (p.includes(0)) return true;
  let start = 0;
  for (let i = 0; i <= p.length; i++) {
    if (i < p.length && p[i] !== 0x2f) continue;
    const n = i - start;
    if (n === 0 || (n === 1 && p[start] === 0x2e) || (n === 2 && p[start] === 0x2e && p[start + 1] === 0x2e)) return true;
    start = i + 1;
  }
  return false;
}

/**
 * `--parents`: before each changed path, the directories above it that were not listed yet (the
 * root as `.`), so that an archive holds them too. A tool that restores a file by unlinking and
 * creating it (tar) changes its directory's mtime; extracting the directory's own entry (tar
 * sets directory times last) puts it back. rsync needs none: it sends the directories above a
 * listed path itself (--implied-dirs). Memory: one string per directory listed.
 */
export class ParentsFirst {
  private readonly listed = new Set<string>();
  constructor(private readonly add: (path: Buffer) => void) {}

  /** `path` as listPath gives it (`.` for the root); `isDir`: it is a directory in B */
  push(path: Buffer, isDir: boolean): void {
    const root = path.length === 1 && path[0] === 0x2e;
    if (!root && !this.listed.has('.')) this.emitDir(DOT, '.');
    if (!root) {
      for (let i = path.indexOf(0x2f); i > 0; i = path.indexOf(0x2f, i + 1)) {
        const dk = path.toString('latin1', 0, i);
        if (!this.listed.has(dk)) this.emitDir(Buffer.from(path.subarray(0, i)), dk);
      }
    }
    if (!isDir) this.add(path);
    else if (!this.listed.has(path.toString('latin1'))) this.emitDir(path, path.toString('latin1'));
  }

  private emitDir(path: Buffer, k: string): void {
    this.listed.add(k);
    this.add(path);
  }
}

const DOT = Buffer.from('.');
const NUL = Buffer.from([0]);

/**
 * Collects NUL-terminated paths into chunks of about 64 KiB and hands each full chunk to
 * `write`; `end()` hands the rest. Counts what it was given.
 */
export class NulList {
  private parts: Buffer[] = [];
  private size = 0;
  count = 0;
  constructor(private readonly write: (chunk: Buffer) => void) {}

  add(path: Buffer): void {
    this.parts.push(path, NUL);
    this.size += path.length + 1;
    this.count++;
    if (this.size >= 1 << 16) this.flush();
  }

  end(): void {
    this.flush();
  }

  private flush(): void {
    if (!this.size) return;
    const chunk = Buffer.concat(this.parts, this.size);
    this.parts = [];
    this.size = 0;
    this.write(chunk);
  }
}
