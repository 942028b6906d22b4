// The spool never widens access (issue 16): a file its source hid behind a 0700 directory
// stays hidden from other users in the spool; an old 0755 spool is warned about by check and
// status, and tightened only by the explicit `check --fix-permissions`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, test } from './helpers/fixture.js';
import { BIN, REPO_ROOT, backupPart, hardsnap } from './helpers/run.js';
import { asNobody, assertNobodyCanRun, fingerprint, isRoot } from './helpers/robust.js';
import { makeTree } from './helpers/tree.js';
import { makeSpool } from './helpers/spool.js';

const HOST = 'h1';
const PART = 'db/pgsql';

/** What the spool tree is made of, for a part 'db/pgsql' of host h1. */
function treeDirs(spool: string): string[] {
  const h = path.join(spool, 'rsync', HOST);
  const p = path.join(h, 'db', 'pgsql');
  return [path.join(spool, 'rsync'), h, path.join(h, '.hardsnap'), path.join(h, 'db'), p, path.join(p, '.hardsnap'), path.join(p, '.hardsnap', 'manifests')];
}

function setup(tmp: string): { spool: string; src: string; dump: string } {
  fs.chmodSync(tmp, 0o755);
  // /var/backups/private (0700) / pgsql-dump (0755) / dump.sql (0644)
  const priv = path.join(tmp, 'private');
  const src = path.join(priv, 'pgsql-dump');
  makeTree(src, { 'dump.sql': 'CREATE TABLE secrets (password text);' });
  fs.chmodSync(src, 0o755);
  fs.chmodSync(priv, 0o700);
  const spool = makeSpool(path.join(tmp, 'spool'));
  fs.chmodSync(spool, 0o755); // the spool's own directory is the admin's: open, to show the tree below protects
  return { spool, src, dump: path.join(spool, 'rsync', HOST, 'db', 'pgsql', 'last', 'dump.sql') };
}

describe.runIf(isRoot)('the spool never widens access (needs root to switch to nobody)', () => {
  test('a source behind a 0700 directory, backed up: user nobody cannot read its file in the spool', ({ tmp }) => {
    assertNobodyCanRun(REPO_ROOT);
    const { spool, src, dump } = setup(tmp);
    // the source is closed to nobody ...
    expect(asNobody(['cat', path.join(src, 'dump.sql')]).code).not.toBe(0);
    const r = backupPart({ spool, host: HOST, part: PART, src }, '2026-05-01T03:00:00Z');
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(dump, 'utf8')).toMatch(/secrets/);
    // ... and so is its copy: every directory hardsnap made above the generation is 0700
    for (const d of treeDirs(spool)) expect(`${d} ${(fs.statSync(d).mode & 0o777).toString(8)}`).toBe(`${d} 700`);
    const read = asNobody(['cat', dump]);
    expect(read.code).not.toBe(0);
    expect(read.stderr).toMatch(/Permission denied/);
    expect(asNobody(['ls', path.join(spool, 'rsync')]).code).not.toBe(0);
    // and hardsnap says why, rather than 'no backups of host'
    const list = asNobody([process.execPath, BIN, 'list', '--spool', spool, '--host', HOST]);
    expect(list.code).toBe(2);
    expect(list.stderr).toMatch(
      /cannot read the backups of host 'h1' .*: EACCES \(the spool is closed to other users \(mode 0700\): run as its owner or root\)/,
    );
    // the generation itself keeps the source's modes (a plain copy of `last` is a restore)
    expect(fs.statSync(path.join(spool, 'rsync', HOST, 'db', 'pgsql', 'last')).mode & 0o777).toBe(0o755);
  });

  test('an old 0755 spool tree: check and status warn, a backup never changes it silently, check --fix-permissions makes it 0700 and leaves the generations alone', ({
    tmp,
  }) => {
    assertNobodyCanRun(REPO_ROOT);
    const { spool, src, dump } = setup(tmp);
    expect(backupPart({ spool, host: HOST, part: PART, src }, '2026-05-01T03:00:00Z').code).toBe(0);
    // what a spool made by an earlier version looks like
    for (const d of treeDirs(spool)) fs.chmodSync(d, 0o755);
    expect(asNobody(['cat', dump]).code).toBe(0); // the leak, for real

    const st = hardsnap(['status', '--spool', spool, '--host', HOST], { env: { HARDSNAP_NOW: '2026-05-01T04:00:00Z' } });
    expect(st.code, st.stdout).toBe(1);
    expect(st.stdout).toMatch(/^HARDSNAP WARNING/);
    expect(st.stdout).toMatch(
      /h1: WARNING 7 directories of the spool tree can be read or searched by other users .*hardsnap check --spool .* --fix-permissions/,
    );
    const ck = hardsnap(['check', '--spool', spool]);
    expect(ck.code, ck.stdout + ck.stderr).toBe(0); // a warning, not a failure
    expect(ck.stdout).toMatch(/WARN\s+spool tree closed to others\s+7 directories/);
    expect(ck.stdout).toMatch(/hint: hardsnap check --spool .* --fix-permissions/);

    // a backup does not tighten it behind the admin's back
    expect(backupPart({ spool, host: HOST, part: PART, src }, '2026-05-02T03:00:00Z').code).toBe(0);
    for (const d of treeDirs(spool)) expect(fs.statSync(d).mode & 0o777).toBe(0o755);

    const gens = path.join(spool, 'rsync', HOST, 'db', 'pgsql');
    const before = ['2026-05-01T030000Z', '2026-05-02T030000Z'].map((g) => fingerprint(path.join(gens, g)));
    const genModes = ['2026-05-01T030000Z', '2026-05-02T030000Z'].map((g) => fs.statSync(path.join(gens, g)).mode);
    const fix = hardsnap(['check', '--spool', spool, '--fix-permissions']);
    expect(fix.code, fix.stdout + fix.stderr).toBe(0);
    expect(fix.stdout).toMatch(/tightened .*\/rsync\/h1\/db\/pgsql: 0755 -> 0700/);
    expect(fix.stdout).toMatch(/PASS\s+spool tree closed to others/);
    for (const d of treeDirs(spool)) expect(fs.statSync(d).mode & 0o777).toBe(0o700);
    expect(['2026-05-01T030000Z', '2026-05-02T030000Z'].map((g) => fingerprint(path.join(gens, g)))).toEqual(before);
    expect(['2026-05-01T030000Z', '2026-05-02T030000Z'].map((g) => fs.statSync(path.join(gens, g)).mode)).toEqual(genModes);
    expect(asNobody(['cat', dump]).code).not.toBe(0);
    const ok = hardsnap(['status', '--spool', spool, '--host', HOST], { env: { HARDSNAP_NOW: '2026-05-02T04:00:00Z' } });
    expect(ok.code, ok.stdout).toBe(0);
  });
});
