/**
 * What a valid `--config` file is: the `Config` type the rest of hardsnap reads, and the rules
 * that turn a parsed YAML document into it. Every rule reports a problem at the YAML node it
 * concerns (so the loader can print `FILE:LINE:COL`) with the key path it sits under, and
 * keeps going, so one run shows every mistake in the file instead of one per try.
 *
 * Keys in the file are kebab-case, named like the command-line options that override them;
 * fields here are camelCase. Durations stay strings (`20h`, `1d12h`) for src/time/duration.ts to
 * turn into milliseconds; they, part names and the host are checked here with the same shared
 * rules the command line uses, so a config never passes here and fails later without a line.
 */
import { isAlias, isMap, isScalar, isSeq, type Document, type Node } from 'yaml';
import { UsageError } from '../core/errors.js';
import { validateHost } from '../spool/layout.js';
import { checkNoNesting, validatePartName } from '../spool/part-name.js';
import { DURATION_FORMS, parseDuration } from '../time/duration.js';
import { parsePercent } from './percent.js';

/** A hook runs as an argv list without a shell, or through `/bin/sh -c` only when asked. */
export type HookCommand = { argv: string[] } | { shell: string };

export interface PartConfig {
  /** Part name, may contain `/` (`mail/imap`). */
  name: string;
  /** Absolute path of the source tree. */
  path: string;
  /** Exclude patterns for this part only (after the global ones). */
  exclude: string[];
  /** The largest share (0..1) of its entries the source may lose from one generation to the next. */
  maxSourceLoss?: number;
}

export interface RetentionConfig {
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
  /** Keep every generation younger than this duration (`2d`). */
  within?: string;
}

export interface HooksConfig {
  pre?: HookCommand;
  post?: HookCommand;
  /** Longest a hook may run (a duration such as `30m`). */
  timeout?: string;
}

export interface Config {
  spool?: string;
  host?: string;
  parts?: PartConfig[];
  exclude?: string[];
  excludeFrom?: string[];
  oneFileSystem?: boolean;
  retention?: RetentionConfig;
  hooks?: HooksConfig;
  minInterval?: string;
  /** apply the retention rules after every backup (backup --prune; also the backups watch starts) */
  prune?: boolean;
  parallelParts?: boolean;
  /** max-source-loss of every part that does not set its own (0..1) */
  maxSourceLoss?: number;
  metricsFile?: string;
  dedup?: 'off' | 'part' | 'host';
  dedupVerify?: boolean;
  /** generations of the part the content index looks in, the previous one included */
  dedupGenerations?: number;
  checksum?: boolean;
  /** extended attributes and ACLs (default true; false: rsync -a behaviour) */
  xattrs?: boolean;
  wait?: boolean | string;
  /** watch mode (docs/WATCH.md): use the watcher's journal when it is trustworthy */
  journal?: boolean;
  fullScanEvery?: string;
  auditSample?: number;
  journalTimeout?: string;
  /** `hardsnap watch` starts a backup at most this often, after changes */
  backupEvery?: string;
  /** `hardsnap watch`: which watcher (auto: fanotify where it can, chokidar elsewhere) */
  watcher?: 'auto' | 'fanotify' | 'chokidar';
}

/** One thing wrong with the file: where (a source offset), under which key, and what. */
export interface ConfigProblem {
  offset: number;
  keyPath: string;
  message: string;
}

/** Reads one value; returns undefined after reporting a problem. */
type Reader<T> = (ctx: Context, node: Node, path: string) => T | undefined;

/** Field of T -> its key in the file and how to read it. */
type FieldTable<T> = { [K in keyof T]-?: readonly [key: string, read: Reader<NonNullable<T[K]>>] };

class Context {
  readonly problems: ConfigProblem[] = [];
  /** value node -> its key node, to point "missing value" problems at the key */
  private readonly keyOf = new Map<Node, Node>();

  constructor(readonly doc: Document) {}

  setKey(value: Node, key: Node): void {
    this.keyOf.set(value, key);
  }

  fail(node: Node, path: string, message: string): undefined {
    const empty = isScalar(node) && node.value === null && node.range && node.range[0] === node.range[1];
    const at = (empty && this.keyOf.get(node)) || node;
    this.problems.push({ offset: at.range?.[0] ?? 0, keyPath: path, message });
    return undefined;
  }

  /** The node an alias stands for; the node itself otherwise. */
  deref(node: Node, path: string): Node | undefined {
    if (!isAlias(node)) return node;
    const target = node.resolve(this.doc);
    return target ?? this.fail(node, path, `alias *${node.source} has no anchor &${node.source} before it`);
  }
}

function describe(node: Node): string {
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (!isScalar(node)) return 'an unsupported YAML node';
  const v = node.value;
  if (v === null || v === undefined) return 'nothing';
  if (typeof v === 'string') return 'a string';
  if (typeof v === 'number' || typeof v === 'bigint') return 'a number';
  if (typeof v === 'boolean') return 'a boolean';
  return 'an unsupported YAML value';
}

/** A value as shown in a message: quoted, and cut short so one bad line stays one line. */
function shown(value: string): string {
  return `"${value.length > 60 ? `${value.slice(0, 57)}...` : value}"`;
}

const join = (path: string, key: string) => (path ? `${path}.${key}` : key);

/** A scalar's value when it has type `type`, else a problem "expected <what>, got ...". */
function scalarOf<T>(ctx: Context, node: Node, path: string, type: string, what: string): T | undefined {
  const n = ctx.deref(node, path);
  if (!n) return undefined;
  if (isScalar(n) && typeof n.value === type) return n.value as T;
  return ctx.fail(n, path, `expected ${what}, got ${describe(n)}`);
}

/**
 * Applies a shared rule that throws a UsageError (part names, host IDs, durations), turning its
 * message into a problem at `node`. Rules that name what they check (`what: ...`) are given the
 * key path, and that prefix is dropped here because the problem line already shows it.
 */
function shared<T>(ctx: Context, node: Node, path: string, rule: () => T): T | undefined {
  try {
    return rule();
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    const message = err.message.startsWith(`${path}: `) ? err.message.slice(path.length + 2) : err.message;
    return ctx.fail(node, path, err.hint ? `${message} (${err.hint})` : message);
  }
}

const text: Reader<string> = (ctx, node, path) => {
  const s = scalarOf<string>(ctx, node, path, 'string', 'a string');
  if (s === '') return ctx.fail(node, path, 'must not be empty');
  return s;
};

const absolutePath: Reader<string> = (ctx, node, path) => {
  const s = text(ctx, node, path);
  if (s === undefined) return undefined;
  if (!s.startsWith('/')) return ctx.fail(node, path, `must be an absolute path (starting with /), got ${shown(s)}`);
  if (s.includes('\0')) return ctx.fail(node, path, 'a path cannot contain a NUL byte');
  return s;
};

const bool: Reader<boolean> = (ctx, node, path) => scalarOf<boolean>(ctx, node, path, 'boolean', 'true or false');

const count: Reader<number> = (ctx, node, path) => {
  const n = scalarOf<number>(ctx, node, path, 'number', 'a whole number >= 0');
  if (n === undefined) return undefined;
  if (!Number.isSafeInteger(n) || n < 0) return ctx.fail(node, path, `expected a whole number >= 0, got ${n}`);
  return n;
};

const atLeastOne: Reader<number> = (ctx, node, path) => {
  const n = count(ctx, node, path);
  if (n === 0) return ctx.fail(node, path, 'expected a whole number >= 1, got 0');
  return n;
};

const DURATION_HINT = `a duration (${DURATION_FORMS})`;

const duration: Reader<string> = (ctx, node, path) => {
  const s = scalarOf<string>(ctx, node, path, 'string', DURATION_HINT);
  if (s === undefined) return undefined;
  return shared(ctx, node, path, () => {
    parseDuration(s, path);
    return s;
  });
};

const host: Reader<string> = (ctx, node, path) => {
  const s = text(ctx, node, path);
  return s === undefined ? undefined : shared(ctx, node, path, () => validateHost(s));
};

const dedup: Reader<'off' | 'part' | 'host'> = (ctx, node, path) => {
  const n = ctx.deref(node, path);
  if (!n) return undefined;
  // YAML 1.2 reads a bare `off` as a string, but `false` is a boolean: take it as off too
  if (isScalar(n) && n.value === false) return 'off';
  const s = scalarOf<string>(ctx, n, path, 'string', 'off, part or host');
  if (s === undefined) return undefined;
  if (s !== 'off' && s !== 'part' && s !== 'host') return ctx.fail(n, path, `expected off, part or host, got ${shown(s)}`);
  return s;
};

const watcher: Reader<'auto' | 'fanotify' | 'chokidar'> = (ctx, node, path) => {
  const n = ctx.deref(node, path);
  if (!n) return undefined;
  const s = scalarOf<string>(ctx, n, path, 'string', 'auto, fanotify or chokidar');
  if (s === undefined) return undefined;
  if (s !== 'auto' && s !== 'fanotify' && s !== 'chokidar') return ctx.fail(n, path, `expected auto, fanotify or chokidar, got ${shown(s)}`);
  return s;
};

const wait: Reader<boolean | string> = (ctx, node, path) => {
  const n = ctx.deref(node, path);
  if (!n) return undefined;
  if (isScalar(n) && typeof n.value === 'boolean') return n.value;
  if (isScalar(n) && typeof n.value === 'string') return duration(ctx, n, path);
  return ctx.fail(n, path, `expected true, false or ${DURATION_HINT}, got ${describe(n)}`);
};

/** A list of `item`s; a single value stands for a list of one, and nothing for an empty list. */
function listOf(item: Reader<string>): Reader<string[]> {
  return (ctx, node, path) => {
    const n = ctx.deref(node, path);
    if (!n) return undefined;
    if (isScalar(n) && n.value === null) return [];
    if (!isSeq(n)) {
      const one = item(ctx, n, path);
      return one === undefined ? undefined : [one];
    }
    const out: string[] = [];
    let ok = true;
    n.items.forEach((it, i) => {
      const v = item(ctx, it as Node, `${path}[${i}]`);
      if (v === undefined) ok = false;
      else out.push(v);
    });
    return ok ? out : undefined;
  };
}

const patterns = listOf(text);
const absolutePaths = listOf(absolutePath);

/** Levenshtein distance, enough to catch `keep-dayly` and `exlude`. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/** Keys users write in the wrong place, and where they belong. */
const MISPLACED: Record<string, string> = {
  'hook-timeout': 'write it as timeout inside hooks',
  timeout: 'hook-timeout is hooks.timeout; other timeouts are durations like min-interval',
  verbose: 'verbose is a command-line option only',
  quiet: 'quiet is a command-line option only',
};

export function unknownKeyMessage(key: string, known: readonly string[]): string {
  const flat = (s: string) => s.toLowerCase().replace(/[-_\s]/g, '');
  const same = known.find((k) => flat(k) === flat(key));
  if (same) return `unknown key; did you mean ${same}?`;
  if (MISPLACED[key]) return `unknown key here; ${MISPLACED[key]}`;
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = distance(key, k);
    if (d < bestD) [best, bestD] = [k, d];
  }
  if (best !== undefined && bestD <= Math.max(2, Math.floor(best.length / 3))) {
    return `unknown key; did you mean ${best}?`;
  }
  return `unknown key; known keys here: ${known.join(', ')}`;
}

/** The text of a mapping key: strings as they are, other plain scalars as written. */
function keyText(key: unknown): string | undefined {
  if (!isScalar(key) || key.value === null) return undefined;
  if (typeof key.value === 'string') return key.value;
  return typeof key.source === 'string' ? key.source : String(key.value);
}

/** The pairs of a mapping, with text keys; reports non-mappings and odd keys. */
function pairsOf(ctx: Context, node: Node, path: string, what: string): [string, Node, Node][] | undefined {
  const n = ctx.deref(node, path);
  if (!n) return undefined;
  if (!isMap(n)) return ctx.fail(n, path, `expected ${what}, got ${describe(n)}`);
  const out: [string, Node, Node][] = [];
  for (const pair of n.items) {
    const keyNode = pair.key as Node | null;
    const valueNode = pair.value as Node | null;
    // An implicit null key or value has no node; point at whatever exists.
    const anchor = keyNode ?? valueNode ?? n;
    const key = keyText(keyNode);
    if (key === undefined) {
      ctx.fail(anchor, path, 'a key must be a plain word, such as spool');
      continue;
    }
    const value = valueNode ?? ctx.doc.createNode(null);
    if (!valueNode) value.range = keyNode?.range;
    if (keyNode) ctx.setKey(value, keyNode);
    out.push([key, value, keyNode ?? n]);
  }
  return out;
}

/** Reads a mapping of known keys into T; unknown keys are problems with a suggestion. */
function mappingOf<T>(table: FieldTable<T>, what: string): Reader<T> {
  const byKey = new Map<string, [keyof T, Reader<unknown>]>();
  for (const field of Object.keys(table) as (keyof T)[]) {
    const [key, read] = table[field];
    byKey.set(key, [field, read as Reader<unknown>]);
  }
  const known = [...byKey.keys()];
  return (ctx, node, path) => {
    const pairs = pairsOf(ctx, node, path, what);
    if (!pairs) return undefined;
    const out: Partial<T> = {};
    for (const [key, value, keyNode] of pairs) {
      const entry = byKey.get(key);
      if (!entry) {
        ctx.fail(keyNode, join(path, key), unknownKeyMessage(key, known));
        continue;
      }
      const v = entry[1](ctx, value, join(path, key));
      if (v !== undefined) out[entry[0]] = v as T[keyof T];
    }
    return out as T;
  };
}

const HOOK_EXAMPLE = 'an argv list such as ["/usr/local/bin/dump-db", "--fast"], or { shell: "..." } to run it through /bin/sh';

const hookShell = mappingOf<{ shell: string }>({ shell: ['shell', text] }, HOOK_EXAMPLE);

const hookCommand: Reader<HookCommand> = (ctx, node, path) => {
  const n = ctx.deref(node, path);
  if (!n) return undefined;
  if (isSeq(n)) {
    if (n.items.length === 0) return ctx.fail(n, path, `expected ${HOOK_EXAMPLE}, got an empty list`);
    const argv = listOf(text)(ctx, n, path);
    return argv && { argv };
  }
  if (isMap(n)) {
    const m = hookShell(ctx, n, path);
    if (!n.has('shell')) return ctx.fail(n, path, 'missing shell: the command line for /bin/sh');
    return m?.shell === undefined ? undefined : { shell: m.shell };
  }
  return ctx.fail(n, path, `expected ${HOOK_EXAMPLE}, got ${describe(n)}`);
};

const hooks = mappingOf<HooksConfig>(
  { pre: ['pre', hookCommand], post: ['post', hookCommand], timeout: ['timeout', duration] },
  'a mapping with pre, post and timeout',
);

const retention = mappingOf<RetentionConfig>(
  {
    last: ['keep-last', count],
    hourly: ['keep-hourly', count],
    daily: ['keep-daily', count],
    weekly: ['keep-weekly', count],
    monthly: ['keep-monthly', count],
    yearly: ['keep-yearly', count],
    within: ['keep-within', duration],
  },
  'a mapping such as { keep-daily: 7 }',
);

/** A share such as `50%` (or the number 50), as a fraction. */
const percent: Reader<number> = (ctx, node, path) => {
  const n = ctx.deref(node, path);
  if (!n) return undefined;
  if (!isScalar(n) || (typeof n.value !== 'string' && typeof n.value !== 'number')) {
    return ctx.fail(n, path, `expected a percentage such as 50%, got ${describe(n)}`);
  }
  return shared(ctx, n, path, () => parsePercent(n.value as string | number, path));
};

const partMapping = mappingOf<{ path: string; exclude: string[]; maxSourceLoss: number }>(
  { path: ['path', absolutePath], exclude: ['exclude', patterns], maxSourceLoss: ['max-source-loss', percent] },
  'a path, or a mapping with path, exclude and max-source-loss',
);

/** `parts`: name -> path, or name -> { path, exclude }. */
const parts: Reader<PartConfig[]> = (ctx, node, path) => {
  const pairs = pairsOf(ctx, node, path, 'a mapping of part name -> path, such as mail/imap: /var/spool/cyrus/data');
  if (!pairs) return undefined;
  if (pairs.length === 0) {
    return ctx.fail(node, path, 'is empty; name at least one part, such as mail/imap: /var/spool/cyrus/data');
  }
  const out: PartConfig[] = [];
  const names: string[] = [];
  for (const [name, value, keyNode] of pairs) {
    const at = join(path, name);
    // A bad name is reported, and its value still checked, so one run shows every problem.
    const fits =
      shared(ctx, keyNode, at, () => validatePartName(name)) !== undefined &&
      shared(ctx, keyNode, at, () => {
        checkNoNesting([...names, name]);
        return true;
      });
    if (fits) names.push(name);
    const n = ctx.deref(value, at);
    if (!n) continue;
    if (isMap(n)) {
      const m = partMapping(ctx, n, at);
      if (!n.has('path')) ctx.fail(n, at, 'missing path: the absolute path of the tree to back up');
      else if (m?.path !== undefined)
        out.push({ name, path: m.path, exclude: m.exclude ?? [], ...(m.maxSourceLoss !== undefined ? { maxSourceLoss: m.maxSourceLoss } : {}) });
    } else if (isScalar(n) && (typeof n.value === 'string' || n.value === null)) {
      const p = absolutePath(ctx, n, at);
      if (p !== undefined) out.push({ name, path: p, exclude: [] });
    } else {
      ctx.fail(n, at, `expected a path, or a mapping with path and exclude, got ${describe(n)}`);
    }
  }
  return out;
};

const config = mappingOf<Config>(
  {
    spool: ['spool', absolutePath],
    host: ['host', host],
    parts: ['parts', parts],
    exclude: ['exclude', patterns],
    excludeFrom: ['exclude-from', absolutePaths],
    oneFileSystem: ['one-file-system', bool],
    retention: ['retention', retention],
    hooks: ['hooks', hooks],
    minInterval: ['min-interval', duration],
    prune: ['prune', bool],
    parallelParts: ['parallel-parts', bool],
    maxSourceLoss: ['max-source-loss', percent],
    metricsFile: ['metrics-file', absolutePath],
    dedup: ['dedup', dedup],
    dedupVerify: ['dedup-verify', bool],
    dedupGenerations: ['dedup-generations', atLeastOne],
    checksum: ['checksum', bool],
    xattrs: ['xattrs', bool],
    wait: ['wait', wait],
    journal: ['journal', bool],
    fullScanEvery: ['full-scan-every', duration],
    auditSample: ['audit-sample', count],
    journalTimeout: ['journal-timeout', duration],
    backupEvery: ['backup-every', duration],
    watcher: ['watcher', watcher],
  },
  'a mapping of settings such as spool: /var/backups/dp_spool',
);

/** The config a YAML document describes, and every problem found in it (none when valid). */
export function validateConfig(doc: Document): { config: Config; problems: ConfigProblem[] } {
  const ctx = new Context(doc);
  const root = doc.contents as Node;
  const cfg = config(ctx, root, '') ?? {};
  return { config: cfg, problems: ctx.problems };
}
