/* Unit tests for lib/strmap: put/get/del against a reference model over
 * thousands of keys (growth, chains, removal from the middle of a chain),
 * removal while iterating, reserve, and an empty map. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strmap.h"

struct item {
	struct zw_strmap_node node;
	char key[24];
	int present;
};

#define N_ITEMS 5000

static void test_empty(void **state)
{
	struct zw_strmap m = {0};

	(void)state;
	assert_null(zw_strmap_get(&m, "x"));
	assert_null(zw_strmap_del(&m, "x"));
	zw_strmap_free(&m);
	zw_strmap_free(NULL);
	assert_int_equal(m.n, 0);
}

static void test_against_model(void **state)
{
	struct zw_strmap m = {0};
	struct item *it = calloc(N_ITEMS, sizeof(*it));
	unsigned seed = 12345;

	(void)state;
	assert_non_null(it);
	for (int i = 0; i < N_ITEMS; i++)
		snprintf(it[i].key, sizeof(it[i].key), "ns-%d/svc-%d", i % 7, i);
	/* random puts and deletes; the map must agree with `present` */
	for (int round = 0; round < 40000; round++) {
		seed = seed * 1103515245u + 12345u;
		int i = (int)((seed >> 8) % N_ITEMS);
		if (!it[i].present) {
			assert_null(zw_strmap_get(&m, it[i].key));
			assert_int_equal(zw_strmap_put(&m, &it[i].node, it[i].key), 0);
			it[i].present = 1;
		} else if (seed & 1) {
			assert_ptr_equal(zw_strmap_del(&m, it[i].key), &it[i].node);
			it[i].present = 0;
		} else {
			zw_strmap_remove(&m, &it[i].node);
			it[i].present = 0;
		}
	}
	size_t n = 0;
	for (int i = 0; i < N_ITEMS; i++) {
		struct zw_strmap_node *f = zw_strmap_get(&m, it[i].key);
		if (it[i].present) {
			assert_ptr_equal(f, &it[i].node);
			assert_ptr_equal(ZW_STRMAP_ENTRY(f, struct item, node), &it[i]);
			n++;
		} else {
			assert_null(f);
		}
	}
	assert_int_equal(m.n, n);
	assert_true(m.cap >= m.n);
	assert_true((m.cap & (m.cap - 1)) == 0);
	/* a key equal in content but another pointer finds the node */
	char copy[24];
	for (int i = 0; i < N_ITEMS; i++)
		if (it[i].present) {
			memcpy(copy, it[i].key, sizeof(copy));
			assert_ptr_equal(zw_strmap_get(&m, copy), &it[i].node);
			break;
		}
	zw_strmap_free(&m);
	free(it);
}

static int visited;
static struct zw_strmap *each_map;

static void drop_every_other(struct zw_strmap_node *node, void *ctx)
{
	struct item *it = ZW_STRMAP_ENTRY(node, struct item, node);
	(void)ctx;
	visited++;
	if (it->key[strlen(it->key) - 1] % 2) {
		zw_strmap_remove(each_map, node);
		it->present = 0;
	}
}

static void test_each_removing(void **state)
{
	struct zw_strmap m = {0};
	struct item it[300];

	(void)state;
	memset(it, 0, sizeof(it));
	assert_int_equal(zw_strmap_reserve(&m, 300), 0);
	size_t cap = m.cap;
	assert_true(cap >= 300);
	for (int i = 0; i < 300; i++) {
		snprintf(it[i].key, sizeof(it[i].key), "k%d", i);
		assert_int_equal(zw_strmap_put(&m, &it[i].node, it[i].key), 0);
		it[i].present = 1;
	}
	assert_int_equal(m.cap, cap); /* reserved: no growth */
	visited = 0;
	each_map = &m;
	zw_strmap_each(&m, drop_every_other, NULL);
	assert_int_equal(visited, 300);
	assert_int_equal(m.n, 150);
	for (int i = 0; i < 300; i++)
		assert_true((zw_strmap_get(&m, it[i].key) != NULL) == it[i].present);
	zw_strmap_free(&m);
	assert_null(m.b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_empty),
	        cmocka_unit_test(test_against_model),
	        cmocka_unit_test(test_each_removing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
