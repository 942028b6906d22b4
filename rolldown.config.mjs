// The command-line tool as one ES module (plus a chunk for `watch`, loaded only when used), so
// that a run loads one file instead of ~95 modules and their dependencies: importing the module
// tree that tsc emits took ~110 ms before the first line ran, the bundle ~40 ms, on a nightly run
// of ~2 s (docs/PERFORMANCE.md). It bundles tsc's output (dist/, which scripts/ import too);
// bin/hardsnap runs the bundle, and only it is packed. It sits two levels under the root, like
// every module of dist/, so the paths the code finds relative to itself (build/Release for the
// native module, package.json for the version) are the same from either.
import { defineConfig } from 'rolldown';

export default defineConfig({
  // three entries: hardsnap.js says which of the other two a command line needs (src/cli/entry.ts);
  // hardsnap-watch.js is the long-running watcher's, without the other commands' code
  input: { hardsnap: 'dist/cli/entry.js', 'hardsnap-cli': 'dist/cli/main.js', 'hardsnap-watch': 'dist/cli/watch-main.js' },
  platform: 'node',
  // loaded on demand (watch, --progress) with their own dependency trees, and node-gyp-build,
  // which finds the native module relative to the package (src/fs/native.ts); node_modules has them
  external: ['chokidar', 'cli-progress', 'node-gyp-build'],
  // cleanDir: chunk names carry a hash; without it, old chunks would stay and be packed
  // charset ascii, no comments: V8 keeps each module's source in memory, two bytes per character
  // when one is not Latin-1 (an arrow or a dash in a comment made 1.8 MB of a 0.9 MB file); a
  // long-running watcher pays it for its whole life (docs/PERFORMANCE.md#watch-mode)
  output: {
    dir: 'dist/bundle',
    cleanDir: true,
    format: 'esm',
    entryFileNames: '[name].js',
    chunkFileNames: '[name]-[hash].js',
    sourcemap: false,
    charset: 'ascii',
    comments: { legal: true, annotation: false, jsdoc: false },
  },
});
