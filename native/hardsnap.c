/*
 * hardsnap's native seam: the descriptor-relative system calls Node.js does not offer
 * (utimensat with nanoseconds, mknodat, renameat2, openat2, syncfs, SEEK_DATA/SEEK_HOLE) and
 * two batch calls that keep per-entry overhead out of JavaScript on the hot path: a directory
 * scan (readdir + fstatat + readlinkat, sorted by name bytes, in one call) and a file copy
 * (open O_NOFOLLOW|O_NONBLOCK, fstat checks, sparse-aware copy with an inline XXH64, fstat
 * before/after to detect a file changing while it is read, metadata, all in one call).
 *
 * Convention: every function returns a number >= 0 on success or a negative value on failure.
 * For most calls that value is -errno. copy() and hashat() return -(stage << 16 | errno) so the
 * caller can say which step failed. Names and paths are Buffers (or strings) without NUL.
 * See src/fs/native.ts for the typed wrapper; nothing else calls this module.
 */
#include <node_api.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <stdio.h>
#include <unistd.h>
#include <zlib.h>

#include "xxh64.h"

#ifndef STATX_ATTR_MOUNT_ROOT
#define STATX_ATTR_MOUNT_ROOT 0x00002000 /* Linux 5.8 */
#endif

#define NAME_CAP (PATH_MAX + 1)
#define CHUNK (1 << 20)

/* ---------- argument helpers ---------- */

static int arg_num(napi_env env, napi_value v, double *out) {
  return napi_get_value_double(env, v, out) == napi_ok ? 0 : -EINVAL;
}

/* Copies a Buffer or string argument into buf as a C string. Returns its length or -errno. */
static int arg_path(napi_env env, napi_value v, char *buf) {
  bool isbuf = false;
  napi_is_buffer(env, v, &isbuf);
  if (isbuf) {
    void *data;
    size_t len;
    if (napi_get_buffer_info(env, v, &data, &len) != napi_ok) return -EINVAL;
    if (len >= NAME_CAP) return -ENAMETOOLONG;
    if (memchr(data, 0, len)) return -EINVAL;
    memcpy(buf, data, len);
    buf[len] = 0;
    return (int)len;
  }
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return -EINVAL;
  if (len >= NAME_CAP) return -ENAMETOOLONG;
  napi_get_value_string_utf8(env, v, buf, NAME_CAP, &len);
  if (strlen(buf) != len) return -EINVAL;
  return (int)len;
}

static napi_value num(napi_env env, double d) {
  napi_value r;
  napi_create_double(env, d, &r);
  return r;
}

#define ARGS(n)                                                  \
  size_t argc = n;                                               \
  napi_value argv[n];                                            \
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);          \
  if (argc < n) return num(env, -EINVAL)

/* up to n arguments, at least min of them (the rest optional: argc says how many came) */
#define OPTARGS(n, min)                                          \
  size_t argc = n;                                               \
  napi_value argv[n];                                            \
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);          \
  if (argc < min) return num(env, -EINVAL)

#define NUMARG(i, var)                                           \
  double var;                                                    \
  if (arg_num(env, argv[i], &var)) return num(env, -EINVAL)

#define PATHARG(i, var)                                          \
  char var[NAME_CAP];                                            \
  do {                                                           \
    int _r = arg_path(env, argv[i], var);                        \
    if (_r < 0) return num(env, _r);                             \
  } while (0)

static double *arg_f64array(napi_env env, napi_value v, size_t need) {
  napi_typedarray_type t;
  size_t len;
  void *data;
  if (napi_get_typedarray_info(env, v, &t, &len, &data, NULL, NULL) != napi_ok) return NULL;
  if (t != napi_float64_array || len < need) return NULL;
  return data;
}

static int arg_i32array(napi_env env, napi_value v, int32_t **out, size_t *len) {
  napi_typedarray_type t;
  void *data;
  if (napi_get_typedarray_info(env, v, &t, len, &data, NULL, NULL) != napi_ok || t != napi_int32_array) return -EINVAL;
  *out = data;
  return 0;
}

static int arg_buffer(napi_env env, napi_value v, void **data, size_t *len) {
  return napi_get_buffer_info(env, v, data, len) == napi_ok ? 0 : -EINVAL;
}

/* thread-local copy buffer: worker threads each get their own */
static __thread char *tbuf;
static char *copy_buffer(void) {
  if (!tbuf) tbuf = aligned_alloc(4096, CHUNK);
  return tbuf;
}

/* ---------- stat ---------- */

/* Fills out[0..15] from a struct stat (the layout src/fs/native.ts reads). */
enum {
  S_MODE, S_UID, S_GID, S_NLINK, S_SIZE, S_MTIME, S_MTIME_NS, S_INO, S_DEV, S_RDEV, S_BLOCKS,
  S_CTIME, S_CTIME_NS, S_ATIME, S_ATIME_NS, S_COUNT
};
static void fill_stat(double *out, const struct stat *st) {
  out[S_MODE] = st->st_mode;
  out[S_UID] = st->st_uid;
  out[S_GID] = st->st_gid;
  out[S_NLINK] = (double)st->st_nlink;
  out[S_SIZE] = (double)st->st_size;
  out[S_MTIME] = (double)st->st_mtim.tv_sec;
  out[S_MTIME_NS] = (double)st->st_mtim.tv_nsec;
  out[S_INO] = (double)st->st_ino;
  out[S_DEV] = (double)st->st_dev;
  out[S_RDEV] = (double)st->st_rdev;
  out[S_BLOCKS] = (double)st->st_blocks;
  out[S_CTIME] = (double)st->st_ctim.tv_sec;
  out[S_CTIME_NS] = (double)st->st_ctim.tv_nsec;
  out[S_ATIME] = (double)st->st_atim.tv_sec;
  out[S_ATIME_NS] = (double)st->st_atim.tv_nsec;
}

/* fstatat(dirfd, name, out, nofollow) */
static napi_value js_fstatat(napi_env env, napi_callback_info info) {
  ARGS(4);
  NUMARG(0, dirfd);
  PATHARG(1, name);
  double *out = arg_f64array(env, argv[2], S_COUNT);
  NUMARG(3, nofollow);
  if (!out) return num(env, -EINVAL);
  struct stat st;
  int flags = (nofollow ? AT_SYMLINK_NOFOLLOW : 0) | (name[0] ? 0 : AT_EMPTY_PATH);
  if (fstatat((int)dirfd, name, &st, flags) < 0) return num(env, -errno);
  fill_stat(out, &st);
  return num(env, 0);
}

/* ---------- extended attributes ---------- */

/*
 * An entry's extended attributes (ACLs, capabilities, SELinux labels, user attributes) as one
 * canonical byte string (src/fs/xattrs.ts): per attribute, sorted by name bytes,
 * u16 nameLen | u32 valueLen | name | value. An entry of a directory descriptor is reached as
 * /proc/self/fd/<dirfd>/<name> with the l* calls: the directory is the one the walk holds open
 * (no path re-resolution) and the entry itself is never followed (a symlink's own attributes).
 * With fd >= 0 the open descriptor is used instead (f* calls).
 */
struct xbuf {
  uint8_t *p;
  size_t len, cap;
};

static int xb_put(struct xbuf *b, const void *d, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n) cap *= 2;
    uint8_t *q = realloc(b->p, cap);
    if (!q) return -ENOMEM;
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->len, d, n);
  b->len += n;
  return 0;
}

static int xpath(char *buf, size_t cap, int dirfd, const char *name) {
  int n = name ? snprintf(buf, cap, "/proc/self/fd/%d/%s", dirfd, name) : snprintf(buf, cap, "/proc/self/fd/%d", dirfd);
  return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/*
 * The attribute calls by path: not following the entry (the l* calls), except for the path of
 * an O_PATH descriptor (xpath with a NULL name: /proc/self/fd/N, a link the kernel resolves to
 * that very inode, which a rename cannot change), which must be followed to reach it.
 */
static ssize_t x_list(const char *path, int follow, char *list, size_t size) {
  return follow ? listxattr(path, list, size) : llistxattr(path, list, size);
}
static ssize_t x_get(const char *path, int follow, const char *name, void *value, size_t size) {
  return follow ? getxattr(path, name, value, size) : lgetxattr(path, name, value, size);
}
static int x_set(const char *path, int follow, const char *name, const void *value, size_t size) {
  return follow ? setxattr(path, name, value, size, 0) : lsetxattr(path, name, value, size, 0);
}
static int x_remove(const char *path, int follow, const char *name) {
  return follow ? removexattr(path, name) : lremovexattr(path, name);
}

/*
 * XFS shows root each POSIX ACL a second time, as trusted.SGI_ACL_FILE / SGI_ACL_DEFAULT (its
 * on-disk form of system.posix_acl_access / _default). They are the same ACL: recorded, compared
 * and set once, as system.posix_acl_*; never removed as "not recorded" (that would drop the ACL).
 */
static int xfs_acl_alias(const char *n) {
  return !strcmp(n, "trusted.SGI_ACL_FILE") || !strcmp(n, "trusted.SGI_ACL_DEFAULT");
}

static int xname_cmp(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

#define XPATH_CAP (NAME_CAP + 64)

/* Appends the canonical form of fd's (or path's, followed when `follow`) attributes to out. 0 or -errno. */
static int xattrs_read(int fd, const char *path, int follow, struct xbuf *out) {
  char stack[1024];
  char *names = stack;
  ssize_t n = fd >= 0 ? flistxattr(fd, stack, sizeof stack) : x_list(path, follow, stack, sizeof stack);
  for (int tries = 0; n < 0 && errno == ERANGE && tries < 8; tries++) {
    ssize_t want = fd >= 0 ? flistxattr(fd, NULL, 0) : x_list(path, follow, NULL, 0);
    if (want < 0) break;
    if (names != stack) free(names);
    names = malloc((size_t)want + 1);
    if (!names) return -ENOMEM;
    n = fd >= 0 ? flistxattr(fd, names, (size_t)want) : x_list(path, follow, names, (size_t)want);
  }
  if (n < 0) {
    int e = errno;
    if (names != stack) free(names);
    return e == ENOTSUP || e == EOPNOTSUPP ? 0 : -e; /* a file system without attributes */
  }
  if (n == 0) {
    if (names != stack) free(names);
    return 0;
  }
  size_t count = 0;
  for (ssize_t i = 0; i < n; i++)
    if (names[i] == 0) count++;
  const char **list = malloc(count * sizeof *list);
  if (!list) {
    if (names != stack) free(names);
    return -ENOMEM;
  }
  size_t k = 0;
  for (ssize_t i = 0; i < n && k < count; i += (ssize_t)strlen(names + i) + 1)
    if (names[i] && !xfs_acl_alias(names + i)) list[k++] = names + i;
  count = k;
  qsort(list, count, sizeof *list, xname_cmp);
  int rc = 0;
  char vstack[4096];
  for (size_t i = 0; i < count && !rc; i++) {
    char *val = vstack;
    ssize_t vl = fd >= 0 ? fgetxattr(fd, list[i], vstack, sizeof vstack) : x_get(path, follow, list[i], vstack, sizeof vstack);
    for (int tries = 0; vl < 0 && errno == ERANGE && tries < 8; tries++) {
      ssize_t want = fd >= 0 ? fgetxattr(fd, list[i], NULL, 0) : x_get(path, follow, list[i], NULL, 0);
      if (want < 0) break;
      if (val != vstack) free(val);
      val = malloc((size_t)want + 1);
      if (!val) {
        rc = -ENOMEM;
        break;
      }
      vl = fd >= 0 ? fgetxattr(fd, list[i], val, (size_t)want) : x_get(path, follow, list[i], val, (size_t)want);
    }
    if (rc) break;
    if (vl < 0) {
      /* removed since it was listed: not there */
      if (errno != ENODATA) rc = -errno;
    } else {
      size_t nl = strlen(list[i]);
      uint8_t h[6] = {(uint8_t)nl, (uint8_t)(nl >> 8), (uint8_t)vl, (uint8_t)(vl >> 8), (uint8_t)(vl >> 16), (uint8_t)(vl >> 24)};
      if ((rc = xb_put(out, h, 6)) == 0 && (rc = xb_put(out, list[i], nl)) == 0) rc = xb_put(out, val, (size_t)vl);
    }
    if (val != vstack) free(val);
  }
  free(list);
  if (names != stack) free(names);
  return rc;
}

/*
 * The attributes of dirfd/name (fd < 0), of the O_PATH descriptor dirfd itself (name NULL, fd <
 * 0), or of fd, canonical; 0 or -errno.
 */
static int xattrs_of(int dirfd, const char *name, int fd, struct xbuf *out) {
  if (fd >= 0) return xattrs_read(fd, NULL, 0, out);
  char path[XPATH_CAP];
  int e = xpath(path, sizeof path, dirfd, name);
  return e ? e : xattrs_read(-1, path, !name, out);
}

/* namespace bit of an attribute name: 1 user, 2 trusted, 4 security, 8 system, 16 other */
static int xattr_ns_bit(const char *n) {
  if (!strncmp(n, "user.", 5)) return 1;
  if (!strncmp(n, "trusted.", 8)) return 2;
  if (!strncmp(n, "security.", 9)) return 4;
  if (!strncmp(n, "system.", 7)) return 8;
  return 16;
}

/*
 * Sets the attributes of a canonical blob on fd (or on the entry at path, not following it).
 * The spool may refuse a namespace (NFS without xattr support, trusted./security. for a
 * non-root run, ext4's one-block limit): such refusals are not errors, they are returned as a
 * mask of namespace bits (the manifest holds the attributes either way). -errno only for a
 * malformed blob.
 */
static int xattrs_write(int fd, const char *path, int follow, const uint8_t *blob, size_t len, int *skipcap) {
  int refused = 0;
  char name[XATTR_NAME_MAX + 1];
  /*
   * Three passes: the other attributes first (user.* needs write permission, which an ACL that
   * sets a read-only file's mode bits would take from a user who is not root), then the ACLs
   * (system.*), then security.capability (after the ACLs, as the kernel's order of restoring
   * wants it).
   */
  for (int pass = 0; pass < 3; pass++) {
    size_t o = 0;
    while (o < len) {
      if (o + 6 > len) return -EINVAL;
      size_t nl = blob[o] | (blob[o + 1] << 8);
      size_t vl = (size_t)blob[o + 2] | ((size_t)blob[o + 3] << 8) | ((size_t)blob[o + 4] << 16) | ((size_t)blob[o + 5] << 24);
      o += 6;
      if (nl == 0 || nl > XATTR_NAME_MAX || o + nl + vl > len) return -EINVAL;
      memcpy(name, blob + o, nl);
      name[nl] = 0;
      const void *val = blob + o + nl;
      o += nl + vl;
      int want = strcmp(name, "security.capability") == 0 ? 2 : strncmp(name, "system.", 7) == 0 ? 1 : 0;
      if (want != pass) continue;
      /* *skipcap: a file capability withheld (said back as 2) */
      if (want == 2 && skipcap && *skipcap) {
        *skipcap = 2;
        continue;
      }
      int r = fd >= 0 ? fsetxattr(fd, name, val, vl, 0) : x_set(path, follow, name, val, vl);
      if (r < 0) refused |= xattr_ns_bit(name);
    }
  }
  return refused;
}

static int xattrs_set(int dirfd, const char *name, int fd, const uint8_t *blob, size_t len) {
  if (!len) return 0;
  if (fd >= 0) return xattrs_write(fd, NULL, 0, blob, len, NULL);
  char path[XPATH_CAP];
  int e = xpath(path, sizeof path, dirfd, name);
  return e ? e : xattrs_write(-1, path, !name, blob, len, NULL);
}

/* getxattrs(dirfd, name[, fd]) -> Buffer (canonical, empty when none) | -errno */
static napi_value js_getxattrs(napi_env env, napi_callback_info info) {
  OPTARGS(3, 2);
  NUMARG(0, dirfd);
  PATHARG(1, name);
  double fd = -1;
  if (argc > 2 && arg_num(env, argv[2], &fd)) return num(env, -EINVAL);
  struct xbuf b = {0};
  int rc = xattrs_of((int)dirfd, name, (int)fd, &b);
  if (rc < 0) {
    free(b.p);
    return num(env, rc);
  }
  napi_value buf;
  void *data;
  napi_status st = napi_create_buffer_copy(env, b.len, b.len ? (void *)b.p : (void *)"", &data, &buf);
  free(b.p);
  return st == napi_ok ? buf : num(env, -ENOMEM);
}

/* removexattrAt(dirfd, name, fd, xattrName) -> 0 | -errno (ENODATA: it was not there) */
static napi_value js_removexattr_at(napi_env env, napi_callback_info info) {
  ARGS(4);
  NUMARG(0, dirfd);
  PATHARG(1, name);
  NUMARG(2, fd);
  PATHARG(3, xname);
  if ((int)fd >= 0) return num(env, fremovexattr((int)fd, xname) < 0 ? -errno : 0);
  char path[XPATH_CAP];
  int e = xpath(path, sizeof path, (int)dirfd, name);
  if (e) return num(env, e);
  return num(env, lremovexattr(path, xname) < 0 ? -errno : 0);
}

/* ---------- directory scan ---------- */

struct dent {
  char *name;
  size_t len;
};

static int dent_cmp(const void *a, const void *b) {
  const struct dent *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->name, y->name, n);
  if (c) return c;
  return x->len < y->len ? -1 : x->len > y->len;
}

#define REC_HEAD 96
#define XATTR_NOT_READ 0xffffffffu
static void put_u16(uint8_t *p, unsigned v) { p[0] = v & 0xff; p[1] = (v >> 8) & 0xff; }
static void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put_f64(uint8_t *p, double v) { memcpy(p, &v, 8); }

/* scandir's xflags: whose extended attributes it reads with the stat */
/* (either: only entries whose ctime is at or after ctimeMin; an older ctime means attributes
 * unchanged since the previous scan, taken from its record when that has the same ctime) */
#define SCAN_XATTR_OTHER 1 /* directories, symlinks, special files */
#define SCAN_XATTR_FILES 2 /* regular files */

/*
 * scandir(fd[, xflags, ctimeMin]) -> Buffer | -errno. One record per entry except . and ..,
 * sorted by name bytes:
 *   u16 nameLen, u16 targetLen, i32 err, u32 mode, u32 uid, u32 gid, u32 nlink,
 *   f64 size, f64 mtimeSec, u32 mtimeNsec, u32 ctimeNsec, f64 ctimeSec, f64 ino, f64 dev,
 *   f64 rdev, f64 blocks, u32 xattrLen (0xffffffff: not read), i32 xattrErr,
 *   name bytes, symlink target bytes, attribute bytes (canonical, see xattrs_read).
 * err is the errno of fstatat (ENOENT: vanished since readdir) or of readlinkat; xattrErr the
 * errno of reading the attributes (the entry is then unreadable in this run).
 * skip (u16 length + name bytes, repeated; may be NULL): names that are not stat-ed, whose
 * record has only the name, err = SCAN_SKIPPED and xattrLen not read (watch mode: entries the
 * journal says are unchanged, taken from the previous manifest).
 */
#define SCAN_SKIPPED 0x40000000

/* One entry's stat, symlink target and attributes, as do_scandir records them. */
struct sres {
  struct stat st;
  int e, xe;
  uint32_t xl; /* XATTR_NOT_READ: not read */
  uint32_t tl;
  char *target;
  uint8_t *x;
};

/* Stats dirfd/name into r (target: PATH_MAX + 1 bytes for a symlink's target; xb: the attributes). */
static void stat_entry(int fd, const char *name, int skipped, int xflags, double ctimeMin, struct sres *r, char *target,
                       struct xbuf *xb) {
  memset(&r->st, 0, sizeof r->st);
  r->e = r->xe = 0;
  r->xl = XATTR_NOT_READ;
  r->tl = 0;
  if (skipped) {
    r->e = SCAN_SKIPPED;
    return;
  }
  if (fstatat(fd, name, &r->st, AT_SYMLINK_NOFOLLOW) < 0) {
    r->e = errno;
    return;
  }
  if (S_ISLNK(r->st.st_mode)) {
    ssize_t tl = readlinkat(fd, name, target, PATH_MAX + 1);
    if (tl < 0) r->e = errno;
    else r->tl = (uint32_t)tl;
  }
  int want = (S_ISREG(r->st.st_mode) ? (xflags & SCAN_XATTR_FILES) : (xflags & SCAN_XATTR_OTHER)) &&
             (double)r->st.st_ctim.tv_sec >= ctimeMin;
  if (want && !r->e) {
    xb->len = 0;
    int rc = xattrs_of(fd, name, -1, xb);
    if (rc < 0) r->xe = -rc;
    else r->xl = (uint32_t)xb->len;
  }
}

/*
 * With SCAN_PARALLEL (a source on a file system where each stat is a network round trip: NFS,
 * FUSE, ...), the entries of one directory are stat-ed by several threads at once, PSCAN_THREADS
 * in all, taking PSCAN_CHUNK entries at a time: a directory of 1,000 files costs ~1,000 / 16
 * round trips instead of 1,000. The records are the same, in the same order. (The 10,000-file
 * incremental with its source on latencyfs, 500 us per operation: 6.4 s before, 1.45 s with 8
 * threads, 1.0 s with 16, 1.0 s with 32: the walk's own round trips per directory remain.)
 */
#define SCAN_PARALLEL 4
#define PSCAN_THREADS 16
#define PSCAN_CHUNK 4
#define PSCAN_MIN 16
struct pscan_job {
  int fd, xflags;
  double ctimeMin;
  const struct dent *ents;
  const uint8_t *skipped;
  size_t n;
  struct sres *res;
  size_t next; /* the next chunk's first entry (atomic) */
};

static void *pscan_worker(void *arg) {
  struct pscan_job *j = arg;
  char target[PATH_MAX + 1];
  struct xbuf xb = {0};
  for (;;) {
    size_t from = __atomic_fetch_add(&j->next, PSCAN_CHUNK, __ATOMIC_RELAXED);
    if (from >= j->n) break;
    size_t to = from + PSCAN_CHUNK < j->n ? from + PSCAN_CHUNK : j->n;
    for (size_t i = from; i < to; i++) {
      struct sres *r = &j->res[i];
      stat_entry(j->fd, j->ents[i].name, j->skipped[i], j->xflags, j->ctimeMin, r, target, &xb);
      r->target = r->tl ? malloc(r->tl) : NULL;
      if (r->target) memcpy(r->target, target, r->tl);
      else if (r->tl) r->e = ENOMEM, r->tl = 0;
      size_t xl = r->xl == XATTR_NOT_READ ? 0 : r->xl;
      r->x = xl ? malloc(xl) : NULL;
      if (r->x) memcpy(r->x, xb.p, xl);
      else if (xl) r->xe = ENOMEM, r->xl = XATTR_NOT_READ;
    }
  }
  free(xb.p);
  return NULL;
}

/* The results of all n entries, stat-ed by this thread and up to PSCAN_THREADS - 1 others. */
static struct sres *pscan(int fd, int xflags, double ctimeMin, const struct dent *ents, const uint8_t *skipped, size_t n) {
  struct sres *res = calloc(n, sizeof *res);
  if (!res) return NULL;
  struct pscan_job j = {fd, xflags, ctimeMin, ents, skipped, n, res, 0};
  pthread_t t[PSCAN_THREADS - 1];
  int started = 0;
  size_t want = n / PSCAN_CHUNK < PSCAN_THREADS ? n / PSCAN_CHUNK : PSCAN_THREADS;
  for (size_t k = 1; k < want; k++)
    if (pthread_create(&t[started], NULL, pscan_worker, &j) == 0) started++;
  pscan_worker(&j); /* this thread works too; with no other thread started it does it all */
  for (int k = 0; k < started; k++) pthread_join(t[k], NULL);
  return res;
}
static int do_scandir(int fd, int xflags, double ctimeMin, const uint8_t *skipbuf, size_t skiplen, uint8_t **result,
                      size_t *result_len) {
  int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return -errno;
  DIR *d = fdopendir(dfd);
  if (!d) {
    int e = errno;
    close(dfd);
    return -e;
  }
  size_t cap = 64, n = 0;
  struct dent *ents = malloc(cap * sizeof *ents);
  int err = 0;
  for (;;) {
    errno = 0;
    struct dirent *de = readdir(d);
    if (!de) {
      err = errno;
      break;
    }
    const char *nm = de->d_name;
    if (nm[0] == '.' && (nm[1] == 0 || (nm[1] == '.' && nm[2] == 0))) continue;
    if (n == cap) {
      cap *= 2;
      ents = realloc(ents, cap * sizeof *ents);
    }
    ents[n].len = strlen(nm);
    ents[n].name = malloc(ents[n].len + 1);
    memcpy(ents[n].name, nm, ents[n].len + 1);
    n++;
  }
  if (err) {
    for (size_t i = 0; i < n; i++) free(ents[i].name);
    free(ents);
    closedir(d);
    return -err;
  }
  qsort(ents, n, sizeof *ents, dent_cmp);
  /* the names not to stat, sorted like the directory */
  size_t ns = 0, si = 0;
  struct dent *skip = NULL;
  if (skipbuf && skiplen) {
    size_t scap = 16;
    skip = malloc(scap * sizeof *skip);
    for (size_t o = 0; o + 2 <= skiplen;) {
      size_t l = (size_t)skipbuf[o] | (size_t)skipbuf[o + 1] << 8;
      if (o + 2 + l > skiplen) break;
      if (ns == scap) skip = realloc(skip, (scap *= 2) * sizeof *skip);
      skip[ns].name = (char *)skipbuf + o + 2;
      skip[ns].len = l;
      ns++;
      o += 2 + l;
    }
    qsort(skip, ns, sizeof *skip, dent_cmp);
  }
  /* which entries the skip list names */
  uint8_t *skipped = calloc(n ? n : 1, 1);
  if (!skipped) {
    for (size_t i = 0; i < n; i++) free(ents[i].name);
    free(ents);
    free(skip);
    closedir(d);
    return -ENOMEM;
  }
  for (size_t i = 0; i < n && ns; i++) {
    while (si < ns && dent_cmp(&skip[si], &ents[i]) < 0) si++;
    if (si < ns && dent_cmp(&skip[si], &ents[i]) == 0) skipped[i] = 1;
  }
  struct sres *par = NULL;
  if ((xflags & SCAN_PARALLEL) && n >= PSCAN_MIN) par = pscan(fd, xflags, ctimeMin, ents, skipped, n);
  size_t outcap = n * (REC_HEAD + 48) + 256, outlen = 0;
  uint8_t *out = malloc(outcap);
  char target[PATH_MAX + 1];
  struct xbuf xb = {0};
  for (size_t i = 0; i < n; i++) {
    struct sres one;
    struct sres *r = par ? &par[i] : &one;
    if (!par) {
      stat_entry(fd, ents[i].name, skipped[i], xflags, ctimeMin, r, target, &xb);
      r->target = target;
      r->x = xb.p;
    }
    size_t xlen = r->xl == XATTR_NOT_READ ? 0 : r->xl;
    size_t tl = r->tl;
    size_t need = REC_HEAD + ents[i].len + tl + xlen;
    if (outlen + need > outcap) {
      outcap = (outlen + need) * 2;
      out = realloc(out, outcap);
    }
    const struct stat *st = &r->st;
    uint8_t *p = out + outlen;
    put_u16(p, (unsigned)ents[i].len);
    put_u16(p + 2, (unsigned)tl);
    put_u32(p + 4, (uint32_t)r->e);
    put_u32(p + 8, st->st_mode);
    put_u32(p + 12, st->st_uid);
    put_u32(p + 16, st->st_gid);
    put_u32(p + 20, (uint32_t)st->st_nlink);
    put_f64(p + 24, (double)st->st_size);
    put_f64(p + 32, (double)st->st_mtim.tv_sec);
    put_u32(p + 40, (uint32_t)st->st_mtim.tv_nsec);
    put_u32(p + 44, (uint32_t)st->st_ctim.tv_nsec);
    put_f64(p + 48, (double)st->st_ctim.tv_sec);
    put_f64(p + 56, (double)st->st_ino);
    put_f64(p + 64, (double)st->st_dev);
    put_f64(p + 72, (double)st->st_rdev);
    put_f64(p + 80, (double)st->st_blocks);
    put_u32(p + 88, r->xl);
    put_u32(p + 92, (uint32_t)r->xe);
    memcpy(p + REC_HEAD, ents[i].name, ents[i].len);
    if (tl) memcpy(p + REC_HEAD + ents[i].len, r->target, tl);
    if (xlen) memcpy(p + REC_HEAD + ents[i].len + tl, r->x, xlen);
    outlen += need;
    if (par) {
      free(r->target);
      free(r->x);
    }
    free(ents[i].name);
  }
  free(par);
  free(skipped);
  free(xb.p);
  free(skip);
  free(ents);
  closedir(d);
  *result = out;
  *result_len = outlen;
  return 0;
}

/* scandir(fd[, xflags, ctimeMin, skip]) */
static napi_value js_scandir(napi_env env, napi_callback_info info) {
  OPTARGS(4, 1);
  NUMARG(0, fd);
  double xflags = 0, ctimeMin = 0;
  if (argc > 1 && arg_num(env, argv[1], &xflags)) return num(env, -EINVAL);
  if (argc > 2 && arg_num(env, argv[2], &ctimeMin)) return num(env, -EINVAL);
  void *skip = NULL;
  size_t skiplen = 0;
  if (argc > 3 && napi_get_buffer_info(env, argv[3], &skip, &skiplen) != napi_ok) return num(env, -EINVAL);
  uint8_t *out;
  size_t outlen;
  int rc = do_scandir((int)fd, (int)xflags, ctimeMin, skip, skiplen, &out, &outlen);
  if (rc < 0) return num(env, rc);
  napi_value buf;
  void *bdata;
  napi_create_buffer_copy(env, outlen, out, &bdata, &buf);
  free(out);
  return buf;
}

/* ---------- simple descriptor-relative calls ---------- */

/*
 * openat() with O_CLOEXEC; when O_NOATIME was asked and refused (EPERM: only the file's owner
 * may, and root), again without it. Every open of a source file or directory goes through it.
 */
static int openat_noatime(int dirfd, const char *name, int flags, mode_t mode) {
  int fd = openat(dirfd, name, flags | O_CLOEXEC, mode);
  if (fd < 0 && errno == EPERM && (flags & O_NOATIME)) fd = openat(dirfd, name, (flags & ~O_NOATIME) | O_CLOEXEC, mode);
  return fd;
}

static napi_value js_openat(napi_env env, napi_callback_info info) {
  ARGS(4);
  NUMARG(0, dirfd);
  PATHARG(1, name);
  NUMARG(2, flags);
  NUMARG(3, mode);
  int fd = openat_noatime((int)dirfd, name, (int)flags, (mode_t)mode);
  return num(env, fd < 0 ? -errno : fd);
}

/* openat2(dirfd, path, flags, mode, resolve): RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS etc. */
static napi_value js_openat2(napi_env env, napi_callback_info info) {
  ARGS(5);
  NUMARG(0, dirfd);
  PATHARG(1, path);
  NUMARG(2, flags);
  NUMARG(3, mode);
  NUMARG(4, resolve);
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = (uint64_t)((int)flags | O_CLOEXEC);
  how.mode = ((int)flags & (O_CREAT | O_TMPFILE)) ? (uint64_t)mode : 0;
  how.resolve = (uint64_t)resolve;
  long fd = syscall(SYS_openat2, (int)dirfd, path, &how, sizeof how);
  return num(env, fd < 0 ? -errno : (double)fd);
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  ARGS(1);
  NUMARG(0, fd);
  return num(env, close((int)fd) < 0 ? -errno : 0);
}

static napi_value js_fstat(napi_env env, napi_callback_info info) {
  ARGS(2);
  NUMARG(0, fd);
  double *out = arg_f64array(env, argv[1], S_COUNT);
  if (!out) return num(env, -EINVAL);
  struct stat st;
  if (fstat((int)fd, &st) < 0) return num(env, -errno);
  fill_stat(out, &st);
  return num(env, 0);
}

/*
 * mountsChanged(fd) -> 1 | 0 | -errno: whether the mount table of the namespace changed since
 * `fd` (/proc/self/mountinfo) was opened (proc(5): a change makes poll() report POLLPRI and
 * POLLERR), even a mount made and removed again in between. Never blocks.
 */
static napi_value js_mounts_changed(napi_env env, napi_callback_info info) {
  ARGS(1);
  NUMARG(0, fd);
  struct pollfd p = {(int)fd, POLLPRI, 0};
  int rc = poll(&p, 1, 0);
  if (rc < 0) return num(env, -errno);
  if (p.revents & POLLNVAL) return num(env, -EBADF);
  return num(env, rc > 0 && (p.revents & (POLLPRI | POLLERR)) ? 1 : 0);
}

static napi_value js_mkdirat(napi_env env, napi_callback_info info) {
  ARGS(3);
  NUMARG(0, dirfd);
  PATHARG(1, name);
  NUMARG(2, mode);
  return num(env, mkdirat((int)dirfd, name, (mode_t)mode) < 0 ? -errno : 0);
}

/* linkat(olddirfd, oldname, newdirfd, newname[, flags]): flags AT_EMPTY_PATH links the inode
   an O_PATH descriptor holds (oldname ''), wherever its names are now; AT_SYMLINK_FOLLOW with
   /proc/self/fd/N does the same for a user Linux before 6.10 refuses AT_EMPTY_PATH */
static napi_value js_linkat(napi_env env, napi_callback_info info) {
  OPTARGS(5, 4);
  NUMARG(0, olddirfd);
  PATHARG(1, oldname);
  NUMARG(2, newdirfd);
  PATHARG(3, newname);
  double flags = 0;
  if (argc > 4 && arg_num(env, argv[4], &flags)) return num(env, -EINVAL);
  return num(env, linkat((int)olddirfd, oldname, (int)newdirfd, newname, (int)flags) < 0 ? -errno : 0);
}

/*
 * linkBatch(olddirfd, newdirfd, packed, results[, inos]): links the same name from the old
 * directory into the new one, for each record of `packed`:
 *   u16 nameLen | name | u8 type (1 file, 3 symlink, 4 FIFO, 5 socket, 6 char, 7 block; 0: no
 *   check) | u8 flags (1: compare owner) | u32 mode | u32 uid | u32 gid | f64 size |
 *   f64 mtimeSec | u32 mtimeNsec | f64 ino (the inode recorded; 0: not compared)
 * The previous generation is evidence, not truth: after the link, the new name is stat-ed (one
 * fstatat in the same job) and compared with what the manifest recorded. results[i] is 0 when
 * linked and as recorded (inos[i] its inode number), -errno when the link failed, or a mask of
 * what drifted (1 type, 2 mode, 4 owner, 8 size, 16 mtime, 32 the new name could not be
 * stat-ed, 64 another inode than recorded: the file was replaced) after the link was removed
 * again. With newdirfd -1 nothing is linked: the old name is stat-ed and compared the same way
 * (what a dry run says it would link). Returns the number of records processed.
 */
#define LINK_REC_TAIL 42
static int drift_of(const struct stat *st, const uint8_t *t) {
  static const mode_t fmt[8] = {0, S_IFREG, S_IFDIR, S_IFLNK, S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK};
  int type = t[0], flags = t[1], m = 0;
  uint32_t mode, uid, gid, nsec;
  double size, sec, ino;
  memcpy(&mode, t + 2, 4);
  memcpy(&uid, t + 6, 4);
  memcpy(&gid, t + 10, 4);
  memcpy(&size, t + 14, 8);
  memcpy(&sec, t + 22, 8);
  memcpy(&nsec, t + 30, 4);
  memcpy(&ino, t + 34, 8);
  if (type < 1 || type > 7 || (st->st_mode & S_IFMT) != fmt[type]) return 1;
  if (type != 3 && (st->st_mode & 07777) != mode) m |= 2;
  if ((flags & 1) && (st->st_uid != uid || st->st_gid != gid)) m |= 4;
  if (type == 1 && (double)st->st_size != size) m |= 8;
  if ((double)st->st_mtim.tv_sec != sec || (uint32_t)st->st_mtim.tv_nsec != nsec) m |= 16;
  if (ino != 0 && (double)st->st_ino != ino) m |= 64;
  return m;
}

static size_t do_linkbatch(int olddirfd, int newdirfd, const uint8_t *p, size_t len, int32_t *res, size_t rlen,
                           double *inos, size_t ilen) {
  const uint8_t *end = p + len;
  char name[NAME_CAP];
  size_t i = 0;
  dev_t dirdev = 0;
  int dirdev_known = 0;
  while (p + 2 <= end && i < rlen) {
    size_t nl = p[0] | (p[1] << 8);
    p += 2;
    if (p + nl + LINK_REC_TAIL > end || nl >= NAME_CAP) break;
    memcpy(name, p, nl);
    name[nl] = 0;
    const uint8_t *t = p + nl;
    p += nl + LINK_REC_TAIL;
    struct stat st;
    if (newdirfd < 0) {
      /* only the check (a dry run): the previous name as it stands, nothing linked; an
       * immutable or append-only inode, which linkat refuses (EPERM), by statx's attributes */
      if (!dirdev_known) {
        struct stat d;
        dirdev = fstat(olddirfd, &d) == 0 ? d.st_dev : 0;
        dirdev_known = 1;
      }
      if (fstatat(olddirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) res[i] = -errno;
      else {
        struct statx sx;
        unsigned long long attrs = 0;
        if (syscall(SYS_statx, olddirfd, name, AT_SYMLINK_NOFOLLOW, 0, &sx) == 0) attrs = sx.stx_attributes & sx.stx_attributes_mask;
        if (st.st_dev != dirdev || (attrs & STATX_ATTR_MOUNT_ROOT)) res[i] = -EXDEV; /* a mount over it: linkat says EXDEV */
        else if ((res[i] = t[0] ? drift_of(&st, t) : 0)) {
        } else if (attrs & (STATX_ATTR_IMMUTABLE | STATX_ATTR_APPEND))
          res[i] = -EPERM;
        else if (inos && i < ilen)
          inos[i] = (double)st.st_ino;
      }
      i++;
      continue;
    }
    if (linkat(olddirfd, name, newdirfd, name, 0) < 0) {
      res[i++] = -errno;
      continue;
    }
    int r = 0;
    if (fstatat(newdirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) r = 32;
    else if (t[0]) r = drift_of(&st, t);
    if (r) unlinkat(newdirfd, name, 0);
    else if (inos && i < ilen) inos[i] = (double)st.st_ino;
    res[i++] = r;
  }
  return i;
}

static int arg_f64array_any(napi_env env, napi_value v, double **out, size_t *len) {
  napi_typedarray_type t;
  void *data;
  if (napi_get_typedarray_info(env, v, &t, len, &data, NULL, NULL) != napi_ok || t != napi_float64_array) return -EINVAL;
  *out = data;
  return 0;
}

static napi_value js_linkbatch(napi_env env, napi_callback_info info) {
  ARGS(5);
  double o, n;
  void *data;
  size_t len, rlen, ilen;
  int32_t *res;
  double *inos;
  if (arg_num(env, argv[0], &o) || arg_num(env, argv[1], &n) || arg_buffer(env, argv[2], &data, &len) ||
      arg_i32array(env, argv[3], &res, &rlen) || arg_f64array_any(env, argv[4], &inos, &ilen))
    return num(env, -EINVAL);
  return num(env, (double)do_linkbatch((int)o, (int)n, data, len, res, rlen, inos, ilen));
}

static napi_value js_symlinkat(napi_env env, napi_callback_info info) {
  ARGS(3);
  PATHARG(0, target);
  NUMARG(1, dirfd);
  PATHARG(2, name);
  return num(env, symlinkat(target, (int)dirfd, name) < 0 ? -errno : 0);
}

static napi_value js_mknodat(napi_env env, napi_callback_info info) {
  ARGS(4);
  NUMARG(0, dirfd);
  PATHARG(1, name);
  NUMARG(2, mode);
  NUMARG(3, rdev);
  return num(env, mknodat((int)dirfd, name, (mode_t)mode, (dev_t)rdev) < 0 ? -errno : 0);
}

static napi_value js_unlinkat(napi_env env, napi_callback_info info) {
  ARGS(3);
  NUMARG(0, dirfd);
  PATHARG(1, name);
  NUMARG(2, flags);
  return num(env, unlinkat((int)dirfd, name, (int)flags) < 0 ? -errno : 0);
}

/* renameat2(olddirfd, oldname, newdirfd, newname, flags): RENAME_NOREPLACE = 1 */
static napi_value js_renameat(napi_env env, napi_callback_info info) {
  ARGS(5);
  NUMARG(0, olddirfd);
  PATHARG(1, oldname);
  NUMARG(2, newdirfd);
  PATHARG(3, newname);
  NUMARG(4, flags);
  long r = syscall(SYS_renameat2, (int)olddirfd, oldname, (int)newdirfd, newname,
                   (unsigned)flags);
  return num(env, r < 0 ? -errno : 0);
}

static napi_value js_readlinkat(napi_env env, napi_callback_info info) {
  ARGS(2);
  NUMARG(0, dirfd);
  PATHARG(1, name);
  char target[PATH_MAX + 1];
  ssize_t n = readlinkat((int)dirfd, name, target, sizeof target);
  if (n < 0) return num(env, -errno);
  napi_value buf;
  void *bdata;
  napi_create_buffer_copy(env, (size_t)n, target, &bdata, &buf);
  return buf;
}

/*
 * Removes the attributes of fd (or of the entry at dirfd/name) whose names the canonical blob
 * does not hold: what an inherited default ACL or a killed run left on an inode this process
 * made. Refusals are ignored (the caller reports what it set, not what it could not clear).
 */
static void xattrs_prune(int dirfd, const char *name, int fd, const uint8_t *blob, size_t len) {
  struct xbuf cur = {0};
  if (xattrs_of(dirfd, name, fd, &cur) < 0 || !cur.len) {
    free(cur.p);
    return;
  }
  char path[XPATH_CAP];
  if (fd < 0 && xpath(path, sizeof path, dirfd, name)) {
    free(cur.p);
    return;
  }
  char xn[XATTR_NAME_MAX + 1];
  for (size_t o = 0; o + 6 <= cur.len;) {
    size_t nl = cur.p[o] | (cur.p[o + 1] << 8);
    size_t vl = (size_t)cur.p[o + 2] | ((size_t)cur.p[o + 3] << 8) | ((size_t)cur.p[o + 4] << 16) | ((size_t)cur.p[o + 5] << 24);
    o += 6;
    if (nl > XATTR_NAME_MAX || o + nl + vl > cur.len) break;
    int keep = 0;
    for (size_t q = 0; q + 6 <= len && !keep;) {
      size_t bnl = blob[q] | (blob[q + 1] << 8);
      size_t bvl = (size_t)blob[q + 2] | ((size_t)blob[q + 3] << 8) | ((size_t)blob[q + 4] << 16) | ((size_t)blob[q + 5] << 24);
      keep = bnl == nl && q + 6 + bnl <= len && !memcmp(blob + q + 6, cur.p + o, nl);
      q += 6 + bnl + bvl;
    }
    if (!keep) {
      memcpy(xn, cur.p + o, nl);
      xn[nl] = 0;
      if (fd >= 0) fremovexattr(fd, xn);
      else x_remove(path, !name, xn);
    }
    o += nl + vl;
  }
  free(cur.p);
}

/* setmeta on an open descriptor f (f >= 0), or on the inode of the O_PATH descriptor p (f < 0) */
static int setmeta_on(int p, int f, double uid, double gid, double mode, double msec, double mnsec, int w,
                      const uint8_t *xattrs, size_t xlen) {
  int refused = 0;
  char proc[XPATH_CAP];
  if (f < 0 && xpath(proc, sizeof proc, p, NULL)) return -(5 << 16 | ENAMETOOLONG);
  if (w & 1) {
    int r = f >= 0 ? fchown(f, (uid_t)uid, (gid_t)gid) : fchownat(p, "", (uid_t)uid, (gid_t)gid, AT_EMPTY_PATH);
    if (r < 0) return -(1 << 16 | errno);
  }
  if (w & 16) xattrs_prune(p, NULL, f, xattrs, xattrs ? xlen : 0);
  if ((w & 8) && xattrs && xlen) {
    refused = xattrs_set(p, NULL, f, xattrs, xlen);
    if (refused < 0) return -(4 << 16 | -refused);
  }
  if (w & 2) {
    int r = f >= 0 ? fchmod(f, (mode_t)mode & 07777) : chmod(proc, (mode_t)mode & 07777);
    if (r < 0) return -(2 << 16 | errno);
  }
  if (w & 4) {
    struct timespec ts[2] = {{0, UTIME_OMIT}, {(time_t)msec, (long)mnsec}};
    int r = f >= 0 ? futimens(f, ts) : utimensat(AT_FDCWD, proc, ts, 0);
    if (r < 0) return -(3 << 16 | errno);
  }
  return refused;
}

/*
 * setmeta(dirfd, name, fd, uid, gid, mode, mtimeSec, mtimeNsec, what[, xattrs]): what bits
 * 1 = chown, 2 = chmod, 4 = times (atime untouched), 8 = set the attributes of the canonical
 * blob `xattrs`, 16 = and remove the others. With fd >= 0 the open descriptor is changed; with
 * fd < 0 and name "", the inode of dirfd (an O_PATH descriptor: through /proc/self/fd/N).
 * Otherwise the entry dirfd/name is opened once, O_PATH | O_NOFOLLOW, and everything is done to
 * that inode through its descriptor (/proc/self/fd/N: a name swapped for a symlink or another
 * file between the calls is never followed to another inode); what bits 8-11 = the type the
 * entry must have (S_IFMT >> 12; 0: any) and 32 = it must be owned by this process's user and
 * have no other name (an entry it has just made, not a hard link to another of its files
 * swapped in): else nothing is done, stage 5 ESTALE. A symlink gets no chmod (Linux keeps no
 * mode on one); /proc/self/fd/N of its O_PATH descriptor is the symlink itself, never its
 * target. In this order: owner first (a chown clears security.capability and the set-id bits),
 * then the attributes (ACLs, then security.capability last), then the mode (so that a user who
 * is not root can still set user.* on a file that ends up read-only; an ACL and its mode agree,
 * so the chmod leaves the ACL as it was recorded), then the times. Returns -(stage << 16 |
 * errno) on failure, stage 1 chown, 2 chmod, 3 times, 4 a malformed blob, 5 the entry cannot be
 * opened or is not the one expected; else the mask of attribute namespaces the file system
 * refused (1 user, 2 trusted, 4 security, 8 system, 16 other), 0 when none.
 */
static int do_setmeta(int dirfd, const char *name, int f, double uid, double gid, double mode, double msec,
                      double mnsec, int w, const uint8_t *xattrs, size_t xlen) {
  /* an open descriptor, or (dirfd, ""): the O_PATH descriptor dirfd itself */
  if (f >= 0 || !name || !name[0]) return setmeta_on(dirfd, f, uid, gid, mode, msec, mnsec, w, xattrs, xlen);
  int p = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (p < 0) return -(5 << 16 | errno);
  struct stat st;
  int rc;
  unsigned want = ((unsigned)w >> 8) & 0xf;
  if (fstat(p, &st) < 0)
    rc = -(5 << 16 | errno);
  else if ((want && ((st.st_mode & S_IFMT) >> 12) != want) || ((w & 32) && (st.st_uid != geteuid() || st.st_nlink != 1)))
    rc = -(5 << 16 | ESTALE);
  else
    /* a symlink too: /proc/self/fd/N of an O_PATH descriptor of a symlink is the symlink itself
       (its attributes and times; no mode: Linux keeps none on one) */
    rc = setmeta_on(p, -1, uid, gid, mode, msec, mnsec, S_ISLNK(st.st_mode) ? w & ~2 : w, xattrs, xlen);
  close(p);
  return rc;
}

/* an optional Buffer argument (null or undefined: none) */
static int arg_opt_buffer(napi_env env, napi_value v, void **data, size_t *len) {
  napi_valuetype t;
  *data = NULL;
  *len = 0;
  if (napi_typeof(env, v, &t) != napi_ok) return -EINVAL;
  if (t == napi_null || t == napi_undefined) return 0;
  return arg_buffer(env, v, data, len);
}

static napi_value js_setmeta(napi_env env, napi_callback_info info) {
  OPTARGS(10, 9);
  NUMARG(0, dirfd);
  PATHARG(1, name);
  NUMARG(2, fd);
  NUMARG(3, uid);
  NUMARG(4, gid);
  NUMARG(5, mode);
  NUMARG(6, msec);
  NUMARG(7, mnsec);
  NUMARG(8, what);
  void *x = NULL;
  size_t xl = 0;
  if (argc > 9 && arg_opt_buffer(env, argv[9], &x, &xl)) return num(env, -EINVAL);
  return num(env, do_setmeta((int)dirfd, name, (int)fd, uid, gid, mode, msec, mnsec, (int)what, x, xl));
}

static napi_value js_syncfs(napi_env env, napi_callback_info info) {
  ARGS(1);
  NUMARG(0, fd);
  return num(env, syncfs((int)fd) < 0 ? -errno : 0);
}

static napi_value js_fsync(napi_env env, napi_callback_info info) {
  ARGS(1);
  NUMARG(0, fd);
  return num(env, fsync((int)fd) < 0 ? -errno : 0);
}

/*
 * statfs(fd, out): out[0] = f_type, out[1] and out[2] = the two words of f_fsid (stable across
 * reboots on ext4, XFS and btrfs: derived from the file system's UUID), out[3] = f_files,
 * out[4] = f_ffree.
 */
static napi_value js_statfs(napi_env env, napi_callback_info info) {
  ARGS(2);
  NUMARG(0, fd);
  double *out = arg_f64array(env, argv[1], 5);
  if (!out) return num(env, -EINVAL);
  struct statfs sf;
  if (fstatfs((int)fd, &sf) < 0) return num(env, -errno);
  int w[2];
  memcpy(w, &sf.f_fsid, sizeof w);
  out[0] = (double)(unsigned long)sf.f_type;
  out[1] = (double)(unsigned)w[0];
  out[2] = (double)(unsigned)w[1];
  out[3] = (double)sf.f_files;
  out[4] = (double)sf.f_ffree;
  return num(env, 0);
}

/* raise RLIMIT_NOFILE's soft limit to the hard limit; returns the new soft limit */
static napi_value js_raise_nofile(napi_env env, napi_callback_info info) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return num(env, -errno);
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) return num(env, -errno);
  }
  return num(env, (double)rl.rlim_cur);
}

/* ---------- data: copy and hash ---------- */

static const char zeros[65536];

static void hash_zeros(xxh64_state *h, off_t n) {
  while (n > 0) {
    size_t k = n > (off_t)sizeof zeros ? sizeof zeros : (size_t)n;
    xxh64_update(h, zeros, k);
    n -= (off_t)k;
  }
}

static int write_all(int fd, const char *p, size_t n, off_t off) {
  while (n) {
    ssize_t w = pwrite(fd, p, n, off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    p += w;
    n -= (size_t)w;
    off += w;
  }
  return 0;
}

/*
 * Reads sfd from the start, hashing everything (holes as zeros) and writing data to dfd when
 * dfd >= 0. Holes are skipped with SEEK_DATA/SEEK_HOLE when the file looks sparse, and the
 * destination is extended with ftruncate so they stay holes. Reads at most st->st_size bytes
 * (the size seen before reading): a file that grows faster than it is read (a busy log) would
 * otherwise be read forever; growth shows in the fstat after. Returns bytes read or -errno;
 * *werr tells whether a failure came from writing.
 */
static off_t pump(int sfd, int dfd, const struct stat *st, xxh64_state *h, int *werr) {
  char *buf = copy_buffer();
  if (!buf) return -ENOMEM;
  const off_t limit = st->st_size;
  off_t pos = 0, total = 0;
  int sparse = st->st_size > 0 && (off_t)st->st_blocks * 512 < st->st_size;
  *werr = 0;
  for (;;) {
    off_t end = -1; /* end of the current data extent, -1 = read to EOF */
    if (sparse) {
      off_t d = lseek(sfd, pos, SEEK_DATA);
      if (d < 0) {
        if (errno != ENXIO) return -errno;
        /* no more data: the rest up to the size seen now is a hole */
        struct stat now;
        if (fstat(sfd, &now) < 0) return -errno;
        off_t stop = now.st_size < limit ? now.st_size : limit;
        if (stop > pos) {
          hash_zeros(h, stop - pos);
          total += stop - pos;
          pos = stop;
        }
        break;
      }
      if (d > limit) d = limit;
      if (d > pos) {
        hash_zeros(h, d - pos);
        total += d - pos;
        pos = d;
      }
      end = lseek(sfd, pos, SEEK_HOLE);
      if (end < 0) return -errno;
    }
    if (end < 0 || end > limit) end = limit;
    int eof = 0;
    while (pos < end) {
      size_t want = CHUNK;
      if ((off_t)want > end - pos) want = (size_t)(end - pos);
      ssize_t r = pread(sfd, buf, want, pos);
      if (r < 0) {
        if (errno == EINTR) continue;
        return -errno;
      }
      if (r == 0) {
        eof = 1;
        break;
      }
      xxh64_update(h, buf, (size_t)r);
      if (dfd >= 0) {
        int e = write_all(dfd, buf, (size_t)r, pos);
        if (e < 0) {
          *werr = 1;
          return e;
        }
      }
      pos += r;
      total += r;
    }
    if (!sparse || eof || pos >= limit) break;
  }
  if (dfd >= 0 && ftruncate(dfd, pos) < 0) {
    *werr = 1;
    return -errno;
  }
  return total;
}

/* copy() and hashat() io layout (Float64Array) */
enum {
  IO_FLAGS,          /* in: 1 = set owner, 2 = set mode and mtime from the source,
                        4 = set the attributes given (before the mode), 8 = remove any other,
                        16 = check that the source still has the attributes given */
  IO_HASH_HI, IO_HASH_LO, IO_BYTES, IO_CHANGED, IO_NEW_INO,
  IO_STAT,           /* S_COUNT fields: fstat of the source before reading */
  IO_XREFUSED = IO_STAT + S_COUNT, /* out: namespaces the destination refused (setmeta's mask) */
  IO_XCHANGED,       /* out (flags & 16): 1 when the source's attributes are not the ones given */
  IO_META,           /* in (flags & 32): the owner, group, mode, mtime and its ns to give the copy */
  IO_WITHHELD = IO_META + 5, /* out (flags & 64): 1 when set-id bits or a file capability were withheld */
  IO_KEPT,           /* out (flags & 128): an O_PATH descriptor of the copy made (the caller closes it), or -errno */
  IO_COUNT
};
enum { ST_OPEN_SRC = 1, ST_NOT_REG = 2, ST_OPEN_DST = 3, ST_READ = 4, ST_WRITE = 5, ST_META = 6 };
#define FAIL(stage, e) (-(double)((stage) << 16 | (e)))

static int open_source(int dirfd, const char *name) {
  return openat_noatime(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_NOATIME, 0);
}

static int changed(const struct stat *a, const struct stat *b) {
  return a->st_size != b->st_size || a->st_mtim.tv_sec != b->st_mtim.tv_sec ||
         a->st_mtim.tv_nsec != b->st_mtim.tv_nsec || a->st_ctim.tv_sec != b->st_ctim.tv_sec ||
         a->st_ctim.tv_nsec != b->st_ctim.tv_nsec || a->st_ino != b->st_ino;
}

/*
 * copy(srcdirfd, srcname, dstdirfd, dstname, io): copies one regular file into a new inode.
 * The source is opened O_NOFOLLOW|O_NONBLOCK (a symlink or FIFO swapped in is never followed or
 * blocked on) and must be a regular file (stage ST_NOT_REG otherwise). The destination is
 * created O_EXCL|O_NOFOLLOW with mode 0600, filled, then given owner, mode and mtime from the
 * source's fstat taken before reading (so a set mtime means a complete copy). IO_CHANGED is 1
 * when the source's size, mtime, ctime or inode moved while it was read. On failure the
 * destination is removed.
 */
/*
 * Opens a source file without following a symlink or blocking on a FIFO, and checks with
 * fstat that it is a regular file; fills io's stat fields. Returns the descriptor, or a
 * FAIL() value (negative) with nothing left open.
 */
static double open_regular(int dirfd, const char *name, struct stat *st, double *io) {
  int fd = open_source(dirfd, name);
  if (fd < 0) return FAIL(ST_OPEN_SRC, errno);
  if (fstat(fd, st) < 0) {
    int e = errno;
    close(fd);
    return FAIL(ST_OPEN_SRC, e);
  }
  fill_stat(io + IO_STAT, st);
  if (!S_ISREG(st->st_mode)) {
    close(fd);
    return FAIL(ST_NOT_REG, EINVAL);
  }
  return fd;
}

static double do_copy(int sdirfd, const char *sname, int ddirfd, const char *dname, double *io, const uint8_t *xattrs,
                      size_t xlen) {
  int flags = (int)io[IO_FLAGS];
  struct stat before, after;
  double opened = open_regular(sdirfd, sname, &before, io);
  if (opened < 0) return opened;
  int sfd = (int)opened;
  /* flags & 64: an inode without a name (O_TMPFILE) until its content and metadata are all set,
     then linked in: nobody who can write the directory can open it half made (its owner given
     before its capability, its content before its set-id bits). Where the file system has no
     O_TMPFILE, made under its name as below. */
  int unnamed = (flags & 64) != 0;
  int dfd = -1;
  if (unnamed) {
    dfd = openat(ddirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
    if (dfd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) unnamed = 0;
  }
  if (!unnamed) dfd = openat(ddirfd, dname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (dfd < 0) {
    int e = errno;
    close(sfd);
    return FAIL(ST_OPEN_DST, e);
  }
  xxh64_state h;
  xxh64_init(&h, 0);
  int werr = 0;
  off_t n = pump(sfd, dfd, &before, &h, &werr);
  double rc = 0;
  if (n < 0) {
    rc = FAIL(werr ? ST_WRITE : ST_READ, (int)-n);
  } else if (fstat(sfd, &after) < 0) {
    rc = FAIL(ST_READ, errno);
  } else {
    io[IO_CHANGED] = changed(&before, &after) || n != before.st_size;
    uint64_t d = xxh64_digest(&h);
    io[IO_HASH_HI] = (double)(d >> 32);
    io[IO_HASH_LO] = (double)(d & 0xffffffffu);
    io[IO_BYTES] = (double)n;
    io[IO_XCHANGED] = 0;
    if (flags & 16) {
      /* the attributes given were read by the scan: the source must still have them (else the
         caller reads them again and copies again) */
      struct xbuf now = {0};
      int r = xattrs_of(-1, NULL, sfd, &now);
      io[IO_XCHANGED] = r < 0 || now.len != (xattrs ? xlen : 0) || (now.len && memcmp(now.p, xattrs, now.len));
      free(now.p);
    }
    /* owner, attributes, mode, mtime: the order of do_setmeta; the source's, or those given
       (flags & 32: a restore gives the manifest's, set on this descriptor, never by name) */
    uid_t uid = before.st_uid;
    gid_t gid = before.st_gid;
    mode_t mode = before.st_mode & 07777;
    struct timespec mt = before.st_mtim;
    if (flags & 32) {
      uid = (uid_t)io[IO_META];
      gid = (gid_t)io[IO_META + 1];
      mode = (mode_t)io[IO_META + 2] & 07777;
      mt.tv_sec = (time_t)io[IO_META + 3];
      mt.tv_nsec = (long)io[IO_META + 4];
    }
    /* made under its name (no O_TMPFILE here) and given to another user: that user could open it
       for writing once it is theirs, before its set-id bits and file capability are set, which
       would then be on that user's bytes. They are withheld, and said (io[IO_WITHHELD]). */
    int withhold = (flags & 64) && !unnamed && (flags & 1) && uid != geteuid();
    io[IO_WITHHELD] = 0;
    if (withhold && (mode & 06000)) {
      mode &= ~(mode_t)06000;
      io[IO_WITHHELD] = 1;
    }
    if ((flags & 1) && fchown(dfd, uid, gid) < 0) rc = FAIL(ST_META, errno);
    io[IO_XREFUSED] = 0;
    if (!rc && (flags & 8)) xattrs_prune(-1, NULL, dfd, xattrs, xattrs ? xlen : 0);
    if (!rc && (flags & 4) && xattrs && xlen) {
      int skipcap = withhold;
      int r = xattrs_write(dfd, NULL, 0, xattrs, xlen, &skipcap);
      if (r < 0) rc = FAIL(ST_META, -r);
      else io[IO_XREFUSED] = r;
      if (skipcap == 2) io[IO_WITHHELD] = 1;
    }
    if (!rc && (flags & 2) && fchmod(dfd, mode) < 0) rc = FAIL(ST_META, errno);
    if (!rc && (flags & 2)) {
      struct timespec ts[2] = {{0, UTIME_OMIT}, mt};
      if (futimens(dfd, ts) < 0) rc = FAIL(ST_META, errno);
    }
    struct stat dst;
    if (!rc && fstat(dfd, &dst) == 0) io[IO_NEW_INO] = (double)dst.st_ino;
  }
  close(sfd);
  char p[40];
  snprintf(p, sizeof p, "/proc/self/fd/%d", dfd);
  if (!rc && unnamed) {
    if (linkat(AT_FDCWD, p, ddirfd, dname, AT_SYMLINK_FOLLOW) < 0) rc = FAIL(ST_OPEN_DST, errno);
    else unnamed = 0; /* named now: removed below if closing fails */
  }
  /* flags & 128: a descriptor of the inode made, kept for the caller (its further names are
     linked from it, not from a name others may replace); opened before the copy's descriptor is
     closed, so it is this inode whatever happens to the name */
  int kept = -1;
  io[IO_KEPT] = -EBADF;
  if (!rc && (flags & 128)) {
    kept = open(p, O_PATH | O_CLOEXEC);
    io[IO_KEPT] = kept >= 0 ? kept : -errno;
  }
  if (close(dfd) < 0 && !rc) rc = FAIL(ST_WRITE, errno);
  if (rc && kept >= 0) {
    close(kept);
    io[IO_KEPT] = -EBADF;
  }
  /* (an unnamed one is gone with its descriptor; a name is never removed that was not made here) */
  if (rc && !unnamed) unlinkat(ddirfd, dname, 0);
  return rc;
}

/*
 * copy(srcdirfd, srcname, dstdirfd, dstname, io): copies one regular file into a new inode.
 * The source is opened O_NOFOLLOW|O_NONBLOCK (a symlink or FIFO swapped in is never followed or
 * blocked on) and must be a regular file (stage ST_NOT_REG otherwise). The destination is
 * created O_EXCL|O_NOFOLLOW with mode 0600, filled, then given owner, mode and mtime from the
 * source's fstat taken before reading (so a set mtime means a complete copy). IO_CHANGED is 1
 * when the source's size, mtime, ctime or inode moved while it was read. On failure the
 * destination is removed.
 */
static napi_value js_copy(napi_env env, napi_callback_info info) {
  OPTARGS(6, 5);
  NUMARG(0, sdirfd);
  PATHARG(1, sname);
  NUMARG(2, ddirfd);
  PATHARG(3, dname);
  double *io = arg_f64array(env, argv[4], IO_COUNT);
  if (!io) return num(env, -EINVAL);
  void *x = NULL;
  size_t xl = 0;
  if (argc > 5 && arg_opt_buffer(env, argv[5], &x, &xl)) return num(env, -EINVAL);
  return num(env, do_copy((int)sdirfd, sname, (int)ddirfd, dname, io, x, xl));
}

/*
 * clone(srcdirfd, srcpath, dstdirfd, dstname, check, io, uid, gid, mode, mtimeSec, mtimeNsec,
 * what[, xattrs]): a new inode dstdirfd/dstname that shares the data extents of the spool file
 * srcpath (FICLONE: XFS, btrfs, NFS 4.2 on those; no data is read or written), with the
 * metadata given (setmeta's `what` bits and order). The source is an earlier generation's
 * file: only read, opened below srcdirfd (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS,
 * O_NOFOLLOW, O_NOATIME where permitted), and, when `check` holds a link record (the packing of
 * linkBatch), its fstat must show what that record says (drift_of): the previous generation is
 * evidence, not truth. The destination is created O_EXCL|O_NOFOLLOW 0600 (never an inode that
 * exists). Returns 0 (io: IO_NEW_INO, IO_BYTES = the size shared, IO_STAT = the source's fstat,
 * IO_XREFUSED), a drift mask > 0 (DRIFT bits; 128: the source changed while it was cloned) with
 * nothing made, or -(stage << 16 | errno): ST_OPEN_SRC, ST_NOT_REG, ST_OPEN_DST, ST_CLONE (the
 * ioctl: EOPNOTSUPP, EINVAL, EXDEV where the file system cannot clone), ST_META, ST_WRITE. On
 * any failure the destination is removed. copy_file_range is not a second way: where the file
 * system cannot share extents (ext4) it copies the data in the kernel, which is not a clone.
 */
#define ST_CLONE 7
#define DRIFT_CHANGED 128
static double do_clone(int sdirfd, const char *spath, int ddirfd, const char *dname, const uint8_t *check, size_t clen,
                       double *io, double uid, double gid, double mode, double msec, double mnsec, int what,
                       const uint8_t *xattrs, size_t xlen) {
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = (uint64_t)(O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | O_NOATIME);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS;
  int sfd = (int)syscall(SYS_openat2, sdirfd, spath, &how, sizeof how);
  if (sfd < 0 && errno == EPERM) {
    how.flags &= ~(uint64_t)O_NOATIME;
    sfd = (int)syscall(SYS_openat2, sdirfd, spath, &how, sizeof how);
  }
  if (sfd < 0) return FAIL(ST_OPEN_SRC, errno);
  struct stat before, after, dst;
  if (fstat(sfd, &before) < 0) {
    int e = errno;
    close(sfd);
    return FAIL(ST_OPEN_SRC, e);
  }
  fill_stat(io + IO_STAT, &before);
  if (!S_ISREG(before.st_mode)) {
    close(sfd);
    return FAIL(ST_NOT_REG, EINVAL);
  }
  if (check && clen >= 2) {
    /* one link record: u16 nameLen | name | the 42-byte tail drift_of reads */
    size_t nl = check[0] | (check[1] << 8);
    if (2 + nl + LINK_REC_TAIL > clen) {
      close(sfd);
      return FAIL(ST_OPEN_SRC, EINVAL);
    }
    int m = drift_of(&before, check + 2 + nl);
    if (m) {
      close(sfd);
      return m;
    }
  }
  int dfd = openat(ddirfd, dname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (dfd < 0) {
    int e = errno;
    close(sfd);
    return FAIL(ST_OPEN_DST, e);
  }
  double rc = 0;
  if (ioctl(dfd, FICLONE, sfd) < 0) rc = FAIL(ST_CLONE, errno);
  else if (fstat(sfd, &after) < 0 || fstat(dfd, &dst) < 0) rc = FAIL(ST_CLONE, errno);
  else if (changed(&before, &after)) rc = DRIFT_CHANGED;
  else if (dst.st_size != before.st_size) rc = 8; /* DRIFT size: the clone is not the file checked */
  if (!rc) {
    int r = do_setmeta(-1, NULL, dfd, uid, gid, mode, msec, mnsec, what, xattrs, xlen);
    if (r < 0) rc = FAIL(ST_META, (-r) & 0xffff);
    else {
      io[IO_XREFUSED] = r;
      io[IO_NEW_INO] = (double)dst.st_ino;
      io[IO_BYTES] = (double)dst.st_size;
    }
  }
  close(sfd);
  if (close(dfd) < 0 && !rc) rc = FAIL(ST_WRITE, errno);
  if (rc) unlinkat(ddirfd, dname, 0);
  return rc;
}

static napi_value js_clone(napi_env env, napi_callback_info info) {
  OPTARGS(13, 12);
  NUMARG(0, sdirfd);
  PATHARG(1, spath);
  NUMARG(2, ddirfd);
  PATHARG(3, dname);
  void *chk = NULL, *x = NULL;
  size_t cl = 0, xl = 0;
  if (arg_opt_buffer(env, argv[4], &chk, &cl)) return num(env, -EINVAL);
  double *io = arg_f64array(env, argv[5], IO_COUNT);
  if (!io) return num(env, -EINVAL);
  NUMARG(6, uid);
  NUMARG(7, gid);
  NUMARG(8, mode);
  NUMARG(9, msec);
  NUMARG(10, mnsec);
  NUMARG(11, what);
  if (argc > 12 && arg_opt_buffer(env, argv[12], &x, &xl)) return num(env, -EINVAL);
  return num(env, do_clone((int)sdirfd, spath, (int)ddirfd, dname, chk, cl, io, uid, gid, mode, msec, mnsec, (int)what, x, xl));
}

/* ---------- the same on the libuv thread pool: many operations in flight ---------- */

/*
 * Entering a directory, one round trip after another on a pool thread so that many
 * directories are in flight: with flags & 1, mkdirat(newdirfd, name, 0700), then (when that
 * succeeded, or was not asked) open the new directory; open the previous generation's
 * directory (O_PATH) when prevdirfd >= 0; with flags & 2, open the source directory
 * srcdirfd/name (O_NOATIME where permitted) and scan it as scandir() does, so the main thread
 * finds it read; with flags & 4, open it only. res[0] = mkdir's 0 or -errno, res[1] = the new directory's descriptor or
 * -errno, res[2] = the previous one's, res[3] = the source's (-EBADF when not asked). A
 * failed mkdir leaves res[1] = -errno of the mkdir, nothing opened. *scan gets the scan
 * (malloc'ed) or stays NULL with *scanrc = -errno; xflags and ctimeMin are scandir's.
 */
static int do_spooldir(int newdirfd, int prevdirfd, int srcdirfd, const char *name, int flags, int32_t *res,
                       int xflags, double ctimeMin, uint8_t **scan, size_t *scanlen, int *scanrc) {
  res[0] = 0;
  res[1] = res[2] = res[3] = -EBADF;
  if (newdirfd >= 0) {
    if ((flags & 1) && mkdirat(newdirfd, name, 0700) < 0) res[0] = res[1] = -errno;
    if (!res[0]) {
      int fd = openat(newdirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      res[1] = fd < 0 ? -errno : fd;
    }
  }
  if (prevdirfd >= 0) {
    int fd = openat(prevdirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    res[2] = fd < 0 ? -errno : fd;
  }
  /* 2: open the source directory and scan it; 4: open it only (a journaled run's directory
     whose entries may come from the manifest) */
  if (flags & 6) {
    int fd = openat_noatime(srcdirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NOATIME, 0);
    res[3] = fd < 0 ? -errno : fd;
    if (flags & 2) *scanrc = fd < 0 ? res[3] : do_scandir(fd, xflags, ctimeMin, NULL, 0, scan, scanlen);
  }
  return 0;
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref keep[4];
  int kind; /* 1 link batch, 2 copy, 3 spool directory, 4 setmeta, 5 hashat, 6 same content, 7 clone */
  int fd1, fd2, fd3, flags;
  uint8_t *scan; /* kind 3: the source directory's scan, handed to JS as an external Buffer */
  size_t scanlen;
  int scanrc;
  double meta[6];
  const uint8_t *names;
  size_t nameslen, rlen;
  int32_t *res;
  double *io;
  double *inos; /* kind 1: the linked inodes */
  size_t ilen;
  const uint8_t *xattrs; /* kinds 2, 4 and 7: a canonical attribute blob to set, or NULL */
  size_t xlen;
  char n1[NAME_CAP], n2[NAME_CAP];
  double rc;
} job_t;

static double do_hashat(int dirfd, const char *name, double *io);
static int do_samecontent(int srcdirfd, const char *srcname, int rootfd, const char *rel);

/*
 * The pool threads run SCHED_BATCH (set by each on its first job): a batch thread that wakes
 * never preempts the main thread, it waits for a free core or the next tick. With the default
 * policy every job queued woke a pool thread that took the core from the main thread, whose
 * work then waited: on a 2-core machine ~0.6 s of a 2 s incremental, in ~4,000 preemptions
 * (perf sched). Only a thread of the default policy changes: a backup run under SCHED_IDLE
 * (`chrt -i 0`, systemd's CPUSchedulingPolicy=idle) or a real-time one keeps it. Allowed to
 * any user; a refusal is ignored.
 */
static __thread int pool_thread_batched;

static void job_execute(napi_env env, void *data) {
  job_t *j = data;
  if (!pool_thread_batched) {
    struct sched_param sp = {0};
    if (sched_getscheduler(0) == SCHED_OTHER) sched_setscheduler(0, SCHED_BATCH, &sp);
    pool_thread_batched = 1;
  }
  if (j->kind == 1) j->rc = (double)do_linkbatch(j->fd1, j->fd2, j->names, j->nameslen, j->res, j->rlen, j->inos, j->ilen);
  else if (j->kind == 2) j->rc = do_copy(j->fd1, j->n1, j->fd2, j->n2, j->io, j->xattrs, j->xlen);
  else if (j->kind == 3)
    j->rc = do_spooldir(j->fd1, j->fd2, j->fd3, j->n1, j->flags, j->res, (int)j->meta[0], j->meta[1], &j->scan, &j->scanlen, &j->scanrc);
  else if (j->kind == 5) j->rc = do_hashat(j->fd1, j->n1, j->io);
  else if (j->kind == 6) j->rc = do_samecontent(j->fd1, j->n1, j->fd2, j->n2);
  else if (j->kind == 7)
    j->rc = do_clone(j->fd1, j->n1, j->fd2, j->n2, j->names, j->nameslen, j->io, j->meta[0], j->meta[1], j->meta[2], j->meta[3],
                     j->meta[4], j->flags, j->xattrs, j->xlen);
  else j->rc = do_setmeta(j->fd1, j->n1, j->fd2, j->meta[0], j->meta[1], j->meta[2], j->meta[3], j->meta[4], j->flags, j->xattrs, j->xlen);
}

static void free_scan(napi_env env, void *data, void *hint) {
  free(data);
}

static void job_complete(napi_env env, napi_status status, void *data) {
  job_t *j = data;
  if (status == napi_ok) {
    napi_value v = NULL;
    if (j->kind == 3 && (j->flags & 2)) {
      /* the scan, or its -errno */
      void *copied;
      if (j->scan && napi_create_external_buffer(env, j->scanlen, j->scan, free_scan, NULL, &v) == napi_ok) j->scan = NULL;
      /* runtimes that forbid external buffers (a V8 sandbox) get a copy */
      else if (!j->scan || napi_create_buffer_copy(env, j->scanlen, j->scan, &copied, &v) != napi_ok) v = num(env, j->scan ? -ENOMEM : j->scanrc);
    }
    napi_resolve_deferred(env, j->deferred, v ? v : num(env, j->rc));
  } else {
    napi_value msg, err;
    napi_create_string_utf8(env, "native job cancelled", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &err);
    napi_reject_deferred(env, j->deferred, err);
  }
  for (int i = 0; i < 4; i++)
    if (j->keep[i]) napi_delete_reference(env, j->keep[i]);
  napi_delete_async_work(env, j->work);
  free(j->scan);
  free(j);
}

static napi_value job_queue(napi_env env, job_t *j) {
  napi_value promise, name;
  napi_create_promise(env, &j->deferred, &promise);
  napi_create_string_utf8(env, "hardsnap", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, job_execute, job_complete, j, &j->work);
  napi_queue_async_work(env, j->work);
  return promise;
}

/*
 * A pool job from its JavaScript arguments, unpacked by spec, one letter per argument in order:
 * d a descriptor (fd1, fd2, fd3 in turn), f the flags, m a metadata number (meta[0] on), p a
 * name (n1, n2), o the io Float64Array, b the names Buffer, r the results Int32Array (at least
 * minres long), i a Float64Array of inode numbers out, x an attribute blob (a Buffer, or null
 * for none). The arrays and the Buffers stay referenced until the job completes. Returns the
 * job's promise, or -EINVAL / -ENAMETOOLONG (nothing queued).
 */
static napi_value job_start(napi_env env, napi_callback_info info, int kind, const char *spec, size_t minres) {
  size_t n = strlen(spec), argc = n;
  napi_value argv[16], keep[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < n) return num(env, -EINVAL);
  job_t *j = calloc(1, sizeof *j);
  if (!j) return num(env, -ENOMEM);
  j->kind = kind;
  int *fds[] = {&j->fd1, &j->fd2, &j->fd3};
  char *names[] = {j->n1, j->n2};
  size_t nfd = 0, nname = 0, nmeta = 0, nkeep = 0;
  int e = 0;
  void *buf;
  double v;
  for (size_t i = 0; i < n && !e; i++) {
    switch (spec[i]) {
      case 'd':
        if (!(e = arg_num(env, argv[i], &v))) *fds[nfd++] = (int)v;
        break;
      case 'f':
        if (!(e = arg_num(env, argv[i], &v))) j->flags = (int)v;
        break;
      case 'm':
        e = arg_num(env, argv[i], &j->meta[nmeta++]);
        break;
      case 'p':
        if ((e = arg_path(env, argv[i], names[nname++])) > 0) e = 0;
        break;
      case 'o':
        e = (j->io = arg_f64array(env, argv[i], IO_COUNT)) ? 0 : -EINVAL;
        keep[nkeep++] = argv[i];
        break;
      case 'b':
        e = arg_buffer(env, argv[i], &buf, &j->nameslen);
        j->names = buf;
        keep[nkeep++] = argv[i];
        break;
      case 'r':
        if (!(e = arg_i32array(env, argv[i], &j->res, &j->rlen)) && j->rlen < minres) e = -EINVAL;
        keep[nkeep++] = argv[i];
        break;
      case 'i':
        e = arg_f64array_any(env, argv[i], &j->inos, &j->ilen);
        keep[nkeep++] = argv[i];
        break;
      case 'x':
        e = arg_opt_buffer(env, argv[i], &buf, &j->xlen);
        j->xattrs = buf;
        if (buf) keep[nkeep++] = argv[i];
        break;
    }
  }
  if (e) {
    free(j);
    return num(env, e);
  }
  for (size_t i = 0; i < nkeep; i++) napi_create_reference(env, keep[i], 1, &j->keep[i]);
  return job_queue(env, j);
}

/* linkBatchAsync(olddirfd, newdirfd, packed, results, inos) -> Promise<count | -errno> */
static napi_value js_linkbatch_async(napi_env env, napi_callback_info info) {
  return job_start(env, info, 1, "ddbri", 0);
}

/* copyAsync(srcdirfd, srcname, dstdirfd, dstname, io, xattrs) -> Promise<0 | staged failure> */
static napi_value js_copy_async(napi_env env, napi_callback_info info) {
  return job_start(env, info, 2, "dpdpox", 0);
}

/*
 * spoolDirAsync(newdirfd, prevdirfd, name, flags, res Int32Array(4), srcdirfd, xflags, ctimeMin) -> Promise<0>,
 * or with flags & 2 Promise<scan Buffer | -errno> (do_spooldir)
 */
static napi_value js_spooldir_async(napi_env env, napi_callback_info info) {
  return job_start(env, info, 3, "ddpfrdmm", 4);
}

/* setmetaAsync(...setmeta's arguments) -> Promise<0 | staged failure>, on the pool */
static napi_value js_setmeta_async(napi_env env, napi_callback_info info) {
  return job_start(env, info, 4, "dpdmmmmmfx", 0);
}

/* hashatAsync(dirfd, name, io) -> Promise<0 | staged failure>, on the pool */
static napi_value js_hashat_async(napi_env env, napi_callback_info info) {
  return job_start(env, info, 5, "dpo", 0);
}

/* sameContentAsync(srcdirfd, srcname, rootfd, rel) -> Promise<1 | 0 | -errno>, on the pool */
static napi_value js_samecontent_async(napi_env env, napi_callback_info info) {
  return job_start(env, info, 6, "dpdp", 0);
}

/* cloneAsync(...clone's arguments, check a Buffer (empty: no check)) -> Promise<0 | drift mask | staged failure>, on the pool */
static napi_value js_clone_async(napi_env env, napi_callback_info info) {
  return job_start(env, info, 7, "dpdpbommmmmfx", 0);
}

/* hashat(dirfd, name, io): XXH64 of a regular file's content (never follows a symlink). */
static double do_hashat(int dirfd, const char *name, double *io) {
  struct stat before, after;
  double opened = open_regular(dirfd, name, &before, io);
  if (opened < 0) return opened;
  int sfd = (int)opened;
  xxh64_state h;
  xxh64_init(&h, 0);
  int werr = 0;
  off_t n = pump(sfd, -1, &before, &h, &werr);
  double rc = 0;
  if (n < 0) {
    rc = FAIL(ST_READ, (int)-n);
  } else if (fstat(sfd, &after) < 0) {
    rc = FAIL(ST_READ, errno);
  } else {
    uint64_t d = xxh64_digest(&h);
    io[IO_CHANGED] = changed(&before, &after) || n != before.st_size;
    io[IO_HASH_HI] = (double)(d >> 32);
    io[IO_HASH_LO] = (double)(d & 0xffffffffu);
    io[IO_BYTES] = (double)n;
  }
  close(sfd);
  return rc;
}

static napi_value js_hashat(napi_env env, napi_callback_info info) {
  ARGS(3);
  NUMARG(0, dirfd);
  PATHARG(1, name);
  double *io = arg_f64array(env, argv[2], IO_COUNT);
  if (!io) return num(env, -EINVAL);
  return num(env, do_hashat((int)dirfd, name, io));
}

static ssize_t read_full(int fd, char *buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = read(fd, buf + done, len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -errno;
    if (n == 0) break;
    done += (size_t)n;
  }
  return (ssize_t)done;
}

/*
 * Byte comparison before a content link (--dedup-verify): the source file srcdirfd/srcname
 * (O_NOFOLLOW, O_NOATIME where permitted) against the spool file rel below the generation
 * root rootfd (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS). 1: same bytes, 0: they differ,
 * -errno: one could not be opened or read.
 */
#define CMP_CHUNK (256 * 1024)
static int do_samecontent(int srcdirfd, const char *srcname, int rootfd, const char *rel) {
  const int fl = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
  int a = open_source(srcdirfd, srcname);
  if (a < 0) return -errno;
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = (uint64_t)(fl | O_NOATIME);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS;
  int b = (int)syscall(SYS_openat2, rootfd, rel, &how, sizeof how);
  if (b < 0 && errno == EPERM) {
    how.flags = (uint64_t)fl;
    b = (int)syscall(SYS_openat2, rootfd, rel, &how, sizeof how);
  }
  if (b < 0) {
    int e = errno;
    close(a);
    return -e;
  }
  char *ba = malloc(2 * CMP_CHUNK), *bb = ba ? ba + CMP_CHUNK : NULL;
  int rc = ba ? 1 : -ENOMEM;
  while (rc == 1) {
    ssize_t na = read_full(a, ba, CMP_CHUNK), nb = na < 0 ? 0 : read_full(b, bb, CMP_CHUNK);
    if (na < 0 || nb < 0) rc = (int)(na < 0 ? na : nb);
    else if (na != nb || memcmp(ba, bb, (size_t)na)) rc = 0;
    else if (na == 0) break;
  }
  free(ba);
  close(a);
  close(b);
  return rc;
}

/* sameContent(srcdirfd, srcname, rootfd, rel) -> 1 | 0 | -errno (do_samecontent) */
static napi_value js_samecontent(napi_env env, napi_callback_info info) {
  ARGS(4);
  NUMARG(0, sd);
  PATHARG(1, sname);
  NUMARG(2, rd);
  PATHARG(3, rel);
  return num(env, do_samecontent((int)sd, sname, (int)rd, rel));
}

/*
 * The manifest's block framing (src/manifest/format.ts) without node:zlib's per-call cost: its
 * sync calls make a new zlib stream (state allocated and cleared) for every block, ~50 us for a
 * block of a few KB, twice per directory of a backup. These keep one stream per direction and
 * reset it. Main thread only (the streams are not shared with the pool).
 */
static z_stream defl, infl;
static int defl_ready, infl_ready;

/* deflateFrame(raw) -> u32 rawLen | u32 packedLen | u32 crc32(packed) | deflate-raw(raw), level 1 */
static napi_value js_deflate_frame(napi_env env, napi_callback_info info) {
  ARGS(1);
  void *data;
  size_t len;
  if (napi_get_buffer_info(env, argv[0], &data, &len) != napi_ok || len > UINT32_MAX) return num(env, -EINVAL);
  if (!defl_ready) {
    if (deflateInit2(&defl, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) return num(env, -ENOMEM);
    defl_ready = 1;
  } else if (deflateReset(&defl) != Z_OK) return num(env, -EIO);
  size_t cap = 12 + deflateBound(&defl, len);
  uint8_t *out = malloc(cap);
  if (!out) return num(env, -ENOMEM);
  defl.next_in = data;
  defl.avail_in = (uInt)len;
  defl.next_out = out + 12;
  defl.avail_out = (uInt)(cap - 12);
  if (deflate(&defl, Z_FINISH) != Z_STREAM_END) {
    free(out);
    return num(env, -EIO);
  }
  uint32_t packed = (uint32_t)defl.total_out;
  uint32_t crc = (uint32_t)crc32(0L, out + 12, packed);
  uint32_t hdr[3] = {(uint32_t)len, packed, crc};
  for (int i = 0; i < 3; i++)
    for (int b = 0; b < 4; b++) out[i * 4 + b] = (uint8_t)(hdr[i] >> (8 * b)); /* little-endian */
  napi_value buf;
  napi_status st = napi_create_buffer_copy(env, 12 + packed, out, NULL, &buf);
  free(out);
  return st == napi_ok ? buf : num(env, -ENOMEM);
}

/* inflateRaw(packed, rawLen) -> Buffer of exactly rawLen bytes, or -EINVAL (corrupt, wrong length) */
static napi_value js_inflate_raw(napi_env env, napi_callback_info info) {
  ARGS(2);
  void *data;
  size_t len;
  double want;
  if (napi_get_buffer_info(env, argv[0], &data, &len) != napi_ok || arg_num(env, argv[1], &want) || want < 0 ||
      want > UINT32_MAX || len > UINT32_MAX)
    return num(env, -EINVAL);
  if (!infl_ready) {
    if (inflateInit2(&infl, -15) != Z_OK) return num(env, -ENOMEM);
    infl_ready = 1;
  } else if (inflateReset(&infl) != Z_OK) return num(env, -EIO);
  napi_value buf;
  void *out;
  uint8_t none;
  if (napi_create_buffer(env, (size_t)want, &out, &buf) != napi_ok) return num(env, -ENOMEM);
  infl.next_in = data;
  infl.avail_in = (uInt)len;
  infl.next_out = want > 0 ? out : &none; /* zlib refuses a NULL output */
  infl.avail_out = (uInt)want;
  /* exactly rawLen bytes of room: a longer stream stops short of its end and is refused */
  if (inflate(&infl, Z_FINISH) != Z_STREAM_END || infl.total_out != (uLong)want || infl.avail_in != 0) return num(env, -EINVAL);
  return buf;
}

/* xxh64(buffer) -> [hi, lo] (for tests and small in-memory data) */
static napi_value js_xxh64(napi_env env, napi_callback_info info) {
  ARGS(1);
  void *data;
  size_t len;
  if (napi_get_buffer_info(env, argv[0], &data, &len) != napi_ok) return num(env, -EINVAL);
  xxh64_state h;
  xxh64_init(&h, 0);
  xxh64_update(&h, data, len);
  uint64_t d = xxh64_digest(&h);
  napi_value arr;
  napi_create_array_with_length(env, 2, &arr);
  napi_set_element(env, arr, 0, num(env, (double)(d >> 32)));
  napi_set_element(env, arr, 1, num(env, (double)(d & 0xffffffffu)));
  return arr;
}

/* ---------- module ---------- */

#define FN(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_enumerable, NULL}

/* watch mode's functions (native/watch.c) */
void hardsnap_watch_init(napi_env env, napi_value exports);
#define CONST(name) {#name, NULL, NULL, NULL, NULL, NULL, napi_enumerable, NULL}

NAPI_MODULE_INIT() {
  napi_property_descriptor fns[] = {
      FN("fstatat", js_fstatat),   FN("fstat", js_fstat),         FN("scandir", js_scandir),
      FN("openat", js_openat),     FN("openat2", js_openat2),     FN("close", js_close),
      FN("mkdirat", js_mkdirat),   FN("linkat", js_linkat),       FN("linkBatch", js_linkbatch),
      FN("symlinkat", js_symlinkat), FN("mknodat", js_mknodat),   FN("unlinkat", js_unlinkat),
      FN("renameat", js_renameat), FN("readlinkat", js_readlinkat), FN("setmeta", js_setmeta),
      FN("syncfs", js_syncfs),     FN("statfs", js_statfs),
      FN("getxattrs", js_getxattrs), FN("removexattrAt", js_removexattr_at),     FN("fsync", js_fsync),         FN("raiseNofile", js_raise_nofile),
      FN("copy", js_copy),         FN("hashat", js_hashat),       FN("xxh64", js_xxh64),
      FN("sameContent", js_samecontent), FN("hashatAsync", js_hashat_async), FN("sameContentAsync", js_samecontent_async),
      FN("deflateFrame", js_deflate_frame), FN("inflateRaw", js_inflate_raw),
      FN("linkBatchAsync", js_linkbatch_async), FN("copyAsync", js_copy_async),
      FN("spoolDirAsync", js_spooldir_async), FN("setmetaAsync", js_setmeta_async),
      FN("clone", js_clone),       FN("cloneAsync", js_clone_async),
      FN("mountsChanged", js_mounts_changed),
  };
  napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns);
  struct { const char *k; double v; } consts[] = {
      {"AT_FDCWD", AT_FDCWD}, {"AT_REMOVEDIR", AT_REMOVEDIR}, {"AT_EMPTY_PATH", AT_EMPTY_PATH},
      {"AT_SYMLINK_FOLLOW", AT_SYMLINK_FOLLOW}, {"O_PATH", O_PATH},
      {"O_DIRECTORY", O_DIRECTORY}, {"O_NOFOLLOW", O_NOFOLLOW}, {"O_NOATIME", O_NOATIME},
      {"O_RDONLY", O_RDONLY}, {"O_WRONLY", O_WRONLY}, {"O_CREAT", O_CREAT}, {"O_EXCL", O_EXCL},
      {"O_NONBLOCK", O_NONBLOCK}, {"O_TRUNC", O_TRUNC},
      {"RESOLVE_BENEATH", RESOLVE_BENEATH}, {"RESOLVE_NO_SYMLINKS", RESOLVE_NO_SYMLINKS},
      {"RESOLVE_NO_MAGICLINKS", RESOLVE_NO_MAGICLINKS}, {"RESOLVE_NO_XDEV", RESOLVE_NO_XDEV},
      {"RENAME_NOREPLACE", 1}, {"RENAME_EXCHANGE", 2},
      {"STAT_FIELDS", S_COUNT}, {"IO_FIELDS", IO_COUNT}, {"REC_HEAD", REC_HEAD}, {"SCAN_SKIPPED", SCAN_SKIPPED},
  };
  for (size_t i = 0; i < sizeof consts / sizeof consts[0]; i++) {
    napi_value v;
    napi_create_double(env, consts[i].v, &v);
    napi_set_named_property(env, exports, consts[i].k, v);
  }
  hardsnap_watch_init(env, exports);
  return exports;
}
