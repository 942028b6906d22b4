/**
 * hardsnap(1), in roff (the man macros), from the command definitions (describe.ts): every
 * command with its synopsis, description, options and the text its --help prints after them
 * (exit codes, examples). scripts/gen-man.mjs writes it to man/hardsnap.1 at build time; the
 * package ships it (package.json "man"), so `man hardsnap` works after `npm install -g`.
 */
import type { CommandModel, OptionModel, ProgramModel } from './describe.js';

/** Text for roff: backslashes and hyphens escaped, no line starting with a control character. */
function esc(s: string): string {
  return s
    .replace(/\\/g, '\\e')
    .replace(/-/g, '\\-')
    .replace(/^([.'])/gm, '\\&$1');
}

function flags(o: OptionModel): string {
  // '--spool <dir>' -> \fB\-\-spool\fR \fIdir\fR
  return o.flags.replace(
    /([^\s,<>[\]]+)|([<[])([^>\]]+)([>\]])|(, )/g,
    (all, name: string | undefined, open: string, value: string, close: string, comma: string) => {
      if (comma) return ', ';
      if (name) return `\\fB${esc(name)}\\fR`;
      return `${open === '[' ? '[' : ''}\\fI${esc(value)}\\fR${close === ']' ? ']' : ''}`;
    },
  );
}

function options(opts: OptionModel[]): string[] {
  const out: string[] = [];
  for (const o of opts) {
    if (o.hidden) continue;
    out.push('.TP', flags(o), esc(o.description));
  }
  return out;
}

/**
 * The text a --help prints after the options: prose (lines that start at the margin) is
 * filled to the reader's width; indented lines (examples, tables, lists) are kept as they are.
 */
function helpText(text: string): string[] {
  const out: string[] = [];
  let mode: 'none' | 'prose' | 'verbatim' = 'none';
  const to = (m: typeof mode) => {
    if (mode === m) return;
    if (mode === 'verbatim') out.push('.fi');
    if (m === 'prose') out.push('.PP');
    if (m === 'verbatim') out.push(mode === 'prose' ? '.PP' : '.PP', '.nf');
    mode = m;
  };
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      to('none');
      continue;
    }
    if (/^\s/.test(line)) {
      to('verbatim');
      out.push(esc(line));
    } else {
      to('prose');
      out.push(esc(line));
    }
  }
  to('none');
  return out;
}

function command(c: CommandModel, m: ProgramModel): string[] {
  const out = [`.SS "${esc(`${m.name} ${c.name} ${c.usage}`).replace(/"/g, '\\(dq')}"`, esc(c.description)];
  if (c.arguments.length) {
    out.push('.PP', 'Arguments:');
    for (const a of c.arguments) out.push('.TP', `\\fI${esc(a.name)}\\fR${a.required ? '' : ' (optional)'}`, esc(a.description));
  }
  const own = c.options.filter((o) => !m.globals.some((g) => g.flags === o.flags));
  if (own.length) {
    out.push('.PP', 'Options:', ...options(own));
  }
  out.push(...helpText(c.helpAfter));
  return out;
}

export interface ManPageExtras {
  /** the ENVIRONMENT section: name, meaning */
  environment: [string, string][];
  /** the FILES section: path, meaning */
  files: [string, string][];
  seeAlso: string;
}

export function manPage(m: ProgramModel, extras: ManPageExtras): string {
  const commands = m.commands.filter((c) => c.name !== 'help');
  const lines = [
    `.\\" Generated from hardsnap's command definitions by scripts/gen-man.mjs; do not edit.`,
    `.TH ${m.name.toUpperCase()} 1 "" "${m.name} ${m.version}" "User Commands"`,
    '.SH NAME',
    `${m.name} \\- ${esc(m.description.split(':')[0]!.replace(/^./, (c) => c.toLowerCase()))}`,
    '.SH SYNOPSIS',
    `.B ${m.name}`,
    '[\\fIglobal options\\fR] \\fIcommand\\fR [\\fIoptions\\fR] [\\fIarguments\\fR]',
    '.br',
    `.B ${m.name}`,
    '\\fBhelp\\fR [\\fIcommand\\fR]',
    '.SH DESCRIPTION',
    esc(m.description),
    '.PP',
    'The commands are:',
    ...commands.flatMap((c) => ['.TP', `\\fB${esc(c.name)}\\fR`, esc(c.description)]),
    '.SH GLOBAL OPTIONS',
    esc(
      'Taken before the command as well as after it (hardsnap --config FILE backup); given in both places, the one after the command wins. --json and --debug hold wherever they are given; -v and -q are one choice.',
    ),
    ...options(m.globals),
    '.SH COMMANDS',
    ...commands.flatMap((c) => command(c, m)),
    '.SH NOTES',
    ...helpText(m.helpAfter),
    '.SH ENVIRONMENT',
    ...extras.environment.flatMap(([k, v]) => ['.TP', `\\fB${esc(k)}\\fR`, esc(v)]),
    '.SH FILES',
    ...extras.files.flatMap(([k, v]) => ['.TP', `\\fI${esc(k)}\\fR`, esc(v)]),
    '.SH SEE ALSO',
    esc(extras.seeAlso),
  ];
  return lines.join('\n') + '\n';
}
