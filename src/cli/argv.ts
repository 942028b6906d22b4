/**
 * The command line as bytes. Node decodes process.argv as UTF-8 and replaces every byte that is
 * not valid UTF-8 with U+FFFD, so `--spool $'/srv/spool\xe9'` would name `/srv/spool\xef\xbf\xbd`.
 * On Linux the kernel keeps the real bytes in /proc/self/cmdline; each argument is read from
 * there and handed to the parser as arg text (src/paths/arg-text.ts), checked against
 * process.argv first: the same number of arguments, each decoding to the string Node gave.
 */
import { fs } from '../fs/disk.js';
import { argText, showArg } from '../paths/arg-text.js';

export interface ByteArgv {
  /** process.argv with every user argument (from index 2) as arg text */
  argv: string[];
  /** where the bytes came from: /proc/self/cmdline, or process.argv when it could not be read */
  source: 'cmdline' | 'argv';
}

/** Splits /proc/self/cmdline: NUL-terminated arguments. */
export function splitCmdline(data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < data.length; i++) {
    if (data[i] === 0) {
      out.push(data.subarray(start, i));
      start = i + 1;
    }
  }
  if (start < data.length) out.push(data.subarray(start)); // no final NUL (a rewritten title)
  return out;
}

/**
 * The user arguments as arg text. `cmdline` is the kernel's record (the interpreter, its own
 * options and the script come first: the user arguments are its tail).
 */
export function byteArgv(argv: string[] = process.argv, cmdline?: Buffer): ByteArgv {
  const user = argv.length - 2;
  let data = cmdline;
  if (!data) {
    try {
      data = fs.readFileSync('/proc/self/cmdline');
    } catch {
      return { argv, source: 'argv' };
    }
  }
  const all = splitCmdline(data);
  if (user <= 0) return { argv, source: 'cmdline' };
  if (all.length < user + 1) return { argv, source: 'argv' };
  const tail = all.slice(all.length - user);
  for (let i = 0; i < user; i++) {
    if (tail[i]!.toString('utf8') !== argv[i + 2]) return { argv, source: 'argv' };
  }
  return { argv: [...argv.slice(0, 2), ...tail.map(argText)], source: 'cmdline' };
}

let userArgs: string[] = process.argv.slice(2);

/** Records the user arguments (arg text) the CLI runs with, for `commandLine()`. */
export function setUserArgs(args: string[]): void {
  userArgs = args;
}

/** The command line as recorded in the lock and the run log: `hardsnap ARGS`, escaped where not UTF-8. */
export function commandLine(): string {
  return ['hardsnap', ...userArgs.map(showArg)].join(' ');
}
