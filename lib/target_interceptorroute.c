/* Targets described by an InterceptorRoute (http.keda.sh/v1beta1): rules,
 * scaling metrics, cold start (fallback, placeholder, pending limit,
 * overflow), timeouts and static routes. Entry point in target.h. */
#include "target_crd.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int ir_cold_start(struct zw_tp_ctx *c, const json_t *cs, struct zw_target *t)
{
	const char *base = "spec.coldStart";
	json_t *fb, *fsvc, *ph, *resp;
	long long v;
	const char *ov;
	char q[ZW_TP_QUOTE_LEN];
	int rc;

	if ((rc = zw_tp_opt_object(c, cs, "fallback", base, &fb)) < 0 ||
	    (rc = zw_tp_opt_object(c, cs, "placeholder", base, &ph)) < 0)
		return rc;
	if (fb) {
		if ((rc = zw_tp_opt_object(c, fb, "service", "spec.coldStart.fallback", &fsvc)) < 0)
			return rc;
		if (!fsvc)
			return zw_tp_failf(c, "spec.coldStart.fallback.service is required");
		if ((rc = zw_crd_service_ref(c, fsvc, "spec.coldStart.fallback.service",
		                             t->namespace, &t->fallback)) < 0)
			return rc;
		t->has_fallback = true;
	}
	if (ph) {
		if (!(resp = zw_tp_member(ph, "response")))
			return zw_tp_failf(c, "spec.coldStart.placeholder.response is required");
		if ((rc = zw_crd_response(c, resp, "spec.coldStart.placeholder.response",
		                          ZW_TP_DEFAULT_PLACEHOLDER_STATUS, &t->placeholder)) < 0)
			return rc;
		t->has_placeholder = true;
	}
	if ((rc = zw_tp_opt_int(c, cs, "maxPendingRequests", base, 1, ZW_TARGET_MAX_PENDING, &v)) <
	    0)
		return rc;
	if (rc)
		t->max_pending = (uint32_t)v;
	if ((rc = zw_tp_opt_string(c, cs, "overflow", base, &ov)) < 0)
		return rc;
	if (ov && strcmp(ov, "Placeholder") == 0)
		t->overflow_placeholder = true;
	else if (ov && strcmp(ov, "Reject") != 0)
		return zw_tp_failf(c, "spec.coldStart.overflow %s must be Reject or Placeholder",
		                   zw_tp_quote(ov, q));
	if (t->overflow_placeholder && !t->has_placeholder)
		return zw_tp_failf(
		        c, "spec.coldStart.overflow Placeholder needs spec.coldStart.placeholder");
	if (!fb && !ph && !t->max_pending)
		return zw_tp_failf(c,
		                   "spec.coldStart needs at least one of fallback, placeholder or "
		                   "maxPendingRequests");
	return 0;
}

static int ir_static_routes(struct zw_tp_ctx *c, const json_t *spec, struct zw_target *t)
{
	char p[ZW_TP_PATH_LEN], pr[ZW_TP_PATH_LEN], q[ZW_TP_QUOTE_LEN];
	json_t *arr, *v, *resp;
	const char *mode;
	size_t i;
	int rc;

	if ((rc = zw_tp_opt_array(c, spec, "staticRoutes", "spec", &arr)) <= 0)
		return rc;
	if (json_array_size(arr) > ZW_TARGET_MAX_LIST)
		return zw_tr_too_many(c, "spec.staticRoutes");
	if (json_array_size(arr) == 0)
		return 0;
	if (!(t->static_routes = calloc(json_array_size(arr), sizeof(*t->static_routes))))
		return ZW_TARGET_ENOMEM;
	t->n_static_routes = json_array_size(arr);
	json_array_foreach(arr, i, v)
	{
		struct zw_static_route *sr = &t->static_routes[i];

		zw_tp_joini(p, "spec.staticRoutes", i);
		if (!json_is_object(v))
			return zw_tp_failf(c, "%s must be an object, not %s", p, zw_tp_jtype(v));
		if ((rc = zw_crd_rules(c, v, "rules", p, &sr->rules, &sr->n_rules)) < 0)
			return rc;
		if (sr->n_rules == 0)
			return zw_tp_failf(c, "%s.rules needs at least one rule", p);
		if (!(resp = zw_tp_member(v, "response")))
			return zw_tp_failf(c, "%s.response is required", p);
		zw_tp_join(pr, p, "response");
		if ((rc = zw_crd_response(c, resp, pr, ZW_TP_DEFAULT_STATIC_STATUS,
		                          &sr->response)) < 0)
			return rc;
		if ((rc = zw_tp_opt_string(c, v, "responseMode", p, &mode)) < 0)
			return rc;
		if (mode && strcmp(mode, "Always") == 0)
			sr->always = true;
		else if (mode && strcmp(mode, "WhenUnavailable") != 0)
			return zw_tp_failf(c,
			                   "%s.responseMode %s must be Always or WhenUnavailable",
			                   p, zw_tp_quote(mode, q));
	}
	return 0;
}

static int ir_parse(struct zw_tp_ctx *c, const json_t *obj, struct zw_target *t)
{
	json_t *spec, *tgt, *sm, *cc, *rr, *cs, *to;
	int rc;

	zw_target_init(t, ZW_SRC_INTERCEPTORROUTE);
	if ((rc = zw_tp_read_identity(c, obj, "InterceptorRoute", t)) < 0)
		return rc;
	if ((rc = zw_tp_req_object(c, obj, "spec", "", &spec)) < 0)
		return rc;
	if ((rc = zw_tp_req_object(c, spec, "target", "spec", &tgt)) < 0)
		return rc;
	if ((rc = zw_crd_service(c, tgt, "service", "spec.target", t->namespace, &t->service)) <
	            0 ||
	    (rc = zw_crd_port(c, tgt, "spec.target", &t->service)) < 0)
		return rc;
	if ((rc = zw_crd_rules(c, spec, "rules", "spec", &t->rules, &t->n_rules)) < 0)
		return rc;

	if ((rc = zw_tp_req_object(c, spec, "scalingMetric", "spec", &sm)) < 0)
		return rc;
	if ((rc = zw_tp_opt_object(c, sm, "concurrency", "spec.scalingMetric", &cc)) < 0 ||
	    (rc = zw_tp_opt_object(c, sm, "requestRate", "spec.scalingMetric", &rr)) < 0)
		return rc;
	if (!cc && !rr)
		return zw_tp_failf(c,
		                   "spec.scalingMetric needs concurrency or requestRate (or both)");
	if ((cc &&
	     (rc = zw_crd_concurrency(c, cc, "spec.scalingMetric.concurrency", true, t)) < 0) ||
	    (rr &&
	     (rc = zw_crd_request_rate(c, rr, "spec.scalingMetric.requestRate", true, t)) < 0))
		return rc;

	if ((rc = zw_tp_opt_object(c, spec, "coldStart", "spec", &cs)) < 0 ||
	    (cs && (rc = ir_cold_start(c, cs, t)) < 0))
		return rc;
	if ((rc = zw_tp_opt_object(c, spec, "timeouts", "spec", &to)) < 0 ||
	    (rc = zw_tp_opt_duration(c, to, "readiness", "spec.timeouts", true,
	                             &t->readiness_timeout_ms)) < 0 ||
	    (rc = zw_tp_opt_duration(c, to, "request", "spec.timeouts", true,
	                             &t->request_timeout_ms)) < 0 ||
	    (rc = zw_tp_opt_duration(c, to, "responseHeader", "spec.timeouts", true,
	                             &t->response_header_timeout_ms)) < 0)
		return rc;
	if (t->has_fallback &&
	    (t->readiness_timeout_ms == 0 || t->readiness_timeout_ms == ZW_TIMEOUT_NONE))
		t->readiness_timeout_ms = ZW_TP_DEFAULT_FALLBACK_READINESS_MS;
	return ir_static_routes(c, spec, t);
}

int zw_target_parse_interceptorroute(const json_t *obj, struct zw_target *out,
                                     char err[ZW_TARGET_ERRLEN])
{
	return zw_tp_parse_single(ir_parse, obj, out, err);
}
