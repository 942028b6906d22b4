/**
 * One line per written entry for `backup --verbose`, in the spirit of `rsync -i`: an 11-column
 * code YXcstpoguax, then the escaped path (SPEC.md's display form) relative to the spool's part.
 *   >f+++++++++ new file            >f.s....... / >f..t...... changed file (size / mtime ...)
 *   >f.......a. / >f........x   a changed POSIX ACL / other extended attributes (a new inode)
 *   hf          unchanged, hard-linked to the previous generation
 *   hf+++++++++ PATH (content link)   new or changed, linked to an identical file in the spool
 *   >f...p..... PATH (clone)          written as a clone of an identical file in the spool
 *   hf+++++++++ PATH => FIRST         a further name of a source inode written in this run
 *   cd+++++++++ new directory       cL+++++++++ symlink (-> target)   cD / cS device / special
 * Unchanged directories print nothing.
 */
import type { Meta } from '../fs/entry.js';
import type { Decision } from '../plan/decide.js';
import { displayPath } from '../paths/escape.js';
import type { PlanOutcome } from '../apply/types.js';

const TYPE: Record<Meta['type'], string> = {
  file: 'f',
  dir: 'd',
  symlink: 'L',
  char: 'D',
  block: 'D',
  fifo: 'S',
  socket: 'S',
};

/** the 9 attribute columns (cstpoguax) for a change reason of src/plan/decide.ts */
function attrs(reason: string): string {
  if (reason === 'new' || reason === 'new directory' || reason.startsWith('type ')) return '+++++++++';
  if (reason === 'size') return '.s.......';
  if (reason === 'mtime') return '..t......';
  if (reason === 'mode') return '...p.....';
  if (reason === 'owner') return '....og...';
  if (reason === 'target' || reason === 'content differs (checksum)') return 'c........';
  if (reason === 'acl') return '.......a.';
  if (reason === 'xattrs') return '........x';
  if (reason === 'acl, xattrs') return '.......ax';
  return '.........';
}

/** The itemized line for one decision, or null for an unchanged directory. */
export function itemize(part: string, rel: Buffer, d: Decision, e: Meta, how?: PlanOutcome): string | null {
  const p = `${part}/${displayPath(rel)}`;
  if (how?.via === 'content') return `h${TYPE[e.type]}${attrs(d.reason)} ${p} (content link)`;
  if (how?.via === 'clone') return `>${TYPE[e.type]}${attrs(d.reason)} ${p} (clone)`;
  if (how?.via === 'hardlink') {
    // an unchanged name keeps the plain "hf" code; the arrow says which name it shares
    const code = d.action === 'link' ? '         ' : attrs(d.reason);
    return `h${TYPE[e.type]}${code} ${p} => ${part}/${displayPath(how.to)}`;
  }
  switch (d.action) {
    case 'mkdir':
      return d.reason === 'new directory' ? `cd+++++++++ ${p}/` : null;
    case 'link':
      return `h${TYPE[e.type]}          ${p}`;
    case 'copy':
      return `>f${attrs(d.reason)} ${p}`;
    case 'symlink':
      return `cL${attrs(d.reason)} ${p} -> ${displayPath(e.target ?? Buffer.alloc(0))}`;
    case 'mknod':
    case 'record':
      return `c${TYPE[e.type]}${attrs(d.reason)} ${p}${d.action === 'record' ? '  (recorded only: not root)' : ''}`;
  }
}
