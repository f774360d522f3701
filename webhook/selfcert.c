/* Self-managed webhook certificate; see selfcert.h. */
#include "selfcert.h"

#include "base64.h"
#include "log.h"

#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_NAMES ZW_CERT_MAX_NAMES

static const struct zw_kube_ref secret_ref_base = {NULL, "v1", "secrets", NULL, NULL, NULL};
static const struct zw_kube_ref mwc_ref_base = {
        "admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations", NULL, NULL, NULL};

/* The names a certificate must carry, as a request for certgen. */
struct names {
	char service[ZW_CERT_SERVICE_NAMES][ZW_CERT_NAME_MAX];
	const char *dns[MAX_NAMES];
	struct zw_cert_request req;
};

static int build_names(const struct zw_selfcert_opts *o, struct names *n, char *err)
{
	size_t d = 0;

	memset(n, 0, sizeof(*n));
	if (o->service_name) {
		if (zw_cert_service_names(o->service_name, o->service_namespace, n->service) != 0) {
			snprintf(err, ZW_SELFCERT_ERRLEN, "webhook Service name too long");
			return -1;
		}
		for (int i = 0; i < ZW_CERT_SERVICE_NAMES; i++)
			n->dns[d++] = n->service[i];
	}
	for (size_t i = 0; i < o->n_dns; i++) {
		if (d == MAX_NAMES) {
			snprintf(err, ZW_SELFCERT_ERRLEN, "too many certificate names");
			return -1;
		}
		n->dns[d++] = o->dns[i];
	}
	n->req.dns = n->dns;
	n->req.n_dns = d;
	n->req.ips = o->ips;
	n->req.n_ips = o->n_ips;
	return 0;
}

static char *data_field(json_t *secret, const char *key)
{
	const char *b64 = json_string_value(json_object_get(json_object_get(secret, "data"), key));
	size_t n;

	return b64 ? (char *)zw_base64_decode(b64, strlen(b64), &n) : NULL;
}

static int set_data(json_t *data, const char *key, const char *pem)
{
	char *b64 = zw_base64_encode(pem, strlen(pem));
	int rc = b64 ? json_object_set_new(data, key, json_string(b64)) : -1;

	free(b64);
	return rc;
}

/* Builds the Secret object for bundle b and ca_bundle; rv (may be NULL)
 * makes a PUT conditional. Returns a new object or NULL. */
static json_t *secret_object(const struct zw_selfcert_opts *o, const struct zw_cert_bundle *b,
                             const char *ca_bundle, const char *rv)
{
	json_t *data = json_object();
	json_t *obj = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:s}", "apiVersion", "v1",
	                        "kind", "Secret", "metadata", "name", o->secret_name, "namespace",
	                        o->secret_namespace, "labels", "app.kubernetes.io/managed-by",
	                        "zerowire", "type", "kubernetes.io/tls");

	if (!obj || !data || set_data(data, "tls.crt", b->cert) ||
	    set_data(data, "tls.key", b->key) || set_data(data, "ca.crt", b->ca_cert) ||
	    set_data(data, "ca.key", b->ca_key) || set_data(data, "ca-bundle.crt", ca_bundle) ||
	    json_object_set(obj, "data", data) ||
	    (rv && json_object_set_new(json_object_get(obj, "metadata"), "resourceVersion",
	                               json_string(rv)))) {
		json_decref(obj);
		obj = NULL;
	}
	json_decref(data);
	return obj;
}

static void fill_state(struct zw_selfcert_state *st, struct zw_cert_bundle *b, char *ca_bundle,
                       json_t *stored)
{
	const char *rv = json_string_value(
	        json_object_get(json_object_get(stored, "metadata"), "resourceVersion"));

	memset(st, 0, sizeof(*st));
	st->bundle = *b;
	memset(b, 0, sizeof(*b));
	st->ca_bundle = ca_bundle;
	snprintf(st->resource_version, sizeof(st->resource_version), "%s", rv ? rv : "");
}

/* Decides the bundle to store instead of the one in `cur` (may be all
 * NULL): a new serving certificate from the same CA when that CA is good for
 * longer than the margin, else a new CA. *ca_bundle_out gets the PEM the
 * caBundle must trust (new CA plus the old one when it still verifies). */
static int renew(const struct zw_selfcert_opts *o, const struct names *n,
                 const struct zw_cert_bundle *cur, struct zw_cert_bundle *out, char **ca_bundle_out,
                 char *err)
{
	unsigned margin = o->renew_days ? o->renew_days : ZW_SELFCERT_RENEW_DAYS;
	char cerr[ZW_CERT_ERRLEN];
	int rc;

	if (cur->ca_cert && cur->ca_key &&
	    zw_cert_issue(cur->ca_cert, cur->ca_key, &n->req, out, cerr) == ZW_CERT_OK) {
		if (zw_cert_check(out, &n->req, margin, cerr) == ZW_CERT_OK) {
			*ca_bundle_out = strdup(out->ca_cert);
			return *ca_bundle_out ? 0 : -1;
		}
		zw_cert_bundle_free(out);
	}
	rc = zw_cert_generate(&n->req, out, cerr);
	if (rc != ZW_CERT_OK) {
		snprintf(err, ZW_SELFCERT_ERRLEN, "generating certificate: %s", cerr);
		return -1;
	}
	if (cur->ca_cert && strstr(cur->ca_cert, "BEGIN CERTIFICATE")) {
		size_t a = strlen(out->ca_cert), b = strlen(cur->ca_cert);
		*ca_bundle_out = malloc(a + b + 1);
		if (*ca_bundle_out) {
			memcpy(*ca_bundle_out, out->ca_cert, a);
			memcpy(*ca_bundle_out + a, cur->ca_cert, b + 1);
		}
	} else {
		*ca_bundle_out = strdup(out->ca_cert);
	}
	if (!*ca_bundle_out) {
		zw_cert_bundle_free(out);
		snprintf(err, ZW_SELFCERT_ERRLEN, "out of memory");
		return -1;
	}
	return 0;
}

int zw_selfcert_ensure(struct zw_kube *k, const struct zw_selfcert_opts *o, int force_renew,
                       struct zw_selfcert_state *st, char err[ZW_SELFCERT_ERRLEN])
{
	struct zw_kube_ref ref = secret_ref_base;
	unsigned margin = o->renew_days ? o->renew_days : ZW_SELFCERT_RENEW_DAYS;
	struct zw_kube_error kerr;
	struct names n;
	int lost_race = 0;

	if (build_names(o, &n, err) != 0)
		return -1;
	ref.namespace = o->secret_namespace;
	for (int attempt = 0; attempt <= ZW_SELFCERT_RETRIES; attempt++) {
		struct zw_cert_bundle cur = {0}, next = {0};
		char *ca_bundle = NULL, *stored_bundle = NULL;
		json_t *secret = NULL, *obj = NULL, *written = NULL;
		char cerr[ZW_CERT_ERRLEN];
		const char *rv = NULL;
		int rc, exists;

		ref.name = o->secret_name;
		rc = zw_kube_get(k, &ref, NULL, &secret, &kerr);
		if (rc != 0 && kerr.http_status != 404) {
			snprintf(err, ZW_SELFCERT_ERRLEN, "reading Secret %s/%s: %.300s",
			         o->secret_namespace, o->secret_name, kerr.message);
			return -1;
		}
		exists = rc == 0;
		if (exists) {
			cur.cert = data_field(secret, "tls.crt");
			cur.key = data_field(secret, "tls.key");
			cur.ca_cert = data_field(secret, "ca.crt");
			cur.ca_key = data_field(secret, "ca.key");
			stored_bundle = data_field(secret, "ca-bundle.crt");
			rv = json_string_value(json_object_get(json_object_get(secret, "metadata"),
			                                       "resourceVersion"));
			if (!force_renew &&
			    zw_cert_check(&cur, &n.req, margin, cerr) == ZW_CERT_OK) {
				if (!stored_bundle)
					stored_bundle = strdup(cur.ca_cert);
				fill_state(st, &cur, stored_bundle, secret);
				json_decref(secret);
				return lost_race ? ZW_SELFCERT_ADOPTED : ZW_SELFCERT_UNCHANGED;
			}
			free(stored_bundle);
		}
		force_renew = 0; /* once: a conflict means someone else just renewed */
		if (renew(o, &n, &cur, &next, &ca_bundle, err) != 0) {
			zw_cert_bundle_free(&cur);
			json_decref(secret);
			return -1;
		}
		obj = secret_object(o, &next, ca_bundle, exists ? rv : NULL);
		ref.name = exists ? o->secret_name : NULL;
		rc = !obj     ? -1
		     : exists ? zw_kube_update(k, &ref, NULL, obj, &written, &kerr)
		              : zw_kube_create(k, &ref, NULL, obj, &written, &kerr);
		json_decref(obj);
		json_decref(secret);
		zw_cert_bundle_free(&cur);
		if (rc == 0) {
			fill_state(st, &next, ca_bundle, written);
			json_decref(written);
			return ZW_SELFCERT_CREATED;
		}
		zw_cert_bundle_free(&next);
		free(ca_bundle);
		if (obj && (kerr.http_status == 409)) {
			lost_race = 1; /* AlreadyExists or Conflict: re-read and decide again */
			continue;
		}
		snprintf(err, ZW_SELFCERT_ERRLEN, "writing Secret %s/%s: %.300s",
		         o->secret_namespace, o->secret_name, obj ? kerr.message : "out of memory");
		return -1;
	}
	snprintf(err, ZW_SELFCERT_ERRLEN,
	         "Secret %.200s/%.200s: still conflicting after %d attempts", o->secret_namespace,
	         o->secret_name, ZW_SELFCERT_RETRIES);
	return -1;
}

int zw_selfcert_sync_cabundle(struct zw_kube *k, const char *name, const char *ca_bundle_pem,
                              char err[ZW_SELFCERT_ERRLEN])
{
	struct zw_kube_ref ref = mwc_ref_base;
	struct zw_kube_error kerr;
	char *b64 = zw_base64_encode(ca_bundle_pem, strlen(ca_bundle_pem));
	int result = -1;

	if (!b64) {
		snprintf(err, ZW_SELFCERT_ERRLEN, "out of memory");
		return -1;
	}
	ref.name = name;
	for (int attempt = 0; attempt <= ZW_SELFCERT_RETRIES && result < 0; attempt++) {
		json_t *mwc = NULL, *ops = NULL, *hooks, *hook;
		const char *rv;
		size_t i;
		int patched = 0;

		if (zw_kube_get(k, &ref, NULL, &mwc, &kerr) != 0) {
			snprintf(err, ZW_SELFCERT_ERRLEN,
			         "reading MutatingWebhookConfiguration %.100s: %.300s", name,
			         kerr.message);
			break;
		}
		rv = json_string_value(
		        json_object_get(json_object_get(mwc, "metadata"), "resourceVersion"));
		ops = json_pack("[{s:s, s:s, s:s}]", "op", "test", "path",
		                "/metadata/resourceVersion", "value", rv ? rv : "");
		hooks = json_object_get(mwc, "webhooks");
		json_array_foreach(hooks, i, hook)
		{
			const char *cur = json_string_value(
			        json_object_get(json_object_get(hook, "clientConfig"), "caBundle"));
			char path[64];
			if (cur && strcmp(cur, b64) == 0)
				continue;
			snprintf(path, sizeof(path), "/webhooks/%zu/clientConfig/caBundle", i);
			json_array_append_new(ops, json_pack("{s:s, s:s, s:s}", "op", "add", "path",
			                                     path, "value", b64));
			patched++;
		}
		if (!patched) {
			result = 0;
		} else if (zw_kube_patch(k, &ref, NULL, ZW_KUBE_PATCH_JSON, ops, NULL, &kerr) ==
		           0) {
			result = patched;
		} else if (attempt == ZW_SELFCERT_RETRIES) {
			snprintf(err, ZW_SELFCERT_ERRLEN,
			         "patching caBundle of MutatingWebhookConfiguration %.100s: %.300s",
			         name, kerr.message);
		}
		json_decref(ops);
		json_decref(mwc);
	}
	free(b64);
	return result;
}

void zw_selfcert_state_free(struct zw_selfcert_state *st)
{
	if (!st)
		return;
	zw_cert_bundle_free(&st->bundle);
	free(st->ca_bundle);
	st->ca_bundle = NULL;
}

struct zw_selfcert_run {
	struct zw_selfcert_run_config cfg;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stopping;
	int force;
	char *served_cert; /* PEM last handed to on_cert */
};

/* One round: ensure the Secret, hand a changed certificate over, keep the
 * caBundle. Logs at the boundary; returns 0 or -1. */
static int run_round(struct zw_selfcert_run *r, int force)
{
	struct zw_selfcert_state st;
	char err[ZW_SELFCERT_ERRLEN];
	int rc = zw_selfcert_ensure(r->cfg.kube, &r->cfg.opts, force, &st, err);

	if (rc < 0) {
		zw_log(ZW_LOG_WARN, "cert_check_failed", "error=\"%s\"", err);
		return -1;
	}
	if (rc != ZW_SELFCERT_UNCHANGED)
		zw_log(ZW_LOG_INFO, "cert_stored", "secret=%s/%s result=%s",
		       r->cfg.opts.secret_namespace, r->cfg.opts.secret_name,
		       rc == ZW_SELFCERT_CREATED ? "created" : "adopted");
	if (!r->served_cert || strcmp(r->served_cert, st.bundle.cert) != 0) {
		char *copy = strdup(st.bundle.cert);
		if (copy && r->cfg.on_cert(r->cfg.arg, st.bundle.cert, st.bundle.key) == 0) {
			free(r->served_cert);
			r->served_cert = copy;
		} else {
			free(copy);
		}
	}
	if (r->cfg.webhook_config) {
		int n = zw_selfcert_sync_cabundle(r->cfg.kube, r->cfg.webhook_config, st.ca_bundle,
		                                  err);
		if (n < 0)
			zw_log(ZW_LOG_WARN, "cabundle_sync_failed", "error=\"%s\"", err);
		else if (n > 0)
			zw_log(ZW_LOG_INFO, "cabundle_updated", "config=%s webhooks=%d",
			       r->cfg.webhook_config, n);
	}
	zw_selfcert_state_free(&st);
	return 0;
}

static void *run_main(void *arg)
{
	struct zw_selfcert_run *r = arg;
	unsigned interval = r->cfg.interval_ms ? r->cfg.interval_ms : ZW_SELFCERT_INTERVAL_MS;

	pthread_mutex_lock(&r->lock);
	while (!r->stopping) {
		struct timespec dl;
		int force;

		clock_gettime(CLOCK_MONOTONIC, &dl);
		dl.tv_sec += interval / 1000;
		dl.tv_nsec += (long)(interval % 1000) * 1000000L;
		if (dl.tv_nsec >= 1000000000L) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000L;
		}
		while (!r->stopping && !r->force &&
		       pthread_cond_timedwait(&r->cond, &r->lock, &dl) == 0) {
		}
		if (r->stopping)
			break;
		force = r->force;
		r->force = 0;
		pthread_mutex_unlock(&r->lock);
		run_round(r, force);
		pthread_mutex_lock(&r->lock);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

int zw_selfcert_run_start(const struct zw_selfcert_run_config *cfg, zw_selfcert_cancel_fn *cancel,
                          void *cancel_arg, struct zw_selfcert_state *first,
                          struct zw_selfcert_run **out)
{
	struct zw_selfcert_run *r = calloc(1, sizeof(*r));
	char err[ZW_SELFCERT_ERRLEN];
	unsigned delay_ms = 500;
	pthread_condattr_t ca;

	if (!r)
		return -ENOMEM;
	r->cfg = *cfg;
	for (;;) {
		int rc = zw_selfcert_ensure(cfg->kube, &cfg->opts, 0, first, err);
		if (rc >= 0)
			break;
		zw_log(ZW_LOG_WARN, "cert_setup_retry", "error=\"%s\" delay_ms=%u", err, delay_ms);
		for (unsigned waited = 0; waited < delay_ms; waited += 100) {
			struct timespec ts = {0, 100 * 1000000L};
			if (cancel && cancel(cancel_arg)) {
				free(r);
				return -ECANCELED;
			}
			nanosleep(&ts, NULL);
		}
		delay_ms = delay_ms * 2 > 60000 ? 60000 : delay_ms * 2;
	}
	r->served_cert = strdup(first->bundle.cert);
	if (cfg->webhook_config) {
		int n = zw_selfcert_sync_cabundle(cfg->kube, cfg->webhook_config, first->ca_bundle,
		                                  err);
		if (n < 0)
			zw_log(ZW_LOG_WARN, "cabundle_sync_failed", "error=\"%s\"", err);
	}
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (!r->served_cert || pthread_create(&r->thread, NULL, run_main, r) != 0) {
		pthread_cond_destroy(&r->cond);
		pthread_mutex_destroy(&r->lock);
		free(r->served_cert);
		free(r);
		zw_selfcert_state_free(first);
		return -ENOMEM;
	}
	*out = r;
	return 0;
}

void zw_selfcert_run_force(struct zw_selfcert_run *r)
{
	pthread_mutex_lock(&r->lock);
	r->force = 1;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

void zw_selfcert_run_stop(struct zw_selfcert_run *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->stopping = 1;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	free(r->served_cert);
	free(r);
}
