// Helpers of test/tape.test.ts: the recipes of docs/TAPE.md as scripts, a spool of several
// nights of real changes, and an independent oracle of what changed between two trees.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'vitest';
import { BIN, REPO_ROOT } from './run.js';
import { readTree, type TreeEntry } from './tree.js';
import { mktree, mutate } from './bench-tree.js';
import { makeGeneration } from './ops.js';
import { genName, makeSpool } from './spool.js';

const TAPE_MD = path.join(REPO_ROOT, 'docs', 'TAPE.md');

/** The shell block of docs/TAPE.md that starts with `# recipe: NAME`. */
export function recipe(name: string): string {
  const doc = fs.readFileSync(TAPE_MD, 'utf8');
  const m = new RegExp('```sh\\n(# recipe: ' + name + '\\n[\\s\\S]*?)```').exec(doc);
  expect(m, `docs/TAPE.md has a recipe '${name}'`).not.toBeNull();
  return m![1]!;
}

export interface ScriptResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** Runs a recipe with sh, bin/ first on PATH (so `hardsnap` is this checkout's), `env` added. */
export function runRecipe(name: string, env: Record<string, string>): ScriptResult {
  return runSh(recipe(name), env);
}

export function runSh(script: string, env: Record<string, string>): ScriptResult {
  const r = spawnSync('sh', ['-c', script], {
    env: { ...process.env, PATH: `${path.dirname(BIN)}:${process.env.PATH}`, ...env },
    encoding: 'buffer',
    timeout: 120_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return { code: r.status ?? 128, stdout: r.stdout, stderr: r.stderr.toString('utf8') };
}

/** bin/hardsnap with raw-byte stdout (the run helper decodes UTF-8, which would mangle lists). */
export function hardsnapRaw(args: string[], env: Record<string, string> = {}): SpawnSyncReturns<Buffer> {
  return spawnSync(BIN, args, { env: { ...process.env, ...env }, encoding: 'buffer', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A NUL-terminated list as latin1 keys (one byte, one char: exact and comparable). */
export function nulList(b: Buffer): string[] {
  if (!b.length) return [];
  expect(b[b.length - 1], 'the list ends with NUL').toBe(0);
  return b.subarray(0, -1).toString('latin1').split('\0');
}

export const key = (p: Buffer): string => (p.length ? p.toString('latin1') : '.');

export interface RealChanges {
  /** paths (latin1 keys, root '.') of B that A lacks or that differ */
  changed: Set<string>;
  /** paths of A that B lacks, or whose type changed */
  deleted: Set<string>;
  /** restic's view of regular files of B: new (absent in A), changed (differ), unmodified */
  files: { new: number; changed: number; unmodified: number };
}

function same(a: TreeEntry, b: TreeEntry): boolean {
  return (
    a.type === b.type &&
    a.mode === b.mode &&
    a.uid === b.uid &&
    a.gid === b.gid &&
    a.size === b.size &&
    a.mtimeNs === b.mtimeNs &&
    a.sha256 === b.sha256 &&
    a.rdev === b.rdev &&
    (a.target ?? Buffer.alloc(0)).equals(b.target ?? Buffer.alloc(0))
  );
}

/** What really changed from tree A (absent: nothing) to tree B, by a walk of both (never hardsnap's code). */
export function realChanges(a: string, b: string): RealChanges {
  const ta = new Map((fs.existsSync(a) ? readTree(a) : []).map((e) => [key(e.relPath), e]));
  const tb = new Map(readTree(b).map((e) => [key(e.relPath), e]));
  const changed = new Set<string>();
  const deleted = new Set<string>();
  const files = { new: 0, changed: 0, unmodified: 0 };
  for (const [k, e] of tb) {
    const old = ta.get(k);
    if (!old || !same(old, e)) changed.add(k);
    if (old && old.type !== e.type) deleted.add(k);
    if (e.type === 'file') {
      if (!old) files.new++;
      else if (same(old, e)) files.unmodified++;
      else files.changed++;
    }
  }
  for (const k of ta.keys()) if (!tb.has(k)) deleted.add(k);
  return { changed, deleted, files };
}

export const HOST = 'tapehost';
export const PART = 'mail/imap';

export interface Night {
  index: number;
  name: string;
  /** the generation's absolute path */
  path: string;
}

export interface Spool {
  spool: string;
  src: string;
  pdir: string;
  hsOpts: string;
  nights: Night[];
  /** make the next night: change the source (a no-op for night 0), back up */
  next(): Promise<Night>;
}

/**
 * A spool whose source is mktree.py's mail spool with odd names, and whose every later night
 * brings mutate.py's edits, adds, deletes and renames plus what mutate.py does not do: a chmod
 * only, names that are not UTF-8 or hold a newline, type changes both ways, a retargeted
 * symlink, a renamed directory, a directory whose own mtime alone moved.
 */
export function nightlySpool(tmp: string, files = 400): Spool {
  const spool = path.join(tmp, 'spool');
  const src = path.join(tmp, 'src');
  makeSpool(spool);
  mktree(src, { files, odd: true, seed: 5 });
  const nights: Night[] = [];
  const t0 = Date.parse('2026-03-01T03:15:00Z');
  const s: Spool = {
    spool,
    src,
    pdir: path.join(spool, 'rsync', HOST, ...PART.split('/')),
    hsOpts: `--spool ${spool} --host ${HOST}`,
    nights,
    async next() {
      const i = nights.length;
      if (i > 0) {
        mutate(src, 100 + i, { change: 3, add: 2, delete: 2, rename: 2 });
        extraChanges(src, i);
      }
      const now = new Date(t0 + i * 86_400_000).toISOString();
      await makeGeneration(spool, HOST, { [PART]: src }, now);
      const name = genName(now);
      const night = { index: i, name, path: path.join(s.pdir, name) };
      expect(fs.existsSync(night.path), `night ${i} published ${name}`).toBe(true);
      nights.push(night);
      return night;
    },
  };
  return s;
}

const b = (...parts: (string | Buffer)[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)));

function extraChanges(src: string, night: number): void {
  const at = (...p: (string | Buffer)[]) => b(src, '/', ...p);
  switch (night % 4) {
    case 1:
      if (fs.existsSync(at('odd/-leading-dash'))) fs.chmodSync(at('odd/-leading-dash'), 0o600); // metadata only
      fs.writeFileSync(at('users/', Buffer.from([0x6e, 0xff, 0xfe, 0x2d]), String(night)), 'not UTF-8');
      fs.mkdirSync(at(`nl\ndir${night}`));
      fs.writeFileSync(at(`nl\ndir${night}/new\nline`), 'newline names');
      break;
    case 2:
      // a file becomes a directory, a directory becomes a file
      if (fs.existsSync(at('odd/..dots..'))) {
        fs.rmSync(at('odd/..dots..'));
        fs.mkdirSync(at('odd/..dots..'));
        fs.writeFileSync(at('odd/..dots../inner'), 'inner');
      }
      if (fs.existsSync(at('odd/empty dir'))) {
        fs.rmdirSync(at('odd/empty dir'));
        fs.writeFileSync(at('odd/empty dir'), 'now a file');
      }
      fs.rmSync(at('odd/link-rel'), { force: true });
      fs.symlinkSync('tab\tname', at('odd/link-rel'));
      break;
    case 3:
      if (fs.existsSync(at('users/u0001'))) fs.renameSync(at('users/u0001'), at(`users/u0001-moved${night}`));
      if (fs.existsSync(at('users/u0000/Maildir/new')))
        fs.utimesSync(at('users/u0000/Maildir/new'), new Date('2020-01-01T00:00:00Z'), new Date('2020-01-01T00:00:00Z'));
      break;
    default:
      fs.writeFileSync(at(`plain-${night}.txt`), 'a plain new file');
  }
}

/** GNU tar's `--quoting-style=escape` listing of an archive, decoded to latin1 keys (root '.'). */
export function tarList(archive: string): string[] {
  const r = spawnSync('tar', ['--quoting-style=escape', '-tf', archive], { env: { ...process.env, LC_ALL: 'C' }, encoding: 'latin1' });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => stripDir(decodeTarEscape(l)));
}

function stripDir(k: string): string {
  const s = k.replace(/^\.\//, '').replace(/\/$/, '');
  return s === '' || s === '.' ? '.' : s;
}

const C_ESC: Record<string, string> = { n: '\n', t: '\t', a: '\x07', b: '\b', f: '\f', r: '\r', v: '\v', '\\': '\\', '?': '?', '"': '"', "'": "'" };

function decodeTarEscape(s: string): string {
  return s.replace(/\\([0-7]{3}|.)/g, (_, e: string) => (e.length === 3 ? String.fromCharCode(parseInt(e, 8)) : (C_ESC[e] ?? e)));
}

/** rsync's `--itemize-changes` lines (`%i %n`, escapes `\#ooo`), as latin1 keys of what it listed. */
export function rsyncItemized(out: Buffer): string[] {
  return out
    .toString('latin1')
    .split('\n')
    .filter((l) => /^[<>ch.*][fdLDS]/.test(l))
    .map((l) => {
      const name = l.slice(l.indexOf(' ') + 1).replace(/ [-=]> .*$/, '');
      return stripDir(name.replace(/\\#([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
    });
}

export function sorted(xs: Iterable<string>): string[] {
  return [...xs].sort();
}
