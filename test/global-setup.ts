// Before any test: what the tests need from the machine (scripts/prerequisites, the one list),
// so that a machine without, say, rsync fails here with one line naming the missing tools and
// the command that installs them, instead of in dozens of tests with `spawnSync rsync ENOENT`.
// `npm run test:all` installs them first (as root).
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export default function setup(): void {
  const r = spawnSync(path.join(root, 'scripts', 'prerequisites.sh'), [], { encoding: 'utf8' });
  if (r.status !== 0) {
    // one line and exit 1: a thrown error would bury it under vitest's stack and code frame
    const why = (r.stderr || r.stdout || String(r.error)).trim();
    process.stderr.write(`\n${why}; or, as root, \`npm run test:all\` installs them and runs every test\n\n`);
    process.exit(1);
  }
}
