/**
 * Writes a metrics file atomically for node_exporter's textfile collector: the text goes to a
 * temporary file in the same directory (whose name does not end in `.prom`, so the collector
 * never reads it half-written), is fsync-ed, and is renamed over the target.
 */
import fs from 'node:fs';
import { pathBytes } from '../paths/aliases.js';
import { absoluteBytes } from '../fs/byte-path.js';
import { HardsnapError } from '../core/errors.js';

export function writeMetricsFile(file: string, text: string): void {
  // by its bytes: `file` may be arg text with bytes that are not UTF-8 (--metrics-file)
  const abs = absoluteBytes(pathBytes(file));
  const slash = abs.lastIndexOf(0x2f);
  const tmp = Buffer.concat([abs.subarray(0, slash + 1), Buffer.from('.'), abs.subarray(slash + 1), Buffer.from(`.${process.pid}.tmp`)]);
  try {
    const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, 0o644);
    try {
      fs.writeSync(fd, text);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, abs);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    throw new HardsnapError(code, `cannot write the metrics file ${file} (${code})`, { cause: err, path: file, hint: 'check that its directory exists and is writable' });
  }
}
