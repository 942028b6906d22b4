// Time cannot be poisoned (issue 16): HARDSNAP_NOW=9999-12-31T23:59:59Z was accepted, named a
// generation in the year 9999, and every later backup on the real clock was refused until that
// generation was deleted by hand (prune kept it as the newest).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, test } from './helpers/fixture.js';
import { hardsnap } from './helpers/run.js';
import { fingerprint } from './helpers/robust.js';
import { makeTree } from './helpers/tree.js';
import { generationNames, makeGeneration } from './helpers/ops.js';
import { now } from '../src/time/now.js';
import { genName, makeSpool } from './helpers/spool.js';

const HOST = 'h1';
const POISON = { HARDSNAP_NOW: '9999-12-31T23:59:59Z' };

describe('time cannot be poisoned', () => {
  test('HARDSNAP_NOW=9999-12-31T23:59:59Z is refused: one line, exit 1, nothing written (a new spool is not even made)', async ({ tmp }) => {
    const src = path.join(tmp, 'src');
    makeTree(src, { a: 'a' });
    const fresh = path.join(tmp, 'fresh');
    const r = hardsnap(['backup', '--spool', fresh, '--host', HOST, '--part', `p=${src}`], { env: POISON });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(
      /^hardsnap: error: HARDSNAP_NOW=9999-12-31T23:59:59Z is more than a day ahead of the clock .*nothing was written.*\(unset HARDSNAP_NOW, or fix the clock\)$/m,
    );
    expect(fs.existsSync(fresh)).toBe(false);

    // an existing spool: not a byte changes, and prune and status refuse it too
    const spool = makeSpool(path.join(tmp, 'spool'));
    await makeGeneration(spool, HOST, { p: src }, new Date(Date.now() - 3600_000).toISOString());
    const before = fingerprint(spool);
    for (const args of [
      ['backup', '--part', `p=${src}`],
      ['prune', '--keep-last', '1'],
    ]) {
      const x = hardsnap([...args, '--spool', spool, '--host', HOST], { env: POISON });
      expect(x.code, x.stderr).toBe(1);
      expect(x.stderr).toMatch(/more than a day ahead/);
    }
    expect(hardsnap(['status', '--spool', spool, '--host', HOST], { env: POISON }).code).toBe(3); // Nagios UNKNOWN
    expect(fingerprint(spool)).toEqual(before);
    // a real-clock backup goes on as ever
    const ok = hardsnap(['backup', '--spool', spool, '--host', HOST, '--part', `p=${src}`]);
    expect(ok.code, ok.stderr).toBe(0);
  });

  test('up to a day ahead is still accepted (a test aid, a clock a little off)', () => {
    const t = Date.parse('2026-12-01T00:00:00Z');
    expect(now({ HARDSNAP_NOW: '2026-12-01T23:00:00Z' }, t).toISOString()).toBe('2026-12-01T23:00:00.000Z');
    expect(() => now({ HARDSNAP_NOW: '2026-12-02T00:00:01Z' }, t)).toThrow(/more than a day ahead/);
  });

  test('a generation dated in the future (an older version, a wrong clock): status warns with the fix; the fix lets backups run again', async ({ tmp }) => {
    const spool = makeSpool(path.join(tmp, 'spool'));
    const src = path.join(tmp, 'src');
    makeTree(src, { a: 'a' });
    const past = new Date(Date.now() - 86_400_000).toISOString();
    const future = new Date(Date.now() + 30 * 86_400_000).toISOString();
    await makeGeneration(spool, HOST, { p: src }, past);
    await makeGeneration(spool, HOST, { p: src }, future); // what the poisoned run left (the engine itself does not check)
    const pdir = path.join(spool, 'rsync', HOST, 'p');
    const bad = genName(future);

    const st = hardsnap(['status', '--spool', spool, '--host', HOST]);
    expect(st.code, st.stdout).toBe(1);
    expect(st.stdout).toMatch(/^HARDSNAP WARNING/);
    expect(st.stdout).toMatch(new RegExp(`newest ${bad} \\(29d 23h in the future, 2 generations\\)`));
    const line = st.stdout.split('\n').find((l) => l.startsWith('h1/p:'))!;
    expect(line).toMatch(
      new RegExp(
        `generation ${bad} is dated [\\dd hms]+ in the future .*every backup is refused until it is gone; fix: mkdir -pm 700 (\\S+) && mv \\S+/p/${bad} \\S+/manifests/${bad}\\.hsm \\S+/\\.hardsnap/trash/ `,
      ),
    );

    // what the admin sees from a backup: refused, and where to look
    const refused = hardsnap(['backup', '--spool', spool, '--host', HOST, '--part', `p=${src}`]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(new RegExp(`${bad} is dated in the future .*'hardsnap status' says how to move it away`));
    // with --min-interval too: a generation dated after now is not "recent" (a ninth cron trial: skipped, exit 0, silent)
    const hourly = hardsnap(['backup', '--spool', spool, '--host', HOST, '--part', `p=${src}`, '--min-interval', '20h']);
    expect(hourly.code, hourly.stderr).toBe(2);
    expect(hourly.stderr).toMatch(new RegExp(`${bad} is dated in the future`));

    // the fix status prints, done as printed
    const mkdir = line.match(/fix: mkdir -pm 700 (\S+) && /)![1]!;
    fs.mkdirSync(mkdir, { recursive: true, mode: 0o700 });
    const mv = line.match(/ && (mv \S+ \S+ \S+)/)![1]!.split(' ');
    fs.renameSync(mv[1]!, path.join(mv[3]!, path.basename(mv[1]!)));
    fs.renameSync(mv[2]!, path.join(mv[3]!, path.basename(mv[2]!)));
    const b = hardsnap(['backup', '--spool', spool, '--host', HOST, '--part', `p=${src}`]);
    expect(b.code, b.stderr).toBe(0);
    expect(generationNames(spool, HOST, 'p')).not.toContain(bad);
    expect(fs.readdirSync(path.join(pdir, '.hardsnap', 'trash'))).toEqual([]); // the backup emptied it
    expect(fs.readlinkSync(path.join(pdir, 'last'))).not.toBe(bad);
    expect(hardsnap(['status', '--spool', spool, '--host', HOST]).code).toBe(0);
  });
});
