// The linter's rules are the code's boundaries (docs/DESIGN.md, "Layers"):
// - only src/fs touches the disk: node:fs is imported there and nowhere else in src/;
// - only src/cli (and the terminal helpers of src/ui it drives) prints or exits: no console,
//   process.exit/abort or process.stdout/stderr in the core, nor by another way in (node:process,
//   process[...], an alias or destructuring of process, globalThis.process, import('node:fs')).
// - the pure layers (the plan, retention's policy, time, paths, core, the terminal helpers of
//   src/ui, the configuration's schema) never reach the disk at all: of src/fs they import types
//   and the few functions that compare or name (sameMeta, parseXattrs, sameXattrs, errnoName,
//   E), never the native binding (src/fs/native.ts `sys`), src/fs/disk.ts's `fs` or a helper
//   that reads or writes.
// test/lint.test.ts shows each rule failing on a deliberate violation.
// Not covered (docs/DESIGN.md, "Layers"): the engine layers (apply, backup, restore, spool,
// watch, ...) import `sys` and `fs` from src/fs, so they reach the disk through src/fs but not
// only through its helpers.
import tseslint from 'typescript-eslint';

const noDisk = {
  paths: [
    { name: 'node:fs', message: 'only src/fs touches the disk: use src/fs/disk.ts (or a helper of src/fs)' },
    { name: 'fs', message: 'only src/fs touches the disk: use src/fs/disk.ts (or a helper of src/fs)' },
    { name: 'node:fs/promises', message: 'only src/fs touches the disk' },
    { name: 'fs/promises', message: 'only src/fs touches the disk' },
    // exit, abort, stdout and stderr by another way in
    { name: 'node:process', message: 'the core never prints or exits: use the global process for env, pid and the like' },
    { name: 'process', message: 'the core never prints or exits: use the global process for env, pid and the like' },
  ],
};

const noPrint = [
  {
    selector: "MemberExpression[object.name='process'][property.name=/^(exit|abort|reallyExit)$/]",
    message: 'the core never exits: throw a HardsnapError (src/core/errors.ts); src/cli exits',
  },
  {
    selector: "MemberExpression[object.name='process'][property.name=/^(stdout|stderr)$/]",
    message: 'the core never prints: report through the events it is given; src/cli prints',
  },
  // the same by a computed name, an alias or a destructuring, or through globalThis
  { selector: "MemberExpression[object.name='process'][computed=true]", message: 'the core never prints or exits: process[...] hides what is used' },
  {
    selector: "VariableDeclarator[init.name='process'], AssignmentExpression[right.name='process']",
    message: 'the core never prints or exits: process is not aliased or destructured',
  },
  {
    selector: "MemberExpression[object.name='globalThis'][property.name='process']",
    message: 'the core never prints or exits: not through globalThis.process',
  },
];
/** files that decide without touching the disk: tested as tables, they take what they need as values */
const pure = [
  'src/plan/**/*.ts',
  'src/time/**/*.ts',
  'src/paths/**/*.ts',
  'src/core/**/*.ts',
  'src/ui/**/*.ts',
  'src/retention/policy.ts',
  'src/retention/buckets.ts',
  'src/config/schema.ts',
  'src/config/percent.ts',
];
/** of src/fs, a pure layer takes its types and the few functions that only compare or name */
const noDoors = {
  group: ['**/fs/*.js'],
  allowTypeImports: true,
  allowImportNames: ['sameMeta', 'parseXattrs', 'sameXattrs', 'errnoName', 'E'],
  message:
    'a pure layer never touches the disk (of src/fs: types, sameMeta, parseXattrs, sameXattrs, errnoName, E): take what you need as a value from the caller',
};

/**
 * fs.rm and fs.rmSync: when an unlink is refused (EPERM: an append-only or immutable directory)
 * Node.js tries rmdir, then reads the name as a directory, following a symlink, and deletes
 * what is in its target. src/fs/remove-tree.ts: removeName (one name) and removeTree (by
 * descriptor, never following a link, never crossing a mount)
 */
const noRm = {
  selector: "MemberExpression[property.name=/^(rm|rmSync)$/]",
  message: 'fs.rm/rmSync can delete through a symlink when an unlink is refused: use removeName or removeTree (src/fs/remove-tree.ts)',
};

/** a dynamic import() of node:fs (static ones: no-restricted-imports) */
const noDynamicDisk = { selector: 'ImportExpression[source.value=/^(node:)?fs(\\/promises)?$/]', message: 'only src/fs touches the disk' };

export default tseslint.config(
  { ignores: ['dist/**', 'build/**', 'node_modules/**', 'prebuilds/**', 'man/**'] },
  {
    files: ['src/**/*.ts'],
    extends: [tseslint.configs.recommended],
    rules: {
      // the code's own habits (STYLE.md): non-null assertions after a check the compiler cannot follow
      '@typescript-eslint/no-non-null-assertion': 'off',
      // and comma sequences as statements: `if (x) (a = 1), (b = 2);`
      '@typescript-eslint/no-unused-expressions': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      'no-restricted-imports': ['error', noDisk],
      'no-console': 'error',
      'no-restricted-syntax': ['error', ...noPrint, noDynamicDisk, noRm],
    },
  },
  { files: ['src/fs/**/*.ts'], rules: { 'no-restricted-imports': 'off', 'no-restricted-syntax': ['error', ...noPrint, noRm] } },
  {
    files: ['src/cli/**/*.ts', 'src/ui/**/*.ts'],
    rules: { 'no-console': 'off', 'no-restricted-syntax': ['error', noDynamicDisk, noRm], 'no-restricted-imports': ['error', { paths: noDisk.paths.slice(0, 4) }] },
  },
  // (after the src/ui block: a later block's options replace an earlier one's for the same rule)
  { files: pure.filter((g) => !g.startsWith('src/ui/')), rules: { 'no-restricted-imports': ['error', { ...noDisk, patterns: [noDoors] }] } },
  { files: ['src/ui/**/*.ts'], rules: { 'no-restricted-imports': ['error', { paths: noDisk.paths.slice(0, 4), patterns: [noDoors] }] } },
);
