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
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "yamljson.h"

#define PATHBUF 1024
#define FIELD   512

/* Fields the parser supports beyond this CRD snapshot (KEDA HTTP add-on
 * v0.16; Kedify's HTTPScaledObject header patterns); the API server would
 * prune them with this CRD. */
static const char *const newer_fields[] = {
        "InterceptorRoute spec.coldStart.maxPendingRequests",
        "InterceptorRoute spec.coldStart.overflow",
        "HTTPScaledObject spec.headers[].valueWildcard",
        "HTTPScaledObject spec.headers[].valueRegex",
};

static const char *shared_dir(void)
{
	const char *env = getenv("ZW_SHARED");
	const char *dir = env && *env ? env : "../shared";
	struct stat st;

	return stat(dir, &st) == 0 && S_ISDIR(st.st_mode) ? dir : NULL;
}

static const char *data_dir(void)
{
	static char buf[PATHBUF];
	const char *env = getenv("ZW_TARGET_DATA");
	const char *slash = strrchr(__FILE__, '/');

	if (env && *env)
		return env;
	snprintf(buf, sizeof(buf), "%.*stargets", slash ? (int)(slash - __FILE__ + 1) : 0,
	         __FILE__);
	return buf;
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

static void path_join(char buf[PATHBUF], const char *a, const char *b)
{
	fmt(buf, PATHBUF, "%s/%s", a, b);
}

static json_t *load_yaml(const char *path)
{
	char err[256];
	json_t *docs = NULL;

	if (zw_yaml_load_file(path, &docs, err, sizeof(err)) < 0)
		fail_msg("%s: %s", path, err);
	return docs;
}

static const char *sget(const json_t *o, const char *key)
{
	json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;

	return json_is_string(v) ? json_string_value(v) : NULL;
}

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
		         !(props == NULL && !type) && !newer_field(c->crd, f2))
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

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
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
	        cmocka_unit_test(test_crd_conformance),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
