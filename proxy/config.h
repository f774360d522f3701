/* zerowire-proxy settings: command-line flags and their defaults.
 *
 * Every limit of the data path is here; the flag table with the defaults
 * and the --help text is in config.c (lib/flags.h parses it). Durations are
 * in milliseconds and are given on the command line as Go-style durations
 * ("500ms", "5s", "5m"). */
#ifndef ZW_PROXY_CONFIG_H
#define ZW_PROXY_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define ZW_CONFIG_MAX_LIST 64

struct zw_proxy_config {
	const char *listen;        /* --listen, default 0.0.0.0:8080 */
	const char *admin_listen;  /* --admin-listen, default 0.0.0.0:9091 */
	const char *peer_listen;   /* --peer-listen: /peer/ paths on their own listener (default
	                            * none: served on the admin listener) */
	const char *scaler_listen; /* --scaler-listen, default 0.0.0.0:9090 */
	int workers; /* --workers, default: zw_proxy_cgroup_cpus of the online CPUs (max 64) */
	const char *kubeconfig;                     /* --kubeconfig, default: in-cluster */
	const char *namespaces[ZW_CONFIG_MAX_LIST]; /* --namespace (repeat or comma list) */
	size_t n_namespaces;                        /* 0: all namespaces */
	const char *targets_file;                   /* --targets-file: static mode (YAML objects) */
	const char *endpoints_file;                 /* --endpoints-file: static mode */
	const char
	        *static_endpoints[ZW_CONFIG_MAX_LIST]; /* --static-endpoint ns/svc:port=ip:port */
	size_t n_static_endpoints;
	const char *log_level;  /* --log-level, default info */
	const char *log_format; /* --log-format, default logfmt (or json) */

	/* Replicas and the KEDA stream. */
	const char *peers_service; /* --peers-service NS/SVC[:PORT]: headless Service of the
	                            * replicas (port number or name, default "admin") */
	const char *peers[ZW_CONFIG_MAX_LIST]; /* --peers ADDR[,ADDR]: fixed peer admin addresses */
	size_t n_peers;
	uint64_t stream_heartbeat_ms; /* --stream-heartbeat, default 0: the scaler's (1s) */
	const char *peer_token_file;  /* --peer-token-file: bearer token for /peer/ (none: the
	                               * /peer/ endpoints refuse everything) */
	uint64_t peer_token_grace_ms; /* --peer-token-grace, default 2m: old token after rotation */

	/* Client side. */
	size_t max_header_bytes;    /* --max-header-bytes, default 65536 */
	size_t max_headers;         /* --max-headers, default 100 */
	size_t max_request_line;    /* --max-request-line, default 8192 */
	uint64_t header_timeout_ms; /* --header-timeout, default 10s */
	uint64_t idle_timeout_ms;   /* --idle-timeout, default 60s */
	size_t max_connections;     /* --max-connections, default 10000 (per process) */
	uint64_t body_timeout_ms;   /* --body-timeout, default 60s: request body stalled -> 408 */

	/* Upstream side. */
	uint64_t connect_timeout_ms;         /* --connect-timeout, default 500ms per attempt */
	uint64_t connect_retry_interval_ms;  /* --connect-retry-interval, default 50ms */
	uint64_t connect_retry_budget_ms;    /* --connect-retry-budget, default 5s in all */
	uint64_t response_header_timeout_ms; /* --response-header-timeout, default 5m */
	uint64_t upstream_idle_timeout_ms;   /* --upstream-idle-timeout, default 60s */
	uint64_t stream_idle_timeout_ms;     /* --stream-idle-timeout, default 5m; 0 = none */
	size_t max_idle_per_endpoint;        /* --max-idle-per-endpoint, default 64 per worker */
	const char *upstream_ca_file; /* --upstream-ca-file PATH: verify TLS backends against it */
	const char *upstream_tls_verify; /* --upstream-tls-verify auto|none|system, default auto */

	/* Cold start (targets may override). */
	uint64_t readiness_timeout_ms; /* --readiness-timeout, default 5m */
	uint32_t max_held;             /* --max-held, default 1000 per target */
	uint64_t release_per_endpoint; /* --release-per-endpoint, default 100; 0 = no limit */
	int64_t endpoint_concurrency;  /* --endpoint-concurrency, default 0 (off); N, or
	                                * ZW_ALLOWANCE_AUTO: the concurrency targetValue */
	uint64_t slow_start_ms;        /* --slow-start, default 0 (none) */

	/* Observability (docs/observability.md). */
	const char *access_log;    /* --access-log off|logfmt|json, default off (stdout) */
	const char *otlp_endpoint; /* --otlp-endpoint URL of OTLP/HTTP traces; default none */
	const char *trace_sampler; /* --trace-sampler RATIO for new traces, default "1" */
	size_t trace_batch;        /* --trace-batch N spans per export, default 512 */
	size_t trace_queue;        /* --trace-queue N finished requests waiting, default 4096 */

	/* TLS (docs/tls.md). */
	const char *tls_listen; /* --tls-listen ADDR: the TLS listener (docs/tls.md) */
	const char *tls_secrets[ZW_CONFIG_MAX_LIST]; /* --tls-secret NS/NAME (repeatable) */
	size_t n_tls_secrets;
	const char *tls_default_secret; /* --tls-default-secret NS/NAME */
	const char *tls_cert_file;      /* --tls-cert-file PATH: file-based default */
	const char *tls_key_file;       /* --tls-key-file PATH */

	/* Lifecycle. */
	uint64_t shutdown_delay_ms; /* --shutdown-delay, default 5s */
	uint64_t drain_timeout_ms;  /* --drain-timeout, default 30s */
};

/* Fills *cfg with the defaults. */
void zw_proxy_config_defaults(struct zw_proxy_config *cfg);

/* Parses argv into *cfg (which must hold the defaults) with the shared
 * parser of lib/flags.h. Strings point into argv (borrowed for the
 * program's life; list values are split in place). Returns 0, 1 when
 * --help or --version was given (text written to `msg`, cut to msg_len),
 * or -1 with a message in `msg` naming the flag and the problem. */
int zw_proxy_config_parse(struct zw_proxy_config *cfg, int argc, char **argv, char *msg,
                          size_t msg_len);

/* A parsed --peers-service value. */
struct zw_peer_service {
	char ns[64];
	char svc[64];
	int port;           /* > 0, or 0 with port_name set */
	char port_name[64]; /* default "admin" */
};

/* Parses "NS/SVC[:PORT]" (PORT a number or a port name) into *out.
 * Returns 0 or -1. */
int zw_parse_peer_service(const char *s, struct zw_peer_service *out);

/* Checks a Secret reference "NAMESPACE/NAME" (DNS-1123 namespace, a
 * Secret name of lowercase letters, digits, '-' and '.'). Returns 0 or -1. */
int zw_parse_secret_ref(const char *s);

/* Splits "host:port" / "[v6]:port" into a sockaddr for binding or dialing.
 * Returns 0 or -1. `out` must have room for a struct sockaddr_storage. */
int zw_parse_addr(const char *s, void *out);

/* The CPUs the process may use: its cgroup's CPU quota under `root`
 * (borrowed; "/sys/fs/cgroup" in production) rounded up, from cgroup v2
 * cpu.max or cgroup v1 cpu.cfs_quota_us / cpu.cfs_period_us (in cpu/,
 * cpu,cpuacct/ or root itself), at least 1 and at most `online`; `online`
 * when there is no quota or it cannot be read. */
int zw_proxy_cgroup_cpus(const char *root, int online);

#endif
