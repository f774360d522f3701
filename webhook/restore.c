/* zerowire restore without admission (see restore.h). */
#include "restore.h"

#include "jsonpatch.h"
#include "kobj.h"
#include "lease.h"
#include "managed.h"
#include "log.h"
#include "routekinds.h"
#include "routesync.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETRY_MS 1000

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	if (ms > 0)
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
}

/* Removes the reconciler's touch annotation from desired (owned), and the
 * annotations map when that empties it. */
static void drop_touch(json_t *desired)
{
	json_t *meta = json_object_get(desired, "metadata");
	json_t *ann = json_object_get(meta, "annotations");

	if (json_object_del(ann, ZW_ROUTESYNC_ANNOTATION) == 0 && json_object_size(ann) == 0)
		json_object_del(meta, "annotations");
}

enum zw_restore_status zw_restore_route(struct zw_kube *kube, const char *group,
                                        const char *version, const char *resource,
                                        const json_t *obj, const struct zw_mutate_config *cfg,
                                        char *msg, size_t msglen)
{
	struct zw_kube_ref ref = {.group = group,
	                          .version = version,
	                          .resource = resource,
	                          .namespace = zw_kobj_meta(obj, "namespace"),
	                          .name = zw_kobj_meta(obj, "name")};
	const char *kind = json_string_value(json_object_get(obj, "kind"));
	json_t *ann = json_object_get(json_object_get(obj, "metadata"), "annotations");
	struct zw_mutate_result info;
	struct zw_kube_error err;
	json_t *restored = NULL, *desired = NULL, *patch = NULL;
	enum zw_restore_status st = ZW_RS_NOMEM;

	msg[0] = '\0';
	if (!json_object_get(ann, ZW_ANNOTATION_ORIGINAL) &&
	    !json_object_get(ann, ZW_ROUTESYNC_ANNOTATION))
		return ZW_RS_UNCHANGED;
	if (zw_mutate_restore_object(obj, group, version, kind ? kind : "", cfg, &restored, &info) <
	    0)
		goto out;
	desired = json_deep_copy(restored);
	patch = json_pack("[{s:s,s:s,s:s}]", "op", "test", "path", "/metadata/resourceVersion",
	                  "value", zw_kobj_meta(obj, "resourceVersion"));
	if (!desired || !patch)
		goto out;
	drop_touch(desired);
	if ((json_object_get(json_object_get(json_object_get(desired, "metadata"), "annotations"),
	                     ZW_ANNOTATION_ORIGINAL))) {
		snprintf(msg, msglen, "annotation %s is not readable: %s", ZW_ANNOTATION_ORIGINAL,
		         info.message);
		st = ZW_RS_STUCK;
		goto out;
	}
	if (zw_jsonpatch_diff(obj, desired, "", patch) < 0)
		goto out;
	if (json_array_size(patch) == 1) {
		st = ZW_RS_UNCHANGED;
		goto out;
	}
	if (zw_kube_patch(kube, &ref, NULL, ZW_KUBE_PATCH_JSON, patch, NULL, &err) < 0) {
		snprintf(msg, msglen, "patch failed: %d %s", err.http_status,
		         zw_kube_error_text(&err));
		st = ZW_RS_API_ERROR;
		goto out;
	}
	snprintf(msg, msglen, "restores=%u dropped=%u", info.restores, info.dropped);
	st = ZW_RS_PATCHED;
out:
	json_decref(restored);
	json_decref(desired);
	json_decref(patch);
	return st;
}

/* State of one run. */
struct run {
	const struct zw_restore_config *cfg;
	json_t *left;     /* strings: what is left this pass */
	unsigned changes; /* patches and deletions this pass */
	int nomem;
};

static void left(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void left(struct run *r, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (json_array_append_new(r->left, json_string(buf)) < 0)
		r->nomem = 1;
}

/* The first served version of k, NULL when none is (or on failure, then
 * noted in r->left). */
static const char *served(struct run *r, const struct zw_route_kind *k)
{
	for (int v = 0; v < ZW_RK_MAX_VERSIONS && k->versions[v]; v++) {
		struct zw_kube_error err;
		int ok = 0;
		if (zw_kube_served(r->cfg->kube, k->group, k->versions[v], k->resource, &ok, &err) <
		    0) {
			left(r, "%s.%s: discovery failed: %d %s", k->resource, k->group,
			     err.http_status, zw_kube_error_text(&err));
			return NULL;
		}
		if (ok)
			return k->versions[v];
	}
	return NULL;
}

/* Lists k at version in namespace ns (NULL: all) with selector (may be
 * NULL). Returns the items (new reference) or NULL (noted in r->left). */
static json_t *list(struct run *r, const struct zw_route_kind *k, const char *version,
                    const char *ns, const char *selector)
{
	struct zw_kube_ref ref = {
	        .group = k->group, .version = version, .resource = k->resource, .namespace = ns};
	struct zw_kube_opts opts = {.label_selector = selector};
	struct zw_kube_error err;
	json_t *out = NULL, *items;

	if (zw_kube_list(r->cfg->kube, &ref, &opts, &out, NULL, &err) < 0) {
		left(r, "%s.%s in %s: list failed: %d %s", k->resource, k->group, ns ? ns : "*",
		     err.http_status, zw_kube_error_text(&err));
		return NULL;
	}
	items = json_incref(json_object_get(out, "items"));
	json_decref(out);
	return items;
}

static void restore_routes(struct run *r, const struct zw_route_kind *k, const char *version,
                           const char *ns)
{
	json_t *items = list(r, k, version, ns, NULL), *obj;
	char msg[600];
	size_t i;

	json_array_foreach(items, i, obj)
	{
		enum zw_restore_status st =
		        zw_restore_route(r->cfg->kube, k->group, version, k->resource, obj,
		                         r->cfg->mutate, msg, sizeof(msg));
		if (st == ZW_RS_PATCHED) {
			r->changes++;
			zw_log(ZW_LOG_INFO, "route_restored", "route=%s.%s/%s/%s %s", k->resource,
			       k->group, zw_kobj_meta(obj, "namespace"), zw_kobj_meta(obj, "name"),
			       msg);
		} else if (st == ZW_RS_NOMEM) {
			r->nomem = 1;
		} else if (st != ZW_RS_UNCHANGED) {
			left(r, "%s.%s %s/%s: %s", k->resource, k->group,
			     zw_kobj_meta(obj, "namespace"), zw_kobj_meta(obj, "name"), msg);
		}
	}
	json_decref(items);
}

static void delete_made(struct run *r, const struct zw_route_kind *k, const char *version,
                        const char *ns, const char *wiring)
{
	char selector[256];
	json_t *items, *obj;
	size_t i;

	snprintf(selector, sizeof(selector), "%s=%s,%s=%s", ZW_MANAGED_LABEL, ZW_MANAGED_VALUE,
	         ZW_WIRING_LABEL, wiring);
	items = list(r, k, version, ns, selector);
	json_array_foreach(items, i, obj)
	{
		struct zw_kube_ref ref = {.group = k->group,
		                          .version = version,
		                          .resource = k->resource,
		                          .namespace = zw_kobj_meta(obj, "namespace"),
		                          .name = zw_kobj_meta(obj, "name")};
		struct zw_kube_error err;
		if (zw_kobj_meta(obj, "deletionTimestamp")[0] != '\0')
			continue; /* on its way; the next pass checks it is gone */
		if (zw_kube_delete(r->cfg->kube, &ref, NULL, NULL, &err) < 0 &&
		    err.http_status != 404) {
			left(r, "%s.%s %s/%s: delete failed: %d %s", k->resource, k->group,
			     ref.namespace, ref.name, err.http_status, zw_kube_error_text(&err));
			continue;
		}
		r->changes++;
		zw_log(ZW_LOG_INFO, "deleted", "what=%s ns=%s name=%s", k->resource, ref.namespace,
		       ref.name);
	}
	json_decref(items);
}

/* Calls fn for every namespace to visit: each configured one, or NULL (all). */
static void each_namespace(struct run *r, const struct zw_route_kind *k, const char *version,
                           const char *wiring, int proxy_ns_only)
{
	const struct zw_restore_config *c = r->cfg;

	if (c->n_namespaces == 0 || (proxy_ns_only && c->mutate)) {
		const char *ns = c->n_namespaces == 0 ? NULL : c->mutate->proxy_namespace;
		if (wiring)
			delete_made(r, k, version, ns, wiring);
		else
			restore_routes(r, k, version, ns);
		return;
	}
	for (size_t i = 0; i < c->n_namespaces; i++) {
		if (wiring)
			delete_made(r, k, version, c->namespaces[i], wiring);
		else
			restore_routes(r, k, version, c->namespaces[i]);
	}
}

static void one_pass(struct run *r)
{
	/* The route kinds admission rewrites, then what the reconciler made. */
	for (size_t i = 0; i < zw_route_kinds_count; i++) {
		const struct zw_route_kind *k = &zw_route_kinds[i];
		const char *v = k->shape != ZW_RK_SHAPE_NONE ? served(r, k) : NULL;
		if (v)
			each_namespace(r, k, v, NULL, 0);
	}
	for (size_t i = 0; i < zw_route_kinds_count; i++) {
		const struct zw_route_kind *k = &zw_route_kinds[i];
		const char *v = (k->roles & ZW_RK_MADE) ? served(r, k) : NULL;
		if (v)
			each_namespace(r, k, v, k->made, k->made_in_proxy_namespace);
	}
}

/* Steps 1 and 2: hold the Lease, delete the webhook configuration. Returns
 * the number of steps not done yet (noted in r->left). */
static int stop_admission(struct run *r, int *lease_done, int *mwc_done)
{
	const struct zw_restore_config *c = r->cfg;
	struct zw_kube_error err;

	if (!*lease_done) {
		if (zw_lease_hold(c->kube, c->lease_namespace, c->lease_name, ZW_RESTORE_HOLDER,
		                  c->hold_s ? (int)c->hold_s : ZW_RESTORE_HOLD_S, &err) == 0) {
			*lease_done = 1;
			zw_log(ZW_LOG_INFO, "lease_held", "lease=%s/%s holder=%s",
			       c->lease_namespace, c->lease_name, ZW_RESTORE_HOLDER);
		} else {
			left(r, "lease %s/%s: %d %s", c->lease_namespace, c->lease_name,
			     err.http_status, zw_kube_error_text(&err));
		}
	}
	if (!*mwc_done) {
		struct zw_kube_ref ref = {.group = "admissionregistration.k8s.io",
		                          .version = "v1",
		                          .resource = "mutatingwebhookconfigurations",
		                          .name = c->webhook_config};
		if (zw_kube_delete(c->kube, &ref, NULL, NULL, &err) == 0 ||
		    err.http_status == 404) {
			*mwc_done = 1;
			zw_log(ZW_LOG_INFO, "webhook_config_deleted", "name=%s%s",
			       c->webhook_config, err.http_status == 404 ? " (was absent)" : "");
		} else {
			left(r, "MutatingWebhookConfiguration %s: delete failed: %d %s",
			     c->webhook_config, err.http_status, zw_kube_error_text(&err));
		}
	}
	return !*lease_done + !*mwc_done;
}

int zw_restore_run(const struct zw_restore_config *cfg, json_t **left_out)
{
	struct run r = {.cfg = cfg};
	long long deadline =
	        now_ms() + (cfg->deadline_ms ? cfg->deadline_ms : ZW_RESTORE_DEADLINE_MS);
	int lease_done = !cfg->lease_namespace || !cfg->lease_name;
	int mwc_done = !cfg->webhook_config;
	int handed_over = 0, rc = -1;

	*left_out = NULL;
	for (;;) {
		json_decref(r.left);
		r.left = json_array();
		r.changes = 0;
		if (!r.left)
			break;
		if (stop_admission(&r, &lease_done, &mwc_done) == 0 && !handed_over) {
			/* Let a leading replica notice it no longer leads. */
			long long wait = cfg->handover_ms;
			if (wait > deadline - now_ms())
				wait = deadline - now_ms();
			sleep_ms(wait);
			handed_over = 1;
		}
		if (lease_done && mwc_done)
			one_pass(&r);
		if (r.nomem)
			break;
		if (lease_done && mwc_done && r.changes == 0 && json_array_size(r.left) == 0) {
			rc = 0;
			break;
		}
		if (now_ms() >= deadline) {
			if (json_array_size(r.left) == 0)
				left(&r,
				     "the last pass still changed %u objects: not verified before "
				     "the "
				     "deadline",
				     r.changes);
			rc = r.nomem ? -1 : 1;
			break;
		}
		if (json_array_size(r.left) > 0)
			sleep_ms(RETRY_MS);
	}
	if (rc < 0) {
		json_decref(r.left);
		return -1;
	}
	*left_out = r.left;
	return rc;
}
