/* Unit tests for lib/certgen.c: generation, issuing from an existing CA,
 * verification with GnuTLS, SANs, expiry margins and bad input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <string.h>

#include "certgen.h"

static const char *const dns[] = {"zerowire-webhook", "zerowire-webhook.zerowire.svc"};
static const char *const ips[] = {"127.0.0.1", "::1"};

static struct zw_cert_request base_req(void)
{
	struct zw_cert_request r = {0};

	r.dns = dns;
	r.n_dns = 2;
	r.ips = ips;
	r.n_ips = 2;
	return r;
}

static void verify_with_gnutls(const struct zw_cert_bundle *b)
{
	gnutls_x509_crt_t ca, crt;
	gnutls_datum_t d;
	unsigned status = 99;

	assert_int_equal(gnutls_x509_crt_init(&ca), 0);
	assert_int_equal(gnutls_x509_crt_init(&crt), 0);
	d.data = (unsigned char *)b->ca_cert;
	d.size = (unsigned)strlen(b->ca_cert);
	assert_int_equal(gnutls_x509_crt_import(ca, &d, GNUTLS_X509_FMT_PEM), 0);
	d.data = (unsigned char *)b->cert;
	d.size = (unsigned)strlen(b->cert);
	assert_int_equal(gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM), 0);
	assert_int_equal(gnutls_x509_crt_verify(crt, &ca, 1, 0, &status), 0);
	assert_int_equal(status, 0);
	assert_true(gnutls_x509_crt_check_hostname(crt, "zerowire-webhook.zerowire.svc"));
	assert_true(gnutls_x509_crt_check_ip(crt, (const unsigned char *)"\x7f\0\0\x01", 4, 0));
	assert_false(gnutls_x509_crt_check_hostname(crt, "evil.example"));
	assert_int_equal(gnutls_x509_crt_get_ca_status(ca, NULL), 1);
	assert_int_equal(gnutls_x509_crt_get_ca_status(crt, NULL), 0);
	/* CA 10 years, serving certificate 1 year (both backdated one hour). */
	time_t now = time(NULL);
	assert_in_range(gnutls_x509_crt_get_expiration_time(ca) - now, 3649L * 86400,
	                3650L * 86400 + 60);
	assert_in_range(gnutls_x509_crt_get_expiration_time(crt) - now, 364L * 86400,
	                365L * 86400 + 60);
	gnutls_x509_crt_deinit(ca);
	gnutls_x509_crt_deinit(crt);
}

static void test_generate_and_check(void **state)
{
	(void)state;
	struct zw_cert_request r = base_req();
	struct zw_cert_bundle b;
	char err[ZW_CERT_ERRLEN];

	assert_int_equal(zw_cert_generate(&r, &b, err), ZW_CERT_OK);
	assert_non_null(strstr(b.ca_cert, "BEGIN CERTIFICATE"));
	assert_non_null(strstr(b.key, "PRIVATE KEY"));
	verify_with_gnutls(&b);
	assert_int_equal(zw_cert_check(&b, &r, 30, err), ZW_CERT_OK);
	zw_cert_bundle_free(&b);
	zw_cert_bundle_free(&b); /* idempotent */
}

static void test_check_detects_problems(void **state)
{
	(void)state;
	struct zw_cert_request r = base_req(), other = base_req();
	struct zw_cert_bundle a, b, mixed;
	char err[ZW_CERT_ERRLEN];
	static const char *const missing[] = {"not-in-cert.example"};

	assert_int_equal(zw_cert_generate(&r, &a, err), ZW_CERT_OK);
	assert_int_equal(zw_cert_generate(&r, &b, err), ZW_CERT_OK);

	/* Signed by another CA. */
	mixed = a;
	mixed.ca_cert = b.ca_cert;
	assert_int_equal(zw_cert_check(&mixed, &r, 30, err), ZW_CERT_EINVAL);
	assert_non_null(strstr(err, "not signed by the CA"));

	/* Key of another certificate. */
	mixed = a;
	mixed.key = b.key;
	assert_int_equal(zw_cert_check(&mixed, &r, 30, err), ZW_CERT_EINVAL);
	assert_non_null(strstr(err, "key does not match"));

	/* A name the certificate lacks. */
	other.dns = missing;
	other.n_dns = 1;
	assert_int_equal(zw_cert_check(&a, &other, 30, err), ZW_CERT_EINVAL);
	assert_non_null(strstr(err, "not-in-cert.example"));

	/* Within the renewal margin, and past expiry. */
	other = base_req();
	other.now = time(NULL) + 340L * 86400;
	assert_int_equal(zw_cert_check(&a, &other, 30, err), ZW_CERT_RENEW);
	other.now = time(NULL) + 400L * 86400;
	assert_int_equal(zw_cert_check(&a, &other, 30, err), ZW_CERT_EINVAL);

	/* Garbage PEM and missing parts. */
	mixed = a;
	mixed.cert = "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n";
	assert_int_equal(zw_cert_check(&mixed, &r, 30, err), ZW_CERT_EINVAL);
	mixed.cert = NULL;
	assert_int_equal(zw_cert_check(&mixed, &r, 30, err), ZW_CERT_EINVAL);

	zw_cert_bundle_free(&a);
	zw_cert_bundle_free(&b);
}

static void test_issue_from_existing_ca(void **state)
{
	(void)state;
	struct zw_cert_request r = base_req();
	struct zw_cert_bundle a, b, c;
	char err[ZW_CERT_ERRLEN];

	assert_int_equal(zw_cert_generate(&r, &a, err), ZW_CERT_OK);
	assert_int_equal(zw_cert_issue(a.ca_cert, a.ca_key, &r, &b, err), ZW_CERT_OK);
	assert_string_equal(a.ca_cert, b.ca_cert);
	assert_string_not_equal(a.cert, b.cert);
	verify_with_gnutls(&b);
	assert_int_equal(zw_cert_check(&b, &r, 30, err), ZW_CERT_OK);
	assert_int_equal(zw_cert_issue("junk", a.ca_key, &r, &c, err), ZW_CERT_EINVAL);
	zw_cert_bundle_free(&a);
	zw_cert_bundle_free(&b);
}

static void test_bad_requests(void **state)
{
	(void)state;
	struct zw_cert_request r = {0};
	struct zw_cert_bundle b;
	char err[ZW_CERT_ERRLEN];
	static const char *const bad_ip[] = {"300.1.1.1"};
	static const char *const bad_dns[] = {"has space"};

	assert_int_equal(zw_cert_generate(&r, &b, err), ZW_CERT_EINVAL);
	assert_non_null(strstr(err, "at least one"));
	r.ips = bad_ip;
	r.n_ips = 1;
	assert_int_equal(zw_cert_generate(&r, &b, err), ZW_CERT_EINVAL);
	assert_non_null(strstr(err, "300.1.1.1"));
	r.n_ips = 0;
	r.dns = bad_dns;
	r.n_dns = 1;
	assert_int_equal(zw_cert_generate(&r, &b, err), ZW_CERT_EINVAL);
}

static void test_service_names(void **state)
{
	(void)state;
	char names[ZW_CERT_SERVICE_NAMES][ZW_CERT_NAME_MAX];
	char longname[300];

	assert_int_equal(zw_cert_service_names("wh", "zw", names), 0);
	assert_string_equal(names[0], "wh");
	assert_string_equal(names[1], "wh.zw");
	assert_string_equal(names[2], "wh.zw.svc");
	assert_string_equal(names[3], "wh.zw.svc.cluster.local");
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(zw_cert_service_names(longname, "zw", names), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_generate_and_check),
	        cmocka_unit_test(test_check_detects_problems),
	        cmocka_unit_test(test_issue_from_existing_ca),
	        cmocka_unit_test(test_bad_requests),
	        cmocka_unit_test(test_service_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
