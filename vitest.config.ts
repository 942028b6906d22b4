import * as os from 'node:os';
import { defineConfig } from 'vitest/config';

// Two groups, one after the other (sequence.groupOrder):
// - most files, several at a time: each runs its own processes on its own temporary trees and
//   loop devices, so they only share the CPU (one file at a time took the whole suite to CI's
//   15-minute limit on two cores);
// - then the watcher's files, one at a time and alone: a watcher ends its epoch when the mount
//   table changes (docs/WATCH.md), and the other files mount and unmount all the time, so beside
//   them a test that expects the journal to be used finds it refused, rightly.
const serial = ['test/watch*.test.ts'];
const workers = Math.min(4, Math.max(2, os.availableParallelism() - 1));

export default defineConfig({
  test: {
    globalSetup: ['test/global-setup.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 60_000,
    projects: [
      { extends: true, test: { name: 'parallel', include: ['test/**/*.test.ts'], exclude: serial, maxWorkers: workers, sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: 'serial', include: serial, maxWorkers: 1, sequence: { groupOrder: 1 } } },
    ],
  },
});
