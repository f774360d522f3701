/* zerowire-webhook route sync: keeps every watched route (each ZW_RK_ADMIT
 * kind of routekinds.h) as admission would make it now. A route whose
 * admission would give a different object (zw_mutate_object: a target
 * appeared, changed or went away) gets the annotation
 * `zerowire.io/reconcile: "<registry generation>-<seq>"` by merge patch, so
 * that the API server sends it through the webhook again; a route in a
 * namespace that opted out (zerowire.io/autowire: "false", where admission
 * is not called) is restored by a direct patch (restore.h). It collects
 * what the routes need of the wiring (wiring.h).
 *
 * Per route it keeps one typed record: what admission made of it while
 * neither the route (resourceVersion) nor the registry (generation)
 * changed, so unchanged routes are not evaluated again; and its last touch,
 * so a route is touched at most once per registry generation and version
 * (again after ZW_ROUTESYNC_RETOUCH_MS when admission left it unchanged:
 * the webhook did not see it). */
#ifndef ZW_ROUTESYNC_H
#define ZW_ROUTESYNC_H

#include "buf.h"
#include "kube.h"
#include "mutate.h"
#include "registry.h"
#include "watched.h"
#include "whmetrics.h"
#include "wiring.h"

#include <stdbool.h>
#include <stdint.h>

#define ZW_ROUTESYNC_ANNOTATION  "zerowire.io/reconcile"
#define ZW_ROUTESYNC_MAX_TOUCHES 500    /* per pass; the rest wait for the next */
#define ZW_ROUTESYNC_RETOUCH_MS  300000 /* a touch admission ignored is tried again */

/* What is known of one route, "resource.group/ns/name". */
struct zw_route_rec {
	char *key; /* owned */
	/* Admission's verdict, valid for eval_rv at eval_gen. */
	bool evaluated;
	char *eval_rv; /* owned */
	uint64_t eval_gen;
	bool alias, grant; /* the wiring it needs */
	bool differs;      /* admission would change it */
	/* Last touch: the resourceVersion it left, at registry generation touch_gen. */
	bool touched;
	char *touch_rv; /* owned */
	uint64_t touch_gen;
	long long touch_at_ms;
};

/* The records, sorted by key. A zeroed table is empty. */
struct zw_route_recs {
	struct zw_buf v; /* struct zw_route_rec[] */
};

/* Returns the record of key in t (borrowed from t), or NULL. */
struct zw_route_rec *zw_route_recs_find(const struct zw_route_recs *t, const char *key);

/* Returns the number of records of t. */
size_t zw_route_recs_count(const struct zw_route_recs *t);

/* Frees every record of t and empties it. */
void zw_route_recs_free(struct zw_route_recs *t);

/* Returns true when rec's verdict still holds for a route at resourceVersion
 * rv with the registry at generation gen. */
bool zw_route_rec_fresh(const struct zw_route_rec *rec, const char *rv, uint64_t gen);

/* Returns true when a route at rv that admission would change should not be
 * touched at now_ms: touched already for generation gen and left at rv, less
 * than ZW_ROUTESYNC_RETOUCH_MS ago. */
bool zw_route_rec_touch_pending(const struct zw_route_rec *rec, const char *rv, uint64_t gen,
                                long long now_ms);

struct zw_routesync {
	struct zw_kube *kube;                  /* borrowed */
	struct zw_registry *reg;               /* borrowed */
	struct zw_wh_metrics *metrics;         /* borrowed, may be NULL */
	const struct zw_mutate_config *mutate; /* borrowed */
	struct zw_route_recs recs;
	unsigned long long touch_seq;
};

/* One pass at monotonic time now_ms over routes (every watched route) and
 * optout (namespaces that opted out), both borrowed: restores, touches and
 * records as described above; adds what the routes need to needs.
 * Records of routes no longer watched are dropped. */
void zw_routesync_pass(struct zw_routesync *rs, const struct zw_watched_list *routes,
                       const struct zw_watched_list *optout, struct zw_wiring_needs *needs,
                       long long now_ms);

/* Frees what rs holds (not rs). */
void zw_routesync_free(struct zw_routesync *rs);

#endif
