/**
 * The tape job's lease (`hardsnap lease`, `hardsnap release`): resolve `last` of each part
 * once, and hold the generations it names against prune until released or until an expiry, so
 * that a third-party backup system reads one fixed, complete generation for as long as it
 * needs, and a job that dies does not pin it forever (docs/TAPE.md).
 *
 * The lease is the detached lease of src/spool/leases.ts: one file per part in its
 * `.hardsnap/leases/`, named `<generation>.<pid>.<ID>.lease`, carrying the ID, the holder and
 * the expiry. A file, not a process: it is taken on one host and released on another, and a
 * prune on any host that sees the spool (NFS) keeps the generation while it is live.
 */
import crypto from 'node:crypto';
import { fs } from '../fs/disk.js';
import path from 'node:path';
import { HardsnapError, UsageError, errnoCode } from '../core/errors.js';
import { SPOOL_DIR_MODE, listParts, partDir, requireHostDir } from './layout.js';
import { readLast } from './last.js';
import { generationGone, leaseStaleReason, leasesDir, LEASE_SUFFIX, releaseLease, takeLeases, type LeaseHandle, type LeaseInfo } from './leases.js';
import { isGenerationName } from './names.js';

export const LEASE_ID_RE = /^[0-9a-f]{16}$/;

export interface LeasedPart {
  part: string;
  generation: string;
  /** the generation's absolute path: what the tape job reads */
  path: string;
  /** the lease file */
  file: string;
}

export interface TapeLease {
  id: string;
  holder: string;
  /** ISO, real clock */
  expires: string;
  parts: LeasedPart[];
}

export interface LeaseLastOptions {
  spool: string;
  host: string;
  /** the parts to lease; every part of the host when empty */
  parts: string[];
  /** how long the lease lasts (ms, real clock) */
  forMs: number;
  holder: string;
  /** the command line, as the lease file records it */
  command: string;
}

/** A `last` that moved and whose old generation was pruned between our read and our lease: tried again this often. */
const ATTEMPTS = 5;

/**
 * Leases the generation `last` names in each part, all under one new ID. Either every part is
 * leased or none is (what was taken is released on failure).
 */
export function leaseLast(o: LeaseLastOptions): TapeLease {
  requireHostDir(o.spool, o.host);
  const all = listParts(o.spool, o.host);
  for (const p of o.parts) {
    if (!all.includes(p))
      throw new UsageError(`no part '${p}' for host '${o.host}' in ${o.spool}`, {
        hint: all.length ? `the parts are: ${all.join(', ')}` : 'this host has no parts yet',
      });
  }
  const parts = o.parts.length ? o.parts : all;
  if (!parts.length) throw new UsageError(`host '${o.host}' has no parts in ${o.spool}`);
  if (!(o.forMs > 0)) throw new UsageError('--for: a lease needs a duration longer than 0', { hint: 'e.g. --for 6h: longer than the tape job takes' });
  const id = crypto.randomBytes(8).toString('hex');
  const expires = new Date(Date.now() + o.forMs);
  const handles: LeaseHandle[] = [];
  try {
    const leased = parts.map((part) => leaseOne(o, part, id, expires, handles));
    return { id, holder: o.holder, expires: expires.toISOString(), parts: leased };
  } catch (err) {
    for (const h of handles) h.release();
    throw err;
  }
}

function leaseOne(o: LeaseLastOptions, part: string, id: string, expires: Date, handles: LeaseHandle[]): LeasedPart {
  const pdir = partDir(o.spool, o.host, part);
  let before: string | null = null;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const target = readLast(pdir);
    const generation = target === null ? null : path.basename(target);
    if (generation === null || !isGenerationName(generation)) {
      throw new HardsnapError(
        'ENOLAST',
        `part '${part}' has no complete generation to lease: ${target === null ? 'no' : 'an unexpected'} \`last\` in ${pdir}`,
        {
          path: pdir,
          exit: 2,
          hint: 'a backup publishes one; see hardsnap status',
        },
      );
    }
    const genPath = path.join(pdir, generation);
    let h: LeaseHandle;
    try {
      // one level, so that a read-only mount says EROFS (a recursive mkdir says ENOENT there)
      fs.mkdirSync(leasesDir(pdir), { mode: SPOOL_DIR_MODE });
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw cannotLease(pdir, err);
    }
    try {
      h = takeLeases(pdir, [generation], { command: o.command, holder: o.holder, expires, detached: true, id });
    } catch (err) {
      throw cannotLease(pdir, err);
    }
    // `last` moved and a prune removed the generation before our lease was there: take the new one
    if (generationGone(genPath)) {
      h.release();
      if (generation === before) {
        throw new HardsnapError('ENOLAST', `part '${part}': \`last\` names ${generation}, which is not there (removed by hand?)`, {
          path: pdir,
          exit: 2,
          hint: 'the next backup moves last; see hardsnap list',
        });
      }
      before = generation;
      continue;
    }
    handles.push(h);
    return { part, generation, path: genPath, file: h.leases[0]!.file };
  }
  throw new HardsnapError('ERACE', `part '${part}': \`last\` kept moving to generations pruned before they could be leased (${ATTEMPTS} tries)`, {
    path: pdir,
    exit: 2,
  });
}

function cannotLease(pdir: string, err: unknown): HardsnapError {
  const code = errnoCode(err) ?? 'EIO';
  return new HardsnapError(code, `cannot write a lease in ${leasesDir(pdir)}: ${code}`, {
    path: leasesDir(pdir),
    cause: err,
    exit: 2,
    hint:
      code === 'EROFS'
        ? 'the spool is mounted read-only here: lease it where it is writable'
        : "the lease is a file in the spool: run as the spool's owner or root",
  });
}

export interface Released {
  part: string;
  generation: string;
  file: string;
  /** why the lease had stopped counting before it was released (expired), or null */
  stale: string | null;
  /** the generation is no longer there */
  gone: boolean;
}

/**
 * Removes the lease files of `id` in the given parts (every part of the host when empty) and
 * says, for each, whether it had expired before and whether its generation is still there.
 */
export function releaseLeaseId(spool: string, host: string, id: string, parts: string[] = []): Released[] {
  if (!LEASE_ID_RE.test(id)) throw new UsageError(`${JSON.stringify(id)} is not a lease ID: 16 hex digits, as hardsnap lease printed it`);
  requireHostDir(spool, host);
  const all = listParts(spool, host);
  for (const p of parts) if (!all.includes(p)) throw new UsageError(`no part '${p}' for host '${host}' in ${spool}`);
  const out: Released[] = [];
  const now = Date.now();
  for (const part of parts.length ? parts : all) {
    const pdir = partDir(spool, host, part);
    let names: string[];
    try {
      names = fs.readdirSync(leasesDir(pdir));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') continue;
      throw err;
    }
    for (const n of names) {
      if (n.startsWith('.') || !n.endsWith(`.${id}${LEASE_SUFFIX}`)) continue;
      const file = path.join(leasesDir(pdir), n);
      const generation = n.slice(0, n.indexOf('.'));
      let stale: string | null;
      try {
        stale = leaseStaleReason(JSON.parse(fs.readFileSync(file, 'utf8')) as LeaseInfo, now);
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') continue; // a prune removed it just now (it had expired)
        stale = 'its file was unreadable';
      }
      releaseLease(file);
      out.push({ part, generation, file, stale, gone: generationGone(path.join(pdir, generation)) });
    }
  }
  return out;
}
