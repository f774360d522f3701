/* Kubernetes API requests over libcurl: URL paths, one HTTP exchange shared
 * by both drivers, typed errors, and the blocking client (curl easy, any
 * thread) with GET / LIST (paginated) / CREATE / UPDATE / PATCH / DELETE, the
 * /scale subresource and discovery. Watches run on the libuv driver
 * (kube_uv.h).
 *
 * Bodies are jansson values. Responses are bounded: a response body larger
 * than ZW_KUBE_MAX_BODY (64 MiB) fails with "response body exceeds ...".
 * Every request has a timeout (ZW_KUBE_REQUEST_TIMEOUT_MS, 30 s, unless the
 * caller gives one). A failed request fills a struct zw_kube_error: for
 * answers from the API server, the HTTP status and the Status object's
 * reason and message; for transport failures http_status 0, reason
 * "Transport" and libcurl's message.
 *
 * The libuv driver is kube_uv.h; the watch state machine and stream parser
 * that both drivers share are watch.h. */
#ifndef ZW_KUBE_H
#define ZW_KUBE_H

#include "buf.h"
#include "kubeconfig.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>

#define ZW_KUBE_MAX_BODY           ((size_t)64 * 1024 * 1024)
#define ZW_KUBE_REQUEST_TIMEOUT_MS 30000L
#define ZW_KUBE_CONNECT_TIMEOUT_MS 10000L
#define ZW_KUBE_PATH_MAX           4096
#define ZW_KUBE_POOL_MAX           8 /* idle easy handles kept by a blocking client */
#define ZW_KUBE_LIST_PAGE          500
#define ZW_KUBE_LIST_MAX_PAGES     10000
#define ZW_KUBE_LIST_TIMEOUT_MS    60000L /* one LIST page (and a watch's list) */

/* An API error. http_status 0 means the server was not reached or the
 * answer was unusable (reason "Transport", "TooLarge" or "BadResponse"). */
struct zw_kube_error {
	int http_status;
	char reason[64];
	char message[512];
};

/* What a request addresses. group NULL or "" is the core group (/api/v1);
 * namespace NULL or "" is cluster-scoped (or all namespaces for a list);
 * name NULL addresses the collection; subresource e.g. "scale", "status". */
struct zw_kube_ref {
	const char *group;
	const char *version;
	const char *resource;
	const char *namespace;
	const char *name;
	const char *subresource;
};

/* Optional query parameters; zero means "not sent". */
struct zw_kube_opts {
	int dry_run;                    /* dryRun=All */
	const char *field_manager;      /* fieldManager= */
	const char *label_selector;     /* labelSelector= */
	const char *field_selector;     /* fieldSelector= */
	unsigned limit;                 /* limit= (list) */
	const char *continue_token;     /* continue= (list) */
	const char *resource_version;   /* resourceVersion= */
	int watch;                      /* watch=1 */
	int allow_bookmarks;            /* allowWatchBookmarks=true */
	unsigned timeout_seconds;       /* timeoutSeconds= (list/watch) */
	const char *propagation_policy; /* propagationPolicy= (delete) */
};

enum zw_kube_patch_type {
	ZW_KUBE_PATCH_JSON,      /* application/json-patch+json (RFC 6902 array) */
	ZW_KUBE_PATCH_MERGE,     /* application/merge-patch+json (RFC 7386) */
	ZW_KUBE_PATCH_STRATEGIC, /* application/strategic-merge-patch+json */
};

/* Writes the request path and query for ref and opts (either may carry
 * NULL fields; opts may be NULL) into buf (len bytes): /api/v1/... or
 * /apis/<group>/<version>/..., namespaces/<ns>/ when namespaced, names
 * URL-escaped. Returns 0, or -1 when a required field (version, resource)
 * is missing, a name is empty, or the result does not fit. */
int zw_kube_path(const struct zw_kube_ref *ref, const struct zw_kube_opts *opts, char *buf,
                 size_t len);

/* Returns the Content-Type of a patch type (a static string). */
const char *zw_kube_patch_content_type(enum zw_kube_patch_type type);

/* Fills err from an HTTP status and a response body (borrowed; may be NULL
 * or not JSON): reason/message from a Status object, else from the status. */
void zw_kube_error_from_response(struct zw_kube_error *err, long http_status, const char *body,
                                 size_t body_len);

/* Returns err's message (borrowed from err), or its reason when the
 * message is empty: the text a log line quotes. */
const char *zw_kube_error_text(const struct zw_kube_error *err);

/* ---- One HTTP exchange on a curl easy handle (shared by both drivers) ---- */

/* Called with each chunk of a 2xx response body when a transfer streams;
 * return 0 to continue, nonzero to abort the transfer. Non-2xx bodies are
 * always buffered for the error. */
typedef int zw_kube_data_fn(void *ud, const char *buf, size_t len);

struct zw_kube_xfer {
	CURL *easy; /* owned unless borrowed_easy */
	int borrowed_easy;
	struct curl_slist *headers; /* owned */
	char *req_body;             /* owned */
	struct zw_buf resp;         /* buffered body, owned */
	int too_large;              /* body limit hit */
	zw_kube_data_fn *on_data;   /* streaming consumer, or NULL to buffer */
	void *ud;
	int aborted;                  /* on_data asked to stop */
	const atomic_int *cancel;     /* when *cancel != 0 the transfer aborts (blocking driver) */
	char errbuf[CURL_ERROR_SIZE]; /* libcurl's message */
	void *owner;                  /* for the driver */
};

/* Prepares x for one request: easy (borrowed, reset here; NULL = create one
 * owned by x), TLS and token from cfg (borrowed, must outlive x), method
 * ("GET", "POST", ...), path_query (from zw_kube_path, copied), body
 * (borrowed, serialised now; may be NULL) with content_type (NULL = JSON),
 * timeout_ms (0 = ZW_KUBE_REQUEST_TIMEOUT_MS, <0 = none). on_data/ud may be
 * NULL. Returns 0, or -1 with err filled. */
int zw_kube_xfer_init(struct zw_kube_xfer *x, struct zw_kube_config *cfg, CURL *easy,
                      const char *method, const char *path_query, json_t *body,
                      const char *content_type, long timeout_ms, zw_kube_data_fn *on_data, void *ud,
                      struct zw_kube_error *err);

/* Interprets a finished transfer: curl result cc, HTTP status from the
 * handle. On 2xx returns 0 and, when out is non-NULL and the body was
 * buffered, *out = parsed JSON owned by the caller (NULL for an empty body).
 * Otherwise returns -1 with err filled; *http_status_out (may be NULL) gets
 * the status (0 = transport failure). */
int zw_kube_xfer_result(struct zw_kube_xfer *x, CURLcode cc, json_t **out, long *http_status_out,
                        struct zw_kube_error *err);

/* Releases what x owns (not a borrowed easy handle). */
void zw_kube_xfer_cleanup(struct zw_kube_xfer *x);

/* ---- Blocking client ---- */

struct zw_kube;

/* Creates a client for cfg (borrowed: must outlive the client). Safe to use
 * from several threads at once (a pool of easy handles keeps connections
 * alive). Returns 0 with *out owned by the caller, or -1 (out of memory). */
int zw_kube_new(struct zw_kube_config *cfg, struct zw_kube **out);

/* Frees the client and its handles; NULL is ignored. */
void zw_kube_free(struct zw_kube *k);

/* Returns the client's configuration (borrowed). */
struct zw_kube_config *zw_kube_config(struct zw_kube *k);

/* Performs one request. path_query is from zw_kube_path; body (borrowed)
 * may be NULL; content_type NULL means application/json; timeout_ms as in
 * zw_kube_xfer_init; cancel (may be NULL) aborts the request when it becomes
 * nonzero. On success returns 0 and *out (may be NULL to discard) owns the
 * parsed response (NULL when empty). Returns -1 with err filled otherwise. */
int zw_kube_request(struct zw_kube *k, const char *method, const char *path_query, json_t *body,
                    const char *content_type, long timeout_ms, const atomic_int *cancel,
                    json_t **out, struct zw_kube_error *err);

/* GETs ref. Returns as zw_kube_request. */
int zw_kube_get(struct zw_kube *k, const struct zw_kube_ref *ref, const struct zw_kube_opts *opts,
                json_t **out, struct zw_kube_error *err);

/* LISTs the collection ref (name NULL), following continue tokens with
 * pages of opts->limit (0 = ZW_KUBE_LIST_PAGE) items, restarting once from
 * the first page if a continue token expires (410). *out gets a list object
 * owned by the caller: apiVersion and kind of the list, metadata with the
 * resourceVersion of the (first page of the) list, and all items. *pages
 * (may be NULL) gets the number of pages fetched. Returns 0 or -1. */
int zw_kube_list(struct zw_kube *k, const struct zw_kube_ref *ref, const struct zw_kube_opts *opts,
                 json_t **out, unsigned *pages, struct zw_kube_error *err);

/* POSTs obj (borrowed) to the collection ref. *out (may be NULL) gets the
 * created object. Returns 0 or -1. */
int zw_kube_create(struct zw_kube *k, const struct zw_kube_ref *ref,
                   const struct zw_kube_opts *opts, json_t *obj, json_t **out,
                   struct zw_kube_error *err);

/* PUTs obj (borrowed) to ref (a full replace; metadata.resourceVersion in obj
 * makes it conditional). Returns 0 or -1. */
int zw_kube_update(struct zw_kube *k, const struct zw_kube_ref *ref,
                   const struct zw_kube_opts *opts, json_t *obj, json_t **out,
                   struct zw_kube_error *err);

/* PATCHes ref with patch (borrowed) of the given type. Returns 0 or -1. */
int zw_kube_patch(struct zw_kube *k, const struct zw_kube_ref *ref, const struct zw_kube_opts *opts,
                  enum zw_kube_patch_type type, json_t *patch, json_t **out,
                  struct zw_kube_error *err);

/* DELETEs ref. *out (may be NULL) gets the server's answer (the object or a
 * Status). Returns 0 or -1 (404 included: check err->http_status). */
int zw_kube_delete(struct zw_kube *k, const struct zw_kube_ref *ref,
                   const struct zw_kube_opts *opts, json_t **out, struct zw_kube_error *err);

/* Reads spec.replicas (into *replicas) and status.replicas (into *current,
 * may be NULL) of ref's /scale subresource (ref->subresource is ignored).
 * Returns 0 or -1. */
int zw_kube_scale_get(struct zw_kube *k, const struct zw_kube_ref *ref, int *replicas, int *current,
                      struct zw_kube_error *err);

/* Sets spec.replicas of ref's /scale subresource with a merge patch.
 * Returns 0 or -1. */
int zw_kube_scale_set(struct zw_kube *k, const struct zw_kube_ref *ref,
                      const struct zw_kube_opts *opts, int replicas, struct zw_kube_error *err);

/* Discovery: *served = 1 when group/version (group NULL/"" = core v1) lists
 * resource, 0 when the group/version is unknown (404) or lacks it. Returns 0,
 * or -1 with err for other failures. */
int zw_kube_served(struct zw_kube *k, const char *group, const char *version, const char *resource,
                   int *served, struct zw_kube_error *err);

/* Sets apiVersion and kind (list_kind without its "List" suffix) on each
 * object of items (borrowed) that lacks them, as list items come without.
 * Either string may be NULL (then that field is left alone). */
void zw_kube_items_set_kind(json_t *items, const char *api_version, const char *list_kind);

/* Discovery helpers shared by the drivers: the path of the resource list
 * of group/version, and whether a discovery answer (borrowed) lists resource. */
int zw_kube_discovery_path(const char *group, const char *version, char *buf, size_t len);
int zw_kube_discovery_has(json_t *resource_list, const char *resource);

#endif
