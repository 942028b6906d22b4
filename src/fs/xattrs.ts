/**
 * Extended attributes (ACLs, capabilities, SELinux labels, user attributes) as one canonical
 * byte string per entry, the form the native scan and copy return them in, the manifest stores
 * (once per distinct set) and restore applies:
 *
 *   per attribute, sorted by name bytes: u16 nameLen | u32 valueLen | name | value
 *
 * Two entries have the same attributes exactly when their blobs are equal bytes. An empty set
 * is `null`, never a zero-length Buffer.
 */

export interface Xattr {
  /** the full name with its namespace, e.g. `security.selinux`, `system.posix_acl_access` */
  name: Buffer;
  value: Buffer;
}

/** The namespaces Linux knows, as `check` and the per-run warnings name them. */
export type XattrNamespace = 'user' | 'trusted' | 'security' | 'system' | 'other';

export function namespaceOf(name: Buffer): XattrNamespace {
  const dot = name.indexOf(0x2e);
  const ns = dot < 0 ? '' : name.toString('latin1', 0, dot);
  return ns === 'user' || ns === 'trusted' || ns === 'security' || ns === 'system' ? ns : 'other';
}

/** The attributes of a blob, in its (name) order; throws on a malformed blob. */
/**
 * XFS's second view of a POSIX ACL (trusted.SGI_ACL_FILE / _DEFAULT), which system.posix_acl_*
 * carries: the native reader leaves these out (native/hardsnap.c xfs_acl_alias); a manifest of
 * an older version may still hold them.
 */
export function isXfsAclAlias(name: Buffer): boolean {
  const n = name.toString('latin1');
  return n === 'trusted.SGI_ACL_FILE' || n === 'trusted.SGI_ACL_DEFAULT';
}

export function parseXattrs(blob: Buffer | null): Xattr[] {
  const out: Xattr[] = [];
  if (!blob) return out;
  let o = 0;
  while (o < blob.length) {
    if (o + 6 > blob.length) throw new RangeError('extended attribute header runs past the end');
    const nl = blob.readUInt16LE(o);
    const vl = blob.readUInt32LE(o + 2);
    o += 6;
    if (o + nl + vl > blob.length || nl === 0) throw new RangeError('extended attribute runs past the end');
    out.push({ name: blob.subarray(o, o + nl), value: blob.subarray(o + nl, o + nl + vl) });
    o += nl + vl;
  }
  return out;
}

/** The canonical blob of a list of attributes (sorted here), or null when there are none. */
export function formatXattrs(list: Xattr[]): Buffer | null {
  if (!list.length) return null;
  const sorted = [...list].sort((a, b) => Buffer.compare(a.name, b.name));
  const parts: Buffer[] = [];
  for (const x of sorted) {
    const h = Buffer.allocUnsafe(6);
    h.writeUInt16LE(x.name.length, 0);
    h.writeUInt32LE(x.value.length, 2);
    parts.push(h, x.name, x.value);
  }
  return Buffer.concat(parts);
}

/** Same attributes (null and a zero-length blob both mean none). */
export function sameXattrs(a: Buffer | null | undefined, b: Buffer | null | undefined): boolean {
  const x = a && a.length ? a : null;
  const y = b && b.length ? b : null;
  return x === y || (x !== null && y !== null && x.equals(y));
}

/** The namespaces a blob holds attributes in. */
export function namespacesOf(blob: Buffer | null): Set<XattrNamespace> {
  return new Set(parseXattrs(blob).map((x) => namespaceOf(x.name)));
}

/** The blob without the attributes of the given namespaces (null when nothing is left). */
export function withoutNamespaces(blob: Buffer | null, drop: ReadonlySet<XattrNamespace>): Buffer | null {
  if (!blob || !drop.size) return blob;
  return formatXattrs(parseXattrs(blob).filter((x) => !drop.has(namespaceOf(x.name))));
}
