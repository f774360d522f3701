/* zerowire-proxy routing table: request (Host, path, headers) -> target.
 *
 * A struct zw_route_table is built once from an array of targets and never
 * changes afterwards; it owns deep copies of the targets. Tables are
 * reference counted with atomic operations, so worker threads can keep using
 * a table while the control thread publishes a new one through a
 * struct zw_route_current (see below). Design note: docs/routing.md.
 *
 * Lookup rules (in this order):
 *   1. Host: the Host header with the port stripped, compared
 *      case-insensitively (a trailing dot is ignored). Host levels are tried
 *      in order: the exact host; then wildcard hosts from most to least
 *      specific (`*.a.b.c`, then `*.b.c`, then `*.c`; wildcards are
 *      multi-level: `*.b.c` matches `x.y.b.c` but not `b.c`); then catch-all
 *      (`*`, or a rule without hosts). The first level that yields a match
 *      wins; a level without a matching path/header falls through.
 *   2. Path: longest prefix on segment boundaries: prefix `/api` matches
 *      `/api`, `/api/` and `/api/x`, not `/apix`; `/` matches everything. The
 *      query string and fragment are ignored; an absolute-form target
 *      (`http://h/p`) is reduced to its path. When no entry at the longest
 *      prefix accepts the request's headers, shorter prefixes are tried.
 *   3. Headers: every matcher of the entry must hold (AND). A matcher with
 *      value NULL needs the header to be present; otherwise any one of the
 *      request's field lines of that name must satisfy it (surrounding
 *      spaces/tabs trimmed; not split at commas): kind ZW_HDR_EXACT compares
 *      bytes, ZW_HDR_WILDCARD / ZW_HDR_REGEX go through
 *      zw_header_match_value() (below).
 *   4. Ties on the same host and prefix: static routes (InterceptorRoute
 *      spec.staticRoutes, in order) before ordinary rules; then more header
 *      matchers; then more exact-value matchers; then more wildcard/regex
 *      matchers; then the older creationTimestamp (a missing timestamp sorts
 *      last); then the key ("ns/name" or "ns/name/trigger") in ascending
 *      byte order; then rule order.
 *
 * Lookup cost does not depend on the number of targets: exact hosts and
 * wildcard suffixes are found through hash maps, and each path candidate
 * (one per segment boundary, at most as long as the host's longest prefix)
 * through another hash map. */
#ifndef ZW_ROUTES_H
#define ZW_ROUTES_H

#include "target.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define ZW_ROUTE_MAX_TARGETS       1000000 /* targets per table */
#define ZW_ROUTE_MAX_HEADER_VALUES 64      /* field lines inspected per header name */

enum zw_route_status {
	ZW_ROUTE_OK = 0,
	ZW_ROUTE_ENOMATCH = -1, /* nothing matched: see zw_route_match.miss */
	ZW_ROUTE_ENOMEM = -2,
	ZW_ROUTE_EINVAL = -3, /* bad arguments (NULL table/request, too many targets) */
};

/* Why a lookup found nothing (for the 404 body). */
enum zw_route_miss {
	ZW_ROUTE_MISS_NONE = 0,
	ZW_ROUTE_MISS_HOST,    /* no rule covers the host (not even a catch-all) */
	ZW_ROUTE_MISS_PATH,    /* some rule covers the host, no path prefix matches */
	ZW_ROUTE_MISS_HEADERS, /* host and path matched, header matchers did not */
};

/* Header access without copying: get() must store the index-th (0-based)
 * field line whose name equals `name` (name_len bytes, compare
 * case-insensitively) in *value and *value_len and return 1, or return 0 when
 * there is no such line. Pointers only need to stay valid until lookup
 * returns. `get` may be NULL (no headers). */
struct zw_route_headers {
	int (*get)(void *ctx, const char *name, size_t name_len, size_t index, const char **value,
	           size_t *value_len);
	void *ctx;
};

/* One request to route. Spans are borrowed for the duration of the call. */
struct zw_route_request {
	const char *host; /* Host header value as received (may carry :port); NULL = none */
	size_t host_len;
	const char *path; /* request-target; NULL or empty = "/" */
	size_t path_len;
	struct zw_route_headers headers;
	/* ZW_SERVICE_HEADER value ("<namespace>/<name>") or NULL: among the
	 * targets that match equally well, the one of that Service wins. */
	const char *service;
	size_t service_len;
};

/* Result of a lookup. Pointers are owned by the table and valid while the
 * caller holds a reference to it. */
struct zw_route_match {
	const struct zw_target *target; /* matched target */
	size_t index;                   /* its index in the table (0..count-1, key order) */
	const char *key;                /* zw_target_key() of the target */
	const char *host;               /* matched host pattern: "x.y", "*.y" or "*" */
	const char *prefix;             /* matched path prefix, "/" for the root */
	size_t rule;                    /* index into target->rules (or the static route's rules) */
	int static_route;               /* index into target->static_routes, or -1 */
	enum zw_route_miss miss;        /* set when the lookup returns ZW_ROUTE_ENOMATCH */
};

/* Opaque immutable table. */
struct zw_route_table;

/* Builds a table from targets[0..n) (borrowed: the table deep-copies what it
 * keeps, so the caller may free the array afterwards). Targets are indexed
 * in ascending zw_target_key() order. Targets without rules contribute no
 * routes but are still listed (the proxy still counts/scales them). On
 * success *out holds one reference owned by the caller. Returns ZW_ROUTE_OK,
 * ZW_ROUTE_ENOMEM or ZW_ROUTE_EINVAL (n > ZW_ROUTE_MAX_TARGETS). */
int zw_route_table_build(const struct zw_target *targets, size_t n, struct zw_route_table **out);

/* Takes one more reference on t (atomic; any thread) and returns t. */
struct zw_route_table *zw_route_table_ref(struct zw_route_table *t);

/* Drops one reference (atomic; any thread); the last one frees the table.
 * NULL is ignored. */
void zw_route_table_unref(struct zw_route_table *t);

/* Routes req in table t (both borrowed; t must be held by the caller).
 * Fills *out. Returns ZW_ROUTE_OK, ZW_ROUTE_ENOMATCH (out->miss says why,
 * out->target NULL) or ZW_ROUTE_EINVAL. Thread-safe; allocates nothing (except
 * a regex header match on a value over 511 bytes, lib/target.c). */
int zw_route_lookup(const struct zw_route_table *t, const struct zw_route_request *req,
                    struct zw_route_match *out);

/* Health probes with the host in the path (Kedify healthcheckResponse
 * pathEmbeddedHost, for load balancers that send a pod IP as Host): when
 * the request path (plen bytes) is <prefix>/<host>[/rest] for a target's
 * healthcheckPathPrefix, and <host> with <rest> (or "/") routes to a target
 * with that prefix, fills *out and returns ZW_ROUTE_OK; else
 * ZW_ROUTE_ENOMATCH (ZW_ROUTE_EINVAL on NULL arguments). Header matchers
 * see no headers. Borrowed arguments; thread-safe; allocates nothing. */
int zw_route_lookup_probe(const struct zw_route_table *t, const char *path, size_t plen,
                          struct zw_route_match *out);

/* Number of targets in t. */
size_t zw_route_table_count(const struct zw_route_table *t);

/* Target i (< count) of t, owned by t; NULL when out of range. */
const struct zw_target *zw_route_table_target(const struct zw_route_table *t, size_t i);

/* Key of target i ("<ns>/<name>" or "<ns>/<name>/<trigger>"), owned by t;
 * NULL when out of range. */
const char *zw_route_table_key(const struct zw_route_table *t, size_t i);

/* Finds the target whose key is `key` (borrowed). Returns 0 with *index_out
 * set, or ZW_ROUTE_ENOMATCH. */
int zw_route_table_find(const struct zw_route_table *t, const char *key, size_t *index_out);

/* Number of (host, path prefix, rule) entries in t (for stats and tests). */
size_t zw_route_table_entries(const struct zw_route_table *t);

/* Writes a human-readable normalized form of a host (lower-case, port and
 * trailing dot stripped) into buf (len bytes, NUL-terminated, truncated).
 * Returns the length written. Used for 404 bodies and logs. */
size_t zw_route_host_normalize(const char *host, size_t host_len, char *buf, size_t len);

/* The current table, shared by the control thread (publish) and the workers
 * (acquire). Fields are private; embed the struct and use the functions.
 * publish/acquire are safe against each other from any threads: a request
 * keeps the table it acquired until it releases it, whatever is published
 * meanwhile. */
struct zw_route_current {
	pthread_mutex_t lock;
	struct zw_route_table *table; /* guarded by lock; never NULL after init */
	_Atomic uint64_t version;     /* bumped by every publish */
};

/* Initialises c with an empty table. Returns 0, ZW_ROUTE_ENOMEM or a
 * negative errno from pthread_mutex_init. */
int zw_route_current_init(struct zw_route_current *c);

/* Releases c's table reference and lock (callers must have released what
 * they acquired first, or hold their own references). */
void zw_route_current_destroy(struct zw_route_current *c);

/* Makes t current. Takes over the caller's reference to t (do not unref it
 * afterwards); the previous table is unreferenced. NULL is ignored. */
void zw_route_current_publish(struct zw_route_current *c, struct zw_route_table *t);

/* Returns a new reference to the current table (never NULL after init);
 * release it with zw_route_current_release / zw_route_table_unref. */
struct zw_route_table *zw_route_current_acquire(struct zw_route_current *c);

/* Releases a table obtained from acquire/refresh (same as unref). */
void zw_route_current_release(struct zw_route_table *t);

/* Cheap per-request check for workers that cache a table: if the current
 * version differs from *seen, replaces *cached (releasing the old reference,
 * which may be NULL) with a new reference to the current table, updates
 * *seen and returns 1; otherwise returns 0 after one atomic load. */
int zw_route_current_refresh(struct zw_route_current *c, struct zw_route_table **cached,
                             uint64_t *seen);

/* Current publish version (atomic load). */
uint64_t zw_route_current_version(struct zw_route_current *c);

/* Returns true when one value value[0..len) (borrowed, need not
 * be NUL-terminated; surrounding spaces and tabs are ignored) of the header
 * named m->name satisfies matcher m. The
 * caller finds the header by name (case-insensitively) and tries each of its
 * values; a header that is absent never matches. Thread-safe. */
bool zw_header_match_value(const struct zw_header_match *m, const char *value, size_t len);

#endif
