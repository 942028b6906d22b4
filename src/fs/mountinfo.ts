/**
 * The mount a path lives on, from /proc/self/mountinfo (proc(5)): its file-system type, source
 * and options, so `check` can say "this spool is on NFS" and advise noatime,nodiratime with the
 * fstab line to use. Parsing is pure and table-tested; only readMountFor touches the disk.
 */
import fs from 'node:fs';

export interface MountInfo {
  mountPoint: string;
  fstype: string;
  source: string;
  /** per-mount options (rw,noatime,...) */
  mountOptions: string[];
  /** per-superblock options (NFS: vers=, rsize=, addr=, ...) */
  superOptions: string[];
}

/** mountinfo escapes space, tab, newline and backslash as \ooo octal. */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function parseMountinfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (sep < 0 || f.length < sep + 3) continue;
    out.push({
      mountPoint: unescape(f[4]!),
      mountOptions: f[5]!.split(','),
      fstype: f[sep + 1]!,
      source: unescape(f[sep + 2]!),
      superOptions: (f[sep + 3] ?? '').split(',').filter(Boolean),
    });
  }
  return out;
}

/** The mount holding `realPath` (absolute, symlinks resolved): the last, longest match. */
export function mountOf(mounts: MountInfo[], realPath: string): MountInfo | undefined {
  let best: MountInfo | undefined;
  for (const m of mounts) {
    const mp = m.mountPoint;
    const inside = mp === '/' || realPath === mp || realPath.startsWith(mp.endsWith('/') ? mp : mp + '/');
    if (inside && (!best || mp.length >= best.mountPoint.length)) best = m;
  }
  return best;
}

export function isNfs(m: MountInfo): boolean {
  return m.fstype === 'nfs' || m.fstype === 'nfs4';
}

/**
 * For an NFS mount without noatime (or nodiratime): the options to add and the fstab line that
 * has them; null when nothing is missing. (noatime implies nodiratime on Linux, but both are
 * advised, as the sysadmin's checklist names them.)
 */
export function atimeAdvice(m: MountInfo): { missing: string[]; fstab: string } | null {
  const has = new Set(m.mountOptions);
  const missing = ['noatime', 'nodiratime'].filter((o) => !has.has(o));
  if (!missing.length) return null;
  const keep = m.mountOptions.filter((o) => o !== 'rw' && o !== 'relatime' && o !== 'strictatime' && o !== 'atime' && o !== 'diratime');
  const vers = m.superOptions.find((o) => o.startsWith('vers='));
  const opts = ['rw', ...(vers ? [vers] : []), ...keep, 'noatime', 'nodiratime'];
  const esc = (s: string) => s.replace(/[ \t\n\\]/g, (c) => '\\' + c.charCodeAt(0).toString(8).padStart(3, '0'));
  return { missing, fstab: `${esc(m.source)}  ${esc(m.mountPoint)}  ${m.fstype}  ${[...new Set(opts)].join(',')}  0  0` };
}

export function readMountFor(realPath: string, file = '/proc/self/mountinfo'): MountInfo | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  return mountOf(parseMountinfo(text), realPath);
}
