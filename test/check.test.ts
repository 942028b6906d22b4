// `hardsnap check` (the spool preflight) and the refusal of `init --spool` to make a spool without
// hard links (a silent fallback to full copies fills the disk: Back In Time issue 526).
import { mountNolinkFuse } from './helpers/loop-fs.js';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, test } from './helpers/fixture.js';
import { hardsnap, REPO_ROOT } from './helpers/run.js';
import { makeTree } from './helpers/tree.js';
import {
  type MountInfo,
  atimeAdvice,
  fsLocation,
  isNfs,
  locationInside,
  mountOf,
  parseFstabMountPoints,
  parseMountinfo,
  unmountedFstabMount,
} from '../src/fs/mountinfo.js';

const NFS_LINE =
  '312 29 0:52 / /mnt/dp\\040spool rw,relatime shared:160 - nfs4 nas.example.org:/export/backup rw,vers=4.2,rsize=1048576,wsize=1048576,hard,proto=tcp,sec=sys,addr=192.0.2.5';
const MOUNTINFO = [
  '22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/vda rw',
  '40 22 0:40 / /mnt rw,relatime shared:2 - tmpfs tmpfs rw',
  NFS_LINE,
  '313 29 0:53 / /mnt/fast rw,noatime,nodiratime shared:161 - nfs nas:/fast rw,vers=3,addr=192.0.2.5',
].join('\n');

describe('fstab mount points with nothing mounted (init refuses a spool there)', () => {
  const fstab = [
    '# comment',
    'UUID=1 /               ext4  errors=remount-ro 0 1',
    'UUID=2 none            swap  sw 0 0',
    '/dev/sdb1 /srv/backup\\040disk ext4 noauto 0 2',
    'nas:/export /mnt/nfs/  nfs4  defaults 0 0',
    'nas:/other  /mnt/nfs/inner nfs4 defaults 0 0',
    'tmpfs /tmp tmpfs defaults 0 0',
    'broken-line',
  ].join('\n');
  const mounted = (...mps: string[]) => mps.map((m) => ({ mountPoint: m }) as MountInfo);
  test('parse: swap, none and comments aside, \\040 decoded, a trailing slash dropped', () => {
    expect(parseFstabMountPoints(fstab)).toEqual(['/', '/srv/backup disk', '/mnt/nfs', '/mnt/nfs/inner', '/tmp']);
  });
  test.for([
    ['/mnt/nfs/dp_spool', ['/', '/tmp'], '/mnt/nfs'],
    ['/mnt/nfs', ['/'], '/mnt/nfs'],
    ['/mnt/nfs/inner/x', ['/', '/mnt/nfs'], '/mnt/nfs/inner'],
    ['/mnt/nfs/inner/x', ['/'], '/mnt/nfs/inner'],
    ['/mnt/nfs/dp_spool', ['/', '/mnt/nfs'], null],
    ['/mnt/nfsx/spool', ['/'], null],
    ['/srv/backup disk/hs', ['/'], '/srv/backup disk'],
    ['/var/backups/hs', [], null],
  ] as const)('%s with %j mounted: %s', ([p, mps, want]) => {
    expect(unmountedFstabMount(p, parseFstabMountPoints(fstab), mounted(...mps))).toBe(want);
  });
});

describe('mountinfo', () => {
  const mounts = parseMountinfo(MOUNTINFO);

  test('the spool lies on the longest mount point that contains it, with escaped spaces decoded', () => {
    expect(mountOf(mounts, '/mnt/dp spool/rsync')?.fstype).toBe('nfs4');
    expect(mountOf(mounts, '/mnt/dp spool')?.source).toBe('nas.example.org:/export/backup');
    expect(mountOf(mounts, '/mnt/dp spoolx')?.fstype).toBe('tmpfs');
    expect(mountOf(mounts, '/var/backups')?.mountPoint).toBe('/');
  });

  test('an NFS mount without noatime,nodiratime gets the fstab line that adds them', () => {
    const m = mountOf(mounts, '/mnt/dp spool')!;
    expect(isNfs(m)).toBe(true);
    const adv = atimeAdvice(m)!;
    expect(adv.missing).toEqual(['noatime', 'nodiratime']);
    expect(adv.fstab).toBe('nas.example.org:/export/backup  /mnt/dp\\040spool  nfs4  rw,vers=4.2,noatime,nodiratime  0  0');
  });

  test('where a path is in its file system, whatever mount reaches it (restore refuses a target inside the spool this way)', () => {
    const ms = parseMountinfo(
      [
        '22 1 253:0 / / rw - ext4 /dev/vda rw',
        '50 22 7:1 / /backup rw - xfs /dev/loop1 rw',
        // a bind mount of a generation of the spool on /backup, elsewhere
        '51 22 7:1 /hs/rsync/h/p/2026-12-01T010000Z /srv/x rw - xfs /dev/loop1 rw',
        // the same NFS export mounted twice: whole, and a host directory of it
        '60 22 0:60 / /mnt/spool rw - nfs4 nas:/export/hs rw,vers=4.2',
        '61 22 0:61 / /mnt/h1 rw - nfs4 nas:/export/hs/rsync/h1 rw,vers=4.2',
      ].join('\n'),
    );
    const spool = fsLocation(ms, '/backup/hs')!;
    expect(spool).toEqual({ fs: '7:1', path: '/hs' });
    expect(fsLocation(ms, '/srv/x/sub')).toEqual({ fs: '7:1', path: '/hs/rsync/h/p/2026-12-01T010000Z/sub' });
    expect(locationInside(fsLocation(ms, '/srv/x/sub')!, spool)).toBe(true);
    expect(locationInside(fsLocation(ms, '/backup/hsx')!, spool)).toBe(false);
    expect(locationInside(fsLocation(ms, '/srv/y')!, spool)).toBe(false);
    const nfs = fsLocation(ms, '/mnt/spool')!;
    expect(nfs).toEqual({ fs: 'nfs:nas', path: '/export/hs' });
    expect(locationInside(fsLocation(ms, '/mnt/h1/p/last')!, nfs)).toBe(true);
    expect(locationInside(fsLocation(ms, '/tmp/restore')!, nfs)).toBe(false);
  });

  test('an NFS mount that has noatime,nodiratime needs no advice; ext4 is not NFS', () => {
    expect(atimeAdvice(mountOf(mounts, '/mnt/fast/x')!)).toBeNull();
    expect(isNfs(mountOf(mounts, '/srv')!)).toBe(false);
  });
});

describe('check on a normal directory', () => {
  test('every required check passes, exit 0, and the probe directory is gone', ({ tmp }) => {
    const spool = path.join(tmp, 'spool');
    fs.mkdirSync(spool);
    const r = hardsnap(['check', '--spool', spool]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^PASS {2}hard links /m);
    expect(r.stdout).toMatch(/^PASS {2}symbolic links /m);
    expect(r.stdout).toMatch(/^PASS {2}atomic rename /m);
    expect(r.stdout).toMatch(/^PASS {2}nanosecond mtimes /m);
    expect(r.stdout).toMatch(/^(PASS|WARN) {2}free space /m);
    expect(r.stdout).toMatch(/ok: the spool can hold backups/);
    expect(fs.readdirSync(spool)).toEqual([]);
  });

  test('--json reports each check with its status and the mount', ({ tmp }) => {
    const r = hardsnap(['check', '--spool', tmp, '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as { ok: boolean; checks: { id: string; status: string }[]; mount: { fstype: string } | null };
    expect(j.ok).toBe(true);
    const ids = j.checks.map((c) => c.id);
    expect(ids).toEqual(expect.arrayContaining(['write', 'hardlink', 'symlink', 'rename', 'mtime-ns', 'owner', 'space', 'inodes']));
    expect(j.checks.find((c) => c.id === 'hardlink')!.status).toBe('pass');
    expect(j.mount?.fstype).toBeTruthy();
  });

  test('a spool that does not exist yet is probed at its nearest existing parent, and not created', ({ tmp }) => {
    const spool = path.join(tmp, 'a', 'b');
    const r = hardsnap(['check', '--spool', spool]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`probed ${tmp}`);
    expect(fs.readdirSync(tmp)).toEqual([]);
  });

  test('init --spool makes the spool: runs the preflight, leaves the marker and no probe; a backup into it then works', ({ tmp }) => {
    makeTree(path.join(tmp, 'src'), { 'a.txt': 'hello\n' });
    const spool = path.join(tmp, 'spool');
    const i = hardsnap(['init', '--spool', spool]);
    expect(i.stderr).toBe('');
    expect(i.code).toBe(0);
    expect(fs.readdirSync(spool)).toEqual(['.hardsnap-spool']);
    expect(fs.statSync(spool).mode & 0o777).toBe(0o700);
    const r = hardsnap(['backup', '--spool', spool, '--host', 'h', '--part', `p=${path.join(tmp, 'src')}`]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(fs.readdirSync(spool).sort()).toEqual(['.hardsnap-spool', 'rsync']);
  });
});

// ---- a file system without hard links ----

/** Mounts a 16 MiB vfat image, or (kernels without vfat, e.g. containers) nolinkfs over FUSE. */
function mountNoLinkFs(dir: string): { mnt: string; kind: string; unmount: () => void } | string {
  if (process.getuid?.() !== 0) return 'not root: cannot mount a loop image or a FUSE file system with allow_other';
  const mnt = path.join(dir, 'mnt');
  fs.mkdirSync(mnt);
  const img = path.join(dir, 'vfat.img');
  const mkfs = spawnSync('mkfs.vfat', ['-C', img, '16384'], { encoding: 'utf8' });
  const haveLoop = fs.existsSync('/dev/loop-control');
  if (mkfs.status === 0 && haveLoop) {
    const m = spawnSync('mount', ['-o', 'loop', img, mnt], { encoding: 'utf8' });
    if (m.status === 0) return { mnt, kind: 'vfat', unmount: () => void spawnSync('umount', [mnt]) };
  }
  // fall back to FUSE (vfat missing from the kernel, no loop device, or no dosfstools)
  if (!fs.existsSync('/dev/fuse'))
    return `cannot mount vfat (${mkfs.status === 0 ? (haveLoop ? 'the kernel lacks vfat' : 'no loop device') : 'no mkfs.vfat'}) and no /dev/fuse`;
  const m = mountNolinkFuse(dir, mnt);
  return typeof m === 'string' ? `cannot mount vfat, and ${m}` : m;
}

describe('a spool file system without hard links', () => {
  test('check fails and init refuses to make a spool there, exit 2, nothing written (vfat loop image, or FUSE without link())', ({ tmp, skip }) => {
    const m = mountNoLinkFs(tmp);
    if (typeof m === 'string') return skip(m);
    try {
      const spool = path.join(m.mnt, 'spool');
      const c = hardsnap(['check', '--spool', m.mnt]);
      expect(c.code, `${m.kind}: ${c.stdout}${c.stderr}`).toBe(2);
      expect(c.stdout).toMatch(/^FAIL {2}hard links +link\(\) failed: EPERM/m);
      expect(c.stdout).toMatch(/FAILED: 1 required check failed/);

      const i = hardsnap(['init', '--spool', spool]);
      expect(i.code).toBe(2);
      expect(i.stdout).toBe('');
      const lines = i.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        /^hardsnap: error: the spool .* cannot hold backups: hard links: link\(\) failed: EPERM; refusing to make a spool there \(hardsnap needs hard links/,
      );
      // nothing written: the spool directory init created is removed again, so no backup can use it
      expect(fs.readdirSync(m.mnt)).toEqual([]);
      const src = path.join(tmp, 'src');
      makeTree(src, { 'a.txt': 'hello\n' });
      const b = hardsnap(['backup', '--spool', spool, '--host', 'h', '--part', `p=${src}`]);
      expect(b.code).toBe(2);
      expect(b.stderr).toMatch(/does not exist: is it mounted\?/);
      expect(fs.readdirSync(m.mnt)).toEqual([]);
    } finally {
      m.unmount();
    }
  });
});

// found by an attack: root's `check` of a spool not made yet, in a directory another user can
// write, probed by path in `.hardsnap-check-PID`; that user renamed it away and put a symlink to
// a directory of theirs in its place, whose `file` linked to a root-owned 0600 file: the
// ownership probe chowned that file (on the first or second try)
describe('check in a directory another user can write, that user swapping the probe directory for a symlink', () => {
  test.runIf(process.getuid?.() === 0)('no file outside the probe directory changes, over repeated checks', async ({ tmp }) => {
    fs.chmodSync(tmp, 0o755);
    const u = path.join(tmp, 'u');
    const evil = path.join(tmp, 'evil');
    const victim = path.join(tmp, 'victim');
    for (const d of [u, evil]) {
      fs.mkdirSync(d);
      fs.chownSync(d, 4242, 4242);
    }
    fs.writeFileSync(victim, 'SECRET\n', { mode: 0o600 });
    fs.symlinkSync(victim, path.join(evil, 'file'));
    fs.lchownSync(path.join(evil, 'file'), 4242, 4242);
    const racer = [
      'import os, sys, time',
      'u, evil, stop = sys.argv[1], sys.argv[2], sys.argv[3]',
      'i = 0',
      'while not os.path.exists(stop):',
      '    try:',
      '        for n in os.listdir(u):',
      "            if n.startswith('.hardsnap-check-'):",
      '                try:',
      "                    i += 1; os.rename(os.path.join(u, n), os.path.join(u, 'junk%d' % i)); os.symlink(evil, os.path.join(u, n))",
      '                except OSError: pass',
      '    except OSError: pass',
    ].join('\n');
    const stop = path.join(tmp, 'stop');
    // (a python3 that user can run: root's PATH may name one under /root)
    const py = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
    const child = spawn('setpriv', ['--reuid=4242', '--regid=4242', '--clear-groups', '--', py, '-c', racer, u, evil, stop], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 500)); // (the racer running)
      for (let i = 0; i < 20; i++) {
        hardsnap(['check', '--spool', path.join(u, 'newspool')]);
        const st = fs.statSync(victim);
        expect([st.uid, st.gid, st.mode & 0o7777], `check ${i + 1}`).toEqual([0, 0, 0o600]);
      }
      expect(fs.readFileSync(victim, 'utf8')).toBe('SECRET\n');
    } finally {
      fs.writeFileSync(stop, '');
      child.kill('SIGKILL');
    }
  });

  // a re-attack: in a root-owned 0777 directory (not sticky) that user renamed a root-owned
  // 0700 directory of files over the empty probe directory just made; the probes wrote there and
  // their cleanup emptied and removed it (check exit 0); init's spool was exchanged the same way
  // and its marker written into a root-owned directory, or removed with what it held
  test.runIf(process.getuid?.() === 0)(
    "a spool in (or below) a directory another user of this machine owns, or that group or others can write without the sticky bit: check probes nothing there and says why, init refuses to make it (exit 2); /tmp-like sticky directories and nobody's (an NFS export that squashes root) are fine",
    ({ tmp }) => {
      fs.chmodSync(tmp, 0o755);
      const pub = path.join(tmp, 'pub');
      fs.mkdirSync(path.join(pub, 'secret'), { recursive: true });
      fs.chmodSync(pub, 0o777);
      fs.chmodSync(path.join(pub, 'secret'), 0o700);
      fs.writeFileSync(path.join(pub, 'secret', 'data'), 'root only\n');
      const theirs = path.join(tmp, 'theirs');
      fs.mkdirSync(theirs);
      fs.chownSync(theirs, 1, 1); // (daemon: a user of this machine, /etc/passwd)
      for (const [where, why] of [
        [path.join(pub, 'sp'), /can be written by every user \(mode 0777, no sticky bit\)/],
        [path.join(pub, 'secret', 'sp'), /can be written by every user/],
        [path.join(theirs, 'sp'), /belongs to uid 1,/],
      ] as const) {
        const c = hardsnap(['check', '--spool', where]);
        expect(c.code, c.stdout + c.stderr).not.toBe(0);
        expect(c.stdout + c.stderr).toMatch(why);
        const i = hardsnap(['init', '--spool', where]);
        expect(i.code, i.stderr).toBe(2);
        expect(i.stderr).toMatch(/refusing to make a spool at/);
        expect(i.stderr).toMatch(why);
        expect(fs.existsSync(where)).toBe(false);
      }
      expect(fs.readdirSync(pub).sort()).toEqual(['secret']);
      expect(fs.readFileSync(path.join(pub, 'secret', 'data'), 'utf8')).toBe('root only\n');
      const sticky = path.join(tmp, 'sticky');
      fs.mkdirSync(sticky);
      fs.chmodSync(sticky, 0o1777);
      expect(hardsnap(['init', '--spool', path.join(sticky, 'sp')]).code).toBe(0);
      // nobody's (the owner an NFS export that squashes root shows): no other user of this machine
      const squashed = path.join(tmp, 'export');
      fs.mkdirSync(squashed);
      fs.chownSync(squashed, 65534, 65534);
      expect(hardsnap(['init', '--spool', path.join(squashed, 'sp')]).code).toBe(0);
    },
  );
});
