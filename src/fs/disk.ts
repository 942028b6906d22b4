/**
 * node:fs for the rest of the code. src/fs is the one door to the disk: outside it nothing
 * imports node:fs (the lint rule `no-restricted-imports` in eslint.config.mjs), so every disk
 * access is either one of src/fs's helpers (atomic writes, reads that may find nothing,
 * directory scans by descriptor, tree removal, the native calls) or goes through this
 * re-export, where a reviewer sees it. Prefer a helper where one fits.
 */
export { default as fs } from 'node:fs';
export type { Dirent, Stats, StatsFs, FSWatcher } from 'node:fs';
