import { commandLine } from '../argv.js';
import type { Command } from 'commander';
import { UsageError } from '../../core/errors.js';
import { displayPath } from '../../paths/escape.js';
import { lookup, versionChange, type Change } from '../../inspect/history.js';
import { recordsAttributes } from '../../inspect/diff.js';
import { completeGenerations, currentIno, inodeNumbers, isoNs, openManifest, partsOf, type Target } from '../../inspect/manifests.js';
import type { Generation } from '../../spool/names.js';
import { leaseForReading } from '../../spool/reading.js';
import type { ManifestEntry } from '../../manifest/format.js';
import { addCommon, partNameArg, type CommonOptions, spoolTarget } from '../common.js';
import { unescapeArg } from '../../paths/arg-text.js';
import type { Output } from '../../ui/output.js';
import type { CliContext } from '../context.js';

interface HistoryOptions extends CommonOptions {
  part?: string;
}

export function register(program: Command, ctx: CliContext): void {
  addCommon(
    program
      .command('history')
      .description('every version of one path across the complete generations of a part, oldest first')
      .argument('<path>', 'relative to the part root, in the escaped form diff prints (\\\\ and \\xHH); . for the root')
      .option('--part <name>', 'the part (required)')
      .addHelpText(
        'after',
        `
One line per generation holding PATH: generation, type, size, mtime (UTC, nanoseconds), what
happened since the generation before, and the XXH64 content hash where recorded:
  new       first seen (or back after an absence)
  same      the same inode as before: unchanged
  changed   a new inode with other content
  metadata  the same content, other mode, owner or mtime (a new inode, as any change makes)
  rewritten a new inode, content and metadata the same (written again: link limit, resume)
  carried   the source could not be read in that run: the version of an earlier generation
Exit codes: 0 done; 1 bad usage, or PATH is in no complete generation; 2 a manifest is missing
or damaged (the other generations are still listed).

Examples:
  hardsnap history --spool /var/backups/hs --part mail 'users/ann/INBOX/cur/1700000000.M1'
  hardsnap history --spool /var/backups/hs --part etc 'caf\\xe9.conf' --json`,
      ),
  ).action(async (p: string, o: HistoryOptions) => ctx.run(o, (out) => history(p, o, ctx, out)));
}

const WORD: Record<Change, string> = { new: 'new', same: 'same', content: 'changed', metadata: 'metadata', rewritten: 'rewritten', carried: 'carried' };

async function history(pathText: string, o: HistoryOptions, ctx: CliContext, out: Output): Promise<number> {
  if (!o.part) throw new UsageError('history needs --part NAME', { hint: 'see `hardsnap list` for the parts' });
  let path: Buffer;
  try {
    // the escaped form; a byte of the argument that is not UTF-8 stands for itself
    path = normalize(unescapeArg(pathText));
  } catch (err) {
    throw new UsageError(`PATH: ${(err as Error).message}`);
  }
  const t = spoolTarget(o, ctx.config(o), out);
  const [part] = partsOf(t, partNameArg(o.part)) as [string];
  // a lease on every generation looked at: a prune running meanwhile keeps them all
  const reading = leaseForReading(t.spool, t.host, part, completeGenerations(t, part), commandLine(), (m) => out.note(m));
  try {
    return historyLeased(reading.present, path, part, t, o, out);
  } finally {
    reading.release();
  }
}

function historyLeased(gens: Generation[], path: Buffer, part: string, t: Target, o: HistoryOptions, out: Output): number {
  const rows: Record<string, unknown>[] = [];
  let prev: ManifestEntry | undefined;
  let prevAttrs = false;
  let failed = 0;
  for (const g of gens) {
    let e: ManifestEntry | undefined;
    let attrs = false;
    try {
      const m = openManifest(t, part, g.name);
      try {
        e = lookup(m, path);
        attrs = recordsAttributes(m);
        // a spool copied to another disk since: the number the file has now, so that versions
        // on both sides of the move compare
        if (e && e.type !== 'dir' && inodeNumbers(m, g.path) === 'moved') e = { ...e, ino: currentIno(g.path, path) };
      } finally {
        m.close();
      }
    } catch (err) {
      failed++;
      out.error(`${(err as Error).message}: generation ${g.name} left out`);
      // the next version is compared with the one before the gap (the row above it), not
      // called `new`: nothing says the path was absent from the generation left out
      continue;
    }
    if (!e) {
      prev = undefined;
      continue;
    }
    const change = versionChange(prev, e, attrs && prevAttrs);
    prev = e;
    prevAttrs = attrs;
    const mtime = isoNs(e.mtimeSec, e.mtimeNsec);
    rows.push({
      generation: g.name,
      type: e.type,
      size: e.size,
      mtime,
      mode: '0' + e.mode.toString(8),
      uid: e.uid,
      gid: e.gid,
      ino: e.ino,
      change,
      newInode: e.type === 'dir' ? null : change !== 'same',
      hash: e.hash,
      ...(e.type === 'symlink' ? { target: displayPath(e.target ?? Buffer.alloc(0)) } : {}),
    });
    if (!o.json) {
      out.print(`${g.name}  ${e.type.padEnd(7)} ${String(e.size).padStart(12)}  ${mtime}  ${WORD[change].padEnd(8)}  ${e.hash ?? '-'}`);
    }
  }
  if (!rows.length && !failed) {
    throw new UsageError(`${displayPath(path) || '.'} is in no complete generation of part '${part}'`, {
      hint: 'paths are relative to the part root, escaped as `hardsnap diff` prints them',
    });
  }
  if (o.json) out.json({ part, path: displayPath(path) || '.', versions: rows });
  return failed ? 2 : 0;
}

/** Strips leading "./" and "/" and trailing "/"; "." is the root. */
function normalize(p: Buffer): Buffer {
  let s = 0;
  let e = p.length;
  for (;;) {
    if (p[s] === 0x2f) s++;
    else if (p[s] === 0x2e && (s + 1 === e || p[s + 1] === 0x2f)) s++;
    else break;
  }
  while (e > s && p[e - 1] === 0x2f) e--;
  return p.subarray(s, e);
}
