/**
 * Starting a program with arguments and environment values that are bytes. Node's spawn takes
 * strings and passes them as UTF-8, so a hook command or a spool path that is not UTF-8 would
 * reach the child with U+FFFD in it. An argument or value given as arg text with such bytes
 * (src/paths/arg-text.ts) is passed through /bin/sh instead: each as `\0ooo` escapes, which
 * `printf %b` turns back into the exact bytes, then `exec` of the real command. When every
 * argument and value is UTF-8 (the usual case), nothing changes: the command is started as is.
 */
import { bytesOfArg, hasRawBytes } from '../paths/arg-text.js';

/** printf %b escapes: every byte but [A-Za-z0-9/._-] as \0ooo (a backslash too). */
function escapeBytes(b: Buffer): string {
  let s = '';
  for (const c of b) s += /[A-Za-z0-9/._-]/.test(String.fromCharCode(c)) ? String.fromCharCode(c) : '\\0' + c.toString(8).padStart(3, '0');
  return s;
}

// each positional argument decoded in place ("$@" rotated once), then each listed variable;
// the trailing x keeps trailing newlines from the command substitution
const DECODE = [
  'for a do v=$(printf "%bx" "$a"); set -- "$@" "${v%x}"; shift; done',
  'for n in $HARDSNAP_EXEC_VARS; do eval "v=\\$HARDSNAP_EXEC_$n"; v=$(printf "%bx" "$v"); export "$n=${v%x}"; unset "HARDSNAP_EXEC_$n"; done',
  'unset HARDSNAP_EXEC_VARS a n v',
  'exec "$@"',
].join('\n');

export interface ExecPlan {
  file: string;
  args: string[];
  env: Record<string, string>;
}

/** What to hand to spawn(): the command itself, or the /bin/sh wrapper that restores its bytes. */
export function exactExec(file: string, args: string[], env: Record<string, string | undefined>): ExecPlan {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) clean[k] = v;
  const rawVars = Object.keys(clean).filter((k) => hasRawBytes(clean[k]!) && /^[A-Za-z_][A-Za-z0-9_]*$/.test(k));
  if (!hasRawBytes(file) && !args.some(hasRawBytes) && !rawVars.length) return { file, args, env: clean };
  for (const k of rawVars) {
    clean[`HARDSNAP_EXEC_${k}`] = escapeBytes(bytesOfArg(clean[k]!));
    delete clean[k];
  }
  if (rawVars.length) clean.HARDSNAP_EXEC_VARS = rawVars.join(' ');
  return { file: '/bin/sh', args: ['-c', DECODE, 'hardsnap-exec', ...[file, ...args].map((a) => escapeBytes(bytesOfArg(a)))], env: clean };
}
