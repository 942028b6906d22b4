/**
 * A file that is either its old content or its new one, never half-written: the new content is
 * written under a temporary name beside it (hidden: `.NAME.PID.tmp`, made with O_EXCL and
 * O_NOFOLLOW, so a planted name fails instead of being written through), then renamed over it.
 * Durable (the default) adds an fsync of the file before the rename and of its directory after:
 * the new content survives a crash once commit() returns. The one way hardsnap writes its small
 * files: the spool marker, pins, leases, LATEST, the watch journal, metrics, change lists.
 */
import fs from 'node:fs';
import { removeName } from './remove-tree.js';

export interface AtomicFileOptions {
  /** fsync the file before the rename and its directory after (default true) */
  durable?: boolean;
  /** permission bits of the new file (default 0644) */
  mode?: number;
}

const SLASH = 0x2f;

function split(file: Buffer): { dir: Buffer; base: Buffer } {
  const i = file.lastIndexOf(SLASH);
  return i < 0 ? { dir: Buffer.from('.'), base: file } : { dir: i === 0 ? Buffer.from('/') : file.subarray(0, i), base: file.subarray(i + 1) };
}

export class AtomicFile {
  readonly tmp: Buffer;
  private readonly target: Buffer;
  private readonly dir: Buffer;
  private fd: number;
  private readonly durable: boolean;
  private committed = false;

  /** file: a path as text, or its exact bytes */
  constructor(file: string | Buffer, o: AtomicFileOptions = {}) {
    this.target = typeof file === 'string' ? Buffer.from(file) : file;
    const { dir, base } = split(this.target);
    this.dir = dir;
    const hidden = base[0] === 0x2e ? base : Buffer.concat([Buffer.from('.'), base]);
    this.tmp = Buffer.concat([dir, Buffer.from('/'), hidden, Buffer.from(`.${process.pid}.tmp`)]);
    this.durable = o.durable ?? true;
    const c = fs.constants;
    try {
      this.fd = fs.openSync(this.tmp, c.O_WRONLY | c.O_CREAT | c.O_EXCL | c.O_NOFOLLOW, o.mode ?? 0o644);
    } catch (err) {
      // one a killed run of this pid left (pids are reused): ours to replace
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      removeName(this.tmp);
      this.fd = fs.openSync(this.tmp, c.O_WRONLY | c.O_CREAT | c.O_EXCL | c.O_NOFOLLOW, o.mode ?? 0o644);
    }
  }

  write(chunk: Buffer | string): number {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    for (let off = 0; off < buf.length;) off += fs.writeSync(this.fd, buf, off);
    return buf.length;
  }

  /** fsync-s the new content now (the blocks it needs are taken here, not at commit()). */
  sync(): void {
    if (this.fd >= 0) fs.fsyncSync(this.fd);
  }

  /** Puts the new content in place (fsync-ed when durable). */
  commit(): void {
    try {
      if (this.durable) fs.fsyncSync(this.fd);
    } finally {
      this.close();
    }
    fs.renameSync(this.tmp, this.target);
    this.committed = true;
    if (this.durable) syncDir(this.dir);
  }

  /**
   * Leaves the old content: the temporary file goes (nothing to do after commit). Called once
   * something failed, whose error is the one to tell: a temporary file that cannot be removed
   * (an append-only directory) stays, for the next writer to replace.
   */
  abandon(): void {
    if (this.committed) return;
    this.close();
    try {
      removeName(this.tmp);
    } catch {
      /* left: see above */
    }
  }

  private close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}

/** Writes `data` as the whole new content of `file`, atomically (see AtomicFile). */
export function writeFileAtomic(file: string | Buffer, data: Buffer | string, o: AtomicFileOptions = {}): number {
  const f = new AtomicFile(file, o);
  try {
    const n = f.write(data);
    f.commit();
    return n;
  } catch (err) {
    f.abandon();
    throw err;
  }
}

/** fsync of a directory: the names made or renamed in it are on disk. */
export function syncDir(dir: string | Buffer): void {
  const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
