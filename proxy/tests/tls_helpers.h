/* Test helpers for the TLS unit tests: certificates made with lib/certgen
 * and loaded into certstore.h certificates. Header-only (static functions). */
#ifndef ZW_TEST_TLS_HELPERS_H
#define ZW_TEST_TLS_HELPERS_H

#include "certgen.h"
#include "certstore.h"

#include <string.h>

/* A new certificate for names[0..n) (CN names[0]); NULL on failure. */
static struct zw_cert *make_cert(const char *const *names, size_t n, const char *source)
{
	struct zw_cert_request req = {.dns = names, .n_dns = n, .cert_days = 30};
	struct zw_cert_bundle b = {0};
	char err[ZW_CERT_ERRLEN], err2[ZW_CERTSTORE_ERRLEN];
	struct zw_cert *c = NULL;

	if (zw_cert_generate(&req, &b, err) != ZW_CERT_OK)
		return NULL;
	if (zw_cert_load(b.cert, strlen(b.cert), b.key, strlen(b.key), source, &c, err2) != 0)
		c = NULL;
	zw_cert_bundle_free(&b);
	return c;
}

static struct zw_cert *make_cert1(const char *name, const char *source)
{
	return make_cert(&name, 1, source);
}

#endif
