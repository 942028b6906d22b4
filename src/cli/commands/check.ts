import type { Command } from 'commander';
import { checkSpool, type SpoolReport } from '../../check/preflight.js';
import { fs } from '../../fs/disk.js';
import { spoolTreeChecks } from '../../check/spool-tree.js';
import { octalMode, tightenSpoolDirs } from '../../spool/permissions.js';
import { addCommon, hostArg, spoolOf, type CommonOptions } from '../common.js';
import { isAlias, pathBytes } from '../../paths/aliases.js';
import { absoluteBytes, pathOfBytes } from '../../fs/byte-path.js';
import type { Output } from '../../ui/output.js';
import type { CliContext } from '../context.js';

interface CheckOptions extends CommonOptions {
  fixPermissions?: boolean;
}

export function register(program: Command, ctx: CliContext): void {
  addCommon(
    program
      .command('check')
      .option(
        '--fix-permissions',
        'take group and other access away from the directories hardsnap made above the generations (chmod go-rwx; spools made by earlier versions are 0755)',
      )
      .description(
        'preflight of the spool file system: hard links, symlinks, ownership, ns mtimes, atomic rename, attributes, clones (reflinks), free space and inodes, NFS mount options',
      )
      .addHelpText(
        'after',
        `
Runs every probe in a private directory <spool>/.hardsnap-check-<pid>/ and removes it.
'hardsnap init --spool DIR' runs the same checks and refuses to make a spool when a required one
fails. Then looks at the spool tree of every host (or --host): a directory hardsnap made above the
generations that other users can read or search is a warning (they are made 0700: the spool
must not open what the source kept closed); --fix-permissions tightens them (the generations
are never touched). A trash that holds what a prune could not delete is a warning too.

Exit codes: 0 every required check passed (warnings allowed); 1 bad usage; 2 a required check
failed (the spool cannot hold backups).

Examples:
  hardsnap check --spool /var/backups/hs
  hardsnap check --spool /mnt/nfs/dp_spool --json
  hardsnap check --spool /var/backups/hs --fix-permissions`,
      ),
  ).action(async (o: CheckOptions) => ctx.run(o, (out) => check(o, ctx, out)));
}

const LABEL = { pass: 'PASS', warn: 'WARN', fail: 'FAIL', skip: 'SKIP', info: 'INFO' } as const;

async function check(o: CheckOptions, ctx: CliContext, out: Output): Promise<number> {
  const cfg = ctx.config(o);
  const spool = spoolOf(o, cfg);
  const host = o.host ?? cfg.host;
  const hosts = host !== undefined ? [hostArg(host)] : undefined;
  const tightened = o.fixPermissions ? tightenSpoolDirs(spool, hosts) : [];
  for (const t of tightened) {
    if (t.after === null) out.warn(`cannot tighten ${t.path} (${octalMode(t.before)}): run as its owner or root`);
    else if (!o.json) out.print(`tightened ${t.path}: ${octalMode(t.before)} -> ${octalMode(t.after)}`);
  }
  const r = isAlias(spool) ? checkByteSpool(spool) : checkSpool(spool);
  r.checks.push(...spoolTreeChecks(spool, hosts));
  if (o.json) out.json({ ...r, ...(o.fixPermissions ? { tightened } : {}) });
  else printReport(r, out);
  return r.ok && tightened.every((t) => t.after !== null) ? 0 : 2;
}

/**
 * A spool path that is not UTF-8 (an alias) and does not exist yet: probed in its nearest
 * existing ancestor, found by bytes (the alias of a missing path has no parent to walk to).
 */
function checkByteSpool(spool: string): SpoolReport {
  let anc = absoluteBytes(pathBytes(spool));
  if (fs.existsSync(anc)) return checkSpool(spool);
  while (!fs.existsSync(anc)) anc = absoluteBytes(Buffer.concat([anc, Buffer.from('/..')]));
  return { ...checkSpool(pathOfBytes(anc)), spool };
}

function printReport(r: SpoolReport, out: Output): void {
  if (r.probed !== r.spool) out.print(`spool ${r.spool} does not exist yet: probed ${r.probed}, where 'hardsnap init --spool' would create it`);
  else out.print(`spool ${r.spool}`);
  if (r.mount) out.print(`on ${r.mount.source} ${r.mount.mountPoint} type ${r.mount.fstype}${r.mount.nfs ? ' (NFS)' : ''} (${r.mount.mountOptions.join(',')})`);
  const w = Math.max(...r.checks.map((c) => c.title.length));
  for (const c of r.checks) {
    out.print(`${LABEL[c.status]}  ${c.title.padEnd(w)}  ${c.detail}`);
    if (c.hint && c.status !== 'pass') out.print(`      ${''.padEnd(w)}  hint: ${c.hint}`);
  }
  const failed = r.checks.filter((c) => c.status === 'fail').length;
  const warned = r.checks.filter((c) => c.status === 'warn').length;
  out.print(
    r.ok
      ? `ok: the spool can hold backups${warned ? ` (${warned} warning${warned > 1 ? 's' : ''})` : ''}`
      : `FAILED: ${failed} required check${failed > 1 ? 's' : ''} failed: the spool cannot hold backups`,
  );
}
