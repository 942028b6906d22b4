/**
 * Leases: a claim on generations of a part that `prune` respects. A reader (`verify`,
 * `restore`, `diff`, `du`, `history`) takes one on the generations it reads and releases it
 * when done, so that a prune running meanwhile keeps them ("being read by pid N (verify)")
 * instead of deleting files under it. A lease that outlives its process (a tape job's, taken
 * by one command and released by another) must carry an expiry, so that a job that died does
 * not pin a generation forever.
 *
 * One file per generation and holder: `<part>/.hardsnap/leases/<generation>.<pid>.<nonce>.lease`,
 * JSON (LeaseInfo), written under a temporary name and renamed, so a reader of the directory
 * never sees half of one. A file, not a process lock: it works across hosts on an NFS spool.
 *
 * A lease no longer counts (it is stale) when it has expired, or, for one tied to its process,
 * by the lock's rules (src/spool/lock.ts staleReason: same host and the process is gone or is
 * another program, or the host rebooted). `prune` removes stale lease files under the host lock.
 */
import crypto from 'node:crypto';
import { fs } from '../fs/disk.js';
import path from 'node:path';
import { HardsnapError, errnoCode } from '../core/errors.js';
import { currentLockInfo, staleReason, type LockInfo } from './lock.js';
import { ensureSpoolDir, partMetaDir } from './layout.js';
import { writeFileAtomic } from '../fs/atomic-file.js';
import { removeName } from '../fs/remove-tree.js';

export const LEASE_SUFFIX = '.lease';

export interface LeaseInfo extends LockInfo {
  /** the generation (name) held */
  generation: string;
  /** who holds it, for humans: the command (`verify`), or a description (`tape job nightly`) */
  holder: string;
  /** ISO time (real clock) after which the lease no longer counts; null: no expiry */
  expires: string | null;
  /** true: it outlives the process that took it, until released or expired (a tape job's) */
  detached: boolean;
  /** `hardsnap lease`'s ID (16 hex digits, also in the file name), for `hardsnap release ID` */
  id?: string;
}

export interface Lease {
  /** absolute path of the lease file */
  file: string;
  info: LeaseInfo;
}

export interface LeaseOptions {
  /** the command line, as the lock records it */
  command: string;
  /** default: the command's first word after `hardsnap` */
  holder?: string;
  /** an expiry (real clock); required when detached */
  expires?: Date | null;
  /** outlive this process (see LeaseInfo.detached) */
  detached?: boolean;
  /** an ID to record and to put in the file names instead of a random nonce (src/spool/lease-last.ts) */
  id?: string;
}

export interface LeaseHandle {
  readonly leases: readonly Lease[];
  /** removes the lease files (idempotent) */
  release(): void;
}

/** An unreadable lease file (a writer killed before the rename cannot leave one; a damaged disk can) is stale after this. */
const UNREADABLE_STALE_MS = 60_000;

export function leasesDir(partDirPath: string): string {
  return path.join(partMetaDir(partDirPath), 'leases');
}

/**
 * Takes a lease on each of `generations` of the part. Throws the file system's error when the
 * lease directory cannot be written (a read-only spool): the caller decides whether to read
 * without one (readerLease does, and says so).
 */
export function takeLeases(partDirPath: string, generations: readonly string[], o: LeaseOptions): LeaseHandle {
  if (o.detached && !o.expires) throw new Error('internal error: a detached lease needs an expiry');
  const dir = leasesDir(partDirPath);
  ensureSpoolDir(dir);
  const owner = ownerToAdopt(partDirPath);
  if (owner) fs.lchownSync(dir, owner.uid, owner.gid);
  const base = currentLockInfo(o.command);
  const holder = o.holder ?? (o.command.split(/\s+/)[1] || o.command);
  const taken: Lease[] = [];
  const handle: LeaseHandle = {
    leases: taken,
    release() {
      for (const l of taken.splice(0)) releaseLease(l.file);
    },
  };
  try {
    for (const generation of generations) {
      const info: LeaseInfo = {
        ...base,
        generation,
        holder,
        expires: o.expires ? o.expires.toISOString() : null,
        detached: Boolean(o.detached),
        ...(o.id ? { id: o.id } : {}),
      };
      const name = `${generation}.${process.pid}.${o.id ?? crypto.randomBytes(4).toString('hex')}${LEASE_SUFFIX}`;
      const file = path.join(dir, name);
      writeFileAtomic(file, JSON.stringify(info) + '\n', { durable: false, mode: 0o600 });
      taken.push({ file, info });
      if (owner) fs.lchownSync(file, owner.uid, owner.gid);
    }
  } catch (err) {
    handle.release();
    throw err;
  }
  return handle;
}

/**
 * Root taking a lease in a part that another user's backups write (`verify` or a tape job run
 * as root on a spool kept by a backup user): the lease directory and files it makes get that
 * user's owner (the part's .hardsnap/), or that user's prune could not read them, and would
 * stop removing anything. Null when there is nothing to adopt.
 */
function ownerToAdopt(partDirPath: string): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const st = fs.statSync(partMetaDir(partDirPath), { throwIfNoEntry: false });
  return st && st.uid !== 0 ? { uid: st.uid, gid: st.gid } : null;
}

/** Removes one lease file; a lease already gone is fine. */
export function releaseLease(file: string): void {
  removeName(file);
}

/** Why a lease no longer counts, or null while it does. `now`: the real clock. */
export function leaseStaleReason(info: LeaseInfo, now: number = Date.now()): string | null {
  if (info.expires !== null) {
    const t = Date.parse(info.expires);
    if (!Number.isFinite(t) || now > t) return `it expired at ${info.expires}`;
  }
  if (info.detached) return null;
  return staleReason(info);
}

/** "being read by pid 4242 (verify)", or "leased by tape job nightly until 2026-...Z (lease ID)". */
export function describeLease(info: LeaseInfo): string {
  const until = info.expires ? ` until ${info.expires}` : '';
  if (info.detached) return `leased by ${info.holder}${until}${info.id ? ` (lease ${info.id})` : ''}`;
  const where = info.hostname ? ` on ${info.hostname}` : '';
  return `being read by pid ${info.pid}${where} (${info.holder})${until}`;
}

export interface ListedLease extends Lease {
  /** why it no longer counts, or null when it is live */
  stale: string | null;
}

/** Every lease file of a part, live or stale; an unreadable one counts as live for a minute. */
export function listLeases(partDirPath: string, now: number = Date.now()): ListedLease[] {
  const dir = leasesDir(partDirPath);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw err;
  }
  const out: ListedLease[] = [];
  for (const n of names.sort()) {
    if (!n.endsWith(LEASE_SUFFIX) || n.startsWith('.')) continue;
    const file = path.join(dir, n);
    let info: LeaseInfo;
    try {
      info = JSON.parse(fs.readFileSync(file, 'utf8')) as LeaseInfo;
      if (typeof info.generation !== 'string' || typeof info.pid !== 'number') throw new Error('not a lease');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') continue; // released in between
      const st = fs.lstatSync(file, { throwIfNoEntry: false });
      const generation = n.slice(0, n.indexOf('.'));
      info = {
        pid: -1,
        pidStart: null,
        hostname: '?',
        bootId: null,
        started: '?',
        command: '?',
        generation,
        holder: 'an unreadable lease file',
        expires: null,
        detached: true,
      };
      out.push({ file, info, stale: st && now - st.mtimeMs > UNREADABLE_STALE_MS ? 'it is unreadable' : null });
      continue;
    }
    out.push({ file, info, stale: leaseStaleReason(info, now) });
  }
  return out;
}

/** The live leases of a part by generation name. */
export function liveLeases(partDirPath: string, now: number = Date.now()): Map<string, LeaseInfo[]> {
  const m = new Map<string, LeaseInfo[]>();
  for (const l of listLeases(partDirPath, now)) {
    if (l.stale) continue;
    const list = m.get(l.info.generation) ?? [];
    list.push(l.info);
    m.set(l.info.generation, list);
  }
  return m;
}

/** Removes the stale lease files of a part (prune does, under the host lock); returns them. */
export function removeStaleLeases(partDirPath: string, now: number = Date.now()): ListedLease[] {
  const gone = listLeases(partDirPath, now).filter((l) => l.stale);
  for (const l of gone) releaseLease(l.file);
  // temporary files of writers killed between write and rename
  try {
    for (const n of fs.readdirSync(leasesDir(partDirPath))) {
      if (!n.startsWith('.') || !n.endsWith('.tmp')) continue;
      const f = path.join(leasesDir(partDirPath), n);
      const st = fs.lstatSync(f, { throwIfNoEntry: false });
      if (st && now - st.mtimeMs > UNREADABLE_STALE_MS) releaseLease(f);
    }
  } catch {
    /* no lease directory */
  }
  return gone;
}

/**
 * A reader's leases: taken, or, when the spool cannot be written (read-only mount, another
 * user's spool), none, said through `onNote`; the read goes on either way, and a generation
 * pruned under it is recognised by `generationGone`.
 */
export function readerLease(partDirPath: string, generations: readonly string[], command: string, onNote: (m: string) => void): LeaseHandle {
  try {
    return takeLeases(partDirPath, generations, { command });
  } catch (err) {
    onNote(
      `cannot take a lease in ${leasesDir(partDirPath)} (${errnoCode(err) ?? (err as Error).message}): reading without one, a prune may remove what is being read`,
    );
    return { leases: [], release() {} };
  }
}

/**
 * True when the generation directory at `genPath` is gone (pruned: moved to the trash) or is
 * another directory than the one whose inode was `ino` when reading began.
 */
export function generationGone(genPath: string, ino?: number): boolean {
  const st = fs.lstatSync(genPath, { throwIfNoEntry: false });
  return !st || !st.isDirectory() || (ino !== undefined && st.ino !== ino);
}

/** A generation removed while it was being read: one line says so, instead of its files one by one. */
export class GenerationGoneError extends HardsnapError {
  constructor(part: string, generation: string, what: string) {
    super('EPRUNED', `part '${part}': generation ${generation} was pruned while being read: ${what}`, {
      exit: 2,
      hint: 'a prune that did not see the lease (an older hardsnap, or a lease that could not be written) removed it',
    });
  }
}
