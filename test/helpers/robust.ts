// Shared by the fault and hostile-input tests: a seeded random generator, generation
// fingerprints (inodes included), a scratch directory on tmpfs (so syncfs is cheap), and runs as
// a user who owns nothing (nobody, through setpriv).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { onTestFinished } from 'vitest';
import { removeTmp } from './fixture.js';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { BIN, REPO_ROOT, hardsnap, type RunOptions, type RunResult } from './run.js';

/** The seeded generator of every random schedule here (test/helpers/random.ts). */
export { random as rng } from './random.js';

/** The seed of a test's random schedule: HARDSNAP_TEST_SEED when set, else `fallback`. */
export function seedOf(fallback: number): number {
  const s = process.env.HARDSNAP_TEST_SEED;
  return s ? Number(s) : fallback;
}

const hashCache = new Map<string, string>();

/**
 * Every entry of a tree as one line: path, type, mode, owner, size, mtime (ns), inode, content
 * hash, symlink target. Equal fingerprints mean the tree is byte-identical and no inode was
 * replaced. nlink is left out: new generations link to these inodes. Content hashes are cached
 * by inode, size, mtime and ctime: any write to an inode moves its ctime (which no program can
 * set back), so a cached hash is never stale; only a link or chmod costs a re-read.
 */
export function fingerprint(root: string): string[] {
  const out: string[] = [];
  const walk = (abs: Buffer, rel: string): void => {
    const st = fs.lstatSync(abs, { bigint: true });
    const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : 'other';
    let extra = '';
    if (type === 'file') {
      const k = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
      let h = hashCache.get(k);
      if (!h) hashCache.set(k, (h = createHash('sha256').update(fs.readFileSync(abs)).digest('hex')));
      extra = h;
    } else if (type === 'symlink') {
      extra = fs.readlinkSync(abs, { encoding: 'buffer' }).toString('latin1');
    }
    out.push([rel, type, (st.mode & 0o7777n).toString(8), `${st.uid}:${st.gid}`, st.size, st.mtimeNs, st.ino, extra].join(' '));
    if (type !== 'dir') return;
    const names = fs.readdirSync(abs, { encoding: 'buffer' }).sort(Buffer.compare);
    for (const n of names) walk(Buffer.concat([abs, Buffer.from('/'), n]), rel + '/' + n.toString('latin1'));
  };
  walk(Buffer.from(root), '');
  return out;
}

/** A fresh directory on tmpfs (/dev/shm) when there is one, removed when the test finishes. */
export function shmdir(): string {
  const base = fs.existsSync('/dev/shm') && fs.statSync('/dev/shm').isDirectory() ? '/dev/shm' : os.tmpdir();
  const dir = fs.mkdtempSync(path.join(base, 'hardsnap-test-'));
  onTestFinished(() => removeTmp(dir));
  return dir;
}

export const isRoot = process.getuid?.() === 0;

/**
 * Fails with a clear reason when uid 65534 cannot run this checkout (a repository under a 0700
 * home directory): the non-root tests run bin/hardsnap as nobody through setpriv.
 */
export function assertNobodyCanRun(repoRoot: string): void {
  const probe = path.join(repoRoot, 'dist', 'cli', 'main.js');
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', 'test', '-r', probe], { stdio: 'ignore' });
  if (r.error) throw new Error(`setpriv (util-linux) is needed to run as nobody: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`uid 65534 cannot read ${probe}: put the checkout where every user can read it (e.g. chmod o+rx on its parents)`);
}

/** setpriv's arguments that switch to uid/gid 65534 (nobody) without supplementary groups. */
export const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups', '--'];

/**
 * A node binary nobody may execute: this one, or (when it lies where nobody cannot reach it, as
 * the Node.js versions `npx` fetches under /root do) the first `node` on PATH nobody can run.
 */
export function nodeForNobody(): string {
  const can = (bin: string) => spawnSync('setpriv', [...NOBODY, 'test', '-x', bin], { stdio: 'ignore' }).status === 0;
  if (can(process.execPath)) return process.execPath;
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/local/bin', '/usr/bin'])) {
    const bin = path.join(dir, 'node');
    if (dir && fs.existsSync(bin) && can(bin)) return bin;
  }
  throw new Error(`no node binary nobody may execute (${process.execPath} is not): install Node.js where every user can run it`);
}

/** A command run as nobody (uid/gid 65534, no groups). */
export function asNobody(cmd: string[]): { code: number; stderr: string } {
  const r = spawnSync('setpriv', [...NOBODY, ...cmd], { encoding: 'utf8' });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stderr: r.stderr };
}

/**
 * bin/hardsnap as nobody (uid/gid 65534, no groups), from `/`, after assertNobodyCanRun: a run
 * that really cannot read what its user may not read.
 */
export function hardsnapAsNobody(args: string[], opts: Omit<RunOptions, 'bin'> = {}): RunResult {
  assertNobodyCanRun(REPO_ROOT);
  return hardsnap([...NOBODY, process.execPath, BIN, ...args], { cwd: '/', ...opts, bin: 'setpriv' });
}

/**
 * bin/hardsnap as root without the capabilities that bypass permissions (CAP_DAC_OVERRIDE,
 * CAP_DAC_READ_SEARCH, CAP_FOWNER dropped, as a hardened service or container runs it): root
 * that cannot read a mode 000 directory.
 */
export function hardsnapAsRootWithoutDac(args: string[], opts: Omit<RunOptions, 'bin'> = {}): RunResult {
  const drop = ['--inh-caps=-all', '--bounding-set=-dac_override,-dac_read_search,-fowner', '--'];
  return hardsnap([...drop, process.execPath, BIN, ...args], { cwd: '/', ...opts, bin: 'setpriv' });
}
