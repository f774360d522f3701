/* zerowire KEDA external scaler: the `externalscaler.ExternalScaler` gRPC
 * service (IsActive, StreamIsActive, GetMetricSpec, GetMetrics,
 * StreamMetricSpec) over h2c on
 * the loop it is started on, the `metrics-api` JSON and peer admin
 * handlers, Prometheus lines, and peer replicas (docs/keda-scaler.md).
 *
 * Threading: every function here must be called on the scaler's loop
 * thread (the loop given to zw_scaler_start: the proxy's control loop, the
 * one that also runs the admin port and the Kubernetes watches), except
 * where noted. The data path talks to the scaler only through the
 * struct zw_stats registry (proxy/stats.h), whose wake notification is wired
 * by zw_scaler_start to a uv_async on this loop.
 *
 * Resolving a ScaledObjectRef {name, namespace, scalerMetadata} to a target:
 *   scalerMetadata.interceptorRoute = N  -> InterceptorRoute N in namespace
 *   scalerMetadata.httpScaledObject = N  -> HTTPScaledObject N in namespace
 *   otherwise                            -> the ScaledObject's own targets
 *     (source ScaledObject or kedify-http, name = ref name); with several
 *     triggers, the one whose service/port/hosts/pathPrefixes metadata match
 *   last resort: an InterceptorRoute/HTTPScaledObject target whose
 *     scaled_object is the ref's name.
 * The target's stats key is zw_target_key(target). Results are cached until
 * zw_scaler_targets_changed(). */
#ifndef ZW_SCALER_H
#define ZW_SCALER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "auth.h"
#include "stats.h"
#include "target.h"

struct zw_endpoints;

struct zw_scaler;

struct zw_scaler_config {
	const char *grpc_host;    /* listen address, default "0.0.0.0" */
	int grpc_port;            /* default 9090; 0 = ephemeral (zw_scaler_grpc_port) */
	uint64_t heartbeat_ms;    /* StreamIsActive heartbeat, default 1000 */
	uint64_t tick_ms;         /* stats sampling period, default 200 */
	size_t max_message;       /* largest gRPC message accepted, default 4 MiB */
	uint32_t max_streams;     /* concurrent streams per HTTP/2 connection, default 1000 */
	size_t max_connections;   /* gRPC connections, default 1024 */
	uint64_t idle_timeout_ms; /* gRPC connection with no stream, default 5 min */
	uint64_t peer_poll_ms;    /* peer counts poll period, default 500 */
	uint64_t peer_timeout_ms; /* one peer HTTP call, default 200 */
	int peer_port;            /* admin port of peers when an address has none, default 9091 */
	size_t max_peers;         /* default 64 */
	/* Peer token (borrowed; must outlive the scaler): checked on /peer/...
	 * and sent to peers. NULL: /peer/... refuses every request (401 without
	 * credentials, 403 with) and peers send none. */
	const struct zw_auth *auth;
};

/* Read access to the current targets, provided by the proxy (routing side).
 * each() calls fn(fnarg, t) for every current target (t borrowed for the
 * call) until fn returns nonzero. Called on the scaler's loop only. */
struct zw_scaler_targets {
	void (*each)(void *arg, int (*fn)(void *fnarg, const struct zw_target *t), void *fnarg);
	/* Optional fast check: nonzero when key (borrowed) is the stats key of
	 * a current target. NULL: each() is walked. */
	int (*known)(void *arg, const char *key);
	void *arg;
};

/* Fills *c with the defaults above. */
void zw_scaler_config_default(struct zw_scaler_config *c);

/* Binds the gRPC listener and starts the timers on `loop`. `stats` and
 * `targets` (copied struct; its arg borrowed) must outlive the scaler; `cfg`
 * is copied (grpc_host must stay valid). Sets stats' notify callback. On
 * success *out is the scaler (free with zw_scaler_stop). Returns 0, a
 * negative UV_E* from bind/listen, or -ENOMEM. */
int zw_scaler_start(uv_loop_t *loop, const struct zw_scaler_config *cfg, struct zw_stats *stats,
                    const struct zw_scaler_targets *targets, struct zw_scaler **out);

/* Returns the bound gRPC port (useful with grpc_port 0). */
int zw_scaler_grpc_port(const struct zw_scaler *s);

/* Tells the scaler the target set changed: resolution caches are dropped,
 * waiting StreamIsActive calls for unknown targets retry now, and every
 * StreamMetricSpec stream whose GetMetricSpec answer changed (metric names,
 * target values) gets the new answer. */
void zw_scaler_targets_changed(struct zw_scaler *s);

/* Replaces the peer replica list with `addrs` ("ip", "ip:port" or
 * "[v6]:port" of the peers' admin ports; copied). The replica's own address
 * may be included: it is recognised by its instance id and skipped. At most
 * max_peers are kept. Returns 0, -EINVAL for a malformed address (list
 * unchanged) or -ENOMEM. */
int zw_scaler_set_peers(struct zw_scaler *s, const char *const *addrs, size_t n);

/* Takes the peer list from the ready endpoints of the proxy's own headless
 * Service ns/svc in the endpoint store `eps` (borrowed; must outlive the
 * scaler), at Service port number `port` or name `port_name` (the admin
 * port): read now and again on each zw_scaler_endpoints_changed() for that
 * Service. The Service's EndpointSlices must be fed into the store (the
 * proxy's namespace watched). Replaces zw_scaler_set_peers lists. Returns 0,
 * -EINVAL (already set) or -ENOMEM. */
int zw_scaler_watch_peers(struct zw_scaler *s, struct zw_endpoints *eps, const char *ns,
                          const char *svc, int port, const char *port_name);

/* To be called from the proxy's endpoint-store change hook (same thread as
 * the scaler's loop) for every changed Service; refreshes the peers when it
 * is the peer Service. ns/svc borrowed. */
void zw_scaler_endpoints_changed(struct zw_scaler *s, const char *ns, const char *svc);

/* Pushes `true` now on every StreamIsActive of target `key` and marks it
 * active for a short while (as a local cold request would, without telling
 * peers). Used by the /peer/cold handler (which accepts only keys of current
 * targets); exposed for tests. At most ZW_SCALER_MAX_HINTS keys are marked
 * at a time (further ones only push). */
void zw_scaler_wake(struct zw_scaler *s, const char *key);

#define ZW_SCALER_MAX_HINTS 4096

/* Returns nonzero when `key` (borrowed) is the stats key of a current
 * target (targets.known, else a walk of targets.each). */
int zw_scaler_target_known(struct zw_scaler *s, const char *key);

/* Admin-port handler for the scaler's paths:
 *   GET  /metrics-api/<namespace>/<scaledobject>  -> {"requestRate":x,"concurrency":y,...}
 *        (optional ?interceptorRoute=N or ?httpScaledObject=N as in scalerMetadata;
 *        read-only, no credentials, resolved without filling the resolution cache)
 *   POST /peer/cold?target=<key>                   -> 204, wakes the target's streams;
 *        404 (nothing kept) when key is not a current target's
 *   GET  /peer/counts                              -> this replica's local counters (JSON)
 * Every /peer/ path first needs `authorization` (the Authorization header
 * value, borrowed, NULL when absent) to carry the peer token: 401 without
 * Bearer credentials, 403 with wrong ones (cfg.auth, zw_auth_check).
 * `method` and `target` (request-target: path and query) are borrowed. On a
 * match returns 1 with *status, *body (malloc'd, caller frees; may be NULL
 * when *body_len is 0) and *content_type (static string); returns 0 when the
 * path is not the scaler's (outputs untouched), -ENOMEM on allocation
 * failure. */
int zw_scaler_admin(struct zw_scaler *s, const char *method, const char *target,
                    const char *authorization, int *status, char **body, size_t *body_len,
                    const char **content_type);

/* Returns nonzero when `target` (request-target, borrowed) is one of the
 * state-changing or peer-only paths of zw_scaler_admin (/peer/...): what a
 * read-only listener must not serve. */
int zw_scaler_admin_is_peer_path(const char *target);

/* Appends the scaler's Prometheus text lines (per-target rate, concurrency,
 * active; streams, peer failures) to the malloc'd buffer *buf of length
 * *len (both may start NULL/0; grown with realloc; caller owns). Returns 0
 * or -ENOMEM (buffer kept as it was). */
int zw_scaler_prometheus(struct zw_scaler *s, char **buf, size_t *len);

/* Writes the HPA metric name for a target into buf: "<ns>-<name>-<metric>"
 * lower-cased, every character outside [a-z0-9-] turned into '-', names
 * longer than 200 characters cut to 191 and suffixed "-<8 hex FNV-1a of the
 * full name>". metric is "requestrate" or "concurrency"; for a ScaledObject
 * trigger index > 0 "-t<index>" is inserted before it. Returns the length,
 * or -ENOSPC when len <= 200. */
int zw_scaler_metric_name(const struct zw_target *t, const char *metric, char *buf, size_t len);

/* Stops listening, ends every gRPC call with UNAVAILABLE, closes every
 * handle and frees the scaler once all are closed, then calls done(arg)
 * (may be NULL) on the loop. Unsets stats' notify callback. NULL-safe. */
void zw_scaler_stop(struct zw_scaler *s, void (*done)(void *arg), void *arg);

#endif
