/* libFuzzer target: arbitrary bytes as the ClientHello and records a TLS
 * server session (tls.c) receives. The input is fed whole, then in the
 * loop a caller would run: feed what is left, take plaintext, answer with
 * a write once open, send what is pending, close at the end. Nothing may
 * crash, leak or exceed the session's limits. Seeds (real ClientHellos of
 * OpenSSL through Python: TLS 1.3 with h2 and SNI, TLS 1.2 only, no SNI,
 * ...): proxy/fuzz/corpus/fuzz_tls/, written by make_tls_corpus.py. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "certgen.h"
#include "tls.h"

static struct zw_certstore *store;

/* A default certificate and a wildcard one, made once. */
static void init_store(void)
{
	const char *names[] = {"fuzz.test", "*.w.fuzz.test"};
	struct zw_cert_request req = {.dns = names, .n_dns = 2};
	struct zw_cert_bundle b = {0};
	char e[ZW_CERT_ERRLEN], err[ZW_CERTSTORE_ERRLEN];
	struct zw_cert *c = NULL;
	if (zw_certstore_new(&store) != 0 || zw_cert_generate(&req, &b, e) != ZW_CERT_OK ||
	    zw_cert_load(b.cert, strlen(b.cert), b.key, strlen(b.key), "fuzz", &c, err) != 0 ||
	    zw_certstore_put(store, "fuzz", c, ZW_CERTSTORE_DEFAULT) != 0)
		abort();
	zw_cert_unref(c);
	zw_cert_bundle_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zw_tls_limits lim = {.max_in = ZW_TLS_MIN_IN, .max_plain = 4096, .max_out = 8192};
	struct zw_tls *t = NULL;
	size_t off = 0, used, n;

	if (!store)
		init_store();
	if (zw_tls_new(store, &lim, &t) != 0)
		abort();
	for (int round = 0; round < 64; round++) {
		enum zw_tls_state st = zw_tls_feed(t, data + off, size - off, &used);
		if (used > lim.max_in)
			abort();
		off += used;
		const void *p = zw_tls_plain(t, &n);
		if (n > lim.max_plain)
			abort();
		if (n) {
			zw_tls_write(t, p, n, &used);
			zw_tls_plain_consume(t, n);
		}
		(void)zw_tls_pending(t, &n);
		zw_tls_sent(t, n);
		if (st == ZW_TLS_FAILED || st == ZW_TLS_PEER_CLOSED || (off == size && !used))
			break;
	}
	zw_tls_shutdown(t);
	(void)zw_tls_alpn(t);
	(void)zw_tls_version(t);
	(void)zw_tls_sni(t);
	zw_tls_free(t);
	return 0;
}
