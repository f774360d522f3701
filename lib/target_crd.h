/* CRD pieces HTTPScaledObject and InterceptorRoute share (internal to
 * lib/target*.c): Service references and ports, string lists, header
 * matchers, routing rules, static responses and the two metric blocks. */
#ifndef ZW_TARGET_CRD_H
#define ZW_TARGET_CRD_H

#include "target_rule.h"

/* {port | portName} of a CRD object at base into ref. */
int zw_crd_port(struct zw_tp_ctx *c, const json_t *obj, const char *base,
                struct zw_service_ref *ref);

/* A Service name field (required). */
int zw_crd_service(struct zw_tp_ctx *c, const json_t *obj, const char *key, const char *base,
                   const char *ns, struct zw_service_ref *ref);

/* A list of strings at obj[key], each passed to fn. */
int zw_crd_string_list(struct zw_tp_ctx *c, const json_t *obj, const char *key, const char *base,
                       struct zw_route_rule *r, zw_tr_item_fn fn);

/* headers: [{name, value? | valueWildcard? | valueRegex?}] */
int zw_crd_headers(struct zw_tp_ctx *c, const json_t *obj, const char *base,
                   struct zw_route_rule *r);

/* The rule list obj[key] (IR rules, static-route rules) into a new array
 * *rules of *n rules, owned by the caller even on failure. Returns 0,
 * ZW_TARGET_EINVAL or ZW_TARGET_ENOMEM. */
int zw_crd_rules(struct zw_tp_ctx *c, const json_t *obj, const char *key, const char *base,
                 struct zw_route_rule **rules, size_t *n);

/* StaticResponse {statusCode, body, bodyFromConfigMap {name, key}, headers}. */
int zw_crd_response(struct zw_tp_ctx *c, const json_t *o, const char *base, int def_status,
                    struct zw_static_response *sr);

/* ServiceRef {name, port | portName} (InterceptorRoute coldStart.fallback.service). */
int zw_crd_service_ref(struct zw_tp_ctx *c, const json_t *o, const char *base, const char *ns,
                       struct zw_service_ref *ref);

/* requestRate {targetValue, window, granularity}. */
int zw_crd_request_rate(struct zw_tp_ctx *c, const json_t *rr, const char *base,
                        bool target_required, struct zw_target *t);

/* concurrency {targetValue} into t (metric bit and target). Returns 0 or
 * ZW_TARGET_EINVAL. */
int zw_crd_concurrency(struct zw_tp_ctx *c, const json_t *cc, const char *base,
                       bool target_required, struct zw_target *t);

#endif
