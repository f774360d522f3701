/* Unit tests of proxy/tls.c client sessions (TLS towards backends): a
 * client session against a server session of the same module, in memory:
 * SNI, ALPN, versions, data both ways (a TLS 1.3 session ticket and data in
 * one read), certificate verification with the right CA, a wrong CA and a
 * wrong name, IP literals without SNI, and trust-building errors. */
#include "tls.h"
#include "certgen.h"
#include "certstore.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define NAME "app.default.svc"

struct fixture {
	struct zw_certstore *store;
	char ca_path[64];    /* the CA that signed the server's certificate */
	char other_path[64]; /* a CA that signed nothing of it */
	char empty_path[64]; /* a file without a certificate */
	struct zw_tls_client *none, *right, *wrong;
};

/* Writes text to a new temp file named into path. */
static void write_temp(char *path, size_t cap, const char *text)
{
	snprintf(path, cap, "/tmp/zw-tlsc-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	size_t n = strlen(text);
	assert_int_equal(write(fd, text, n), (ssize_t)n);
	close(fd);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *names[] = {NAME};
	struct zw_cert_request req = {.dns = names, .n_dns = 1, .cert_days = 30};
	struct zw_cert_bundle b = {0}, other = {0};
	char err[ZW_CERT_ERRLEN], err2[ZW_CERTSTORE_ERRLEN], err3[256];
	struct zw_cert *c = NULL;

	assert_non_null(f);
	assert_int_equal(zw_cert_generate(&req, &b, err), ZW_CERT_OK);
	assert_int_equal(zw_cert_generate(&req, &other, err), ZW_CERT_OK);
	assert_int_equal(
	        zw_cert_load(b.cert, strlen(b.cert), b.key, strlen(b.key), "ns/app", &c, err2), 0);
	assert_int_equal(zw_certstore_new(&f->store), 0);
	assert_int_equal(zw_certstore_put(f->store, "ns/app", c, ZW_CERTSTORE_DEFAULT), 0);
	zw_cert_unref(c);
	write_temp(f->ca_path, sizeof(f->ca_path), b.ca_cert);
	write_temp(f->other_path, sizeof(f->other_path), other.ca_cert);
	write_temp(f->empty_path, sizeof(f->empty_path), "not a certificate\n");
	zw_cert_bundle_free(&b);
	zw_cert_bundle_free(&other);
	assert_int_equal(zw_tls_client_new(NULL, false, &f->none, err3, sizeof(err3)), 0);
	assert_int_equal(zw_tls_client_new(f->ca_path, false, &f->right, err3, sizeof(err3)), 0);
	assert_int_equal(zw_tls_client_new(f->other_path, false, &f->wrong, err3, sizeof(err3)), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	zw_tls_client_free(f->none);
	zw_tls_client_free(f->right);
	zw_tls_client_free(f->wrong);
	zw_certstore_free(f->store);
	unlink(f->ca_path);
	unlink(f->other_path);
	unlink(f->empty_path);
	free(f);
	return 0;
}

/* Moves all of from's pending ciphertext into to (one feed). Returns the
 * bytes moved. */
static size_t move(struct zw_tls *from, struct zw_tls *to)
{
	size_t len = 0, used = 0;
	const void *p = zw_tls_pending(from, &len);
	if (!len)
		return 0;
	zw_tls_feed(to, p, len, &used);
	assert_int_equal(used, len);
	zw_tls_sent(from, len);
	return len;
}

/* Runs both sides until neither has anything to send. */
static void pump(struct zw_tls *c, struct zw_tls *s)
{
	for (int i = 0; i < 20; i++)
		if (!move(c, s) && !move(s, c))
			return;
	fail_msg("the sessions keep talking");
}

/* A client session of trust towards name with alpn, and a server session
 * of f's store; the handshake run. */
static void connect_pair(struct fixture *f, const struct zw_tls_client *trust, const char *name,
                         enum zw_tls_alpn alpn, struct zw_tls **c, struct zw_tls **s)
{
	assert_int_equal(zw_tls_new_client(trust, name, alpn, NULL, c), 0);
	assert_int_equal(zw_tls_new(f->store, NULL, s), 0);
	size_t len = 0;
	assert_non_null(zw_tls_pending(*c, &len)); /* the ClientHello, at once */
	assert_true(len > 0);
	assert_int_equal(zw_tls_get_state(*c), ZW_TLS_HANDSHAKE);
	pump(*c, *s);
}

/* Sends msg from `from` to `to` in one feed and checks it arrives whole. */
static void send_msg(struct zw_tls *from, struct zw_tls *to, const char *msg)
{
	size_t used = 0, len = 0;
	zw_tls_write(from, msg, strlen(msg), &used);
	assert_int_equal(used, strlen(msg));
	move(from, to);
	const void *p = zw_tls_plain(to, &len);
	assert_int_equal(len, strlen(msg));
	assert_memory_equal(p, msg, len);
	zw_tls_plain_consume(to, len);
}

static void test_handshake_h2_sni(void **state)
{
	struct fixture *f = *state;
	struct zw_tls *c = NULL, *s = NULL;
	connect_pair(f, f->none, NAME, ZW_TLS_ALPN_H2, &c, &s);
	assert_int_equal(zw_tls_get_state(c), ZW_TLS_OPEN);
	assert_int_equal(zw_tls_get_state(s), ZW_TLS_OPEN);
	assert_string_equal(zw_tls_sni(s), NAME);
	assert_string_equal(zw_tls_sni(c), NAME);
	assert_int_equal(zw_tls_alpn(c), ZW_TLS_ALPN_H2);
	assert_int_equal(zw_tls_alpn(s), ZW_TLS_ALPN_H2);
	assert_int_equal(zw_tls_version(c), 13);
	assert_false(zw_tls_client_verifies(f->none));
	send_msg(c, s, "GET / HTTP/1.1\r\n\r\n");
	send_msg(s, c, "HTTP/1.1 200 OK\r\n\r\n");
	zw_tls_free(c);
	zw_tls_free(s);
}

static void test_alpn_http11(void **state)
{
	struct fixture *f = *state;
	struct zw_tls *c = NULL, *s = NULL;
	connect_pair(f, f->none, NAME, ZW_TLS_ALPN_HTTP11, &c, &s);
	assert_int_equal(zw_tls_alpn(c), ZW_TLS_ALPN_HTTP11);
	assert_int_equal(zw_tls_alpn(s), ZW_TLS_ALPN_HTTP11);
	zw_tls_free(c);
	zw_tls_free(s);
	connect_pair(f, f->none, NAME, ZW_TLS_ALPN_NONE, &c, &s);
	assert_int_equal(zw_tls_get_state(c), ZW_TLS_OPEN);
	assert_int_equal(zw_tls_alpn(c), ZW_TLS_ALPN_NONE);
	assert_int_equal(zw_tls_alpn(s), ZW_TLS_ALPN_NONE);
	zw_tls_free(c);
	zw_tls_free(s);
}

/* The server's first flight after the handshake (a TLS 1.3 session
 * ticket) and its first data arrive in one read: the data comes out of
 * that same feed, not only on the next one. */
static void test_ticket_and_data_in_one_read(void **state)
{
	struct fixture *f = *state;
	struct zw_tls *c = NULL, *s = NULL;
	size_t used = 0, len = 0;
	assert_int_equal(zw_tls_new_client(f->none, NAME, ZW_TLS_ALPN_HTTP11, NULL, &c), 0);
	assert_int_equal(zw_tls_new(f->store, NULL, &s), 0);
	move(c, s); /* ClientHello */
	move(s, c); /* ServerHello .. Finished */
	move(c, s); /* client Finished: the server sends its ticket */
	zw_tls_write(s, "hello", 5, &used);
	assert_int_equal(used, 5);
	move(s, c);
	const void *p = zw_tls_plain(c, &len);
	assert_int_equal(len, 5);
	assert_memory_equal(p, "hello", 5);
	zw_tls_free(c);
	zw_tls_free(s);
}

static void test_verify_right_ca(void **state)
{
	struct fixture *f = *state;
	struct zw_tls *c = NULL, *s = NULL;
	assert_true(zw_tls_client_verifies(f->right));
	connect_pair(f, f->right, NAME, ZW_TLS_ALPN_HTTP11, &c, &s);
	assert_int_equal(zw_tls_get_state(c), ZW_TLS_OPEN);
	assert_false(zw_tls_verify_failed(c));
	assert_string_equal(zw_tls_error(c), "");
	zw_tls_free(c);
	zw_tls_free(s);
}

static void test_verify_wrong_ca(void **state)
{
	struct fixture *f = *state;
	struct zw_tls *c = NULL, *s = NULL;
	connect_pair(f, f->wrong, NAME, ZW_TLS_ALPN_HTTP11, &c, &s);
	assert_int_equal(zw_tls_get_state(c), ZW_TLS_FAILED);
	assert_true(zw_tls_verify_failed(c));
	assert_non_null(strstr(zw_tls_error(c), "certificate verification failed"));
	assert_int_equal(zw_tls_get_state(s), ZW_TLS_FAILED); /* the client's alert */
	size_t used = 0;
	zw_tls_write(c, "x", 1, &used);
	assert_int_equal(used, 0);
	zw_tls_free(c);
	zw_tls_free(s);
}

static void test_verify_wrong_name(void **state)
{
	struct fixture *f = *state;
	struct zw_tls *c = NULL, *s = NULL;
	connect_pair(f, f->right, "other.default.svc", ZW_TLS_ALPN_HTTP11, &c, &s);
	assert_int_equal(zw_tls_get_state(c), ZW_TLS_FAILED);
	assert_true(zw_tls_verify_failed(c));
	assert_non_null(strstr(zw_tls_error(c), "name"));
	zw_tls_free(c);
	zw_tls_free(s);
}

static void test_ip_literal_sends_no_sni(void **state)
{
	struct fixture *f = *state;
	struct zw_tls *c = NULL, *s = NULL;
	connect_pair(f, f->none, "10.1.2.3", ZW_TLS_ALPN_HTTP11, &c, &s);
	assert_int_equal(zw_tls_get_state(c), ZW_TLS_OPEN);
	assert_string_equal(zw_tls_sni(s), "");
	zw_tls_free(c);
	zw_tls_free(s);
	connect_pair(f, f->none, "fd00::1", ZW_TLS_ALPN_HTTP11, &c, &s);
	assert_string_equal(zw_tls_sni(s), "");
	zw_tls_free(c);
	zw_tls_free(s);
}

static void test_trust_errors(void **state)
{
	struct fixture *f = *state;
	struct zw_tls_client *t = (struct zw_tls_client *)1;
	struct zw_tls *c = (struct zw_tls *)1;
	char err[256];
	assert_int_equal(zw_tls_client_new("/nonexistent/ca.pem", false, &t, err, sizeof(err)), -1);
	assert_null(t);
	assert_non_null(strstr(err, "/nonexistent/ca.pem"));
	assert_int_equal(zw_tls_client_new(f->empty_path, false, &t, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no PEM certificate"));
	char longname[300];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(zw_tls_new_client(f->none, longname, ZW_TLS_ALPN_H2, NULL, &c), -1);
	assert_null(c);
	struct zw_tls_limits bad = {.max_in = 100};
	assert_int_equal(zw_tls_new_client(f->none, NAME, ZW_TLS_ALPN_H2, &bad, &c), -1);
	zw_tls_client_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_handshake_h2_sni),
	        cmocka_unit_test(test_alpn_http11),
	        cmocka_unit_test(test_ticket_and_data_in_one_read),
	        cmocka_unit_test(test_verify_right_ca),
	        cmocka_unit_test(test_verify_wrong_ca),
	        cmocka_unit_test(test_verify_wrong_name),
	        cmocka_unit_test(test_ip_literal_sends_no_sni),
	        cmocka_unit_test(test_trust_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
