/* libFuzzer target: arbitrary bytes as the server's flights and records a
 * TLS client session (tls.c, zw_tls_new_client: TLS towards backends)
 * receives after its ClientHello, with certificate verification on (a CA
 * made once) or off, and ALPN h2 or http/1.1, chosen by the first input
 * byte. The rest is fed in the loop upstream.c runs: feed what is left,
 * take plaintext, answer with a write once open, send what is pending.
 * Nothing may crash, leak or exceed the session's limits. Seeds (server
 * flights of OpenSSL through Python: TLS 1.3 with h2, TLS 1.2 with
 * http/1.1, no ALPN, an alert): proxy/fuzz/corpus/fuzz_tls_client/,
 * written by make_tls_client_corpus.py. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "certgen.h"
#include "tls.h"

static struct zw_tls_client *plain, *verify;

/* Trust without and with a CA file, made once. */
static void init_trust(void)
{
	const char *names[] = {"app.default.svc"};
	struct zw_cert_request req = {.dns = names, .n_dns = 1};
	struct zw_cert_bundle b = {0};
	char e[ZW_CERT_ERRLEN], err[256], path[] = "/tmp/zw-fuzz-ca-XXXXXX";
	int fd;
	if (zw_cert_generate(&req, &b, e) != ZW_CERT_OK || (fd = mkstemp(path)) < 0 ||
	    write(fd, b.ca_cert, strlen(b.ca_cert)) != (ssize_t)strlen(b.ca_cert) ||
	    zw_tls_client_new(NULL, false, &plain, err, sizeof(err)) != 0 ||
	    zw_tls_client_new(path, false, &verify, err, sizeof(err)) != 0)
		abort();
	close(fd);
	unlink(path);
	zw_cert_bundle_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zw_tls_limits lim = {.max_in = ZW_TLS_MIN_IN, .max_plain = 4096, .max_out = 8192};
	struct zw_tls *t = NULL;
	size_t off = 1, used, n;

	if (!plain)
		init_trust();
	if (size < 1)
		return 0;
	if (zw_tls_new_client(data[0] & 1 ? verify : plain, "app.default.svc",
	                      data[0] & 2 ? ZW_TLS_ALPN_H2 : ZW_TLS_ALPN_HTTP11, &lim, &t) != 0)
		abort();
	(void)zw_tls_pending(t, &n); /* the ClientHello */
	zw_tls_sent(t, n);
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
	(void)zw_tls_verify_failed(t);
	(void)zw_tls_error(t);
	zw_tls_free(t);
	return 0;
}
