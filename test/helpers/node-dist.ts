// Node.js builds from the npm registry (the node-linux-<arch> packages: the official binaries,
// no install script), for running hardsnap on other Node.js versions and machines. npm keeps
// them in its cache: each is downloaded once.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from './run.js';

/** The Node.js majors besides this one that scripts/test-all.sh runs the suite's subset on. */
export const OTHER_NODE_VERSIONS: string[] = (() => {
  const m = /^NODE_VERSIONS=\(([^)]*)\)$/m.exec(fs.readFileSync(path.join(REPO_ROOT, 'scripts', 'test-all.sh'), 'utf8'));
  if (!m) throw new Error('scripts/test-all.sh has no NODE_VERSIONS=(...) line');
  return m[1]!.trim().split(/\s+/);
})();

/** The directory holding `node` of this machine's Node.js `version` (a major, or exact). */
export function registryNode(version: string): string {
  const r = spawnSync('npm', ['exec', '--yes', `--package=node-linux-${process.arch}@${version}`, '-c', 'command -v node'], {
    encoding: 'utf8',
    timeout: 300_000,
  });
  const bin = r.stdout.trim().split('\n').pop();
  if (r.status !== 0 || !bin) throw new Error(`npm exec --package=node-linux-${process.arch}@${version} failed: ${r.stderr.trim()}`);
  return path.dirname(fs.realpathSync(bin));
}

/**
 * `node` of another machine's Node.js `version`, unpacked into `dir` (npm pack: npm would not
 * install a package for another CPU).
 */
export function foreignNode(arch: string, version: string, dir: string): string {
  const p = spawnSync('npm', ['pack', '--silent', `node-linux-${arch}@${version}`, '--pack-destination', dir], { encoding: 'utf8', timeout: 300_000 });
  const tgz = p.stdout.trim().split('\n').pop();
  if (p.status !== 0 || !tgz) throw new Error(`npm pack node-linux-${arch}@${version} failed: ${p.stderr.trim()}`);
  const x = spawnSync('tar', ['xzf', path.join(dir, tgz), '-C', dir, 'package/bin/node'], { encoding: 'utf8' });
  if (x.status !== 0) throw new Error(`tar: ${x.stderr.trim()}`);
  return path.join(dir, 'package', 'bin', 'node');
}
