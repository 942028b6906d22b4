/**
 * Path aliases: JS strings that stand for byte paths Node cannot spell (src/fs/byte-path.ts
 * makes them). Node turns every string path into UTF-8, so a directory whose name is not valid
 * UTF-8 is reached through a descriptor held open for the life of the process:
 *
 *   /proc/self/fd/N[/REST]      the directory (or file) opened as fd N, and REST below it
 *   /proc/self/fd/D/m/K[/REST]  a path that did not exist: D is a private directory whose
 *                               `m` is a dangling symlink, so every lookup and every create
 *                               there fails with ENOENT, as at the real path, and nothing is
 *                               ever created at a wrong place (mkdir -p stops at `m`)
 *
 * The core uses them like any path (path.join, node:fs, the native module). This registry maps
 * them back: to the escaped form for every message and JSON output (`showPaths`), and to the
 * real bytes where a path leaves the process (`pathBytes`: hook environments, realpath).
 */
import { displayPath } from './escape.js';
import { bytesOfArg, hasRawBytes } from './arg-text.js';

const PREFIX = '/proc/self/fd/';
const registry = new Map<string, { bytes: Buffer; shown: string }>();
/** whole aliases that stand for another path (byte-path.ts's stand-ins): alias -> entry */
const standIns = new Map<string, { bytes: Buffer; shown: string }>();
const ALIAS = /\/proc\/self\/fd\/(\d+)(\/m\/\d+)?(?![\w-])/g;
const LONE = /(?<![\ud800-\udbff])[\udc80-\udcff]/g;

/** Registers `key` (a descriptor number N, or D/m/K) for `bytes`; returns the alias. */
export function registerAlias(key: string, bytes: Buffer): string {
  registry.set(key, { bytes: Buffer.from(bytes), shown: displayPath(bytes) });
  return PREFIX + key;
}

/**
 * Registers a whole alias (a descriptor's path plus a stand-in below it) for `bytes`: shown and
 * mapped back as those bytes, not as the stand-in's.
 */
export function registerStandIn(alias: string, bytes: Buffer): string {
  standIns.set(alias, { bytes: Buffer.from(bytes), shown: displayPath(bytes) });
  return alias;
}

function lookup(p: string): { entry: { bytes: Buffer; shown: string }; rest: string } | null {
  if (!p.startsWith(PREFIX)) return null;
  for (const [alias, entry] of standIns) {
    if (p === alias || p.startsWith(alias + '/')) return { entry, rest: p.slice(alias.length) };
  }
  const m = /^(\d+)(\/m\/\d+)?(\/.*)?$/s.exec(p.slice(PREFIX.length));
  if (!m) return null;
  const long = m[2] ? registry.get(m[1]! + m[2]) : undefined;
  if (long) return { entry: long, rest: m[3] ?? '' };
  const entry = registry.get(m[1]!);
  return entry ? { entry, rest: (m[2] ?? '') + (m[3] ?? '') } : null;
}

/** Whether `p` is (or lies below) an alias. */
export function isAlias(p: string): boolean {
  return lookup(p) !== null;
}

/**
 * The bytes a path names: an alias's real path (plus what follows it), an arg text's bytes,
 * or the UTF-8 of an ordinary string.
 */
export function pathBytes(p: string): Buffer {
  const a = lookup(p);
  if (!a) return bytesOfArg(p);
  return a.rest ? Buffer.concat([a.entry.bytes, bytesOfArg(a.rest)]) : a.entry.bytes;
}

/**
 * Text for a human (a message, a JSON string): every alias replaced by the escaped form of the
 * path it stands for, and every byte of an arg text that is not UTF-8 shown as `\xHH`. Text
 * without either is returned as it is.
 */
export function showPaths(text: string): string {
  let s = text;
  if (s.includes(PREFIX)) {
    for (const [alias, entry] of standIns) if (s.includes(alias)) s = s.split(alias).join(entry.shown);
    s = s.replace(ALIAS, (all, fd: string, sub: string | undefined) => {
      const long = sub ? registry.get(fd + sub) : undefined;
      if (long) return long.shown;
      const entry = registry.get(fd);
      return entry ? entry.shown + (sub ?? '') : all;
    });
  }
  if (hasRawBytes(s)) s = s.replace(LONE, (c) => `\\x${(c.charCodeAt(0) - 0xdc00).toString(16)}`);
  return s;
}

/** `showPaths` over every string of a JSON-able value (keys included). */
export function showPathsDeep<T>(value: T): T {
  if (typeof value === 'string') return showPaths(value) as T;
  if (Array.isArray(value)) return value.map((v) => showPathsDeep(v)) as T;
  if (value !== null && typeof value === 'object' && !Buffer.isBuffer(value) && !(value instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[showPaths(k)] = showPathsDeep(v);
    return out as T;
  }
  return value;
}
