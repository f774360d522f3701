/* A per-thread bump allocator for jansson's values while one request is
 * answered: an admission review parses, rewrites and frees some thousand
 * small objects, and malloc/free of them was about a quarter of its cost
 * (and every worker thread took the one malloc arena's lock for them).
 *
 * Between zw_json_arena_begin and zw_json_arena_end on a thread, jansson's
 * allocations on that thread are cut from the thread's block of
 * ZW_JSON_ARENA_SIZE bytes; freeing one of them does nothing, and the end
 * makes the whole block free again. What does not fit (a large review)
 * comes from malloc and is freed as usual, as are values made before the
 * begin or on other threads, so the block bounds the memory the arena can
 * hold back. Rule for callers: every jansson value made between begin and
 * end is freed before the end and never handed to another thread or kept
 * (no registry, cache or log record holds one).
 *
 * jansson's allocation functions are set once when the program starts;
 * outside an arena they are malloc and free. The block is allocated at a
 * thread's first begin and freed when the thread exits. Under
 * AddressSanitizer every block is poisoned while it is not handed out, so a
 * value used after its free or after the end is still reported. */
#ifndef ZW_JSONARENA_H
#define ZW_JSONARENA_H

#include <stddef.h>

#define ZW_JSON_ARENA_SIZE (512u * 1024)

/* Starts this thread's arena. Returns 1 when jansson now allocates from it
 * (pass to zw_json_arena_end), 0 when it does not: an arena is already in
 * use on this thread (the outer one stays), or its block could not be
 * allocated (jansson keeps using malloc). */
int zw_json_arena_begin(void);

/* Ends what zw_json_arena_begin started when `begun` (its answer) is 1:
 * the block is free again and jansson allocates with malloc. */
void zw_json_arena_end(int begun);

/* Bytes of this thread's block handed out since its arena began (0 when
 * none is in use), for tests and measurements. */
size_t zw_json_arena_used(void);

#endif
