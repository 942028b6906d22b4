// A vitest fixture giving each test a fresh temporary directory, removed afterwards even when
// the test made parts of it read-only.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test as base, onTestFinished } from 'vitest';

export { describe, expect } from 'vitest';

const PREFIX = 'hardsnap-test-';

function makeTmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), PREFIX));
}

/** Remove a test directory: give the owner rwx on every directory first, then rm -rf. */
export function removeTmp(dir: string): void {
  // chmod -R does not follow symlinks met during the walk; errors on odd entries do not matter
  // as long as the rm that follows succeeds.
  spawnSync('chmod', ['-R', 'u+rwx', '--', dir], { stdio: 'ignore' });
  fs.rmSync(dir, { recursive: true, force: true });
}

const leftovers = new Set<string>();
process.on('exit', () => {
  for (const d of leftovers) {
    try {
      removeTmp(d);
    } catch {
      // exiting: nothing left to report to
    }
  }
});

/**
 * A fresh temporary directory for non-fixture use. Inside a test it is removed when the test
 * finishes; elsewhere (beforeAll, module scope) when the process exits.
 */
export function tmpdir(): string {
  const dir = makeTmp();
  try {
    onTestFinished(() => removeTmp(dir));
  } catch {
    leftovers.add(dir);
  }
  return dir;
}

export const test = base.extend<{ tmp: string }>({
  // eslint-disable-next-line no-empty-pattern
  tmp: async ({}, use) => {
    const dir = makeTmp();
    try {
      await use(dir);
    } finally {
      removeTmp(dir);
    }
  },
});
export const it = test;
