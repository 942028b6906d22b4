// The previous generation is evidence, not truth (issue 16): what someone did to an old
// generation in the spool (chmod, replace, turn into a symlink) is never linked into the new one;
// a spool copied to another disk (new inode numbers) keeps working; an entry the source cannot
// give in a run keeps its previous version. Each test makes the fault happen for real.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from './helpers/fixture.js';
import { latin1 as b, makeTree } from './helpers/tree.js';
import { linksDiff, rsyncDiff } from './helpers/oracle.js';
import { hardsnap } from './helpers/run.js';
import { mktree, mutate } from './helpers/bench-tree.js';
import { hardsnapAsNobody, hardsnapAsRootWithoutDac, isRoot } from './helpers/robust.js';
import { ManifestReader } from '../src/manifest/reader.js';
import { FLAG } from '../src/manifest/format.js';
import { makeSpool, nightly } from './helpers/spool.js';
import { readRunsLog } from './helpers/ops.js';

const { at, genName, backup, backupJson, gen, manifestFile } = nightly<Record<string, number>>({ host: 'h', part: 'p', month: '2026-02' });
type RunRecord = { parts: Record<string, Record<string, number>>; exit: number };

describe('a tampered previous generation is never linked into the new one', () => {
  test('a damaged block in the previous manifest (its checksum fails): that directory is compared with the previous generation itself, said once, the rest from the manifest; the generation is the source', ({
    tmp,
  }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    const tree: Record<string, string> = {};
    for (const d of ['a', 'b', 'c']) for (let i = 0; i < 20; i++) tree[`${d}/sub/f${i}`] = `${d}${i}\n`;
    makeTree(src, tree);
    expect(backup(spool, src, 1).code).toBe(0);
    // flip a byte inside the deflated bytes of b/sub's block
    const file = manifestFile(spool, 1);
    const m = ManifestReader.open(file);
    const at = (m as unknown as { index: Map<string, { offset: number; length: number }> }).index.get('b/sub')!;
    m.close();
    const bytes = fs.readFileSync(file);
    bytes[at.offset + 12 + Math.floor((at.length - 12) / 2)]! ^= 0xff;
    fs.writeFileSync(file, bytes);
    fs.writeFileSync(path.join(src, 'a/sub/f0'), 'changed\n');
    const r = backup(spool, src, 2);
    expect(r.code, r.stderr).toBe(0);
    const said = r.stderr.split('\n').filter((l) => /previous manifest is damaged/.test(l));
    expect(said).toEqual([
      expect.stringMatching(/p: the previous manifest is damaged at b\/sub \(block checksum mismatch\): comparing with the previous generation itself there/),
    ]);
    expect(rsyncDiff(src, gen(spool, 2))).toEqual([]);
    expect(linksDiff(src, gen(spool, 2))).toEqual([]);
    // unchanged files are still linked, in the damaged directory too (from the generation itself)
    for (const f of ['b/sub/f3', 'c/sub/f3', 'a/sub/f3'])
      expect(fs.statSync(path.join(gen(spool, 2), f)).ino, f).toBe(fs.statSync(path.join(gen(spool, 1), f)).ino);
  });

  test('the dry run links, copies and counts what the run then does, over a previous generation with a file chmod-ed, deleted, made a symlink, made immutable and mounted over, and a source hard link (a re-attack: it said `link (unchanged)` for each and counted 0 linked, 0 written)', ({
    tmp,
  }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    makeTree(src, { f1: 'one\n', f2: 'two\n', f3: 'three\n', f4: 'four\n', f5: 'five\n', 'd/f6': 'six\n', f7: 'seven\n', h1: 'linked twice\n' });
    fs.linkSync(path.join(src, 'h1'), path.join(src, 'h2'));
    fs.writeFileSync(path.join(src, 's1'), 'split later\n');
    fs.linkSync(path.join(src, 's1'), path.join(src, 's2'));
    expect(backup(spool, src, 1).code).toBe(0);
    // s2 made a separate file with the same content and times (cp -p): its previous inode is s1's
    execFileSync('cp', ['-p', path.join(src, 's1'), path.join(src, 's2.new')]);
    fs.renameSync(path.join(src, 's2.new'), path.join(src, 's2'));
    const g1 = gen(spool, 1);
    // a file mounted over one of the previous generation (linkat: EXDEV)
    const over = path.join(tmp, 'over');
    fs.writeFileSync(over, 'seven\n');
    const mounted = isRoot && spawnSync('mount', ['--bind', over, path.join(g1, 'f7')]).status === 0;
    fs.chmodSync(path.join(g1, 'f1'), 0o600);
    fs.rmSync(path.join(g1, 'f2'));
    fs.rmSync(path.join(g1, 'f3'));
    fs.symlinkSync('/etc/passwd', path.join(g1, 'f3'));
    const immutable = isRoot && spawnSync('chattr', ['+i', path.join(g1, 'f4')]).status === 0;
    try {
      const dry = backupJson(spool, src, 2, ['--dry-run']);
      const lines = backup(spool, src, 2, ['--dry-run']).stdout;
      expect(lines).toMatch(/^copy +p\/f1 +\(it drifted/m);
      expect(lines).toMatch(/^copy +p\/f2 +\(ENOENT\)/m);
      expect(lines).toMatch(/^copy +p\/f3 +\(it drifted/m);
      expect(lines).toMatch(immutable ? /^copy +p\/f4 +\(EPERM\)/m : /^link +p\/f4 /m);
      expect(lines).toMatch(/^link +p\/d\/f6 +\(unchanged/m);
      const real = backupJson(spool, src, 2);
      for (const k of ['linked', 'copied', 'bytesLinked', 'bytesWritten', 'drifted', 'splitLinks']) expect(dry.stats[k], k).toBe(real.stats[k]);
      // the entries the previous generation lost are said once, as the drifted ones are
      for (const r of [dry, real]) {
        const said = r.stderr.split('\n').filter((l) => /could not be linked from the previous generation/.test(l));
        expect(said, r.stderr).toHaveLength(1);
        expect(said[0]).toMatch(new RegExp(`part 'p': ${1 + (immutable ? 1 : 0) + (mounted ? 1 : 0)} unchanged entr(y|ies) .*first: f2 \\(ENOENT\\)`));
      }
      expect(real.stats.copied).toBe(4 + (immutable ? 1 : 0) + (mounted ? 1 : 0));
      expect(rsyncDiff(src, gen(spool, 2))).toEqual([]);
      if (mounted) expect(lines).toMatch(/^copy +p\/f7 +\(EXDEV\)/m);
      expect(lines).toMatch(/^link +p\/h2 +\(another name of p\/h1\)/m);
      expect(lines).toMatch(/^copy +p\/s2 +\(its previous inode is another name's in this generation\)/m);
    } finally {
      if (immutable) spawnSync('chattr', ['-i', path.join(g1, 'f4')]);
      if (mounted) spawnSync('umount', [path.join(g1, 'f7')]);
    }
  });

  test('chmod-ed, chown-ed, touched, replaced and symlinked files in an old generation are copied anew from the source, reported once, recorded in runs.jsonl', ({
    tmp,
  }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    makeTree(src, {
      'a/chmodded': 'one\n',
      'a/chowned': 'two\n',
      'a/touched': 'three\n',
      'a/replaced': 'four\n',
      'a/symlinked': 'five\n',
      'a/fine': 'six\n',
      secret: 'do not leak\n',
    });
    expect(backup(spool, src, 1).code).toBe(0);
    const g1 = gen(spool, 1);
    const before = fs.statSync(path.join(g1, 'a/fine')).ino;
    // an admin "fixes" things in the old generation
    fs.chmodSync(path.join(g1, 'a/chmodded'), 0o777);
    if (isRoot) fs.chownSync(path.join(g1, 'a/chowned'), 4242, 4242);
    fs.utimesSync(path.join(g1, 'a/touched'), new Date(), new Date());
    const st = fs.statSync(path.join(g1, 'a/replaced'));
    fs.rmSync(path.join(g1, 'a/replaced'));
    fs.writeFileSync(path.join(g1, 'a/replaced'), 'FOUR\n'); // same size
    fs.utimesSync(path.join(g1, 'a/replaced'), st.atime, st.mtime);
    fs.chmodSync(path.join(g1, 'a/replaced'), st.mode & 0o7777);
    fs.rmSync(path.join(g1, 'a/symlinked'));
    fs.symlinkSync('../secret', path.join(g1, 'a/symlinked'));
    const drifted = isRoot ? 5 : 4;
    const tampered = ['chmodded', 'touched', 'symlinked', 'replaced', ...(isRoot ? ['chowned'] : [])];

    // the dry run says what the run will do (a re-attack: it said `link (unchanged)` for them)
    const dry = backup(spool, src, 2, ['--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    for (const n of tampered) expect(dry.stdout, n).toMatch(new RegExp(`^copy +p/a/${n} +\\(it drifted in the previous generation`, 'm'));
    expect(dry.stdout).toMatch(/^link +p\/a\/fine +\(unchanged/m);
    expect(dry.stderr.split('\n').filter((l) => /no longer matched its manifest/.test(l))).toHaveLength(1);
    expect(
      fs
        .readdirSync(path.dirname(g1))
        .filter((n) => !n.startsWith('.'))
        .sort(),
    ).toEqual([genName(1), 'LATEST', 'last'].sort());

    const r = backup(spool, src, 2);
    expect(r.code, r.stderr).toBe(0);
    const g2 = gen(spool, 2);
    // the new last is the source, exactly: the replaced file has the recorded size, mode and
    // mtime, but not the recorded inode
    const warn = r.stderr.split('\n').filter((l) => /no longer matched its manifest/.test(l));
    expect(warn).toHaveLength(1);
    expect(warn[0]).toMatch(new RegExp(`part 'p': ${drifted} unchanged entries .* first: a/ch`));
    expect(rsyncDiff(src, g2)).toEqual([]);
    expect(linksDiff(src, g2)).toEqual([]);
    for (const n of tampered) {
      expect(fs.lstatSync(path.join(g2, 'a', n)).isFile(), n).toBe(true);
      expect(fs.statSync(path.join(g2, 'a', n)).ino, n).not.toBe(fs.lstatSync(path.join(g1, 'a', n)).ino);
    }
    expect(fs.readFileSync(path.join(g2, 'a/symlinked'), 'utf8')).toBe('five\n');
    expect(fs.statSync(path.join(g2, 'a/fine')).ino).toBe(before);
    expect(readRunsLog<RunRecord>(spool, 'h').at(-1)!.parts.p!.drifted).toBe(drifted);
    // the manifest records the inodes that are there, not the previous manifest's numbers
    const m = ManifestReader.open(manifestFile(spool, 2));
    try {
      for (const e of m.dir(Buffer.from('a'))!) expect(e.ino, e.name.toString()).toBe(fs.lstatSync(path.join(g2, 'a', e.name.toString())).ino);
    } finally {
      m.close();
    }
    // the old generation is left as the admin made it (nothing that exists is changed)
    expect(fs.statSync(path.join(g1, 'a/chmodded')).mode & 0o777).toBe(0o777);
    expect(fs.lstatSync(path.join(g1, 'a/symlinked')).isSymbolicLink()).toBe(true);
  });

  test('the drift check holds for many files at once (a whole old generation chmod-ed by a careless chmod -R)', ({ tmp }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    mktree(src, { files: 600, seed: 3 });
    expect(backup(spool, src, 1).code).toBe(0);
    execFileSync('chmod', ['-R', 'o+w', gen(spool, 1)]);
    const r = backup(spool, src, 2);
    expect(r.code).toBe(0);
    expect(r.stderr.split('\n').filter((l) => /no longer matched/.test(l))).toHaveLength(1);
    expect(rsyncDiff(src, gen(spool, 2))).toEqual([]);
    expect(linksDiff(src, gen(spool, 2))).toEqual([]);
    expect(readRunsLog<RunRecord>(spool, 'h').at(-1)!.parts.p!.drifted).toBeGreaterThan(500);
  });

  test('--verbose says what was done with a drifted file: written anew (>f), never "hf" (linked), and an unchanged one "hf" once (the line came before the link was refused)', ({
    tmp,
  }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    makeTree(src, { 'a/drifted': 'd\n', 'a/kept': 'k\n', 'b/first': 'one inode\n' });
    fs.linkSync(path.join(src, 'b/first'), path.join(src, 'b/second'));
    expect(backup(spool, src, 1).code).toBe(0);
    fs.chmodSync(path.join(gen(spool, 1), 'a/drifted'), 0o666);
    fs.chmodSync(path.join(gen(spool, 1), 'b/first'), 0o666);
    const r = backup(spool, src, 2, ['--verbose']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    const about = (n: string) => lines.filter((l) => new RegExp(`^\\S+ +p/${n}( |$)`).test(l));
    expect(about('a/drifted')).toEqual([expect.stringMatching(/^>f\.{9} p\/a\/drifted$/)]);
    expect(about('a/kept')).toEqual(['hf          p/a/kept']);
    // a source hard link whose previous inode drifted: written anew once, its second name linked to it
    expect(about('b/first')).toEqual([expect.stringMatching(/^>f\.{9} p\/b\/first$/)]);
    expect(about('b/second')).toEqual([expect.stringMatching(/^hf.* p\/b\/second => p\/b\/first$/)]);
    expect(rsyncDiff(src, gen(spool, 2))).toEqual([]);
    expect(linksDiff(src, gen(spool, 2))).toEqual([]);
  });

  test('a directory of the previous generation deleted, or replaced by a symlink to elsewhere: its files are copied anew, and the run says the previous generation drifted', ({
    tmp,
  }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    makeTree(src, { 'a/f': 'a', 'b/g': 'b', 'c/h': 'c' });
    expect(backup(spool, src, 1).code).toBe(0);
    const elsewhere = path.join(tmp, 'elsewhere');
    makeTree(elsewhere, { g: 'not b' });
    fs.rmSync(path.join(gen(spool, 1), 'a'), { recursive: true });
    fs.rmSync(path.join(gen(spool, 1), 'b'), { recursive: true });
    fs.symlinkSync(elsewhere, path.join(gen(spool, 1), 'b'));
    const r = backup(spool, src, 2);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/2 unchanged entries of the previous generation no longer matched its manifest .*first: a\)/);
    expect(rsyncDiff(src, gen(spool, 2))).toEqual([]);
    expect(readRunsLog<RunRecord>(spool, 'h').at(-1)!.parts.p!.drifted).toBe(2);
    expect(fs.readFileSync(path.join(elsewhere, 'g'), 'utf8')).toBe('not b');
  });
});

describe('a spool moved to another disk (cp -a, rsync -aH): new inode numbers', () => {
  test.for(['cp -a', 'rsync -aH'])(
    'after %s of the whole spool: backups, verify, du and history work, and the numbers agree with the unmoved spool',
    (how, { tmp }) => {
      const src = path.join(tmp, 'src');
      const spool = makeSpool(path.join(tmp, 'spool'));
      mktree(src, { files: 300, seed: 5, odd: true });
      for (let n = 1; n <= 3; n++) {
        if (n > 1) mutate(src, n);
        expect(backup(spool, src, n).code).toBe(0);
      }
      const v0 = hardsnap(['verify', '--spool', spool, '--host', 'h']);
      expect(v0.code, v0.stdout + v0.stderr).toBe(0);
      const moved = path.join(tmp, 'moved');
      if (how === 'cp -a') execFileSync('cp', ['-a', spool, moved]);
      // (--modify-window=-1: without it rsync leaves a directory time it finds within the same
      // second as the source's, which is every directory here)
      else execFileSync('rsync', ['-aHAX', '--numeric-ids', '--modify-window=-1', `${spool}/`, `${moved}/`]);
      // the premise: every inode number is new
      const any = execFileSync('find', [gen(spool, 3), '-type', 'f', '-print', '-quit'], { encoding: 'utf8' })
        .trim()
        .slice(gen(spool, 3).length + 1);
      expect(fs.lstatSync(path.join(gen(moved, 3), any)).ino).not.toBe(fs.lstatSync(path.join(gen(spool, 3), any)).ino);
      const duOf = (sp: string) =>
        JSON.parse(hardsnap(['du', '--spool', sp, '--host', 'h', '--json']).stdout) as { total: number; parts: { generations: { unique: number }[] }[] };
      const du0 = duOf(spool);

      for (let n = 4; n <= 5; n++) {
        mutate(src, n);
        const r = backup(moved, src, n);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stderr).not.toMatch(/no longer matched/); // a move is not drift
        expect(rsyncDiff(src, gen(moved, n))).toEqual([]);
        expect(linksDiff(src, gen(moved, n))).toEqual([]);
      }
      // unchanged files are still links to the generation before
      const r4 = readRunsLog<RunRecord>(moved, 'h').at(-1)!.parts.p!;
      expect(r4.linked).toBeGreaterThan(250);
      const v = hardsnap(['verify', '--spool', moved, '--host', 'h']);
      expect(v.code, v.stdout + v.stderr).toBe(0);
      const vd = hardsnap(['verify', '--deep', '--spool', moved, '--host', 'h']);
      expect(vd.code, vd.stdout + vd.stderr).toBe(0);
      // du of the moved spool's first three generations equals the unmoved spool's
      const du1 = duOf(moved);
      expect(du1.parts[0]!.generations.slice(0, 2).map((g) => g.unique)).toEqual(du0.parts[0]!.generations.slice(0, 2).map((g) => g.unique));
      // history: a file unchanged since day 1 is "same" across the move
      const m = ManifestReader.open(manifestFile(moved, 5));
      let stable = '';
      try {
        const top = m.dir(Buffer.alloc(0))!;
        const f = top.find((e) => e.type === 'file');
        stable = f ? f.name.toString() : '';
      } finally {
        m.close();
      }
      if (stable) {
        const h = JSON.parse(hardsnap(['history', '--spool', moved, '--host', 'h', '--part', 'p', '--json', stable]).stdout) as {
          versions: { change: string }[];
        };
        expect(h.versions.map((x) => x.change).filter((c) => c === 'rewritten')).toEqual([]);
      }
    },
  );
});

// found by an attack: a spool moved with rsync -aH (no -A, -X) has inodes without their ACLs and
// attributes; every later backup linked them as unchanged, exit 0, and `last` lost them
describe('a spool moved without its attributes (rsync -aH, no -AX)', () => {
  test("the next backup reads each previous inode's attributes before linking it: those that lost theirs are copied, the generation is exact, verify passes; a renamed file is not content-linked to a stripped inode; the run after links again", ({
    tmp,
  }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    makeTree(src, { 'acl/f': 'acl\n', 'xa/g': 'xattr\n', 'plain/h': 'plain\n', 'xa/renamed-later': 'moves\n' });
    execFileSync('setfacl', ['-m', 'u:4242:r,g::---', path.join(src, 'acl/f')]);
    execFileSync('setfattr', ['-n', 'user.tag', '-v', 'kept', path.join(src, 'xa/g')]);
    execFileSync('setfattr', ['-n', 'user.tag', '-v', 'moves', path.join(src, 'xa/renamed-later')]);
    expect(backup(spool, src, 1).code).toBe(0);
    const moved = path.join(tmp, 'moved');
    execFileSync('rsync', ['-aH', '--numeric-ids', `${spool}/`, `${moved}/`]);
    // the premise: the copy lost them
    expect(spawnSync('getfattr', ['-d', path.join(gen(moved, 1), 'xa/g')], { encoding: 'utf8' }).stdout).not.toMatch(/user\.tag/);
    fs.renameSync(path.join(src, 'xa/renamed-later'), path.join(src, 'plain/renamed'));
    const r = backup(moved, src, 2);
    expect(r.code, r.stderr).toBe(0);
    expect(rsyncDiff(src, gen(moved, 2))).toEqual([]);
    expect(linksDiff(src, gen(moved, 2))).toEqual([]);
    const v = hardsnap(['verify', '--spool', moved, '--host', 'h', '--generation', genName(2)]);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    // plain/h linked (no attributes to lose); acl/f and xa/g copied anew, as was the renamed file
    const day2 = readRunsLog<RunRecord>(moved, 'h').at(-1)!.parts.p!;
    expect(fs.lstatSync(path.join(gen(moved, 2), 'plain/h')).ino).toBe(fs.lstatSync(path.join(gen(moved, 1), 'plain/h')).ino);
    expect(fs.lstatSync(path.join(gen(moved, 2), 'xa/g')).ino).not.toBe(fs.lstatSync(path.join(gen(moved, 1), 'xa/g')).ino);
    expect(day2.dedupLinked).toBe(0);
    // the spool's inodes are whole again: day 3 links everything
    const r3 = backup(moved, src, 3);
    expect(r3.code, r3.stderr).toBe(0);
    expect(rsyncDiff(src, gen(moved, 3))).toEqual([]);
    for (const f of ['acl/f', 'xa/g', 'plain/h', 'plain/renamed'])
      expect(fs.lstatSync(path.join(gen(moved, 3), f)).ino, f).toBe(fs.lstatSync(path.join(gen(moved, 2), f)).ino);
  });
});

describe('an entry the source cannot give in a run keeps its previous version (CARRIED)', () => {
  // bin/hardsnap runs as nobody (hardsnapAsNobody), so that a mode 000 directory really cannot be read
  test.runIf(isRoot)(
    "a Maildir that cannot be opened keeps yesterday's content in last (not an empty directory); a file that cannot be read keeps its version; exit 23; diff and history say so",
    ({ tmp }) => {
      fs.chmodSync(tmp, 0o755);
      const src = path.join(tmp, 'src');
      const spool = makeSpool(path.join(tmp, 'spool'));
      makeTree(src, {
        'ann/Maildir/cur/1': 'mail one\n',
        'ann/Maildir/cur/2': 'mail two\n',
        'ann/Maildir/new/3': 'three\n',
        'bob/notes': 'bob notes\n',
        'bob/other': 'other\n',
      });
      execFileSync('chown', ['-R', '65534:65534', src, spool]);
      const args = ['backup', '--spool', spool, '--host', 'h', '--part', `p=${src}`];
      expect(hardsnapAsNobody(args, at(1)).code).toBe(0);
      // day 2: the Maildir is locked away, bob's notes unreadable; a new mail arrived
      fs.writeFileSync(path.join(src, 'ann/Maildir/new/4'), 'four\n');
      fs.chownSync(path.join(src, 'ann/Maildir/new/4'), 65534, 65534);
      fs.chmodSync(path.join(src, 'ann/Maildir'), 0o000);
      fs.chmodSync(path.join(src, 'bob/notes'), 0o000);
      const r = hardsnapAsNobody(args, at(2));
      expect(r.code, r.stderr).toBe(23);
      expect(r.stderr).toMatch(/ann\/Maildir: .*EACCES.*kept its previous version \(from 2026-02-01T030000Z\)/);
      expect(r.stderr).toMatch(/bob\/notes: .*EACCES.*kept its previous version/);
      const g1 = gen(spool, 1);
      const g2 = gen(spool, 2);
      expect(fs.readlinkSync(path.join(spool, 'rsync', 'h', 'p', 'last'))).toBe(genName(2));
      expect(fs.readFileSync(path.join(g2, 'ann/Maildir/cur/1'), 'utf8')).toBe('mail one\n');
      expect(fs.statSync(path.join(g2, 'ann/Maildir/cur/2')).ino).toBe(fs.statSync(path.join(g1, 'ann/Maildir/cur/2')).ino);
      expect(fs.existsSync(path.join(g2, 'ann/Maildir/new/4'))).toBe(false); // never read: not invented
      expect(fs.readFileSync(path.join(g2, 'bob/notes'), 'utf8')).toBe('bob notes\n');
      const m = ManifestReader.open(manifestFile(spool, 2));
      try {
        expect(m.footer.carried!.count).toBeGreaterThanOrEqual(5);
        expect(m.footer.carried!.first.map((c) => [c.path, c.from, c.code])).toEqual([
          ['ann/Maildir', genName(1), 'EACCES'],
          ['bob/notes', genName(1), 'EACCES'],
        ]);
        expect(m.dir(Buffer.from('ann/Maildir/cur'))!.every((e) => e.flags & FLAG.CARRIED)).toBe(true);
      } finally {
        m.close();
      }
      const d = hardsnap(['diff', '--spool', spool, '--host', 'h', '--part', 'p', genName(1), genName(2)]);
      expect(d.stdout).toMatch(/^C ann\/Maildir \(carried 2026-02-01T030000Z: EACCES\)$/m);
      expect(d.stdout).toMatch(/^C bob\/notes /m);
      const h = hardsnap(['history', '--spool', spool, '--host', 'h', '--part', 'p', 'bob/notes']);
      expect(h.stdout).toMatch(/2026-02-02T030000Z .* carried/);
      // readable again: the next run backs up what is there now
      fs.chmodSync(path.join(src, 'ann/Maildir'), 0o755);
      fs.chmodSync(path.join(src, 'bob/notes'), 0o644);
      const r3 = hardsnapAsNobody(args, at(3));
      expect(r3.code, r3.stderr).toBe(0);
      expect(rsyncDiff(src, gen(spool, 3)).filter((l) => !/^\.[df]\.\.\.\.og/.test(l))).toEqual([]);
      expect(fs.readFileSync(path.join(gen(spool, 3), 'ann/Maildir/new/4'), 'utf8')).toBe('four\n');
      // the carried directory is its previous version, metadata too (a user who is not root
      // could not search a mode 000 copy of its own the next night), flagged CARRIED
      expect(fs.statSync(path.join(g2, 'ann/Maildir')).mode & 0o777).toBe(0o755);
      const m2 = ManifestReader.open(manifestFile(spool, 2));
      try {
        const rec = m2.dir(b('ann'))!.find((e) => e.name.equals(b('Maildir')))!;
        expect([rec.mode & 0o7777, rec.flags & FLAG.CARRIED]).toEqual([0o755, FLAG.CARRIED]);
      } finally {
        m2.close();
      }
      const v = hardsnap(['verify', '--spool', spool, '--host', 'h']);
      expect(v.code, v.stdout + v.stderr).toBe(0);
    },
  );
});

describe('carried entries, found by attacking them', () => {
  test.runIf(isRoot)(
    'a carried hard link keeps a link group of its own manifest: a restore never joins it to an unrelated file (old group ids collided)',
    ({ tmp }) => {
      fs.chmodSync(tmp, 0o755);
      const src = path.join(tmp, 'src');
      const spool = makeSpool(path.join(tmp, 'spool'));
      makeTree(src, { 'M/f': 'carried pair\n', 'o/f': 'data\n' });
      fs.symlinkSync('x', path.join(src, 'M/sl'));
      fs.linkSync(path.join(src, 'M/sl'), path.join(src, 'M/sl2'));
      fs.linkSync(path.join(src, 'M/f'), path.join(src, 'M/f2'));
      fs.linkSync(path.join(src, 'o/f'), path.join(src, 'o/g'));
      execFileSync('chown', ['-R', '65534:65534', src, spool]);
      const args = ['backup', '--spool', spool, '--host', 'h', '--part', `p=${src}`];
      expect(hardsnapAsNobody(args, at(1)).code).toBe(0);
      fs.chmodSync(path.join(src, 'M'), 0o000);
      expect(hardsnapAsNobody(args, at(2)).code).toBe(23);
      const g2 = gen(spool, 2);
      expect(fs.lstatSync(path.join(g2, 'M/sl2')).ino).toBe(fs.lstatSync(path.join(g2, 'M/sl')).ino);
      expect(fs.statSync(path.join(g2, 'M/f2')).ino).toBe(fs.statSync(path.join(g2, 'M/f')).ino);
      const to = path.join(tmp, 'r');
      const rr = hardsnap(['restore', '--spool', spool, '--host', 'h', '--part', 'p', '--to', to]);
      expect(rr.code, rr.stderr).toBe(0);
      fs.chmodSync(path.join(src, 'M'), 0o755);
      // what was restored is day 1's tree: the pairs as pairs, the files as files
      expect(fs.readFileSync(path.join(to, 'o/g'), 'utf8')).toBe('data\n');
      expect(fs.lstatSync(path.join(to, 'o/f')).isFile()).toBe(true);
      expect(linksDiff(src, to)).toEqual([]);
      expect(rsyncDiff(src, to).filter((l) => !/^\.d/.test(l))).toEqual([]);
    },
  );

  test.runIf(isRoot)(
    'after a night with an unreadable directory, the next backups by a user who is not root work (its mode 000 copy in the spool blocked every link)',
    ({ tmp }) => {
      fs.chmodSync(tmp, 0o755);
      const src = path.join(tmp, 'src');
      const spool = makeSpool(path.join(tmp, 'spool'));
      makeTree(src, { 'M/a': 'one\n', 'M/b': 'two\n' });
      execFileSync('chown', ['-R', '65534:65534', src, spool]);
      const args = ['backup', '--spool', spool, '--host', 'h', '--part', `p=${src}`];
      expect(hardsnapAsNobody(args, at(1)).code).toBe(0);
      fs.chmodSync(path.join(src, 'M'), 0o000);
      expect(hardsnapAsNobody(args, at(2)).code).toBe(23);
      fs.chmodSync(path.join(src, 'M'), 0o755);
      for (const n of [3, 4]) {
        const r = hardsnapAsNobody(args, at(n));
        expect(r.code, r.stderr).toBe(0);
        expect(rsyncDiff(src, gen(spool, n))).toEqual([]);
      }
      expect(fs.readlinkSync(path.join(spool, 'rsync', 'h', 'p', 'last'))).toBe(genName(4));
    },
  );

  test.runIf(isRoot)(
    'directories unreadable four nights in a row (modes 000, 0444, 0300), backed up with --prune --keep-last 1 by a user who is not root, keep their content every night (they were left empty the second night: their copies with that mode could not be searched, and their origin was pruned); verify as that user passes; linked, not copied, once readable again',
    ({ tmp }) => {
      fs.chmodSync(tmp, 0o755);
      const src = path.join(tmp, 'src');
      const spool = makeSpool(path.join(tmp, 'spool'));
      const modes: Record<string, number> = { M: 0o000, R: 0o444, W: 0o300 };
      const files = Object.keys(modes).flatMap((d) => [`${d}/a`, `${d}/sub/b`, `${d}/sub/deep/c`]);
      makeTree(src, { ...Object.fromEntries(files.map((f) => [f, `${f}\n`])), 'keep.txt': 'k\n' });
      execFileSync('chown', ['-R', '65534:65534', src, spool]);
      makeTree(src, { 'root-owned.txt': { content: 'r\n', mode: 0o644, uid: 0, gid: 0 } });
      const args = ['backup', '--spool', spool, '--host', 'h', '--part', `p=${src}`, '--prune', '--keep-last', '1'];
      expect(hardsnapAsNobody(args, at(1)).code).toBe(0);
      const first = new Map(files.map((r) => [r, fs.statSync(path.join(gen(spool, 1), r)).ino]));
      for (const [d, mode] of Object.entries(modes)) fs.chmodSync(path.join(src, d), mode);
      for (const n of [2, 3, 4, 5]) {
        const r = hardsnapAsNobody(args, at(n));
        expect(r.code, r.stderr).toBe(23);
        for (const d of Object.keys(modes))
          expect(r.stderr).toMatch(new RegExp(`${d}: cannot open directory: EACCES; kept its previous version \\(from 2026-02-01T030000Z\\)`));
        expect(r.stderr).not.toMatch(/left empty|no longer matched/);
        // only this night's generation is left (the origin, night 1, was pruned on night 2)
        expect(fs.existsSync(gen(spool, n - 1))).toBe(false);
        // root reads what a user who is not root cannot: the content of night 1, the same inodes
        for (const [rel, ino] of first) expect(fs.statSync(path.join(gen(spool, n), rel)).ino, `night ${n}: ${rel}`).toBe(ino);
        for (const d of Object.keys(modes)) expect(fs.statSync(path.join(gen(spool, n), d)).mode & 0o777).toBe(0o755);
        const v = hardsnapAsNobody(['verify', '--spool', spool, '--host', 'h']);
        expect(v.code, v.stdout + v.stderr).toBe(0);
      }
      const d = hardsnap(['diff', '--spool', spool, '--host', 'h', '--part', 'p', genName(4), genName(5)]);
      expect(d.stdout).not.toMatch(/^- /m);
      // root's verify of a spool a user who is not root keeps: owners are not compared (they are
      // in the manifests only: it failed on every root-owned source file), and the lease it took
      // leaves a leases directory that user's prune can read (root's 0700 one stopped every prune)
      const vr = hardsnap(['verify', '--spool', spool, '--host', 'h']);
      expect(vr.code, vr.stdout + vr.stderr).toBe(0);
      const leases = path.join(spool, 'rsync', 'h', 'p', '.hardsnap', 'leases');
      expect(fs.statSync(leases).uid).toBe(65534);
      for (const dir of Object.keys(modes)) fs.chmodSync(path.join(src, dir), 0o755);
      const r6 = hardsnapAsNobody(args, at(6));
      expect(r6.code, r6.stderr).toBe(0);
      expect(r6.stderr).not.toMatch(/no longer matched|leases cannot be read/);
      expect(fs.existsSync(gen(spool, 5))).toBe(false); // pruned
      // the root-owned file is the user's in the spool (its owner in the manifest only)
      expect(rsyncDiff(src, gen(spool, 6)).filter((l) => l !== '.f....og... root-owned.txt')).toEqual([]);
      for (const [rel, ino] of first) expect(fs.statSync(path.join(gen(spool, 6), rel)).ino).toBe(ino);
    },
  );

  test.runIf(isRoot)(
    'a directory the backup user never could read (no previous version) is made empty with its mode 000: verify as that user passes (it said "cannot open the directory" in every generation holding it; a cron trial)',
    ({ tmp }) => {
      fs.chmodSync(tmp, 0o755);
      const src = path.join(tmp, 'src');
      const spool = makeSpool(path.join(tmp, 'spool'));
      makeTree(src, { 'N/secret': 's\n', 'keep.txt': 'k\n' });
      execFileSync('chown', ['-R', '65534:65534', src, spool]);
      fs.chmodSync(path.join(src, 'N'), 0o000);
      const r = hardsnapAsNobody(['backup', '--spool', spool, '--host', 'h', '--part', `p=${src}`], at(1));
      expect(r.code, r.stderr).toBe(23);
      expect(fs.statSync(path.join(gen(spool, 1), 'N')).mode & 0o777).toBe(0);
      const v = hardsnapAsNobody(['verify', '--spool', spool, '--host', 'h']);
      expect(v.code, v.stdout + v.stderr).toBe(0);
      // something planted in it is still found by root's verify
      fs.writeFileSync(path.join(gen(spool, 1), 'N', 'planted'), 'x');
      const vr = hardsnap(['verify', '--spool', spool, '--host', 'h']);
      expect(vr.code).toBe(2);
      expect(vr.stdout + vr.stderr).toMatch(/N\/planted: extra/);
    },
  );

  test.runIf(isRoot)(
    'a source root the backup user cannot read: exit 2 with one line, a failed run in runs.jsonl and status CRITICAL (it was an unrecorded internal error: status stayed OK; a fifth cron trial)',
    ({ tmp }) => {
      fs.chmodSync(tmp, 0o755);
      const src = path.join(tmp, 'src');
      const spool = makeSpool(path.join(tmp, 'spool'));
      makeTree(src, { a: 'a\n' });
      execFileSync('chown', ['-R', '65534:65534', src, spool]);
      const args = ['backup', '--spool', spool, '--host', 'h', '--part', `p=${src}`];
      expect(hardsnapAsNobody(args, at(1)).code).toBe(0);
      fs.chmodSync(src, 0o000);
      const r = hardsnapAsNobody(args, at(2));
      fs.chmodSync(src, 0o755);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^hardsnap: error: source of part 'p' cannot be read: EACCES: .*src; nothing written/);
      const log = fs
        .readFileSync(path.join(spool, 'rsync', 'h', '.hardsnap', 'runs.jsonl'), 'utf8')
        .trim()
        .split('\n');
      expect(JSON.parse(log.at(-1)!)).toMatchObject({ status: 'failed', exit: 2 });
      const st = hardsnap(['status', '--spool', spool, '--host', 'h'], at(2));
      expect(st.code, st.stdout).toBe(2);
      expect(st.stdout).toMatch(/last run failed \(exit 2\): source of part 'p' cannot be read: EACCES/);
    },
  );

  test.runIf(isRoot)(
    'root without CAP_DAC_READ_SEARCH and CAP_DAC_OVERRIDE (a hardened service) keeps an unreadable directory for three nights with --prune --keep-last 1 (it gave the copy mode 000 and lost its files the next night)',
    ({ tmp }) => {
      const src = path.join(tmp, 'src');
      const spool = makeSpool(path.join(tmp, 'spool'));
      makeTree(src, { 'M/a': 'one\n', 'M/sub/b': 'two\n', 'keep.txt': 'k\n' });
      const args = ['backup', '--spool', spool, '--host', 'h', '--part', `p=${src}`, '--prune', '--keep-last', '1'];
      expect(hardsnapAsRootWithoutDac(args, at(1)).code).toBe(0);
      const first = new Map(['M/a', 'M/sub/b'].map((r) => [r, fs.statSync(path.join(gen(spool, 1), r)).ino]));
      fs.chmodSync(path.join(src, 'M'), 0o000);
      for (const n of [2, 3, 4]) {
        const r = hardsnapAsRootWithoutDac(args, at(n));
        expect(r.code, r.stderr).toBe(23);
        expect(r.stderr).toMatch(/M: cannot open directory: EACCES; kept its previous version/);
        for (const [rel, ino] of first) expect(fs.statSync(path.join(gen(spool, n), rel)).ino, `night ${n}: ${rel}`).toBe(ino);
        expect(fs.statSync(path.join(gen(spool, n), 'M')).mode & 0o777).toBe(0o755);
      }
      fs.chmodSync(path.join(src, 'M'), 0o755);
    },
  );
});

/**
 * After a manifest was copied over the record of generation `it` of `host`/`part`: verify, diff
 * (with `other`), history (of `file`) and du refuse it with exit 2, verify and diff naming
 * `claim`; restore of `it` says so too and takes the generation's own tree. Returns where it
 * restored, for the caller's own checks.
 */
function expectForeignManifestRefused(tmp: string, spool: string, host: string, part: string, it: string, other: string, file: string, claim: RegExp) {
  const args = ['--spool', spool, '--host', host, '--part', part];
  const v = hardsnap(['verify', ...args, '--generation', it]);
  expect(v.code, v.stderr).toBe(2);
  expect(v.stdout + v.stderr).toMatch(claim);
  const d = hardsnap(['diff', ...args, other, it]);
  expect(d.code, d.stdout).toBe(2);
  expect(d.stderr).toMatch(claim);
  const h = hardsnap(['history', ...args, file]);
  expect(h.code).toBe(2);
  expect(hardsnap(['du', ...args]).code).toBe(2);
  const to = path.join(tmp, 'r');
  const r = hardsnap(['restore', ...args, '--at', it, '--to', to]);
  expect(r.stderr).toMatch(claim);
  return { to, history: h };
}

describe('a damaged manifest is said, not hidden', () => {
  test('restore from a generation whose manifest is damaged warns and exits 23 (it cannot be exact); diff exits 2 with one line, not an internal error', ({
    tmp,
  }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    makeTree(src, { 'a/one': '1\n', 'b/two': '2\n' });
    expect(backup(spool, src, 1).code).toBe(0);
    fs.writeFileSync(path.join(src, 'b/three'), '3\n');
    expect(backup(spool, src, 2).code).toBe(0);
    // a flipped byte in a directory block (past the header and index, which open() checks)
    const file = manifestFile(spool, 2);
    const m = ManifestReader.open(file);
    const at = (m as unknown as { index: Map<string, { offset: number }> }).index.get('b')!.offset + 20;
    m.close();
    const b = fs.readFileSync(file);
    b[at] ^= 0x40;
    fs.writeFileSync(file, b);
    const to = path.join(tmp, 'r');
    const r = hardsnap(['restore', '--spool', spool, '--host', 'h', '--part', 'p', '--to', to]);
    expect(r.code, r.stderr).toBe(23);
    expect(r.stderr).toMatch(/EMANIFEST|manifest .* is damaged/);
    expect(fs.readFileSync(path.join(to, 'b/three'), 'utf8')).toBe('3\n');
    const d = hardsnap(['diff', '--spool', spool, '--host', 'h', '--part', 'p', genName(1), genName(2)]);
    expect(d.code).toBe(2);
    expect(d.stderr).toMatch(/^hardsnap: error: a manifest of part 'p' .* is damaged/m);
    expect(d.stderr).not.toMatch(/internal error/);
  });

  test("a manifest copied over another generation's (its checksums valid) does not pass for that generation: verify, diff, history, restore and the next backup each say so (an attack on issue 16: diff printed no change, restore gave the old mtime)", ({
    tmp,
  }) => {
    const src = path.join(tmp, 'src');
    const spool = makeSpool(path.join(tmp, 'spool'));
    makeTree(src, { x: 'a\n', y: 'b\n' });
    expect(backup(spool, src, 1).code).toBe(0);
    fs.writeFileSync(path.join(src, 'y'), 'b2\n');
    fs.utimesSync(path.join(src, 'y'), new Date('2020-01-01T00:00:00Z'), new Date('2020-01-01T00:00:00Z'));
    expect(backup(spool, src, 2).code).toBe(0);
    fs.copyFileSync(manifestFile(spool, 1), manifestFile(spool, 2));
    const claim = new RegExp(`manifest of ${genName(1)}, not of ${genName(2)}`);
    const { to, history } = expectForeignManifestRefused(tmp, spool, 'h', 'p', genName(2), genName(1), 'y', claim);
    expect(history.stdout).not.toMatch(/b2|2020-01-01/);
    // restore took the generation's own tree, and is exact from it
    expect(fs.readFileSync(path.join(to, 'y'), 'utf8')).toBe('b2\n');
    expect(fs.statSync(path.join(to, 'y')).mtime.toISOString()).toBe('2020-01-01T00:00:00.000Z');
    expect(rsyncDiff(src, to)).toEqual([]);
    // the next backup compares with the generation itself and warns
    const n = backup(spool, src, 3);
    expect(n.code, n.stderr).toBe(0);
    expect(n.stderr).toMatch(claim);
    expect(rsyncDiff(src, gen(spool, 3))).toEqual([]);
    expect(linksDiff(src, gen(spool, 3))).toEqual([]);
  });

  test("another part's manifest of the same generation copied over this part's does not pass for it either (an attack on issue 16: diff, history and du answered for the other part, exit 0)", ({
    tmp,
  }) => {
    const a = path.join(tmp, 'a');
    const p = path.join(tmp, 'p');
    const spool = makeSpool(path.join(tmp, 'spool'));
    makeTree(a, { other: 'o\n' });
    makeTree(p, { f1: '1\n', f2: '2\n' });
    const both = (n: number) => hardsnap(['backup', '--spool', spool, '--host', 'h', '--part', `a=${a}`, '--part', `p=${p}`], at(n));
    expect(both(1).code).toBe(0);
    fs.writeFileSync(path.join(p, 'f1'), 'one\n');
    expect(both(2).code).toBe(0);
    fs.copyFileSync(manifestFile(spool, 1, 'a'), manifestFile(spool, 1, 'p'));
    const { to } = expectForeignManifestRefused(tmp, spool, 'h', 'p', genName(1), genName(2), 'f1', /manifest of part 'a', not of part 'p'/);
    expect(fs.readFileSync(path.join(to, 'f1'), 'utf8')).toBe('1\n');
    expect(fs.existsSync(path.join(to, 'other'))).toBe(false);
  });

  test("another host's manifest of the same part and generation name does not pass either (a second attack: diff, history and du answered for the other host, exit 0)", ({
    tmp,
  }) => {
    const s1 = path.join(tmp, 's1');
    const s2 = path.join(tmp, 's2');
    const spool = makeSpool(path.join(tmp, 'spool'));
    makeTree(s1, { f: 'one\n', g: 'keep\n' });
    makeTree(s2, { f: 'other host\n' });
    const run = (h: string, src: string, n: number) => hardsnap(['backup', '--spool', spool, '--host', h, '--part', `a=${src}`], at(n));
    expect(run('h1', s1, 1).code).toBe(0);
    fs.appendFileSync(path.join(s1, 'f'), 'two\n');
    expect(run('h1', s1, 2).code).toBe(0);
    expect(run('h2', s2, 2).code).toBe(0);
    const file = (h: string) => path.join(spool, 'rsync', h, 'a', '.hardsnap', 'manifests', `${genName(2)}.hsm`);
    fs.copyFileSync(file('h2'), file('h1'));
    const { to } = expectForeignManifestRefused(tmp, spool, 'h1', 'a', genName(2), genName(1), 'f', /manifest of host 'h2', not of host 'h1'/);
    expect(rsyncDiff(s1, to)).toEqual([]);
  });
});
