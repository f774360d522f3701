/* Self-managed webhook certificate: a CA and a serving certificate kept in a
 * Secret, and the CA kept in the MutatingWebhookConfiguration's caBundle.
 *
 * Secret (type kubernetes.io/tls) keys: tls.crt, tls.key (serving pair),
 * ca.crt, ca.key (current CA), ca-bundle.crt (what the caBundle must trust:
 * the current CA, plus the previous one while a CA rotation settles).
 *
 * Concurrency between replicas: the Secret is created with POST (an
 * AlreadyExists answer means another replica won; its Secret is re-read and
 * used) and replaced with a resourceVersion-conditional PUT (a Conflict
 * re-reads and re-decides). Every replica therefore ends on one certificate.
 *
 * Rotation keeps admissions working: a serving certificate near expiry is
 * re-issued by the same CA (caBundle unchanged); a CA near expiry is replaced
 * and the caBundle trusts both CAs until the next check after the old one's
 * certificates are gone. */
#ifndef ZW_SELFCERT_H
#define ZW_SELFCERT_H

#include "certgen.h"
#include "kube.h"

#include <pthread.h>
#include <stddef.h>

#define ZW_SELFCERT_RENEW_DAYS 30
#define ZW_SELFCERT_ERRLEN     512
#define ZW_SELFCERT_RETRIES    5 /* conflicts tolerated per call */

struct zw_selfcert_opts {
	const char *secret_namespace;
	const char *secret_name;
	const char *service_namespace; /* webhook Service: SANs svc, svc.ns,
	                                  svc.ns.svc(.cluster.local) */
	const char *service_name;      /* NULL: no Service names (url mode only) */
	const char *const *dns;        /* extra DNS names (url mode host) */
	size_t n_dns;
	const char *const *ips; /* IP names (url mode address) */
	size_t n_ips;
	unsigned renew_days; /* 0 = ZW_SELFCERT_RENEW_DAYS */
};

/* The certificate in use after zw_selfcert_ensure, owned by the caller
 * (zw_selfcert_state_free). ca_bundle is the PEM the caBundle must hold. */
struct zw_selfcert_state {
	struct zw_cert_bundle bundle;
	char *ca_bundle;
	char resource_version[64];
};

enum zw_selfcert_result {
	ZW_SELFCERT_UNCHANGED = 0, /* the Secret held a good certificate */
	ZW_SELFCERT_CREATED = 1,   /* this call created or replaced it */
	ZW_SELFCERT_ADOPTED = 2,   /* another replica created or replaced it meanwhile */
};

/* Reads the Secret through k (borrowed) and makes sure it holds a usable
 * certificate for opts' names that is not within renew_days of expiry;
 * creates or renews it otherwise (force_renew: re-issue the serving
 * certificate even when it is good). On success fills *st (caller frees)
 * and returns an enum zw_selfcert_result; returns -1 with err filled on API
 * or GnuTLS failure (st untouched). */
int zw_selfcert_ensure(struct zw_kube *k, const struct zw_selfcert_opts *opts, int force_renew,
                       struct zw_selfcert_state *st, char err[ZW_SELFCERT_ERRLEN]);

/* Makes every webhook of MutatingWebhookConfiguration `name` carry
 * caBundle = base64(ca_bundle_pem) (a JSON patch guarded by a test of the
 * resourceVersion, retried on conflict). Returns the number of webhooks
 * patched (0 when all were right), or -1 with err filled (404 included). */
int zw_selfcert_sync_cabundle(struct zw_kube *k, const char *name, const char *ca_bundle_pem,
                              char err[ZW_SELFCERT_ERRLEN]);

/* Releases what st owns. NULL-safe. */
void zw_selfcert_state_free(struct zw_selfcert_state *st);

/* ---- The webhook's certificate thread ---- */

#define ZW_SELFCERT_INTERVAL_MS 60000 /* Secret and caBundle re-checked every minute */

struct zw_selfcert_run_config {
	struct zw_kube *kube;         /* borrowed */
	struct zw_selfcert_opts opts; /* strings borrowed for the runner's life */
	const char *webhook_config;   /* MutatingWebhookConfiguration to keep, or NULL */
	unsigned interval_ms;         /* 0 = ZW_SELFCERT_INTERVAL_MS */
	/* Called on the runner's thread with a new serving pair (PEM, borrowed
	 * for the call) whenever the Secret's certificate differs from the last
	 * one taken; returns 0 when taken, nonzero to be offered it again at the
	 * next round. */
	int (*on_cert)(void *arg, const char *cert_pem, const char *key_pem);
	void *arg;
};

struct zw_selfcert_run;

/* Asked between certificate-setup attempts (every 100 ms while waiting):
 * nonzero stops the retries. */
typedef int zw_selfcert_cancel_fn(void *arg);

/* Makes sure a certificate exists (retrying with backoff up to 1 minute
 * between attempts until it does or cancel(cancel_arg) returns nonzero;
 * cancel may be NULL), returns it in *first (caller frees with
 * zw_selfcert_state_free), then starts a thread that re-checks the Secret
 * and the caBundle every interval, renews when due and hands new
 * certificates to on_cert. cfg is copied. Returns 0 with *out owned by the
 * caller, -ECANCELED (cancelled) or -ENOMEM. */
int zw_selfcert_run_start(const struct zw_selfcert_run_config *cfg, zw_selfcert_cancel_fn *cancel,
                          void *cancel_arg, struct zw_selfcert_state *first,
                          struct zw_selfcert_run **out);

/* Asks the thread to re-issue the serving certificate now (same CA). Any
 * thread. */
void zw_selfcert_run_force(struct zw_selfcert_run *r);

/* Stops and joins the thread, frees r. NULL-safe. */
void zw_selfcert_run_stop(struct zw_selfcert_run *r);

#endif
