/**
 * Threat: a default ACL above the generations (an admin's `setfacl -d -m u:bob:rwx` on the
 * spool's mount point, or later on a part directory) is inherited by what a run creates, so
 * the generation holds ACLs the source never had: wider access in every copy made with
 * `tar --acls` or `rsync -aHAX` (docs/TAPE.md), a generation that `verify` finds wrong, and,
 * linked as unchanged, never healed. What hardsnap makes starts with no attributes.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from './helpers/fixture.js';
import { hardsnap } from './helpers/run.js';
import { makeTree } from './helpers/tree.js';
import { rsyncDiff } from './helpers/oracle.js';
import { makeSpool, nightly } from './helpers/spool.js';

const hasAcl = spawnSync('setfacl', ['--version']).status === 0;
const { genName, backup, partDir } = nightly({ host: 'h1', part: 'data', month: '2026-03' });
const LINKS = path.resolve(import.meta.dirname, '../../shared/check/links.py');

/** getfacl's entries of every inode under `dir` that has more than its mode bits */
function extendedAcls(dir: string): string[] {
  const out = execFileSync('getfacl', ['-RPsp', dir], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.startsWith('# file:'));
}

describe.runIf(hasAcl)('a default ACL above the generations is never inherited into them', () => {
  test('setfacl -d on the spool root before the first backup, and on the part directory later: every generation equals its source, verify finds nothing', ({
    tmp,
  }) => {
    const spool = makeSpool(path.join(tmp, 'spool'));
    const src = path.join(tmp, 'src');
    makeTree(src, { 'etc/shadow': 'secret', 'etc/motd': 'hello', 'home/a/.ssh/id': 'key' });
    fs.chmodSync(path.join(src, 'etc/shadow'), 0o640);
    fs.chmodSync(path.join(src, 'home/a/.ssh'), 0o700);
    execFileSync('setfacl', ['-d', '-m', 'u:65534:rwx', spool]);
    const r1 = backup(spool, src, 1);
    expect(r1.code, r1.stderr).toBe(0);
    const pdir = partDir(spool);
    // what hardsnap made under the spool root carries nothing from it
    expect(extendedAcls(path.join(spool, 'rsync'))).toEqual([]);
    expect(rsyncDiff(src, path.join(pdir, 'last'))).toEqual([]);
    // later, on the part directory itself (where each run makes its generation)
    execFileSync('setfacl', ['-d', '-m', 'u:65534:rwx', pdir]);
    fs.writeFileSync(path.join(src, 'etc/new'), 'made after the ACL');
    const r2 = backup(spool, src, 2);
    expect(r2.code, r2.stderr).toBe(0);
    const gen2 = fs.realpathSync(path.join(pdir, 'last'));
    expect(rsyncDiff(src, gen2)).toEqual([]);
    expect(extendedAcls(gen2)).toEqual([]);
    expect(spawnSync('python3', [LINKS, src, gen2], { encoding: 'utf8' }).status).toBe(0);
    const v = hardsnap(['verify', '--spool', spool, '--host', 'h1']);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    // a run killed and resumed takes over its partial: that root is reset too
    fs.writeFileSync(path.join(src, 'etc/newer'), 'x');
    const partial = path.join(pdir, `${genName(3)}.partial`);
    fs.mkdirSync(partial);
    execFileSync('setfacl', ['-m', 'u:65534:rwx', '-m', 'd:u:65534:rwx', partial]);
    const r3 = backup(spool, src, 3);
    expect(r3.code, r3.stderr).toBe(0);
    expect(rsyncDiff(src, path.join(pdir, 'last'))).toEqual([]);
    expect(extendedAcls(fs.realpathSync(path.join(pdir, 'last')))).toEqual([]);
  });

  test('a source ACL still comes through exactly (the reset is of what hardsnap made, not of what it copies)', ({ tmp }) => {
    const spool = makeSpool(path.join(tmp, 'spool'));
    const src = path.join(tmp, 'src');
    makeTree(src, { 'shared/f': 'x', g: 'y' });
    execFileSync('setfacl', ['-m', 'u:65534:r', path.join(src, 'g')]);
    execFileSync('setfacl', ['-d', '-m', 'g:65534:rx', path.join(src, 'shared')]);
    execFileSync('setfacl', ['-d', '-m', 'u:65534:rwx', spool]);
    const r = backup(spool, src, 1);
    expect(r.code, r.stderr).toBe(0);
    expect(rsyncDiff(src, path.join(partDir(spool), 'last'))).toEqual([]);
  });
});
