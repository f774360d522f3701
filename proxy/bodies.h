/* Static response bodies from ConfigMaps (docs/proxy-datapath.md "Local
 * responses").
 *
 * A target's placeholder or static route may take its body from a
 * ConfigMap in the target's namespace: the add-on's bodyFromConfigMap
 * {name, key?} (the ConfigMap must carry ZW_RESPONSE_BODY_LABEL "true"; an
 * omitted key is derived from the request path) or Kedify's
 * coldStartWaitingPageConfigMapRef (keys coldStartWaitingPageBody,
 * ...StatusCode, ...RetryAfter). This module keeps the ConfigMaps it is
 * given (from a watch or a static file), copies their data into the static
 * responses of the targets a routing table is built from, and picks the
 * body of one response at request time.
 *
 * Sans-IO and single-threaded: the store is used on the sources' loop;
 * zw_bodies_select() reads only the (immutable) target in a table and may
 * run on any worker. */
#ifndef ZW_BODIES_H
#define ZW_BODIES_H

#include "target.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Longest ConfigMap key derived from a request path. */
#define ZW_BODIES_MAX_KEY 253

struct zw_bodies;

/* Creates an empty store in *out (owned by the caller, zw_bodies_free).
 * Returns 0 or -ENOMEM. */
int zw_bodies_new(struct zw_bodies **out);

/* Frees b and every ConfigMap in it. NULL is ignored. */
void zw_bodies_free(struct zw_bodies *b);

/* Forgets every ConfigMap (a static reload starts over). */
void zw_bodies_clear(struct zw_bodies *b);

/* Forgets ConfigMap ns/name (no longer watched). */
void zw_bodies_forget(struct zw_bodies *b, const char *ns, const char *name);

/* Applies one ConfigMap object (borrowed; its data is copied): stored, or
 * removed when `deleted`. Objects without namespace/name are ignored.
 * Returns 1 when the stored state changed, 0 when not, -ENOMEM. */
int zw_bodies_apply(struct zw_bodies *b, const json_t *cm, bool deleted);

/* True when one of t's static responses (placeholder, static routes) takes
 * its body from a ConfigMap. */
bool zw_target_needs_bodies(const struct zw_target *t);

/* Calls fn(arg, namespace, name) for each ConfigMap t's static responses
 * name (once per response; duplicates possible). Returns the first
 * negative value fn returns, else 0. */
int zw_bodies_each_ref(const struct zw_target *t,
                       int (*fn)(void *arg, const char *ns, const char *name), void *arg);

/* Resolves every ConfigMap-bodied static response of t (a copy owned by
 * the caller, modified in place) against b: configmap_state and the
 * ConfigMap's data as file_keys/file_values; for Kedify's waiting page also
 * its status code and Retry-After keys when valid. Returns 0 or -ENOMEM
 * (t then holds a partial, still freeable, state). */
int zw_bodies_resolve(const struct zw_bodies *b, struct zw_target *t);

/* One local response's body as chosen for a request. */
struct zw_body_choice {
	int status;       /* 0: the response's own; else this status instead */
	const char *body; /* borrowed from the response (or a constant) */
	size_t len;
	const char *ctype; /* derived Content-Type, or NULL to keep the default */
};

/* Picks the body of static response p for request path (plen bytes;
 * query and fragment ignored): the inline body; for a ConfigMap, the
 * explicit key or the one derived from the path ("/" -> index.html), with a
 * Content-Type derived from the key's extension. A missing add-on ConfigMap
 * or explicit key gives 500, a derived key that is not there 404, each with
 * a short text body; a missing Kedify page falls back to the default page.
 * Borrowed arguments; allocates nothing; any thread. */
void zw_bodies_select(const struct zw_static_response *p, const char *path, size_t plen,
                      struct zw_body_choice *out);

#endif
