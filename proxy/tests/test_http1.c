/* Unit tests for proxy/http1.c: head parsing limits, rejection of
 * malformed and smuggling-prone requests, and the rewriting of request and
 * response heads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http1.h"

static const struct zw_http_limits limits = {
        .max_head_bytes = 1024,
        .max_headers = 8,
        .max_request_line = 64,
};

static const struct zw_http_limits wide = {
        .max_head_bytes = 8192,
        .max_headers = 100,
        .max_request_line = 1024,
};

struct parsed {
	llhttp_t p;
	struct zw_http_head h;
	int rc;
	size_t used;
};

/* Parses `raw` as a request head with limits `lim`, fed in pieces of
 * `step` bytes. */
static void parse_with(struct parsed *x, const struct zw_http_limits *lim, const char *raw,
                       size_t step)
{
	zw_http_head_init(&x->h, lim);
	zw_http_parser_init(&x->p, HTTP_REQUEST, &x->h);
	size_t len = strlen(raw), off = 0;
	x->used = 0;
	x->rc = ZW_HTTP_MORE;
	while (off < len && x->rc == ZW_HTTP_MORE) {
		size_t n = len - off < step ? len - off : step;
		size_t used = 0;
		x->rc = zw_http_head_execute(&x->p, &x->h, raw + off, n, &used);
		x->used += used;
		off += n;
	}
}

static void parse(struct parsed *x, const char *raw, size_t step)
{
	parse_with(x, &limits, raw, step);
}

/* Parses a head then the body bytes that follow it; returns the body status. */
static int parse_body(struct parsed *x, const char *raw)
{
	parse(x, raw, strlen(raw));
	if (x->rc != ZW_HTTP_HEAD_DONE)
		return 100 + x->rc;
	size_t used = 0;
	const char *rest = raw + x->used;
	return zw_http_body_execute(&x->p, rest, strlen(rest), &used);
}

static void test_simple_request(void **state)
{
	(void)state;
	struct parsed x;
	/* Byte-by-byte feeding must give the same result as one buffer. */
	for (size_t step = 1; step <= 200; step += 199) {
		parse(&x,
		      "GET /a/b?c=1 HTTP/1.1\r\nHost: Example.com\r\nX-A: 1\r\nX-A: 2\r\n\r\nNEXT",
		      step);
		assert_int_equal(x.rc, ZW_HTTP_HEAD_DONE);
		assert_int_equal(x.h.url_len, 8);
		assert_memory_equal(x.h.buf + x.h.url_off, "/a/b?c=1", 8);
		assert_int_equal(x.h.n_fields, 3);
		size_t vl = 0;
		const char *v = zw_http_find(&x.h, "HOST", &vl);
		assert_non_null(v);
		assert_int_equal(vl, 11);
		assert_memory_equal(v, "Example.com", 11);
		assert_int_equal(zw_http_count(&x.h, "x-a"), 2);
		zw_http_head_free(&x.h);
	}
	parse(&x, "GET / HTTP/1.1\r\nHost: a\r\n\r\nNEXT", 1000);
	assert_int_equal(x.used, strlen("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
	zw_http_head_free(&x.h);
}

static void test_limits(void **state)
{
	(void)state;
	struct parsed x;
	char raw[4096];
	/* Request target longer than max_request_line (64): 414. */
	snprintf(raw, sizeof(raw), "GET /%070d HTTP/1.1\r\nHost: a\r\n\r\n", 0);
	parse(&x, raw, 7);
	assert_int_equal(x.rc, ZW_HTTP_EURI);
	zw_http_head_free(&x.h);
	/* Too many header fields (max 8): 431. */
	strcpy(raw, "GET / HTTP/1.1\r\n");
	for (int i = 0; i < 9; i++)
		snprintf(raw + strlen(raw), sizeof(raw) - strlen(raw), "X-%d: v\r\n", i);
	strcat(raw, "\r\n");
	parse(&x, raw, 5);
	assert_int_equal(x.rc, ZW_HTTP_ETOOBIG);
	zw_http_head_free(&x.h);
	/* Exactly the limit is fine. */
	strcpy(raw, "GET / HTTP/1.1\r\n");
	for (int i = 0; i < 8; i++)
		snprintf(raw + strlen(raw), sizeof(raw) - strlen(raw), "X-%d: v\r\n", i);
	strcat(raw, "\r\n");
	parse(&x, raw, 5);
	assert_int_equal(x.rc, ZW_HTTP_HEAD_DONE);
	zw_http_head_free(&x.h);
	/* Head bytes over max_head_bytes (1024), even if only whitespace-free
	 * value bytes: 431. */
	snprintf(raw, sizeof(raw), "GET / HTTP/1.1\r\nHost: a\r\nX-Big: %01100d\r\n\r\n", 0);
	parse(&x, raw, 100);
	assert_int_equal(x.rc, ZW_HTTP_ETOOBIG);
	zw_http_head_free(&x.h);
	/* The error is sticky. */
	size_t used = 0;
	assert_int_equal(zw_http_head_execute(&x.p, &x.h, "\r\n", 2, &used), ZW_HTTP_ETOOBIG);
	zw_http_head_free(&x.h);
}

static void test_malformed(void **state)
{
	(void)state;
	static const char *const bad_heads[] = {
	        "GET / HTTP/1.1\nHost: a\n\n",                      /* bare LF */
	        "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n",          /* bare LF in a field */
	        "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n",  /* obs-fold */
	        "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\tc\r\n\r\n", /* obs-fold, tab */
	        "GET / HTTP/1.1\r\nHost: a\r\nX : b\r\n\r\n",       /* space before colon */
	        "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
	        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: "
	        "chunked\r\n\r\n",
	        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
	        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n",
	        "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
	        "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01z\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(bad_heads) / sizeof(bad_heads[0]); i++) {
		for (size_t step = 1; step <= 1000; step += 999) {
			struct parsed x;
			parse(&x, bad_heads[i], step);
			if (x.rc != ZW_HTTP_EBAD)
				fail_msg("case %zu step %zu: rc %d, want EBAD", i, step, x.rc);
			zw_http_head_free(&x.h);
		}
	}
	/* Obs-fold detection must not reject a value split across reads
	 * right before a space inside it. */
	struct parsed x;
	zw_http_head_init(&x.h, &limits);
	zw_http_parser_init(&x.p, HTTP_REQUEST, &x.h);
	size_t used;
	assert_int_equal(zw_http_head_execute(&x.p, &x.h, "GET / HTTP/1.1\r\nX: a", 20, &used),
	                 ZW_HTTP_MORE);
	assert_int_equal(zw_http_head_execute(&x.p, &x.h, " b\r\nHost: h\r\n\r\n", 15, &used),
	                 ZW_HTTP_HEAD_DONE);
	size_t vl;
	const char *v = zw_http_find(&x.h, "x", &vl);
	assert_int_equal(vl, 3);
	assert_memory_equal(v, "a b", 3);
	zw_http_head_free(&x.h);
}

static void test_bodies(void **state)
{
	(void)state;
	struct parsed x;
	/* Invalid chunk sizes and chunk framing. */
	assert_int_equal(
	        parse_body(
	                &x,
	                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
	        ZW_BODY_EBAD);
	zw_http_head_free(&x.h);
	assert_int_equal(parse_body(&x, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "
	                                "chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n"),
	                 ZW_BODY_EBAD);
	zw_http_head_free(&x.h);
	assert_int_equal(parse_body(&x, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "
	                                "chunked\r\n\r\nffffffffffffffffff\r\n"),
	                 ZW_BODY_EBAD);
	zw_http_head_free(&x.h);
	/* A valid chunked body ends exactly at the terminating chunk: what
	 * follows (a pipelined request) is not body. */
	const char *raw = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	                  "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
	parse(&x, raw, strlen(raw));
	assert_int_equal(x.rc, ZW_HTTP_HEAD_DONE);
	assert_true(x.p.flags & F_CHUNKED);
	size_t used = 0;
	const char *rest = raw + x.used;
	assert_int_equal(zw_http_body_execute(&x.p, rest, strlen(rest), &used), ZW_BODY_DONE);
	assert_int_equal(used, strlen("3\r\nabc\r\n0\r\n\r\n"));
	zw_http_head_free(&x.h);
	/* A chunked body ends with CRLF, split anywhere; a bare LF at its end
	 * (after the last chunk or after trailers) is malformed. */
	static const struct {
		const char *body;
		int want;
	} ends[] = {
	        {"3\r\nabc\r\n0\r\n\r\n", ZW_BODY_DONE},
	        {"3\r\nabc\r\n0\r\nX: 1\r\n\r\n", ZW_BODY_DONE},
	        {"3\r\nabc\r\n0\r\n\n", ZW_BODY_EBAD},
	        {"3\r\nabc\r\n0\r\nX: 1\r\n\n", ZW_BODY_EBAD},
	        {"0\r\nX:\r\n b\r\n\r\n", ZW_BODY_EBAD},
	};
	for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++) {
		for (size_t cut = 1; cut < strlen(ends[i].body); cut++) {
			parse(&x,
			      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
			      1000);
			const char *b = ends[i].body;
			int rc = zw_http_body_execute(&x.p, b, cut, &used);
			if (rc == ZW_BODY_MORE)
				rc = zw_http_body_execute(&x.p, b + cut, strlen(b) - cut, &used);
			if (rc != ends[i].want)
				fail_msg("body %zu cut %zu: rc %d, want %d", i, cut, rc,
				         ends[i].want);
			zw_http_head_free(&x.h);
		}
	}
	/* Content-Length bodies end after that many bytes; no body: done at once. */
	raw = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nokGET";
	parse(&x, raw, strlen(raw));
	rest = raw + x.used;
	assert_int_equal(zw_http_body_execute(&x.p, rest, 1, &used), ZW_BODY_MORE);
	assert_int_equal(zw_http_body_execute(&x.p, rest + 1, 4, &used), ZW_BODY_DONE);
	assert_int_equal(used, 1);
	zw_http_head_free(&x.h);
	parse(&x, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 100);
	assert_int_equal(zw_http_body_execute(&x.p, "", 0, &used), ZW_BODY_DONE);
	zw_http_head_free(&x.h);
}

static void test_build_request(void **state)
{
	(void)state;
	struct parsed x;
	parse_with(
	        &x, &wide,
	        "POST /p?q HTTP/1.1\r\nHost: app.example\r\nConnection: keep-alive, X-Secret\r\n"
	        "X-Secret: s\r\nKeep-Alive: timeout=5\r\nProxy-Authorization: x\r\nTE: trailers\r\n"
	        "Trailer: X-T\r\nTransfer-Encoding: chunked\r\nUpgrade: h2c\r\n"
	        "X-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\nAccept: */*\r\n\r\n",
	        1000);
	assert_int_equal(x.rc, ZW_HTTP_HEAD_DONE);
	struct zw_obuf out = {.limit = 4096};
	struct zw_fwd_info info = {.client_ip = "10.0.0.9", .proto = "http", .chunked = 1};
	assert_int_equal(zw_http_build_request(&out, &x.p, &x.h, &info), 0);
	assert_int_equal(zw_obuf_add(&out, "", 1), 0);
	const char *want = "POST /p?q HTTP/1.1\r\n"
	                   "Host: app.example\r\n"
	                   "Accept: */*\r\n"
	                   "X-Forwarded-For: 1.1.1.1, 2.2.2.2, 10.0.0.9\r\n"
	                   "X-Forwarded-Proto: http\r\n"
	                   "X-Forwarded-Host: app.example\r\n"
	                   "Transfer-Encoding: chunked\r\n"
	                   "\r\n";
	assert_string_equal(out.buf.data, want);
	zw_buf_free(&out.buf);
	zw_http_head_free(&x.h);

	/* Other codings before chunked are kept with it, as a clean list:
	 * empty elements (which llhttp takes) and the whitespace around them
	 * left out. */
	static const char *const codings[] = {
	        "PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n"
	        "Transfer-Encoding: chunked\r\n\r\n",
	        "PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: , gzip ,\r\n"
	        "Transfer-Encoding: ,\tchunked\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(codings) / sizeof(codings[0]); i++) {
		parse_with(&x, &wide, codings[i], 1000);
		assert_int_equal(x.rc, ZW_HTTP_HEAD_DONE);
		assert_true(x.p.flags & F_CHUNKED);
		memset(&out, 0, sizeof(out));
		out.limit = 4096;
		assert_int_equal(zw_http_build_request(&out, &x.p, &x.h, &info), 0);
		assert_int_equal(zw_obuf_add(&out, "", 1), 0);
		assert_non_null(
		        strstr(out.buf.data, "\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"));
		zw_buf_free(&out.buf);
		zw_http_head_free(&x.h);
	}

	/* Upgrade kept for upgrades; existing X-Forwarded-Proto/-Host kept. */
	parse(&x,
	      "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
	      "X-Forwarded-Proto: https\r\nX-Forwarded-Host: outer\r\n\r\n",
	      1000);
	memset(&out, 0, sizeof(out));
	out.limit = 4096;
	struct zw_fwd_info up = {.client_ip = "127.0.0.1", .upgrade = 1};
	assert_int_equal(zw_http_build_request(&out, &x.p, &x.h, &up), 0);
	assert_int_equal(zw_obuf_add(&out, "", 1), 0);
	assert_string_equal(out.buf.data,
	                    "GET /ws HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: https\r\n"
	                    "X-Forwarded-Host: outer\r\nX-Forwarded-For: 127.0.0.1\r\n"
	                    "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
	zw_buf_free(&out.buf);
	/* The output limit is enforced. */
	memset(&out, 0, sizeof(out));
	out.limit = 10;
	assert_int_equal(zw_http_build_request(&out, &x.p, &x.h, &up), -1);
	zw_buf_free(&out.buf);
	zw_http_head_free(&x.h);
}

static void test_build_response(void **state)
{
	(void)state;
	struct zw_http_head h;
	llhttp_t p;
	zw_http_head_init(&h, &limits);
	zw_http_parser_init(&p, HTTP_RESPONSE, &h);
	const char *raw =
	        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close, X-H\r\n"
	        "X-H: 1\r\nTransfer-Encoding: chunked\r\nServer: s\r\n\r\n";
	size_t used;
	assert_int_equal(zw_http_head_execute(&p, &h, raw, strlen(raw), &used), ZW_HTTP_HEAD_DONE);
	assert_true(llhttp_message_needs_eof(&p) == 0);
	struct zw_obuf out = {.limit = 4096};
	struct zw_resp_info info = {.cold_start = 1, .close = 0, .keep_framing = 1};
	assert_int_equal(zw_http_build_response(&out, &p, &h, &info), 0);
	assert_int_equal(zw_obuf_add(&out, "", 1), 0);
	assert_string_equal(out.buf.data,
	                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nServer: s\r\n"
	                    "Transfer-Encoding: chunked\r\nX-Zerowire-Cold-Start: true\r\n\r\n");
	zw_buf_free(&out.buf);
	memset(&out, 0, sizeof(out));
	out.limit = 4096;
	struct zw_resp_info closing = {.cold_start = 0, .close = 1, .keep_framing = 1};
	assert_int_equal(zw_http_build_response(&out, &p, &h, &closing), 0);
	assert_int_equal(zw_obuf_add(&out, "", 1), 0);
	assert_non_null(
	        strstr(out.buf.data, "Connection: close\r\nX-Zerowire-Cold-Start: false\r\n"));
	zw_buf_free(&out.buf);
	zw_http_head_free(&h);
}

static void test_simple_response(void **state)
{
	(void)state;
	struct zw_obuf out = {.limit = 4096};
	assert_int_equal(zw_http_simple_response(&out, 503, "Retry-After: 5\r\n", "busy\n", 5, 0),
	                 0);
	assert_int_equal(zw_obuf_add(&out, "", 1), 0);
	assert_string_equal(out.buf.data, "HTTP/1.1 503 Service Unavailable\r\n"
	                                  "Content-Type: text/plain; charset=utf-8\r\n"
	                                  "Content-Length: 5\r\nRetry-After: 5\r\n\r\nbusy\n");
	zw_buf_free(&out.buf);
	assert_true(zw_http_is_hop_by_hop("Proxy-Connection", 16));
	assert_true(zw_http_is_hop_by_hop("te", 2));
	assert_false(zw_http_is_hop_by_hop("Tex", 3));
	assert_false(zw_http_is_hop_by_hop("Host", 4));
}

static void test_tokens(void **state)
{
	(void)state;
	struct parsed x;
	parse(&x, "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive ,  Upgrade\r\n\r\n", 1000);
	assert_true(zw_http_has_token(&x.h, "connection", "upgrade"));
	assert_true(zw_http_has_token(&x.h, "Connection", "KEEP-ALIVE"));
	assert_false(zw_http_has_token(&x.h, "connection", "close"));
	zw_http_head_free(&x.h);
}

/* Builds the upstream request head for a parsed request into a
 * NUL-terminated string (caller frees). */
static char *build_req(struct parsed *x)
{
	struct zw_obuf out = {.limit = 8192};
	struct zw_fwd_info info = {.client_ip = "10.0.0.9",
	                           .proto = "http",
	                           .upgrade = llhttp_get_upgrade(&x->p),
	                           .chunked = (x->p.flags & F_CHUNKED) != 0};
	assert_int_equal(zw_http_build_request(&out, &x->p, &x->h, &info), 0);
	assert_int_equal(zw_obuf_add(&out, "", 1), 0);
	return out.buf.data;
}

static void test_connection_cannot_drop_framing(void **state)
{
	(void)state;
	struct parsed x;
	/* Nominating Content-Length, Host or Transfer-Encoding is ignored:
	 * the body stays delimited and the request routable upstream. */
	parse_with(&x, &wide,
	           "POST / HTTP/1.1\r\nHost: h\r\nConnection: content-length, HOST, x-a\r\n"
	           "X-A: 1\r\nContent-Length: 3\r\n\r\nabc",
	           1000);
	assert_int_equal(x.rc, ZW_HTTP_HEAD_DONE);
	char *req = build_req(&x);
	assert_string_equal(req, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
	                         "X-Forwarded-For: 10.0.0.9\r\nX-Forwarded-Proto: http\r\n"
	                         "X-Forwarded-Host: h\r\n\r\n");
	free(req);
	zw_http_head_free(&x.h);
	parse_with(&x, &wide,
	           "POST / HTTP/1.1\r\nHost: h\r\nConnection: Transfer-Encoding\r\n"
	           "Transfer-Encoding: chunked\r\n\r\n",
	           1000);
	req = build_req(&x);
	assert_non_null(strstr(req, "\r\nTransfer-Encoding: chunked\r\n\r\n"));
	free(req);
	zw_http_head_free(&x.h);

	/* Same in responses: a backend cannot hide its Content-Length. */
	struct zw_http_head h;
	llhttp_t p;
	size_t used;
	zw_http_head_init(&h, &wide);
	zw_http_parser_init(&p, HTTP_RESPONSE, &h);
	const char *raw =
	        "HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 2\r\n\r\n";
	assert_int_equal(zw_http_head_execute(&p, &h, raw, strlen(raw), &used), ZW_HTTP_HEAD_DONE);
	struct zw_obuf out = {.limit = 4096};
	struct zw_resp_info info = {.keep_framing = 1};
	assert_int_equal(zw_http_build_response(&out, &p, &h, &info), 0);
	assert_int_equal(zw_obuf_add(&out, "", 1), 0);
	assert_string_equal(out.buf.data, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
	                                  "X-Zerowire-Cold-Start: false\r\n\r\n");
	zw_buf_free(&out.buf);
	zw_http_head_free(&h);
}

static void test_trailers_stay_out_of_the_head(void **state)
{
	(void)state;
	struct parsed x;
	const char *raw = "POST /t HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
	                  "1\r\nx\r\n0\r\nContent-Length: 5\r\nX-Evil: 1\r\n\r\n";
	parse_with(&x, &wide, raw, strlen(raw));
	assert_int_equal(x.rc, ZW_HTTP_HEAD_DONE);
	size_t n_fields = x.h.n_fields, rest_len = strlen(raw + x.used), used = 0;
	/* Two probes on copies (as the proxy's dispatch and send), then the
	 * parser itself: the head never grows, the trailers stay body. */
	for (int i = 0; i < 3; i++) {
		llhttp_t probe = x.p;
		llhttp_t *pp = i < 2 ? &probe : &x.p;
		assert_int_equal(zw_http_body_execute(pp, raw + x.used, rest_len, &used),
		                 ZW_BODY_DONE);
		assert_int_equal(used, rest_len);
		assert_int_equal(x.h.n_fields, n_fields);
	}
	char *req = build_req(&x);
	assert_null(strstr(req, "X-Evil"));
	assert_null(strstr(req, "Content-Length"));
	free(req);
	zw_http_head_free(&x.h);

	/* Malformed or oversized trailer sections are malformed bodies. */
	static const char *const bad[] = {
	        "0\r\nT: 1\r\n folded\r\n\r\n", /* obs-fold */
	        "0\r\n: v\r\n\r\n",             /* empty name */
	        "0\r\nX : v\r\n\r\n",           /* space before colon */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		parse_with(&x, &wide,
		           "PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", 1000);
		assert_int_equal(x.rc, ZW_HTTP_HEAD_DONE);
		if (zw_http_body_execute(&x.p, bad[i], strlen(bad[i]), &used) != ZW_BODY_EBAD)
			fail_msg("trailer case %zu accepted", i);
		zw_http_head_free(&x.h);
	}
	parse(&x, "PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", 1000);
	assert_int_equal(x.rc, ZW_HTTP_HEAD_DONE);
	assert_int_equal(zw_http_body_execute(&x.p, "0\r\n", 3, &used), ZW_BODY_MORE);
	char big[2048];
	memset(big, 'a', sizeof(big));
	memcpy(big, "X-Big: ", 7);
	/* limits.max_head_bytes is 1024: the trailer section may not pass it. */
	assert_int_equal(zw_http_body_execute(&x.p, big, sizeof(big), &used), ZW_BODY_EBAD);
	zw_http_head_free(&x.h);
}

/* A caller that re-frames a body asks for a copy of its trailer fields:
 * name\0value\0 pairs, whatever the read boundaries, under the head's
 * field count; forbidden fields are the caller's to drop. */
static void test_trailer_copy(void **state)
{
	(void)state;
	const char *head = "POST /t HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
	const char *body = "3\r\nabc\r\n0\r\nX-Sum: 900150983cd24fb0\r\nX-Empty:\r\n\r\n";
	static const char want[] = "X-Sum\0"
	                           "900150983cd24fb0\0X-Empty\0";
	for (size_t step = 1; step <= strlen(body); step++) {
		struct parsed x;
		struct zw_obuf tr = {.limit = 256};
		parse_with(&x, &wide, head, strlen(head));
		assert_int_equal(x.rc, ZW_HTTP_HEAD_DONE);
		x.h.trailers = &tr;
		int rc = ZW_BODY_MORE;
		for (size_t off = 0; off < strlen(body) && rc == ZW_BODY_MORE; off += step) {
			size_t n = strlen(body) - off < step ? strlen(body) - off : step, used = 0;
			rc = zw_http_body_execute(&x.p, body + off, n, &used);
		}
		assert_int_equal(rc, ZW_BODY_DONE);
		assert_int_equal(x.h.n_trailers, 2);
		assert_int_equal(tr.buf.len, sizeof(want));
		assert_memory_equal(tr.buf.data, want, sizeof(want));
		zw_buf_free(&tr.buf);
		zw_http_head_free(&x.h);
	}
	/* More trailer fields than a head may have (limits: 8). */
	struct parsed x;
	struct zw_obuf tr = {.limit = 4096};
	size_t used = 0;
	parse(&x, head, 1000);
	x.h.trailers = &tr;
	const char *many = "0\r\na: 1\r\nb: 1\r\nc: 1\r\nd: 1\r\ne: 1\r\nf: 1\r\ng: 1\r\nh: 1\r\n"
	                   "i: 1\r\n\r\n";
	assert_int_equal(zw_http_body_execute(&x.p, many, strlen(many), &used), ZW_BODY_EBAD);
	zw_buf_free(&tr.buf);
	zw_http_head_free(&x.h);
	/* A copy past its own limit fails the body too. */
	tr = (struct zw_obuf){.limit = 8};
	parse(&x, head, 1000);
	x.h.trailers = &tr;
	const char *long_one = "0\r\nX-Long: 12345\r\n\r\n";
	assert_int_equal(zw_http_body_execute(&x.p, long_one, strlen(long_one), &used),
	                 ZW_BODY_EBAD);
	zw_buf_free(&tr.buf);
	zw_http_head_free(&x.h);
}

static void test_trailer_dropped(void **state)
{
	(void)state;
	static const char *const dropped[] = {"Content-Length", "transfer-encoding",
	                                      "Host",           ":path",
	                                      "connection",     "TE",
	                                      "trailer",        "upgrade",
	                                      "keep-alive",     "proxy-authorization",
	                                      "authorization",  "cookie",
	                                      "content-type",   "content-encoding",
	                                      "expect",         "if-match",
	                                      "range",          "max-forwards",
	                                      "cache-control",  ""};
	for (size_t i = 0; i < sizeof(dropped) / sizeof(dropped[0]); i++)
		if (!zw_http_trailer_dropped(dropped[i], strlen(dropped[i])))
			fail_msg("%s kept", dropped[i]);
	static const char *const kept[] = {"x-checksum", "grpc-status", "server-timing", "digest",
	                                   "x-if"};
	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
		if (zw_http_trailer_dropped(kept[i], strlen(kept[i])))
			fail_msg("%s dropped", kept[i]);
}

static void test_strict_request_heads(void **state)
{
	(void)state;
	static const char *const bad[] = {
	        "GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n",    /* empty field name */
	        "GET / HTTP/2.0\r\nHost: a\r\n\r\n",           /* not HTTP/1 */
	        "GET / HTTP/3.0\r\nHost: a\r\n\r\n",           /* not HTTP/1 */
	        "GET / HTTP/0.9\r\nHost: a\r\n\r\n",           /* not HTTP/1 */
	        "GET /\t HTTP/1.1\r\nHost: a\r\n\r\n",         /* tab in target */
	        "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",          /* two spaces */
	        "GET /  HTTP/1.1\r\nHost: a\r\n\r\n",          /* two spaces */
	        "GET /a\x0c HTTP/1.1\r\nHost: a\r\n\r\n",      /* control in target */
	        "GET /\x80 HTTP/1.1\r\nHost: a\r\n\r\n",       /* obs-text in target */
	        "GET /a#f HTTP/1.1\r\nHost: a\r\n\r\n",        /* fragment */
	        "GET a HTTP/1.1\r\nHost: a\r\n\r\n",           /* no form */
	        "GET * HTTP/1.1\r\nHost: a\r\n\r\n",           /* asterisk not OPTIONS */
	        "GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n",    /* scheme */
	        "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n",   /* empty authority */
	        "GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n", /* userinfo */
	        "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
	        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n", /* empty TE */
	        "GET / HTTP/1.1\nHost: a\r\n\r\n",                           /* bare LF */
	        "GET / HTTP/1.1\r\nHost: a\r\n\n",                           /* bare LF */
	        "GET / HTTP/1.0\n\n",                                        /* bare LFs */
	        "GET / HTTP/1.1\r\nHost: a\r\nX:\r\n b\r\n\r\n",             /* fold */
	        "GET / HTTP/1.1\r\nHost: a\r\nX: \r\n\tb\r\n\r\n",           /* fold */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		for (size_t step = 1; step <= 1000; step += 999) {
			struct parsed x;
			parse_with(&x, &wide, bad[i], step);
			if (x.rc != ZW_HTTP_EBAD)
				fail_msg("case %zu step %zu: rc %d, want EBAD", i, step, x.rc);
			zw_http_head_free(&x.h);
		}
	}
	struct parsed x;
	parse_with(&x, &wide, "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 1000);
	assert_int_equal(x.rc, ZW_HTTP_HEAD_DONE);
	zw_http_head_free(&x.h);
}

static void test_absolute_form(void **state)
{
	(void)state;
	struct parsed x;
	/* The authority replaces Host, the target becomes origin-form. */
	for (size_t step = 1; step <= 1000; step += 999) {
		parse_with(
		        &x, &wide,
		        "GET HTTP://other.example:8080/p?q HTTP/1.1\r\nHost: app\r\nX: 1\r\n\r\n",
		        step);
		assert_int_equal(x.rc, ZW_HTTP_HEAD_DONE);
		char *req = build_req(&x);
		assert_string_equal(req, "GET /p?q HTTP/1.1\r\nHost: other.example:8080\r\nX: 1\r\n"
		                         "X-Forwarded-For: 10.0.0.9\r\nX-Forwarded-Proto: http\r\n"
		                         "X-Forwarded-Host: other.example:8080\r\n\r\n");
		free(req);
		zw_http_head_free(&x.h);
	}
	/* No path: "/" (before the query); no Host (HTTP/1.0): one is added. */
	parse_with(&x, &wide, "GET https://a.example?x=1 HTTP/1.0\r\nX: 1\r\n\r\n", 1000);
	assert_int_equal(x.rc, ZW_HTTP_HEAD_DONE);
	assert_int_equal(zw_http_count(&x.h, "host"), 1);
	char *req = build_req(&x);
	assert_string_equal(req, "GET /?x=1 HTTP/1.0\r\nX: 1\r\nHost: a.example\r\n"
	                         "X-Forwarded-For: 10.0.0.9\r\nX-Forwarded-Proto: http\r\n"
	                         "X-Forwarded-Host: a.example\r\n\r\n");
	free(req);
	zw_http_head_free(&x.h);
}

/* Parses a response head (and the body bytes after it) fed at once. */
static int parse_resp(llhttp_t *p, struct zw_http_head *h, const char *raw, int *body)
{
	size_t used = 0, bused = 0;
	zw_http_head_init(h, &wide);
	zw_http_parser_init(p, HTTP_RESPONSE, h);
	int r = zw_http_head_execute(p, h, raw, strlen(raw), &used);
	if (r == ZW_HTTP_HEAD_DONE && body)
		*body = zw_http_body_execute(p, raw + used, strlen(raw + used), &bused);
	return r;
}

static void test_strict_responses(void **state)
{
	(void)state;
	static const char *const bad[] = {
	        "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
	        "HTTP/0.9 200 OK\r\nContent-Length: 0\r\n\r\n",
	        "HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n",
	        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
	        "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
	        "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
	        "HTTP/1.1 200 OK\r\n: a\r\n\r\n",
	};
	llhttp_t p;
	struct zw_http_head h;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = parse_resp(&p, &h, bad[i], NULL);
		if (r != ZW_HTTP_EBAD)
			fail_msg("response case %zu: rc %d, want EBAD", i, r);
		zw_http_head_free(&h);
	}
	/* Bodyless statuses end with their head whatever the framing says;
	 * a 204 does not pass on a chunked coding. */
	static const char *const bodyless[] = {
	        "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
	        "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n",
	        "HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(bodyless) / sizeof(bodyless[0]); i++) {
		int body = -9;
		assert_int_equal(parse_resp(&p, &h, bodyless[i], &body), ZW_HTTP_HEAD_DONE);
		assert_int_equal(body, ZW_BODY_DONE);
		struct zw_obuf out = {.limit = 4096};
		struct zw_resp_info info = {.keep_framing = 1};
		assert_int_equal(zw_http_build_response(&out, &p, &h, &info), 0);
		assert_int_equal(zw_obuf_add(&out, "", 1), 0);
		assert_null(strstr(out.buf.data, "Transfer-Encoding"));
		zw_buf_free(&out.buf);
		zw_http_head_free(&h);
	}
	/* Response trailers stay in the body too. */
	int body = -9;
	assert_int_equal(parse_resp(&p, &h,
	                            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	                            "0\r\nContent-Length: 9\r\n\r\n",
	                            &body),
	                 ZW_HTTP_HEAD_DONE);
	assert_int_equal(body, ZW_BODY_DONE);
	assert_int_equal(zw_http_count(&h, "content-length"), 0);
	zw_http_head_free(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_simple_request),
	        cmocka_unit_test(test_limits),
	        cmocka_unit_test(test_malformed),
	        cmocka_unit_test(test_bodies),
	        cmocka_unit_test(test_build_request),
	        cmocka_unit_test(test_build_response),
	        cmocka_unit_test(test_simple_response),
	        cmocka_unit_test(test_tokens),
	        cmocka_unit_test(test_connection_cannot_drop_framing),
	        cmocka_unit_test(test_trailers_stay_out_of_the_head),
	        cmocka_unit_test(test_trailer_copy),
	        cmocka_unit_test(test_trailer_dropped),
	        cmocka_unit_test(test_strict_request_heads),
	        cmocka_unit_test(test_absolute_form),
	        cmocka_unit_test(test_strict_responses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
