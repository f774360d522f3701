/* Certificate generation and checking; see certgen.h. */
#include "certgen.h"

#include <arpa/inet.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CA_DAYS   3650
#define DEFAULT_CERT_DAYS 365
#define BACKDATE_SECONDS  3600 /* tolerate clock skew between nodes */
#define DAY_SECONDS       86400

static char *datum_to_string(const gnutls_datum_t *d)
{
	char *s = malloc(d->size + 1);

	if (s) {
		memcpy(s, d->data, d->size);
		s[d->size] = '\0';
	}
	return s;
}

static int gtls_err(char err[ZW_CERT_ERRLEN], const char *what, int rc)
{
	snprintf(err, ZW_CERT_ERRLEN, "%s: %s", what, gnutls_strerror(rc));
	return ZW_CERT_EGNUTLS;
}

static time_t req_now(const struct zw_cert_request *req)
{
	return req->now ? req->now : time(NULL);
}

static int validate_request(const struct zw_cert_request *req, char err[ZW_CERT_ERRLEN])
{
	unsigned char addr[16];

	if (req->n_dns + req->n_ips == 0) {
		snprintf(err, ZW_CERT_ERRLEN, "at least one DNS name or IP address is required");
		return ZW_CERT_EINVAL;
	}
	if (req->n_dns + req->n_ips > ZW_CERT_MAX_NAMES) {
		snprintf(err, ZW_CERT_ERRLEN, "at most %d names", ZW_CERT_MAX_NAMES);
		return ZW_CERT_EINVAL;
	}
	for (size_t i = 0; i < req->n_dns; i++) {
		if (!req->dns[i][0] || strlen(req->dns[i]) > 253 || strpbrk(req->dns[i], " /:@")) {
			snprintf(err, ZW_CERT_ERRLEN, "\"%s\" is not a DNS name", req->dns[i]);
			return ZW_CERT_EINVAL;
		}
	}
	for (size_t i = 0; i < req->n_ips; i++) {
		if (inet_pton(AF_INET, req->ips[i], addr) != 1 &&
		    inet_pton(AF_INET6, req->ips[i], addr) != 1) {
			snprintf(err, ZW_CERT_ERRLEN, "\"%s\" is not an IP address", req->ips[i]);
			return ZW_CERT_EINVAL;
		}
	}
	return ZW_CERT_OK;
}

/* Parses a textual address into binary form; returns its length or 0. */
static size_t ip_bytes(const char *text, unsigned char out[16])
{
	if (inet_pton(AF_INET, text, out) == 1)
		return 4;
	if (inet_pton(AF_INET6, text, out) == 1)
		return 16;
	return 0;
}

static int new_key(gnutls_x509_privkey_t *key, char err[ZW_CERT_ERRLEN])
{
	int rc = gnutls_x509_privkey_init(key);

	if (rc < 0)
		return gtls_err(err, "privkey init", rc);
	rc = gnutls_x509_privkey_generate(*key, GNUTLS_PK_ECDSA,
	                                  GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
	if (rc < 0) {
		gnutls_x509_privkey_deinit(*key);
		*key = NULL;
		return gtls_err(err, "key generation", rc);
	}
	return ZW_CERT_OK;
}

/* Common fields of both certificates: version, random positive serial,
 * validity, subject CN and public key. */
static int init_crt(gnutls_x509_crt_t *crt, gnutls_x509_privkey_t key, const char *cn, time_t now,
                    unsigned days, char err[ZW_CERT_ERRLEN])
{
	unsigned char serial[16];
	int rc;

	rc = gnutls_x509_crt_init(crt);
	if (rc < 0)
		return gtls_err(err, "crt init", rc);
	rc = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial));
	if (rc < 0)
		goto fail;
	serial[0] &= 0x7f;
	serial[0] |= 0x01;
	if ((rc = gnutls_x509_crt_set_version(*crt, 3)) < 0 ||
	    (rc = gnutls_x509_crt_set_serial(*crt, serial, sizeof(serial))) < 0 ||
	    (rc = gnutls_x509_crt_set_activation_time(*crt, now - BACKDATE_SECONDS)) < 0 ||
	    (rc = gnutls_x509_crt_set_expiration_time(*crt, now + (time_t)days * DAY_SECONDS)) <
	            0 ||
	    (rc = gnutls_x509_crt_set_dn_by_oid(*crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
	                                        strlen(cn))) < 0 ||
	    (rc = gnutls_x509_crt_set_key(*crt, key)) < 0)
		goto fail;
	return ZW_CERT_OK;
fail:
	gnutls_x509_crt_deinit(*crt);
	*crt = NULL;
	return gtls_err(err, "certificate fields", rc);
}

static int set_key_id(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key)
{
	unsigned char id[64];
	size_t len = sizeof(id);
	int rc = gnutls_x509_privkey_get_key_id(key, 0, id, &len);

	return rc < 0 ? rc : gnutls_x509_crt_set_subject_key_id(crt, id, len);
}

static int export_pair(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key, char **crt_pem,
                       char **key_pem, char err[ZW_CERT_ERRLEN])
{
	gnutls_datum_t d = {NULL, 0};
	int rc;

	rc = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &d);
	if (rc < 0)
		return gtls_err(err, "export certificate", rc);
	*crt_pem = datum_to_string(&d);
	gnutls_free(d.data);
	rc = gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN,
	                                       &d);
	if (rc < 0)
		return gtls_err(err, "export key", rc);
	*key_pem = datum_to_string(&d);
	gnutls_free(d.data);
	if (!*crt_pem || !*key_pem) {
		snprintf(err, ZW_CERT_ERRLEN, "out of memory");
		return ZW_CERT_EGNUTLS;
	}
	return ZW_CERT_OK;
}

static int import_crt(const char *pem, gnutls_x509_crt_t *crt)
{
	gnutls_datum_t d = {(unsigned char *)pem, (unsigned)strlen(pem)};
	int rc = gnutls_x509_crt_init(crt);

	if (rc < 0)
		return rc;
	rc = gnutls_x509_crt_import(*crt, &d, GNUTLS_X509_FMT_PEM);
	if (rc < 0) {
		gnutls_x509_crt_deinit(*crt);
		*crt = NULL;
	}
	return rc;
}

static int import_key(const char *pem, gnutls_x509_privkey_t *key)
{
	gnutls_datum_t d = {(unsigned char *)pem, (unsigned)strlen(pem)};
	int rc = gnutls_x509_privkey_init(key);

	if (rc < 0)
		return rc;
	rc = gnutls_x509_privkey_import2(*key, &d, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN);
	if (rc < 0) {
		gnutls_x509_privkey_deinit(*key);
		*key = NULL;
	}
	return rc;
}

/* Signs a serving certificate for req with (ca_crt, ca_key) into out. */
static int issue_with(gnutls_x509_crt_t ca_crt, gnutls_x509_privkey_t ca_key,
                      const struct zw_cert_request *req, struct zw_cert_bundle *out,
                      char err[ZW_CERT_ERRLEN])
{
	gnutls_x509_privkey_t key = NULL;
	gnutls_x509_crt_t crt = NULL;
	unsigned char id[64], addr[16];
	size_t len = sizeof(id);
	const char *cn = req->common_name ? req->common_name
	                 : req->n_dns     ? req->dns[0]
	                                  : req->ips[0];
	int rc;

	rc = new_key(&key, err);
	if (rc)
		goto out;
	rc = init_crt(&crt, key, cn, req_now(req),
	              req->cert_days ? req->cert_days : DEFAULT_CERT_DAYS, err);
	if (rc)
		goto out;
	if ((rc = gnutls_x509_crt_set_basic_constraints(crt, 0, -1)) < 0 ||
	    (rc = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE |
	                                                     GNUTLS_KEY_KEY_ENCIPHERMENT)) < 0 ||
	    (rc = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0)) < 0 ||
	    (rc = set_key_id(crt, key)) < 0 ||
	    (rc = gnutls_x509_crt_get_subject_key_id(ca_crt, id, &len, NULL)) < 0 ||
	    (rc = gnutls_x509_crt_set_authority_key_id(crt, id, len)) < 0) {
		rc = gtls_err(err, "serving certificate fields", rc);
		goto out;
	}
	for (size_t i = 0; i < req->n_dns; i++) {
		rc = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, req->dns[i],
		                                          strlen(req->dns[i]), GNUTLS_FSAN_APPEND);
		if (rc < 0) {
			rc = gtls_err(err, "DNS name", rc);
			goto out;
		}
	}
	for (size_t i = 0; i < req->n_ips; i++) {
		size_t n = ip_bytes(req->ips[i], addr);
		rc = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, addr, n,
		                                          GNUTLS_FSAN_APPEND);
		if (rc < 0) {
			rc = gtls_err(err, "IP address", rc);
			goto out;
		}
	}
	rc = gnutls_x509_crt_sign2(crt, ca_crt, ca_key, GNUTLS_DIG_SHA256, 0);
	if (rc < 0) {
		rc = gtls_err(err, "sign serving certificate", rc);
		goto out;
	}
	rc = export_pair(crt, key, &out->cert, &out->key, err);
out:
	if (crt)
		gnutls_x509_crt_deinit(crt);
	if (key)
		gnutls_x509_privkey_deinit(key);
	return rc;
}

int zw_cert_generate(const struct zw_cert_request *req, struct zw_cert_bundle *out,
                     char err[ZW_CERT_ERRLEN])
{
	gnutls_x509_privkey_t ca_key = NULL;
	gnutls_x509_crt_t ca_crt = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = validate_request(req, err);
	if (rc)
		return rc;
	rc = new_key(&ca_key, err);
	if (rc)
		goto out;
	rc = init_crt(&ca_crt, ca_key, "zerowire-ca", req_now(req),
	              req->ca_days ? req->ca_days : DEFAULT_CA_DAYS, err);
	if (rc)
		goto out;
	if ((rc = gnutls_x509_crt_set_basic_constraints(ca_crt, 1, 0)) < 0 ||
	    (rc = gnutls_x509_crt_set_key_usage(ca_crt,
	                                        GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN |
	                                                GNUTLS_KEY_DIGITAL_SIGNATURE)) < 0 ||
	    (rc = set_key_id(ca_crt, ca_key)) < 0 ||
	    (rc = gnutls_x509_crt_sign2(ca_crt, ca_crt, ca_key, GNUTLS_DIG_SHA256, 0)) < 0) {
		rc = gtls_err(err, "CA certificate", rc);
		goto out;
	}
	rc = export_pair(ca_crt, ca_key, &out->ca_cert, &out->ca_key, err);
	if (rc)
		goto out;
	rc = issue_with(ca_crt, ca_key, req, out, err);
out:
	if (ca_crt)
		gnutls_x509_crt_deinit(ca_crt);
	if (ca_key)
		gnutls_x509_privkey_deinit(ca_key);
	if (rc)
		zw_cert_bundle_free(out);
	return rc;
}

int zw_cert_issue(const char *ca_cert, const char *ca_key, const struct zw_cert_request *req,
                  struct zw_cert_bundle *out, char err[ZW_CERT_ERRLEN])
{
	gnutls_x509_privkey_t key = NULL;
	gnutls_x509_crt_t crt = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = validate_request(req, err);
	if (rc)
		return rc;
	if (import_crt(ca_cert, &crt) < 0 || import_key(ca_key, &key) < 0) {
		snprintf(err, ZW_CERT_ERRLEN, "CA certificate or key is not valid PEM");
		rc = ZW_CERT_EINVAL;
		goto out;
	}
	out->ca_cert = strdup(ca_cert);
	out->ca_key = strdup(ca_key);
	if (!out->ca_cert || !out->ca_key) {
		snprintf(err, ZW_CERT_ERRLEN, "out of memory");
		rc = ZW_CERT_EGNUTLS;
		goto out;
	}
	rc = issue_with(crt, key, req, out, err);
out:
	if (crt)
		gnutls_x509_crt_deinit(crt);
	if (key)
		gnutls_x509_privkey_deinit(key);
	if (rc)
		zw_cert_bundle_free(out);
	return rc;
}

/* Returns 1 when crt carries the SAN (type, data, len). */
static int has_san(gnutls_x509_crt_t crt, unsigned type, const void *data, size_t len)
{
	char buf[256];

	for (unsigned i = 0;; i++) {
		size_t n = sizeof(buf);
		int t = gnutls_x509_crt_get_subject_alt_name(crt, i, buf, &n, NULL);
		if (t == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			return 0;
		if (t < 0)
			continue;
		if ((unsigned)t == type && n == len && memcmp(buf, data, len) == 0)
			return 1;
	}
}

static int same_key(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key)
{
	unsigned char a[64], b[64];
	size_t la = sizeof(a), lb = sizeof(b);

	if (gnutls_x509_crt_get_key_id(crt, 0, a, &la) < 0 ||
	    gnutls_x509_privkey_get_key_id(key, 0, b, &lb) < 0)
		return 0;
	return la == lb && memcmp(a, b, la) == 0;
}

int zw_cert_check(const struct zw_cert_bundle *b, const struct zw_cert_request *req,
                  unsigned margin_days, char err[ZW_CERT_ERRLEN])
{
	gnutls_x509_crt_t ca = NULL, crt = NULL;
	gnutls_x509_privkey_t key = NULL;
	unsigned status = 0;
	unsigned char addr[16];
	time_t now = req_now(req), margin = (time_t)margin_days * DAY_SECONDS;
	int rc = ZW_CERT_EINVAL;

	if (!b->ca_cert || !b->cert || !b->key) {
		snprintf(err, ZW_CERT_ERRLEN, "CA certificate, certificate or key missing");
		return ZW_CERT_EINVAL;
	}
	if (import_crt(b->ca_cert, &ca) < 0) {
		snprintf(err, ZW_CERT_ERRLEN, "CA certificate is not valid PEM");
		goto out;
	}
	if (import_crt(b->cert, &crt) < 0 || import_key(b->key, &key) < 0) {
		snprintf(err, ZW_CERT_ERRLEN, "certificate or key is not valid PEM");
		goto out;
	}
	if (!same_key(crt, key)) {
		snprintf(err, ZW_CERT_ERRLEN, "key does not match certificate");
		goto out;
	}
	if (gnutls_x509_crt_verify(crt, &ca, 1, GNUTLS_VERIFY_DISABLE_TIME_CHECKS, &status) < 0 ||
	    status != 0) {
		snprintf(err, ZW_CERT_ERRLEN, "certificate is not signed by the CA");
		goto out;
	}
	for (size_t i = 0; i < req->n_dns; i++) {
		if (!has_san(crt, GNUTLS_SAN_DNSNAME, req->dns[i], strlen(req->dns[i]))) {
			snprintf(err, ZW_CERT_ERRLEN, "certificate lacks DNS name %s", req->dns[i]);
			goto out;
		}
	}
	for (size_t i = 0; i < req->n_ips; i++) {
		size_t n = ip_bytes(req->ips[i], addr);
		if (!n || !has_san(crt, GNUTLS_SAN_IPADDRESS, addr, n)) {
			snprintf(err, ZW_CERT_ERRLEN, "certificate lacks IP address %s",
			         req->ips[i]);
			goto out;
		}
	}
	if (gnutls_x509_crt_get_activation_time(crt) > now ||
	    gnutls_x509_crt_get_expiration_time(crt) <= now ||
	    gnutls_x509_crt_get_expiration_time(ca) <= now) {
		snprintf(err, ZW_CERT_ERRLEN, "certificate or CA is not valid now");
		goto out;
	}
	if (gnutls_x509_crt_get_expiration_time(crt) <= now + margin ||
	    gnutls_x509_crt_get_expiration_time(ca) <= now + margin) {
		snprintf(err, ZW_CERT_ERRLEN, "certificate or CA expires within %u days",
		         margin_days);
		rc = ZW_CERT_RENEW;
		goto out;
	}
	rc = ZW_CERT_OK;
out:
	if (ca)
		gnutls_x509_crt_deinit(ca);
	if (crt)
		gnutls_x509_crt_deinit(crt);
	if (key)
		gnutls_x509_privkey_deinit(key);
	return rc;
}

void zw_cert_bundle_free(struct zw_cert_bundle *b)
{
	if (!b)
		return;
	free(b->ca_cert);
	free(b->ca_key);
	free(b->cert);
	free(b->key);
	memset(b, 0, sizeof(*b));
}

int zw_cert_service_names(const char *svc, const char *ns,
                          char out[ZW_CERT_SERVICE_NAMES][ZW_CERT_NAME_MAX])
{
	static const char *const fmt[ZW_CERT_SERVICE_NAMES] = {"%s", "%s.%s", "%s.%s.svc",
	                                                       "%s.%s.svc.cluster.local"};

	for (int i = 0; i < ZW_CERT_SERVICE_NAMES; i++) {
		int n = snprintf(out[i], ZW_CERT_NAME_MAX, fmt[i], svc, ns);
		if (n < 0 || n >= ZW_CERT_NAME_MAX)
			return -1;
	}
	return 0;
}
