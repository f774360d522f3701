/* Unit tests for proxy/tls.c: real handshakes in memory against a GnuTLS
 * client session: TLS 1.3 and 1.2, ALPN selection, SNI certificate choice
 * and the default, refused old versions and CBC ciphers, a renewed
 * certificate served to the next handshake while a running session goes
 * on, close_notify, garbage input, and the buffer limits. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <cmocka.h>
#include <gnutls/x509.h>

#include "tls.h"
#include "tls_helpers.h"

/* The client side: a GnuTLS client over two memory pipes. */
struct pipe {
	unsigned char *buf;
	size_t len, cap;
};

struct client {
	gnutls_session_t s;
	gnutls_certificate_credentials_t creds;
	struct pipe c2s, s2c;
	struct zw_tls *server;
};

static void pipe_put(struct pipe *p, const void *d, size_t n)
{
	if (p->len + n > p->cap) {
		p->cap = (p->len + n) * 2;
		p->buf = realloc(p->buf, p->cap);
		assert_non_null(p->buf);
	}
	memcpy(p->buf + p->len, d, n);
	p->len += n;
}

static void pipe_drop(struct pipe *p, size_t n)
{
	memmove(p->buf, p->buf + n, p->len - n);
	p->len -= n;
}

static ssize_t c_push(gnutls_transport_ptr_t ptr, const void *d, size_t n)
{
	struct client *c = ptr;
	pipe_put(&c->c2s, d, n);
	return (ssize_t)n;
}

static ssize_t c_pull(gnutls_transport_ptr_t ptr, void *d, size_t n)
{
	struct client *c = ptr;
	if (!c->s2c.len) {
		gnutls_transport_set_errno(c->s, EAGAIN);
		return -1;
	}
	if (n > c->s2c.len)
		n = c->s2c.len;
	memcpy(d, c->s2c.buf, n);
	pipe_drop(&c->s2c, n);
	return (ssize_t)n;
}

/* A client offering `alpn` (comma-free list, NULL: none) and SNI `sni`
 * (NULL: none) with priority `prio` (NULL: NORMAL). */
static void client_init(struct client *c, struct zw_tls *server, const char *prio, const char *sni,
                        const char *const *alpn, size_t n_alpn)
{
	memset(c, 0, sizeof(*c));
	c->server = server;
	assert_int_equal(gnutls_certificate_allocate_credentials(&c->creds), 0);
	assert_int_equal(gnutls_init(&c->s, GNUTLS_CLIENT | GNUTLS_NONBLOCK), 0);
	assert_int_equal(gnutls_priority_set_direct(c->s, prio ? prio : "NORMAL", NULL), 0);
	assert_int_equal(gnutls_credentials_set(c->s, GNUTLS_CRD_CERTIFICATE, c->creds), 0);
	if (sni)
		assert_int_equal(gnutls_server_name_set(c->s, GNUTLS_NAME_DNS, sni, strlen(sni)),
		                 0);
	if (n_alpn) {
		gnutls_datum_t d[4];
		for (size_t i = 0; i < n_alpn; i++)
			d[i] = (gnutls_datum_t){(unsigned char *)alpn[i],
			                        (unsigned)strlen(alpn[i])};
		assert_int_equal(gnutls_alpn_set_protocols(c->s, d, (unsigned)n_alpn, 0), 0);
	}
	gnutls_transport_set_ptr(c->s, c);
	gnutls_transport_set_push_function(c->s, c_push);
	gnutls_transport_set_pull_function(c->s, c_pull);
}

static void client_free(struct client *c)
{
	gnutls_deinit(c->s);
	gnutls_certificate_free_credentials(c->creds);
	free(c->c2s.buf);
	free(c->s2c.buf);
}

/* Moves bytes both ways: client -> server as far as the server takes,
 * server -> client all. */
static void shuttle(struct client *c)
{
	size_t used, n;
	if (c->c2s.len) {
		zw_tls_feed(c->server, c->c2s.buf, c->c2s.len, &used);
		pipe_drop(&c->c2s, used);
	}
	const void *p = zw_tls_pending(c->server, &n);
	if (n) {
		pipe_put(&c->s2c, p, n);
		zw_tls_sent(c->server, n);
	}
}

/* Runs the handshake to the end. Returns the client's final result. */
static int handshake(struct client *c)
{
	int r = GNUTLS_E_AGAIN;
	for (int i = 0; i < 50; i++) {
		r = gnutls_handshake(c->s);
		shuttle(c);
		if (r == 0 && zw_tls_get_state(c->server) != ZW_TLS_HANDSHAKE)
			return 0;
		if (r < 0 && gnutls_error_is_fatal(r))
			return r;
		if (zw_tls_get_state(c->server) == ZW_TLS_FAILED) {
			(void)gnutls_handshake(c->s); /* reads the alert */
			return -1;
		}
	}
	return r;
}

/* The first DNS name in the certificate the client was served. */
static void served_name(struct client *c, char *out, size_t len)
{
	unsigned n = 0;
	const gnutls_datum_t *der = gnutls_certificate_get_peers(c->s, &n);
	gnutls_x509_crt_t crt;
	assert_true(n >= 1);
	assert_int_equal(gnutls_x509_crt_init(&crt), 0);
	assert_int_equal(gnutls_x509_crt_import(crt, &der[0], GNUTLS_X509_FMT_DER), 0);
	size_t sz = len;
	unsigned crit;
	assert_int_equal(gnutls_x509_crt_get_subject_alt_name(crt, 0, out, &sz, &crit),
	                 GNUTLS_SAN_DNSNAME);
	gnutls_x509_crt_deinit(crt);
}

/* Sends msg client -> server and back; checks both arrive. */
static void echo(struct client *c, const char *msg)
{
	size_t n = strlen(msg), used, len;
	assert_int_equal(gnutls_record_send(c->s, msg, n), (ssize_t)n);
	shuttle(c);
	const void *p = zw_tls_plain(c->server, &len);
	assert_int_equal(len, n);
	assert_memory_equal(p, msg, n);
	assert_int_equal(zw_tls_write(c->server, p, len, &used), ZW_TLS_OPEN);
	assert_int_equal(used, n);
	zw_tls_plain_consume(c->server, n);
	shuttle(c);
	char back[256];
	assert_int_equal(gnutls_record_recv(c->s, back, sizeof(back)), (ssize_t)n);
	assert_memory_equal(back, msg, n);
}

struct fixture {
	struct zw_certstore *store;
	struct zw_cert *def, *api, *wild;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(zw_certstore_new(&f->store), 0);
	f->def = make_cert1("default.test", "ns/default");
	f->api = make_cert1("api.test", "ns/api");
	f->wild = make_cert1("*.apps.test", "ns/apps");
	assert_non_null(f->def);
	assert_non_null(f->api);
	assert_non_null(f->wild);
	assert_int_equal(zw_certstore_put(f->store, "ns/default", f->def, ZW_CERTSTORE_DEFAULT), 0);
	assert_int_equal(zw_certstore_put(f->store, "ns/api", f->api, 0), 0);
	assert_int_equal(zw_certstore_put(f->store, "ns/apps", f->wild, 0), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	zw_cert_unref(f->def);
	zw_cert_unref(f->api);
	zw_cert_unref(f->wild);
	zw_certstore_free(f->store);
	free(f);
	return 0;
}

static const char *const both[] = {"h2", "http/1.1"};
static const char *const h1only[] = {"http/1.1"};

static void test_tls13_h2(void **state)
{
	struct fixture *f = *state;
	struct zw_tls *t;
	struct client c;
	char name[256];
	assert_int_equal(zw_tls_new(f->store, NULL, &t), 0);
	assert_int_equal(zw_tls_version(t), 0);
	client_init(&c, t, NULL, "api.test", both, 2);
	assert_int_equal(handshake(&c), 0);
	assert_int_equal(zw_tls_get_state(t), ZW_TLS_OPEN);
	assert_int_equal(zw_tls_version(t), 13);
	assert_int_equal(zw_tls_alpn(t), ZW_TLS_ALPN_H2);
	assert_string_equal(zw_tls_sni(t), "api.test");
	assert_ptr_equal(zw_tls_cert(t), f->api);
	served_name(&c, name, sizeof(name));
	assert_string_equal(name, "api.test");
	assert_int_equal(gnutls_protocol_get_version(c.s), GNUTLS_TLS1_3);
	/* AEAD with forward secrecy: what the policy allows */
	gnutls_cipher_algorithm_t ciph = gnutls_cipher_get(c.s);
	assert_true(ciph == GNUTLS_CIPHER_AES_128_GCM || ciph == GNUTLS_CIPHER_AES_256_GCM ||
	            ciph == GNUTLS_CIPHER_CHACHA20_POLY1305);
	echo(&c, "GET / HTTP/1.1\r\n\r\n");
	echo(&c, "second");
	client_free(&c);
	zw_tls_free(t);
}

static void test_tls12_http11(void **state)
{
	struct fixture *f = *state;
	struct zw_tls *t;
	struct client c;
	assert_int_equal(zw_tls_new(f->store, NULL, &t), 0);
	client_init(&c, t, "NORMAL:-VERS-ALL:+VERS-TLS1.2", "x.apps.test", h1only, 1);
	assert_int_equal(handshake(&c), 0);
	assert_int_equal(zw_tls_version(t), 12);
	assert_int_equal(zw_tls_alpn(t), ZW_TLS_ALPN_HTTP11);
	assert_ptr_equal(zw_tls_cert(t), f->wild);
	assert_int_equal(gnutls_kx_get(c.s), GNUTLS_KX_ECDHE_ECDSA);
	assert_int_equal(gnutls_mac_get(c.s), GNUTLS_MAC_AEAD);
	echo(&c, "hello over 1.2");
	client_free(&c);
	zw_tls_free(t);
}

/* The server prefers h2 even when the client lists http/1.1 first; no ALPN
 * and unknown protocols give NONE. */
static void test_alpn_choice(void **state)
{
	struct fixture *f = *state;
	static const char *const rev[] = {"http/1.1", "h2"};
	static const char *const other[] = {"spdy/3", "h3"};
	struct {
		const char *const *p;
		size_t n;
		enum zw_tls_alpn want;
	} cases[] = {
	        {rev, 2, ZW_TLS_ALPN_H2},
	        {h1only, 1, ZW_TLS_ALPN_HTTP11},
	        {NULL, 0, ZW_TLS_ALPN_NONE},
	        {other, 2, ZW_TLS_ALPN_NONE},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct zw_tls *t;
		struct client c;
		assert_int_equal(zw_tls_new(f->store, NULL, &t), 0);
		client_init(&c, t, NULL, "api.test", cases[i].p, cases[i].n);
		assert_int_equal(handshake(&c), 0);
		assert_int_equal(zw_tls_alpn(t), cases[i].want);
		client_free(&c);
		zw_tls_free(t);
	}
}

static void test_sni_choice(void **state)
{
	struct fixture *f = *state;
	struct {
		const char *sni;
		const struct zw_cert *want;
		const char *name;
	} cases[] = {
	        {"api.test", f->api, "api.test"},
	        {"API.Test", f->api, "api.test"},
	        {"a.apps.test", f->wild, "*.apps.test"},
	        {"a.b.apps.test", f->def, "default.test"}, /* one level only */
	        {"unknown.example", f->def, "default.test"},
	        {NULL, f->def, "default.test"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct zw_tls *t;
		struct client c;
		char name[256];
		assert_int_equal(zw_tls_new(f->store, NULL, &t), 0);
		client_init(&c, t, NULL, cases[i].sni, both, 2);
		assert_int_equal(handshake(&c), 0);
		assert_ptr_equal(zw_tls_cert(t), cases[i].want);
		served_name(&c, name, sizeof(name));
		assert_string_equal(name, cases[i].name);
		assert_string_equal(zw_tls_sni(t), cases[i].sni ? cases[i].sni : "");
		client_free(&c);
		zw_tls_free(t);
	}
}

static void test_no_default(void **state)
{
	(void)state;
	struct zw_certstore *s;
	struct zw_cert *a = make_cert1("only.test", "ns/only");
	struct zw_tls *t;
	struct client c;
	assert_non_null(a);
	assert_int_equal(zw_certstore_new(&s), 0);
	assert_int_equal(zw_certstore_put(s, "ns/only", a, 0), 0);
	assert_int_equal(zw_tls_new(s, NULL, &t), 0);
	client_init(&c, t, NULL, "other.test", both, 2);
	assert_int_not_equal(handshake(&c), 0);
	assert_int_equal(zw_tls_get_state(t), ZW_TLS_FAILED);
	assert_null(zw_tls_cert(t));
	assert_true(strlen(zw_tls_error(t)) > 0);
	client_free(&c);
	zw_tls_free(t);
	zw_cert_unref(a);
	zw_certstore_free(s);
}

/* Versions and ciphers outside the policy are refused. */
static void test_refused(void **state)
{
	struct fixture *f = *state;
	const char *prios[] = {
	        "NORMAL:-VERS-ALL:+VERS-TLS1.1",
	        "NORMAL:-VERS-ALL:+VERS-TLS1.0",
	        "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-CBC:+AES-256-CBC:-MAC-ALL:"
	        "+SHA1:+SHA256",
	        "NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+RSA:+DHE-RSA",
	};
	for (size_t i = 0; i < sizeof(prios) / sizeof(prios[0]); i++) {
		struct zw_tls *t;
		struct client c;
		assert_int_equal(zw_tls_new(f->store, NULL, &t), 0);
		client_init(&c, t, prios[i], "api.test", both, 2);
		assert_int_not_equal(handshake(&c), 0);
		assert_int_equal(zw_tls_get_state(t), ZW_TLS_FAILED);
		assert_false(zw_tls_want_read(t));
		size_t used;
		assert_int_equal(zw_tls_write(t, "x", 1, &used), ZW_TLS_FAILED);
		assert_int_equal(used, 0);
		client_free(&c);
		zw_tls_free(t);
	}
}

/* A renewed certificate serves the next handshake; the running session
 * keeps its own and goes on after the store dropped the old one. */
static void test_renewal(void **state)
{
	struct fixture *f = *state;
	struct zw_tls *t1, *t2;
	struct client c1, c2;
	struct zw_cert *old = make_cert1("renew.test", "ns/renew");
	struct zw_cert *fresh = make_cert1("renew.test", "ns/renew");
	assert_non_null(old);
	assert_non_null(fresh);
	assert_int_equal(zw_certstore_put(f->store, "ns/renew", old, 0), 0);
	zw_cert_unref(old); /* the store holds it alone */

	assert_int_equal(zw_tls_new(f->store, NULL, &t1), 0);
	client_init(&c1, t1, NULL, "renew.test", both, 2);
	assert_int_equal(handshake(&c1), 0);
	assert_ptr_equal(zw_tls_cert(t1), old);
	gnutls_datum_t first = {0};
	unsigned n;
	const gnutls_datum_t *peer = gnutls_certificate_get_peers(c1.s, &n);
	first.size = peer[0].size;
	first.data = malloc(first.size);
	memcpy(first.data, peer[0].data, first.size);

	assert_int_equal(zw_certstore_put(f->store, "ns/renew", fresh, 0), 0);
	zw_cert_unref(fresh);

	assert_int_equal(zw_tls_new(f->store, NULL, &t2), 0);
	client_init(&c2, t2, NULL, "renew.test", both, 2);
	assert_int_equal(handshake(&c2), 0);
	assert_ptr_equal(zw_tls_cert(t2), fresh);
	peer = gnutls_certificate_get_peers(c2.s, &n);
	assert_false(peer[0].size == first.size &&
	             memcmp(peer[0].data, first.data, first.size) == 0);

	/* the old session still works (its certificate lives on its ref) */
	echo(&c1, "still here");
	assert_true(zw_certstore_remove(f->store, "ns/renew"));
	echo(&c1, "and after removal");
	echo(&c2, "new one too");
	free(first.data);
	client_free(&c1);
	zw_tls_free(t1);
	client_free(&c2);
	zw_tls_free(t2);
}

/* A TLS 1.2 client's renegotiation ends the session with an alert. */
static void test_renegotiation_refused(void **state)
{
	struct fixture *f = *state;
	struct zw_tls *t;
	struct client c;
	assert_int_equal(zw_tls_new(f->store, NULL, &t), 0);
	client_init(&c, t, "NORMAL:-VERS-ALL:+VERS-TLS1.2", "api.test", both, 2);
	assert_int_equal(handshake(&c), 0);
	int r = GNUTLS_E_AGAIN;
	for (int i = 0; i < 10 && r == GNUTLS_E_AGAIN; i++) {
		r = gnutls_handshake(c.s);
		shuttle(&c);
	}
	assert_int_equal(r, GNUTLS_E_FATAL_ALERT_RECEIVED);
	assert_int_equal(gnutls_alert_get(c.s), GNUTLS_A_HANDSHAKE_FAILURE);
	assert_int_equal(zw_tls_get_state(t), ZW_TLS_FAILED);
	assert_string_equal(zw_tls_error(t), "client-initiated renegotiation refused");
	client_free(&c);
	zw_tls_free(t);
}

/* A flood of warning alerts in one read ends the session. */
static void test_alert_flood(void **state)
{
	struct fixture *f = *state;
	struct zw_tls *t;
	struct client c;
	assert_int_equal(zw_tls_new(f->store, NULL, &t), 0);
	client_init(&c, t, "NORMAL:-VERS-ALL:+VERS-TLS1.2", "api.test", both, 2);
	assert_int_equal(handshake(&c), 0);
	for (int i = 0; i < 8; i++) /* a few are fine */
		assert_int_equal(gnutls_alert_send(c.s, GNUTLS_AL_WARNING, GNUTLS_A_USER_CANCELED),
		                 0);
	shuttle(&c);
	assert_int_equal(zw_tls_get_state(t), ZW_TLS_OPEN);
	echo(&c, "still open");
	for (int i = 0; i < 40; i++)
		assert_int_equal(gnutls_alert_send(c.s, GNUTLS_AL_WARNING, GNUTLS_A_USER_CANCELED),
		                 0);
	shuttle(&c);
	assert_int_equal(zw_tls_get_state(t), ZW_TLS_FAILED);
	assert_string_equal(zw_tls_error(t), "too many warning alerts in one read");
	client_free(&c);
	zw_tls_free(t);
}

static void test_close_notify(void **state)
{
	struct fixture *f = *state;
	struct zw_tls *t;
	struct client c;
	char buf[64];
	size_t used;
	assert_int_equal(zw_tls_new(f->store, NULL, &t), 0);
	client_init(&c, t, NULL, "api.test", both, 2);
	assert_int_equal(handshake(&c), 0);
	/* server closes: the client reads EOF */
	assert_int_equal(zw_tls_shutdown(t), ZW_TLS_OPEN);
	assert_int_equal(zw_tls_write(t, "x", 1, &used), ZW_TLS_OPEN);
	assert_int_equal(used, 0);
	shuttle(&c);
	assert_int_equal(gnutls_record_recv(c.s, buf, sizeof(buf)), 0);
	/* client's data before its close_notify still arrives */
	assert_int_equal(gnutls_record_send(c.s, "last", 4), 4);
	assert_int_equal(gnutls_bye(c.s, GNUTLS_SHUT_WR), 0);
	shuttle(&c);
	assert_int_equal(zw_tls_get_state(t), ZW_TLS_PEER_CLOSED);
	size_t len;
	const void *p = zw_tls_plain(t, &len);
	assert_int_equal(len, 4);
	assert_memory_equal(p, "last", 4);
	assert_false(zw_tls_want_read(t));
	client_free(&c);
	zw_tls_free(t);
}

static void test_garbage(void **state)
{
	struct fixture *f = *state;
	struct zw_tls *t;
	size_t used, n;
	static const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	assert_int_equal(zw_tls_new(f->store, NULL, &t), 0);
	assert_int_equal(zw_tls_feed(t, junk, sizeof(junk) - 1, &used), ZW_TLS_FAILED);
	assert_true(strlen(zw_tls_error(t)) > 0);
	/* later input is refused */
	assert_int_equal(zw_tls_feed(t, junk, 4, &used), ZW_TLS_FAILED);
	assert_int_equal(used, 0);
	(void)zw_tls_pending(t, &n); /* an alert may be waiting; either way no crash */
	zw_tls_sent(t, n);
	zw_tls_free(t);
}

static void test_bad_limits(void **state)
{
	struct fixture *f = *state;
	struct zw_tls *t = (struct zw_tls *)1;
	struct zw_tls_limits lim = {.max_in = 1000};
	assert_int_equal(zw_tls_new(f->store, &lim, &t), -1);
	assert_null(t);
	assert_int_equal(zw_tls_new(NULL, NULL, &t), -1);
}

/* Bounded buffers: 200 KB each way through small limits. */
static void test_limits(void **state)
{
	struct fixture *f = *state;
	struct zw_tls *t;
	struct client c;
	struct zw_tls_limits lim = {.max_in = ZW_TLS_MIN_IN, .max_plain = 4096, .max_out = 8192};
	enum { TOTAL = 200000 };
	unsigned char *src = malloc(TOTAL), *dst = malloc(TOTAL);
	assert_non_null(src);
	assert_non_null(dst);
	for (size_t i = 0; i < TOTAL; i++)
		src[i] = (unsigned char)(i * 7 + i / 251);
	assert_int_equal(zw_tls_new(f->store, &lim, &t), 0);
	assert_int_equal(zw_tls_in_room(t), lim.max_in);
	client_init(&c, t, NULL, "api.test", both, 2);
	assert_int_equal(handshake(&c), 0);

	/* client -> server: the client writes everything at once */
	size_t sent = 0, got = 0;
	while (sent < TOTAL) {
		ssize_t r = gnutls_record_send(c.s, src + sent, TOTAL - sent);
		assert_true(r > 0);
		sent += (size_t)r;
	}
	/* nobody consumes: the input stops being taken once plaintext and
	 * the ciphertext queue are full */
	size_t used, len, taken = 0;
	for (int i = 0; i < 100; i++) {
		zw_tls_feed(t, c.c2s.buf, c.c2s.len, &used);
		pipe_drop(&c.c2s, used);
		taken += used;
		if (!used)
			break;
	}
	assert_int_equal(used, 0);
	assert_false(zw_tls_want_read(t));
	assert_int_equal(zw_tls_in_room(t), 0);
	(void)zw_tls_plain(t, &len);
	assert_int_equal(len, lim.max_plain);
	/* at most the plaintext, the queue and one record inside GnuTLS */
	assert_true(taken <= lim.max_plain + lim.max_in + ZW_TLS_MIN_IN);
	size_t max_queue = 0;
	while (got < TOTAL) {
		if (c.c2s.len) {
			zw_tls_feed(t, c.c2s.buf, c.c2s.len, &used);
			pipe_drop(&c.c2s, used);
			assert_true(used <= lim.max_in);
		}
		const void *p = zw_tls_plain(t, &len);
		assert_true(len <= lim.max_plain);
		if (len > max_queue)
			max_queue = len;
		assert_true(len > 0);
		memcpy(dst + got, p, len);
		got += len;
		zw_tls_plain_consume(t, len);
	}
	assert_int_equal(max_queue, lim.max_plain);
	assert_memory_equal(src, dst, TOTAL);

	/* server -> client: writes stop at max_out until the caller sends */
	size_t off = 0, rcv = 0;
	memset(dst, 0, TOTAL);
	while (rcv < TOTAL) {
		size_t n;
		if (off < TOTAL) {
			zw_tls_write(t, src + off, TOTAL - off, &used);
			off += used;
			const void *p = zw_tls_pending(t, &n);
			assert_true(n <= lim.max_out + ZW_TLS_RECORD + 256);
			if (off < TOTAL) {
				size_t again;
				zw_tls_write(t, src + off, TOTAL - off, &again);
				assert_int_equal(again, 0);
			}
			pipe_put(&c.s2c, p, n);
			zw_tls_sent(t, n);
		}
		ssize_t r = gnutls_record_recv(c.s, dst + rcv, TOTAL - rcv);
		if (r == GNUTLS_E_AGAIN)
			continue;
		assert_true(r > 0);
		rcv += (size_t)r;
	}
	assert_memory_equal(src, dst, TOTAL);
	free(src);
	free(dst);
	client_free(&c);
	zw_tls_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_tls13_h2),    cmocka_unit_test(test_tls12_http11),
	        cmocka_unit_test(test_alpn_choice), cmocka_unit_test(test_sni_choice),
	        cmocka_unit_test(test_no_default),  cmocka_unit_test(test_refused),
	        cmocka_unit_test(test_renewal),     cmocka_unit_test(test_close_notify),
	        cmocka_unit_test(test_garbage),     cmocka_unit_test(test_bad_limits),
	        cmocka_unit_test(test_limits),      cmocka_unit_test(test_renegotiation_refused),
	        cmocka_unit_test(test_alert_flood),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
