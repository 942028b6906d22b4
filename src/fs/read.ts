/**
 * Reads that may find nothing: a file or directory that does not exist is an answer (null, or
 * no names), any other error is thrown.
 */
import fs from 'node:fs';
import { isErrno } from './errno.js';

/** The file's text, or null when it does not exist. */
export function readTextIfExists(file: string | Buffer): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return null;
    throw err;
  }
}

/** The names in a directory, or none when it does not exist. */
export function readDirIfExists(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    throw err;
  }
}
