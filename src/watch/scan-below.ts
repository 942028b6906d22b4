/**
 * One source directory, read by its path below the root the backup opened (a fresh descriptor,
 * so the backup's own is never moved): its entries and device, or why it could not be read.
 * The audit and the new-link check both read directories this way.
 */
import { readDirAt, type SourceEntry } from '../fs/entry.js';
import { ST, sys } from '../fs/native.js';

const O_DIR = sys.O_RDONLY | sys.O_DIRECTORY | sys.O_NOFOLLOW | sys.O_NOATIME;
const DOT = Buffer.from('.');

export type ScanBelow = { entries: SourceEntry[]; dev: number } | { failed: 'open' | 'read'; code: number };

export function scanBelow(rootFd: number, rel: Buffer): ScanBelow {
  const fd = sys.openat(rootFd, rel.length ? rel : DOT, O_DIR, 0);
  if (fd < 0) return { failed: 'open', code: fd };
  const st = new Float64Array(sys.STAT_FIELDS);
  let read: SourceEntry[] | number;
  try {
    const rc = sys.fstat(fd, st);
    if (rc !== 0) return { failed: 'read', code: rc };
    read = readDirAt(fd);
  } finally {
    sys.close(fd);
  }
  return typeof read === 'number' ? { failed: 'read', code: read } : { entries: read, dev: st[ST.DEV]! };
}
