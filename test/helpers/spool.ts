// A backup never creates its spool (an unmounted NFS share must not be filled on the root
// disk): tests make one the documented way, `hardsnap init --spool DIR`, here in-process (the
// same core function, without a Node start per test).
import fs from 'node:fs';
import { initSpool } from '../../src/check/init-spool.js';
import { MARKER_FORMAT, SPOOL_MARKER } from '../../src/spool/marker.js';

/** Makes a spool at `dir` (created, probed, marked) and returns `dir`; a no-op on a spool. */
export function makeSpool(dir: string): string {
  initSpool(dir);
  return dir;
}

/**
 * A spool at a path given as bytes (a name that is not UTF-8): the directory and the marker
 * `init` would leave (without init's file-system probe, which tests of paths do not need).
 */
export function makeSpoolAt(dir: string | Buffer): string | Buffer {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const marker = Buffer.concat([Buffer.isBuffer(dir) ? dir : Buffer.from(dir), Buffer.from(`/${SPOOL_MARKER}`)]);
  fs.writeFileSync(marker, JSON.stringify({ hardsnap: 'spool', format: MARKER_FORMAT, created: new Date().toISOString(), tool: 'test' }) + '\n');
  return dir;
}
