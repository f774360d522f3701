/* zerowire-webhook managed objects: the writes of the objects the
 * reconciler owns (alias Services and EndpointSlices, ReferenceGrants,
 * generated ScaledObjects). Each carries the label
 * app.kubernetes.io/managed-by: zerowire and zerowire.io/wiring: <role>;
 * zerowire deletes nothing without them. Every write is blocking (kube.h),
 * counted in the reconcile metrics and logged; a failed create is logged
 * once per object and HTTP status. */
#ifndef ZW_MANAGED_H
#define ZW_MANAGED_H

#include "kube.h"
#include "whmetrics.h"

#include <jansson.h>

#define ZW_MANAGED_LABEL    "app.kubernetes.io/managed-by"
#define ZW_MANAGED_VALUE    "zerowire"
#define ZW_MANAGED_SELECTOR ZW_MANAGED_LABEL "=" ZW_MANAGED_VALUE
#define ZW_WIRING_LABEL     "zerowire.io/wiring"

struct zw_managed {
	struct zw_kube *kube;          /* borrowed */
	struct zw_wh_metrics *metrics; /* borrowed, may be NULL */
	json_t *create_failures;       /* "resource/ns/name" -> last logged HTTP status */
};

/* Sets up m for client kube and metrics (borrowed). Returns 0 or -ENOMEM. */
int zw_managed_init(struct zw_managed *m, struct zw_kube *kube, struct zw_wh_metrics *metrics);

/* Frees what m holds (not m). */
void zw_managed_free(struct zw_managed *m);

/* Returns a new labels object (NULL on ENOMEM) marking an object managed
 * with wiring role `role` (borrowed). */
json_t *zw_managed_labels(const char *role);

/* Returns 1 when obj (borrowed) carries the managed label and wiring role
 * `role`, else 0. */
int zw_managed_is(const json_t *obj, const char *role);

/* Creates obj (borrowed) of group/version/resource in namespace ns; what
 * names it in logs. Returns 0, or -EIO (logged, counted). */
int zw_managed_create(struct zw_managed *m, const char *group, const char *version,
                      const char *resource, const char *ns, json_t *obj, const char *what);

/* Deletes obj (borrowed, as watched); 404 counts as done. Returns 0, or
 * -EIO (logged, counted). */
int zw_managed_delete(struct zw_managed *m, const char *group, const char *version,
                      const char *resource, const json_t *obj, const char *what);

/* Merge-patches obj (borrowed, as watched) with patch (borrowed). Returns 0,
 * or -EIO (logged, counted). */
int zw_managed_patch(struct zw_managed *m, const char *group, const char *version,
                     const char *resource, const json_t *obj, json_t *patch, const char *what);

#endif
