/**
 * Writes a metrics file atomically for node_exporter's textfile collector: the text goes to a
 * temporary file in the same directory (whose name does not end in `.prom`, so the collector
 * never reads it half-written), is fsync-ed, and is renamed over the target.
 */
import { writeFileAtomic } from '../fs/atomic-file.js';
import { pathBytes } from '../paths/aliases.js';
import { absoluteBytes } from '../fs/byte-path.js';
import { HardsnapError } from '../core/errors.js';

export function writeMetricsFile(file: string, text: string): void {
  // by its bytes: `file` may be arg text with bytes that are not UTF-8 (--metrics-file)
  // its temporary name starts with a dot and does not end in .prom: the collector skips it
  try {
    writeFileAtomic(absoluteBytes(pathBytes(file)), text);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
    throw new HardsnapError(code, `cannot write the metrics file ${file} (${code})`, {
      cause: err,
      path: file,
      hint: 'check that its directory exists and is writable',
    });
  }
}
