/* zerowire-webhook entry point: flags, wiring of the server, the target
 * registry, the watches and the reconciler, and signal handling. */
#include "alias.h"
#include "flags.h"
#include "kube.h"
#include "kubeconfig.h"
#include "log.h"
#include "metricsrv.h"
#include "mutate.h"
#include "reconcile.h"
#include "registry.h"
#include "restore.h"
#include "selfcert.h"
#include "whmetrics.h"
#include "whserver.h"
#include "watchloop.h"
#include "whsources.h"
#include "target.h"
#include "yamljson.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_LIST_ITEMS 64 /* entries of a comma list flag */

struct app {
	struct zw_wh_metrics *metrics;
	struct zw_registry *reg;
	struct zw_mutate_config mcfg;
	struct zw_kube_config *kcfg;
	struct zw_kube *kube;      /* blocking client: discovery, Lease, writes, certificates */
	struct zw_watchloop *loop; /* every watch, on one libuv loop thread */
	/* Set by the main thread after the server started, read by handlers. */
	struct zw_wh_sources *_Atomic sources;
	struct zw_reconcile *_Atomic rec;
	struct zw_wh_server *server;
	struct zw_wh_server *_Atomic live_server; /* set once serving; read by the cert thread */
	struct zw_selfcert_run *certs;
	int no_kube;
};

struct flags {
	const char *listen;
	const char *metrics_listen;
	const char *cert;
	const char *key;
	const char *kubeconfig;
	const char *static_objects;
	const char *namespaces[MAX_LIST_ITEMS];
	size_t n_namespaces;
	const char *proxy_service;
	const char *proxy_namespace;
	const char *scaler_address;
	const char *alias_service;
	const char *alias_mode;
	const char *cluster_domain;
	const char *kinds;
	const char *handwired[MAX_LIST_ITEMS];
	size_t n_handwired;
	const char *lease_name;
	const char *lease_namespace;
	const char *log_level;
	const char *log_format;
	const char *cert_mode;
	const char *cert_secret;
	const char *webhook_config;
	const char *webhook_service;
	const char *cert_dns[MAX_LIST_ITEMS];
	size_t n_cert_dns;
	const char *cert_ips[MAX_LIST_ITEMS];
	size_t n_cert_ips;
	unsigned deadline_ms;
	unsigned handover_ms;
	unsigned cert_interval_ms;
	unsigned read_timeout_ms;
	unsigned idle_timeout_ms;
	unsigned resync_ms;
	int proxy_port;
	int proxy_h2c_port;
	size_t max_body;
	size_t body_budget;
	unsigned threads;
	unsigned max_connections;
	unsigned max_per_ip;
	int no_kube;
	int mesh_vs;
	int reconcile;
	int leader_elect;
	int split_header;
};

#define F struct flags
#define STR(n, f, mv, d, g, h)                                                                  \
	{                                                                                       \
		.name = n, .kind = ZW_FLAG_STRING, ZW_FLAG_DEST(F, f), .metavar = mv, .def = d, \
		.group = g, .help = h, .opts = ZW_FLAG_NONEMPTY                                 \
	}
#define NUM(n, k, f, lo, hi, d, g, h)                                                     \
	{                                                                                 \
		.name = n, .kind = k, ZW_FLAG_DEST(F, f), .min = lo, .max = hi, .def = d, \
		.group = g, .help = h                                                     \
	}
#define LIST(n, f, mv, g, h)                                                                       \
	{                                                                                          \
		.name = n, .kind = ZW_FLAG_LIST, .off = offsetof(F, f), .metavar = mv,             \
		.list_max = MAX_LIST_ITEMS, .count_off = offsetof(F, n_##f), .group = g, .help = h \
	}
#define BOOL(n, f, d, g, h)                                                                \
	{                                                                                  \
		.name = n, .kind = ZW_FLAG_BOOL, ZW_FLAG_DEST(F, f), .def = d, .group = g, \
		.help = h                                                                  \
	}
#define DAY_MS 86400000

static const char *const cert_modes[] = {"files", "self", NULL};
static const char G_SERVE[] = "Serving", G_KUBE[] = "Kubernetes API", G_REWRITE[] = "Rewriting",
                  G_REC[] = "Reconciler", G_LOG[] = "Logging",
                  G_RESTORE[] = "restore (with `zerowire-webhook restore`)";

static const struct zw_flag flag_table[] = {
        STR("listen", listen, "ADDR", ":8443", G_SERVE, "host:port, :port or [v6]:port"),
        STR("metrics-listen", metrics_listen, "ADDR", NULL, G_SERVE,
            "plain-HTTP /metrics and /healthz (default: off;\n"
            "/metrics is always on the TLS port too)"),
        STR("tls-cert-file", cert, "FILE", NULL, G_SERVE,
            "PEM certificate chain, re-read when it changes"),
        STR("tls-key-file", key, "FILE", NULL, G_SERVE, "PEM private key, re-read when it changes"),
        {.name = "cert-mode",
         .kind = ZW_FLAG_ENUM,
         ZW_FLAG_DEST(F, cert_mode),
         .choices = cert_modes,
         .group = G_SERVE,
         .help = "files (default with --tls-cert-file) or self:\n"
                 "CA and certificate kept in --cert-secret,\n"
                 "created when missing, renewed 30 days before\n"
                 "expiry, checked every --cert-check-interval;\n"
                 "SIGUSR1 re-issues the certificate now (same CA)"},
        STR("cert-secret", cert_secret, "NS/NAME", NULL, G_SERVE,
            "Secret of the self-managed certificate"),
        STR("webhook-config", webhook_config, "NAME", NULL, G_SERVE,
            "MutatingWebhookConfiguration whose caBundle\nis kept"),
        STR("webhook-service", webhook_service, "NS/NAME", NULL, G_SERVE,
            "Service the API server calls (certificate\n"
            "names svc, svc.ns, svc.ns.svc,\n"
            "svc.ns.svc.cluster.local)"),
        LIST("cert-dns", cert_dns, "LIST", G_SERVE, "further DNS names (url mode)"),
        LIST("cert-ips", cert_ips, "LIST", G_SERVE, "IP addresses (url mode)"),
        NUM("cert-check-interval", ZW_FLAG_DURATION, cert_interval_ms, 1000, DAY_MS, "60s", G_SERVE,
            "between certificate checks"),
        NUM("max-body", ZW_FLAG_SIZE, max_body, 1024, 256L * 1024 * 1024, "3Mi", G_SERVE,
            "largest AdmissionReview accepted, else 413"),
        NUM("body-budget", ZW_FLAG_SIZE, body_budget, 1024, 4096L * 1024 * 1024, "24Mi", G_SERVE,
            "request body bytes buffered across all\n"
            "connections; a request that would pass it is\n"
            "answered 503 with Retry-After at once (at\n"
            "least --max-body)"),
        NUM("threads", ZW_FLAG_INT, threads, 1, 64, "2", G_SERVE, "HTTPS worker threads"),
        NUM("max-connections", ZW_FLAG_INT, max_connections, 1, 65536, "256", G_SERVE,
            "open connections; past it the oldest idle, else\n"
            "the oldest not yet requested, else the oldest\n"
            "still reading connection is closed"),
        NUM("max-connections-per-ip", ZW_FLAG_INT, max_per_ip, 0, 65536, "0", G_SERVE,
            "open connections per client address (0: no\n"
            "limit; the API server comes from few addresses)"),
        NUM("read-timeout", ZW_FLAG_DURATION, read_timeout_ms, 1000, 3600000, "10s", G_SERVE,
            "from accept (TLS handshake, headers, body) or\n"
            "from the end of the headers to a complete\n"
            "request, and to write its answer (whole seconds)"),
        NUM("idle-timeout", ZW_FLAG_DURATION, idle_timeout_ms, 1000, DAY_MS, "60s", G_SERVE,
            "a kept-alive connection may wait for its next\n"
            "request (whole seconds)"),
        STR("kubeconfig", kubeconfig, "FILE", NULL, G_KUBE,
            "kubeconfig (default: in-cluster service account,\n"
            "else $KUBECONFIG, else ~/.kube/config)"),
        BOOL("no-kube", no_kube, NULL, G_KUBE,
             "no API server: admission only, targets from\n"
             "--static-objects; /readyz is ready at once"),
        STR("static-objects", static_objects, "FILE", NULL, G_KUBE,
            "YAML/JSON file of target sources (ScaledObjects,\n"
            "HTTPScaledObjects, InterceptorRoutes, Upstreams,\n"
            "...) loaded into the registry at start"),
        LIST("watch-namespaces", namespaces, "LIST", G_KUBE,
             "comma list of namespaces to watch (default\n"
             "all); Services and BackendTLSPolicies of\n"
             "--proxy-namespace are watched in any case"),
        STR("proxy-service", proxy_service, "NAME", "zerowire-proxy", G_REWRITE, "proxy Service"),
        STR("proxy-namespace", proxy_namespace, "NS", "zerowire", G_REWRITE, "its namespace"),
        NUM("proxy-port", ZW_FLAG_INT, proxy_port, 1, 65535, "8080", G_REWRITE, "its HTTP port"),
        NUM("proxy-h2c-port", ZW_FLAG_INT, proxy_h2c_port, 0, 65535, "8081", G_REWRITE,
            "its h2c port (appProtocol kubernetes.io/h2c,\n"
            "same target as the HTTP port): HTTP/2 and gRPC\n"
            "destinations go there; 0: left alone"),
        STR("scaler-address", scaler_address, "ADDR", NULL, G_REWRITE,
            "external-push scalerAddress\n"
            "(default <proxy-service>.<proxy-namespace>:9090)"),
        STR("alias-service", alias_service, "NAME", NULL, G_REWRITE,
            "per-namespace alias Service for Ingresses\n"
            "(default: the proxy Service name)"),
        STR("alias-mode", alias_mode, "MODE", "endpointslice", G_REWRITE,
            "how the alias leads to the proxy: endpointslice\n"
            "(selectorless Service, EndpointSlices mirroring\n"
            "the proxy's ready pods) or externalname\n"
            "(ExternalName Service; many Ingress controllers\n"
            "refuse those); aliases of the other mode are\n"
            "converted"),
        STR("cluster-domain", cluster_domain, "DOMAIN", "cluster.local", G_REWRITE,
            "cluster DNS domain"),
        STR("kinds", kinds, "LIST", NULL, G_REWRITE,
            "route kinds to handle: ingress,httproute,\n"
            "grpcroute,virtualservice,gloo (default all)"),
        LIST("handwired-hosts", handwired, "LIST", G_REWRITE,
             "Service FQDNs that already mean \"the proxy\""),
        BOOL("mesh-virtualservices", mesh_vs, NULL, G_REWRITE,
             "also rewrite mesh-bound Istio VirtualServices"),
        BOOL("split-header", split_header, "true", G_REWRITE,
             "on routes that split traffic between scaled\n"
             "Services, make each destination set header\n"
             "X-Zerowire-Service so the proxy keeps the split"),
        BOOL("reconcile", reconcile, "true", G_REC, "run the reconciler (--reconcile=false: not)"),
        BOOL("leader-elect", leader_elect, "true", G_REC,
             "elect one active reconciler with a Lease"),
        STR("lease-name", lease_name, "NAME", "zerowire-webhook", G_REC, "the Lease's name"),
        STR("lease-namespace", lease_namespace, "NS", NULL, G_REC,
            "its namespace (default: the proxy namespace)"),
        NUM("resync", ZW_FLAG_DURATION, resync_ms, 1000, 3600000, "10s", G_REC,
            "full reconciler pass interval"),
        {.name = "log-level",
         .kind = ZW_FLAG_ENUM,
         ZW_FLAG_DEST(F, log_level),
         .choices = zw_flag_log_levels,
         .def = "info",
         .group = G_LOG,
         .help = "least severe level logged"},
        {.name = "log-format",
         .kind = ZW_FLAG_ENUM,
         ZW_FLAG_DEST(F, log_format),
         .choices = zw_flag_log_formats,
         .def = "logfmt",
         .group = G_LOG,
         .help = "log line format"},
        NUM("deadline", ZW_FLAG_DURATION, deadline_ms, 1, DAY_MS, "2m", G_RESTORE,
            "give up and exit 1 after this long"),
        NUM("handover", ZW_FLAG_DURATION, handover_ms, 0, DAY_MS, NULL, G_RESTORE,
            "wait after taking the Lease (default: the\n"
            "Lease renew interval + 1s, 6s)"),
};
#undef STR
#undef NUM
#undef LIST
#undef BOOL
#undef F

static const struct zw_flag_set flag_set = {
        .program = "zerowire-webhook",
        .head = "usage: zerowire-webhook (--tls-cert-file FILE --tls-key-file FILE |\n"
                "                         --cert-mode self --cert-secret NS/NAME ...) [flags]\n"
                "       zerowire-webhook restore [--kubeconfig FILE] [--webhook-config NAME]\n"
                "                         [--lease-namespace NS] [--lease-name NAME]\n"
                "                         [--deadline DUR]\n"
                "\n"
                "Mutating admission webhook of zerowire: rewrites route destinations that\n"
                "name a scaled Service to the zerowire proxy, restores them exactly when the\n"
                "target goes away, and keeps cross-namespace wiring in place. Durations are\n"
                "Go-style (500ms, 10s, 5m, 1h30m; a bare number is seconds).\n"
                "\n",
        .tail = "\n"
                "restore (uninstall, break-glass): holds the reconciler Lease (--lease-name in\n"
                "--lease-namespace, default zerowire-webhook in the proxy namespace) so running\n"
                "replicas stay passive, deletes the MutatingWebhookConfiguration\n"
                "--webhook-config (when given), restores every rewritten route (of\n"
                "--watch-namespaces, default all) from its zerowire.io/original records by a\n"
                "direct patch, and deletes the alias Services, ReferenceGrants and generated\n"
                "ScaledObjects zerowire made. Exits 0 when all is restored, 1 with the list of\n"
                "what is left at the deadline.\n",
        .flags = flag_table,
        .n_flags = sizeof(flag_table) / sizeof(flag_table[0]),
};

static int review_cb(void *arg, const char *body, size_t len, struct zw_review_reply *reply)
{
	struct app *a = arg;
	struct zw_mutate_result info;
	char *out = NULL;
	size_t out_len = 0;
	int status;

	memset(&info, 0, sizeof(info));
	status = zw_mutate_review(body, len, a->reg, &a->mcfg, &out, &out_len, &info);
	snprintf(reply->kind, sizeof(reply->kind), "%s", zw_mutate_kind_name(info.kind));
	reply->rewrites = info.rewrites;
	reply->restores = info.restores;
	reply->warnings = info.warnings;
	reply->status = status;
	if (status == 200 && out) {
		reply->body = out;
		reply->body_len = out_len;
		switch (info.outcome) {
		case ZW_MO_REWRITTEN:
			reply->outcome = ZW_REVIEW_PATCHED;
			break;
		case ZW_MO_RESTORED:
			reply->outcome = ZW_REVIEW_RESTORED;
			break;
		case ZW_MO_DENIED:
			reply->outcome = ZW_REVIEW_DENIED;
			break;
		case ZW_MO_ERROR:
			reply->outcome = ZW_REVIEW_IGNORED;
			break;
		default:
			reply->outcome = ZW_REVIEW_UNCHANGED;
			break;
		}
		if (zw_log_enabled(ZW_LOG_DEBUG))
			zw_log(ZW_LOG_DEBUG, "review",
			       "kind=%s outcome=%s rewrites=%u restores=%u warnings=%u",
			       zw_mutate_kind_name(info.kind), zw_mutate_outcome_name(info.outcome),
			       info.rewrites, info.restores, info.warnings);
		if (info.outcome == ZW_MO_DENIED || info.outcome == ZW_MO_ERROR)
			zw_log(ZW_LOG_INFO, "review_not_applied",
			       "kind=%s outcome=%s reason=\"%s\"", zw_mutate_kind_name(info.kind),
			       zw_mutate_outcome_name(info.outcome), info.message);
		return 0;
	}
	free(out);
	if (status == 500)
		return -ENOMEM;
	/* 400 / 413: the message is the body. */
	if (asprintf(&reply->body, "%s\n",
	             info.message[0] ? info.message : "request is not an AdmissionReview") < 0) {
		reply->body = NULL;
		return -ENOMEM;
	}
	reply->body_len = strlen(reply->body);
	reply->outcome = status == 413 ? ZW_REVIEW_TOO_LARGE : ZW_REVIEW_INVALID;
	zw_log(ZW_LOG_WARN, "review_rejected", "status=%d reason=\"%s\"", status, info.message);
	return 0;
}

static int sources_synced(void *arg)
{
	struct app *a = arg;

	if (a->no_kube)
		return 1;
	struct zw_wh_sources *src = atomic_load(&a->sources);

	return src && zw_wh_sources_synced(src);
}

static int ready_cb(void *arg)
{
	struct app *a = arg;
	int synced = sources_synced(a);

	zw_wh_metrics_set(a->metrics, ZW_G_SYNCED, synced);
	zw_wh_metrics_set(a->metrics, ZW_G_TARGETS, (int64_t)zw_registry_target_count(a->reg));
	return synced;
}

static void refresh_gauges(void *arg)
{
	struct app *a = arg;

	zw_wh_metrics_set(a->metrics, ZW_G_SYNCED, sources_synced(a));
	zw_wh_metrics_set(a->metrics, ZW_G_TARGETS, (int64_t)zw_registry_target_count(a->reg));
	zw_wh_metrics_set(a->metrics, ZW_G_LEADER, zw_reconcile_leading(atomic_load(&a->rec)));
}

static void on_sources_change(void *arg)
{
	struct app *a = arg;

	zw_wh_metrics_set(a->metrics, ZW_G_TARGETS, (int64_t)zw_registry_target_count(a->reg));
	zw_reconcile_kick(atomic_load(&a->rec));
}

/* Fills *f with the table's defaults and parses argv into it. Returns 0,
 * or the process exit code when the program should stop (0 after --help or
 * --version, 2 on a usage error; the text is printed). */
static int parse_flags(int argc, char **argv, struct flags *f)
{
	char msg[512], *text = NULL;
	int rc;

	memset(f, 0, sizeof(*f));
	f->handover_ms = ZW_RESTORE_HANDOVER_MS;
	rc = zw_flags_defaults(&flag_set, f, msg, sizeof(msg));
	if (rc == 0)
		rc = zw_flags_parse(&flag_set, f, argc, argv, msg, sizeof(msg));
	if (rc == ZW_FLAGS_VERSION) {
		zw_flags_version(&flag_set, msg, sizeof(msg));
		fputs(msg, stdout);
		return -1;
	}
	if (rc == ZW_FLAGS_HELP) {
		if (zw_flags_usage(&flag_set, &text) < 0) {
			fprintf(stderr, "zerowire-webhook: out of memory\n");
			return 1;
		}
		fputs(text, stdout);
		free(text);
		return -1;
	}
	if (rc < 0) {
		fprintf(stderr, "zerowire-webhook: %s\n", msg);
		return 2;
	}
	return 0;
}

/* Applies one static object, or each item of a JSON array or a `kind: List`
 * (one level). Returns the number of objects applied, or -1. */
static int apply_static(struct app *a, json_t *doc, const char *path, size_t idx)
{
	char err[ZW_TARGET_ERRLEN];
	json_t *items = NULL, *item;
	size_t j;
	int n = 0, rc;

	if (json_is_array(doc))
		items = doc;
	else if (json_is_object(doc) && json_is_array(json_object_get(doc, "items")) &&
	         strcmp(json_string_value(json_object_get(doc, "kind"))
	                        ? json_string_value(json_object_get(doc, "kind"))
	                        : "",
	                "List") == 0)
		items = json_object_get(doc, "items");
	if (items) {
		json_array_foreach(items, j, item)
		{
			if (json_is_array(item))
				continue;
			rc = apply_static(a, item, path, idx);
			if (rc < 0)
				return -1;
			n += rc;
		}
		return n;
	}
	err[0] = '\0';
	rc = zw_registry_apply_object(a->reg, doc, false, err);
	if (rc == ZW_TARGET_EINVAL || rc < 0) {
		zw_log(ZW_LOG_ERROR, "static_object_invalid", "file=%s doc=%zu error=\"%s\"", path,
		       idx, rc == ZW_TARGET_EINVAL ? err : "out of memory");
		return -1;
	}
	return rc == 0 ? 1 : 0;
}

/* Loads --static-objects into the registry. */
static int load_static(struct app *a, const char *path)
{
	char err[512];
	json_t *docs = NULL, *doc;
	size_t i;
	int n = 0, rc;

	if (zw_yaml_load_file(path, &docs, err, sizeof(err)) < 0) {
		zw_log(ZW_LOG_ERROR, "static_objects_failed", "file=%s error=\"%s\"", path, err);
		return -1;
	}
	json_array_foreach(docs, i, doc)
	{
		rc = apply_static(a, doc, path, i);
		if (rc < 0) {
			json_decref(docs);
			return -1;
		}
		n += rc;
	}
	json_decref(docs);
	zw_log(ZW_LOG_INFO, "static_objects_loaded", "file=%s objects=%d targets=%zu", path, n,
	       zw_registry_target_count(a->reg));
	return 0;
}

static void identity(char *buf, size_t len)
{
	const char *pod = getenv("POD_NAME");
	char host[256];

	if (pod && pod[0] != '\0') {
		snprintf(buf, len, "%s", pod);
		return;
	}
	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = '\0';
	snprintf(buf, len, "%s_%ld", host, (long)getpid());
}

/* The self-managed certificate thread hands over a renewed pair. */
static int on_new_cert(void *arg, const char *cert_pem, const char *key_pem)
{
	struct app *a = arg;
	struct zw_wh_server *s = atomic_load(&a->live_server);
	char err[ZW_WH_SERVER_ERRLEN];

	if (!s)
		return -1; /* not serving yet: offered again at the next round */
	if (zw_wh_server_set_cert_pem(s, cert_pem, key_pem, err) < 0) {
		zw_log(ZW_LOG_ERROR, "cert_swap_failed", "error=\"%s\"", err);
		return -1;
	}
	zw_log(ZW_LOG_INFO, "cert_swapped", NULL);
	return 0;
}

/* Splits "ns/name" into two pointers into buf (len bytes). */
static int split_ref(const char *ref, char *buf, size_t len, const char **ns, const char **name)
{
	char *slash;

	if (!ref || snprintf(buf, len, "%s", ref) >= (int)len)
		return -1;
	slash = strchr(buf, '/');
	if (!slash || slash == buf || slash[1] == '\0')
		return -1;
	*slash = '\0';
	*ns = buf;
	*name = slash + 1;
	return 0;
}

/* Sets the log line format from --log-format (NULL: logfmt). Returns 0 or
 * -1 when the name is unknown. */
static int apply_log_format(const char *name)
{
	enum zw_log_format fmt = ZW_LOG_LOGFMT;
	if (name && zw_log_format_parse(name, &fmt) < 0)
		return -1;
	zw_log_set_format(fmt);
	return 0;
}

/* `zerowire-webhook restore ...`: the one-shot restore of restore.h.
 * Returns the process exit code. */
static int run_restore(int argc, char **argv)
{
	struct flags f;
	struct zw_mutate_config mcfg;
	struct zw_kube_config *kcfg = NULL;
	struct zw_kube *kube = NULL;
	struct zw_restore_config rcfg;
	enum zw_log_level level;
	json_t *left = NULL;
	char err[512];
	int rc, exit_code = 1;

	memset(&rcfg, 0, sizeof(rcfg));
	rc = parse_flags(argc, argv, &f);
	if (rc != 0)
		return rc < 0 ? 0 : rc;
	/* Both names come from the flag table's choices. */
	if (zw_log_level_parse(f.log_level, &level) < 0 || apply_log_format(f.log_format) < 0)
		return 2;
	rcfg.deadline_ms = f.deadline_ms;
	rcfg.handover_ms = f.handover_ms;
	zw_log_init("webhook", level);
	zw_mutate_config_defaults(&mcfg);
	mcfg.proxy_namespace = f.proxy_namespace;
	if (zw_kube_config_auto(f.kubeconfig, &kcfg, err, sizeof(err)) < 0) {
		zw_log(ZW_LOG_ERROR, "kubeconfig_failed", "error=\"%s\"", err);
		goto out;
	}
	if (zw_kube_new(kcfg, &kube) < 0) {
		fprintf(stderr, "zerowire-webhook restore: out of memory\n");
		goto out;
	}
	rcfg.kube = kube;
	rcfg.mutate = &mcfg;
	rcfg.webhook_config = f.webhook_config;
	rcfg.lease_namespace = f.lease_namespace ? f.lease_namespace : mcfg.proxy_namespace;
	rcfg.lease_name = f.lease_name;
	rcfg.namespaces = f.namespaces;
	rcfg.n_namespaces = f.n_namespaces;
	rc = zw_restore_run(&rcfg, &left);
	if (rc < 0) {
		fprintf(stderr, "zerowire-webhook restore: out of memory\n");
	} else if (rc > 0) {
		size_t i;
		json_t *v;
		fprintf(stderr, "zerowire-webhook restore: not everything was restored:\n");
		json_array_foreach(left, i, v)
		{
			fprintf(stderr, "  %s\n", json_string_value(v));
		}
	} else {
		printf("zerowire-webhook restore: every route restored, zerowire's objects "
		       "deleted\n");
		exit_code = 0;
	}
out:
	json_decref(left);
	zw_kube_free(kube);
	zw_kube_config_free(kcfg);
	return exit_code;
}

/* Certificate-setup cancel: takes a pending SIGINT or SIGTERM (blocked in
 * every thread, see main) without waiting. Returns 1 when one was taken. */
static int stop_signalled(void *arg)
{
	const struct timespec now = {0, 0};
	sigset_t stop;

	(void)arg;
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	return sigtimedwait(&stop, NULL, &now) > 0;
}

/* Everything main() sets up and stop_all() takes down: the app the
 * callbacks see, the flags it was made from, and the start-up state whose
 * strings the configurations point into. */
struct webhook {
	struct flags f;
	struct app a;
	enum zw_log_level level;
	enum zw_alias_mode alias_mode;
	int self_certs;
	struct zw_selfcert_run_config ccfg;
	struct zw_selfcert_state first_cert; /* until the server has it */
	struct zw_metricsrv *msrv;
	sigset_t sigs; /* taken by sigwait in the main thread only */
	char secret_ref[512], service_ref[512], scaler[512], ident[300];
};

/* Checks --cert-mode against the flags it needs (self: --cert-secret, an
 * API server, --webhook-service as NS/NAME; files: both files) and fills
 * w->ccfg's Secret and Service names. Returns 0, or 2 (printed). */
static int cert_mode_config(struct webhook *w)
{
	const struct flags *f = &w->f;
	struct zw_selfcert_opts *o = &w->ccfg.opts;

	if (f->cert_mode && strcmp(f->cert_mode, "self") == 0) {
		w->self_certs = 1;
		if (f->no_kube ||
		    split_ref(f->cert_secret, w->secret_ref, sizeof(w->secret_ref),
		              &o->secret_namespace, &o->secret_name) < 0 ||
		    (f->webhook_service &&
		     split_ref(f->webhook_service, w->service_ref, sizeof(w->service_ref),
		               &o->service_namespace, &o->service_name) < 0)) {
			fprintf(stderr,
			        "zerowire-webhook: --cert-mode self needs --cert-secret "
			        "NS/NAME (and --webhook-service NS/NAME), and an API server\n");
			return 2;
		}
	} else if (!f->cert || !f->key) { /* --cert-mode files (the table allows no other) */
		fprintf(stderr, "zerowire-webhook: --tls-cert-file and --tls-key-file are required "
		                "(or --cert-mode self; see --help)\n");
		return 2;
	}
	return 0;
}

/* Fills w->a.mcfg (the rewriting configuration) and w->alias_mode from the
 * flags. Returns 0, or 2 on a value the table cannot check (printed). */
static int mutate_config(struct webhook *w)
{
	const struct flags *f = &w->f;
	struct zw_mutate_config *m = &w->a.mcfg;

	zw_mutate_config_defaults(m);
	m->proxy_service = f->proxy_service;
	m->proxy_namespace = f->proxy_namespace;
	m->proxy_port = f->proxy_port;
	m->proxy_h2c_port = f->proxy_h2c_port;
	if (f->proxy_h2c_port == f->proxy_port) {
		fprintf(stderr,
		        "zerowire-webhook: --proxy-h2c-port %d: want a Service port other "
		        "than --proxy-port, or 0\n",
		        f->proxy_h2c_port);
		return 2;
	}
	if (f->scaler_address) {
		m->scaler_address = f->scaler_address;
	} else {
		snprintf(w->scaler, sizeof(w->scaler), "%s.%s:9090", m->proxy_service,
		         m->proxy_namespace);
		m->scaler_address = w->scaler;
	}
	m->alias_service = f->alias_service ? f->alias_service : m->proxy_service;
	if (zw_alias_mode_parse(f->alias_mode, &w->alias_mode) < 0) {
		fprintf(stderr,
		        "zerowire-webhook: --alias-mode \"%s\": want endpointslice or "
		        "externalname\n",
		        f->alias_mode);
		return 2;
	}
	m->cluster_domain = f->cluster_domain;
	m->autowire_mesh_virtualservices = f->mesh_vs != 0;
	m->split_header = f->split_header != 0;
	if (f->kinds) {
		unsigned kinds;
		if (zw_autowire_parse(f->kinds, &kinds) < 0 || kinds == 0) {
			fprintf(stderr,
			        "zerowire-webhook: --kinds \"%s\": want a comma list of ingress, "
			        "httproute, grpcroute, virtualservice, gloo\n",
			        f->kinds);
			return 2;
		}
		m->enabled_kinds = kinds;
	}
	m->handwired_hosts = f->handwired;
	m->n_handwired_hosts = f->n_handwired;
	return 0;
}

/* Parses argv into w and checks the configuration; starts logging. Returns
 * 0 to go on, or -1 when the program should exit with *exit_code (0 after
 * --help or --version, 2 on a usage error; the message is printed). */
static int configure(struct webhook *w, int argc, char **argv, int *exit_code)
{
	int rc = parse_flags(argc, argv, &w->f);

	*exit_code = rc < 0 ? 0 : rc;
	if (rc != 0)
		return -1;
	*exit_code = 2;
	/* Both names come from the flag table's choices. */
	if (zw_log_level_parse(w->f.log_level, &w->level) < 0 ||
	    apply_log_format(w->f.log_format) < 0 || cert_mode_config(w) != 0)
		return -1;
	zw_log_init("webhook", w->level);
	if (mutate_config(w) != 0)
		return -1;
	w->a.no_kube = w->f.no_kube;
	*exit_code = 0;
	return 0;
}

/* Makes the self-managed certificate (or reads the files) and starts the
 * HTTPS server with it. Returns 0, -ECANCELED when a stop signal came during
 * the certificate set-up, or -1 (logged). */
static int start_server(struct webhook *w)
{
	const struct flags *f = &w->f;
	struct zw_wh_server_config scfg;
	char err[ZW_WH_SERVER_ERRLEN];
	int rc;

	memset(&scfg, 0, sizeof(scfg));
	if (w->self_certs) {
		w->ccfg.kube = w->a.kube;
		w->ccfg.opts.dns = f->cert_dns;
		w->ccfg.opts.n_dns = f->n_cert_dns;
		w->ccfg.opts.ips = f->cert_ips;
		w->ccfg.opts.n_ips = f->n_cert_ips;
		w->ccfg.webhook_config = f->webhook_config;
		w->ccfg.interval_ms = f->cert_interval_ms;
		w->ccfg.on_cert = on_new_cert;
		w->ccfg.arg = &w->a;
		rc = zw_selfcert_run_start(&w->ccfg, stop_signalled, NULL, &w->first_cert,
		                           &w->a.certs);
		if (rc == -ECANCELED) {
			zw_log(ZW_LOG_INFO, "stopping", "during=cert_setup");
			return rc;
		}
		if (rc < 0) {
			zw_log(ZW_LOG_ERROR, "cert_setup_failed", NULL);
			return -1;
		}
		scfg.cert_pem = w->first_cert.bundle.cert;
		scfg.key_pem = w->first_cert.bundle.key;
	} else {
		scfg.cert_file = f->cert;
		scfg.key_file = f->key;
	}
	scfg.listen = f->listen;
	scfg.max_body = f->max_body;
	scfg.threads = f->threads;
	scfg.max_connections = f->max_connections;
	scfg.max_per_ip = f->max_per_ip;
	scfg.body_budget = f->body_budget;
	scfg.read_timeout_s = (f->read_timeout_ms + 999) / 1000; /* whole seconds, rounded up */
	scfg.idle_timeout_s = (f->idle_timeout_ms + 999) / 1000;
	scfg.metrics = w->a.metrics;
	scfg.review = review_cb;
	scfg.ready = ready_cb;
	scfg.before_metrics = refresh_gauges;
	scfg.arg = &w->a;
	rc = zw_wh_server_start(&scfg, &w->a.server, err);
	zw_selfcert_state_free(&w->first_cert);
	if (rc < 0) {
		zw_log(ZW_LOG_ERROR, "server_failed", "error=\"%s\"", err);
		return -1;
	}
	atomic_store(&w->a.live_server, w->a.server);
	return 0;
}

/* Starts the watch loop, the target sources on it and, with --reconcile,
 * the reconciler. Returns 0 or -1 (logged). */
static int start_watches(struct webhook *w)
{
	const struct flags *f = &w->f;
	struct app *a = &w->a;
	struct zw_wh_sources_config src = {
	        .reg = a->reg,
	        .metrics = a->metrics,
	        .namespaces = f->namespaces,
	        .n_namespaces = f->n_namespaces,
	        .watch_services = true,
	        .proxy_namespace = a->mcfg.proxy_namespace,
	        .on_change = on_sources_change,
	        .arg = a,
	};
	struct zw_wh_sources *sources = NULL;
	struct zw_reconcile *rec = NULL;

	if (zw_watchloop_start(a->kcfg, &a->loop) < 0) {
		zw_log(ZW_LOG_ERROR, "watch_loop_failed", NULL);
		return -1;
	}
	/* Sources first: the reconciler's subscriptions of the same resources
	 * then share their watches. */
	src.loop = a->loop;
	if (zw_wh_sources_start(&src, &sources) < 0) {
		zw_log(ZW_LOG_ERROR, "sources_failed", NULL);
		return -1;
	}
	atomic_store(&a->sources, sources);
	if (!f->reconcile)
		return 0;
	identity(w->ident, sizeof(w->ident));
	struct zw_reconcile_config rcfg = {
	        .kube = a->kube,
	        .loop = a->loop,
	        .reg = a->reg,
	        .metrics = a->metrics,
	        .mutate = &a->mcfg,
	        .namespaces = f->namespaces,
	        .n_namespaces = f->n_namespaces,
	        .leader_elect = f->leader_elect != 0,
	        .lease_name = f->lease_name,
	        .lease_namespace =
	                f->lease_namespace ? f->lease_namespace : a->mcfg.proxy_namespace,
	        .identity = w->ident,
	        .resync_ms = f->resync_ms,
	        .alias_mode = (int)w->alias_mode,
	        .registry_synced = sources_synced,
	        .arg = a,
	};
	if (zw_reconcile_start(&rcfg, &rec) < 0) {
		zw_log(ZW_LOG_ERROR, "reconciler_failed", NULL);
		return -1;
	}
	atomic_store(&a->rec, rec);
	return 0;
}

/* Starts everything in order: metrics and registry, --static-objects, the
 * API client, the HTTPS server (after its certificate), the plain metrics
 * listener, then the watches and the reconciler. Returns 0 when serving,
 * -ECANCELED when stopped during the certificate set-up, or -1 (logged);
 * what started is stopped by stop_all() in every case. */
static int start_all(struct webhook *w)
{
	const struct flags *f = &w->f;
	struct app *a = &w->a;
	char err[512];
	int rc;

	if (zw_wh_metrics_new(&a->metrics) < 0)
		return -1;
	a->reg = zw_registry_new();
	if (!a->reg)
		return -1;
	if (f->static_objects && load_static(a, f->static_objects) < 0)
		return -1;
	if (!a->no_kube) {
		if (zw_kube_config_auto(f->kubeconfig, &a->kcfg, err, sizeof(err)) < 0) {
			zw_log(ZW_LOG_ERROR, "kubeconfig_failed", "error=\"%s\"", err);
			return -1;
		}
		if (zw_kube_new(a->kcfg, &a->kube) < 0) {
			zw_log(ZW_LOG_ERROR, "kube_client_failed", NULL);
			return -1;
		}
	}
	rc = start_server(w);
	if (rc < 0)
		return rc;
	if (f->metrics_listen) {
		if (zw_metricsrv_start(f->metrics_listen, a->metrics, refresh_gauges, a, &w->msrv) <
		    0) {
			zw_log(ZW_LOG_ERROR, "metrics_listen_failed", "addr=%s", f->metrics_listen);
			return -1;
		}
		zw_log(ZW_LOG_INFO, "metrics_listening", "addr=%s port=%d", f->metrics_listen,
		       zw_metricsrv_port(w->msrv));
	}
	zw_log(ZW_LOG_INFO, "listening", "addr=%s port=%d proxy=%s.%s:%d proxy_h2c=%d scaler=%s",
	       f->listen, zw_wh_server_port(a->server), a->mcfg.proxy_service,
	       a->mcfg.proxy_namespace, a->mcfg.proxy_port, a->mcfg.proxy_h2c_port,
	       a->mcfg.scaler_address);
	return a->no_kube ? 0 : start_watches(w);
}

/* Waits for SIGINT or SIGTERM; SIGUSR1 in between re-issues the
 * self-managed certificate. */
static void wait_for_stop(struct webhook *w)
{
	int sig;

	for (;;) {
		if (sigwait(&w->sigs, &sig) != 0)
			continue;
		if (sig == SIGUSR1) {
			if (w->a.certs) {
				zw_log(ZW_LOG_INFO, "cert_renewal_requested", NULL);
				zw_selfcert_run_force(w->a.certs);
			}
			continue;
		}
		zw_log(ZW_LOG_INFO, "stopping", "signal=%d", sig);
		return;
	}
}

/* Stops and frees whatever start_all() started, in the order the threads
 * depend on each other. */
static void stop_all(struct webhook *w)
{
	struct app *a = &w->a;

	zw_metricsrv_stop(w->msrv);
	zw_selfcert_run_stop(a->certs);
	atomic_store(&a->live_server, NULL);
	zw_selfcert_state_free(&w->first_cert);
	zw_wh_server_stop(a->server);
	/* The reconciler first: its thread reads the sources (sources_synced);
	 * the sources' kicks of it run on the loop, which it waits for. */
	zw_reconcile_stop(atomic_exchange(&a->rec, NULL));
	zw_wh_sources_stop(atomic_exchange(&a->sources, NULL));
	zw_watchloop_stop(a->loop);
	zw_kube_free(a->kube);
	zw_kube_config_free(a->kcfg);
	zw_registry_free(a->reg);
	zw_wh_metrics_free(a->metrics);
}

int main(int argc, char **argv)
{
	struct webhook w;
	int rc, exit_code;

	memset(&w, 0, sizeof(w));
	/* One malloc arena: reviews are answered one after another on any
	 * worker thread, and the memory one frees must serve the next instead of
	 * staying in its thread's arena (the review memory bound of whserver.h
	 * counts one heap). */
	mallopt(M_ARENA_MAX, 1);
	if (argc > 1 && strcmp(argv[1], "restore") == 0)
		return run_restore(argc - 1, argv + 1);
	if (configure(&w, argc, argv, &exit_code) < 0)
		return exit_code;
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&w.sigs);
	sigaddset(&w.sigs, SIGINT);
	sigaddset(&w.sigs, SIGTERM);
	sigaddset(&w.sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &w.sigs, NULL);
	rc = start_all(&w);
	if (rc == 0)
		wait_for_stop(&w);
	exit_code = rc == 0 || rc == -ECANCELED ? 0 : 1;
	stop_all(&w);
	return exit_code;
}
