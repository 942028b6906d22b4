/**
 * `verify`: compares a generation's tree with its manifest. The tree is walked with directory
 * descriptors (openat + the native scandir: one call per directory, names as bytes, no path
 * length limit), merged with the manifest's sorted entries directory by directory. Found:
 * entries missing from the tree or not in the manifest, a changed type, metadata that drifted
 * (mode, owner, size, mtime to the nanosecond, symlink target, device number, extended
 * attributes and ACLs in the namespaces the spool keeps), an inode other than the recorded one
 * (the file was replaced; not checked when the spool was copied to another disk since, which
 * renumbers every inode), and with `deep` content that no longer has the recorded XXH64 (read through the native hashat: O_NOATIME where permitted, never following a
 * symlink). Where no hash is recorded, size and mtime are all that is compared.
 *
 * Problems are data: each one goes to onProblem and the walk goes on.
 */
import { displayPath, joinRel } from '../paths/escape.js';
import { descendDirs, readDirAt, type SourceEntry } from '../fs/entry.js';
import { IO, SCAN_XATTR, ST, errnoName, hashHex, splitStaged, sys } from '../fs/native.js';
import { E } from '../fs/errno.js';
import { isXfsAclAlias, namespaceOf, parseXattrs, type XattrNamespace } from '../fs/xattrs.js';
import { FLAG, type ManifestEntry } from '../manifest/format.js';
import type { ManifestReader } from '../manifest/reader.js';
import { byName } from '../manifest/merge.js';
import { inodeNumbers, isoNs, octal } from './manifests.js';
import { testPause } from '../fs/test-pause.js';

export type ProblemKind = 'manifest' | 'gone' | 'missing' | 'extra' | 'type' | 'metadata' | 'replaced' | 'content' | 'unreadable';

export interface VerifyProblem {
  kind: ProblemKind;
  /** path relative to the generation root, bytes (empty: the root, or the generation itself) */
  path: Buffer;
  message: string;
}

export interface VerifyOptions {
  /** also hash every file that has a recorded hash */
  deep: boolean;
  /** compare owners (false when the backup could not have kept them: not run as root) */
  owners: boolean;
  /**
   * XXH64 already computed per inode, shared by the verifiers of one part's generations: an
   * inode shared by 30 generations is read once, not 30 times (one entry per distinct file).
   */
  hashes?: Map<number, string>;
  /**
   * Called before an entry is reported missing or unreadable: throws when the generation itself
   * was pruned meanwhile (src/spool/reading.ts presenceCheck), so that one line says so instead of
   * one per file.
   */
  assertPresent?: () => void;
}

export interface VerifyStats {
  entries: number;
  hashed: number;
  bytesHashed: number;
}

const O_DIR = sys.O_RDONLY | sys.O_DIRECTORY | sys.O_NOFOLLOW | sys.O_NOATIME;

/** What found and the manifest disagree on, as `field manifest->found` strings. */
export function drift(m: ManifestEntry, f: SourceEntry, owners: boolean): string[] {
  const out: string[] = [];
  if (m.type !== 'symlink' && m.mode !== f.mode) out.push(`mode ${octal(m.mode)}->${octal(f.mode)}`);
  if (owners && m.uid !== f.uid) out.push(`uid ${m.uid}->${f.uid}`);
  if (owners && m.gid !== f.gid) out.push(`gid ${m.gid}->${f.gid}`);
  if (m.type === 'file' && m.size !== f.size) out.push(`size ${m.size}->${f.size}`);
  if (m.mtimeSec !== f.mtimeSec || m.mtimeNsec !== f.mtimeNsec) {
    out.push(`mtime ${isoNs(m.mtimeSec, m.mtimeNsec)}->${isoNs(f.mtimeSec, f.mtimeNsec)}`);
  }
  if ((m.type === 'char' || m.type === 'block') && m.rdev !== f.rdev) out.push(`rdev ${m.rdev}->${f.rdev}`);
  return out;
}

export class GenerationVerifier {
  readonly stats: VerifyStats = { entries: 0, hashed: 0, bytesHashed: 0 };
  private readonly io = new Float64Array(sys.IO_FIELDS);
  private readonly st = new Float64Array(sys.STAT_FIELDS);
  /** compare inode numbers (not when the spool was copied since the manifest was written) */
  private inodes = true;
  /** attribute namespaces the manifest holds but the spool refused (not compared) */
  private readonly unkept: Set<XattrNamespace>;
  /** whether attributes are compared at all (not for a generation made with --no-xattrs) */
  private readonly xattrs: boolean;
  /** why inode identity was not checked, when it was not */
  inodeNote: string | null = null;

  constructor(
    private readonly manifest: ManifestReader,
    private readonly opts: VerifyOptions,
    private readonly onProblem: (p: VerifyProblem) => void,
  ) {
    this.unkept = new Set((manifest.footer.xattrsRefused ?? []) as XattrNamespace[]);
    this.xattrs = manifest.version >= 3 && !manifest.footer.xattrsSkipped;
  }

  /** Verifies the generation whose root directory is `root` (an absolute path). */
  run(root: string): void {
    const fd = sys.openat(sys.AT_FDCWD, root, O_DIR, 0);
    if (fd < 0) {
      this.problem('unreadable', Buffer.alloc(0), `cannot open the generation: ${errnoName(fd)}`);
      return;
    }
    if (inodeNumbers(this.manifest, root) === 'moved') {
      this.inodes = false;
      this.inodeNote = 'the spool was copied since this generation was made (its inode numbers changed): inode identity not checked';
    }
    try {
      this.checkRoot(fd);
      this.dir(fd, Buffer.alloc(0));
    } finally {
      sys.close(fd);
    }
  }

  private checkRoot(fd: number): void {
    const st = this.st;
    if (sys.fstat(fd, st) < 0) return;
    const x = this.xattrs ? sys.getxattrs(-1, '', fd) : null;
    const found = {
      type: 'dir',
      mode: st[ST.MODE]! & 0o7777,
      uid: st[ST.UID]!,
      gid: st[ST.GID]!,
      size: 0,
      mtimeSec: st[ST.MTIME]!,
      mtimeNsec: st[ST.MTIME_NS]!,
      rdev: 0,
      xattrs: x && typeof x !== 'number' && x.length ? x : null,
      xattrErr: typeof x === 'number' ? -x : 0,
    } as SourceEntry;
    const d = drift(this.manifest.root, found, this.opts.owners);
    if (this.xattrs) d.push(...this.xattrDrift(this.manifest.root, found));
    if (d.length) this.problem('metadata', Buffer.alloc(0), `metadata drifted (manifest->found): ${d.join(', ')}`);
  }

  /** Checks the directory fd (at rel) and everything below it (src/fs/entry.ts descendDirs: no recursion). */
  private dir(fd: number, rel: Buffer): void {
    descendDirs(
      fd,
      rel,
      (dfd, path) => this.checkDir(dfd, path),
      (parent, name, path) => {
        const sub = sys.openat(parent, name, O_DIR, 0);
        // a directory the backup could not enter is made empty with the source's mode (000): a
        // user who is not root cannot look inside, and nothing is recorded there to check
        if (sub === -E.EACCES && this.recordsNothingIn(path)) return null;
        if (sub < 0) {
          this.problem('unreadable', path, `cannot open the directory: ${errnoName(sub)}`);
          return null;
        }
        return sub;
      },
    );
  }

  /** Checks the entries of one directory against its manifest block: its subdirectories to enter, or null when it cannot be read. */
  private checkDir(fd: number, rel: Buffer): Buffer[] | null {
    const found = readDirAt(fd, this.xattrs ? SCAN_XATTR.OTHER | SCAN_XATTR.FILES : 0, -Infinity);
    if (typeof found === 'number') {
      this.problem('unreadable', rel, `cannot read the directory: ${errnoName(found)}`);
      return null;
    }
    let recorded: ManifestEntry[];
    try {
      // no block: a directory the run did not enter (a mount point under -x, or unreadable in
      // the source); it was created empty, and anything found in it is extra
      recorded = this.manifest.dir(rel) ?? [];
    } catch (err) {
      this.problem('manifest', rel, `the manifest's block for this directory is damaged (${(err as Error).message})`);
      return null;
    }
    const subdirs: Buffer[] = [];
    for (const [m, f] of byName(recorded, found)) {
      if (!f) {
        if (!(m!.flags & FLAG.ABSENT)) this.problem('missing', joinRel(rel, m!.name), `missing: the manifest records a ${m!.type}`);
        continue;
      }
      this.stats.entries++;
      if (!m) this.problem('extra', joinRel(rel, f.name), `extra: a ${f.type} the manifest does not record`);
      else if (this.entry(fd, rel, m, f)) subdirs.push(f.name);
    }
    if (rel.length === 0) testPause('mid-read');
    return subdirs;
  }

  /** Whether the manifest records no entry below the directory rel (nor a damaged block). */
  private recordsNothingIn(rel: Buffer): boolean {
    try {
      return (this.manifest.dir(rel) ?? []).length === 0;
    } catch {
      return false;
    }
  }

  /** Checks one entry present on both sides; true when it is a directory to descend into. */
  private entry(fd: number, rel: Buffer, m: ManifestEntry, f: SourceEntry): boolean {
    const path = joinRel(rel, m.name);
    if (f.err) {
      this.problem('unreadable', path, f.err === -1 ? 'unknown file type' : `cannot stat: ${errnoName(f.err)}`);
      return false;
    }
    if (m.flags & FLAG.ABSENT) {
      this.problem('extra', path, `extra: the manifest records this ${m.type} as not created`);
      return false;
    }
    if (m.type !== f.type) {
      this.problem('type', path, `type changed: the manifest records a ${m.type}, found a ${f.type}`);
      return false;
    }
    if (this.inodes && m.type !== 'dir' && m.ino !== 0 && m.ino !== f.ino) {
      this.problem('replaced', path, `replaced: inode ${f.ino}, the manifest records ${m.ino}`);
    }
    const d = drift(m, f, this.opts.owners);
    if (m.type === 'symlink' && !(m.target && f.target && m.target.equals(f.target)))
      d.unshift(`target ${displayPath(m.target ?? Buffer.alloc(0))}->${displayPath(f.target ?? Buffer.alloc(0))}`);
    if (this.xattrs) d.push(...this.xattrDrift(m, f));
    if (d.length) this.problem('metadata', path, `metadata drifted (manifest->found): ${d.join(', ')}`);
    if (m.type === 'file' && this.opts.deep && m.hash !== null) this.hash(fd, path, m);
    return m.type === 'dir';
  }

  /**
   * Attributes that differ between the manifest and the spool file. A record flagged OFF_SPOOL
   * (its inode lacks what the spool's file system refused) is checked only for the attributes
   * the inode has; a directory, in the namespaces its run's footer does not call refused. A
   * security.selinux label the manifest does not record is the spool host's own (a kernel with
   * SELinux labels every new file): not a difference. XFS's trusted.SGI_ACL_* (its view of the
   * POSIX ACLs, which system.posix_acl_* carry) are never compared.
   */
  private xattrDrift(m: ManifestEntry, f: SourceEntry): string[] {
    if (f.xattrErr) return [`attributes unreadable (${errnoName(f.xattrErr)})`];
    const partial = (m.flags & FLAG.OFF_SPOOL) !== 0;
    const skip = (ns: XattrNamespace) => m.type === 'dir' && this.unkept.has(ns);
    const want = new Map(
      parseXattrs(m.xattrs)
        .filter((x) => !skip(namespaceOf(x.name)) && !isXfsAclAlias(x.name))
        .map((x) => [x.name.toString('latin1'), x.value]),
    );
    const out: string[] = [];
    for (const x of parseXattrs(f.xattrs)) {
      const n = x.name.toString('latin1');
      const w = want.get(n);
      want.delete(n);
      if (w === undefined) {
        if (n !== 'security.selinux' && !skip(namespaceOf(x.name))) out.push(`attribute ${displayPath(x.name)} not recorded`);
      } else if (!w.equals(x.value)) out.push(`attribute ${displayPath(x.name)} changed`);
    }
    if (!partial) for (const n of want.keys()) out.push(`attribute ${displayPath(Buffer.from(n, 'latin1'))} missing`);
    return out;
  }

  private hash(fd: number, path: Buffer, m: ManifestEntry): void {
    const known = this.opts.hashes?.get(m.ino);
    if (known !== undefined) {
      if (known !== m.hash) this.problem('content', path, `content changed: XXH64 ${known}, the manifest records ${m.hash}`);
      return;
    }
    const io = this.io;
    const rc = sys.hashat(fd, m.name, io);
    if (rc !== 0) {
      const { code } = splitStaged(rc);
      this.problem('unreadable', path, `cannot read for hashing: ${code}`);
      return;
    }
    this.stats.hashed++;
    this.stats.bytesHashed += io[IO.BYTES]!;
    const h = hashHex(io[IO.HASH_HI]!, io[IO.HASH_LO]!);
    const st = io.subarray(IO.STAT);
    // only an inode that is still the recorded one may answer for the other generations
    if (this.opts.hashes && st[ST.INO] === m.ino) this.opts.hashes.set(m.ino, h);
    if (h !== m.hash) this.problem('content', path, `content changed: XXH64 ${h}, the manifest records ${m.hash}`);
  }

  private problem(kind: ProblemKind, path: Buffer, message: string): void {
    if (kind === 'missing' || kind === 'unreadable' || kind === 'manifest') this.opts.assertPresent?.();
    this.onProblem({ kind, path, message });
  }
}
