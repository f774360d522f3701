/* FNV-1a hashing (see hash.h). */
#include "hash.h"

#define FNV64_PRIME 1099511628211ull
#define FNV32_BASIS 2166136261u
#define FNV32_PRIME 16777619u

uint64_t zw_hash_bytes(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * FNV64_PRIME;
	return h;
}

uint64_t zw_hash_str(const char *s)
{
	uint64_t h = ZW_HASH_INIT;

	for (const unsigned char *b = (const unsigned char *)s; *b; b++)
		h = (h ^ *b) * FNV64_PRIME;
	return h;
}

uint32_t zw_hash32(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint32_t h = FNV32_BASIS;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * FNV32_PRIME;
	return h;
}
