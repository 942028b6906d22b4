/**
 * The checks of `hardsnap check` that look at what is already in a spool rather than at its
 * file system: the spool tree's permissions (src/spool/permissions.ts) and trashes holding
 * what a prune could not delete (an immutable file, a mount point: src/retention/trash.ts).
 */
import { hostDir, listHosts, listParts, partDir } from '../spool/layout.js';
import { liveLockHolder } from '../spool/lock.js';
import { describeOpenDirs, fixPermissionsCommand, openSpoolDirs } from '../spool/permissions.js';
import { trashContents } from '../retention/trash.js';
import type { CheckResult } from './preflight.js';

export function spoolTreeChecks(spool: string, hosts?: readonly string[]): CheckResult[] {
  const open = openSpoolDirs(spool, hosts);
  const perms: CheckResult = open.length
    ? {
        id: 'permissions',
        title: 'spool tree closed to others',
        status: 'warn',
        required: false,
        detail: describeOpenDirs(open)!,
        hint: `${fixPermissionsCommand(spool)} (chmod go-rwx on those directories; generations are not touched)`,
      }
    : {
        id: 'permissions',
        title: 'spool tree closed to others',
        status: 'pass',
        required: false,
        detail: 'no directory above the generations is open to other users',
      };
  const stuck: string[] = [];
  for (const host of hosts ?? listHosts(spool)) {
    if (liveLockHolder(hostDir(spool, host))) continue; // a run may be emptying its trash right now
    for (const part of listParts(spool, host)) {
      const t = trashContents(partDir(spool, host, part));
      if (t.length) stuck.push(`${host}/${part} (${t.length})`);
    }
  }
  const trash: CheckResult = stuck.length
    ? {
        id: 'trash',
        title: 'trash empty',
        status: 'warn',
        required: false,
        detail: `the trash of ${stuck.join(', ')} holds what a prune could not delete`,
        hint: 'the next prune or backup says why, one line each (an immutable entry: chattr -i -a; a mount point: umount)',
      }
    : { id: 'trash', title: 'trash empty', status: 'pass', required: false, detail: 'nothing left in any trash' };
  return [perms, trash];
}
