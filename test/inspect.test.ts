// The inspection commands on a real spool made by bin/hardsnap backup on successive (faked) days:
// diff, history and du read manifests; verify compares the spool tree with them.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll } from 'vitest';
import { describe, expect, test, tmpdir } from './helpers/fixture.js';
import { backupParts, hardsnap } from './helpers/run.js';
import { makeTree, setMtimesNs } from './helpers/tree.js';
import { mktree } from './helpers/bench-tree.js';
import { classify } from '../src/inspect/diff.js';
import { versionChange } from '../src/inspect/history.js';
import type { ManifestEntry } from '../src/manifest/format.js';
import { makeSpool, nightly } from './helpers/spool.js';
import { ManifestReader } from '../src/manifest/reader.js';

const HOST = 'h1';
const { date, day, genName, gen } = nightly({ host: HOST, part: 'p', month: '2026-11' });
/** The four nights of the backups here (days of 2026-11), their dates and generation names. */
const NIGHTS = [20, 21, 22, 23];
const DAYS = NIGHTS.map(date);
const GEN = NIGHTS.map(genName);
/** caf\xe9<newline>name: not UTF-8, with a control character */
const ODD = Buffer.concat([Buffer.from('caf'), Buffer.from([0xe9, 0x0a]), Buffer.from('name')]);
const ODD_SHOWN = 'caf\\xe9\\x0aname';
const T0 = 1_700_000_000_123_456_789n;

/** The backup of night i (0 to 3) of NIGHTS, of `parts` (NAME=SRC each): it must succeed. */
function runNight(spool: string, i: number, parts: string[]): void {
  const r = backupParts({ spool, host: HOST }, parts, day(NIGHTS[i]!));
  expect(r.code, r.stderr).toBe(0);
}

function run(spool: string, args: string[]) {
  return hardsnap([...args, '--spool', spool, '--host', HOST], { env: { HARDSNAP_NOW: '2026-11-24T12:00:00Z' } });
}

function json<T = any>(spool: string, args: string[]): T {
  const r = run(spool, [...args, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as T;
}

/** Generation g (0 to 3) of a part. */
function genDir(spool: string, part: string, g: number): string {
  return gen(spool, NIGHTS[g]!, part);
}

/** Regular-file inodes of a generation, by lstat of the real tree (the test's own oracle). */
function inodesOf(dir: string | Buffer, acc = new Map<bigint, bigint>()): Map<bigint, bigint> {
  for (const name of fs.readdirSync(dir, { encoding: 'buffer' })) {
    const p = Buffer.concat([Buffer.from(dir), Buffer.from('/'), name]);
    const st = fs.lstatSync(p, { bigint: true });
    if (st.isDirectory()) inodesOf(p, acc);
    else if (st.isFile()) acc.set(st.ino, st.size);
  }
  return acc;
}

describe('diff, history and du on four days of backups', () => {
  let spool: string;
  let src: string;
  let etc: string;

  beforeAll(() => {
    const root = tmpdir();
    spool = makeSpool(path.join(root, 'spool'));
    src = path.join(root, 'src');
    etc = path.join(root, 'etc');
    makeTree(src, {
      'keep.txt': { content: 'kept by every generation', mtime: T0 },
      'edit.txt': { content: 'v1', mtime: T0 },
      'gone.txt': { content: 'bye', mtime: T0 },
      'perm.txt': { content: 'perm', mode: 0o644, mtime: T0 },
      link: { symlink: 'keep.txt' },
      'd/inner.txt': { content: 'x', mtime: T0 },
      'dd/f.txt': { content: 'in a removed dir', mtime: T0 },
    });
    makeTree(etc, { hosts: { content: '127.0.0.1 localhost\n', mtime: T0 } });
    const parts = [`files=${src}`, `etc=${etc}`];
    runNight(spool, 0, parts);
    // day 2: remove, chmod, retarget, add (with an odd name), remove a directory, add one
    fs.rmSync(path.join(src, 'gone.txt'));
    fs.chmodSync(path.join(src, 'perm.txt'), 0o600);
    fs.rmSync(path.join(src, 'link'));
    fs.symlinkSync('edit.txt', path.join(src, 'link'));
    makeTree(src, [
      [ODD, { content: 'odd', mtime: T0 }],
      ['newdir/n.txt', { content: 'new', mtime: T0 }],
    ]);
    fs.rmSync(path.join(src, 'dd'), { recursive: true });
    setMtimesNs([[Buffer.from(src), T0 + 1000n]]);
    runNight(spool, 1, parts);
    // day 3: new content for edit.txt
    fs.writeFileSync(path.join(src, 'edit.txt'), 'version three');
    runNight(spool, 2, parts);
    // day 4: nothing changes in files/, etc/hosts changes
    fs.writeFileSync(path.join(etc, 'hosts'), '127.0.0.1 localhost\n::1 localhost\n');
    runNight(spool, 3, parts);
  });

  test('diff lists exactly the added, removed, changed and metadata-only entries, odd names escaped', () => {
    const r = run(spool, ['diff', '--part', 'files', DAYS[0]!, DAYS[1]!]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    const byMark = (m: string) =>
      lines
        .filter((l) => l.startsWith(`${m} `))
        .map((l) => l.slice(2).replace(/ \(.*\)$/, ''))
        .sort();
    expect(byMark('+')).toEqual([ODD_SHOWN, 'newdir', 'newdir/n.txt'].sort());
    expect(byMark('-')).toEqual(['dd', 'dd/f.txt', 'gone.txt']);
    expect(byMark('M')).toEqual(['link']);
    expect(byMark('m')).toEqual(['.', 'perm.txt']);
    expect(lines).toHaveLength(9);
    expect(lines).toContain('m perm.txt (mode 0644->0600)');
    expect(lines.find((l) => l.startsWith('M link'))).toContain('target keep.txt->edit.txt');
  });

  test('diff --json gives the same changes as arrays, and a later pair shows only the day-3 edit', () => {
    const d = json(spool, ['diff', '--part', 'files', GEN[0]!, GEN[1]!]);
    expect(d.from).toBe(GEN[0]);
    expect(d.to).toBe(GEN[1]);
    expect(d.added.map((e: any) => e.path).sort()).toEqual([ODD_SHOWN, 'newdir', 'newdir/n.txt'].sort());
    expect(d.removed.map((e: any) => e.path)).toEqual(['dd', 'dd/f.txt', 'gone.txt']);
    expect(d.content.map((e: any) => e.path)).toEqual(['link']);
    expect(d.metadata.map((e: any) => e.path).sort()).toEqual(['.', 'perm.txt']);
    const later = json(spool, ['diff', '--part', 'files', DAYS[1]!, DAYS[2]!]);
    expect(later.content.map((e: any) => e.path)).toEqual(['edit.txt']);
    expect([...later.added, ...later.removed, ...later.metadata]).toEqual([]);
    const none = run(spool, ['diff', '--part', 'files', DAYS[2]!, DAYS[3]!]);
    expect(none.code).toBe(0);
    expect(none.stdout).toBe('');
  });

  test('diff refuses a WHEN before the first generation with exit 1 and a hint', () => {
    const r = run(spool, ['diff', '--part', 'files', '2026-11-01', DAYS[1]!]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no complete generation at or before "2026-11-01".*oldest complete generation is 2026-11-20T030000Z/);
  });

  test('history shows a new inode where the file changed (day 3) and the same inode before and after', () => {
    const h = json(spool, ['history', '--part', 'files', 'edit.txt']);
    expect(h.versions.map((v: any) => v.generation)).toEqual(GEN);
    expect(h.versions.map((v: any) => v.change)).toEqual(['new', 'same', 'content', 'same']);
    const ino = (g: number) => Number(fs.statSync(path.join(genDir(spool, 'files', g), 'edit.txt')).ino);
    expect(h.versions.map((v: any) => v.ino)).toEqual([0, 1, 2, 3].map(ino));
    expect(ino(1)).toBe(ino(0));
    expect(ino(2)).not.toBe(ino(1));
    expect(h.versions[2].size).toBe('version three'.length);
    expect(h.versions[0].hash).toMatch(/^[0-9a-f]{16}$/);
    expect(h.versions[2].hash).not.toBe(h.versions[1].hash);
    expect(h.versions[0].mtime).toBe('2023-11-14T22:13:20.123456789Z');
    const text = run(spool, ['history', '--part', 'files', 'edit.txt']);
    expect(text.code).toBe(0);
    expect(
      text.stdout
        .trimEnd()
        .split('\n')
        .map((l) => l.split(/\s+/)[4]),
    ).toEqual(['new', 'same', 'changed', 'same']);
  });

  test('history takes a path in the escaped form diff prints, and says so when a path never existed', () => {
    const h = json(spool, ['history', '--part', 'files', ODD_SHOWN]);
    expect(h.path).toBe(ODD_SHOWN);
    expect(h.versions.map((v: any) => v.generation)).toEqual(GEN.slice(1));
    const gone = json(spool, ['history', '--part', 'files', './gone.txt']);
    expect(gone.versions.map((v: any) => v.generation)).toEqual([GEN[0]]);
    const never = run(spool, ['history', '--part', 'files', 'no/such']);
    expect(never.code).toBe(1);
    expect(never.stderr).toMatch(/no\/such is in no complete generation of part 'files'/);
  });

  test('du: a file only in one generation is unique to it, a file in all counts for none, totals add up', () => {
    const u = json(spool, ['du']);
    const files = u.parts.find((p: any) => p.part === 'files');
    expect(files.generations.map((g: any) => g.generation)).toEqual(GEN);
    // the oracle: inodes of the real trees
    const sets = GEN.map((_, i) => inodesOf(genDir(spool, 'files', i)));
    const all = new Map<bigint, bigint>();
    for (const s of sets) for (const [k, v] of s) all.set(k, v);
    GEN.forEach((_, i) => {
      let unique = 0n;
      for (const [ino, size] of sets[i]!) if (sets.filter((s) => s.has(ino)).length === 1) unique += size;
      expect(files.generations[i].unique, GEN[i]).toBe(Number(unique));
    });
    // by hand: day 1 alone holds gone.txt, dd/f.txt and perm.txt at 0644
    expect(files.generations[0].unique).toBe('bye'.length + 'in a removed dir'.length + 'perm'.length);
    const keepIno = fs.statSync(path.join(genDir(spool, 'files', 0), 'keep.txt')).ino;
    expect(sets.every((s) => s.has(BigInt(keepIno)))).toBe(true);
    expect(files.generations[3].unique).toBe(0);
    expect(files.generations[1].logical).toBe([...sets[1]!.values()].reduce((a, b) => a + Number(b), 0));
    let total = 0n;
    for (const v of all.values()) total += v;
    expect(files.total).toBe(Number(total));
    expect(files.inodes).toBe(all.size);
    const etc = u.parts.find((p: any) => p.part === 'etc');
    expect(u.total).toBe(files.total + etc.total);
    expect(etc.total).toBe('127.0.0.1 localhost\n'.length + '127.0.0.1 localhost\n::1 localhost\n'.length);
    const text = run(spool, ['du', '--part', 'files']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^files:\n/);
    expect(text.stdout).toMatch(/total: 4 generations, \d+ distinct files, \d+ B/);
  });

  /** The oracle: bytes of the inodes that only generations in `set` hold, from the real trees. */
  function freedByTrees(set: number[]): number {
    const sets = GEN.map((_, i) => inodesOf(genDir(spool, 'files', i)));
    let n = 0n;
    const seen = new Set<bigint>();
    for (const i of set) {
      for (const [ino, size] of sets[i]!) {
        if (seen.has(ino)) continue;
        seen.add(ino);
        if (sets.every((s, j) => set.includes(j) || !s.has(ino))) n += size;
      }
    }
    return Number(n);
  }

  test('du: FREED WITH OLDER is what deleting a generation and every older one frees, not UNIQUE again (issue 18)', () => {
    const files = json(spool, ['du', '--part', 'files']).parts[0];
    const freed = files.generations.map((g: any) => g.freedWithOlder);
    expect(freed).toEqual(GEN.map((_, i) => freedByTrees(GEN.slice(0, i + 1).map((_, j) => j))));
    // by hand: day 1 alone holds gone.txt, dd/f.txt, perm.txt at 0644; edit.txt v1 is day 1's and day 2's
    expect(freed[0]).toBe(files.generations[0].unique);
    expect(freed[1]).toBe('bye'.length + 'in a removed dir'.length + 'perm'.length + 'v1'.length);
    expect(freed[1]).toBeGreaterThan(files.generations[0].unique + files.generations[1].unique);
    expect(freed[3]).toBe(files.total);
    expect(files.generations[0]).not.toHaveProperty('freed');
    const text = run(spool, ['du', '--part', 'files']);
    expect(text.stdout).toMatch(/GENERATION +FILES +LOGICAL +UNIQUE +FREED WITH OLDER\n/);
  });

  test('du GENERATIONS: what deleting exactly those generations together frees (a range A..B, single WHENs, open ends)', () => {
    const pick = (args: string[]) => json(spool, ['du', '--part', 'files', ...args]).parts[0].selection;
    // days 1 and 2 together free edit.txt v1 too, which neither frees alone
    const two = pick([`${DAYS[0]}..${DAYS[1]}`]);
    expect(two.generations).toEqual([GEN[0], GEN[1]]);
    expect(two.freed).toBe(freedByTrees([0, 1]));
    expect(two.freed).toBe('bye'.length + 'in a removed dir'.length + 'perm'.length + 'v1'.length);
    // the same set named one by one, and with an open start
    expect(pick([GEN[0]!, GEN[1]!])).toEqual(two);
    expect(pick([`..${DAYS[1]}`])).toEqual(two);
    // a set with a gap: days 1 and 3 share nothing only with each other
    const gap = pick([GEN[0]!, GEN[2]!]);
    expect(gap.freed).toBe(freedByTrees([0, 2]));
    // an open end: day 3 to the newest
    const tail = pick([`${DAYS[2]}..`]);
    expect(tail.generations).toEqual([GEN[2], GEN[3]]);
    expect(tail.freed).toBe(freedByTrees([2, 3]));
    // everything frees the whole part
    expect(run(spool, ['du', '--part', 'files', '..']).stderr).toContain('is not a range');
    expect(pick([`..${DAYS[3]}`]).freed).toBe(json(spool, ['du', '--part', 'files']).parts[0].total);
    // text: the selected generations marked, one closing line
    const text = run(spool, ['du', '--part', 'files', `${DAYS[0]}..${DAYS[1]}`]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`${GEN[0]} .* \\*\n`));
    expect(text.stdout).toContain(`deleting the 2 generations marked * together would free ${two.freed} B (${two.files} files)`);
    // a WHEN before every generation matches nothing: a usage error
    const none = run(spool, ['du', '--part', 'files', '2020-01-01']);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('matches no complete generation');
  });
});

describe('verify', () => {
  function twoDays(root: string): { spool: string; g0: string; g1: string } {
    const spool = makeSpool(path.join(root, 'spool'));
    const src = path.join(root, 'src');
    makeTree(src, {
      'shared.txt': { content: 'the same on both days', mtime: T0 },
      'changes.txt': 'day 1',
      'd/inner.txt': { content: 'inner', mtime: T0 },
      link: { symlink: 'shared.txt' },
    });
    makeTree(src, [[ODD, 'odd name']]);
    runNight(spool, 0, [`p=${src}`]);
    fs.writeFileSync(path.join(src, 'changes.txt'), 'day 2!');
    runNight(spool, 1, [`p=${src}`]);
    return { spool, g0: genDir(spool, 'p', 0), g1: genDir(spool, 'p', 1) };
  }

  function problems(spool: string, extra: string[] = []): { code: number; lines: string[]; stderr: string } {
    const r = run(spool, ['verify', ...extra]);
    return { code: r.code, lines: r.stdout.trimEnd().split('\n').filter(Boolean), stderr: r.stderr };
  }

  test('finds nothing on an untouched spool, with or without --deep (exit 0, silent)', ({ tmp }) => {
    const { spool } = twoDays(tmp);
    for (const args of [[], ['--deep']]) {
      const r = run(spool, ['verify', ...args]);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout + r.stderr).toBe('');
    }
    const j = json(spool, ['verify', '--deep']);
    expect(j.ok).toBe(true);
    expect(j.generations).toHaveLength(2);
    expect(j.generations[0].hashed).toBe(4);
    // day 2 shares every inode but changes.txt: --deep reads a shared inode once
    expect(j.generations[1].hashed).toBe(1);
  });

  test('finds nothing on an untouched spool of odd names (non-UTF-8, 255-byte, 40 deep)', ({ tmp }) => {
    const src = path.join(tmp, 'src');
    mktree(src, { files: 40, odd: true, seed: 3 });
    const spool = makeSpool(path.join(tmp, 'spool'));
    runNight(spool, 0, [`p=${src}`]);
    const r = run(spool, ['verify', '--deep']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });

  test('content changed in place with size and mtime restored: only --deep finds it, in every generation sharing it', ({ tmp }) => {
    const { spool, g0 } = twoDays(tmp);
    const f = path.join(g0, 'shared.txt');
    const fd = fs.openSync(f, 'r+');
    fs.writeSync(fd, 'THE', 0);
    fs.closeSync(fd);
    setMtimesNs([[Buffer.from(f), T0]]);
    expect(problems(spool).code).toBe(0);
    const deep = problems(spool, ['--deep']);
    expect(deep.code).toBe(2);
    expect(deep.lines).toHaveLength(2);
    expect(deep.lines[0]).toMatch(new RegExp(`^p ${GEN[0]} shared\\.txt: content changed: XXH64 [0-9a-f]{16}, the manifest records [0-9a-f]{16}$`));
    expect(deep.lines[1]).toMatch(new RegExp(`^p ${GEN[1]} shared\\.txt: content changed`));
    expect(deep.stderr).toMatch(/verify: 2 problems in 2 of 2 generations/);
  });

  test('a chmod of a shared inode is found in every generation sharing it', ({ tmp }) => {
    const { spool, g0 } = twoDays(tmp);
    fs.chmodSync(path.join(g0, 'd', 'inner.txt'), 0o600);
    const r = problems(spool);
    expect(r.code).toBe(2);
    expect(r.lines).toEqual([
      `p ${GEN[0]} d/inner.txt: metadata drifted (manifest->found): mode 0644->0600`,
      `p ${GEN[1]} d/inner.txt: metadata drifted (manifest->found): mode 0644->0600`,
    ]);
  });

  test('a deleted entry and an added entry are each listed (exit 2), odd names escaped', ({ tmp }) => {
    const { spool, g0, g1 } = twoDays(tmp);
    const d = path.join(g1, 'd');
    const mtime = fs.statSync(d, { bigint: true }).mtimeNs;
    fs.rmSync(path.join(d, 'inner.txt'));
    setMtimesNs([[Buffer.from(d), mtime]]);
    const mtime0 = fs.statSync(g0, { bigint: true }).mtimeNs;
    fs.rmSync(Buffer.concat([Buffer.from(g0 + '/'), ODD]));
    fs.writeFileSync(path.join(g0, 'planted'), 'not from a backup');
    setMtimesNs([[Buffer.from(g0), mtime0]]);
    const r = problems(spool, ['--part', 'p']);
    expect(r.code).toBe(2);
    expect(r.lines.sort()).toEqual(
      [
        `p ${GEN[0]} ${ODD_SHOWN}: missing: the manifest records a file`,
        `p ${GEN[0]} planted: extra: a file the manifest does not record`,
        `p ${GEN[1]} d/inner.txt: missing: the manifest records a file`,
      ].sort(),
    );
    const j = run(spool, ['verify', '--json']);
    expect(j.code).toBe(2);
    const out = JSON.parse(j.stdout);
    expect(out.ok).toBe(false);
    expect(out.generations[0].problems.map((p: any) => p.kind).sort()).toEqual(['extra', 'missing']);
  });

  test('a file replaced by another inode with the same metadata is found; --generation narrows to one', ({ tmp }) => {
    const { spool, g1 } = twoDays(tmp);
    const f = path.join(g1, 'changes.txt');
    const st = fs.statSync(f, { bigint: true });
    const dirMtime = fs.statSync(g1, { bigint: true }).mtimeNs;
    fs.copyFileSync(f, f + '.tmp');
    fs.renameSync(f + '.tmp', f);
    setMtimesNs([
      [Buffer.from(f), st.mtimeNs],
      [Buffer.from(g1), dirMtime],
    ]);
    fs.chmodSync(f, Number(st.mode & 0o7777n));
    const r = problems(spool, ['--generation', GEN[1]!]);
    expect(r.code).toBe(2);
    expect(r.lines, r.lines.join('\n')).toHaveLength(1);
    expect(r.lines[0]).toMatch(new RegExp(`^p ${GEN[1]} changes\\.txt: replaced: inode \\d+, the manifest records \\d+$`));
    expect(problems(spool, ['--generation', GEN[0]!]).code).toBe(0);
  });

  test('generations deleted by hand are problems (a re-attack: verify exit 0, status OK while `last` led nowhere): the newest (last dangles) and an older one, each named; one a prune is deleting is not', ({
    tmp,
  }) => {
    const { spool } = twoDays(tmp);
    runNight(spool, 2, [`p=${path.join(tmp, 'src')}`]);
    const pdir = path.join(spool, 'rsync', HOST, 'p');
    fs.rmSync(path.join(pdir, GEN[2]!), { recursive: true });
    const r = problems(spool);
    expect(r.code).toBe(2);
    expect(r.lines).toEqual([`p ${GEN[2]} .: \`last\` names this generation, which is not there (deleted by hand?): its manifest is`]);
    const st = run(spool, ['status']);
    expect(st.code, st.stdout).toBe(2);
    expect(st.stdout).toMatch(new RegExp(`CRITICAL.*\`last\` names ${GEN[2]}, which is not a complete generation of the part \\(deleted by hand\\?\\)`));
    // an older one: its manifest names it
    fs.rmSync(path.join(pdir, GEN[0]!), { recursive: true });
    const j = run(spool, ['verify', '--json']);
    expect(j.code).toBe(2);
    const gone = JSON.parse(j.stdout).generations.filter((g: any) => g.problems.some((p: any) => p.kind === 'gone'));
    expect(gone.map((g: any) => g.generation).sort()).toEqual([GEN[0], GEN[2]]);
    // a prune killed after moving a generation to its trash (its manifest not yet): not a problem
    fs.mkdirSync(path.join(pdir, '.hardsnap', 'trash', GEN[0]!), { recursive: true });
    expect(problems(spool).lines.map((l) => l.split(' ')[1])).toEqual([GEN[2]]);
    // `last` made a directory (a copy of a generation with cp -r): status says so, a backup refuses
    // before writing anything (a re-attack: it published, then failed at last, exit 2, every night)
    fs.rmSync(path.join(pdir, 'last'));
    execFileSync('cp', ['-r', path.join(pdir, GEN[1]!), path.join(pdir, 'last')]);
    const st2 = run(spool, ['status']);
    expect(st2.code).toBe(2);
    expect(st2.stdout).toMatch(/last is a directory, not the symlink hardsnap keeps there/);
    const b = backupParts({ spool, host: HOST }, [`p=${path.join(tmp, 'src')}`], day(NIGHTS[3]!));
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/last is a directory, not the symlink hardsnap keeps there: refusing to back up part 'p'/);
    expect(fs.existsSync(path.join(pdir, GEN[3]!))).toBe(false);
    expect(fs.readdirSync(pdir).filter((n) => n.endsWith('.partial') || n.endsWith('.tmp'))).toEqual([]);
    // the part's .hardsnap deleted ("clean up hidden directories"): no part is left, and list says so (it printed nothing, exit 0)
    fs.rmSync(path.join(pdir, '.hardsnap'), { recursive: true });
    const l = run(spool, ['list']);
    expect(l.code).toBe(1);
    expect(l.stderr).toMatch(/no backups of host 'h1'/);
    expect(run(spool, ['status']).code).toBe(2);
  });

  test('a missing manifest is a problem (exit 2) that names the file', ({ tmp }) => {
    const { spool } = twoDays(tmp);
    fs.rmSync(path.join(spool, 'rsync', HOST, 'p', '.hardsnap', 'manifests', `${GEN[0]}.hsm`));
    const r = problems(spool);
    expect(r.code).toBe(2);
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]).toMatch(new RegExp(`^p ${GEN[0]} \\.: the manifest of p ${GEN[0]} is missing: .*${GEN[0]}\\.hsm$`));
  });

  test('history across a generation left out (its manifest damaged) compares with the version before it, never says `new` (a re-attack: an unchanged file read as just created)', ({
    tmp,
  }) => {
    const { spool } = twoDays(tmp);
    runNight(spool, 2, [`p=${path.join(tmp, 'src')}`]);
    const file = path.join(spool, 'rsync', HOST, 'p', '.hardsnap', 'manifests', `${GEN[1]}.hsm`);
    fs.truncateSync(file, fs.statSync(file).size - 5);
    const h = run(spool, ['history', '--part', 'p', 'shared.txt', '--json']);
    expect(h.code).toBe(2);
    expect(h.stderr).toMatch(new RegExp(`generation ${GEN[1]} left out`));
    expect(JSON.parse(h.stdout).versions.map((v: any) => [v.generation, v.change])).toEqual([
      [GEN[0], 'new'],
      [GEN[2], 'same'],
    ]);
    const c = run(spool, ['history', '--part', 'p', 'changes.txt']);
    expect(
      c.stdout
        .trim()
        .split('\n')
        .map((l) => l.split(/\s+/)[4]),
    ).toEqual(['new', 'changed']);
  });

  test('a damaged manifest is a problem for verify (exit 2); history and du leave that generation out and exit 2', ({ tmp }) => {
    const { spool } = twoDays(tmp);
    const file = path.join(spool, 'rsync', HOST, 'p', '.hardsnap', 'manifests', `${GEN[0]}.hsm`);
    fs.truncateSync(file, fs.statSync(file).size - 5);
    const r = problems(spool);
    expect(r.code).toBe(2);
    expect(r.lines).toEqual([expect.stringMatching(new RegExp(`^p ${GEN[0]} \\.: the manifest of p ${GEN[0]} is damaged \\(.+\\): `))]);
    const h = run(spool, ['history', '--part', 'p', 'shared.txt', '--json']);
    expect(h.code).toBe(2);
    expect(h.stderr).toMatch(/is damaged.*generation 2026-11-20T030000Z left out/);
    expect(JSON.parse(h.stdout).versions.map((v: any) => v.generation)).toEqual([GEN[1]]);
    const u = run(spool, ['du', '--json']);
    expect(u.code).toBe(2);
    expect(JSON.parse(u.stdout).parts[0].unreadable.map((x: any) => x.generation)).toEqual([GEN[0]]);
    const d = run(spool, ['diff', '--part', 'p', GEN[0]!, GEN[1]!]);
    expect(d.code).toBe(2);
    expect(d.stderr).toMatch(/^hardsnap: error: the manifest of p 2026-11-20T030000Z is damaged/);
  });

  test('du names the generation whose manifest block is found damaged while counting (an attack on the read side: only "block checksum mismatch")', ({
    tmp,
  }) => {
    const { spool } = twoDays(tmp);
    const file = path.join(spool, 'rsync', HOST, 'p', '.hardsnap', 'manifests', `${GEN[0]}.hsm`);
    const m = ManifestReader.open(file);
    const at = [...(m as unknown as { index: Map<string, { offset: number }> }).index.values()][0]!.offset + 20;
    m.close();
    const b = fs.readFileSync(file);
    b[at] ^= 0x40;
    fs.writeFileSync(file, b);
    const u = run(spool, ['du']);
    expect(u.code).toBe(2);
    expect(u.stderr).toMatch(new RegExp(`^hardsnap: error: .*${GEN[0]}.*: left out of the numbers$`, 'm'));
  });
});

describe('classify and versionChange (pure, tables)', () => {
  const base: ManifestEntry = {
    name: Buffer.from('f'),
    type: 'file',
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: 5,
    mtimeSec: 100,
    mtimeNsec: 7,
    rdev: 0,
    target: null,
    flags: 1,
    linkGroup: 0,
    ino: 11,
    hash: 'aaaaaaaaaaaaaaaa',
    ctimeSec: 0,
    ctimeNsec: 0,
    xattrs: null,
  };
  const e = (o: Partial<ManifestEntry>): ManifestEntry => ({ ...base, ...o });
  const rows: [string, Partial<ManifestEntry>, ReturnType<typeof classify>, ReturnType<typeof versionChange>][] = [
    ['same inode, even if a field were recorded differently', { mode: 0o600 }, null, 'same'],
    ['new inode, same hash, same metadata (written again)', { ino: 12 }, null, 'rewritten'],
    ['new inode after a chmod', { ino: 12, mode: 0o600 }, 'metadata', 'metadata'],
    ['new inode after a touch (same hash)', { ino: 12, mtimeNsec: 8 }, 'metadata', 'metadata'],
    ['other hash, same size and mtime', { ino: 12, hash: 'bbbbbbbbbbbbbbbb' }, 'content', 'content'],
    ['other size', { ino: 12, size: 6, hash: 'bbbbbbbbbbbbbbbb' }, 'content', 'content'],
    ['no hash on one side, other mtime', { ino: 12, hash: null, mtimeSec: 101 }, 'content', 'content'],
    ['no hash on one side, same size and mtime, new owner', { ino: 12, hash: null, uid: 5 }, 'metadata', 'metadata'],
    ['became a symlink', { ino: 12, type: 'symlink', target: Buffer.from('x'), hash: null }, 'content', 'content'],
  ];
  test.each(rows)('%s', (_what, change, diffKind, historyKind) => {
    expect(classify(base, e(change))).toBe(diffKind);
    expect(versionChange(base, e(change))).toBe(historyKind);
  });

  test('directories: only metadata can change, and there is no "new inode"', () => {
    const d = e({ type: 'dir', ino: 0, hash: null, size: 0 });
    expect(classify(d, { ...d })).toBe(null);
    expect(classify(d, { ...d, mtimeSec: 200 })).toBe('metadata');
    expect(versionChange(d, { ...d })).toBe('same');
    expect(versionChange(undefined, d)).toBe('new');
  });
});
