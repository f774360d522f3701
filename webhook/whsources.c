/* zerowire-webhook target sources: watch-loop subscriptions feeding the
 * registry. */
#include "whsources.h"

#include "log.h"
#include "routekinds.h"
#include "target.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct one_watch {
	struct zw_wh_sources *owner;
	const struct zw_route_kind *res;
	const char *version; /* one of res->versions */
	char *namespace;
	atomic_int synced;
	atomic_int waiting_logged;
	struct zw_watchloop_sub *sub;
};

struct zw_wh_sources {
	struct zw_wh_sources_config cfg;
	struct one_watch *watches;
	size_t n_alloc;
	size_t n_watches;
};

static void on_event(void *ud, enum zw_watch_type type, json_t *obj)
{
	struct one_watch *w = ud;
	struct zw_wh_sources *s = w->owner;
	char err[ZW_TARGET_ERRLEN];
	int rc;

	if (type == ZW_WATCH_SYNCED) {
		if (!atomic_exchange(&w->synced, 1))
			zw_log(ZW_LOG_INFO, "source_synced", "resource=%s.%s namespace=%s",
			       w->res->resource, w->res->group, w->namespace ? w->namespace : "*");
		if (s->cfg.on_change)
			s->cfg.on_change(s->cfg.arg);
		return;
	}
	if (type != ZW_WATCH_ADDED && type != ZW_WATCH_MODIFIED && type != ZW_WATCH_DELETED)
		return;
	err[0] = '\0';
	rc = zw_registry_apply_object(s->cfg.reg, obj, type == ZW_WATCH_DELETED, err);
	if (rc == 1)
		return;
	zw_wh_metrics_add(s->cfg.metrics, ZW_C_WATCH_EVENTS, 1);
	if (rc == ZW_TARGET_EINVAL) {
		zw_wh_metrics_add(s->cfg.metrics, ZW_C_ERRORS, 1);
		zw_log(ZW_LOG_WARN, "target_invalid", "error=\"%s\"", err);
	} else if (rc < 0) {
		zw_wh_metrics_add(s->cfg.metrics, ZW_C_ERRORS, 1);
		zw_log(ZW_LOG_ERROR, "registry_update_failed", "resource=%s", w->res->resource);
	} else if (zw_log_enabled(ZW_LOG_DEBUG)) {
		json_t *md = json_object_get(obj, "metadata");
		zw_log(ZW_LOG_DEBUG, "source_event", "type=%s resource=%s object=%s/%s",
		       zw_watch_type_name(type), w->res->resource,
		       json_string_value(json_object_get(md, "namespace")) ?: "",
		       json_string_value(json_object_get(md, "name")) ?: "");
	}
	if (s->cfg.on_change)
		s->cfg.on_change(s->cfg.arg);
}

static void on_status(void *ud, const struct zw_watch_status *st)
{
	struct one_watch *w = ud;

	switch (st->kind) {
	case ZW_WATCH_ST_WAITING:
		/* Not served: nothing of it exists, so it does not hold up readiness. */
		atomic_store(&w->synced, 1);
		if (!atomic_exchange(&w->waiting_logged, 1))
			zw_log(ZW_LOG_INFO, "source_absent", "resource=%s.%s/%s waiting=true",
			       w->res->resource, w->res->group, w->res->versions[0]);
		if (w->owner->cfg.on_change)
			w->owner->cfg.on_change(w->owner->cfg.arg);
		break;
	case ZW_WATCH_ST_RETRY:
		zw_wh_metrics_add(w->owner->cfg.metrics, ZW_C_ERRORS, 1);
		zw_log(st->failures > 3 ? ZW_LOG_WARN : ZW_LOG_INFO, "source_retry",
		       "resource=%s.%s failures=%u delay_ms=%u reason=\"%s\"", w->res->resource,
		       w->res->group, st->failures, st->delay_ms, st->reason ? st->reason : "");
		break;
	case ZW_WATCH_ST_RELIST:
		zw_log(ZW_LOG_INFO, "source_relist", "resource=%s.%s reason=\"%s\"",
		       w->res->resource, w->res->group, st->reason ? st->reason : "");
		break;
	case ZW_WATCH_ST_SYNCED:
		atomic_store(&w->waiting_logged, 0);
		break;
	}
}

/* Whether the proxy namespace needs watches of its own: namespaces are
 * listed, Services are indexed and it is not among them. */
static bool proxy_ns_outside(const struct zw_wh_sources_config *cfg)
{
	if (!cfg->proxy_namespace || !cfg->watch_services || cfg->n_namespaces == 0)
		return false;
	for (size_t i = 0; i < cfg->n_namespaces; i++)
		if (strcmp(cfg->namespaces[i], cfg->proxy_namespace) == 0)
			return false;
	return true;
}

int zw_wh_sources_start(const struct zw_wh_sources_config *cfg, struct zw_wh_sources **out)
{
	struct zw_wh_sources *s;
	bool extra = proxy_ns_outside(cfg);
	size_t n_ns = (cfg->n_namespaces ? cfg->n_namespaces : 1) + extra;
	size_t k = 0;

	if (cfg->n_namespaces > ZW_WH_SOURCES_MAX_NAMESPACES || !cfg->loop || !cfg->reg)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->cfg = *cfg;
	s->cfg.namespaces = NULL;
	s->cfg.proxy_namespace = NULL;
	s->n_alloc = zw_route_kinds_count * n_ns * ZW_RK_MAX_VERSIONS;
	s->watches = calloc(s->n_alloc, sizeof(*s->watches));
	if (!s->watches)
		goto fail;
	for (size_t r = 0; r < zw_route_kinds_count; r++) {
		const struct zw_route_kind *rk = &zw_route_kinds[r];
		bool ports = (rk->roles & ZW_RK_SOURCE_PORTS) && cfg->watch_services;
		size_t n_versions = 1;
		if (!(rk->roles & ZW_RK_SOURCE) && !ports)
			continue;
		if (rk->roles & ZW_RK_SOURCE_EVERY_VERSION)
			while (n_versions < ZW_RK_MAX_VERSIONS && rk->versions[n_versions])
				n_versions++;
		for (size_t v = 0; v < n_versions; v++) {
			for (size_t i = 0; i < n_ns; i++) {
				struct one_watch *w = &s->watches[k];
				const char *ns = NULL;
				if (i == n_ns - extra) { /* the proxy namespace's slot */
					if (!ports)
						continue;
					ns = cfg->proxy_namespace;
				} else if (cfg->n_namespaces > 0) {
					ns = cfg->namespaces[i];
				}
				w->owner = s;
				w->res = rk;
				w->version = rk->versions[v];
				if (ns) {
					w->namespace = strdup(ns);
					if (!w->namespace)
						goto fail;
				}
				k++;
			}
		}
	}
	s->n_watches = k;
	for (size_t i = 0; i < s->n_watches; i++) {
		struct one_watch *w = &s->watches[i];
		struct zw_watchloop_spec spec = {
		        .group = w->res->group,
		        .version = w->version,
		        .resource = w->res->resource,
		        .namespace = w->namespace,
		        .on_event = on_event,
		        .on_status = on_status,
		        .backoff_max_ms = ZW_WH_SOURCES_BACKOFF_MAX_MS,
		        .ud = w,
		};
		if (zw_watchloop_add(cfg->loop, &spec, &w->sub) < 0)
			goto fail;
	}
	*out = s;
	return 0;
fail:
	zw_wh_sources_stop(s);
	return -ENOMEM;
}

int zw_wh_sources_synced(struct zw_wh_sources *s)
{
	if (!s)
		return 0;
	for (size_t i = 0; i < s->n_watches; i++)
		if (!atomic_load(&s->watches[i].synced))
			return 0;
	return 1;
}

void zw_wh_sources_stop(struct zw_wh_sources *s)
{
	if (!s)
		return;
	for (size_t i = 0; s->watches && i < s->n_alloc; i++) {
		zw_watchloop_remove(s->cfg.loop, s->watches[i].sub);
		free(s->watches[i].namespace);
	}
	free(s->watches);
	free(s);
}
