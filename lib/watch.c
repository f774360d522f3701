/* List+watch stream parser and state machine; see watch.h. */
#include "watch.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const type_names[] = {"ADDED",    "MODIFIED", "DELETED",
                                         "BOOKMARK", "ERROR",    "SYNCED"};

const char *zw_watch_type_name(enum zw_watch_type type)
{
	if ((unsigned)type >= sizeof(type_names) / sizeof(type_names[0]))
		return "UNKNOWN";
	return type_names[type];
}

/* ---- Stream parser ---- */

void zw_watch_parser_init(struct zw_watch_parser *p, size_t max, zw_watch_parsed_fn *fn, void *ud)
{
	memset(p, 0, sizeof(*p));
	p->max = max ? max : ZW_WATCH_MAX_EVENT;
	p->fn = fn;
	p->ud = ud;
}

void zw_watch_parser_reset(struct zw_watch_parser *p)
{
	p->line.len = 0;
	p->err[0] = '\0';
}

void zw_watch_parser_free(struct zw_watch_parser *p)
{
	zw_buf_free(&p->line);
}

static int parse_type(const char *s, enum zw_watch_type *out)
{
	for (int i = ZW_WATCH_ADDED; i <= ZW_WATCH_ERROR; i++) {
		if (strcmp(s, type_names[i]) == 0) {
			*out = (enum zw_watch_type)i;
			return 0;
		}
	}
	return -1;
}

/* Parses one complete line and hands the event to the callback. */
static int parse_line(struct zw_watch_parser *p, const char *line, size_t len)
{
	json_error_t jerr;
	enum zw_watch_type type;
	json_t *ev, *t, *obj;
	int rc;

	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	if (len == 0)
		return 0;
	ev = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!ev) {
		snprintf(p->err, sizeof(p->err), "watch event is not JSON: %s", jerr.text);
		return -1;
	}
	t = json_object_get(ev, "type");
	obj = json_object_get(ev, "object");
	if (!json_is_string(t) || parse_type(json_string_value(t), &type) != 0) {
		snprintf(p->err, sizeof(p->err), "watch event has no known type");
		json_decref(ev);
		return -1;
	}
	if (!json_is_object(obj)) {
		snprintf(p->err, sizeof(p->err), "watch event %s has no object",
		         zw_watch_type_name(type));
		json_decref(ev);
		return -1;
	}
	rc = p->fn(p->ud, type, obj);
	json_decref(ev);
	return rc;
}

int zw_watch_parser_feed(struct zw_watch_parser *p, const char *buf, size_t len)
{
	while (len > 0) {
		const char *nl = memchr(buf, '\n', len);
		size_t take = nl ? (size_t)(nl - buf) : len;
		int rc;

		if (nl && p->line.len == 0 && take <= p->max) {
			/* Whole line in this chunk: parse in place. */
			rc = parse_line(p, buf, take);
		} else {
			rc = zw_buf_append(&p->line, buf, take, p->max);
			if (rc != 0) {
				snprintf(p->err, sizeof(p->err),
				         rc == ZW_BUF_EFULL ? "watch event exceeds %zu bytes"
				                            : "out of memory (%zu)",
				         p->max);
				return -1;
			}
			if (!nl)
				return 0;
			rc = parse_line(p, p->line.data, p->line.len);
			p->line.len = 0;
		}
		if (rc != 0)
			return rc;
		buf += take + 1;
		len -= take + 1;
	}
	return 0;
}

/* ---- State machine ---- */

enum phase { PH_DISCOVER, PH_LIST, PH_WATCH };
enum abort_kind { AB_NONE, AB_RELIST, AB_ERROR };

struct zw_watch {
	struct zw_watch_spec spec; /* strings below are owned copies */
	char *group, *version, *resource, *namespace, *label_selector, *field_selector;

	enum phase phase;
	char rv[128];   /* resume point of the watch */
	json_t *known;  /* key -> last known object */
	unsigned delay; /* before the next request */
	unsigned failures;
	int waiting_reported;
	unsigned seed;

	/* list in progress */
	char *cont;
	json_t *pending; /* items so far */
	char list_rv[128];
	char *list_api_version, *list_kind;

	/* current request */
	struct zw_buf body;
	struct zw_watch_parser parser;
	enum abort_kind abort;
	char abort_reason[256];
	long long started_ms;
	unsigned lines;
};

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *dup_or_null(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

static int on_parsed(void *ud, enum zw_watch_type type, json_t *obj);

int zw_watch_new(const struct zw_watch_spec *spec, struct zw_watch **out)
{
	struct zw_watch *w;

	*out = NULL;
	if (!spec->version || !*spec->version || !spec->resource || !*spec->resource ||
	    !spec->on_event)
		return -1;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -1;
	w->spec = *spec;
	w->group = dup_or_null(spec->group);
	w->version = strdup(spec->version);
	w->resource = strdup(spec->resource);
	w->namespace = dup_or_null(spec->namespace);
	w->label_selector = dup_or_null(spec->label_selector);
	w->field_selector = dup_or_null(spec->field_selector);
	w->known = json_object();
	if (!w->version || !w->resource || !w->known ||
	    (spec->group && *spec->group && !w->group) ||
	    (spec->namespace && *spec->namespace && !w->namespace) ||
	    (spec->label_selector && *spec->label_selector && !w->label_selector) ||
	    (spec->field_selector && *spec->field_selector && !w->field_selector)) {
		zw_watch_free(w);
		return -1;
	}
	w->spec.group = w->group;
	w->spec.version = w->version;
	w->spec.resource = w->resource;
	w->spec.namespace = w->namespace;
	w->spec.label_selector = w->label_selector;
	w->spec.field_selector = w->field_selector;
	if (!w->spec.timeout_seconds)
		w->spec.timeout_seconds = ZW_WATCH_TIMEOUT_SECONDS;
	if (!w->spec.page_limit)
		w->spec.page_limit = ZW_KUBE_LIST_PAGE;
	if (!w->spec.discovery_interval_ms)
		w->spec.discovery_interval_ms = ZW_WATCH_DISCOVERY_MS;
	if (!w->spec.backoff_min_ms)
		w->spec.backoff_min_ms = ZW_WATCH_BACKOFF_MIN_MS;
	if (!w->spec.backoff_max_ms)
		w->spec.backoff_max_ms = ZW_WATCH_BACKOFF_MAX_MS;
	if (w->spec.backoff_max_ms < w->spec.backoff_min_ms)
		w->spec.backoff_max_ms = w->spec.backoff_min_ms;
	if (!w->spec.max_event)
		w->spec.max_event = ZW_WATCH_MAX_EVENT;
	w->seed = (unsigned)mono_ms() ^ (unsigned)(uintptr_t)w;
	zw_watch_parser_init(&w->parser, w->spec.max_event, on_parsed, w);
	w->phase = PH_DISCOVER;
	*out = w;
	return 0;
}

static void list_reset(struct zw_watch *w)
{
	free(w->cont);
	w->cont = NULL;
	json_decref(w->pending);
	w->pending = NULL;
	free(w->list_api_version);
	free(w->list_kind);
	w->list_api_version = w->list_kind = NULL;
	w->list_rv[0] = '\0';
}

void zw_watch_free(struct zw_watch *w)
{
	if (!w)
		return;
	list_reset(w);
	free(w->group);
	free(w->version);
	free(w->resource);
	free(w->namespace);
	free(w->label_selector);
	free(w->field_selector);
	json_decref(w->known);
	zw_buf_free(&w->body);
	zw_watch_parser_free(&w->parser);
	free(w);
}

json_t *zw_watch_known(struct zw_watch *w)
{
	return w->known;
}

const char *zw_watch_resource_version(struct zw_watch *w)
{
	return w->rv;
}

static void report(struct zw_watch *w, enum zw_watch_state_kind kind, const char *reason)
{
	struct zw_watch_status st = {kind, w->delay, w->failures, reason};

	if (w->spec.on_status)
		w->spec.on_status(w->spec.ud, &st);
}

static void deliver(struct zw_watch *w, enum zw_watch_type type, json_t *obj)
{
	w->spec.on_event(w->spec.ud, type, obj);
}

static const char *obj_rv(json_t *obj)
{
	return json_string_value(
	        json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
}

/* "namespace/name" or "name" of obj into buf; -1 without a name. */
static int obj_key(json_t *obj, char *buf, size_t len)
{
	json_t *md = json_object_get(obj, "metadata");
	const char *ns = json_string_value(json_object_get(md, "namespace"));
	const char *name = json_string_value(json_object_get(md, "name"));
	int n;

	if (!name)
		return -1;
	n = ns && *ns ? snprintf(buf, len, "%s/%s", ns, name) : snprintf(buf, len, "%s", name);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

static void set_rv(struct zw_watch *w, const char *rv)
{
	if (rv && strlen(rv) < sizeof(w->rv))
		snprintf(w->rv, sizeof(w->rv), "%s", rv);
}

/* Counts a failure and sets the next delay: capped exponential backoff
 * with equal jitter. */
static void backoff(struct zw_watch *w)
{
	unsigned d = w->spec.backoff_min_ms;

	w->failures++;
	for (unsigned i = 1; i < w->failures && d < w->spec.backoff_max_ms; i++)
		d *= 2;
	if (d > w->spec.backoff_max_ms)
		d = w->spec.backoff_max_ms;
	w->delay = d / 2 + (unsigned)rand_r(&w->seed) % (d / 2 + 1);
}

static void fail(struct zw_watch *w, const char *reason)
{
	backoff(w);
	report(w, ZW_WATCH_ST_RETRY, reason);
}

/* 404 on a list or watch: ask discovery again (after a backoff, so a
 * resource that discovery lists but that answers 404 cannot spin). */
static void rediscover(struct zw_watch *w)
{
	list_reset(w);
	w->phase = PH_DISCOVER;
	backoff(w);
}

/* The resource is not served (any more): forget everything, wait quietly. */
static void not_served(struct zw_watch *w)
{
	const char *key;
	json_t *obj, *old = w->known;
	int had = json_object_size(old) > 0;

	w->known = json_object();
	if (!w->known) {
		w->known = old;
		fail(w, "out of memory");
		return;
	}
	json_object_foreach(old, key, obj)
	{
		deliver(w, ZW_WATCH_DELETED, obj);
	}
	json_decref(old);
	if (had)
		deliver(w, ZW_WATCH_SYNCED, NULL);
	w->rv[0] = '\0';
	w->phase = PH_DISCOVER;
	w->failures = 0;
	w->delay = w->spec.discovery_interval_ms;
	if (!w->waiting_reported) {
		w->waiting_reported = 1;
		report(w, ZW_WATCH_ST_WAITING, NULL);
	}
}

int zw_watch_next(struct zw_watch *w, struct zw_watch_step *step)
{
	struct zw_kube_ref ref = {w->group, w->version, w->resource, w->namespace, NULL, NULL};
	struct zw_kube_opts opts = {0};
	int rc;

	memset(step, 0, sizeof(*step));
	step->delay_ms = w->delay;
	w->delay = 0;
	w->body.len = 0;
	w->abort = AB_NONE;
	w->abort_reason[0] = '\0';
	w->lines = 0;
	w->started_ms = mono_ms() + step->delay_ms;
	zw_watch_parser_reset(&w->parser);
	opts.label_selector = w->label_selector;
	opts.field_selector = w->field_selector;
	switch (w->phase) {
	case PH_DISCOVER:
		step->timeout_ms = ZW_KUBE_REQUEST_TIMEOUT_MS;
		return zw_kube_discovery_path(w->group, w->version, step->path, sizeof(step->path));
	case PH_LIST:
		opts.limit = w->spec.page_limit;
		opts.continue_token = w->cont;
		step->timeout_ms = ZW_WATCH_LIST_TIMEOUT_MS;
		break;
	case PH_WATCH:
		opts.watch = 1;
		opts.allow_bookmarks = 1;
		opts.resource_version = w->rv;
		opts.timeout_seconds = w->spec.timeout_seconds;
		step->streaming = 1;
		step->timeout_ms = ((long)w->spec.timeout_seconds + 30) * 1000;
		break;
	}
	rc = zw_kube_path(&ref, &opts, step->path, sizeof(step->path));
	return rc;
}

/* A watch event from the parser. */
static int on_parsed(void *ud, enum zw_watch_type type, json_t *obj)
{
	struct zw_watch *w = ud;
	const char *rv = obj_rv(obj), *known_rv;
	char key[512];
	json_t *prev;

	w->lines++;
	w->failures = 0;
	if (type == ZW_WATCH_BOOKMARK) {
		set_rv(w, rv);
		return 0;
	}
	if (type == ZW_WATCH_ERROR) {
		json_int_t code = json_integer_value(json_object_get(obj, "code"));
		const char *msg = json_string_value(json_object_get(obj, "message"));

		w->abort = code == 410 ? AB_RELIST : AB_ERROR;
		snprintf(w->abort_reason, sizeof(w->abort_reason), "watch ERROR %lld: %s",
		         (long long)code, msg ? msg : "(no message)");
		return 1;
	}
	if (obj_key(obj, key, sizeof(key)) != 0) {
		w->abort = AB_ERROR;
		snprintf(w->abort_reason, sizeof(w->abort_reason), "watch %s object has no name",
		         zw_watch_type_name(type));
		return 1;
	}
	prev = json_object_get(w->known, key);
	known_rv = prev ? obj_rv(prev) : NULL;
	set_rv(w, rv);
	if (type == ZW_WATCH_DELETED) {
		if (!prev)
			return 0; /* never seen: nothing to take back */
		json_object_del(w->known, key);
		deliver(w, type, obj);
		return 0;
	}
	if (prev && known_rv && rv && strcmp(known_rv, rv) == 0)
		return 0; /* already delivered */
	json_object_set(w->known, key, obj);
	deliver(w, prev ? ZW_WATCH_MODIFIED : ZW_WATCH_ADDED, obj);
	return 0;
}

int zw_watch_data(struct zw_watch *w, const char *buf, size_t len)
{
	int rc;

	if (w->phase == PH_WATCH) {
		rc = zw_watch_parser_feed(&w->parser, buf, len);
		if (rc < 0) {
			w->abort = AB_ERROR;
			snprintf(w->abort_reason, sizeof(w->abort_reason), "%s", w->parser.err);
		}
		return rc ? -1 : 0;
	}
	rc = zw_buf_append(&w->body, buf, len, ZW_KUBE_MAX_BODY);
	if (rc != 0) {
		w->abort = AB_ERROR;
		if (rc == ZW_BUF_EFULL)
			snprintf(w->abort_reason, sizeof(w->abort_reason),
			         "response body exceeds %zu bytes", ZW_KUBE_MAX_BODY);
		else
			snprintf(w->abort_reason, sizeof(w->abort_reason), "out of memory");
		return -1;
	}
	return 0;
}

/* Compares the complete new list with the known set and delivers the
 * differences, then SYNCED. */
static void finish_list(struct zw_watch *w)
{
	json_t *fresh = json_object(), *item, *prev;
	const char *key_iter;
	char key[512];
	size_t i;

	if (!fresh) {
		fail(w, "out of memory");
		list_reset(w);
		return;
	}
	json_array_foreach(w->pending, i, item)
	{
		if (obj_key(item, key, sizeof(key)) == 0)
			json_object_set(fresh, key, item);
	}
	json_array_foreach(w->pending, i, item)
	{
		const char *rv = obj_rv(item), *krv;

		if (obj_key(item, key, sizeof(key)) != 0)
			continue;
		prev = json_object_get(w->known, key);
		krv = prev ? obj_rv(prev) : NULL;
		if (!prev)
			deliver(w, ZW_WATCH_ADDED, item);
		else if (!krv || !rv || strcmp(krv, rv) != 0)
			deliver(w, ZW_WATCH_MODIFIED, item);
	}
	json_object_foreach(w->known, key_iter, prev)
	{
		if (!json_object_get(fresh, key_iter))
			deliver(w, ZW_WATCH_DELETED, prev);
	}
	json_decref(w->known);
	w->known = fresh;
	snprintf(w->rv, sizeof(w->rv), "%s", w->list_rv);
	list_reset(w);
	w->phase = PH_WATCH;
	w->failures = 0;
	deliver(w, ZW_WATCH_SYNCED, NULL);
	report(w, ZW_WATCH_ST_SYNCED, NULL);
}

/* One page of a list arrived in w->body. */
static void list_page(struct zw_watch *w)
{
	json_t *page = NULL, *items, *item, *md;
	const char *cont;
	json_error_t jerr;
	size_t i;

	page = json_loadb(w->body.data ? w->body.data : "", w->body.len, 0, &jerr);
	items = json_object_get(page, "items");
	md = json_object_get(page, "metadata");
	/* No "items" array is not an empty list: a misrouted or cut reply would
	 * otherwise read as "everything was deleted". */
	if (!page || !json_is_array(items)) {
		fail(w, page ? "list response has no items array" : "list response is not JSON");
		list_reset(w);
		goto out;
	}
	if (!w->pending) {
		const char *av = json_string_value(json_object_get(page, "apiVersion"));
		const char *kind = json_string_value(json_object_get(page, "kind"));
		const char *rv = json_string_value(json_object_get(md, "resourceVersion"));

		w->pending = json_array();
		w->list_api_version = av ? strdup(av) : NULL;
		w->list_kind = kind ? strdup(kind) : NULL;
		snprintf(w->list_rv, sizeof(w->list_rv), "%s", rv ? rv : "");
		if (!w->pending) {
			fail(w, "out of memory");
			list_reset(w);
			goto out;
		}
	}
	w->failures = 0;
	zw_kube_items_set_kind(items, w->list_api_version, w->list_kind);
	json_array_foreach(items, i, item)
	{
		if (json_is_object(item))
			json_array_append(w->pending, item);
	}
	cont = json_string_value(json_object_get(md, "continue"));
	free(w->cont);
	w->cont = cont && *cont ? strdup(cont) : NULL;
	if (!w->cont)
		finish_list(w);
out:
	json_decref(page);
}

static void discovered(struct zw_watch *w)
{
	json_error_t jerr;
	json_t *rl = json_loadb(w->body.data ? w->body.data : "", w->body.len, 0, &jerr);

	if (!rl) {
		fail(w, "discovery response is not JSON");
	} else if (zw_kube_discovery_has(rl, w->resource)) {
		w->phase = PH_LIST;
		w->waiting_reported = 0;
		w->failures = 0;
		list_reset(w);
	} else {
		not_served(w);
	}
	json_decref(rl);
}

void zw_watch_done(struct zw_watch *w, long http_status, int transport,
                   const struct zw_kube_error *err)
{
	char reason[640];
	int ok = !transport && http_status >= 200 && http_status < 300;

	if (err && (err->http_status || err->message[0]))
		snprintf(reason, sizeof(reason), "%d %s: %s", err->http_status, err->reason,
		         err->message);
	else
		snprintf(reason, sizeof(reason), "HTTP %ld", http_status);
	if (w->abort != AB_NONE)
		snprintf(reason, sizeof(reason), "%s", w->abort_reason);

	switch (w->phase) {
	case PH_DISCOVER:
		if (ok)
			discovered(w);
		else if (http_status == 404)
			not_served(w);
		else
			fail(w, reason);
		return;
	case PH_LIST:
		if (ok && w->abort == AB_NONE) {
			list_page(w);
		} else if (http_status == 404) {
			rediscover(w);
		} else {
			list_reset(w); /* start over from the first page */
			fail(w, reason);
		}
		return;
	case PH_WATCH:
		break;
	}
	if (w->abort == AB_RELIST || http_status == 410) {
		list_reset(w);
		w->phase = PH_LIST;
		report(w, ZW_WATCH_ST_RELIST, reason);
	} else if (http_status == 404) {
		rediscover(w);
	} else if (!ok || w->abort != AB_NONE) {
		fail(w, reason);
	} else if (w->lines == 0 && mono_ms() - w->started_ms < ZW_WATCH_OK_MIN_DURATION_MS) {
		fail(w, "watch ended at once");
	}
	/* else: a normal end of a watch; resume at once from w->rv */
}
