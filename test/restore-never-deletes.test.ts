// Restore never deletes what it does not restore (issue 16): `restore --force` into a target
// where the generation has a file `f` and the target a non-empty directory `f/` deleted the
// whole tree, exit 0, silently. A directory in the way is now moved aside next to itself, and
// --dry-run says so beforehand.
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, test } from './helpers/fixture.js';
import { hardsnap } from './helpers/run.js';
import { makeTree, readTree } from './helpers/tree.js';
import { makeGeneration } from './helpers/ops.js';
import { isRoot } from './helpers/robust.js';
import { makeSpool } from './helpers/spool.js';

const HOST = 'h1';
const ASIDE = /\.hardsnap-aside-\d{8}T\d{6}Z$/;

async function spoolWith(tmp: string, spec: Parameters<typeof makeTree>[1]): Promise<string> {
  const spool = makeSpool(path.join(tmp, 'spool'));
  const src = path.join(tmp, 'src');
  makeTree(src, spec);
  await makeGeneration(spool, HOST, { p: src }, '2026-05-01T03:00:00Z');
  return spool;
}

function restore(spool: string, to: string, extra: string[] = []) {
  return hardsnap(['restore', '--spool', spool, '--host', HOST, '--part', 'p', '--to', to, '--force', ...extra]);
}

/** The names in `dir` that are directories moved aside. */
function asides(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((n) => ASIDE.test(n))
    .sort();
}

describe('restore never writes into the spool', () => {
  test("restore --force into a directory that holds the spool, of a generation whose paths match the spool's (a re-attack: the backup of f was overwritten, `last` made a file, the 0700 spool given to nobody, exit 0): refused there, exit 23, the spool untouched", async ({
    tmp,
  }) => {
    const spool = makeSpool(path.join(tmp, 'spool'));
    makeTree(path.join(tmp, 'data'), { f: 'precious' });
    await makeGeneration(spool, HOST, { d: path.join(tmp, 'data') }, '2026-05-01T03:00:00Z');
    const gen1 = path.join(spool, 'rsync', HOST, 'd', '2026-05-01T030000Z');
    // a tree whose paths are the spool's (any part, any host's: a user's home on a shared server)
    const evil = path.join(tmp, 'evil');
    makeTree(evil, {
      'spool/rsync/h1/d/2026-05-01T030000Z/f': 'gotcha',
      'spool/rsync/h1/d/last': 'not a link',
      'spool/.hardsnap-spool': 'not a marker',
      'elsewhere/ok': 'restored',
    });
    execFileSync('chmod', ['-R', '0777', path.join(evil, 'spool')]);
    // and one with a file where the spool's directory is
    const flat = path.join(tmp, 'flat');
    makeTree(flat, { spool: 'a file in the way of the spool', 'other/ok': 'restored' });
    await makeGeneration(spool, HOST, { e: evil, f: flat }, '2026-05-02T03:00:00Z');
    const modes = () => ['.', 'rsync', `rsync/${HOST}`, `rsync/${HOST}/d`].map((d) => fs.statSync(path.join(spool, d)).mode & 0o7777);
    const before = modes();
    const run = (part: string, extra: string[] = []) =>
      hardsnap(['restore', '--spool', spool, '--host', HOST, '--part', part, '--to', tmp, '--force', ...extra]);
    for (const part of ['e', 'f']) {
      const dry = run(part, ['--dry-run']);
      expect(dry.code, dry.stderr).toBe(23);
      const r = run(part);
      expect(r.code, r.stderr).toBe(23);
      expect(r.stderr).toMatch(
        part === 'e'
          ? /"spool": ESPOOL: it is the spool .*: a restore never writes into a spool/
          : /"spool": ESPOOL: a directory in the way is or holds the spool/,
      );
    }
    expect(fs.readFileSync(path.join(gen1, 'f'), 'utf8')).toBe('precious');
    expect(fs.lstatSync(path.join(spool, 'rsync', HOST, 'd', 'last')).isSymbolicLink()).toBe(true);
    expect(modes()).toEqual(before);
    expect(fs.readFileSync(path.join(tmp, 'elsewhere/ok'), 'utf8')).toBe('restored');
    expect(fs.readFileSync(path.join(tmp, 'other/ok'), 'utf8')).toBe('restored');
    const v = hardsnap(['verify', '--spool', spool, '--host', HOST, '--deep']);
    expect(v.code, v.stdout + v.stderr).toBe(0);
  });
});

describe.runIf(isRoot)('restore never writes into the spool through a mount', () => {
  test('a directory of the spool bind-mounted inside the target (the host directory, a generation): not entered, ESPOOL, exit 23, the spool untouched (a re-attack: the backup overwritten, last made a file, rsync/<host> opened 0777, exit 0)', async ({
    tmp,
  }) => {
    const spool = makeSpool(path.join(tmp, 'spool'));
    makeTree(path.join(tmp, 'data'), { f: 'precious' });
    await makeGeneration(spool, HOST, { d: path.join(tmp, 'data') }, '2026-05-01T03:00:00Z');
    const G = '2026-05-01T030000Z';
    const evil = path.join(tmp, 'evil');
    makeTree(evil, { [`hostdir/d/${G}/f`]: 'EVIL', 'hostdir/d/last': 'not a link', [`gen/f`]: 'EVIL', 'ok/x': 'restored', 'ok/y': 'restored' });
    execFileSync('chmod', ['-R', '0777', path.join(evil, 'hostdir')]);
    await makeGeneration(spool, HOST, { e: evil }, '2026-05-02T03:00:00Z');
    const to = path.join(tmp, 'to');
    fs.mkdirSync(path.join(to, 'hostdir'), { recursive: true });
    fs.mkdirSync(path.join(to, 'gen'));
    fs.mkdirSync(path.join(to, 'ok'));
    fs.writeFileSync(path.join(to, 'ok', 'x'), '');
    execFileSync('mount', ['--bind', path.join(spool, 'rsync', HOST), path.join(to, 'hostdir')]);
    execFileSync('mount', ['--bind', path.join(spool, 'rsync', HOST, 'd', G), path.join(to, 'gen')]);
    // and a file of a generation bind-mounted over a file in the target (unlinkat: EBUSY)
    execFileSync('mount', ['--bind', path.join(spool, 'rsync', HOST, 'd', G, 'f'), path.join(to, 'ok', 'x')]);
    try {
      const before = fs.statSync(path.join(spool, 'rsync', HOST)).mode & 0o7777;
      const run = (extra: string[] = []) => hardsnap(['restore', '--spool', spool, '--host', HOST, '--part', 'e', '--to', to, '--force', ...extra]);
      const dry = run(['--dry-run']);
      expect(dry.code, dry.stderr).toBe(23);
      const r = run();
      expect(r.code, r.stderr).toBe(23);
      expect(r.stderr).toMatch(/"hostdir": ESPOOL: a directory of the spool .* is mounted there/);
      expect(r.stderr).toMatch(/"gen": ESPOOL: a directory of the spool .* is mounted there/);
      expect(dry.stderr).toMatch(/"ok\/x": EBUSY/);
      expect(r.stderr).toMatch(/"ok\/x": EBUSY/);
      expect(fs.readFileSync(path.join(to, 'ok/y'), 'utf8')).toBe('restored');
      expect(fs.readFileSync(path.join(spool, 'rsync', HOST, 'd', G, 'f'), 'utf8')).toBe('precious');
      expect(fs.lstatSync(path.join(spool, 'rsync', HOST, 'd', 'last')).isSymbolicLink()).toBe(true);
      expect(fs.statSync(path.join(spool, 'rsync', HOST)).mode & 0o7777).toBe(before);
    } finally {
      for (const d of ['ok/x', 'hostdir', 'gen']) spawnSync('umount', [path.join(to, d)]);
    }
    const v = hardsnap(['verify', '--spool', spool, '--host', HOST, '--deep']);
    expect(v.code, v.stdout + v.stderr).toBe(0);
  });
});

describe('restore never deletes what it does not restore', () => {
  test('restore --force where the target has a non-empty directory f/ and the generation a file f: the directory is moved aside, whole, and said so', async ({
    tmp,
  }) => {
    const spool = await spoolWith(tmp, { f: 'the file from the backup', other: 'o' });
    const to = path.join(tmp, 'to');
    makeTree(to, { 'f/inner/precious': 'work of the day', 'f/top': 'top', 'unrelated/u': 'u' });
    const before = readTree(path.join(to, 'f'));
    const r = restore(spool, to);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(path.join(to, 'f'), 'utf8')).toBe('the file from the backup');
    const [aside, ...more] = asides(to);
    expect(more).toEqual([]);
    expect(aside).toMatch(/^f\.hardsnap-aside-/);
    // everything that was in the directory is there, unchanged (same inodes, modes, times)
    expect(readTree(path.join(to, aside!))).toEqual(before);
    expect(fs.readFileSync(path.join(to, 'unrelated/u'), 'utf8')).toBe('u');
    // one warning line, even under cron
    expect(r.stderr.trim().split('\n')).toEqual([
      `hardsnap: warning: --force: moved the directory f aside to ${aside} (a file, symlink or special file is restored in its place; nothing in it was deleted)`,
    ]);
  });

  test('a symlink in the generation over a directory of the target: the directory is moved aside; a symlink to a directory in the target is removed, the directory it points to untouched', async ({
    tmp,
  }) => {
    const outside = path.join(tmp, 'outside');
    makeTree(outside, { 'kept/deep': 'outside data' });
    const spool = await spoolWith(tmp, { 'real/x': 'x', link: { symlink: 'real' }, file: 'restored file' });
    const to = path.join(tmp, 'to');
    makeTree(to, { 'link/mine': 'a directory where the backup has a symlink', file: { symlink: outside } });
    const r = restore(spool, to);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readlinkSync(path.join(to, 'link'))).toBe('real');
    const [aside] = asides(to);
    expect(aside).toMatch(/^link\.hardsnap-aside-/);
    expect(fs.readFileSync(path.join(to, aside!, 'mine'), 'utf8')).toBe('a directory where the backup has a symlink');
    expect(fs.readFileSync(path.join(to, 'file'), 'utf8')).toBe('restored file');
    expect(readTree(outside).map((e) => e.relPath.toString())).toEqual(['', 'kept', 'kept/deep']);
    expect(fs.readFileSync(path.join(outside, 'kept/deep'), 'utf8')).toBe('outside data');
    expect(r.stderr).toMatch(/removed the symlink file -> .*outside in the target \(not followed\)/);
  });

  test('--dry-run lists the move aside and the replacements, and changes nothing; the real run then does exactly that', async ({ tmp }) => {
    const spool = await spoolWith(tmp, { f: 'file', 'd/s': { symlink: 'nowhere' }, keep: 'k' });
    const to = path.join(tmp, 'to');
    makeTree(to, { 'f/inner': 'in the way', 'd/s': 'a file where a symlink is restored', keep: 'old content' });
    const before = readTree(to);
    const dry = restore(spool, to, ['--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    const lines = dry.stdout.trim().split('\n');
    const move = lines.find((l) => l.startsWith('would move aside: f/'));
    expect(move).toMatch(/^would move aside: f\/ -> f\.hardsnap-aside-\d{8}T\d{6}Z\/ \(a directory in the target; nothing in it is deleted\)$/);
    expect(lines).toContain('would replace: d/s (a file or special file, removed)');
    expect(lines).toContain('would replace: keep (a file or special file, removed)');
    // each right after its entry, and nothing claimed for what is not in the way
    expect(lines[lines.indexOf(move!) - 1]).toBe('f');
    expect(lines.filter((l) => l.startsWith('would '))).toHaveLength(3);
    expect(readTree(to)).toEqual(before);
    const json = JSON.parse(restore(spool, to, ['--dry-run', '--json']).stdout) as { replaced: unknown[] };
    expect(json.replaced).toEqual([
      { part: 'p', path: 'f', action: 'move-aside', found: 'dir', aside: expect.stringMatching(ASIDE) },
      { part: 'p', path: 'keep', action: 'remove', found: 'other' },
      { part: 'p', path: 'd/s', action: 'remove', found: 'other' },
    ]);

    const r = restore(spool, to, ['--json']);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { replaced: unknown[] }).replaced).toHaveLength(3);
    expect(fs.readFileSync(path.join(to, asides(to)[0]!, 'inner'), 'utf8')).toBe('in the way');
    expect(fs.readlinkSync(path.join(to, 'd/s'))).toBe('nowhere');
  });

  test('--path of a file whose place in the target is a directory: moved aside, not deleted', async ({ tmp }) => {
    const spool = await spoolWith(tmp, { 'etc/conf': 'conf from the backup' });
    const to = path.join(tmp, 'to');
    makeTree(to, { 'etc/conf/local': 'a local override directory' });
    const r = restore(spool, to, ['--path', 'etc/conf']);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(path.join(to, 'etc/conf'), 'utf8')).toBe('conf from the backup');
    const [aside] = asides(path.join(to, 'etc'));
    expect(fs.readFileSync(path.join(to, 'etc', aside!, 'local'), 'utf8')).toBe('a local override directory');
  });

  test("--path a/b/file --force into a live tree: the existing parents keep their owner, mode, ACL and times; missing ones get the generation's", async ({
    tmp,
  }) => {
    const spool = await spoolWith(tmp, { 'a/b/file': 'from the backup', 'a/secret': 's', 'x/y/f': 'y' });
    // the generation's a/ and x/y/ are 0755; the live a/ is 0700 (and owned by nobody when root)
    const to = path.join(tmp, 'to');
    makeTree(to, { 'a/secret': 'live secret', 'a/b/file': 'live' });
    fs.chmodSync(path.join(to, 'a'), 0o700);
    fs.chmodSync(path.join(to, 'a', 'b'), 0o750);
    if (isRoot) {
      fs.chownSync(path.join(to, 'a'), 65534, 65534);
      execFileSync('setfacl', ['-m', 'u:65534:rwx', path.join(to, 'a', 'b')]);
    }
    fs.utimesSync(path.join(to, 'a'), new Date('2020-01-01T00:00:00Z'), new Date('2020-01-01T00:00:00Z'));
    const before = (rel: string) => {
      const st = fs.statSync(path.join(to, rel));
      return { mode: st.mode, uid: st.uid, gid: st.gid, mtime: st.mtimeMs };
    };
    const acl = () => (isRoot ? execFileSync('getfacl', ['-cp', path.join(to, 'a', 'b')], { encoding: 'utf8' }) : '');
    const [a0, b0, acl0] = [before('a'), before('a/b'), acl()];
    const r = restore(spool, to, ['--path', 'a/b/file']);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(path.join(to, 'a/b/file'), 'utf8')).toBe('from the backup');
    expect(before('a')).toEqual(a0);
    // a/b's mtime moves, as for any write into a directory: its file was replaced
    expect({ ...before('a/b'), mtime: 0 }).toEqual({ ...b0, mtime: 0 });
    expect(acl()).toBe(acl0);
    expect(fs.readFileSync(path.join(to, 'a/secret'), 'utf8')).toBe('live secret');
    // a parent that is missing is made with the generation's metadata
    const r2 = restore(spool, to, ['--path', 'x/y/f']);
    expect(r2.code, r2.stderr).toBe(0);
    const gen = fs.statSync(path.join(spool, 'rsync', HOST, 'p', 'last', 'x', 'y'));
    expect(fs.statSync(path.join(to, 'x', 'y')).mode).toBe(gen.mode);
    expect(fs.statSync(path.join(to, 'x', 'y')).mtimeMs).toBe(gen.mtimeMs);
  });
});

describe.runIf(isRoot)('restore and mount points in the target (needs root to mount)', () => {
  test('a directory in the way that is a mount point is neither deleted nor moved: reported (exit 23), and --dry-run says so beforehand', async ({ tmp }) => {
    const spool = await spoolWith(tmp, { f: 'file', g: 'g' });
    const to = path.join(tmp, 'to');
    const outside = path.join(tmp, 'outside');
    makeTree(outside, { precious: 'mounted data' });
    fs.mkdirSync(path.join(to, 'f'), { recursive: true });
    execFileSync('mount', ['--bind', outside, path.join(to, 'f')]);
    try {
      for (const extra of [['--dry-run'], []]) {
        const r = restore(spool, to, extra);
        expect(r.code, r.stderr).toBe(23);
        expect(r.stderr).toMatch(/not restored: p: "f": EBUSY: a directory is in the way and cannot be moved aside/);
        expect(r.stdout).not.toMatch(/would move aside/);
        expect(fs.readFileSync(path.join(outside, 'precious'), 'utf8')).toBe('mounted data');
      }
      expect(fs.readFileSync(path.join(to, 'g'), 'utf8')).toBe('g');
    } finally {
      spawnSync('umount', ['-l', path.join(to, 'f')]);
    }
  });
});
