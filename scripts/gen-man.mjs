#!/usr/bin/env node
// Writes man/hardsnap.1 from the command definitions (src/cli/main.ts buildProgram, through
// tsc's output in dist/): run by `npm run build`, so the man page lists exactly the commands
// and options the parser accepts. The package ships it (package.json "man").
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cliModel } from '../dist/cli/main.js';
import { manPage } from '../dist/cli/man-page.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'man', 'hardsnap.1');

const text = manPage(cliModel(), {
  environment: [
    ['HARDSNAP_NOW', 'ISO 8601 date-time with a zone: fixes "now" for every command (a testing aid: the new generation\'s name and every age). A backup whose now is not later than the newest generation is refused.'],
    ['UV_THREADPOOL_SIZE', 'how many threads carry a backup\'s spool operations; unset, backup uses 16 on a network or FUSE file system and the cores plus two (4 to 16) otherwise.'],
    ['TMPDIR', 'where a private, empty directory is made when a path argument that is not UTF-8 does not exist (removed at exit).'],
  ],
  files: [
    ['/etc/hardsnap.yaml', 'the usual place of the configuration file given with --config; hardsnap init prints a documented example.'],
    ['SPOOL/rsync/HOST/PART/GENERATION/', 'a complete generation: a plain copy of the source tree, unchanged files hard-linked to the generation before.'],
    ['SPOOL/rsync/HOST/PART/last', 'relative symlink to the newest complete generation, moved atomically after each backup.'],
    ['SPOOL/rsync/HOST/.hardsnap/runs.jsonl', 'one JSON line per run: the record status reads.'],
    ['SPOOL/rsync/HOST/PART/.hardsnap/', 'manifests (one per generation), pins, trash.'],
  ],
  seeAlso: 'rsync(1), cron(8), systemd.timer(5). The documentation in the package: README.md, docs/CLI.md (options, output, JSON), docs/CONFIG.md, docs/EXIT-CODES.md, docs/OPERATIONS.md, docs/RESTORE.md, docs/FORMAT.md.',
});
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, text);
