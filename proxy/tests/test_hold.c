/* Unit tests for proxy/hold.c: admission (forward or queue), FIFO order
 * across workers, per-endpoint allowances under threads, slow start,
 * overflow, cancelling queued and granted requests, mailboxes. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "endpoints.h"
#include "hold.h"
#include "target.h"

struct req {
	int id;
	struct zw_hold_item it;
};

static struct req *of(struct zw_hold_item *it)
{
	return (struct req *)((char *)it - offsetof(struct req, it));
}

/* A store with ns/app:80 on n endpoints 127.0.0.1..n (port 8080). */
static struct zw_endpoints *store(int n)
{
	struct zw_endpoints *s = NULL;
	char spec[1024] = "ns/app:80=", err[ZW_EP_ERRLEN];
	assert_int_equal(zw_endpoints_new(&s), 0);
	for (int i = 1; i <= n; i++) {
		char one[64];
		snprintf(one, sizeof(one), "%s127.0.0.%d:8080", i > 1 ? "," : "", i);
		strcat(spec, one);
	}
	if (n > 0)
		assert_int_equal(zw_endpoints_apply_spec(s, spec, err), 0);
	return s;
}

static struct zw_endpoint_set *app_set(struct zw_endpoints *s)
{
	struct zw_endpoint_set *set = NULL;
	assert_int_equal(zw_endpoints_get(s, "ns", "app", 80, NULL, &set), 0);
	return set;
}

static long total_outstanding(const struct zw_endpoint_set *set)
{
	long n = 0;
	for (size_t i = 0; i < set->n; i++)
		n += zw_endpoint_outstanding(&set->eps[i]);
	return n;
}

struct fixture {
	struct zw_endpoints *eps;
	struct zw_endpoint_set *set;
	struct zw_allowance a;
};

static void target_of(void *arg, const struct zw_hold_item *oldest, struct zw_endpoint_set **set,
                      struct zw_allowance *a)
{
	struct fixture *f = arg;
	(void)oldest;
	*set = zw_endpoint_set_ref(f->set);
	*a = f->a;
}

/* A board for `workers` workers over a store where ns/app has no endpoint
 * yet (`empty`: its endpoint set). */
struct cold {
	struct zw_hold h;
	struct zw_endpoints *eps;
	struct zw_endpoint_set *empty;
};

static void cold_open(struct cold *c, int workers)
{
	c->eps = store(0);
	c->empty = app_set(c->eps);
	assert_int_equal(zw_hold_init(&c->h, workers), 0);
}

/* Frees what cold_open made; nothing may be queued any more. */
static void cold_close(struct cold *c)
{
	assert_int_equal(zw_hold_total(&c->h), 0);
	zw_endpoint_set_unref(c->empty);
	zw_endpoints_free(c->eps);
	zw_hold_free(&c->h);
}

/* Admits n requests r[0..n) of ns/app/0 while it has no endpoint,
 * r[i] owned by worker i % workers: the first `max` wait, the rest find the
 * queue full. */
static void queue_cold(struct cold *c, struct req *r, int n, int workers, uint32_t max)
{
	struct zw_allowance none = {0};
	uint64_t rng = 7;
	for (int i = 0; i < n; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		r[i].id = i;
		enum zw_admit ad = zw_hold_admit(&c->h, "ns/app/0", &r[i].it, i % workers, max,
		                                 c->empty, &none, 0, &rng);
		assert_int_equal(ad, i < (int)max ? ZW_ADMIT_QUEUED : ZW_ADMIT_FULL);
	}
}

static void test_admit_forwards_until_full_then_queues(void **state)
{
	(void)state;
	struct zw_hold h;
	struct zw_endpoints *eps = store(2);
	struct zw_endpoint_set *set = app_set(eps);
	struct zw_allowance a = {.per_endpoint = 2};
	uint64_t rng = 1;
	struct req r[6];
	assert_int_equal(zw_hold_init(&h, 2), 0);
	for (int i = 0; i < 6; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		r[i].id = i;
		enum zw_admit ad =
		        zw_hold_admit(&h, "ns/app/0", &r[i].it, i % 2, 100, set, &a, 1000, &rng);
		/* Two endpoints with room for two each: four forwarded. */
		assert_int_equal(ad, i < 4 ? ZW_ADMIT_FORWARD : ZW_ADMIT_QUEUED);
	}
	assert_int_equal(total_outstanding(set), 4);
	for (size_t i = 0; i < set->n; i++)
		assert_int_equal(zw_endpoint_outstanding(&set->eps[i]), 2);
	assert_int_equal(zw_hold_count(&h, "ns/app/0"), 2);
	assert_int_equal(zw_hold_total(&h), 2);

	/* Room appears: the oldest waiting request is granted first, to its
	 * own worker's mailbox. */
	zw_endpoint_done(r[0].it.ep);
	struct fixture f = {.eps = eps, .set = set, .a = a};
	uint64_t mask = zw_hold_release(&h, target_of, &f, 1000, &rng);
	assert_int_equal(mask, 1u << 0); /* r[4] belongs to worker 0 */
	assert_int_equal(r[4].it.state, ZW_HOLD_GRANTED);
	assert_int_equal(r[5].it.state, ZW_HOLD_QUEUED);
	assert_null(zw_hold_take_granted(&h, 1));
	struct zw_hold_item *got = zw_hold_take_granted(&h, 0);
	assert_ptr_equal(got, &r[4].it);
	assert_null(got->next);
	assert_non_null(got->ep);
	zw_endpoint_done(got->ep);
	zw_endpoint_set_unref(got->set);

	/* A new request while one waits joins the queue although there is
	 * room: it never overtakes. */
	struct req late = {.id = 9};
	assert_int_equal(zw_hold_admit(&h, "ns/app/0", &late.it, 1, 100, set, &a, 1000, &rng),
	                 ZW_ADMIT_QUEUED);
	mask = zw_hold_release(&h, target_of, &f, 1000, &rng);
	assert_int_equal(mask, 1u << 1);
	got = zw_hold_take_granted(&h, 1);
	assert_ptr_equal(got, &r[5].it); /* the older one only: one slot */
	assert_int_equal(late.it.state, ZW_HOLD_QUEUED);
	assert_int_equal(zw_hold_cancel(&h, &late.it), 0);
	assert_int_equal(zw_hold_total(&h), 0);
	zw_endpoint_done(got->ep);
	zw_endpoint_set_unref(got->set);
	for (int i = 1; i < 4; i++)
		zw_endpoint_done(r[i].it.ep);
	assert_int_equal(total_outstanding(set), 0);
	zw_endpoint_set_unref(set);
	zw_endpoints_free(eps);
	zw_hold_free(&h);
}

static void test_cold_queue_fifo_and_overflow(void **state)
{
	(void)state;
	struct cold c;
	uint64_t rng = 7;
	struct req r[5];
	cold_open(&c, 3);
	queue_cold(&c, r, 5, 3, 4);
	assert_int_equal(r[4].it.state, ZW_HOLD_IDLE);
	/* Cancel from the middle: order of the rest is kept. */
	assert_int_equal(zw_hold_cancel(&c.h, &r[1].it), 0);
	assert_int_equal(zw_hold_count(&c.h, "ns/app/0"), 3);

	/* Endpoints turn ready; release pacing 1 per endpoint on 2 endpoints:
	 * the two oldest go, one per endpoint. */
	char err[ZW_EP_ERRLEN];
	assert_int_equal(zw_endpoints_apply_spec(c.eps, "ns/app:80=127.0.0.1:1,127.0.0.2:1", err),
	                 0);
	struct fixture f = {.eps = c.eps, .set = app_set(c.eps), .a = {.per_endpoint = 1}};
	uint64_t mask = zw_hold_release(&c.h, target_of, &f, 0, &rng);
	assert_int_equal(mask, (1u << 0) | (1u << 2));
	struct zw_hold_item *g0 = zw_hold_take_granted(&c.h, 0);
	struct zw_hold_item *g2 = zw_hold_take_granted(&c.h, 2);
	assert_ptr_equal(g0, &r[0].it);
	assert_ptr_equal(g2, &r[2].it);
	assert_ptr_not_equal(g0->ep, g2->ep);
	assert_int_equal(r[3].it.state, ZW_HOLD_QUEUED);

	/* A granted request that goes away before its worker forwards it
	 * gives the slot back. */
	zw_endpoint_done(g0->ep);
	zw_endpoint_set_unref(g0->set);
	mask = zw_hold_release(&c.h, target_of, &f, 0, &rng);
	assert_int_equal(mask, 1u << 0);
	assert_int_equal(r[3].it.state, ZW_HOLD_GRANTED);
	assert_int_equal(zw_hold_cancel(&c.h, &r[3].it), 1);
	assert_null(zw_hold_take_granted(&c.h, 0));
	zw_endpoint_done(g2->ep);
	zw_endpoint_set_unref(g2->set);
	assert_int_equal(total_outstanding(f.set), 0);
	assert_int_equal(zw_hold_total(&c.h), 0);
	zw_endpoint_set_unref(f.set);
	cold_close(&c);
}

/* Many targets in one map (it grows past its first buckets, chains form): queues come and go in any
 * order (front, middle and back of a chain) and every other target's queue is still found with its
 * count. */
static void test_many_targets_share_buckets(void **state)
{
	(void)state;
	enum { N = 700 };
	static struct req r[N][2];
	struct cold c;
	struct zw_allowance none = {0};
	uint64_t rng = 5;
	char key[32];
	cold_open(&c, 1);
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "ns/app%d/0", i);
		for (int k = 0; k < 2; k++) {
			memset(&r[i][k], 0, sizeof(r[i][k]));
			assert_int_equal(zw_hold_admit(&c.h, key, &r[i][k].it, 0, 10, c.empty,
			                               &none, 0, &rng),
			                 ZW_ADMIT_QUEUED);
		}
	}
	assert_int_equal(zw_hold_total(&c.h), 2 * N);
	/* Every third target's queue goes (both items), then the rest in
	 * reverse order, one item at a time. */
	for (int i = 0; i < N; i += 3) {
		assert_int_equal(zw_hold_cancel(&c.h, &r[i][1].it), 0);
		assert_int_equal(zw_hold_cancel(&c.h, &r[i][0].it), 0);
	}
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "ns/app%d/0", i);
		assert_int_equal(zw_hold_count(&c.h, key), i % 3 == 0 ? 0 : 2);
	}
	for (int i = N - 1; i >= 0; i--) {
		if (i % 3 == 0)
			continue;
		snprintf(key, sizeof(key), "ns/app%d/0", i);
		assert_int_equal(zw_hold_cancel(&c.h, &r[i][0].it), 0);
		assert_int_equal(zw_hold_count(&c.h, key), 1);
		assert_int_equal(zw_hold_cancel(&c.h, &r[i][1].it), 0);
		assert_int_equal(zw_hold_count(&c.h, key), 0);
		if (i > 1) { /* a neighbour still queued is still found */
			snprintf(key, sizeof(key), "ns/app%d/0", (i - 1) % 3 ? i - 1 : i - 2);
			assert_int_equal(zw_hold_count(&c.h, key), 2);
		}
	}
	cold_close(&c);
}

/* A granted request leaving from the middle of its worker's mailbox: the
 * others come out in grant order. */
static void test_cancel_granted_from_mailbox_middle(void **state)
{
	(void)state;
	struct cold c;
	uint64_t rng = 11;
	struct req r[4];
	cold_open(&c, 1);
	queue_cold(&c, r, 4, 1, 10);
	char err[ZW_EP_ERRLEN];
	assert_int_equal(zw_endpoints_apply_spec(c.eps, "ns/app:80=127.0.0.1:1", err), 0);
	struct fixture f = {.eps = c.eps, .set = app_set(c.eps), .a = {.per_endpoint = 4}};
	assert_int_equal(zw_hold_release(&c.h, target_of, &f, 0, &rng), 1u << 0);
	assert_int_equal(zw_hold_cancel(&c.h, &r[1].it), 1); /* middle */
	assert_int_equal(zw_hold_cancel(&c.h, &r[3].it), 1); /* back */
	assert_int_equal(total_outstanding(f.set), 2);
	struct zw_hold_item *got = zw_hold_take_granted(&c.h, 0);
	assert_ptr_equal(got, &r[0].it);
	assert_ptr_equal(got->next, &r[2].it);
	assert_null(got->next->next);
	assert_null(zw_hold_take_granted(&c.h, 0));
	for (struct zw_hold_item *it = got, *next; it; it = next) {
		next = it->next;
		assert_int_equal(it->state, ZW_HOLD_IDLE);
		zw_endpoint_done(it->ep);
		zw_endpoint_set_unref(it->set);
	}
	assert_int_equal(total_outstanding(f.set), 0);
	assert_int_equal(zw_hold_total(&c.h), 0);
	zw_endpoint_set_unref(f.set);
	cold_close(&c);
}

static void test_slow_start_share(void **state)
{
	(void)state;
	struct zw_endpoints *eps = store(1);
	struct zw_endpoint_set *set = app_set(eps);
	const struct zw_endpoint *ep = &set->eps[0];
	uint64_t t0 = zw_endpoint_ready_since(ep);
	assert_true(t0 > 0);
	struct zw_allowance a = {.per_endpoint = 10, .slow_start_ms = 10000};
	assert_int_equal(zw_allowance_of(&a, ep, t0), 1);
	assert_int_equal(zw_allowance_of(&a, ep, t0 + 500), 1);
	assert_int_equal(zw_allowance_of(&a, ep, t0 + 3000), 3);
	assert_int_equal(zw_allowance_of(&a, ep, t0 + 9999), 9);
	assert_int_equal(zw_allowance_of(&a, ep, t0 + 10000), 10);
	a.slow_start_ms = 0;
	assert_int_equal(zw_allowance_of(&a, ep, t0), 10);
	struct zw_allowance none = {.slow_start_ms = 10000};
	assert_int_equal(zw_allowance_of(&none, ep, t0), 0);
	/* Acquire follows the share: one slot at first. */
	uint64_t rng = 3;
	a.slow_start_ms = 10000;
	assert_non_null(zw_hold_acquire(set, &a, t0 + 100, &rng));
	assert_null(zw_hold_acquire(set, &a, t0 + 100, &rng));
	assert_non_null(zw_hold_acquire(set, &a, t0 + 2500, &rng));
	assert_null(zw_hold_acquire(set, &a, t0 + 2500, &rng));
	zw_endpoint_done(ep);
	zw_endpoint_done(ep);
	/* An endpoint that stops being ready and returns starts over. */
	char err[ZW_EP_ERRLEN];
	zw_endpoints_resync_begin(eps, ZW_EP_KIND_SLICE, NULL);
	zw_endpoints_resync_end(eps, ZW_EP_KIND_SLICE, NULL);
	assert_int_equal(zw_endpoints_apply_spec(eps, "ns/app:80=127.0.0.1:8080", err), 0);
	struct zw_endpoint_set *again = app_set(eps);
	assert_int_equal(again->n, 1);
	assert_true(zw_endpoint_ready_since(&again->eps[0]) >= t0);
	zw_endpoint_set_unref(again);
	zw_endpoint_set_unref(set);
	zw_endpoints_free(eps);
}

struct race {
	const struct zw_endpoint_set *set;
	struct zw_allowance a;
	long max_seen;
	pthread_mutex_t lock;
};

static void *racer(void *arg)
{
	struct race *r = arg;
	uint64_t rng = (uint64_t)(uintptr_t)&rng;
	for (int i = 0; i < 20000; i++) {
		const struct zw_endpoint *ep = zw_hold_acquire(r->set, &r->a, 0, &rng);
		if (!ep)
			continue;
		long now = zw_endpoint_outstanding(ep);
		pthread_mutex_lock(&r->lock);
		if (now > r->max_seen)
			r->max_seen = now;
		pthread_mutex_unlock(&r->lock);
		zw_endpoint_done(ep);
	}
	return NULL;
}

static void test_allowance_never_exceeded_under_threads(void **state)
{
	(void)state;
	struct zw_endpoints *eps = store(2);
	struct race r = {.set = app_set(eps), .a = {.per_endpoint = 3}};
	pthread_mutex_init(&r.lock, NULL);
	pthread_t th[6];
	for (int i = 0; i < 6; i++)
		assert_int_equal(pthread_create(&th[i], NULL, racer, &r), 0);
	for (int i = 0; i < 6; i++)
		pthread_join(th[i], NULL);
	assert_true(r.max_seen >= 1);
	assert_true(r.max_seen <= 3);
	assert_int_equal(total_outstanding(r.set), 0);
	pthread_mutex_destroy(&r.lock);
	zw_endpoint_set_unref((struct zw_endpoint_set *)r.set);
	zw_endpoints_free(eps);
}

static void test_unlimited_spreads(void **state)
{
	(void)state;
	struct zw_endpoints *eps = store(4);
	struct zw_endpoint_set *set = app_set(eps);
	struct zw_allowance none = {0};
	uint64_t rng = 11;
	for (int i = 0; i < 400; i++)
		assert_non_null(zw_hold_acquire(set, &none, 0, &rng));
	for (size_t i = 0; i < set->n; i++) {
		long o = zw_endpoint_outstanding(&set->eps[i]);
		assert_true(o >= 50);
		while (o-- > 0)
			zw_endpoint_done(&set->eps[i]);
	}
	zw_endpoint_set_unref(set);
	zw_endpoints_free(eps);
}

/* A target as the parser leaves one with nothing set. */
static struct zw_target plain(void)
{
	struct zw_target t;
	memset(&t, 0, sizeof(t));
	t.metrics = ZW_METRIC_REQUEST_RATE;
	t.concurrency_target = 100;
	t.endpoint_concurrency = ZW_ALLOWANCE_UNSET;
	t.slow_start_ms = -1;
	return t;
}

static void test_policy_allowance(void **state)
{
	(void)state;
	struct zw_hold_defaults d = {
	        .release_per_endpoint = 100, .max_waiting = 1000, .wait_ms = 300000};
	struct zw_target t = plain();
	/* Nothing set: no allowance; releases paced at --release-per-endpoint. */
	assert_int_equal(zw_hold_allowance(&t, &d, 0).per_endpoint, 0);
	assert_int_equal(zw_hold_allowance(&t, &d, 1).per_endpoint, 100);
	/* Concurrency targets pace at their targetValue. */
	t.metrics = ZW_METRIC_CONCURRENCY;
	t.concurrency_target = 7;
	assert_int_equal(zw_hold_allowance(&t, &d, 0).per_endpoint, 0);
	assert_int_equal(zw_hold_allowance(&t, &d, 1).per_endpoint, 7);
	/* --endpoint-concurrency auto: the targetValue, for concurrency targets only. */
	d.endpoint_concurrency = ZW_ALLOWANCE_AUTO;
	assert_int_equal(zw_hold_allowance(&t, &d, 0).per_endpoint, 7);
	struct zw_target r = plain();
	assert_int_equal(zw_hold_allowance(&r, &d, 0).per_endpoint, 0);
	/* A number from the flag; the target's own setting wins, "off" too. */
	d.endpoint_concurrency = 4;
	assert_int_equal(zw_hold_allowance(&r, &d, 0).per_endpoint, 4);
	r.endpoint_concurrency = 9;
	assert_int_equal(zw_hold_allowance(&r, &d, 0).per_endpoint, 9);
	r.endpoint_concurrency = 0;
	assert_int_equal(zw_hold_allowance(&r, &d, 0).per_endpoint, 0);
	/* Slow start: the target's, else the flag's. */
	d.slow_start_ms = 5000;
	assert_int_equal(zw_hold_allowance(&r, &d, 0).slow_start_ms, 5000);
	r.slow_start_ms = 0;
	assert_int_equal(zw_hold_allowance(&r, &d, 0).slow_start_ms, 0);
	/* Wait bounds. */
	assert_int_equal(zw_hold_max_waiting(&r, &d), 1000);
	assert_int_equal(zw_hold_wait_ms(&r, &d), 300000);
	r.max_pending = 3;
	r.readiness_timeout_ms = 2000;
	assert_int_equal(zw_hold_max_waiting(&r, &d), 3);
	assert_int_equal(zw_hold_wait_ms(&r, &d), 2000);
}

static void test_policy_cold_timeout_overflow(void **state)
{
	(void)state;
	struct zw_target t = plain();
	/* Nothing configured: wait, then 504; overflow is a 503. */
	assert_int_equal(zw_hold_cold_action(&t), ZW_COLD_WAIT);
	assert_int_equal(zw_hold_timeout_action(&t, 0), ZW_TIMEOUT_GATEWAY);
	assert_int_equal(zw_hold_overflow_placeholder(&t), 0);
	/* A placeholder alone answers at once, as the add-on and Kedify. */
	t.has_placeholder = true;
	assert_int_equal(zw_hold_cold_action(&t), ZW_COLD_PLACEHOLDER);
	assert_int_equal(zw_hold_timeout_action(&t, 0), ZW_TIMEOUT_PLACEHOLDER);
	/* ... unless it asks to hold up to maxPendingRequests first. */
	t.max_pending = 10;
	t.overflow_placeholder = true;
	assert_int_equal(zw_hold_cold_action(&t), ZW_COLD_WAIT);
	assert_int_equal(zw_hold_overflow_placeholder(&t), 1);
	/* A fallback: requests wait and go there at the timeout. */
	struct zw_target f = plain();
	f.has_placeholder = true;
	f.has_fallback = true;
	assert_int_equal(zw_hold_cold_action(&f), ZW_COLD_WAIT);
	assert_int_equal(zw_hold_timeout_action(&f, 0), ZW_TIMEOUT_FALLBACK);
	/* The request's own deadline passed: 504 whatever is configured. */
	assert_int_equal(zw_hold_timeout_action(&f, 1), ZW_TIMEOUT_GATEWAY);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_admit_forwards_until_full_then_queues),
	        cmocka_unit_test(test_cold_queue_fifo_and_overflow),
	        cmocka_unit_test(test_many_targets_share_buckets),
	        cmocka_unit_test(test_cancel_granted_from_mailbox_middle),
	        cmocka_unit_test(test_slow_start_share),
	        cmocka_unit_test(test_allowance_never_exceeded_under_threads),
	        cmocka_unit_test(test_unlimited_spreads),
	        cmocka_unit_test(test_policy_allowance),
	        cmocka_unit_test(test_policy_cold_timeout_overflow),
	};
	(void)of;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
