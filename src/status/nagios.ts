/**
 * The Nagios view of a status: exit 0 OK, 1 WARNING, 2 CRITICAL (3 UNKNOWN is a usage error,
 * set by the CLI); a first line `HARDSNAP OK - 3 parts fresh`, then one line per part.
 */
import { formatDuration } from '../time/duration.js';
import { plural } from '../core/units.js';
import type { HostStatus, PartStatus, State } from './collect.js';

export interface Verdict {
  state: State;
  exit: 0 | 1 | 2;
  summary: string;
  lines: string[];
}

const EXIT: Record<State, 0 | 1 | 2> = { OK: 0, WARNING: 1, CRITICAL: 2 };

export function verdict(hosts: HostStatus[]): Verdict {
  const parts = hosts.flatMap((h) => h.parts);
  const bad = parts.filter((p) => p.state !== 'OK');
  const hostProblems = hosts.filter((h) => h.problem);
  const hostWarnings = hosts.flatMap((h) => (h.warnings ?? []).map((w) => ({ host: h.host, w })));
  const state: State = hostProblems.length || bad.some((p) => p.state === 'CRITICAL') ? 'CRITICAL' : bad.length || hostWarnings.length ? 'WARNING' : 'OK';
  let summary: string;
  if (state === 'OK') {
    summary = `HARDSNAP OK - ${plural(parts.length, 'part')} fresh`;
  } else {
    const what = [...hostProblems.map((h) => h.problem!), ...bad.map((p) => `${label(p)}: ${p.reasons[0]}`), ...hostWarnings.map((x) => `${x.host}: ${x.w}`)];
    const head = bad.length ? `${bad.length} of ${plural(parts.length, 'part')} not OK` : parts.length ? `${plural(parts.length, 'part')} fresh` : 'no parts';
    summary = `HARDSNAP ${state} - ${head}: ${what.slice(0, 3).join('; ')}${what.length > 3 ? `; and ${what.length - 3} more` : ''}`;
  }
  const lines = [
    ...hostProblems.map((h) => `${h.host}: CRITICAL ${h.problem}`),
    ...hostWarnings.map((x) => `${x.host}: WARNING ${x.w}`),
    ...hosts.flatMap((h) => h.parts.map((p) => partLine(p))),
  ];
  return { state, exit: EXIT[state], summary, lines };
}

function label(p: PartStatus): string {
  return `${p.host}/${p.part}`;
}

function partLine(p: PartStatus): string {
  const age = p.ageMs! < 0 ? `${formatDuration(-p.ageMs!)} in the future` : `${formatDuration(p.ageMs!)} ago`;
  const newest = p.newest ? `newest ${p.newest} (${age}, ${plural(p.generations, 'generation')})` : 'no complete generation';
  const run = p.lastRun ? `last run ${p.lastRun.status} (exit ${p.lastRun.exit}) at ${p.lastRun.end}` : 'no run recorded';
  const why = p.state === 'OK' ? '' : ` - ${p.reasons.join('; ')}`;
  const w = p.watcher ? `; watcher ${p.watcher.kind ?? 'unknown'} (pid ${p.watcher.pid}${p.watcher.running ? '' : ', not running'})` : '';
  const live = (p.leases ?? []).filter((l) => !l.stale);
  const leases = live.length ? `; ${plural(live.length, 'lease')}: ${live.map((l) => `${l.generation} ${l.description}`).join(', ')}` : '';
  return `${label(p)}: ${p.state} ${newest}; ${run}${p.running ? '; a run is in progress' : ''}${leases}${w}${why}`;
}
