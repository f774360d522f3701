/* Shared pieces of the TLS fuzz targets; see tlsfuzz_common.h. */
#include "tlsfuzz_common.h"

#include <stdlib.h>

const struct zw_tls_limits zw_tlsfuzz_limits = {
        .max_in = ZW_TLS_MIN_IN, .max_plain = 4096, .max_out = 8192};

void zw_tlsfuzz_cert(const char *const *names, size_t n, struct zw_cert_bundle *b)
{
	struct zw_cert_request req = {.dns = names, .n_dns = n};
	char err[ZW_CERT_ERRLEN];

	if (zw_cert_generate(&req, b, err) != ZW_CERT_OK)
		abort();
}

void zw_tlsfuzz_run(struct zw_tls *t, const uint8_t *data, size_t size)
{
	const struct zw_tls_limits *lim = &zw_tlsfuzz_limits;
	size_t off = 0, used, n;

	for (int round = 0; round < 64; round++) {
		enum zw_tls_state st = zw_tls_feed(t, data + off, size - off, &used);
		if (used > lim->max_in)
			abort();
		off += used;
		const void *p = zw_tls_plain(t, &n);
		if (n > lim->max_plain)
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
	(void)zw_tls_cert(t);
	(void)zw_tls_verify_failed(t);
	(void)zw_tls_error(t);
	zw_tls_free(t);
}
