// A backup never creates its spool (an unmounted NFS share must not be filled on the root
// disk): tests make one the documented way, `hardsnap init --spool DIR`, here in-process (the
// same core function, without a Node start per test).
import { initSpool } from '../../src/spool/init.js';

/** Makes a spool at `dir` (created, probed, marked) and returns `dir`; a no-op on a spool. */
export function makeSpool(dir: string): string {
  initSpool(dir);
  return dir;
}
