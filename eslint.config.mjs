// The linter's rules are the code's boundaries (docs/DESIGN.md, "Layers"):
// - only src/fs touches the disk: node:fs is imported there and nowhere else in src/;
// - only src/cli (and the terminal helpers of src/ui it drives) prints or exits: no console,
//   process.exit/abort or process.stdout/stderr in the core, nor by another way in (node:process,
//   process[...], an alias or destructuring of process, globalThis.process, import('node:fs')).
// test/lint.test.ts shows each rule failing on a deliberate violation.
// Not covered (docs/DESIGN.md, "Layers"): the native binding (src/fs/native.ts `sys`) and
// src/fs/disk.ts's `fs` are imported by the core, which so reaches the disk through src/fs
// but not only through its helpers.
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
      'no-restricted-syntax': ['error', ...noPrint, noDynamicDisk],
    },
  },
  { files: ['src/fs/**/*.ts'], rules: { 'no-restricted-imports': 'off', 'no-restricted-syntax': ['error', ...noPrint] } },
  {
    files: ['src/cli/**/*.ts', 'src/ui/**/*.ts'],
    rules: { 'no-console': 'off', 'no-restricted-syntax': ['error', noDynamicDisk], 'no-restricted-imports': ['error', { paths: noDisk.paths.slice(0, 4) }] },
  },
);
