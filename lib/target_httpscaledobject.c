/* Targets described by an HTTPScaledObject (http.keda.sh/v1alpha1, the
 * KEDA HTTP add-on's resource) and the Kedify annotations it may carry.
 * Entry point in target.h. */
#include "target_crd.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SKIP_SO_ANNOTATION       "httpscaledobject.keda.sh/skip-scaledobject-creation"
#define KEDIFY_AUTOWIRE_ANNOT    "http.kedify.io/traffic-autowire"
#define KEDIFY_HC_PATH_ANNOT     "http.kedify.io/healthcheck-path"
#define KEDIFY_HC_RESPONSE_ANNOT "http.kedify.io/healthcheck-response"

/* Kedify annotations an HTTPScaledObject may carry: traffic-autowire and
 * healthcheck-path/-response. */
static int hso_annotations(struct zw_tp_ctx *c, const json_t *ann, struct zw_target *t)
{
	char q[ZW_TP_QUOTE_LEN];
	const char *skip, *aw, *hcp, *hcr;
	const char *base = "metadata.annotations";
	int rc;

	if ((rc = zw_tp_opt_string(c, ann, SKIP_SO_ANNOTATION, base, &skip)) < 0 ||
	    (rc = zw_tp_opt_string(c, ann, KEDIFY_AUTOWIRE_ANNOT, base, &aw)) < 0 ||
	    (rc = zw_tp_opt_string(c, ann, KEDIFY_HC_PATH_ANNOT, base, &hcp)) < 0 ||
	    (rc = zw_tp_opt_string(c, ann, KEDIFY_HC_RESPONSE_ANNOT, base, &hcr)) < 0)
		return rc;
	t->skip_scaledobject = skip && strcasecmp(skip, "true") == 0;
	if (aw &&
	    (rc = zw_tp_autowire_set(c, aw, "metadata.annotations." KEDIFY_AUTOWIRE_ANNOT, t)) < 0)
		return rc;
	if (hcp && *hcp) {
		const char *why = NULL;
		rc = zw_tr_path_norm(hcp, strlen(hcp), &t->healthcheck_path, &why);
		if (rc == -1)
			return zw_tp_failf(c,
			                   "metadata.annotations.%s %s is not a valid path: it %s",
			                   KEDIFY_HC_PATH_ANNOT, zw_tp_quote(hcp, q), why);
		if (rc < 0)
			return rc;
		t->healthcheck_response = ZW_HC_PASSTHROUGH;
		if (hcr && strcasecmp(hcr, "static") == 0)
			t->healthcheck_response = ZW_HC_STATIC;
		else if (hcr && *hcr && strcasecmp(hcr, "passthrough") != 0)
			return zw_tp_failf(
			        c, "metadata.annotations.%s %s must be passthrough or static",
			        KEDIFY_HC_RESPONSE_ANNOT, zw_tp_quote(hcr, q));
	}
	return 0;
}

/* spec.scaleTargetRef: the workload and the Service in front of it. */
static int hso_scale_target(struct zw_tp_ctx *c, const json_t *spec, struct zw_target *t)
{
	json_t *ref;
	const char *s;
	int rc;

	if ((rc = zw_tp_req_object(c, spec, "scaleTargetRef", "spec", &ref)) < 0)
		return rc;
	if ((rc = zw_crd_service(c, ref, "service", "spec.scaleTargetRef", t->namespace,
	                         &t->service)) < 0 ||
	    (rc = zw_crd_port(c, ref, "spec.scaleTargetRef", &t->service)) < 0)
		return rc;
	if ((rc = zw_tp_opt_string(c, ref, "name", "spec.scaleTargetRef", &s)) < 0)
		return rc;
	if ((!s || !*s) && !t->skip_scaledobject)
		return zw_tp_failf(c, "spec.scaleTargetRef.name is required");
	if (s && *s && zw_tp_set_str(&t->scale_name, s))
		return ZW_TARGET_ENOMEM;
	if ((rc = zw_tp_opt_string(c, ref, "kind", "spec.scaleTargetRef", &s)) < 0 ||
	    zw_tp_set_str(&t->scale_kind, s && *s ? s : ZW_TP_DEFAULT_SCALE_KIND))
		return rc < 0 ? rc : ZW_TARGET_ENOMEM;
	if ((rc = zw_tp_opt_string(c, ref, "apiVersion", "spec.scaleTargetRef", &s)) < 0 ||
	    zw_tp_set_str(&t->scale_api_version, s && *s ? s : ZW_TP_DEFAULT_SCALE_API_VERSION))
		return rc < 0 ? rc : ZW_TARGET_ENOMEM;
	if (!t->skip_scaledobject && zw_tp_set_str(&t->scaled_object, t->name))
		return ZW_TARGET_ENOMEM;
	return 0;
}

/* spec.hosts, pathPrefixes and headers: the target's one routing rule. */
static int hso_rule(struct zw_tp_ctx *c, const json_t *spec, struct zw_target *t)
{
	int rc;

	if (!(t->rules = calloc(1, sizeof(*t->rules))))
		return ZW_TARGET_ENOMEM;
	t->n_rules = 1;
	if ((rc = zw_crd_string_list(c, spec, "hosts", "spec", t->rules, zw_tr_rule_add_host)) <
	            0 ||
	    (rc = zw_crd_string_list(c, spec, "pathPrefixes", "spec", t->rules,
	                             zw_tr_rule_add_path)) < 0 ||
	    (rc = zw_tr_rule_default_path(t->rules)) < 0 ||
	    (rc = zw_crd_headers(c, spec, "spec", t->rules)) < 0)
		return rc;
	return 0;
}

/* spec.replicas and the KEDA periods (scaledownPeriod, initialCooldownPeriod). */
static int hso_replicas(struct zw_tp_ctx *c, const json_t *spec, struct zw_target *t)
{
	json_t *reps;
	long long v;
	int rc;

	if ((rc = zw_tp_opt_object(c, spec, "replicas", "spec", &reps)) < 0)
		return rc;
	v = ZW_TP_DEFAULT_MIN_REPLICAS;
	if ((rc = zw_tp_opt_int(c, reps, "min", "spec.replicas", 0, INT32_MAX, &v)) < 0)
		return rc;
	t->min_replicas = (int)v;
	v = ZW_TP_DEFAULT_MAX_REPLICAS;
	if ((rc = zw_tp_opt_int(c, reps, "max", "spec.replicas", 0, INT32_MAX, &v)) < 0)
		return rc;
	t->max_replicas = (int)v;
	if (t->min_replicas > t->max_replicas)
		return zw_tp_failf(c, "spec.replicas.min %d is greater than spec.replicas.max %d",
		                   t->min_replicas, t->max_replicas);
	v = -1;
	if ((rc = zw_tp_opt_int(c, spec, "scaledownPeriod", "spec", 0, INT32_MAX, &v)) < 0)
		return rc;
	t->cooldown_period = (int)v;
	v = -1;
	if ((rc = zw_tp_opt_int(c, spec, "initialCooldownPeriod", "spec", 0, INT32_MAX, &v)) < 0)
		return rc;
	t->initial_cooldown_period = (int)v;
	return 0;
}

/* spec.scalingMetric (concurrency | requestRate) or the deprecated
 * targetPendingRequests. */
static int hso_metric(struct zw_tp_ctx *c, const json_t *spec, struct zw_target *t)
{
	json_t *sm, *cc = NULL, *rr = NULL;
	long long pending = 0;
	int rc;

	if ((rc = zw_tp_opt_int(c, spec, "targetPendingRequests", "spec", 1, INT32_MAX, &pending)) <
	            0 ||
	    (rc = zw_tp_opt_object(c, spec, "scalingMetric", "spec", &sm)) < 0 ||
	    (rc = zw_tp_opt_object(c, sm, "concurrency", "spec.scalingMetric", &cc)) < 0 ||
	    (rc = zw_tp_opt_object(c, sm, "requestRate", "spec.scalingMetric", &rr)) < 0)
		return rc;
	if (cc && rr)
		return zw_tp_failf(c,
		                   "spec.scalingMetric: concurrency and requestRate are mutually "
		                   "exclusive");
	if (cc)
		return zw_crd_concurrency(c, cc, "spec.scalingMetric.concurrency", false, t);
	if (rr)
		return zw_crd_request_rate(c, rr, "spec.scalingMetric.requestRate", false, t);
	/* deprecated targetPendingRequests: a concurrency target */
	t->metrics = ZW_METRIC_CONCURRENCY;
	if (pending)
		t->concurrency_target = (double)pending;
	return 0;
}

/* spec.timeouts and spec.coldStartTimeoutFailoverRef. */
static int hso_timeouts(struct zw_tp_ctx *c, const json_t *spec, struct zw_target *t)
{
	const char *base = "spec.coldStartTimeoutFailoverRef";
	json_t *to, *fo;
	long long v;
	uint64_t ms;
	int rc;

	if ((rc = zw_tp_opt_object(c, spec, "timeouts", "spec", &to)) < 0 ||
	    (rc = zw_tp_opt_duration(c, to, "conditionWait", "spec.timeouts", true,
	                             &t->readiness_timeout_ms)) < 0 ||
	    (rc = zw_tp_opt_duration(c, to, "responseHeader", "spec.timeouts", true,
	                             &t->response_header_timeout_ms)) < 0)
		return rc;
	if ((rc = zw_tp_opt_object(c, spec, "coldStartTimeoutFailoverRef", "spec", &fo)) < 0)
		return rc;
	if (!fo)
		return 0;
	if ((rc = zw_crd_service(c, fo, "service", base, t->namespace, &t->fallback)) < 0 ||
	    (rc = zw_crd_port(c, fo, base, &t->fallback)) < 0)
		return rc;
	v = ZW_TP_DEFAULT_FAILOVER_SECONDS;
	if ((rc = zw_tp_opt_int(c, fo, "timeoutSeconds", base, 0, INT32_MAX, &v)) < 0)
		return rc;
	ms = (uint64_t)v * 1000u;
	t->has_fallback = true;
	t->readiness_timeout_ms = ms ? ms : ZW_TP_DEFAULT_FALLBACK_READINESS_MS;
	return 0;
}

static int hso_parse(struct zw_tp_ctx *c, const json_t *obj, struct zw_target *t)
{
	json_t *spec, *ann;
	int rc;

	zw_target_init(t, ZW_SRC_HTTPSCALEDOBJECT);
	if ((rc = zw_tp_read_identity(c, obj, "HTTPScaledObject", t)) < 0)
		return rc;
	if ((rc = zw_tp_opt_object(c, zw_tp_member(obj, "metadata"), "annotations", "metadata",
	                           &ann)) < 0 ||
	    (rc = hso_annotations(c, ann, t)) < 0)
		return rc;
	if ((rc = zw_tp_req_object(c, obj, "spec", "", &spec)) < 0)
		return rc;
	if ((rc = hso_scale_target(c, spec, t)) < 0 || (rc = hso_rule(c, spec, t)) < 0 ||
	    (rc = hso_replicas(c, spec, t)) < 0 || (rc = hso_metric(c, spec, t)) < 0)
		return rc;
	return hso_timeouts(c, spec, t);
}

int zw_target_parse_httpscaledobject(const json_t *obj, struct zw_target *out,
                                     char err[ZW_TARGET_ERRLEN])
{
	return zw_tp_parse_single(hso_parse, obj, out, err);
}
