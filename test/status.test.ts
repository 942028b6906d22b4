// status (Nagios exit codes and lines) and the Prometheus metrics file, end to end.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, test } from './helpers/fixture.js';
import { at, hardsnap } from './helpers/run.js';
import { makeTree } from './helpers/tree.js';
import { readRunsLog } from './helpers/ops.js';
import { makeSpool } from './helpers/spool.js';

function setup(tmp: string, host = 'web1') {
  const spool = makeSpool(path.join(tmp, 'spool'));
  const a = path.join(tmp, 'a');
  const b = path.join(tmp, 'b');
  makeTree(a, { x: 'x', y: 'yy' });
  makeTree(b, { z: 'zzz' });
  const base = ['--spool', spool, '--host', host];
  const backup = ['backup', ...base, '--part', `mail=${a}`, '--part', `bm/pgsql=${b}`];
  return { spool, a, b, base, backup };
}

describe('status', () => {
  test('OK (0) when fresh and clean; WARNING (1) when older than --max-age or the last run was partial', ({ tmp }) => {
    const { spool, base, backup } = setup(tmp);
    expect(hardsnap(backup, at('2026-06-01T03:00:00Z')).code).toBe(0);
    const ok = hardsnap(['status', ...base], at('2026-06-01T09:00:00Z'));
    expect(ok.code, ok.stderr).toBe(0);
    const lines = ok.stdout.trim().split('\n');
    expect(lines[0]).toBe('HARDSNAP OK - 2 parts fresh');
    expect(lines.slice(1)).toHaveLength(2);
    expect(lines[1]).toMatch(/^web1\/bm\/pgsql: OK newest 2026-06-01T030000Z \(6h ago, 1 generation\); last run ok \(exit 0\)/);

    const old = hardsnap(['status', ...base, '--max-age', '1d'], at('2026-06-03T03:00:00Z'));
    expect(old.code).toBe(1);
    expect(old.stdout).toMatch(/^HARDSNAP WARNING - 2 of 2 parts not OK: web1\/bm\/pgsql: newest generation is 2d old, more than --max-age 1d/);
    // the default max-age is 36h
    expect(hardsnap(['status', ...base], at('2026-06-02T14:00:00Z')).code).toBe(0);
    expect(hardsnap(['status', ...base], at('2026-06-02T16:00:00Z')).code).toBe(1);

    // a partial run (exit 23) as backup records it
    const log = path.join(spool, 'rsync', 'web1', '.hardsnap', 'runs.jsonl');
    const last = readRunsLog(spool, 'web1').at(-1)!;
    const parts = last.parts as Record<string, Record<string, number>>;
    fs.appendFileSync(
      log,
      JSON.stringify({ ...last, exit: 23, status: 'partial', problems: 2, parts: { ...parts, mail: { ...parts.mail, problems: 2 } } }) + '\n',
    );
    const partial = hardsnap(['status', ...base], at('2026-06-01T09:00:00Z'));
    expect(partial.code).toBe(1);
    expect(partial.stdout).toMatch(/HARDSNAP WARNING - 1 of 2 parts not OK: web1\/mail: last run published with 2 problems/);
    // the part without problems in that run is OK
    expect(partial.stdout).toMatch(/^web1\/bm\/pgsql: OK /m);
  });

  test("each part is judged by its own last run: a later run of part a alone does not clear b's failure, and b's failure alone does not mark a CRITICAL", ({
    tmp,
  }) => {
    const { spool, base, a, b } = setup(tmp);
    expect(hardsnap(['backup', ...base, '--part', `mail=${a}`, '--part', `bm/pgsql=${b}`], at('2026-06-01T03:00:00Z')).code).toBe(0);
    // b's source goes missing (an unmounted file system): the run of both fails
    fs.renameSync(b, `${b}.away`);
    const both = hardsnap(['backup', ...base, '--part', `mail=${a}`, '--part', `bm/pgsql=${b}`], at('2026-06-02T03:00:00Z'));
    expect(both.code).toBe(2);
    expect(readRunsLog(spool, 'web1').at(-1)).toMatchObject({ status: 'failed', partNames: ['mail', 'bm/pgsql'], parts: {} });
    // then a run of part a alone succeeds
    expect(hardsnap(['backup', ...base, '--part', `mail=${a}`], at('2026-06-02T04:00:00Z')).code).toBe(0);
    const s1 = hardsnap(['status', ...base, '--json'], at('2026-06-02T05:00:00Z'));
    expect(s1.code, s1.stdout).toBe(2);
    const parts1 = (JSON.parse(s1.stdout) as { hosts: { parts: { part: string; state: string; reasons: string[]; lastRun: { status: string } }[] }[] })
      .hosts[0]!.parts;
    expect(parts1.map((p) => [p.part, p.state, p.lastRun.status])).toEqual([
      ['bm/pgsql', 'CRITICAL', 'failed'],
      ['mail', 'OK', 'ok'],
    ]);
    expect(parts1[0]!.reasons[0]).toMatch(/last run failed \(exit 2\): source of part 'bm\/pgsql' is missing/);
    const text1 = hardsnap(['status', ...base], at('2026-06-02T05:00:00Z')).stdout;
    expect(text1).toMatch(/^HARDSNAP CRITICAL - 1 of 2 parts not OK: web1\/bm\/pgsql: last run failed/);
    expect(text1).toMatch(/^web1\/mail: OK .*; last run ok \(exit 0\)/m);

    // the other way round: b alone fails, a's last run was clean
    fs.renameSync(`${b}.away`, b);
    expect(hardsnap(['backup', ...base, '--part', `mail=${a}`, '--part', `bm/pgsql=${b}`], at('2026-06-03T03:00:00Z')).code).toBe(0);
    expect(hardsnap(['status', ...base], at('2026-06-03T04:00:00Z')).code).toBe(0);
    fs.renameSync(b, `${b}.away`);
    expect(hardsnap(['backup', ...base, '--part', `bm/pgsql=${b}`], at('2026-06-03T05:00:00Z')).code).toBe(2);
    const s2 = hardsnap(['status', ...base], at('2026-06-03T06:00:00Z'));
    expect(s2.code).toBe(2);
    expect(s2.stdout).toMatch(/^HARDSNAP CRITICAL - 1 of 2 parts not OK: web1\/bm\/pgsql: last run failed/);
    expect(s2.stdout).toMatch(/^web1\/mail: OK newest 2026-06-03T030000Z .*; last run ok \(exit 0\)/m);
  });

  test('CRITICAL (2) when the last run failed or a part has no complete generation', ({ tmp }) => {
    const { base, backup, a } = setup(tmp);
    expect(hardsnap(backup, at('2026-06-01T03:00:00Z')).code).toBe(0);
    expect(hardsnap([...backup, '--pre-hook', 'exit 1'], at('2026-06-02T03:00:00Z')).code).toBe(2);
    const failed = hardsnap(['status', ...base], at('2026-06-02T04:00:00Z'));
    expect(failed.code).toBe(2);
    expect(failed.stdout).toMatch(/^HARDSNAP CRITICAL - 2 of 2 parts not OK: .*last run failed \(exit 2\): pre hook exited with status 1/);
    // a clean run clears it; a run skipped by --min-interval does not count as "the last run"
    expect(hardsnap(backup, at('2026-06-02T05:00:00Z')).code).toBe(0);
    expect(hardsnap([...backup, '--min-interval', '1d'], at('2026-06-02T06:00:00Z')).code).toBe(0);
    expect(hardsnap(['status', ...base], at('2026-06-02T07:00:00Z')).code).toBe(0);

    // a source that vanished (an unmounted file system) fails before the lock: still recorded
    const gone = hardsnap(['backup', ...base, '--part', `mail=${path.join(tmp, 'unmounted')}`], at('2026-06-02T08:00:00Z'));
    expect(gone.code).toBe(2);
    const st = hardsnap(['status', ...base], at('2026-06-02T09:00:00Z'));
    expect(st.code).toBe(2);
    expect(st.stdout).toMatch(/last run failed \(exit 2\): source of part 'mail' is missing/);
    expect(hardsnap(backup, at('2026-06-02T10:00:00Z')).code).toBe(0);

    // a configured part never backed up
    const cfg = path.join(tmp, 'hs.yaml');
    fs.writeFileSync(cfg, `parts:\n  mail: ${a}\n  new/part: ${a}\n`);
    const missing = hardsnap(['status', ...base, '--config', cfg], at('2026-06-02T11:00:00Z'));
    expect(missing.code).toBe(2);
    expect(missing.stdout).toMatch(/web1\/new\/part: CRITICAL no complete generation/);
    // a host never backed up
    const none = hardsnap(['status', base[0]!, base[1]!, '--host', 'nosuch']);
    expect(none.code).toBe(2);
    expect(none.stdout).toMatch(/^HARDSNAP CRITICAL - no parts: no backups of host 'nosuch'/);
  });

  test('UNKNOWN (3) on a usage error', ({ tmp }) => {
    const { base } = setup(tmp);
    for (const args of [
      ['status', ...base, '--max-age', 'soon'],
      ['status'],
      ['status', ...base, '--bogus'],
      ['status', ...base, '--config', path.join(tmp, 'missing.yaml')],
    ]) {
      const r = hardsnap(args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(3);
      expect(r.stderr).not.toBe('');
    }
  });

  test('--all-hosts --json covers every host of the spool', ({ tmp }) => {
    const one = setup(tmp, 'web1');
    expect(hardsnap(one.backup, at('2026-06-01T03:00:00Z')).code).toBe(0);
    const two = hardsnap(['backup', '--spool', one.spool, '--host', 'db2', '--part', `pg=${one.b}`], at('2026-06-01T04:00:00Z'));
    expect(two.code, two.stderr).toBe(0);
    const r = hardsnap(['status', '--spool', one.spool, '--all-hosts', '--json'], at('2026-06-01T05:00:00Z'));
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { state: string; exit: number; hosts: { host: string; parts: { part: string; newest: string; ageMs: number }[] }[] };
    expect(j.state).toBe('OK');
    expect(j.hosts.map((h) => [h.host, h.parts.map((p) => p.part)])).toEqual([
      ['db2', ['pg']],
      ['web1', ['bm/pgsql', 'mail']],
    ]);
    expect(j.hosts[0]!.parts[0]).toMatchObject({ newest: '2026-06-01T040000Z', ageMs: 3_600_000 });
  });
});

// One line of the text exposition format: a comment, or name{labels} value [timestamp].
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*="(?:\\\\[\\\\"n]|[^"\\\\\\n])*"';
const SAMPLE = new RegExp(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\\{${LABEL}(?:,${LABEL})*\\})? ([-+]?(?:\\d+(?:\\.\\d*)?(?:[eE][-+]?\\d+)?|Inf)|NaN)( -?\\d+)?$`);

function parseMetrics(text: string): Map<string, number> {
  expect(text.endsWith('\n')).toBe(true);
  const typed = new Set<string>();
  const values = new Map<string, number>();
  for (const line of text.slice(0, -1).split('\n')) {
    const t = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (gauge|counter|untyped|summary|histogram)$/.exec(line);
    if (t) {
      expect(typed.has(t[1]!), `second TYPE for ${t[1]}`).toBe(false);
      typed.add(t[1]!);
      continue;
    }
    if (/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* \S/.test(line)) continue;
    const m = SAMPLE.exec(line);
    expect(m, `not a sample line: ${JSON.stringify(line)}`).not.toBeNull();
    expect(typed.has(m![1]!), `sample before its TYPE: ${line}`).toBe(true);
    values.set(`${m![1]}${m![2] ?? ''}`, Number(m![3]));
  }
  return values;
}

describe('metrics file', () => {
  test('backup --metrics-file writes the exposition format atomically, with the right values', ({ tmp }) => {
    const { spool, backup, a } = setup(tmp);
    const prom = path.join(tmp, 'textfile', 'hardsnap.prom');
    fs.mkdirSync(path.dirname(prom));
    expect(hardsnap(backup, at('2026-06-01T03:00:00Z')).code).toBe(0);
    fs.writeFileSync(path.join(a, 'new'), 'n'.repeat(1000));
    const r = hardsnap([...backup, '--metrics-file', prom], at('2026-06-02T03:00:00Z'));
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readdirSync(path.dirname(prom))).toEqual(['hardsnap.prom']); // no temporary file left
    const v = parseMetrics(fs.readFileSync(prom, 'utf8'));
    const rec = readRunsLog(spool, 'web1').at(-1) as { exit: number; durationMs: number };
    const L = '{host="web1",part="mail"}';
    expect(v.get(`hardsnap_last_success_timestamp_seconds${L}`)).toBe(Date.parse('2026-06-02T03:00:00Z') / 1000);
    expect(v.get(`hardsnap_generations${L}`)).toBe(2);
    expect(v.get(`hardsnap_entries_linked${L}`)).toBe(2); // x and y
    expect(v.get(`hardsnap_entries_written${L}`)).toBe(1); // the new file
    expect(v.get(`hardsnap_bytes_written${L}`)).toBe(1000);
    expect(v.get(`hardsnap_problems${L}`)).toBe(0);
    expect(v.get('hardsnap_last_run_exit_code{host="web1"}')).toBe(rec.exit);
    expect(v.get('hardsnap_last_run_duration_seconds{host="web1"}')).toBe(rec.durationMs / 1000);
    expect(v.get('hardsnap_generations{host="web1",part="bm/pgsql"}')).toBe(2);

    // a failed run is in the metrics too: that is what an alert needs
    const f = hardsnap([...backup, '--metrics-file', prom, '--pre-hook', 'exit 9'], at('2026-06-03T03:00:00Z'));
    expect(f.code).toBe(2);
    expect(parseMetrics(fs.readFileSync(prom, 'utf8')).get('hardsnap_last_run_exit_code{host="web1"}')).toBe(2);
  });

  test('status --all-hosts --metrics-file escapes label values', ({ tmp }) => {
    const odd = 'edge"1\\x';
    const { spool, backup } = setup(tmp, odd);
    expect(hardsnap(backup, at('2026-06-01T03:00:00Z')).code).toBe(0);
    const prom = path.join(tmp, 'all.prom');
    const r = hardsnap(['status', '--spool', spool, '--all-hosts', '--metrics-file', prom], at('2026-06-01T04:00:00Z'));
    expect(r.code, r.stderr).toBe(0);
    const v = parseMetrics(fs.readFileSync(prom, 'utf8'));
    expect(v.get('hardsnap_generations{host="edge\\"1\\\\x",part="mail"}')).toBe(1);
  });
});
