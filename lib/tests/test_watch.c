/* Unit tests for lib/watch.c: the watch stream parser and the list+watch
 * state machine (driven here without I/O, as a driver would), and the
 * request paths of lib/kube.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "kube.h"
#include "watch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parser ---- */

struct seen {
	char log[8192]; /* "TYPE name rv;" per event */
	int n;
	int stop_at; /* return 1 from the callback at this event number (1-based), 0 = never */
};

static int record(void *ud, enum zw_watch_type type, json_t *obj)
{
	struct seen *s = ud;
	json_t *md = json_object_get(obj, "metadata");
	const char *name = json_string_value(json_object_get(md, "name"));
	const char *rv = json_string_value(json_object_get(md, "resourceVersion"));
	size_t len = strlen(s->log);

	if (type == ZW_WATCH_ERROR)
		snprintf(s->log + len, sizeof(s->log) - len, "ERROR %lld;",
		         (long long)json_integer_value(json_object_get(obj, "code")));
	else
		snprintf(s->log + len, sizeof(s->log) - len, "%s %s %s;", zw_watch_type_name(type),
		         name ? name : "-", rv ? rv : "-");
	s->n++;
	return s->stop_at && s->n == s->stop_at ? 1 : 0;
}

/* An event whose name contains multi-byte UTF-8, so some cuts fall inside a
 * character. */
static const char EV1[] = "{\"type\":\"ADDED\",\"object\":{\"kind\":\"ConfigMap\",\"metadata\":"
                          "{\"name\":\"caf\xc3\xa9-\xe2\x82\xac-\xf0\x9f\x9a\x80\","
                          "\"resourceVersion\":\"11\"},\"data\":{\"k\":\"v\\n\"}}}\n";

static void test_split_everywhere(void **state)
{
	const size_t n = strlen(EV1);

	(void)state;
	for (size_t cut = 0; cut <= n; cut++) {
		struct zw_watch_parser p;
		struct seen s = {0};

		zw_watch_parser_init(&p, 0, record, &s);
		assert_int_equal(zw_watch_parser_feed(&p, EV1, cut), 0);
		if (cut < n)
			assert_int_equal(s.n, 0);
		assert_int_equal(zw_watch_parser_feed(&p, EV1 + cut, n - cut), 0);
		assert_int_equal(s.n, 1);
		assert_string_equal(s.log, "ADDED caf\xc3\xa9-\xe2\x82\xac-\xf0\x9f\x9a\x80 11;");
		zw_watch_parser_free(&p);
	}
	/* and byte by byte */
	{
		struct zw_watch_parser p;
		struct seen s = {0};

		zw_watch_parser_init(&p, 0, record, &s);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(zw_watch_parser_feed(&p, EV1 + i, 1), 0);
		assert_int_equal(s.n, 1);
		zw_watch_parser_free(&p);
	}
}

static void test_several_bookmark_error(void **state)
{
	const char *chunk = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\","
	                    "\"resourceVersion\":\"1\"}}}\n"
	                    "\r\n\n"
	                    "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"a\","
	                    "\"resourceVersion\":\"2\"}}}\r\n"
	                    "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"ConfigMap\","
	                    "\"metadata\":{\"resourceVersion\":\"7\"}}}\n"
	                    "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"a\","
	                    "\"resourceVersion\":\"8\"}}}\n"
	                    "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":"
	                    "\"v1\",\"status\":"
	                    "\"Failure\",\"message\":\"too old resource version: 1 "
	                    "(5)\",\"reason\":\"Expired\","
	                    "\"code\":410}}\n"
	                    "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"b\","
	                    "\"resourceVersion\":\"9\"}}}";
	struct zw_watch_parser p;
	struct seen s = {0};

	(void)state;
	zw_watch_parser_init(&p, 0, record, &s);
	assert_int_equal(zw_watch_parser_feed(&p, chunk, strlen(chunk)), 0);
	assert_string_equal(s.log, "ADDED a 1;MODIFIED a 2;BOOKMARK - 7;DELETED a 8;ERROR 410;");
	/* the last event waits for its newline */
	assert_int_equal(zw_watch_parser_feed(&p, "\n", 1), 0);
	assert_int_equal(s.n, 6);
	zw_watch_parser_free(&p);

	/* a callback that stops the stream: the feed returns its value */
	memset(&s, 0, sizeof(s));
	s.stop_at = 2;
	zw_watch_parser_init(&p, 0, record, &s);
	assert_int_equal(zw_watch_parser_feed(&p, chunk, strlen(chunk)), 1);
	assert_int_equal(s.n, 2);
	zw_watch_parser_free(&p);
}

static void test_oversize_and_garbage(void **state)
{
	struct zw_watch_parser p;
	struct seen s = {0};
	char big[300];

	(void)state;
	/* a line over the limit fails even before its newline arrives */
	zw_watch_parser_init(&p, 128, record, &s);
	memset(big, 'x', sizeof(big));
	assert_int_equal(zw_watch_parser_feed(&p, big, 100), 0);
	assert_int_equal(zw_watch_parser_feed(&p, big, 100), -1);
	assert_non_null(strstr(p.err, "exceeds 128 bytes"));
	zw_watch_parser_free(&p);

	/* exactly at the limit is fine */
	zw_watch_parser_init(&p, strlen(EV1) - 1, record, &s);
	assert_int_equal(zw_watch_parser_feed(&p, EV1, strlen(EV1)), 0);
	assert_int_equal(s.n, 1);
	zw_watch_parser_free(&p);

	struct {
		const char *line, *err;
	} bad[] = {
	        {"this is not json\n", "not JSON"},
	        {"{\"type\":\"ADDED\",\"object\":{\"a\":1}\n", "not JSON"},
	        {"{\"type\":\"RENAMED\",\"object\":{}}\n", "no known type"},
	        {"{\"object\":{}}\n", "no known type"},
	        {"{\"type\":\"ADDED\",\"object\":[1]}\n", "has no object"},
	        {"[1,2]\n", "no known type"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&s, 0, sizeof(s));
		zw_watch_parser_init(&p, 0, record, &s);
		assert_int_equal(zw_watch_parser_feed(&p, bad[i].line, strlen(bad[i].line)), -1);
		if (!strstr(p.err, bad[i].err))
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, p.err, bad[i].err);
		assert_int_equal(s.n, 0);
		zw_watch_parser_free(&p);
	}
}

/* ---- paths ---- */

static void test_paths(void **state)
{
	struct zw_kube_ref core = {NULL, "v1", "configmaps", "default", "a b/c", NULL};
	struct zw_kube_ref apps = {"apps", "v1", "deployments", "ns1", "web", "scale"};
	struct zw_kube_ref crd = {"keda.sh", "v1alpha1", "scaledobjects", NULL, NULL, NULL};
	struct zw_kube_opts o = {0};
	char buf[512];

	(void)state;
	assert_int_equal(zw_kube_path(&core, NULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/api/v1/namespaces/default/configmaps/a%20b%2Fc");
	o.dry_run = 1;
	o.field_manager = "zerowire";
	assert_int_equal(zw_kube_path(&apps, &o, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/apis/apps/v1/namespaces/ns1/deployments/web/scale"
	                         "?fieldManager=zerowire&dryRun=All");
	memset(&o, 0, sizeof(o));
	o.watch = 1;
	o.allow_bookmarks = 1;
	o.resource_version = "42";
	o.timeout_seconds = 300;
	o.label_selector = "app in (a,b),tier!=x";
	assert_int_equal(zw_kube_path(&crd, &o, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/apis/keda.sh/v1alpha1/scaledobjects?watch=1&allowWatchBookmarks="
	                         "true&resourceVersion=42&labelSelector=app%20in%20%28a%2Cb%29%2C"
	                         "tier%21%3Dx&timeoutSeconds=300");
	memset(&o, 0, sizeof(o));
	o.limit = 10;
	o.continue_token = "eyJ2Ijoi+/=";
	crd.namespace = "";
	assert_int_equal(zw_kube_path(&crd, &o, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/apis/keda.sh/v1alpha1/scaledobjects?continue=eyJ2Ijoi%2B%2F%3D"
	                         "&limit=10");
	/* invalid references and overflow */
	core.name = "";
	assert_int_equal(zw_kube_path(&core, NULL, buf, sizeof(buf)), -1);
	core.name = NULL;
	core.subresource = "status";
	assert_int_equal(zw_kube_path(&core, NULL, buf, sizeof(buf)), -1);
	core.subresource = NULL;
	core.version = NULL;
	assert_int_equal(zw_kube_path(&core, NULL, buf, sizeof(buf)), -1);
	core.version = "v1";
	assert_int_equal(zw_kube_path(&core, NULL, buf, 20), -1);
	assert_int_equal(zw_kube_discovery_path("", "v1", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/api/v1");
	assert_int_equal(zw_kube_discovery_path("discovery.k8s.io", "v1beta1", buf, sizeof(buf)),
	                 0);
	assert_string_equal(buf, "/apis/discovery.k8s.io/v1beta1");
	assert_string_equal(zw_kube_patch_content_type(ZW_KUBE_PATCH_STRATEGIC),
	                    "application/strategic-merge-patch+json");
}

static void test_error_from_response(void **state)
{
	struct zw_kube_error e;
	const char *st = "{\"kind\":\"Status\",\"status\":\"Failure\",\"message\":\"configmaps "
	                 "\\\"x\\\" already exists\",\"reason\":\"AlreadyExists\",\"code\":409}";

	(void)state;
	zw_kube_error_from_response(&e, 409, st, strlen(st));
	assert_int_equal(e.http_status, 409);
	assert_string_equal(e.reason, "AlreadyExists");
	assert_string_equal(e.message, "configmaps \"x\" already exists");
	zw_kube_error_from_response(&e, 503, "upstream down", 13);
	assert_string_equal(e.reason, "ServiceUnavailable");
	assert_string_equal(e.message, "HTTP 503: upstream down");
}

/* ---- state machine ---- */

struct sm {
	struct zw_watch *w;
	struct zw_watch_step step;
	char events[8192];
	char status[2048];
};

static void sm_event(void *ud, enum zw_watch_type type, json_t *obj)
{
	struct sm *s = ud;
	size_t len = strlen(s->events);
	json_t *md = json_object_get(obj, "metadata");

	if (type == ZW_WATCH_SYNCED) {
		assert_null(obj);
		snprintf(s->events + len, sizeof(s->events) - len, "SYNCED;");
		return;
	}
	/* every delivered object carries apiVersion and kind */
	assert_non_null(json_object_get(obj, "kind"));
	assert_non_null(json_object_get(obj, "apiVersion"));
	snprintf(s->events + len, sizeof(s->events) - len, "%s %s %s;", zw_watch_type_name(type),
	         json_string_value(json_object_get(md, "name")),
	         json_string_value(json_object_get(md, "resourceVersion")));
}

static void sm_status(void *ud, const struct zw_watch_status *st)
{
	struct sm *s = ud;
	size_t len = strlen(s->status);
	static const char *const names[] = {"WAITING", "SYNCED", "RELIST", "RETRY"};

	snprintf(s->status + len, sizeof(s->status) - len, "%s;", names[st->kind]);
}

static void sm_init(struct sm *s, const char *group, const char *version, const char *resource)
{
	struct zw_watch_spec spec = {0};

	memset(s, 0, sizeof(*s));
	spec.group = group;
	spec.version = version;
	spec.resource = resource;
	spec.namespace = "ns";
	spec.page_limit = 2;
	spec.timeout_seconds = 60;
	spec.on_event = sm_event;
	spec.on_status = sm_status;
	spec.ud = s;
	assert_int_equal(zw_watch_new(&spec, &s->w), 0);
}

static void sm_next(struct sm *s, const char *expect_path, unsigned expect_delay)
{
	assert_int_equal(zw_watch_next(s->w, &s->step), 0);
	assert_string_equal(s->step.path, expect_path);
	assert_int_equal(s->step.delay_ms, expect_delay);
}

/* Answers the current step with a 200 body, fed in 7-byte chunks. */
static void sm_ok(struct sm *s, const char *body)
{
	size_t n = strlen(body);

	for (size_t off = 0; off < n; off += 7)
		assert_int_equal(zw_watch_data(s->w, body + off, n - off < 7 ? n - off : 7), 0);
	zw_watch_done(s->w, 200, 0, NULL);
}

static void sm_fail(struct sm *s, long status)
{
	struct zw_kube_error e = {(int)status, "X", "failed"};

	zw_watch_done(s->w, status, status == 0, &e);
}

static void expect_events(struct sm *s, const char *ev)
{
	assert_string_equal(s->events, ev);
	s->events[0] = '\0';
}

/* list items come without apiVersion/kind (the machine adds them); watch objects have them */
#define OBJ(name, rv)                                                                              \
	"{\"metadata\":{\"name\":\"" name "\",\"namespace\":\"ns\",\"resourceVersion\":\"" rv "\"" \
	"}}"
#define WOBJ(name, rv)                                                                         \
	"{\"apiVersion\":\"example.io/v1\",\"kind\":\"Widget\",\"metadata\":{\"name\":\"" name \
	"\",\"namespace\":\"ns\",\"resourceVersion\":\"" rv "\"}}"
#define EV(type, name, rv) "{\"type\":\"" type "\",\"object\":" WOBJ(name, rv) "}\n"
#define WATCH_PATH(rv)                                                                \
	"/apis/example.io/v1/namespaces/ns/widgets?watch=1&allowWatchBookmarks=true&" \
	"resourceVersion=" rv "&timeoutSeconds=60"
#define LIST_PATH "/apis/example.io/v1/namespaces/ns/widgets?limit=2"
#define DISC                                                                                       \
	"{\"kind\":\"APIResourceList\",\"resources\":[{\"name\":\"widgets\"},{\"name\":\"widgets/" \
	"status\"}]}"

static void test_machine_lifecycle(void **state)
{
	struct sm s;

	(void)state;
	sm_init(&s, "example.io", "v1", "widgets");

	/* not served: wait quietly, telling it once */
	sm_next(&s, "/apis/example.io/v1", 0);
	sm_fail(&s, 404);
	sm_next(&s, "/apis/example.io/v1", ZW_WATCH_DISCOVERY_MS);
	sm_ok(&s, "{\"kind\":\"APIResourceList\",\"resources\":[{\"name\":\"gadgets\"}]}");
	sm_next(&s, "/apis/example.io/v1", ZW_WATCH_DISCOVERY_MS);
	assert_string_equal(s.status, "WAITING;");
	assert_string_equal(s.events, "");

	/* served: paginated list (2 per page) */
	sm_ok(&s, DISC);
	sm_next(&s, LIST_PATH, 0);
	sm_ok(&s, "{\"apiVersion\":\"example.io/v1\",\"kind\":\"WidgetList\",\"metadata\":"
	          "{\"resourceVersion\":\"100\",\"continue\":\"c1\"},\"items\":[" OBJ(
	                  "a", "10") "," OBJ("b", "11") "]}");
	assert_string_equal(s.events, "");
	sm_next(&s, "/apis/example.io/v1/namespaces/ns/widgets?continue=c1&limit=2", 0);
	sm_ok(&s, "{\"apiVersion\":\"example.io/v1\",\"kind\":\"WidgetList\",\"metadata\":"
	          "{\"resourceVersion\":\"100\"},\"items\":[" OBJ("c", "12") "]}");
	expect_events(&s, "ADDED a 10;ADDED b 11;ADDED c 12;SYNCED;");
	assert_string_equal(zw_watch_resource_version(s.w), "100");
	assert_int_equal(json_object_size(zw_watch_known(s.w)), 3);

	/* watch: events, a bookmark, a duplicate, a delete of an unknown object */
	sm_next(&s, WATCH_PATH("100"), 0);
	assert_int_equal(s.step.streaming, 1);
	sm_ok(&s,
	      EV("MODIFIED", "a", "101") EV("ADDED", "d", "102") EV(
	              "ADDED", "d",
	              "102") "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Widget\","
	                     "\"apiVersion\":"
	                     "\"example.io/v1\",\"metadata\":{\"resourceVersion\":\"150\"}}}\n" EV(
	                             "DELETED", "zz", "151") EV("DELETED", "b", "152"));
	expect_events(&s, "MODIFIED a 101;ADDED d 102;DELETED b 152;");
	/* a watch that ended normally resumes at once from the last RV */
	sm_next(&s, WATCH_PATH("152"), 0);

	/* an ERROR 410 event: abort, relist, deliver the difference */
	assert_int_equal(
	        zw_watch_data(s.w, EV("MODIFIED", "c", "160"), strlen(EV("MODIFIED", "c", "160"))),
	        0);
	const char *gone = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,"
	                   "\"reason\":\"Expired\",\"message\":\"too old resource version\"}}\n";
	assert_int_equal(zw_watch_data(s.w, gone, strlen(gone)), -1);
	zw_watch_done(s.w, 0, 1, NULL);
	expect_events(&s, "MODIFIED c 160;");
	assert_string_equal(s.status, "WAITING;SYNCED;RELIST;");
	sm_next(&s, LIST_PATH, 0);
	/* known: a@101 c@160 d@102; new: a@101 (same), c@170 (changed), e (new); d gone */
	sm_ok(&s, "{\"apiVersion\":\"example.io/v1\",\"kind\":\"WidgetList\",\"metadata\":"
	          "{\"resourceVersion\":\"200\"},\"items\":[" OBJ("a", "101") "," OBJ(
	                  "c", "170") "," OBJ("e", "180") "]}");
	expect_events(&s, "MODIFIED c 170;ADDED e 180;DELETED d 102;SYNCED;");
	sm_next(&s, WATCH_PATH("200"), 0);

	/* HTTP 410 on the watch request itself also relists */
	sm_fail(&s, 410);
	sm_next(&s, LIST_PATH, 0);
	sm_ok(&s, "{\"apiVersion\":\"example.io/v1\",\"kind\":\"WidgetList\",\"metadata\":"
	          "{\"resourceVersion\":\"210\"},\"items\":[" OBJ("a", "101") "," OBJ(
	                  "c", "170") "," OBJ("e", "180") "]}");
	expect_events(&s, "SYNCED;");
	sm_next(&s, WATCH_PATH("210"), 0);

	/* the resource disappears (CRD deleted): everything is deleted, then waiting */
	sm_fail(&s, 404);
	assert_int_equal(zw_watch_next(s.w, &s.step), 0);
	assert_string_equal(s.step.path, "/apis/example.io/v1");
	assert_true(s.step.delay_ms >= ZW_WATCH_BACKOFF_MIN_MS / 2 &&
	            s.step.delay_ms <= ZW_WATCH_BACKOFF_MIN_MS);
	sm_fail(&s, 404);
	expect_events(&s, "DELETED a 101;DELETED c 170;DELETED e 180;SYNCED;");
	sm_next(&s, "/apis/example.io/v1", ZW_WATCH_DISCOVERY_MS);
	zw_watch_free(s.w);
}

static void test_machine_backoff(void **state)
{
	struct sm s;
	unsigned prev_cap = ZW_WATCH_BACKOFF_MIN_MS;

	(void)state;
	sm_init(&s, NULL, "v1", "configmaps");
	assert_int_equal(zw_watch_next(s.w, &s.step), 0);
	assert_string_equal(s.step.path, "/api/v1");
	sm_ok(&s, "{\"resources\":[{\"name\":\"configmaps\"}]}");
	sm_next(&s, "/api/v1/namespaces/ns/configmaps?limit=2", 0);
	/* failures back off: delay in [cap/2, cap], cap doubling to the maximum */
	for (int i = 0; i < 12; i++) {
		sm_fail(&s, i % 2 ? 0 : 503);
		assert_int_equal(zw_watch_next(s.w, &s.step), 0);
		assert_string_equal(s.step.path, "/api/v1/namespaces/ns/configmaps?limit=2");
		assert_true(s.step.delay_ms >= prev_cap / 2);
		assert_true(s.step.delay_ms <= prev_cap);
		prev_cap = prev_cap * 2 > ZW_WATCH_BACKOFF_MAX_MS ? ZW_WATCH_BACKOFF_MAX_MS
		                                                  : prev_cap * 2;
	}
	assert_true(s.step.delay_ms >= ZW_WATCH_BACKOFF_MAX_MS / 2);
	/* a failure halfway through a paginated list restarts it from page one */
	sm_ok(&s, "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMapList\",\"metadata\":"
	          "{\"resourceVersion\":\"5\",\"continue\":\"k\"},\"items\":[" OBJ("a", "1") "]}");
	sm_next(&s, "/api/v1/namespaces/ns/configmaps?continue=k&limit=2", 0);
	sm_fail(&s, 410);
	assert_int_equal(zw_watch_next(s.w, &s.step), 0);
	assert_string_equal(s.step.path, "/api/v1/namespaces/ns/configmaps?limit=2");
	assert_true(s.step.delay_ms <= ZW_WATCH_BACKOFF_MIN_MS);
	sm_ok(&s, "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMapList\",\"metadata\":"
	          "{\"resourceVersion\":\"6\"},\"items\":[" OBJ("a", "1") "]}");
	expect_events(&s, "ADDED a 1;SYNCED;");
	/* a broken stream (garbage line) aborts and retries from the last RV */
	sm_next(&s,
	        "/api/v1/namespaces/ns/configmaps?watch=1&allowWatchBookmarks=true&"
	        "resourceVersion=6&timeoutSeconds=60",
	        0);
	assert_int_equal(zw_watch_data(s.w, "<html>\n", 7), -1);
	zw_watch_done(s.w, 0, 1, NULL);
	assert_int_equal(zw_watch_next(s.w, &s.step), 0);
	assert_non_null(strstr(s.step.path, "resourceVersion=6&"));
	assert_true(s.step.delay_ms >= ZW_WATCH_BACKOFF_MIN_MS / 2);
	assert_non_null(strstr(s.status, "RETRY;"));
	zw_watch_free(s.w);
}

/* A list reply without an "items" array is retried, never read as an empty
 * list (which would delete every known object). */
static void test_list_without_items(void **state)
{
	static const char *const bad[] = {
	        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{}}",
	        "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMapList\",\"metadata\":"
	        "{\"resourceVersion\":\"7\"},\"items\":null}",
	        "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMapList\",\"metadata\":"
	        "{\"resourceVersion\":\"7\"},\"items\":{}}",
	        "{\"kind\":\"APIResourceList\",\"resources\":[]}",
	};
	const char *list_path = "/api/v1/namespaces/ns/configmaps?limit=2";
	struct sm s;

	(void)state;
	sm_init(&s, NULL, "v1", "configmaps");
	sm_next(&s, "/api/v1", 0);
	sm_ok(&s, "{\"resources\":[{\"name\":\"configmaps\"}]}");
	/* the first list: no SYNCED for a reply that is not a list */
	sm_next(&s, list_path, 0);
	sm_ok(&s, bad[0]);
	assert_string_equal(s.events, "");
	assert_string_equal(s.status, "RETRY;");
	assert_int_equal(zw_watch_next(s.w, &s.step), 0);
	assert_string_equal(s.step.path, list_path);
	assert_true(s.step.delay_ms >= ZW_WATCH_BACKOFF_MIN_MS / 2);
	sm_ok(&s, "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMapList\",\"metadata\":"
	          "{\"resourceVersion\":\"6\"},\"items\":[" OBJ("a", "1") "," OBJ("b", "2") "]}");
	expect_events(&s, "ADDED a 1;ADDED b 2;SYNCED;");
	/* a relist answered by each bad reply: known objects stay, retried after a backoff */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		s.status[0] = '\0';
		assert_int_equal(zw_watch_next(s.w, &s.step), 0);
		assert_non_null(strstr(s.step.path, "watch=1"));
		sm_fail(&s, 410);
		sm_next(&s, list_path, 0);
		sm_ok(&s, bad[i]);
		assert_string_equal(s.events, "");
		assert_string_equal(s.status, "RELIST;RETRY;");
		assert_int_equal(json_object_size(zw_watch_known(s.w)), 2);
		assert_int_equal(zw_watch_next(s.w, &s.step), 0);
		assert_string_equal(s.step.path, list_path);
		assert_true(s.step.delay_ms >= ZW_WATCH_BACKOFF_MIN_MS / 2);
		/* a second page without items restarts the list from page one */
		sm_ok(&s, "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMapList\",\"metadata\":"
		          "{\"resourceVersion\":\"8\",\"continue\":\"k\"},\"items\":[" OBJ(
		                  "a", "1") "]}");
		sm_next(&s, "/api/v1/namespaces/ns/configmaps?continue=k&limit=2", 0);
		sm_ok(&s, bad[i]);
		assert_string_equal(s.events, "");
		assert_int_equal(zw_watch_next(s.w, &s.step), 0);
		assert_string_equal(s.step.path, list_path);
		assert_true(s.step.delay_ms >= ZW_WATCH_BACKOFF_MIN_MS / 2);
		sm_ok(&s, "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMapList\",\"metadata\":"
		          "{\"resourceVersion\":\"9\"},\"items\":[" OBJ("a", "1") "," OBJ(
		                  "b", "2") "]}");
		expect_events(&s, "SYNCED;");
	}
	zw_watch_free(s.w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_split_everywhere),
	        cmocka_unit_test(test_several_bookmark_error),
	        cmocka_unit_test(test_oversize_and_garbage),
	        cmocka_unit_test(test_paths),
	        cmocka_unit_test(test_error_from_response),
	        cmocka_unit_test(test_machine_lifecycle),
	        cmocka_unit_test(test_machine_backoff),
	        cmocka_unit_test(test_list_without_items),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
