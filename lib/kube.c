/* Kubernetes API requests and the blocking client; see kube.h. */
#include "kube.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef ZW_VERSION
#define ZW_VERSION "dev"
#endif

/* ---- Paths ---- */

static int is_unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

/* Appends s to buf at *off, percent-encoding all but unreserved characters
 * when escape is set. Returns -1 when it does not fit. */
static int put(char *buf, size_t len, size_t *off, const char *s, int escape)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		size_t need = escape && !is_unreserved(c) ? 3 : 1;

		if (*off + need >= len)
			return -1;
		if (need == 1) {
			buf[(*off)++] = (char)c;
		} else {
			buf[(*off)++] = '%';
			buf[(*off)++] = hex[c >> 4];
			buf[(*off)++] = hex[c & 15];
		}
	}
	buf[*off] = '\0';
	return 0;
}

static int put_query(char *buf, size_t len, size_t *off, int *first, const char *key,
                     const char *val)
{
	if (!val || !*val)
		return 0;
	if (put(buf, len, off, *first ? "?" : "&", 0) != 0 || put(buf, len, off, key, 0) != 0 ||
	    put(buf, len, off, "=", 0) != 0 || put(buf, len, off, val, 1) != 0)
		return -1;
	*first = 0;
	return 0;
}

int zw_kube_discovery_path(const char *group, const char *version, char *buf, size_t len)
{
	size_t off = 0;

	if (!version || !*version || len == 0)
		return -1;
	buf[0] = '\0';
	if (!group || !*group)
		return put(buf, len, &off, "/api/", 0) || put(buf, len, &off, version, 1) ? -1 : 0;
	return put(buf, len, &off, "/apis/", 0) || put(buf, len, &off, group, 1) ||
	                       put(buf, len, &off, "/", 0) || put(buf, len, &off, version, 1)
	               ? -1
	               : 0;
}

int zw_kube_path(const struct zw_kube_ref *ref, const struct zw_kube_opts *opts, char *buf,
                 size_t len)
{
	struct zw_kube_opts none = {0};
	char num[32];
	size_t off;
	int first = 1;

	if (!opts)
		opts = &none;
	if (!ref->resource || !*ref->resource || (ref->name && !*ref->name) ||
	    (ref->subresource && *ref->subresource && !ref->name))
		return -1;
	if (zw_kube_discovery_path(ref->group, ref->version, buf, len) != 0)
		return -1;
	off = strlen(buf);
	if (ref->namespace && *ref->namespace &&
	    (put(buf, len, &off, "/namespaces/", 0) || put(buf, len, &off, ref->namespace, 1)))
		return -1;
	if (put(buf, len, &off, "/", 0) || put(buf, len, &off, ref->resource, 1))
		return -1;
	if (ref->name && (put(buf, len, &off, "/", 0) || put(buf, len, &off, ref->name, 1)))
		return -1;
	if (ref->subresource && *ref->subresource &&
	    (put(buf, len, &off, "/", 0) || put(buf, len, &off, ref->subresource, 1)))
		return -1;
	if (opts->watch && put_query(buf, len, &off, &first, "watch", "1"))
		return -1;
	if (opts->allow_bookmarks &&
	    put_query(buf, len, &off, &first, "allowWatchBookmarks", "true"))
		return -1;
	if (put_query(buf, len, &off, &first, "resourceVersion", opts->resource_version) ||
	    put_query(buf, len, &off, &first, "labelSelector", opts->label_selector) ||
	    put_query(buf, len, &off, &first, "fieldSelector", opts->field_selector) ||
	    put_query(buf, len, &off, &first, "continue", opts->continue_token) ||
	    put_query(buf, len, &off, &first, "fieldManager", opts->field_manager) ||
	    put_query(buf, len, &off, &first, "propagationPolicy", opts->propagation_policy))
		return -1;
	if (opts->dry_run && put_query(buf, len, &off, &first, "dryRun", "All"))
		return -1;
	if (opts->limit) {
		snprintf(num, sizeof(num), "%u", opts->limit);
		if (put_query(buf, len, &off, &first, "limit", num))
			return -1;
	}
	if (opts->timeout_seconds) {
		snprintf(num, sizeof(num), "%u", opts->timeout_seconds);
		if (put_query(buf, len, &off, &first, "timeoutSeconds", num))
			return -1;
	}
	return 0;
}

const char *zw_kube_patch_content_type(enum zw_kube_patch_type type)
{
	switch (type) {
	case ZW_KUBE_PATCH_JSON:
		return "application/json-patch+json";
	case ZW_KUBE_PATCH_MERGE:
		return "application/merge-patch+json";
	case ZW_KUBE_PATCH_STRATEGIC:
		return "application/strategic-merge-patch+json";
	}
	return "application/merge-patch+json";
}

/* ---- Errors ---- */

static const char *status_reason(long s)
{
	switch (s) {
	case 400:
		return "BadRequest";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "NotFound";
	case 405:
		return "MethodNotAllowed";
	case 409:
		return "Conflict";
	case 410:
		return "Expired";
	case 415:
		return "UnsupportedMediaType";
	case 422:
		return "Invalid";
	case 429:
		return "TooManyRequests";
	case 500:
		return "InternalError";
	case 503:
		return "ServiceUnavailable";
	case 504:
		return "Timeout";
	}
	return "Unknown";
}

static void set_error(struct zw_kube_error *err, int status, const char *reason, const char *msg)
{
	if (!err)
		return;
	err->http_status = status;
	snprintf(err->reason, sizeof(err->reason), "%s", reason);
	snprintf(err->message, sizeof(err->message), "%s", msg);
}

const char *zw_kube_error_text(const struct zw_kube_error *err)
{
	return err->message[0] ? err->message : err->reason;
}

void zw_kube_error_from_response(struct zw_kube_error *err, long http_status, const char *body,
                                 size_t body_len)
{
	json_t *st = body && body_len ? json_loadb(body, body_len, 0, NULL) : NULL;
	const char *reason = json_string_value(json_object_get(st, "reason"));
	const char *msg = json_string_value(json_object_get(st, "message"));
	char fallback[160];

	if (!msg) {
		snprintf(fallback, sizeof(fallback), "HTTP %ld%s%.*s", http_status,
		         body_len ? ": " : "", (int)(body_len > 120 ? 120 : body_len),
		         body ? body : "");
		msg = fallback;
	}
	set_error(err, (int)http_status, reason && *reason ? reason : status_reason(http_status),
	          msg);
	json_decref(st);
}

/* ---- One exchange ---- */

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct zw_kube_xfer *x = ud;
	size_t n = size * nmemb;
	long status = 0;

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	if (x->on_data && status >= 200 && status < 300) {
		if (x->on_data(x->ud, ptr, n) != 0) {
			x->aborted = 1;
			return 0;
		}
		return n;
	}
	switch (zw_buf_append(&x->resp, ptr, n, ZW_KUBE_MAX_BODY)) {
	case 0:
		return n;
	case ZW_BUF_EFULL:
		x->too_large = 1;
		return 0;
	default:
		return 0;
	}
}

static int xferinfo_cb(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct zw_kube_xfer *x = ud;

	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	return x->cancel && atomic_load(x->cancel) ? 1 : 0;
}

static int add_header(struct curl_slist **h, const char *line)
{
	struct curl_slist *n = curl_slist_append(*h, line);

	if (!n)
		return -1;
	*h = n;
	return 0;
}

int zw_kube_xfer_init(struct zw_kube_xfer *x, struct zw_kube_config *cfg, CURL *easy,
                      const char *method, const char *path_query, json_t *body,
                      const char *content_type, long timeout_ms, zw_kube_data_fn *on_data, void *ud,
                      struct zw_kube_error *err)
{
	char token[ZW_KUBE_TOKEN_MAX + 32], *url = NULL, line[256];

	memset(x, 0, sizeof(*x));
	x->on_data = on_data;
	x->ud = ud;
	if (easy) {
		curl_easy_reset(easy);
		x->easy = easy;
		x->borrowed_easy = 1;
	} else {
		x->easy = curl_easy_init();
		if (!x->easy)
			goto oom;
	}
	if (asprintf(&url, "%s%s", cfg->server, path_query) < 0) {
		url = NULL;
		goto oom;
	}
	if (body) {
		x->req_body = json_dumps(body, JSON_COMPACT);
		if (!x->req_body)
			goto oom;
	}
	snprintf(line, sizeof(line), "Content-Type: %s",
	         content_type ? content_type : "application/json");
	if (add_header(&x->headers, "Accept: application/json") ||
	    add_header(&x->headers, "Expect:") ||
	    add_header(&x->headers, "User-Agent: zerowire/" ZW_VERSION) ||
	    (body && add_header(&x->headers, line)))
		goto oom;
	/* A failed re-read keeps the previous token: better than none. */
	snprintf(token, sizeof(token), "%s", "Authorization: Bearer ");
	zw_kube_config_token(cfg, 0, token + strlen(token), sizeof(token) - strlen(token));
	if (token[strlen("Authorization: Bearer ")] && add_header(&x->headers, token)) {
		memset(token, 0, sizeof(token));
		goto oom;
	}
	memset(token, 0, sizeof(token));
	if (zw_kube_config_apply_tls(cfg, x->easy) != 0) {
		set_error(err, 0, "Transport", "libcurl rejected the TLS settings");
		goto fail;
	}
	curl_easy_setopt(x->easy, CURLOPT_URL, url);
	curl_easy_setopt(x->easy, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "GET") == 0)
		curl_easy_setopt(x->easy, CURLOPT_HTTPGET, 1L);
	if (x->req_body) {
		curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, x->req_body);
		curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE,
		                 (curl_off_t)strlen(x->req_body));
	}
	curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);
	curl_easy_setopt(x->easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(x->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(x->easy, CURLOPT_CONNECTTIMEOUT_MS, ZW_KUBE_CONNECT_TIMEOUT_MS);
	if (timeout_ms >= 0)
		curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS,
		                 timeout_ms ? timeout_ms : ZW_KUBE_REQUEST_TIMEOUT_MS);
	curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(x->easy, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
	curl_easy_setopt(x->easy, CURLOPT_XFERINFODATA, x);
	curl_easy_setopt(x->easy, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(x->easy, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
	free(url);
	return 0;
oom:
	set_error(err, 0, "Transport", "out of memory");
fail:
	free(url);
	zw_kube_xfer_cleanup(x);
	return -1;
}

int zw_kube_xfer_result(struct zw_kube_xfer *x, CURLcode cc, json_t **out, long *http_status_out,
                        struct zw_kube_error *err)
{
	json_error_t jerr;
	long status = 0;
	char msg[CURL_ERROR_SIZE + 64];

	if (out)
		*out = NULL;
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	if (http_status_out)
		*http_status_out = cc == CURLE_OK ? status : 0;
	if (cc != CURLE_OK) {
		if (x->too_large) {
			snprintf(msg, sizeof(msg), "response body exceeds %zu bytes",
			         ZW_KUBE_MAX_BODY);
			set_error(err, 0, "TooLarge", msg);
		} else if (x->aborted) {
			set_error(err, 0, "Aborted", "transfer aborted by the consumer");
		} else {
			snprintf(msg, sizeof(msg), "%s",
			         x->errbuf[0] ? x->errbuf : curl_easy_strerror(cc));
			set_error(err, 0, "Transport", msg);
		}
		return -1;
	}
	if (status < 200 || status >= 300) {
		zw_kube_error_from_response(err, status, x->resp.data, x->resp.len);
		return -1;
	}
	if (out && x->resp.len > 0) {
		*out = json_loadb(x->resp.data, x->resp.len, 0, &jerr);
		if (!*out) {
			snprintf(msg, sizeof(msg), "response is not JSON: %s", jerr.text);
			set_error(err, (int)status, "BadResponse", msg);
			return -1;
		}
	}
	return 0;
}

void zw_kube_xfer_cleanup(struct zw_kube_xfer *x)
{
	if (x->easy && !x->borrowed_easy)
		curl_easy_cleanup(x->easy);
	else if (x->easy)
		curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, NULL);
	x->easy = NULL;
	curl_slist_free_all(x->headers);
	x->headers = NULL;
	free(x->req_body);
	x->req_body = NULL;
	zw_buf_free(&x->resp);
}

/* ---- Blocking client ---- */

struct zw_kube {
	struct zw_kube_config *cfg;
	pthread_mutex_t lock;
	CURL *idle[ZW_KUBE_POOL_MAX];
	int nidle;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

int zw_kube_new(struct zw_kube_config *cfg, struct zw_kube **out)
{
	struct zw_kube *k;

	pthread_once(&global_once, global_init);
	*out = NULL;
	k = calloc(1, sizeof(*k));
	if (!k)
		return -1;
	k->cfg = cfg;
	pthread_mutex_init(&k->lock, NULL);
	*out = k;
	return 0;
}

void zw_kube_free(struct zw_kube *k)
{
	if (!k)
		return;
	for (int i = 0; i < k->nidle; i++)
		curl_easy_cleanup(k->idle[i]);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

struct zw_kube_config *zw_kube_config(struct zw_kube *k)
{
	return k->cfg;
}

static CURL *pool_get(struct zw_kube *k)
{
	CURL *c = NULL;

	pthread_mutex_lock(&k->lock);
	if (k->nidle > 0)
		c = k->idle[--k->nidle];
	pthread_mutex_unlock(&k->lock);
	return c ? c : curl_easy_init();
}

static void pool_put(struct zw_kube *k, CURL *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&k->lock);
	if (k->nidle < ZW_KUBE_POOL_MAX) {
		k->idle[k->nidle++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&k->lock);
	if (c)
		curl_easy_cleanup(c);
}

/* One blocking exchange; on_data may stream the body. */
static int perform(struct zw_kube *k, const char *method, const char *path_query, json_t *body,
                   const char *content_type, long timeout_ms, const atomic_int *cancel,
                   zw_kube_data_fn *on_data, void *ud, json_t **out, long *status_out,
                   struct zw_kube_error *err)
{
	struct zw_kube_xfer x;
	CURL *easy;
	CURLcode cc;
	int rc;

	if (status_out)
		*status_out = 0;
	easy = pool_get(k);
	if (!easy) {
		set_error(err, 0, "Transport", "out of memory");
		return -1;
	}
	if (zw_kube_xfer_init(&x, k->cfg, easy, method, path_query, body, content_type, timeout_ms,
	                      on_data, ud, err) != 0) {
		pool_put(k, easy);
		return -1;
	}
	x.cancel = cancel;
	cc = curl_easy_perform(easy);
	rc = zw_kube_xfer_result(&x, cc, out, status_out, err);
	zw_kube_xfer_cleanup(&x);
	pool_put(k, easy);
	return rc;
}

int zw_kube_request(struct zw_kube *k, const char *method, const char *path_query, json_t *body,
                    const char *content_type, long timeout_ms, const atomic_int *cancel,
                    json_t **out, struct zw_kube_error *err)
{
	char tok[8];
	long status;
	int rc;

	rc = perform(k, method, path_query, body, content_type, timeout_ms, cancel, NULL, NULL, out,
	             &status, err);
	if (rc != 0 && status == 401 && (k->cfg->token_file || k->cfg->exec)) {
		/* The token may have rotated or expired: re-read (or re-run the plugin) and retry
		 * once. */
		zw_kube_config_token(k->cfg, 1, tok, sizeof(tok));
		rc = perform(k, method, path_query, body, content_type, timeout_ms, cancel, NULL,
		             NULL, out, &status, err);
	}
	return rc;
}

static int path_or_fail(const struct zw_kube_ref *ref, const struct zw_kube_opts *opts, char *buf,
                        size_t len, struct zw_kube_error *err)
{
	if (zw_kube_path(ref, opts, buf, len) == 0)
		return 0;
	set_error(err, 0, "BadRequest", "invalid resource reference (or path too long)");
	return -1;
}

int zw_kube_get(struct zw_kube *k, const struct zw_kube_ref *ref, const struct zw_kube_opts *opts,
                json_t **out, struct zw_kube_error *err)
{
	char path[ZW_KUBE_PATH_MAX];

	if (path_or_fail(ref, opts, path, sizeof(path), err) != 0)
		return -1;
	return zw_kube_request(k, "GET", path, NULL, NULL, 0, NULL, out, err);
}

/* Fetches all pages once. Returns 0, -1, or -2 when a continue token expired. */
static int list_once(struct zw_kube *k, const struct zw_kube_ref *ref,
                     const struct zw_kube_opts *opts, json_t **out, unsigned *pages,
                     struct zw_kube_error *err)
{
	struct zw_kube_opts o = opts ? *opts : (struct zw_kube_opts){0};
	char path[ZW_KUBE_PATH_MAX], *cont = NULL;
	json_t *result = NULL, *page = NULL, *items;
	unsigned n = 0;
	int rc = -1;

	if (!o.limit)
		o.limit = ZW_KUBE_LIST_PAGE;
	o.watch = 0;
	o.continue_token = NULL;
	for (;;) {
		const char *c;

		o.continue_token = cont;
		if (n >= ZW_KUBE_LIST_MAX_PAGES) {
			set_error(err, 0, "TooLarge", "list has too many pages");
			goto out;
		}
		if (path_or_fail(ref, &o, path, sizeof(path), err) != 0)
			goto out;
		if (zw_kube_request(k, "GET", path, NULL, NULL, ZW_KUBE_LIST_TIMEOUT_MS, NULL,
		                    &page, err) != 0) {
			if (cont && err && err->http_status == 410)
				rc = -2;
			goto out;
		}
		n++;
		/* A list always carries an `items` array, empty or not: a reply
		 * without one is not read as "nothing there" (which would drop
		 * every known object) but refused. */
		items = json_object_get(page, "items");
		if (!json_is_object(page) || !json_is_array(items)) {
			set_error(err, 200, "BadResponse", "list response has no items array");
			goto out;
		}
		if (!result) {
			result = page;
			page = NULL;
		} else {
			json_array_extend(json_object_get(result, "items"), items);
		}
		c = json_string_value(json_object_get(
		        json_object_get(page ? page : result, "metadata"), "continue"));
		free(cont);
		cont = c && *c ? strdup(c) : NULL;
		json_decref(page);
		page = NULL;
		if (!cont)
			break;
	}
	zw_kube_items_set_kind(json_object_get(result, "items"),
	                       json_string_value(json_object_get(result, "apiVersion")),
	                       json_string_value(json_object_get(result, "kind")));
	json_object_del(json_object_get(result, "metadata"), "continue");
	json_object_del(json_object_get(result, "metadata"), "remainingItemCount");
	*out = result;
	result = NULL;
	if (pages)
		*pages = n;
	rc = 0;
out:
	free(cont);
	json_decref(page);
	json_decref(result);
	return rc;
}

int zw_kube_list(struct zw_kube *k, const struct zw_kube_ref *ref, const struct zw_kube_opts *opts,
                 json_t **out, unsigned *pages, struct zw_kube_error *err)
{
	int rc;

	*out = NULL;
	if (ref->name) {
		set_error(err, 0, "BadRequest", "a list addresses a collection (no name)");
		return -1;
	}
	rc = list_once(k, ref, opts, out, pages, err);
	if (rc == -2)
		rc = list_once(k, ref, opts, out, pages, err);
	return rc == 0 ? 0 : -1;
}

static int send_obj(struct zw_kube *k, const char *method, const struct zw_kube_ref *ref,
                    const struct zw_kube_opts *opts, json_t *obj, const char *ctype, json_t **out,
                    struct zw_kube_error *err)
{
	char path[ZW_KUBE_PATH_MAX];

	if (path_or_fail(ref, opts, path, sizeof(path), err) != 0)
		return -1;
	return zw_kube_request(k, method, path, obj, ctype, 0, NULL, out, err);
}

int zw_kube_create(struct zw_kube *k, const struct zw_kube_ref *ref,
                   const struct zw_kube_opts *opts, json_t *obj, json_t **out,
                   struct zw_kube_error *err)
{
	return send_obj(k, "POST", ref, opts, obj, NULL, out, err);
}

int zw_kube_update(struct zw_kube *k, const struct zw_kube_ref *ref,
                   const struct zw_kube_opts *opts, json_t *obj, json_t **out,
                   struct zw_kube_error *err)
{
	return send_obj(k, "PUT", ref, opts, obj, NULL, out, err);
}

int zw_kube_patch(struct zw_kube *k, const struct zw_kube_ref *ref, const struct zw_kube_opts *opts,
                  enum zw_kube_patch_type type, json_t *patch, json_t **out,
                  struct zw_kube_error *err)
{
	return send_obj(k, "PATCH", ref, opts, patch, zw_kube_patch_content_type(type), out, err);
}

int zw_kube_delete(struct zw_kube *k, const struct zw_kube_ref *ref,
                   const struct zw_kube_opts *opts, json_t **out, struct zw_kube_error *err)
{
	return send_obj(k, "DELETE", ref, opts, NULL, NULL, out, err);
}

int zw_kube_scale_get(struct zw_kube *k, const struct zw_kube_ref *ref, int *replicas, int *current,
                      struct zw_kube_error *err)
{
	struct zw_kube_ref r = *ref;
	json_t *scale = NULL, *v;
	int rc = -1;

	r.subresource = "scale";
	if (zw_kube_get(k, &r, NULL, &scale, err) != 0)
		return -1;
	v = json_object_get(json_object_get(scale, "spec"), "replicas");
	if (v && !json_is_integer(v)) {
		set_error(err, 200, "BadResponse", "scale spec.replicas is not an integer");
		goto out;
	}
	*replicas = (int)json_integer_value(v);
	if (current)
		*current = (int)json_integer_value(
		        json_object_get(json_object_get(scale, "status"), "replicas"));
	rc = 0;
out:
	json_decref(scale);
	return rc;
}

int zw_kube_scale_set(struct zw_kube *k, const struct zw_kube_ref *ref,
                      const struct zw_kube_opts *opts, int replicas, struct zw_kube_error *err)
{
	struct zw_kube_ref r = *ref;
	json_t *patch;
	int rc;

	if (replicas < 0) {
		set_error(err, 0, "BadRequest", "replicas must not be negative");
		return -1;
	}
	r.subresource = "scale";
	patch = json_pack("{s:{s:i}}", "spec", "replicas", replicas);
	if (!patch) {
		set_error(err, 0, "Transport", "out of memory");
		return -1;
	}
	rc = zw_kube_patch(k, &r, opts, ZW_KUBE_PATCH_MERGE, patch, NULL, err);
	json_decref(patch);
	return rc;
}

void zw_kube_items_set_kind(json_t *items, const char *api_version, const char *list_kind)
{
	size_t klen = list_kind ? strlen(list_kind) : 0, i;
	json_t *kind = NULL, *item;

	if (klen > 4 && strcmp(list_kind + klen - 4, "List") == 0)
		kind = json_stringn(list_kind, klen - 4);
	json_array_foreach(items, i, item)
	{
		if (!json_is_object(item))
			continue;
		if (api_version && !json_object_get(item, "apiVersion"))
			json_object_set_new(item, "apiVersion", json_string(api_version));
		if (kind && !json_object_get(item, "kind"))
			json_object_set(item, "kind", kind);
	}
	json_decref(kind);
}

int zw_kube_discovery_has(json_t *resource_list, const char *resource)
{
	json_t *res = json_object_get(resource_list, "resources"), *r;
	size_t i;

	json_array_foreach(res, i, r)
	{
		const char *name = json_string_value(json_object_get(r, "name"));

		if (name && strcmp(name, resource) == 0)
			return 1;
	}
	return 0;
}

int zw_kube_served(struct zw_kube *k, const char *group, const char *version, const char *resource,
                   int *served, struct zw_kube_error *err)
{
	char path[ZW_KUBE_PATH_MAX];
	json_t *rl = NULL;

	*served = 0;
	if (zw_kube_discovery_path(group, version, path, sizeof(path)) != 0) {
		set_error(err, 0, "BadRequest", "invalid group/version");
		return -1;
	}
	if (zw_kube_request(k, "GET", path, NULL, NULL, 0, NULL, &rl, err) != 0)
		return err && err->http_status == 404 ? 0 : -1;
	*served = zw_kube_discovery_has(rl, resource);
	json_decref(rl);
	return 0;
}
