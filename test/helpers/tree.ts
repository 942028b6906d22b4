// Declarative test trees and an independent tree comparer: the oracle the other tests trust.
// It never imports from src/. Paths are Buffers throughout, because filenames are bytes.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { expect } from 'vitest';

export type EntryType = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'char' | 'block';

interface Owned {
  uid?: number;
  gid?: number;
}
export interface FileSpec extends Owned {
  content?: string | Buffer;
  mode?: number;
  /** nanoseconds since the epoch */
  mtime?: bigint;
}
export interface DirSpec extends Owned {
  dir: true;
  mode?: number;
  mtime?: bigint;
}
export interface SymlinkSpec extends Owned {
  symlink: string | Buffer;
  mtime?: bigint;
}
export interface HardlinkSpec {
  /** path of an existing entry of the same spec, relative to root */
  hardlink: string | Buffer;
}
export interface FifoSpec extends Owned {
  fifo: true;
  mode?: number;
  mtime?: bigint;
}
export type EntrySpec = FileSpec | DirSpec | SymlinkSpec | HardlinkSpec | FifoSpec;
/** A string or Buffer value is the content of a regular file. */
export type TreeSpec = Record<string, string | Buffer | EntrySpec>;
export type TreePairs = Array<[string | Buffer, string | Buffer | EntrySpec]>;

export interface TreeEntry {
  /** path below root; the root itself is the empty Buffer */
  relPath: Buffer;
  type: EntryType;
  /** permission bits (07777) */
  mode: number;
  uid: number;
  gid: number;
  size: bigint;
  mtimeNs: bigint;
  ino: bigint;
  dev: bigint;
  nlink: bigint;
  /** device number, for char and block devices */
  rdev: bigint;
  /** symlinks only */
  target?: Buffer;
  /** regular files only, hex */
  sha256?: string;
}

const SLASH = Buffer.from('/');

export function toBuf(p: string | Buffer): Buffer {
  return Buffer.isBuffer(p) ? p : Buffer.from(p);
}

/** A name written as latin1 text, one byte a character: latin1('caf\xe9') is the 4 bytes 63 61 66 e9. */
export function latin1(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}

export function joinBuf(root: string | Buffer, rel: Buffer): Buffer {
  const r = toBuf(root);
  return rel.length === 0 ? r : Buffer.concat([r, SLASH, rel]);
}

/**
 * Human-readable form of a path: printable ASCII and valid UTF-8 as themselves, `\\` for a
 * backslash, `\xHH` for every other byte. The root (empty path) is shown as `.`.
 */
export function displayPath(p: string | Buffer): string {
  const b = toBuf(p);
  if (b.length === 0) return '.';
  const dec = new TextDecoder('utf-8', { fatal: true });
  let out = '';
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    if (c === 0x5c) {
      out += '\\\\';
      i++;
      continue;
    }
    if (c >= 0x20 && c < 0x7f) {
      out += String.fromCharCode(c);
      i++;
      continue;
    }
    const len = c >= 0xf0 && c < 0xf5 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
    if (len > 0 && c < 0xf5 && i + len <= b.length) {
      try {
        const ch = dec.decode(b.subarray(i, i + len));
        if (!/\p{Cc}/u.test(ch)) {
          out += ch;
          i += len;
          continue;
        }
      } catch {
        // not valid UTF-8: escaped below
      }
    }
    out += '\\x' + c.toString(16).padStart(2, '0');
    i++;
  }
  return out;
}

function checkRel(rel: Buffer): void {
  const parts = rel.toString('latin1').split('/');
  if (rel.length === 0 || rel[0] === 0x2f || parts.some((c) => c === '' || c === '.' || c === '..')) {
    throw new Error(`makeTree: bad relative path ${JSON.stringify(displayPath(rel))}`);
  }
}

function parentOf(rel: Buffer): Buffer | null {
  const i = rel.lastIndexOf(0x2f);
  return i < 0 ? null : rel.subarray(0, i);
}

function mkdirsOf(root: Buffer, rel: Buffer): void {
  const parent = parentOf(rel);
  if (parent) fs.mkdirSync(joinBuf(root, parent), { recursive: true });
}

type Op = ['utime', Buffer, bigint] | ['chmod', Buffer, number] | ['lchown', Buffer, number, number] | ['mkfifo', Buffer, number] | ['link', Buffer, Buffer];

// One python3 process runs a list of operations that Node cannot do exactly: utimensat with
// nanoseconds (Node's utimes rounds below the microsecond) and mkfifo. Paths travel as hex,
// because child_process turns Buffer arguments into UTF-8 strings, mangling non-UTF-8 names.
const OPS_SCRIPT = `
import os, sys
for line in sys.stdin:
    op, *a = line.split()
    p = bytes.fromhex(a[0])
    if op == 'utime':
        n = int(a[1]); os.utime(p, ns=(n, n), follow_symlinks=False)
    elif op == 'chmod':
        os.chmod(p, int(a[1]))
    elif op == 'lchown':
        os.lchown(p, int(a[1]), int(a[2]))
    elif op == 'mkfifo':
        os.mkfifo(p, int(a[1]))
    elif op == 'link':
        os.link(p, bytes.fromhex(a[1]), follow_symlinks=False)
    else:
        sys.exit('unknown op ' + op)
`;

let pythonExe: string | undefined;
/** The real interpreter behind `python3` (skips the ~0.1 s of a pyenv shim on every call). */
function python(): string {
  if (pythonExe === undefined) {
    try {
      pythonExe = execFileSync('python3', ['-c', 'import sys; sys.stdout.write(sys.executable)'], {
        encoding: 'utf8',
      }).trim();
    } catch (err) {
      throw new Error('test helpers need python3 (for nanosecond utimes and mkfifo)', { cause: err });
    }
    if (pythonExe === '') pythonExe = 'python3';
  }
  return pythonExe;
}

function runOps(ops: Op[]): void {
  if (ops.length === 0) return;
  const input = ops.map((op) => op.map((x) => (Buffer.isBuffer(x) ? x.toString('hex') : String(x))).join(' ') + '\n').join('');
  try {
    execFileSync(python(), ['-S', '-c', OPS_SCRIPT], { input, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`test helper file operations failed: ${e.stderr?.toString().trim() || e.message}`, {
      cause: err,
    });
  }
}

/** Set atime and mtime of each path to the given nanoseconds since the epoch, not following symlinks. */
export function setMtimesNs(items: Array<[Buffer | string, bigint]>): void {
  runOps(items.map(([p, ns]) => ['utime', toBuf(p), ns]));
}

function normalize(spec: string | Buffer | EntrySpec): EntrySpec {
  return typeof spec === 'string' || Buffer.isBuffer(spec) ? { content: spec } : spec;
}

/**
 * Create the entries of `spec` below `root` (created if missing). Parent directories are made
 * as needed; then, in this order: FIFOs, owners and modes, hard links, mtimes of non-directories,
 * and last directory mtimes and modes, deepest first, so a 0500 directory or an explicit
 * directory mtime survives the creation of its children.
 */
export function makeTree(root: string | Buffer, spec: TreeSpec | TreePairs): void {
  const rootB = toBuf(root);
  fs.mkdirSync(rootB, { recursive: true });
  const pairs: Array<[Buffer, EntrySpec]> = (Array.isArray(spec) ? spec : Object.entries(spec)).map(([k, v]) => {
    const rel = toBuf(k);
    checkRel(rel);
    return [rel, normalize(v)];
  });

  const fifos: Op[] = [];
  const meta: Op[] = [];
  const links: Op[] = [];
  const times: Op[] = [];
  const dirs: Array<[Buffer, DirSpec]> = [];
  for (const [rel, e] of pairs) {
    const p = joinBuf(rootB, rel);
    mkdirsOf(rootB, rel);
    if ('hardlink' in e) {
      links.push(['link', joinBuf(rootB, toBuf(e.hardlink)), p]);
      continue;
    }
    if ('dir' in e) fs.mkdirSync(p, { recursive: true });
    else if ('symlink' in e) fs.symlinkSync(toBuf(e.symlink), p);
    else if ('fifo' in e) fifos.push(['mkfifo', p, 0o600]);
    else fs.writeFileSync(p, e.content ?? '', { flag: 'wx' });
    // chown before chmod: chown clears set-id bits
    if (e.uid !== undefined || e.gid !== undefined) meta.push(['lchown', p, e.uid ?? -1, e.gid ?? -1]);
    if ('dir' in e) {
      dirs.push([rel, e]);
      continue;
    }
    if (!('symlink' in e)) meta.push(['chmod', p, e.mode ?? 0o644]);
    if (e.mtime !== undefined) times.push(['utime', p, e.mtime]);
  }

  // directories: deepest first (a descendant's path is longer than its ancestor's), mtime then
  // mode, so that a mode without x or w on a parent is set after everything below it
  dirs.sort((a, b) => b[0].length - a[0].length);
  const dirOps: Op[] = [];
  for (const [rel, e] of dirs) {
    const p = joinBuf(rootB, rel);
    if (e.mtime !== undefined) dirOps.push(['utime', p, e.mtime]);
    if (e.mode !== undefined) dirOps.push(['chmod', p, e.mode]);
  }
  const ops = [...fifos, ...meta, ...links, ...times, ...dirOps];
  // without python when nothing needs it
  if (ops.every((op) => op[0] === 'chmod' || op[0] === 'lchown' || op[0] === 'link')) {
    for (const op of ops) {
      if (op[0] === 'chmod') fs.chmodSync(op[1], op[2]);
      else if (op[0] === 'lchown') fs.lchownSync(op[1], op[2], op[3]);
      else if (op[0] === 'link') fs.linkSync(op[1], op[2]);
    }
  } else {
    runOps(ops);
  }
}

function typeOf(mode: bigint): EntryType {
  switch (Number(mode & 0o170000n)) {
    case 0o100000:
      return 'file';
    case 0o040000:
      return 'dir';
    case 0o120000:
      return 'symlink';
    case 0o010000:
      return 'fifo';
    case 0o140000:
      return 'socket';
    case 0o020000:
      return 'char';
    case 0o060000:
      return 'block';
    default:
      throw new Error(`unknown file type in mode ${mode.toString(8)}`);
  }
}

function sha256File(p: Buffer): string {
  return createHash('sha256').update(fs.readFileSync(p)).digest('hex');
}

/** lstat one path into a TreeEntry (with content hash for files and target for symlinks). */
export function statEntry(abs: string | Buffer, relPath: Buffer = Buffer.alloc(0)): TreeEntry {
  const p = toBuf(abs);
  const st = fs.lstatSync(p, { bigint: true });
  const type = typeOf(st.mode);
  const e: TreeEntry = {
    relPath,
    type,
    mode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: st.size,
    mtimeNs: st.mtimeNs,
    ino: st.ino,
    dev: st.dev,
    nlink: st.nlink,
    rdev: st.rdev,
  };
  if (type === 'symlink') e.target = fs.readlinkSync(p, { encoding: 'buffer' });
  if (type === 'file') e.sha256 = sha256File(p);
  return e;
}

/** Every entry below root, root included (empty relPath), sorted by path bytes. */
export function readTree(root: string | Buffer): TreeEntry[] {
  const rootB = toBuf(root);
  const out: TreeEntry[] = [];
  const walk = (rel: Buffer): void => {
    const e = statEntry(joinBuf(rootB, rel), rel);
    out.push(e);
    if (e.type !== 'dir') return;
    for (const name of fs.readdirSync(joinBuf(rootB, rel), { encoding: 'buffer' })) {
      walk(rel.length === 0 ? Buffer.from(name) : Buffer.concat([rel, SLASH, name]));
    }
  };
  walk(Buffer.alloc(0));
  return out.sort((a, b) => Buffer.compare(a.relPath, b.relPath));
}

export interface CompareOptions {
  /** do not compare the mtime of the two roots */
  ignoreRootMtime?: boolean;
  /** compare uid and gid (default true) */
  owner?: boolean;
  /**
   * compare hard-link structure (default true); false where a bind mount inside a tree shows one
   * inode (nlink 1) under two paths, which a copy keeps as two files, as rsync -H does
   */
  links?: boolean;
}

const key = (rel: Buffer): string => rel.toString('latin1');
const show = (rel: Buffer): string => JSON.stringify(displayPath(rel));

/** Groups of paths (as keys) that share one inode, by path key. Directories are not linked. */
function linkGroups(entries: TreeEntry[], keep: Set<string>): Map<string, string[]> {
  const byInode = new Map<string, string[]>();
  for (const e of entries) {
    const k = key(e.relPath);
    if (e.type === 'dir' || !keep.has(k)) continue;
    const ik = `${e.dev}:${e.ino}`;
    const g = byInode.get(ik);
    if (g) g.push(k);
    else byInode.set(ik, [k]);
  }
  const byPath = new Map<string, string[]>();
  for (const g of byInode.values()) for (const k of g) byPath.set(k, g);
  return byPath;
}

/**
 * Human-readable differences between the trees at a and b (empty when identical): entries
 * only on one side, type, permission bits, owner, size, content, mtime to the nanosecond,
 * symlink target bytes, and hard link structure (names that are one inode on one side must be
 * one inode on the other). nlink is not compared: links to outside the tree are allowed.
 */
export function compareTrees(a: string | Buffer, b: string | Buffer, opts: CompareOptions = {}): string[] {
  const owner = opts.owner ?? true;
  const ta = readTree(a);
  const tb = readTree(b);
  const mb = new Map(tb.map((e) => [key(e.relPath), e]));
  const ma = new Map(ta.map((e) => [key(e.relPath), e]));
  const diffs: string[] = [];
  const common = new Set<string>();

  for (const ea of ta) {
    const k = key(ea.relPath);
    const eb = mb.get(k);
    const p = show(ea.relPath);
    if (!eb) {
      diffs.push(`only in a: ${p} (${ea.type})`);
      continue;
    }
    if (ea.type !== eb.type) {
      diffs.push(`type differs: ${p}: ${ea.type} vs ${eb.type}`);
      continue;
    }
    common.add(k);
    if (ea.type !== 'symlink' && ea.mode !== eb.mode) {
      diffs.push(`mode differs: ${p}: 0${ea.mode.toString(8)} vs 0${eb.mode.toString(8)}`);
    }
    if (owner && (ea.uid !== eb.uid || ea.gid !== eb.gid)) {
      diffs.push(`owner differs: ${p}: ${ea.uid}:${ea.gid} vs ${eb.uid}:${eb.gid}`);
    }
    if ((ea.type === 'file' || ea.type === 'symlink') && ea.size !== eb.size) {
      diffs.push(`size differs: ${p}: ${ea.size} vs ${eb.size}`);
    }
    if (ea.type === 'file' && ea.sha256 !== eb.sha256) {
      diffs.push(`content differs: ${p}: sha256 ${ea.sha256} vs ${eb.sha256}`);
    }
    if (ea.type === 'symlink' && !ea.target!.equals(eb.target!)) {
      diffs.push(`symlink target differs: ${p}: ${show(ea.target!)} vs ${show(eb.target!)}`);
    }
    if ((ea.type === 'char' || ea.type === 'block') && ea.rdev !== eb.rdev) {
      diffs.push(`device number differs: ${p}: ${ea.rdev} vs ${eb.rdev}`);
    }
    const isRoot = ea.relPath.length === 0;
    if (!(isRoot && opts.ignoreRootMtime) && ea.mtimeNs !== eb.mtimeNs) {
      diffs.push(`mtime differs: ${p}: ${fmtNs(ea.mtimeNs)} vs ${fmtNs(eb.mtimeNs)} (${eb.mtimeNs - ea.mtimeNs} ns)`);
    }
  }
  for (const eb of tb) {
    if (!ma.has(key(eb.relPath))) diffs.push(`only in b: ${show(eb.relPath)} (${eb.type})`);
  }

  if (opts.links === false) return diffs;
  // hard link structure, over the names both trees have
  const ga = linkGroups(ta, common);
  const gb = linkGroups(tb, common);
  const reported = new Set<string>();
  for (const k of [...common].sort()) {
    const la = ga.get(k);
    const lb = gb.get(k);
    if (!la || !lb) continue; // directories
    const sa = [...la].sort();
    const sb = [...lb].sort();
    if (sa.join('\0') === sb.join('\0')) continue;
    // one message per broken group, on whichever side the group is
    const sigA = 'a\0' + sa.join('\0');
    const sigB = 'b\0' + sb.join('\0');
    if (reported.has(sigA) || reported.has(sigB)) continue;
    reported.add(sigA).add(sigB);
    const fmt = (s: string[]): string => '[' + s.map((x) => show(Buffer.from(x, 'latin1'))).join(', ') + ']';
    diffs.push(`hard links differ: ${show(Buffer.from(k, 'latin1'))}: one inode in a ${fmt(sa)}, in b ${fmt(sb)}`);
  }
  return diffs;
}

/** `SEC.NNNNNNNNN` for nanoseconds since the epoch. */
export function fmtNs(ns: bigint): string {
  const neg = ns < 0n;
  const abs = neg ? -ns : ns;
  return `${neg ? '-' : ''}${abs / 1_000_000_000n}.${(abs % 1_000_000_000n).toString().padStart(9, '0')}`;
}

export interface SharedInodes {
  /** regular files of genB that are the same inode as the same path in genA */
  same: number;
  /** regular files of genB */
  total: number;
  /** relative paths of genB's regular files that are not shared */
  differing: Buffer[];
}

/** For regular files of genB, how many are the same inode (dev+ino) as the same path in genA. */
export function sharedInodes(genA: string | Buffer, genB: string | Buffer): SharedInodes {
  const ta = new Map(readTree(genA).map((e) => [key(e.relPath), e]));
  const res: SharedInodes = { same: 0, total: 0, differing: [] };
  for (const eb of readTree(genB)) {
    if (eb.type !== 'file') continue;
    res.total++;
    const ea = ta.get(key(eb.relPath));
    if (ea && ea.type === 'file' && ea.dev === eb.dev && ea.ino === eb.ino) res.same++;
    else res.differing.push(eb.relPath);
  }
  return res;
}

function inodeOf(p: string | Buffer): string {
  const st = fs.lstatSync(toBuf(p), { bigint: true });
  return `dev ${st.dev} ino ${st.ino}`;
}

/** Fails the test unless a and b (not followed if symlinks) are one inode. */
export function assertSameInode(a: string | Buffer, b: string | Buffer): void {
  const ia = inodeOf(a);
  const ib = inodeOf(b);
  expect(ib, `${show(toBuf(b))} should be the same inode as ${show(toBuf(a))}`).toBe(ia);
}

/** Fails the test if a and b (not followed if symlinks) are one inode. */
export function assertNotSameInode(a: string | Buffer, b: string | Buffer): void {
  const ia = inodeOf(a);
  const ib = inodeOf(b);
  expect(ib, `${show(toBuf(b))} should not be the same inode as ${show(toBuf(a))}`).not.toBe(ia);
}
