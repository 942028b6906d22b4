#ifndef HARDSNAP_XXH64_H
#define HARDSNAP_XXH64_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint64_t total;
  uint64_t v[4];
  uint8_t mem[32];
  uint32_t memsize;
} xxh64_state;

void xxh64_init(xxh64_state *s, uint64_t seed);
void xxh64_update(xxh64_state *s, const void *data, size_t len);
uint64_t xxh64_digest(const xxh64_state *s);

#endif
