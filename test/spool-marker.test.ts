// A backup never creates its spool (issue 18): the spool of a cron job that is not mounted is
// either missing (the share's mount point is above it) or a bare directory (the mount point
// itself, maybe with a stray file in it). Both are refused by every command with one line and
// exit 2, nothing written; `hardsnap init --spool` is the one way to make a spool. Made real with
// a bind mount and a loop-mounted ext4 that are unmounted between runs.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from './helpers/fixture.js';
import { makeTree } from './helpers/tree.js';
import { BIN, hardsnap } from './helpers/run.js';
import { isRoot } from './helpers/robust.js';
import { calendar, makeSpool } from './helpers/spool.js';
import { generationNames } from './helpers/ops.js';

const { at, genName } = calendar('2026-01');
const MARKER = '.hardsnap-spool';

/** Every file and directory below dir, relative, sorted (what a run may have written). */
function everything(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).sort();
}

/**
 * Every command that reads or writes a spool, run against `spool`: each must fail with exit 2
 * and one line on stderr matching `msg` (status: Nagios CRITICAL on stdout).
 */
function expectEveryCommandRefuses(spool: string, src: string, msg: RegExp): void {
  const t = ['--spool', spool, '--host', 'h1'];
  const commands: string[][] = [
    ['backup', ...t, '--part', `data=${src}`],
    ['backup', ...t, '--part', `data=${src}`, '--prune', '--keep-last', '1'],
    ['backup', ...t, '--part', `data=${src}`, '--dry-run'],
    ['list', ...t],
    ['restore', ...t, '--part', 'data', '--to', path.join(path.dirname(src), 'restored')],
    ['verify', ...t],
    ['prune', ...t, '--keep-last', '1'],
    ['diff', ...t, '--part', 'data', genName(1), genName(2)],
    ['history', ...t, '--part', 'data', 'f'],
    ['du', ...t],
    ['pin', ...t, '--part', 'data', genName(1)],
  ];
  for (const argv of commands) {
    const r = hardsnap(argv, at(9));
    const label = `${argv.join(' ')}: ${r.stderr}`;
    expect(r.code, label).toBe(2);
    expect(r.stdout, label).toBe('');
    expect(r.stderr.trim().split('\n'), label).toHaveLength(1);
    expect(r.stderr, label).toMatch(msg);
  }
  const s = hardsnap(['status', ...t], at(9));
  expect(s.code, s.stdout).toBe(2);
  expect(s.stdout.trim().split('\n')).toHaveLength(1);
  expect(s.stdout).toMatch(/^HARDSNAP CRITICAL - /);
  expect(s.stdout).toMatch(msg);
  expect(fs.existsSync(path.join(path.dirname(src), 'restored'))).toBe(false);
}

describe.runIf(isRoot)('an unmounted spool is refused, never filled (real mounts)', () => {
  test('the share holding the spool is not mounted (a bind mount, unmounted): "does not exist: is it mounted?", exit 2, nothing created under the mount point', ({
    tmp,
  }) => {
    const share = path.join(tmp, 'nas-export');
    const mnt = path.join(tmp, 'mnt-nfs');
    fs.mkdirSync(share);
    fs.mkdirSync(mnt);
    const src = path.join(tmp, 'src');
    makeTree(src, { f: 'mail\n', 'd/g': 'more\n' });
    const spool = path.join(mnt, 'dp_spool');
    execFileSync('mount', ['--bind', share, mnt]);
    try {
      const i = hardsnap(['init', '--spool', spool]);
      expect(i.code, i.stderr).toBe(0);
      const b = hardsnap(['backup', '--spool', spool, '--host', 'h1', '--part', `data=${src}`], at(1));
      expect(b.code, b.stderr).toBe(0);
    } finally {
      execFileSync('umount', [mnt]);
    }
    expect(fs.readdirSync(mnt)).toEqual([]);
    expectEveryCommandRefuses(spool, src, /spool .*mnt-nfs\/dp_spool does not exist: is it mounted\?/);
    // what the run used to do: mkdir -p and a full backup onto the root disk
    expect(fs.readdirSync(mnt)).toEqual([]);
    // mounted again, the spool is there, untouched, and the next run works
    execFileSync('mount', ['--bind', share, mnt]);
    try {
      expect(generationNames(spool, 'h1', 'data')).toEqual([genName(1)]);
      const b = hardsnap(['backup', '--spool', spool, '--host', 'h1', '--part', `data=${src}`], at(2));
      expect(b.code, b.stderr).toBe(0);
    } finally {
      execFileSync('umount', [mnt]);
    }
  });

  test.runIf(fs.existsSync('/dev/loop-control'))(
    'the spool is the mount point of a loop-mounted ext4 that is not mounted: the bare directory, even with a stray file, is refused with exit 2',
    ({ tmp }) => {
      const img = path.join(tmp, 'spool.img');
      const mnt = path.join(tmp, 'backup-disk');
      fs.mkdirSync(mnt);
      execFileSync('truncate', ['-s', '32M', img]);
      execFileSync('mkfs.ext4', ['-q', '-F', img], { stdio: 'pipe' });
      const src = path.join(tmp, 'src');
      makeTree(src, { f: 'mail\n' });
      execFileSync('mount', ['-o', 'loop', img, mnt]);
      try {
        // a fresh file system holds lost+found: still an empty directory to init
        const i = hardsnap(['init', '--spool', mnt, '--verbose']);
        expect(i.code, i.stderr).toBe(0);
        expect(i.stdout).toMatch(/made a spool in the empty directory/);
        expect(fs.readdirSync(mnt).sort()).toEqual([MARKER, 'lost+found']);
        expect(hardsnap(['backup', '--spool', mnt, '--host', 'h1', '--part', `data=${src}`], at(1)).code).toBe(0);
      } finally {
        execFileSync('umount', [mnt]);
      }
      expect(fs.readdirSync(mnt)).toEqual([]);
      const bare = /backup-disk is not a hardsnap spool \(no \.hardsnap-spool\): is it mounted\?/;
      expectEveryCommandRefuses(mnt, src, bare);
      expect(fs.readdirSync(mnt)).toEqual([]);
      // someone left a file in the mount point: still not the spool
      fs.writeFileSync(path.join(mnt, 'README'), 'mount /dev/sdb1 here\n');
      expectEveryCommandRefuses(mnt, src, bare);
      expect(everything(mnt)).toEqual(['README']);
      // and init refuses to make a spool over it (exit 1): it is not empty
      const i = hardsnap(['init', '--spool', mnt]);
      expect(i.code).toBe(1);
      expect(i.stderr).toMatch(/is not empty and is not a hardsnap spool .*refusing to make a spool there/);
      fs.rmSync(path.join(mnt, 'README'));
      execFileSync('mount', ['-o', 'loop', img, mnt]);
      try {
        expect(generationNames(mnt, 'h1', 'data')).toEqual([genName(1)]);
        expect(hardsnap(['backup', '--spool', mnt, '--host', 'h1', '--part', `data=${src}`], at(2)).code).toBe(0);
      } finally {
        spawnSync('umount', [mnt]);
      }
    },
  );
});

describe.runIf(isRoot)('init never makes a spool where a file system should be mounted and is not (a seventh cron trial)', () => {
  test('the spool path a symlink into an unmounted share: exit 2, the symlink kept, nothing made, on every retry; mounted, init and backups go on', ({
    tmp,
  }) => {
    const share = path.join(tmp, 'nas-export');
    const mnt = path.join(tmp, 'mnt-nfs');
    fs.mkdirSync(path.join(share, 'hs'), { recursive: true });
    fs.mkdirSync(mnt);
    const link = path.join(tmp, 'hslink');
    fs.symlinkSync(path.join(mnt, 'hs'), link);
    const src = path.join(tmp, 'src');
    makeTree(src, { f: 'mail\n' });
    for (let i = 0; i < 2; i++) {
      const r = hardsnap(['init', '--spool', link]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/^hardsnap: error: .*hslink is a symlink to .*mnt-nfs\/hs, which does not exist: is it mounted\? /);
      expect(fs.readlinkSync(link)).toBe(path.join(mnt, 'hs')); // it was removed, and the next init made a local spool
      expect(fs.readdirSync(mnt)).toEqual([]);
    }
    execFileSync('mount', ['--bind', share, mnt]);
    try {
      expect(hardsnap(['init', '--spool', link]).code).toBe(0);
      expect(hardsnap(['backup', '--spool', link, '--host', 'h1', '--part', `data=${src}`], at(1)).code).toBe(0);
    } finally {
      execFileSync('umount', [mnt]);
    }
    expect(fs.readdirSync(mnt)).toEqual([]);
    expect(hardsnap(['init', '--spool', link]).code).toBe(2);
    expect(fs.readdirSync(mnt)).toEqual([]);
  });

  test.runIf(spawnSync('unshare', ['--version']).status === 0)(
    'a mount point /etc/fstab lists with nothing mounted on it (a private mount namespace with its own fstab): init at it, below it, or through a symlink to it is exit 2 and makes nothing; mounted, init works',
    ({ tmp }) => {
      const mnt = path.join(tmp, 'backup-disk');
      fs.mkdirSync(mnt);
      fs.symlinkSync(mnt, path.join(tmp, 'via-link'));
      const fstab = path.join(tmp, 'fstab');
      // fstab's own spellings: a symlink as the mount point (mount(8) mounts on its target), `//` and `/./` (an eighth cron trial)
      const real = path.join(tmp, 'real-disk');
      fs.mkdirSync(real);
      fs.symlinkSync(real, path.join(tmp, 'disk-link'));
      fs.mkdirSync(path.join(tmp, 'other-disk'));
      fs.writeFileSync(
        fstab,
        `# a test fstab\nUUID=0000 none swap sw 0 0\n/dev/disk/by-label/backup  ${mnt.replace(/ /g, '\\040')}  ext4  defaults,noauto  0 2\n` +
          `LABEL=b ${path.join(tmp, 'disk-link')} ext4 defaults 0 2\nLABEL=c /${tmp}//./other-disk ext4 defaults 0 2\n`,
      );
      const script = [
        `mount --bind ${fstab} /etc/fstab`,
        ...[path.join(mnt, 'spool'), mnt, path.join(tmp, 'via-link', 'spool'), path.join(real, 'hs'), path.join(tmp, 'other-disk', 'hs')].map(
          (p) => `${BIN} init --spool ${p}; echo "rc=$?"`,
        ),
        `mount -t tmpfs backup ${mnt}`,
        `${BIN} init --spool ${path.join(mnt, 'spool')}; echo "rc=$?"`,
      ].join('\n');
      const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { encoding: 'utf8' });
      expect(r.stdout.match(/rc=\d+/g), r.stderr).toEqual(['rc=2', 'rc=2', 'rc=2', 'rc=2', 'rc=2', 'rc=0']);
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(5);
      for (const l of lines.slice(0, 3))
        expect(l).toMatch(
          /is at or below .*backup-disk, a mount point in \/etc\/fstab with nothing mounted on it: is it mounted\? \(mount .*backup-disk, then run init again/,
        );
      expect(lines[3]).toMatch(/real-disk\/hs is at or below .*real-disk, a mount point in \/etc\/fstab/);
      expect(lines[4]).toMatch(/other-disk\/hs is at or below .*other-disk, a mount point in \/etc\/fstab/);
      expect(fs.readdirSync(mnt)).toEqual([]); // the tmpfs went with the namespace
      expect(fs.readdirSync(real)).toEqual([]);
    },
  );
});

describe.runIf(isRoot && spawnSync('unshare', ['--version']).status === 0)('a host directory on a file system of its own (a tenth cron trial)', () => {
  test('bind-mounted from another disk and listed in /etc/fstab, not mounted: backup exit 2 and nothing written below, status CRITICAL; mounted, both fine', ({
    tmp,
  }) => {
    const spool = makeSpool(path.join(tmp, 'spool'));
    const web2 = path.join(spool, 'rsync', 'web2');
    fs.mkdirSync(web2, { recursive: true, mode: 0o700 });
    const other = path.join(tmp, 'other-disk');
    fs.mkdirSync(other, { mode: 0o700 });
    const src = path.join(tmp, 'src');
    makeTree(src, { f: 'mail\n' });
    const fstab = path.join(tmp, 'fstab');
    fs.writeFileSync(fstab, `${other} ${web2} none bind 0 0\n`);
    const cfg = path.join(tmp, 'hs.yaml');
    fs.writeFileSync(cfg, `spool: ${spool}\nhost: web2\nparts:\n  a: ${src}\n`);
    const run = (n: number, args: string) => `HARDSNAP_NOW=2026-03-0${n}T03:00:00Z ${BIN} ${args}; echo "rc=$?"`;
    const script = [
      `mount --bind ${fstab} /etc/fstab`,
      `mount --bind ${other} ${web2}`,
      run(1, `backup --config ${cfg}`),
      `umount ${web2}`,
      run(2, `backup --config ${cfg}`),
      run(2, `status --config ${cfg}`),
      run(2, `status --spool ${spool} --host web2`),
      `mount --bind ${other} ${web2}`,
      run(3, `backup --config ${cfg}`),
      run(3, `status --config ${cfg}`),
    ].join('\n');
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { encoding: 'utf8' });
    expect(r.stdout.match(/rc=\d+/g), r.stdout + r.stderr).toEqual(['rc=0', 'rc=2', 'rc=2', 'rc=2', 'rc=0', 'rc=0']);
    // without the config (no part expected): the host's own line says why it shows none (a twelfth cron trial)
    expect(r.stdout).toMatch(/web2: CRITICAL .*rsync\/web2 is at or below .*rsync\/web2, a mount point in \/etc\/fstab with nothing mounted on it/);
    expect(r.stderr).toMatch(
      /^hardsnap: error: .*rsync\/web2 is at or below .*rsync\/web2, a mount point in \/etc\/fstab with nothing mounted on it: is it mounted\? /m,
    );
    expect(r.stdout).toMatch(/web2\/a: CRITICAL .*rsync\/web2\/a is at or below .*rsync\/web2, a mount point in \/etc\/fstab with nothing mounted on it/);
    expect(fs.readdirSync(web2)).toEqual([]); // nothing written on the disk below, not even a run record
    expect(
      fs
        .readdirSync(path.join(other, 'a'))
        .filter((n) => n.startsWith('2026'))
        .sort(),
    ).toEqual(['2026-03-01T030000Z', '2026-03-03T030000Z']);
  });
});

describe('hardsnap init', () => {
  test('init --spool creates the spool (mode 0700) with its marker; again it does nothing, exit 0; without --spool it prints the example config', ({ tmp }) => {
    const spool = path.join(tmp, 'a', 'spool');
    const r = hardsnap(['init', '--spool', spool]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toBe('');
    expect(fs.readdirSync(spool)).toEqual([MARKER]);
    expect(fs.statSync(spool).mode & 0o777).toBe(0o700);
    const marker = JSON.parse(fs.readFileSync(path.join(spool, MARKER), 'utf8')) as Record<string, unknown>;
    expect(marker).toMatchObject({ hardsnap: 'spool', format: 1 });
    const before = fs.readFileSync(path.join(spool, MARKER), 'utf8');
    const again = hardsnap(['init', '--spool', spool, '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toEqual({ format: 1, spool, outcome: 'exists' });
    expect(fs.readFileSync(path.join(spool, MARKER), 'utf8')).toBe(before);
    const example = hardsnap(['init']);
    expect(example.code).toBe(0);
    expect(example.stdout).toMatch(/^spool: /m);
  });

  test('init takes an existing empty directory, and refuses one that holds something (exit 1)', ({ tmp }) => {
    const empty = path.join(tmp, 'empty');
    fs.mkdirSync(empty);
    const r = hardsnap(['init', '--spool', empty, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).outcome).toBe('initialized');
    const full = path.join(tmp, 'full');
    makeTree(full, { 'etc/passwd': 'x' });
    const f = hardsnap(['init', '--spool', full]);
    expect(f.code).toBe(1);
    expect(f.stderr.trim().split('\n')).toHaveLength(1);
    expect(fs.readdirSync(full)).toEqual(['etc']);
  });

  test('a backup into a directory that was never init-ed is refused (exit 2) and writes nothing; a missing one is not created', ({ tmp }) => {
    const src = path.join(tmp, 'src');
    makeTree(src, { f: 'x' });
    const bare = path.join(tmp, 'bare');
    fs.mkdirSync(bare);
    const r = hardsnap(['backup', '--spool', bare, '--host', 'h1', '--part', `data=${src}`], at(1));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^hardsnap: error: .*bare is not a hardsnap spool \(no \.hardsnap-spool\): is it mounted\? \(.*hardsnap init --spool .*bare'\)\n$/,
    );
    expect(fs.readdirSync(bare)).toEqual([]);
    const missing = path.join(tmp, 'missing', 'spool');
    const m = hardsnap(['backup', '--spool', missing, '--host', 'h1', '--part', `data=${src}`], at(1));
    expect(m.code).toBe(2);
    expect(m.stderr).toMatch(/^hardsnap: error: spool .*missing\/spool does not exist: is it mounted\? /);
    expect(fs.existsSync(path.join(tmp, 'missing'))).toBe(false);
  });
});

describe('symlinks inside a spool are not written through', () => {
  test('a host directory or a part component that is a symlink (to an unmounted mount point) is refused: exit 2, nothing written behind it (a cron trial filled it)', ({
    tmp,
  }) => {
    const src = path.join(tmp, 'src');
    makeTree(src, { f: 'x' });
    const spool = makeSpool(path.join(tmp, 'spool'));
    const empty = path.join(tmp, 'mnt-empty');
    fs.mkdirSync(empty);
    fs.mkdirSync(path.join(spool, 'rsync'), { recursive: true });
    fs.symlinkSync(empty, path.join(spool, 'rsync', 'h1'));
    const r = hardsnap(['backup', '--spool', spool, '--host', 'h1', '--part', `p=${src}`], at(1));
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/rsync\/h1 is a symlink \(to .*mnt-empty\): hardsnap does not write through symlinks inside the spool/);
    fs.mkdirSync(path.join(spool, 'rsync', 'h2'));
    fs.symlinkSync(empty, path.join(spool, 'rsync', 'h2', 'mail'));
    const p = hardsnap(['backup', '--spool', spool, '--host', 'h2', '--part', `mail/imap=${src}`], at(1));
    expect(p.code, p.stderr).toBe(2);
    expect(p.stderr).toMatch(/rsync\/h2\/mail is a symlink/);
    expect(fs.readdirSync(empty)).toEqual([]);
    // a host's or a part's .hardsnap (lock, run log, manifests) that is a symlink (a fourth trial: written through)
    fs.mkdirSync(path.join(spool, 'rsync', 'h4'));
    fs.symlinkSync(empty, path.join(spool, 'rsync', 'h4', '.hardsnap'));
    const h = hardsnap(['backup', '--spool', spool, '--host', 'h4', '--part', `p=${src}`], at(1));
    expect(h.code, h.stderr).toBe(2);
    expect(h.stderr).toMatch(/rsync\/h4\/\.hardsnap is a symlink/);
    fs.mkdirSync(path.join(spool, 'rsync', 'h5', 'p'), { recursive: true });
    fs.symlinkSync(empty, path.join(spool, 'rsync', 'h5', 'p', '.hardsnap'));
    const pm = hardsnap(['backup', '--spool', spool, '--host', 'h5', '--part', `p=${src}`], at(1));
    expect(pm.code, pm.stderr).toBe(2);
    expect(pm.stderr).toMatch(/rsync\/h5\/p\/\.hardsnap is a symlink/);
    expect(fs.readdirSync(empty)).toEqual([]);
    // a stray symlink named like a generation or a .partial (a run resumed into it; it was renamed and failed with ENOTDIR)
    expect(hardsnap(['backup', '--spool', spool, '--host', 'h6', '--part', `p=${src}`], at(1)).code).toBe(0);
    const target = path.join(tmp, 'elsewhere');
    fs.mkdirSync(target);
    for (const name of [`${genName(2)}.partial`, genName(2)]) {
      const stray = path.join(spool, 'rsync', 'h6', 'p', name);
      fs.symlinkSync(target, stray);
      const g = hardsnap(['backup', '--spool', spool, '--host', 'h6', '--part', `p=${src}`], at(3));
      expect(g.code, g.stderr).toBe(2);
      expect(g.stderr).toMatch(new RegExp(`rsync/h6/p/${name.replace('.', '\\.')} is a symlink \\(to .*elsewhere\\): .*hardsnap never makes one`));
      expect(fs.lstatSync(stray).isSymbolicLink()).toBe(true); // not renamed, not resumed
      // the host's own directories are real: the refusal is on record, and status shows it
      const runs = fs
        .readFileSync(path.join(spool, 'rsync', 'h6', '.hardsnap', 'runs.jsonl'), 'utf8')
        .trim()
        .split('\n');
      expect(JSON.parse(runs.at(-1)!)).toMatchObject({ status: 'failed', exit: 2, error: expect.stringMatching(/is a symlink/) });
      expect(hardsnap(['status', '--spool', spool, '--host', 'h6'], at(3)).code).toBe(2);
      expect(fs.readdirSync(target)).toEqual([]);
      fs.unlinkSync(stray);
    }
    // the spool root itself may be a symlink (to a mounted spool)
    const link = path.join(tmp, 'spool-link');
    fs.symlinkSync(spool, link);
    expect(hardsnap(['backup', '--spool', link, '--host', 'h3', '--part', `p=${src}`], at(1)).code).toBe(0);
  });

  test('a symlink named like a generation is not one: list, status, restore and retention ignore it (a re-attack: it was counted by retention and a real generation pruned in its place), status names it', ({
    tmp,
  }) => {
    const src = path.join(tmp, 'src');
    makeTree(src, { f: 'x' });
    const spool = makeSpool(path.join(tmp, 'spool'));
    const run = (args: string[], day: number) => hardsnap([...args, '--spool', spool, '--host', 'h1'], at(day));
    for (const d of [1, 2]) expect(run(['backup', '--part', `p=${src}`], d).code).toBe(0);
    // a stray symlink, newer than both, to a directory outside the spool
    const elsewhere = path.join(tmp, 'elsewhere');
    makeTree(elsewhere, { secret: 'not a backup' });
    const stray = path.join(spool, 'rsync', 'h1', 'p', genName(3));
    fs.symlinkSync(elsewhere, stray);
    const l = run(['list'], 4);
    expect(l.code, l.stderr).toBe(0);
    expect(l.stdout).not.toContain(genName(3));
    expect(l.stdout).toContain(genName(2));
    const st = run(['status'], 4);
    expect(st.stdout).toMatch(new RegExp(`${genName(3)} is a symlink named like a generation`));
    // restore of the newest picks the real one, never the directory behind the symlink
    const to = path.join(tmp, 'restored');
    const r = run(['restore', '--part', 'p', '--to', to], 4);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readdirSync(to)).toEqual(['f']);
    // keep the newest one: the newest generation is genName(2), not the symlink
    const pr = run(['prune', '--keep-last', '1'], 4);
    expect(pr.code, pr.stderr).toBe(0);
    expect(generationNames(spool, 'h1', 'p')).toEqual([genName(2), genName(3)]); // the symlink's name, untouched
    expect(fs.lstatSync(stray).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(path.join(elsewhere, 'secret'), 'utf8')).toBe('not a backup');
  });
});

describe('spools made by earlier versions (no marker) keep working', () => {
  test('recognised by their layout: read-only commands use them as they are; the first backup marks the spool and says so once', ({ tmp }) => {
    const src = path.join(tmp, 'src');
    makeTree(src, { f: 'x' });
    const spool = makeSpool(path.join(tmp, 'spool'));
    expect(hardsnap(['backup', '--spool', spool, '--host', 'h1', '--part', `data=${src}`], at(1)).code).toBe(0);
    fs.rmSync(path.join(spool, MARKER)); // as 0.1.0 left it
    const l = hardsnap(['list', '--spool', spool, '--host', 'h1'], at(2));
    expect(l.code, l.stderr).toBe(0);
    expect(l.stdout).toContain(genName(1));
    expect(hardsnap(['status', '--spool', spool, '--host', 'h1'], at(2)).code).toBe(0);
    expect(hardsnap(['backup', '--spool', spool, '--host', 'h1', '--part', `data=${src}`, '--dry-run'], at(2)).code).toBe(0);
    expect(fs.existsSync(path.join(spool, MARKER))).toBe(false);
    // said without --verbose: under cron too, once
    const b = hardsnap(['backup', '--spool', spool, '--host', 'h1', '--part', `data=${src}`], at(2));
    expect(b.code, b.stderr).toBe(0);
    expect(b.stderr).toMatch(/^hardsnap: warning: marked .*spool as a hardsnap spool \(\.hardsnap-spool\): it was made by an earlier version/m);
    expect(fs.existsSync(path.join(spool, MARKER))).toBe(true);
    const c = hardsnap(['backup', '--spool', spool, '--host', 'h1', '--part', `data=${src}`, '--verbose'], at(3));
    expect(c.code, c.stderr).toBe(0);
    expect(c.stderr).not.toMatch(/marked/);
    // the 0.1.0 spool without its marker is marked by init too
    fs.rmSync(path.join(spool, MARKER));
    const i = hardsnap(['init', '--spool', spool, '--json']);
    expect(i.code, i.stderr).toBe(0);
    expect(JSON.parse(i.stdout).outcome).toBe('marked');
  });

  test('init refuses traces of runs without a published generation (a sixth cron trial: an empty rsync/<host>/.hardsnap on an unmounted mount point was marked, and the next backup filled the disk below)', ({
    tmp,
  }) => {
    const src = path.join(tmp, 'src');
    makeTree(src, { f: 'x' });
    for (const [what, dirs] of Object.entries({
      'host meta dir': ['rsync/h9/.hardsnap'],
      'host meta dir and a part': ['rsync/h9/.hardsnap', 'rsync/h9/a/.hardsnap'],
      'host meta dir and a stray file': ['rsync/h9/.hardsnap', 'stray'],
    })) {
      const mnt = path.join(tmp, what.replace(/ /g, '-'));
      for (const d of dirs) {
        if (d === 'stray') fs.writeFileSync(path.join(mnt, d), 'x');
        else fs.mkdirSync(path.join(mnt, d), { recursive: true, mode: 0o700 });
      }
      const before = execFileSync('find', [mnt], { encoding: 'utf8' });
      const i = hardsnap(['init', '--spool', mnt]);
      expect(i.code, `${what}: ${i.stderr}`).toBe(1);
      expect(i.stderr).toMatch(
        /is not empty and is not a hardsnap spool .*traces of hardsnap runs but no published generation; if it is the mount point of a spool that is not mounted, mount it/,
      );
      expect(fs.existsSync(path.join(mnt, MARKER))).toBe(false);
      const b = hardsnap(['backup', '--spool', mnt, '--host', 'h9', '--part', `a=${src}`], at(1));
      expect(b.code, b.stderr).toBe(2);
      expect(execFileSync('find', [mnt], { encoding: 'utf8' }), what).toBe(before);
    }
  });

  test("what a run left on an unmounted mount point (rsync/<host>/.hardsnap/, even empty, an empty part) is not taken for an earlier version's spool: exit 2, nothing written, nothing marked", ({
    tmp,
  }) => {
    const src = path.join(tmp, 'src');
    makeTree(src, { f: 'x' });
    const traces: Record<string, string[]> = {
      'host meta dir': ['rsync/x/.hardsnap'],
      'a part without generations': ['rsync/x/data/.hardsnap/manifests'],
      'only a partial generation': ['rsync/x/data/.hardsnap', 'rsync/x/data/2026-01-01T030000Z.partial'],
      'a generation without its manifest': ['rsync/x/data/.hardsnap/manifests', 'rsync/x/data/2026-01-31T030000Z'],
      'a generation with an empty manifest': ['rsync/x/data/.hardsnap/manifests/2026-01-31T030000Z.hsm', 'rsync/x/data/2026-01-31T030000Z'],
    };
    for (const [what, dirs] of Object.entries(traces)) {
      const mnt = path.join(tmp, what.replace(/ /g, '-'));
      for (const d of dirs) {
        if (d.endsWith('.hsm')) {
          fs.mkdirSync(path.dirname(path.join(mnt, d)), { recursive: true });
          fs.writeFileSync(path.join(mnt, d), ''); // an empty or damaged manifest is no proof
        } else fs.mkdirSync(path.join(mnt, d), { recursive: true });
      }
      const before = execFileSync('find', [mnt], { encoding: 'utf8' });
      for (const host of ['x', 'y']) {
        const b = hardsnap(['backup', '--spool', mnt, '--host', host, '--part', `data=${src}`], at(1));
        expect(b.code, `${what}, host ${host}: ${b.stderr}`).toBe(2);
        expect(b.stderr).toMatch(/is not a hardsnap spool \(no \.hardsnap-spool\): is it mounted\?/);
      }
      expect(execFileSync('find', [mnt], { encoding: 'utf8' }), what).toBe(before);
    }
  });
});
