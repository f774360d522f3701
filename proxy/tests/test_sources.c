/* Unit tests for proxy/sources.c in static mode: target source objects and
 * EndpointSlices from files, linking, invalid objects skipped, reloads on
 * mtime change and on request, failed reloads keeping the previous state,
 * and a clean close. (Live mode is exercised against a real kube-apiserver by
 * proxy/tests/sources_test.py with tool_sources.c.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "sources.h"

struct fx {
	uv_loop_t loop;
	struct zw_route_current cur;
	struct zw_endpoints *eps;
	struct zw_sources *src;
	char dir[64];
	char targets[128], endpoints[128];
	int publishes;
	int closed;
};

static const char targets_v1[] =
        "# a ScaledObject target, an InterceptorRoute linked from a ScaledObject,\n"
        "# an HTTPScaledObject shadowed by the InterceptorRoute, one alone\n"
        "apiVersion: keda.sh/v1alpha1\n"
        "kind: ScaledObject\n"
        "metadata: {name: shop, namespace: web, creationTimestamp: \"2026-01-01T00:00:00Z\"}\n"
        "spec:\n"
        "  scaleTargetRef: {name: shop}\n"
        "  triggers:\n"
        "    - type: external-push\n"
        "      metadata:\n"
        "        scalerAddress: zerowire-scaler.zerowire:9090\n"
        "        hosts: shop.example.com\n"
        "        service: shop\n"
        "        port: \"8080\"\n"
        "---\n"
        "apiVersion: http.keda.sh/v1beta1\n"
        "kind: InterceptorRoute\n"
        "metadata: {name: api, namespace: web}\n"
        "spec:\n"
        "  target: {service: api-svc, port: 80}\n"
        "  rules:\n"
        "    - hosts: [api.example.com]\n"
        "      paths: [{value: /v1}]\n"
        "  scalingMetric: {concurrency: {targetValue: 10}}\n"
        "---\n"
        "apiVersion: keda.sh/v1alpha1\n"
        "kind: ScaledObject\n"
        "metadata: {name: api-scaler, namespace: web}\n"
        "spec:\n"
        "  scaleTargetRef: {name: api-deploy}\n"
        "  minReplicaCount: 0\n"
        "  maxReplicaCount: 4\n"
        "  triggers:\n"
        "    - type: external-push\n"
        "      metadata: {scalerAddress: zerowire-scaler.zerowire:9090, interceptorRoute: api}\n"
        "---\n"
        "kind: List\n"
        "apiVersion: v1\n"
        "items:\n"
        "  - apiVersion: http.keda.sh/v1alpha1\n"
        "    kind: HTTPScaledObject\n"
        "    metadata: {name: api, namespace: web}\n"
        "    spec:\n"
        "      hosts: [shadowed.example.com]\n"
        "      scaleTargetRef: {name: api, service: api, port: 80}\n"
        "  - apiVersion: http.keda.sh/v1alpha1\n"
        "    kind: HTTPScaledObject\n"
        "    metadata: {name: blog}\n"
        "    spec:\n"
        "      hosts: [blog.example.com]\n"
        "      scaleTargetRef: {name: blog, service: blog, port: 8000}\n"
        "---\n"
        "# invalid: skipped, the rest still loads\n"
        "apiVersion: keda.sh/v1alpha1\n"
        "kind: ScaledObject\n"
        "metadata: {name: broken, namespace: web}\n"
        "spec:\n"
        "  scaleTargetRef: {name: broken}\n"
        "  triggers:\n"
        "    - type: external-push\n"
        "      metadata: {service: broken, port: \"not-a-port\", hosts: broken.example.com}\n"
        "---\n"
        "apiVersion: apps/v1\n"
        "kind: Deployment\n"
        "metadata: {name: ignored, namespace: web}\n";

static const char endpoints_v1[] = "apiVersion: discovery.k8s.io/v1beta1\n"
                                   "kind: EndpointSlice\n"
                                   "metadata:\n"
                                   "  name: shop-abc\n"
                                   "  namespace: web\n"
                                   "  labels: {kubernetes.io/service-name: shop}\n"
                                   "addressType: IPv4\n"
                                   "ports: [{name: http, port: 8080, protocol: TCP}]\n"
                                   "endpoints:\n"
                                   "  - addresses: [127.0.0.2]\n"
                                   "    conditions: {ready: true}\n"
                                   "  - addresses: [127.0.0.3]\n"
                                   "    conditions: {ready: false}\n"
                                   "---\n"
                                   "apiVersion: v1\n"
                                   "kind: Service\n"
                                   "metadata: {name: shop, namespace: web}\n"
                                   "spec:\n"
                                   "  ports: [{name: http, port: 8080, targetPort: 8080}]\n";

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void on_publish(void *ctx, struct zw_route_table *t)
{
	struct fx *f = ctx;
	assert_non_null(t);
	f->publishes++;
}

static void on_closed(void *ctx)
{
	((struct fx *)ctx)->closed = 1;
}

/* Runs the loop until cond(f) holds or ms elapse. Returns cond's value. */
static int run_until(struct fx *f, int (*cond)(struct fx *), int ms)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (cond(f))
			return 1;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > ms)
			return 0;
		uv_run(&f->loop, UV_RUN_NOWAIT);
		usleep(2000);
	}
}

static int is_synced(struct fx *f)
{
	return zw_sources_synced(f->src);
}

static int target_count_saved;
static int publishes_saved;

static int published_again(struct fx *f)
{
	return f->publishes > publishes_saved;
}

static int is_closed(struct fx *f)
{
	return f->closed;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	assert_int_equal(zw_route_current_init(&f->cur), 0);
	assert_int_equal(zw_endpoints_new(&f->eps), 0);
	snprintf(f->dir, sizeof(f->dir), "/tmp/zw-sources-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->targets, sizeof(f->targets), "%s/targets.yaml", f->dir);
	snprintf(f->endpoints, sizeof(f->endpoints), "%s/endpoints.yaml", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	if (f->src && !f->closed) {
		zw_sources_close(f->src, on_closed, f);
		run_until(f, is_closed, 5000);
	}
	assert_int_equal(uv_loop_close(&f->loop), 0); /* nothing left on the loop */
	zw_endpoints_free(f->eps);
	zw_route_current_destroy(&f->cur);
	unlink(f->targets);
	unlink(f->endpoints);
	rmdir(f->dir);
	free(f);
	return 0;
}

static const char *route_key(struct fx *f, const char *host, const char *path)
{
	static char buf[256];
	struct zw_route_table *t = zw_route_current_acquire(&f->cur);
	struct zw_route_request req = {
	        .host = host, .host_len = strlen(host), .path = path, .path_len = strlen(path)};
	struct zw_route_match m;
	if (zw_route_lookup(t, &req, &m) == 0)
		snprintf(buf, sizeof(buf), "%s", m.key);
	else
		snprintf(buf, sizeof(buf), "404");
	zw_route_current_release(t);
	return buf;
}

static void start(struct fx *f, const char *spec, uint64_t poll_ms)
{
	struct zw_sources_config cfg = {
	        .targets_file = f->targets,
	        .endpoints_file = f->endpoints,
	        .endpoints_spec = spec,
	        .poll_ms = poll_ms,
	        .coalesce_ms = 5,
	        .on_publish = on_publish,
	        .ctx = f,
	};
	char err[256];
	assert_int_equal(zw_sources_new(&f->loop, &cfg, &f->cur, f->eps, &f->src, err, sizeof(err)),
	                 0);
	assert_false(zw_sources_synced(f->src));
	assert_int_equal(zw_sources_start(f->src), 0);
	assert_true(run_until(f, is_synced, 120000));
}

static void test_static_load(void **state)
{
	struct fx *f = *state;
	write_file(f->targets, targets_v1);
	write_file(f->endpoints, endpoints_v1);
	start(f, "default/blog:8000=127.0.0.9:8000", UINT64_MAX);

	struct zw_sources_stats st;
	zw_sources_get_stats(f->src, &st);
	assert_int_equal(st.invalid, 1);
	assert_int_equal(st.reloads, 1);
	assert_int_equal(st.targets, 3); /* shop, api (IR), blog (HSO); shadowed HSO dropped */
	assert_true(st.publishes >= 1);
	assert_true(f->publishes >= 1);

	assert_string_equal(route_key(f, "shop.example.com", "/"), "web/shop/0");
	assert_string_equal(route_key(f, "api.example.com:80", "/v1/x"), "web/api");
	assert_string_equal(route_key(f, "api.example.com", "/v2"), "404");
	assert_string_equal(route_key(f, "shadowed.example.com", "/"), "404");
	assert_string_equal(route_key(f, "blog.example.com", "/"), "default/blog");
	assert_string_equal(route_key(f, "broken.example.com", "/"), "404");

	/* the InterceptorRoute is linked to the ScaledObject naming it */
	struct zw_route_table *t = zw_route_current_acquire(&f->cur);
	size_t idx;
	assert_int_equal(zw_route_table_find(t, "web/api", &idx), 0);
	const struct zw_target *api = zw_route_table_target(t, idx);
	assert_non_null(api->scaled_object);
	assert_string_equal(api->scaled_object, "api-scaler");
	assert_string_equal(api->scale_name, "api-deploy");
	assert_int_equal(api->max_replicas, 4);
	zw_route_current_release(t);

	/* endpoints from the file (ready only) and from the spec */
	struct zw_endpoint_set *set;
	assert_int_equal(zw_endpoints_get(f->eps, "web", "shop", 8080, NULL, &set), 0);
	assert_int_equal(set->n, 1);
	assert_string_equal(set->eps[0].ip, "127.0.0.2");
	zw_endpoint_set_unref(set);
	assert_int_equal(zw_endpoints_get(f->eps, "default", "blog", 8000, NULL, &set), 0);
	assert_int_equal(set->n, 1);
	assert_string_equal(set->eps[0].ip, "127.0.0.9");
	zw_endpoint_set_unref(set);
}

static void test_static_reload(void **state)
{
	struct fx *f = *state;
	write_file(f->targets, targets_v1);
	write_file(f->endpoints, endpoints_v1);
	start(f, NULL, 20);
	assert_string_equal(route_key(f, "shop.example.com", "/"), "web/shop/0");

	/* the file changes: picked up by mtime polling (mtime granularity may
	 * be a second: set it explicitly forward) */
	publishes_saved = f->publishes;
	write_file(f->targets, "apiVersion: http.keda.sh/v1beta1\n"
	                       "kind: InterceptorRoute\n"
	                       "metadata: {name: only, namespace: x}\n"
	                       "spec:\n"
	                       "  target: {service: only, port: 80}\n"
	                       "  rules: [{hosts: [only.example.com]}]\n"
	                       "  scalingMetric: {requestRate: {targetValue: 5}}\n");
	struct timespec ts[2];
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec += 5;
	ts[1] = ts[0];
	assert_int_equal(utimensat(AT_FDCWD, f->targets, ts, 0), 0);
	write_file(f->endpoints, "apiVersion: discovery.k8s.io/v1\n"
	                         "kind: EndpointSlice\n"
	                         "metadata: {name: only-1, namespace: x, labels: "
	                         "{kubernetes.io/service-name: only}}\n"
	                         "addressType: IPv4\n"
	                         "ports: [{port: 80}]\n"
	                         "endpoints: [{addresses: [127.0.0.5]}]\n");
	assert_int_equal(utimensat(AT_FDCWD, f->endpoints, ts, 0), 0);
	assert_true(run_until(f, published_again, 5000));
	/* both files are re-read together; wait until the table shows it */
	for (int i = 0; i < 100 && strcmp(route_key(f, "only.example.com", "/"), "x/only") != 0;
	     i++) {
		publishes_saved = f->publishes;
		run_until(f, published_again, 100);
	}
	assert_string_equal(route_key(f, "only.example.com", "/"), "x/only");
	assert_string_equal(route_key(f, "shop.example.com", "/"), "404");
	/* endpoints of the old file are gone (resync), new ones are there */
	assert_int_equal(zw_endpoints_ready_count(f->eps, "web", "shop"), 0);
	assert_int_equal(zw_endpoints_ready_count(f->eps, "x", "only"), 1);

	/* a broken file: the load fails, the previous state stays */
	struct zw_sources_stats st;
	zw_sources_get_stats(f->src, &st);
	uint64_t errors = st.reload_errors;
	write_file(f->targets, "kind: [unclosed\n");
	assert_int_equal(zw_sources_reload(f->src), 0);
	for (int i = 0; i < 500; i++) {
		zw_sources_get_stats(f->src, &st);
		if (st.reload_errors > errors)
			break;
		uv_run(&f->loop, UV_RUN_NOWAIT);
		usleep(2000);
	}
	assert_true(st.reload_errors > errors);
	assert_string_equal(route_key(f, "only.example.com", "/"), "x/only");
	assert_true(zw_sources_synced(f->src));

	/* an explicit reload after fixing it */
	write_file(f->targets, targets_v1);
	publishes_saved = f->publishes;
	assert_int_equal(zw_sources_reload(f->src), 0);
	assert_true(run_until(f, published_again, 5000));
	assert_string_equal(route_key(f, "shop.example.com", "/"), "web/shop/0");

	zw_sources_close(f->src, on_closed, f);
	assert_true(run_until(f, is_closed, 5000));
	(void)target_count_saved;
}

/* 5,000 InterceptorRoutes, each linked from its own ScaledObject, plus
 * 5,000 ScaledObject targets: the load, link and build stay fast. */
static void test_static_many(void **state)
{
	struct fx *f = *state;
	FILE *fp = fopen(f->targets, "w");
	assert_non_null(fp);
	const int n = 5000;
	for (int i = 0; i < n; i++) {
		fprintf(fp,
		        "---\napiVersion: http.keda.sh/v1beta1\nkind: InterceptorRoute\n"
		        "metadata: {name: ir%d, namespace: ns%d}\nspec:\n"
		        "  target: {service: s%d, port: 80}\n  rules: [{hosts: [ir%d.example]}]\n"
		        "  scalingMetric: {requestRate: {targetValue: 5}}\n"
		        "---\napiVersion: keda.sh/v1alpha1\nkind: ScaledObject\n"
		        "metadata: {name: so%d, namespace: ns%d}\nspec:\n"
		        "  scaleTargetRef: {name: deploy%d}\n  triggers:\n"
		        "    - type: external-push\n      metadata: {interceptorRoute: ir%d}\n"
		        "---\napiVersion: keda.sh/v1alpha1\nkind: ScaledObject\n"
		        "metadata: {name: direct%d, namespace: ns%d}\nspec:\n"
		        "  scaleTargetRef: {name: direct%d}\n  triggers:\n"
		        "    - type: external-push\n"
		        "      metadata: {service: d%d, port: \"80\", hosts: d%d.example}\n",
		        i, i % 7, i, i, i, i % 7, i, i, i, i % 7, i, i, i);
	}
	assert_int_equal(fclose(fp), 0);
	write_file(f->endpoints, endpoints_v1);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	start(f, NULL, UINT64_MAX);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	struct zw_sources_stats st;
	zw_sources_get_stats(f->src, &st);
	print_message("%d objects: loaded, linked and published in %.2f s\n", 3 * n, secs);
	assert_int_equal(st.targets, 2 * n);
	assert_int_equal(st.objects, 3 * n);
	assert_string_equal(route_key(f, "ir4321.example", "/"), "ns2/ir4321");
	assert_string_equal(route_key(f, "d17.example", "/"), "ns3/direct17/0");
	struct zw_route_table *t = zw_route_current_acquire(&f->cur);
	size_t idx;
	assert_int_equal(zw_route_table_find(t, "ns2/ir4321", &idx), 0);
	assert_string_equal(zw_route_table_target(t, idx)->scale_name, "deploy4321");
	zw_route_current_release(t);
	assert_true(secs < 120.0);
}

static void test_config_errors(void **state)
{
	struct fx *f = *state;
	struct zw_sources *s = NULL;
	char err[256];
	struct zw_sources_config cfg = {0};
	assert_int_equal(zw_sources_new(&f->loop, &cfg, &f->cur, f->eps, &s, err, sizeof(err)),
	                 UV_EINVAL);
	assert_non_null(strstr(err, "static mode"));
	cfg.endpoints_spec = "default/x:80=not-an-ip:80";
	assert_int_equal(zw_sources_new(&f->loop, &cfg, &f->cur, f->eps, &s, err, sizeof(err)),
	                 UV_EINVAL);
	assert_non_null(strstr(err, "not-an-ip"));
	assert_null(s);

	/* a missing file: start succeeds, the load fails, nothing synced */
	cfg.endpoints_spec = NULL;
	cfg.targets_file = "/nonexistent/zerowire/targets.yaml";
	cfg.poll_ms = UINT64_MAX;
	assert_int_equal(zw_sources_new(&f->loop, &cfg, &f->cur, f->eps, &f->src, err, sizeof(err)),
	                 0);
	assert_int_equal(zw_sources_start(f->src), 0);
	struct zw_sources_stats st = {0};
	for (int i = 0; i < 500 && !st.reload_errors; i++) {
		uv_run(&f->loop, UV_RUN_NOWAIT);
		usleep(2000);
		zw_sources_get_stats(f->src, &st);
	}
	assert_int_equal(st.reload_errors, 1);
	assert_false(zw_sources_synced(f->src));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_static_load, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_static_reload, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_static_many, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_config_errors, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
