/**
 * Byte comparison of a source file and a file already in the spool, before a content link
 * (`--dedup-verify`): native/hardsnap.c do_samecontent() opens both O_NOFOLLOW (the spool file
 * through openat2 with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS below its generation root) and
 * compares them chunk by chunk, on this thread or on the pool.
 */
import { sys } from './native.js';

/** true: same bytes; false: they differ; null: one of them could not be read (the caller copies). */
export type Sameness = boolean | null;

/** do_samecontent's 1, 0 or -errno as a Sameness */
export function sameness(rc: number): Sameness {
  return rc === 1 ? true : rc === 0 ? false : null;
}

export function sameContent(srcDirFd: number, srcName: Buffer, spoolRootFd: number, spoolRel: Buffer): Sameness {
  return sameness(sys.sameContent(srcDirFd, srcName, spoolRootFd, spoolRel));
}
