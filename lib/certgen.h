/* zerowire certificate generation and checking (GnuTLS).
 *
 * Makes a self-signed CA and a serving certificate signed by it, both with
 * ECDSA P-256 keys, PEM encoded. Used by zerowire-certs and by the webhook's
 * self-managed certificate. */
#ifndef ZW_CERTGEN_H
#define ZW_CERTGEN_H

#include <stddef.h>
#include <time.h>

#define ZW_CERT_ERRLEN    256
#define ZW_CERT_MAX_NAMES 32

enum zw_cert_status {
	ZW_CERT_OK = 0,
	ZW_CERT_RENEW = 1,    /* valid, but expires within the renewal margin */
	ZW_CERT_EINVAL = -1,  /* unusable: bad PEM, wrong CA, missing name, expired */
	ZW_CERT_EGNUTLS = -2, /* GnuTLS failure while generating */
};

struct zw_cert_request {
	const char *common_name; /* serving cert subject CN; defaults to dns[0] or ips[0] */
	const char *const *dns;  /* DNS SANs */
	size_t n_dns;
	const char *const *ips; /* IP SANs (textual IPv4 or IPv6) */
	size_t n_ips;
	unsigned ca_days;   /* CA validity, default 3650 when 0 */
	unsigned cert_days; /* serving certificate validity, default 365 when 0 */
	time_t now;         /* 0: current time */
};

/* PEM texts, each NUL-terminated and owned by the bundle. */
struct zw_cert_bundle {
	char *ca_cert;
	char *ca_key;
	char *cert;
	char *key;
};

/* Generates a new CA and a serving certificate for req's names (at least one
 * name, at most ZW_CERT_MAX_NAMES in all). On success fills *out (caller
 * frees with zw_cert_bundle_free). Returns ZW_CERT_OK, ZW_CERT_EINVAL for a
 * bad request or ZW_CERT_EGNUTLS, with a message in err. */
int zw_cert_generate(const struct zw_cert_request *req, struct zw_cert_bundle *out,
                     char err[ZW_CERT_ERRLEN]);

/* Issues a new serving certificate and key for req's names signed by the
 * existing CA in ca_cert/ca_key (PEM, borrowed). Fills out->cert and out->key
 * only (the CA fields are copied from the inputs). Returns as zw_cert_generate. */
int zw_cert_issue(const char *ca_cert, const char *ca_key, const struct zw_cert_request *req,
                  struct zw_cert_bundle *out, char err[ZW_CERT_ERRLEN]);

/* Checks that `cert` (PEM, borrowed) is signed by `ca_cert`, matches `key`,
 * carries every DNS and IP name of req, and is valid at req->now. Returns
 * ZW_CERT_OK, ZW_CERT_RENEW when it or the CA expires within margin_days, or
 * ZW_CERT_EINVAL with the reason in err. */
int zw_cert_check(const struct zw_cert_bundle *b, const struct zw_cert_request *req,
                  unsigned margin_days, char err[ZW_CERT_ERRLEN]);

#define ZW_CERT_SERVICE_NAMES 4
#define ZW_CERT_NAME_MAX      254

/* Writes the four DNS names a Service is reached by (<svc>, <svc>.<ns>,
 * <svc>.<ns>.svc, <svc>.<ns>.svc.cluster.local) into out. Returns 0, or -1
 * when a name would exceed ZW_CERT_NAME_MAX - 1 bytes. */
int zw_cert_service_names(const char *svc, const char *ns,
                          char out[ZW_CERT_SERVICE_NAMES][ZW_CERT_NAME_MAX]);

/* Releases the PEM strings of a bundle (not the struct). NULL-safe. */
void zw_cert_bundle_free(struct zw_cert_bundle *b);

#endif
