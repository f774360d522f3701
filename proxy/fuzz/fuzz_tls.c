/* libFuzzer target: arbitrary bytes as the ClientHello and records a TLS
 * server session (tls.c) receives. The input is fed whole, then in the
 * loop a caller would run (tlsfuzz_common.c): feed what is left, take
 * plaintext, answer with a write once open, send what is pending, close at
 * the end. Nothing may crash, leak or exceed the session's limits. Seeds
 * (real ClientHellos of OpenSSL through Python: TLS 1.3 with h2 and SNI,
 * TLS 1.2 only, no SNI, ...): proxy/fuzz/corpus/fuzz_tls/, written by
 * make_tls_corpus.py. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tlsfuzz_common.h"

static struct zw_certstore *store;

/* A default certificate and a wildcard one, made once. */
static void init_store(void)
{
	static const char *const names[] = {"fuzz.test", "*.w.fuzz.test"};
	struct zw_cert_bundle b = {0};
	char err[ZW_CERTSTORE_ERRLEN];
	struct zw_cert *c = NULL;

	zw_tlsfuzz_cert(names, 2, &b);
	if (zw_certstore_new(&store) != 0 ||
	    zw_cert_load(b.cert, strlen(b.cert), b.key, strlen(b.key), "fuzz", &c, err) != 0 ||
	    zw_certstore_put(store, "fuzz", c, ZW_CERTSTORE_DEFAULT) != 0)
		abort();
	zw_cert_unref(c);
	zw_cert_bundle_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zw_tls *t = NULL;

	if (!store)
		init_store();
	if (zw_tls_new(store, &zw_tlsfuzz_limits, &t) != 0)
		abort();
	zw_tlsfuzz_run(t, data, size);
	return 0;
}
