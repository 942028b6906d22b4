import type { Command } from 'commander';
import { exampleConfig } from '../../config/example.js';
import type { CliContext } from '../context.js';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('init')
    .description('print a documented example configuration file (YAML) on stdout')
    .addHelpText('after', `
Examples:
  hardsnap init > /etc/hardsnap.yaml && \${EDITOR:-vi} /etc/hardsnap.yaml
  hardsnap backup --config /etc/hardsnap.yaml --dry-run`)
    .action(async () => ctx.run({}, async (out) => {
      out.print(exampleConfig());
      return 0;
    }));
}
