/* Data-driven admission cases: every webhook/tests/cases/<name>.yaml.
 *
 * Each case file is one YAML document:
 *   name:      what it shows
 *   fixture:   optional file under $ZW_SHARED/fixtures (its documents are
 *              admitted one by one), e.g. examples/kubernetes-ingress-minimal.yaml
 *   namespace: request namespace for objects without one (default "default")
 *   config:    overrides of struct zw_mutate_config (proxy_service,
 *              proxy_namespace, proxy_port, proxy_h2c_port, scaler_address, alias_service,
 *              autowire_mesh_virtualservices, split_header, enabled_kinds: [..],
 *              handwired_hosts: [..])
 *   targets:   shorthand targets: {service, namespace, port | portName, hosts,
 *              autowire} -> an external-push ScaledObject fed to the registry
 *   registry:  further objects fed to zw_registry_apply_object (ScaledObject,
 *              Upstream, VirtualDestination, Service, ...)
 *   wiring:    [{what: alias|grant-httproute|grant-grpcroute, namespace}]
 *   objects:   inline documents to admit (after the fixture's)
 *   expect:    per admitted document, matched by kind + name (+ apiVersion,
 *              + index: position among the admitted documents):
 *              set: {pointer: value}, remove: [pointer], record: [...]
 *              (the expected zerowire.io/original records), outcome,
 *              rewrites, restores, allowed, message, warnings: [substring],
 *              no_warnings: true
 * Documents without an expect entry must come out unchanged.
 *
 * Every admitted document is also checked for: same uid; the patch holds
 * the same operations as a whole-document diff of the object and
 * zw_mutate_object's result (the review builds it from what it changed);
 * the patch applies;
 * the result equals the expected object; admitting the result again gives an
 * empty patch; a dry-run review gives the same patch; admitting the result
 * with an empty registry, and with the opt-out label, restores the input
 * exactly. */
#include "jsonpatch.h"
#include "base64.h"
#include "mutate.h"
#include "registry.h"
#include "yamljson.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#define MAX_CASES    512
#define MAX_HANDWIRE 16

struct run {
	const char *file;
	json_t *c; /* the case document */
	struct zw_mutate_config cfg;
	const char *handwired[MAX_HANDWIRE];
	struct zw_registry *reg;
	struct zw_registry *empty;
};

static const char *case_dir(void)
{
	const char *d = getenv("ZW_CASES");
	return d ? d : "webhook/tests/cases";
}

static const char *shared_dir(void)
{
	const char *d = getenv("ZW_SHARED");
	return d ? d : "../shared";
}

static unsigned kinds_from(const json_t *arr)
{
	static const struct {
		const char *name;
		unsigned bit;
	} map[] = {{"ingress", ZW_AW_INGRESS},
	           {"httproute", ZW_AW_HTTPROUTE},
	           {"grpcroute", ZW_AW_GRPCROUTE},
	           {"virtualservice", ZW_AW_VIRTUALSERVICE},
	           {"gloo", ZW_AW_GLOO}};
	unsigned bits = 0;
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v)
	{
		for (size_t k = 0; k < sizeof(map) / sizeof(map[0]); k++) {
			if (strcmp(json_string_value(v), map[k].name) == 0)
				bits |= map[k].bit;
		}
	}
	return bits;
}

static void setup_config(struct run *r)
{
	json_t *c = json_object_get(r->c, "config");
	zw_mutate_config_defaults(&r->cfg);
	const char *s;
	if ((s = json_string_value(json_object_get(c, "proxy_service"))))
		r->cfg.proxy_service = s;
	if ((s = json_string_value(json_object_get(c, "proxy_namespace"))))
		r->cfg.proxy_namespace = s;
	if ((s = json_string_value(json_object_get(c, "scaler_address"))))
		r->cfg.scaler_address = s;
	if ((s = json_string_value(json_object_get(c, "alias_service"))))
		r->cfg.alias_service = s;
	if (json_is_integer(json_object_get(c, "proxy_port")))
		r->cfg.proxy_port = (int)json_integer_value(json_object_get(c, "proxy_port"));
	if (json_is_integer(json_object_get(c, "proxy_h2c_port")))
		r->cfg.proxy_h2c_port =
		        (int)json_integer_value(json_object_get(c, "proxy_h2c_port"));
	if (json_is_true(json_object_get(c, "autowire_mesh_virtualservices")))
		r->cfg.autowire_mesh_virtualservices = true;
	if (json_is_false(json_object_get(c, "split_header")))
		r->cfg.split_header = false;
	if (json_object_get(c, "enabled_kinds"))
		r->cfg.enabled_kinds = kinds_from(json_object_get(c, "enabled_kinds"));
	json_t *hw = json_object_get(c, "handwired_hosts");
	size_t i;
	json_t *v;
	json_array_foreach(hw, i, v)
	{
		if (i < MAX_HANDWIRE)
			r->handwired[r->cfg.n_handwired_hosts++] = json_string_value(v);
	}
	r->cfg.handwired_hosts = r->handwired;
}

static void feed(struct run *r, const json_t *obj)
{
	char err[ZW_TARGET_ERRLEN];
	int rc = zw_registry_apply_object(r->reg, obj, false, err);
	if (rc != 0)
		fail_msg("%s: registry object rejected (%d): %s", r->file, rc, err);
}

static void setup_registry(struct run *r)
{
	size_t i;
	json_t *t;
	r->reg = zw_registry_new();
	r->empty = zw_registry_new();
	assert_non_null(r->reg);
	assert_non_null(r->empty);
	json_array_foreach(json_object_get(r->c, "targets"), i, t)
	{
		json_t *md = json_pack("{s:s, s:O}", "scalerAddress", r->cfg.scaler_address,
		                       "service", json_object_get(t, "service"));
		const char *keys[] = {"port", "portName", "hosts", "pathPrefixes"};
		for (size_t k = 0; k < 4; k++) {
			json_t *v = json_object_get(t, keys[k]);
			if (json_is_integer(v))
				json_object_set_new(
				        md, keys[k],
				        json_sprintf("%lld", (long long)json_integer_value(v)));
			else if (v)
				json_object_set(md, keys[k], v);
		}
		if (json_object_get(t, "autowire"))
			json_object_set(md, "trafficAutowire", json_object_get(t, "autowire"));
		const char *ns = json_string_value(json_object_get(t, "namespace"));
		char name[128];
		snprintf(name, sizeof(name), "%s-target-%zu",
		         json_string_value(json_object_get(t, "service")), i);
		json_t *so =
		        json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:{s:O}, s:[{s:s, s:o}]}}",
		                  "apiVersion", "keda.sh/v1alpha1", "kind", "ScaledObject",
		                  "metadata", "name", name, "namespace", ns ? ns : "default",
		                  "spec", "scaleTargetRef", "name", json_object_get(t, "service"),
		                  "triggers", "type", "external-push", "metadata", md);
		assert_non_null(so);
		feed(r, so);
		json_decref(so);
	}
	json_array_foreach(json_object_get(r->c, "registry"), i, t)
	{
		feed(r, t);
	}
	json_array_foreach(json_object_get(r->c, "wiring"), i, t)
	{
		const char *what = json_string_value(json_object_get(t, "what"));
		const char *ns = json_string_value(json_object_get(t, "namespace"));
		enum zw_wiring w = ZW_WIRE_ALIAS;
		if (what && strcmp(what, "grant-httproute") == 0)
			w = ZW_WIRE_GRANT_HTTPROUTE;
		else if (what && strcmp(what, "grant-grpcroute") == 0)
			w = ZW_WIRE_GRANT_GRPCROUTE;
		assert_int_equal(zw_registry_set_wiring(r->reg, w, ns, true), 0);
	}
}

/* Splits apiVersion into group and version (new strings in out buffers). */
static void split_api(const char *api, char *group, char *version, size_t len)
{
	const char *slash = strchr(api, '/');
	if (!slash) {
		snprintf(group, len, "%s", "");
		snprintf(version, len, "%s", api);
		return;
	}
	snprintf(group, len, "%.*s", (int)(slash - api), api);
	snprintf(version, len, "%s", slash + 1);
}

struct reply {
	json_t *response; /* the "response" member */
	json_t *whole;
	json_t *patch; /* decoded, or NULL */
	struct zw_mutate_result info;
};

static char *unbase64(const char *in)
{
	size_t n;
	char *out = (char *)zw_base64_decode(in, strlen(in), &n);

	assert_non_null(out);
	return out;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The operations of patch (may be NULL: none) as sorted compact texts, one
 * string: the same operations in any order give the same string. */
static char *op_set(const json_t *patch)
{
	size_t n = json_array_size(patch), total = 1;
	char **ops = calloc(n + 1, sizeof(*ops));
	assert_non_null(ops);
	for (size_t i = 0; i < n; i++) {
		ops[i] = json_dumps(json_array_get(patch, i), JSON_COMPACT | JSON_SORT_KEYS);
		assert_non_null(ops[i]);
		total += strlen(ops[i]) + 1;
	}
	qsort(ops, n, sizeof(*ops), cmp_str);
	char *out = malloc(total), *w = out;
	assert_non_null(out);
	*w = '\0';
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(ops[i]);
		memcpy(w, ops[i], l);
		w[l] = '\n';
		w += l + 1;
		*w = '\0';
		free(ops[i]);
	}
	free(ops);
	return out;
}

/* The review's patch (built from the objects the rewrite changed) must hold
 * exactly the operations of a whole-document diff between the object and
 * what zw_mutate_object makes of it. */
static void check_patch_is_diff(struct run *r, const struct zw_registry *reg, const json_t *obj,
                                const char *ns, const char *group, const char *version,
                                const json_t *patch)
{
	struct zw_mutate_result info;
	json_t *desired = NULL, *want = json_array();
	assert_non_null(want);
	int rc = zw_mutate_object(obj, group, version,
	                          json_string_value(json_object_get(obj, "kind")), ns, reg, &r->cfg,
	                          &desired, NULL, &info);
	assert_int_not_equal(rc, -1);
	if (rc == 0)
		assert_int_equal(zw_jsonpatch_diff(obj, desired, "", want), 0);
	char *a = op_set(patch), *b = op_set(want);
	if (strcmp(a, b) != 0)
		fail_msg("%s: review patch differs from the whole-document diff:\n%s\nvs\n%s",
		         r->file, a, b);
	free(a);
	free(b);
	json_decref(desired);
	json_decref(want);
}

static void admit(struct run *r, const struct zw_registry *reg, const json_t *obj, const char *ns,
                  bool dry_run, struct reply *out)
{
	char group[128], version[64];
	const char *api = json_string_value(json_object_get(obj, "apiVersion"));
	split_api(api ? api : "v1", group, version, sizeof(group));
	json_t *review =
	        json_pack("{s:s, s:s, s:{s:s, s:{s:s, s:s, s:s}, s:s, s:s, s:O, s:b}}",
	                  "apiVersion", "admission.k8s.io/v1", "kind", "AdmissionReview", "request",
	                  "uid", "0b3c2a4e-uid", "kind", "group", group, "version", version, "kind",
	                  json_string_value(json_object_get(obj, "kind")), "namespace", ns,
	                  "operation", "CREATE", "object", obj, "dryRun", dry_run);
	assert_non_null(review);
	char *body = json_dumps(review, JSON_COMPACT);
	json_decref(review);
	char *resp = NULL;
	size_t len = 0;
	int status = zw_mutate_review(body, strlen(body), reg, &r->cfg, &resp, &len, &out->info);
	free(body);
	if (status != 200)
		fail_msg("%s: review answered %d: %s", r->file, status, out->info.message);
	out->whole = json_loadb(resp, len, 0, NULL);
	free(resp);
	assert_non_null(out->whole);
	out->response = json_object_get(out->whole, "response");
	assert_string_equal(json_string_value(json_object_get(out->response, "uid")),
	                    "0b3c2a4e-uid");
	const char *p = json_string_value(json_object_get(out->response, "patch"));
	out->patch = NULL;
	if (p) {
		assert_string_equal(json_string_value(json_object_get(out->response, "patchType")),
		                    "JSONPatch");
		char *raw = unbase64(p);
		out->patch = json_loads(raw, 0, NULL);
		free(raw);
		assert_true(json_is_array(out->patch));
		assert_true(json_array_size(out->patch) > 0);
	}
	if (json_is_true(json_object_get(out->response, "allowed")))
		check_patch_is_diff(r, reg, obj, ns, group, version, out->patch);
}

static void reply_free(struct reply *rp)
{
	json_decref(rp->whole);
	json_decref(rp->patch);
}

/* Returns the patched copy of obj (new reference). */
static json_t *patched(struct run *r, const json_t *obj, const struct reply *rp, const char *what)
{
	json_t *doc = json_deep_copy(obj);
	char err[256];
	if (rp->patch && zw_jsonpatch_apply(&doc, rp->patch, err, sizeof(err)))
		fail_msg("%s: %s: patch does not apply: %s", r->file, what, err);
	return doc;
}

/* Moves the records annotation out of obj: returns it parsed (or NULL) and
 * removes the annotations map when that empties it. */
static json_t *take_records(json_t *obj)
{
	json_t *meta = json_object_get(obj, "metadata");
	json_t *ann = json_object_get(meta, "annotations");
	const char *raw = json_string_value(json_object_get(ann, ZW_ANNOTATION_ORIGINAL));
	json_t *recs = raw ? json_loads(raw, 0, NULL) : NULL;
	if (raw) {
		json_object_del(ann, ZW_ANNOTATION_ORIGINAL);
		if (json_object_size(ann) == 0)
			json_object_del(meta, "annotations");
	}
	return recs;
}

static void fail_diff(struct run *r, const char *what, const json_t *want, const json_t *got)
{
	char *a = json_dumps(want, JSON_INDENT(1) | JSON_SORT_KEYS);
	char *b = json_dumps(got, JSON_INDENT(1) | JSON_SORT_KEYS);
	fprintf(stderr, "%s: %s\n--- expected\n%s\n--- got\n%s\n", r->file, what, a, b);
	free(a);
	free(b);
	fail();
}

static const json_t *find_expect(const json_t *c, const json_t *obj, size_t index)
{
	const char *kind = json_string_value(json_object_get(obj, "kind"));
	const char *api = json_string_value(json_object_get(obj, "apiVersion"));
	const char *name =
	        json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(c, "expect"), i, e)
	{
		const char *ek = json_string_value(json_object_get(e, "kind"));
		const char *en = json_string_value(json_object_get(e, "name"));
		const char *ea = json_string_value(json_object_get(e, "apiVersion"));
		json_t *ei = json_object_get(e, "index");
		if (ek && kind && strcmp(ek, kind) == 0 && en && name && strcmp(en, name) == 0 &&
		    (!ea || (api && strcmp(ea, api) == 0)) &&
		    (!ei || (size_t)json_integer_value(ei) == index))
			return e;
	}
	return NULL;
}

static bool has_warning(const json_t *resp, const char *needle)
{
	size_t i;
	json_t *w;
	json_array_foreach(json_object_get(resp, "warnings"), i, w)
	{
		if (strstr(json_string_value(w), needle))
			return true;
	}
	return false;
}

static void check_expect(struct run *r, const json_t *obj, const json_t *e, const struct reply *rp,
                         const json_t *out, const char *what)
{
	json_t *allowed = json_object_get(rp->response, "allowed");
	bool want_allowed = !json_is_false(json_object_get(e, "allowed"));
	if (json_is_true(allowed) != want_allowed)
		fail_msg("%s: %s: allowed is %s", r->file, what,
		         json_is_true(allowed) ? "true" : "false");
	const char *msg = json_string_value(json_object_get(e, "message"));
	if (msg) {
		const char *got = json_string_value(
		        json_object_get(json_object_get(rp->response, "status"), "message"));
		if (!got || !strstr(got, msg))
			fail_msg("%s: %s: status message %s lacks %s", r->file, what,
			         got ? got : "(none)", msg);
	}
	const char *outcome = json_string_value(json_object_get(e, "outcome"));
	if (outcome && strcmp(outcome, zw_mutate_outcome_name(rp->info.outcome)) != 0)
		fail_msg("%s: %s: outcome %s, expected %s", r->file, what,
		         zw_mutate_outcome_name(rp->info.outcome), outcome);
	json_t *n = json_object_get(e, "rewrites");
	if (n && json_integer_value(n) != rp->info.rewrites)
		fail_msg("%s: %s: %u rewrites, expected %lld", r->file, what, rp->info.rewrites,
		         (long long)json_integer_value(n));
	n = json_object_get(e, "restores");
	if (n && json_integer_value(n) != rp->info.restores)
		fail_msg("%s: %s: %u restores, expected %lld", r->file, what, rp->info.restores,
		         (long long)json_integer_value(n));
	size_t i;
	json_t *w;
	json_array_foreach(json_object_get(e, "warnings"), i, w)
	{
		if (!has_warning(rp->response, json_string_value(w)))
			fail_diff(r, "missing warning", w,
			          json_object_get(rp->response, "warnings"));
	}
	if (json_is_true(json_object_get(e, "no_warnings")) &&
	    json_array_size(json_object_get(rp->response, "warnings")))
		fail_diff(r, "unexpected warnings", json_null(),
		          json_object_get(rp->response, "warnings"));
	if (!want_allowed)
		return;

	/* Expected object: the input with `set` / `remove` applied. */
	json_t *want = json_deep_copy(obj);
	json_t *ops = json_array();
	const char *ptr;
	json_t *v;
	json_array_foreach(json_object_get(e, "remove"), i, v)
	{
		json_array_append_new(ops, json_pack("{s:s, s:O}", "op", "remove", "path", v));
	}
	json_object_foreach(json_object_get(e, "set"), ptr, v)
	{
		/* replace what exists (array elements too), add what does not */
		const char *op = zw_jsonpointer_get(want, ptr) ? "replace" : "add";
		json_array_append_new(
		        ops, json_pack("{s:s, s:s, s:O}", "op", op, "path", ptr, "value", v));
	}
	char err[256];
	if (zw_jsonpatch_apply(&want, ops, err, sizeof(err)))
		fail_msg("%s: %s: expectation does not apply: %s", r->file, what, err);
	json_decref(ops);
	json_t *got = json_deep_copy(out);
	json_t *got_recs = take_records(got);
	json_decref(take_records(want));
	if (!json_equal(want, got))
		fail_diff(r, what, want, got);
	json_t *want_recs = json_object_get(e, "record");
	/* `record: []` expects no record annotation at all */
	if (!got_recs && json_is_array(want_recs) && json_array_size(want_recs) == 0)
		want_recs = NULL;
	if (want_recs && !json_equal(want_recs, got_recs))
		fail_diff(r, "records", want_recs, got_recs ? got_recs : json_null());
	json_decref(got_recs);
	json_decref(got);
	json_decref(want);
}

/* Generation aid (ZW_CASES_DUMP=<file>): appends one JSON line per document
 * with what the webhook did, in the expect format, for review. */
static void dump_result(struct run *r, const json_t *obj, size_t index, const struct reply *rp,
                        const json_t *out)
{
	FILE *f = fopen(getenv("ZW_CASES_DUMP"), "a");
	assert_non_null(f);
	json_t *set = json_object(), *rm = json_array();
	size_t i;
	json_t *op;
	json_array_foreach(rp->patch, i, op)
	{
		const char *path = json_string_value(json_object_get(op, "path"));
		if (strncmp(path, "/metadata", 9) == 0)
			continue;
		if (strcmp(json_string_value(json_object_get(op, "op")), "remove") == 0)
			json_array_append(rm, json_object_get(op, "path"));
		else
			json_object_set(set, path, json_object_get(op, "value"));
	}
	json_t *copy = json_deep_copy(out);
	json_t *recs = take_records(copy);
	json_t *line = json_pack(
	        "{s:s, s:I, s:O*, s:O*, s:s, s:I, s:I, s:O*, s:O, s:O, s:o*, s:O*, s:O*}", "file",
	        r->file, "index", (json_int_t)index, "kind", json_object_get(obj, "kind"), "name",
	        json_object_get(json_object_get(obj, "metadata"), "name"), "outcome",
	        zw_mutate_outcome_name(rp->info.outcome), "rewrites", (json_int_t)rp->info.rewrites,
	        "restores", (json_int_t)rp->info.restores, "warnings",
	        json_object_get(rp->response, "warnings"), "set", set, "remove", rm, "record", recs,
	        "allowed", json_object_get(rp->response, "allowed"), "status",
	        json_object_get(rp->response, "status"));
	char *s = json_dumps(line, JSON_COMPACT);
	fprintf(f, "%s\n", s);
	free(s);
	fclose(f);
	json_decref(line);
	json_decref(set);
	json_decref(rm);
	json_decref(copy);
}

static void run_doc(struct run *r, const json_t *obj, size_t index)
{
	char what[256];
	const char *kind = json_string_value(json_object_get(obj, "kind"));
	json_t *meta = json_object_get(obj, "metadata");
	const char *name = json_string_value(json_object_get(meta, "name"));
	const char *ns = json_string_value(json_object_get(meta, "namespace"));
	if (!ns)
		ns = json_string_value(json_object_get(r->c, "namespace"));
	if (!ns)
		ns = "default";
	snprintf(what, sizeof(what), "document %zu %s %s/%s", index, kind ? kind : "?", ns,
	         name ? name : "?");

	struct reply rp, again, dry, rest, optout;
	admit(r, r->reg, obj, ns, false, &rp);
	json_t *out = patched(r, obj, &rp, what);
	const json_t *e = find_expect(r->c, obj, index);
	if (getenv("ZW_CASES_DUMP")) {
		dump_result(r, obj, index, &rp, out);
	} else if (e) {
		check_expect(r, obj, e, &rp, out, what);
	} else if (rp.patch || !json_is_true(json_object_get(rp.response, "allowed"))) {
		fail_diff(r, "unexpected change (no expect entry)", obj, rp.whole);
	}

	/* Dry-run: the same answer. */
	admit(r, r->reg, obj, ns, true, &dry);
	if (!json_equal(dry.response, rp.response))
		fail_diff(r, "dry-run answer differs", rp.response, dry.response);
	reply_free(&dry);

	if (json_is_true(json_object_get(rp.response, "allowed"))) {
		/* Idempotent: the result admitted again changes nothing. */
		admit(r, r->reg, out, ns, false, &again);
		if (again.patch)
			fail_diff(r, "second admission is not a no-op", out, again.patch);
		reply_free(&again);

		/* Restore: target gone, and opt-out label. Only routes carry records. */
		json_t *ann = json_object_get(json_object_get(out, "metadata"), "annotations");
		json_t *in_ann = json_object_get(json_object_get(obj, "metadata"), "annotations");
		if (json_object_get(ann, ZW_ANNOTATION_ORIGINAL) &&
		    !json_object_get(in_ann, ZW_ANNOTATION_ORIGINAL)) {
			admit(r, r->empty, out, ns, false, &rest);
			json_t *back = patched(r, out, &rest, what);
			char *a = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
			char *b = json_dumps(back, JSON_COMPACT | JSON_SORT_KEYS);
			if (strcmp(a, b) != 0)
				fail_diff(r, "restore (target gone) is not exact", obj, back);
			free(a);
			free(b);
			json_decref(back);
			reply_free(&rest);

			json_t *labelled = json_deep_copy(out);
			json_t *lmeta = json_object_get(labelled, "metadata");
			json_t *labels = json_object_get(lmeta, "labels");
			bool had_labels = !!labels;
			if (!labels) {
				labels = json_object();
				json_object_set_new(lmeta, "labels", labels);
			}
			json_object_set_new(labels, ZW_LABEL_AUTOWIRE, json_string("false"));
			admit(r, r->reg, labelled, ns, false, &optout);
			back = patched(r, labelled, &optout, what);
			json_t *bl = json_object_get(json_object_get(back, "metadata"), "labels");
			json_object_del(bl, ZW_LABEL_AUTOWIRE);
			if (!had_labels)
				json_object_del(json_object_get(back, "metadata"), "labels");
			if (!json_equal(back, (json_t *)obj))
				fail_diff(r, "restore (opt-out label) is not exact", obj, back);
			json_decref(back);
			json_decref(labelled);
			reply_free(&optout);
		}
	}
	json_decref(out);
	reply_free(&rp);
}

static void run_case(void **state)
{
	const char *file = *state;
	char err[512];
	json_t *docs = NULL;
	struct run r = {.file = file};
	if (zw_yaml_load_file(file, &docs, err, sizeof(err)))
		fail_msg("%s: %s", file, err);
	r.c = json_array_get(docs, 0);
	assert_true(json_is_object(r.c));
	setup_config(&r);

	json_t *all = json_array();
	const char *fixture = json_string_value(json_object_get(r.c, "fixture"));
	if (fixture) {
		char path[1024];
		struct stat st;
		snprintf(path, sizeof(path), "%s/fixtures/%s", shared_dir(), fixture);
		if (stat(shared_dir(), &st) != 0) {
			json_decref(all);
			json_decref(docs);
			skip(); /* ../shared absent */
		}
		json_t *fdocs = NULL;
		if (zw_yaml_load_file(path, &fdocs, err, sizeof(err)))
			fail_msg("%s: fixture %s", file, err);
		json_array_extend(all, fdocs);
		json_decref(fdocs);
	}
	json_array_extend(all, json_object_get(r.c, "objects"));
	setup_registry(&r);
	if (json_is_true(json_object_get(r.c, "registry_from_fixture"))) {
		/* The documents' own targets, Upstreams, VirtualDestinations and
		 * Services, as the watches would see them. */
		size_t k;
		json_t *d;
		json_array_foreach(all, k, d)
		{
			if (zw_registry_apply_object(r.reg, d, false, err) < 0)
				fail_msg("%s: registry rejects document %zu: %s", file, k, err);
		}
	}

	size_t i, admitted = 0;
	json_t *obj;
	json_array_foreach(all, i, obj)
	{
		if (!json_is_object(obj) || !json_object_get(obj, "kind"))
			continue;
		run_doc(&r, obj, i);
		admitted++;
	}
	assert_true(admitted > 0);
	/* Every expect entry must have matched a document. */
	json_array_foreach(json_object_get(r.c, "expect"), i, obj)
	{
		bool seen = false;
		size_t j;
		json_t *d;
		json_array_foreach(all, j, d)
		{
			seen = seen || find_expect(r.c, d, j) == obj;
		}
		if (!seen)
			fail_diff(&r, "expect entry matches no document", obj, json_null());
	}
	zw_registry_free(r.reg);
	zw_registry_free(r.empty);
	json_decref(all);
	json_decref(docs);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
	static char *files[MAX_CASES];
	static struct CMUnitTest tests[MAX_CASES];
	size_t n = 0;
	DIR *d = opendir(case_dir());
	if (!d) {
		fprintf(stderr, "test_cases: cannot open %s\n", case_dir());
		return 1;
	}
	struct dirent *de;
	while ((de = readdir(d)) && n < MAX_CASES) {
		size_t len = strlen(de->d_name);
		if (len < 6 || strcmp(de->d_name + len - 5, ".yaml") != 0)
			continue;
		char path[1024];
		snprintf(path, sizeof(path), "%s/%s", case_dir(), de->d_name);
		files[n++] = strdup(path);
	}
	closedir(d);
	qsort(files, n, sizeof(files[0]), by_name);
	for (size_t i = 0; i < n; i++) {
		tests[i].name = files[i];
		tests[i].test_func = run_case;
		tests[i].initial_state = files[i];
	}
	int rc = _cmocka_run_group_tests("cases", tests, n, NULL, NULL);
	for (size_t i = 0; i < n; i++)
		free(files[i]);
	return rc;
}
