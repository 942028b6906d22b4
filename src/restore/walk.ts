/**
 * Restores one tree (a whole part, or one path of it) from a generation into a target, walking
 * the manifest directory by directory with descriptors on both sides: the generation's files
 * are read relative to their directory without following symlinks (sys.copy, with the content
 * hash checked against the manifest's), the target is written through SafeTarget. Metadata comes
 * from the manifest: owner and group (numeric, when root), mode, extended attributes and POSIX
 * ACLs (in the order the kernel requires: owner, mode, ACLs, capabilities, then the mtime to the
 * nanosecond; attributes a default ACL of the target made the kernel add are removed), for
 * directories after their children; symlinks as symlinks; names of one source inode (one link
 * group, files and symlinks alike) as hard links of one restored inode; FIFOs and sockets
 * always, devices when root. Attributes the target refuses (trusted.* and security.* when not
 * root, a file system without them) are counted and reported in one line (exit 23).
 */
import { displayPath, joinRel } from '../paths/escape.js';
import { expectType, MODE_BITS } from '../fs/entry.js';
import { COPY, IO, META_STAGE, SETMETA, ST, STAGE, errnoName, hashHex, refusedNamespaces, splitStaged, sys } from '../fs/native.js';
import { E } from '../fs/errno.js';
import { readTextIfExists } from '../fs/read.js';
import type { ManifestEntry } from '../manifest/format.js';
import { EntryError, type SafeTarget } from './target.js';
import { badName, FROM_SCAN, type EntrySource } from './source.js';
import { newRestoreStats, type ProblemKind, type RestoreEvents, type RestoreProblem } from './types.js';
import { testPause } from '../fs/test-pause.js';

const O_DIR = sys.O_RDONLY | sys.O_DIRECTORY | sys.O_NOFOLLOW;

export interface WalkOptions {
  part: string;
  source: EntrySource;
  /** writes the target; in a dry run (dryRun set) only looks at it */
  target: SafeTarget | null;
  /** the target directory standing for the part's root (DIR, or DIR/<part>); -1 in a dry run */
  baseFd: number;
  asRoot: boolean;
  events: RestoreEvents;
  /** throws when the generation was pruned under the restore: one line, not one per file */
  assertPresent?: () => void;
}

/** A directory being restored: its place in the part, both descriptors, its metadata. */
export interface DirFrame {
  rel: Buffer;
  src: number;
  dst: number;
  meta: ManifestEntry;
  /** set the metadata on dst after the children (false for the user's DIR under --path) */
  setMeta: boolean;
  /** the directory was in the target already (under --force), not made by the restore */
  existed: boolean;
  /** close src and dst when done (false for descriptors the caller owns) */
  owned: boolean;
  /** an existing directory that could not be made 0700 while restored into (closeUp) */
  notClosed?: boolean;
  /** others than this process can write dst (TreeRestorer.othersWrite: asked once) */
  othersWrite?: boolean;
  subdirs: ManifestEntry[];
  next: number;
}

/**
 * The first restored name of a hard-link group, for its further names: an O_PATH descriptor
 * of its inode when one is held (the names are linked from the inode itself: whoever can write
 * its directory, now or once the restore gives it its owner and mode, can remove or replace the
 * name, not change what the descriptor holds, nor have its number given to a file of theirs
 * while it is held), else its place (then checked by inode number after the link).
 */
interface LinkBase {
  dirRel: Buffer;
  name: Buffer;
  ino: number;
  /** O_PATH descriptor of the inode, or -1 */
  fd: number;
}

/** The process's descriptor limit (the soft one; Node.js raises it to the hard one at start). */
let fdMax: number | undefined;
function fdLimit(): number {
  fdMax ??= Number(/^Max open files\s+(\d+)/m.exec(readTextIfExists('/proc/self/limits') ?? '')?.[1] ?? 1024);
  return fdMax;
}

/**
 * How many hard-link groups' first names are held by a descriptor (LinkBase.fd) at most: half
 * the process's descriptor limit, at most 65536; past it, further groups are linked by name (a
 * tree of millions of groups must not run out of descriptors). Each is held until the restore
 * of the part ends (the manifest does not say how many names a group has), or until the walk
 * needs the descriptor (TreeRestorer.room).
 */
function heldLimit(): number {
  return Math.min(65536, Math.floor(fdLimit() / 2));
}

/** Descriptors the restore keeps free besides the held ones and two per directory level open: Node.js's own (~25), a copy's, a private directory's. */
const FD_RESERVE = 64;

const STAGE_TEXT: Record<number, string> = {
  [STAGE.OPEN_SRC]: 'cannot open the file in the generation',
  [STAGE.NOT_REG]: 'is not a regular file in the generation',
  [STAGE.OPEN_DST]: 'cannot create the file in the target (a link in its place is never followed)',
  [STAGE.READ]: 'cannot read the file in the generation',
  [STAGE.WRITE]: 'cannot write the file in the target',
  [STAGE.META]: 'cannot set the metadata of the restored file',
};

export class TreeRestorer {
  readonly stats = newRestoreStats();
  readonly problems: RestoreProblem[] = [];
  private readonly io = new Float64Array(sys.IO_FIELDS);
  private readonly st = new Float64Array(sys.STAT_FIELDS);
  private readonly groups = new Map<string, LinkBase>();
  /** descriptors held by LinkBase entries of `groups` */
  private held = 0;
  /** the hard-link groups a dry run has seen a name of */
  private readonly drySeen = new Set<string>();
  /** directory levels open in the walk (tree) */
  private depth = 1;
  /**
   * How a further name is linked from a held descriptor: linkat(AT_EMPTY_PATH) (root; any user
   * since Linux 6.10), its /proc/self/fd link (a user on an older kernel), or not at all (no
   * /proc either: by name); unknown until tried
   */
  private fromDescriptor: 'empty-path' | 'proc' | false | undefined;
  private readonly euid = process.geteuid?.() ?? -1;
  private readonly egid = process.getegid?.() ?? -1;
  private readonly dry: boolean;
  /** entries whose attributes the target refused, by namespace */
  private readonly refusedNs = new Map<string, number>();

  constructor(private readonly o: WalkOptions) {
    this.dry = o.target === null || o.target.dryRun;
  }

  /** Closes the descriptors of the hard-link groups' first names (the restore of the part is over). */
  release(): void {
    for (const base of this.groups.values()) this.drop(base);
  }

  /** Remembers `base` as its group's first name (closing the descriptor of one it replaces). */
  private remember(key: string, base: LinkBase): void {
    const old = this.groups.get(key);
    if (old) this.drop(old);
    this.groups.set(key, base);
  }

  private drop(base: LinkBase): void {
    if (base.fd < 0) return;
    sys.close(base.fd);
    base.fd = -1;
    this.held--;
  }

  /** Restores the directory `top` and everything below it; `top` itself is left to the caller's frame flags. */
  tree(top: DirFrame): void {
    const stack: DirFrame[] = [top];
    this.processDir(top);
    if (top.rel.length === 0) testPause('mid-read');
    try {
      while (stack.length) {
        const f = stack[stack.length - 1]!;
        this.depth = stack.length;
        if (f.next < f.subdirs.length) {
          this.makeRoom(this.depth + 1);
          const child = this.enter(f, f.subdirs[f.next++]!);
          if (child) {
            stack.push(child);
            this.processDir(child);
          }
          continue;
        }
        this.leave(f);
        stack.pop();
      }
    } finally {
      for (const f of stack) if (f.owned) this.close(f);
    }
  }

  /** Restores one non-directory entry `e` of the directory frame `f`. */
  leaf(f: DirFrame, e: ManifestEntry): void {
    const rel = joinRel(f.rel, e.name);
    this.o.events.onEntry?.(this.o.part, rel, e);
    if (e.type === 'file') this.stats.files++;
    else if (e.type === 'symlink') this.stats.symlinks++;
    else this.stats.specials++;
    try {
      if (badName(e.name)) throw new EntryError('EINVAL', 'impossible name in the generation: skipped');
      const replaced = this.o.target?.clear(f.dst, e.name, displayPath(rel));
      if (replaced) this.o.events.onReplace?.(this.o.part, rel, replaced);
      if (this.dry) {
        // counted as the run counts them: a group's further names are hard links, not files
        const key = this.groupKey(e);
        if (key !== null && this.drySeen.has(key)) {
          this.uncount(e);
          this.stats.hardlinks++;
          return;
        }
        if (key !== null) this.drySeen.add(key);
        if (e.type === 'file') this.stats.bytes += e.size;
        return;
      }
      // another name of an inode already restored: linked to it, unless it cannot be (then
      // made anew, and said)
      const base = this.linkBase(e);
      const apart = base ? this.link(f, e, base) : null;
      if (apart === true) return;
      switch (e.type) {
        case 'file':
          this.file(f, e, rel);
          break;
        case 'symlink':
          this.make(
            f,
            e,
            (dirfd) => must(sys.symlinkat(e.target ?? Buffer.alloc(0), dirfd, e.name), 'cannot create the symlink'),
            SETMETA.OWNER | SETMETA.TIMES,
          );
          break;
        default:
          if ((e.type === 'char' || e.type === 'block') && !this.o.asRoot) {
            throw new EntryError('EPERM', `${e.type} device not created (only root can)`);
          }
          this.make(
            f,
            e,
            (dirfd) =>
              must(
                // mode 0 until its owner is set: a default ACL of a directory another user can write
                // would otherwise give that user the node (a disk) between the mknod and the metadata
                sys.mknodat(dirfd, e.name, MODE_BITS[e.type], e.type === 'char' || e.type === 'block' ? e.rdev : 0),
                `cannot create the ${e.type}`,
              ),
            // the mode after the owner: a chown clears the set-id bits
            SETMETA.OWNER | SETMETA.MODE | SETMETA.TIMES,
          );
      }
      if (apart) this.problem(rel, apart.code, `restored as a separate inode, not as another name of its hard-link group: ${apart.why}`, 'inexact');
    } catch (err) {
      if (!(err instanceof EntryError)) throw err;
      // not restored: not counted as restored (the summary and --json count what is in the target)
      this.uncount(e);
      this.problem(rel, err.code, err.message);
    }
  }

  /** A directory entry: created in the target and opened on both sides; null when it could not be. */
  enter(parent: DirFrame, e: ManifestEntry): DirFrame | null {
    const rel = joinRel(parent.rel, e.name);
    this.o.events.onEntry?.(this.o.part, rel, e);
    this.stats.dirs++;
    if (badName(e.name)) {
      this.stats.dirs--;
      this.problem(rel, 'EINVAL', 'impossible name in the generation: skipped');
      return null;
    }
    // (below a directory that cannot be opened: its errno, for what is said of its entries)
    const src = parent.src < 0 ? parent.src : sys.openat(parent.src, e.name, O_DIR | sys.O_NOATIME, 0);
    if (src < 0 && !this.usable(e)) {
      this.stats.dirs--;
      this.problem(rel, errnoName(src), 'cannot open the directory in the generation');
      return null;
    }
    let dst = -1;
    let existed = false;
    if (this.o.target) {
      try {
        const d = this.o.target.dir(parent.dst, e.name, displayPath(rel));
        dst = d.fd;
        existed = d.existed;
        if (d.replaced) this.o.events.onReplace?.(this.o.part, rel, d.replaced);
      } catch (err) {
        if (src >= 0) sys.close(src);
        if (!(err instanceof EntryError)) throw err;
        this.stats.dirs--;
        this.problem(rel, err.code, err.message);
        return null;
      }
    }
    if (src < 0) this.problem(rel, errnoName(src), 'cannot open the directory in the generation: its files are not restored');
    return { rel, src, dst, meta: e, setMeta: true, existed, owned: true, subdirs: [], next: 0 };
  }

  /** Sets a directory's metadata (after its children) and closes it. */
  leave(f: DirFrame): void {
    if (!this.dry && f.setMeta) {
      const m = f.meta;
      const rc = sys.setmeta(
        -1,
        '',
        f.dst,
        m.uid,
        m.gid,
        m.mode,
        m.mtimeSec,
        m.mtimeNsec,
        this.bits(SETMETA.OWNER | SETMETA.MODE | SETMETA.TIMES, m),
        m.xattrs,
      );
      if (rc < 0) {
        // in the problems, so not counted restored (an entry listed there never is)
        if (f.owned) this.stats.dirs--; // (the top directory is not counted: not entered here)
        let why = 'cannot set the metadata of the restored directory';
        if (f.notClosed) {
          const mode = sys.fstat(f.dst, this.st) === 0 ? (this.st[ST.MODE]! & 0o7777).toString(8).padStart(4, '0') : '?';
          why += `, nor make it 0700 while restoring into it (another user's directory, or chattr +a/+i): what was restored in it is open to other users through its mode (${mode}) and to its owner; restore into a directory of your own`;
        }
        this.problem(f.rel, splitStaged(rc).code, why, 'inexact');
      } else this.refused(rc);
    }
    if (f.owned) this.close(f);
  }

  /**
   * One problem line for every attribute the target refused (trusted.* and security.* when not
   * root, a file system without extended attributes): the restore is not exact (exit 23).
   */
  finish(): void {
    if (!this.refusedNs.size) return;
    const list = [...this.refusedNs].map(([ns, n]) => `${ns}.* on ${n} ${n === 1 ? 'entry' : 'entries'}`).join(', ');
    const why = this.o.asRoot ? "the target's file system refused them" : "not running as root, or the target's file system refused them";
    this.problem(Buffer.alloc(0), 'EXATTR', `extended attributes not restored: ${list} (${why}); the manifest holds them`, 'inexact');
  }

  /** setmeta's bits for an entry: without owner when not root, with its attributes exactly */
  private bits(what: number, e: ManifestEntry): number {
    return (what & (this.o.asRoot ? ~0 : ~SETMETA.OWNER)) | SETMETA.XATTRS_EXACT | (e.xattrs ? SETMETA.XATTRS : 0);
  }

  private refused(mask: number): void {
    for (const ns of refusedNamespaces(mask)) this.refusedNs.set(ns, (this.refusedNs.get(ns) ?? 0) + 1);
  }

  private processDir(f: DirFrame): void {
    if (f.existed && f.setMeta && !this.dry && f.dst >= 0) this.closeUp(f);
    let entries: ManifestEntry[];
    try {
      entries = this.o.source.dir(f.rel, f.src);
    } catch (err) {
      this.problem(f.rel, (err as { code?: string }).code ?? 'EIO', (err as Error).message);
      return;
    }
    for (const e of entries) {
      if (e.type === 'dir') f.subdirs.push(e);
      else this.leaf(f, e);
    }
  }

  /**
   * A directory of the target that was there already and takes the generation's metadata once
   * its children are restored (the target itself, one reused under --force): mode 0700 before
   * anything is written into it, as a directory the restore creates has, so that what it
   * restores is not open to other users meanwhile through the mode the directory had (0755 from
   * a mkdir) when the generation's is tighter; root takes it over as well when another user owns
   * it (a restore stopped before its end leaves it root's, 0700). When the directory refuses it
   * (chattr +a or +i, another user's directory for a restore that is not root's), its metadata
   * is refused at the end too, and that one problem says both (f.notClosed).
   */
  private closeUp(f: DirFrame): void {
    // and this process's: another user who owns it (DIR given as that user's directory, a home
    // under --force) could otherwise make it open again at once
    const owner = this.o.asRoot && sys.fstat(f.dst, this.st) === 0 && this.st[ST.UID] !== this.euid ? SETMETA.OWNER : 0;
    f.notClosed = sys.setmeta(f.dst, '', -1, this.euid, process.getegid?.() ?? 0, 0o700, 0, 0, SETMETA.MODE | owner) < 0;
  }

  /** A manifest tells what to create even when the generation's directory cannot be opened. */
  private usable(e: ManifestEntry): boolean {
    return !(e.flags & FROM_SCAN) && this.o.source.reader !== null;
  }

  /** The group key of an entry that is one name of several of a source inode, or null. */
  private groupKey(e: ManifestEntry): string | null {
    return e.linkGroup ? `g${e.linkGroup}` : e.flags & FROM_SCAN && e.ino ? `i${e.ino}` : null;
  }

  /** The first restored name of e's inode, when e has others and one is restored. */
  private linkBase(e: ManifestEntry): LinkBase | undefined {
    const key = this.groupKey(e);
    return key ? this.groups.get(key) : undefined;
  }

  /**
   * A symlink or special file e of f: made by `make(dirfd)` as e.name in dirfd, remembered for
   * its further names and given its metadata (`what`). In f's directory when no one else can
   * write it; else in a private directory made in it (SafeTarget.staging), then renamed into
   * place, so that nothing exchanged for it meanwhile (a root-owned node or symlink outside DIR
   * of the same type, one name, this process's) is given its metadata instead.
   */
  private make(f: DirFrame, e: ManifestEntry, make: (dirfd: number) => void, what: number): void {
    const target = this.o.target!;
    const s = this.othersWrite(f) ? target.staging(f.dst) : null;
    const at = s ? s.fd : f.dst;
    let first: { key: string; base: LinkBase } | null = null;
    try {
      make(at);
      first = this.firstName(at, f, e);
      this.meta(at, e, what);
      if (s) must(sys.renameat(s.fd, e.name, f.dst, e.name, sys.RENAME_NOREPLACE), 'cannot move it into place from the private directory it was made in');
      if (first) this.remember(first.key, first.base);
      first = null;
    } finally {
      if (first) this.drop(first.base); // (not restored: nothing is linked to it)
      if (s) {
        sys.unlinkat(s.fd, e.name, 0); // (not moved into place)
        const left = target.dropStaging(f.dst, s);
        if (left)
          this.problem(
            joinRel(f.rel, s.name),
            left,
            left === 'ECHANGED'
              ? `the private directory made to create ${displayPath(e.name)} in was renamed away by whoever can write its directory: left behind (root's, 0700, empty) wherever it is now`
              : `the private directory made to create ${displayPath(e.name)} in could not be removed (${left}): left behind (empty); remove it`,
            'leftover',
          );
      }
    }
  }

  /** Whether others than this process can write f's directory (or it is another user's); asked once per directory. */
  private othersWrite(f: DirFrame): boolean {
    if (f.othersWrite === undefined) f.othersWrite = sys.fstat(f.dst, this.st) !== 0 || this.st[ST.UID] !== this.euid || (this.st[ST.MODE]! & 0o022) !== 0;
    return f.othersWrite;
  }

  /**
   * e, just made as e.name in dirfd, as the first restored name of its source inode (when it
   * has others), for its later names to link to; null when it has none or one is restored.
   */
  private firstName(dirfd: number, f: DirFrame, e: ManifestEntry): { key: string; base: LinkBase } | null {
    const key = this.groupKey(e);
    if (!key || this.groups.has(key) || sys.fstatat(dirfd, e.name, this.st, 1) !== 0) return null;
    // called right after the entry is made, before it is given its owner: what the name holds
    // must be that entry (its type, this process's, no other name), not something swapped in by
    // whoever can write the directory (their own symlink, a hard link to another file), which the
    // entry's further names would then be linked to
    if ((this.st[ST.MODE]! & 0o170000) !== MODE_BITS[e.type] || this.st[ST.NLINK] !== 1 || this.st[ST.UID] !== this.euid) return null;
    const ino = this.st[ST.INO]!;
    return { key, base: { dirRel: f.rel, name: e.name, ino, fd: this.hold(dirfd, e.name, ino) } };
  }

  /** e, counted as restored, is not (or not as a new inode). */
  private uncount(e: ManifestEntry): void {
    if (e.type === 'file') this.stats.files--;
    else if (e.type === 'symlink') this.stats.symlinks--;
    else this.stats.specials--;
  }

  /** Whether one more first name's inode may be held by a descriptor. */
  private mayHold(): boolean {
    return this.held < this.room(this.depth) && this.fromDescriptor !== false;
  }

  /**
   * How many first names may be held while `depth` directory levels are open (two descriptors
   * each): a deep tree must not be left without descriptors (EMFILE) by the held ones (an
   * attack: another user's 128 cheap groups, ulimit -n 256, and a subtree 60 levels down was not
   * restored).
   */
  private room(depth: number): number {
    return Math.max(0, Math.min(heldLimit(), fdLimit() - FD_RESERVE - 2 * depth));
  }

  /** The oldest held descriptors given back until `depth` levels fit: those groups' later names are linked by name (where that is safe: linkByName). */
  private makeRoom(depth: number): void {
    const room = this.room(depth);
    for (const base of this.groups.values()) {
      if (this.held <= room) return;
      this.drop(base);
    }
  }

  /** An O_PATH descriptor of dirfd/name when it is the inode `ino` and one more may be held; else -1. */
  private hold(dirfd: number, name: Buffer, ino: number): number {
    if (!this.mayHold()) return -1;
    const fd = sys.openat(dirfd, name, sys.O_PATH | sys.O_NOFOLLOW, 0);
    if (fd < 0) return -1;
    if (sys.fstat(fd, this.st) !== 0 || this.st[ST.INO] !== ino) {
      sys.close(fd);
      return -1;
    }
    return this.counted(fd);
  }

  /** `fd` counted among the held ones; -1 for none (a negative one: -errno). */
  private counted(fd: number): number {
    if (fd < 0) return -1;
    this.held++;
    return fd;
  }

  private file(f: DirFrame, e: ManifestEntry, rel: Buffer): void {
    if (f.src < 0) throw new EntryError(errnoName(f.src), 'cannot open its directory in the generation');
    const key = this.groupKey(e);
    const io = this.io;
    // the manifest's owner, mode and mtime (not the generation file's, which an admin may have
    // changed), given to the new file through the descriptor the copy made it with: never by
    // its name, which whoever can write the target could have swapped meanwhile
    // (and without a name until all of that is set: COPY.UNNAMED)
    // (the first name of a hard-link group: a descriptor of the inode made is kept, see LinkBase)
    // (a group whose first name stays another's: a copy made apart from it, EXDEV, is not held)
    const first = key !== null && !this.groups.has(key);
    const keep = first && this.mayHold();
    io[IO.FLAGS] =
      (this.o.asRoot ? COPY.OWNER : 0) |
      COPY.MODE_TIMES |
      COPY.META_GIVEN |
      COPY.UNNAMED |
      COPY.XATTRS_EXACT |
      (e.xattrs ? COPY.XATTRS : 0) |
      (keep ? COPY.KEEP : 0);
    // a set-id file whose owner (group) this restore, not root, cannot give it: restored without
    // that bit, as cp -p does, and said: it would run as the restoring user for whoever runs it
    let mode = e.mode;
    if (!this.o.asRoot) {
      if (mode & 0o4000 && e.uid !== this.euid) mode &= ~0o4000;
      if (mode & 0o2000 && mode & 0o010 && e.gid !== this.egid) mode &= ~0o2000;
    }
    io[IO.META] = e.uid;
    io[IO.META + 1] = e.gid;
    io[IO.META + 2] = mode;
    io[IO.META + 3] = e.mtimeSec;
    io[IO.META + 4] = e.mtimeNsec;
    const rc = sys.copy(f.src, e.name, f.dst, e.name, io, e.xattrs);
    if (rc < 0) {
      const { stage, code } = splitStaged(rc);
      throw new EntryError(code, STAGE_TEXT[stage] ?? 'cannot copy');
    }
    this.stats.bytes += io[IO.BYTES]!;
    if (mode !== e.mode) {
      const bits = [e.mode & ~mode & 0o4000 ? 'set-uid' : '', e.mode & ~mode & 0o2000 ? 'set-gid' : ''].filter(Boolean);
      this.problem(
        rel,
        'EPRIV',
        `restored without its ${bits.join(' and ')} bit${bits.length > 1 ? 's' : ''}: this restore (not root) cannot give it its owner (uid ${e.uid}, gid ${e.gid}), and as the restoring user's it would run as that user for whoever runs it; restore as root to keep them`,
        'inexact',
      );
    }
    if (io[IO.XREFUSED]) this.refused(io[IO.XREFUSED]!);
    if (io[IO.WITHHELD])
      this.problem(
        rel,
        'EPRIV',
        "restored without its set-id bits and file capability: the target's file system cannot make a file without a name (O_TMPFILE), and its owner could have written it before they were set; check it, then set them",
        'inexact',
      );
    if (first) this.remember(key, { dirRel: f.rel, name: e.name, ino: io[IO.NEW_INO]!, fd: keep ? this.counted(io[IO.KEPT]!) : -1 });
    if (e.hash !== null && hashHex(io[IO.HASH_HI]!, io[IO.HASH_LO]!) !== e.hash) {
      this.problem(
        rel,
        'EHASH',
        `restored, but its content does not match the hash the manifest recorded (${e.hash}): the backup copy was altered or is damaged`,
        'inexact',
      );
    } else if (e.hash === null && !(e.flags & FROM_SCAN) && io[IO.BYTES] !== e.size) {
      this.problem(
        rel,
        'ESIZE',
        `restored, but its size (${io[IO.BYTES]}) is not the recorded ${e.size}: the backup copy was altered or is damaged`,
        'inexact',
      );
    }
  }

  /**
   * Another name of an inode already restored: true when linked; why not when it cannot be
   * linked (the caller makes it anew and says so). The group then forgets its first name, so that
   * the entry made instead becomes it, for the group's later names; not for EXDEV (a mount point
   * in the target between them): the first name stays the group's, for its names beside it.
   */
  private link(f: DirFrame, e: ManifestEntry, base: LinkBase): true | { code: string; why: string } {
    const rc = (base.fd >= 0 ? this.linkFromDescriptor(f, e, base) : null) ?? this.linkByName(f, e, base);
    if (rc === null || rc === -E.EMLINK || rc === -E.EXDEV) {
      // (EXDEV: the first name stays the group's, for its names on its own file system)
      if (rc !== -E.EXDEV) {
        this.groups.delete(this.groupKey(e)!);
        this.drop(base);
      }
      if (rc === null)
        return {
          code: 'ESHARED',
          why: `its first name (${displayPath(joinRel(base.dirRel, base.name))}) is in a directory others can write, who could have put a file of theirs there in its place, and this restore holds no descriptor of it (it holds at most ${heldLimit()}, half its descriptor limit, fewer in a deep tree; a user on Linux before 6.10 without /proc holds none)`,
        };
      return rc === -E.EMLINK
        ? { code: 'EMLINK', why: "the target's file system holds no more names of one inode (EMLINK)" }
        : { code: 'EXDEV', why: 'its first name is on another file system of the target (a mount point between them)' };
    }
    if (rc < 0) {
      throw new EntryError(errnoName(rc), 'cannot create the hard link');
    }
    if (sys.fstatat(f.dst, e.name, this.st, 1) !== 0 || this.st[ST.INO] !== base.ino) {
      sys.unlinkat(f.dst, e.name, 0);
      throw new EntryError('ECHANGED', 'the first restored name of this hard link was replaced during the restore: link removed');
    }
    this.uncount(e);
    this.stats.hardlinks++;
    return true;
  }

  /**
   * e linked into f from the descriptor of its group's first name: 0 or -errno; null when this
   * process cannot link from a descriptor (a user on Linux < 6.10 without /proc): then by name,
   * for this and every later group.
   */
  private linkFromDescriptor(f: DirFrame, e: ManifestEntry, base: LinkBase): number | null {
    let rc = this.fromDescriptor === 'proc' ? this.linkFromProc(f, e, base) : sys.linkat(base.fd, '', f.dst, e.name, sys.AT_EMPTY_PATH);
    // ENOENT: the inode has no name left (removed by whoever can write its directory), the
    // directory linked into was removed (by whoever can write its parent), or, the first time
    // with both alive (never because of one directory), the kernel's refusal of AT_EMPTY_PATH
    if (rc === -E.ENOENT && this.fromDescriptor === undefined && !this.gone(f, base)) {
      rc = this.linkFromProc(f, e, base);
      if (rc === -E.ENOENT && !this.gone(f, base)) {
        this.fromDescriptor = false;
        this.release();
        return null;
      }
      if (rc === 0) this.fromDescriptor = 'proc';
    } else if (rc === 0) this.fromDescriptor ??= 'empty-path';
    if (rc === -E.ENOENT) throw this.gone(f, base) ?? new EntryError('ENOENT', 'cannot create the hard link');
    return rc;
  }

  /** e linked into f from base's descriptor through /proc/self/fd (as an O_TMPFILE file is given its name): 0 or -errno. */
  private linkFromProc(f: DirFrame, e: ManifestEntry, base: LinkBase): number {
    return sys.linkat(sys.AT_FDCWD, `/proc/self/fd/${base.fd}`, f.dst, e.name, sys.AT_SYMLINK_FOLLOW);
  }

  /** Why a link from base's descriptor into f finds nothing (ENOENT): its inode or f removed; null when both are alive. */
  private gone(f: DirFrame, base: LinkBase): EntryError | null {
    if (sys.fstat(base.fd, this.st) === 0 && this.st[ST.NLINK] === 0)
      return new EntryError('ECHANGED', 'the first restored name of this hard link was removed during the restore: not linked');
    if (sys.fstat(f.dst, this.st) !== 0 || this.st[ST.NLINK] === 0)
      return new EntryError('ENOENT', 'cannot create the hard link: the directory it goes in was removed during the restore');
    return null;
  }

  /**
   * e linked into f from its group's first name by that name (checked by inode number by the
   * caller): 0 or -errno; null when that name's directory is not this process's alone (its
   * owner, or one it lets write, could have removed the name and given the freed inode number
   * to a file of theirs, which the check by number would take for the group's).
   */
  private linkByName(f: DirFrame, e: ManifestEntry, base: LinkBase): number | null {
    const pfd = this.o.target!.openBeneath(this.o.baseFd, base.dirRel);
    if (pfd < 0) throw new EntryError(errnoName(pfd), 'cannot reach the first restored name of this hard link');
    if (sys.fstat(pfd, this.st) !== 0 || this.st[ST.UID] !== this.euid || this.st[ST.MODE]! & 0o022) {
      sys.close(pfd);
      return null;
    }
    const rc = sys.linkat(pfd, base.name, f.dst, e.name);
    sys.close(pfd);
    return rc;
  }

  /**
   * The metadata of a symlink or special file just made at dirfd/e.name: set on that inode only
   * (opened once, not followed; it must still be this process's, of e's type, with one name), so that a name
   * swapped for a symlink or another file in a target others can write is never changed instead.
   */
  private meta(dirfd: number, e: ManifestEntry, what: number): void {
    const bits = this.bits(what, e) | SETMETA.FRESH | expectType(e.type);
    const rc = sys.setmeta(dirfd, e.name, -1, e.uid, e.gid, e.mode, e.mtimeSec, e.mtimeNsec, bits, e.xattrs);
    if (rc < 0) {
      const { stage, code } = splitStaged(rc);
      if (stage === META_STAGE.ENTRY) throw new EntryError(code, `replaced by something else while it was restored (${code}): its metadata was not set`);
      throw new EntryError(code, 'cannot set its metadata');
    }
    this.refused(rc);
  }

  problem(rel: Buffer, code: string, message: string, kind: ProblemKind = 'missing'): void {
    this.o.assertPresent?.();
    this.stats.problems++;
    const p = { part: this.o.part, path: rel, code, message, kind };
    this.problems.push(p);
    this.o.events.onProblem?.(p);
  }

  private close(f: DirFrame): void {
    if (f.src >= 0) sys.close(f.src);
    if (f.dst >= 0) sys.close(f.dst);
  }
}

function must(rc: number, what: string): void {
  if (rc < 0) throw new EntryError(errnoName(rc), what);
}
