/* Unit tests for proxy/tlsstats.c: the TLS listener's counters by version,
 * ALPN and error reason, their Prometheus text (every series, zeros
 * included), out-of-range inputs, a full output buffer, and increments from
 * several threads adding up. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tls.h"
#include "tlsstats.h"

static void test_render_counts(void **state)
{
	(void)state;
	struct zw_tlsstats s = {0};
	zw_tlsstats_handshake(&s, 13, ZW_TLS_ALPN_H2);
	zw_tlsstats_handshake(&s, 13, ZW_TLS_ALPN_H2);
	zw_tlsstats_handshake(&s, 12, ZW_TLS_ALPN_HTTP11);
	zw_tlsstats_handshake(&s, 13, 7); /* out of range: counted as none */
	zw_tlsstats_error(&s, ZW_TLS_ERR_TIMEOUT);
	zw_tlsstats_error(&s, ZW_TLS_ERR_COUNT); /* ignored */
	struct zw_obuf out = {.limit = 1 << 16};
	assert_int_equal(zw_tlsstats_render(&s, &out), 0);
	const char *t = out.buf.data;
	assert_non_null(strstr(t, "# TYPE zerowire_tls_handshakes_total counter\n"));
	assert_non_null(
	        strstr(t, "zerowire_tls_handshakes_total{version=\"1.3\",alpn=\"h2\"} 2\n"));
	assert_non_null(
	        strstr(t, "zerowire_tls_handshakes_total{version=\"1.2\",alpn=\"http/1.1\"} 1\n"));
	assert_non_null(
	        strstr(t, "zerowire_tls_handshakes_total{version=\"1.3\",alpn=\"none\"} 1\n"));
	assert_non_null(
	        strstr(t, "zerowire_tls_handshakes_total{version=\"1.2\",alpn=\"h2\"} 0\n"));
	assert_non_null(strstr(t, "# TYPE zerowire_tls_errors_total counter\n"));
	assert_non_null(strstr(t, "zerowire_tls_errors_total{reason=\"handshake_timeout\"} 1\n"));
	assert_non_null(strstr(t, "zerowire_tls_errors_total{reason=\"handshake_failed\"} 0\n"));
	assert_non_null(strstr(t, "zerowire_tls_errors_total{reason=\"session_error\"} 0\n"));
	size_t lines = 0;
	for (const char *p = t; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, 4 + 6 + ZW_TLS_ERR_COUNT);
	zw_buf_free(&out.buf);
	assert_string_equal(zw_tlsstats_reason(ZW_TLS_ERR_EOF), "handshake_eof");
	assert_string_equal(zw_tlsstats_reason(ZW_TLS_ERR_COUNT), "unknown");
}

static void test_render_full(void **state)
{
	(void)state;
	struct zw_tlsstats s = {0};
	struct zw_obuf out = {.limit = 100};
	assert_int_equal(zw_tlsstats_render(&s, &out), -1);
	zw_buf_free(&out.buf);
}

static void *bump(void *arg)
{
	struct zw_tlsstats *s = arg;
	for (int i = 0; i < 10000; i++) {
		zw_tlsstats_handshake(s, 13, ZW_TLS_ALPN_HTTP11);
		zw_tlsstats_error(s, ZW_TLS_ERR_HANDSHAKE);
	}
	return NULL;
}

static void test_threads(void **state)
{
	(void)state;
	struct zw_tlsstats s = {0};
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, bump, &s), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&s.handshakes[1][ZW_TLS_ALPN_HTTP11]), 40000);
	assert_int_equal(atomic_load(&s.errors[ZW_TLS_ERR_HANDSHAKE]), 40000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_render_counts),
	        cmocka_unit_test(test_render_full),
	        cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
