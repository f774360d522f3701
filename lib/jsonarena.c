/* Per-thread bump allocator for jansson's values during one request (see
 * jsonarena.h). Blocks are 16-byte aligned, as malloc's. Under
 * AddressSanitizer each block is preceded by 16 poisoned bytes holding its
 * size, so that a free can poison exactly the block and an overrun hits
 * the next header. */
#include "jsonarena.h"

#include <jansson.h>
#include <pthread.h>
#include <sanitizer/asan_interface.h>
#include <stdint.h>
#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__)
#define ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_ASAN 1
#endif
#endif

#define ALIGN 16
#ifdef ARENA_ASAN
#define HEADER ALIGN /* the block's size, poisoned */
#else
#define HEADER 0
#endif

struct arena {
	char *base; /* ZW_JSON_ARENA_SIZE bytes, or NULL before the first begin */
	size_t used;
	int active;
};

static _Thread_local struct arena arena;
static pthread_key_t block_key; /* frees a thread's block when it exits */
static int block_key_ok;

static void *arena_malloc(size_t n)
{
	struct arena *a = &arena;

	if (a->active && n <= ZW_JSON_ARENA_SIZE) {
		/* malloc(0) too gets a block of its own */
		size_t need = HEADER + (((n ? n : 1) + ALIGN - 1) & ~(size_t)(ALIGN - 1));
		if (need <= ZW_JSON_ARENA_SIZE - a->used) {
			char *p = a->base + a->used + HEADER;
			a->used += need;
#ifdef ARENA_ASAN
			ASAN_UNPOISON_MEMORY_REGION(p - HEADER, HEADER);
			*(size_t *)(p - HEADER) = n;
			ASAN_POISON_MEMORY_REGION(p - HEADER, HEADER);
#endif
			ASAN_UNPOISON_MEMORY_REGION(p, n);
			return p;
		}
	}
	return malloc(n);
}

static void arena_free(void *p)
{
	struct arena *a = &arena;
	char *c = p;

	if (a->base && c >= a->base && c < a->base + ZW_JSON_ARENA_SIZE) {
#ifdef ARENA_ASAN
		size_t n;
		ASAN_UNPOISON_MEMORY_REGION(c - HEADER, HEADER);
		n = *(size_t *)(c - HEADER);
		ASAN_POISON_MEMORY_REGION(c - HEADER, HEADER + n);
#endif
		return; /* given back at the end */
	}
	free(p);
}

static void block_release(void *base)
{
	/* Runs on the exiting thread: its arena no longer has the block. */
	arena.base = NULL;
	arena.active = 0;
	ASAN_UNPOISON_MEMORY_REGION(base, ZW_JSON_ARENA_SIZE);
	free(base);
}

/* Before main, while the program has one thread: from here on every
 * jansson value is allocated and freed through the arena's functions. */
__attribute__((constructor)) static void arena_install(void)
{
	block_key_ok = pthread_key_create(&block_key, block_release) == 0;
	json_set_alloc_funcs(arena_malloc, arena_free);
}

int zw_json_arena_begin(void)
{
	struct arena *a = &arena;

	if (a->active || !block_key_ok)
		return 0;
	if (!a->base) {
		char *base = malloc(ZW_JSON_ARENA_SIZE);
		if (!base)
			return 0;
		if (pthread_setspecific(block_key, base) != 0) {
			free(base);
			return 0;
		}
		ASAN_POISON_MEMORY_REGION(base, ZW_JSON_ARENA_SIZE);
		a->base = base;
	}
	a->used = 0;
	a->active = 1;
	return 1;
}

void zw_json_arena_end(int begun)
{
	struct arena *a = &arena;

	if (!begun || !a->active)
		return;
	ASAN_POISON_MEMORY_REGION(a->base, a->used);
	a->used = 0;
	a->active = 0;
}

size_t zw_json_arena_used(void)
{
	return arena.active ? arena.used : 0;
}
