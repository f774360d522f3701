/* List+watch on a thread of its own: the blocking driver of the state
 * machine of watch.h, over the blocking client of kube.h (one request at a
 * time, callbacks on the thread). The libuv driver is kube_uv.h. */
#ifndef ZW_WATCH_THREAD_H
#define ZW_WATCH_THREAD_H

#include "kube.h"
#include "watch.h"

#include <stddef.h>

struct zw_watch_thread;

/* Starts a thread that runs the list+watch state machine of watch.h for
 * spec (copied) with client k (borrowed, must outlive the thread). The
 * spec's callbacks run on that thread. Returns 0 with *out owned by the
 * caller, or -1. */
int zw_watch_thread_start(struct zw_kube *k, const struct zw_watch_spec *spec,
                          struct zw_watch_thread **out);

/* Stops the thread (aborting a request in flight within about a second),
 * joins it and frees wt; no callback runs after it returns. Must not be
 * called from the watch's own callbacks. NULL is ignored. */
void zw_watch_thread_stop(struct zw_watch_thread *wt);

/* Stops n watch threads (NULL entries skipped) in parallel, since each may
 * take up to about a second to abort its request; falls back to one at a
 * time when a helper thread cannot be started. Frees each; the array itself
 * stays the caller's. */
void zw_watch_threads_stop(struct zw_watch_thread **v, size_t n);

#endif
