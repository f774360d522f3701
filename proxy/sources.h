/* zerowire-proxy sources: feed the routing table and the endpoint store.
 *
 * Live mode (cfg->kube != NULL): on the given libuv loop (the proxy's
 * control loop), list+watch through lib/'s libuv Kubernetes driver:
 *   ScaledObjects       keda.sh/v1alpha1
 *   HTTPScaledObjects   http.keda.sh/v1alpha1   (waits quietly while the CRD is absent)
 *   InterceptorRoutes   http.keda.sh/v1beta1    (idem)
 *   EndpointSlices      discovery.k8s.io/v1, or v1beta1 where v1 is not served
 *   Services            v1 (port number -> port name resolution)
 * in every namespace, or in each namespace of cfg->namespaces (and the
 * EndpointSlices and Services of cfg->peers_namespace, so the peers Service
 * is known whatever the list says); and each
 * ConfigMap a target's placeholder or static route takes its body from
 * (one watch per ConfigMap, by name, while some target names it; at most
 * ZW_SOURCES_MAX_CONFIGMAPS); and each TLS Secret of cfg->tls_secrets
 * (by name, into cfg->certs; docs/tls.md).
 *
 * Static mode (cfg->kube == NULL): targets from cfg->targets_file (YAML or
 * JSON, several documents or a List of ScaledObjects / HTTPScaledObjects /
 * InterceptorRoutes, and ConfigMaps for response bodies), endpoints from cfg->endpoints_file
 * (YAML/JSON EndpointSlices and optional Services) and/or cfg->endpoints_spec
 * ("ns/svc:port=ip:port,..." as zw_endpoints_apply_spec). Files are read in
 * libuv's thread pool, re-read on zw_sources_reload() (e.g. SIGHUP) and when
 * their mtime changes (polled every cfg->poll_ms).
 *
 * Targets: each source object is parsed when it arrives (lib/target.h);
 * an invalid object is logged once per resourceVersion and skipped.
 * InterceptorRoutes and HTTPScaledObjects are linked to the ScaledObjects
 * that name them; an HTTPScaledObject with the same namespace/name as an
 * InterceptorRoute is dropped (the InterceptorRoute wins). Changes are
 * coalesced: the table is rebuilt and published at most once per
 * cfg->coalesce_ms. Endpoint events go straight into the store.
 *
 * "Synced" (for /readyz) becomes true once every initial list has been
 * applied and the first table published (static mode: after the first
 * successful load). All functions must be called on the loop's thread except
 * zw_sources_synced(), which any thread may call. */
#ifndef ZW_SOURCES_H
#define ZW_SOURCES_H

#include "certstore.h"
#include "endpoints.h"
#include "kubeconfig.h"
#include "routes.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define ZW_SOURCES_COALESCE_MS     50     /* default cfg->coalesce_ms */
#define ZW_SOURCES_POLL_MS         1000   /* default cfg->poll_ms (static mode) */
#define ZW_SOURCES_MAX_NS          64     /* namespaces in cfg->namespaces */
#define ZW_SOURCES_MAX_CONFIGMAPS  1000   /* ConfigMaps watched for response bodies */
#define ZW_SOURCES_MAX_OBJECTS     100000 /* target source objects kept */
#define ZW_SOURCES_MAX_TLS_SECRETS 65     /* --tls-secret values and the default */

struct zw_sources_config {
	/* Live mode: API server configuration (borrowed; must outlive the
	 * sources). NULL selects static mode. */
	struct zw_kube_config *kube;
	/* Namespaces to watch (borrowed strings, copied); n_namespaces 0 = all. */
	const char *const *namespaces;
	size_t n_namespaces;
	/* Live mode: the namespace of the peers Service (--peers-service;
	 * borrowed, copied), may be NULL. Its EndpointSlices and Services are
	 * watched too when namespaces leaves it out. */
	const char *peers_namespace;

	/* Static mode inputs (borrowed, copied); each may be NULL. */
	const char *targets_file;
	const char *endpoints_file;
	const char *endpoints_spec;
	uint64_t poll_ms; /* 0 = ZW_SOURCES_POLL_MS; UINT64_MAX = no polling */

	uint64_t coalesce_ms; /* 0 = ZW_SOURCES_COALESCE_MS */

	/* Live mode: TLS Secrets (kubernetes.io/tls) watched by name into
	 * `certs` (borrowed; must outlive the sources), each "namespace/name"
	 * (borrowed, copied); the default one is put as the store's default.
	 * A Secret that does not load is logged and the last good certificate
	 * kept; a deleted one is removed. At most ZW_SOURCES_MAX_TLS_SECRETS. */
	struct zw_certstore *certs;
	const char *const *tls_secrets;
	size_t n_tls_secrets;
	const char *tls_default_secret; /* may be NULL */

	/* Optional hook after each publish (on the loop thread): table is
	 * borrowed for the call (take a ref to keep it). */
	void (*on_publish)(void *ctx, struct zw_route_table *table);
	void *ctx;
};

/* Counters for logs, /metrics and tests (loop thread). */
struct zw_sources_stats {
	uint64_t publishes;     /* tables published */
	uint64_t invalid;       /* invalid source objects seen (each logged once) */
	uint64_t reloads;       /* static loads (successful) */
	uint64_t reload_errors; /* static loads that failed (previous state kept) */
	size_t targets;         /* targets in the last published table */
	size_t objects;         /* source objects currently known */
};

struct zw_sources;

/* Creates the sources on loop (borrowed) feeding `routes` and `eps`
 * (borrowed; both must outlive the sources). Nothing runs until
 * zw_sources_start. *out is owned by the caller (zw_sources_close). Returns
 * 0, UV_ENOMEM or UV_EINVAL (with a message in err: bad config). */
int zw_sources_new(uv_loop_t *loop, const struct zw_sources_config *cfg,
                   struct zw_route_current *routes, struct zw_endpoints *eps,
                   struct zw_sources **out, char *err, size_t errlen);

/* Starts the watches (live) or the first load and mtime polling (static).
 * Errors later on are logged and retried with backoff (live) or keep the
 * previous state (static). Returns 0 or a negative UV_* code. */
int zw_sources_start(struct zw_sources *s);

/* Static mode: re-reads the files now (asynchronously). Live mode: no-op.
 * Returns 0. */
int zw_sources_reload(struct zw_sources *s);

/* True once everything was listed/loaded and a table published. Any thread. */
bool zw_sources_synced(const struct zw_sources *s);

/* Copies the counters into *out. */
void zw_sources_get_stats(const struct zw_sources *s, struct zw_sources_stats *out);

/* Stops watches, timers and polls and frees s once every libuv handle has
 * closed; `done` (may be NULL) is then called with ctx from the loop. Safe to
 * call once; the loop must keep running until done fires. */
void zw_sources_close(struct zw_sources *s, void (*done)(void *ctx), void *ctx);

#endif
