/* Unit tests of the webhook HTTPS server and metrics: a real server on a
 * loopback port, libcurl (GnuTLS) as the client, certificates made with the
 * openssl command into a temporary directory. Run under ASan/UBSan: a bundle
 * freed too early or never freed around a certificate swap fails here. */
#include "whmetrics.h"
#include "whserver.h"

#include <curl/curl.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static char dir[256];

static void sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	assert_int_equal(system(cmd), 0);
}

static void make_cert(const char *name, const char *cn)
{
	sh("cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	   "-keyout %s.key -out %s.crt -days 1 -subj /CN=%s "
	   "-addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1",
	   dir, name, name, cn);
}

struct buf {
	char data[65536];
	size_t len;
};

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
	struct buf *b = ud;
	size_t l = size * n;

	if (b->len + l >= sizeof(b->data))
		l = sizeof(b->data) - 1 - b->len;
	memcpy(b->data + b->len, p, l);
	b->len += l;
	b->data[b->len] = '\0';
	return size * n;
}

/* One request on handle h (kept alive between calls). Returns the status. */
static long req(CURL *h, int port, const char *method, const char *path, const char *body,
                size_t body_len, struct buf *out, char *issuer_cn, size_t cn_len)
{
	char url[128];
	long status = 0;
	struct curl_certinfo *ci = NULL;

	snprintf(url, sizeof(url), "https://127.0.0.1:%d%s", port, path);
	out->len = 0;
	out->data[0] = '\0';
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(h, CURLOPT_CERTINFO, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
	if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)body_len);
	} else {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	}
	assert_int_equal(curl_easy_perform(h), CURLE_OK);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (issuer_cn) {
		issuer_cn[0] = '\0';
		curl_easy_getinfo(h, CURLINFO_CERTINFO, &ci);
		for (int i = 0; ci && i < ci->num_of_certs && i < 1; i++)
			for (struct curl_slist *s = ci->certinfo[i]; !!s; s = s->next)
				if (strncmp(s->data, "Subject:", 8) == 0)
					snprintf(issuer_cn, cn_len, "%s", s->data);
	}
	return status;
}

static int reviews_seen;

static int review_cb(void *arg, const char *body, size_t len, struct zw_review_reply *reply)
{
	(void)arg;
	reviews_seen++;
	if (len >= 4 && memcmp(body, "fail", 4) == 0)
		return -EIO;
	if (asprintf(&reply->body, "{\"echo\":%zu}", len) < 0)
		return -ENOMEM;
	reply->body_len = strlen(reply->body);
	reply->status = 200;
	reply->outcome = ZW_REVIEW_PATCHED;
	reply->rewrites = 2;
	snprintf(reply->kind, sizeof(reply->kind), "ingress");
	return 0;
}

static int ready_flag;

static int ready_cb(void *arg)
{
	(void)arg;
	return ready_flag;
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/zw-test-server.XXXXXX");
	assert_non_null(mkdtemp(dir));
	make_cert("a", "first");
	make_cert("b", "second");
	sh("cd %s && cp a.crt tls.crt && cp a.key tls.key", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	sh("rm -rf %s", dir);
	return 0;
}

static void test_metrics_render(void **state)
{
	struct zw_wh_metrics *m;
	char *text;
	size_t len;
	char kind[32];

	(void)state;
	assert_int_equal(zw_wh_metrics_new(&m), 0);
	zw_wh_metrics_review(m, "ingress", ZW_REVIEW_PATCHED, 0.0003);
	zw_wh_metrics_review(m, "ingress", ZW_REVIEW_PATCHED, 0.002);
	zw_wh_metrics_review(m, "ingress", ZW_REVIEW_UNCHANGED, 2.0);
	zw_wh_metrics_review(m, "bad\"label\n", ZW_REVIEW_INVALID, 0);
	for (int i = 0; i < ZW_WH_METRICS_MAX_KINDS + 5; i++) {
		snprintf(kind, sizeof(kind), "k%d", i);
		zw_wh_metrics_review(m, kind, ZW_REVIEW_UNCHANGED, 0);
	}
	zw_wh_metrics_add(m, ZW_C_REWRITES, 3);
	zw_wh_metrics_set(m, ZW_G_LEADER, 1);
	zw_wh_metrics_gauge_add(m, ZW_G_CONNECTIONS, 2);
	zw_wh_metrics_gauge_add(m, ZW_G_CONNECTIONS, -1);
	assert_int_equal(zw_wh_metrics_get(m, ZW_C_REWRITES), 3);
	assert_int_equal(zw_wh_metrics_render(m, &text, &len), 0);
	assert_int_equal(strlen(text), len);
	assert_non_null(strstr(
	        text, "zerowire_webhook_reviews_total{kind=\"ingress\",outcome=\"patched\"} 2\n"));
	assert_non_null(strstr(
	        text,
	        "zerowire_webhook_reviews_total{kind=\"ingress\",outcome=\"unchanged\"} 1\n"));
	/* Label values are sanitised. */
	assert_non_null(strstr(
	        text, "zerowire_webhook_reviews_total{kind=\"badlabel\",outcome=\"invalid\"} 1\n"));
	/* Kinds beyond the limit are counted as "other". */
	assert_non_null(strstr(
	        text, "zerowire_webhook_reviews_total{kind=\"other\",outcome=\"unchanged\"} 7\n"));
	/* Histogram buckets are cumulative. */
	assert_non_null(strstr(
	        text, "zerowire_webhook_review_duration_seconds_bucket{le=\"0.0005\"} 39\n"));
	assert_non_null(strstr(
	        text, "zerowire_webhook_review_duration_seconds_bucket{le=\"0.0025\"} 40\n"));
	assert_non_null(
	        strstr(text, "zerowire_webhook_review_duration_seconds_bucket{le=\"1\"} 40\n"));
	assert_non_null(
	        strstr(text, "zerowire_webhook_review_duration_seconds_bucket{le=\"+Inf\"} 41\n"));
	assert_non_null(strstr(text, "zerowire_webhook_review_duration_seconds_count 41\n"));
	assert_non_null(strstr(text, "zerowire_webhook_rewrites_total 3\n"));
	assert_non_null(strstr(text, "zerowire_webhook_leader 1\n"));
	assert_non_null(strstr(text, "zerowire_webhook_connections 1\n"));
	assert_string_equal(zw_review_outcome_name(ZW_REVIEW_TOO_LARGE), "too_large");
	assert_string_equal(zw_review_outcome_name(99), "unknown");
	free(text);
	zw_wh_metrics_free(m);
	zw_wh_metrics_free(NULL);
}

static void config(struct zw_wh_server_config *cfg, struct zw_wh_metrics *m, const char *crt,
                   const char *key)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->listen = "127.0.0.1:0";
	cfg->cert_file = crt;
	cfg->key_file = key;
	cfg->max_body = 4096;
	cfg->metrics = m;
	cfg->review = review_cb;
	cfg->ready = ready_cb;
	cfg->reload_interval_ms = 60000; /* the test reloads explicitly */
}

static void test_start_errors(void **state)
{
	struct zw_wh_server_config cfg;
	struct zw_wh_server *s = NULL;
	char err[ZW_WH_SERVER_ERRLEN], crt[300], key[300];

	(void)state;
	snprintf(crt, sizeof(crt), "%s/a.crt", dir);
	snprintf(key, sizeof(key), "%s/b.key", dir);
	config(&cfg, NULL, crt, key);
	assert_int_equal(zw_wh_server_start(&cfg, &s, err), -EINVAL);
	assert_non_null(strstr(err, "does not match"));
	snprintf(key, sizeof(key), "%s/missing.key", dir);
	assert_int_equal(zw_wh_server_start(&cfg, &s, err), -ENOENT);
	assert_non_null(strstr(err, "missing.key"));
	snprintf(key, sizeof(key), "%s/a.key", dir);
	cfg.listen = "127.0.0.1";
	assert_int_equal(zw_wh_server_start(&cfg, &s, err), -EINVAL);
	assert_non_null(strstr(err, "listen"));
	cfg.listen = "[::1:80";
	assert_int_equal(zw_wh_server_start(&cfg, &s, err), -EINVAL);
	cfg.listen = "127.0.0.1:70000";
	assert_int_equal(zw_wh_server_start(&cfg, &s, err), -EINVAL);
	cfg.listen = "127.0.0.1:0";
	cfg.review = NULL;
	assert_int_equal(zw_wh_server_start(&cfg, &s, err), -EINVAL);
	zw_wh_server_stop(NULL);
}

static void test_serve_and_reload(void **state)
{
	struct zw_wh_server_config cfg;
	struct zw_wh_server *s = NULL, *s2 = NULL;
	struct zw_wh_metrics *m;
	char err[ZW_WH_SERVER_ERRLEN], crt[300], key[300], subj[256];
	static char big[8192];
	struct buf out;
	CURL *h, *h2;
	long connects = -1;
	int port;

	(void)state;
	assert_int_equal(zw_wh_metrics_new(&m), 0);
	snprintf(crt, sizeof(crt), "%s/tls.crt", dir);
	snprintf(key, sizeof(key), "%s/tls.key", dir);
	config(&cfg, m, crt, key);
	assert_int_equal(zw_wh_server_start(&cfg, &s, err), 0);
	port = zw_wh_server_port(s);
	assert_true(port > 0);
	/* One server per process. */
	assert_int_equal(zw_wh_server_start(&cfg, &s2, err), -EBUSY);

	h = curl_easy_init();
	assert_int_equal(req(h, port, "GET", "/healthz", NULL, 0, &out, subj, sizeof(subj)), 200);
	assert_string_equal(out.data, "ok\n");
	assert_non_null(strstr(subj, "first"));
	ready_flag = 0;
	assert_int_equal(req(h, port, "GET", "/readyz", NULL, 0, &out, NULL, 0), 503);
	ready_flag = 1;
	assert_int_equal(req(h, port, "GET", "/readyz", NULL, 0, &out, NULL, 0), 200);
	assert_int_equal(req(h, port, "GET", "/other", NULL, 0, &out, NULL, 0), 404);
	assert_int_equal(req(h, port, "GET", "/mutate", NULL, 0, &out, NULL, 0), 405);
	assert_int_equal(req(h, port, "POST", "/mutate", "{\"a\":1}", 7, &out, NULL, 0), 200);
	assert_string_equal(out.data, "{\"echo\":7}");
	assert_int_equal(req(h, port, "POST", "/mutate", "", 0, &out, NULL, 0), 200);
	assert_string_equal(out.data, "{\"echo\":0}");
	assert_int_equal(req(h, port, "POST", "/mutate", "fail", 4, &out, NULL, 0), 500);
	memset(big, 'x', sizeof(big));
	assert_int_equal(req(h, port, "POST", "/mutate", big, 4097, &out, NULL, 0), 413);
	assert_non_null(strstr(out.data, "4096"));
	assert_int_equal(req(h, port, "POST", "/mutate", big, 4096, &out, NULL, 0), 200);
	assert_string_equal(out.data, "{\"echo\":4096}");
	assert_int_equal(zw_wh_metrics_get(m, ZW_C_REWRITES), 6);

	/* Unchanged files: nothing to do. */
	assert_int_equal(zw_wh_server_reload_now(s), 0);
	/* A broken certificate file keeps the old bundle. */
	sh("cd %s && echo garbage > tls.crt", dir);
	assert_true(zw_wh_server_reload_now(s) < 0);
	assert_int_equal(zw_wh_metrics_get(m, ZW_C_CERT_RELOAD_ERRORS), 1);
	assert_int_equal(req(h, port, "GET", "/healthz", NULL, 0, &out, NULL, 0), 200);
	/* A valid new pair is installed; the open connection keeps working. */
	sh("cd %s && cp b.key tls.key.tmp && mv tls.key.tmp tls.key && cp b.crt tls.crt.tmp && "
	   "mv tls.crt.tmp tls.crt",
	   dir);
	assert_int_equal(zw_wh_server_reload_now(s), 1);
	assert_int_equal(zw_wh_metrics_get(m, ZW_C_CERT_RELOADS), 1);
	assert_int_equal(req(h, port, "POST", "/mutate", "{}", 2, &out, NULL, 0), 200);
	curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &connects);
	assert_int_equal(connects, 0); /* reused, not reconnected */
	h2 = curl_easy_init();
	assert_int_equal(req(h2, port, "GET", "/healthz", NULL, 0, &out, subj, sizeof(subj)), 200);
	assert_non_null(strstr(subj, "second"));
	/* Swap again while both connections are open, then close them. */
	sh("cd %s && cp a.key tls.key && cp a.crt tls.crt && touch tls.crt", dir);
	assert_int_equal(zw_wh_server_reload_now(s), 1);
	curl_easy_cleanup(h);
	assert_int_equal(req(h2, port, "GET", "/metrics", NULL, 0, &out, NULL, 0), 200);
	assert_non_null(strstr(out.data, "zerowire_webhook_cert_reloads_total 2\n"));
	assert_non_null(strstr(
	        out.data, "zerowire_webhook_reviews_total{kind=\"ingress\",outcome=\"patched\"}"));
	assert_non_null(strstr(out.data, "zerowire_webhook_reviews_total{kind=\"unknown\","
	                                 "outcome=\"too_large\"} 1\n"));
	curl_easy_cleanup(h2);
	zw_wh_server_stop(s);
	/* A new server may start once the first is gone. */
	assert_int_equal(zw_wh_server_start(&cfg, &s2, err), 0);
	zw_wh_server_stop(s2);
	zw_wh_metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_metrics_render),
	        cmocka_unit_test(test_start_errors),
	        cmocka_unit_test(test_serve_and_reload),
	};

	curl_global_init(CURL_GLOBAL_DEFAULT);
	int rc = cmocka_run_group_tests(tests, setup, teardown);
	curl_global_cleanup();
	return rc;
}
