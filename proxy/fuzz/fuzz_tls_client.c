/* libFuzzer target: arbitrary bytes as the server's flights and records a
 * TLS client session (tls.c, zw_tls_new_client: TLS towards backends)
 * receives after its ClientHello, with certificate verification on (a CA
 * made once) or off, and ALPN h2 or http/1.1, chosen by the first input
 * byte. The rest is fed in the loop upstream.c runs (tlsfuzz_common.c):
 * feed what is left, take plaintext, answer with a write once open, send
 * what is pending. Nothing may crash, leak or exceed the session's limits.
 * Seeds (server flights of OpenSSL through Python: TLS 1.3 with h2, TLS 1.2
 * with http/1.1, no ALPN, an alert): proxy/fuzz/corpus/fuzz_tls_client/,
 * written by make_tls_client_corpus.py. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tlsfuzz_common.h"

static struct zw_tls_client *plain, *verify;

/* Trust without and with a CA file, made once. */
static void init_trust(void)
{
	static const char *const names[] = {"app.default.svc"};
	struct zw_cert_bundle b = {0};
	char err[256], path[] = "/tmp/zw-fuzz-ca-XXXXXX";
	int fd;

	zw_tlsfuzz_cert(names, 1, &b);
	if ((fd = mkstemp(path)) < 0 ||
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
	struct zw_tls *t = NULL;
	size_t n;

	if (!plain)
		init_trust();
	if (size < 1)
		return 0;
	if (zw_tls_new_client(data[0] & 1 ? verify : plain, "app.default.svc",
	                      data[0] & 2 ? ZW_TLS_ALPN_H2 : ZW_TLS_ALPN_HTTP11, &zw_tlsfuzz_limits,
	                      &t) != 0)
		abort();
	(void)zw_tls_pending(t, &n); /* the ClientHello */
	zw_tls_sent(t, n);
	zw_tlsfuzz_run(t, data + 1, size - 1);
	return 0;
}
