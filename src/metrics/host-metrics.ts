/** The metrics of hosts' status (status/collect.ts) as Prometheus families. */
import type { HostStatus } from '../status/collect.js';
import type { Family, Sample } from './prometheus.js';

function num(v: unknown): number {
  return typeof v === 'number' ? v : 0;
}

export function hostFamilies(hosts: HostStatus[]): Family[] {
  const perPart = (pick: (p: HostStatus['parts'][number]) => number | null): Sample[] =>
    hosts.flatMap((h) =>
      h.parts.flatMap((p) => {
        const v = pick(p);
        return v === null ? [] : [{ labels: { host: h.host, part: p.part }, value: v }];
      }),
    );
  const perHost = (pick: (h: HostStatus) => number | null): Sample[] =>
    hosts.flatMap((h) => {
      const v = pick(h);
      return v === null ? [] : [{ labels: { host: h.host }, value: v }];
    });
  const stat = (key: string) => perPart((p) => (p.stats ? num(p.stats[key]) : null));
  return [
    {
      name: 'hardsnap_last_success_timestamp_seconds',
      type: 'gauge',
      help: 'Time of the newest complete generation of the part (when its run started), seconds since the epoch.',
      samples: perPart((p) => (p.newestTime ? Date.parse(p.newestTime) / 1000 : null)),
    },
    { name: 'hardsnap_generations', type: 'gauge', help: 'Complete generations of the part in the spool.', samples: perPart((p) => p.generations) },
    {
      name: 'hardsnap_last_run_exit_code',
      type: 'gauge',
      help: 'Exit code of the last backup run of the host (runs skipped by --min-interval are not counted).',
      samples: perHost((h) => h.lastRun?.exit ?? null),
    },
    {
      name: 'hardsnap_last_run_duration_seconds',
      type: 'gauge',
      help: 'Duration of the last backup run of the host, in seconds.',
      samples: perHost((h) => (h.lastRun ? h.lastRun.durationMs / 1000 : null)),
    },
    {
      name: 'hardsnap_last_run_timestamp_seconds',
      type: 'gauge',
      help: 'When the last backup run of the host ended, seconds since the epoch.',
      samples: perHost((h) => (h.lastRun ? Date.parse(h.lastRun.end) / 1000 : null)),
    },
    {
      name: 'hardsnap_bytes_written',
      type: 'gauge',
      help: 'Bytes written (not linked) for the part by the last run that built it.',
      samples: stat('bytesWritten'),
    },
    {
      name: 'hardsnap_entries_linked',
      type: 'gauge',
      help: 'Entries hard-linked to the previous generation by the last run that built the part.',
      samples: stat('linked'),
    },
    { name: 'hardsnap_entries_written', type: 'gauge', help: 'Entries written as new inodes by the last run that built the part.', samples: stat('copied') },
    {
      name: 'hardsnap_entries_cloned',
      type: 'gauge',
      help: 'Files written as clones of an identical file in the spool (new inodes sharing its data: XFS, btrfs) by the last run that built the part.',
      samples: stat('cloned'),
    },
    {
      name: 'hardsnap_problems',
      type: 'gauge',
      help: 'Entries of the part that could not be transferred in the last run that built it.',
      samples: stat('problems'),
    },
    {
      name: 'hardsnap_vanished',
      type: 'gauge',
      help: 'Source entries of the part that vanished during the last run that built it.',
      samples: stat('vanished'),
    },
  ];
}
