/**
 * Which command a command line runs, without loading any of them: bin/hardsnap loads only the
 * part of the program that command needs (src/cli/entry.ts).
 */

/** The shared options that take a value (so that the word after them is not the command). */
const VALUE_OPTIONS = new Set(['--spool', '--host', '--config']);

/** The command of a command line: the first word that is not an option (or its value) before it. */
export function commandOf(args: string[]): string | null {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') return args[i + 1] ?? null;
    if (VALUE_OPTIONS.has(a)) i++;
    else if (!a.startsWith('-') || a === '-') return a;
  }
  return null;
}
