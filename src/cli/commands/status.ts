import type { Command } from 'commander';
import { now } from '../../time/now.js';
import { parseDuration } from '../../time/duration.js';
import { listHosts } from '../../spool/layout.js';
import { collectHost, type HostStatus } from '../../status/collect.js';
import { verdict } from '../../status/nagios.js';
import { hostFamilies } from '../../metrics/host-metrics.js';
import { formatFamilies } from '../../metrics/prometheus.js';
import { writeMetricsFile } from '../../metrics/write.js';
import type { Output } from '../../ui/output.js';
import { UsageError, HardsnapError } from '../../core/errors.js';
import { addCommon, resolveTarget, spoolOf, type CommonOptions } from '../common.js';
import { requireSpool } from '../../spool/marker.js';
import type { CliContext } from '../context.js';

interface StatusOptions extends CommonOptions {
  maxAge?: string;
  allHosts?: boolean;
  metricsFile?: string;
}

export const DEFAULT_MAX_AGE = '36h';

export function register(program: Command, ctx: CliContext): void {
  addCommon(
    program
      .command('status')
      .description("per host and part: the newest complete generation, its age, the last run's result (Nagios exit codes)")
      .option('--max-age <duration>', `a newest generation older than this is a WARNING (default ${DEFAULT_MAX_AGE}; 0s: no age check)`)
      .option('--all-hosts', 'every host of the spool (the fleet view) instead of one')
      .option('--metrics-file <file>', 'also write the metrics in Prometheus text format (node_exporter textfile collector), atomically')
      .addHelpText(
        'after',
        `
The first line is a Nagios-style summary, then one line per part. Output is printed even under
cron: this command is a query.

Exit codes (Nagios): 0 OK: every part has a fresh generation and the last run was clean;
1 WARNING: a newest generation is older than --max-age, or the last run was partial (exit
23/24); 2 CRITICAL: the last run failed, or a part (or the host) has no complete generation;
3 UNKNOWN: bad usage or config.

Examples:
  hardsnap status --spool /var/backups/hs --host web1
  hardsnap status --spool /mnt/nfs/dp_spool --all-hosts --max-age 26h
  hardsnap status --config /etc/hardsnap.yaml --json --metrics-file /var/lib/node_exporter/textfile/hardsnap.prom`,
      ),
  ).action(async (o: StatusOptions) => ctx.run(o, (out) => status(o, ctx, out)));
}

async function status(o: StatusOptions, ctx: CliContext, out: Output): Promise<number> {
  const cfg = ctx.config(o);
  const spool = spoolOf(o, cfg);
  const maxAgeMs = parseDuration(o.maxAge ?? DEFAULT_MAX_AGE, '--max-age');
  const t = now();
  const noSpool = spoolProblem(spool);
  if (noSpool) {
    // an unmounted spool: CRITICAL, in Nagios' words (no metrics: their age shows it)
    const summary = `HARDSNAP CRITICAL - ${noSpool.message}`;
    if (o.json) out.json({ state: 'CRITICAL', exit: 2, summary, hosts: [], problem: noSpool.message });
    else out.print(summary);
    return 2;
  }
  let hosts: HostStatus[];
  if (o.allHosts) {
    if (o.host) throw new UsageError('--all-hosts and --host exclude each other');
    hosts = listHosts(spool).map((h) => collectHost(spool, h, t, maxAgeMs));
    if (!hosts.length) hosts = [{ host: '*', lastRun: null, lastSkipped: null, parts: [], warnings: [], problem: `no hosts in the spool ${spool}` }];
  } else {
    const { host } = resolveTarget(o, cfg);
    hosts = [
      collectHost(
        spool,
        host,
        t,
        maxAgeMs,
        (cfg.parts ?? []).map((p) => p.name),
      ),
    ];
  }
  const v = verdict(hosts);
  const metricsFile = o.metricsFile ?? cfg.metricsFile;
  if (metricsFile) {
    try {
      writeMetricsFile(metricsFile, formatFamilies(hostFamilies(hosts)));
    } catch (err) {
      out.warn((err as Error).message); // the verdict below is still right
    }
  }
  if (o.json) out.json({ state: v.state, exit: v.exit, summary: v.summary, hosts });
  else out.print([v.summary, ...v.lines].join('\n'));
  return v.exit;
}

/** A spool that is missing or unmarked (an unmounted file system), as an error; null when fine. */
function spoolProblem(spool: string): HardsnapError | null {
  try {
    requireSpool(spool);
    return null;
  } catch (err) {
    if (err instanceof HardsnapError && err.exit === 2) return err;
    throw err;
  }
}
