// rsync as an independent oracle of "these two trees are identical".
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Differences between src and dst as rsync sees them: a dry run of
 * `rsync -aHAXn --delete --checksum --itemize-changes --numeric-ids --modify-window=-1 SRC/ DST/`
 * (-A and -X compare POSIX ACLs and extended attributes; --checksum compares content even when
 * size and mtime agree; --modify-window=-1 compares mtimes to the nanosecond; --delete reports
 * entries only in dst as `*deleting`).
 * Returns rsync's output lines; empty means identical. Throws if rsync is missing or fails.
 */
export function rsyncDiff(src: string, dst: string): string[] {
  const args = [
    '-aHAXn',
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
        ? "rsyncDiff: rsync is not installed (apt-get install rsync); it is the tests' oracle"
        : `rsyncDiff: could not run rsync: ${r.error.message}`,
      { cause: r.error },
    );
  }
  if (r.status !== 0) {
    throw new Error(`rsyncDiff: rsync ${args.join(' ')} exited with ${r.status ?? r.signal}: ${r.stderr.trim()}`);
  }
  return r.stdout.split('\n').filter((l) => l !== '');
}

/** The repository's sibling ../shared (the shared checks and bench tools). */
export const SHARED = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../shared');

/**
 * Differences in hard-link structure between src and dst: `../shared/check/links.py SRC COPY`
 * (names that share an inode in one tree must share one in the other, and only those; rsync -H
 * cannot see two names joined in the copy that the source keeps apart). Empty means the same.
 */
export function linksDiff(src: string, dst: string): string[] {
  const r = spawnSync('python3', [path.join(SHARED, 'check', 'links.py'), src, dst], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw new Error(`linksDiff: could not run python3: ${r.error.message}`, { cause: r.error });
  if (r.status !== 0 && r.status !== 1) throw new Error(`linksDiff: links.py exited with ${r.status ?? r.signal}: ${r.stderr.trim()}`);
  return r.stdout.split('\n').filter((l) => l !== '');
}
