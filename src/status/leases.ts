/**
 * The leases of a part as `status` shows them: who holds which generation until when (a tape
 * job's `hardsnap lease`, a reader's), and the stale ones, which are a WARNING: a tape job that
 * died or ran past its lease, a reader killed; the next prune removes their files.
 */
import { errnoCode } from '../core/errors.js';
import { describeLease, leasesDir, listLeases } from '../spool/leases.js';
import type { State } from './collect.js';

export interface LeaseStatus {
  generation: string;
  holder: string;
  /** `hardsnap lease`'s ID, or null for a reader's lease */
  id: string | null;
  /** ISO (real clock), or null */
  expires: string | null;
  detached: boolean;
  pid: number;
  hostname: string;
  /** "leased by bacula until ... (lease ID)", as prune says it */
  description: string;
  /** why it no longer counts, or null while it does */
  stale: string | null;
}

export function partLeases(partDirPath: string, raise: (s: State, why: string) => void): LeaseStatus[] {
  let listed;
  try {
    listed = listLeases(partDirPath);
  } catch (err) {
    raise(
      'WARNING',
      `its leases cannot be read (${errnoCode(err) ?? (err as Error).message}: ${leasesDir(partDirPath)}): prune removes nothing there until it is a readable directory`,
    );
    return [];
  }
  const out = listed.map(({ info, stale }): LeaseStatus => ({
    generation: info.generation,
    holder: info.holder,
    id: info.id ?? null,
    expires: info.expires,
    detached: info.detached,
    pid: info.pid,
    hostname: info.hostname,
    description: describeLease(info),
    stale,
  }));
  const stale = out.filter((l) => l.stale);
  if (stale.length) {
    const first = stale[0]!;
    raise(
      'WARNING',
      `${stale.length} stale ${stale.length === 1 ? 'lease' : 'leases'} (${first.generation} ${first.description}: ${first.stale}${stale.length > 1 ? '; ...' : ''}): ` +
        'a tape job died or ran past its lease, or a reader was killed; the next prune removes the lease files',
    );
  }
  return out;
}
