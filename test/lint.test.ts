/**
 * The boundaries of the code hold, and the checks that keep them fail when they are broken:
 * eslint (eslint.config.mjs: only src/fs imports node:fs; the pure layers never reach the disk;
 * only src/cli and src/ui print or exit), no cycles between the folders of src/, and the formatter.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { ESLint } from 'eslint';
import * as prettier from 'prettier';
import fs from 'node:fs';
import { cycles, folderGraph, tsFiles, type Graph } from './helpers/layers.js';

const root = path.resolve(import.meta.dirname, '..');
const eslint = new ESLint({ cwd: root });

async function lint(code: string, file: string): Promise<string[]> {
  const [r] = await eslint.lintText(code, { filePath: path.join(root, file) });
  return r!.messages.map((m) => `${m.ruleId}: ${m.message}`);
}

describe('lint: the rules hold on src/', () => {
  it('eslint finds nothing in src/', async () => {
    const results = await eslint.lintFiles(['src/']);
    const found = results.flatMap((r) => r.messages.map((m) => `${path.relative(root, r.filePath)}:${m.line}: ${m.ruleId}: ${m.message}`));
    expect(found).toEqual([]);
    expect(results.length).toBeGreaterThan(100);
  }, 120_000);

  it('no folder of src/ imports, through others, a folder that imports it', () => {
    const g = folderGraph(path.join(root, 'src'));
    expect(g.size).toBeGreaterThan(15);
    expect(g.get('cli')!.has('backup')).toBe(true);
    expect(cycles(g)).toEqual([]);
  });
});

describe('format: prettier (.prettierrc.json) on src/ and test/', () => {
  it('every file is formatted (npm run format writes them)', async () => {
    const options = (await prettier.resolveConfig(path.join(root, 'src', 'x.ts')))!;
    expect(options.printWidth).toBe(160);
    const files = [...tsFiles(path.join(root, 'src')), ...tsFiles(path.join(root, 'test'))];
    expect(files.length).toBeGreaterThan(150);
    const unformatted: string[] = [];
    for (const f of files) {
      if (!(await prettier.check(fs.readFileSync(f, 'utf8'), { ...options, filepath: f }))) unformatted.push(path.relative(root, f));
    }
    expect(unformatted, 'run: npm run format').toEqual([]);
  }, 120_000);

  it('a file that is not formatted fails the check', async () => {
    const options = (await prettier.resolveConfig(path.join(root, 'src', 'x.ts')))!;
    expect(await prettier.check('export const x = {a:1,\n  b:  2}\n', { ...options, filepath: 'src/x.ts' })).toBe(false);
    expect(await prettier.check('export const x = { a: 1, b: 2 };\n', { ...options, filepath: 'src/x.ts' })).toBe(true);
  });
});

describe('lint: a deliberate violation fails', () => {
  it('node:fs imported outside src/fs', async () => {
    expect(await lint("import fs from 'node:fs';\nexport const x = fs.existsSync('/');\n", 'src/backup/probe.ts')).toEqual([
      expect.stringMatching(/^no-restricted-imports: .*only src\/fs touches the disk/),
    ]);
    expect(await lint("import { readFileSync } from 'fs';\nexport const x = readFileSync;\n", 'src/inspect/probe.ts')).toEqual([
      expect.stringMatching(/^no-restricted-imports/),
    ]);
    // allowed where the disk is
    expect(await lint("import fs from 'node:fs';\nexport const x = fs.existsSync('/');\n", 'src/fs/probe.ts')).toEqual([]);
  });

  it('a pure layer reaching the disk through src/fs (the binding, its fs, a helper that reads or writes)', async () => {
    for (const [code, file] of [
      ["import { sys } from '../fs/native.js';\nexport const x = sys.close(3);\n", 'src/plan/probe.ts'],
      ["import * as native from '../fs/native.js';\nexport const x = native.sys;\n", 'src/plan/probe.ts'],
      ["import { fs } from '../fs/disk.js';\nexport const x = fs.existsSync('/');\n", 'src/retention/policy.ts'],
      ["import { readDirAt } from '../fs/entry.js';\nexport const x = readDirAt(3);\n", 'src/time/probe.ts'],
      ["import { removeTree } from '../fs/remove-tree.js';\nexport const x = removeTree;\n", 'src/ui/probe.ts'],
      ["export { sys } from '../fs/native.js';\n", 'src/core/probe.ts'],
    ] as const) {
      const found = await lint(code, file);
      expect(found, `${file}: ${code}`).toEqual([expect.stringMatching(/^no-restricted-imports: .*a pure layer never touches the disk/)]);
    }
    // types and the functions that only compare or name stay theirs; the engine layers keep their doors
    expect(
      await lint("import { sameMeta, type Meta } from '../fs/entry.js';\nexport const x = (a: Meta): boolean => sameMeta(a, a);\n", 'src/plan/probe.ts'),
    ).toEqual([]);
    expect(await lint("import { errnoName } from '../fs/native.js';\nexport const x = errnoName(-2);\n", 'src/plan/probe.ts')).toEqual([]);
    expect(await lint("import { sys } from '../fs/native.js';\nexport const x = sys.close(3);\n", 'src/apply/probe.ts')).toEqual([]);
  });

  it('printing or exiting outside src/cli and src/ui', async () => {
    expect(await lint("export function f(): void {\n  console.log('x');\n}\n", 'src/apply/probe.ts')).toEqual([expect.stringMatching(/^no-console/)]);
    expect(await lint('export function f(): void {\n  process.exit(2);\n}\n', 'src/backup/probe.ts')).toEqual([
      expect.stringMatching(/^no-restricted-syntax: the core never exits/),
    ]);
    expect(await lint("export function f(): void {\n  process.stderr.write('x');\n}\n", 'src/retention/probe.ts')).toEqual([
      expect.stringMatching(/^no-restricted-syntax: the core never prints/),
    ]);
    expect(await lint("export function f(): void {\n  process.stderr.write('x');\n  process.exit(1);\n}\n", 'src/cli/probe.ts')).toEqual([]);
  });

  it('the same by other ways in (a review of issue 19 found these slipped through)', async () => {
    const core = 'src/backup/probe.ts';
    for (const [code, rule] of [
      ["export async function f(): Promise<unknown> {\n  return import('node:fs');\n}\n", /^no-restricted-syntax: only src\/fs touches the disk/],
      ["export async function f(): Promise<unknown> {\n  return import('fs/promises');\n}\n", /^no-restricted-syntax: only src\/fs touches the disk/],
      ['export function f(): void {\n  globalThis.process.exit(1);\n}\n', /^no-restricted-syntax: .*globalThis/],
      ['export function f(): void {\n  const p = process;\n  p.exit(1);\n}\n', /^no-restricted-syntax: .*aliased/],
      ['export function f(): void {\n  const { stdout } = process;\n  stdout.write("x");\n}\n', /^no-restricted-syntax: .*aliased/],
      ["export function f(): void {\n  process['exit'](1);\n}\n", /^no-restricted-syntax: .*process\[/],
      ['export function f(): void {\n  process.abort();\n}\n', /^no-restricted-syntax: the core never exits/],
      ["export function f(): void {\n  const out = process.stdout;\n  out.write('x');\n}\n", /^no-restricted-syntax: the core never prints/],
      ["import { exit } from 'node:process';\nexport const f = (): void => exit(1);\n", /^no-restricted-imports: .*never prints or exits/],
    ] as const) {
      const found = await lint(code, core);
      expect(found.length, code).toBeGreaterThan(0);
      expect(found[0], code).toMatch(rule);
    }
    // env and pid stay the core's to read; src/cli keeps its ways
    expect(await lint('export const f = (): string | undefined => process.env.HOME ?? String(process.pid);\n', core)).toEqual([]);
    expect(await lint("import { exit } from 'node:process';\nexport const f = (): void => exit(1);\n", 'src/cli/probe.ts')).toEqual([]);
    expect(await lint("export async function f(): Promise<unknown> {\n  return import('node:fs');\n}\n", 'src/cli/probe.ts')).toEqual([
      expect.stringMatching(/^no-restricted-syntax/),
    ]);
  });

  // found by an attack: fs.rmSync of a `.last.*.tmp` symlink in an append-only part directory
  // (unlink refused) fell back to rmdir, then read the symlink's target as a directory and
  // deleted what was in it (a published generation's files)
  it('fs.rm or fs.rmSync anywhere in src/, src/fs included', async () => {
    for (const file of ['src/spool/probe.ts', 'src/fs/probe.ts', 'src/cli/probe.ts']) {
      for (const call of ["fs.rmSync('/x', { force: true })", "fs.rmSync('/x', { recursive: true, force: true })", "fs.promises.rm('/x')"]) {
        const code = `import { fs } from '../fs/disk.js';\nexport const f = (): unknown => ${call};\n`;
        const found = await lint(file.startsWith('src/fs/') ? code.replace('../fs/disk.js', './disk.js') : code, file);
        expect(found, `${file}: ${call}`).toContainEqual(expect.stringMatching(/^no-restricted-syntax: fs\.rm\/rmSync can delete through a symlink/));
      }
    }
    expect(await lint("import { removeName } from '../fs/remove-tree.js';\nexport const f = (): void => removeName('/x');\n", 'src/spool/probe.ts')).toEqual(
      [],
    );
  });

  it('a cycle between folders', () => {
    const g: Graph = new Map([
      ['cli', new Set(['backup'])],
      ['backup', new Set(['apply', 'fs'])],
      ['apply', new Set(['fs', 'watch'])],
      ['watch', new Set(['apply'])],
      ['fs', new Set()],
    ]);
    expect(cycles(g)).toEqual([['apply', 'watch']]);
    g.get('fs')!.add('backup');
    expect(cycles(g)).toEqual([['apply', 'backup', 'fs', 'watch']]);
  });
});
