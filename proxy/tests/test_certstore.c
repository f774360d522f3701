/* Unit tests for proxy/certstore.c: loading PEM pairs, names from the SAN,
 * exact and one-level wildcard lookups, the default, replacement and
 * removal, and lookups on reader threads while a writer replaces entries. */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "tls_helpers.h"

#include "base64.h"
#include "buf.h"

#include <stdlib.h>
#include <unistd.h>

static const char *lookup_source(struct zw_certstore *s, const char *sni)
{
	static char out[128];
	struct zw_cert *c = zw_certstore_lookup(s, sni);
	if (!c)
		return "(none)";
	snprintf(out, sizeof(out), "%s", zw_cert_source(c));
	zw_cert_unref(c);
	return out;
}

static void test_load_names_expiry(void **state)
{
	(void)state;
	const char *names[] = {"Api.Example.COM.", "*.apps.example.com", "*.com", "f*.example.com",
	                       "api.example.com"};
	struct zw_cert *c = make_cert(names, 5, "ns/a");
	assert_non_null(c);
	size_t n;
	const char *const *v = zw_cert_names(c, &n);
	/* lower-cased, trailing dot gone, duplicates, "*.com" and partial
	 * wildcards dropped */
	assert_int_equal(n, 2);
	assert_string_equal(v[0], "api.example.com");
	assert_string_equal(v[1], "*.apps.example.com");
	assert_string_equal(zw_cert_source(c), "ns/a");
	time_t now = time(NULL);
	assert_true(zw_cert_not_after(c) > now + 29 * 86400);
	assert_true(zw_cert_not_after(c) < now + 31 * 86400);
	assert_non_null(zw_cert_credentials(c));
	zw_cert_unref(c);
}

static void test_load_errors(void **state)
{
	(void)state;
	struct zw_cert_request req = {.dns = (const char *[]){"a.example"}, .n_dns = 1};
	struct zw_cert_bundle b1 = {0}, b2 = {0};
	char e[ZW_CERT_ERRLEN], err[ZW_CERTSTORE_ERRLEN];
	struct zw_cert *c = NULL;
	assert_int_equal(zw_cert_generate(&req, &b1, e), 0);
	assert_int_equal(zw_cert_generate(&req, &b2, e), 0);
	/* key of another pair */
	assert_int_equal(
	        zw_cert_load(b1.cert, strlen(b1.cert), b2.key, strlen(b2.key), "x", &c, err), -1);
	assert_null(c);
	assert_non_null(strstr(err, "certificate and key"));
	/* not PEM */
	assert_int_equal(zw_cert_load("junk", 4, b1.key, strlen(b1.key), "x", &c, err), -1);
	assert_int_equal(zw_cert_load(b1.cert, 0, b1.key, strlen(b1.key), "x", &c, err), -1);
	/* the CA's pair works too: a certificate with only a CN */
	assert_int_equal(
	        zw_cert_load(b1.cert, strlen(b1.cert), b1.key, strlen(b1.key), "x", &c, err), 0);
	zw_cert_unref(c);
	zw_cert_bundle_free(&b1);
	zw_cert_bundle_free(&b2);
}

static void test_norm_name(void **state)
{
	(void)state;
	char out[256];
	assert_int_equal(zw_certstore_norm_name("WWW.Example.org.", out), 0);
	assert_string_equal(out, "www.example.org");
	assert_int_equal(zw_certstore_norm_name("*.example.org", out), 0);
	assert_int_equal(zw_certstore_norm_name("a.*.org", out), -1);
	assert_int_equal(zw_certstore_norm_name("", out), -1);
	assert_int_equal(zw_certstore_norm_name(".", out), -1);
	assert_int_equal(zw_certstore_norm_name("a b", out), -1);
	assert_int_equal(zw_certstore_norm_name(NULL, out), -1);
	char big[300];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(zw_certstore_norm_name(big, out), -1);
}

static void test_wildcard_rules(void **state)
{
	(void)state;
	struct zw_certstore *s;
	assert_int_equal(zw_certstore_new(&s), 0);
	struct zw_cert *w = make_cert1("*.example.com", "ns/wild");
	struct zw_cert *x = make_cert1("exact.example.com", "ns/exact");
	assert_non_null(w);
	assert_non_null(x);
	assert_int_equal(zw_certstore_put(s, "ns/wild", w, 0), 0);
	assert_int_equal(zw_certstore_put(s, "ns/exact", x, 0), 0);

	assert_string_equal(lookup_source(s, "a.example.com"), "ns/wild");
	assert_string_equal(lookup_source(s, "A.EXAMPLE.COM."), "ns/wild");
	assert_string_equal(lookup_source(s, "exact.example.com"), "ns/exact"); /* exact wins */
	assert_string_equal(lookup_source(s, "example.com"), "(none)");         /* not the apex */
	assert_string_equal(lookup_source(s, "a.b.example.com"), "(none)");     /* one level */
	assert_string_equal(lookup_source(s, "*.example.com"), "(none)");       /* not a name */
	assert_string_equal(lookup_source(s, "aexample.com"), "(none)");
	assert_string_equal(lookup_source(s, NULL), "(none)");
	assert_string_equal(lookup_source(s, ""), "(none)");

	zw_cert_unref(w);
	zw_cert_unref(x);
	zw_certstore_free(s);
}

static void test_default_replace_remove(void **state)
{
	(void)state;
	struct zw_certstore *s;
	assert_int_equal(zw_certstore_new(&s), 0);
	struct zw_cert *d = make_cert1("default.example", "ns/default");
	struct zw_cert *a1 = make_cert1("a.example", "ns/a");
	struct zw_cert *a2 = make_cert1("a.example", "ns/a");
	struct zw_cert *b = make_cert1("a.example", "ns/b");
	assert_non_null(d);
	assert_non_null(a1);
	assert_non_null(a2);
	assert_non_null(b);

	assert_string_equal(lookup_source(s, "a.example"), "(none)");
	assert_int_equal(zw_certstore_put(s, "ns/default", d, ZW_CERTSTORE_DEFAULT), 0);
	assert_string_equal(lookup_source(s, "a.example"), "ns/default");
	assert_string_equal(lookup_source(s, "default.example"), "ns/default");
	assert_string_equal(lookup_source(s, NULL), "ns/default");

	/* entries before the default in key order keep the default right */
	assert_int_equal(zw_certstore_put(s, "ns/a", a1, 0), 0);
	assert_string_equal(lookup_source(s, "unknown.example"), "ns/default");
	struct zw_cert *got = zw_certstore_lookup(s, "a.example");
	assert_ptr_equal(got, a1);

	/* replacement: the next lookup gets a2, the held reference stays a1 */
	assert_int_equal(zw_certstore_put(s, "ns/a", a2, 0), 0);
	zw_cert_unref(a1); /* only `got` holds a1 now */
	struct zw_cert *got2 = zw_certstore_lookup(s, "a.example");
	assert_ptr_equal(got2, a2);
	assert_non_null(zw_cert_credentials(got)); /* still valid (ASan) */
	zw_cert_unref(got);
	zw_cert_unref(got2);

	/* two sources for one name: the smaller key wins, whatever the order */
	assert_int_equal(zw_certstore_put(s, "ns/b", b, 0), 0);
	assert_string_equal(lookup_source(s, "a.example"), "ns/a");
	assert_true(zw_certstore_remove(s, "ns/a"));
	assert_false(zw_certstore_remove(s, "ns/a"));
	assert_string_equal(lookup_source(s, "a.example"), "ns/b");
	assert_string_equal(lookup_source(s, "zzz"), "ns/default");

	/* re-put without the flag: no longer the default */
	assert_int_equal(zw_certstore_put(s, "ns/default", d, 0), 0);
	assert_string_equal(lookup_source(s, "zzz"), "(none)");
	assert_string_equal(lookup_source(s, "default.example"), "ns/default");
	/* a default that is removed leaves none */
	assert_int_equal(zw_certstore_put(s, "ns/b", b, ZW_CERTSTORE_DEFAULT), 0);
	assert_string_equal(lookup_source(s, "zzz"), "ns/b");
	assert_true(zw_certstore_remove(s, "ns/default")); /* before it: index shifts */
	assert_string_equal(lookup_source(s, "zzz"), "ns/b");
	assert_true(zw_certstore_remove(s, "ns/b"));
	assert_string_equal(lookup_source(s, "zzz"), "(none)");
	assert_string_equal(lookup_source(s, "a.example"), "(none)");

	zw_cert_unref(d);
	zw_cert_unref(a2);
	zw_cert_unref(b);
	zw_certstore_free(s);
}

struct counter {
	size_t n;
	int defaults;
	char keys[256];
};

static void count_entry(void *arg, const struct zw_certstore_entry *e)
{
	struct counter *c = arg;
	c->n++;
	c->defaults += e->is_default;
	strncat(c->keys, e->key, sizeof(c->keys) - strlen(c->keys) - 2);
	strncat(c->keys, ",", sizeof(c->keys) - strlen(c->keys) - 1);
}

static void test_each(void **state)
{
	(void)state;
	struct zw_certstore *s;
	assert_int_equal(zw_certstore_new(&s), 0);
	struct zw_cert *c = make_cert1("a.example", "src");
	assert_non_null(c);
	assert_int_equal(zw_certstore_put(s, "z/z", c, 0), 0);
	assert_int_equal(zw_certstore_put(s, "a/a", c, ZW_CERTSTORE_DEFAULT), 0);
	assert_int_equal(zw_certstore_put(s, "m/m", c, 0), 0);
	struct counter cnt = {0};
	assert_int_equal(zw_certstore_each(s, count_entry, &cnt), 3);
	assert_int_equal(cnt.n, 3);
	assert_int_equal(cnt.defaults, 1);
	assert_string_equal(cnt.keys, "a/a,m/m,z/z,");
	zw_cert_unref(c);
	zw_certstore_free(s);
}

/* A Secret JSON object with the given type and base64 of crt/key (NULL:
 * field left out). */
static json_t *secret_json(const char *type, const char *crt, const char *key)
{
	json_t *data = json_object();
	if (crt) {
		char *b = zw_base64_encode(crt, strlen(crt));
		json_object_set_new(data, "tls.crt", json_string(b));
		free(b);
	}
	if (key) {
		char *b = zw_base64_encode(key, strlen(key));
		json_object_set_new(data, "tls.key", json_string(b));
		free(b);
	}
	return json_pack("{s:s, s:o}", "type", type, "data", data);
}

static void test_apply_secret(void **state)
{
	(void)state;
	struct zw_certstore *s;
	struct zw_cert_request req = {.dns = (const char *[]){"s.example", "*.w.example"},
	                              .n_dns = 2};
	struct zw_cert_bundle b = {0}, b2 = {0};
	char e[ZW_CERT_ERRLEN], err[ZW_CERTSTORE_ERRLEN];
	assert_int_equal(zw_cert_generate(&req, &b, e), 0);
	assert_int_equal(zw_cert_generate(&req, &b2, e), 0);
	assert_int_equal(zw_certstore_new(&s), 0);

	json_t *ok = secret_json("kubernetes.io/tls", b.cert, b.key);
	assert_int_equal(zw_certstore_apply_secret(s, "ns/s", ok, false, 0, err), 0);
	assert_string_equal(lookup_source(s, "s.example"), "ns/s");
	assert_string_equal(lookup_source(s, "x.w.example"), "ns/s");
	assert_string_equal(lookup_source(s, "other"), "(none)");

	/* broken updates keep the previous certificate */
	json_t *opaque = secret_json("Opaque", b.cert, b.key);
	json_t *nokey = secret_json("kubernetes.io/tls", b.cert, NULL);
	json_t *mismatch = secret_json("kubernetes.io/tls", b.cert, b2.key);
	json_t *notb64 = json_pack("{s:s, s:{s:s, s:s}}", "type", "kubernetes.io/tls", "data",
	                           "tls.crt", "!!!", "tls.key", "!!!");
	assert_int_equal(zw_certstore_apply_secret(s, "ns/s", opaque, false, 0, err), -1);
	assert_non_null(strstr(err, "kubernetes.io/tls"));
	assert_int_equal(zw_certstore_apply_secret(s, "ns/s", nokey, false, 0, err), -1);
	assert_non_null(strstr(err, "tls.key"));
	assert_int_equal(zw_certstore_apply_secret(s, "ns/s", mismatch, false, 0, err), -1);
	assert_int_equal(zw_certstore_apply_secret(s, "ns/s", notb64, false, 0, err), -1);
	assert_non_null(strstr(err, "base64"));
	assert_int_equal(zw_certstore_apply_secret(s, "ns/s", NULL, false, 0, err), -1);
	assert_string_equal(lookup_source(s, "s.example"), "ns/s");

	/* as the default */
	assert_int_equal(zw_certstore_apply_secret(s, "ns/s", ok, false, ZW_CERTSTORE_DEFAULT, err),
	                 0);
	assert_string_equal(lookup_source(s, "other"), "ns/s");
	/* deleted */
	assert_int_equal(zw_certstore_apply_secret(s, "ns/s", ok, true, 0, err), 0);
	assert_string_equal(lookup_source(s, "s.example"), "(none)");

	json_decref(ok);
	json_decref(opaque);
	json_decref(nokey);
	json_decref(mismatch);
	json_decref(notb64);
	zw_cert_bundle_free(&b);
	zw_cert_bundle_free(&b2);
	zw_certstore_free(s);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	fclose(f);
}

static void test_files_and_prometheus(void **state)
{
	(void)state;
	struct zw_certstore *s;
	struct zw_cert_request req = {
	        .dns = (const char *[]){"f.example"}, .n_dns = 1, .cert_days = 7};
	struct zw_cert_bundle b = {0};
	char e[ZW_CERT_ERRLEN], err[ZW_CERTSTORE_ERRLEN];
	char dir[] = "/tmp/zw_certstore_XXXXXX", crt[64], key[64];
	assert_non_null(mkdtemp(dir));
	snprintf(crt, sizeof(crt), "%s/tls.crt", dir);
	snprintf(key, sizeof(key), "%s/tls.key", dir);
	assert_int_equal(zw_cert_generate(&req, &b, e), 0);
	write_file(crt, b.cert);
	write_file(key, b.key);
	assert_int_equal(zw_certstore_new(&s), 0);

	assert_int_equal(zw_certstore_load_files(s, "file", "/nonexistent", key, 0, err), -1);
	assert_non_null(strstr(err, "/nonexistent"));
	assert_int_equal(zw_certstore_load_files(s, "file", crt, "/nonexistent", 0, err), -1);
	assert_non_null(strstr(err, "/nonexistent"));
	assert_int_equal(zw_certstore_load_files(s, "file", crt, key, ZW_CERTSTORE_DEFAULT, err),
	                 0);
	assert_string_equal(lookup_source(s, NULL), "file");

	struct zw_cert *c = zw_certstore_lookup(s, "f.example");
	assert_non_null(c);
	char want[256];
	snprintf(want, sizeof(want),
	         "zerowire_tls_certificate_expiry_timestamp_seconds{source=\"file\","
	         "default=\"true\",names=\"f.example\"} %lld\n",
	         (long long)zw_cert_not_after(c));
	zw_cert_unref(c);
	struct zw_buf out = {0};
	assert_int_equal(zw_certstore_prometheus(s, &out, 1 << 20), 0);
	assert_non_null(strstr(out.data, "# TYPE zerowire_tls_certificates gauge\n"
	                                 "zerowire_tls_certificates 1\n"));
	assert_non_null(strstr(out.data, want));
	size_t full = out.len;
	zw_buf_free(&out);
	/* a limit too small fails instead of cutting a line */
	assert_int_equal(zw_certstore_prometheus(s, &out, full - 1), -1);
	zw_buf_free(&out);

	unlink(crt);
	unlink(key);
	rmdir(dir);
	zw_cert_bundle_free(&b);
	zw_certstore_free(s);
}

/* Readers look names up while the writer replaces and removes entries. */
struct race {
	struct zw_certstore *s;
	struct zw_cert *certs[4]; /* for "a.example" .. alternate versions */
	atomic_int stop;
	atomic_long hits, misses;
};

static void *reader(void *arg)
{
	struct race *r = arg;
	while (!atomic_load(&r->stop)) {
		struct zw_cert *c = zw_certstore_lookup(r->s, "x.race.example");
		if (!c) {
			atomic_fetch_add(&r->misses, 1);
			continue;
		}
		size_t n;
		const char *const *names = zw_cert_names(c, &n);
		assert_int_equal(n, 1);
		assert_string_equal(names[0], "*.race.example");
		atomic_fetch_add(&r->hits, 1);
		zw_cert_unref(c);
	}
	return NULL;
}

static void test_concurrent(void **state)
{
	(void)state;
	struct race r = {0};
	pthread_t th[3];
	assert_int_equal(zw_certstore_new(&r.s), 0);
	for (int i = 0; i < 4; i++) {
		r.certs[i] = make_cert1("*.race.example", "race");
		assert_non_null(r.certs[i]);
	}
	assert_int_equal(zw_certstore_put(r.s, "ns/first", r.certs[0], 0), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&th[i], NULL, reader, &r), 0);
	while (atomic_load(&r.hits) < 3) /* the readers run */
		sched_yield();
	assert_true(zw_certstore_remove(r.s, "ns/first"));
	for (int i = 0; i < 2000; i++) {
		char key[32];
		snprintf(key, sizeof(key), "ns/s%d", i % 7);
		assert_int_equal(zw_certstore_put(r.s, key, r.certs[i % 4], 0), 0);
		if (i % 5 == 4)
			zw_certstore_remove(r.s, key);
	}
	atomic_store(&r.stop, 1);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	assert_true(atomic_load(&r.hits) > 0);
	zw_certstore_free(r.s);
	for (int i = 0; i < 4; i++)
		zw_cert_unref(r.certs[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_load_names_expiry),
	        cmocka_unit_test(test_load_errors),
	        cmocka_unit_test(test_norm_name),
	        cmocka_unit_test(test_wildcard_rules),
	        cmocka_unit_test(test_default_replace_remove),
	        cmocka_unit_test(test_each),
	        cmocka_unit_test(test_apply_secret),
	        cmocka_unit_test(test_files_and_prometheus),
	        cmocka_unit_test(test_concurrent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
