/** The scan record (manifest format 2 header) of a part's newest complete generation. */
import { fs } from '../fs/disk.js';
import path from 'node:path';
import { readManifestHeader } from '../manifest/reader.js';
import type { ScanRecord } from '../manifest/writer.js';
import { manifestPath } from '../spool/layout.js';

const cache = new Map<string, { gen: string; scan: ScanRecord | null }>();

/** The scan record of the generation `last` points to; null when there is none or it has none. */
export function lastScan(partDirPath: string): ScanRecord | null {
  let gen: string;
  try {
    gen = path.basename(fs.readlinkSync(path.join(partDirPath, 'last')));
  } catch {
    return null;
  }
  const hit = cache.get(partDirPath);
  if (hit?.gen === gen) return hit.scan;
  let scan: ScanRecord | null = null;
  try {
    scan = readManifestHeader(manifestPath(partDirPath, gen), { generation: gen }).scan ?? null;
  } catch {
    scan = null;
  }
  cache.set(partDirPath, { gen, scan });
  return scan;
}

/**
 * Journal entries older than this (monotonic µs) describe changes the newest generation's scan
 * already saw; null when unknown (another boot, no record).
 */
export function pruneBefore(partDirPath: string, boot: string | null): number | null {
  const s = lastScan(partDirPath);
  return s && boot && s.boot === boot ? s.startMono : null;
}
