/**
 * Part names (SPEC.md): may contain '/', but no component may be empty, '.', '..', 'last',
 * '.hardsnap' or start with '.'; no part may lie inside another.
 *
 * A name is held, shown and accepted in SPEC's escaped form of its bytes: a name whose bytes
 * are not UTF-8 is `caf\xe9` everywhere (list, status, metrics, JSON, run log, manifests),
 * and its directory in the spool has the real bytes (layout.ts partDir). A backslash is not
 * allowed in a name's bytes, nor any control character, so a backslash in the escaped form
 * always starts a `\xHH` of a byte that is not UTF-8: the form is unambiguous.
 */
import { UsageError } from '../core/errors.js';
import { displayPath, parseDisplayPath } from '../paths/escape.js';
import { isGenerationName } from './names.js';

export function validatePartName(name: string): string {
  const bad = (why: string) =>
    new UsageError(`invalid part name ${JSON.stringify(name)}: ${why}`, {
      hint: "use names like 'mail' or 'mail/imap'",
    });
  if (!name) throw bad('it is empty');
  let bytes: Buffer;
  try {
    bytes = parseDisplayPath(name);
  } catch {
    throw bad('a backslash is only allowed in \\xHH (a byte that is not UTF-8)');
  }
  // control characters (C0, DEL, C1) and backslashes, raw or escaped; an escape of a byte
  // that needs none (\x41 for A) is not the escaped form of the name
  if (/[\x00-\x1f\x7f\\\u0080-\u009f]/.test(bytes.toString('utf8')) || bytes.includes(0x5c)) throw bad('control characters and backslashes are not allowed');
  if (displayPath(bytes) !== name) throw bad(`write it as ${JSON.stringify(displayPath(bytes))}`);
  for (const c of name.split('/')) {
    if (c === '') throw bad('it has an empty component (leading, trailing or double /)');
    if (c === '.' || c === '..') throw bad(`'${c}' is not allowed as a component`);
    if (c === 'last') throw bad("'last' is reserved");
    if (c.startsWith('.')) throw bad(`component '${c}' starts with '.'`);
    if (isGenerationName(c) || isGenerationName(c.replace(/\.partial$/, ''))) throw bad(`component '${c}' looks like a generation name`);
    if (parseDisplayPath(c).length > 200) throw bad(`component '${c.slice(0, 20)}...' is too long`);
  }
  return name;
}

/** Throws when one name lies inside another ('bm' and 'bm/pgsql'), or a name repeats. */
export function checkNoNesting(names: string[], existing: string[] = []): void {
  const all = [...names.map((n) => ({ n, given: true })), ...existing.map((n) => ({ n, given: false }))];
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) throw new UsageError(`part '${n}' is given twice`);
    seen.add(n);
  }
  for (const a of all) {
    for (const b of all) {
      if (a.n !== b.n && b.n.startsWith(a.n + '/') && (a.given || b.given)) {
        const where = a.given && b.given ? '' : ' (one of them already exists in the spool)';
        throw new UsageError(`parts '${a.n}' and '${b.n}' nest: a part cannot lie inside another${where}`);
      }
    }
  }
}
