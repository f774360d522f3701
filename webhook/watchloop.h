/* zerowire-webhook watch loop: every list+watch of the webhook (target
 * sources and reconciler) on one libuv loop thread, through lib's libuv
 * client (kube_uv.h, the state machine of watch.h).
 *
 * A subscription names a resource (group, version, resource), a namespace
 * (NULL: all) and a server-side label selector. Subscriptions that name the
 * same resource, version and selector share one API watch: one in a
 * namespace shares a watch of all namespaces when there is one (its events
 * filtered by namespace). The loop keeps the objects of each watch, so a
 * subscription added later is told every object known so far (ADDED), then
 * SYNCED when the watch has synced, or WAITING when the resource is not
 * served. Callbacks run on the loop thread: they must not block for long,
 * nor add or remove subscriptions.
 *
 * Adding and removing are called from any other thread: the call is handed
 * to the loop (uv_async) and waits for it, so no callback of a removed
 * subscription runs after zw_watchloop_remove returns. */
#ifndef ZW_WATCHLOOP_H
#define ZW_WATCHLOOP_H

#include "kubeconfig.h"
#include "watch.h"

#include <stddef.h>

struct zw_watchloop;
struct zw_watchloop_sub;

struct zw_watchloop_spec {
	const char *group; /* NULL or "" = core; strings are copied */
	const char *version;
	const char *resource;
	const char *namespace;      /* NULL = all namespaces */
	const char *label_selector; /* NULL = none */
	unsigned backoff_max_ms;    /* 0 = ZW_WATCH_BACKOFF_MAX_MS; the first subscriber's counts */
	zw_watch_event_fn *on_event;   /* required; object borrowed for the call */
	zw_watch_status_fn *on_status; /* may be NULL */
	void *ud;
};

/* Starts the loop thread with an API client for cfg (borrowed, must outlive
 * the loop). Returns 0 with *out (stop with zw_watchloop_stop), or -1. */
int zw_watchloop_start(struct zw_kube_config *cfg, struct zw_watchloop **out);

/* Subscribes spec (copied) as described above. Not from a callback of wl.
 * Returns 0 with *out (owned by wl until zw_watchloop_remove or
 * zw_watchloop_stop), or -1 (out of memory, invalid spec, loop stopped). */
int zw_watchloop_add(struct zw_watchloop *wl, const struct zw_watchloop_spec *spec,
                     struct zw_watchloop_sub **out);

/* Ends subscription sub (NULL ignored): no callback of it runs after this
 * returns; the API watch ends with its last subscriber. Not from a callback
 * of wl. */
void zw_watchloop_remove(struct zw_watchloop *wl, struct zw_watchloop_sub *sub);

/* Waits until the loop thread has finished the callback it is running, if
 * any: a pointer a callback may have read before the caller cleared it is no
 * longer in use after this returns. Not from a callback of wl. */
void zw_watchloop_sync(struct zw_watchloop *wl);

/* Ends every watch and subscription, closes the client, joins the thread and
 * frees wl. NULL-safe. */
void zw_watchloop_stop(struct zw_watchloop *wl);

#endif
