/* zerowire-webhook route sync: evaluations, touches and opt-out restores
 * of the watched routes, with one typed record per route (see
 * routesync.h). */
#include "routesync.h"

#include "apiversion.h"
#include "kobj.h"
#include "log.h"
#include "restore.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rec_cmp(const void *a, const void *b)
{
	return strcmp(((const struct zw_route_rec *)a)->key, ((const struct zw_route_rec *)b)->key);
}

size_t zw_route_recs_count(const struct zw_route_recs *t)
{
	return t->v.len / sizeof(struct zw_route_rec);
}

struct zw_route_rec *zw_route_recs_find(const struct zw_route_recs *t, const char *key)
{
	struct zw_route_rec probe = {.key = (char *)key};

	if (!t->v.data)
		return NULL;
	return bsearch(&probe, t->v.data, zw_route_recs_count(t), sizeof(probe), rec_cmp);
}

static void rec_free(struct zw_route_rec *rec)
{
	free(rec->key);
	free(rec->eval_rv);
	free(rec->touch_rv);
}

void zw_route_recs_free(struct zw_route_recs *t)
{
	struct zw_route_rec *v = (struct zw_route_rec *)t->v.data;

	for (size_t i = 0; i < zw_route_recs_count(t); i++)
		rec_free(&v[i]);
	zw_buf_free(&t->v);
}

bool zw_route_rec_fresh(const struct zw_route_rec *rec, const char *rv, uint64_t gen)
{
	return rec && rec->evaluated && rec->eval_rv && strcmp(rec->eval_rv, rv) == 0 &&
	       rec->eval_gen == gen;
}

bool zw_route_rec_touch_pending(const struct zw_route_rec *rec, const char *rv, uint64_t gen,
                                long long now_ms)
{
	return rec && rec->touched && strcmp(rec->touch_rv ? rec->touch_rv : "", rv) == 0 &&
	       rec->touch_gen == gen && now_ms - rec->touch_at_ms < ZW_ROUTESYNC_RETOUCH_MS;
}

/* Replaces *dst with a copy of s. Returns 0 or -ENOMEM (*dst unchanged). */
static int set_str(char **dst, const char *s)
{
	char *c = strdup(s);

	if (!c)
		return -ENOMEM;
	free(*dst);
	*dst = c;
	return 0;
}

/* Merge-patches the reconcile annotation onto one route; records the touch
 * in rec. */
static int touch(struct zw_routesync *rs, struct zw_route_rec *rec, const struct zw_watched *w,
                 uint64_t gen, long long now_ms)
{
	struct zw_kube_ref ref = {.group = w->rk->group,
	                          .version = w->version,
	                          .resource = w->rk->resource,
	                          .namespace = zw_kobj_meta(w->obj, "namespace"),
	                          .name = zw_kobj_meta(w->obj, "name")};
	struct zw_kube_error err;
	char val[64];
	json_t *patch, *out = NULL;
	int rc;

	snprintf(val, sizeof(val), "%llu-%llu", (unsigned long long)gen, ++rs->touch_seq);
	patch = json_pack("{s:{s:{s:s}}}", "metadata", "annotations", ZW_ROUTESYNC_ANNOTATION, val);
	if (!patch)
		return -ENOMEM;
	rc = zw_kube_patch(rs->kube, &ref, NULL, ZW_KUBE_PATCH_MERGE, patch, &out, &err);
	json_decref(patch);
	if (rc < 0) {
		zw_wh_metrics_add(rs->metrics, ZW_C_RECONCILE_ERRORS, 1);
		zw_log(ZW_LOG_WARN, "touch_failed", "route=%s status=%d error=\"%s\"", rec->key,
		       err.http_status, zw_kube_error_text(&err));
		return -EIO;
	}
	if (set_str(&rec->touch_rv, zw_kobj_meta(out, "resourceVersion")) == 0) {
		rec->touched = true;
		rec->touch_gen = gen;
		rec->touch_at_ms = now_ms;
	}
	json_decref(out);
	zw_wh_metrics_add(rs->metrics, ZW_C_RECONCILE_TOUCHES, 1);
	zw_log(ZW_LOG_INFO, "route_touched", "route=%s generation=%llu", rec->key,
	       (unsigned long long)gen);
	return 0;
}

/* A route in a namespace that opted out: admission is not called there, so
 * the route is restored by a direct patch. Returns 1 when it was (its wiring
 * is no longer needed), else 0. */
static int restore_opted_out(struct zw_routesync *rs, const struct zw_watched *w)
{
	char msg[600];
	enum zw_restore_status st =
	        zw_restore_route(rs->kube, w->rk->group, w->version, w->rk->resource, w->obj,
	                         rs->mutate, msg, sizeof(msg));

	if (st == ZW_RS_PATCHED) {
		zw_log(ZW_LOG_INFO, "route_restored",
		       "route=%s.%s/%s/%s reason=namespace_opt_out %s", w->rk->resource,
		       w->rk->group, zw_kobj_meta(w->obj, "namespace"),
		       zw_kobj_meta(w->obj, "name"), msg);
		return 1;
	}
	if (st != ZW_RS_UNCHANGED) {
		zw_wh_metrics_add(rs->metrics, ZW_C_RECONCILE_ERRORS, 1);
		zw_log(ZW_LOG_WARN, "restore_failed", "route=%s.%s/%s/%s error=\"%s\"",
		       w->rk->resource, w->rk->group, zw_kobj_meta(w->obj, "namespace"),
		       zw_kobj_meta(w->obj, "name"), st == ZW_RS_NOMEM ? "out of memory" : msg);
	}
	return 0;
}

/* Asks admission's code what it would make of route w now; records the
 * verdict in rec (when admission could decide). */
static void evaluate(struct zw_routesync *rs, struct zw_route_rec *rec, const struct zw_watched *w,
                     const char *group, const char *ver, uint64_t gen)
{
	const char *ns = zw_kobj_meta(w->obj, "namespace");
	const char *rv = zw_kobj_meta(w->obj, "resourceVersion");
	struct zw_mutate_result info;
	json_t *desired = NULL;
	int rc, alias, grant;

	memset(&info, 0, sizeof(info));
	rc = zw_mutate_object(w->obj, group, ver, zw_kobj_str(w->obj, "kind"), NULL, rs->reg,
	                      rs->mutate, &desired, NULL, &info);
	zw_wh_metrics_add(rs->metrics, ZW_C_RECONCILE_EVALUATIONS, 1);
	zw_wiring_route_needs(rs->mutate, w->rk, rc == 0 && desired ? desired : w->obj, ns, &alias,
	                      &grant);
	rec->alias = alias;
	rec->grant = grant;
	rec->differs = rc == 0 && desired && !json_equal(desired, w->obj);
	rec->evaluated = rc == 0 && set_str(&rec->eval_rv, rv) == 0;
	rec->eval_gen = gen;
	json_decref(desired);
}

/* The record of key for this pass: old's, moved out of old (its strings
 * taken), or a new one. Returns 0 or -ENOMEM. */
static int take_rec(struct zw_route_recs *old, const char *key, struct zw_route_rec *out)
{
	struct zw_route_rec *prev = zw_route_recs_find(old, key);

	memset(out, 0, sizeof(*out));
	if (prev) {
		*out = *prev;
		prev->eval_rv = prev->touch_rv = NULL;
		prev->evaluated = prev->touched = false;
	}
	out->key = strdup(key);
	return out->key ? 0 : -ENOMEM;
}

void zw_routesync_pass(struct zw_routesync *rs, const struct zw_watched_list *routes,
                       const struct zw_watched_list *optout, struct zw_wiring_needs *needs,
                       long long now_ms)
{
	uint64_t gen = zw_registry_generation(rs->reg);
	struct zw_route_recs next = {0};
	json_t *opted = json_object();
	unsigned touches = 0;

	if (!opted)
		return;
	for (size_t i = 0; i < zw_watched_count(optout); i++)
		json_object_set_new(opted, zw_kobj_meta(zw_watched_at(optout, i)->obj, "name"),
		                    json_true());
	for (size_t i = 0; i < zw_watched_count(routes); i++) {
		const struct zw_watched *w = zw_watched_at(routes, i);
		const char *ns = zw_kobj_meta(w->obj, "namespace");
		const char *rv = zw_kobj_meta(w->obj, "resourceVersion");
		char group[128], ver[32], key[600];
		struct zw_route_rec rec;
		const char *av = zw_kobj_str(w->obj, "apiVersion");
		const char *v;
		size_t gl;
		int alias = 0, grant = 0, differs = 0;

		if (zw_api_version_split(av, &gl, &v) < 0)
			continue;
		snprintf(group, sizeof(group), "%.*s", (int)gl, av);
		snprintf(ver, sizeof(ver), "%s", v);
		snprintf(key, sizeof(key), "%s.%s/%s/%s", w->rk->resource, w->rk->group, ns,
		         zw_kobj_meta(w->obj, "name"));
		if (take_rec(&rs->recs, key, &rec) < 0)
			continue;
		if (json_object_get(opted, ns)) {
			/* Not restored yet (or by hand at the proxy): wiring as it is. */
			rec.evaluated = false;
			if (!restore_opted_out(rs, w))
				zw_wiring_route_needs(rs->mutate, w->rk, w->obj, ns, &alias,
				                      &grant);
		} else {
			/* Unless neither the route nor the registry changed since. */
			if (!zw_route_rec_fresh(&rec, rv, gen))
				evaluate(rs, &rec, w, group, ver, gen);
			alias = rec.alias;
			grant = rec.grant;
			differs = rec.differs;
		}
		zw_wiring_needs_add(needs, w->rk, ns, alias, grant);
		if (differs && touches < ZW_ROUTESYNC_MAX_TOUCHES) {
			/* Touched for this generation and admission left it: the
			 * webhook does not see it (namespace excluded, not
			 * registered, or down behind failurePolicy Ignore). Wait
			 * for the next change, or ZW_ROUTESYNC_RETOUCH_MS. */
			if (!zw_route_rec_touch_pending(&rec, rv, gen, now_ms) &&
			    touch(rs, &rec, w, gen, now_ms) == 0)
				touches++;
		}
		if (zw_buf_append(&next.v, &rec, sizeof(rec), SIZE_MAX) < 0)
			rec_free(&rec);
	}
	/* Records of routes that are gone are not carried over. */
	if (next.v.data)
		qsort(next.v.data, zw_route_recs_count(&next), sizeof(struct zw_route_rec),
		      rec_cmp);
	zw_route_recs_free(&rs->recs);
	rs->recs = next;
	json_decref(opted);
}

void zw_routesync_free(struct zw_routesync *rs)
{
	zw_route_recs_free(&rs->recs);
}
