/* Unit tests for the scaler's admin handler (proxy/scaler.c,
 * zw_scaler_admin): the peer token on every /peer/ path, /peer/cold only for
 * keys of current targets (anything else 404 with no state kept), the
 * read-only paths left open, wake hints running out. The scaler runs on its
 * own loop with an ephemeral gRPC port and peer polling off; no request
 * leaves the process. */
#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth.h"
#include "scaler.h"
#include "stats.h"

struct fixture {
	uv_loop_t loop;
	struct zw_stats *stats;
	struct zw_scaler *scaler;
	struct zw_auth *auth;
	struct zw_target targets[2];
	char dir[64], path[96];
};

static void each(void *arg, int (*fn)(void *fnarg, const struct zw_target *t), void *fnarg)
{
	struct fixture *f = arg;
	for (size_t i = 0; i < 2; i++)
		if (fn(fnarg, &f->targets[i]))
			return;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct zw_scaler_config cfg;
	struct zw_scaler_targets tg = {.each = each, .arg = f};
	snprintf(f->dir, sizeof(f->dir), "/tmp/zw-scaler-admin-XXXXXX");
	if (!f || !mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/token", f->dir);
	FILE *fp = fopen(f->path, "w");
	if (!fp)
		return -1;
	fputs("peer-secret\n", fp);
	fclose(fp);
	uv_loop_init(&f->loop);
	struct zw_auth_config ac = {.path = f->path};
	if (zw_auth_new(&f->loop, &ac, &f->auth) != 0 || zw_stats_new(&f->stats) != 0)
		return -1;
	static const char *const names[2] = {"app", "web"};
	for (int i = 0; i < 2; i++) {
		f->targets[i].namespace = "demo";
		f->targets[i].name = (char *)names[i];
		f->targets[i].trigger_index = -1;
		f->targets[i].source = ZW_SRC_INTERCEPTORROUTE;
	}
	zw_scaler_config_default(&cfg);
	cfg.grpc_host = "127.0.0.1";
	cfg.grpc_port = 0;
	cfg.peer_poll_ms = 0;
	cfg.auth = f->auth;
	if (zw_scaler_start(&f->loop, &cfg, f->stats, &tg, &f->scaler) != 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	zw_scaler_stop(f->scaler, NULL, NULL);
	zw_auth_close(f->auth);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	uv_loop_close(&f->loop);
	zw_stats_free(f->stats);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Calls the handler; returns the HTTP status (0: not the scaler's path). */
static int call(struct fixture *f, const char *method, const char *target, const char *authz)
{
	int status = 0;
	char *body = NULL;
	size_t len = 0;
	const char *ctype = NULL;
	int rc = zw_scaler_admin(f->scaler, method, target, authz, &status, &body, &len, &ctype);
	free(body);
	assert_true(rc >= 0);
	return rc == 1 ? status : 0;
}

/* Reads one unlabelled sample of the scaler's Prometheus text. */
static double metric(struct fixture *f, const char *name)
{
	char *buf = NULL, want[128];
	size_t len = 0;
	double v = -1;
	assert_int_equal(zw_scaler_prometheus(f->scaler, &buf, &len), 0);
	snprintf(want, sizeof(want), "\n%s ", name);
	const char *p = strstr(buf, want);
	if (p)
		v = strtod(p + strlen(want), NULL);
	free(buf);
	return v;
}

static void test_peer_paths_need_token(void **state)
{
	struct fixture *f = *state;
	const char *cold = "/peer/cold?target=demo%2Fapp";
	assert_int_equal(call(f, "POST", cold, NULL), 401);
	assert_int_equal(call(f, "POST", cold, "Basic cGVlcg=="), 401);
	assert_int_equal(call(f, "POST", cold, "Bearer peer-secreT"), 403);
	assert_int_equal(call(f, "GET", "/peer/counts", NULL), 401);
	assert_int_equal(call(f, "GET", "/peer/counts", "Bearer nope"), 403);
	/* Refused before anything else: no signal was taken. */
	assert_true(metric(f, "zerowire_scaler_peer_cold_received_total") == 0);
	assert_true(metric(f, "zerowire_scaler_wake_hints") == 0);
	/* Even the path checks come after the token. */
	assert_int_equal(call(f, "GET", "/peer/nothing", NULL), 401);
	assert_int_equal(call(f, "GET", "/peer/nothing", "Bearer peer-secret"), 404);

	assert_int_equal(call(f, "POST", cold, "Bearer peer-secret"), 204);
	assert_int_equal(call(f, "GET", "/peer/counts", "Bearer peer-secret"), 200);
	assert_true(metric(f, "zerowire_scaler_peer_cold_received_total") == 1);
	assert_true(metric(f, "zerowire_scaler_wake_hints") == 1);
}

static void test_cold_only_known_targets(void **state)
{
	struct fixture *f = *state;
	const char *tok = "Bearer peer-secret";
	char target[128];
	assert_true(zw_scaler_target_known(f->scaler, "demo/app"));
	assert_true(zw_scaler_target_known(f->scaler, "demo/web"));
	assert_false(zw_scaler_target_known(f->scaler, "demo/ap"));
	assert_false(zw_scaler_target_known(f->scaler, "demo/app/0"));
	assert_false(zw_scaler_target_known(f->scaler, ""));
	for (int i = 0; i < 2000; i++) {
		snprintf(target, sizeof(target), "/peer/cold?target=demo/x%d", i);
		assert_int_equal(call(f, "POST", target, tok), 404);
	}
	assert_true(metric(f, "zerowire_scaler_peer_cold_unknown_total") == 2000);
	assert_true(metric(f, "zerowire_scaler_peer_cold_received_total") == 0);
	assert_true(metric(f, "zerowire_scaler_wake_hints") == 0);
	assert_int_equal(call(f, "POST", "/peer/cold?target=demo/web", tok), 204);
	assert_int_equal(call(f, "POST", "/peer/cold?target=demo/web", tok), 204);
	assert_true(metric(f, "zerowire_scaler_wake_hints") == 1);
	assert_int_equal(call(f, "POST", "/peer/cold", tok), 400);
	assert_int_equal(call(f, "GET", "/peer/cold?target=demo/web", tok), 405);
}

static void test_read_only_paths_open(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(call(f, "GET", "/metrics-api/demo/x?interceptorRoute=app", NULL), 200);
	assert_int_equal(call(f, "GET", "/metrics-api/demo/x?interceptorRoute=nope", NULL), 404);
	assert_int_equal(call(f, "GET", "/healthz", NULL), 0);
	assert_true(zw_scaler_admin_is_peer_path("/peer/cold?target=a"));
	assert_false(zw_scaler_admin_is_peer_path("/peerx"));
	assert_false(zw_scaler_admin_is_peer_path("/metrics"));
}

/* "active" in /metrics-api's answer for interceptorRoute ir of demo (a
 * read that also drops the wake hints that ran out). */
static bool active_of(struct fixture *f, const char *ir)
{
	char target[96], *body = NULL;
	size_t len = 0;
	int status = 0;
	const char *ctype = NULL;
	snprintf(target, sizeof(target), "/metrics-api/demo/x?interceptorRoute=%s", ir);
	assert_int_equal(
	        zw_scaler_admin(f->scaler, "GET", target, NULL, &status, &body, &len, &ctype), 1);
	assert_int_equal(status, 200);
	const char *a = strstr(body, "\"active\":");
	assert_non_null(a);
	a += strlen("\"active\":");
	a += strspn(a, " ");
	bool on = strncmp(a, "true", 4) == 0;
	free(body);
	return on;
}

/* Advances the loop's clock by ms of real time. */
static void wait_ms(struct fixture *f, unsigned ms)
{
	usleep(ms * 1000u);
	uv_update_time(&f->loop);
}

/* A cold signal keeps its target active for the hint's hold (the 1 s
 * heartbeat here); a read after that drops the hint, whichever place it
 * has on the list, and leaves the younger ones. */
static void test_wake_hints_expire(void **state)
{
	struct fixture *f = *state;
	const char *tok = "Bearer peer-secret";
	uv_update_time(&f->loop);
	assert_int_equal(call(f, "POST", "/peer/cold?target=demo/app", tok), 204);
	wait_ms(f, 600);
	assert_int_equal(call(f, "POST", "/peer/cold?target=demo/web", tok), 204);
	assert_true(metric(f, "zerowire_scaler_wake_hints") == 2);
	assert_true(active_of(f, "app"));
	wait_ms(f, 500); /* app's hint ran out (1.1 s), web's has 0.5 s left */
	assert_false(active_of(f, "app"));
	assert_true(metric(f, "zerowire_scaler_wake_hints") == 1);
	assert_true(active_of(f, "web"));
	wait_ms(f, 600);
	assert_false(active_of(f, "web"));
	assert_true(metric(f, "zerowire_scaler_wake_hints") == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_peer_paths_need_token, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_cold_only_known_targets, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_read_only_paths_open, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_wake_hints_expire, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
