/* zerowire-proxy flags and defaults (see config.h). */
#include "config.h"

#include "observe.h"
#include "addr.h"
#include "flags.h"

#include "target.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define C struct zw_proxy_config
#define STR(n, f, mv, d, g, h)                                                                  \
	{                                                                                       \
		.name = n, .kind = ZW_FLAG_STRING, ZW_FLAG_DEST(C, f), .metavar = mv, .def = d, \
		.group = g, .help = h, .opts = ZW_FLAG_NONEMPTY                                 \
	}
#define NUM(n, f, lo, hi, d, g, h)                                                        \
	{                                                                                 \
		.name = n, .kind = ZW_FLAG_INT, ZW_FLAG_DEST(C, f), .min = lo, .max = hi, \
		.def = d, .group = g, .help = h                                           \
	}
#define DUR(n, f, lo, hi, d, g, h)                                                             \
	{                                                                                      \
		.name = n, .kind = ZW_FLAG_DURATION, ZW_FLAG_DEST(C, f), .min = lo, .max = hi, \
		.def = d, .group = g, .help = h                                                \
	}
#define LIST(n, f, mv, o, g, h)                                                             \
	{                                                                                   \
		.name = n, .kind = ZW_FLAG_LIST, .off = offsetof(C, f), .metavar = mv,      \
		.list_max = ZW_CONFIG_MAX_LIST, .count_off = offsetof(C, n_##f), .opts = o, \
		.group = g, .help = h                                                       \
	}
#define ENUM(n, f, ch, d, g, h)                                                               \
	{                                                                                     \
		.name = n, .kind = ZW_FLAG_ENUM, ZW_FLAG_DEST(C, f), .choices = ch, .def = d, \
		.group = g, .help = h                                                         \
	}

static const char *const access_formats[] = {"off", "logfmt", "json", NULL};
static const char *const verify_modes[] = {"auto", "none", "system", NULL};
static const struct zw_flag_word concurrency_words[] = {
        {"auto", ZW_ALLOWANCE_AUTO}, {"off", 0}, {NULL, 0}};

static const char G_LISTEN[] = "Listeners", G_SOURCES[] = "Sources", G_PEERS[] = "Replicas",
                  G_CLIENT[] = "Client limits", G_UP[] = "Upstream",
                  G_COLD[] = "Cold start (targets may override)", G_OBS[] = "Observability",
                  G_LIFE[] = "Lifecycle", G_TLS[] = "TLS (docs/tls.md)";

static const struct zw_flag flags[] = {
        STR("listen", listen, "ADDR", "0.0.0.0:8080", G_LISTEN, "proxy listener"),
        STR("admin-listen", admin_listen, "ADDR", "0.0.0.0:9091", G_LISTEN,
            "admin: /healthz /readyz /metrics /queue /status\n"
            "/metrics-api, and /peer/ unless --peer-listen"),
        STR("peer-listen", peer_listen, "ADDR", NULL, G_LISTEN,
            "/peer/ endpoints (and /healthz) on their own\n"
            "listener (default: on the admin listener)"),
        STR("scaler-listen", scaler_listen, "ADDR", "0.0.0.0:9090", G_LISTEN,
            "KEDA external scaler gRPC"),
        NUM("workers", workers, 1, 64, NULL, G_LISTEN,
            "worker threads, one loop each (default: the\n"
            "cgroup CPU quota rounded up, else online CPUs)"),
        STR("kubeconfig", kubeconfig, "PATH", NULL, G_SOURCES,
            "API server access (default: in-cluster)"),
        LIST("namespace", namespaces, "NS[,NS]", 0, G_SOURCES,
             "namespaces to watch (repeatable; default all;\n"
             "alias --watch-namespaces)"),
        LIST("watch-namespaces", namespaces, NULL, 0, NULL, NULL),
        STR("targets-file", targets_file, "PATH", NULL, G_SOURCES,
            "static mode: target objects (YAML/JSON)"),
        STR("endpoints-file", endpoints_file, "PATH", NULL, G_SOURCES,
            "static mode: EndpointSlices (YAML/JSON)"),
        LIST("static-endpoint", static_endpoints, "SPEC", ZW_FLAG_NOSPLIT, G_SOURCES,
             "static mode: ns/svc:port=ip:port[,ip:port]\n(repeatable)"),
        STR("peers-service", peers_service, "NS/SVC[:PORT]", NULL, G_PEERS,
            "headless Service of the proxy replicas (admin\n"
            "port number or name, default admin); its\n"
            "EndpointSlices are watched even when --namespace\n"
            "leaves NS out"),
        LIST("peers", peers, "ADDR[,ADDR]", 0, G_PEERS, "fixed peer admin addresses instead"),
        STR("peer-token-file", peer_token_file, "PATH", NULL, G_PEERS,
            "bearer token peers send and /peer/ requires,\n"
            "re-read when the file changes (without it\n"
            "/peer/ answers 401/403 to everything)"),
        DUR("peer-token-grace", peer_token_grace_ms, 0, 86400000, "2m", G_PEERS,
            "old token still accepted after a change (0: not)"),
        DUR("stream-heartbeat", stream_heartbeat_ms, 1, 3600000, NULL, G_PEERS,
            "StreamIsActive heartbeat\n(default: the scaler's, 1s)"),
        NUM("max-header-bytes", max_header_bytes, 1024, 16 << 20, "65536", G_CLIENT,
            "request head size -> 431"),
        NUM("max-headers", max_headers, 1, 10000, "100", G_CLIENT, "header fields -> 431"),
        NUM("max-request-line", max_request_line, 64, 1 << 20, "8192", G_CLIENT,
            "request-target length -> 414"),
        DUR("header-timeout", header_timeout_ms, 1, 3600000, "10s", G_CLIENT,
            "time to receive a request head (and to\n"
            "finish a TLS handshake)"),
        DUR("idle-timeout", idle_timeout_ms, 1, 86400000, "60s", G_CLIENT,
            "idle keep-alive connection"),
        NUM("max-connections", max_connections, 1, 1000000, "10000", G_CLIENT,
            "client connections (per process)"),
        DUR("body-timeout", body_timeout_ms, 0, 86400000, "60s", G_CLIENT,
            "no byte of a request body moving for this long\n"
            "before the response head: 408 (0: off)"),
        DUR("connect-timeout", connect_timeout_ms, 1, 600000, "500ms", G_UP, "per connect attempt"),
        DUR("connect-retry-interval", connect_retry_interval_ms, 1, 60000, "50ms", G_UP,
            "pause between attempts"),
        DUR("connect-retry-budget", connect_retry_budget_ms, 0, 3600000, "5s", G_UP,
            "total time for attempts"),
        DUR("response-header-timeout", response_header_timeout_ms, 1, 86400000, "5m", G_UP,
            "time to the response head -> 504"),
        DUR("upstream-idle-timeout", upstream_idle_timeout_ms, 1, 86400000, "60s", G_UP,
            "pooled keep-alive connection"),
        DUR("stream-idle-timeout", stream_idle_timeout_ms, 0, 86400000, "5m", G_UP,
            "no byte either way on a response being streamed\n"
            "or a tunnel: close both sides (0: off)"),
        NUM("max-idle-per-endpoint", max_idle_per_endpoint, 0, 100000, "64", G_UP,
            "pooled connections per endpoint and worker"),
        STR("upstream-ca-file", upstream_ca_file, "PATH", NULL, G_UP,
            "PEM CA bundle: verify the certificates of TLS\n"
            "backends (name <svc>.<ns>.svc) against it"),
        ENUM("upstream-tls-verify", upstream_tls_verify, verify_modes, "auto", G_UP,
             "TLS backends' certificates: auto (verify when\n"
             "--upstream-ca-file is set), none, system (the\n"
             "system trust store, plus --upstream-ca-file)"),
        DUR("readiness-timeout", readiness_timeout_ms, 1, 86400000, "5m", G_COLD,
            "wait for a ready endpoint"),
        NUM("max-held", max_held, 1, 10000000, "1000", G_COLD,
            "held requests per target -> 503\n(alias --max-pending)"),
        NUM("max-pending", max_held, 1, 10000000, NULL, NULL, NULL),
        NUM("release-per-endpoint", release_per_endpoint, 0, 100000000, "100", G_COLD,
            "held requests released per ready endpoint while\n"
            "earlier ones are in flight (0: all;\n"
            "concurrency targets use their targetValue)"),
        {.name = "endpoint-concurrency",
         .kind = ZW_FLAG_INT,
         ZW_FLAG_DEST(C, endpoint_concurrency),
         .min = 0,
         .max = ZW_ALLOWANCE_MAX,
         .words = concurrency_words,
         .def = "off",
         .group = G_COLD,
         .help = "requests in flight per ready endpoint; more\n"
                 "wait in the target's queue (auto: the\n"
                 "concurrency targetValue of targets scaling on\n"
                 "concurrency; targets may override)"},
        DUR("slow-start", slow_start_ms, 0, 3600000, "0s", G_COLD,
            "a new endpoint's allowance ramps up over DUR\n(0: at once)"),
        ENUM("access-log", access_log, access_formats, "off", G_OBS,
             "one line per request on stdout"),
        STR("otlp-endpoint", otlp_endpoint, "URL", NULL, G_OBS,
            "export trace spans as OTLP/HTTP protobuf, e.g.\n"
            "http://collector:4318/v1/traces (default: off)"),
        STR("trace-sampler", trace_sampler, "RATIO", "1", G_OBS,
            "share of new traces sampled, 0..1;\n"
            "an incoming traceparent's flag is followed"),
        NUM("trace-batch", trace_batch, 1, 100000, "512", G_OBS, "spans per export request"),
        NUM("trace-queue", trace_queue, 1, 10000000, "4096", G_OBS,
            "finished requests waiting for export; more are\n"
            "dropped and counted"),
        STR("tls-listen", tls_listen, "ADDR", NULL, G_TLS,
            "TLS listener address: HTTP/1.1 and HTTP/2\n"
            "(ALPN h2) with certificates chosen by SNI"),
        LIST("tls-secret", tls_secrets, "NS/NAME", 0, G_TLS,
             "kubernetes.io/tls Secret served for the DNS\n"
             "names of its certificate, watched (repeatable)"),
        STR("tls-default-secret", tls_default_secret, "NS/NAME", NULL, G_TLS,
            "Secret served to unknown or no SNI, watched"),
        STR("tls-cert-file", tls_cert_file, "PATH", NULL, G_TLS,
            "PEM certificate chain: the default instead of\n"
            "--tls-default-secret (read at start)"),
        STR("tls-key-file", tls_key_file, "PATH", NULL, G_TLS, "PEM key of --tls-cert-file"),
        DUR("shutdown-delay", shutdown_delay_ms, 0, 3600000, "5s", G_LIFE,
            "keep serving after SIGTERM"),
        DUR("drain-timeout", drain_timeout_ms, 0, 3600000, "30s", G_LIFE,
            "finish in-flight requests"),
        ENUM("log-level", log_level, zw_flag_log_levels, "info", G_LIFE,
             "least severe level logged"),
        ENUM("log-format", log_format, zw_flag_log_formats, "logfmt", G_LIFE, "log line format"),
};
#undef STR
#undef NUM
#undef DUR
#undef LIST
#undef ENUM
#undef C

static const struct zw_flag_set flag_set = {
        .program = "zerowire-proxy",
        .head = "usage: zerowire-proxy [flags]\n"
                "\n"
                "HTTP scale-to-zero proxy: forwards to ready endpoints, holds requests while a\n"
                "workload starts from zero, serves KEDA's external-push scaler protocol.\n"
                "Durations are Go-style (500ms, 10s, 5m, 1h30m; a bare number is seconds).\n"
                "\n",
        .flags = flags,
        .n_flags = sizeof(flags) / sizeof(flags[0]),
};

/* Reads up to two integers from dir/name ("max" reads as -1). Returns how
 * many were read, 0 when the file is absent or unreadable. */
static int read_quota(const char *dir, const char *name, long long *a, long long *b)
{
	char path[512], word[32];
	FILE *f;
	int n = 0;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return 0;
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%31s", word) == 1) {
		*a = strcmp(word, "max") == 0 ? -1 : strtoll(word, NULL, 10);
		n = 1;
		if (b && fscanf(f, "%lld", b) == 1)
			n = 2;
	}
	fclose(f);
	return n;
}

int zw_proxy_cgroup_cpus(const char *root, int online)
{
	static const char *const v1_dirs[] = {"cpu", "cpu,cpuacct", "cpuacct,cpu", "."};
	long long quota = -1, period = 0;
	char dir[512];

	if (online < 1)
		online = 1;
	if (read_quota(root, "cpu.max", &quota, &period) != 2) {
		quota = -1;
		for (size_t i = 0; i < sizeof(v1_dirs) / sizeof(v1_dirs[0]); i++) {
			snprintf(dir, sizeof(dir), "%s/%s", root, v1_dirs[i]);
			if (read_quota(dir, "cpu.cfs_quota_us", &quota, NULL) == 1 &&
			    read_quota(dir, "cpu.cfs_period_us", &period, NULL) == 1)
				break;
			quota = -1;
		}
	}
	if (quota <= 0 || period <= 0)
		return online;
	long long cpus = (quota + period - 1) / period;
	return cpus < 1 ? 1 : (cpus < online ? (int)cpus : online);
}

void zw_proxy_config_defaults(struct zw_proxy_config *cfg)
{
	char msg[256];

	memset(cfg, 0, sizeof(*cfg));
	/* The table's defaults are literals that parse; checked by the tests. */
	(void)zw_flags_defaults(&flag_set, cfg, msg, sizeof(msg));
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	n = zw_proxy_cgroup_cpus("/sys/fs/cgroup", n < 1 ? 1 : (n > 64 ? 64 : (int)n));
	cfg->workers = (int)n;
}

/* Parses an unsigned decimal number. Returns 0 or -1. */
static int parse_u64(const char *s, uint64_t *out)
{
	if (!*s || *s == '-' || *s == '+')
		return -1;
	char *end = NULL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

int zw_parse_secret_ref(const char *s)
{
	const char *slash = strchr(s, '/');
	if (!slash || slash == s || slash - s > 63 || !slash[1] || strlen(slash + 1) > 253)
		return -1;
	for (const char *p = s; *p; p++) {
		bool ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		          (*p == '.' && p > slash) || p == slash;
		if (!ok || (*p == '/' && p != slash))
			return -1;
	}
	return 0;
}

/* Checks the TLS flags together. Returns 0, or -1 with msg filled. */
static int check_tls(const struct zw_proxy_config *cfg, char *msg, size_t msg_len)
{
	const char *bad = NULL;
	for (size_t i = 0; i < cfg->n_tls_secrets && !bad; i++)
		if (zw_parse_secret_ref(cfg->tls_secrets[i]) < 0)
			bad = cfg->tls_secrets[i];
	if (bad || (cfg->tls_default_secret && zw_parse_secret_ref(cfg->tls_default_secret) < 0)) {
		snprintf(msg, msg_len, "flag --tls-%s: \"%s\" is not NAMESPACE/NAME",
		         bad ? "secret" : "default-secret", bad ? bad : cfg->tls_default_secret);
		return -1;
	}
	if (!cfg->tls_cert_file != !cfg->tls_key_file) {
		snprintf(msg, msg_len, "flags --tls-cert-file and --tls-key-file go together");
		return -1;
	}
	if (cfg->tls_cert_file && cfg->tls_default_secret) {
		snprintf(msg, msg_len,
		         "flags --tls-cert-file and --tls-default-secret both set the default");
		return -1;
	}
	if (cfg->tls_listen && !cfg->tls_cert_file && !cfg->tls_default_secret &&
	    !cfg->n_tls_secrets) {
		snprintf(msg, msg_len,
		         "flag --tls-listen needs certificates: --tls-secret, "
		         "--tls-default-secret or --tls-cert-file");
		return -1;
	}
	if (cfg->upstream_ca_file && strcmp(cfg->upstream_tls_verify, "none") == 0) {
		snprintf(msg, msg_len,
		         "flags --upstream-ca-file and --upstream-tls-verify=none "
		         "contradict each other");
		return -1;
	}
	bool live = cfg->kubeconfig ||
	            !(cfg->targets_file || cfg->endpoints_file || cfg->n_static_endpoints);
	if (!live && (cfg->n_tls_secrets || cfg->tls_default_secret)) {
		snprintf(msg, msg_len,
		         "flags --tls-secret and --tls-default-secret need the API "
		         "server (not static mode)");
		return -1;
	}
	return 0;
}

int zw_proxy_config_parse(struct zw_proxy_config *cfg, int argc, char **argv, char *msg,
                          size_t msg_len)
{
	char *text = NULL;
	int rc = zw_flags_parse(&flag_set, cfg, argc, argv, msg, msg_len);

	if (rc == ZW_FLAGS_VERSION)
		return zw_flags_version(&flag_set, msg, msg_len) < 0 ? -1 : 1;
	if (rc == ZW_FLAGS_HELP) {
		if (zw_flags_usage(&flag_set, &text) < 0) {
			snprintf(msg, msg_len, "out of memory");
			return -1;
		}
		snprintf(msg, msg_len, "%s", text);
		free(text);
		return 1;
	}
	if (rc < 0)
		return -1;
	double ratio;
	if (zw_observe_parse_ratio(cfg->trace_sampler, &ratio) < 0) {
		snprintf(msg, msg_len,
		         "flag --trace-sampler: \"%s\" is not a ratio between 0 and 1",
		         cfg->trace_sampler);
		return -1;
	}
	if (cfg->otlp_endpoint && strncmp(cfg->otlp_endpoint, "http://", 7) != 0 &&
	    strncmp(cfg->otlp_endpoint, "https://", 8) != 0) {
		snprintf(msg, msg_len, "flag --otlp-endpoint: \"%s\" is not an http(s) URL",
		         cfg->otlp_endpoint);
		return -1;
	}
	struct zw_peer_service ps;
	if (cfg->peers_service && zw_parse_peer_service(cfg->peers_service, &ps) < 0) {
		snprintf(msg, msg_len,
		         "flag --peers-service: \"%s\" is not NS/SVC[:PORT] (e.g. "
		         "zerowire/peers:admin)",
		         cfg->peers_service);
		return -1;
	}
	struct sockaddr_storage ss;
	const char *addrs[] = {cfg->listen, cfg->admin_listen, cfg->scaler_listen, cfg->peer_listen,
	                       cfg->tls_listen};
	const char *names[] = {"--listen", "--admin-listen", "--scaler-listen", "--peer-listen",
	                       "--tls-listen"};
	for (int k = 0; k < 5; k++) {
		if (addrs[k] && zw_parse_addr(addrs[k], &ss) < 0) {
			snprintf(msg, msg_len,
			         "flag %s: \"%s\" is not host:port (e.g. 0.0.0.0:8080)", names[k],
			         addrs[k]);
			return -1;
		}
	}
	return check_tls(cfg, msg, msg_len);
}

int zw_parse_peer_service(const char *s, struct zw_peer_service *out)
{
	memset(out, 0, sizeof(*out));
	const char *slash = strchr(s, '/');
	if (!slash || slash == s || (size_t)(slash - s) >= sizeof(out->ns))
		return -1;
	memcpy(out->ns, s, (size_t)(slash - s));
	const char *name = slash + 1;
	const char *colon = strchr(name, ':');
	size_t nlen = colon ? (size_t)(colon - name) : strlen(name);
	if (nlen == 0 || nlen >= sizeof(out->svc) || memchr(name, '/', nlen))
		return -1;
	memcpy(out->svc, name, nlen);
	const char *port = colon ? colon + 1 : "admin";
	uint64_t v;
	if (parse_u64(port, &v) == 0) {
		if (v == 0 || v > 65535)
			return -1;
		out->port = (int)v;
		return 0;
	}
	if (!*port || strlen(port) >= sizeof(out->port_name))
		return -1;
	snprintf(out->port_name, sizeof(out->port_name), "%s", port);
	return 0;
}

int zw_parse_addr(const char *s, void *out)
{
	return zw_addr_parse(s, ZW_ADDR_LISTEN, -1, out) < 0 ? -1 : 0;
}
