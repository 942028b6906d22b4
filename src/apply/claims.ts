/**
 * The spool inodes this generation already uses, so that names of the generation share an inode
 * only when their source names share one (SPEC: "content linking never joins two names of one
 * generation"). Every link into the generation claims its inode (the number a stat of the new
 * link gave); a second claim of the same inode by an unrelated name is refused, and that name
 * gets a fresh copy instead:
 *
 * - a content link to an inode that an unchanged file of this generation already links (two
 *   separate source files with identical bytes and times: `git checkout`, `cp -p`);
 * - an unchanged link to an inode a content link took first (the same, in the other order);
 * - two separate source files whose previous records share an inode (a hard link the source
 *   has since broken).
 *
 * Memory: an open-addressing table of 32-bit fingerprints (8 bytes a linked file at most; 8 MB
 * for a million). A fingerprint equal to another inode's (possible only for inode numbers
 * beyond 2^32) reads as claimed: a copy where a link would have done, never a wrong link.
 */
export class ClaimedInodes {
  private table = new Uint32Array(1 << 12);
  private count = 0;

  /** Claims `ino`; false when it is (or may be) claimed already. */
  claim(ino: number): boolean {
    const fp = fingerprint(ino);
    const t = this.table;
    const mask = t.length - 1;
    for (let i = mix(fp) & mask; ; i = (i + 1) & mask) {
      const v = t[i]!;
      if (v === 0) break;
      if (v === fp) return false;
    }
    if ((this.count + 1) * 2 > t.length) this.grow();
    this.insert(fp);
    this.count++;
    return true;
  }

  /** Whether `ino` is (or may be) claimed. */
  has(ino: number): boolean {
    const fp = fingerprint(ino);
    const t = this.table;
    const mask = t.length - 1;
    for (let i = mix(fp) & mask; ; i = (i + 1) & mask) {
      const v = t[i]!;
      if (v === 0) return false;
      if (v === fp) return true;
    }
  }

  get size(): number {
    return this.count;
  }

  private insert(fp: number): void {
    const t = this.table;
    const mask = t.length - 1;
    let i = mix(fp) & mask;
    while (t[i] !== 0) i = (i + 1) & mask;
    t[i] = fp;
  }

  private grow(): void {
    const old = this.table;
    this.table = new Uint32Array(old.length * 2);
    for (const v of old) if (v !== 0) this.insert(v);
  }
}

/** A nonzero 32-bit value for an inode number (exact below 2^32). */
function fingerprint(ino: number): number {
  const lo = ino >>> 0;
  const hi = Math.floor(ino / 4294967296) >>> 0;
  const v = (lo ^ Math.imul(hi, 0x9e3779b1)) >>> 0;
  return v === 0 ? 0x80000001 : v;
}

function mix(v: number): number {
  const h = Math.imul(v ^ (v >>> 16), 0x45d9f3b);
  return (h ^ (h >>> 16)) >>> 0;
}
