/* Unit tests of the webhook server's body budget and connection table
 * (reslimits.c): reservation bounds, eviction order and deadlines. */
#include "reslimits.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static void budget_bounds(void **state)
{
	struct zw_budget b;

	(void)state;
	zw_budget_init(&b, 100);
	assert_int_equal(zw_budget_take(&b, 60), 0);
	assert_int_equal(zw_budget_take(&b, 41), -EAGAIN);
	assert_int_equal(zw_budget_used(&b), 60);
	assert_int_equal(zw_budget_take(&b, 40), 0);
	assert_int_equal(zw_budget_take(&b, 1), -EAGAIN);
	zw_budget_give(&b, 60);
	assert_int_equal(zw_budget_used(&b), 40);
	assert_int_equal(zw_budget_take(&b, SIZE_MAX), -EAGAIN);
	assert_int_equal(zw_budget_take(&b, 60), 0);
	zw_budget_give(&b, 100);
	assert_int_equal(zw_budget_used(&b), 0);
}

static void victim_order(void **state)
{
	struct zw_conntab t;
	struct zw_conn c[5];

	(void)state;
	assert_int_equal(zw_conntab_init(&t, 4), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(zw_conntab_add(&t, &c[i], 10 * i, 1000), 0);
	assert_int_equal(zw_conntab_add(&t, &c[4], 50, 1000), -ENOSPC);
	assert_int_equal(t.live, 4);
	/* all NEW: the oldest goes first */
	assert_ptr_equal(zw_conntab_victim(&t), &c[0]);
	/* READING comes after NEW; BUSY never */
	zw_conntab_set(&t, &c[0], ZW_CONN_READING, 60, 1000);
	zw_conntab_set(&t, &c[1], ZW_CONN_BUSY, 60, 1000);
	assert_ptr_equal(zw_conntab_victim(&t), &c[2]);
	/* IDLE before NEW, even a younger one */
	zw_conntab_set(&t, &c[3], ZW_CONN_IDLE, 70, 5000);
	assert_ptr_equal(zw_conntab_victim(&t), &c[3]);
	/* CLOSING is no longer live and never picked again */
	zw_conntab_set(&t, &c[3], ZW_CONN_CLOSING, 80, 0);
	zw_conntab_set(&t, &c[2], ZW_CONN_CLOSING, 80, 0);
	assert_int_equal(t.live, 2);
	assert_ptr_equal(zw_conntab_victim(&t), &c[0]);
	zw_conntab_set(&t, &c[2], ZW_CONN_IDLE, 90, 0); /* stays CLOSING */
	assert_int_equal(c[2].phase, ZW_CONN_CLOSING);
	zw_conntab_set(&t, &c[0], ZW_CONN_BUSY, 90, 0);
	assert_null(zw_conntab_victim(&t));
	/* removal keeps the table dense */
	zw_conntab_remove(&t, &c[0]);
	zw_conntab_remove(&t, &c[3]);
	assert_int_equal(t.n, 2);
	assert_int_equal(t.live, 1);
	assert_ptr_equal(t.v[c[1].slot], &c[1]);
	assert_ptr_equal(t.v[c[2].slot], &c[2]);
	zw_conntab_free(&t);
}

static void deadlines(void **state)
{
	struct zw_conntab t;
	struct zw_conn a, b;

	(void)state;
	assert_int_equal(zw_conntab_init(&t, 2), 0);
	assert_int_equal(zw_conntab_add(&t, &a, 0, 100), 0);
	assert_int_equal(zw_conntab_add(&t, &b, 0, 0), 0); /* no deadline */
	assert_null(zw_conntab_expired(&t, 99));
	assert_ptr_equal(zw_conntab_expired(&t, 100), &a);
	zw_conntab_set(&t, &a, ZW_CONN_CLOSING, 100, 0);
	assert_null(zw_conntab_expired(&t, 1000000));
	zw_conntab_set(&t, &b, ZW_CONN_IDLE, 100, 200);
	assert_ptr_equal(zw_conntab_expired(&t, 250), &b);
	zw_conntab_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(budget_bounds),
	        cmocka_unit_test(victim_order),
	        cmocka_unit_test(deadlines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
