/* Unit tests for lib/kubeconfig.c: kubeconfig and in-cluster loading. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "base64.h"
#include "kubeconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* base64 of "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n" etc. */
#define PEM_CA   "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n"
#define PEM_CERT "-----BEGIN CERTIFICATE-----\nCLIENT\n-----END CERTIFICATE-----\n"
#define PEM_KEY  "-----BEGIN EC PRIVATE KEY-----\nKEY\n-----END EC PRIVATE KEY-----\n"

static char tmpdir[256];

static char *b64(const char *s)
{
	char *out = zw_base64_encode(s, strlen(s));

	assert_non_null(out);
	return out;
}

static void write_file(const char *name, const char *content, char *path, size_t len)
{
	FILE *f;

	snprintf(path, len, "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/zw-test-kubeconfig-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Loads a kubeconfig from text; returns the rc, config in *cfg, error in err. */
static int load_text(const char *text, const char *context, struct zw_kube_config **cfg, char *err,
                     size_t errlen)
{
	char path[512];

	write_file("config", text, path, sizeof(path));
	err[0] = '\0';
	return zw_kube_config_load_file(path, context, cfg, err, errlen);
}

static char *read_path(const char *path)
{
	static char buf[4096];
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void test_token_and_inline_ca(void **state)
{
	struct zw_kube_config *cfg = NULL;
	char err[512], text[4096], tok[128];
	char *ca = b64(PEM_CA);

	(void)state;
	snprintf(text, sizeof(text),
	         "apiVersion: v1\nkind: Config\ncurrent-context: dev\n"
	         "clusters:\n- name: c1\n  cluster:\n    server: https://127.0.0.1:6443/\n"
	         "    certificate-authority-data: %s\n"
	         "contexts:\n- name: other\n  context: {cluster: c1, user: nobody}\n"
	         "- name: dev\n  context:\n    cluster: c1\n    user: u1\n    namespace: team\n"
	         "users:\n- name: u1\n  user:\n    token: abc.def\n",
	         ca);
	assert_int_equal(load_text(text, NULL, &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg->server, "https://127.0.0.1:6443");
	assert_string_equal(cfg->context, "dev");
	assert_string_equal(cfg->namespace, "team");
	assert_int_equal(cfg->insecure, 0);
	assert_non_null(cfg->ca.data);
	assert_int_equal(cfg->ca.data_len, strlen(PEM_CA));
	assert_memory_equal(cfg->ca.data, PEM_CA, strlen(PEM_CA));
	/* A file-only TLS backend (GnuTLS) reads the CA from a private file. */
	if (cfg->ca.file_path)
		assert_string_equal(read_path(cfg->ca.file_path), PEM_CA);
	assert_null(cfg->cert.data);
	assert_int_equal(zw_kube_config_token(cfg, 0, tok, sizeof(tok)), 0);
	assert_string_equal(tok, "abc.def");
	/* Too small a buffer is an error, not a truncated token. */
	assert_int_equal(zw_kube_config_token(cfg, 0, tok, 4), -1);
	zw_kube_config_free(cfg);
	free(ca);
}

static void test_client_cert_data(void **state)
{
	struct zw_kube_config *cfg = NULL;
	char err[512], text[4096], tok[16];
	char *crt = b64(PEM_CERT), *key = b64(PEM_KEY);

	(void)state;
	snprintf(text, sizeof(text),
	         "current-context: admin\n"
	         "clusters:\n- name: local\n  cluster:\n    server: https://10.0.0.1:443\n"
	         "    insecure-skip-tls-verify: true\n"
	         "contexts:\n- name: admin\n  context: {cluster: local, user: admin}\n"
	         "users:\n- name: admin\n  user:\n    client-certificate-data: %s\n"
	         "    client-key-data: |\n      %.*s\n      %s\n",
	         crt, 20, key, key + 20);
	assert_int_equal(load_text(text, NULL, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg->insecure, 1);
	assert_string_equal(cfg->namespace, "default");
	assert_string_equal(cfg->cert.data, PEM_CERT);
	/* base64 split over lines (a block scalar) decodes as one value */
	assert_string_equal(cfg->key.data, PEM_KEY);
	if (cfg->key.file_path) {
		struct stat st;

		assert_string_equal(read_path(cfg->key.file_path), PEM_KEY);
		assert_int_equal(stat(cfg->key.file_path, &st), 0);
		assert_int_equal(st.st_mode & 077, 0);
	}
	assert_int_equal(zw_kube_config_token(cfg, 0, tok, sizeof(tok)), 0);
	assert_string_equal(tok, "");
	zw_kube_config_free(cfg);
	free(crt);
	free(key);
}

static void test_files_relative_and_token_file(void **state)
{
	struct zw_kube_config *cfg = NULL;
	char err[512], path[512], tok[128];
	const char *text = "current-context: x\n"
	                   "clusters:\n- name: c\n  cluster:\n    server: https://h:1\n"
	                   "    certificate-authority: ca.pem\n"
	                   "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
	                   "users:\n- name: u\n  user:\n    tokenFile: tok\n"
	                   "    client-certificate: sub/c.pem\n    client-key: sub/k.pem\n";

	(void)state;
	write_file("ca.pem", PEM_CA, path, sizeof(path));
	write_file("tok", "first-token\n", path, sizeof(path));
	snprintf(path, sizeof(path), "%s/sub", tmpdir);
	mkdir(path, 0700);
	write_file("sub/c.pem", PEM_CERT, path, sizeof(path));
	write_file("sub/k.pem", PEM_KEY, path, sizeof(path));
	assert_int_equal(load_text(text, NULL, &cfg, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/ca.pem", tmpdir);
	assert_string_equal(cfg->ca.path, path);
	assert_null(cfg->ca.data);
	snprintf(path, sizeof(path), "%s/sub/k.pem", tmpdir);
	assert_string_equal(cfg->key.path, path);
	assert_int_equal(zw_kube_config_token(cfg, 0, tok, sizeof(tok)), 0);
	assert_string_equal(tok, "first-token");
	/* Rotation: the new token shows after the recheck interval or when forced. */
	write_file("tok", "second-token-longer\n", path, sizeof(path));
	assert_int_equal(zw_kube_config_token(cfg, 0, tok, sizeof(tok)), 0);
	assert_string_equal(tok, "first-token");
	assert_int_equal(zw_kube_config_token(cfg, 1, tok, sizeof(tok)), 0);
	assert_string_equal(tok, "second-token-longer");
	zw_kube_config_free(cfg);
}

static void test_in_cluster(void **state)
{
	struct zw_kube_config *cfg = NULL;
	char err[512], path[512], tok[512], sa[300];

	(void)state;
	snprintf(sa, sizeof(sa), "%s/sa", tmpdir);
	mkdir(sa, 0700);
	write_file("sa/token", "sa-token-1", path, sizeof(path));
	write_file("sa/ca.crt", PEM_CA, path, sizeof(path));
	write_file("sa/namespace", "zerowire\n", path, sizeof(path));
	unsetenv("KUBERNETES_SERVICE_HOST");
	assert_int_equal(zw_kube_config_in_cluster(sa, &cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "KUBERNETES_SERVICE_HOST"));
	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
	assert_int_equal(zw_kube_config_in_cluster(sa, &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg->server, "https://[fd00::1]:6443");
	assert_string_equal(cfg->namespace, "zerowire");
	snprintf(path, sizeof(path), "%s/ca.crt", sa);
	assert_string_equal(cfg->ca.path, path);
	assert_int_equal(zw_kube_config_token(cfg, 0, tok, sizeof(tok)), 0);
	assert_string_equal(tok, "sa-token-1");
	/* kubelet rotates by replacing the file */
	write_file("sa/token.new", "sa-token-2", path, sizeof(path));
	snprintf(tok, sizeof(tok), "%s/token", sa);
	assert_int_equal(rename(path, tok), 0);
	assert_int_equal(zw_kube_config_token(cfg, 1, tok, sizeof(tok)), 0);
	assert_string_equal(tok, "sa-token-2");
	zw_kube_config_free(cfg);
	/* no token: an error naming the file */
	snprintf(path, sizeof(path), "%s/token", sa);
	unlink(path);
	assert_int_equal(zw_kube_config_in_cluster(sa, &cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "token"));
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
}

struct bad_case {
	const char *yaml;
	const char *context;
	const char *expect[3]; /* substrings of the error */
};

static void test_errors(void **state)
{
	static const struct bad_case cases[] = {
	        {"current-context: nope\ncontexts:\n- name: a\n  context: {cluster: c}\n",
	         NULL,
	         {"context \"nope\"", "not found", NULL}},
	        {"contexts: []\n", NULL, {"current-context", "not set", NULL}},
	        {"current-context: a\ncontexts:\n- name: a\n  context: {cluster: c, user: u}\n"
	         "clusters:\n- name: c\n  cluster: {server: https://x}\n",
	         NULL,
	         {"user \"u\"", "users", "not found"}},
	        {"current-context: a\ncontexts:\n- name: a\n  context: {cluster: c}\n"
	         "clusters:\n- name: c\n  cluster: {server: 42}\n",
	         NULL,
	         {"cluster \"c\"", "server", "must be a string"}},
	        {"current-context: a\ncontexts:\n- name: a\n  context: {cluster: c}\n"
	         "clusters:\n- name: c\n  cluster: {server: 'ftp://x'}\n",
	         NULL,
	         {"server", "not an http(s) URL", NULL}},
	        {"current-context: a\ncontexts:\n- name: a\n  context: {cluster: c}\n"
	         "clusters:\n- name: c\n  cluster: {server: https://x, "
	         "certificate-authority-data: '!!notbase64'}\n",
	         NULL,
	         {"certificate-authority-data", "invalid base64", NULL}},
	        {"current-context: a\ncontexts:\n- name: a\n  context: {cluster: c}\n"
	         "clusters:\n- name: c\n  cluster: {server: https://x, "
	         "certificate-authority-data: aGVsbG8=}\n",
	         NULL,
	         {"certificate-authority-data", "not PEM", NULL}},
	        {"current-context: a\ncontexts:\n- name: a\n  context: {cluster: c}\n"
	         "clusters:\n- name: c\n  cluster: {server: https://x, "
	         "insecure-skip-tls-verify: 'yes'}\n",
	         NULL,
	         {"insecure-skip-tls-verify", "true or false", NULL}},
	        {"current-context: a\ncontexts:\n- name: a\n  context: {cluster: c, user: u}\n"
	         "clusters:\n- name: c\n  cluster: {server: https://x}\n"
	         "users:\n- name: u\n  user: {exec: {command: aws}}\n",
	         NULL,
	         {"user \"u\"", "exec", "not supported"}},
	        {"current-context: a\ncontexts:\n- name: a\n  context: {cluster: c, user: u}\n"
	         "clusters:\n- name: c\n  cluster: {server: https://x}\n"
	         "users:\n- name: u\n  user: {client-certificate: /etc/hostname}\n",
	         NULL,
	         {"client-key", "needs both", NULL}},
	        {"current-context: a\ncontexts:\n- name: a\n  context: {cluster: c, user: u}\n"
	         "clusters:\n- name: c\n  cluster: {server: https://x}\n"
	         "users:\n- name: u\n  user: {client-key: /nonexistent/k.pem, "
	         "client-certificate: /etc/hostname}\n",
	         NULL,
	         {"client-key", "/nonexistent/k.pem", "No such file"}},
	        {"current-context: a\ncontexts: {a: b}\n",
	         NULL,
	         {"contexts", "must be a list", NULL}},
	        {"current-context: a\ncontexts:\n- name: a\n  context: {cluster: c, user: [1]}\n",
	         NULL,
	         {"context \"a\"", "user", "must be a string"}},
	        {"- just\n- a list\n", NULL, {"top level must be a mapping", NULL, NULL}},
	        {"current-context: a\nclusters: [\n", NULL, {"kubeconfig", "line", NULL}},
	        {"current-context: a\ncontexts:\n- name: a\n  context: {cluster: c}\n"
	         "clusters:\n- name: c\n  cluster: {server: https://x}\n",
	         "other",
	         {"context \"other\"", "not found", NULL}},
	};
	char err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct zw_kube_config *cfg = (void *)1;
		int rc = load_text(cases[i].yaml, cases[i].context, &cfg, err, sizeof(err));

		if (rc != -1)
			fail_msg("case %zu: expected an error", i);
		assert_null(cfg);
		for (int j = 0; j < 3 && cases[i].expect[j]; j++) {
			if (!strstr(err, cases[i].expect[j]))
				fail_msg("case %zu: error \"%s\" lacks \"%s\"", i, err,
				         cases[i].expect[j]);
		}
		assert_non_null(strstr(err, "kubeconfig /tmp/zw-test-kubeconfig-"));
	}
}

static void test_missing_file(void **state)
{
	struct zw_kube_config *cfg;
	char err[512];

	(void)state;
	assert_int_equal(
	        zw_kube_config_load_file("/nonexistent/kubeconfig", NULL, &cfg, err, sizeof(err)),
	        -1);
	assert_non_null(strstr(err, "/nonexistent/kubeconfig"));
}

/* A fake credential plugin: counts its runs in <tmpdir>/runs, prints an
 * ExecCredential of apiVersion $1 with token "tok-<run>-$2-$ZW_ENV" and
 * expirationTimestamp $3 (none when "-"), or a client certificate when $2 is
 * "cert"; exits 3 when $2 is "fail". Checks KUBERNETES_EXEC_INFO. */
static const char PLUGIN[] =
        "#!/bin/sh\n"
        "n=$(cat \"$(dirname \"$0\")/runs\" 2>/dev/null || echo 0); n=$((n+1))\n"
        "echo $n > \"$(dirname \"$0\")/runs\"\n"
        "case \"$KUBERNETES_EXEC_INFO\" in *'\"interactive\":false'*) ;; *) exit 4;; esac\n"
        "[ \"$2\" = fail ] && { echo oops >&2; exit 3; }\n"
        "exp=''; [ \"$3\" != - ] && exp=\",\\\"expirationTimestamp\\\":\\\"$3\\\"\"\n"
        "if [ \"$2\" = cert ]; then\n"
        "  printf '{\"apiVersion\":\"%s\",\"kind\":\"ExecCredential\",\"status\":{"
        "\"clientCertificateData\":\"-----BEGIN CERTIFICATE-----\\\\nC\\\\n-----END "
        "CERTIFICATE-----\\\\n\",\"clientKeyData\":\"-----BEGIN EC PRIVATE KEY-----\\\\nK\\\\n"
        "-----END EC PRIVATE KEY-----\\\\n\"%s}}' \"$1\" \"$exp\"\n"
        "else\n"
        "  printf '{\"apiVersion\":\"%s\",\"kind\":\"ExecCredential\",\"status\":{"
        "\"token\":\"tok-%s-%s-%s\"%s}}' \"$1\" $n \"$2\" \"$ZW_ENV\" \"$exp\"\n"
        "fi\n";

/* A kubeconfig whose user runs ./plugin.sh (relative to it) with args. */
static int load_exec(const char *api, const char *mode, const char *exp,
                     struct zw_kube_config **cfg, char *err, size_t errlen)
{
	char path[512], text[2048];

	write_file("plugin.sh", PLUGIN, path, sizeof(path));
	chmod(path, 0755);
	write_file("runs", "0\n", path, sizeof(path));
	snprintf(text, sizeof(text),
	         "current-context: a\ncontexts:\n- name: a\n  context: {cluster: c, user: u}\n"
	         "clusters:\n- name: c\n  cluster: {server: https://x}\n"
	         "users:\n- name: u\n  user:\n    exec:\n"
	         "      apiVersion: client.authentication.k8s.io/%s\n"
	         "      command: ./plugin.sh\n"
	         "      args: [client.authentication.k8s.io/%s, %s, '%s']\n"
	         "      env: [{name: ZW_ENV, value: e1}]\n",
	         api, api, mode, exp);
	return load_text(text, NULL, cfg, err, errlen);
}

static void test_exec_token_expiry(void **state)
{
	struct zw_kube_config *cfg;
	char err[512], tok[128];

	(void)state;
	/* Expired already: every use runs the plugin again. */
	assert_int_equal(load_exec("v1", "a", "2001-02-03T04:05:06Z", &cfg, err, sizeof(err)), 0);
	assert_int_equal(zw_kube_config_token(cfg, 0, tok, sizeof(tok)), 0);
	assert_string_equal(tok, "tok-2-a-e1");
	assert_int_equal(zw_kube_config_token(cfg, 0, tok, sizeof(tok)), 0);
	assert_string_equal(tok, "tok-3-a-e1");
	zw_kube_config_free(cfg);
	/* Valid for long (offset form): cached until forced (a 401). */
	assert_int_equal(
	        load_exec("v1beta1", "b", "2999-01-01T00:00:00.5+02:00", &cfg, err, sizeof(err)),
	        0);
	assert_int_equal(zw_kube_config_token(cfg, 0, tok, sizeof(tok)), 0);
	assert_string_equal(tok, "tok-1-b-e1");
	assert_int_equal(zw_kube_config_token(cfg, 0, tok, sizeof(tok)), 0);
	assert_string_equal(tok, "tok-1-b-e1");
	assert_int_equal(zw_kube_config_token(cfg, 1, tok, sizeof(tok)), 0);
	assert_string_equal(tok, "tok-2-b-e1");
	zw_kube_config_free(cfg);
	/* No expiry: cached. */
	assert_int_equal(load_exec("v1", "c", "-", &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg->token_expiry, 0);
	assert_int_equal(zw_kube_config_token(cfg, 0, tok, sizeof(tok)), 0);
	assert_string_equal(tok, "tok-1-c-e1");
	zw_kube_config_free(cfg);
}

static void test_exec_cert_and_failures(void **state)
{
	struct zw_kube_config *cfg;
	char err[512];
	long long t;

	(void)state;
	assert_int_equal(load_exec("v1", "cert", "-", &cfg, err, sizeof(err)), 0);
	assert_non_null(strstr(cfg->cert.data, "-----BEGIN CERTIFICATE-----\nC\n"));
	assert_non_null(strstr(cfg->key.data, "PRIVATE KEY"));
	assert_null(cfg->token);
	zw_kube_config_free(cfg);
	/* A plugin that fails fails the load, naming the user and the status. */
	assert_int_equal(load_exec("v1", "fail", "-", &cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "user \"u\""));
	assert_non_null(strstr(err, "exited with status 3"));
	/* v1beta1 too; v1alpha1 is refused; a bad expirationTimestamp too. */
	assert_int_equal(load_exec("v1beta1", "a", "-", &cfg, err, sizeof(err)), 0);
	zw_kube_config_free(cfg);
	assert_int_equal(load_exec("v1alpha1", "a", "-", &cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not supported"));
	assert_int_equal(load_exec("v1", "a", "yesterday", &cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "RFC 3339"));
	assert_int_equal(zw_rfc3339_parse("1970-01-01T01:00:00+01:00", &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(zw_rfc3339_parse("1970-01-01T00:00:10.25Z", &t), 0);
	assert_int_equal(t, 10);
	assert_int_equal(zw_rfc3339_parse("1970-01-01 00:00:10", &t), -1);
}

/* $KUBECONFIG: files merged (first wins), and it comes before in-cluster. */
static void test_kubeconfig_env_merged(void **state)
{
	struct zw_kube_config *cfg;
	char a[512], b[512], list[1400], err[512];

	(void)state;
	snprintf(list, sizeof(list), "%s/sub", tmpdir);
	mkdir(list, 0755);
	write_file("sub/tok", "from-b\n", b, sizeof(b));
	write_file(
	        "a.yaml",
	        "current-context: one\ncontexts:\n- name: one\n  context: {cluster: c, user: u}\n"
	        "clusters:\n- name: c\n  cluster: {server: https://first}\n",
	        a, sizeof(a));
	write_file("sub/b.yaml",
	           "current-context: two\ncontexts:\n- name: one\n  context: {cluster: x}\n"
	           "clusters:\n- name: c\n  cluster: {server: https://second}\n"
	           "users:\n- name: u\n  user: {tokenFile: tok}\n",
	           b, sizeof(b));
	snprintf(list, sizeof(list), "%.255s/missing.yaml:%.511s:%.511s", tmpdir, a, b);
	setenv("KUBECONFIG", list, 1);
	setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
	assert_int_equal(zw_kube_config_auto(NULL, &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg->server, "https://first");
	assert_string_equal(cfg->context, "one");
	assert_string_equal(cfg->token, "from-b"); /* tokenFile relative to b.yaml */
	zw_kube_config_free(cfg);
	setenv("KUBECONFIG", "/nonexistent/a:/nonexistent/b", 1);
	assert_int_equal(zw_kube_config_auto(NULL, &cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no file of $KUBECONFIG"));
	/* The flag comes first. */
	assert_int_equal(zw_kube_config_auto(b, &cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "context \"two\""));
	unsetenv("KUBECONFIG");
	unsetenv("KUBERNETES_SERVICE_HOST");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_token_and_inline_ca),
	        cmocka_unit_test(test_client_cert_data),
	        cmocka_unit_test(test_files_relative_and_token_file),
	        cmocka_unit_test(test_in_cluster),
	        cmocka_unit_test(test_errors),
	        cmocka_unit_test(test_missing_file),
	        cmocka_unit_test(test_exec_token_expiry),
	        cmocka_unit_test(test_exec_cert_and_failures),
	        cmocka_unit_test(test_kubeconfig_env_merged),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
