/* Kubernetes API client on a libuv loop: libcurl's multi socket interface
 * driven by uv_poll_t (one per socket libcurl uses) and uv_timer_t, so no
 * request ever blocks the loop (reading a rotated token file is one stat()
 * at most every few seconds).
 *
 * Requests complete with a callback on the loop. Watches run the state
 * machine of watch.h with their
 * callbacks on the loop. A client is used from the loop's thread only.
 * Transfers start on the next loop iteration (never from inside libcurl),
 * so every function here may be called from any callback of this client,
 * except zw_kube_uv_close. */
#ifndef ZW_KUBE_UV_H
#define ZW_KUBE_UV_H

#include "kube.h"
#include "watch.h"

#include <uv.h>

struct zw_kube_uv;
struct zw_kube_uv_watch;

/* Completion of a request: rc 0 with resp (borrowed for the callback; NULL
 * for an empty body; json_incref to keep) on 2xx, or rc -1 with err. */
typedef void zw_kube_uv_done_fn(void *ud, int rc, json_t *resp, const struct zw_kube_error *err);

/* Creates a client on loop (borrowed) for cfg (borrowed: must outlive the
 * client). Returns 0 with *out (freed by zw_kube_uv_close), or -1. */
int zw_kube_uv_new(uv_loop_t *loop, struct zw_kube_config *cfg, struct zw_kube_uv **out);

/* Starts a request as zw_kube_request describes (method, path_query from
 * zw_kube_path, body borrowed and serialised now, content_type NULL = JSON,
 * timeout_ms 0 = default). cb runs exactly once on the loop, unless the
 * client is closed first. Returns 0, or -1 (closing, out of memory) with
 * err filled and no callback. */
int zw_kube_uv_request(struct zw_kube_uv *ku, const char *method, const char *path_query,
                       json_t *body, const char *content_type, long timeout_ms,
                       zw_kube_uv_done_fn *cb, void *ud, struct zw_kube_error *err);

/* Starts a list+watch for spec (copied; its callbacks run on the loop).
 * Returns 0 with *out (owned by the client; stop with zw_kube_uv_watch_stop
 * or zw_kube_uv_close), or -1. */
int zw_kube_uv_watch_start(struct zw_kube_uv *ku, const struct zw_watch_spec *spec,
                           struct zw_kube_uv_watch **out);

/* Stops a watch: no callback of it runs after this returns; its memory is
 * released later on the loop. May be called from the watch's own
 * callbacks. */
void zw_kube_uv_watch_stop(struct zw_kube_uv_watch *w);

/* Closes the client: stops every watch, drops requests in flight without
 * their callbacks, closes all handles; closed(ud) (may be NULL) runs when
 * everything is released, after which the loop has nothing left of this
 * client. Not to be called from a callback of this client. */
void zw_kube_uv_close(struct zw_kube_uv *ku, void (*closed)(void *ud), void *ud);

#endif
