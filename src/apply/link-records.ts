/**
 * The records of sys.linkBatch (native/hardsnap.c do_linkbatch): each name to link, with what
 * the linked inode must show (the previous generation is evidence, not truth: a file an admin
 * chmod-ed, replaced or turned into a symlink in an old generation is not linked again).
 *
 *   u16 nameLen | name | u8 type | u8 flags (1: compare owner) | u32 mode | u32 uid | u32 gid |
 *   f64 size | f64 mtimeSec | u32 mtimeNsec | f64 ino (recorded; 0: not compared)
 */
import { TYPE_CODE, type Meta } from '../fs/entry.js';
import { DRIFT } from '../fs/native.js';

const TAIL = 42;

/**
 * The packed records of `items` (PendingLinks, as they are: no object per record): the name and
 * the metadata the linked inode must have (its entry e), and the inode number it must be
 * (prevIno; 0: not compared: the previous manifest's numbers are not known to be the spool's,
 * after a copy of the spool to another disk or from an older format).
 */
export function packLinkRecords(items: readonly { e: Meta & { name: Buffer }; prevIno: number }[], owners: boolean): Buffer {
  let size = 0;
  for (const it of items) size += 2 + it.e.name.length + TAIL;
  const b = Buffer.allocUnsafe(size);
  let o = 0;
  for (const { e: m, prevIno: ino } of items) {
    const name = m.name;
    b.writeUInt16LE(name.length, o);
    name.copy(b, o + 2);
    o += 2 + name.length;
    b[o] = TYPE_CODE[m.type];
    b[o + 1] = owners ? 1 : 0;
    b.writeUInt32LE(m.mode, o + 2);
    b.writeUInt32LE(m.uid >>> 0, o + 6);
    b.writeUInt32LE(m.gid >>> 0, o + 10);
    b.writeDoubleLE(m.size, o + 14);
    b.writeDoubleLE(m.mtimeSec, o + 22);
    b.writeUInt32LE(m.mtimeNsec, o + 30);
    b.writeDoubleLE(ino, o + 34);
    o += TAIL;
  }
  return b;
}

/** What a drift mask says, for the report ("mode, mtime"). */
export function driftText(mask: number): string {
  const out: string[] = [];
  if (mask & DRIFT.TYPE) out.push('type');
  if (mask & DRIFT.MODE) out.push('mode');
  if (mask & DRIFT.OWNER) out.push('owner');
  if (mask & DRIFT.SIZE) out.push('size');
  if (mask & DRIFT.MTIME) out.push('mtime');
  if (mask & DRIFT.UNSTATABLE) out.push('cannot be stat-ed');
  if (mask & DRIFT.REPLACED) out.push('replaced');
  if (mask & DRIFT.CHANGED) out.push('changed while cloned');
  return out.join(', ');
}
