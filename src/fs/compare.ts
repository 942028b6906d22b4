/**
 * Byte comparison of a source file and a file already in the spool, before a content link
 * (`--dedup-verify`). Both are opened O_NOFOLLOW (the spool file through openat2 with
 * RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS below its generation root) and read in 1 MiB chunks.
 */
import fs from 'node:fs';
import { sys } from './native.js';

const CHUNK = 1 << 20;

/** true: same bytes; false: they differ; null: one of them could not be read (the caller copies). */
export function sameContent(srcDirFd: number, srcName: Buffer, spoolRootFd: number, spoolRel: Buffer): boolean | null {
  const a = sys.openat(srcDirFd, srcName, sys.O_RDONLY | sys.O_NOFOLLOW | sys.O_NONBLOCK | sys.O_NOATIME, 0);
  if (a < 0) return null;
  const b = sys.openat2(spoolRootFd, spoolRel, sys.O_RDONLY | sys.O_NOFOLLOW | sys.O_NONBLOCK | sys.O_NOATIME, 0,
    sys.RESOLVE_BENEATH | sys.RESOLVE_NO_SYMLINKS);
  if (b < 0) {
    sys.close(a);
    return null;
  }
  const ba = Buffer.allocUnsafe(CHUNK);
  const bb = Buffer.allocUnsafe(CHUNK);
  try {
    for (let pos = 0; ; ) {
      const na = readFull(a, ba, pos);
      const nb = readFull(b, bb, pos);
      if (na !== nb) return false;
      if (na === 0) return true;
      if (ba.compare(bb, 0, nb, 0, na) !== 0) return false;
      pos += na;
    }
  } catch {
    return null;
  } finally {
    sys.close(a);
    sys.close(b);
  }
}

function readFull(fd: number, buf: Buffer, pos: number): number {
  let done = 0;
  while (done < buf.length) {
    const n = fs.readSync(fd, buf, done, buf.length - done, pos + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}
