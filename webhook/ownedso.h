/* zerowire-webhook owned ScaledObjects: for each HTTPScaledObject without
 * the annotation `httpscaledobject.keda.sh/skip-scaledobject-creation:
 * "true"`, a ScaledObject of the same name it owns (controller
 * ownerReference) with an external-push trigger `httpScaledObject: <name>`
 * at the proxy's scaler address; kept up to date (fields the API server
 * defaults do not count as drift), deleted with the HTTPScaledObject or
 * when the annotation appears. */
#ifndef ZW_OWNEDSO_H
#define ZW_OWNEDSO_H

#include "managed.h"
#include "watched.h"

#include <jansson.h>

#define ZW_OWNEDSO_SKIP "httpscaledobject.keda.sh/skip-scaledobject-creation"

/* Returns 1 when HTTPScaledObject hso (borrowed) asks for no ScaledObject. */
int zw_ownedso_skipped(const json_t *hso);

/* Returns the ScaledObject spec (a new reference, NULL on ENOMEM) generated
 * for HTTPScaledObject hso (borrowed) with the scaler at scaler_address. */
json_t *zw_ownedso_spec(const json_t *hso, const char *scaler_address);

/* Returns 1 when ScaledObject so (borrowed) is owned by an HTTPScaledObject,
 * with *owner_uid (borrowed from so) its uid, else 0. */
int zw_ownedso_owner(const json_t *so, const char **owner_uid);

/* Returns 1 when every member of want equals the same member of have
 * (recursively for objects; both borrowed), else 0. */
int zw_ownedso_subset_equal(const json_t *want, const json_t *have);

/* Makes the managed ScaledObjects (sos: the managed ones watched) match the
 * HTTPScaledObjects (hsos), writing through m; both lists borrowed. */
void zw_ownedso_pass(struct zw_managed *m, const char *scaler_address,
                     const struct zw_watched_list *hsos, const struct zw_watched_list *sos);

#endif
