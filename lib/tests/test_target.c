/* Unit tests for lib/target*.c (cmocka, run under ASan/UBSan by `make unit`).
 *
 * - trafficAutowire words;
 * - data-driven cases: every lib/tests/targets/X.yaml is parsed document by
 *   document with zw_target_parse_object; X.expect.yaml lists, per target
 *   source object, either the exact error message or the parsed targets
 *   (compared as a JSON dump, every key given must match); objects without
 *   an expectation must not be target sources at all;
 * - the same over every ../shared/fixtures/examples/<file>.yaml with
 *   targets/fixtures.expect.yaml (skipped when ../shared is absent);
 * - the seed reconstructions (seed-*.yaml) are checked against the seed
 *   text: every key and value must occur in it;
 * - the hand-written objects against the upstream CRD schemas (below);
 * - defaults, copy, key, linking, limits, and a type-mutation sweep that
 *   replaces every value of every valid object by values of other JSON
 *   types (must give OK or EINVAL with a message, never a crash). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "target.h"
#include "yamljson.h"

#define PATHBUF 1024
#define FIELD   512 /* a schema field path */

/* ---- files ---- */

static const char *data_dir(void)
{
	static char buf[PATHBUF];
	const char *env = getenv("ZW_TARGET_DATA");
	const char *slash = strrchr(__FILE__, '/');

	if (env && *env)
		return env;
	/* __FILE__ is lib/tests/test_target.c relative to the repo root, where
	 * make runs the tests */
	snprintf(buf, sizeof(buf), "%.*stargets", slash ? (int)(slash - __FILE__ + 1) : 0,
	         __FILE__);
	return buf;
}

/* Returns ZW_SHARED (or ../shared) when it is a directory, else NULL. */
static const char *shared_dir(void)
{
	const char *env = getenv("ZW_SHARED");
	const char *dir = env && *env ? env : "../shared";
	struct stat st;

	return stat(dir, &st) == 0 && S_ISDIR(st.st_mode) ? dir : NULL;
}

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long len;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)len + 1))) {
		if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
			free(buf);
			buf = NULL;
		} else {
			buf[len] = '\0';
		}
	}
	fclose(f);
	return buf;
}

static json_t *load_yaml(const char *path)
{
	char err[256];
	json_t *docs = NULL;

	if (zw_yaml_load_file(path, &docs, err, sizeof(err)) < 0)
		fail_msg("%s: %s", path, err);
	return docs;
}

/* snprintf that fails the test instead of truncating. */
static void fmt(char *buf, size_t len, const char *f, ...) __attribute__((format(printf, 3, 4)));

static void fmt(char *buf, size_t len, const char *f, ...)
{
	va_list ap;
	int n;

	va_start(ap, f);
	n = vsnprintf(buf, len, f, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len)
		fail_msg("text too long: %s", buf);
}

/* buf = a "/" b; a path that does not fit fails the test. */
static void path_join(char buf[PATHBUF], const char *a, const char *b)
{
	fmt(buf, PATHBUF, "%s/%s", a, b);
}

/* An expectation file: one YAML document holding a list. */
static json_t *load_expect(const char *path)
{
	json_t *docs = load_yaml(path), *list;

	assert_non_null(docs);
	list = json_array_size(docs) ? json_array_get(docs, 0) : NULL;
	if (list && !json_is_array(list))
		fail_msg("%s: must hold one list", path);
	list = list ? json_incref(list) : json_array();
	json_decref(docs);
	return list;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of *.yaml files in dir, without *.expect.yaml. */
static size_t list_yaml(const char *dir, char ***out)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **v = NULL;
	size_t n = 0;

	assert_non_null(d);
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (len < 6 || strcmp(e->d_name + len - 5, ".yaml") != 0)
			continue;
		if (len > 12 && strcmp(e->d_name + len - 12, ".expect.yaml") == 0)
			continue;
		v = realloc(v, (n + 1) * sizeof(*v));
		assert_non_null(v);
		v[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(v, n, sizeof(*v), cmp_str);
	*out = v;
	return n;
}

static void free_names(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* ---- dumping a target as JSON ---- */

static json_t *jstr(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *dump_strv(char *const *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static json_t *dump_ms(uint64_t ms)
{
	return ms == ZW_TIMEOUT_NONE ? json_string("none") : json_integer((json_int_t)ms);
}

static json_t *dump_ref(const struct zw_service_ref *r)
{
	return json_pack("{s:o, s:o, s:i, s:o}", "namespace", jstr(r->namespace), "name",
	                 jstr(r->name), "port", r->port, "portName", jstr(r->port_name));
}

static json_t *dump_rules(const struct zw_route_rule *rules, size_t n)
{
	static const char *const kinds[] = {"exact", "present", "wildcard", "regex"};
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++) {
		const struct zw_route_rule *r = &rules[i];
		json_t *h = json_array();

		for (size_t k = 0; k < r->n_headers; k++)
			json_array_append_new(h, json_pack("{s:s, s:o, s:s}", "name",
			                                   r->headers[k].name, "value",
			                                   jstr(r->headers[k].value), "match",
			                                   kinds[r->headers[k].kind]));
		json_array_append_new(a, json_pack("{s:o, s:o, s:o}", "hosts",
		                                   dump_strv(r->hosts, r->n_hosts), "paths",
		                                   dump_strv(r->paths, r->n_paths), "headers", h));
	}
	return a;
}

static json_t *dump_sr(const struct zw_static_response *sr)
{
	json_t *h = json_object();

	for (size_t k = 0; k < sr->n_headers; k++)
		json_object_set_new(h, sr->header_names[k], json_string(sr->header_values[k]));
	return json_pack("{s:i, s:o, s:o, s:o, s:o}", "status", sr->status, "body", jstr(sr->body),
	                 "headers", h, "bodyConfigMap", jstr(sr->body_configmap),
	                 "bodyConfigMapKey", jstr(sr->body_configmap_key));
}

static json_t *dump_target(const struct zw_target *t)
{
	static const char *const sources[] = {"scaledobject", "kedify", "interceptorroute",
	                                      "httpscaledobject"};
	static const char *const aw[] = {"ingress", "httproute", "grpcroute", "virtualservice",
	                                 "gloo"};
	static const char *const hc[] = {"none", "passthrough", "static", "pathEmbeddedHost"};
	json_t *o = json_object(), *a;
	char key[256];

	json_object_set_new(o, "source", json_string(sources[t->source]));
	zw_target_key(t, key, sizeof(key));
	json_object_set_new(o, "key", json_string(key));
	json_object_set_new(o, "namespace", jstr(t->namespace));
	json_object_set_new(o, "name", jstr(t->name));
	json_object_set_new(o, "triggerIndex", json_integer(t->trigger_index));
	json_object_set_new(o, "uid", jstr(t->uid));
	json_object_set_new(o, "creationTimestamp", jstr(t->creation_timestamp));
	json_object_set_new(o, "scaledObject", jstr(t->scaled_object));
	json_object_set_new(o, "scaleKind", jstr(t->scale_kind));
	json_object_set_new(o, "scaleApiVersion", jstr(t->scale_api_version));
	json_object_set_new(o, "scaleName", jstr(t->scale_name));
	json_object_set_new(o, "minReplicas", json_integer(t->min_replicas));
	json_object_set_new(o, "maxReplicas", json_integer(t->max_replicas));
	json_object_set_new(o, "service", dump_ref(&t->service));
	json_object_set_new(o, "rules", dump_rules(t->rules, t->n_rules));
	a = json_array();
	if (t->metrics & ZW_METRIC_REQUEST_RATE)
		json_array_append_new(a, json_string("requestRate"));
	if (t->metrics & ZW_METRIC_CONCURRENCY)
		json_array_append_new(a, json_string("concurrency"));
	json_object_set_new(o, "metrics", a);
	json_object_set_new(o, "rateTarget", json_real(t->rate_target));
	json_object_set_new(o, "concurrencyTarget", json_real(t->concurrency_target));
	json_object_set_new(o, "windowMs", json_integer((json_int_t)t->window_ms));
	json_object_set_new(o, "granularityMs", json_integer((json_int_t)t->granularity_ms));
	a = json_array();
	for (size_t i = 0; i < 5; i++)
		if (t->autowire & (1u << i))
			json_array_append_new(a, json_string(aw[i]));
	json_object_set_new(o, "autowire", a);
	a = json_array();
	if (t->autowire_ignored & ZW_AW_IGNORED_ROUTE)
		json_array_append_new(a, json_string("route"));
	if (t->autowire_ignored & ZW_AW_IGNORED_SERVICE)
		json_array_append_new(a, json_string("service"));
	json_object_set_new(o, "autowireIgnored", a);
	json_object_set_new(o, "readinessTimeoutMs", dump_ms(t->readiness_timeout_ms));
	json_object_set_new(o, "responseHeaderTimeoutMs", dump_ms(t->response_header_timeout_ms));
	json_object_set_new(o, "requestTimeoutMs", dump_ms(t->request_timeout_ms));
	json_object_set_new(o, "maxPending", json_integer(t->max_pending));
	json_object_set_new(o, "overflowPlaceholder", json_boolean(t->overflow_placeholder));
	json_object_set_new(o, "fallback", t->has_fallback ? dump_ref(&t->fallback) : json_null());
	json_object_set_new(o, "placeholder",
	                    t->has_placeholder ? dump_sr(&t->placeholder) : json_null());
	json_object_set_new(o, "healthcheckPath", jstr(t->healthcheck_path));
	json_object_set_new(o, "healthcheckResponse", json_string(hc[t->healthcheck_response]));
	json_object_set_new(o, "healthcheckPathPrefix", jstr(t->healthcheck_path_prefix));
	json_object_set_new(o, "skipScaledObject", json_boolean(t->skip_scaledobject));
	json_object_set_new(o, "cooldownPeriod", json_integer(t->cooldown_period));
	json_object_set_new(o, "initialCooldownPeriod", json_integer(t->initial_cooldown_period));
	a = json_array();
	for (size_t i = 0; i < t->n_static_routes; i++)
		json_array_append_new(a,
		                      json_pack("{s:o, s:o, s:b}", "rules",
		                                dump_rules(t->static_routes[i].rules,
		                                           t->static_routes[i].n_rules),
		                                "response", dump_sr(&t->static_routes[i].response),
		                                "always", t->static_routes[i].always));
	json_object_set_new(o, "staticRoutes", a);
	return o;
}

/* Deep equality where integers and reals compare by value. */
static bool jeq(const json_t *a, const json_t *b)
{
	const char *k;
	json_t *v;
	size_t i;

	if (json_is_number(a) && json_is_number(b))
		return json_number_value(a) == json_number_value(b);
	if (json_typeof(a) != json_typeof(b))
		return false;
	switch (json_typeof(a)) {
	case JSON_OBJECT:
		if (json_object_size(a) != json_object_size(b))
			return false;
		json_object_foreach((json_t *)a, k, v)
		{
			json_t *w = json_object_get(b, k);
			if (!w || !jeq(v, w))
				return false;
		}
		return true;
	case JSON_ARRAY:
		if (json_array_size(a) != json_array_size(b))
			return false;
		json_array_foreach(a, i, v)
		{
			if (!jeq(v, json_array_get(b, i)))
				return false;
		}
		return true;
	case JSON_STRING:
		return strcmp(json_string_value(a), json_string_value(b)) == 0;
	default:
		return true;
	}
}

/* ---- data-driven runner ---- */

struct run {
	int failures;
	int targets;      /* targets parsed and compared */
	int errors;       /* expected errors matched */
	int sources_seen; /* target source objects met */
};

static void report(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void report(struct run *r, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	print_error("%s\n", buf);
	r->failures++;
}

static const char *sget(const json_t *o, const char *path)
{
	char buf[128];
	const json_t *v = o;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *tok = buf, *dot; tok && v; tok = dot ? dot + 1 : NULL) {
		dot = strchr(tok, '.');
		if (dot)
			*dot = '\0';
		v = json_is_object(v) ? json_object_get(v, tok) : NULL;
	}
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static void label(char *buf, size_t len, const char *file, const json_t *doc, size_t i)
{
	const char *kind = sget(doc, "kind"), *name = sget(doc, "metadata.name");

	snprintf(buf, len, "%s doc %zu (%s %s)", file, i, kind ? kind : "?", name ? name : "?");
}

/* The expectation for doc i of file: by `doc` index, else kind + name. */
static json_t *find_expect(json_t *expects, const char *file, const json_t *doc, size_t i)
{
	const char *kind = sget(doc, "kind"), *name = sget(doc, "metadata.name");
	json_t *e;
	size_t k;

	json_array_foreach(expects, k, e)
	{
		const char *ef = sget(e, "file");
		json_t *ed = json_object_get(e, "doc");

		if (ef && strcmp(ef, file) != 0)
			continue;
		if (ed) {
			if (json_integer_value(ed) == (json_int_t)i)
				return e;
			continue;
		}
		if (kind && name && sget(e, "kind") && sget(e, "name") &&
		    strcmp(sget(e, "kind"), kind) == 0 && strcmp(sget(e, "name"), name) == 0)
			return e;
	}
	return NULL;
}

static bool is_scaledobject(const json_t *doc)
{
	const char *kind = sget(doc, "kind"), *api = sget(doc, "apiVersion");

	return kind && api && strcmp(kind, "ScaledObject") == 0 &&
	       strcmp(api, "keda.sh/v1alpha1") == 0;
}

/* Compares a dump with an expected subset: every key of exp must be in dump
 * with an equal value. */
static void compare_target(struct run *r, const char *lbl, size_t ti, json_t *dump, json_t *exp)
{
	const char *k;
	json_t *v;

	if (!json_is_object(exp)) {
		report(r, "%s target %zu: expectation is not a map", lbl, ti);
		return;
	}
	json_object_foreach(exp, k, v)
	{
		json_t *got = json_object_get(dump, k);
		if (!got || !jeq(got, v)) {
			char *g = got ? json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
			char *w = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
			report(r, "%s target %zu: %s = %s, expected %s", lbl, ti, k,
			       g ? g : "(missing)", w);
			free(g);
			free(w);
		}
	}
}

static void check_targets(struct run *r, const char *lbl, json_t *docs, struct zw_target *ts,
                          size_t n, json_t *want)
{
	json_t *so;
	size_t i, k;

	if (!json_is_array(want)) {
		report(r, "%s: expectation has neither error nor a targets list", lbl);
		return;
	}
	/* InterceptorRoute / HTTPScaledObject targets pick up the ScaledObject
	 * naming them in the same file */
	for (i = 0; i < n; i++)
		json_array_foreach(docs, k, so)
		{
			if (is_scaledobject(so) && zw_target_link_scaledobject(&ts[i], so) < 0)
				report(r, "%s: link failed", lbl);
		}
	if (json_array_size(want) != n)
		report(r, "%s: %zu targets, expected %zu", lbl, n, json_array_size(want));
	for (i = 0; i < n; i++) {
		json_t *dump = dump_target(&ts[i]), *dump2;
		struct zw_target copy;

		if (i < json_array_size(want))
			compare_target(r, lbl, i, dump, json_array_get(want, i));
		/* a deep copy dumps the same */
		if (zw_target_copy(&copy, &ts[i]) != 0) {
			report(r, "%s target %zu: copy failed", lbl, i);
		} else {
			dump2 = dump_target(&copy);
			if (!jeq(dump, dump2))
				report(r, "%s target %zu: copy differs", lbl, i);
			json_decref(dump2);
			zw_target_free(&copy);
		}
		json_decref(dump);
		r->targets++;
	}
}

static void check_doc(struct run *r, const char *file, json_t *docs, size_t i, json_t *expects)
{
	char err[ZW_TARGET_ERRLEN], lbl[512];
	json_t *doc = json_array_get(docs, i), *e;
	struct zw_target *ts = NULL;
	const char *want_err, *want_prefix;
	size_t n = 0;
	int rc;

	label(lbl, sizeof(lbl), file, doc, i);
	memset(err, 0x5a, sizeof(err));
	rc = zw_target_parse_object(doc, &ts, &n, err);
	e = find_expect(expects, file, doc, i);
	if (rc == ZW_TARGET_ENOTARGET) {
		if (e)
			report(r, "%s: not a target source, but an expectation exists", lbl);
		if (ts || n)
			report(r, "%s: ENOTARGET with output", lbl);
		return;
	}
	r->sources_seen++;
	if (!e) {
		report(r, "%s: no expectation (rc %d: %s)", lbl, rc, rc == 0 ? "ok" : err);
		zw_target_array_free(ts, n);
		return;
	}
	json_object_set_new(e, "_used", json_true());
	want_err = sget(e, "error");
	want_prefix = sget(e, "errorPrefix");
	if (want_err || want_prefix) {
		if (rc != ZW_TARGET_EINVAL)
			report(r, "%s: rc %d, expected EINVAL", lbl, rc);
		else if (want_err && strcmp(err, want_err) != 0)
			report(r, "%s:\n   error    %s\n   expected %s", lbl, err, want_err);
		else if (want_prefix && strncmp(err, want_prefix, strlen(want_prefix)) != 0)
			report(r, "%s:\n   error    %s\n   expected %s...", lbl, err, want_prefix);
		else
			r->errors++;
		if (ts || n)
			report(r, "%s: EINVAL with output", lbl);
		zw_target_array_free(ts, n);
		return;
	}
	if (rc != 0) {
		report(r, "%s: rc %d: %s", lbl, rc, err);
		return;
	}
	check_targets(r, lbl, docs, ts, n, json_object_get(e, "targets"));
	zw_target_array_free(ts, n);
}

static void check_unused(struct run *r, json_t *expects, const char *file)
{
	json_t *e;
	size_t k;

	json_array_foreach(expects, k, e)
	{
		const char *ef = sget(e, "file");
		if (file && ef && strcmp(ef, file) != 0)
			continue;
		if (!json_object_get(e, "_used"))
			report(r, "expectation %zu (%s %s %s) matched no object", k, ef ? ef : "",
			       sget(e, "kind") ? sget(e, "kind") : "",
			       sget(e, "name") ? sget(e, "name") : "");
	}
}

static void run_file(struct run *r, const char *path, const char *file, json_t *expects)
{
	json_t *docs = load_yaml(path);

	for (size_t i = 0; i < json_array_size(docs); i++)
		check_doc(r, file, docs, i, expects);
	json_decref(docs);
}

/* Every targets/X.yaml with its X.expect.yaml. */
static void test_data_files(void **state)
{
	struct run r = {0};
	char **names, path[PATHBUF], epath[PATHBUF];
	const char *dir = data_dir();
	size_t n = list_yaml(dir, &names);

	(void)state;
	assert_true(n >= 10);
	for (size_t i = 0; i < n; i++) {
		json_t *expects;
		struct stat st;

		path_join(path, dir, names[i]);
		/* X.yaml -> X.expect.yaml */
		if (snprintf(epath, sizeof(epath), "%.*s.expect.yaml", (int)(strlen(path) - 5),
		             path) >= (int)sizeof(epath))
			fail_msg("path too long: %s", path);
		expects = stat(epath, &st) == 0 ? load_expect(epath) : json_array();
		assert_non_null(expects);
		run_file(&r, path, names[i], expects);
		check_unused(&r, expects, NULL);
		json_decref(expects);
	}
	free_names(names, n);
	print_message("data files: %d targets, %d expected errors, %d sources\n", r.targets,
	              r.errors, r.sources_seen);
	assert_true(r.targets > 10);
	assert_true(r.errors > 40);
	assert_int_equal(r.failures, 0);
}

/* Every ../shared/fixtures/examples/<file>.yaml with targets/fixtures.expect.yaml. */
static void test_fixture_examples(void **state)
{
	struct run r = {0};
	const char *shared = shared_dir();
	char dir[PATHBUF], path[PATHBUF], **names;
	json_t *expects;
	size_t n;

	(void)state;
	if (!shared) {
		print_message(
		        "SKIP: ../shared absent (set ZW_SHARED); fixture examples not checked\n");
		skip();
	}
	path_join(dir, shared, "fixtures/examples");
	path_join(path, data_dir(), "fixtures.expect.yaml");
	expects = load_expect(path);
	assert_non_null(expects);
	n = list_yaml(dir, &names);
	assert_true(n > 0);
	for (size_t i = 0; i < n; i++) {
		path_join(path, dir, names[i]);
		run_file(&r, path, names[i], expects);
	}
	check_unused(&r, expects, NULL);
	json_decref(expects);
	free_names(names, n);
	print_message("fixtures: %zu files, %d sources, %d targets\n", n, r.sources_seen,
	              r.targets);
	assert_true(r.sources_seen >= 2);
	assert_int_equal(r.failures, 0);
}

/* Collects every key and scalar of v that does not occur in text. */
static void missing_words(const json_t *v, const char *text, struct run *r, const char *file)
{
	char num[64];
	const char *k;
	json_t *c;
	size_t i;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		json_object_foreach((json_t *)v, k, c)
		{
			if (!strstr(text, k))
				report(r, "%s: key %s does not occur in the seed", file, k);
			missing_words(c, text, r, file);
		}
		break;
	case JSON_ARRAY:
		json_array_foreach(v, i, c)
		{
			missing_words(c, text, r, file);
		}
		break;
	case JSON_STRING:
		if (!strstr(text, json_string_value(v)))
			report(r, "%s: value %s does not occur in the seed", file,
			       json_string_value(v));
		break;
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		if (!strstr(text, num))
			report(r, "%s: value %s does not occur in the seed", file, num);
		break;
	default:
		break;
	}
}

/* The seed reconstructions change nothing: every key and value is in the
 * seed text named by the file's first line. */
static void test_seed_reconstructions(void **state)
{
	struct run r = {0};
	const char *shared = shared_dir();
	char **names, path[PATHBUF], dir[PATHBUF], seed[256];
	size_t n, checked = 0;

	(void)state;
	if (!shared) {
		print_message("SKIP: ../shared absent (set ZW_SHARED); seeds not compared\n");
		skip();
	}
	n = list_yaml(data_dir(), &names);
	for (size_t i = 0; i < n; i++) {
		char *text, *seedtext;
		json_t *docs;

		if (strncmp(names[i], "seed-", 5) != 0)
			continue;
		path_join(path, data_dir(), names[i]);
		text = read_text(path);
		assert_non_null(text);
		if (sscanf(text, "# seed: %255s", seed) != 1)
			fail_msg("%s: first line must be '# seed: <file>'", names[i]);
		free(text);
		path_join(dir, shared, "seeds");
		path_join(path, dir, seed);
		seedtext = read_text(path);
		if (!seedtext)
			fail_msg("%s: seed %s not readable", names[i], path);
		path_join(path, data_dir(), names[i]);
		docs = load_yaml(path);
		missing_words(docs, seedtext, &r, names[i]);
		json_decref(docs);
		free(seedtext);
		checked++;
	}
	free_names(names, n);
	assert_true(checked >= 10);
	assert_int_equal(r.failures, 0);
}

/* ---- autowire ---- */

static void test_autowire(void **state)
{
	static const struct {
		const char *in;
		unsigned bits, ignored;
	} ok[] = {
	        {"", ZW_AW_ALL, 0},
	        {"  ", ZW_AW_ALL, 0},
	        {",,", ZW_AW_ALL, 0},
	        {"true", ZW_AW_ALL, 0},
	        {"false", 0, 0},
	        {" FALSE ", 0, 0},
	        {"ingress", ZW_AW_INGRESS, 0},
	        {"ingress,gloo", ZW_AW_INGRESS | ZW_AW_GLOO, 0},
	        {" VirtualService , grpcroute ", ZW_AW_VIRTUALSERVICE | ZW_AW_GRPCROUTE, 0},
	        {"httproute,ingress,virtualservice,route,service,gloo",
	         ZW_AW_HTTPROUTE | ZW_AW_INGRESS | ZW_AW_VIRTUALSERVICE | ZW_AW_GLOO,
	         ZW_AW_IGNORED_ROUTE | ZW_AW_IGNORED_SERVICE},
	        {"route", 0, ZW_AW_IGNORED_ROUTE},
	        {"service", 0, ZW_AW_IGNORED_SERVICE},
	};
	static const char *const bad[] = {"false,ingress", "ingress,false", "bogus",
	                                  "ingress;gloo",  "ingresses",     "false,false"};
	unsigned bits, ign;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		bits = 999;
		ign = 999;
		assert_int_equal(zw_autowire_parse_ext(ok[i].in, &bits, &ign), 0);
		assert_int_equal(bits, ok[i].bits);
		assert_int_equal(ign, ok[i].ignored);
		bits = 999;
		assert_int_equal(zw_autowire_parse(ok[i].in, &bits), 0);
		assert_int_equal(bits, ok[i].bits);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		bits = 999;
		ign = 999;
		assert_int_equal(zw_autowire_parse_ext(bad[i], &bits, &ign), -1);
		assert_int_equal(bits, 999);
		assert_int_equal(ign, 999);
		assert_int_equal(zw_autowire_parse(bad[i], &bits), -1);
	}
	assert_int_equal(zw_autowire_parse(NULL, &bits), -1);
}

/* ---- defaults ---- */

static json_t *yaml1(const char *text)
{
	char err[256];
	json_t *docs = NULL, *doc;

	if (zw_yaml_load(text, strlen(text), &docs, err, sizeof(err)) < 0)
		fail_msg("yaml: %s", err);
	assert_int_equal(json_array_size(docs), 1);
	doc = json_incref(json_array_get(docs, 0));
	json_decref(docs);
	return doc;
}

static void assert_common_defaults(const struct zw_target *t)
{
	assert_int_equal(t->min_replicas, 0);
	assert_int_equal(t->max_replicas, 100);
	assert_true(t->rate_target == 100.0);
	assert_true(t->concurrency_target == 100.0);
	assert_int_equal(t->window_ms, 60000);
	assert_int_equal(t->granularity_ms, 1000);
	assert_int_equal(t->autowire, ZW_AW_ALL);
	assert_int_equal(t->autowire_ignored, 0);
	assert_int_equal(t->readiness_timeout_ms, 0);
	assert_int_equal(t->response_header_timeout_ms, 0);
	assert_int_equal(t->request_timeout_ms, 0);
	assert_int_equal(t->max_pending, 0);
	assert_false(t->overflow_placeholder);
	assert_false(t->has_fallback);
	assert_false(t->has_placeholder);
	assert_null(t->healthcheck_path);
	assert_int_equal(t->healthcheck_response, ZW_HC_NONE);
	assert_false(t->skip_scaledobject);
	assert_int_equal(t->cooldown_period, -1);
	assert_int_equal(t->initial_cooldown_period, -1);
	assert_int_equal(t->n_static_routes, 0);
	assert_string_equal(t->service.namespace, "default");
}

static void test_defaults(void **state)
{
	char err[ZW_TARGET_ERRLEN];
	struct zw_target *ts, t;
	size_t n;
	json_t *o;

	(void)state;
	o = yaml1("apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: app}\n"
	          "spec:\n  scaleTargetRef: {name: app-deploy}\n  triggers:\n"
	          "  - type: kedify-http\n    metadata: {service: app, port: '80', "
	          "scalingMetric: concurrency}\n");
	assert_int_equal(zw_target_parse_scaledobject(o, &ts, &n, err), 0);
	assert_int_equal(n, 1);
	assert_common_defaults(&ts[0]);
	assert_int_equal(ts[0].source, ZW_SRC_KEDIFY);
	assert_string_equal(ts[0].namespace, "default");
	assert_int_equal(ts[0].trigger_index, 0);
	assert_string_equal(ts[0].scaled_object, "app");
	assert_string_equal(ts[0].scale_name, "app-deploy");
	assert_string_equal(ts[0].scale_kind, "Deployment");
	assert_string_equal(ts[0].scale_api_version, "apps/v1");
	assert_int_equal(ts[0].metrics, ZW_METRIC_CONCURRENCY);
	assert_int_equal(ts[0].service.port, 80);
	assert_null(ts[0].service.port_name);
	assert_int_equal(ts[0].n_rules, 1);
	assert_int_equal(ts[0].rules[0].n_hosts, 0);
	assert_int_equal(ts[0].rules[0].n_paths, 1);
	assert_string_equal(ts[0].rules[0].paths[0], "/");
	assert_int_equal(ts[0].rules[0].n_headers, 0);
	zw_target_array_free(ts, n);
	json_decref(o);

	/* external-push: scalingMetric defaults to requestRate */
	o = yaml1("apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: app}\n"
	          "spec:\n  scaleTargetRef: {name: app}\n  triggers:\n"
	          "  - type: external-push\n    metadata: {service: app, portName: http}\n");
	assert_int_equal(zw_target_parse_scaledobject(o, &ts, &n, err), 0);
	assert_int_equal(n, 1);
	assert_common_defaults(&ts[0]);
	assert_int_equal(ts[0].source, ZW_SRC_SCALEDOBJECT);
	assert_int_equal(ts[0].metrics, ZW_METRIC_REQUEST_RATE);
	assert_string_equal(ts[0].service.port_name, "http");
	zw_target_array_free(ts, n);
	json_decref(o);

	o = yaml1("apiVersion: http.keda.sh/v1alpha1\nkind: HTTPScaledObject\n"
	          "metadata: {name: h}\nspec:\n  scaleTargetRef: {name: h, service: h, port: "
	          "8080}\n");
	assert_int_equal(zw_target_parse_httpscaledobject(o, &t, err), 0);
	assert_common_defaults(&t);
	assert_int_equal(t.source, ZW_SRC_HTTPSCALEDOBJECT);
	assert_int_equal(t.trigger_index, -1);
	assert_int_equal(t.metrics, ZW_METRIC_CONCURRENCY);
	assert_string_equal(t.scaled_object, "h");
	assert_string_equal(t.scale_kind, "Deployment");
	assert_string_equal(t.scale_api_version, "apps/v1");
	assert_int_equal(t.rules[0].n_hosts, 0);
	assert_string_equal(t.rules[0].paths[0], "/");
	zw_target_free(&t);
	json_decref(o);

	o = yaml1("apiVersion: http.keda.sh/v1beta1\nkind: InterceptorRoute\n"
	          "metadata: {name: r}\nspec:\n  target: {service: r, port: 80}\n"
	          "  scalingMetric: {requestRate: {targetValue: 100}}\n  rules: [{}]\n");
	assert_int_equal(zw_target_parse_interceptorroute(o, &t, err), 0);
	assert_common_defaults(&t);
	assert_int_equal(t.source, ZW_SRC_INTERCEPTORROUTE);
	assert_int_equal(t.metrics, ZW_METRIC_REQUEST_RATE);
	assert_null(t.scaled_object);
	assert_null(t.scale_name);
	assert_int_equal(t.n_rules, 1);
	assert_int_equal(t.rules[0].n_hosts, 0);
	assert_string_equal(t.rules[0].paths[0], "/");
	zw_target_free(&t);
	json_decref(o);
}

/* ---- API edges ---- */

static void test_api_edges(void **state)
{
	char err[ZW_TARGET_ERRLEN];
	struct zw_target *ts = (void *)1, t;
	size_t n = 99;
	json_t *o;

	(void)state;
	o = json_array();
	assert_int_equal(zw_target_parse_object(o, &ts, &n, err), ZW_TARGET_ENOTARGET);
	assert_null(ts);
	assert_int_equal(n, 0);
	assert_int_equal(zw_target_parse_httpscaledobject(o, &t, err), ZW_TARGET_EINVAL);
	assert_string_equal(
	        err, "HTTPScaledObject default/?: the object must be a JSON object, not an array");
	assert_int_equal(zw_target_parse_interceptorroute(o, &t, err), ZW_TARGET_EINVAL);
	assert_string_equal(
	        err, "InterceptorRoute default/?: the object must be a JSON object, not an array");
	assert_int_equal(zw_target_parse_scaledobject(o, &ts, &n, err), ZW_TARGET_EINVAL);
	assert_string_equal(
	        err, "ScaledObject default/?: the object must be a JSON object, not an array");
	/* a NULL error buffer is allowed */
	assert_int_equal(zw_target_parse_scaledobject(o, &ts, &n, NULL), ZW_TARGET_EINVAL);
	json_decref(o);

	o = yaml1("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n");
	assert_int_equal(zw_target_parse_object(o, &ts, &n, err), ZW_TARGET_ENOTARGET);
	json_decref(o);
	/* dispatch is by group: a ScaledObject kind in another group is not ours */
	o = yaml1("apiVersion: example.com/v1\nkind: ScaledObject\nmetadata: {name: x}\n");
	assert_int_equal(zw_target_parse_object(o, &ts, &n, err), ZW_TARGET_ENOTARGET);
	json_decref(o);
	o = yaml1("apiVersion: keda.sh/v1alpha1\nkind: ScaledJob\nmetadata: {name: x}\n");
	assert_int_equal(zw_target_parse_object(o, &ts, &n, err), ZW_TARGET_ENOTARGET);
	json_decref(o);
	/* a ScaledObject without zerowire triggers: OK, no targets, no spec checks */
	o = yaml1("apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: x}\n"
	          "spec: {triggers: [{type: cpu, metadata: {value: '50'}}]}\n");
	assert_int_equal(zw_target_parse_object(o, &ts, &n, err), 0);
	assert_int_equal(n, 0);
	assert_null(ts);
	json_decref(o);

	assert_string_equal(zw_target_source_kind(ZW_SRC_SCALEDOBJECT), "ScaledObject");
	assert_string_equal(zw_target_source_kind(ZW_SRC_KEDIFY), "ScaledObject");
	assert_string_equal(zw_target_source_kind(ZW_SRC_INTERCEPTORROUTE), "InterceptorRoute");
	assert_string_equal(zw_target_source_kind(ZW_SRC_HTTPSCALEDOBJECT), "HTTPScaledObject");
	zw_target_free(NULL);
	zw_target_array_free(NULL, 0);
}

static void test_key_and_copy(void **state)
{
	char err[ZW_TARGET_ERRLEN], buf[64];
	struct zw_target *ts, copy;
	size_t n;
	json_t *o;

	(void)state;
	o = yaml1("apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\n"
	          "metadata: {name: shop, namespace: web}\nspec:\n  scaleTargetRef: {name: s}\n"
	          "  triggers:\n  - {type: cpu, metadata: {value: '1'}}\n"
	          "  - type: kedify-http\n    metadata: {service: s, port: '80', "
	          "scalingMetric: requestRate, hosts: 'A.example.com'}\n");
	assert_int_equal(zw_target_parse_scaledobject(o, &ts, &n, err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(zw_target_key(&ts[0], buf, sizeof(buf)), strlen("web/shop/1"));
	assert_string_equal(buf, "web/shop/1");
	assert_int_equal(zw_target_key(&ts[0], buf, 5), 4);
	assert_string_equal(buf, "web/");
	assert_int_equal(zw_target_key(&ts[0], buf, 0), 0);

	/* the copy owns its memory: it survives the original */
	assert_int_equal(zw_target_copy(&copy, &ts[0]), 0);
	zw_target_array_free(ts, n);
	json_decref(o);
	assert_string_equal(copy.rules[0].hosts[0], "a.example.com");
	assert_string_equal(copy.service.name, "s");
	assert_int_equal(copy.trigger_index, 1);
	copy.trigger_index = -1;
	assert_int_equal(zw_target_key(&copy, buf, sizeof(buf)), strlen("web/shop"));
	assert_string_equal(buf, "web/shop");
	zw_target_free(&copy);
}

static void test_link(void **state)
{
	char err[ZW_TARGET_ERRLEN];
	struct zw_target ir, kt, *ts;
	enum zw_target_source kind;
	const char *name;
	size_t n;
	json_t *o, *so_other_ns, *so_other_name, *so_match, *so_hso, *so_plain;

	(void)state;
	o = yaml1("apiVersion: http.keda.sh/v1beta1\nkind: InterceptorRoute\n"
	          "metadata: {name: r, namespace: apps}\nspec:\n  target: {service: r, port: 80}\n"
	          "  scalingMetric: {concurrency: {targetValue: 3}}\n");
	assert_int_equal(zw_target_parse_interceptorroute(o, &ir, err), 0);
	json_decref(o);
	so_other_ns = yaml1("apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\n"
	                    "metadata: {name: so, namespace: other}\nspec:\n"
	                    "  scaleTargetRef: {name: w}\n  triggers:\n  - type: external-push\n"
	                    "    metadata: {scalerAddress: 'x:9090', interceptorRoute: r}\n");
	so_other_name = yaml1("apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\n"
	                      "metadata: {name: so, namespace: apps}\nspec:\n"
	                      "  scaleTargetRef: {name: w}\n  triggers:\n  - type: external-push\n"
	                      "    metadata: {scalerAddress: 'x:9090', interceptorRoute: q}\n");
	so_match =
	        yaml1("apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\n"
	              "metadata: {name: so, namespace: apps}\nspec:\n"
	              "  scaleTargetRef: {name: w, kind: StatefulSet}\n  minReplicaCount: 2\n"
	              "  maxReplicaCount: 4\n  triggers:\n  - {type: cpu, metadata: {value: '1'}}\n"
	              "  - type: external-push\n"
	              "    metadata: {scalerAddress: 'x:9090', interceptorRoute: r}\n");
	so_hso = yaml1("apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\n"
	               "metadata: {name: so, namespace: apps}\nspec:\n"
	               "  scaleTargetRef: {name: w}\n  triggers:\n  - type: external-push\n"
	               "    metadata: {scalerAddress: 'x:9090', httpScaledObject: r}\n");
	so_plain = yaml1("apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\n"
	                 "metadata: {name: so, namespace: apps}\nspec:\n"
	                 "  scaleTargetRef: {name: w}\n  triggers:\n  - type: kedify-http\n"
	                 "    metadata: {service: k, port: '80', scalingMetric: concurrency}\n");

	assert_int_equal(zw_target_link_scaledobject(&ir, so_other_ns), 0);
	assert_int_equal(zw_target_link_scaledobject(&ir, so_other_name), 0);
	assert_int_equal(zw_target_link_scaledobject(&ir, so_hso), 0);
	assert_int_equal(zw_target_link_scaledobject(&ir, so_plain), 0);
	assert_null(ir.scaled_object);
	assert_int_equal(zw_target_link_scaledobject(&ir, so_match), 1);
	assert_string_equal(ir.scaled_object, "so");
	assert_string_equal(ir.scale_name, "w");
	assert_string_equal(ir.scale_kind, "StatefulSet");
	assert_string_equal(ir.scale_api_version, "apps/v1");
	assert_int_equal(ir.min_replicas, 2);
	assert_int_equal(ir.max_replicas, 4);
	/* linking again replaces, no leak */
	assert_int_equal(zw_target_link_scaledobject(&ir, so_match), 1);
	zw_target_free(&ir);

	assert_int_equal(zw_target_scaledobject_ref(so_match, &kind, &name), 1);
	assert_int_equal(kind, ZW_SRC_INTERCEPTORROUTE);
	assert_string_equal(name, "r");
	assert_int_equal(zw_target_scaledobject_ref(so_hso, &kind, &name), 1);
	assert_int_equal(kind, ZW_SRC_HTTPSCALEDOBJECT);
	assert_string_equal(name, "r");
	assert_int_equal(zw_target_scaledobject_ref(so_plain, &kind, &name), 0);

	/* a ScaledObject-sourced target never links */
	assert_int_equal(zw_target_parse_scaledobject(so_plain, &ts, &n, err), 0);
	assert_int_equal(n, 1);
	kt = ts[0];
	assert_int_equal(zw_target_link_scaledobject(&kt, so_match), 0);
	zw_target_array_free(ts, n);

	json_decref(so_other_ns);
	json_decref(so_other_name);
	json_decref(so_match);
	json_decref(so_hso);
	json_decref(so_plain);
}

/* ---- limits ---- */

static int parse_so_meta(json_t *meta, char err[ZW_TARGET_ERRLEN])
{
	struct zw_target *ts = NULL;
	size_t n = 0;
	int rc;
	json_t *o = json_pack("{s:s, s:s, s:{s:s}, s:{s:{s:s}, s:[{s:s, s:O}]}}", "apiVersion",
	                      "keda.sh/v1alpha1", "kind", "ScaledObject", "metadata", "name", "lim",
	                      "spec", "scaleTargetRef", "name", "lim", "triggers", "type",
	                      "kedify-http", "metadata", meta);

	assert_non_null(o);
	rc = zw_target_parse_scaledobject(o, &ts, &n, err);
	zw_target_array_free(ts, n);
	json_decref(o);
	return rc;
}

static void test_limits(void **state)
{
	char err[ZW_TARGET_ERRLEN];
	size_t big = 64 * 1024;
	char *s = malloc(big);
	json_t *meta;

	(void)state;
	assert_non_null(s);
	/* 1025 distinct hosts */
	s[0] = '\0';
	for (int i = 0; i <= ZW_TARGET_MAX_LIST; i++) {
		char h[32];
		snprintf(h, sizeof(h), "%sh%d.example.com", i ? "," : "", i);
		strcat(s, h);
	}
	meta = json_pack("{s:s, s:s, s:s, s:s}", "service", "lim", "port", "80", "scalingMetric",
	                 "concurrency", "hosts", s);
	assert_int_equal(parse_so_meta(meta, err), ZW_TARGET_EINVAL);
	assert_string_equal(
	        err,
	        "ScaledObject default/lim trigger 0: metadata.hosts has more than 1024 entries");
	/* 1024 are fine; duplicates do not count */
	*strrchr(s, ',') = '\0';
	strcat(s, ",H0.example.com");
	json_object_set_new(meta, "hosts", json_string(s));
	assert_int_equal(parse_so_meta(meta, err), 0);
	json_decref(meta);

	/* a 254-byte host */
	memset(s, 'a', 254);
	s[254] = '\0';
	meta = json_pack("{s:s, s:s, s:s, s:s}", "service", "lim", "port", "80", "scalingMetric",
	                 "concurrency", "hosts", s);
	assert_int_equal(parse_so_meta(meta, err), ZW_TARGET_EINVAL);
	assert_non_null(strstr(err, "is not a valid host: it is longer than 253 bytes"));
	s[253] = '\0';
	json_object_set_new(meta, "hosts", json_string(s));
	assert_int_equal(parse_so_meta(meta, err), 0);
	json_decref(meta);

	/* placeholder body of 32769 bytes */
	memset(s, 'b', ZW_TARGET_MAX_BODY + 1);
	s[ZW_TARGET_MAX_BODY + 1] = '\0';
	meta = json_pack("{s:s, s:s, s:s, s:s}", "service", "lim", "port", "80", "scalingMetric",
	                 "concurrency", "placeholderBody", s);
	assert_int_equal(parse_so_meta(meta, err), ZW_TARGET_EINVAL);
	assert_string_equal(err, "ScaledObject default/lim trigger 0: metadata.placeholderBody is "
	                         "longer than 32768 bytes");
	s[ZW_TARGET_MAX_BODY] = '\0';
	json_object_set_new(meta, "placeholderBody", json_string(s));
	assert_int_equal(parse_so_meta(meta, err), 0);
	json_decref(meta);

	/* 3600 buckets are fine, 3601 are not */
	meta = json_pack("{s:s, s:s, s:s, s:s, s:s}", "service", "lim", "port", "80",
	                 "scalingMetric", "requestRate", "window", "1h", "granularity", "1s");
	assert_int_equal(parse_so_meta(meta, err), 0);
	json_object_set_new(meta, "window", json_string("3601s"));
	assert_int_equal(parse_so_meta(meta, err), ZW_TARGET_EINVAL);
	assert_string_equal(err, "ScaledObject default/lim trigger 0: metadata.window / "
	                         "metadata.granularity gives more than 3600 buckets");
	json_decref(meta);

	/* values read as words/numbers/durations: up to 255 bytes, never cut */
	memset(s, '0', 300);
	strcpy(s + 253, "1s"); /* 255 bytes: "000...01s" = 1s */
	meta = json_pack("{s:s, s:s, s:s, s:s}", "service", "lim", "port", "80", "scalingMetric",
	                 "concurrency", "window", s);
	assert_int_equal(parse_so_meta(meta, err), 0);
	memset(s, '0', 300);
	strcpy(s + 254, "1s"); /* 256 bytes: refused, not truncated to zeros */
	json_object_set_new(meta, "window", json_string(s));
	assert_int_equal(parse_so_meta(meta, err), ZW_TARGET_EINVAL);
	assert_non_null(strstr(err, "metadata.window \"000"));
	assert_non_null(strstr(err, "is not a duration"));
	json_decref(meta);

	/* long values are shortened in messages; the message always fits */
	memset(s, 'x', 5000);
	s[5000] = '\0';
	meta = json_pack("{s:s, s:s, s:s}", "service", "lim", "port", s, "scalingMetric",
	                 "concurrency");
	assert_int_equal(parse_so_meta(meta, err), ZW_TARGET_EINVAL);
	assert_true(strlen(err) < 200);
	assert_non_null(strstr(err, "...\" is not a port number"));
	json_decref(meta);
	free(s);
}

/* ---- type mutation sweep ---- */

struct sweep {
	json_t *root;
	size_t parses;
	int failures;
};

static void sweep_parse(struct sweep *sw, const char *where)
{
	char err[ZW_TARGET_ERRLEN];
	struct zw_target *ts = NULL;
	size_t n = 0;
	int rc;

	err[0] = '\0';
	rc = zw_target_parse_object(sw->root, &ts, &n, err);
	sw->parses++;
	if (rc == ZW_TARGET_EINVAL && (!*err || (strncmp(err, "ScaledObject ", 13) != 0 &&
	                                         strncmp(err, "HTTPScaledObject ", 17) != 0 &&
	                                         strncmp(err, "InterceptorRoute ", 17) != 0))) {
		print_error("%s: bad message \"%s\"\n", where, err);
		sw->failures++;
	}
	if (rc != 0 && rc != ZW_TARGET_EINVAL && rc != ZW_TARGET_ENOTARGET) {
		print_error("%s: rc %d\n", where, rc);
		sw->failures++;
	}
	if (rc != 0 && (ts || n)) {
		print_error("%s: output on failure\n", where);
		sw->failures++;
	}
	zw_target_array_free(ts, n);
}

/* Puts each alternative into slot `key` (object) or `idx` (array) of v,
 * parses, restores the original, then recurses into it. */
static void sweep_slot(struct sweep *sw, json_t *v, const char *key, size_t idx, json_t *orig,
                       json_t *const *alts, size_t nalts, const char *where)
{
	json_t *saved = json_incref(orig);

	for (size_t a = 0; a < nalts; a++) {
		if (key)
			json_object_set(v, key, alts[a]);
		else
			json_array_set(v, idx, alts[a]);
		sweep_parse(sw, where);
	}
	if (key)
		json_object_set(v, key, saved);
	else
		json_array_set(v, idx, saved);
	json_decref(saved);
}

/* Replaces every value below v (one at a time) by other JSON types. */
static void sweep_node(struct sweep *sw, json_t *v, const char *where)
{
	json_t *alts[] = {json_array(),    json_object(), json_integer(-7),
	                  json_string(""), json_true(),   json_string("\x01 weird, value: [")};
	const size_t nalts = sizeof(alts) / sizeof(alts[0]);
	char sub[FIELD];
	const char *k;
	json_t *c;
	size_t i;

	json_object_foreach(json_is_object(v) ? v : NULL, k, c)
	{
		fmt(sub, sizeof(sub), "%s.%s", where, k);
		sweep_slot(sw, v, k, 0, c, alts, nalts, sub);
		sweep_node(sw, c, sub);
	}
	json_array_foreach(json_is_array(v) ? v : NULL, i, c)
	{
		fmt(sub, sizeof(sub), "%s[%zu]", where, i);
		sweep_slot(sw, v, NULL, i, c, alts, nalts, sub);
		sweep_node(sw, c, sub);
	}
	for (size_t a = 0; a < nalts; a++)
		json_decref(alts[a]);
}

static void test_type_sweep(void **state)
{
	struct sweep sw = {0};
	char **names, path[PATHBUF];
	size_t n = list_yaml(data_dir(), &names);

	(void)state;
	for (size_t i = 0; i < n; i++) {
		json_t *docs;
		size_t d;

		if (strncmp(names[i], "valid-", 6) != 0 && strncmp(names[i], "seed-", 5) != 0)
			continue;
		path_join(path, data_dir(), names[i]);
		docs = load_yaml(path);
		for (d = 0; d < json_array_size(docs); d++) {
			const char *kind = sget(json_array_get(docs, d), "kind");
			if (!kind ||
			    (strcmp(kind, "ScaledObject") && strcmp(kind, "HTTPScaledObject") &&
			     strcmp(kind, "InterceptorRoute")))
				continue;
			sw.root = json_array_get(docs, d);
			sweep_node(&sw, sw.root, names[i]);
		}
		json_decref(docs);
	}
	free_names(names, n);
	print_message("type sweep: %zu parses\n", sw.parses);
	assert_true(sw.parses > 1000);
	assert_int_equal(sw.failures, 0);
}

/* ---- CRD conformance ---- */

/* The hand-written target test data against the upstream CRD schemas in
 * ../shared/fixtures/crds (skipped when ../shared is absent):
 * - every HTTPScaledObject, InterceptorRoute and ScaledObject in
 *   lib/tests/targets/{valid,seed}-*.yaml conforms to its CRD's
 *   openAPIV3Schema (types, required, enums, bounds, lengths, unknown
 *   fields), so "valid" test objects are what the API server would accept;
 * - together they set every spec field the HTTPScaledObject and
 *   InterceptorRoute schemas define, so the parser is exercised on all of
 *   them (the unit test in test_target.c checks the parsed values).
 * CEL rules (x-kubernetes-validations) are not evaluated here; the parser
 * enforces them itself (see invalid.yaml). Objects annotated
 * zerowire.io/test-not-crd-valid are deliberately outside the schema. */

/* Fields the parser supports beyond this CRD snapshot (KEDA HTTP add-on
 * v0.16; Kedify's HTTPScaledObject header patterns); the API server would
 * prune them with this CRD. */
static const char *const newer_fields[] = {
        "InterceptorRoute spec.coldStart.maxPendingRequests",
        "InterceptorRoute spec.coldStart.overflow",
        "HTTPScaledObject spec.headers[].valueWildcard",
        "HTTPScaledObject spec.headers[].valueRegex",
};

/* ---- schemas ---- */

struct crd {
	const char *file;
	const char *kind;
	const char *version;
	json_t *schema; /* openAPIV3Schema */
	json_t *seen;   /* field path -> true, for coverage */
};

static json_t *crd_schema(const char *shared, const char *file, const char *version)
{
	char dir[PATHBUF], path[PATHBUF];
	json_t *docs, *versions, *v, *schema = NULL;
	size_t i;

	path_join(dir, shared, "fixtures/crds");
	path_join(path, dir, file);
	docs = load_yaml(path);
	assert_non_null(docs);
	versions = json_object_get(json_object_get(json_array_get(docs, 0), "spec"), "versions");
	json_array_foreach(versions, i, v)
	{
		const char *name = sget(v, "name");
		if (name && strcmp(name, version) == 0)
			schema = json_object_get(json_object_get(v, "schema"), "openAPIV3Schema");
	}
	if (!schema)
		fail_msg("%s: no version %s", file, version);
	json_incref(schema);
	json_decref(docs);
	return schema;
}

/* ---- validation ---- */

struct check {
	const char *label;
	const struct crd *crd;
	int errors;
};

static void verr(struct check *c, const char *path, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void verr(struct check *c, const char *path, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	print_error("%s: %s: %s\n", c->label, path, buf);
	c->errors++;
}

static bool type_ok(const char *type, const json_t *v)
{
	if (strcmp(type, "object") == 0)
		return json_is_object(v);
	if (strcmp(type, "array") == 0)
		return json_is_array(v);
	if (strcmp(type, "string") == 0)
		return json_is_string(v);
	if (strcmp(type, "integer") == 0)
		return json_is_integer(v);
	if (strcmp(type, "number") == 0)
		return json_is_number(v);
	if (strcmp(type, "boolean") == 0)
		return json_is_boolean(v);
	return false;
}

static bool newer_field(const struct crd *crd, const char *path)
{
	char key[FIELD];

	fmt(key, sizeof(key), "%s %s", crd->kind, path);
	for (size_t i = 0; i < sizeof(newer_fields) / sizeof(newer_fields[0]); i++)
		if (strcmp(key, newer_fields[i]) == 0)
			return true;
	return false;
}

/* Validates v against schema s; `field` is the path with "[]" for array
 * items (coverage key), `path` the concrete path (messages). */
static void validate(struct check *c, const json_t *s, const json_t *v, const char *field,
                     const char *path)
{
	const char *type = sget(s, "type");
	json_t *x, *props = json_object_get(s, "properties");
	char f2[FIELD], p2[FIELD];
	const char *k;
	json_t *item;
	size_t i;

	json_object_set_new(c->crd->seen, field, json_true());
	if (json_is_true(json_object_get(s, "x-kubernetes-int-or-string"))) {
		if (!json_is_integer(v) && !json_is_string(v))
			verr(c, path, "must be an integer or a string");
		return;
	}
	if (type && !type_ok(type, v)) {
		verr(c, path, "must be %s", type);
		return;
	}
	if ((x = json_object_get(s, "enum"))) {
		bool found = false;
		json_array_foreach(x, i, item)
		{
			if (json_equal(item, v))
				found = true;
		}
		if (!found)
			verr(c, path, "not in the enum");
	}
	if (json_is_number(v) && (x = json_object_get(s, "minimum")) &&
	    json_number_value(v) < json_number_value(x))
		verr(c, path, "below the minimum");
	if (json_is_number(v) && (x = json_object_get(s, "maximum")) &&
	    json_number_value(v) > json_number_value(x))
		verr(c, path, "above the maximum");
	if (json_is_string(v) && (x = json_object_get(s, "minLength")) &&
	    (json_int_t)strlen(json_string_value(v)) < json_integer_value(x))
		verr(c, path, "shorter than minLength");
	if (json_is_string(v) && (x = json_object_get(s, "maxLength")) &&
	    (json_int_t)strlen(json_string_value(v)) > json_integer_value(x))
		verr(c, path, "longer than maxLength");
	if (json_is_array(v) && (x = json_object_get(s, "items"))) {
		fmt(f2, sizeof(f2), "%s[]", field);
		json_array_foreach(v, i, item)
		{
			fmt(p2, sizeof(p2), "%s[%zu]", path, i);
			validate(c, x, item, f2, p2);
		}
	}
	if (!json_is_object(v))
		return;
	json_array_foreach(json_object_get(s, "required"), i, item)
	{
		if (!json_object_get(v, json_string_value(item)))
			verr(c, path, "%s is required", json_string_value(item));
	}
	json_object_foreach((json_t *)v, k, item)
	{
		json_t *ps = props ? json_object_get(props, k) : NULL;

		fmt(f2, sizeof(f2), "%s%s%s", field, *field ? "." : "", k);
		fmt(p2, sizeof(p2), "%s%s%s", path, *path ? "." : "", k);
		if (!*path && strcmp(k, "metadata") == 0)
			continue; /* ObjectMeta: checked by the API server, not the CRD */
		if (ps)
			validate(c, ps, item, f2, p2);
		else if ((x = json_object_get(s, "additionalProperties")) && json_is_object(x))
			validate(c, x, item, field, p2);
		else if (!json_is_true(
		                 json_object_get(s, "x-kubernetes-preserve-unknown-fields")) &&
		         !(!props && !type) && !newer_field(c->crd, f2))
			verr(c, p2, "unknown field");
	}
}

/* Spec field paths a schema defines (for coverage). */
static void schema_fields(const json_t *s, const char *field, json_t *out)
{
	json_t *props = json_object_get(s, "properties"), *v;
	char f2[FIELD];
	const char *k;

	if (*field)
		json_object_set_new(out, field, json_true());
	if (json_is_object(json_object_get(s, "items"))) {
		fmt(f2, sizeof(f2), "%s[]", field);
		schema_fields(json_object_get(s, "items"), f2, out);
	}
	json_object_foreach(props, k, v)
	{
		fmt(f2, sizeof(f2), "%s%s%s", field, *field ? "." : "", k);
		schema_fields(v, f2, out);
	}
}

static void test_crd_conformance(void **state)
{
	const char *shared = shared_dir();
	struct crd crds[] = {
	        {"keda-http-add-on-main-http.keda.sh_httpscaledobjects.yaml", "HTTPScaledObject",
	         "v1alpha1", NULL, NULL},
	        {"keda-http-add-on-main-http.keda.sh_interceptorroutes.yaml", "InterceptorRoute",
	         "v1beta1", NULL, NULL},
	        {"keda-v2.20.2-keda.sh_scaledobjects.yaml", "ScaledObject", "v1alpha1", NULL, NULL},
	};
	const size_t ncrd = sizeof(crds) / sizeof(crds[0]);
	char path[PATHBUF], **names = NULL;
	size_t nnames = 0, validated = 0, i, c;
	int errors = 0, missing = 0;
	struct dirent *e;
	DIR *d;

	(void)state;
	if (!shared) {
		print_message("SKIP: ../shared absent (set ZW_SHARED); CRD schemas not checked\n");
		skip();
	}
	for (c = 0; c < ncrd; c++) {
		crds[c].schema = crd_schema(shared, crds[c].file, crds[c].version);
		crds[c].seen = json_object();
	}
	d = opendir(data_dir());
	assert_non_null(d);
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if ((strncmp(e->d_name, "valid-", 6) && strncmp(e->d_name, "seed-", 5)) ||
		    len < 6 || strcmp(e->d_name + len - 5, ".yaml") ||
		    strstr(e->d_name, ".expect."))
			continue;
		names = realloc(names, (nnames + 1) * sizeof(*names));
		assert_non_null(names);
		names[nnames++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, nnames, sizeof(*names), cmp_str);
	for (i = 0; i < nnames; i++) {
		json_t *docs, *doc;
		size_t k;

		path_join(path, data_dir(), names[i]);
		docs = load_yaml(path);
		json_array_foreach(docs, k, doc)
		{
			const char *kind = sget(doc, "kind");
			json_t *ann =
			        json_object_get(json_object_get(doc, "metadata"), "annotations");
			char label[PATHBUF];

			for (c = 0; c < ncrd; c++)
				if (kind && strcmp(kind, crds[c].kind) == 0)
					break;
			if (c == ncrd || json_object_get(ann, "zerowire.io/test-not-crd-valid"))
				continue;
			fmt(label, sizeof(label), "%s doc %zu (%s)", names[i], k, kind);
			struct check chk = {label, &crds[c], 0};
			validate(&chk, crds[c].schema, doc, "", "");
			errors += chk.errors;
			validated++;
		}
		json_decref(docs);
		free(names[i]);
	}
	free(names);
	/* every spec field of the http.keda.sh schemas is set somewhere */
	for (c = 0; c < 2; c++) {
		json_t *fields = json_object(), *v;
		const char *k;

		schema_fields(
		        json_object_get(json_object_get(crds[c].schema, "properties"), "spec"),
		        "spec", fields);
		json_object_foreach(fields, k, v)
		{
			if (!json_object_get(crds[c].seen, k)) {
				print_error("%s field %s is set by no valid test object\n",
				            crds[c].kind, k);
				missing++;
			}
		}
		print_message("%s: %zu spec fields, all covered: %s\n", crds[c].kind,
		              json_object_size(fields), missing ? "no" : "yes");
		json_decref(fields);
	}
	for (c = 0; c < ncrd; c++) {
		json_decref(crds[c].schema);
		json_decref(crds[c].seen);
	}
	print_message("validated %zu objects\n", validated);
	assert_true(validated >= 10);
	assert_int_equal(errors, 0);
	assert_int_equal(missing, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_autowire),
	        cmocka_unit_test(test_defaults),
	        cmocka_unit_test(test_api_edges),
	        cmocka_unit_test(test_key_and_copy),
	        cmocka_unit_test(test_link),
	        cmocka_unit_test(test_limits),
	        cmocka_unit_test(test_data_files),
	        cmocka_unit_test(test_fixture_examples),
	        cmocka_unit_test(test_seed_reconstructions),
	        cmocka_unit_test(test_type_sweep),
	        cmocka_unit_test(test_crd_conformance),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
