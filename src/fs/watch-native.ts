/**
 * The typed wrapper of watch mode's native functions (native/watch.c): a fanotify group read by
 * a thread of its own. Same addon as src/fs/native.ts (same `sys` object, so
 * tests can spy on these too).
 */
import { sys } from './native.js';

/** An opaque handle of a fanotify group (a napi external). */
export type FanHandle = object;

export interface WatchBinding {
  /** a fanotify group (FAN_REPORT_DFID_NAME) and its reader thread; records go to `onRecords` */
  fanOpen(onRecords: (records: Buffer) => void): FanHandle | number;
  /** marks path's file system and reports the directories below path; a root id, or -errno */
  fanAddRoot(h: FanHandle, path: Buffer): number;
  fanRemoveRoot(h: FanHandle, id: number): number;
  /** directories at or below path are never reported */
  fanExclude(h: FanHandle, path: Buffer): number;
  /** a barrier record follows every event queued before this call */
  fanBarrier(h: FanHandle): number;
  /** 1 when the group names the inode a new entry is made for (CREATED records; Linux >= 5.17), else 0 */
  fanTargets(h: FanHandle): number;
  fanClose(h: FanHandle): number;
  FAN_CREATE: number;
  FAN_DELETE: number;
  FAN_MOVED_FROM: number;
  FAN_MOVED_TO: number;
  FAN_MODIFY: number;
  FAN_ATTRIB: number;
  FAN_CLOSE_WRITE: number;
  FAN_ONDIR: number;
}

export const wsys = sys as unknown as WatchBinding;

export type FanRecord =
  | { kind: 'change'; mask: number; dir: Buffer; name: Buffer }
  | { kind: 'overflow' }
  | { kind: 'barrier' }
  | { kind: 'error'; errno: number }
  | { kind: 'created'; dir: Buffer; name: Buffer; born: number }
  | { kind: 'mounts' }
  | { kind: 'root'; dir: Buffer; name: Buffer }
  | { kind: 'dead'; dir: Buffer; name: Buffer };

const HEAD = 16;
const KINDS = [null, 'change', 'overflow', 'barrier', 'error', 'created', 'mounts', 'root', 'dead'] as const;

/**
 * Kinds of the reader thread's records. CREATED follows the change record of a non-directory
 * made: the birth time of the inode the new name gives (createdBorn). MOUNTS: the mount table
 * changed. ROOT: a watched root (dir) is no longer at its path (name: where it is now). DEAD: a
 * file with another name written through one it no longer has (dir/name).
 */
export const FAN_REC = { CHANGE: 1, OVERFLOW: 2, BARRIER: 3, ERROR: 4, CREATED: 5, MOUNTS: 6, ROOT: 7, DEAD: 8 } as const;

/** A CREATED record's birth time in seconds (its errno and mask fields); 1: unknown. */
export function createdBorn(sec: number, nsec: number): number {
  return sec > 1 ? sec + nsec / 1e9 : 1;
}

/**
 * Visits the reader thread's records in place, without an object per record (a burst of
 * changes is tens of thousands of them): kind, mask, errno, and the offsets of the directory's
 * path and of the entry's name in `buf`.
 */
export function forEachFanRecord(
  buf: Buffer,
  visit: (kind: number, mask: number, errno: number, dirStart: number, dirEnd: number, nameEnd: number) => void,
): void {
  for (let o = 0; o + HEAD <= buf.length;) {
    const nameLen = buf.readUInt16LE(o + 2);
    const dirLen = buf.readUInt32LE(o + 8);
    const dirStart = o + HEAD;
    visit(buf[o]!, buf.readUInt32LE(o + 4), buf.readUInt32LE(o + 12), dirStart, dirStart + dirLen, dirStart + dirLen + nameLen);
    o = dirStart + dirLen + nameLen;
  }
}

/** The reader thread's records (native/watch.c: u8 kind, u8, u16 nameLen, u32 mask, u32 dirLen, u32 errno, dir, name). */
export function parseFanRecords(buf: Buffer): FanRecord[] {
  const out: FanRecord[] = [];
  for (let o = 0; o + HEAD <= buf.length;) {
    const kind = KINDS[buf[o]!] ?? 'error';
    const nameLen = buf.readUInt16LE(o + 2);
    const mask = buf.readUInt32LE(o + 4);
    const dirLen = buf.readUInt32LE(o + 8);
    const errno = buf.readUInt32LE(o + 12);
    const dir = buf.subarray(o + HEAD, o + HEAD + dirLen);
    const name = buf.subarray(o + HEAD + dirLen, o + HEAD + dirLen + nameLen);
    o += HEAD + dirLen + nameLen;
    if (kind === 'change') out.push({ kind, mask, dir, name });
    else if (kind === 'root' || kind === 'dead') out.push({ kind, dir, name });
    else if (kind === 'created') out.push({ kind, dir, name, born: createdBorn(errno, mask) });
    else if (kind === 'error') out.push({ kind, errno: errno || 5 });
    else out.push({ kind });
  }
  return out;
}
