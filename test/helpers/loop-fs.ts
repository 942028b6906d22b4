// A file system of a given kind on a loop-mounted image file, for tests that need what the
// default temporary directory's file system lacks or has (clones on XFS and btrfs, ext4's
// limits). Needs root; says why it cannot when it cannot (no mkfs, no loop devices).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from './run.js';

export type LoopKind = 'xfs' | 'btrfs' | 'ext4';

export interface LoopFs {
  kind: LoopKind;
  mnt: string;
  img: string;
  unmount(): void;
}

const MKFS: Record<LoopKind, { tool: string; args: string[]; pkg: string }> = {
  // reflink=1 is mkfs.xfs's default since xfsprogs 5.1; said here so an older one fails loudly
  xfs: { tool: 'mkfs.xfs', args: ['-q', '-f', '-m', 'reflink=1'], pkg: 'xfsprogs' },
  btrfs: { tool: 'mkfs.btrfs', args: ['-q', '-f'], pkg: 'btrfs-progs' },
  ext4: { tool: 'mkfs.ext4', args: ['-q', '-F'], pkg: 'e2fsprogs' },
};

/**
 * Makes a sparse image of `sizeMiB` in `dir`, formats it and loop-mounts it at `dir/mnt-<kind>`;
 * returns it, or why it cannot (a string: the test skips, saying so).
 */
export function mountLoop(dir: string, kind: LoopKind, sizeMiB: number): LoopFs | string {
  if (process.getuid?.() !== 0) return 'needs root to mount a loop image';
  const { tool, args, pkg } = MKFS[kind];
  const img = path.join(dir, `${kind}.img`);
  const mnt = path.join(dir, `mnt-${kind}`);
  fs.mkdirSync(mnt, { recursive: true });
  fs.writeFileSync(img, '');
  fs.truncateSync(img, sizeMiB << 20);
  const mk = spawnSync(tool, [...args, img], { encoding: 'utf8' });
  if ((mk.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return `${tool} is not installed (apt-get install ${pkg})`;
  if (mk.status !== 0) throw new Error(`${tool} failed: ${(mk.stderr || String(mk.error)).trim()}`);
  const m = spawnSync('mount', ['-o', 'loop', img, mnt], { encoding: 'utf8' });
  if (m.status !== 0) return `cannot mount a loop device here: ${(m.stderr || String(m.error)).trim()}`;
  let mounted = true;
  return {
    kind,
    mnt,
    img,
    unmount: () => {
      if (!mounted) return;
      mounted = false;
      spawnSync('umount', [mnt]).status === 0 || spawnSync('umount', ['-l', mnt]);
    },
  };
}

/** Bytes in use on the file system of `dir`, once what was written is on it (df's "used"). */
export function usedBytes(dir: string): number {
  spawnSync('sync', ['-f', dir]);
  const s = fs.statfsSync(dir);
  return (s.blocks - s.bfree) * s.bsize;
}

/**
 * nolinkfs (test/fixtures/nolinkfs.c) over FUSE at `mnt` (made when missing), backed by
 * `dir/back`: a file system without hard links and without O_TMPFILE, as some NAS and FUSE mounts
 * are. Needs root, /dev/fuse, libfuse3-dev and pkg-config; returns why not (a string) otherwise.
 */
export function mountNolinkFuse(dir: string, mnt = path.join(dir, 'mnt-fuse')): { mnt: string; kind: string; unmount: () => void } | string {
  if (process.getuid?.() !== 0) return 'not root: cannot mount a FUSE file system';
  if (!fs.existsSync('/dev/fuse')) return 'no /dev/fuse';
  fs.mkdirSync(mnt, { recursive: true });
  const bin = path.join(dir, 'nolinkfs');
  const cc = spawnSync('sh', ['-c', `cc -O2 -o '${bin}' '${path.join(REPO_ROOT, 'test/fixtures/nolinkfs.c')}' $(pkg-config --cflags --libs fuse3)`], {
    encoding: 'utf8',
  });
  if (cc.status !== 0) return `cannot build nolinkfs (libfuse3-dev, pkg-config): ${cc.stderr.trim().split('\n')[0]}`;
  const back = path.join(dir, 'back');
  fs.mkdirSync(back, { recursive: true });
  const m = spawnSync(bin, [back, mnt], { encoding: 'utf8' });
  if (m.status !== 0) return `cannot mount FUSE: ${m.stderr.trim()}`;
  return { mnt, kind: 'nolinkfs (FUSE)', unmount: () => void spawnSync('fusermount3', ['-u', mnt]) };
}
