/*
 * Included before each source of native/ by the build (binding.gyp: -include), so that the
 * module needs no glibc newer than 2.28, the oldest Node.js 20 runs on: the prebuilt binaries
 * are built on a newer Debian and must load on RHEL 8 (2.28), Debian 11 and Ubuntu 20.04 (2.31).
 *
 * glibc 2.33 made fstat, fstatat and mknodat exported functions (symbol version GLIBC_2.33).
 * Before, <sys/stat.h> compiled them into calls of __fxstat64, __fxstatat64 and __xmknodat,
 * which take the version of struct stat (or of mknod's interface) first and which every later
 * glibc still exports. Built against glibc >= 2.33, this header makes the calls the old way;
 * glibc 2.34 moved pthread_create and pthread_join (the fanotify reader thread of watch.c) from
 * libpthread into libc under GLIBC_2.34, and keeps the old versions there: the calls are bound
 * to those (libpthread's on an older glibc, which Node.js loads).
 * Elsewhere (an older glibc, musl, other machines) it does nothing. test/prebuild.test.ts fails
 * when the module needs a newer glibc symbol: call it the old way here, or raise the floor in
 * docs/RELEASE.md.
 */
#ifndef HARDSNAP_GLIBC_COMPAT_H
#define HARDSNAP_GLIBC_COMPAT_H

#include <features.h>

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33)) && \
    (defined(__x86_64__) || defined(__aarch64__))
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>

/* glibc's _STAT_VER: _STAT_VER_LINUX on x86_64, _STAT_VER_KERNEL on the generic 64-bit ABI;
 * _MKNOD_VER is 0 on both. struct stat is the kernel's (and stat64's) layout on both. */
#ifdef __x86_64__
#define HARDSNAP_STAT_VER 1
#else
#define HARDSNAP_STAT_VER 0
#endif
#define HARDSNAP_MKNOD_VER 0

extern int __fxstat64(int ver, int fd, struct stat *buf);
extern int __fxstatat64(int ver, int dirfd, const char *path, struct stat *buf, int flags);
extern int __xmknodat(int ver, int dirfd, const char *path, mode_t mode, dev_t *dev);

static inline int hardsnap_fstat(int fd, struct stat *buf) {
  return __fxstat64(HARDSNAP_STAT_VER, fd, buf);
}
static inline int hardsnap_fstatat(int dirfd, const char *path, struct stat *buf, int flags) {
  return __fxstatat64(HARDSNAP_STAT_VER, dirfd, path, buf, flags);
}
static inline int hardsnap_mknodat(int dirfd, const char *path, mode_t mode, dev_t dev) {
  return __xmknodat(HARDSNAP_MKNOD_VER, dirfd, path, mode, &dev);
}
#define fstat(fd, buf) hardsnap_fstat(fd, buf)
#define fstatat(dirfd, path, buf, flags) hardsnap_fstatat(dirfd, path, buf, flags)
#define mknodat(dirfd, path, mode, dev) hardsnap_mknodat(dirfd, path, mode, dev)

#if __GLIBC_MINOR__ >= 34 || __GLIBC__ > 2
#ifdef __x86_64__
__asm__(".symver pthread_create,pthread_create@GLIBC_2.2.5");
__asm__(".symver pthread_join,pthread_join@GLIBC_2.2.5");
#else
__asm__(".symver pthread_create,pthread_create@GLIBC_2.17");
__asm__(".symver pthread_join,pthread_join@GLIBC_2.17");
#endif
#endif
#endif

#endif
