/* zerowire-webhook owned ScaledObjects (see ownedso.h). */
#include "ownedso.h"

#include "apiversion.h"
#include "kobj.h"

#include <stdio.h>
#include <string.h>

#define SO_GROUP   "keda.sh"
#define SO_VERSION "v1alpha1"

int zw_ownedso_skipped(const json_t *hso)
{
	return strcmp(zw_kobj_annotation(hso, ZW_OWNEDSO_SKIP), "true") == 0;
}

json_t *zw_ownedso_spec(const json_t *hso, const char *scaler_address)
{
	json_t *spec = json_object_get(hso, "spec");
	json_t *str = json_object_get(spec, "scaleTargetRef");
	json_t *replicas = json_object_get(spec, "replicas");
	json_t *out, *ref, *v;

	out = json_pack("{s:{s:s},s:i,s:{s:b},s:[{s:s,s:{s:s,s:s}}]}", "scaleTargetRef", "name",
	                zw_kobj_str(str, "name"), "pollingInterval", 15, "advanced",
	                "restoreToOriginalReplicaCount", 1, "triggers", "type", "external-push",
	                "metadata", "scalerAddress", scaler_address, "httpScaledObject",
	                zw_kobj_meta(hso, "name"));
	if (!out)
		return NULL;
	ref = json_object_get(out, "scaleTargetRef");
	if (zw_kobj_str(str, "kind")[0] != '\0')
		json_object_set_new(ref, "kind", json_string(zw_kobj_str(str, "kind")));
	if (zw_kobj_str(str, "apiVersion")[0] != '\0')
		json_object_set_new(ref, "apiVersion", json_string(zw_kobj_str(str, "apiVersion")));
	if (json_is_integer(v = json_object_get(replicas, "min")))
		json_object_set(out, "minReplicaCount", v);
	if (json_is_integer(v = json_object_get(replicas, "max")))
		json_object_set(out, "maxReplicaCount", v);
	if (json_is_integer(v = json_object_get(spec, "scaledownPeriod")))
		json_object_set(out, "cooldownPeriod", v);
	if (json_is_integer(v = json_object_get(spec, "initialCooldownPeriod")))
		json_object_set(out, "initialCooldownPeriod", v);
	return out;
}

int zw_ownedso_subset_equal(const json_t *want, const json_t *have)
{
	const char *k;
	json_t *v;

	if (!json_is_object(want) || !json_is_object(have))
		return json_equal(want, have);
	json_object_foreach((json_t *)want, k, v)
	{
		if (!zw_ownedso_subset_equal(v, json_object_get(have, k)))
			return 0;
	}
	return 1;
}

int zw_ownedso_owner(const json_t *so, const char **owner_uid)
{
	json_t *refs = json_object_get(json_object_get(so, "metadata"), "ownerReferences"), *o;
	size_t i;

	json_array_foreach(refs, i, o)
	{
		if (strcmp(zw_kobj_str(o, "kind"), "HTTPScaledObject") == 0 &&
		    zw_api_group_is(zw_kobj_str(o, "apiVersion"), "http.keda.sh", NULL)) {
			*owner_uid = zw_kobj_str(o, "uid");
			return 1;
		}
	}
	return 0;
}

/* Creates or fixes the ScaledObject of hso (cur: the one seen, or NULL). */
static void sync_one(struct zw_managed *m, const char *scaler, const json_t *hso, json_t *cur)
{
	const char *ns = zw_kobj_meta(hso, "namespace"), *name = zw_kobj_meta(hso, "name");
	const char *apiv = zw_kobj_str(hso, "apiVersion");
	json_t *spec = zw_ownedso_spec(hso, scaler), *owner = NULL, *so;

	if (!spec)
		return;
	owner = json_pack("[{s:s,s:s,s:s,s:s,s:b,s:b}]", "apiVersion",
	                  apiv[0] ? apiv : "http.keda.sh/v1alpha1", "kind", "HTTPScaledObject",
	                  "name", name, "uid", zw_kobj_meta(hso, "uid"), "controller", 1,
	                  "blockOwnerDeletion", 1);
	if (!cur) {
		so = json_pack("{s:s,s:s,s:{s:s,s:s,s:o,s:O},s:O}", "apiVersion",
		               SO_GROUP "/" SO_VERSION, "kind", "ScaledObject", "metadata", "name",
		               name, "namespace", ns, "labels",
		               zw_managed_labels("httpscaledobject"), "ownerReferences", owner,
		               "spec", spec);
		if (so)
			zw_managed_create(m, SO_GROUP, SO_VERSION, "scaledobjects", ns, so,
			                  "ScaledObject");
		json_decref(so);
	} else if (!zw_ownedso_subset_equal(spec, json_object_get(cur, "spec"))) {
		json_t *patch = json_pack("{s:{s:O},s:O}", "metadata", "ownerReferences", owner,
		                          "spec", spec);
		if (patch)
			zw_managed_patch(m, SO_GROUP, SO_VERSION, "scaledobjects", cur, patch,
			                 "ScaledObject");
		json_decref(patch);
	}
	json_decref(owner);
	json_decref(spec);
}

void zw_ownedso_pass(struct zw_managed *m, const char *scaler_address,
                     const struct zw_watched_list *hsos, const struct zw_watched_list *sos)
{
	json_t *hso_by_key = json_object(), *so_by_key = json_object();
	char key[600];

	if (!hso_by_key || !so_by_key)
		goto out;
	for (size_t i = 0; i < zw_watched_count(hsos); i++) {
		json_t *hso = zw_watched_at(hsos, i)->obj;
		snprintf(key, sizeof(key), "%s/%s", zw_kobj_meta(hso, "namespace"),
		         zw_kobj_meta(hso, "name"));
		json_object_set(hso_by_key, key, hso);
	}
	/* Owned ScaledObjects whose HTTPScaledObject is gone or opted out. */
	for (size_t i = 0; i < zw_watched_count(sos); i++) {
		json_t *so = zw_watched_at(sos, i)->obj, *hso;
		const char *uid = "";
		snprintf(key, sizeof(key), "%s/%s", zw_kobj_meta(so, "namespace"),
		         zw_kobj_meta(so, "name"));
		json_object_set(so_by_key, key, so);
		if (!zw_ownedso_owner(so, &uid))
			continue;
		hso = json_object_get(hso_by_key, key);
		if (hso && !zw_ownedso_skipped(hso) && strcmp(zw_kobj_meta(hso, "uid"), uid) == 0)
			continue;
		zw_managed_delete(m, SO_GROUP, SO_VERSION, "scaledobjects", so, "ScaledObject");
	}
	for (size_t i = 0; i < zw_watched_count(hsos); i++) {
		json_t *hso = zw_watched_at(hsos, i)->obj;
		if (zw_ownedso_skipped(hso) || zw_kobj_meta(hso, "deletionTimestamp")[0] != '\0')
			continue;
		snprintf(key, sizeof(key), "%s/%s", zw_kobj_meta(hso, "namespace"),
		         zw_kobj_meta(hso, "name"));
		sync_one(m, scaler_address, hso, json_object_get(so_by_key, key));
	}
out:
	json_decref(hso_by_key);
	json_decref(so_by_key);
}
