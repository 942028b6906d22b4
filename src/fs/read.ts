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

/** The entries of a directory with their types (d_type; lstat where the file system does not say), or none when it does not exist. */
export function readDirTypesIfExists(dir: string): { name: string; isDir: boolean; isSymlink: boolean }[] {
  let ents: fs.Dirent[];
  try {
    ents = fs.readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    throw err;
  }
  return ents.map((e) => {
    if (e.isDirectory() || e.isSymbolicLink() || e.isFile() || e.isFIFO() || e.isSocket() || e.isBlockDevice() || e.isCharacterDevice())
      return { name: e.name, isDir: e.isDirectory(), isSymlink: e.isSymbolicLink() };
    try {
      const st = fs.lstatSync(`${dir}/${e.name}`);
      return { name: e.name, isDir: st.isDirectory(), isSymlink: st.isSymbolicLink() };
    } catch {
      return { name: e.name, isDir: false, isSymlink: false }; // gone meanwhile
    }
  });
}
