import { Option, type Command } from 'commander';
import { VERSION } from '../../core/version.js';
import { UsageError } from '../../core/errors.js';
import { describeProgram } from '../describe.js';
import { SHELLS, completionScript, type Shell } from '../completion-scripts.js';
import type { CliContext } from '../context.js';
import type { CommonOptions } from '../common.js';

export function register(program: Command, ctx: CliContext): void {
  program
    .command('completion')
    .description('print a shell completion script (bash, zsh or fish), generated from the command definitions')
    .argument('[shell]', 'bash, zsh or fish')
    .option('--json', 'print the command definitions the scripts are made from (commands, options, arguments) as JSON')
    .addOption(new Option('--debug', 'show stack traces of errors').hideHelp())
    .addHelpText(
      'after',
      `
Completes the commands, each command's options, and directories or files where an option takes
one (--spool, --to, --config, --exclude-from ...).

Examples:
  source <(hardsnap completion bash)                   # this shell only
  hardsnap completion bash > /etc/bash_completion.d/hardsnap
  hardsnap completion zsh > "\${fpath[1]}/_hardsnap"     # then: autoload -U compinit && compinit
  hardsnap completion fish > ~/.config/fish/completions/hardsnap.fish`,
    )
    .action(async (shell: string | undefined, o: CommonOptions) =>
      ctx.run(o, async (out) => {
        const model = describeProgram(program, VERSION);
        // --json alone: the definitions; with a shell, the shell must be one we know
        if (o.json && shell === undefined) {
          out.json(model);
          return 0;
        }
        if (shell === undefined || !(SHELLS as readonly string[]).includes(shell)) {
          throw new UsageError(shell === undefined ? 'completion needs a shell' : `unknown shell ${JSON.stringify(shell)}`, {
            hint: `one of ${SHELLS.join(', ')}`,
          });
        }
        process.stdout.write(completionScript(model, shell as Shell));
        return 0;
      }),
    );
}
