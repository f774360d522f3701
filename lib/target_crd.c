/* CRD fields shared by HTTPScaledObject and InterceptorRoute (Service refs,
 * rules, static responses, metric blocks). See target_crd.h. */
#include "target_crd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int zw_crd_port(struct zw_tp_ctx *c, const json_t *obj, const char *base,
                struct zw_service_ref *ref)
{
	char p[ZW_TP_PATH_LEN], q[ZW_TP_QUOTE_LEN];
	json_t *pv = zw_tp_member(obj, "port");
	const char *pn;
	int rc;

	if ((rc = zw_tp_opt_string(c, obj, "portName", base, &pn)) < 0)
		return rc;
	if (pv && pn)
		return zw_tp_failf(c,
		                   "%s.port and %s.portName are both set (exactly one is allowed)",
		                   base, base);
	if (!pv && !pn)
		return zw_tp_failf(c, "%s.port or %s.portName is required", base, base);
	if (pn) {
		if (!zw_tp_valid_port_name(pn)) {
			zw_tp_join(p, base, "portName");
			return zw_tp_failf(c, "%s %s is not a valid port name", p,
			                   zw_tp_quote(pn, q));
		}
		return zw_tp_set_str(&ref->port_name, pn);
	}
	zw_tp_join(p, base, "port");
	if (!json_is_integer(pv))
		return zw_tp_failf(c, "%s must be an integer, not %s", p, zw_tp_jtype(pv));
	if (json_integer_value(pv) < 1 || json_integer_value(pv) > 65535)
		return zw_tp_failf(c, "%s %" JSON_INTEGER_FORMAT " is not a port number", p,
		                   json_integer_value(pv));
	ref->port = (int)json_integer_value(pv);
	return 0;
}

int zw_crd_service(struct zw_tp_ctx *c, const json_t *obj, const char *key, const char *base,
                   const char *ns, struct zw_service_ref *ref)
{
	char p[ZW_TP_PATH_LEN], q[ZW_TP_QUOTE_LEN];
	const char *s;
	int rc;

	if ((rc = zw_tp_req_string(c, obj, key, base, &s)) < 0)
		return rc;
	if (!zw_tp_valid_service_name(s)) {
		zw_tp_join(p, base, key);
		return zw_tp_failf(c, "%s %s is not a valid Service name", p, zw_tp_quote(s, q));
	}
	if (zw_tp_set_str(&ref->name, s) || zw_tp_set_str(&ref->namespace, ns))
		return ZW_TARGET_ENOMEM;
	return 0;
}

int zw_crd_string_list(struct zw_tp_ctx *c, const json_t *obj, const char *key, const char *base,
                       struct zw_route_rule *r, zw_tr_item_fn fn)
{
	char p[ZW_TP_PATH_LEN], pi[ZW_TP_PATH_LEN];
	json_t *arr, *v;
	size_t i;
	int rc;

	if ((rc = zw_tp_opt_array(c, obj, key, base, &arr)) <= 0)
		return rc;
	zw_tp_join(p, base, key);
	json_array_foreach(arr, i, v)
	{
		zw_tp_joini(pi, p, i);
		if (!json_is_string(v))
			return zw_tp_failf(c, "%s must be a string, not %s", pi, zw_tp_jtype(v));
		if ((rc = fn(c, r, json_string_value(v), strlen(json_string_value(v)), pi)) < 0)
			return rc;
	}
	return 0;
}

int zw_crd_headers(struct zw_tp_ctx *c, const json_t *obj, const char *base,
                   struct zw_route_rule *r)
{
	char p[ZW_TP_PATH_LEN], pi[ZW_TP_PATH_LEN];
	enum zw_header_match_kind kind;
	json_t *arr, *v;
	const char *name;
	struct zw_tp_mval vm;
	size_t i;
	int rc;

	if ((rc = zw_tp_opt_array(c, obj, "headers", base, &arr)) <= 0)
		return rc;
	zw_tp_join(p, base, "headers");
	json_array_foreach(arr, i, v)
	{
		zw_tp_joini(pi, p, i);
		if (!json_is_object(v))
			return zw_tp_failf(c, "%s must be an object, not %s", pi, zw_tp_jtype(v));
		if ((rc = zw_tp_req_string(c, v, "name", pi, &name)) < 0 ||
		    (rc = zw_tr_match_value(c, v, pi, true, &vm, &kind)) < 0)
			return rc;
		if ((rc = zw_tr_rule_add_header(c, r, name, vm.s, kind, pi)) < 0)
			return rc;
	}
	return 0;
}

/* One IR routing rule {hosts, paths[].value, headers}. */
static int crd_rule(struct zw_tp_ctx *c, const json_t *o, const char *base, struct zw_route_rule *r)
{
	char p[ZW_TP_PATH_LEN], pi[ZW_TP_PATH_LEN], pv[ZW_TP_PATH_LEN];
	json_t *arr, *v;
	const char *s;
	size_t i;
	int rc;

	if (!json_is_object(o))
		return zw_tp_failf(c, "%s must be an object, not %s", base, zw_tp_jtype(o));
	if ((rc = zw_crd_string_list(c, o, "hosts", base, r, zw_tr_rule_add_host)) < 0)
		return rc;
	if ((rc = zw_tp_opt_array(c, o, "paths", base, &arr)) < 0)
		return rc;
	zw_tp_join(p, base, "paths");
	json_array_foreach(arr, i, v)
	{
		zw_tp_joini(pi, p, i);
		if (!json_is_object(v))
			return zw_tp_failf(c, "%s must be an object, not %s", pi, zw_tp_jtype(v));
		if ((rc = zw_tp_req_string(c, v, "value", pi, &s)) < 0)
			return rc;
		zw_tp_join(pv, pi, "value");
		if ((rc = zw_tr_rule_add_path(c, r, s, strlen(s), pv)) < 0)
			return rc;
	}
	if ((rc = zw_tr_rule_default_path(r)) < 0)
		return rc;
	return zw_crd_headers(c, o, base, r);
}

int zw_crd_rules(struct zw_tp_ctx *c, const json_t *obj, const char *key, const char *base,
                 struct zw_route_rule **rules, size_t *n)
{
	char p[ZW_TP_PATH_LEN], pi[ZW_TP_PATH_LEN];
	json_t *arr, *v;
	size_t i;
	int rc;

	if ((rc = zw_tp_opt_array(c, obj, key, base, &arr)) <= 0)
		return rc;
	zw_tp_join(p, base, key);
	if (json_array_size(arr) > ZW_TARGET_MAX_LIST)
		return zw_tr_too_many(c, p);
	if (json_array_size(arr) == 0)
		return 0;
	if (!(*rules = calloc(json_array_size(arr), sizeof(**rules))))
		return ZW_TARGET_ENOMEM;
	*n = json_array_size(arr);
	json_array_foreach(arr, i, v)
	{
		zw_tp_joini(pi, p, i);
		if ((rc = crd_rule(c, v, pi, &(*rules)[i])) < 0)
			return rc;
	}
	return 0;
}

int zw_crd_response(struct zw_tp_ctx *c, const json_t *o, const char *base, int def_status,
                    struct zw_static_response *sr)
{
	char p[ZW_TP_PATH_LEN], ph[ZW_TP_PATH_LEN];
	long long status = def_status;
	json_t *cm, *hdrs, *v;
	const char *body, *s, *key;
	int rc;

	if (!json_is_object(o))
		return zw_tp_failf(c, "%s must be an object, not %s", base, zw_tp_jtype(o));
	if ((rc = zw_tp_opt_int(c, o, "statusCode", base, 100, 599, &status)) < 0)
		return rc;
	sr->status = (int)status;
	if ((rc = zw_tp_opt_string(c, o, "body", base, &body)) < 0 ||
	    (rc = zw_tp_opt_object(c, o, "bodyFromConfigMap", base, &cm)) < 0 ||
	    (rc = zw_tp_opt_object(c, o, "headers", base, &hdrs)) < 0)
		return rc;
	if (body && cm)
		return zw_tp_failf(c, "%s: at most one of body or bodyFromConfigMap may be set",
		                   base);
	if (body && strlen(body) > ZW_TARGET_MAX_BODY)
		return zw_tp_failf(c, "%s.body is longer than %d bytes", base, ZW_TARGET_MAX_BODY);
	if (zw_tp_set_str(&sr->body, body))
		return ZW_TARGET_ENOMEM;
	if (cm) {
		zw_tp_join(p, base, "bodyFromConfigMap");
		if ((rc = zw_tp_req_string(c, cm, "name", p, &s)) < 0)
			return rc;
		if (!zw_tp_valid_object_name(s))
			return zw_tp_failf(c, "%s.name \"%.64s\" is not a valid ConfigMap name", p,
			                   s);
		if (zw_tp_set_str(&sr->body_configmap, s))
			return ZW_TARGET_ENOMEM;
		if ((rc = zw_tp_opt_string(c, cm, "key", p, &s)) < 0)
			return rc;
		if (s && *s && !zw_tp_valid_configmap_key(s))
			return zw_tp_failf(c, "%s.key \"%.64s\" is not a valid ConfigMap key", p,
			                   s);
		if (s && *s && zw_tp_set_str(&sr->body_configmap_key, s))
			return ZW_TARGET_ENOMEM;
	}
	zw_tp_join(p, base, "headers");
	json_object_foreach(hdrs, key, v)
	{
		zw_tp_join(ph, p, key);
		if (!json_is_string(v))
			return zw_tp_failf(c, "%s must be a string, not %s", ph, zw_tp_jtype(v));
		if ((rc = zw_tr_sr_add_header(c, sr, key, json_string_value(v), p)) < 0)
			return rc;
	}
	return 0;
}

int zw_crd_service_ref(struct zw_tp_ctx *c, const json_t *o, const char *base, const char *ns,
                       struct zw_service_ref *ref)
{
	int rc;

	if ((rc = zw_crd_service(c, o, "name", base, ns, ref)) < 0)
		return rc;
	return zw_crd_port(c, o, base, ref);
}

/* A metric block's targetValue (int >= 1; default 100 unless required, as
 * for InterceptorRoute) into *target; marks the metric bit. */
static int crd_target_value(struct zw_tp_ctx *c, const json_t *m, const char *base, bool required,
                            unsigned bit, double *target, struct zw_target *t)
{
	long long v = (long long)ZW_TP_DEFAULT_TARGET_VALUE;
	int rc;

	if ((rc = zw_tp_opt_int(c, m, "targetValue", base, 1, INT32_MAX, &v)) < 0)
		return rc;
	if (rc == 0 && required)
		return zw_tp_failf(c, "%s.targetValue is required", base);
	*target = (double)v;
	t->metrics |= bit;
	return 0;
}

int zw_crd_request_rate(struct zw_tp_ctx *c, const json_t *rr, const char *base,
                        bool target_required, struct zw_target *t)
{
	char pw[ZW_TP_PATH_LEN], pg[ZW_TP_PATH_LEN];
	int rc;

	if ((rc = crd_target_value(c, rr, base, target_required, ZW_METRIC_REQUEST_RATE,
	                           &t->rate_target, t)) < 0 ||
	    (rc = zw_tp_opt_duration(c, rr, "window", base, false, &t->window_ms)) < 0 ||
	    (rc = zw_tp_opt_duration(c, rr, "granularity", base, false, &t->granularity_ms)) < 0)
		return rc;
	zw_tp_join(pw, base, "window");
	zw_tp_join(pg, base, "granularity");
	return zw_tp_check_window(c, pw, pg, t);
}

int zw_crd_concurrency(struct zw_tp_ctx *c, const json_t *cc, const char *base,
                       bool target_required, struct zw_target *t)
{
	return crd_target_value(c, cc, base, target_required, ZW_METRIC_CONCURRENCY,
	                        &t->concurrency_target, t);
}
