// The linter's rules are the code's boundaries (docs/DESIGN.md, "Layers"):
// - only src/fs touches the disk: node:fs is imported there and nowhere else in src/;
// - only src/cli (and the terminal helpers of src/ui it drives) prints or exits: no console,
//   process.exit or direct writes to stdout/stderr in the core.
// test/lint.test.ts shows each rule failing on a deliberate violation.
import tseslint from 'typescript-eslint';

const noDisk = {
  paths: [
    { name: 'node:fs', message: 'only src/fs touches the disk: use src/fs/disk.ts (or a helper of src/fs)' },
    { name: 'fs', message: 'only src/fs touches the disk: use src/fs/disk.ts (or a helper of src/fs)' },
    { name: 'node:fs/promises', message: 'only src/fs touches the disk' },
    { name: 'fs/promises', message: 'only src/fs touches the disk' },
  ],
};

const noPrint = [
  { selector: "MemberExpression[object.name='process'][property.name='exit']", message: 'the core never exits: throw a HardsnapError (src/core/errors.ts); src/cli exits' },
  { selector: "MemberExpression[object.object.name='process'][object.property.name=/^(stdout|stderr)$/][property.name='write']", message: 'the core never prints: report through the events it is given; src/cli prints' },
];

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
      'no-restricted-syntax': ['error', ...noPrint],
    },
  },
  { files: ['src/fs/**/*.ts'], rules: { 'no-restricted-imports': 'off' } },
  { files: ['src/cli/**/*.ts', 'src/ui/**/*.ts'], rules: { 'no-console': 'off', 'no-restricted-syntax': 'off' } },
);
