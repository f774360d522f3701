/* zerowire-proxy flags and defaults (see config.h). */
#include "config.h"

#include "observe.h"
#include "addr.h"
#include "duration.h"

#include "target.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef ZW_COMMIT
#define ZW_COMMIT "unknown" /* set by the Makefile from git */
#endif

static const char usage_text[] =
        "usage: zerowire-proxy [flags]\n"
        "\n"
        "HTTP scale-to-zero proxy: forwards to ready endpoints, holds requests while a\n"
        "workload starts from zero, serves KEDA's external-push scaler protocol.\n"
        "\n"
        "Listeners:\n"
        "  --listen ADDR                 proxy listener (default 0.0.0.0:8080)\n"
        "  --admin-listen ADDR           admin: /healthz /readyz /metrics /queue /status\n"
        "                                /metrics-api, and /peer/ unless --peer-listen\n"
        "                                (default 0.0.0.0:9091)\n"
        "  --peer-listen ADDR            /peer/ endpoints (and /healthz) on their own\n"
        "                                listener (default: on the admin listener)\n"
        "  --scaler-listen ADDR          KEDA external scaler gRPC (default 0.0.0.0:9090)\n"
        "  --workers N                   worker threads, one loop each (default: the\n"
        "                                cgroup CPU quota rounded up, else online CPUs)\n"
        "Sources:\n"
        "  --kubeconfig PATH             API server access (default: in-cluster)\n"
        "  --namespace NS[,NS]           namespaces to watch (repeatable; default all;\n"
        "                                alias --watch-namespaces)\n"
        "  --targets-file PATH           static mode: target objects (YAML/JSON)\n"
        "  --endpoints-file PATH         static mode: EndpointSlices (YAML/JSON)\n"
        "  --static-endpoint SPEC        static mode: ns/svc:port=ip:port[,ip:port]\n"
        "Replicas:\n"
        "  --peers-service NS/SVC[:PORT] headless Service of the proxy replicas (admin\n"
        "                                port number or name, default admin)\n"
        "  --peers ADDR[,ADDR]           fixed peer admin addresses instead\n"
        "  --peer-token-file PATH        bearer token peers send and /peer/ requires,\n"
        "                                re-read when the file changes (without it\n"
        "                                /peer/ answers 401/403 to everything)\n"
        "  --peer-token-grace DUR        old token still accepted after a change\n"
        "                                (default 2m; 0: not)\n"
        "  --stream-heartbeat DUR        StreamIsActive heartbeat (default 1s)\n"
        "Client limits:\n"
        "  --max-header-bytes N          request head size (default 65536) -> 431\n"
        "  --max-headers N               header fields (default 100) -> 431\n"
        "  --max-request-line N          request-target length (default 8192) -> 414\n"
        "  --header-timeout DUR          time to receive a request head (default 10s)\n"
        "  --idle-timeout DUR            idle keep-alive connection (default 60s)\n"
        "  --max-connections N           client connections (default 10000)\n"
        "  --body-timeout DUR            no byte of a request body moving for this long\n"
        "                                before the response head: 408 (default 60s; 0: off)\n"
        "Upstream:\n"
        "  --connect-timeout DUR         per connect attempt (default 500ms)\n"
        "  --connect-retry-interval DUR  pause between attempts (default 50ms)\n"
        "  --connect-retry-budget DUR    total time for attempts (default 5s)\n"
        "  --response-header-timeout DUR time to the response head (default 5m) -> 504\n"
        "  --upstream-idle-timeout DUR   pooled keep-alive connection (default 60s)\n"
        "  --stream-idle-timeout DUR     no byte either way on a response being streamed\n"
        "                                or a tunnel: close both sides (default 5m; 0: off)\n"
        "  --max-idle-per-endpoint N     pooled connections per endpoint and worker (default 64)\n"
        "Cold start (targets may override):\n"
        "  --readiness-timeout DUR       wait for a ready endpoint (default 5m)\n"
        "  --max-held N                  held requests per target (default 1000) -> 503\n"
        "                                (alias --max-pending)\n"
        "  --release-per-endpoint N      held requests released per ready endpoint while\n"
        "                                earlier ones are in flight (default 100; 0: all;\n"
        "                                concurrency targets use their targetValue)\n"
        "  --endpoint-concurrency N|auto|off  requests in flight per ready endpoint; more\n"
        "                                wait in the target's queue (default off; auto:\n"
        "                                the concurrency targetValue of targets scaling on\n"
        "                                concurrency; targets may override)\n"
        "  --slow-start DUR              a new endpoint's allowance ramps up over DUR\n"
        "                                (default 0: at once; targets may override)\n"
        "Observability:\n"
        "  --access-log FORMAT           off|logfmt|json: one line per request on stdout\n"
        "                                (default off)\n"
        "  --otlp-endpoint URL           export trace spans as OTLP/HTTP protobuf, e.g.\n"
        "                                http://collector:4318/v1/traces (default: off)\n"
        "  --trace-sampler RATIO         share of new traces sampled, 0..1 (default 1);\n"
        "                                an incoming traceparent's flag is followed\n"
        "  --trace-batch N               spans per export request (default 512)\n"
        "  --trace-queue N               finished requests waiting for export; more are\n"
        "                                dropped and counted (default 4096)\n"
        "Lifecycle:\n"
        "  --shutdown-delay DUR          keep serving after SIGTERM (default 5s)\n"
        "  --drain-timeout DUR           finish in-flight requests (default 30s)\n"
        "  --log-level LEVEL             debug|info|warn|error (default info)\n"
        "  --log-format FORMAT           logfmt|json (default logfmt)\n"
        "  --help, --version\n";

const char *zw_proxy_config_usage(void)
{
	return usage_text;
}

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
	memset(cfg, 0, sizeof(*cfg));
	cfg->listen = "0.0.0.0:8080";
	cfg->admin_listen = "0.0.0.0:9091";
	cfg->peer_token_grace_ms = 120000;
	cfg->scaler_listen = "0.0.0.0:9090";
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	n = zw_proxy_cgroup_cpus("/sys/fs/cgroup", n < 1 ? 1 : (n > 64 ? 64 : (int)n));
	cfg->workers = (int)n;
	cfg->log_level = "info";
	cfg->log_format = "logfmt";
	cfg->max_header_bytes = 65536;
	cfg->max_headers = 100;
	cfg->max_request_line = 8192;
	cfg->header_timeout_ms = 10000;
	cfg->idle_timeout_ms = 60000;
	cfg->max_connections = 10000;
	cfg->connect_timeout_ms = 500;
	cfg->connect_retry_interval_ms = 50;
	cfg->connect_retry_budget_ms = 5000;
	cfg->response_header_timeout_ms = 300000;
	cfg->upstream_idle_timeout_ms = 60000;
	cfg->stream_idle_timeout_ms = 300000;
	cfg->body_timeout_ms = 60000;
	cfg->max_idle_per_endpoint = 64;
	cfg->readiness_timeout_ms = 300000;
	cfg->max_held = 1000;
	cfg->release_per_endpoint = 100;
	cfg->endpoint_concurrency = 0;
	cfg->slow_start_ms = 0;
	cfg->access_log = "off";
	cfg->trace_sampler = "1";
	cfg->trace_batch = 512;
	cfg->trace_queue = 4096;
	cfg->shutdown_delay_ms = 5000;
	cfg->drain_timeout_ms = 30000;
}

enum kind {
	K_STR,
	K_SIZE,
	K_DUR,
	K_INT,
	K_U32,
	K_U64,
	K_ALLOW,
	K_LIST_NS,
	K_LIST_EP,
	K_LIST_PEERS,
};

struct flag {
	const char *name;
	enum kind kind;
	size_t off;
	uint64_t min, max;
};

#define F(n, k, field, lo, hi)                                        \
	{                                                             \
		n, k, offsetof(struct zw_proxy_config, field), lo, hi \
	}
static const struct flag flags[] = {
        F("--listen", K_STR, listen, 0, 0),
        F("--admin-listen", K_STR, admin_listen, 0, 0),
        F("--peer-listen", K_STR, peer_listen, 0, 0),
        F("--peer-token-file", K_STR, peer_token_file, 0, 0),
        F("--peer-token-grace", K_DUR, peer_token_grace_ms, 0, 86400000),
        F("--scaler-listen", K_STR, scaler_listen, 0, 0),
        F("--workers", K_INT, workers, 1, 64),
        F("--kubeconfig", K_STR, kubeconfig, 0, 0),
        F("--namespace", K_LIST_NS, namespaces, 0, 0),
        F("--watch-namespaces", K_LIST_NS, namespaces, 0, 0),
        F("--peers-service", K_STR, peers_service, 0, 0),
        F("--peers", K_LIST_PEERS, peers, 0, 0),
        F("--stream-heartbeat", K_DUR, stream_heartbeat_ms, 1, 3600000),
        F("--targets-file", K_STR, targets_file, 0, 0),
        F("--endpoints-file", K_STR, endpoints_file, 0, 0),
        F("--static-endpoint", K_LIST_EP, static_endpoints, 0, 0),
        F("--log-level", K_STR, log_level, 0, 0),
        F("--log-format", K_STR, log_format, 0, 0),
        F("--max-header-bytes", K_SIZE, max_header_bytes, 1024, 16u << 20),
        F("--max-headers", K_SIZE, max_headers, 1, 10000),
        F("--max-request-line", K_SIZE, max_request_line, 64, 1u << 20),
        F("--header-timeout", K_DUR, header_timeout_ms, 1, 3600000),
        F("--idle-timeout", K_DUR, idle_timeout_ms, 1, 86400000),
        F("--max-connections", K_SIZE, max_connections, 1, 1000000),
        F("--connect-timeout", K_DUR, connect_timeout_ms, 1, 600000),
        F("--connect-retry-interval", K_DUR, connect_retry_interval_ms, 1, 60000),
        F("--connect-retry-budget", K_DUR, connect_retry_budget_ms, 0, 3600000),
        F("--response-header-timeout", K_DUR, response_header_timeout_ms, 1, 86400000),
        F("--upstream-idle-timeout", K_DUR, upstream_idle_timeout_ms, 1, 86400000),
        F("--stream-idle-timeout", K_DUR, stream_idle_timeout_ms, 0, 86400000),
        F("--body-timeout", K_DUR, body_timeout_ms, 0, 86400000),
        F("--max-idle-per-endpoint", K_SIZE, max_idle_per_endpoint, 0, 100000),
        F("--readiness-timeout", K_DUR, readiness_timeout_ms, 1, 86400000),
        F("--max-held", K_U32, max_held, 1, 10000000),
        F("--max-pending", K_U32, max_held, 1, 10000000),
        F("--release-per-endpoint", K_U64, release_per_endpoint, 0, 100000000),
        F("--endpoint-concurrency", K_ALLOW, endpoint_concurrency, 0, ZW_ALLOWANCE_MAX),
        F("--slow-start", K_DUR, slow_start_ms, 0, 3600000),
        F("--access-log", K_STR, access_log, 0, 0),
        F("--otlp-endpoint", K_STR, otlp_endpoint, 0, 0),
        F("--trace-sampler", K_STR, trace_sampler, 0, 0),
        F("--trace-batch", K_SIZE, trace_batch, 1, 100000),
        F("--trace-queue", K_SIZE, trace_queue, 1, 10000000),
        F("--shutdown-delay", K_DUR, shutdown_delay_ms, 0, 3600000),
        F("--drain-timeout", K_DUR, drain_timeout_ms, 0, 3600000),
};
#undef F

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

/* Adds the comma-separated items of v to a list field. */
static int add_list(const char **list, size_t *n, char *v, int split)
{
	if (!split) {
		if (*n >= ZW_CONFIG_MAX_LIST)
			return -1;
		list[(*n)++] = v;
		return 0;
	}
	char *save = NULL;
	for (char *tok = strtok_r(v, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (*n >= ZW_CONFIG_MAX_LIST)
			return -1;
		list[(*n)++] = tok;
	}
	return 0;
}

int zw_proxy_config_parse(struct zw_proxy_config *cfg, int argc, char **argv, char *msg,
                          size_t msg_len)
{
	for (int i = 1; i < argc; i++) {
		char *arg = argv[i];
		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			snprintf(msg, msg_len, "%s", usage_text);
			return 1;
		}
		if (strcmp(arg, "--version") == 0) {
			snprintf(msg, msg_len, "zerowire-proxy %s (commit %s)\n", ZW_VERSION,
			         ZW_COMMIT);
			return 1;
		}
		char *val = NULL;
		char *eq = strchr(arg, '=');
		size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
		const struct flag *f = NULL;
		for (size_t k = 0; k < sizeof(flags) / sizeof(flags[0]); k++)
			if (strlen(flags[k].name) == nlen && strncmp(flags[k].name, arg, nlen) == 0)
				f = &flags[k];
		if (!f) {
			snprintf(msg, msg_len, "unknown flag %s (see --help)", arg);
			return -1;
		}
		if (eq) {
			val = eq + 1;
		} else {
			if (i + 1 >= argc) {
				snprintf(msg, msg_len, "flag %s needs a value", f->name);
				return -1;
			}
			val = argv[++i];
		}
		char *base = (char *)cfg + f->off;
		uint64_t v = 0;
		switch (f->kind) {
		case K_STR:
			if (!*val) {
				snprintf(msg, msg_len, "flag %s: empty value", f->name);
				return -1;
			}
			*(const char **)base = val;
			break;
		case K_LIST_NS:
			if (add_list(cfg->namespaces, &cfg->n_namespaces, val, 1) < 0) {
				snprintf(msg, msg_len, "flag %s: more than %d namespaces", f->name,
				         ZW_CONFIG_MAX_LIST);
				return -1;
			}
			break;
		case K_LIST_PEERS:
			if (add_list(cfg->peers, &cfg->n_peers, val, 1) < 0) {
				snprintf(msg, msg_len, "flag %s: more than %d values", f->name,
				         ZW_CONFIG_MAX_LIST);
				return -1;
			}
			break;
		case K_LIST_EP:
			if (add_list(cfg->static_endpoints, &cfg->n_static_endpoints, val, 0) < 0) {
				snprintf(msg, msg_len, "flag %s: more than %d values", f->name,
				         ZW_CONFIG_MAX_LIST);
				return -1;
			}
			break;
		case K_DUR:
			if (zw_duration_parse_ms(val, &v) < 0 || v < f->min || v > f->max) {
				snprintf(msg, msg_len,
				         "flag %s: \"%s\" is not a duration between %llums and "
				         "%llums "
				         "(e.g. 500ms, 10s, 5m)",
				         f->name, val, (unsigned long long)f->min,
				         (unsigned long long)f->max);
				return -1;
			}
			*(uint64_t *)base = v;
			break;
		case K_ALLOW:
			if (strcmp(val, "auto") == 0) {
				*(int64_t *)base = ZW_ALLOWANCE_AUTO;
				break;
			}
			if (strcmp(val, "off") == 0) {
				*(int64_t *)base = 0;
				break;
			}
			if (parse_u64(val, &v) < 0 || v > f->max) {
				snprintf(msg, msg_len,
				         "flag %s: \"%s\" is not a number between 0 and %llu, auto "
				         "or off",
				         f->name, val, (unsigned long long)f->max);
				return -1;
			}
			*(int64_t *)base = (int64_t)v;
			break;
		case K_SIZE:
		case K_INT:
		case K_U32:
		case K_U64:
			if (parse_u64(val, &v) < 0 || v < f->min || v > f->max) {
				snprintf(msg, msg_len,
				         "flag %s: \"%s\" is not a number between %llu and %llu",
				         f->name, val, (unsigned long long)f->min,
				         (unsigned long long)f->max);
				return -1;
			}
			if (f->kind == K_SIZE)
				*(size_t *)base = (size_t)v;
			else if (f->kind == K_INT)
				*(int *)base = (int)v;
			else if (f->kind == K_U64)
				*(uint64_t *)base = v;
			else
				*(uint32_t *)base = (uint32_t)v;
			break;
		}
	}
	enum zw_access_format af;
	double ratio;
	if (zw_observe_parse_format(cfg->access_log, &af) < 0) {
		snprintf(msg, msg_len, "flag --access-log: \"%s\" is not off, logfmt or json",
		         cfg->access_log);
		return -1;
	}
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
	const char *addrs[] = {cfg->listen, cfg->admin_listen, cfg->scaler_listen,
	                       cfg->peer_listen};
	const char *names[] = {"--listen", "--admin-listen", "--scaler-listen", "--peer-listen"};
	for (int k = 0; k < 4; k++) {
		if (addrs[k] && zw_parse_addr(addrs[k], &ss) < 0) {
			snprintf(msg, msg_len,
			         "flag %s: \"%s\" is not host:port (e.g. 0.0.0.0:8080)", names[k],
			         addrs[k]);
			return -1;
		}
	}
	return 0;
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
