/* zerowire-proxy admin listeners, on the control loop. One listener may
 * serve the read-only paths (ZW_ADMIN_READ), the peer paths (ZW_ADMIN_PEER)
 * or both (the default: --admin-listen alone, :9091; with --peer-listen the
 * peer paths move to that second listener and the admin port answers them
 * 404). docs/security.md "Admin and peer endpoints".
 *
 * Read-only (no credentials):
 *   GET /healthz  200 "ok" while the process runs
 *   GET /readyz   200 once the routing table is synced, 503 before that and
 *                 from the moment SIGTERM arrives
 *   GET /metrics  Prometheus text: data-path metrics (metrics.h), held
 *                 requests and connections, TLS certificate expiry
 *                 (certstore.h), and the scaler's lines
 *   GET /queue    JSON per target: {"ns/name": {"concurrency", "requestCount",
 *                 "held", "rate"}}
 *   GET /status   small HTML page: targets, endpoints, held, rates
 *   GET /metrics-api/...  handed to the scaler (zw_scaler_admin)
 * Peer (the scaler's /peer/... paths, Authorization: Bearer <peer token>,
 * else 401/403; zw_scaler_admin):
 *   POST /peer/cold?target=KEY   wake a current target's streams (404 otherwise)
 *   GET  /peer/counts            this replica's counters
 * A peer-only listener also answers /healthz; anything else is 404.
 *
 * One request per connection (answers carry Connection: close); request
 * heads are limited to 16 KiB and must arrive within 5 s; at most 256
 * admin connections at a time. */
#ifndef ZW_ADMIN_H
#define ZW_ADMIN_H

#include "certstore.h"
#include "endpoints.h"
#include "routes.h"
#include "scaler.h"
#include "server.h"
#include "stats.h"

#include <stdbool.h>
#include <uv.h>

#define ZW_ADMIN_READ 1u /* health, metrics, queue, status, metrics-api */
#define ZW_ADMIN_PEER 2u /* /peer/... */

struct zw_admin_deps {
	const char *listen;       /* "host:port" */
	unsigned roles;           /* ZW_ADMIN_READ | ZW_ADMIN_PEER; 0 means both */
	struct zw_server *server; /* may be NULL (metrics left out) */
	struct zw_stats *stats;
	struct zw_route_current *routes;
	struct zw_endpoints *eps;
	struct zw_scaler *scaler;   /* may be NULL */
	struct zw_certstore *certs; /* TLS certificates for /metrics; may be NULL */
	bool (*synced)(void *arg);  /* routing table synced? */
	void *arg;
};

struct zw_admin;

/* Starts listening on loop (borrowed). `deps` is copied; what it points to
 * must outlive the admin. On success *out is owned by the caller
 * (zw_admin_close). Returns 0 or a negative UV_* code with err filled. */
int zw_admin_start(uv_loop_t *loop, const struct zw_admin_deps *deps, struct zw_admin **out,
                   char *err, size_t errlen);

/* Sets the scaler (started after the admin). */
void zw_admin_set_scaler(struct zw_admin *a, struct zw_scaler *scaler);

/* Makes /readyz fail from now on (SIGTERM). */
void zw_admin_set_shutting_down(struct zw_admin *a);

/* Returns the bound port (useful with port 0). */
int zw_admin_port(const struct zw_admin *a);

/* Closes the listener and every connection; frees a once all handles have
 * closed (the loop must keep running). NULL-safe. */
void zw_admin_close(struct zw_admin *a);

#endif
