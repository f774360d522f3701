/* Unit tests for the HTTP/2 to HTTP/1.1 translation of proxy/h2client.c:
 * request heads (pseudo-headers to the request line and Host, cookies
 * joined, chunked framing when a body has no length or announces trailers),
 * and the response
 * text split into an HTTP/2 status, fields and body; the translated request
 * head goes through http1.c's parser as the data path does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "datapath.h"

#define F(n, v)                                                                              \
	{                                                                                    \
		.name = n, .name_len = sizeof(n) - 1, .value = v, .value_len = sizeof(v) - 1 \
	}

static struct zw_h2_request req_of(const char *method, const char *path, const char *authority,
                                   const struct zw_h2_field *fields, size_t n, int end)
{
	struct zw_h2_request r = {
	        .method = method,
	        .method_len = strlen(method),
	        .scheme = "http",
	        .scheme_len = 4,
	        .authority = authority,
	        .authority_len = authority ? strlen(authority) : 0,
	        .path = path,
	        .path_len = path ? strlen(path) : 0,
	        .fields = fields,
	        .n_fields = n,
	        .end_stream = end,
	};
	return r;
}

/* Translates req and checks the text is exactly `want`. */
static void expect_text(const struct zw_h2_request *req, const char *want, int want_chunked)
{
	struct zw_obuf t = {.limit = 1 << 16};
	int chunked = -1;
	assert_int_equal(zw_h2_request_text(req, &t, &chunked), 0);
	assert_int_equal(chunked, want_chunked);
	assert_int_equal(t.buf.len, strlen(want));
	assert_memory_equal(t.buf.data, want, t.buf.len);
	zw_buf_free(&t.buf);
}

static void test_request_get(void **state)
{
	(void)state;
	struct zw_h2_field f[] = {F("user-agent", "curl/8"), F("host", "ignored.test"),
	                          F("cookie", "a=1"), F("accept", "*/*"), F("cookie", "b=2")};
	struct zw_h2_request r = req_of("GET", "/p?q=1", "app.test", f, 5, 1);
	expect_text(&r,
	            "GET /p?q=1 HTTP/1.1\r\nhost: app.test\r\nuser-agent: curl/8\r\n"
	            "accept: */*\r\ncookie: a=1; b=2\r\n\r\n",
	            0);
}

static void test_request_host_without_authority(void **state)
{
	(void)state;
	struct zw_h2_field f[] = {F("host", "app.test")};
	struct zw_h2_request r = req_of("GET", "/", NULL, f, 1, 1);
	expect_text(&r, "GET / HTTP/1.1\r\nhost: app.test\r\n\r\n", 0);
}

static void test_request_body_framing(void **state)
{
	(void)state;
	struct zw_h2_field len[] = {F("content-length", "5")};
	struct zw_h2_request r = req_of("POST", "/up", "app.test", len, 1, 0);
	expect_text(&r, "POST /up HTTP/1.1\r\nhost: app.test\r\ncontent-length: 5\r\n\r\n", 0);
	r = req_of("POST", "/up", "app.test", NULL, 0, 0);
	expect_text(&r, "POST /up HTTP/1.1\r\nhost: app.test\r\ntransfer-encoding: chunked\r\n\r\n",
	            1);
}

/* HTTP/1.1 carries trailers only after a chunked body: a body whose client
 * announces trailers (Trailer) goes chunked without its length; without
 * the announcement, or without a body, the length stays. */
static void test_request_announced_trailers(void **state)
{
	(void)state;
	struct zw_h2_field f[] = {F("content-length", "5"), F("trailer", "x-checksum"),
	                          F("x-a", "1")};
	struct zw_h2_request r = req_of("POST", "/up", "app.test", f, 3, 0);
	expect_text(&r,
	            "POST /up HTTP/1.1\r\nhost: app.test\r\ntrailer: x-checksum\r\nx-a: 1\r\n"
	            "transfer-encoding: chunked\r\n\r\n",
	            1);
	r = req_of("POST", "/up", "app.test", f, 3, 1);
	expect_text(&r,
	            "POST /up HTTP/1.1\r\nhost: app.test\r\ncontent-length: 5\r\n"
	            "trailer: x-checksum\r\nx-a: 1\r\n\r\n",
	            0);
	r = req_of("POST", "/up", "app.test", f + 1, 2, 0);
	expect_text(&r,
	            "POST /up HTTP/1.1\r\nhost: app.test\r\ntrailer: x-checksum\r\nx-a: 1\r\n"
	            "transfer-encoding: chunked\r\n\r\n",
	            1);
}

/* The translated head parses as HTTP/1.1 with the same method, target and
 * fields, and the data path's request builder frames the body as chunked. */
static void test_request_parses_as_http1(void **state)
{
	(void)state;
	struct zw_h2_field f[] = {F("x-a", "1")};
	struct zw_h2_request r = req_of("PUT", "/x", "app.test", f, 1, 0);
	struct zw_obuf t = {.limit = 1 << 16};
	int chunked = 0;
	assert_int_equal(zw_h2_request_text(&r, &t, &chunked), 0);
	struct zw_http_limits lim = {
	        .max_head_bytes = 8192, .max_headers = 100, .max_request_line = 8192};
	struct zw_http_head h;
	llhttp_t p;
	zw_http_head_init(&h, &lim);
	zw_http_parser_init(&p, HTTP_REQUEST, &h);
	size_t used = 0;
	assert_int_equal(zw_http_head_execute(&p, &h, t.buf.data, t.buf.len, &used),
	                 ZW_HTTP_HEAD_DONE);
	assert_int_equal(used, t.buf.len);
	assert_int_equal(p.method, HTTP_PUT);
	size_t vlen = 0;
	const char *v = zw_http_find(&h, "x-a", &vlen);
	assert_non_null(v);
	assert_int_equal(vlen, 1);
	struct zw_obuf out = {.limit = 1 << 16};
	struct zw_fwd_info info = {.client_ip = "10.0.0.1", .proto = "http", .chunked = chunked};
	assert_int_equal(zw_http_build_request(&out, &p, &h, &info), 0);
	assert_non_null(memmem(out.buf.data, out.buf.len, "Transfer-Encoding: chunked\r\n", 28));
	assert_non_null(memmem(out.buf.data, out.buf.len, "X-Forwarded-For: 10.0.0.1\r\n", 27));
	zw_buf_free(&out.buf);
	zw_buf_free(&t.buf);
	zw_http_head_free(&h);
}

static void test_request_limit(void **state)
{
	(void)state;
	struct zw_h2_request r = req_of("GET", "/", "app.test", NULL, 0, 1);
	struct zw_obuf t = {.limit = 10};
	int chunked = 0;
	assert_int_equal(zw_h2_request_text(&r, &t, &chunked), -1);
	zw_buf_free(&t.buf);
}

/* Nothing a client sends can add a line to the HTTP/1.1 head. */
static void test_request_smuggling_refused(void **state)
{
	(void)state;
	struct zw_obuf t = {.limit = 1 << 16};
	int chunked = 0;
	struct zw_h2_field crlf[] = {F("x-a", "1\r\nx-evil: 1")};
	struct zw_h2_request r = req_of("GET", "/", "app.test", crlf, 1, 1);
	assert_int_equal(zw_h2_request_text(&r, &t, &chunked), -2);
	struct zw_h2_field name[] = {F("x-a: 1\r\nx-b", "2")};
	r = req_of("GET", "/", "app.test", name, 1, 1);
	assert_int_equal(zw_h2_request_text(&r, &t, &chunked), -2);
	struct zw_h2_field colon[] = {F("x:a", "2")};
	r = req_of("GET", "/", "app.test", colon, 1, 1);
	assert_int_equal(zw_h2_request_text(&r, &t, &chunked), -2);
	r = req_of("GET", "/ HTTP/1.1\r\nHost: evil.test\r\n\r\nGET /", "app.test", NULL, 0, 1);
	assert_int_equal(zw_h2_request_text(&r, &t, &chunked), -2);
	r = req_of("GET", "/a b", "app.test", NULL, 0, 1);
	assert_int_equal(zw_h2_request_text(&r, &t, &chunked), -2);
	r = req_of("GET", "/", "app.test\r\nx: y", NULL, 0, 1);
	assert_int_equal(zw_h2_request_text(&r, &t, &chunked), -2);
	zw_buf_free(&t.buf);
}

static void test_response_fields(void **state)
{
	(void)state;
	const char *text = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
	                   "Retry-After:5\r\nX-Zerowire-Cold-Start: true\r\n\r\nbody!";
	struct zw_h2_field f[8];
	size_t n = 0, blen = 0;
	const char *body = NULL;
	int status = 0;
	assert_int_equal(zw_h2_response_fields(text, strlen(text), &status, f, 8, &n, &body, &blen),
	                 0);
	assert_int_equal(status, 503);
	assert_int_equal(n, 3);
	assert_int_equal(f[1].name_len, 11);
	assert_memory_equal(f[1].name, "Retry-After", 11);
	assert_int_equal(f[1].value_len, 1);
	assert_memory_equal(f[1].value, "5", 1);
	assert_int_equal(blen, 5);
	assert_memory_equal(body, "body!", 5);
}

static void test_response_no_fields_and_errors(void **state)
{
	(void)state;
	struct zw_h2_field f[1];
	size_t n = 9, blen = 9;
	const char *body = NULL;
	int status = 0;
	const char *bare = "HTTP/1.1 204 No Content\r\n\r\n";
	assert_int_equal(zw_h2_response_fields(bare, strlen(bare), &status, f, 1, &n, &body, &blen),
	                 0);
	assert_int_equal(status, 204);
	assert_int_equal(n, 0);
	assert_int_equal(blen, 0);
	const char *two = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n";
	assert_int_equal(zw_h2_response_fields(two, strlen(two), &status, f, 1, &n, &body, &blen),
	                 -1);
	const char *nocolon = "HTTP/1.1 200 OK\r\nbroken\r\n\r\n";
	assert_int_equal(
	        zw_h2_response_fields(nocolon, strlen(nocolon), &status, f, 1, &n, &body, &blen),
	        -1);
	const char *cut = "HTTP/1.1 200 OK\r\nA: 1\r\n";
	assert_int_equal(zw_h2_response_fields(cut, strlen(cut), &status, f, 1, &n, &body, &blen),
	                 -1);
	const char *bad = "HTTP/1.1 2x0 OK\r\n\r\n";
	assert_int_equal(zw_h2_response_fields(bad, strlen(bad), &status, f, 1, &n, &body, &blen),
	                 -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_request_get),
	        cmocka_unit_test(test_request_host_without_authority),
	        cmocka_unit_test(test_request_body_framing),
	        cmocka_unit_test(test_request_announced_trailers),
	        cmocka_unit_test(test_request_parses_as_http1),
	        cmocka_unit_test(test_request_limit),
	        cmocka_unit_test(test_request_smuggling_refused),
	        cmocka_unit_test(test_response_fields),
	        cmocka_unit_test(test_response_no_fields_and_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
