/* List+watch of one Kubernetes resource: a stream parser and a state
 * machine without I/O, driven by the libuv driver (kube_uv.h) and by the
 * unit tests.
 *
 * Stream parser: a watch response is a sequence of JSON objects
 * {"type": ..., "object": {...}}, one per line. Bytes can be fed in chunks
 * cut anywhere (mid line, mid UTF-8 sequence); each complete line is parsed
 * as one event. A line longer than the limit (ZW_WATCH_MAX_EVENT, 16 MiB) or
 * not a valid event is an error.
 *
 * State machine (one per watched resource):
 *   DISCOVER  GET the group/version's resource list; not served: wait
 *             spec.discovery_interval_ms (10 s) quietly and ask again;
 *   LIST      paginated list (spec.page_limit per page); on completion the
 *             new set is compared with the known set and the differences
 *             are delivered: ADDED (new keys), MODIFIED (same key, other
 *             resourceVersion), in list order, then DELETED (keys gone,
 *             with the last known object); then one SYNCED event; a page
 *             without an "items" array is a failure, never an empty list;
 *   WATCH     watch=1&allowWatchBookmarks=true&resourceVersion=<last>&
 *             timeoutSeconds=<spec.timeout_seconds>; ADDED/MODIFIED/DELETED
 *             are delivered and update the known set and resourceVersion;
 *             BOOKMARK only updates the resourceVersion; a repeated event
 *             (same key and resourceVersion as known) is dropped, as is a
 *             DELETED of an unknown key.
 * Transitions: a watch that ends normally resumes at once from the last
 * resourceVersion; 410 Gone (HTTP status or an ERROR event with code 410)
 * relists; 404 goes back to DISCOVER after a backoff (and, when discovery
 * says the resource is gone, delivers DELETED for every known object, then
 * SYNCED); any other
 * failure retries the same step after a backoff of spec.backoff_min_ms
 * (200 ms) doubling to spec.backoff_max_ms (30 s), with "equal jitter" (a
 * random delay in [d/2, d]); the backoff resets after a successful list or a
 * watch that delivered a line. Thus each change is delivered once and in
 * order, also across reconnects and relists.
 *
 * Objects delivered are borrowed for the duration of the callback (use
 * json_incref to keep them). Items of a list get the list's apiVersion and
 * kind (without "List") so every delivered object has both. */
#ifndef ZW_WATCH_H
#define ZW_WATCH_H

#include "kube.h"

#include <jansson.h>
#include <stddef.h>

#define ZW_WATCH_MAX_EVENT          ((size_t)16 * 1024 * 1024)
#define ZW_WATCH_TIMEOUT_SECONDS    300
#define ZW_WATCH_DISCOVERY_MS       10000
#define ZW_WATCH_BACKOFF_MIN_MS     200
#define ZW_WATCH_BACKOFF_MAX_MS     30000
#define ZW_WATCH_LIST_TIMEOUT_MS    ZW_KUBE_LIST_TIMEOUT_MS
#define ZW_WATCH_OK_MIN_DURATION_MS 1000 /* a shorter empty watch counts as a failure */

/* ---- Stream parser ---- */

enum zw_watch_type {
	ZW_WATCH_ADDED,
	ZW_WATCH_MODIFIED,
	ZW_WATCH_DELETED,
	ZW_WATCH_BOOKMARK, /* parser only; not delivered by the state machine */
	ZW_WATCH_ERROR,    /* parser only: object is a Status */
	ZW_WATCH_SYNCED,   /* state machine: a (re)list has been delivered; object NULL */
};

/* Called for each parsed event; obj is borrowed. Return 0 to go on,
 * nonzero to stop feeding (zw_watch_parser_feed then returns that value). */
typedef int zw_watch_parsed_fn(void *ud, enum zw_watch_type type, json_t *obj);

struct zw_watch_parser {
	struct zw_buf line; /* pending partial line, owned */
	size_t max;
	zw_watch_parsed_fn *fn;
	void *ud;
	char err[256]; /* why the last feed failed */
};

/* Initialises p for events of at most max bytes (0 = ZW_WATCH_MAX_EVENT)
 * delivered to fn(ud, ...). */
void zw_watch_parser_init(struct zw_watch_parser *p, size_t max, zw_watch_parsed_fn *fn, void *ud);

/* Feeds len bytes (borrowed). Calls fn for each complete line (blank lines
 * are skipped). Returns 0; -1 with p->err set on an oversize line or a line
 * that is not an event; or the nonzero value fn returned. After an error
 * the parser must be reset. */
int zw_watch_parser_feed(struct zw_watch_parser *p, const char *buf, size_t len);

/* Drops any partial line (a new stream begins). */
void zw_watch_parser_reset(struct zw_watch_parser *p);

/* Releases p's buffer. */
void zw_watch_parser_free(struct zw_watch_parser *p);

/* Returns the name of an event type ("ADDED", ...). */
const char *zw_watch_type_name(enum zw_watch_type type);

/* ---- State machine ---- */

enum zw_watch_state_kind {
	ZW_WATCH_ST_WAITING, /* the resource is not served; waiting quietly */
	ZW_WATCH_ST_SYNCED,  /* a list was delivered; watching */
	ZW_WATCH_ST_RELIST,  /* the resourceVersion expired; relisting */
	ZW_WATCH_ST_RETRY,   /* a request failed; retrying after delay_ms */
};

/* A state change worth telling (for logs and readiness). Reported once per
 * change: WAITING once until the resource appears, RETRY per failure. */
struct zw_watch_status {
	enum zw_watch_state_kind kind;
	unsigned delay_ms;  /* RETRY: time until the next attempt */
	unsigned failures;  /* RETRY: consecutive failures */
	const char *reason; /* RETRY/RELIST: what happened (borrowed) */
};

typedef void zw_watch_event_fn(void *ud, enum zw_watch_type type, json_t *obj);
typedef void zw_watch_status_fn(void *ud, const struct zw_watch_status *st);

struct zw_watch_spec {
	const char *group; /* NULL or "" = core */
	const char *version;
	const char *resource;
	const char *namespace; /* NULL or "" = all namespaces */
	const char *label_selector;
	const char *field_selector;
	unsigned timeout_seconds;       /* 0 = ZW_WATCH_TIMEOUT_SECONDS */
	unsigned page_limit;            /* 0 = ZW_KUBE_LIST_PAGE */
	unsigned discovery_interval_ms; /* 0 = ZW_WATCH_DISCOVERY_MS */
	unsigned backoff_min_ms;        /* 0 = ZW_WATCH_BACKOFF_MIN_MS */
	unsigned backoff_max_ms;        /* 0 = ZW_WATCH_BACKOFF_MAX_MS */
	size_t max_event;               /* 0 = ZW_WATCH_MAX_EVENT */
	zw_watch_event_fn *on_event;    /* required */
	zw_watch_status_fn *on_status;  /* may be NULL */
	void *ud;
};

/* The next request a driver must make. */
struct zw_watch_step {
	unsigned delay_ms; /* wait this long first */
	int streaming;     /* watch: feed body chunks as they arrive */
	long timeout_ms;   /* whole-request timeout */
	char path[ZW_KUBE_PATH_MAX];
};

struct zw_watch;

/* Creates a state machine for spec (strings copied). Returns 0 with *out
 * owned by the caller, or -1 (invalid spec: no version/resource/on_event, or
 * out of memory). */
int zw_watch_new(const struct zw_watch_spec *spec, struct zw_watch **out);

/* Frees w; NULL is ignored. */
void zw_watch_free(struct zw_watch *w);

/* Fills step with the next request. Call it when no request is in flight
 * (first, and after each zw_watch_done). Returns 0, or -1 if the path does
 * not fit. */
int zw_watch_next(struct zw_watch *w, struct zw_watch_step *step);

/* Feeds a chunk of the current request's 2xx response body (borrowed).
 * Events are delivered from inside this call for a watch. Returns 0, or -1
 * when the driver must abort the transfer (protocol error, oversize body or
 * event, or an ERROR event); zw_watch_done then decides what comes next. */
int zw_watch_data(struct zw_watch *w, const char *buf, size_t len);

/* Ends the current request: http_status (0 when the server was not reached
 * or the transfer failed midway), transport (nonzero if the transfer failed,
 * including an abort requested by zw_watch_data), err (borrowed; may be
 * NULL; the Status of a non-2xx answer). List results are delivered here. */
void zw_watch_done(struct zw_watch *w, long http_status, int transport,
                   const struct zw_kube_error *err);

/* The current known set: a JSON object mapping "namespace/name" (or
 * "name") to the last known object; borrowed, valid until the next call
 * into w. */
json_t *zw_watch_known(struct zw_watch *w);

/* The resourceVersion the next watch resumes from ("" before the first
 * list); borrowed. */
const char *zw_watch_resource_version(struct zw_watch *w);

#endif
