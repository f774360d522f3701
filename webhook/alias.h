/* zerowire-webhook: the alias Service an Ingress in another namespace than
 * the proxy's leads to (an Ingress backend can only name a Service of its own
 * namespace). Two ways to make it lead to the proxy:
 *
 *   endpointslice (default): a selectorless ClusterIP Service with the proxy
 *     Service's ports, and one EndpointSlice per address type
 *     (`<alias>-zw-ipv4`, ...; labels kubernetes.io/service-name: <alias>,
 *     endpointslice.kubernetes.io/managed-by: zerowire.io/webhook) whose
 *     endpoints are the ready endpoints of the proxy Service's own
 *     EndpointSlices, kept in sync by the reconciler. Works with every
 *     Ingress controller and kube-proxy, since it is an ordinary Service.
 *   externalname: a Service of type ExternalName naming the proxy Service's
 *     FQDN. Several controllers refuse ExternalName backends or keep them
 *     behind an opt-in (Traefik, Contour, AWS Load Balancer Controller, GKE).
 *
 * This file holds what is computed (no API calls): the reconciler
 * (reconcile.c) reads the objects, calls these and writes the results. */
#ifndef ZW_ALIAS_H
#define ZW_ALIAS_H

#include <jansson.h>

enum zw_alias_mode {
	ZW_ALIAS_ENDPOINTSLICE = 0,
	ZW_ALIAS_EXTERNALNAME = 1,
};

#define ZW_ALIAS_SLICE_MANAGER "webhook.zerowire.io" /* endpointslice.kubernetes.io/managed-by */

/* Takes a flag value ("endpointslice" or "externalname", borrowed). Returns
 * 0 with *out set, or -1 when s names no mode. */
int zw_alias_mode_parse(const char *s, enum zw_alias_mode *out);

/* appProtocol of the proxy's h2c port (HTTP/2 with prior knowledge). */
#define ZW_ALIAS_H2C_APP "kubernetes.io/h2c"

/* Takes the mode, the proxy Service's FQDN, the proxy Service object
 * (borrowed; NULL when not seen yet) and the proxy's HTTP and h2c ports
 * (used when the Service is not known: ports "http" and, when h2c_port > 0,
 * "h2c"; else its ports are copied with their appProtocol). Returns the
 * alias Service's spec (a new reference, owned by the caller), or NULL when
 * out of memory. */
json_t *zw_alias_service_spec(enum zw_alias_mode mode, const char *fqdn, const json_t *proxy_svc,
                              int proxy_port, int h2c_port);

/* Takes an existing alias Service object and the spec wanted
 * (zw_alias_service_spec), both borrowed. Returns a merge patch converting
 * it (a new reference, owned by the caller; it also clears the fields of the
 * other type), or NULL when it already matches (or out of memory). */
json_t *zw_alias_service_patch(const json_t *cur, const json_t *want);

/* Takes EndpointSlice objects (a JSON array, borrowed) and keeps those
 * labelled kubernetes.io/service-name: service (every one when service is
 * NULL). Returns a new object owned by the caller: addressType ->
 * {"addressType", "endpoints", "ports"}, endpoints being the ready ones
 * (conditions.ready not false) as {"addresses", "conditions": {"ready":
 * true}}, without duplicates, sorted by first address; ports {"name",
 * "port", "protocol"[, "appProtocol"]} of all slices, by name. NULL when
 * out of memory. */
json_t *zw_alias_mirror(const json_t *slices, const char *service);

/* Takes the alias namespace and Service name, the alias Service's uid (its
 * owner), the EndpointSlice apiVersion and one entry of zw_alias_mirror (all
 * borrowed). Returns the alias EndpointSlice object (a new reference owned
 * by the caller; name via zw_alias_slice_name), or NULL when out of memory. */
json_t *zw_alias_slice_object(const char *ns, const char *alias, const char *uid,
                              const char *api_version, const json_t *entry);

/* Takes an alias name and an addressType (borrowed) and writes the alias
 * EndpointSlice's name, `<alias>-zw-<addresstype lower case>`, into buf.
 * Returns 0, or -1 when it does not fit. */
int zw_alias_slice_name(const char *alias, const char *address_type, char *buf, size_t len);

/* Takes an existing alias EndpointSlice and the object wanted (both
 * borrowed). Returns 1 when their address type, ready endpoints and ports
 * are the same, else 0. */
int zw_alias_slice_matches(const json_t *cur, const json_t *want);

#endif
