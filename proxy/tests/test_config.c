/* Unit tests for proxy/config.c: defaults, flag forms, and clear errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "config.h"

static int parse(struct zw_proxy_config *cfg, char *msg, size_t len, int argc, ...)
{
	char *argv[32];
	va_list ap;
	va_start(ap, argc);
	argv[0] = "zerowire-proxy";
	for (int i = 1; i < argc; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	zw_proxy_config_defaults(cfg);
	return zw_proxy_config_parse(cfg, argc, argv, msg, len);
}

static void test_defaults(void **state)
{
	(void)state;
	struct zw_proxy_config c;
	char msg[512];
	assert_int_equal(parse(&c, msg, sizeof(msg), 1), 0);
	assert_string_equal(c.listen, "0.0.0.0:8080");
	assert_string_equal(c.admin_listen, "0.0.0.0:9091");
	assert_string_equal(c.scaler_listen, "0.0.0.0:9090");
	assert_int_equal(c.max_header_bytes, 65536);
	assert_int_equal(c.max_headers, 100);
	assert_int_equal(c.max_request_line, 8192);
	assert_int_equal(c.header_timeout_ms, 10000);
	assert_int_equal(c.idle_timeout_ms, 60000);
	assert_int_equal(c.max_connections, 10000);
	assert_int_equal(c.connect_timeout_ms, 500);
	assert_int_equal(c.connect_retry_interval_ms, 50);
	assert_int_equal(c.response_header_timeout_ms, 300000);
	assert_int_equal(c.readiness_timeout_ms, 300000);
	assert_int_equal(c.max_held, 1000);
	assert_int_equal(c.shutdown_delay_ms, 5000);
	assert_int_equal(c.drain_timeout_ms, 30000);
	assert_true(c.workers >= 1 && c.workers <= 64);
	assert_null(c.peer_listen);
	assert_null(c.peer_token_file);
	assert_int_equal(c.peer_token_grace_ms, 120000);
}

static void test_peer_flags(void **state)
{
	(void)state;
	struct zw_proxy_config c;
	char msg[512];
	assert_int_equal(parse(&c, msg, sizeof(msg), 7, "--peer-listen", "0.0.0.0:9092",
	                       "--peer-token-file", "/run/token", "--peer-token-grace", "0s"),
	                 0);
	assert_string_equal(c.peer_listen, "0.0.0.0:9092");
	assert_string_equal(c.peer_token_file, "/run/token");
	assert_int_equal(c.peer_token_grace_ms, 0);
	assert_int_equal(parse(&c, msg, sizeof(msg), 3, "--peer-listen", "nowhere"), -1);
	assert_non_null(strstr(msg, "--peer-listen"));
	assert_int_equal(parse(&c, msg, sizeof(msg), 3, "--peer-token-file", ""), -1);
	assert_int_equal(parse(&c, msg, sizeof(msg), 3, "--peer-token-grace", "2d"), -1);
}

static void test_flags(void **state)
{
	(void)state;
	struct zw_proxy_config c;
	char msg[512];
	char ns[] = "a,b";
	assert_int_equal(parse(&c, msg, sizeof(msg), 16, "--listen", "127.0.0.1:1234",
	                       "--header-timeout=2s", "--max-held", "7", "--namespace", ns,
	                       "--namespace=c", "--static-endpoint", "default/app:80=127.0.0.1:1",
	                       "--readiness-timeout", "1m30s", "--workers=3", "--connect-timeout",
	                       "250ms"),
	                 0);
	assert_string_equal(c.listen, "127.0.0.1:1234");
	assert_int_equal(c.header_timeout_ms, 2000);
	assert_int_equal(c.max_held, 7);
	assert_int_equal(c.n_namespaces, 3);
	assert_string_equal(c.namespaces[0], "a");
	assert_string_equal(c.namespaces[1], "b");
	assert_string_equal(c.namespaces[2], "c");
	assert_int_equal(c.n_static_endpoints, 1);
	assert_int_equal(c.readiness_timeout_ms, 90000);
	assert_int_equal(c.workers, 3);
	assert_int_equal(c.connect_timeout_ms, 250);
}

static void test_errors(void **state)
{
	(void)state;
	struct zw_proxy_config c;
	char msg[4096];
	assert_int_equal(parse(&c, msg, sizeof(msg), 2, "--bogus"), -1);
	assert_non_null(strstr(msg, "unknown flag --bogus"));
	assert_int_equal(parse(&c, msg, sizeof(msg), 2, "--max-held"), -1);
	assert_non_null(strstr(msg, "needs a value"));
	assert_int_equal(parse(&c, msg, sizeof(msg), 3, "--max-held", "0"), -1);
	assert_non_null(strstr(msg, "--max-held"));
	assert_int_equal(parse(&c, msg, sizeof(msg), 3, "--max-held", "-3"), -1);
	assert_int_equal(parse(&c, msg, sizeof(msg), 3, "--header-timeout", "soon"), -1);
	assert_non_null(strstr(msg, "is not a duration"));
	assert_int_equal(parse(&c, msg, sizeof(msg), 3, "--listen", "localhost"), -1);
	assert_non_null(strstr(msg, "is not host:port"));
	assert_int_equal(parse(&c, msg, sizeof(msg), 3, "--workers", "65"), -1);
	assert_int_equal(parse(&c, msg, sizeof(msg), 2, "--help"), 1);
	assert_non_null(strstr(msg, "--max-header-bytes"));
	assert_int_equal(parse(&c, msg, sizeof(msg), 2, "--version"), 1);
	assert_non_null(strstr(msg, "zerowire-proxy"));
}

static void test_chart_flags(void **state)
{
	(void)state;
	struct zw_proxy_config c;
	char msg[512];
	char ns[] = "a,b", peers[] = "10.0.0.1:9091,10.0.0.2";
	assert_int_equal(parse(&c, msg, sizeof(msg), 10, "--watch-namespaces", ns,
	                       "--max-pending=5", "--peers-service", "zw/peers",
	                       "--stream-heartbeat", "250ms", "--peers", peers),
	                 0);
	assert_int_equal(c.n_namespaces, 2);
	assert_int_equal(c.max_held, 5);
	assert_int_equal(c.stream_heartbeat_ms, 250);
	assert_int_equal(c.n_peers, 2);
	assert_string_equal(c.peers[1], "10.0.0.2");
	struct zw_peer_service ps;
	assert_int_equal(zw_parse_peer_service("zw/peers", &ps), 0);
	assert_string_equal(ps.ns, "zw");
	assert_string_equal(ps.svc, "peers");
	assert_int_equal(ps.port, 0);
	assert_string_equal(ps.port_name, "admin");
	assert_int_equal(zw_parse_peer_service("zw/peers:9091", &ps), 0);
	assert_int_equal(ps.port, 9091);
	assert_int_equal(zw_parse_peer_service("peers", &ps), -1);
	assert_int_equal(zw_parse_peer_service("zw/", &ps), -1);
	assert_int_equal(zw_parse_peer_service("zw/p:0", &ps), -1);
	assert_int_equal(parse(&c, msg, sizeof(msg), 3, "--peers-service", "nope"), -1);
	assert_non_null(strstr(msg, "NS/SVC"));
}

static void test_addr(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	assert_int_equal(zw_parse_addr("127.0.0.1:8080", &ss), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 8080);
	assert_int_equal(zw_parse_addr("[::1]:9", &ss), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(zw_parse_addr(":80", &ss), 0);
	assert_int_equal(zw_parse_addr("1.2.3.4:70000", &ss), -1);
	assert_int_equal(zw_parse_addr("host:80", &ss), -1);
	assert_int_equal(zw_parse_addr("[::1]80", &ss), -1);
}

static void put(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* --workers default: the cgroup CPU quota (v2 cpu.max, v1 cfs quota/period),
 * rounded up, at least 1, at most the online CPUs. */
static void test_cgroup_cpus(void **state)
{
	(void)state;
	char root[] = "/tmp/zw-cgroup-XXXXXX", v1[600];

	assert_non_null(mkdtemp(root));
	assert_int_equal(zw_proxy_cgroup_cpus(root, 8), 8); /* nothing there */
	assert_int_equal(zw_proxy_cgroup_cpus("/nonexistent/zw", 0), 1);
	put(root, "cpu.max", "max 100000\n");
	assert_int_equal(zw_proxy_cgroup_cpus(root, 8), 8); /* no limit */
	put(root, "cpu.max", "150000 100000\n");
	assert_int_equal(zw_proxy_cgroup_cpus(root, 8), 2); /* 1.5 -> 2 */
	put(root, "cpu.max", "10000 100000\n");
	assert_int_equal(zw_proxy_cgroup_cpus(root, 8), 1); /* 0.1 -> 1 */
	put(root, "cpu.max", "1600000 100000\n");
	assert_int_equal(zw_proxy_cgroup_cpus(root, 4), 4); /* capped by online */
	put(root, "cpu.max", "garbage\n");
	assert_int_equal(zw_proxy_cgroup_cpus(root, 3), 3);
	remove(strcat(strcpy(v1, root), "/cpu.max"));

	/* cgroup v1, under cpu,cpuacct/ */
	snprintf(v1, sizeof(v1), "%s/cpu,cpuacct", root);
	assert_int_equal(mkdir(v1, 0700), 0);
	put(v1, "cpu.cfs_quota_us", "-1\n");
	put(v1, "cpu.cfs_period_us", "100000\n");
	assert_int_equal(zw_proxy_cgroup_cpus(root, 6), 6);
	put(v1, "cpu.cfs_quota_us", "250000\n");
	assert_int_equal(zw_proxy_cgroup_cpus(root, 6), 3); /* 2.5 -> 3 */
	put(v1, "cpu.cfs_period_us", "0\n");
	assert_int_equal(zw_proxy_cgroup_cpus(root, 6), 6);
	char path[700];
	snprintf(path, sizeof(path), "%s/cpu.cfs_quota_us", v1);
	remove(path);
	snprintf(path, sizeof(path), "%s/cpu.cfs_period_us", v1);
	remove(path);
	rmdir(v1);
	rmdir(root);
}

/* TLS to backends: the verification flags, their default, the contradiction. */
static void test_upstream_tls_flags(void **state)
{
	(void)state;
	struct zw_proxy_config c;
	char msg[4096];
	assert_int_equal(parse(&c, msg, sizeof(msg), 1), 0);
	assert_null(c.upstream_ca_file);
	assert_string_equal(c.upstream_tls_verify, "auto");
	assert_int_equal(parse(&c, msg, sizeof(msg), 5, "--upstream-ca-file", "/ca.pem",
	                       "--upstream-tls-verify", "system"),
	                 0);
	assert_string_equal(c.upstream_ca_file, "/ca.pem");
	assert_string_equal(c.upstream_tls_verify, "system");
	assert_int_equal(parse(&c, msg, sizeof(msg), 3, "--upstream-tls-verify", "none"), 0);
	assert_int_equal(parse(&c, msg, sizeof(msg), 3, "--upstream-tls-verify", "yes"), -1);
	assert_int_equal(parse(&c, msg, sizeof(msg), 5, "--upstream-ca-file", "/ca.pem",
	                       "--upstream-tls-verify", "none"),
	                 -1);
	assert_non_null(strstr(msg, "contradict"));
}

static void test_tls_flags(void **state)
{
	(void)state;
	struct zw_proxy_config c;
	char msg[4096];
	char list[] = "ns/a,ns/b.example";
	assert_int_equal(parse(&c, msg, sizeof(msg), 9, "--tls-listen", "0.0.0.0:8443",
	                       "--tls-secret", list, "--tls-secret", "other/c",
	                       "--tls-default-secret", "ns/default"),
	                 0);
	assert_string_equal(c.tls_listen, "0.0.0.0:8443");
	assert_int_equal(c.n_tls_secrets, 3);
	assert_string_equal(c.tls_secrets[0], "ns/a");
	assert_string_equal(c.tls_secrets[1], "ns/b.example");
	assert_string_equal(c.tls_secrets[2], "other/c");
	assert_string_equal(c.tls_default_secret, "ns/default");
	assert_int_equal(parse(&c, msg, sizeof(msg), 7, "--tls-listen", "[::]:8443",
	                       "--tls-cert-file", "/c", "--tls-key-file", "/k"),
	                 0);
	assert_null(c.tls_default_secret);
	assert_int_equal(c.n_tls_secrets, 0);

	static const char *const bad_refs[] = {"noslash", "/name", "ns/",  "ns/a/b",
	                                       "NS/a",    "n.s/a", "ns/A", "ns/a_b"};
	for (size_t i = 0; i < sizeof(bad_refs) / sizeof(bad_refs[0]); i++) {
		char v[64];
		snprintf(v, sizeof(v), "%s", bad_refs[i]);
		assert_int_equal(zw_parse_secret_ref(v), -1);
		assert_int_equal(parse(&c, msg, sizeof(msg), 3, "--tls-default-secret", v), -1);
		assert_non_null(strstr(msg, "NAMESPACE/NAME"));
	}
	assert_int_equal(zw_parse_secret_ref("kube-system/www.example.com-tls"), 0);
	assert_int_equal(parse(&c, msg, sizeof(msg), 3, "--tls-key-file", "/k"), -1);
	assert_non_null(strstr(msg, "go together"));
	assert_int_equal(parse(&c, msg, sizeof(msg), 3, "--tls-listen", "0.0.0.0:8443"), -1);
	assert_non_null(strstr(msg, "needs certificates"));
	assert_int_equal(parse(&c, msg, sizeof(msg), 5, "--tls-listen", "x", "--tls-secret", "a/b"),
	                 -1);
	assert_non_null(strstr(msg, "--tls-listen"));
	assert_int_equal(
	        parse(&c, msg, sizeof(msg), 5, "--targets-file", "/t", "--tls-secret", "a/b"), -1);
	assert_non_null(strstr(msg, "API server"));
	static char help[16384];
	assert_int_equal(parse(&c, help, sizeof(help), 2, "--help"), 1);
	assert_non_null(strstr(help, "--tls-default-secret NS/NAME"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_defaults),
	        cmocka_unit_test(test_flags),
	        cmocka_unit_test(test_errors),
	        cmocka_unit_test(test_addr),
	        cmocka_unit_test(test_chart_flags),
	        cmocka_unit_test(test_peer_flags),
	        cmocka_unit_test(test_cgroup_cpus),
	        cmocka_unit_test(test_tls_flags),
	        cmocka_unit_test(test_upstream_tls_flags),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
