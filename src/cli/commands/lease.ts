import os from 'node:os';
import type { Command } from 'commander';
import { UsageError } from '../../core/errors.js';
import { parseDuration } from '../../time/duration.js';
import { leaseLast, releaseLeaseId } from '../../spool/lease-last.js';
import type { Output } from '../../ui/output.js';
import { addCommon, collect, spoolTarget, type CommonOptions } from '../common.js';
import { commandLine } from '../argv.js';
import type { CliContext } from '../context.js';

interface LeaseOptions extends CommonOptions {
  part?: string[];
  all?: boolean;
  for?: string;
  holder?: string;
}

interface ReleaseOptions extends CommonOptions {
  part?: string[];
}

export function register(program: Command, ctx: CliContext): void {
  addCommon(
    program
      .command('lease')
      .description('resolve `last` once and hold that generation against prune while a tape job reads it (until released, or until --for runs out)')
      .option('--part <name>', 'a part to lease (repeatable)', collect)
      .option('--all', 'every part of the host')
      .option('--for <duration>', 'how long the lease holds at most, e.g. 6h: longer than the job takes (required)')
      .option('--holder <text>', 'who holds it, for status and prune (default: "lease on HOSTNAME")')
      .addHelpText(
        'after',
        `
Prints one line per part: the lease ID, the part and the absolute path of the generation
\`last\` named, separated by tabs (--json: {id, holder, expires, parts: [{part, generation,
path, file}]}). Read that path, not \`last\`: a backup may move \`last\` while the job runs.
Until 'hardsnap release ID' or the expiry, prune keeps the generation and names the holder.
The lease is a file in the part's .hardsnap/leases/: it holds across hosts on an NFS spool
(clocks must agree), and a job that dies holds it only until the expiry.

Exit codes: 0 leased; 1 bad usage (no --for, no --part or --all, unknown part); 2 failed: a
part has no complete generation, or the lease file cannot be written (nothing is leased then),
or the spool is missing or has no marker (not mounted).

Examples:
  hardsnap lease --config /etc/hardsnap.yaml --part mail/imap --for 6h --holder bacula
  hardsnap lease --spool /var/backups/hs --host web1 --all --for 12h --json
  hardsnap release --config /etc/hardsnap.yaml 3f2a9c0e1b7d4a55`,
      ),
  ).action(async (o: LeaseOptions) => ctx.run(o, (out) => lease(o, ctx, out)));

  addCommon(
    program
      .command('release')
      .description('end a lease taken with `hardsnap lease`, so prune may remove its generations again')
      .argument('<id>', 'the lease ID hardsnap lease printed')
      .option('--part <name>', 'only in this part (repeatable; default: every part of the host)', collect)
      .addHelpText(
        'after',
        `
Exit codes: 0 released, and every generation it held is still there; 1 bad usage (not a lease
ID); 2 no lease with that ID (released already, or expired and removed by a prune), or the
lease had expired and a generation it held is gone: the job's copy of it may be incomplete.
A lease that had expired but whose generation is still there is a warning (exit 0): nothing
was removed under the job.

Examples:
  hardsnap release --config /etc/hardsnap.yaml 3f2a9c0e1b7d4a55`,
      ),
  ).action(async (id: string, o: ReleaseOptions) => ctx.run(o, (out) => release(id, o, ctx, out)));
}

async function lease(o: LeaseOptions, ctx: CliContext, out: Output): Promise<number> {
  const hint = 'e.g. hardsnap lease --part mail --for 6h --holder bacula';
  if (!o.part?.length && !o.all) throw new UsageError('lease needs --part NAME or --all', { hint });
  if (o.part?.length && o.all) throw new UsageError('--part and --all exclude each other');
  if (!o.for) throw new UsageError('lease needs --for DURATION: how long it holds at most, should the job die', { hint });
  const forMs = parseDuration(o.for, '--for');
  const { spool, host } = spoolTarget(o, ctx.config(o), out, true);
  const holder = o.holder?.trim() || `lease on ${os.hostname()}`;
  if (/[\x00-\x1f\x7f]/.test(holder)) throw new UsageError('--holder: control characters are not allowed');
  const l = leaseLast({ spool, host, parts: o.part ?? [], forMs, holder, command: commandLine() });
  if (o.json) {
    out.json(l);
  } else {
    out.print(l.parts.map((p) => `${l.id}\t${p.part}\t${p.path}`).join('\n'));
    out.note(`lease ${l.id} by ${holder} until ${l.expires}: ${l.parts.map((p) => `${p.part} ${p.generation}`).join(', ')}`);
  }
  return 0;
}

async function release(id: string, o: ReleaseOptions, ctx: CliContext, out: Output): Promise<number> {
  const { spool, host } = spoolTarget(o, ctx.config(o), out);
  const done = releaseLeaseId(spool, host, id, o.part ?? []);
  if (o.json) out.json({ id, released: done });
  if (!done.length) {
    out.error(`no lease ${id} in the spool: released already, or it expired and a prune removed it (its generation may be gone)`);
    return 2;
  }
  let exit = 0;
  for (const r of done) {
    if (r.stale && r.gone) {
      out.error(
        `lease ${id} on ${r.part} ${r.generation} stopped counting before it was released (${r.stale}), and the generation is gone: the copy of it may be incomplete`,
      );
      exit = 2;
    } else if (r.gone) {
      out.error(`${r.part} ${r.generation}, held by lease ${id}, is gone: something that did not see the lease removed it`);
      exit = 2;
    } else if (r.stale) {
      out.warn(`lease ${id} on ${r.part} ${r.generation} stopped counting before it was released (${r.stale}); the generation is still there`);
    } else {
      out.note(`released lease ${id} on ${r.part} ${r.generation}`);
    }
  }
  return exit;
}
