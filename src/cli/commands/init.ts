import type { Command } from 'commander';
import { exampleConfig } from '../../config/example.js';
import { initSpool, type InitOutcome } from '../../spool/init.js';
import { SPOOL_MARKER } from '../../spool/marker.js';
import type { OutputOptions } from '../../ui/output.js';
import type { CliContext } from '../context.js';

interface InitOptions extends OutputOptions {
  spool?: string;
}

const SAID: Record<InitOutcome, string> = {
  created: 'created the spool',
  initialized: 'made a spool in the empty directory',
  marked: `marked the spool an earlier version made (${SPOOL_MARKER})`,
  exists: 'already a hardsnap spool, nothing to do:',
};

export function register(program: Command, ctx: CliContext): void {
  program
    .command('init')
    .description('with --spool DIR: make a new spool (the only command that creates one); without: print a documented example configuration file (YAML) on stdout')
    .option('--spool <dir>', 'make a spool here: create DIR (or take an existing empty DIR), check its file system (hard links, symlinks, rename), and mark it')
    .option('--json', 'with --spool: machine-readable JSON on stdout')
    .option('-v, --verbose', 'say more (also under cron)')
    .option('-q, --quiet', 'errors only')
    .addHelpText('after', `
A backup never creates its spool: a spool that does not exist, or a directory without the
spool's marker (${SPOOL_MARKER}), is what an unmounted file system looks like, and every command
refuses it (exit 2). 'init --spool' is the explicit step that makes one; on a spool it does
nothing (exit 0). Spools made by earlier versions are recognised and marked on first use.

Exit codes: 0 made (or already a spool); 1 bad usage, or DIR is not empty and not a spool;
2 the file system cannot hold backups (hard links, symlinks or rename fail; see 'hardsnap check').

Examples:
  hardsnap init --spool /var/backups/hs
  hardsnap init > /etc/hardsnap.yaml && \${EDITOR:-vi} /etc/hardsnap.yaml
  hardsnap backup --config /etc/hardsnap.yaml --dry-run`)
    .action(async (o: InitOptions) => ctx.run(o, async (out) => {
      if (o.spool === undefined) {
        out.print(exampleConfig());
        return 0;
      }
      const r = initSpool(o.spool, (m) => out.warn(m));
      if (o.json) out.json({ spool: o.spool, outcome: r });
      else out.summary(`hardsnap: ${SAID[r]} ${o.spool}`); // on a terminal or with --verbose
      return 0;
    }));
}
