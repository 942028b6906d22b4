/**
 * Shell completion scripts for bash, zsh and fish, generated from the command definitions
 * (describe.ts): commands, each command's options, the shared options before the command,
 * directories for `<dir>` values and files for `<file>` values.
 */
import type { CommandModel, OptionModel, ProgramModel } from './describe.js';

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

function visible(opts: OptionModel[]): OptionModel[] {
  return opts.filter((o) => !o.hidden);
}

function names(o: OptionModel): string[] {
  return [o.short, o.long].filter((n): n is string => Boolean(n));
}

function byKind(opts: OptionModel[], kind: OptionModel['kind']): string {
  return visible(opts)
    .filter((o) => o.kind === kind && !o.optionalValue)
    .flatMap(names)
    .join(' ');
}

/** The commands a user types, with `help` (commander's own). */
function commandList(m: ProgramModel): { name: string; description: string }[] {
  return [...m.commands.map((c) => ({ name: c.name, description: c.description })), { name: 'help', description: 'show the help of a command' }];
}

export function completionScript(m: ProgramModel, shell: Shell): string {
  return shell === 'bash' ? bash(m) : shell === 'zsh' ? zsh(m) : fish(m);
}

function bash(m: ProgramModel): string {
  const cmds = commandList(m)
    .map((c) => c.name)
    .join(' ');
  const globals = visible(m.globals).flatMap(names).join(' ');
  const caseArm = (c: CommandModel) => {
    const extra = c.name === 'completion' ? ' bash zsh fish' : '';
    return `    ${c.name}) opts='${visible(c.options).flatMap(names).join(' ')}'; dirs='${byKind(c.options, 'dir')}'; files='${byKind(c.options, 'file')}'; values='${byKind(c.options, 'value')}'; words='${extra.trim()}' ;;`;
  };
  return `# bash completion for ${m.name} ${m.version}, generated from its command definitions.
# Load it with:  source <(${m.name} completion bash)
# or install it: ${m.name} completion bash > /etc/bash_completion.d/${m.name}
_${m.name}() {
  local cur prev cmd='' i w opts dirs files values words
  cur=\${COMP_WORDS[COMP_CWORD]}
  prev=\${COMP_WORDS[COMP_CWORD-1]}
  # the command: the first word that is neither an option nor the value of one before it
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    case $w in
      ${byKind(m.globals, 'dir').split(' ').concat(byKind(m.globals, 'file').split(' '), byKind(m.globals, 'value').split(' ')).filter(Boolean).join('|')}) ((i++)) ;;
      -*) ;;
      *) cmd=$w; break ;;
    esac
  done
  case $cmd in
    '') opts='${globals}'; dirs='${byKind(m.globals, 'dir')}'; files='${byKind(m.globals, 'file')}'; values='${byKind(m.globals, 'value')}'; words='${cmds}' ;;
    help) opts=''; dirs=''; files=''; values=''; words='${cmds}' ;;
${m.commands.map(caseArm).join('\n')}
    *) return 0 ;;
  esac
  if [[ " $dirs " == *" $prev "* ]]; then
    COMPREPLY=($(compgen -d -- "$cur"))
    return 0
  fi
  if [[ " $files " == *" $prev "* ]]; then
    COMPREPLY=($(compgen -f -- "$cur"))
    return 0
  fi
  if [[ " $values " == *" $prev "* ]]; then
    COMPREPLY=()
    return 0
  fi
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
  fi
  return 0
}
complete -o default -F _${m.name} ${m.name}
`;
}

/** A zsh _arguments spec string: single-quoted, with its brackets and colons escaped. */
function zq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function zdesc(s: string): string {
  return s.replace(/([[\]:\\])/g, '\\$1').replace(/\s+/g, ' ');
}

function zspec(o: OptionModel): string[] {
  const action = o.kind === 'dir' ? ':dir:_files -/' : o.kind === 'file' ? ':file:_files' : o.kind === 'value' ? `:${zdesc(o.valueName ?? 'value')}: ` : '';
  const act = o.optionalValue ? `::${zdesc(o.valueName ?? 'value')}: ` : action;
  const repeat = /repeatable/.test(o.description) ? '*' : '';
  const desc = `[${zdesc(o.description)}]`;
  return names(o).map((n) => zq(`${repeat}${n}${desc}${act}`));
}

function zsh(m: ProgramModel): string {
  const cmds = commandList(m)
    .map((c) => zq(`${c.name}:${zdesc(c.description)}`))
    .join(' ');
  const arm = (c: CommandModel) => {
    const specs = visible(c.options).flatMap(zspec);
    const args =
      c.name === 'completion' ? [zq('1:shell:(bash zsh fish)')] : c.name === 'help' ? [] : c.arguments.map((a, i) => zq(`${i + 1}:${zdesc(a.name)}: `));
    return `      (${c.name})\n        _arguments -s ${[...specs, ...args].join(' \\\n          ')}\n        ;;`;
  };
  return `#compdef ${m.name}
# zsh completion for ${m.name} ${m.version}, generated from its command definitions.
# Load it with:  source <(${m.name} completion zsh)
# or install it as _${m.name} in a directory of $fpath.
_${m.name}() {
  local curcontext="$curcontext" state line ret=1
  local -a commands
  commands=(${cmds})
  _arguments -C -s ${visible(m.globals).flatMap(zspec).join(' \\\n    ')} \\
    '1:command:->command' '*::argument:->argument' && ret=0
  case $state in
    (command)
      _describe -t commands '${m.name} command' commands && ret=0
      ;;
    (argument)
      case $words[1] in
${m.commands.map(arm).join('\n')}
      (help)
        _describe -t commands '${m.name} command' commands
        ;;
      esac
      ;;
  esac
  return ret
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  _${m.name} "$@"
else
  compdef _${m.name} ${m.name}
fi
`;
}

/** A fish single-quoted string. */
function fq(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

function fishOption(cond: string, o: OptionModel, name: string): string {
  const parts = [`complete -c ${name} -n ${fq(cond)}`];
  if (o.long) parts.push(`-l ${o.long.replace(/^--/, '')}`);
  if (o.short) parts.push(`-s ${o.short.replace(/^-/, '')}`);
  if (o.kind === 'dir') parts.push(`-r -f -a ${fq('(__fish_complete_directories)')}`);
  else if (o.kind === 'file') parts.push('-r -F');
  else if (o.kind === 'value' && !o.optionalValue) parts.push('-r -f');
  parts.push(`-d ${fq(o.description)}`);
  return parts.join(' ');
}

function fish(m: ProgramModel): string {
  const all = commandList(m)
    .map((c) => c.name)
    .join(' ');
  const lines = [
    `# fish completion for ${m.name} ${m.version}, generated from its command definitions.`,
    `# Load it with:  ${m.name} completion fish | source`,
    `# or install it: ${m.name} completion fish > ~/.config/fish/completions/${m.name}.fish`,
    `complete -c ${m.name} -f`,
    ...commandList(m).map((c) => `complete -c ${m.name} -n ${fq(`not __fish_seen_subcommand_from ${all}`)} -a ${c.name} -d ${fq(c.description)}`),
    ...visible(m.globals).map((o) => fishOption(`not __fish_seen_subcommand_from ${all}`, o, m.name)),
    `complete -c ${m.name} -n ${fq('__fish_seen_subcommand_from help')} -a ${fq(all)}`,
    `complete -c ${m.name} -n ${fq('__fish_seen_subcommand_from completion')} -a ${fq('bash zsh fish')}`,
  ];
  for (const c of m.commands) {
    for (const o of visible(c.options)) lines.push(fishOption(`__fish_seen_subcommand_from ${c.name}`, o, m.name));
  }
  return lines.join('\n') + '\n';
}
