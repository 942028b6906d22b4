// rsync as an independent oracle of "these two trees are identical".
import { spawnSync } from 'node:child_process';

/**
 * Differences between src and dst as rsync sees them: a dry run of
 * `rsync -aHn --delete --checksum --itemize-changes --numeric-ids --modify-window=-1 SRC/ DST/`
 * (--checksum compares content even when size and mtime agree; --modify-window=-1 compares
 * mtimes to the nanosecond; --delete reports entries only in dst as `*deleting`).
 * Returns rsync's output lines; empty means identical. Throws if rsync is missing or fails.
 */
export function rsyncDiff(src: string, dst: string): string[] {
  const args = [
    '-aHn',
    '--delete',
    '--checksum',
    '--itemize-changes',
    '--numeric-ids',
    '--modify-window=-1',
    src.replace(/\/*$/, '/'),
    dst.replace(/\/*$/, '/'),
  ];
  const r = spawnSync('rsync', args, { encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    throw new Error(
      code === 'ENOENT'
        ? 'rsyncDiff: rsync is not installed (apt-get install rsync); it is the tests\' oracle'
        : `rsyncDiff: could not run rsync: ${r.error.message}`,
      { cause: r.error },
    );
  }
  if (r.status !== 0) {
    throw new Error(
      `rsyncDiff: rsync ${args.join(' ')} exited with ${r.status ?? r.signal}: ${r.stderr.trim()}`,
    );
  }
  return r.stdout.split('\n').filter((l) => l !== '');
}
