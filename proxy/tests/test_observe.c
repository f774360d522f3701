/* Unit tests for proxy/trace.c (traceparent parsing per the W3C rules,
 * formatting, sampling, head rewriting) and proxy/observe.c (access-log
 * lines in logfmt and JSON, path cap and escaping, drops counted when a
 * worker's ring is full). */
#include <fcntl.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "observe.h"
#include "trace.h"

static void test_parse_cases(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		int ok, sampled;
	} cases[] = {
	        {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 1, 1},
	        {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", 1, 0},
	        {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09", 1, 1},
	        {"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what", 1, 1},
	        {"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 1, 1},
	        {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", 0, 0},
	        {"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 0, 0},
	        {"00-00000000000000000000000000000000-00f067aa0ba902b7-01", 0, 0},
	        {"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", 0, 0},
	        {"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", 0, 0},
	        {"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 0, 0},
	        {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0", 0, 0},
	        {"", 0, 0},
	        {"cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", 0, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t tid[16], pid[8];
		int s = -1;
		int rc = zw_traceparent_parse(cases[i].in, strlen(cases[i].in), tid, pid, &s);
		if ((rc == 0) != cases[i].ok)
			fail_msg("case %zu (%s): rc %d", i, cases[i].in, rc);
		if (rc == 0)
			assert_int_equal(s, cases[i].sampled);
	}
}

static void test_begin_and_rewrite(void **state)
{
	(void)state;
	const char *tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
	uint64_t rng = 42;
	struct zw_trace_ctx t;
	zw_trace_begin(&t, tp, strlen(tp), "a=1", 3, 0, &rng);
	assert_true(t.has_parent && t.sampled); /* the parent's flag wins over ratio 0 */
	char out[ZW_TRACEPARENT_LEN + 1], hex[33];
	zw_traceparent_format(&t, out);
	zw_trace_hex(t.trace_id, 16, hex);
	assert_string_equal(hex, "4bf92f3577b34da6a3ce929d0e0e4736");
	assert_memory_equal(out, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36);
	assert_memory_not_equal(out + 36, "00f067aa0ba902b7", 16);
	assert_string_equal(out + 52, "-01");
	struct zw_obuf h = {.limit = 4096};
	assert_int_equal(zw_obuf_addf(&h, "GET / HTTP/1.1\r\nTraceparent: junk\r\nHost: x\r\n"
	                                  "tracestate: old\r\n\r\n"),
	                 0);
	assert_int_equal(zw_trace_rewrite_head(&h, &t), 0);
	char want[256];
	snprintf(want, sizeof(want),
	         "GET / HTTP/1.1\r\nHost: x\r\ntraceparent: %s\r\ntracestate: a=1\r\n\r\n", out);
	assert_int_equal(h.buf.len, strlen(want));
	assert_memory_equal(h.buf.data, want, h.buf.len);
	zw_buf_free(&h.buf);
	/* No valid parent: a new trace; ratio 0 never samples, 1 always. */
	zw_trace_begin(&t, "bogus", 5, "a=1", 3, 0, &rng);
	assert_false(t.has_parent || t.sampled);
	assert_string_equal(t.tracestate, "");
	int n = 0;
	for (int i = 0; i < 1000; i++) {
		zw_trace_begin(&t, NULL, 0, NULL, 0, 0.25, &rng);
		n += t.sampled;
	}
	assert_in_range(n, 180, 320);
}

static void test_lines(void **state)
{
	(void)state;
	char path[400];
	memset(path, 'p', sizeof(path));
	path[0] = '/';
	path[1] = '"';
	struct zw_trace_ctx t = {.trace_id = {1, 2}, .sampled = 1};
	struct zw_obs_request r = {
	        .target = "ns/app/0",
	        .method = "GET",
	        .path = path,
	        .path_len = sizeof(path),
	        .status = 200,
	        .bytes_in = 10,
	        .bytes_out = 20,
	        .start_ns = 1796400000123000000ull,
	        .end_ns = 1796400000123000000ull + 2500000,
	        .upstream_ms = 1,
	        .held_ms = 2,
	        .upstream = "10.0.0.1:80",
	        .cold = 1,
	        .trace = &t,
	};
	char buf[2048];
	size_t n = zw_observe_format_line(ZW_ACCESS_JSON, &r, buf, sizeof(buf));
	assert_int_equal(buf[n - 1], '\n');
	json_error_t err;
	json_t *j = json_loads(buf, 0, &err);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "ts")),
	                    "2026-12-04T16:00:00.123Z");
	assert_int_equal(json_integer_value(json_object_get(j, "status")), 200);
	assert_true(json_is_true(json_object_get(j, "cold_start")));
	assert_true(json_real_value(json_object_get(j, "duration_ms")) == 2.5);
	const char *p = json_string_value(json_object_get(j, "path"));
	assert_int_equal(strlen(p), ZW_ACCESS_PATH_MAX + 3);
	assert_memory_equal(p, "/\"pp", 4);
	assert_string_equal(json_string_value(json_object_get(j, "trace_id")),
	                    "01020000000000000000000000000000");
	json_decref(j);
	n = zw_observe_format_line(ZW_ACCESS_LOGFMT, &r, buf, sizeof(buf));
	assert_non_null(strstr(buf,
	                       "ts=2026-12-04T16:00:00.123Z target=\"ns/app/0\" method=\"GET\" "
	                       "path=\"/\\\"ppp"));
	assert_non_null(strstr(buf, "...\" status=200 bytes_in=10 bytes_out=20 duration_ms=2.500 "
	                            "upstream_ms=1 held_ms=2 upstream=10.0.0.1:80 cold_start=true "
	                            "trace_id=0102"));
	/* A tiny buffer still ends in a newline. */
	n = zw_observe_format_line(ZW_ACCESS_JSON, &r, buf, 16);
	assert_true(n < 16 && buf[n - 1] == '\n');
}

static void test_drops_counted(void **state)
{
	(void)state;
	int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	struct zw_observe_config cfg = {
	        .workers = 1,
	        .access = ZW_ACCESS_LOGFMT,
	        .access_fd = fd,
	        .access_ring_bytes = 64, /* smaller than one line */
	};
	struct zw_observe *o = NULL;
	assert_int_equal(zw_observe_new(&cfg, &o), 0);
	struct zw_obs_request r = {.target = "", .method = "GET", .path = "/", .path_len = 1};
	for (int i = 0; i < 3; i++)
		zw_observe_request(o, 0, &r);
	struct zw_obuf out = {.limit = 1 << 16};
	assert_int_equal(zw_observe_render(o, &out), 0);
	assert_int_equal(zw_obuf_add(&out, "", 1), 0);
	assert_non_null(strstr(out.buf.data, "\nzerowire_access_log_dropped_total 3\n"));
	zw_buf_free(&out.buf);
	zw_observe_free(o);
	close(fd);
	assert_int_equal(zw_observe_parse_ratio("0.5", &(double){0}), 0);
	assert_int_equal(zw_observe_parse_ratio("1.5", &(double){0}), -1);
	assert_int_equal(zw_observe_parse_ratio("nan", &(double){0}), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_parse_cases),
	        cmocka_unit_test(test_begin_and_rewrite),
	        cmocka_unit_test(test_lines),
	        cmocka_unit_test(test_drops_counted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
