/* zerowire-webhook entry point: flags, wiring of the server, the target
 * registry, the watches and the reconciler, and signal handling. */
#include "alias.h"
#include "duration.h"
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

#ifndef ZW_COMMIT
#define ZW_COMMIT "unknown" /* set by the Makefile from git */
#endif

#define MAX_LIST_ITEMS 64 /* entries of a comma list flag */

static const char usage[] =
        "usage: zerowire-webhook (--tls-cert-file FILE --tls-key-file FILE |\n"
        "                         --cert-mode self --cert-secret NS/NAME ...) [flags]\n"
        "       zerowire-webhook restore [--kubeconfig FILE] [--webhook-config NAME]\n"
        "                         [--lease-namespace NS] [--lease-name NAME] [--deadline D]\n"
        "\n"
        "Mutating admission webhook of zerowire: rewrites route destinations that\n"
        "name a scaled Service to the zerowire proxy, restores them exactly when the\n"
        "target goes away, and keeps cross-namespace wiring in place.\n"
        "\n"
        "Serving:\n"
        "  --listen ADDR              host:port, :port or [v6]:port (default :8443)\n"
        "  --metrics-listen ADDR      plain-HTTP /metrics and /healthz (default: off;\n"
        "                             /metrics is always on the TLS port too)\n"
        "  --tls-cert-file FILE       PEM certificate chain, re-read when it changes\n"
        "  --tls-key-file FILE        PEM private key, re-read when it changes\n"
        "  --cert-mode MODE           files (default with --tls-cert-file) or self:\n"
        "                             CA and certificate kept in --cert-secret, created\n"
        "                             when missing, renewed 30 days before expiry,\n"
        "                             checked every --cert-check-interval; SIGUSR1\n"
        "                             re-issues the certificate now (same CA)\n"
        "  --cert-secret NS/NAME      Secret of the self-managed certificate\n"
        "  --webhook-config NAME      MutatingWebhookConfiguration whose caBundle is kept\n"
        "  --webhook-service NS/NAME  Service the API server calls (certificate names\n"
        "                             svc, svc.ns, svc.ns.svc, svc.ns.svc.cluster.local)\n"
        "  --cert-dns LIST            further DNS names (url mode)\n"
        "  --cert-ips LIST            IP addresses (url mode)\n"
        "  --cert-check-interval S    seconds between certificate checks (default 60)\n"
        "  --max-body BYTES           largest AdmissionReview accepted, else 413\n"
        "                             (default 3145728)\n"
        "  --body-budget BYTES        request body bytes buffered across all connections;\n"
        "                             a request that would pass it is answered 503 with\n"
        "                             Retry-After at once (default 25165824 = 24 MiB,\n"
        "                             at least --max-body)\n"
        "  --threads N                HTTPS worker threads (default 2)\n"
        "  --max-connections N        open connections; past it the oldest idle, else the\n"
        "                             oldest not yet requested, else the oldest still\n"
        "                             reading connection is closed (default 256)\n"
        "  --max-connections-per-ip N open connections per client address (default 0:\n"
        "                             no limit; the API server comes from few addresses)\n"
        "  --read-timeout S           seconds from accept (TLS handshake, headers, body)\n"
        "                             or from the end of the headers to a complete\n"
        "                             request, and to write its answer (default 10)\n"
        "  --idle-timeout S           seconds a kept-alive connection may wait for its\n"
        "                             next request (default 60)\n"
        "\n"
        "Kubernetes API:\n"
        "  --kubeconfig FILE          kubeconfig (default: in-cluster service account,\n"
        "                             else $KUBECONFIG, else ~/.kube/config)\n"
        "  --no-kube                  no API server: admission only, targets from\n"
        "                             --static-objects; /readyz is ready at once\n"
        "  --static-objects FILE      YAML/JSON file of target sources (ScaledObjects,\n"
        "                             HTTPScaledObjects, InterceptorRoutes, Upstreams,\n"
        "                             ...) loaded into the registry at start\n"
        "  --watch-namespaces LIST    comma list of namespaces to watch (default all)\n"
        "\n"
        "Rewriting:\n"
        "  --proxy-service NAME       proxy Service (default zerowire-proxy)\n"
        "  --proxy-namespace NS       its namespace (default zerowire)\n"
        "  --proxy-port N             its HTTP port (default 8080)\n"
        "  --scaler-address ADDR      external-push scalerAddress\n"
        "                             (default <proxy-service>.<proxy-namespace>:9090)\n"
        "  --alias-service NAME       per-namespace alias Service for Ingresses\n"
        "                             (default: the proxy Service name)\n"
        "  --alias-mode MODE          how the alias leads to the proxy: endpointslice\n"
        "                             (selectorless Service, EndpointSlices mirroring\n"
        "                             the proxy's ready pods; default) or externalname\n"
        "                             (ExternalName Service; many Ingress controllers\n"
        "                             refuse those); aliases of the other mode are\n"
        "                             converted\n"
        "  --cluster-domain DOMAIN    (default cluster.local)\n"
        "  --kinds LIST               route kinds to handle: ingress,httproute,\n"
        "                             grpcroute,virtualservice,gloo (default all)\n"
        "  --handwired-hosts LIST     Service FQDNs that already mean \"the proxy\"\n"
        "  --mesh-virtualservices     also rewrite mesh-bound Istio VirtualServices\n"
        "  --split-header=BOOL        on routes that split traffic between scaled\n"
        "                             Services, make each destination set header\n"
        "                             X-Zerowire-Service so the proxy keeps the split\n"
        "                             (default true)\n"
        "\n"
        "Reconciler:\n"
        "  --reconcile=false          do not run the reconciler\n"
        "  --leader-elect=BOOL        elect one active reconciler with a Lease\n"
        "                             (default true)\n"
        "  --lease-name NAME          (default zerowire-webhook)\n"
        "  --lease-namespace NS       (default: the proxy namespace)\n"
        "  --resync SECONDS           full reconciler pass interval (default 10)\n"
        "\n"
        "  --log-level LEVEL          debug, info, warn, error (default info)\n"
        "  --log-format FORMAT        logfmt or json (default logfmt)\n"
        "  --help, --version\n"
        "\n"
        "restore (uninstall, break-glass): holds the reconciler Lease (--lease-name in\n"
        "--lease-namespace, default zerowire-webhook in the proxy namespace) so running\n"
        "replicas stay passive, deletes the MutatingWebhookConfiguration\n"
        "--webhook-config (when given), restores every rewritten route (of\n"
        "--watch-namespaces, default all) from its zerowire.io/original records by a\n"
        "direct patch, and deletes the alias Services, ReferenceGrants and generated\n"
        "ScaledObjects zerowire made. Exits 0 when all is restored, 1 with the list of\n"
        "what is left at the deadline.\n"
        "  --deadline D               seconds, or with suffix s or m (default 2m)\n"
        "  --handover D               wait after taking the Lease (default 6s)\n";

struct app {
	struct zw_wh_metrics *metrics;
	struct zw_registry *reg;
	struct zw_mutate_config mcfg;
	struct zw_kube_config *kcfg;
	struct zw_kube *kube;
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
	const char *watch_namespaces;
	const char *proxy_service;
	const char *proxy_namespace;
	const char *scaler_address;
	const char *alias_service;
	const char *alias_mode;
	const char *cluster_domain;
	const char *kinds;
	const char *handwired;
	const char *lease_name;
	const char *lease_namespace;
	const char *log_level;
	const char *log_format;
	const char *cert_mode;
	const char *cert_secret;
	const char *webhook_config;
	const char *webhook_service;
	const char *cert_dns;
	const char *cert_ips;
	const char *deadline;
	const char *handover;
	long cert_interval_s;
	long proxy_port;
	long max_body;
	long threads;
	long max_connections;
	long max_per_ip;
	long body_budget;
	long read_timeout_s;
	long idle_timeout_s;
	long resync_s;
	int no_kube;
	int mesh_vs;
	int reconcile;
	int leader_elect;
	int split_header;
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

/* Splits a comma list into a NULL-terminated array of copies in *out. */
static int split_list(const char *s, char ***out, size_t *n_out)
{
	char **v = NULL;
	size_t n = 0;
	const char *p = s;

	*out = NULL;
	*n_out = 0;
	if (!s || *s == '\0')
		return 0;
	v = calloc(MAX_LIST_ITEMS + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	while (*p != '\0') {
		const char *e = strchr(p, ',');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		while (l > 0 && *p == ' ')
			p++, l--;
		while (l > 0 && p[l - 1] == ' ')
			l--;
		if (l > 0) {
			if (n == MAX_LIST_ITEMS)
				goto fail;
			v[n] = strndup(p, l);
			if (!v[n])
				goto fail;
			n++;
		}
		if (!e)
			break;
		p = e + 1;
	}
	*out = v;
	*n_out = n;
	return 0;
fail:
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
	return -EINVAL;
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static int parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_bool(const char *s, int *out)
{
	if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0 || strcmp(s, "yes") == 0) {
		*out = 1;
		return 0;
	}
	if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0 || strcmp(s, "no") == 0) {
		*out = 0;
		return 0;
	}
	return -1;
}

/* Parses argv into f. Returns 0, 1 when --help/--version was handled, or 2
 * on a usage error (message printed). */
static int parse_flags(int argc, char **argv, struct flags *f)
{
	static const struct {
		const char *name;
		size_t off;
	} strs[] = {
	        {"listen", offsetof(struct flags, listen)},
	        {"metrics-listen", offsetof(struct flags, metrics_listen)},
	        {"tls-cert-file", offsetof(struct flags, cert)},
	        {"tls-key-file", offsetof(struct flags, key)},
	        {"kubeconfig", offsetof(struct flags, kubeconfig)},
	        {"static-objects", offsetof(struct flags, static_objects)},
	        {"watch-namespaces", offsetof(struct flags, watch_namespaces)},
	        {"proxy-service", offsetof(struct flags, proxy_service)},
	        {"proxy-namespace", offsetof(struct flags, proxy_namespace)},
	        {"scaler-address", offsetof(struct flags, scaler_address)},
	        {"alias-service", offsetof(struct flags, alias_service)},
	        {"alias-mode", offsetof(struct flags, alias_mode)},
	        {"cluster-domain", offsetof(struct flags, cluster_domain)},
	        {"kinds", offsetof(struct flags, kinds)},
	        {"handwired-hosts", offsetof(struct flags, handwired)},
	        {"lease-name", offsetof(struct flags, lease_name)},
	        {"lease-namespace", offsetof(struct flags, lease_namespace)},
	        {"log-level", offsetof(struct flags, log_level)},
	        {"log-format", offsetof(struct flags, log_format)},
	        {"cert-mode", offsetof(struct flags, cert_mode)},
	        {"cert-secret", offsetof(struct flags, cert_secret)},
	        {"webhook-config", offsetof(struct flags, webhook_config)},
	        {"webhook-service", offsetof(struct flags, webhook_service)},
	        {"cert-dns", offsetof(struct flags, cert_dns)},
	        {"cert-ips", offsetof(struct flags, cert_ips)},
	        {"deadline", offsetof(struct flags, deadline)},
	        {"handover", offsetof(struct flags, handover)},
	};
	static const struct {
		const char *name;
		size_t off;
		long min, max;
	} nums[] = {
	        {"proxy-port", offsetof(struct flags, proxy_port), 1, 65535},
	        {"max-body", offsetof(struct flags, max_body), 1024, 256L * 1024 * 1024},
	        {"threads", offsetof(struct flags, threads), 1, 64},
	        {"max-connections", offsetof(struct flags, max_connections), 1, 65536},
	        {"max-connections-per-ip", offsetof(struct flags, max_per_ip), 0, 65536},
	        {"body-budget", offsetof(struct flags, body_budget), 1024, 4096L * 1024 * 1024},
	        {"read-timeout", offsetof(struct flags, read_timeout_s), 1, 3600},
	        {"idle-timeout", offsetof(struct flags, idle_timeout_s), 1, 86400},
	        {"resync", offsetof(struct flags, resync_s), 1, 3600},
	        {"cert-check-interval", offsetof(struct flags, cert_interval_s), 1, 86400},
	};
	static const struct {
		const char *name;
		size_t off;
	} bools[] = {
	        {"no-kube", offsetof(struct flags, no_kube)},
	        {"mesh-virtualservices", offsetof(struct flags, mesh_vs)},
	        {"reconcile", offsetof(struct flags, reconcile)},
	        {"leader-elect", offsetof(struct flags, leader_elect)},
	        {"split-header", offsetof(struct flags, split_header)},
	};

	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *val = NULL, *eq;
		char name[64];
		size_t nl;
		int found = 0;

		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			fputs(usage, stdout);
			return 1;
		}
		if (strcmp(arg, "--version") == 0) {
			printf("zerowire-webhook %s (commit %s)\n", ZW_VERSION, ZW_COMMIT);
			return 1;
		}
		if (strncmp(arg, "--", 2) != 0)
			goto bad;
		eq = strchr(arg, '=');
		nl = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
		if (nl >= sizeof(name))
			goto bad;
		memcpy(name, arg + 2, nl);
		name[nl] = '\0';
		if (eq)
			val = eq + 1;
		for (size_t k = 0; k < sizeof(bools) / sizeof(bools[0]); k++) {
			if (strcmp(name, bools[k].name) != 0)
				continue;
			int *dst = (int *)((char *)f + bools[k].off);
			found = 1;
			if (!val)
				*dst = 1;
			else if (parse_bool(val, dst) < 0) {
				fprintf(stderr,
				        "zerowire-webhook: --%s wants true or false, not \"%s\"\n",
				        name, val);
				return 2;
			}
		}
		if (found)
			continue;
		for (size_t k = 0; k < sizeof(strs) / sizeof(strs[0]); k++)
			found |= strcmp(name, strs[k].name) == 0;
		for (size_t k = 0; k < sizeof(nums) / sizeof(nums[0]); k++)
			found |= strcmp(name, nums[k].name) == 0;
		if (!found) {
			fprintf(stderr, "zerowire-webhook: unknown flag --%s (see --help)\n", name);
			return 2;
		}
		found = 0;
		if (!val) {
			if (i + 1 >= argc) {
				fprintf(stderr, "zerowire-webhook: --%s needs a value\n", name);
				return 2;
			}
			val = argv[++i];
		}
		for (size_t k = 0; k < sizeof(strs) / sizeof(strs[0]); k++)
			if (strcmp(name, strs[k].name) == 0) {
				*(const char **)((char *)f + strs[k].off) = val;
				found = 1;
			}
		for (size_t k = 0; k < sizeof(nums) / sizeof(nums[0]); k++)
			if (strcmp(name, nums[k].name) == 0) {
				found = 1;
				if (parse_long(val, nums[k].min, nums[k].max,
				               (long *)((char *)f + nums[k].off)) < 0) {
					fprintf(stderr,
					        "zerowire-webhook: --%s wants a number from %ld to "
					        "%ld, not \"%s\"\n",
					        name, nums[k].min, nums[k].max, val);
					return 2;
				}
			}
		if (!found)
			goto bad;
		continue;
	bad:
		fprintf(stderr, "zerowire-webhook: unknown argument %s (see --help)\n", arg);
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

/* Parses a Go-style duration (a bare number is seconds) of at most a day
 * into *ms. */
static int parse_duration_ms(const char *s, unsigned *ms)
{
	uint64_t v;

	if (zw_duration_parse_ms(s, &v) < 0 || v > 86400000u)
		return -1;
	*ms = (unsigned)v;
	return 0;
}

/* `zerowire-webhook restore ...`: the one-shot restore of restore.h.
 * Returns the process exit code. */
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

static int run_restore(int argc, char **argv)
{
	struct flags f = {.log_level = "info"};
	struct zw_mutate_config mcfg;
	struct zw_kube_config *kcfg = NULL;
	struct zw_kube *kube = NULL;
	struct zw_restore_config rcfg;
	enum zw_log_level level;
	char **namespaces = NULL;
	size_t n_namespaces = 0;
	json_t *left = NULL;
	char err[512];
	int rc, exit_code = 1;

	memset(&rcfg, 0, sizeof(rcfg));
	rcfg.handover_ms = ZW_RESTORE_HANDOVER_MS;
	rc = parse_flags(argc, argv, &f);
	if (rc == 1)
		return 0;
	if (rc != 0)
		return 2;
	if (zw_log_level_parse(f.log_level, &level) < 0 || apply_log_format(f.log_format) < 0 ||
	    (f.deadline && parse_duration_ms(f.deadline, &rcfg.deadline_ms) < 0) ||
	    (f.handover && parse_duration_ms(f.handover, &rcfg.handover_ms) < 0) ||
	    split_list(f.watch_namespaces, &namespaces, &n_namespaces) < 0) {
		fprintf(stderr, "zerowire-webhook restore: invalid --log-level, --deadline, "
		                "--handover or --watch-namespaces (see --help)\n");
		return 2;
	}
	zw_log_init("webhook", level);
	zw_mutate_config_defaults(&mcfg);
	if (f.proxy_namespace)
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
	rcfg.lease_name = f.lease_name ? f.lease_name : "zerowire-webhook";
	rcfg.namespaces = (const char *const *)namespaces;
	rcfg.n_namespaces = n_namespaces;
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
	free_list(namespaces, n_namespaces);
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

int main(int argc, char **argv)
{
	struct flags f = {
	        .listen = ":8443",
	        .lease_name = "zerowire-webhook",
	        .log_level = "info",
	        .proxy_port = 0,
	        .reconcile = 1,
	        .leader_elect = 1,
	        .split_header = 1,
	};
	struct app a;
	struct zw_metricsrv *msrv = NULL;
	struct zw_wh_server_config scfg;
	struct zw_selfcert_state first_cert;
	struct zw_selfcert_run_config ccfg;
	char secret_ref[512], service_ref[512];
	char **cert_dns = NULL, **cert_ips = NULL;
	size_t n_cert_dns = 0, n_cert_ips = 0;
	int self_certs = 0;
	enum zw_alias_mode alias_mode = ZW_ALIAS_ENDPOINTSLICE;
	char err[ZW_WH_SERVER_ERRLEN > 512 ? ZW_WH_SERVER_ERRLEN : 512];
	char scaler[512], ident[300];
	char **namespaces = NULL, **handwired = NULL;
	size_t n_namespaces = 0, n_handwired = 0;
	enum zw_log_level level;
	sigset_t sigs;
	int sig, rc, exit_code = 1;

	memset(&a, 0, sizeof(a));
	/* One malloc arena: reviews are answered one after another on any
	 * worker thread, and the memory one frees must serve the next instead of
	 * staying in its thread's arena (the review memory bound of whserver.h
	 * counts one heap). */
	mallopt(M_ARENA_MAX, 1);
	if (argc > 1 && strcmp(argv[1], "restore") == 0)
		return run_restore(argc - 1, argv + 1);
	rc = parse_flags(argc, argv, &f);
	if (rc == 1)
		return 0;
	if (rc != 0)
		return 2;
	if (zw_log_level_parse(f.log_level, &level) < 0) {
		fprintf(stderr, "zerowire-webhook: unknown --log-level %s\n", f.log_level);
		return 2;
	}
	if (apply_log_format(f.log_format) < 0) {
		fprintf(stderr, "zerowire-webhook: --log-format: want logfmt or json, not %s\n",
		        f.log_format);
		return 2;
	}
	memset(&first_cert, 0, sizeof(first_cert));
	memset(&ccfg, 0, sizeof(ccfg));
	if (f.cert_mode && strcmp(f.cert_mode, "self") == 0) {
		self_certs = 1;
		if (f.no_kube ||
		    split_ref(f.cert_secret, secret_ref, sizeof(secret_ref),
		              &ccfg.opts.secret_namespace, &ccfg.opts.secret_name) < 0 ||
		    (f.webhook_service &&
		     split_ref(f.webhook_service, service_ref, sizeof(service_ref),
		               &ccfg.opts.service_namespace, &ccfg.opts.service_name) < 0)) {
			fprintf(stderr,
			        "zerowire-webhook: --cert-mode self needs --cert-secret "
			        "NS/NAME (and --webhook-service NS/NAME), and an API server\n");
			return 2;
		}
	} else if (f.cert_mode && strcmp(f.cert_mode, "files") != 0) {
		fprintf(stderr, "zerowire-webhook: --cert-mode is files or self, not \"%s\"\n",
		        f.cert_mode);
		return 2;
	} else if (!f.cert || !f.key) {
		fprintf(stderr, "zerowire-webhook: --tls-cert-file and --tls-key-file are required "
		                "(or --cert-mode self; see --help)\n");
		return 2;
	}
	zw_log_init("webhook", level);

	zw_mutate_config_defaults(&a.mcfg);
	if (f.proxy_service)
		a.mcfg.proxy_service = f.proxy_service;
	if (f.proxy_namespace)
		a.mcfg.proxy_namespace = f.proxy_namespace;
	if (f.proxy_port != 0)
		a.mcfg.proxy_port = (int)f.proxy_port;
	if (f.scaler_address) {
		a.mcfg.scaler_address = f.scaler_address;
	} else {
		snprintf(scaler, sizeof(scaler), "%s.%s:9090", a.mcfg.proxy_service,
		         a.mcfg.proxy_namespace);
		a.mcfg.scaler_address = scaler;
	}
	a.mcfg.alias_service = f.alias_service ? f.alias_service : a.mcfg.proxy_service;
	if (f.alias_mode && zw_alias_mode_parse(f.alias_mode, &alias_mode) < 0) {
		fprintf(stderr,
		        "zerowire-webhook: --alias-mode \"%s\": want endpointslice or "
		        "externalname\n",
		        f.alias_mode);
		return 2;
	}
	if (f.cluster_domain)
		a.mcfg.cluster_domain = f.cluster_domain;
	a.mcfg.autowire_mesh_virtualservices = f.mesh_vs != 0;
	a.mcfg.split_header = f.split_header != 0;
	if (f.kinds) {
		unsigned kinds;
		if (zw_autowire_parse(f.kinds, &kinds) < 0 || kinds == 0) {
			fprintf(stderr,
			        "zerowire-webhook: --kinds \"%s\": want a comma list of ingress, "
			        "httproute, grpcroute, virtualservice, gloo\n",
			        f.kinds);
			return 2;
		}
		a.mcfg.enabled_kinds = kinds;
	}
	if (split_list(f.watch_namespaces, &namespaces, &n_namespaces) < 0 ||
	    split_list(f.handwired, &handwired, &n_handwired) < 0) {
		fprintf(stderr, "zerowire-webhook: a list flag has more than %d entries\n",
		        MAX_LIST_ITEMS);
		return 2;
	}
	if (split_list(f.cert_dns, &cert_dns, &n_cert_dns) < 0 ||
	    split_list(f.cert_ips, &cert_ips, &n_cert_ips) < 0) {
		fprintf(stderr, "zerowire-webhook: a list flag has more than %d entries\n",
		        MAX_LIST_ITEMS);
		return 2;
	}
	a.mcfg.handwired_hosts = (const char *const *)handwired;
	a.mcfg.n_handwired_hosts = n_handwired;
	a.no_kube = f.no_kube;

	/* Signals are taken by sigwait in this thread only. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	if (zw_wh_metrics_new(&a.metrics) < 0)
		goto out;
	a.reg = zw_registry_new();
	if (!a.reg)
		goto out;
	if (f.static_objects && load_static(&a, f.static_objects) < 0)
		goto out;

	if (!a.no_kube) {
		if (zw_kube_config_auto(f.kubeconfig, &a.kcfg, err, sizeof(err)) < 0) {
			zw_log(ZW_LOG_ERROR, "kubeconfig_failed", "error=\"%s\"", err);
			goto out;
		}
		if (zw_kube_new(a.kcfg, &a.kube) < 0) {
			zw_log(ZW_LOG_ERROR, "kube_client_failed", NULL);
			goto out;
		}
	}

	memset(&scfg, 0, sizeof(scfg));
	if (self_certs) {
		ccfg.kube = a.kube;
		ccfg.opts.dns = (const char *const *)cert_dns;
		ccfg.opts.n_dns = n_cert_dns;
		ccfg.opts.ips = (const char *const *)cert_ips;
		ccfg.opts.n_ips = n_cert_ips;
		ccfg.webhook_config = f.webhook_config;
		ccfg.interval_ms = (unsigned)(f.cert_interval_s ? f.cert_interval_s : 60) * 1000u;
		ccfg.on_cert = on_new_cert;
		ccfg.arg = &a;
		rc = zw_selfcert_run_start(&ccfg, stop_signalled, NULL, &first_cert, &a.certs);
		if (rc == -ECANCELED) {
			zw_log(ZW_LOG_INFO, "stopping", "during=cert_setup");
			exit_code = 0;
			goto out;
		}
		if (rc < 0) {
			zw_log(ZW_LOG_ERROR, "cert_setup_failed", NULL);
			goto out;
		}
		scfg.cert_pem = first_cert.bundle.cert;
		scfg.key_pem = first_cert.bundle.key;
	} else {
		scfg.cert_file = f.cert;
		scfg.key_file = f.key;
	}
	scfg.listen = f.listen;
	scfg.max_body = (size_t)f.max_body;
	scfg.threads = (unsigned)f.threads;
	scfg.max_connections = (unsigned)f.max_connections;
	scfg.max_per_ip = (unsigned)f.max_per_ip;
	scfg.body_budget = (size_t)f.body_budget;
	scfg.read_timeout_s = (unsigned)f.read_timeout_s;
	scfg.idle_timeout_s = (unsigned)f.idle_timeout_s;
	scfg.metrics = a.metrics;
	scfg.review = review_cb;
	scfg.ready = ready_cb;
	scfg.before_metrics = refresh_gauges;
	scfg.arg = &a;
	rc = zw_wh_server_start(&scfg, &a.server, err);
	zw_selfcert_state_free(&first_cert);
	if (rc == 0)
		atomic_store(&a.live_server, a.server);
	if (rc < 0) {
		zw_log(ZW_LOG_ERROR, "server_failed", "error=\"%s\"", err);
		goto out;
	}
	if (f.metrics_listen) {
		if (zw_metricsrv_start(f.metrics_listen, a.metrics, refresh_gauges, &a, &msrv) <
		    0) {
			zw_log(ZW_LOG_ERROR, "metrics_listen_failed", "addr=%s", f.metrics_listen);
			goto out;
		}
		zw_log(ZW_LOG_INFO, "metrics_listening", "addr=%s port=%d", f.metrics_listen,
		       zw_metricsrv_port(msrv));
	}
	zw_log(ZW_LOG_INFO, "listening", "addr=%s port=%d proxy=%s.%s:%d scaler=%s", f.listen,
	       zw_wh_server_port(a.server), a.mcfg.proxy_service, a.mcfg.proxy_namespace,
	       a.mcfg.proxy_port, a.mcfg.scaler_address);

	if (!a.no_kube) {
		struct zw_wh_sources_config src = {
		        .kube = a.kube,
		        .reg = a.reg,
		        .metrics = a.metrics,
		        .namespaces = (const char *const *)namespaces,
		        .n_namespaces = n_namespaces,
		        .watch_services = true,
		        .on_change = on_sources_change,
		        .arg = &a,
		};
		if (f.reconcile) {
			struct zw_reconcile_config rcfg = {
			        .kube = a.kube,
			        .reg = a.reg,
			        .metrics = a.metrics,
			        .mutate = &a.mcfg,
			        .namespaces = (const char *const *)namespaces,
			        .n_namespaces = n_namespaces,
			        .leader_elect = f.leader_elect != 0,
			        .lease_name = f.lease_name,
			        .lease_namespace = f.lease_namespace ? f.lease_namespace
			                                             : a.mcfg.proxy_namespace,
			        .identity = ident,
			        .resync_ms = (unsigned)f.resync_s * 1000u,
			        .alias_mode = (int)alias_mode,
			        .registry_synced = sources_synced,
			        .arg = &a,
			};
			identity(ident, sizeof(ident));
			struct zw_reconcile *rec = NULL;
			if (zw_reconcile_start(&rcfg, &rec) < 0) {
				zw_log(ZW_LOG_ERROR, "reconciler_failed", NULL);
				goto out;
			}
			atomic_store(&a.rec, rec);
		}
		struct zw_wh_sources *sources = NULL;
		if (zw_wh_sources_start(&src, &sources) < 0) {
			zw_log(ZW_LOG_ERROR, "sources_failed", NULL);
			goto out;
		}
		atomic_store(&a.sources, sources);
	}

	for (;;) {
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig == SIGUSR1) {
			if (a.certs) {
				zw_log(ZW_LOG_INFO, "cert_renewal_requested", NULL);
				zw_selfcert_run_force(a.certs);
			}
			continue;
		}
		zw_log(ZW_LOG_INFO, "stopping", "signal=%d", sig);
		break;
	}
	exit_code = 0;
out:
	zw_metricsrv_stop(msrv);
	zw_selfcert_run_stop(a.certs);
	atomic_store(&a.live_server, NULL);
	zw_selfcert_state_free(&first_cert);
	zw_wh_server_stop(a.server);
	zw_wh_sources_stop(atomic_exchange(&a.sources, NULL));
	zw_reconcile_stop(atomic_exchange(&a.rec, NULL));
	zw_kube_free(a.kube);
	zw_kube_config_free(a.kcfg);
	zw_registry_free(a.reg);
	zw_wh_metrics_free(a.metrics);
	free_list(namespaces, n_namespaces);
	free_list(handwired, n_handwired);
	free_list(cert_dns, n_cert_dns);
	free_list(cert_ips, n_cert_ips);
	return exit_code;
}
