/* zerowire webhook target registry: what admission needs to know about the
 * cluster, kept up to date by the watches (webhook/reconcile.c) and read by
 * every admission review (webhook/mutate.c).
 *
 * Contents:
 *   - targets (lib/target.h), grouped by source key (one key per source
 *     object, e.g. "ScaledObject/default/podinfo") and indexed by the
 *     Service they scale, (namespace, service name);
 *   - Gloo Edge Upstreams (gloo.solo.io/v1, read only) with a `kube` spec,
 *     so `single.upstream` destinations can be resolved to a Service;
 *   - Gloo Platform VirtualDestinations (networking.gloo.solo.io/v2) that
 *     name their Services, so VIRTUAL_DESTINATION destinations resolve;
 *   - optionally, Service port names (for the "port name not defined"
 *     warning and for matching a port name against a port number);
 *   - the targetRefs of Gateway API BackendTLSPolicies (which Service
 *     ports gateways speak TLS to);
 *   - Gateway API ReferenceGrants (v1, v1beta1, v1alpha2): which route
 *     kinds of which namespaces may refer to which Services of another;
 *   - wiring flags the reconciler sets once the cross-namespace objects
 *     exist (alias Service per namespace, ReferenceGrant per route kind and
 *     namespace), so admission can warn while they are missing.
 *
 * Thread safety: every function may be called from any thread. Writers take
 * an internal write lock; readers bracket their lookups with
 * zw_registry_read_begin() / zw_registry_read_end(), and pointers returned by
 * lookups are borrowed and valid only until zw_registry_read_end().
 *
 * Limits: none on the number of entries (one per watched object); strings
 * are copied. Every change increments the generation counter. */
#ifndef ZW_REGISTRY_H
#define ZW_REGISTRY_H

#include "target.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct zw_registry;

/* A Gloo Edge Upstream's kube spec (all strings borrowed from the registry). */
struct zw_registry_upstream {
	const char *namespace;
	const char *name;
	const char *service_namespace;
	const char *service_name;
	int service_port; /* 0 when unset */
};

/* Cross-namespace wiring the reconciler creates. */
enum zw_wiring {
	ZW_WIRE_ALIAS = 0,       /* alias Service (ExternalName to the proxy) in a namespace */
	ZW_WIRE_GRANT_HTTPROUTE, /* ReferenceGrant in the proxy namespace from HTTPRoutes of ns */
	ZW_WIRE_GRANT_GRPCROUTE, /* same for GRPCRoutes */
	ZW_WIRE_COUNT,
};

/* Creates an empty registry (generation 0). Returns NULL on ENOMEM. The
 * caller owns it; free with zw_registry_free. */
struct zw_registry *zw_registry_new(void);

/* Releases the registry and everything it holds. NULL-safe. No reader may
 * be inside read_begin/read_end. */
void zw_registry_free(struct zw_registry *reg);

/* Replaces every target registered under `source_key` (borrowed, copied)
 * with deep copies of ts[0..n) (borrowed). n == 0 removes the key. Returns 0,
 * or -1 on ENOMEM (registry unchanged). */
int zw_registry_set_targets(struct zw_registry *reg, const char *source_key,
                            const struct zw_target *ts, size_t n);

/* Removes every target registered under `source_key`. Returns 1 when
 * something was removed, 0 when the key was unknown. */
int zw_registry_remove_source(struct zw_registry *reg, const char *source_key);

/* Records a Gloo Edge Upstream `ns/name` (borrowed strings, copied) that
 * points at Service svc_ns/svc_name port `port` (0 = unset). Replaces an
 * earlier entry of the same name. Returns 0 or -1 on ENOMEM. */
int zw_registry_set_upstream(struct zw_registry *reg, const char *ns, const char *name,
                             const char *svc_ns, const char *svc_name, int port);

/* Forgets Upstream ns/name. Returns 1 when it was known, else 0. */
int zw_registry_remove_upstream(struct zw_registry *reg, const char *ns, const char *name);

/* Records a Gloo Platform VirtualDestination ns/name backed by the Service
 * svc_ns/svc_name; vd_port (0 = any) maps to the Service port svc_port
 * (0 = unknown, e.g. targetPort given by name). Call once per (service,
 * port) pair; zw_registry_remove_virtual_destination forgets all of them.
 * Returns 0 or -1 on ENOMEM. */
int zw_registry_add_virtual_destination(struct zw_registry *reg, const char *ns, const char *name,
                                        const char *svc_ns, const char *svc_name, int vd_port,
                                        int svc_port);

/* Forgets VirtualDestination ns/name. Returns 1 when it was known, else 0. */
int zw_registry_remove_virtual_destination(struct zw_registry *reg, const char *ns,
                                           const char *name);

/* One Service port as the registry keeps it. */
struct zw_service_port {
	const char *name; /* "" when unnamed */
	int number;
	int proto;       /* enum zw_proto (protocol.h) */
	const char *why; /* what decided proto ("appProtocol grpc"), may be NULL */
};

/* Records the ports of Service ns/name (ports[0..n), copied); a port with
 * number 0 and no name only marks the Service known. n == 0 forgets the
 * Service. Returns 0 or -1 on ENOMEM. */
int zw_registry_set_service_ports(struct zw_registry *reg, const char *ns, const char *name,
                                  const struct zw_service_port *ports, size_t n);

/* Sets or clears a wiring flag for namespace `ns`. Returns 0 or -1 on ENOMEM. */
int zw_registry_set_wiring(struct zw_registry *reg, enum zw_wiring what, const char *ns,
                           bool present);

/* Convenience for the watches: dispatches on apiVersion/kind of `obj`
 * (borrowed) and updates the registry. keda.sh ScaledObject, http.keda.sh
 * HTTPScaledObject and InterceptorRoute go through zw_target_parse_object
 * (source key "<Kind>/<ns>/<name>"; an invalid object removes its targets
 * and returns ZW_TARGET_EINVAL with err filled); gloo.solo.io/v1 Upstream
 * and networking.gloo.solo.io/v2 VirtualDestination are indexed; v1 Service
 * records its port names; gateway.networking.k8s.io BackendTLSPolicy its
 * Service targetRefs, ReferenceGrant its (from route kind and namespace, to
 * Service) pairs. `deleted` removes what the object contributed.
 * Returns 0, 1 when the object is of no interest, ZW_TARGET_EINVAL, or -1 on
 * ENOMEM. err (ZW_TARGET_ERRLEN bytes) may be NULL. */
int zw_registry_apply_object(struct zw_registry *reg, const json_t *obj, bool deleted, char *err);

/* Returns the generation counter (incremented by every change). */
uint64_t zw_registry_generation(const struct zw_registry *reg);

/* Returns the number of targets held. */
size_t zw_registry_target_count(const struct zw_registry *reg);

/* Enters a read section: lookups below are valid until zw_registry_read_end.
 * Read sections may nest across threads, not recursively in one thread
 * while a writer waits. */
void zw_registry_read_begin(const struct zw_registry *reg);

/* Leaves a read section. */
void zw_registry_read_end(const struct zw_registry *reg);

/* Fills out[0..max) with borrowed pointers to the targets whose Service is
 * ns/service, in source-key order, and returns how many exist (may exceed
 * max). Read section required. */
size_t zw_registry_find_service(const struct zw_registry *reg, const char *ns, const char *service,
                                const struct zw_target **out, size_t max);

/* Looks up Upstream ns/name into *out (borrowed strings). Returns 1 when
 * known, else 0. Read section required. */
int zw_registry_find_upstream(const struct zw_registry *reg, const char *ns, const char *name,
                              struct zw_registry_upstream *out);

/* Walks the Services backing VirtualDestination ns/name for VD port vd_port
 * (0 = any): calls fn(ctx, svc_ns, svc_name, svc_port) for each (strings
 * borrowed) until fn returns nonzero, and returns that value (0 when
 * exhausted, -1 when the VirtualDestination is unknown). Read section
 * required. */
int zw_registry_each_vd_service(
        const struct zw_registry *reg, const char *ns, const char *name, int vd_port,
        int (*fn)(void *ctx, const char *svc_ns, const char *svc_name, int svc_port), void *ctx);

/* The protocol of Service ns/name's port `port_name` (when non-empty) or
 * number `port` (when > 0), or of its only port when neither is given:
 * returns 1 with *proto (enum zw_proto) and *why (borrowed: valid in the
 * read section), 0 when the Service is known but not that port (or it has
 * several and none was named), -1 when the Service's ports are unknown.
 * Read section required. */
int zw_registry_service_protocol(const struct zw_registry *reg, const char *ns, const char *name,
                                 int port, const char *port_name, int *proto, const char **why);

/* Resolves port name `port_name` of Service ns/name: returns 1 and sets
 * *number when known, 0 when the Service is known but has no such port, -1
 * when the Service's ports are unknown. Read section required. */
int zw_registry_service_port(const struct zw_registry *reg, const char *ns, const char *name,
                             const char *port_name, int *number);

/* Whether a BackendTLSPolicy targets Service ns/name as a whole or its port
 * `port_name` (when non-empty) or number `port` (its name from the
 * Service's ports; a sectionName is taken as this port when the name is
 * unknown). Returns 1 with *policy ("<ns>/<policy>", borrowed: valid in the
 * read section), else 0. Read section required. */
int zw_registry_backend_tls(const struct zw_registry *reg, const char *ns, const char *name,
                            int port, const char *port_name, const char **policy);

/* Whether a ReferenceGrant in namespace ns lets routes of kind route_kind
 * ("HTTPRoute", "GRPCRoute") in namespace from_ns refer to Service
 * `service` of ns (a grant naming no Service allows all of them). Returns 1
 * with *grant ("<ns>/<grant>", borrowed: valid in the read section), else 0.
 * Read section required. */
int zw_registry_reference_grant(const struct zw_registry *reg, const char *ns, const char *from_ns,
                                const char *route_kind, const char *service, const char **grant);

/* Returns the wiring flag for ns. Read section required. */
bool zw_registry_wiring(const struct zw_registry *reg, enum zw_wiring what, const char *ns);

#endif
