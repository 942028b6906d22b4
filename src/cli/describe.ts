/**
 * The command line as plain data, read from the commander definitions (main.ts buildProgram):
 * what the man page (scripts/gen-man.mjs) and the shell completions (`hardsnap completion`)
 * are generated from, so that neither can drift from what the parser accepts.
 */
import type { Command, Option } from 'commander';

/** What an option's value is, for completion: a directory, a file, something else, or none. */
export type ValueKind = 'dir' | 'file' | 'value' | 'none';

export interface OptionModel {
  /** as in --help: '-v, --verbose', '--spool <dir>' */
  flags: string;
  long?: string;
  short?: string;
  /** the value's name ('dir' of '<dir>'), when it takes one */
  valueName?: string;
  /** the value may be left out ('--wait [duration]') */
  optionalValue: boolean;
  kind: ValueKind;
  description: string;
  hidden: boolean;
}

export interface ArgumentModel {
  name: string;
  required: boolean;
  description: string;
}

export interface CommandModel {
  name: string;
  /** the usage line after the name ('[options] <A> <B>') */
  usage: string;
  description: string;
  arguments: ArgumentModel[];
  options: OptionModel[];
  /** the text --help prints after the options (exit codes, examples) */
  helpAfter: string;
}

export interface ProgramModel {
  name: string;
  version: string;
  description: string;
  /** the options taken before the command (and after it, by every command that shares them) */
  globals: OptionModel[];
  commands: CommandModel[];
  helpAfter: string;
}

const DIR_VALUES = new Set(['dir']);
const FILE_VALUES = new Set(['file']);

function optionModel(o: Option): OptionModel {
  const value = /[<[]([^>\]]+)[>\]]/.exec(o.flags)?.[1];
  return {
    flags: o.flags,
    ...(o.long ? { long: o.long } : {}),
    ...(o.short ? { short: o.short } : {}),
    ...(value ? { valueName: value } : {}),
    optionalValue: o.optional,
    kind: !value ? 'none' : DIR_VALUES.has(value) ? 'dir' : FILE_VALUES.has(value) ? 'file' : 'value',
    description: o.description,
    hidden: o.hidden,
  };
}

/** The text a command's --help prints after its options (its addHelpText('after', ...)). */
function helpAfter(cmd: Command): string {
  let text = '';
  (cmd as unknown as NodeJS.EventEmitter).emit('afterHelp', { error: false, command: cmd, write: (s: string) => (text += s) });
  return text.replace(/^\n+/, '').trimEnd();
}

export function describeProgram(program: Command, version: string): ProgramModel {
  const commands: CommandModel[] = [];
  for (const c of program.commands) {
    const args = (c as unknown as { registeredArguments: readonly { name(): string; required: boolean; description: string }[] }).registeredArguments;
    commands.push({
      name: c.name(),
      usage: c.usage(),
      description: c.description(),
      arguments: args.map((a) => ({ name: a.name(), required: a.required, description: a.description })),
      options: (c.options as readonly Option[]).map(optionModel),
      helpAfter: helpAfter(c),
    });
  }
  return {
    name: program.name(),
    version,
    description: program.description(),
    globals: (program.options as readonly Option[]).map(optionModel),
    commands,
    helpAfter: helpAfter(program),
  };
}
