/* Unit tests for proxy/stats.c: window arithmetic, granularity, precision
 * after a long idle period, wake signalling, concurrency under threads. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "stats.h"

static int setup(void **state)
{
	struct zw_stats *s = NULL;

	assert_int_equal(zw_stats_new(&s), 0);
	*state = s;
	return 0;
}

static int teardown(void **state)
{
	zw_stats_free(*state);
	return 0;
}

static void test_acquire_release(void **state)
{
	struct zw_stats *s = *state;
	struct zw_stats_entry *a, *b;
	struct zw_stats_snapshot snap;
	char big[ZW_STATS_KEY_MAX + 1];

	assert_int_equal(zw_stats_acquire(s, "ns/a", 0, 0, &a), 0);
	assert_int_equal(zw_stats_acquire(s, "ns/a", 0, 0, &b), 0);
	assert_ptr_equal(a, b);
	assert_string_equal(zw_stats_entry_key(a), "ns/a");
	assert_int_equal(zw_stats_count(s), 1);
	assert_int_equal(zw_stats_get(s, "ns/a", 0, &snap), 0);
	assert_int_equal(snap.window_ms, ZW_STATS_DEFAULT_WINDOW);
	assert_int_equal(snap.granularity_ms, ZW_STATS_DEFAULT_GRAN);
	zw_stats_release(s, a);
	assert_int_equal(zw_stats_count(s), 1);
	zw_stats_release(s, b);
	assert_int_equal(zw_stats_count(s), 0);
	assert_int_equal(zw_stats_get(s, "ns/a", 0, &snap), -ENOENT);

	assert_int_equal(zw_stats_acquire(s, "", 0, 0, &a), -EINVAL);
	assert_int_equal(zw_stats_acquire(s, "x", 1000, 2000, &a), -EINVAL);
	assert_int_equal(zw_stats_acquire(s, "x", ZW_STATS_MAX_WINDOW + 1, 0, &a), -EINVAL);
	memset(big, 'k', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	assert_int_equal(zw_stats_acquire(s, big, 0, 0, &a), -ENAMETOOLONG);
}

static void test_many_keys(void **state)
{
	struct zw_stats *s = *state;
	struct zw_stats_entry *e[1000];
	struct zw_stats_snapshot snap;
	char key[32];

	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "ns/t%d", i);
		assert_int_equal(zw_stats_acquire(s, key, 0, 0, &e[i]), 0);
		for (int j = 0; j <= i % 5; j++)
			zw_stats_begin(e[i]);
	}
	assert_int_equal(zw_stats_count(s), 1000);
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "ns/t%d", i);
		assert_int_equal(zw_stats_get(s, key, 0, &snap), 0);
		assert_int_equal(snap.requests, (uint64_t)(i % 5 + 1));
	}
	for (int i = 0; i < 1000; i += 2)
		zw_stats_release(s, e[i]);
	assert_int_equal(zw_stats_count(s), 500);
	assert_int_equal(zw_stats_get(s, "ns/t2", 0, &snap), -ENOENT);
	assert_int_equal(zw_stats_get(s, "ns/t3", 0, &snap), 0);
	for (int i = 1; i < 1000; i += 2)
		zw_stats_release(s, e[i]);
	assert_int_equal(zw_stats_count(s), 0);
}

/* Steady 10 req/s for 2 minutes reads 10 req/s; then it drains out exactly
 * one window after the last request. */
static void test_window_steady(void **state)
{
	struct zw_stats *s = *state;
	struct zw_stats_entry *e;
	struct zw_stats_snapshot snap;
	uint64_t t = 1000000;

	assert_int_equal(zw_stats_acquire(s, "ns/steady", 60000, 1000, &e), 0);
	for (int sec = 0; sec < 120; sec++) {
		for (int i = 0; i < 10; i++) {
			zw_stats_begin(e);
			zw_stats_end(e);
		}
		zw_stats_tick(s, t);
		t += 1000;
	}
	assert_int_equal(zw_stats_get(s, "ns/steady", t - 1000, &snap), 0);
	assert_int_equal(snap.requests, 1200);
	assert_int_equal(snap.concurrency, 0);
	assert_true(fabs(snap.rate - 10.0) < 0.2);
	assert_true(snap.active);
	/* Half a window later, half the requests are still in it. */
	zw_stats_tick(s, t + 29000);
	assert_int_equal(zw_stats_get(s, "ns/steady", t + 29000, &snap), 0);
	assert_true(snap.window_requests > 250 && snap.window_requests < 350);
	/* One full window after the last request: nothing left. */
	zw_stats_tick(s, t + 61000);
	assert_int_equal(zw_stats_get(s, "ns/steady", t + 61000, &snap), 0);
	assert_true(snap.rate == 0.0);
	assert_false(snap.active);
	zw_stats_release(s, e);
}

/* A burst shortly after activity starts is divided by the time since
 * activity began (not the whole window), clamped to one granularity. */
static void test_window_start(void **state)
{
	struct zw_stats *s = *state;
	struct zw_stats_entry *e;
	struct zw_stats_snapshot snap;

	assert_int_equal(zw_stats_acquire(s, "ns/start", 60000, 1000, &e), 0);
	for (int i = 0; i < 5; i++)
		zw_stats_begin(e);
	/* Not sampled yet: counts at once over one granularity. */
	assert_int_equal(zw_stats_get(s, "ns/start", 5000, &snap), 0);
	assert_true(fabs(snap.rate - 5.0) < 1e-9);
	assert_int_equal(snap.concurrency, 5);
	zw_stats_tick(s, 5000);
	assert_int_equal(zw_stats_get(s, "ns/start", 15000, &snap), 0);
	assert_true(fabs(snap.rate - 0.5) < 1e-9); /* 5 requests over 10 s */
	for (int i = 0; i < 5; i++)
		zw_stats_end(e);
	assert_int_equal(zw_stats_get(s, "ns/start", 15000, &snap), 0);
	assert_int_equal(snap.concurrency, 0);
	zw_stats_release(s, e);
}

/* The add-on's #1692: one request after a long idle period in a 1 h window
 * must read > 0, and read exactly 1/3600 req/s after a full window span. */
static void test_long_idle_precision(void **state)
{
	struct zw_stats *s = *state;
	struct zw_stats_entry *e;
	struct zw_stats_snapshot snap;
	uint64_t hour = 3600000;

	assert_int_equal(zw_stats_acquire(s, "ns/idle", hour, 1000, &e), 0);
	zw_stats_begin(e);
	zw_stats_end(e);
	zw_stats_tick(s, 10 * hour);
	/* Long idle: 3 hours of ticks with nothing. */
	for (uint64_t t = 10 * hour; t < 13 * hour; t += 60000)
		zw_stats_tick(s, t);
	assert_int_equal(zw_stats_get(s, "ns/idle", 13 * hour, &snap), 0);
	assert_true(snap.rate == 0.0);
	zw_stats_begin(e);
	zw_stats_end(e);
	zw_stats_tick(s, 13 * hour);
	/* 59 minutes later the single request is still in the window. */
	assert_int_equal(zw_stats_get(s, "ns/idle", 13 * hour + 59 * 60000, &snap), 0);
	assert_true(snap.rate > 0.0);
	assert_true(snap.active);
	assert_true(fabs(snap.rate - 1.0 / 3540.0) < 1e-9);
	assert_int_equal(zw_stats_get(s, "ns/idle", 14 * hour - 1, &snap), 0);
	assert_true(snap.rate > 0.0 && snap.rate < 0.001);
	zw_stats_release(s, e);
}

/* Granularity coarser than 1 s and the bucket limit. */
static void test_granularity(void **state)
{
	struct zw_stats *s = *state;
	struct zw_stats_entry *e, *f;
	struct zw_stats_snapshot snap;

	assert_int_equal(zw_stats_acquire(s, "ns/g", 10000, 5000, &e), 0);
	zw_stats_begin(e);
	zw_stats_tick(s, 100000); /* bucket [100 s, 105 s) */
	zw_stats_begin(e);
	zw_stats_tick(s, 106000); /* bucket [105 s, 110 s) */
	assert_int_equal(zw_stats_get(s, "ns/g", 109999, &snap), 0);
	assert_true(snap.window_requests == 2.0);
	/* At 110 s the window is buckets [105,110) and [110,115): the first
	 * request has left. */
	assert_int_equal(zw_stats_get(s, "ns/g", 110000, &snap), 0);
	assert_true(snap.window_requests == 1.0);
	assert_int_equal(zw_stats_get(s, "ns/g", 115000, &snap), 0);
	assert_true(snap.window_requests == 0.0);
	/* 24 h at 1 ms granularity is coarsened to ZW_STATS_MAX_BUCKETS. */
	assert_int_equal(zw_stats_acquire(s, "ns/fine", ZW_STATS_MAX_WINDOW, 1, &f), 0);
	assert_int_equal(zw_stats_get(s, "ns/fine", 0, &snap), 0);
	assert_int_equal(snap.granularity_ms, ZW_STATS_MAX_WINDOW / ZW_STATS_MAX_BUCKETS);
	/* Re-acquire with another window reconfigures, keeps the counter. */
	assert_int_equal(zw_stats_acquire(s, "ns/g", 60000, 1000, &f), 0);
	assert_int_equal(zw_stats_get(s, "ns/g", 110000, &snap), 0);
	assert_int_equal(snap.window_ms, 60000);
	assert_int_equal(snap.requests, 2);
	zw_stats_release(s, f);
	zw_stats_release(s, e);
}

static void test_remote(void **state)
{
	struct zw_stats *s = *state;
	struct zw_stats_entry *e;
	struct zw_stats_snapshot snap;

	assert_int_equal(zw_stats_acquire(s, "ns/r", 60000, 1000, &e), 0);
	assert_int_equal(zw_stats_add_remote(s, "ns/none", 3, 1000), -ENOENT);
	assert_int_equal(zw_stats_add_remote(s, "ns/r", 30, 1000), 0);
	assert_int_equal(zw_stats_get(s, "ns/r", 11000, &snap), 0);
	assert_int_equal(snap.requests, 0); /* local counter only */
	assert_true(fabs(snap.rate - 3.0) < 1e-9);
	zw_stats_release(s, e);
}

/* The running window total against a brute-force count, over random
 * arrivals, gaps shorter and longer than the window, several geometries. */
static void test_window_reference(void **state)
{
	struct zw_stats *s = *state;
	static const uint64_t geo[][2] = {
	        {60000, 1000}, {10000, 3000}, {3600000, 1000}, {5000, 5000}};
	static uint64_t at[4000], cnt[4000];
	uint32_t rng = 12345;

	for (size_t g = 0; g < sizeof(geo) / sizeof(geo[0]); g++) {
		struct zw_stats_entry *e;
		struct zw_stats_snapshot snap;
		uint64_t t = 1000000, w = geo[g][0], gr = geo[g][1], n = (w + gr - 1) / gr;
		size_t k = 0;

		assert_int_equal(zw_stats_acquire(s, "ns/ref", w, gr, &e), 0);
		for (int i = 0; i < 4000; i++) {
			uint64_t cur, want = 0;

			rng = rng * 1103515245u + 12345u;
			t += (rng >> 8) % 7 == 0 ? (rng >> 12) % (2 * w)
			                         : (rng >> 12) % (gr * 2 + 1);
			at[k] = t;
			cnt[k] = 1 + (rng >> 20) % 5;
			assert_int_equal(zw_stats_add_remote(s, "ns/ref", cnt[k], t), 0);
			k++;
			cur = t / gr;
			for (size_t j = 0; j < k; j++)
				if (at[j] / gr + n > cur)
					want += cnt[j];
			assert_int_equal(zw_stats_get(s, "ns/ref", t, &snap), 0);
			assert_true(snap.window_requests == (double)want);
		}
		zw_stats_release(s, e);
	}
}

struct wake_rec {
	int notified;
	int taken;
	char last[64];
};

static void on_notify(void *arg)
{
	((struct wake_rec *)arg)->notified++;
}

static void on_wake(void *arg, const char *key)
{
	struct wake_rec *w = arg;

	w->taken++;
	snprintf(w->last, sizeof(w->last), "%s", key);
}

static void test_wake(void **state)
{
	struct zw_stats *s = *state;
	struct zw_stats_entry *e;
	struct wake_rec w = {0};

	zw_stats_set_notify(s, on_notify, &w);
	assert_int_equal(zw_stats_acquire(s, "ns/w", 0, 0, &e), 0);
	assert_int_equal(zw_stats_take_wakes(s, on_wake, &w), 0);
	/* First request of an idle target wakes; the next ones do not. */
	zw_stats_begin(e);
	zw_stats_begin(e);
	assert_int_equal(w.notified, 1);
	assert_int_equal(zw_stats_take_wakes(s, on_wake, &w), 1);
	assert_string_equal(w.last, "ns/w");
	assert_int_equal(zw_stats_take_wakes(s, on_wake, &w), 0);
	zw_stats_begin(e);
	assert_int_equal(w.notified, 1);
	/* An explicit cold signal always wakes, once until taken. */
	zw_stats_cold(e);
	zw_stats_cold(e);
	assert_int_equal(w.notified, 2);
	assert_int_equal(zw_stats_take_wakes(s, on_wake, &w), 1);
	for (int i = 0; i < 3; i++)
		zw_stats_end(e);
	/* Idle again after a window with nothing: the next request wakes. */
	zw_stats_tick(s, 1000);
	zw_stats_tick(s, 70000);
	zw_stats_begin(e);
	assert_int_equal(w.notified, 3);
	assert_int_equal(zw_stats_take_wakes(s, on_wake, &w), 1);
	zw_stats_end(e);
	zw_stats_set_notify(s, NULL, NULL);
	zw_stats_release(s, e);
}

struct worker {
	struct zw_stats_entry *e;
	int n;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < w->n; i++) {
		zw_stats_begin(w->e);
		zw_stats_held(w->e, 1);
		zw_stats_held(w->e, -1);
		zw_stats_end(w->e);
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct zw_stats *s = *state;
	struct zw_stats_entry *e;
	struct zw_stats_snapshot snap;
	pthread_t th[8];
	struct worker w;
	uint64_t t = 1000;

	assert_int_equal(zw_stats_acquire(s, "ns/th", 60000, 1000, &e), 0);
	w.e = e;
	w.n = 100000;
	for (int i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&th[i], NULL, worker_run, &w), 0);
	for (int i = 0; i < 20; i++) {
		zw_stats_tick(s, t);
		assert_int_equal(zw_stats_get(s, "ns/th", t, &snap), 0);
		assert_true(snap.concurrency >= 0 && snap.concurrency <= 8);
		t += 10;
	}
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	zw_stats_tick(s, t);
	assert_int_equal(zw_stats_get(s, "ns/th", t, &snap), 0);
	assert_int_equal(snap.requests, 800000);
	assert_int_equal(snap.concurrency, 0);
	assert_int_equal(snap.held, 0);
	assert_true(snap.window_requests == 800000.0);
	zw_stats_release(s, e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_acquire_release, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_many_keys, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_window_steady, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_window_start, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_long_idle_precision, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_granularity, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_remote, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_window_reference, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_wake, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
