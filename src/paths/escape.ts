/**
 * The one escaped text form of a path (SPEC.md): printable ASCII and valid UTF-8 as themselves,
 * `\\` for a backslash, `\xHH` for every other byte (control characters, newline, DEL, bytes
 * that are not part of valid UTF-8). `parseDisplayPath(displayPath(b))` gives back `b`.
 */
const HEX = '0123456789abcdef';

/** The length of the valid UTF-8 sequence at b[i] (a byte >= 0x80), or 0. */
export function utf8SeqLen(b: Uint8Array, i: number): number {
  const c = b[i]!;
  let n: number;
  let min: number;
  if (c >= 0xc2 && c <= 0xdf) ((n = 2), (min = 0x80));
  else if (c >= 0xe0 && c <= 0xef) ((n = 3), (min = 0x800));
  else if (c >= 0xf0 && c <= 0xf4) ((n = 4), (min = 0x10000));
  else return 0;
  if (i + n > b.length) return 0;
  let cp = c & (0xff >> (n + 1));
  for (let k = 1; k < n; k++) {
    const d = b[i + k]!;
    if ((d & 0xc0) !== 0x80) return 0;
    cp = (cp << 6) | (d & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

/** A C1 control character (U+0080..U+009F: 0xc2 0x80..0x9f), shown escaped like C0 ones. */
function isC1(b: Buffer, i: number, n: number): boolean {
  return n === 2 && b[i] === 0xc2 && b[i + 1]! <= 0x9f;
}

export function displayPath(bytes: Buffer | Uint8Array): string {
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes);
  let out = '';
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    if (c === 0x5c) {
      out += '\\\\';
      i++;
    } else if (c >= 0x20 && c < 0x7f) {
      out += String.fromCharCode(c);
      i++;
    } else {
      const len = c >= 0x80 ? utf8SeqLen(b, i) : 0;
      const n = len && !isC1(b, i, len) ? len : 0;
      if (n) {
        out += b.toString('utf8', i, i + n);
        i += n;
      } else {
        out += '\\x' + HEX[c >> 4] + HEX[c & 15];
        i++;
      }
    }
  }
  return out;
}

/** Reads the escaped form back into bytes; throws on a malformed escape. */
export function parseDisplayPath(text: string): Buffer {
  const parts: Buffer[] = [];
  let lit = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch !== '\\') {
      lit += ch;
      continue;
    }
    const next = text[i + 1];
    if (next === '\\') {
      lit += '\\';
      i++;
    } else if (next === 'x' && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 2, i + 4))) {
      if (lit) (parts.push(Buffer.from(lit, 'utf8')), (lit = ''));
      parts.push(Buffer.from([parseInt(text.slice(i + 2, i + 4), 16)]));
      i += 3;
    } else {
      throw new Error(`bad escape at character ${i + 1} of ${JSON.stringify(text)}: use \\\\ or \\xHH`);
    }
  }
  if (lit) parts.push(Buffer.from(lit, 'utf8'));
  return Buffer.concat(parts);
}

/** Joins a relative directory path and a name with '/', as bytes. */
export function joinRel(dir: Buffer, name: Buffer): Buffer {
  if (dir.length === 0) return name;
  const out = Buffer.allocUnsafe(dir.length + 1 + name.length);
  dir.copy(out, 0);
  out[dir.length] = 0x2f;
  name.copy(out, dir.length + 1);
  return out;
}
