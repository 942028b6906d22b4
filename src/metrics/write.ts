/**
 * Writes a metrics file atomically for node_exporter's textfile collector: the text goes to a
 * temporary file in the same directory (whose name does not end in `.prom`, so the collector
 * never reads it half-written), is fsync-ed, and is renamed over the target.
 */
import fs from 'node:fs';
import path from 'node:path';
import { HardsnapError } from '../core/errors.js';

export function writeMetricsFile(file: string, text: string): void {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, 0o644);
    try {
      fs.writeSync(fd, text);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    throw new HardsnapError(code, `cannot write the metrics file ${file} (${code})`, { cause: err, path: file, hint: 'check that its directory exists and is writable' });
  }
}
