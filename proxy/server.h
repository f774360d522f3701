/* zerowire-proxy data path: the HTTP/1.1 listener and its worker threads.
 *
 * Each worker thread runs its own uv_loop_t with its own listening socket
 * on the same address (SO_REUSEPORT: the kernel spreads connections), its
 * own upstream pool, hold queues and metrics shard. Workers share only
 * thread-safe state: the routing table (struct zw_route_current), the
 * endpoint store, the stats registry and the process-wide held counts.
 * With --tls-listen each worker has a second listening socket there whose
 * connections run TLS (tls.h) under the same client code.
 * docs/proxy-datapath.md describes the request life cycle.
 *
 * Control functions below may be called from any thread (they set a flag
 * and wake the workers through a uv_async_t). */
#ifndef ZW_SERVER_H
#define ZW_SERVER_H

#include "certstore.h"
#include "config.h"
#include "endpoints.h"
#include "hold.h"
#include "metrics.h"
#include "observe.h"
#include "routes.h"
#include "stats.h"

#include <stddef.h>

/* What the data path needs; all borrowed and must outlive the server. */
struct zw_tls_client;

struct zw_server_deps {
	const struct zw_proxy_config *cfg;
	struct zw_route_current *routes;
	struct zw_endpoints *eps;
	struct zw_stats *stats;
	struct zw_observe *obs; /* access log and tracing; may be NULL */
	/* TLS certificates (docs/tls.md): with cfg->tls_listen set, every
	 * worker also listens there and speaks TLS with them; may be NULL. */
	struct zw_certstore *certs;
	/* Trust for TLS towards backends whose port says TLS (docs/tls.md);
	 * NULL: such endpoints get 502. */
	const struct zw_tls_client *upstream_tls;
};

struct zw_server;

/* Binds the listener (one socket per worker), starts the worker threads.
 * On success *out is the server (free with zw_server_free after
 * zw_server_stop). Returns 0, or a negative UV_* code with a message in err
 * (e.g. "listen 0.0.0.0:8080: address already in use"). */
int zw_server_start(const struct zw_server_deps *deps, struct zw_server **out, char *err,
                    size_t errlen);

/* Endpoints (or the routing table) changed: workers re-check their held
 * requests and release those whose target now has a ready endpoint. Any
 * thread, cheap (meant for the endpoint store's change hook). */
void zw_server_endpoints_changed(struct zw_server *s);

/* Starts draining: every response from now on carries Connection: close
 * and idle keep-alive connections are closed. Any thread. */
void zw_server_drain(struct zw_server *s);

/* Stops accepting new connections (listeners closed). Any thread. */
void zw_server_stop_accepting(struct zw_server *s);

/* Client connections still open (all workers). Any thread. */
size_t zw_server_connections(const struct zw_server *s);

/* Stops the workers (closing every connection), joins their threads.
 * Call once; then zw_server_free. */
void zw_server_stop(struct zw_server *s);

/* Frees a stopped server. NULL-safe. */
void zw_server_free(struct zw_server *s);

/* The metrics shards of the workers (array of n, owned by the server). */
struct zw_metrics_shard *const *zw_server_metrics(const struct zw_server *s, size_t *n);

/* The observers given in the deps (may be NULL). */
struct zw_observe *zw_server_observe(const struct zw_server *s);

/* Requests held now for target `key` in this process. Any thread. */
uint32_t zw_server_held(struct zw_server *s, const char *key);

/* Bound port of the proxy listener (useful with port 0). */
int zw_server_port(const struct zw_server *s);

/* Bound port of the TLS listener, 0 when there is none. */
int zw_server_tls_port(const struct zw_server *s);

/* Appends the TLS listener's counters (tlsstats.h) to out (nothing when
 * there is no TLS listener), then those of TLS towards backends (when
 * deps.upstream_tls is set). Any thread. Returns 0 or -1 (out's limit). */
int zw_server_tls_prometheus(const struct zw_server *s, struct zw_obuf *out);

#endif
