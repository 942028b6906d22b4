/**
 * Command-line arguments are bytes; commander, and every option value after it, are JS strings.
 * An argument reaches the parser as "arg text": valid UTF-8 decoded as usual, and each byte
 * that is not part of valid UTF-8 as the lone surrogate U+DC00+byte (Python's surrogateescape).
 * The mapping is lossless, an argument that is valid UTF-8 is exactly the string Node gives,
 * and no valid UTF-8 decodes to a lone surrogate, so `bytesOfArg(argText(b))` is `b`.
 */
import { displayPath, utf8SeqLen } from './escape.js';

/** The offset of the first byte that is not part of valid UTF-8, or -1. */
export function firstInvalidUtf8(b: Uint8Array): number {
  for (let i = 0; i < b.length;) {
    if (b[i]! < 0x80) i++;
    else {
      const n = utf8SeqLen(b, i);
      if (!n) return i;
      i += n;
    }
  }
  return -1;
}

/** Whether the bytes are valid UTF-8 (then Node's own decoding of them is exact). */
export function isUtf8(b: Uint8Array): boolean {
  return firstInvalidUtf8(b) < 0;
}

/** The arg text of an argument's bytes. */
export function argText(b: Buffer): string {
  let out = '';
  let start = 0;
  for (let i = 0; i < b.length;) {
    if (b[i]! < 0x80) {
      i++;
      continue;
    }
    const n = utf8SeqLen(b, i);
    if (n) {
      i += n;
      continue;
    }
    out += b.toString('utf8', start, i) + String.fromCharCode(0xdc00 + b[i]!);
    start = ++i;
  }
  return out + b.toString('utf8', start);
}

// a low surrogate of that range not preceded by a high one: a pair (U+10080 ...) is a character
const RAW = /(?<![\ud800-\udbff])[\udc80-\udcff]/;

/** Whether an arg text holds bytes that are not UTF-8 (a string that Node would mangle). */
export function hasRawBytes(s: string): boolean {
  return RAW.test(s);
}

/** The bytes an arg text stands for. */
export function bytesOfArg(s: string): Buffer {
  if (!hasRawBytes(s)) return Buffer.from(s, 'utf8');
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        i++; // a pair: an ordinary character
        continue;
      }
    }
    if (c >= 0xdc80 && c <= 0xdcff) {
      parts.push(Buffer.from(s.slice(start, i), 'utf8'), Buffer.from([c - 0xdc00]));
      start = i + 1;
    }
  }
  parts.push(Buffer.from(s.slice(start), 'utf8'));
  return Buffer.concat(parts);
}

/**
 * An arg text as a human reads it: unchanged when it is valid UTF-8 (as hardsnap always showed
 * its arguments), else the escaped form of its bytes (SPEC.md: `\xHH`, `\\`).
 */
export function showArg(s: string): string {
  return hasRawBytes(s) ? displayPath(bytesOfArg(s)) : s;
}

/**
 * Reads SPEC's escaped form out of an argument's bytes: `\\` is a backslash, `\xHH` a byte,
 * every other byte stands for itself (so both `$'caf\xe9'` and `'caf\xe9'` name the same bytes).
 * Throws on a backslash that starts neither.
 */
export function unescapeArg(s: string): Buffer {
  const b = bytesOfArg(s);
  if (!b.includes(0x5c)) return b;
  const out = Buffer.allocUnsafe(b.length);
  let n = 0;
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (c !== 0x5c) {
      out[n++] = c;
      continue;
    }
    if (b[i + 1] === 0x5c) {
      out[n++] = 0x5c;
      i++;
      continue;
    }
    const hex = b.toString('latin1', i + 2, i + 4);
    if (b[i + 1] === 0x78 && /^[0-9a-fA-F]{2}$/.test(hex)) {
      out[n++] = parseInt(hex, 16);
      i += 3;
      continue;
    }
    throw new Error(`bad escape at byte ${i + 1} of ${JSON.stringify(showArg(s))}: use \\\\ for a backslash or \\xHH for a byte`);
  }
  return out.subarray(0, n);
}
