/* zerowire-proxy endpoint store: ready pod addresses per Service, from
 * EndpointSlices (discovery.k8s.io/v1 and v1beta1) and, optionally, Services
 * (for mapping a Service port number to the slice port). Design note:
 * docs/endpoints.md.
 *
 * Threads: one writer (the control thread applies watch events), any number
 * of readers (workers query snapshots). The store is guarded by one mutex;
 * readers take it only in zw_endpoints_get(), and can avoid even that by
 * caching a snapshot until zw_endpoints_version() changes.
 *
 * EndpointSlice handling:
 *   - the Service is the label kubernetes.io/service-name; slices without it
 *     are ignored (ZW_EP_ENOTSLICE);
 *   - several slices of one Service are merged; an address that appears in
 *     several slices counts once (per port);
 *   - an endpoint is ready when conditions.ready is true or absent/null (the
 *     API says consumers should treat the unknown state as ready, in v1 and
 *     v1beta1 alike); only its first address is used (addresses are
 *     fungible); addressType FQDN slices are skipped (no DNS on the loop);
 *   - ports[] {name, port, protocol}: only TCP (the default) with a port
 *     number; a port without a name has the name "".
 *
 * Port resolution for a query (port number N or port name P):
 *   - name P: the slice port named P;
 *   - number N with the Service known: the Service port whose `port` is N
 *     gives the port name, then as above; Service known but no such port:
 *     nothing;
 *   - number N, Service unknown: the slice port whose number is N; else, if
 *     the slices carry exactly one port, that one (a single-port Service
 *     whose targetPort differs from its port).
 *
 * Outstanding counters: each distinct ip:port seen in any slice owns one
 * atomic counter of requests in flight. Snapshots share it, so the count
 * survives snapshot changes for the same address; it lives while any
 * snapshot or the store still references it. */
#ifndef ZW_ENDPOINTS_H
#define ZW_ENDPOINTS_H

#include <jansson.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define ZW_EP_ERRLEN          256
#define ZW_EP_IPLEN           46    /* INET6_ADDRSTRLEN */
#define ZW_EP_MAX_PER_SLICE   1000  /* endpoints read from one slice (API limit) */
#define ZW_EP_MAX_PORTS       100   /* ports read from one slice (API limit) */
#define ZW_EP_MAX_PER_SERVICE 10000 /* endpoints in one snapshot */
#define ZW_EP_MAX_SUBSCRIBERS 8

enum zw_ep_status {
	ZW_EP_OK = 0,
	ZW_EP_ENOTSLICE = -1, /* not an EndpointSlice of a Service (ignore) */
	ZW_EP_EINVAL = -2,    /* malformed object: err says why */
	ZW_EP_ENOMEM = -3,
	ZW_EP_ELIMIT = -4, /* too many subscribers */
};

/* What a resync covers (see zw_endpoints_resync_begin). */
enum zw_ep_kind {
	ZW_EP_KIND_SLICE = 0,
	ZW_EP_KIND_SERVICE = 1,
};

struct zw_ep_counter; /* opaque shared outstanding counter */

/* One ready endpoint. Read-only for users. */
struct zw_endpoint {
	struct sockaddr_storage addr; /* ready to connect() */
	socklen_t addr_len;
	char ip[ZW_EP_IPLEN]; /* textual address as in the slice (normalized) */
	uint16_t port;
	bool h2c;    /* the port speaks h2c (appProtocol kubernetes.io/h2c, grpc, h2c,
	              * http2, or a name grpc[-...] / http2[-...]: lib/protocol.h) */
	bool tls;    /* the port speaks TLS (appProtocol https, kubernetes.io/tls,
	              * kubernetes.io/wss, tls, h2, grpcs, or such a name prefix) */
	bool tls_h2; /* ... and HTTP/2 inside it (h2, grpcs): ALPN h2 */
	struct zw_ep_counter *counter;
};

/* Immutable snapshot of the ready endpoints of one (Service, port), sorted
 * by (ip, port). Reference counted; read-only for users. */
struct zw_endpoint_set {
	_Atomic long refs; /* private */
	bool is_static;    /* private: the shared empty set */
	uint64_t version;  /* store version this snapshot was built at */
	size_t n;
	struct zw_endpoint eps[];
};

struct zw_endpoints; /* opaque store */

/* Change hook: called on the writer thread, after the store lock is
 * released, once per Service whose ready endpoints changed by an apply or
 * resync_end call. n_ready is the number of distinct ready addresses over all
 * ports (0 = none). ns and svc are borrowed for the call. The hook may call
 * zw_endpoints_get() but must not call apply/resync functions. */
struct zw_ep_subscriber {
	void (*changed)(void *ctx, const char *ns, const char *svc, size_t n_ready);
	void *ctx;
};

/* Creates an empty store; *out is owned by the caller (zw_endpoints_free).
 * Returns 0 or ZW_EP_ENOMEM. */
int zw_endpoints_new(struct zw_endpoints **out);

/* Frees the store. Snapshots still held stay valid until unreferenced.
 * NULL is ignored. */
void zw_endpoints_free(struct zw_endpoints *s);

/* Applies one EndpointSlice object (borrowed; discovery.k8s.io v1 or
 * v1beta1) as an ADDED/MODIFIED event, or as a DELETED event when deleted is
 * true (only metadata.namespace/name are needed then). Writer thread only.
 * Returns 0, ZW_EP_ENOTSLICE (no service-name label: nothing stored),
 * ZW_EP_EINVAL (err filled, the previous state of that slice is kept) or
 * ZW_EP_ENOMEM. */
int zw_endpoints_apply_slice(struct zw_endpoints *s, const json_t *slice, bool deleted,
                             char err[ZW_EP_ERRLEN]);

/* Applies one core/v1 Service (borrowed) for port-number resolution, or
 * removes it when deleted is true. Writer thread only. Returns 0,
 * ZW_EP_EINVAL (err filled) or ZW_EP_ENOMEM. */
int zw_endpoints_apply_service(struct zw_endpoints *s, const json_t *svc, bool deleted,
                               char err[ZW_EP_ERRLEN]);

/* Full resync (a relist after 410 Gone, or a static file reload): begin marks
 * every stored object of `kind` in namespace ns (NULL = all namespaces)
 * stale; applies in between unmark what they touch; end removes what is
 * still stale and notifies subscribers. Writer thread only. */
void zw_endpoints_resync_begin(struct zw_endpoints *s, enum zw_ep_kind kind, const char *ns);
void zw_endpoints_resync_end(struct zw_endpoints *s, enum zw_ep_kind kind, const char *ns);

/* Returns a snapshot of the ready endpoints of Service ns/svc for Service
 * port number `port` (> 0) or port name `port_name` (non-NULL wins), see the
 * resolution rules above. Always succeeds with a non-NULL *out (an empty set
 * when unknown or nothing is ready) owned by the caller: release it with
 * zw_endpoint_set_unref. Any thread. Returns 0 or ZW_EP_ENOMEM. */
int zw_endpoints_get(struct zw_endpoints *s, const char *ns, const char *svc, int port,
                     const char *port_name, struct zw_endpoint_set **out);

/* Number of distinct ready addresses of ns/svc over all ports. Any thread. */
size_t zw_endpoints_ready_count(struct zw_endpoints *s, const char *ns, const char *svc);

/* Store version: bumped (atomically) by every apply or resync that changed
 * anything. Any thread. */
uint64_t zw_endpoints_version(const struct zw_endpoints *s);

/* Registers a change hook (copied). Returns 0 or ZW_EP_ELIMIT. Call before
 * the writer starts applying events. */
int zw_endpoints_subscribe(struct zw_endpoints *s, const struct zw_ep_subscriber *sub);

/* Describes the whole store as a new JSON object owned by the caller:
 * {"ns/svc": {"ports": [{"name","port"}], "ready": ["ip:port", ...],
 *  "slices": n}}. Returns 0 or ZW_EP_ENOMEM (*out NULL). Any thread. */
int zw_endpoints_to_json(struct zw_endpoints *s, json_t **out);

/* Takes one more reference on set (atomic) and returns it. */
struct zw_endpoint_set *zw_endpoint_set_ref(struct zw_endpoint_set *set);

/* Drops a reference; the last frees the snapshot. NULL is ignored. */
void zw_endpoint_set_unref(struct zw_endpoint_set *set);

/* Power of two random choices: draws two distinct endpoints with the
 * caller's xorshift state *rng (per thread, any non-zero seed), returns the
 * one with fewer outstanding requests (the first on a tie) and increments its
 * counter. The caller must hold `set` until it calls zw_endpoint_done() on
 * the result. Returns NULL when the set is empty. */
const struct zw_endpoint *zw_endpoint_pick(const struct zw_endpoint_set *set, uint64_t *rng);

/* Increments ep's outstanding counter (a request bound to ep without pick). */
void zw_endpoint_begin(const struct zw_endpoint *ep);

/* Decrements ep's outstanding counter (request finished or failed). */
void zw_endpoint_done(const struct zw_endpoint *ep);

/* Current outstanding requests on ep's address (atomic load). */
long zw_endpoint_outstanding(const struct zw_endpoint *ep);

/* Increments ep's outstanding counter only if it is below `limit` (<= 0:
 * no limit), atomically against every other thread. Returns 1 when taken,
 * 0 when ep is full. */
int zw_endpoint_try_begin(const struct zw_endpoint *ep, long limit);

/* When ep's address last turned ready, in zw_endpoints_now_ms() time; 0
 * when unknown. Any thread. */
uint64_t zw_endpoint_ready_since(const struct zw_endpoint *ep);

/* Advances the caller's xorshift state *st (per thread; 0 is replaced by a
 * fixed seed) and returns the next pseudo-random number. */
uint64_t zw_endpoints_random(uint64_t *st);

/* Monotonic milliseconds (CLOCK_MONOTONIC), the clock of ready times. */
uint64_t zw_endpoints_now_ms(void);

/* Parses a static endpoint spec into the store as synthetic Services and
 * slices: "ns/svc:port=ip:port,ip:port;ns/svc2:name=ip:port" - entries
 * separated by ';' or whitespace; `port` is the Service port number or a port
 * name; IPv6 addresses in brackets ([::1]:8080). Synthetic slices of the same
 * Service/port/endpoint port are replaced; to drop what an earlier spec added,
 * wrap the call in resync_begin/resync_end. Entries before a bad one are
 * already applied. Writer thread only. Returns 0, ZW_EP_EINVAL (err names the
 * entry) or ZW_EP_ENOMEM. */
int zw_endpoints_apply_spec(struct zw_endpoints *s, const char *spec, char err[ZW_EP_ERRLEN]);

#endif
