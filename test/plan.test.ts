// The plan of one directory (src/plan/plan-dir.ts) and the claims of a generation's inodes
// (src/apply/claims.ts): pure, table-tested, no disk.
import { describe, expect, test } from 'vitest';
import { attributeReason, decide } from '../src/plan/decide.js';
import { planDir, type PlanContext, type Step } from '../src/plan/plan-dir.js';
import { SourceLinkNames } from '../src/plan/link-names.js';
import { DecodedDir } from '../src/apply/prev-tree.js';
import { ClaimedInodes } from '../src/apply/claims.js';
import { formatXattrs } from '../src/fs/xattrs.js';
import { sameMeta, sameMetaBesideEntries, type SourceEntry } from '../src/fs/entry.js';
import type { ManifestEntry } from '../src/manifest/format.js';

const acl = formatXattrs([{ name: Buffer.from('system.posix_acl_access'), value: Buffer.from([2, 0, 0, 0]) }]);
const label = formatXattrs([{ name: Buffer.from('security.selinux'), value: Buffer.from('a_t\0') }]);

function src(name: string, over: Partial<SourceEntry> = {}): SourceEntry {
  return {
    name: Buffer.from(name),
    type: 'file',
    mode: 0o644,
    uid: 1,
    gid: 1,
    size: 3,
    mtimeSec: 100,
    mtimeNsec: 5,
    rdev: 0,
    target: null,
    xattrs: null,
    err: 0,
    nlink: 1,
    ino: 10,
    dev: 1,
    blocks: 8,
    ctimeSec: 200,
    ctimeNsec: 7,
    xattrsRead: false,
    xattrErr: 0,
    ...over,
  };
}
function rec(name: string, over: Partial<ManifestEntry> = {}): ManifestEntry {
  return {
    name: Buffer.from(name),
    type: 'file',
    mode: 0o644,
    uid: 1,
    gid: 1,
    size: 3,
    mtimeSec: 100,
    mtimeNsec: 5,
    rdev: 0,
    target: null,
    xattrs: null,
    flags: 0,
    linkGroup: 0,
    ino: 70,
    hash: 'aaaaaaaaaaaaaaaa',
    ctimeSec: 200,
    ctimeNsec: 7,
    // the source inode of src() (format 4)
    srcIno: 10,
    ...over,
  };
}
const ctx = (over: Partial<PlanContext> = {}): PlanContext => ({
  prevAvailable: true,
  asRoot: true,
  checksum: false,
  xattrs: true,
  excludes: { empty: true, excluded: () => false },
  skipDirs: new Map(),
  oneFileSystem: false,
  rootDev: 1,
  recordCopies: false,
  prevXattrsTrusted: true,
  ...over,
});
const summary = (s: Step) => (s.kind === 'decided' ? `${s.d.action}: ${s.d.reason}` : s.kind === 'inspect' ? `inspect ${s.need}` : s.kind);

describe('planDir: one step per entry, merged with the previous records', () => {
  const cases: [string, SourceEntry, ManifestEntry | undefined, Partial<PlanContext>, string][] = [
    ['new file', src('a', { xattrsRead: true }), undefined, {}, 'copy: new'],
    ['new file whose attributes the scan did not read (an old ctime: moved in with its directory)', src('a'), undefined, {}, 'inspect xattrs'],
    ["unchanged, ctime unchanged: the record's attributes stand", src('a'), rec('a', { xattrs: acl }), {}, 'link: unchanged'],
    ['ctime moved, attributes not read yet', src('a', { ctimeNsec: 8 }), rec('a'), {}, 'inspect xattrs'],
    // a tree renamed over another made in the same clock tick: equal ctimes, another inode (an attack on issue 17)
    ['the same ctime on another source inode: attributes read', src('a', { ino: 11 }), rec('a', { xattrs: acl }), {}, 'inspect xattrs'],
    ['a record without the source inode (format 3): attributes read', src('a'), rec('a', { xattrs: acl, srcIno: 0 }), {}, 'inspect xattrs'],
    [
      'the same ctime and inode number on another file system mounted in the source: attributes read',
      src('a', { dev: 2 }),
      rec('a', { xattrs: acl }),
      {},
      'inspect xattrs',
    ],
    // a write moves the ctime too: the content is compared before a link (decide.ts compareReason)
    [
      'ctime moved, attributes read and the same: the content is compared',
      src('a', { ctimeNsec: 8, xattrsRead: true, xattrs: acl }),
      rec('a', { xattrs: acl }),
      {},
      'inspect checksum',
    ],
    [
      'the same ctime, another inode with attributes read and the same: the content is compared',
      src('a', { ino: 11, xattrsRead: true }),
      rec('a'),
      {},
      'inspect checksum',
    ],
    [
      'a record without a ctime (racy) in a manifest that records them: the content is compared',
      src('a', { xattrsRead: true }),
      rec('a', { ctimeSec: 0, ctimeNsec: 0 }),
      { prevRecordsCtime: true },
      'inspect checksum',
    ],
    [
      'a record of format 2 (no ctimes): size and mtime decide',
      src('a', { xattrsRead: true }),
      rec('a', { ctimeSec: 0, ctimeNsec: 0, srcIno: 0 }),
      { prevRecordsCtime: false },
      'link: unchanged',
    ],
    [
      'a record read from the previous generation itself (a damaged manifest block: no ctime, no hash): size and mtime decide',
      src('a', { xattrsRead: true }),
      rec('a', { ctimeSec: 0, ctimeNsec: 0, srcIno: 0, hash: null }),
      { prevRecordsCtime: true },
      'link: unchanged',
    ],
    ['an ACL-only change', src('a', { ctimeNsec: 8, xattrsRead: true, xattrs: acl }), rec('a'), {}, 'copy: acl'],
    ['an attribute-only change', src('a', { ctimeNsec: 8, xattrsRead: true, xattrs: label }), rec('a', { xattrs: acl }), {}, 'copy: acl, xattrs'],
    ['records that do not stand for attributes (--no-xattrs before)', src('a'), rec('a'), { prevXattrsTrusted: false }, 'inspect xattrs'],
    [
      'records made with --no-xattrs: what the previous inode carries is read from it first',
      src('a', { xattrsRead: true }),
      rec('a'),
      { prevXattrsTrusted: false, prevXattrsUnrecorded: true },
      'inspect prev-xattrs',
    ],
    [
      'a directory has no previous inode to link: not read',
      src('d', { type: 'dir', xattrsRead: true }),
      rec('d', { type: 'dir' }),
      { prevXattrsTrusted: false, prevXattrsUnrecorded: true },
      'mkdir: directory',
    ],
    ['--no-xattrs: attributes ignored', src('a', { xattrs: acl, xattrsRead: true }), rec('a'), { xattrs: false }, 'link: unchanged'],
    ['stat failed', src('a', { err: 13 }), rec('a'), {}, 'unreadable'],
    ['attributes unreadable', src('a', { xattrErr: 5 }), rec('a'), {}, 'unreadable'],
    ['--checksum on an unchanged-looking file', src('a'), rec('a'), { checksum: true }, 'inspect checksum'],
    ['the spool inside the source', src('s', { type: 'dir', dev: 9, ino: 9 }), undefined, { skipDirs: new Map([['9:9', 'the spool']]) }, 'spool'],
    ['excluded', src('x'), undefined, { excludes: { empty: false, excluded: (_r, n) => n.toString() === 'x' } }, 'excluded'],
    ['another file system under -x', src('m', { type: 'dir', dev: 2, size: 0, xattrsRead: true }), undefined, { oneFileSystem: true }, 'mkdir: new directory'],
  ];
  test.each(cases)('%s', (_what, e, p, over, want) => {
    const steps = planDir(Buffer.alloc(0), [e], new DecodedDir(p ? [p] : []), ctx(over));
    expect(steps.map(summary)).toEqual([want]);
    if (want.startsWith('mkdir') && over.oneFileSystem) expect(steps[0]).toMatchObject({ crossesMount: true });
  });

  test('entries and records merge by name bytes, each entry once', () => {
    const prev = new DecodedDir([rec('a'), rec('c'), rec('\xff')]);
    const steps = planDir(Buffer.alloc(0), [src('b', { xattrsRead: true }), src('c'), src('d', { xattrsRead: true })], prev, ctx());
    expect(steps.map((s) => [s.e.name.toString(), summary(s)])).toEqual([
      ['b', 'copy: new'],
      ['c', 'link: unchanged'],
      ['d', 'copy: new'],
    ]);
  });

  test('attributeReason tells ACLs from other attributes', () => {
    expect(attributeReason(acl, null)).toBe('acl');
    expect(attributeReason(null, label)).toBe('xattrs');
    expect(decide(src('a', { xattrs: label }), rec('a'), { prevAvailable: true, asRoot: true, xattrs: true })).toEqual({ action: 'copy', reason: 'xattrs' });
  });

  test("one rule of \"unchanged\": the watch audit's (sameMetaBesideEntries) is decide's, but for a directory's mtime", () => {
    const dir = { type: 'dir' as const, size: 0 };
    // what changed, the entry, its record, then what the audit says (same?) and decide's reason
    const cases: [string, Partial<SourceEntry>, Partial<ManifestEntry>, boolean, string][] = [
      ['a file as recorded', {}, {}, true, 'unchanged'],
      ['a file, mtime', { mtimeNsec: 6 }, {}, false, 'mtime'],
      ['a file, mode', { mode: 0o600 }, {}, false, 'mode'],
      ['a file, owner', { gid: 2 }, {}, false, 'owner'],
      ['a file, size', { size: 4 }, {}, false, 'size'],
      ['a symlink, target', { type: 'symlink', target: Buffer.from('x') }, { type: 'symlink', target: Buffer.from('y') }, false, 'target'],
      ['a directory as recorded', dir, dir, true, 'directory'],
      ['a directory, mtime', { ...dir, mtimeSec: 101 }, dir, true, 'directory'],
      ['a directory, mode', { ...dir, mode: 0o700 }, dir, false, 'directory'],
      ['a directory, owner', { ...dir, uid: 0 }, dir, false, 'directory'],
      ['a directory, group', { ...dir, gid: 2 }, dir, false, 'directory'],
      ['a directory where a file was', dir, {}, false, 'new directory'],
      ['a file where a directory was', {}, dir, false, 'type dir -> file'],
    ];
    for (const [what, e, p, same, reason] of cases) {
      expect(sameMetaBesideEntries(src('a', e), rec('a', p)), what).toBe(same);
      expect(decide(src('a', e), rec('a', p), ctx()).reason, what).toBe(reason);
    }
    // beside a directory's mtime, the two agree
    for (const [what, e, p] of cases) {
      if (e.type === 'dir' && p.type === 'dir' && e.mtimeSec !== undefined) continue;
      expect(sameMetaBesideEntries(src('a', e), rec('a', p)), what).toBe(sameMeta(src('a', e), rec('a', p)));
    }
  });
});

describe('planDir: names of one source inode (nlink > 1), across directories', () => {
  const linked = (s: Step) =>
    s.kind === 'decided' || s.kind === 'inspect' ? (s.linkTo ? `${s.linkTo.to.toString()}${s.linkTo.changed ? ' (changed)' : ''}` : 'first') : s.kind;
  const two = { nlink: 2, ino: 40, xattrsRead: true };

  test('the first name met is planned as any entry, every further name as a hard link to it, in later directories too', () => {
    const names = new SourceLinkNames();
    const c = ctx({ linkNames: names });
    const d1 = planDir(Buffer.from('a'), [src('x', two), src('y', { ...two, ino: 41 }), src('z', two)], new DecodedDir([]), c);
    expect(d1.map((s) => [s.e.name.toString(), summary(s), linked(s)])).toEqual([
      ['x', 'copy: new', 'first'],
      ['y', 'copy: new', 'first'],
      ['z', 'copy: new', 'a/x'],
    ]);
    // a further name keeps its own decision (the builder makes it the first should the first fail)
    const d2 = planDir(Buffer.from('b/c'), [src('v', two), src('w', { ...two, ino: 41 })], new DecodedDir([rec('v', { srcIno: 40 })]), c);
    expect(d2.map((s) => [s.e.name.toString(), summary(s), linked(s)])).toEqual([
      ['v', 'link: unchanged', 'a/x'],
      ['w', 'copy: new', 'a/y'],
    ]);
  });

  const cases: [string, SourceEntry, Partial<PlanContext>, string][] = [
    ['an excluded first name', src('x', two), { excludes: { empty: false, excluded: (_r, n) => n.toString() === 'x' } }, 'excluded'],
    ['an unreadable first name (stat failed)', src('x', { ...two, err: 13 }), {}, 'unreadable'],
    ['a first name whose attributes cannot be read', src('x', { ...two, xattrsRead: false, xattrErr: 5 }), {}, 'unreadable'],
  ];
  test.each(cases)('%s is no first name: the next name met is', (_what, first, over, want) => {
    const c = ctx({ linkNames: new SourceLinkNames(), ...over });
    const steps = planDir(Buffer.alloc(0), [first, src('y', two)], new DecodedDir([]), c);
    expect(steps.map(linked)).toEqual([want, 'first']);
  });

  test('an entry whose attributes are to be read first is still named first or further (its plan goes on from there)', () => {
    const c = ctx({ linkNames: new SourceLinkNames() });
    const steps = planDir(Buffer.alloc(0), [src('x', { ...two, xattrsRead: false }), src('y', { ...two, xattrsRead: false })], new DecodedDir([]), c);
    expect(steps.map((s) => [summary(s), linked(s)])).toEqual([
      ['inspect xattrs', 'first'],
      ['inspect xattrs', 'x'],
    ]);
  });

  const other: [string, Partial<SourceEntry>][] = [
    ['another ctime', { ctimeNsec: 8 }],
    ['another mtime', { mtimeSec: 101 }],
    ['another size', { size: 4 }],
    ['another type', { type: 'symlink', target: Buffer.from('t') }],
  ];
  test.each(other)(
    'a name showing other metadata than its first name did (%s: the file changed between the reads, or its number is another file now) is planned as a further name marked changed (the builder compares what it holds)',
    (_what, over) => {
      const c = ctx({ linkNames: new SourceLinkNames() });
      const d1 = planDir(Buffer.from('a'), [src('x', two)], new DecodedDir([]), c);
      const d2 = planDir(Buffer.from('z'), [src('n1', { ...two, ...over }), src('n2', two)], new DecodedDir([]), c);
      expect([...d1, ...d2].map(linked)).toEqual(['first', 'a/x (changed)', 'a/x']);
    },
  );

  // found by an attack: on a file system with whole-second timestamps (ext4 with 128-byte
  // inodes) a file removed and another given its number within the same second showed the same
  // type, size, mtime and ctime, and its later names were linked to the removed file's copy
  test('a ctime in whole seconds never makes a further name the same as read: it is marked changed (the builder compares)', () => {
    const c = ctx({ linkNames: new SourceLinkNames() });
    const coarse = { ...two, ctimeNsec: 0, mtimeNsec: 0 };
    const d1 = planDir(Buffer.from('a'), [src('x', coarse)], new DecodedDir([]), c);
    const d2 = planDir(Buffer.from('z'), [src('n1', coarse)], new DecodedDir([]), c);
    expect([...d1, ...d2].map(linked)).toEqual(['first', 'a/x (changed)']);
  });

  test('directories, files with one name, and a run without the registry are never linked to another name', () => {
    const c = ctx({ linkNames: new SourceLinkNames() });
    const steps = planDir(
      Buffer.alloc(0),
      [src('d', { type: 'dir', nlink: 3, ino: 40, xattrsRead: true }), src('f', { ino: 40, xattrsRead: true })],
      new DecodedDir([]),
      c,
    );
    expect(steps.map(linked)).toEqual(['first', 'first']);
    expect(planDir(Buffer.alloc(0), [src('x', two), src('y', two)], new DecodedDir([]), ctx()).map(linked)).toEqual(['first', 'first']);
  });
});

describe('ClaimedInodes: an inode is claimed once per generation', () => {
  test('a second claim is refused; numbers past 2^32 and many claims work', () => {
    const c = new ClaimedInodes();
    expect(c.claim(12)).toBe(true);
    expect(c.claim(12)).toBe(false);
    expect(c.has(12)).toBe(true);
    expect(c.has(13)).toBe(false);
    expect(c.claim(2 ** 40 + 12)).toBe(true);
    for (let i = 1; i <= 100_000; i++) expect(c.claim(1_000_000 + i)).toBe(true);
    for (let i = 1; i <= 100_000; i += 997) expect(c.claim(1_000_000 + i)).toBe(false);
    expect(c.size).toBe(100_002);
  });
});
