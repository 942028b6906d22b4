import type { Command } from 'commander';
import { exampleConfig } from '../../config/example.js';
import type { CliContext } from '../context.js';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('init')
    .description('print a documented example configuration file (YAML) on stdout')
    .option('--json', 'print it as {"format": 1, "config": "<the YAML text>"}')
    .addHelpText('after', `
Examples:
  hardsnap init > /etc/hardsnap.yaml && \${EDITOR:-vi} /etc/hardsnap.yaml
  hardsnap --config /etc/hardsnap.yaml backup --dry-run`)
    .action(async (o: { json?: boolean }) => ctx.run({ json: o.json }, async (out) => {
      if (o.json) out.json({ config: exampleConfig() });
      else out.print(exampleConfig());
      return 0;
    }));
}
