// The package as a user gets it. `npm pack` ships prebuilt native modules for linux-x64 and
// linux-arm64 (scripts/prebuild.sh, package.json's prepack), so that installing it compiles
// nothing: a mail server needs no build-essential. The tests pack it as `npm pack` does, check
// each prebuilt module (its machine, the glibc it needs, that it loads and works in a Node.js of
// that machine, under qemu for the other one), install the tarball where no C toolchain can run
// and back up with the installed hardsnap; then the fallback (no prebuilt module fits: the
// install compiles one), and installs with scripts off (npm 12's default, docs/RELEASE.md).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll } from 'vitest';
import { describe, expect, test, tmpdir } from './helpers/fixture.js';
import { foreignNode, OTHER_NODE_VERSIONS, registryNode } from './helpers/node-dist.js';
import { REPO_ROOT } from './helpers/run.js';
import { makeTree } from './helpers/tree.js';

/** Node.js's headers for node-gyp without a download, when the machine has them (scripts/nodedir.sh) */
const NODEDIR = spawnSync(path.join(REPO_ROOT, 'scripts', 'nodedir.sh'), { encoding: 'utf8' }).stdout.trim();

function sh(cmd: string, args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}) {
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd ?? REPO_ROOT,
    encoding: 'utf8',
    timeout: 300_000,
    env: { ...process.env, ...(NODEDIR ? { npm_config_nodedir: NODEDIR } : {}), ...opts.env },
  });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}`, stdout: r.stdout, stderr: r.stderr };
}

interface Pkg {
  version: string;
  engines?: { node?: string };
  bin: Record<string, string>;
  scripts: Record<string, string>;
  files: string[];
}
const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as Pkg;

/** The machines the package has prebuilt modules for, and how to reach each from this one. */
const MACHINES = {
  x64: { triple: 'x86_64-linux-gnu', elf: 'x86-64', qemu: 'qemu-x86_64-static' },
  arm64: { triple: 'aarch64-linux-gnu', elf: 'ARM aarch64', qemu: 'qemu-aarch64-static' },
} as const;
type Arch = keyof typeof MACHINES;
/** The oldest glibc Node.js 20 runs on (RHEL 8); scripts/prebuild.sh holds the same floor. */
const GLIBC_FLOOR = '2.28';
const prebuilt = (arch: Arch) => `prebuilds/linux-${arch}/hardsnap.napi.glibc.node`;

let work: string; // the tarball, and its contents unpacked
let tgz: string;
let files: string[];

beforeAll(() => {
  // what `npm pack` runs (prepack, pack, postpack), with --ignore-scripts for the pack itself:
  // its prepare would rebuild dist/ under other test files that are running bin/hardsnap
  expect(pkg.scripts).toMatchObject({ prepack: 'scripts/prebuild.sh', postpack: 'rm -rf prebuilds', install: 'node-gyp-build' });
  expect(fs.existsSync(path.join(REPO_ROOT, 'dist/bundle/hardsnap.js')), 'run `npm run build` first').toBe(true);
  work = tmpdir();
  try {
    const pre = sh('scripts/prebuild.sh', []);
    expect(pre.code, pre.out).toBe(0);
    const pack = sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work]);
    expect(pack.code, pack.out).toBe(0);
    const info = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as { filename: string; files: { path: string }[] }[];
    files = info[0]!.files.map((f) => f.path);
    tgz = path.join(work, info[0]!.filename);
  } finally {
    fs.rmSync(path.join(REPO_ROOT, 'prebuilds'), { recursive: true, force: true });
  }
  const x = sh('tar', ['xzf', tgz, '-C', work]);
  expect(x.code, x.out).toBe(0);
}, 300_000);

/** `npm install -g` of a tarball into its own prefix; the installed hardsnap. */
function install(tarball: string, prefix: string, flags: string[] = []) {
  const r = sh('npm', ['install', '-g', '--prefer-offline', '--no-audit', '--no-fund', ...flags, '--prefix', prefix, tarball], { cwd: path.dirname(prefix) });
  return { ...r, bin: path.join(prefix, 'bin', 'hardsnap'), dir: path.join(prefix, 'lib', 'node_modules', 'hardsnap') };
}

/**
 * A spool as the README makes one (`hardsnap init --spool`); before that command exists on this
 * branch, a directory (what a backup made itself).
 */
function newSpool(bin: string, spool: string): void {
  if (sh(bin, ['init', '--spool', spool]).code !== 0) fs.mkdirSync(spool);
}

/** A backup of a small tree with `bin`, and what it published. */
function backupWith(bin: string, tmp: string): void {
  const src = path.join(tmp, 'src');
  makeTree(src, { 'etc/hosts': '127.0.0.1 localhost\n', 'etc/motd': 'hello\n' });
  const spool = path.join(tmp, 'spool');
  newSpool(bin, spool);
  const b = sh(bin, ['backup', '--spool', spool, '--host', 'h', '--part', `etc=${src}`], { cwd: tmp, env: { HARDSNAP_NOW: '2026-01-01T03:00:00Z' } });
  expect(b.code, b.out).toBe(0);
  expect(b.out).toBe('');
  const gen = path.join(spool, 'rsync', 'h', 'etc', '2026-01-01T030000Z');
  expect(fs.readFileSync(path.join(gen, 'etc', 'motd'), 'utf8')).toBe('hello\n');
  expect(fs.readlinkSync(path.join(spool, 'rsync', 'h', 'etc', 'last'))).toBe('2026-01-01T030000Z');
}

describe('npm pack', () => {
  test('the package holds the bundle, the bin, prebuilt modules for linux-x64 and linux-arm64, the native sources and docs, nothing else', () => {
    expect(pkg.engines?.node).toMatch(/^>=\s*20/);
    expect(fs.readFileSync(path.join(REPO_ROOT, pkg.bin.hardsnap!), 'utf8')).toMatch(/^#!\/usr\/bin\/env (-S )?node( --[a-z-]+(=\d+)?)*\n/); // -S: node's start-up flags (coreutils >= 8.30)
    // the bundle only (rolldown.config.mjs): tsc's module tree is for tests and typechecks
    const allowed =
      /^(dist\/bundle\/[\w-]+\.js|bin\/hardsnap|bin\/package\.json|man\/hardsnap\.1|native\/[\w-]+\.[ch]|binding\.gyp|prebuilds\/linux-(x64|arm64)\/hardsnap\.napi\.glibc\.node|docs\/.*\.md|README\.md|LICENSE|package\.json)$/;
    expect(files.filter((f) => !allowed.test(f))).toEqual([]);
    expect(files).toEqual(
      expect.arrayContaining([
        'bin/hardsnap',
        'bin/package.json',
        'dist/bundle/hardsnap.js',
        'man/hardsnap.1',
        'native/hardsnap.c',
        'native/glibc-compat.h',
        'binding.gyp',
        'package.json',
        prebuilt('x64'),
        prebuilt('arm64'),
      ]),
    );
    expect(files.some((f) => f.startsWith('src/') || f.startsWith('test/') || f.startsWith('build/'))).toBe(false);
    // postpack: no prebuilt module stays in the checkout, where it could be older than native/
    expect(fs.existsSync(path.join(REPO_ROOT, 'prebuilds'))).toBe(false);
  });

  test.for(Object.keys(MACHINES) as Arch[])(
    'the prebuilt linux-%s module is a shared object for that machine, needs glibc <= 2.28, and works in the Node.js versions of that machine',
    (arch, { expect }) => {
      const m = MACHINES[arch];
      const file = path.join(work, 'package', prebuilt(arch));
      expect(sh('file', ['-b', file]).stdout).toMatch(new RegExp(`^ELF 64-bit LSB shared object, ${m.elf},`));
      // every versioned glibc symbol it needs, e.g. fstatat64@GLIBC_2.33 without native/glibc-compat.h
      const syms = sh('readelf', ['-W', '--dyn-syms', file]).stdout;
      const needs = [...syms.matchAll(/\S+@GLIBC_([\d.]+)/g)].map((x) => ({ sym: x[0], v: x[1]!.split('.').map(Number) }));
      expect(needs.length).toBeGreaterThan(10);
      const [fm, fn] = GLIBC_FLOOR.split('.').map(Number) as [number, number];
      expect(needs.filter(({ v }) => v[0]! > fm || (v[0] === fm && (v[1] ?? 0) > fn)).map((n) => n.sym)).toEqual([]);

      // fstatat, fstat and mknodat (the calls glibc-compat.h routes) against Node.js's own fs:
      // on this machine in this Node.js and the others scripts/test-all.sh tests (a Node-API
      // module serves them all), on the other one in its Node.js 20 under qemu
      const check = path.join(REPO_ROOT, 'test', 'helpers', 'native-check.cjs');
      const runs =
        arch === process.arch
          ? [process.execPath, ...OTHER_NODE_VERSIONS.map((v) => path.join(registryNode(v), 'node'))].map((node) => [node])
          : [[m.qemu, '-L', `/usr/${m.triple}`, foreignNode(arch, '20', tmpdir())]];
      for (const [cmd, ...args] of runs) {
        const r = sh(cmd!, [...args, check, file, tmpdir()]);
        expect(r.code, `${cmd} ${args.join(' ')}: ${r.out}`).toBe(0);
        expect(r.stdout).toMatch(new RegExp(`^ok ${arch} \\d+\\n$`));
      }
    },
  );
});

describe('npm install of the packed tarball', () => {
  test('where no C toolchain can run (cc, gcc, g++, make hidden, cc1 gone), it compiles nothing and the installed hardsnap runs a backup', ({ tmp }) => {
    // a mount namespace (root: unshare -m; otherwise one of its own user namespace too) where
    // every compiler driver and make answer "no C toolchain here" and gcc's back end is gone
    const deny = path.join(tmp, 'no-toolchain');
    fs.writeFileSync(deny, '#!/bin/sh\necho "$0: no C toolchain here (hidden by the test)" >&2\nexit 127\n', { mode: 0o755 });
    const prefix = path.join(tmp, 'prefix');
    const script = `
      set -e
      for f in /usr/bin/cc /usr/bin/c++ /usr/bin/cpp /usr/bin/make /usr/bin/*gcc* /usr/bin/*g++* /usr/bin/*-cc; do
        [ -e "$f" ] && mount --bind '${deny}' "$f"
      done
      for d in /usr/lib/gcc /usr/libexec/gcc; do [ -d "$d" ] && mount -t tmpfs none "$d"; done
      for c in cc gcc g++ make; do ! "$c" --version >/dev/null 2>&1 || { echo "$c still runs"; exit 9; }; done
      for g in /usr/bin/*-linux-gnu-gcc-[0-9]*; do
        ! printf 'int main(void) { return 0; }\\n' | "$g" -x c - -o '${tmp}/a.out' 2>/dev/null || { echo "$g still compiles"; exit 9; }
      done
      echo toolchain hidden
      npm install -g --prefer-offline --no-audit --no-fund --prefix '${prefix}' '${tgz}'
    `;
    const r = sh('unshare', [process.getuid?.() === 0 ? '-m' : '-rm', 'sh', '-c', script], { cwd: tmp });
    expect(r.code, r.out).toBe(0);
    expect(r.stdout).toMatch(/^toolchain hidden$/m);
    const dir = path.join(prefix, 'lib', 'node_modules', 'hardsnap');
    expect(fs.existsSync(path.join(dir, 'build')), 'the install compiled the module').toBe(false);
    expect(fs.existsSync(path.join(dir, prebuilt(process.arch as Arch)))).toBe(true);

    const bin = path.join(prefix, 'bin', 'hardsnap');
    const v = sh(bin, ['--version'], { cwd: tmp });
    expect(v.code, v.out).toBe(0);
    expect(v.stdout.trim()).toBe(pkg.version);
    expect(v.stderr).toBe('');
    // `man hardsnap` finds the page npm linked from the package's "man" field
    expect(fs.readFileSync(path.join(prefix, 'share', 'man', 'man1', 'hardsnap.1'), 'utf8')).toContain('.TH HARDSNAP 1');
    backupWith(bin, tmp);
  });

  test('with install scripts off (--ignore-scripts; npm 12 runs none that was not allowed), the prebuilt module serves all the same', ({ tmp }) => {
    const i = install(tgz, path.join(tmp, 'prefix'), ['--ignore-scripts']);
    expect(i.code, i.out).toBe(0);
    backupWith(i.bin, tmp);
  });

  test("--allow-scripts=<the tarball's absolute path> (docs/INSTALL.md) lets the install script run, without the unreviewed-scripts warning", ({ tmp }) => {
    // npm >= 11.16 matches a local tarball by its absolute path, not by the name its own warning
    // suggests (--allow-scripts=hardsnap is still warned about, and npm 12 blocks the script)
    const i = install(tgz, path.join(tmp, 'prefix'), [`--allow-scripts=${tgz}`]);
    expect(i.code, i.out).toBe(0);
    expect(i.out).not.toMatch(/install-scripts|allowScripts/);
    expect(sh(i.bin, ['--version']).stdout.trim()).toBe(pkg.version);
  });

  test('where no prebuilt module fits, the install compiles one with node-gyp; with scripts off, hardsnap says in one line how to build it', ({ tmp }) => {
    // the same package without its prebuilds/: a machine that none of them fits
    const bare = path.join(tmp, 'bare');
    fs.cpSync(path.join(work, 'package'), path.join(bare, 'package'), { recursive: true });
    fs.rmSync(path.join(bare, 'package', 'prebuilds'), { recursive: true });
    const bareTgz = path.join(tmp, 'hardsnap-bare.tgz');
    expect(sh('tar', ['czf', bareTgz, '-C', bare, 'package']).code).toBe(0);

    const built = install(bareTgz, path.join(tmp, 'built'));
    expect(built.code, built.out).toBe(0);
    expect(fs.existsSync(path.join(built.dir, 'build', 'Release', 'hardsnap.node'))).toBe(true);
    backupWith(built.bin, tmp);

    const none = install(bareTgz, path.join(tmp, 'none'), ['--ignore-scripts']);
    expect(none.code, none.out).toBe(0);
    const r = sh(none.bin, ['--version'], { cwd: tmp });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      /^hardsnap: error: hardsnap's native module was not built, and no prebuilt one fits this machine \(No native build was found for platform=linux arch=\w+ .*\): build it with `npm rebuild -g --allow-scripts=hardsnap hardsnap` .*\n$/,
    );
    // and the command it names does build it
    const rebuild = sh('npm', ['rebuild', '-g', '--allow-scripts=hardsnap', '--prefix', path.join(tmp, 'none'), 'hardsnap'], { cwd: tmp });
    expect(rebuild.code, rebuild.out).toBe(0);
    expect(fs.existsSync(path.join(none.dir, 'build', 'Release', 'hardsnap.node'))).toBe(true);
    expect(sh(none.bin, ['--version']).stdout.trim()).toBe(pkg.version);
  });
});
