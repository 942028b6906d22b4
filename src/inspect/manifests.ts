/**
 * What every inspection command shares: finding a part's complete generations, opening a
 * generation's manifest with an error that says what to do, and showing metadata as text.
 * The inspection commands read manifests, never the spool tree (verify excepted).
 */
import { fsIdentity, ST, sys } from '../fs/native.js';
import { HardsnapError, UsageError } from '../core/errors.js';
import { ManifestFormatError, type ManifestEntry } from '../manifest/format.js';
import { ManifestReader } from '../manifest/reader.js';
import { listGenerations, listParts, manifestPath, partDir, requireHostDir, type Target } from '../spool/layout.js';
import type { Generation } from '../spool/names.js';
import { selectGeneration, type When } from '../spool/when.js';

export type { Target };

/** Checks that the host and (when given) the part exist; returns the parts to look at. */
export function partsOf(t: Target, part?: string): string[] {
  requireHostDir(t.spool, t.host);
  const all = listParts(t.spool, t.host);
  if (part === undefined) return all;
  if (!all.includes(part)) {
    throw new UsageError(`no part '${part}' for host '${t.host}' in ${t.spool}`, {
      hint: all.length ? `the parts are: ${all.join(', ')}` : 'this host has no parts yet',
    });
  }
  return [part];
}

/** The complete generations of a part, oldest first. */
export function completeGenerations(t: Target, part: string): Generation[] {
  return listGenerations(t.spool, t.host, part).filter((g) => g.complete);
}

/**
 * Opens the manifest of one generation. A missing or damaged manifest is an error with exit 2
 * (code EMANIFEST) naming the file.
 */
export function openManifest(t: Target, part: string, generation: string): ManifestReader {
  const file = manifestPath(partDir(t.spool, t.host, part), generation);
  try {
    return ManifestReader.open(file, { generation, part, host: t.host });
  } catch (err) {
    throw manifestError(err, file, part, generation);
  }
}

export function manifestError(err: unknown, file: string, part: string, generation: string): HardsnapError {
  const code = (err as NodeJS.ErrnoException).code;
  const what =
    code === 'ENOENT'
      ? 'is missing'
      : err instanceof ManifestFormatError
        ? `is damaged (${err.message})`
        : `cannot be read (${code ?? (err as Error).message})`;
  return new HardsnapError('EMANIFEST', `the manifest of ${part} ${generation} ${what}: ${file}`, {
    cause: err,
    path: file,
    hint: 'run `hardsnap verify` to check that generation against its files',
  });
}

/** The entry named `name` in sorted `entries` (binary search by name bytes). */
export function findEntry(entries: ManifestEntry[], name: Buffer): ManifestEntry | undefined {
  let lo = 0;
  let hi = entries.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const c = Buffer.compare(entries[mid]!.name, name);
    if (c === 0) return entries[mid];
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}

/** An mtime as ISO 8601 UTC with nanoseconds: 2026-11-20T03:00:00.123456789Z. */
export function isoNs(sec: number, nsec: number): string {
  const base = new Date(sec * 1000).toISOString().slice(0, 19);
  return `${base}.${String(nsec).padStart(9, '0')}Z`;
}

export function octal(mode: number): string {
  return '0' + mode.toString(8).padStart(3, '0');
}

/** The complete generation of `part` that WHEN `text` designates; a UsageError when none. */
export function generationAt(t: Target, part: string, when: When, text: string, what: string): Generation {
  const gens = completeGenerations(t, part);
  const g = selectGeneration(gens, when);
  if (g) return g;
  const oldest = gens[0];
  throw new UsageError(
    when.kind === 'name'
      ? `${what}: part '${part}' has no complete generation named ${JSON.stringify(text)}`
      : `${what}: part '${part}' has no complete generation at or before ${JSON.stringify(text)} (${when.cutoff.toISOString()})`,
    {
      code: 'ENOGEN',
      hint: oldest ? `its oldest complete generation is ${oldest.name}; see \`hardsnap list --part ${part}\`` : 'it has no complete generation yet',
    },
  );
}

/**
 * Whether a generation's manifest records the inode numbers its files have now: 'current' (format
 * 3: the generation root and the file system are the ones it recorded), 'moved' (the spool was
 * copied to another disk since, cp -a or rsync -aH: every number is new, the grouping of names
 * into inodes is the same), 'unknown' (an older format, which did not record them).
 */
export function inodeNumbers(m: ManifestReader, genPath: string): 'current' | 'moved' | 'unknown' {
  const rec = m.footer.spool;
  if (m.version < 3 || !rec || !m.root.ino) return 'unknown';
  const fd = sys.openat(sys.AT_FDCWD, genPath, sys.O_RDONLY | sys.O_DIRECTORY | sys.O_NOFOLLOW, 0);
  if (fd < 0) return 'unknown';
  try {
    const st = new Float64Array(sys.STAT_FIELDS);
    if (sys.fstat(fd, st) !== 0) return 'unknown';
    const id = fsIdentity(fd);
    return st[ST.INO] === m.root.ino && (!id || id.fsid === rec.fsid) ? 'current' : 'moved';
  } finally {
    sys.close(fd);
  }
}

/** The inode number the file at `rel` of the generation at `genPath` has now (0 when it cannot be stat-ed). */
export function currentIno(genPath: string, rel: Buffer): number {
  const st = new Float64Array(sys.STAT_FIELDS);
  const full = rel.length ? Buffer.concat([Buffer.from(genPath), Buffer.from('/'), rel]) : Buffer.from(genPath);
  return sys.fstatat(sys.AT_FDCWD, full, st, 1) === 0 ? st[ST.INO]! : 0;
}
