/* zerowire target model: one scaled workload's HTTP identity.
 *
 * A target is parsed from one of four sources (design.md "Targets"):
 *   ZW_SRC_SCALEDOBJECT       ScaledObject trigger `external-push` whose metadata
 *                             carries routing keys (service, hosts, ...)
 *   ZW_SRC_KEDIFY             ScaledObject trigger `kedify-http` (same keys; the
 *                             webhook turns it into external-push)
 *   ZW_SRC_INTERCEPTORROUTE   InterceptorRoute http.keda.sh/v1beta1; the
 *                             ScaledObject naming it via `interceptorRoute`
 *                             supplies scaled_object / scale_target
 *   ZW_SRC_HTTPSCALEDOBJECT   HTTPScaledObject http.keda.sh/v1alpha1
 *
 * Objects are JSON (jansson) as the API server returns them. Parsers never
 * print; on invalid input they return ZW_TARGET_EINVAL and write one message
 * that names the object, the field and the reason, e.g.
 *   ScaledObject default/podinfo trigger 0: metadata.port "abc" is not a port number
 *
 * Ownership: every string and array inside a struct zw_target is owned by it
 * and released by zw_target_free().
 *
 * This header is the public entry point of all target files: the model, its
 * lifetime and dispatch are target.c; the parsers live by source in
 * target_scaledobject.c (ScaledObject and Kedify triggers),
 * target_httpscaledobject.c and target_interceptorroute.c; their shared
 * kit (target_parse.h, target_rule.h, target_crd.h) is internal. */
#ifndef ZW_TARGET_H
#define ZW_TARGET_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZW_TARGET_ERRLEN 512

/* Request header naming the Service ("<namespace>/<name>") a rewritten
 * destination pointed at. The webhook sets it on destinations of a traffic
 * split between scaled Services (per-destination header filters), and the
 * proxy uses it to pick among targets that match a request equally. */
#define ZW_SERVICE_HEADER "x-zerowire-service"

/* Limits (additions by the target module; see docs/target-model.md). Input
 * beyond a limit is rejected with ZW_TARGET_EINVAL and a message. */
#define ZW_TARGET_MAX_LIST    1024    /* hosts, paths, headers, rules, static routes per list */
#define ZW_TARGET_MAX_HOST    253     /* bytes of one host (after the port is stripped) */
#define ZW_TARGET_MAX_PATH    1024    /* bytes of one path prefix */
#define ZW_TARGET_MAX_HDRNAME 256     /* bytes of one header name */
#define ZW_TARGET_MAX_HDRVAL  4096    /* bytes of one header value */
#define ZW_TARGET_MAX_BODY    32768   /* bytes of a static response body (CRD limit) */
#define ZW_TARGET_MAX_BUCKETS 3600    /* window / granularity, e.g. 1h at 1s */
#define ZW_TARGET_MAX_PENDING 1000000 /* largest accepted maxPendingRequests */

/* A timeout field set explicitly to 0 ("0s": no deadline). Unset stays 0
 * (use the global default). uv_timer_start clamps it to "never". */
#define ZW_TIMEOUT_NONE UINT64_MAX

/* endpointConcurrency values besides a number. */
#define ZW_ALLOWANCE_UNSET (-1)
#define ZW_ALLOWANCE_AUTO  (-2)
#define ZW_ALLOWANCE_MAX   1000000 /* largest accepted endpointConcurrency */

/* Kedify default waiting page (coldStartWaitingPageEnabled: "true"). */
#define ZW_WAITING_PAGE_STATUS      503
#define ZW_WAITING_PAGE_BODY        "Service is starting, try again later."
#define ZW_WAITING_PAGE_RETRY_AFTER "10"
/* coldStartWaitingPageConfigMapRef: the page body is this key of the ConfigMap
 * (placeholder.body_configmap / body_configmap_key). */
#define ZW_WAITING_PAGE_CONFIGMAP_KEY "coldStartWaitingPageBody"

enum zw_target_status {
	ZW_TARGET_OK = 0,
	ZW_TARGET_ENOTARGET = -1, /* object/trigger is not a zerowire target (ignore it) */
	ZW_TARGET_EINVAL = -2,    /* it is one, but invalid: see the error message */
	ZW_TARGET_ENOMEM = -3,
};

enum zw_target_source {
	ZW_SRC_SCALEDOBJECT = 0,
	ZW_SRC_KEDIFY,
	ZW_SRC_INTERCEPTORROUTE,
	ZW_SRC_HTTPSCALEDOBJECT,
};

/* Route kinds a target lets the webhook autowire (trafficAutowire). */
enum zw_autowire {
	ZW_AW_INGRESS = 1u << 0,
	ZW_AW_HTTPROUTE = 1u << 1,
	ZW_AW_GRPCROUTE = 1u << 2,
	ZW_AW_VIRTUALSERVICE = 1u << 3, /* Istio */
	ZW_AW_GLOO = 1u << 4,           /* Gloo Edge v1 and Gloo Platform v2 */
	ZW_AW_ALL = (1u << 5) - 1,
};

/* trafficAutowire words that are accepted but not supported by zerowire
 * (struct zw_target.autowire_ignored): `route` (OpenShift Route) and
 * `service` (in-cluster Service/Endpoints autowiring). The webhook may warn. */
enum zw_autowire_ignored {
	ZW_AW_IGNORED_ROUTE = 1u << 0,
	ZW_AW_IGNORED_SERVICE = 1u << 1,
};

/* Which metrics the target reports to KEDA (both allowed: the HPA takes max). */
enum zw_metric {
	ZW_METRIC_REQUEST_RATE = 1u << 0,
	ZW_METRIC_CONCURRENCY = 1u << 1,
};

enum zw_healthcheck_response {
	ZW_HC_NONE = 0,
	ZW_HC_PASSTHROUGH, /* answer statically only while no endpoint is ready */
	ZW_HC_STATIC,      /* always answer statically */
	/* Addition (Kedify, AWS ALB probes that send the pod IP as Host):
	 * requests under healthcheck_path_prefix + "/..." are health checks for
	 * the target; healthcheck_path is NULL. */
	ZW_HC_PATH_EMBEDDED_HOST,
};

/* Addition: how zw_header_match.value is compared with a request header's
 * value (Kedify's `value`, `valueWildcard`, `valueRegex`). */
enum zw_header_match_kind {
	ZW_HDR_EXACT = 0, /* value, byte for byte (case-sensitive) */
	ZW_HDR_PRESENT,   /* value == NULL: the header only has to be present */
	ZW_HDR_WILDCARD,  /* value is a glob: '*' any run, '?' one byte; whole
	                   * value, ASCII case-insensitive ("*" = present) */
	ZW_HDR_REGEX,     /* value is a regular expression (POSIX ERE, plus \d \w
	                   * \s \D \W \S and (?:...)); whole value, case-insensitive */
};

struct zw_header_match {
	char *name;  /* compared case-insensitively */
	char *value; /* NULL: the header only has to be present */
	/* Additions: kind (ZW_HDR_PRESENT exactly when value == NULL) and, for
	 * ZW_HDR_REGEX, the compiled expression (owned, opaque). Use
	 * zw_header_match_value() (proxy/routes.h) to compare. */
	enum zw_header_match_kind kind;
	void *regex;
};

/* One routing rule: hosts x path prefixes x header matchers (AND).
 * n_hosts == 0 means catch-all; n_paths == 0 means "/". Hosts are lower-case,
 * may start with "*." (multi-level wildcard) or be "*". Paths are stored with
 * a leading '/' and no trailing '/' (except "/" itself). */
struct zw_route_rule {
	char **hosts;
	size_t n_hosts;
	char **paths;
	size_t n_paths;
	struct zw_header_match *headers;
	size_t n_headers;
};

/* A Service reference. port > 0 or port_name != NULL (exactly one). */
struct zw_service_ref {
	char *namespace;
	char *name;
	int port;
	char *port_name;
};

struct zw_static_response {
	int status; /* 100..599 */
	char *body; /* may be NULL */
	char **header_names;
	char **header_values;
	size_t n_headers;
	/* Addition: bodyFromConfigMap {name, key}. The ConfigMap is in the
	 * target's namespace; key NULL means "derive from the request path"
	 * (index.html for "/"). Resolved by the proxy, not the parser. */
	char *body_configmap;
	char *body_configmap_key;
	/* Addition: the body_configmap is Kedify's waiting page ConfigMap
	 * (coldStartWaitingPageConfigMapRef: its keys coldStartWaitingPageBody,
	 * ...StatusCode and ...RetryAfter; no label needed, a missing one means
	 * the default page). false: the add-on's bodyFromConfigMap (the
	 * ConfigMap must carry ZW_RESPONSE_BODY_LABEL; missing means 500). */
	bool waiting_page;
	/* Filled by the proxy when it resolves body_configmap (the parser
	 * leaves them empty): configmap_state, and the ConfigMap's data as
	 * n_files key/value pairs (sorted by key). */
	enum zw_configmap_state {
		ZW_CM_UNRESOLVED = 0, /* not looked up (static responses without one) */
		ZW_CM_MISSING,        /* absent, or (bodyFromConfigMap) not labelled */
		ZW_CM_FOUND,
	} configmap_state;
	char **file_keys;
	char **file_values;
	size_t n_files;
};

/* The label a ConfigMap needs to serve as a bodyFromConfigMap. */
#define ZW_RESPONSE_BODY_LABEL "http.keda.sh/response-body"
/* Kedify waiting-page ConfigMap keys besides ZW_WAITING_PAGE_CONFIGMAP_KEY. */
#define ZW_WAITING_PAGE_STATUS_KEY      "coldStartWaitingPageStatusCode"
#define ZW_WAITING_PAGE_RETRY_AFTER_KEY "coldStartWaitingPageRetryAfter"

/* Addition: InterceptorRoute spec.staticRoutes[]: requests matching one of
 * `rules` are answered with `response` and never counted (never wake the
 * workload). always == false: WhenUnavailable (default; forward when an
 * endpoint is ready); true: Always. */
struct zw_static_route {
	struct zw_route_rule *rules;
	size_t n_rules;
	struct zw_static_response response; /* status default 200 */
	bool always;
};

/* Durations are in milliseconds; 0 means "not set: use the global default"
 * unless noted. */
struct zw_target {
	/* Identity: the object the target is read from. For ScaledObject sources
	 * a ScaledObject with several zerowire triggers yields several targets
	 * that differ in trigger_index. */
	enum zw_target_source source;
	char *namespace;
	char *name;
	int trigger_index;        /* -1 for InterceptorRoute / HTTPScaledObject */
	char *uid;                /* metadata.uid, may be NULL */
	char *creation_timestamp; /* for routing tie-breaks, may be NULL */

	/* The ScaledObject that scales it (same namespace). For HTTPScaledObject
	 * it is the generated one (same name); for InterceptorRoute it is filled
	 * by zw_target_link_scaledobject(), else NULL. */
	char *scaled_object;
	char *scale_kind;        /* default "Deployment" */
	char *scale_api_version; /* default "apps/v1" */
	char *scale_name;        /* workload name, may be NULL until linked */
	int min_replicas;        /* default 0 */
	int max_replicas;        /* default 100 */

	/* Backend. service.namespace is always the target's namespace. */
	struct zw_service_ref service;

	/* Routing. Kedify-style sources give exactly one rule. */
	struct zw_route_rule *rules;
	size_t n_rules;

	/* Scaling metric. */
	unsigned metrics;          /* enum zw_metric bits, at least one */
	double rate_target;        /* requestRate targetValue, default 100 */
	double concurrency_target; /* concurrency targetValue, default 100 */
	uint64_t window_ms;        /* default 60000 */
	uint64_t granularity_ms;   /* default 1000 */

	/* Autowiring: enum zw_autowire bits; 0 means trafficAutowire: false. */
	unsigned autowire;

	/* Cold start and timeouts (0 = global default). */
	uint64_t readiness_timeout_ms;
	uint64_t response_header_timeout_ms;
	uint64_t request_timeout_ms;
	uint32_t max_pending; /* 0 = global default */
	/* Requests one ready endpoint may have in flight (trigger metadata
	 * endpointConcurrency): ZW_ALLOWANCE_UNSET follows the proxy's
	 * --endpoint-concurrency, ZW_ALLOWANCE_AUTO the concurrency
	 * targetValue, 0 no limit. */
	int64_t endpoint_concurrency;
	int64_t slow_start_ms;     /* slowStart ramp-up window; -1: --slow-start */
	bool overflow_placeholder; /* overflow answers the placeholder instead of 503 */
	bool has_fallback;
	struct zw_service_ref fallback;
	bool has_placeholder;
	struct zw_static_response placeholder;

	/* Health checks answered by the proxy without waking the workload. */
	char *healthcheck_path;
	enum zw_healthcheck_response healthcheck_response;

	/* Additions by the target module. */
	/* Kedify healthcheckPathPrefix (with ZW_HC_PATH_EMBEDDED_HOST), else NULL. */
	char *healthcheck_path_prefix;
	/* trafficAutowire words accepted but not supported (enum
	 * zw_autowire_ignored bits); they add nothing to `autowire`. */
	unsigned autowire_ignored;
	/* HTTPScaledObject annotated httpscaledobject.keda.sh/skip-scaledobject-
	 * creation: "true": still a target (routing + metrics), but the
	 * reconciler must NOT create or own a ScaledObject for it (the user's
	 * own ScaledObject names it via `httpScaledObject`); scaled_object stays
	 * NULL until zw_target_link_scaledobject(). Always false for others. */
	bool skip_scaledobject;
	/* HTTPScaledObject scaledownPeriod / initialCooldownPeriod in seconds,
	 * -1 when unset (the generated ScaledObject then omits cooldownPeriod,
	 * KEDA default 300, and initialCooldownPeriod, default 0). -1 for other
	 * sources. */
	int cooldown_period;
	int initial_cooldown_period;
	/* InterceptorRoute spec.staticRoutes[] (none for other sources). */
	struct zw_static_route *static_routes;
	size_t n_static_routes;
};

/* Parses every zerowire target of a ScaledObject (keda.sh/v1alpha1).
 * Triggers of type `kedify-http`, and `external-push` triggers that carry
 * zerowire routing metadata (`service`) yield targets; `external-push`
 * triggers naming `interceptorRoute` or `httpScaledObject` yield nothing
 * here (see zw_target_link_scaledobject); other triggers are ignored.
 * `so` is borrowed. On success *out is a newly allocated array of *n_out
 * targets owned by the caller (free with zw_target_array_free); *n_out may be
 * 0. Returns ZW_TARGET_OK, ZW_TARGET_EINVAL (err filled, *out NULL) or
 * ZW_TARGET_ENOMEM. */
int zw_target_parse_scaledobject(const json_t *so, struct zw_target **out, size_t *n_out,
                                 char err[ZW_TARGET_ERRLEN]);

/* Parses an HTTPScaledObject (http.keda.sh/v1alpha1) into *out (caller owns,
 * free with zw_target_free). `obj` is borrowed. Returns ZW_TARGET_OK,
 * ZW_TARGET_EINVAL (err filled) or ZW_TARGET_ENOMEM. */
int zw_target_parse_httpscaledobject(const json_t *obj, struct zw_target *out,
                                     char err[ZW_TARGET_ERRLEN]);

/* Parses an InterceptorRoute (http.keda.sh/v1beta1) into *out, as
 * zw_target_parse_httpscaledobject. */
int zw_target_parse_interceptorroute(const json_t *obj, struct zw_target *out,
                                     char err[ZW_TARGET_ERRLEN]);

/* Dispatches on apiVersion/kind to one of the parsers above and returns the
 * targets as an array as zw_target_parse_scaledobject does. Objects that are
 * not a target source give ZW_TARGET_ENOTARGET. */
int zw_target_parse_object(const json_t *obj, struct zw_target **out, size_t *n_out,
                           char err[ZW_TARGET_ERRLEN]);

/* If ScaledObject `so` (borrowed) has an external-push trigger naming
 * `interceptorRoute` equal to t->name (IR source) or `httpScaledObject`
 * equal to t->name (HSO source) in t's namespace, fills t->scaled_object,
 * scale_* and min/max replicas from it and returns 1; returns 0 when it does
 * not refer to t, or ZW_TARGET_ENOMEM. */
int zw_target_link_scaledobject(struct zw_target *t, const json_t *so);

/* Returns nonzero when ScaledObject `so` (borrowed) has a trigger that names
 * an interceptorRoute or httpScaledObject; *kind_out is set to
 * ZW_SRC_INTERCEPTORROUTE or ZW_SRC_HTTPSCALEDOBJECT and *name_out to the
 * borrowed name (valid while `so` lives). */
int zw_target_scaledobject_ref(const json_t *so, enum zw_target_source *kind_out,
                               const char **name_out);

/* Resets *t to an empty target of source src with every default set
 * (replicas 0..100, targetValue 100, window 1m at 1s, trafficAutowire all,
 * periods and allowance unset). *t owns nothing afterwards. */
void zw_target_init(struct zw_target *t, enum zw_target_source src);

/* Releases everything a static response owns and zeroes it. */
void zw_target_response_free(struct zw_static_response *sr);

/* Deep-copies src into *dst (dst owned by caller). Returns 0 or ZW_TARGET_ENOMEM. */
int zw_target_copy(struct zw_target *dst, const struct zw_target *src);

/* Releases everything a target owns (not the struct itself). NULL-safe. */
void zw_target_free(struct zw_target *t);

/* Frees an array returned by a parser: each target, then the array. NULL-safe. */
void zw_target_array_free(struct zw_target *ts, size_t n);

/* Parses a trafficAutowire value ("false", "" or a comma list of ingress,
 * httproute, grpcroute, virtualservice, gloo, route) into enum zw_autowire
 * bits. Returns 0, or -1 on an unknown word (*out untouched). */
int zw_autowire_parse(const char *value, unsigned *out);

/* Addition: as zw_autowire_parse, and also reports accepted-but-unsupported
 * words (`route`, `service`) as enum zw_autowire_ignored bits in *ignored
 * (may be NULL). Words are case-insensitive and space-trimmed; "true" means
 * every kind; "false" cannot be combined with other words. Returns 0 or -1
 * (*out and *ignored untouched). */
int zw_autowire_parse_ext(const char *value, unsigned *out, unsigned *ignored);

/* Returns the source's Kubernetes kind name ("ScaledObject", ...). */
const char *zw_target_source_kind(enum zw_target_source src);

/* Writes a stable key "<ns>/<name>" or "<ns>/<name>/<trigger>" for t into
 * buf. Returns the length (truncated at len-1). */
size_t zw_target_key(const struct zw_target *t, char *buf, size_t len);

#endif
