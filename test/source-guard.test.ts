// A source that is not the one of yesterday (issue 18): the mount point of an unmounted file
// system holding a stray file was backed up as the part, and `--prune --keep-last 2` then
// deleted the real history. Made real: a loop-mounted ext4 and a bind mount, unmounted between
// runs. A source root on another file system, one that lost more than max-source-loss of its
// entries, or one the excludes leave empty is refused (exit 2, nothing published, no prune)
// unless the run accepts it.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from './helpers/fixture.js';
import { makeTree } from './helpers/tree.js';
import { hardsnap } from './helpers/run.js';
import { isRoot } from './helpers/robust.js';
import { calendar, makeSpool } from './helpers/spool.js';
import { generationNames, readRunsLog } from './helpers/ops.js';
import { ManifestReader } from '../src/manifest/reader.js';
import { manifestPath } from '../src/spool/layout.js';

const { at, genName } = calendar('2026-05');

function fill(dir: string, n: number): void {
  for (let i = 0; i < n; i++) fs.writeFileSync(path.join(dir, `msg${i}.eml`), `message ${i}\n`);
}

/** Directory names in a part directory (generations, partials, last, .hardsnap). */
const partEntries = (spool: string, part: string) => fs.readdirSync(path.join(spool, 'rsync', 'h1', part)).sort();

const haveLoop = isRoot && fs.existsSync('/dev/loop-control') && spawnSync('which', ['mkfs.ext4']).status === 0;

describe.runIf(haveLoop)('the source root is the mount point of a loop-mounted ext4', () => {
  test('unmounted, with a stray file in it: refused before the walk (exit 2), nothing written, --prune prunes nothing; mounted again it passes (f_fsid is stable); --accept-source-change takes it for one run', ({
    tmp,
  }) => {
    const spool = makeSpool(path.join(tmp, 'spool'));
    const img = path.join(tmp, 'mail.img');
    const src = path.join(tmp, 'srv-mail');
    fs.mkdirSync(src);
    execFileSync('truncate', ['-s', '32M', img]);
    execFileSync('mkfs.ext4', ['-q', '-F', img], { stdio: 'pipe' });
    const args = ['backup', '--spool', spool, '--host', 'h1', '--part', `mail=${src}`];
    const mount = () => execFileSync('mount', ['-o', 'loop', img, src]);
    mount();
    try {
      fill(src, 200);
      for (const n of [1, 2]) expect(hardsnap(args, at(n)).code).toBe(0);
    } finally {
      execFileSync('umount', [src]);
    }
    // the identity is in the manifest's footer (what the next run reads), and in the run log
    const m = ManifestReader.open(manifestPath(path.join(spool, 'rsync', 'h1', 'mail'), genName(2)));
    try {
      expect(m.footer.source).toMatchObject({
        fsType: 0xef53,
        fsid: expect.stringMatching(/^[0-9a-f]+:[0-9a-f]+$/),
        dev: expect.stringMatching(/^\d+:\d+$/),
        entries: 201,
      });
    } finally {
      m.close();
    }
    expect(readRunsLog(spool, 'h1').at(-1)!.parts).toMatchObject({ mail: { source: { fsType: 0xef53, entries: 201 } } });
    fs.writeFileSync(path.join(src, 'NOT-MOUNTED'), 'someone left this here\n');
    const before = partEntries(spool, 'mail');
    const r = hardsnap([...args, '--prune', '--keep-last', '1'], at(3));
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr.trim()).toMatch(
      new RegExp(
        `^hardsnap: error: source of part 'mail' \\(${src}\\) is not on the file system it was on for ${genName(2)} \\(file system type 0xef53, fsid [0-9a-f]+:[0-9a-f]+, device \\d+:\\d+ then, file system type 0x[0-9a-f]+, .* now\\): is it mounted\\? refusing the run, nothing written \\(.*--accept-source-change\\)$`,
      ),
    );
    // nothing written, no partial, nothing pruned, last unchanged; on record as failed
    expect(partEntries(spool, 'mail')).toEqual(before);
    expect(generationNames(spool, 'h1', 'mail')).toEqual([genName(1), genName(2)]);
    expect(readRunsLog(spool, 'h1').at(-1)).toMatchObject({ status: 'failed', exit: 2, partNames: ['mail'] });
    expect(hardsnap(['status', '--spool', spool, '--host', 'h1'], at(3)).code).toBe(2);

    // mounted again: the same file system (f_fsid survives a remount), the run goes on
    fs.rmSync(path.join(src, 'NOT-MOUNTED'));
    mount();
    try {
      const ok = hardsnap(args, at(4));
      expect(ok.code, ok.stderr).toBe(0);
    } finally {
      execFileSync('umount', [src]);
    }
    // an intended move, accepted once: published, and said (as a note)
    fs.writeFileSync(path.join(src, 'moved-here'), 'new home\n');
    const acc = hardsnap([...args, '--accept-source-change', '--verbose'], at(5));
    expect(acc.code, acc.stderr).toBe(0);
    expect(acc.stderr).toMatch(/accepted for this run \(--accept-source-change\): source of part 'mail' .* is not on the file system it was on/);
    expect(fs.readdirSync(path.join(spool, 'rsync', 'h1', 'mail', genName(5)))).toEqual(['moved-here']);
  });
});

describe.runIf(isRoot)('the source root is a bind mount (the same file system as its mount point)', () => {
  test('unmounted with a stray file: the walk sees 1 entry of 300: refused after the walk (exit 2), nothing published, no prune, the partial left to resume; max-source-loss 100% for the part accepts it', ({
    tmp,
  }) => {
    const spool = makeSpool(path.join(tmp, 'spool'));
    const store = path.join(tmp, 'store');
    const src = path.join(tmp, 'src');
    fs.mkdirSync(store);
    fs.mkdirSync(src);
    fill(store, 300);
    const args = ['backup', '--spool', spool, '--host', 'h1', '--part', `mail=${src}`];
    execFileSync('mount', ['--bind', store, src]);
    try {
      for (const n of [1, 2]) expect(hardsnap(args, at(n)).code).toBe(0);
    } finally {
      execFileSync('umount', [src]);
    }
    fs.writeFileSync(path.join(src, 'stray.txt'), 'x\n');
    const r = hardsnap([...args, '--prune', '--keep-last', '1'], at(3));
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr.trim()).toMatch(
      new RegExp(
        `^hardsnap: error: source of part 'mail' \\(${src}\\) has 1 entry backed up, 99\\.7% fewer than the 300 of ${genName(2)} \\(more than max-source-loss 50%\\): is it the tree you meant \\(and are the excludes the ones you meant\\)\\? refusing to publish; mail/${genName(3)}\\.partial stays for the next run to resume \\(.*--accept-source-change, or raise max-source-loss for the part\\)$`,
      ),
    );
    expect(generationNames(spool, 'h1', 'mail')).toEqual([genName(1), genName(2)]);
    expect(fs.readlinkSync(path.join(spool, 'rsync', 'h1', 'mail', 'last'))).toBe(genName(2));
    expect(partEntries(spool, 'mail')).toContain(`${genName(3)}.partial`);
    expect(readRunsLog(spool, 'h1').at(-1)).toMatchObject({ status: 'failed', exit: 2 });

    // the mount is back: the next run resumes the partial and publishes the real tree
    execFileSync('mount', ['--bind', store, src]);
    try {
      const ok = hardsnap([...args, '--verbose'], at(4));
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stderr).toMatch(/resuming the interrupted generation/);
      expect(fs.readdirSync(path.join(spool, 'rsync', 'h1', 'mail', genName(4)))).toHaveLength(300);
    } finally {
      execFileSync('umount', [src]);
    }

    // a part whose source may shrink at will: max-source-loss: 100% in the config
    const cfg = path.join(tmp, 'hs.yaml');
    fs.writeFileSync(cfg, `spool: ${spool}\nhost: h1\nparts:\n  mail:\n    path: ${src}\n    max-source-loss: 100%\n`);
    const free = hardsnap(['backup', '--config', cfg], at(5));
    expect(free.code, free.stderr).toBe(0);
    expect(generationNames(spool, 'h1', 'mail').at(-1)).toBe(genName(5));
  });
});

describe('max-source-loss and empty results', () => {
  test('excludes that drop every file and keep the directories count as a loss (the walk still sees what it excludes: they passed, and --prune deleted the good generation; a cron trial)', ({
    tmp,
  }) => {
    const spool = makeSpool(path.join(tmp, 'spool'));
    const src = path.join(tmp, 'src');
    makeTree(src, { 'a/b/g': 'g\n' });
    fill(path.join(src, 'a'), 50);
    const args = ['backup', '--spool', spool, '--host', 'h1', '--part', `m=${src}`, '--prune', '--keep-last', '1'];
    expect(hardsnap(args, at(1)).code).toBe(0);
    const r = hardsnap([...args, '--exclude', '*.eml'], at(2));
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/source of part 'm' .* has 3 entries backed up, 94\.3% fewer than the 53 of .*are the excludes the ones you meant/);
    expect(generationNames(spool, 'h1', 'm')).toEqual([genName(1)]);
    // the excludes meant: accepted for one run, and the next compares with what that one kept
    const ok = hardsnap([...args, '--exclude', '*.eml', '--accept-source-change'], at(3));
    expect(ok.code, ok.stderr).toBe(0);
    expect(hardsnap([...args, '--exclude', '*.eml'], at(4)).code).toBe(0);
    // excludes that leave only directories: nothing to back up, whatever the history (refused before any comparison)
    const dirs = hardsnap([...args, '--exclude', '*.eml', '--exclude', 'g', '--accept-source-change'], at(5));
    expect(dirs.code, dirs.stderr).toBe(2);
    expect(dirs.stderr).toMatch(/nothing of part 'm' .* but directories is left to back up: the excludes dropped 51 of the 53 entries/);
  });

  test('a previous generation whose manifest is missing or damaged: its entries, counted, still guard against a shrunken source (an eleventh cron trial: the check was skipped, exit 0, status OK)', ({
    tmp,
  }) => {
    for (const damage of ['rm', 'truncate'] as const) {
      const spool = makeSpool(path.join(tmp, `spool-${damage}`));
      const src = path.join(tmp, `src-${damage}`);
      makeTree(src, {});
      fill(src, 100);
      const args = ['backup', '--spool', spool, '--host', 'h1', '--part', `m=${src}`, '--prune', '--keep-last', '1'];
      expect(hardsnap(args, at(1)).code).toBe(0);
      for (let i = 2; i < 100; i++) fs.rmSync(path.join(src, `msg${i}.eml`));
      const hsm = path.join(spool, 'rsync', 'h1', 'm', '.hardsnap', 'manifests', `${genName(1)}.hsm`);
      if (damage === 'rm') fs.rmSync(hsm);
      else fs.truncateSync(hsm, 200);
      const r = hardsnap(args, at(2));
      expect(r.code, `${damage}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`source of part 'm' .* has 2 entries backed up, 98% fewer than the 100 of ${genName(1)}`));
      expect(generationNames(spool, 'h1', 'm')).toEqual([genName(1)]);
      expect(hardsnap(['status', '--spool', spool, '--host', 'h1'], at(2)).code).toBe(2);
    }
  });

  test('on a first run too, excludes that leave only directories are refused (a tenth cron trial: a tree of empty directories, exit 0); --allow-empty publishes it', ({
    tmp,
  }) => {
    const spool = makeSpool(path.join(tmp, 'spool'));
    const src = path.join(tmp, 'src');
    makeTree(src, { 'd1/a.txt': 'a\n', 'd2/b.txt': 'b\n', 'd2/d3/c.txt': 'c\n' });
    const args = ['backup', '--spool', spool, '--host', 'h1', '--part', `m=${src}`, '--exclude', '*.txt'];
    for (const extra of [[], ['--dry-run']]) {
      const r = hardsnap([...args, ...extra], at(1));
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/nothing of part 'm' .* but directories is left to back up: the excludes dropped 3 of the 6 entries/);
    }
    expect(generationNames(spool, 'h1', 'm')).toEqual([]);
    expect(hardsnap([...args, '--allow-empty'], at(1)).code).toBe(0);
    // a source that holds only directories, nothing excluded, is backed up as it is
    const only = path.join(tmp, 'only-dirs');
    fs.mkdirSync(path.join(only, 'x', 'y'), { recursive: true });
    expect(hardsnap(['backup', '--spool', spool, '--host', 'h1', '--part', `o=${only}`], at(2)).code).toBe(0);
  });

  test('the threshold: per part in the config, --max-source-loss over it; 50% by default', ({ tmp }) => {
    const spool = makeSpool(path.join(tmp, 'spool'));
    const a = path.join(tmp, 'a');
    const b = path.join(tmp, 'b');
    makeTree(a, {});
    makeTree(b, {});
    fill(a, 10);
    fill(b, 10);
    const cfg = path.join(tmp, 'hs.yaml');
    fs.writeFileSync(cfg, `spool: ${spool}\nhost: h1\nparts:\n  a:\n    path: ${a}\n    max-source-loss: 80%\n  b: ${b}\n`);
    expect(hardsnap(['backup', '--config', cfg], at(1)).code).toBe(0);
    // 7 of 10 gone from each: a (80%) passes, b (50%) does not
    for (const d of [a, b]) for (let i = 0; i < 7; i++) fs.rmSync(path.join(d, `msg${i}.eml`));
    const r = hardsnap(['backup', '--config', cfg], at(2));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/source of part 'b' .* has 3 entries backed up, 70% fewer than the 10 of .* \(more than max-source-loss 50%\)/);
    expect(r.stderr).not.toMatch(/part 'a'/);
    // a --part replaces the config's parts with their settings (CONFIG.md): part a given on the
    // command line is held to the top-level 50%, not to the map's 80% (a seventh cron trial)
    const alone = hardsnap(['backup', '--config', cfg, '--part', `a=${a}`], at(2));
    expect(alone.code, alone.stderr).toBe(2);
    expect(alone.stderr).toMatch(/source of part 'a' .* 70% fewer .*\(more than max-source-loss 50%\)/);
    // the command line's threshold is for every part
    const cli = hardsnap(['backup', '--config', cfg, '--max-source-loss', '75%'], at(2));
    expect(cli.code, cli.stderr).toBe(0);
    // a bad threshold is a usage error, in the config with its line
    const bad = hardsnap(['backup', '--config', cfg, '--max-source-loss', '120%'], at(3));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/invalid --max-source-loss "120%": expected a percentage from 0% to 100%/);
    fs.writeFileSync(cfg, `spool: ${spool}\nmax-source-loss: lots\nparts:\n  a: ${a}\n`);
    const badCfg = hardsnap(['backup', '--config', cfg], at(3));
    expect(badCfg.code).toBe(1);
    expect(badCfg.stderr).toMatch(/hs\.yaml:2:18: max-source-loss: .*expected a percentage/);
  });

  test("--exclude '*' leaves nothing of a non-empty source: refused (exit 2), nothing published; --allow-empty publishes it", ({ tmp }) => {
    const spool = makeSpool(path.join(tmp, 'spool'));
    const src = path.join(tmp, 'src');
    makeTree(src, { 'a.txt': 'a', 'd/b.txt': 'b' });
    const args = ['backup', '--spool', spool, '--host', 'h1', '--part', `data=${src}`, '--exclude', '*'];
    const r = hardsnap(args, at(1));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^hardsnap: error: nothing of part 'data' \(.*\) is left to back up: the walk saw 2 entries and kept none \(every one excluded or unreadable\); refusing to publish an empty generation/,
    );
    expect(generationNames(spool, 'h1', 'data')).toEqual([]);
    const dry = hardsnap([...args, '--dry-run'], at(1));
    expect(dry.code).toBe(2);
    expect(dry.stderr).toMatch(/nothing was written \(dry run\)/);
    const ok = hardsnap([...args, '--allow-empty'], at(2));
    expect(ok.code, ok.stderr).toBe(0);
    expect(fs.readdirSync(path.join(spool, 'rsync', 'h1', 'data', genName(2)))).toEqual([]);
  });
});
