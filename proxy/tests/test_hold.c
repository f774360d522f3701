/* Unit tests for proxy/hold.c: FIFO queues per target, removal from any
 * position, queue lifetime, and the process-wide held limit under threads. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "hold.h"

struct req {
	int id;
	struct zw_hold_item it;
};

static struct req *of(struct zw_hold_item *it)
{
	return (struct req *)((char *)it - offsetof(struct req, it));
}

static void test_fifo_and_remove(void **state)
{
	(void)state;
	struct zw_hold h;
	struct req r[5];
	zw_hold_init(&h);
	for (int i = 0; i < 5; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		r[i].id = i;
		assert_int_equal(zw_hold_push(&h, i < 4 ? "ns/a" : "ns/b", &r[i].it), 0);
	}
	assert_int_equal(h.total, 5);
	struct zw_hold_queue *qa = zw_hold_find(&h, "ns/a");
	assert_non_null(qa);
	assert_int_equal(qa->n, 4);
	/* Remove from the middle, the head and the tail; order is kept. */
	zw_hold_remove(&h, &r[1].it);
	zw_hold_remove(&h, &r[0].it);
	assert_null(r[0].it.q);
	zw_hold_remove(&h, &r[0].it); /* not held any more: no-op */
	assert_int_equal(qa->n, 2);
	assert_int_equal(of(qa->head)->id, 2);
	assert_int_equal(of(qa->tail)->id, 3);
	assert_int_equal(h.total, 3);
	zw_hold_remove(&h, &r[3].it);
	zw_hold_remove(&h, &r[2].it);
	/* An emptied queue is gone. */
	assert_null(zw_hold_find(&h, "ns/a"));
	assert_non_null(zw_hold_find(&h, "ns/b"));
	assert_int_equal(h.total, 1);
	zw_hold_free(&h);
	assert_null(r[4].it.q);
}

struct drain_ctx {
	struct zw_hold *h;
	int order[8];
	int n;
};

/* Releases every item of q in order, as the server does. */
static void drain(void *arg, struct zw_hold_queue *q)
{
	struct drain_ctx *d = arg;
	while (q->n > 0) {
		int last = q->n == 1;
		struct zw_hold_item *it = q->head;
		d->order[d->n++] = of(it)->id;
		zw_hold_remove(d->h, it);
		if (last)
			break;
	}
}

static void test_each_releases_in_order(void **state)
{
	(void)state;
	struct zw_hold h;
	struct req r[6];
	zw_hold_init(&h);
	for (int i = 0; i < 6; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		r[i].id = i;
		assert_int_equal(zw_hold_push(&h, "ns/x", &r[i].it), 0);
	}
	struct drain_ctx d = {.h = &h};
	zw_hold_each(&h, drain, &d);
	assert_int_equal(d.n, 6);
	for (int i = 0; i < 6; i++)
		assert_int_equal(d.order[i], i);
	assert_int_equal(h.total, 0);
	assert_null(zw_hold_find(&h, "ns/x"));
	zw_hold_free(&h);
}

static struct zw_hold_limits limits;

static void *taker(void *arg)
{
	long got = 0;
	(void)arg;
	for (int i = 0; i < 1000; i++)
		if (zw_hold_limits_take(&limits, "ns/app", 150) == 0)
			got++;
	return (void *)got;
}

static void test_limits_across_threads(void **state)
{
	(void)state;
	assert_int_equal(zw_hold_limits_init(&limits), 0);
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, taker, NULL);
	long total = 0;
	for (int i = 0; i < 4; i++) {
		void *got;
		pthread_join(th[i], &got);
		total += (long)got;
	}
	/* Exactly the limit was handed out, however the threads raced. */
	assert_int_equal(total, 150);
	assert_int_equal(zw_hold_limits_count(&limits, "ns/app"), 150);
	assert_int_equal(zw_hold_limits_take(&limits, "ns/app", 150), -1);
	assert_int_equal(zw_hold_limits_take(&limits, "ns/other", 150), 0);
	for (int i = 0; i < 150; i++)
		zw_hold_limits_give(&limits, "ns/app");
	assert_int_equal(zw_hold_limits_count(&limits, "ns/app"), 0);
	zw_hold_limits_give(&limits, "ns/app"); /* extra give: stays at 0 */
	assert_int_equal(zw_hold_limits_count(&limits, "ns/app"), 0);
	assert_int_equal(zw_hold_limits_take(&limits, "ns/app", 1), 0);
	assert_int_equal(zw_hold_limits_take(&limits, "ns/app", 1), -1);
	zw_hold_limits_free(&limits);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_fifo_and_remove),
	        cmocka_unit_test(test_each_releases_in_order),
	        cmocka_unit_test(test_limits_across_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
