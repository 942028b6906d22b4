/**
 * Errno numbers by name, for the native calls' `-errno` results (`rc === -E.EEXIST`), and the
 * test for a Node.js error's code. One table, instead of `-17 /* EEXIST *\/` at each call.
 */
import { constants } from 'node:os';

export const E = constants.errno;

/** Whether `err` is a Node.js system error with one of these codes (ENOENT, ...). */
export function isErrno(err: unknown, ...codes: string[]): boolean {
  const code = typeof err === 'object' && err !== null && 'code' in err ? (err as { code: unknown }).code : undefined;
  return typeof code === 'string' && codes.includes(code);
}
