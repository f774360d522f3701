/* Targets described by ScaledObject triggers (keda.sh/v1alpha1): the
 * `external-push` trigger with zerowire routing metadata and Kedify's
 * `kedify-http` trigger. Both read the same metadata keys (service, port,
 * hosts, pathPrefixes, headers, scalingMetric, cold start, health checks),
 * so one parser serves both; the trigger type only decides the source and
 * whether scalingMetric is required. Also: a ScaledObject that names an
 * InterceptorRoute or HTTPScaledObject (interceptorRoute / httpScaledObject
 * metadata) and linking such a target to it. Entry points in target.h. */
#include "target_rule.h"

#include "duration.h"
#include "yamljson.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Reads trigger metadata key as text. Returns 1 when set to a non-blank
 * value, 0 when absent, null or blank, EINVAL for a list or map. */
static int meta_get(struct zw_tp_ctx *c, const json_t *meta, const char *key, struct zw_tp_mval *m)
{
	json_t *v = zw_tp_member(meta, key);
	size_t len;

	m->s = NULL;
	if (!v)
		return 0;
	if (zw_tp_scalar_text(v, m) < 0)
		return zw_tp_failf(c, "metadata.%s must be a string, not %s", key, zw_tp_jtype(v));
	len = strlen(m->s);
	zw_tp_trim(m->s, &len);
	if (len == 0) {
		m->s = NULL;
		return 0;
	}
	return 1;
}

/* A trimmed copy of a metadata value, for values compared as words or
 * parsed as numbers, names and durations (at most buflen - 1 bytes). */
static const char *meta_word(const struct zw_tp_mval *m, char *buf, size_t buflen)
{
	size_t len = strlen(m->s);
	const char *s = zw_tp_trim(m->s, &len);

	if (len >= buflen) {
		/* too long for any word, number, port, name or duration: hand the
		 * validators a value none of them accepts (messages quote m->s) */
		snprintf(buf, buflen, "\x01");
		return buf;
	}
	memcpy(buf, s, len);
	buf[len] = '\0';
	return buf;
}

/* Reads a duration key; *present says whether it was set. */
static int meta_duration(struct zw_tp_ctx *c, const json_t *meta, const char *key, uint64_t *out,
                         bool *present)
{
	char q[ZW_TP_QUOTE_LEN], w[ZW_TP_WORD_LEN];
	struct zw_tp_mval m;
	int rc = meta_get(c, meta, key, &m);

	*present = rc > 0;
	if (rc <= 0)
		return rc;
	if (zw_duration_parse_ms(meta_word(&m, w, sizeof(w)), out) < 0)
		return zw_tp_failf(c, "metadata.%s %s is not a duration (e.g. 30s, 1m, 1h30m)", key,
		                   zw_tp_quote(m.s, q));
	return 0;
}

/* endpointConcurrency (a number, "auto" or "off") and slowStart. */
static int meta_allowance(struct zw_tp_ctx *c, const json_t *meta, struct zw_target *t)
{
	char q[ZW_TP_QUOTE_LEN], w[ZW_TP_WORD_LEN];
	struct zw_tp_mval m;
	bool present;
	uint64_t ms = 0;
	int rc = meta_get(c, meta, "endpointConcurrency", &m);

	if (rc < 0)
		return rc;
	if (rc) {
		unsigned long long v;
		meta_word(&m, w, sizeof(w));
		if (strcasecmp(w, "auto") == 0)
			t->endpoint_concurrency = ZW_ALLOWANCE_AUTO;
		else if (strcasecmp(w, "off") == 0)
			t->endpoint_concurrency = 0;
		else if (zw_tp_parse_uint_text(w, ZW_ALLOWANCE_MAX, &v) == 0)
			t->endpoint_concurrency = (int64_t)v;
		else
			return zw_tp_failf(
			        c,
			        "metadata.endpointConcurrency %s is not a number in 0..%d, "
			        "auto or off",
			        zw_tp_quote(m.s, q), ZW_ALLOWANCE_MAX);
	}
	if ((rc = meta_duration(c, meta, "slowStart", &ms, &present)) < 0)
		return rc;
	if (present)
		t->slow_start_ms = (int64_t)ms;
	return 0;
}

/* Timeouts: unset stays 0, an explicit zero becomes ZW_TIMEOUT_NONE. */
static int meta_timeout(struct zw_tp_ctx *c, const json_t *meta, const char *key, uint64_t *out)
{
	bool present;
	uint64_t ms = 0;
	int rc = meta_duration(c, meta, key, &ms, &present);

	if (rc < 0)
		return rc;
	if (present)
		*out = ms ? ms : ZW_TIMEOUT_NONE;
	return 0;
}

/* port | portName pair into ref. required == false: both absent is fine. */
static int meta_port(struct zw_tp_ctx *c, const json_t *meta, const char *port_key,
                     const char *name_key, bool required, struct zw_service_ref *ref, bool *set)
{
	char q[ZW_TP_QUOTE_LEN], w[ZW_TP_WORD_LEN];
	struct zw_tp_mval p, n;
	int rp, rn;

	if ((rp = meta_get(c, meta, port_key, &p)) < 0)
		return rp;
	if ((rn = meta_get(c, meta, name_key, &n)) < 0)
		return rn;
	*set = rp || rn;
	if (rp && rn)
		return zw_tp_failf(
		        c, "metadata.%s and metadata.%s are both set (exactly one is allowed)",
		        port_key, name_key);
	if (!rp && !rn)
		return required ? zw_tp_failf(c, "metadata.%s or metadata.%s is required", port_key,
		                              name_key)
		                : 0;
	if (rp) {
		if (zw_tp_parse_port_text(meta_word(&p, w, sizeof(w)), &ref->port) < 0)
			return zw_tp_failf(c, "metadata.%s %s is not a port number", port_key,
			                   zw_tp_quote(p.s, q));
		return 0;
	}
	if (!zw_tp_valid_port_name(meta_word(&n, w, sizeof(w))))
		return zw_tp_failf(c, "metadata.%s %s is not a valid port name", name_key,
		                   zw_tp_quote(n.s, q));
	return zw_tp_set_str(&ref->port_name, w);
}

typedef int (*pair_fn)(struct zw_tp_ctx *c, void *arg, const char *name, const char *value,
                       enum zw_header_match_kind kind, const char *field);

/* Parses text as YAML: either a list of {name, value | valueWildcard |
 * valueRegex} maps or one map of name: value, and calls fn for each pair
 * (value NULL when absent/null: "present"). */
static int yaml_pairs(struct zw_tp_ctx *c, const char *text, const char *field, pair_fn fn,
                      void *arg)
{
	char yerr[256], p[ZW_TP_PATH_LEN], q[ZW_TP_QUOTE_LEN];
	enum zw_header_match_kind kind;
	json_t *docs = NULL, *doc, *item, *v;
	struct zw_tp_mval nm, vm;
	const char *key;
	size_t i;
	int rc = 0;

	if (zw_yaml_load(text, strlen(text), &docs, yerr, sizeof(yerr)) < 0)
		return zw_tp_failf(c, "%s is not valid YAML: %s", field, yerr);
	if (json_array_size(docs) == 0)
		goto out;
	if (json_array_size(docs) > 1) {
		rc = zw_tp_failf(c, "%s must be one YAML document, not %zu", field,
		                 json_array_size(docs));
		goto out;
	}
	doc = json_array_get(docs, 0);
	if (json_is_object(doc)) {
		json_object_foreach(doc, key, v)
		{
			zw_tp_path_fit(
			        p, snprintf(p, sizeof(p), "%s[%s]", field, zw_tp_quote(key, q)));
			vm.s = NULL;
			if (v && !json_is_null(v) && zw_tp_scalar_text(v, &vm) < 0) {
				rc = zw_tp_failf(c, "%s must be a string, not %s", p,
				                 zw_tp_jtype(v));
				goto out;
			}
			if ((rc = fn(c, arg, key, vm.s, ZW_HDR_EXACT, p)) < 0)
				goto out;
		}
		goto out;
	}
	if (!json_is_array(doc)) {
		rc = zw_tp_failf(c, "%s must be a YAML list of name/value entries, not %s", field,
		                 zw_tp_jtype(doc));
		goto out;
	}
	json_array_foreach(doc, i, item)
	{
		zw_tp_joini(p, field, i);
		if (!json_is_object(item)) {
			rc = zw_tp_failf(c, "%s must be a map with name and value, not %s", p,
			                 zw_tp_jtype(item));
			goto out;
		}
		v = zw_tp_member(item, "name");
		if (!v || zw_tp_scalar_text(v, &nm) < 0 || !*nm.s) {
			rc = v ? zw_tp_failf(c, "%s.name must be a non-empty string", p)
			       : zw_tp_failf(c, "%s.name is required", p);
			goto out;
		}
		if ((rc = zw_tr_match_value(c, item, p, false, &vm, &kind)) < 0)
			goto out;
		if ((rc = fn(c, arg, nm.s, vm.s, kind, p)) < 0)
			goto out;
	}
out:
	json_decref(docs);
	return rc;
}

static int pair_to_matcher(struct zw_tp_ctx *c, void *arg, const char *name, const char *value,
                           enum zw_header_match_kind kind, const char *field)
{
	return zw_tr_rule_add_header(c, arg, name, value, kind, field);
}

static int pair_to_response(struct zw_tp_ctx *c, void *arg, const char *name, const char *value,
                            enum zw_header_match_kind kind, const char *field)
{
	if (!value)
		return zw_tp_failf(c, "%s needs a value", field);
	if (kind != ZW_HDR_EXACT)
		return zw_tp_failf(c, "%s: a response header takes value, not a pattern", field);
	return zw_tr_sr_add_header(c, arg, name, value, field);
}

/* ScaledObject-level fields shared by its targets (borrowed strings). */
struct so_common {
	const char *name;
	const char *kind;
	const char *api_version;
	long long min, max;
};

static int parse_so_common(struct zw_tp_ctx *c, const json_t *spec, struct so_common *sc)
{
	json_t *ref;
	int rc;

	sc->min = ZW_TP_DEFAULT_MIN_REPLICAS;
	sc->max = ZW_TP_DEFAULT_MAX_REPLICAS;
	if ((rc = zw_tp_req_object(c, spec, "scaleTargetRef", "spec", &ref)) < 0)
		return rc;
	if ((rc = zw_tp_req_string(c, ref, "name", "spec.scaleTargetRef", &sc->name)) < 0 ||
	    (rc = zw_tp_opt_string(c, ref, "kind", "spec.scaleTargetRef", &sc->kind)) < 0 ||
	    (rc = zw_tp_opt_string(c, ref, "apiVersion", "spec.scaleTargetRef", &sc->api_version)) <
	            0)
		return rc;
	if (!sc->kind || !*sc->kind)
		sc->kind = ZW_TP_DEFAULT_SCALE_KIND;
	if (!sc->api_version || !*sc->api_version)
		sc->api_version = ZW_TP_DEFAULT_SCALE_API_VERSION;
	if ((rc = zw_tp_opt_int(c, spec, "minReplicaCount", "spec", 0, INT32_MAX, &sc->min)) < 0 ||
	    (rc = zw_tp_opt_int(c, spec, "maxReplicaCount", "spec", 0, INT32_MAX, &sc->max)) < 0)
		return rc;
	if (sc->min > sc->max)
		return zw_tp_failf(
		        c, "spec.minReplicaCount %lld is greater than spec.maxReplicaCount %lld",
		        sc->min, sc->max);
	return 0;
}

/* Kedify's waiting page (coldStartWaitingPageEnabled: "true"): the body from
 * the ConfigMap named by `ref` (NULL when unset) or the default page, and a
 * Retry-After unless placeholderHeaders set one. */
static int waiting_page(struct zw_tp_ctx *c, const struct zw_tp_mval *ref,
                        struct zw_static_response *sr)
{
	char q[ZW_TP_QUOTE_LEN], w[ZW_TP_WORD_LEN];
	int rc;

	if (ref) {
		/* Kedify: the page body is that ConfigMap's key coldStartWaitingPageBody */
		meta_word(ref, w, sizeof(w));
		if (!zw_tp_valid_object_name(w))
			return zw_tp_failf(
			        c,
			        "metadata.coldStartWaitingPageConfigMapRef %s is not a valid "
			        "ConfigMap name",
			        zw_tp_quote(ref->s, q));
		if (sr->body)
			return zw_tp_failf(
			        c, "metadata.placeholderBody and "
			           "metadata.coldStartWaitingPageConfigMapRef are both set (at "
			           "most one is allowed)");
		if (zw_tp_set_str(&sr->body_configmap, w) ||
		    zw_tp_set_str(&sr->body_configmap_key, ZW_WAITING_PAGE_CONFIGMAP_KEY))
			return ZW_TARGET_ENOMEM;
		sr->waiting_page = true;
	}
	if (!sr->body && !sr->body_configmap && zw_tp_set_str(&sr->body, ZW_WAITING_PAGE_BODY))
		return ZW_TARGET_ENOMEM;
	if (!zw_tr_sr_has_header(sr, "Retry-After") &&
	    (rc = zw_tr_sr_add_header(c, sr, "Retry-After", ZW_WAITING_PAGE_RETRY_AFTER,
	                              "metadata.placeholderHeaders")) < 0)
		return rc;
	return 0;
}

/* Placeholder keys of a trigger (zerowire keys plus Kedify's
 * coldStartWaitingPageEnabled). */
static int meta_placeholder(struct zw_tp_ctx *c, const json_t *meta, struct zw_target *t)
{
	char q[ZW_TP_QUOTE_LEN], w[ZW_TP_WORD_LEN];
	struct zw_static_response *sr = &t->placeholder;
	struct zw_tp_mval m;
	bool waiting = false;
	int rc;

	if ((rc = meta_get(c, meta, "coldStartWaitingPageEnabled", &m)) < 0)
		return rc;
	if (rc) {
		meta_word(&m, w, sizeof(w));
		if (strcasecmp(w, "true") == 0)
			waiting = true;
		else if (strcasecmp(w, "false") != 0)
			return zw_tp_failf(
			        c, "metadata.coldStartWaitingPageEnabled %s must be true or false",
			        zw_tp_quote(m.s, q));
	}
	sr->status = ZW_TP_DEFAULT_PLACEHOLDER_STATUS;
	t->has_placeholder = waiting;
	if ((rc = meta_get(c, meta, "placeholderStatusCode", &m)) < 0)
		return rc;
	if (rc) {
		unsigned long long v;
		if (zw_tp_parse_uint_text(meta_word(&m, w, sizeof(w)), 599, &v) < 0 || v < 100)
			return zw_tp_failf(
			        c,
			        "metadata.placeholderStatusCode %s is not an HTTP status "
			        "(100..599)",
			        zw_tp_quote(m.s, q));
		sr->status = (int)v;
		t->has_placeholder = true;
	}
	if ((rc = meta_get(c, meta, "placeholderBody", &m)) < 0)
		return rc;
	if (rc) {
		if (strlen(m.s) > ZW_TARGET_MAX_BODY)
			return zw_tp_failf(c, "metadata.placeholderBody is longer than %d bytes",
			                   ZW_TARGET_MAX_BODY);
		if (zw_tp_set_str(&sr->body, m.s))
			return ZW_TARGET_ENOMEM;
		t->has_placeholder = true;
	}
	if ((rc = meta_get(c, meta, "placeholderHeaders", &m)) < 0)
		return rc;
	if (rc) {
		if ((rc = yaml_pairs(c, m.s, "metadata.placeholderHeaders", pair_to_response, sr)) <
		    0)
			return rc;
		t->has_placeholder = true;
	}
	if ((rc = meta_get(c, meta, "coldStartWaitingPageConfigMapRef", &m)) < 0)
		return rc;
	if (waiting && (rc = waiting_page(c, rc ? &m : NULL, sr)) < 0)
		return rc;
	if (!t->has_placeholder)
		zw_target_response_free(sr);
	return 0;
}

/* Cold-start and timeout keys of a trigger. */
static int meta_cold_start(struct zw_tp_ctx *c, const json_t *meta, struct zw_target *t)
{
	char q[ZW_TP_QUOTE_LEN], w[ZW_TP_WORD_LEN];
	struct zw_tp_mval m;
	bool set;
	int rc;

	if ((rc = meta_get(c, meta, "fallbackService", &m)) < 0)
		return rc;
	if (rc) {
		meta_word(&m, w, sizeof(w));
		if (!zw_tp_valid_service_name(w))
			return zw_tp_failf(
			        c, "metadata.fallbackService %s is not a valid Service name",
			        zw_tp_quote(m.s, q));
		if (zw_tp_set_str(&t->fallback.name, w) ||
		    zw_tp_set_str(&t->fallback.namespace, t->namespace))
			return ZW_TARGET_ENOMEM;
		t->has_fallback = true;
		if ((rc = meta_port(c, meta, "fallbackPort", "fallbackPortName", false,
		                    &t->fallback, &set)) < 0)
			return rc;
		if (!set) {
			t->fallback.port = t->service.port;
			if (zw_tp_set_str(&t->fallback.port_name, t->service.port_name))
				return ZW_TARGET_ENOMEM;
		}
	} else {
		if ((rc = meta_get(c, meta, "fallbackPort", &m)) < 0)
			return rc;
		if (rc || (rc = meta_get(c, meta, "fallbackPortName", &m)) > 0)
			return zw_tp_failf(c, "metadata.fallbackPort/fallbackPortName need "
			                      "metadata.fallbackService");
		if (rc < 0)
			return rc;
	}
	if ((rc = meta_timeout(c, meta, "readinessTimeout", &t->readiness_timeout_ms)) < 0 ||
	    (rc = meta_timeout(c, meta, "requestTimeout", &t->request_timeout_ms)) < 0 ||
	    (rc = meta_timeout(c, meta, "responseHeaderTimeout", &t->response_header_timeout_ms)) <
	            0)
		return rc;
	if ((rc = meta_get(c, meta, "maxPendingRequests", &m)) < 0)
		return rc;
	if (rc) {
		unsigned long long v;
		if (zw_tp_parse_uint_text(meta_word(&m, w, sizeof(w)), ZW_TARGET_MAX_PENDING, &v) <
		            0 ||
		    v < 1)
			return zw_tp_failf(
			        c, "metadata.maxPendingRequests %s is not a number in 1..%d",
			        zw_tp_quote(m.s, q), ZW_TARGET_MAX_PENDING);
		t->max_pending = (uint32_t)v;
	}
	if ((rc = meta_allowance(c, meta, t)) < 0)
		return rc;
	if ((rc = meta_placeholder(c, meta, t)) < 0)
		return rc;
	if ((rc = meta_get(c, meta, "overflow", &m)) < 0)
		return rc;
	if (rc) {
		meta_word(&m, w, sizeof(w));
		if (strcasecmp(w, "placeholder") == 0)
			t->overflow_placeholder = true;
		else if (strcasecmp(w, "reject") != 0)
			return zw_tp_failf(c, "metadata.overflow %s must be Reject or Placeholder",
			                   zw_tp_quote(m.s, q));
		if (t->overflow_placeholder && !t->has_placeholder)
			return zw_tp_failf(c, "metadata.overflow Placeholder needs a placeholder "
			                      "(placeholderBody, placeholderStatusCode or "
			                      "coldStartWaitingPageEnabled)");
	}
	return 0;
}

/* A path-valued metadata key into *out (NULL when unset). */
static int meta_path(struct zw_tp_ctx *c, const json_t *meta, const char *key, char **out)
{
	char q[ZW_TP_QUOTE_LEN];
	const char *why = NULL, *s;
	struct zw_tp_mval m;
	size_t len;
	int rc;

	if ((rc = meta_get(c, meta, key, &m)) <= 0)
		return rc;
	len = strlen(m.s);
	s = zw_tp_trim(m.s, &len);
	rc = zw_tr_path_norm(s, len, out, &why);
	if (rc == -1)
		return zw_tp_failf(c, "metadata.%s %s is not a valid path: it %s", key,
		                   zw_tp_quote(m.s, q), why);
	return rc;
}

/* healthcheckPath | healthcheckPathPrefix and healthcheckResponse. */
static int meta_healthcheck(struct zw_tp_ctx *c, const json_t *meta, struct zw_target *t)
{
	char q[ZW_TP_QUOTE_LEN], w[ZW_TP_WORD_LEN];
	struct zw_tp_mval m;
	int rc;

	if ((rc = meta_path(c, meta, "healthcheckPath", &t->healthcheck_path)) < 0 ||
	    (rc = meta_path(c, meta, "healthcheckPathPrefix", &t->healthcheck_path_prefix)) < 0)
		return rc;
	if (t->healthcheck_path && t->healthcheck_path_prefix)
		return zw_tp_failf(
		        c, "metadata.healthcheckPath and metadata.healthcheckPathPrefix are both "
		           "set (exactly one is allowed)");
	if (t->healthcheck_path_prefix && strcmp(t->healthcheck_path_prefix, "/") == 0)
		return zw_tp_failf(c,
		                   "metadata.healthcheckPathPrefix \"/\" would make every path a "
		                   "health probe (use e.g. /kedify-proxy)");
	if (t->healthcheck_path)
		t->healthcheck_response = ZW_HC_PASSTHROUGH;
	if (t->healthcheck_path_prefix)
		t->healthcheck_response = ZW_HC_PATH_EMBEDDED_HOST;
	if ((rc = meta_get(c, meta, "healthcheckResponse", &m)) <= 0)
		return rc;
	meta_word(&m, w, sizeof(w));
	if (strcasecmp(w, "pathEmbeddedHost") == 0) {
		if (!t->healthcheck_path_prefix)
			return zw_tp_failf(c, "metadata.healthcheckResponse pathEmbeddedHost needs "
			                      "metadata.healthcheckPathPrefix");
		return 0;
	}
	if (strcasecmp(w, "passthrough") && strcasecmp(w, "static"))
		return zw_tp_failf(c,
		                   "metadata.healthcheckResponse %s must be passthrough, static or "
		                   "pathEmbeddedHost",
		                   zw_tp_quote(m.s, q));
	if (!t->healthcheck_path)
		return zw_tp_failf(c,
		                   "metadata.healthcheckResponse %s needs metadata.healthcheckPath",
		                   zw_tp_quote(m.s, q));
	t->healthcheck_response = strcasecmp(w, "static") == 0 ? ZW_HC_STATIC : ZW_HC_PASSTHROUGH;
	return 0;
}

/* metadata.service and port | portName: the backend. */
static int trigger_service(struct zw_tp_ctx *c, const json_t *meta, struct zw_target *t)
{
	char q[ZW_TP_QUOTE_LEN], w[ZW_TP_WORD_LEN];
	struct zw_tp_mval m;
	bool set;
	int rc;

	if ((rc = meta_get(c, meta, "service", &m)) < 0)
		return rc;
	if (!rc && t->scale_kind && strcmp(t->scale_kind, "Rollout") == 0)
		return zw_tp_failf(
		        c, "metadata.service is required (zerowire does not read it from the "
		           "Argo Rollout)");
	if (!rc)
		return zw_tp_failf(c, "metadata.service is required");
	meta_word(&m, w, sizeof(w));
	if (!zw_tp_valid_service_name(w))
		return zw_tp_failf(c, "metadata.service %s is not a valid Service name",
		                   zw_tp_quote(m.s, q));
	if (zw_tp_set_str(&t->service.name, w) ||
	    zw_tp_set_str(&t->service.namespace, t->namespace))
		return ZW_TARGET_ENOMEM;
	return meta_port(c, meta, "port", "portName", true, &t->service, &set);
}

/* metadata.hosts, pathPrefixes and headers: the trigger's one rule. */
static int trigger_rule(struct zw_tp_ctx *c, const json_t *meta, struct zw_target *t)
{
	struct zw_route_rule *r;
	struct zw_tp_mval m;
	int rc;

	if (!(t->rules = calloc(1, sizeof(*t->rules))))
		return ZW_TARGET_ENOMEM;
	t->n_rules = 1;
	r = &t->rules[0];
	if ((rc = meta_get(c, meta, "hosts", &m)) < 0 ||
	    (rc && (rc = zw_tr_comma_each(c, m.s, "metadata.hosts", r, zw_tr_rule_add_host)) < 0))
		return rc;
	if ((rc = meta_get(c, meta, "pathPrefixes", &m)) < 0 ||
	    (rc &&
	     (rc = zw_tr_comma_each(c, m.s, "metadata.pathPrefixes", r, zw_tr_rule_add_path)) < 0))
		return rc;
	if ((rc = zw_tr_rule_default_path(r)) < 0)
		return rc;
	if ((rc = meta_get(c, meta, "headers", &m)) < 0 ||
	    (rc && (rc = yaml_pairs(c, m.s, "metadata.headers", pair_to_matcher, r)) < 0))
		return rc;
	return 0;
}

/* metadata.scalingMetric, targetValue, window and granularity. */
static int trigger_metric(struct zw_tp_ctx *c, const json_t *meta, struct zw_target *t)
{
	char q[ZW_TP_QUOTE_LEN], w[ZW_TP_WORD_LEN];
	struct zw_tp_mval m;
	bool set;
	int rc;

	if ((rc = meta_get(c, meta, "scalingMetric", &m)) < 0)
		return rc;
	if (!rc) {
		if (t->source == ZW_SRC_KEDIFY)
			return zw_tp_failf(c, "metadata.scalingMetric is required (requestRate or "
			                      "concurrency)");
		t->metrics = ZW_METRIC_REQUEST_RATE;
	} else {
		meta_word(&m, w, sizeof(w));
		if (strcasecmp(w, "requestRate") == 0)
			t->metrics = ZW_METRIC_REQUEST_RATE;
		else if (strcasecmp(w, "concurrency") == 0)
			t->metrics = ZW_METRIC_CONCURRENCY;
		else
			return zw_tp_failf(
			        c, "metadata.scalingMetric %s must be requestRate or concurrency",
			        zw_tp_quote(m.s, q));
	}
	if ((rc = meta_get(c, meta, "targetValue", &m)) < 0)
		return rc;
	if (rc) {
		double d;
		if (zw_tp_parse_positive(meta_word(&m, w, sizeof(w)), &d) < 0)
			return zw_tp_failf(c, "metadata.targetValue %s is not a positive number",
			                   zw_tp_quote(m.s, q));
		if (t->metrics == ZW_METRIC_CONCURRENCY)
			t->concurrency_target = d;
		else
			t->rate_target = d;
	}
	if ((rc = meta_duration(c, meta, "window", &t->window_ms, &set)) < 0 ||
	    (rc = meta_duration(c, meta, "granularity", &t->granularity_ms, &set)) < 0)
		return rc;
	return zw_tp_check_window(c, "metadata.window", "metadata.granularity", t);
}

/* Routing and metric keys of one zerowire trigger into t (identity and
 * scale fields already set). */
static int parse_trigger(struct zw_tp_ctx *c, const json_t *meta, struct zw_target *t)
{
	struct zw_tp_mval m;
	int rc;

	if ((rc = trigger_service(c, meta, t)) < 0 || (rc = trigger_rule(c, meta, t)) < 0 ||
	    (rc = trigger_metric(c, meta, t)) < 0)
		return rc;
	if ((rc = meta_get(c, meta, "trafficAutowire", &m)) < 0 ||
	    (rc && (rc = zw_tp_autowire_set(c, m.s, "metadata.trafficAutowire", t)) < 0))
		return rc;
	if ((rc = meta_healthcheck(c, meta, t)) < 0)
		return rc;
	if ((rc = meta_cold_start(c, meta, t)) < 0)
		return rc;
	if (t->has_fallback &&
	    (t->readiness_timeout_ms == 0 || t->readiness_timeout_ms == ZW_TIMEOUT_NONE))
		t->readiness_timeout_ms = ZW_TP_DEFAULT_FALLBACK_READINESS_MS;
	return 0;
}

/* Decides whether trigger i is a zerowire routing trigger. Returns 1 with
 * *src and *meta set, 0 for other triggers, or EINVAL. */
static int trigger_kind(struct zw_tp_ctx *c, const json_t *trig, size_t i,
                        enum zw_target_source *src, const json_t **meta)
{
	char p[ZW_TP_PATH_LEN];
	const char *type;
	json_t *md;
	int rc;

	zw_tp_joini(p, "spec.triggers", i);
	if (!json_is_object(trig))
		return zw_tp_failf(c, "%s must be an object, not %s", p, zw_tp_jtype(trig));
	if ((rc = zw_tp_opt_string(c, trig, "type", p, &type)) < 0)
		return rc;
	if (!type)
		return 0;
	md = zw_tp_member(trig, "metadata");
	if (strcmp(type, "kedify-http") == 0) {
		c->trigger = (int)i;
		if (!md)
			return zw_tp_failf(c, "metadata is required");
		if (!json_is_object(md))
			return zw_tp_failf(c, "metadata must be an object, not %s",
			                   zw_tp_jtype(md));
		*src = ZW_SRC_KEDIFY;
	} else if (strcmp(type, "external-push") == 0) {
		if (!json_is_object(md) || !zw_tp_member(md, "service"))
			return 0;
		c->trigger = (int)i;
		if (zw_tp_member(md, "interceptorRoute"))
			return zw_tp_failf(c, "metadata.service cannot be combined with "
			                      "metadata.interceptorRoute");
		if (zw_tp_member(md, "httpScaledObject"))
			return zw_tp_failf(c, "metadata.service cannot be combined with "
			                      "metadata.httpScaledObject");
		*src = ZW_SRC_SCALEDOBJECT;
	} else {
		return 0;
	}
	c->trigger = -1;
	*meta = md;
	return 1;
}

static int scaledobject_parse(struct zw_tp_ctx *c, const json_t *so, struct zw_target **out,
                              size_t *n_out)
{
	struct zw_target *ts = NULL;
	struct so_common sc;
	enum zw_target_source src;
	const json_t *meta;
	json_t *spec, *triggers, *trig;
	size_t i, count = 0, n = 0;
	int rc;

	if ((rc = zw_tp_read_identity(c, so, "ScaledObject", NULL)) < 0)
		return rc;
	if ((rc = zw_tp_req_object(c, so, "spec", "", &spec)) < 0)
		return rc;
	if ((rc = zw_tp_opt_array(c, spec, "triggers", "spec", &triggers)) < 0)
		return rc;
	json_array_foreach(triggers, i, trig)
	{
		if ((rc = trigger_kind(c, trig, i, &src, &meta)) < 0)
			return rc;
		count += (size_t)rc;
	}
	if (count == 0)
		return 0;
	if ((rc = parse_so_common(c, spec, &sc)) < 0)
		return rc;
	if (!(ts = calloc(count, sizeof(*ts))))
		return ZW_TARGET_ENOMEM;
	json_array_foreach(triggers, i, trig)
	{
		struct zw_target *t = &ts[n];

		if (trigger_kind(c, trig, i, &src, &meta) != 1)
			continue;
		n++;
		zw_target_init(t, src);
		if ((rc = zw_tp_read_identity(c, so, "ScaledObject", t)) < 0)
			goto fail;
		c->trigger = t->trigger_index = (int)i;
		t->min_replicas = (int)sc.min;
		t->max_replicas = (int)sc.max;
		if (zw_tp_set_str(&t->scaled_object, c->name) ||
		    zw_tp_set_str(&t->scale_name, sc.name) ||
		    zw_tp_set_str(&t->scale_kind, sc.kind) ||
		    zw_tp_set_str(&t->scale_api_version, sc.api_version)) {
			rc = ZW_TARGET_ENOMEM;
			goto fail;
		}
		if ((rc = parse_trigger(c, meta, t)) < 0)
			goto fail;
		c->trigger = -1;
	}
	*out = ts;
	*n_out = n;
	return 0;
fail:
	zw_target_array_free(ts, n);
	return rc;
}

int zw_target_parse_scaledobject(const json_t *so, struct zw_target **out, size_t *n_out,
                                 char err[ZW_TARGET_ERRLEN])
{
	struct zw_tp_ctx c = {.err = err, .trigger = -1};
	int rc;

	*out = NULL;
	*n_out = 0;
	if (err)
		err[0] = '\0';
	rc = scaledobject_parse(&c, so, out, n_out);
	zw_tp_enomem_message(err, rc);
	return rc;
}

/* Finds the first external-push trigger of so naming an IR or HSO. */
static int so_ref(const json_t *so, enum zw_target_source *kind, const char **name)
{
	json_t *triggers = zw_tp_member(zw_tp_member(so, "spec"), "triggers"), *trig;
	size_t i;

	json_array_foreach(triggers, i, trig)
	{
		json_t *type = zw_tp_member(trig, "type"), *md = zw_tp_member(trig, "metadata"), *v;

		if (!json_is_string(type) || strcmp(json_string_value(type), "external-push") != 0)
			continue;
		if (json_is_string(v = zw_tp_member(md, "interceptorRoute")) &&
		    *json_string_value(v)) {
			*kind = ZW_SRC_INTERCEPTORROUTE;
			*name = json_string_value(v);
			return 1;
		}
		if (json_is_string(v = zw_tp_member(md, "httpScaledObject")) &&
		    *json_string_value(v)) {
			*kind = ZW_SRC_HTTPSCALEDOBJECT;
			*name = json_string_value(v);
			return 1;
		}
	}
	return 0;
}

int zw_target_scaledobject_ref(const json_t *so, enum zw_target_source *kind_out,
                               const char **name_out)
{
	return so_ref(so, kind_out, name_out);
}

/* Does an external-push trigger of so name `name` under metadata key `key`? */
static bool so_names(const json_t *so, const char *key, const char *name)
{
	json_t *triggers = zw_tp_member(zw_tp_member(so, "spec"), "triggers"), *trig;
	size_t i;

	json_array_foreach(triggers, i, trig)
	{
		json_t *type = zw_tp_member(trig, "type"),
		       *v = zw_tp_member(zw_tp_member(trig, "metadata"), key);

		if (json_is_string(type) && strcmp(json_string_value(type), "external-push") == 0 &&
		    json_is_string(v) && strcmp(json_string_value(v), name) == 0)
			return true;
	}
	return false;
}

int zw_target_link_scaledobject(struct zw_target *t, const json_t *so)
{
	json_t *md = zw_tp_member(so, "metadata"), *spec = zw_tp_member(so, "spec"), *ref, *ns,
	       *name, *v;
	char *so_name = NULL, *sname = NULL, *skind = NULL, *sapi = NULL;
	const char *key, *kind = ZW_TP_DEFAULT_SCALE_KIND, *api = ZW_TP_DEFAULT_SCALE_API_VERSION;
	int min = ZW_TP_DEFAULT_MIN_REPLICAS, max = ZW_TP_DEFAULT_MAX_REPLICAS;

	if (t->source == ZW_SRC_INTERCEPTORROUTE)
		key = "interceptorRoute";
	else if (t->source == ZW_SRC_HTTPSCALEDOBJECT)
		key = "httpScaledObject";
	else
		return 0;
	ns = zw_tp_member(md, "namespace");
	name = zw_tp_member(md, "name");
	if (!json_is_string(name) || !t->name || !t->namespace)
		return 0;
	if (strcmp(json_is_string(ns) && *json_string_value(ns) ? json_string_value(ns) : "default",
	           t->namespace) != 0)
		return 0;
	if (!so_names(so, key, t->name))
		return 0;
	ref = zw_tp_member(spec, "scaleTargetRef");
	if (json_is_string(v = zw_tp_member(ref, "kind")) && *json_string_value(v))
		kind = json_string_value(v);
	if (json_is_string(v = zw_tp_member(ref, "apiVersion")) && *json_string_value(v))
		api = json_string_value(v);
	if (json_is_integer(v = zw_tp_member(spec, "minReplicaCount")) &&
	    json_integer_value(v) >= 0 && json_integer_value(v) <= INT32_MAX)
		min = (int)json_integer_value(v);
	if (json_is_integer(v = zw_tp_member(spec, "maxReplicaCount")) &&
	    json_integer_value(v) >= 0 && json_integer_value(v) <= INT32_MAX)
		max = (int)json_integer_value(v);
	v = zw_tp_member(ref, "name");
	so_name = zw_tp_dup0(json_string_value(name));
	sname = json_is_string(v) ? zw_tp_dup0(json_string_value(v)) : NULL;
	skind = zw_tp_dup0(kind);
	sapi = zw_tp_dup0(api);
	if (!so_name || (json_is_string(v) && !sname) || !skind || !sapi) {
		free(so_name);
		free(sname);
		free(skind);
		free(sapi);
		return ZW_TARGET_ENOMEM;
	}
	free(t->scaled_object);
	free(t->scale_name);
	free(t->scale_kind);
	free(t->scale_api_version);
	t->scaled_object = so_name;
	t->scale_name = sname;
	t->scale_kind = skind;
	t->scale_api_version = sapi;
	t->min_replicas = min;
	t->max_replicas = max;
	return 1;
}
