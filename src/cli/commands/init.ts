import type { Command } from 'commander';
import { exampleConfig } from '../../config/example.js';
import { initSpool, type InitOutcome } from '../../check/init-spool.js';
import { SPOOL_MARKER } from '../../spool/marker.js';
import type { OutputOptions } from '../../ui/output.js';
import type { CliContext } from '../context.js';
import { addCommon } from '../common.js';

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
  addCommon(
    program
      .command('init')
      .description(
        'with --spool DIR: make a new spool (the only command that creates one); without: print a documented example configuration file (YAML) on stdout',
      )
      .addHelpText(
        'after',
        `
A backup never creates its spool: a spool that does not exist, or a directory without the
spool's marker (${SPOOL_MARKER}), is what an unmounted file system looks like, and every command
refuses it (exit 2). 'init --spool' is the explicit step that makes one; on a spool it does
nothing (exit 0). Spools made by earlier versions are recognised and marked on first use.

Exit codes: 0 made (or already a spool); 1 bad usage, or DIR is not empty and not a spool;
2 the file system cannot hold backups (hard links, symlinks or rename fail; see 'hardsnap check').

Examples:
  hardsnap init --spool /var/backups/hs
  hardsnap init > /etc/hardsnap.yaml && \${EDITOR:-vi} /etc/hardsnap.yaml
  hardsnap --config /etc/hardsnap.yaml backup --dry-run`,
      )
      .action(async (o: InitOptions) =>
        ctx.run(o, async (out) => {
          if (o.spool === undefined) {
            if (o.json) out.json({ config: exampleConfig() });
            else out.print(exampleConfig());
            return 0;
          }
          const r = initSpool(o.spool, (m) => out.warn(m));
          if (o.json) out.json({ spool: o.spool, outcome: r });
          else out.summary(`hardsnap: ${SAID[r]} ${o.spool}`); // on a terminal or with --verbose
          return 0;
        }),
      ),
  );
}
