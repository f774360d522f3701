/* Unit tests for proxy/metrics.c and lib/promtext.c: the one label scheme
 * (namespace, target) with escaping, method/cold-start series and their
 * bound, the cold-start wait histogram's buckets up to the readiness
 * timeout, HELP and TYPE on every family, build_info and process metrics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"
#include "promtext.h"

static char *render(struct zw_metrics_shard *m)
{
	struct zw_obuf out = {.limit = 1 << 24};
	struct zw_metrics_shard *shards[1] = {m};
	assert_int_equal(zw_metrics_render(shards, 1, &out), 0);
	assert_int_equal(zw_obuf_add(&out, "", 1), 0);
	return out.buf.data;
}

/* Every sample line's family has a # HELP and a # TYPE line before it. */
static void assert_help_everywhere(const char *text)
{
	char *copy = strdup(text), *save = NULL;
	char helped[64][96];
	int n_helped = 0;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[96];
		if (strncmp(line, "# HELP ", 7) == 0) {
			assert_true(n_helped < 64);
			sscanf(line + 7, "%95s", helped[n_helped++]);
			continue;
		}
		if (line[0] == '#')
			continue;
		size_t l = strcspn(line, "{ ");
		assert_true(l < sizeof(name));
		memcpy(name, line, l);
		name[l] = '\0';
		int found = 0;
		for (int i = 0; i < n_helped && !found; i++) {
			size_t hl = strlen(helped[i]);
			found = strcmp(name, helped[i]) == 0 ||
			        (strncmp(name, helped[i], hl) == 0 &&
			         (!strcmp(name + hl, "_bucket") || !strcmp(name + hl, "_sum") ||
			          !strcmp(name + hl, "_count")));
		}
		if (!found)
			fail_msg("sample without HELP: %s", line);
	}
	free(copy);
}

static void test_labels_and_methods(void **state)
{
	(void)state;
	struct zw_metrics_shard m;
	assert_int_equal(zw_metrics_shard_init(&m, 300), 0);
	struct zw_metrics_sample s = {"default/app/0", 200, ZW_M_GET, 0, 0.003};
	zw_metrics_request(&m, &s);
	zw_metrics_request(&m, &s);
	s.cold = 1;
	s.method = zw_metrics_method(HTTP_POST);
	s.seconds = 42;
	zw_metrics_request(&m, &s);
	s.method = zw_metrics_method(HTTP_PROPFIND);
	zw_metrics_request(&m, &s);
	char *t = render(&m);
	assert_non_null(strstr(t, "zerowire_requests_total{namespace=\"default\",target=\"app/0\","
	                          "method=\"GET\",code=\"200\",cold_start=\"false\"} 2\n"));
	assert_non_null(strstr(t, "method=\"POST\",code=\"200\",cold_start=\"true\"} 1\n"));
	assert_non_null(strstr(t, "method=\"_OTHER\",code=\"200\",cold_start=\"true\"} 1\n"));
	/* 42 s lands in the 60 s bucket of the cold-start request durations. */
	assert_non_null(strstr(t, "zerowire_request_duration_seconds_bucket{namespace=\"default\","
	                          "target=\"app/0\",cold_start=\"true\",le=\"30\"} 0\n"));
	assert_non_null(strstr(t, "cold_start=\"true\",le=\"60\"} 2\n"));
	assert_help_everywhere(t);
	free(t);
	zw_metrics_shard_free(&m);
}

static void test_escaping(void **state)
{
	(void)state;
	struct zw_metrics_shard m;
	assert_int_equal(zw_metrics_shard_init(&m, 30), 0);
	zw_metrics_event(&m, "we\"ird/na\\me\nx", ZW_EV_COLD_START);
	char *t = render(&m);
	assert_non_null(strstr(t, "zerowire_cold_starts_total{namespace=\"we\\\"ird\","
	                          "target=\"na\\\\me\\nx\"} 1\n"));
	free(t);
	zw_metrics_shard_free(&m);
	char buf[8];
	assert_string_equal(zw_prom_escape(buf, sizeof(buf), "a\"b\"c\"d"), "a\\\"b\\\"c");
}

static void test_wait_buckets(void **state)
{
	(void)state;
	struct zw_metrics_shard m;
	assert_int_equal(zw_metrics_shard_init(&m, 600), 0);
	assert_int_equal(m.n_wait_le, 19);
	assert_true(m.wait_le[m.n_wait_le - 1] == 600);
	assert_true(m.wait_le[m.n_wait_le - 2] == 300);
	zw_metrics_wait(&m, "ns/t", 0.2);
	zw_metrics_wait(&m, "ns/t", 250);
	zw_metrics_wait(&m, "ns/t", 700); /* past the timeout: +Inf only */
	char *t = render(&m);
	assert_non_null(strstr(t, "zerowire_cold_start_wait_seconds_bucket{namespace=\"ns\","
	                          "target=\"t\",le=\"0.25\"} 1\n"));
	assert_non_null(strstr(t, "target=\"t\",le=\"300\"} 2\n"));
	assert_non_null(strstr(t, "target=\"t\",le=\"600\"} 2\n"));
	assert_non_null(strstr(t, "target=\"t\",le=\"+Inf\"} 3\n"));
	assert_non_null(strstr(t, "zerowire_cold_start_wait_seconds_count{namespace=\"ns\","
	                          "target=\"t\"} 3\n"));
	free(t);
	zw_metrics_shard_free(&m);
	/* An odd timeout is its own last bucket. */
	assert_int_equal(zw_metrics_shard_init(&m, 7), 0);
	assert_true(m.wait_le[m.n_wait_le - 1] == 7);
	assert_true(m.wait_le[m.n_wait_le - 2] == 5);
	zw_metrics_shard_free(&m);
}

static void test_series_bound(void **state)
{
	(void)state;
	struct zw_metrics_shard m;
	assert_int_equal(zw_metrics_shard_init(&m, 300), 0);
	for (int code = 100; code < 100 + 2 * ZW_METRICS_MAX_SERIES; code++) {
		struct zw_metrics_sample s = {"ns/t", code, ZW_M_GET, 0, 0.001};
		zw_metrics_request(&m, &s);
	}
	char *t = render(&m);
	char want[128];
	snprintf(want, sizeof(want), "code=\"other\",cold_start=\"false\"} %d\n",
	         ZW_METRICS_MAX_SERIES);
	assert_non_null(strstr(t, want));
	free(t);
	zw_metrics_shard_free(&m);
}

static void test_process_and_build_info(void **state)
{
	(void)state;
	struct zw_obuf out = {.limit = 1 << 20};
	assert_int_equal(zw_metrics_render_process(&out), 0);
	assert_int_equal(zw_obuf_add(&out, "", 1), 0);
	const char *t = out.buf.data;
	assert_non_null(
	        strstr(t, "zerowire_build_info{program=\"proxy\",version=\"" ZW_VERSION "\"} 1\n"));
	const char *need[] = {"\nprocess_resident_memory_bytes ",
	                      "\nprocess_open_fds ",
	                      "\nprocess_cpu_seconds_total ",
	                      "\nprocess_start_time_seconds ",
	                      "\nprocess_max_fds ",
	                      "\nprocess_virtual_memory_bytes "};
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		const char *p = strstr(t, need[i]);
		assert_non_null(p);
		/* CPU time may still round to 0.00 this early. */
		assert_true(strtod(p + strlen(need[i]), NULL) > 0 || i == 2);
	}
	assert_help_everywhere(t);
	zw_buf_free(&out.buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_labels_and_methods),     cmocka_unit_test(test_escaping),
	        cmocka_unit_test(test_wait_buckets),           cmocka_unit_test(test_series_bound),
	        cmocka_unit_test(test_process_and_build_info),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
