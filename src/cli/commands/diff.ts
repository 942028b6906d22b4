import { commandLine } from '../argv.js';
import { AtomicFile } from '../../fs/atomic-file.js';
import path from 'node:path';
import type { Command } from 'commander';
import { HardsnapError, UsageError, errnoCode } from '../../core/errors.js';
import { ManifestFormatError } from '../../manifest/format.js';
import { displayPath } from '../../paths/escape.js';
import { now } from '../../time/now.js';
import { parseWhen } from '../../spool/when.js';
import { diffManifests, type Change } from '../../inspect/diff.js';
import { NulList, ParentsFirst, listPath, listsOf, type ListName } from '../../inspect/change-lists.js';
import type { ManifestReader } from '../../manifest/reader.js';
import { generationAt, openManifest, partsOf, type Target } from '../../inspect/manifests.js';
import { GenerationGoneError } from '../../spool/leases.js';
import type { Generation } from '../../spool/names.js';
import { leaseForReading } from '../../spool/reading.js';
import { addCommon, partNameArg, type CommonOptions, spoolTarget } from '../common.js';
import type { Output } from '../../ui/output.js';
import type { CliContext } from '../context.js';

interface DiffOptions extends CommonOptions {
  part?: string;
  null?: boolean;
  changed?: boolean;
  deleted?: boolean;
  changedTo?: string;
  deletedTo?: string;
  parents?: boolean;
}

export function register(program: Command, ctx: CliContext): void {
  addCommon(
    program
      .command('diff')
      .description('what changed in a part between two generations (from their manifests)')
      .argument('<A>', 'the older generation: a name, a date, a date-time or an age (WHEN)')
      .argument('<B>', 'the newer generation (WHEN)')
      .option('--part <name>', 'the part to compare (required)')
      .option('--null', 'print a list of paths instead: raw bytes, each ended by a NUL byte, no escaping (with --changed or --deleted)')
      .option('--changed', 'with --null: the paths added or changed in B (content, type or metadata)')
      .option('--deleted', 'with --null: the paths of A that B does not have (or whose type changed)')
      .option('--parents', 'with the changed list: also list the directories above each changed path (for tar: it then sets their times back on extraction)')
      .option('--changed-to <file>', 'write the changed list (as --null --changed prints it) to FILE, replaced atomically')
      .option('--deleted-to <file>', 'write the deleted list (as --null --deleted prints it) to FILE, replaced atomically')
      .addHelpText(
        'after',
        `
One line per entry, paths relative to the part root in the escaped form (\\\\ and \\xHH):
  + PATH                added in B (every entry of an added directory is listed)
  - PATH                removed in B
  M PATH (size 10->12)  content changed (or type, symlink target, device number)
  m PATH (mode 0644->0600)  metadata only: mode, owner, mtime, ACL or extended attributes
  C PATH (carried G: EACCES)  B holds PATH's version of generation G: the source could not be
                        read (an unreadable directory carries everything below it)
WHEN: a generation name, a date (end of that day, UTC), a date-time (UTC unless it has an
offset) or an age (36h, 3d); the newest complete generation at or before it is used.

Lists for tools that take file lists (an incremental to tape without ctime; docs/TAPE.md):
paths relative to the generation's root (the root itself is '.'), raw bytes, each ended by
NUL, a directory before what is in it. Changed: entries added, and entries whose content, type
or metadata changed (a directory only when it is new or its own metadata changed: use the
tools without recursion); --parents adds the directories above each one (for tar, which then
sets their times back). Deleted: entries of A not in B, and paths whose type changed (also in
changed). --changed-to/--deleted-to write both lists in one run, each replaced atomically;
the listing is then not printed.
Exit codes: 0 done (whether or not something changed); 1 bad usage, no such generation;
2 a manifest is missing or damaged, or a list file cannot be written.

Examples:
  hardsnap diff --spool /var/backups/hs --part mail 2026-11-20 2026-11-21
  hardsnap diff --spool /var/backups/hs --part mail 2d 1d --json
  hardsnap diff --spool /var/backups/hs --part mail 2026-11-20T031500Z 2026-11-21T031500Z --null --changed |
    tar -C "$GEN" --null --no-recursion -T - -cf /dev/nst0
  hardsnap diff --spool /var/backups/hs --part mail "$PREV" "$GEN_NAME" \\
    --changed-to /var/lib/tape/changed --deleted-to /var/lib/tape/deleted`,
      ),
  ).action(async (a: string, b: string, o: DiffOptions) => ctx.run(o, (out) => diff(a, b, o, ctx, out)));
}

async function diff(aText: string, bText: string, o: DiffOptions, ctx: CliContext, out: Output): Promise<number> {
  if (!o.part) throw new UsageError('diff needs --part NAME', { hint: 'see `hardsnap list` for the parts' });
  checkListOptions(o);
  const t0 = now();
  const whenA = parseWhen(aText, t0, 'diff A');
  const whenB = parseWhen(bText, t0, 'diff B');
  const t = spoolTarget(o, ctx.config(o), out);
  const [part] = partsOf(t, partNameArg(o.part)) as [string];
  const ga = generationAt(t, part, whenA, aText, 'diff A');
  const gb = generationAt(t, part, whenB, bText, 'diff B');
  // a lease on both: a prune running meanwhile keeps them
  const reading = leaseForReading(t.spool, t.host, part, ga.name === gb.name ? [ga] : [ga, gb], commandLine(), (m) => out.note(m));
  try {
    for (const g of reading.gone) throw new GenerationGoneError(g.part, g.name, 'nothing was compared');
    return diffLeased(ga, gb, part, t, o, out);
  } finally {
    reading.release();
  }
}

function diffLeased(ga: Generation, gb: Generation, part: string, t: Target, o: DiffOptions, out: Output): number {
  const ma = openManifest(t, part, ga.name);
  try {
    const mb = openManifest(t, part, gb.name);
    try {
      if (o.null || o.changedTo || o.deletedTo) return writeLists(ma, mb, ga, gb, part, o, out);
      const rows: Change[] = [];
      let counts;
      try {
        counts = diffManifests(ma, mb, (c) => (o.json ? rows.push(c) : out.print(line(c))));
      } catch (err) {
        // a block damaged past the header and index (those are checked when opened)
        if (!(err instanceof ManifestFormatError)) throw err;
        throw new HardsnapError('EMANIFEST', `a manifest of part '${part}' (${ga.name} or ${gb.name}) is damaged: ${err.message}`, {
          cause: err,
          exit: 2,
          hint: 'run `hardsnap verify` on those generations',
        });
      }
      if (o.json) {
        const pick = (k: Change['kind']) =>
          rows
            .filter((c) => c.kind === k)
            .map((c) => ({
              path: c.path.length ? displayPath(c.path) : '.',
              type: c.type,
              ...(c.changes.length ? { changes: c.changes } : {}),
            }));
        out.json({
          part,
          from: ga.name,
          to: gb.name,
          added: pick('added'),
          removed: pick('removed'),
          content: pick('content'),
          metadata: pick('metadata'),
          carried: pick('carried'),
        });
      } else {
        out.summary(
          `${part}: ${ga.name} -> ${gb.name}: ${counts.added} added, ${counts.removed} removed, ${counts.content} changed, ${counts.metadata} metadata only` +
            (counts.carried ? `, ${counts.carried} carried from an older generation (unreadable in the source)` : ''),
        );
      }
      return 0;
    } finally {
      mb.close();
    }
  } finally {
    ma.close();
  }
}

const MARK = { added: '+', removed: '-', content: 'M', metadata: 'm', carried: 'C' } as const;

function line(c: Change): string {
  const path = c.path.length ? displayPath(c.path) : '.';
  const what = c.kind === 'carried' ? `carried ${c.changes[0]!.from}: ${c.changes[0]!.to}` : c.changes.map((d) => `${d.field} ${d.from}->${d.to}`).join(', ');
  return `${MARK[c.kind]} ${path}${what ? ` (${what})` : ''}`;
}

/** --null needs exactly one list for stdout; the file options are one each, and not with --null's flag. */
function checkListOptions(o: DiffOptions): void {
  const hint = 'e.g. --null --changed, or --changed-to FILE --deleted-to FILE (docs/TAPE.md)';
  if ((o.changed || o.deleted) && !o.null) throw new UsageError('--changed and --deleted select what --null prints: add --null', { hint });
  if (o.null && o.changed && o.deleted)
    throw new UsageError('--null prints one list: --changed or --deleted, not both', { hint: 'write both with --changed-to FILE --deleted-to FILE' });
  if (o.null && !o.changed && !o.deleted) throw new UsageError('--null needs --changed or --deleted', { hint });
  if (o.null && o.json) throw new UsageError('--null and --json exclude each other');
  if (o.changed && o.changedTo) throw new UsageError('--changed and --changed-to exclude each other');
  if (o.deleted && o.deletedTo) throw new UsageError('--deleted and --deleted-to exclude each other');
  if (o.changedTo && o.deletedTo && path.resolve(o.changedTo) === path.resolve(o.deletedTo))
    throw new UsageError('--changed-to and --deleted-to name the same file');
  if (o.parents && !o.changedTo && !(o.null && o.changed)) throw new UsageError('--parents goes with the changed list (--null --changed or --changed-to FILE)');
}

/** A list going to a file: atomically (src/fs/atomic-file.ts), readable by its user only. */
interface ListFile {
  file: string;
  out: AtomicFile;
}

function openListFile(file: string): ListFile {
  try {
    return { file, out: new AtomicFile(path.resolve(file), { mode: 0o600 }) };
  } catch (err) {
    throw listFileError(file, err);
  }
}

function listFileError(file: string, err: unknown): HardsnapError {
  const code = errnoCode(err) ?? 'EIO';
  return new HardsnapError(code, `cannot write the list ${file}: ${code}`, { path: file, cause: err, exit: 2 });
}

/** The NUL-separated lists (src/inspect/change-lists.ts): to stdout (--null) and/or to files. */
function writeLists(ma: ManifestReader, mb: ManifestReader, ga: Generation, gb: Generation, part: string, o: DiffOptions, out: Output): number {
  const files: ListFile[] = [];
  try {
    const sink = (name: ListName, toFile: string | undefined, toStdout: boolean | undefined): NulList | null => {
      if (toFile) {
        const f = openListFile(toFile);
        files.push(f);
        return new NulList((c) => f.out.write(c));
      }
      return toStdout ? new NulList((c) => process.stdout.write(c)) : null;
    };
    const lists: Record<ListName, NulList | null> = {
      changed: sink('changed', o.changedTo, o.null && o.changed),
      deleted: sink('deleted', o.deletedTo, o.null && o.deleted),
    };
    const changed = lists.changed;
    const parents = o.parents && changed ? new ParentsFirst((p) => changed.add(p)) : null;
    diffManifests(ma, mb, (c) => {
      for (const name of listsOf(c)) {
        const p = listPath(c, name === 'deleted' ? ma.file : mb.file);
        if (name === 'changed' && parents) parents.push(p, c.type === 'dir');
        else lists[name]?.add(p);
      }
    });
    for (const l of Object.values(lists)) l?.end();
    for (const f of files) {
      try {
        f.out.commit();
      } catch (err) {
        throw listFileError(f.file, err);
      }
    }
    const counts = { changed: lists.changed?.count ?? null, deleted: lists.deleted?.count ?? null };
    if (o.json) {
      out.json({
        part,
        from: ga.name,
        to: gb.name,
        ...(o.changedTo ? { changed: { file: path.resolve(o.changedTo), count: counts.changed } } : {}),
        ...(o.deletedTo ? { deleted: { file: path.resolve(o.deletedTo), count: counts.deleted } } : {}),
      });
    } else if (!o.null) {
      out.summary(
        `${part}: ${ga.name} -> ${gb.name}: ` +
          [o.changedTo ? `${counts.changed} changed paths in ${o.changedTo}` : '', o.deletedTo ? `${counts.deleted} deleted paths in ${o.deletedTo}` : '']
            .filter(Boolean)
            .join(', '),
      );
    }
    return 0;
  } finally {
    for (const f of files) f.out.abandon();
  }
}
