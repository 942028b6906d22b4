/* XXH64 (streaming), after the reference specification
 * (https://github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md). Cross-checked against
 * xxhash-wasm in test/native.test.ts. */
#include "xxh64.h"
#include <string.h>

#define P1 11400714785074694791ULL
#define P2 14029467366897019727ULL
#define P3 1609587929392839161ULL
#define P4 9650029242287828579ULL
#define P5 2870177450012600261ULL

static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static inline uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t round1(uint64_t acc, uint64_t in) {
  acc += in * P2;
  acc = rotl(acc, 31);
  return acc * P1;
}
static inline uint64_t merge(uint64_t acc, uint64_t val) {
  acc ^= round1(0, val);
  return acc * P1 + P4;
}

void xxh64_init(xxh64_state *s, uint64_t seed) {
  memset(s, 0, sizeof *s);
  s->v[0] = seed + P1 + P2;
  s->v[1] = seed + P2;
  s->v[2] = seed;
  s->v[3] = seed - P1;
}

static inline void stripe(xxh64_state *s, const uint8_t *p) {
  s->v[0] = round1(s->v[0], rd64(p));
  s->v[1] = round1(s->v[1], rd64(p + 8));
  s->v[2] = round1(s->v[2], rd64(p + 16));
  s->v[3] = round1(s->v[3], rd64(p + 24));
}

void xxh64_update(xxh64_state *s, const void *data, size_t len) {
  const uint8_t *p = data;
  s->total += len;
  if (s->memsize + len < 32) {
    memcpy(s->mem + s->memsize, p, len);
    s->memsize += (uint32_t)len;
    return;
  }
  if (s->memsize) {
    size_t fill = 32 - s->memsize;
    memcpy(s->mem + s->memsize, p, fill);
    stripe(s, s->mem);
    p += fill;
    len -= fill;
    s->memsize = 0;
  }
  while (len >= 32) {
    stripe(s, p);
    p += 32;
    len -= 32;
  }
  memcpy(s->mem, p, len);
  s->memsize = (uint32_t)len;
}

uint64_t xxh64_digest(const xxh64_state *s) {
  uint64_t h;
  if (s->total >= 32) {
    h = rotl(s->v[0], 1) + rotl(s->v[1], 7) + rotl(s->v[2], 12) + rotl(s->v[3], 18);
    h = merge(h, s->v[0]);
    h = merge(h, s->v[1]);
    h = merge(h, s->v[2]);
    h = merge(h, s->v[3]);
  } else {
    h = s->v[2] + P5; /* v[2] holds the seed */
  }
  h += s->total;
  const uint8_t *p = s->mem;
  size_t n = s->memsize;
  while (n >= 8) {
    h ^= round1(0, rd64(p));
    h = rotl(h, 27) * P1 + P4;
    p += 8;
    n -= 8;
  }
  if (n >= 4) {
    h ^= (uint64_t)rd32(p) * P1;
    h = rotl(h, 23) * P2 + P3;
    p += 4;
    n -= 4;
  }
  while (n) {
    h ^= (*p) * P5;
    h = rotl(h, 11) * P1;
    p++;
    n--;
  }
  h ^= h >> 33;
  h *= P2;
  h ^= h >> 29;
  h *= P3;
  h ^= h >> 32;
  return h;
}
