/* zerowire-webhook wiring: ReferenceGrants, alias Services and their
 * EndpointSlices (see wiring.h). */
#include "wiring.h"

#include "alias.h"
#include "kobj.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define GATEWAY_GROUP "gateway.networking.k8s.io"
#define GRANT_PREFIX  "zerowire-"

int zw_wiring_needs_init(struct zw_wiring_needs *n)
{
	n->grants = json_object();
	n->aliases = json_object();
	if (n->grants && n->aliases)
		return 0;
	zw_wiring_needs_free(n);
	return -ENOMEM;
}

void zw_wiring_needs_free(struct zw_wiring_needs *n)
{
	json_decref(n->grants);
	json_decref(n->aliases);
	n->grants = n->aliases = NULL;
}

/* Nonzero when ref (a backendRef) names the proxy Service. */
static int names_proxy(const struct zw_mutate_config *m, const json_t *ref, const char *ns)
{
	const char *group = zw_kobj_str(ref, "group"), *kind = zw_kobj_str(ref, "kind");
	const char *rns = zw_kobj_str(ref, "namespace");

	if (group[0] != '\0' || (kind[0] != '\0' && strcmp(kind, "Service") != 0))
		return 0;
	if (rns[0] == '\0')
		rns = ns;
	return strcmp(zw_kobj_str(ref, "name"), m->proxy_service) == 0 &&
	       strcmp(rns, m->proxy_namespace) == 0;
}

static int gateway_route_needs_grant(const struct zw_mutate_config *m, const json_t *obj,
                                     const char *ns)
{
	json_t *rules = json_object_get(json_object_get(obj, "spec"), "rules"), *rule, *br;
	size_t i, j;

	if (strcmp(ns, m->proxy_namespace) == 0)
		return 0;
	json_array_foreach(rules, i, rule)
	{
		json_array_foreach(json_object_get(rule, "backendRefs"), j, br)
		{
			if (names_proxy(m, br, ns))
				return 1;
		}
	}
	return 0;
}

static int ingress_backend_alias(const struct zw_mutate_config *m, const json_t *backend)
{
	const json_t *svc = json_object_get(backend, "service");

	return svc && strcmp(zw_kobj_str(svc, "name"), m->alias_service) == 0;
}

static int ingress_needs_alias(const struct zw_mutate_config *m, const json_t *obj, const char *ns)
{
	json_t *spec = json_object_get(obj, "spec"), *rule, *path;
	size_t i, j;

	if (strcmp(ns, m->proxy_namespace) == 0 && strcmp(m->alias_service, m->proxy_service) == 0)
		return 0;
	if (ingress_backend_alias(m, json_object_get(spec, "defaultBackend")))
		return 1;
	json_array_foreach(json_object_get(spec, "rules"), i, rule)
	{
		json_array_foreach(json_object_get(json_object_get(rule, "http"), "paths"), j, path)
		{
			if (ingress_backend_alias(m, json_object_get(path, "backend")))
				return 1;
		}
	}
	return 0;
}

void zw_wiring_route_needs(const struct zw_mutate_config *m, const struct zw_route_kind *rk,
                           const json_t *obj, const char *ns, int *alias, int *grant)
{
	*alias = 0;
	*grant = 0;
	if (rk->wiring == ZW_WIRE_ALIAS)
		*alias = ingress_needs_alias(m, obj, ns);
	else if (rk->wiring == ZW_WIRE_GRANT_HTTPROUTE || rk->wiring == ZW_WIRE_GRANT_GRPCROUTE)
		*grant = gateway_route_needs_grant(m, obj, ns);
}

int zw_wiring_needs_add(struct zw_wiring_needs *n, const struct zw_route_kind *rk, const char *ns,
                        int alias, int grant)
{
	if (alias && json_object_set_new(n->aliases, ns, json_true()) < 0)
		return -ENOMEM;
	if (grant) {
		json_t *set = json_object_get(n->grants, ns);
		if (!set) {
			set = json_object();
			if (json_object_set_new(n->grants, ns, set) < 0)
				return -ENOMEM;
		}
		if (json_object_set_new(set, rk->kind, json_true()) < 0)
			return -ENOMEM;
	}
	return 0;
}

static enum zw_wiring grant_wiring(const char *route_kind)
{
	return strcmp(route_kind, "GRPCRoute") == 0 ? ZW_WIRE_GRANT_GRPCROUTE
	                                            : ZW_WIRE_GRANT_HTTPROUTE;
}

/* Creates or fixes the ReferenceGrant of namespace ns letting the route
 * kinds of set (Kind -> true) reach the proxy Service; cur is the one seen
 * (NULL: none). */
static void sync_grant(const struct zw_wiring_ctx *w, const char *version, const char *ns,
                       json_t *set, json_t *cur)
{
	const char *pns = w->mutate->proxy_namespace;
	char name[300];
	json_t *from = json_array(), *want;
	const char *k;
	json_t *v;

	snprintf(name, sizeof(name), GRANT_PREFIX "%s", ns);
	json_object_foreach(set, k, v)
	{
		json_array_append_new(from, json_pack("{s:s,s:s,s:s}", "group", GATEWAY_GROUP,
		                                      "kind", k, "namespace", ns));
	}
	want = json_pack("{s:o,s:[{s:s,s:s,s:s}]}", "from", from, "to", "group", "", "kind",
	                 "Service", "name", w->mutate->proxy_service);
	if (!cur) {
		char av[128];
		json_t *obj;
		snprintf(av, sizeof(av), GATEWAY_GROUP "/%s", version);
		obj = json_pack("{s:s,s:s,s:{s:s,s:s,s:o},s:O}", "apiVersion", av, "kind",
		                "ReferenceGrant", "metadata", "name", name, "namespace", pns,
		                "labels", zw_managed_labels("referencegrant"), "spec", want);
		if (obj && zw_managed_create(w->managed, GATEWAY_GROUP, version, "referencegrants",
		                             pns, obj, "ReferenceGrant") == 0) {
			json_object_foreach(set, k, v)
			{
				zw_registry_set_wiring(w->reg, grant_wiring(k), ns, true);
			}
		}
		json_decref(obj);
	} else {
		if (!json_equal(json_object_get(cur, "spec"), want)) {
			json_t *patch = json_pack("{s:O}", "spec", want);
			if (patch)
				zw_managed_patch(w->managed, GATEWAY_GROUP, version,
				                 "referencegrants", cur, patch, "ReferenceGrant");
			json_decref(patch);
		}
		zw_registry_set_wiring(w->reg, ZW_WIRE_GRANT_HTTPROUTE, ns,
		                       !!json_object_get(set, "HTTPRoute"));
		zw_registry_set_wiring(w->reg, ZW_WIRE_GRANT_GRPCROUTE, ns,
		                       !!json_object_get(set, "GRPCRoute"));
	}
	json_decref(want);
}

/* ReferenceGrants `zerowire-<ns>` in the proxy namespace. */
static void pass_grants(const struct zw_wiring_ctx *w, json_t *needed,
                        const struct zw_watched_list *seen)
{
	const char *version = seen->version;
	const char *pns = w->mutate->proxy_namespace;
	json_t *have = json_object(), *set;
	const char *ns;

	if (!have)
		return;
	if (!version) {
		/* ReferenceGrant not served: nothing to create, and admission
		 * cannot expect one. */
		json_object_foreach(needed, ns, set)
		{
			zw_registry_set_wiring(w->reg, ZW_WIRE_GRANT_HTTPROUTE, ns, false);
		}
		goto out;
	}
	for (size_t i = 0; i < zw_watched_count(seen); i++) {
		json_t *obj = zw_watched_at(seen, i)->obj;
		const char *name = zw_kobj_meta(obj, "name");
		if (strcmp(zw_kobj_meta(obj, "namespace"), pns) != 0 ||
		    strncmp(name, GRANT_PREFIX, strlen(GRANT_PREFIX)) != 0)
			continue;
		json_object_set(have, name, obj);
	}
	/* Create or fix what is needed. */
	json_object_foreach(needed, ns, set)
	{
		char name[300];
		snprintf(name, sizeof(name), GRANT_PREFIX "%s", ns);
		sync_grant(w, version, ns, set, json_object_get(have, name));
	}
	/* Remove what nothing needs. */
	{
		const char *name;
		json_t *obj;
		json_object_foreach(have, name, obj)
		{
			const char *gns = name + strlen(GRANT_PREFIX);
			if (json_object_get(needed, gns))
				continue;
			if (zw_managed_delete(w->managed, GATEWAY_GROUP, version, "referencegrants",
			                      obj, "ReferenceGrant") == 0) {
				zw_registry_set_wiring(w->reg, ZW_WIRE_GRANT_HTTPROUTE, gns, false);
				zw_registry_set_wiring(w->reg, ZW_WIRE_GRANT_GRPCROUTE, gns, false);
			}
		}
	}
out:
	json_decref(have);
}

/* The proxy Service (borrowed from seen), or NULL when not seen. */
static json_t *proxy_service(const struct zw_wiring_ctx *w, const struct zw_watched_list *svcs)
{
	json_t *found = NULL;

	for (size_t i = 0; i < zw_watched_count(svcs); i++) {
		json_t *obj = zw_watched_at(svcs, i)->obj;
		if (strcmp(zw_kobj_meta(obj, "name"), w->mutate->proxy_service) == 0 &&
		    strcmp(zw_kobj_meta(obj, "namespace"), w->mutate->proxy_namespace) == 0)
			found = obj;
	}
	return found;
}

/* The alias EndpointSlices (endpointslice mode): for every alias Service
 * in have (ns -> object, created already: it owns them), one per address
 * type of the proxy Service's EndpointSlices, with their ready endpoints;
 * every other managed alias slice is deleted. */
static void pass_alias_slices(const struct zw_wiring_ctx *w, const json_t *have,
                              const struct zw_wiring_seen *seen)
{
	const struct zw_watched_list *mine = seen->alias_slices, *proxy = seen->proxy_slices;
	const char *version = mine->version;
	const struct zw_mutate_config *m = w->mutate;
	json_t *slices = json_array(), *want = json_object(), *mirror = NULL, *item, *svc;
	const char *ns, *key;
	char av[64];

	if (!version || !slices || !want)
		goto out;
	snprintf(av, sizeof(av), "discovery.k8s.io/%s", version);
	for (size_t i = 0; i < zw_watched_count(proxy); i++) {
		json_t *obj = zw_watched_at(proxy, i)->obj;
		if (strcmp(zw_kobj_meta(obj, "namespace"), m->proxy_namespace) == 0)
			json_array_append(slices, obj);
	}
	mirror = zw_alias_mirror(slices, m->proxy_service);
	if (!mirror)
		goto out;
	if (w->alias_mode == ZW_ALIAS_ENDPOINTSLICE)
		json_object_foreach((json_t *)have, ns, svc)
		{
			const char *type;
			json_t *entry;
			if (zw_kobj_meta(svc, "uid")[0] == '\0')
				continue;
			json_object_foreach(mirror, type, entry)
			{
				json_t *obj = zw_alias_slice_object(
				        ns, m->alias_service, zw_kobj_meta(svc, "uid"), av, entry);
				char k[600];
				if (!obj)
					continue;
				snprintf(k, sizeof(k), "%s/%s", ns, zw_kobj_meta(obj, "name"));
				json_object_set_new(want, k, obj);
			}
		}
	for (size_t i = 0; i < zw_watched_count(mine); i++) {
		json_t *obj = zw_watched_at(mine, i)->obj, *wanted;
		char k[600];
		if (strcmp(zw_kobj_label(obj, ZW_WIRING_LABEL), "alias") != 0)
			continue;
		snprintf(k, sizeof(k), "%s/%s", zw_kobj_meta(obj, "namespace"),
		         zw_kobj_meta(obj, "name"));
		wanted = json_object_get(want, k);
		if (!wanted) {
			zw_managed_delete(w->managed, "discovery.k8s.io", version, "endpointslices",
			                  obj, "alias EndpointSlice");
		} else {
			if (!zw_alias_slice_matches(obj, wanted)) {
				json_t *patch =
				        json_pack("{s:O,s:O}", "endpoints",
				                  json_object_get(wanted, "endpoints"), "ports",
				                  json_object_get(wanted, "ports"));
				if (patch)
					zw_managed_patch(w->managed, "discovery.k8s.io", version,
					                 "endpointslices", obj, patch,
					                 "alias EndpointSlice");
				json_decref(patch);
			}
			json_object_del(want, k);
		}
	}
	json_object_foreach(want, key, item)
	{
		zw_managed_create(w->managed, "discovery.k8s.io", version, "endpointslices",
		                  zw_kobj_meta(item, "namespace"), item, "alias EndpointSlice");
	}
out:
	json_decref(mirror);
	json_decref(want);
	json_decref(slices);
}

/* Alias Services for Ingress namespaces: selectorless with mirrored
 * EndpointSlices, or ExternalName to the proxy (alias.h); a Service of the
 * other mode is converted in place. */
static void pass_aliases(const struct zw_wiring_ctx *w, json_t *needed,
                         const struct zw_wiring_seen *seen)
{
	const struct zw_mutate_config *m = w->mutate;
	json_t *have = json_object(), *kept = json_object();
	json_t *proxy_svc = proxy_service(w, seen->proxy_svcs);
	char fqdn[512];
	const char *ns;
	json_t *v;

	if (!have || !kept)
		goto out;
	snprintf(fqdn, sizeof(fqdn), "%s.%s.svc.%s", m->proxy_service, m->proxy_namespace,
	         m->cluster_domain ? m->cluster_domain : "cluster.local");
	for (size_t i = 0; i < zw_watched_count(seen->aliases); i++) {
		json_t *obj = zw_watched_at(seen->aliases, i)->obj;
		if (strcmp(zw_kobj_label(obj, ZW_WIRING_LABEL), "alias") != 0 ||
		    strcmp(zw_kobj_meta(obj, "name"), m->alias_service) != 0)
			continue;
		json_object_set(have, zw_kobj_meta(obj, "namespace"), obj);
	}
	json_object_foreach(needed, ns, v)
	{
		json_t *cur = json_object_get(have, ns);
		json_t *spec = zw_alias_service_spec(w->alias_mode, fqdn, proxy_svc, m->proxy_port,
		                                     m->proxy_h2c_port);
		if (!spec)
			continue;
		if (!cur) {
			json_t *obj = json_pack("{s:s,s:s,s:{s:s,s:s,s:o},s:O}", "apiVersion", "v1",
			                        "kind", "Service", "metadata", "name",
			                        m->alias_service, "namespace", ns, "labels",
			                        zw_managed_labels("alias"), "spec", spec);
			if (obj && zw_managed_create(w->managed, "", "v1", "services", ns, obj,
			                             "alias Service") == 0)
				zw_registry_set_wiring(w->reg, ZW_WIRE_ALIAS, ns, true);
			json_decref(obj);
		} else {
			json_t *patch = zw_alias_service_patch(cur, spec);
			if (patch)
				zw_managed_patch(w->managed, "", "v1", "services", cur, patch,
				                 "alias Service");
			json_decref(patch);
			json_object_set(kept, ns, cur);
			zw_registry_set_wiring(w->reg, ZW_WIRE_ALIAS, ns, true);
		}
		json_decref(spec);
	}
	json_object_foreach(have, ns, v)
	{
		if (json_object_get(needed, ns))
			continue;
		if (zw_managed_delete(w->managed, "", "v1", "services", v, "alias Service") == 0)
			zw_registry_set_wiring(w->reg, ZW_WIRE_ALIAS, ns, false);
	}
	pass_alias_slices(w, kept, seen);
out:
	json_decref(kept);
	json_decref(have);
}

void zw_wiring_pass(const struct zw_wiring_ctx *w, const struct zw_wiring_needs *needs,
                    const struct zw_wiring_seen *seen)
{
	pass_grants(w, needs->grants, seen->grants);
	pass_aliases(w, needs->aliases, seen);
}
