/* The one hash function of every table: FNV-1a (64-bit, and the 32-bit
 * variant where a value leaves the process, such as KEDA metric names).
 * Tables that keep their buckets by low bits mix the result further
 * themselves (routes.c, endpoints.c). */
#ifndef ZW_HASH_H
#define ZW_HASH_H

#include <stddef.h>
#include <stdint.h>

/* The 64-bit offset basis every table has used since the start: the
 * published FNV basis 14695981039346656037 without its last digit. Kept so
 * table layouts (and iteration orders) stay as they were; the FNV prime
 * still spreads every byte. */
#define ZW_HASH_INIT 1469598103934665603ull

/* Continues FNV-1a 64 hash h (start with ZW_HASH_INIT) over n bytes at p
 * (borrowed). Returns the new hash. */
uint64_t zw_hash_bytes(uint64_t h, const void *p, size_t n);

/* FNV-1a 64 of NUL-terminated s (borrowed). Returns the hash. */
uint64_t zw_hash_str(const char *s);

/* FNV-1a 32 of n bytes at p (borrowed). Returns the hash. */
uint32_t zw_hash32(const void *p, size_t n);

#endif
