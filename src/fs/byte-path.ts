/**
 * Byte paths for the parts of hardsnap that take JS strings (node:fs, path.join, the core's
 * options). A path whose bytes are valid UTF-8 is returned as its string: nothing changes for
 * it. Any other path becomes an alias (src/paths/aliases.ts) that resolves to exactly its bytes:
 *
 *   - the longest prefix that holds every component that is not UTF-8 is opened (O_PATH,
 *     following symlinks as a path lookup does, close-on-exec) and kept open for the life of
 *     the process: `/proc/self/fd/N` plus the rest, which is UTF-8;
 *   - when that prefix does not exist: `/proc/self/fd/D/m/K`, below a dangling symlink `m` in
 *     a private directory (0700, in $TMPDIR, removed at exit): every lookup and every create
 *     there fails with ENOENT, as it would at the real path, so nothing is created elsewhere.
 *     (A name that procfs lacks would do for lookups, but Node's mkdir -p loops forever on a
 *     parent that exists while mkdir below it says ENOENT; at the dangling `m` it stops.)
 *   - when it cannot be reached for another reason (ENOTDIR, EACCES, ENAMETOOLONG), the
 *     deepest prefix that opens, plus the rest with each byte that is not UTF-8 as '_', when
 *     that fails with the same errno (checked); otherwise the error is thrown.
 *
 * The directory an alias names is the one the path named when the alias was made (a rename or
 * a mount on top later is not followed). Creating such a path is done by bytes
 * (`ensureDirBytes`), then aliased.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HardsnapError } from '../core/errors.js';
import { isUtf8 } from '../paths/arg-text.js';
import { displayPath } from '../paths/escape.js';
import { pathBytes, registerAlias, registerStandIn } from '../paths/aliases.js';
import { errnoName, sys } from './native.js';
import { removeTree } from './remove-tree.js';

const cache = new Map<string, string>();
const missing = new Map<string, string>();
let missingCount = 0;
let nowhereDir: { fd: number; path: string } | null = null;

/** The private directory holding the dangling `m` (made on first need, removed at exit). */
function nowhere(abs: Buffer): number {
  if (nowhereDir) return nowhereDir.fd;
  for (const base of [os.tmpdir(), '/dev/shm', '/run', '/tmp']) {
    let dir: string;
    try {
      dir = fs.mkdtempSync(path.join(base, 'hardsnap-nowhere-'));
    } catch {
      continue;
    }
    try {
      fs.symlinkSync('/proc/self/fd/nowhere', path.join(dir, 'm'));
      const fd = sys.openat(sys.AT_FDCWD, dir, sys.O_PATH | sys.O_DIRECTORY | sys.O_NOFOLLOW, 0);
      if (fd >= 0) {
        nowhereDir = { fd, path: dir };
        process.once('exit', () => removeTree(dir));
        return fd;
      }
    } catch {
      /* try the next place */
    }
    removeTree(dir);
  }
  throw new HardsnapError('ENOENT', `${displayPath(abs)} does not exist`, {
    path: displayPath(abs),
    exit: 2,
    hint: 'check the path (no temporary directory was writable to stand for it either)',
  });
}

/** Splits an absolute byte path into its components, resolving '.', '..' and '//' lexically (as path.resolve). */
export function byteComponents(abs: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= abs.length; i++) {
    if (i < abs.length && abs[i] !== 0x2f) continue;
    const c = abs.subarray(start, i);
    start = i + 1;
    if (c.length === 0 || (c.length === 1 && c[0] === 0x2e)) continue;
    if (c.length === 2 && c[0] === 0x2e && c[1] === 0x2e) out.pop();
    else out.push(c);
  }
  return out;
}

function join(comps: Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const c of comps) parts.push(SLASH, c);
  return parts.length ? Buffer.concat(parts) : SLASH;
}
const SLASH = Buffer.from('/');

/** The absolute form of a byte path (relative ones against the working directory's real bytes). */
export function absoluteBytes(p: Buffer): Buffer {
  if (p[0] === 0x2f) return join(byteComponents(p));
  const cwd = fs.readlinkSync('/proc/self/cwd', { encoding: 'buffer' });
  return join(byteComponents(Buffer.concat([cwd, SLASH, p])));
}

function open(p: Buffer): number {
  return sys.openat(sys.AT_FDCWD, p, sys.O_PATH, 0);
}

/**
 * A string that names exactly `bytes` (see the header). UTF-8 paths come back as they are;
 * others are aliases, the same one for the same path within a process.
 */
export function pathOfBytes(bytes: Buffer): string {
  if (isUtf8(bytes)) return bytes.toString('utf8');
  const abs = absoluteBytes(bytes);
  const key = abs.toString('latin1');
  const hit = cache.get(key);
  if (hit) return hit;
  const comps = byteComponents(abs);
  let last = -1;
  for (let i = 0; i < comps.length; i++) if (!isUtf8(comps[i]!)) last = i;
  // the longest openable prefix that holds every component that is not UTF-8
  for (let k = comps.length; k > last; k--) {
    const fd = open(join(comps.slice(0, k)));
    if (fd >= 0) {
      const rest = comps
        .slice(k)
        .map((c) => c.toString('utf8'))
        .join('/');
      const alias = registerAlias(String(fd), join(comps.slice(0, k))) + (rest ? '/' + rest : '');
      cache.set(key, alias);
      return alias;
    }
    const code = errnoName(fd);
    if (k === last + 1) return unreachable(abs, comps, last, code);
  }
  throw new Error('unreachable');
}

function unreachable(abs: Buffer, comps: Buffer[], last: number, code: string): string {
  const key = abs.toString('latin1');
  if (code === 'ENOENT') {
    let alias = missing.get(key);
    if (!alias) missing.set(key, (alias = registerAlias(`${nowhere(abs)}/m/${++missingCount}`, abs)));
    return alias;
  }
  // the deepest prefix that opens, and a stand-in for the rest that fails the same way
  for (let k = last; k >= 0; k--) {
    const fd = open(join(comps.slice(0, k)));
    if (fd < 0) continue;
    const rest = comps
      .slice(k)
      .map((c) => Buffer.from(c.map((b) => (b >= 0x80 ? 0x5f : b))).toString('latin1'))
      .join('/');
    const alias = registerAlias(String(fd), join(comps.slice(0, k))) + '/' + rest;
    const check = sys.openat(sys.AT_FDCWD, alias, sys.O_PATH, 0);
    if (check >= 0) sys.close(check);
    else if (errnoName(check) === code) {
      // shown, and mapped back, as the path it stands for
      cache.set(key, registerStandIn(alias, abs));
      return alias;
    }
    break;
  }
  throw new HardsnapError(code, `cannot reach ${displayPath(abs)}: ${code}`, {
    path: displayPath(abs),
    exit: 2,
    hint: 'check the path: it is used as given, byte for byte',
  });
}

/** `pathOfBytes` of a string that may be an alias or arg text: the string itself when it is plain UTF-8. */
export function exactPath(p: string): string {
  return pathOfBytes(pathBytes(p));
}

/**
 * mkdir -p by bytes, below `base` (which must exist: nothing above it is created); returns the
 * alias of the directory. Directories are made with `mode`. `exclusive`: the last one must not
 * exist yet (EEXIST is thrown: it is someone else's).
 */
export function ensureDirBytes(base: Buffer, rel: Buffer, mode: number, exclusive = false): string {
  const comps = byteComponents(rel);
  let cur = absoluteBytes(base);
  for (const [i, c] of comps.entries()) {
    cur = Buffer.concat([cur.length === 1 ? Buffer.alloc(0) : cur, SLASH, c]);
    try {
      fs.mkdirSync(cur, { mode });
    } catch (err) {
      // exclusive: the last one must be made here (EEXIST is thrown)
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || (exclusive && i === comps.length - 1)) throw err;
    }
  }
  cache.delete(cur.toString('latin1'));
  missing.delete(cur.toString('latin1'));
  return pathOfBytes(cur);
}

/**
 * The real path of `p` (an alias, arg text or plain string) as bytes, or of its nearest existing
 * ancestor with the rest appended when it does not exist (for "is A inside B" checks).
 */
export function realBytes(p: string): Buffer {
  let head = absoluteBytes(pathBytes(p));
  const rest: Buffer[] = [];
  for (;;) {
    try {
      const real = fs.realpathSync.native(head, { encoding: 'buffer' });
      return rest.length ? Buffer.concat([real.length === 1 ? Buffer.alloc(0) : real, join(rest)]) : real;
    } catch {
      const comps = byteComponents(head);
      if (!comps.length) return join(rest);
      rest.unshift(comps.pop()!);
      head = join(comps);
    }
  }
}

/** Whether byte path `child` is `parent` or lies below it (both absolute and resolved). */
export function isInsideBytes(child: Buffer, parent: Buffer): boolean {
  if (parent.length === 1 && parent[0] === 0x2f) return true;
  if (!child.subarray(0, parent.length).equals(parent)) return false;
  return child.length === parent.length || child[parent.length] === 0x2f;
}
