/*
 * Watch mode's native seam (docs/WATCH.md), apart from the engine's calls in hardsnap.c:
 *
 * - A fanotify group with a file-system mark per source file system (FAN_MARK_FILESYSTEM,
 *   FAN_REPORT_DFID_NAME: every event names the directory it happened in by file handle, and
 *   the entry by name). A reader thread of its own reads the group, so that the kernel's queue
 *   is drained whatever the JavaScript thread is doing (a backup writing its spool on the same
 *   file system makes a storm of events); it resolves each directory handle to a path
 *   (open_by_handle_at on a descriptor of the source's mount, then the /proc/self/fd link),
 *   keeps only directories under a watched root and not under an excluded one (the spool), and
 *   hands those, in order, to JavaScript through a thread-safe function. Memory: a bounded
 *   cache of resolved handles and the records not yet taken by JavaScript, nothing per file.
 * - A barrier: the watcher opens and closes the first root (through its own descriptor); the
 *   group has an inode mark there for FAN_CLOSE_NOWRITE, and that event, recognised by our pid,
 *   reaches JavaScript after every event queued before it (a backup's sync request).
 *
 * Records to JavaScript (one Buffer per call, in queue order), each:
 *   u8 kind, u8 0, u16 nameLen, u32 mask, u32 dirLen, u32 errno, dir bytes, name bytes
 * kind: 1 a change (mask, the directory's path, the entry's name: "." for the directory
 * itself), 2 the kernel queue overflowed (or JavaScript fell 16 MiB of records behind),
 * 3 our barrier, 4 an error (errno; the reader thread stops on a read error), 5 a
 * non-directory created (after its change record): the birth time of the inode it names
 * (FAN_REPORT_TARGET_FID gives its handle), seconds in the errno field and nanoseconds in the
 * mask's; an inode born before its name was made is a hard link to an existing file (link(2)).
 * Seconds 1: the file system keeps no birth times and the inode has several names, or the
 * birth time is in the future (a clock stepped back). 6: the mount table changed (the reader
 * thread polls /proc/self/mountinfo).
 */
#include <node_api.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#ifndef FAN_REPORT_TARGET_FID
#define FAN_REPORT_TARGET_FID 0x00001000 /* Linux 5.17 */
#endif
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#define W_CHANGE 1
#define W_OVERFLOW 2
#define W_BARRIER 3
#define W_ERROR 4
#define W_CREATED 5 /* a non-directory created: errno's field holds its inode's birth time (s), 0 unknown */
#define W_MOUNTS 6  /* the mount table changed (a mount or unmount anywhere in this namespace) */
#define W_ROOT 7    /* a watched root is no longer at its path (dir: that path; name: where it is now) */
#define W_DEAD 8    /* a file with a name elsewhere written through a name it no longer has */
#define PENDING_MAX 4096 /* writes waiting for an event that explains them (dead_name) */
#define W_HEAD 16

/* what the file-system mark asks for: every change of an entry, and of a directory */
#define W_MASK (FAN_CREATE | FAN_DELETE | FAN_MOVED_FROM | FAN_MOVED_TO | FAN_MODIFY | FAN_ATTRIB | FAN_CLOSE_WRITE | FAN_ONDIR)
#define READ_BUF (256 * 1024)
#define OUT_MAX (16u << 20)
#define CACHE_SLOTS 8192
#define DEDUP_SLOTS 65536   /* distinct changes remembered per hand-over (then no more dedup) */
#define HAND_OVER (256 * 1024) /* at most this much per call into JavaScript */
#define CACHE_KEY (12 + 128)

typedef struct {
  int fd;              /* O_RDONLY descriptor of a watched root: open_by_handle_at's mount */
  int32_t fsid[2];
  char *path;          /* the root's path (bytes), a prefix of the directories reported */
  size_t len;
  int id;
  int active;          /* 0: removed, kept for its descriptor (the barrier's) */
  int moved;           /* W_ROOT was said for it */
} root_t;

typedef struct {
  char *path;
  size_t len;
} prefix_t;

typedef struct {
  uint8_t key[CACHE_KEY];
  uint16_t klen;       /* 0: free slot */
  uint8_t relevant;
  char *path;          /* resolved path (also kept for irrelevant ones: rename invalidation) */
  size_t plen;
} centry_t;

typedef struct {
  int fan;
  int wake;            /* eventfd: stops the reader thread */
  pid_t self;
  pthread_t thread;
  int running;
  pthread_mutex_t mu;
  napi_threadsafe_function tsfn;
  /* under mu */
  root_t *roots;
  size_t nroots;
  int next_id;
  int barrier_fd;      /* the first root's descriptor (-1 before) */
  prefix_t *excl;
  size_t nexcl;
  uint8_t *out;
  size_t outlen, outcap;
  size_t outpos;       /* records before this were handed over */
  int notified, dropped;
  uint32_t *seen;      /* DEDUP_SLOTS offsets (+1) of change records not yet handed over */
  size_t nseen;
  centry_t *cache;
  size_t cached;
  int targets; /* the group reports a created entry's own handle (W_CREATED records) */
  int mounts;  /* /proc/self/mountinfo, polled for mount table changes (W_MOUNTS), or -1 */
  char *pending[PENDING_MAX]; /* "dir/name" of writes to a file no longer at that name (dead_name) */
  uint8_t pendfid[PENDING_MAX][CACHE_KEY]; /* the written file's handle (fsid, type, bytes) */
  uint16_t pendfidlen[PENDING_MAX];
  size_t npending;
  int stale;   /* the last resolve() found the directory gone (ESTALE, ENOENT) */
} fw_t;

/* ---------- small helpers ---------- */

static napi_value wnum(napi_env env, double d) {
  napi_value r;
  napi_create_double(env, d, &r);
  return r;
}

static int get_fw(napi_env env, napi_value v, fw_t **fw) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || !p) return -EINVAL;
  *fw = p;
  return 0;
}

/* A Buffer or string argument, copied and NUL-terminated (malloc). */
static int arg_bytes(napi_env env, napi_value v, char **out, size_t *len) {
  bool isbuf = false;
  napi_is_buffer(env, v, &isbuf);
  if (isbuf) {
    void *data;
    size_t n;
    if (napi_get_buffer_info(env, v, &data, &n) != napi_ok) return -EINVAL;
    if (memchr(data, 0, n)) return -EINVAL;
    *out = malloc(n + 1);
    memcpy(*out, data, n);
    (*out)[n] = 0;
    *len = n;
    return 0;
  }
  size_t n = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &n) != napi_ok) return -EINVAL;
  *out = malloc(n + 1);
  napi_get_value_string_utf8(env, v, *out, n + 1, &n);
  if (strlen(*out) != n) {
    free(*out);
    return -EINVAL;
  }
  *len = n;
  return 0;
}

/* path is prefix itself or lies below it */
static int under(const char *path, size_t plen, const char *prefix, size_t len) {
  if (plen < len || memcmp(path, prefix, len) != 0) return 0;
  return plen == len || path[len] == '/' || (len == 1 && prefix[0] == '/');
}

/* ---------- the output buffer (under mu) ---------- */

/* A change record equal to one not yet handed over (same kind, mask bits that matter, path and
   name) adds nothing: JavaScript marks the first no earlier than this one was queued. */
static int out_seen(fw_t *fw, uint32_t mask, const char *dir, size_t dlen, const char *name, size_t nlen) {
  if (!fw->seen) fw->seen = calloc(DEDUP_SLOTS, sizeof *fw->seen);
  uint32_t bits = mask & (FAN_ONDIR | FAN_CREATE | FAN_MOVED_TO);
  uint32_t h = 2166136261u ^ bits;
  for (size_t i = 0; i < dlen; i++) h = (h ^ (uint8_t)dir[i]) * 16777619u;
  h = (h ^ '/') * 16777619u;
  for (size_t i = 0; i < nlen; i++) h = (h ^ (uint8_t)name[i]) * 16777619u;
  for (uint32_t i = h % DEDUP_SLOTS, step = 0; step < 64; i = (i + 1) % DEDUP_SLOTS, step++) {
    uint32_t at = fw->seen[i];
    if (!at) {
      if (fw->nseen >= DEDUP_SLOTS / 2 || fw->outlen >= UINT32_MAX) return 0;
      fw->seen[i] = (uint32_t)fw->outlen + 1;
      fw->nseen++;
      return 0;
    }
    if (at - 1 + W_HEAD > fw->outlen) continue; /* not written (dropped as an overflow) */
    const uint8_t *r = fw->out + at - 1;
    if (r[0] != W_CHANGE) continue;
    uint16_t rn;
    uint32_t rm, rd;
    memcpy(&rn, r + 2, 2);
    memcpy(&rm, r + 4, 4);
    memcpy(&rd, r + 8, 4);
    if (rn == nlen && rd == dlen && (rm & (FAN_ONDIR | FAN_CREATE | FAN_MOVED_TO)) == bits && memcmp(r + W_HEAD, dir, dlen) == 0 && memcmp(r + W_HEAD + dlen, name, nlen) == 0) return 1;
  }
  return 0;
}

static void out_put(fw_t *fw, int kind, uint32_t mask, const char *dir, size_t dlen, const char *name, size_t nlen, int err) {
  if (fw->dropped) return;
  if (kind == W_CHANGE && out_seen(fw, mask, dir, dlen, name, nlen)) return;
  size_t need = W_HEAD + dlen + nlen;
  if (fw->outlen + need > OUT_MAX) {
    /* JavaScript fell far behind: what follows is lost, which is an overflow */
    fw->dropped = 1;
    need = W_HEAD;
    kind = W_OVERFLOW;
    dlen = nlen = 0;
  }
  if (fw->outlen + need > fw->outcap) {
    size_t cap = fw->outcap ? fw->outcap : 65536;
    while (cap < fw->outlen + need) cap *= 2;
    fw->out = realloc(fw->out, cap);
    fw->outcap = cap;
  }
  uint8_t *p = fw->out + fw->outlen;
  uint16_t nl = (uint16_t)nlen;
  uint32_t dl = (uint32_t)dlen, e = (uint32_t)err;
  p[0] = (uint8_t)kind;
  p[1] = 0;
  memcpy(p + 2, &nl, 2);
  memcpy(p + 4, &mask, 4);
  memcpy(p + 8, &dl, 4);
  memcpy(p + 12, &e, 4);
  if (dlen) memcpy(p + W_HEAD, dir, dlen);
  if (nlen) memcpy(p + W_HEAD + dlen, name, nlen);
  fw->outlen += need;
}

/* ---------- the handle cache (under mu) ---------- */

static uint32_t hash_key(const uint8_t *k, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ k[i]) * 16777619u;
  return h;
}

static void cache_clear(fw_t *fw) {
  for (size_t i = 0; i < CACHE_SLOTS; i++) {
    free(fw->cache[i].path);
    fw->cache[i].path = NULL;
    fw->cache[i].klen = 0;
  }
  fw->cached = 0;
}

static centry_t *cache_find(fw_t *fw, const uint8_t *k, size_t n) {
  for (uint32_t i = hash_key(k, n) % CACHE_SLOTS, step = 0; step < CACHE_SLOTS; i = (i + 1) % CACHE_SLOTS, step++) {
    centry_t *c = &fw->cache[i];
    if (!c->klen) return NULL;
    if (c->klen == n && memcmp(c->key, k, n) == 0) return c;
  }
  return NULL;
}

static void cache_put(fw_t *fw, const uint8_t *k, size_t n, int relevant, const char *path, size_t plen) {
  if (fw->cached >= CACHE_SLOTS * 3 / 4) cache_clear(fw);
  uint32_t i = hash_key(k, n) % CACHE_SLOTS;
  while (fw->cache[i].klen) i = (i + 1) % CACHE_SLOTS;
  centry_t *c = &fw->cache[i];
  memcpy(c->key, k, n);
  c->klen = (uint16_t)n;
  c->relevant = (uint8_t)relevant;
  c->path = malloc(plen + 1);
  memcpy(c->path, path, plen);
  c->plen = plen;
  fw->cached++;
}

/*
 * A directory was renamed: every cached path below its old path is stale. Open addressing
 * cannot delete one slot cheaply, so the table is rebuilt without them (a rename of a
 * directory is rare next to the events it saves a resolution for).
 */
static void cache_forget_below(fw_t *fw, const char *prefix, size_t len) {
  size_t stale = 0;
  for (size_t i = 0; i < CACHE_SLOTS; i++) {
    centry_t *c = &fw->cache[i];
    if (c->klen && under(c->path, c->plen, prefix, len)) stale++;
  }
  if (stale) cache_clear(fw);
}

/* ---------- resolving a directory handle ---------- */

/*
 * The path of an open directory whose /proc/self/fd link is too long to read (PATH_MAX): climb
 * with "..", finding each name by inode in its parent, until an ancestor's link can be read.
 * -ENOENT when a directory on the way was removed meanwhile.
 */
static int long_path(int fd, char **out, size_t *outlen) {
  char link[64], buf[PATH_MAX];
  char **names = NULL; /* innermost first */
  size_t nn = 0, total = 0;
  int cur = dup(fd), rc = 0;
  if (cur < 0) return -errno;
  for (;;) {
    snprintf(link, sizeof link, "/proc/self/fd/%d", cur);
    ssize_t k = readlink(link, buf, sizeof buf);
    if (k >= 0 && (size_t)k < sizeof buf) {
      char *p = malloc((size_t)k + total + 1), *q = p + k;
      memcpy(p, buf, (size_t)k);
      for (size_t i = nn; i-- > 0;) {
        size_t l = strlen(names[i]);
        *q++ = '/';
        memcpy(q, names[i], l);
        q += l;
      }
      *out = p;
      *outlen = (size_t)(q - p);
      break;
    }
    if (k >= 0) errno = ENAMETOOLONG;
    if (errno != ENAMETOOLONG || nn > 65536) {
      rc = -errno;
      break;
    }
    struct stat st, pst;
    int parent = -1;
    if (fstat(cur, &st) < 0 || (parent = openat(cur, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || fstat(parent, &pst) < 0) {
      rc = -errno;
      if (parent >= 0) close(parent);
      break;
    }
    if (pst.st_ino == st.st_ino && pst.st_dev == st.st_dev) {
      close(parent);
      rc = -ENAMETOOLONG;
      break;
    }
    int dfd = dup(parent);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    char *found = NULL;
    if (d) {
      struct dirent *de;
      while (!found && (de = readdir(d))) {
        if (de->d_ino != st.st_ino || !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        struct stat cst;
        if (fstatat(parent, de->d_name, &cst, AT_SYMLINK_NOFOLLOW) == 0 && cst.st_dev == st.st_dev && cst.st_ino == st.st_ino) found = strdup(de->d_name);
      }
      closedir(d);
    } else if (dfd >= 0) {
      close(dfd);
    }
    close(cur);
    cur = parent;
    if (!found) {
      rc = -ENOENT;
      break;
    }
    names = realloc(names, (nn + 1) * sizeof *names);
    names[nn++] = found;
    total += 1 + strlen(found);
  }
  close(cur);
  for (size_t i = 0; i < nn; i++) free(names[i]);
  free(names);
  return rc;
}

/*
 * A directory of a root's file system that is not under any root: normal (the mark covers the
 * whole file system), unless the root itself is no longer at its path. Its descriptor is what
 * handles are opened through and named by: once the root (or a directory above it) is renamed,
 * or its mount moved or detached (`mount --move`, `umount -l` and a new mount in its place),
 * every directory below it is named outside it and its changes would be dropped in silence.
 * Then W_ROOT says so, once: the watcher ends the epoch and watches the path again.
 */
static void check_root(fw_t *fw, root_t *rt) {
  if (!rt->active || rt->moved) return;
  char link[64], buf[PATH_MAX];
  char *longp = NULL;
  const char *p = buf;
  size_t n = 0;
  snprintf(link, sizeof link, "/proc/self/fd/%d", rt->fd);
  ssize_t k = readlink(link, buf, sizeof buf);
  if (k >= 0 && (size_t)k < sizeof buf) {
    n = (size_t)k;
  } else if (long_path(rt->fd, &longp, &n) == 0) {
    p = longp;
  } else {
    p = "(its path cannot be read)";
    n = strlen(p);
  }
  if (n != rt->len || memcmp(p, rt->path, n) != 0) {
    rt->moved = 1;
    if (n > 65535) n = 65535; /* a record's name length is 16 bits */
    out_put(fw, W_ROOT, 0, rt->path, rt->len, p, n, 0);
  }
  free(longp);
}

/* A file handle as bytes, the key of the name cache and of held writes: fsid, type, handle;
   its length, 0 when it does not fit (MAX_HANDLE_SZ is 128). */
static uint16_t handle_key(const int32_t fsid[2], const struct file_handle *fh, uint8_t *out) {
  if (12 + fh->handle_bytes > CACHE_KEY) return 0;
  memcpy(out, fsid, 8);
  memcpy(out + 8, &fh->handle_type, 4);
  memcpy(out + 12, fh->f_handle, fh->handle_bytes);
  return (uint16_t)(12 + fh->handle_bytes);
}

/* The file a handle of file system fsid names, opened O_PATH through a watched root of that
   file system; -1 when none is, or it is gone. */
static int open_handle(fw_t *fw, const int32_t fsid[2], const struct file_handle *fh) {
  for (size_t r = 0; r < fw->nroots; r++) {
    root_t *rt = &fw->roots[r];
    if (rt->fsid[0] == fsid[0] && rt->fsid[1] == fsid[1]) return open_by_handle_at(rt->fd, (struct file_handle *)fh, O_PATH | O_CLOEXEC);
  }
  return -1;
}

/*
 * Resolves a directory handle of file system fsid to its path: 1 when the directory lies under
 * a watched root and under no excluded prefix, 0 when it does not (or is gone: ESTALE,
 * ENOENT), -errno when it cannot be named. *path points into the cache (valid until the next
 * call).
 */
static int resolve(fw_t *fw, const int32_t fsid[2], const struct file_handle *fh, char **path, size_t *plen) {
  fw->stale = 0;
  uint8_t key[CACHE_KEY];
  size_t klen = handle_key(fsid, fh, key);
  if (!klen) return -EOVERFLOW; /* MAX_HANDLE_SZ is 128 */
  centry_t *c = cache_find(fw, key, klen);
  if (c) {
    *path = c->path;
    *plen = c->plen;
    return c->relevant;
  }
  for (size_t r = 0; r < fw->nroots; r++) {
    root_t *rt = &fw->roots[r];
    if (rt->fsid[0] != fsid[0] || rt->fsid[1] != fsid[1]) continue;
    int fd = open_by_handle_at(rt->fd, (struct file_handle *)fh, O_PATH | O_CLOEXEC);
    /* ENOMEM is what exportfs passes on of a failure to reconnect a directory to its parents
       (others become ESTALE), seen after drop_caches under load: try again a few times */
    for (int tries = 0; fd < 0 && errno == ENOMEM && tries < 5; tries++) {
      struct timespec ts = {0, 2000000L << tries};
      nanosleep(&ts, NULL);
      fd = open_by_handle_at(rt->fd, (struct file_handle *)fh, O_PATH | O_CLOEXEC);
    }
    if (fd < 0) {
      fw->stale = errno == ESTALE || errno == ENOENT;
      return fw->stale ? 0 : -errno;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode)) {
      /* an event on a file connected to no directory (written through a file handle: the
         kernel's NFS server, open_by_handle_at after its entry left the caches): the kernel
         reports the file itself, and which directory it is in cannot be told */
      close(fd);
      return -ENOTDIR;
    }
    char link[64], buf[PATH_MAX];
    char *p = NULL;
    size_t n = 0;
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t k = readlink(link, buf, sizeof buf);
    if (k >= 0 && (size_t)k < sizeof buf) {
      p = malloc((size_t)k + 1);
      memcpy(p, buf, (size_t)k);
      n = (size_t)k;
    } else {
      int rc = long_path(fd, &p, &n);
      if (rc < 0) {
        close(fd);
        return rc == -ENOENT ? 0 : rc;
      }
    }
    close(fd);
    int relevant = 0;
    for (size_t i = 0; i < fw->nroots && !relevant; i++) {
      if (fw->roots[i].active && under(p, n, fw->roots[i].path, fw->roots[i].len)) relevant = 1;
    }
    if (!relevant) check_root(fw, rt);
    for (size_t i = 0; i < fw->nexcl && relevant; i++) {
      if (under(p, n, fw->excl[i].path, fw->excl[i].len)) relevant = 0;
    }
    int other = 0;
    for (size_t j = r + 1; j < fw->nroots; j++) other |= fw->roots[j].fsid[0] == fsid[0] && fw->roots[j].fsid[1] == fsid[1];
    if (!relevant && other) {
      /* another root of this file system may be another mount of it (a bind mount of a subtree),
         under which the directory has a path this mount cannot give */
      free(p);
      continue;
    }
    cache_put(fw, key, klen, relevant, p, n);
    free(p);
    c = cache_find(fw, key, klen);
    *path = c->path;
    *plen = c->plen;
    return relevant;
  }
  return 0;
}

/* ---------- the reader thread ---------- */

/* ---------- writes through a name that is gone ---------- */

static char *join_name(const char *dir, size_t dlen, const char *name, size_t nlen) {
  char *k = malloc(dlen + 1 + nlen + 1);
  if (!k) return NULL;
  memcpy(k, dir, dlen);
  k[dlen] = '/';
  memcpy(k + dlen + 1, name, nlen);
  k[dlen + 1 + nlen] = 0;
  return k;
}

/* An event's file handle as bytes (fsid, type, handle); 0 when it has none or it is too long. */
static uint16_t fid_bytes(const struct fanotify_event_info_fid *f, uint8_t *out) {
  if (!f) return 0;
  int32_t fsid[2];
  memcpy(fsid, &f->fsid, 8);
  return handle_key(fsid, (const struct file_handle *)f->handle, out);
}

static void pending_drop(fw_t *fw, size_t i) {
  free(fw->pending[i]);
  size_t last = --fw->npending;
  fw->pending[i] = fw->pending[last];
  memcpy(fw->pendfid[i], fw->pendfid[last], fw->pendfidlen[last]);
  fw->pendfidlen[i] = fw->pendfidlen[last];
}

/* Writes held below a directory removed or renamed after them are explained: the path they
   were checked at was that directory's old one (a cached name, renamed since). */
static void pending_explained_below(fw_t *fw, const char *dir, size_t dlen, const char *name, size_t nlen) {
  if (!fw->npending) return;
  char *k = join_name(dir, dlen, name, nlen);
  if (!k) return;
  size_t kl = strlen(k);
  for (size_t i = 0; i < fw->npending;) {
    if (!strncmp(fw->pending[i], k, kl) && fw->pending[i][kl] == '/') pending_drop(fw, i);
    else i++;
  }
  free(k);
}

/* A write is explained: the file it wrote lost that name (removed, renamed away) after it. A
   removal or rename of the same name for another file (its handle differs) explains nothing. */
static void pending_explained(fw_t *fw, const char *dir, size_t dlen, const char *name, size_t nlen, const struct fanotify_event_info_fid *own) {
  if (!fw->npending) return;
  char *k = join_name(dir, dlen, name, nlen);
  if (!k) return;
  uint8_t fid[CACHE_KEY];
  uint16_t fidlen = fid_bytes(own, fid);
  for (size_t i = 0; i < fw->npending;) {
    int same = !strcmp(fw->pending[i], k) &&
               (!fidlen || !fw->pendfidlen[i] || (fw->pendfidlen[i] == fidlen && !memcmp(fw->pendfid[i], fid, fidlen)));
    if (same) pending_drop(fw, i);
    else i++;
  }
  free(k);
}

/* Whether the file an event's own handle names still has a link (*st: its device and inode);
   0 when it has none, is gone, or cannot be opened. */
static int still_linked(fw_t *fw, const struct fanotify_event_info_fid *own, struct stat *st) {
  int32_t fsid[2];
  memcpy(fsid, &own->fsid, 8);
  int fd = open_handle(fw, fsid, (const struct file_handle *)own->handle);
  if (fd < 0) return 0;
  int ok = fstat(fd, st) == 0 && st->st_nlink > 0;
  close(fd);
  return ok;
}

/*
 * A write (or chmod) of a file that is no longer at the name the event gives (`dir/name`,
 * the directory named by its handle now): the kernel names a write by the name its descriptor
 * was opened with, so the file may have another name now (`ln d/f e/g; rm d/f` or a rename
 * over d/f while it was open, an O_TMPFILE linked in, its directory removed), changed with no
 * event in that name's directory. Or the name changed after the write, whose event follows in
 * the queue (an atomic save: write tmp, rename it; Maildir: write tmp/x, link new/x, unlink
 * tmp/x): such a write is held (`pending`) until the queue is read empty, and one that no
 * later removal or rename of its name explained is said (W_DEAD). A file with no link left
 * (removed while open) has no name to miss.
 */
static void dead_name(fw_t *fw, const char *dir, size_t dlen, const char *name, size_t nlen, const struct fanotify_event_info_fid *own) {
  struct stat file, at;
  if (!still_linked(fw, own, &file)) return;
  char *k = join_name(dir, dlen, name, nlen);
  if (!k) return;
  if (fstatat(AT_FDCWD, k, &at, AT_SYMLINK_NOFOLLOW) == 0 && at.st_ino == file.st_ino && at.st_dev == file.st_dev) {
    free(k);
    return;
  }
  if (fw->npending == PENDING_MAX) {
    /* too many to hold: say this one now (the epoch ends; safe) */
    out_put(fw, W_DEAD, 0, dir, dlen, name, nlen, 0);
    free(k);
    return;
  }
  fw->pendfidlen[fw->npending] = fid_bytes(own, fw->pendfid[fw->npending]);
  fw->pending[fw->npending++] = k;
}

/* The queue was read empty: every write still held was explained by nothing. */
static void pending_said(fw_t *fw) {
  for (size_t i = 0; i < fw->npending; i++) {
    char *k = fw->pending[i];
    char *slash = strrchr(k, '/');
    out_put(fw, W_DEAD, 0, k, (size_t)(slash - k), slash + 1, strlen(slash + 1), 0);
    free(k);
  }
  fw->npending = 0;
}

/*
 * The birth time of the inode a creation event names by its own file handle (*sec, *nsec): a new
 * file was born now, a hard link made to an existing one (link(2) is a creation too) was born
 * before. Returns 1 with it; 1 with *sec = 1 when the file system keeps no birth times and the
 * inode has several names now (a link, of unknown age); 0 when there is nothing to say (one name
 * and no birth time, or the inode is gone: no name of it is left anywhere to miss).
 */
static int born(fw_t *fw, const int32_t fsid[2], const struct file_handle *fh, uint32_t *sec, uint32_t *nsec) {
  int fd = open_handle(fw, fsid, fh);
  if (fd < 0) return 0;
  struct statx sx;
  int said = 0;
  if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_BTIME | STATX_NLINK, &sx) == 0) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if ((sx.stx_mask & STATX_BTIME) && sx.stx_btime.tv_sec > now.tv_sec + 1) {
      /* born in the future: the clock was stepped back since (or the disk comes from a machine
         whose clock was ahead): its age cannot be told, so it counts as old */
      *sec = 1;
      *nsec = 0;
      said = 1;
    } else if ((sx.stx_mask & STATX_BTIME) && sx.stx_btime.tv_sec > 1) {
      *sec = sx.stx_btime.tv_sec > 0xffffffffLL ? 0xffffffffu : (uint32_t)sx.stx_btime.tv_sec;
      *nsec = sx.stx_btime.tv_nsec;
      said = 1;
    } else if ((sx.stx_mask & STATX_NLINK) && sx.stx_nlink > 1) {
      *sec = 1;
      *nsec = 0;
      said = 1;
    }
  }
  close(fd);
  return said;
}

static void process(fw_t *fw, const uint8_t *buf, ssize_t n) {
  const struct fanotify_event_metadata *m = (const void *)buf;
  for (; FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n)) {
    if (m->vers != FANOTIFY_METADATA_VERSION) {
      out_put(fw, W_ERROR, 0, NULL, 0, NULL, 0, EPROTO);
      continue;
    }
    if (m->mask & FAN_Q_OVERFLOW) {
      out_put(fw, W_OVERFLOW, (uint32_t)m->mask, NULL, 0, NULL, 0, 0);
      continue;
    }
    if (m->pid == fw->self) {
      /* our own barrier; anything else this process does is in the spool, never in a source */
      if (m->mask & FAN_CLOSE_NOWRITE) out_put(fw, W_BARRIER, (uint32_t)m->mask, NULL, 0, NULL, 0, 0);
      continue;
    }
    if (!(m->mask & W_MASK & ~FAN_ONDIR)) continue; /* another process closing the barrier directory */
    const uint8_t *p = (const uint8_t *)m + m->metadata_len, *end = (const uint8_t *)m + m->event_len;
    /* the created object's own handle (FAN_REPORT_FID), for W_CREATED */
    const struct fanotify_event_info_fid *obj = NULL;
    int named = 0; /* a directory's handle came with it */
    for (const uint8_t *q = p; q + sizeof(struct fanotify_event_info_header) <= end;) {
      const struct fanotify_event_info_fid *f = (const void *)q;
      if (f->hdr.len == 0) break;
      if (f->hdr.info_type == FAN_EVENT_INFO_TYPE_FID) obj = f;
      if (f->hdr.info_type == FAN_EVENT_INFO_TYPE_DFID_NAME || f->hdr.info_type == FAN_EVENT_INFO_TYPE_DFID) named = 1;
      q += f->hdr.len;
    }
    if (!named && obj && (m->mask & (FAN_MODIFY | FAN_CLOSE_WRITE))) {
      /* a write to a file connected to no directory (through a file handle: the kernel's NFS
         server, open_by_handle_at after its entry left the caches): the kernel reports the
         file alone, and which directory it is in cannot be told. On a watched file system it
         may be in a source: the epoch ends. (FAN_ATTRIB alone comes this way for every link
         count change, a link or unlink anywhere: those are named by their CREATE and DELETE
         events, so an attribute change through a handle is not told from them) */
      int32_t ofsid[2];
      memcpy(ofsid, &obj->fsid, 8);
      for (size_t r = 0; r < fw->nroots; r++) {
        if (fw->roots[r].active && fw->roots[r].fsid[0] == ofsid[0] && fw->roots[r].fsid[1] == ofsid[1]) {
          out_put(fw, W_ERROR, (uint32_t)m->mask, NULL, 0, NULL, 0, ENOTDIR);
          break;
        }
      }
      continue;
    }
    if (!named) continue;
    const struct fanotify_event_info_fid *own = obj; /* the file's own handle, when the event is on one */
    if (!((m->mask & FAN_CREATE) && !(m->mask & FAN_ONDIR))) obj = NULL; /* W_CREATED only */
    while (p + sizeof(struct fanotify_event_info_header) <= end) {
      const struct fanotify_event_info_fid *fid = (const void *)p;
      if (fid->hdr.len == 0) break;
      if (fid->hdr.info_type == FAN_EVENT_INFO_TYPE_DFID_NAME || fid->hdr.info_type == FAN_EVENT_INFO_TYPE_DFID) {
        const struct file_handle *fh = (const void *)fid->handle;
        const char *name = ".";
        if (fid->hdr.info_type == FAN_EVENT_INFO_TYPE_DFID_NAME) name = (const char *)fh->f_handle + fh->handle_bytes;
        int32_t fsid[2];
        memcpy(fsid, &fid->fsid, 8);
        char *dir = NULL;
        size_t dlen = 0;
        int rc = resolve(fw, fsid, fh, &dir, &dlen);
        if (rc < 0) {
          out_put(fw, W_ERROR, (uint32_t)m->mask, NULL, 0, name, strlen(name), -rc);
        } else {
          size_t nlen = strlen(name);
          if (rc > 0) out_put(fw, W_CHANGE, (uint32_t)m->mask, dir, dlen, name, nlen, 0);
          if (rc > 0 && (m->mask & FAN_ONDIR) && (m->mask & (FAN_MOVE | FAN_DELETE)) && strcmp(name, "."))
            pending_explained_below(fw, dir, dlen, name, nlen);
          if (rc > 0 && !(m->mask & FAN_ONDIR) && strcmp(name, ".")) {
            if (m->mask & (FAN_DELETE | FAN_MOVE)) pending_explained(fw, dir, dlen, name, nlen, own);
            /* FAN_MODIFY and FAN_ATTRIB, not FAN_CLOSE_WRITE: a writer that closes after the
               move (a mail delivery agent, linking tmp/x to new/x first) changed nothing then */
            else if ((m->mask & (FAN_MODIFY | FAN_ATTRIB)) && own) dead_name(fw, dir, dlen, name, nlen, own);
          } else if (rc == 0 && fw->stale && own && !(m->mask & FAN_ONDIR) && (m->mask & (FAN_MODIFY | FAN_ATTRIB))) {
            /* written in a directory that is gone: if the file has a link left, it is elsewhere */
            struct stat file;
            if (still_linked(fw, own, &file)) out_put(fw, W_DEAD, 0, "(a removed directory)", 21, name, nlen, 0);
          }
          if (rc > 0 && obj) {
            int32_t ofsid[2];
            memcpy(ofsid, &obj->fsid, 8);
            uint32_t sec, nsec;
            if (born(fw, ofsid, (const struct file_handle *)obj->handle, &sec, &nsec)) out_put(fw, W_CREATED, nsec, dir, dlen, name, nlen, (int)sec);
          }
          if ((m->mask & FAN_ONDIR) && (m->mask & FAN_MOVE) && !dir) {
            /* a directory moved from (or to) a parent whose path cannot be told any more (removed
               since: `mv a/X b/X && rmdir a`): which cached paths are stale is unknown, so none
               is kept (a path cached under its old name would journal its changes there, or
               drop them as outside the source) */
            cache_clear(fw);
          } else if ((m->mask & FAN_ONDIR) && (m->mask & FAN_MOVED_TO)) {
            /* a directory moved in: where it was (perhaps a place no watched root's mount
               reaches: outside a bind mount's subtree) its directories were cached as outside
               every source, and would stay so: every cached path goes */
            cache_clear(fw);
          } else if ((m->mask & FAN_ONDIR) && (m->mask & FAN_MOVE)) {
            /* paths cached below the moved directory are stale now */
            char *old = malloc(dlen + 1 + nlen);
            memcpy(old, dir, dlen);
            old[dlen] = '/';
            memcpy(old + dlen + 1, name, nlen);
            cache_forget_below(fw, old, dlen + 1 + nlen);
            free(old);
          }
        }
        break;
      }
      p += fid->hdr.len;
    }
  }
}

static void *reader(void *arg) {
  fw_t *fw = arg;
  uint8_t *buf = aligned_alloc(4096, READ_BUF);
  for (;;) {
    struct pollfd pf[3] = {{fw->fan, POLLIN, 0}, {fw->wake, POLLIN, 0}, {fw->mounts, POLLPRI, 0}};
    if (poll(pf, fw->mounts >= 0 ? 3 : 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (pf[1].revents) break;
    if (fw->mounts >= 0 && (pf[2].revents & (POLLPRI | POLLERR))) {
      /* /proc/self/mountinfo is pollable (proc(5)): a mount or unmount; polling took the news */
      pthread_mutex_lock(&fw->mu);
      out_put(fw, W_MOUNTS, 0, NULL, 0, NULL, 0, 0);
      int call = !fw->notified;
      if (call) fw->notified = 1;
      pthread_mutex_unlock(&fw->mu);
      if (call) napi_call_threadsafe_function(fw->tsfn, NULL, napi_tsfn_nonblocking);
      if (!(pf[0].revents & POLLIN)) continue;
    }
    ssize_t n = read(fw->fan, buf, READ_BUF);
    int err = n < 0 && errno != EAGAIN && errno != EINTR ? errno : 0;
    pthread_mutex_lock(&fw->mu);
    if (n > 0) process(fw, buf, n);
    /* writes held by dead_name: the events that would explain them were queued before it
       looked, so once the queue reads empty, what is still held is explained by nothing */
    while (fw->npending && !err) {
      ssize_t more = read(fw->fan, buf, READ_BUF);
      if (more > 0) {
        process(fw, buf, more);
        continue;
      }
      if (more < 0 && errno != EAGAIN && errno != EINTR) err = errno;
      if (more < 0 && errno == EINTR) continue;
      pending_said(fw);
    }
    if (err) out_put(fw, W_ERROR, 0, NULL, 0, NULL, 0, err);
    int call = fw->outlen && !fw->notified;
    if (call) fw->notified = 1;
    pthread_mutex_unlock(&fw->mu);
    if (call) napi_call_threadsafe_function(fw->tsfn, NULL, napi_tsfn_nonblocking);
    if (err) break;
  }
  free(buf);
  return NULL;
}

/*
 * On the JavaScript thread: hands the records over, at most HAND_OVER bytes at a time (whole
 * records), calling itself again for the rest, so that a burst is never one huge Buffer and its
 * objects at once; the buffer is freed when drained (a burst's memory goes back).
 */
static void call_js(napi_env env, napi_value cb, void *context, void *data) {
  fw_t *fw = context;
  if (!env || !cb) return;
  pthread_mutex_lock(&fw->mu);
  size_t start = fw->outpos, end = start;
  while (end < fw->outlen && end - start < HAND_OVER) {
    uint16_t nl;
    uint32_t dl;
    memcpy(&nl, fw->out + end + 2, 2);
    memcpy(&dl, fw->out + end + 8, 4);
    end += W_HEAD + dl + nl;
  }
  napi_value buf = NULL;
  if (end > start) {
    void *bdata;
    napi_create_buffer_copy(env, end - start, fw->out + start, &bdata, &buf);
  }
  fw->outpos = end;
  int more = end < fw->outlen;
  if (!more) {
    if (fw->outcap > 4 * HAND_OVER) {
      free(fw->out);
      fw->out = NULL;
      fw->outcap = 0;
    }
    fw->outlen = fw->outpos = 0;
    fw->notified = 0;
    fw->dropped = 0;
  }
  /* records handed over are no longer there to be equal to */
  if (fw->seen && fw->nseen) {
    memset(fw->seen, 0, DEDUP_SLOTS * sizeof *fw->seen);
    fw->nseen = 0;
  }
  pthread_mutex_unlock(&fw->mu);
  if (more) napi_call_threadsafe_function(fw->tsfn, NULL, napi_tsfn_nonblocking);
  if (!buf) return;
  napi_value undef;
  napi_get_undefined(env, &undef);
  napi_call_function(env, undef, cb, 1, &buf, NULL);
}

/* ---------- JavaScript functions ---------- */

static void fw_free(fw_t *fw) {
  for (size_t i = 0; i < fw->nroots; i++) {
    close(fw->roots[i].fd);
    free(fw->roots[i].path);
  }
  for (size_t i = 0; i < fw->nexcl; i++) free(fw->excl[i].path);
  free(fw->roots);
  free(fw->excl);
  if (fw->cache) cache_clear(fw);
  free(fw->cache);
  for (size_t i = 0; i < fw->npending; i++) free(fw->pending[i]);
  free(fw->out);
  if (fw->fan >= 0) close(fw->fan);
  if (fw->wake >= 0) close(fw->wake);
  if (fw->mounts >= 0) close(fw->mounts);
  pthread_mutex_destroy(&fw->mu);
  free(fw);
}

/* fanOpen(callback(records: Buffer)) -> handle | -errno. The reader thread starts at once. */
static napi_value js_fan_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1) return wnum(env, -EINVAL);
  /* the created entry's own handle too (FAN_REPORT_TARGET_FID, Linux 5.17), else without it */
  const unsigned base = FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_DFID_NAME;
  int targets = 1;
  int fan = fanotify_init(base | FAN_REPORT_FID | FAN_REPORT_TARGET_FID, O_RDONLY | O_LARGEFILE | O_CLOEXEC);
  if (fan < 0 && errno == EINVAL) {
    targets = 0;
    fan = fanotify_init(base, O_RDONLY | O_LARGEFILE | O_CLOEXEC);
  }
  if (fan < 0) return wnum(env, -errno);
  fw_t *fw = calloc(1, sizeof *fw);
  fw->fan = fan;
  fw->targets = targets;
  fw->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  fw->mounts = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
  if (fw->mounts >= 0) {
    /* the first poll says "changed" for a file never polled: take that now */
    struct pollfd p0 = {fw->mounts, POLLPRI, 0};
    poll(&p0, 1, 0);
  }
  fw->self = getpid();
  fw->barrier_fd = -1;
  fw->cache = calloc(CACHE_SLOTS, sizeof *fw->cache);
  pthread_mutex_init(&fw->mu, NULL);
  if (fw->wake < 0) {
    int e = errno;
    fw_free(fw);
    return wnum(env, -e);
  }
  napi_value name;
  napi_create_string_utf8(env, "hardsnap fanotify", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, NULL, NULL, fw, call_js, &fw->tsfn) != napi_ok) {
    fw_free(fw);
    return wnum(env, -ENOMEM);
  }
  if (pthread_create(&fw->thread, NULL, reader, fw) != 0) {
    napi_release_threadsafe_function(fw->tsfn, napi_tsfn_abort);
    fw_free(fw);
    return wnum(env, -EAGAIN);
  }
  fw->running = 1;
  napi_value ext;
  napi_create_external(env, fw, NULL, NULL, &ext);
  return ext;
}

/*
 * fanAddRoot(handle, path) -> root id (>= 1) | -errno: marks the file system of path (once per
 * file system: the kernel merges marks of one group on one file system), and reports the
 * directories below path. The first root is also the barrier's directory.
 */
static napi_value js_fan_add_root(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  fw_t *fw;
  if (argc < 2 || get_fw(env, argv[0], &fw)) return wnum(env, -EINVAL);
  char *path;
  size_t len;
  if (arg_bytes(env, argv[1], &path, &len)) return wnum(env, -EINVAL);
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  struct statfs sf;
  if (fd < 0 || fstatfs(fd, &sf) < 0) {
    int e = errno;
    if (fd >= 0) close(fd);
    free(path);
    return wnum(env, -e);
  }
  if (fanotify_mark(fw->fan, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, W_MASK, fd, NULL) < 0) {
    int e = errno;
    close(fd);
    free(path);
    return wnum(env, -e);
  }
  pthread_mutex_lock(&fw->mu);
  if (fw->barrier_fd < 0) {
    if (fanotify_mark(fw->fan, FAN_MARK_ADD, FAN_CLOSE_NOWRITE | FAN_ONDIR, fd, NULL) < 0) {
      int e = errno;
      pthread_mutex_unlock(&fw->mu);
      close(fd);
      free(path);
      return wnum(env, -e);
    }
    fw->barrier_fd = fd;
  }
  fw->roots = realloc(fw->roots, (fw->nroots + 1) * sizeof *fw->roots);
  root_t *r = &fw->roots[fw->nroots++];
  r->fd = fd;
  memcpy(r->fsid, &sf.f_fsid, 8);
  r->path = path;
  r->len = len;
  r->id = ++fw->next_id;
  r->active = 1;
  r->moved = 0;
  cache_clear(fw); /* irrelevant verdicts may be relevant now */
  int id = r->id;
  pthread_mutex_unlock(&fw->mu);
  return wnum(env, id);
}

/* fanRemoveRoot(handle, id) -> 0 | -ENOENT. Its file-system mark stays (another root may share it). */
static napi_value js_fan_remove_root(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  fw_t *fw;
  double id;
  if (argc < 2 || get_fw(env, argv[0], &fw) || napi_get_value_double(env, argv[1], &id) != napi_ok) return wnum(env, -EINVAL);
  int rc = -ENOENT;
  pthread_mutex_lock(&fw->mu);
  for (size_t i = 0; i < fw->nroots; i++) {
    if (fw->roots[i].id != (int)id || !fw->roots[i].active) continue;
    /* the barrier's descriptor stays open (closing it would look like a barrier) */
    fw->roots[i].active = 0;
    if (fw->roots[i].fd != fw->barrier_fd) {
      close(fw->roots[i].fd);
      free(fw->roots[i].path);
      fw->roots[i] = fw->roots[--fw->nroots];
    }
    rc = 0;
    break;
  }
  cache_clear(fw);
  pthread_mutex_unlock(&fw->mu);
  return wnum(env, rc);
}

/* fanExclude(handle, path) -> 0: directories at or below path are never reported (the spool). */
static napi_value js_fan_exclude(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  fw_t *fw;
  if (argc < 2 || get_fw(env, argv[0], &fw)) return wnum(env, -EINVAL);
  char *path;
  size_t len;
  if (arg_bytes(env, argv[1], &path, &len)) return wnum(env, -EINVAL);
  pthread_mutex_lock(&fw->mu);
  fw->excl = realloc(fw->excl, (fw->nexcl + 1) * sizeof *fw->excl);
  fw->excl[fw->nexcl].path = path;
  fw->excl[fw->nexcl].len = len;
  fw->nexcl++;
  cache_clear(fw);
  pthread_mutex_unlock(&fw->mu);
  return wnum(env, 0);
}

/* fanTargets(handle) -> 1 when the group names the inode a new entry is made for (W_CREATED), 0 (Linux < 5.17) */
static napi_value js_fan_targets(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  fw_t *fw;
  if (argc < 1 || get_fw(env, argv[0], &fw)) return wnum(env, -EINVAL);
  return wnum(env, fw->targets);
}

/*
 * fanBarrier(handle) -> 0 | -errno: opens and closes the barrier directory through its own
 * descriptor (the same inode even if its path changed); the reader sees our FAN_CLOSE_NOWRITE
 * after every event queued before it. One at a time (the kernel merges two identical events).
 */
static napi_value js_fan_barrier(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  fw_t *fw;
  if (argc < 1 || get_fw(env, argv[0], &fw)) return wnum(env, -EINVAL);
  pthread_mutex_lock(&fw->mu);
  int bfd = fw->barrier_fd;
  pthread_mutex_unlock(&fw->mu);
  if (bfd < 0) return wnum(env, -ENOENT);
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", bfd);
  int fd = open(link, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return wnum(env, -errno);
  close(fd);
  return wnum(env, 0);
}

/* fanClose(handle) -> 0: stops the reader, closes everything; no record is delivered after. */
static napi_value js_fan_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  fw_t *fw;
  if (argc < 1 || get_fw(env, argv[0], &fw)) return wnum(env, -EINVAL);
  if (!fw->running) return wnum(env, -EALREADY);
  uint64_t one = 1;
  if (write(fw->wake, &one, sizeof one) < 0) { /* the eventfd cannot be full */ }
  pthread_join(fw->thread, NULL);
  fw->running = 0;
  napi_release_threadsafe_function(fw->tsfn, napi_tsfn_abort);
  /* the handle (external) stays valid, its resources are gone: the small struct itself is
     kept, since a call_js already queued may still run (it returns at once: env is NULL) */
  pthread_mutex_lock(&fw->mu);
  for (size_t i = 0; i < fw->nroots; i++) {
    close(fw->roots[i].fd);
    free(fw->roots[i].path);
  }
  fw->nroots = 0;
  fw->barrier_fd = -1;
  for (size_t i = 0; i < fw->nexcl; i++) free(fw->excl[i].path);
  fw->nexcl = 0;
  cache_clear(fw);
  free(fw->out);
  fw->out = NULL;
  fw->outlen = fw->outcap = fw->outpos = 0;
  free(fw->seen);
  fw->seen = NULL;
  fw->nseen = 0;
  pthread_mutex_unlock(&fw->mu);
  close(fw->fan);
  fw->fan = -1;
  close(fw->wake);
  fw->wake = -1;
  return wnum(env, 0);
}

/* ---------- registration (called from hardsnap.c's module init) ---------- */

#define WFN(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_enumerable, NULL}

void hardsnap_watch_init(napi_env env, napi_value exports) {
  napi_property_descriptor fns[] = {
      WFN("fanOpen", js_fan_open),       WFN("fanAddRoot", js_fan_add_root), WFN("fanRemoveRoot", js_fan_remove_root),
      WFN("fanExclude", js_fan_exclude), WFN("fanBarrier", js_fan_barrier), WFN("fanTargets", js_fan_targets),  WFN("fanClose", js_fan_close),
  };
  napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns);
  struct { const char *k; double v; } consts[] = {
      {"FAN_CREATE", FAN_CREATE}, {"FAN_DELETE", FAN_DELETE}, {"FAN_MOVED_FROM", FAN_MOVED_FROM},
      {"FAN_MOVED_TO", FAN_MOVED_TO}, {"FAN_MODIFY", FAN_MODIFY}, {"FAN_ATTRIB", FAN_ATTRIB},
      {"FAN_CLOSE_WRITE", FAN_CLOSE_WRITE}, {"FAN_ONDIR", FAN_ONDIR},
  };
  for (size_t i = 0; i < sizeof consts / sizeof consts[0]; i++) {
    napi_value v;
    napi_create_double(env, consts[i].v, &v);
    napi_set_named_property(env, exports, consts[i].k, v);
  }
}
