/* Target model: one scaled workload's HTTP identity (target.h). This file
 * owns the model's lifetime (defaults, free, deep copy), the dispatch of an
 * object to its source parser and the small helpers; each source has its
 * own file: target_scaledobject.c (external-push and kedify-http
 * triggers), target_httpscaledobject.c, target_interceptorroute.c, on the
 * shared kit in target_parse.c, target_rule.c and target_crd.c. */
#include "target.h"

#include "apiversion.h"
#include "target_rule.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void zw_target_init(struct zw_target *t, enum zw_target_source src)
{
	memset(t, 0, sizeof(*t));
	t->source = src;
	t->trigger_index = -1;
	t->min_replicas = ZW_TP_DEFAULT_MIN_REPLICAS;
	t->max_replicas = ZW_TP_DEFAULT_MAX_REPLICAS;
	t->rate_target = ZW_TP_DEFAULT_TARGET_VALUE;
	t->concurrency_target = ZW_TP_DEFAULT_TARGET_VALUE;
	t->window_ms = ZW_TP_DEFAULT_WINDOW_MS;
	t->granularity_ms = ZW_TP_DEFAULT_GRANULARITY_MS;
	t->autowire = ZW_AW_ALL;
	t->cooldown_period = -1;
	t->initial_cooldown_period = -1;
	t->endpoint_concurrency = ZW_ALLOWANCE_UNSET;
	t->slow_start_ms = -1;
}

static void ref_free(struct zw_service_ref *r)
{
	free(r->namespace);
	free(r->name);
	free(r->port_name);
	memset(r, 0, sizeof(*r));
}

static void rule_free(struct zw_route_rule *r)
{
	zw_tp_strv_free(r->hosts, r->n_hosts);
	zw_tp_strv_free(r->paths, r->n_paths);
	for (size_t i = 0; i < r->n_headers; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
		if (r->headers[i].kind == ZW_HDR_REGEX)
			zw_tr_regex_free(r->headers[i].regex);
	}
	free(r->headers);
}

static void rules_free(struct zw_route_rule *rules, size_t n)
{
	for (size_t i = 0; rules && i < n; i++)
		rule_free(&rules[i]);
	free(rules);
}

void zw_target_response_free(struct zw_static_response *sr)
{
	free(sr->body);
	zw_tp_strv_free(sr->header_names, sr->n_headers);
	zw_tp_strv_free(sr->header_values, sr->n_headers);
	free(sr->body_configmap);
	free(sr->body_configmap_key);
	zw_tp_strv_free(sr->file_keys, sr->n_files);
	zw_tp_strv_free(sr->file_values, sr->n_files);
	memset(sr, 0, sizeof(*sr));
}

void zw_target_free(struct zw_target *t)
{
	if (!t)
		return;
	free(t->namespace);
	free(t->name);
	free(t->uid);
	free(t->creation_timestamp);
	free(t->scaled_object);
	free(t->scale_kind);
	free(t->scale_api_version);
	free(t->scale_name);
	ref_free(&t->service);
	rules_free(t->rules, t->n_rules);
	ref_free(&t->fallback);
	zw_target_response_free(&t->placeholder);
	free(t->healthcheck_path);
	free(t->healthcheck_path_prefix);
	for (size_t i = 0; t->static_routes && i < t->n_static_routes; i++) {
		rules_free(t->static_routes[i].rules, t->static_routes[i].n_rules);
		zw_target_response_free(&t->static_routes[i].response);
	}
	free(t->static_routes);
	memset(t, 0, sizeof(*t));
}

void zw_target_array_free(struct zw_target *ts, size_t n)
{
	for (size_t i = 0; ts && i < n; i++)
		zw_target_free(&ts[i]);
	free(ts);
}

/* Copies n strings; *dn is set as soon as the array exists so a partial
 * copy is freed by the owner's normal free path. */
static int copy_strv(char ***dst, size_t *dn, char *const *src, size_t n)
{
	*dst = NULL;
	*dn = 0;
	if (!n)
		return 0;
	if (!(*dst = calloc(n, sizeof(**dst))))
		return ZW_TARGET_ENOMEM;
	*dn = n;
	for (size_t i = 0; i < n; i++)
		if (!((*dst)[i] = zw_tp_dup0(src[i])))
			return ZW_TARGET_ENOMEM;
	return 0;
}

static int copy_ref(struct zw_service_ref *d, const struct zw_service_ref *s)
{
	d->port = s->port;
	if (zw_tp_set_str(&d->namespace, s->namespace) || zw_tp_set_str(&d->name, s->name) ||
	    zw_tp_set_str(&d->port_name, s->port_name))
		return ZW_TARGET_ENOMEM;
	return 0;
}

static int copy_rules(struct zw_route_rule **dst, size_t *dn, const struct zw_route_rule *src,
                      size_t n)
{
	*dst = NULL;
	*dn = 0;
	if (!n)
		return 0;
	if (!(*dst = calloc(n, sizeof(**dst))))
		return ZW_TARGET_ENOMEM;
	*dn = n;
	for (size_t i = 0; i < n; i++) {
		struct zw_route_rule *d = &(*dst)[i];
		const struct zw_route_rule *s = &src[i];

		if (copy_strv(&d->hosts, &d->n_hosts, s->hosts, s->n_hosts) < 0 ||
		    copy_strv(&d->paths, &d->n_paths, s->paths, s->n_paths) < 0)
			return ZW_TARGET_ENOMEM;
		if (!s->n_headers)
			continue;
		if (!(d->headers = calloc(s->n_headers, sizeof(*d->headers))))
			return ZW_TARGET_ENOMEM;
		d->n_headers = s->n_headers;
		for (size_t k = 0; k < s->n_headers; k++) {
			char why[128];

			d->headers[k].kind = s->headers[k].kind;
			if (!(d->headers[k].name = zw_tp_dup0(s->headers[k].name)))
				return ZW_TARGET_ENOMEM;
			if (s->headers[k].value &&
			    !(d->headers[k].value = zw_tp_dup0(s->headers[k].value)))
				return ZW_TARGET_ENOMEM;
			/* the expression compiled once already: only memory can fail */
			if (s->headers[k].kind == ZW_HDR_REGEX && s->headers[k].value &&
			    zw_tr_regex_compile(s->headers[k].value, &d->headers[k].regex, why,
			                        sizeof(why)))
				return ZW_TARGET_ENOMEM;
		}
	}
	return 0;
}

static int copy_sr(struct zw_static_response *d, const struct zw_static_response *s)
{
	size_t n = s->n_headers;

	d->status = s->status;
	d->waiting_page = s->waiting_page;
	d->configmap_state = s->configmap_state;
	if (zw_tp_set_str(&d->body, s->body) ||
	    zw_tp_set_str(&d->body_configmap, s->body_configmap) ||
	    zw_tp_set_str(&d->body_configmap_key, s->body_configmap_key))
		return ZW_TARGET_ENOMEM;
	if (s->n_files) {
		d->file_keys = calloc(s->n_files, sizeof(char *));
		d->file_values = calloc(s->n_files, sizeof(char *));
		if (!d->file_keys || !d->file_values)
			return ZW_TARGET_ENOMEM;
		d->n_files = s->n_files;
		for (size_t i = 0; i < s->n_files; i++)
			if (zw_tp_set_str(&d->file_keys[i], s->file_keys[i]) ||
			    zw_tp_set_str(&d->file_values[i], s->file_values[i]))
				return ZW_TARGET_ENOMEM;
	}
	if (!n)
		return 0;
	d->header_names = calloc(n, sizeof(char *));
	d->header_values = calloc(n, sizeof(char *));
	if (!d->header_names || !d->header_values) {
		free(d->header_names);
		free(d->header_values);
		d->header_names = d->header_values = NULL;
		return ZW_TARGET_ENOMEM;
	}
	d->n_headers = n;
	for (size_t i = 0; i < n; i++)
		if (!(d->header_names[i] = zw_tp_dup0(s->header_names[i])) ||
		    !(d->header_values[i] = zw_tp_dup0(s->header_values[i])))
			return ZW_TARGET_ENOMEM;
	return 0;
}

int zw_target_copy(struct zw_target *dst, const struct zw_target *src)
{
	int rc = ZW_TARGET_ENOMEM;

	*dst = *src;
	/* detach every owned pointer before copying so a failure frees only
	 * what belongs to dst */
	dst->namespace = dst->name = dst->uid = dst->creation_timestamp = NULL;
	dst->scaled_object = dst->scale_kind = dst->scale_api_version = dst->scale_name = NULL;
	memset(&dst->service, 0, sizeof(dst->service));
	memset(&dst->fallback, 0, sizeof(dst->fallback));
	memset(&dst->placeholder, 0, sizeof(dst->placeholder));
	dst->rules = NULL;
	dst->n_rules = 0;
	dst->healthcheck_path = NULL;
	dst->healthcheck_path_prefix = NULL;
	dst->static_routes = NULL;
	dst->n_static_routes = 0;

	if (zw_tp_set_str(&dst->namespace, src->namespace) ||
	    zw_tp_set_str(&dst->name, src->name) || zw_tp_set_str(&dst->uid, src->uid) ||
	    zw_tp_set_str(&dst->creation_timestamp, src->creation_timestamp) ||
	    zw_tp_set_str(&dst->scaled_object, src->scaled_object) ||
	    zw_tp_set_str(&dst->scale_kind, src->scale_kind) ||
	    zw_tp_set_str(&dst->scale_api_version, src->scale_api_version) ||
	    zw_tp_set_str(&dst->scale_name, src->scale_name) ||
	    zw_tp_set_str(&dst->healthcheck_path, src->healthcheck_path) ||
	    zw_tp_set_str(&dst->healthcheck_path_prefix, src->healthcheck_path_prefix))
		goto fail;
	if (copy_ref(&dst->service, &src->service) < 0 ||
	    copy_ref(&dst->fallback, &src->fallback) < 0 ||
	    copy_sr(&dst->placeholder, &src->placeholder) < 0)
		goto fail;
	if (copy_rules(&dst->rules, &dst->n_rules, src->rules, src->n_rules) < 0)
		goto fail;
	if (src->n_static_routes) {
		dst->static_routes = calloc(src->n_static_routes, sizeof(*dst->static_routes));
		if (!dst->static_routes)
			goto fail;
		dst->n_static_routes = src->n_static_routes;
		for (size_t i = 0; i < src->n_static_routes; i++) {
			struct zw_static_route *d = &dst->static_routes[i];
			const struct zw_static_route *s = &src->static_routes[i];

			d->always = s->always;
			if (copy_rules(&d->rules, &d->n_rules, s->rules, s->n_rules) < 0 ||
			    copy_sr(&d->response, &s->response) < 0)
				goto fail;
		}
	}
	return 0;
fail:
	zw_target_free(dst);
	return rc;
}

int zw_target_parse_object(const json_t *obj, struct zw_target **out, size_t *n_out,
                           char err[ZW_TARGET_ERRLEN])
{
	struct zw_tp_ctx c = {.err = err, .trigger = -1};
	const char *api, *kind, *version;
	json_t *a = zw_tp_member(obj, "apiVersion"), *k = zw_tp_member(obj, "kind");
	struct zw_target *t;
	int rc;

	*out = NULL;
	*n_out = 0;
	if (err)
		err[0] = '\0';
	if (!json_is_string(a) || !json_is_string(k))
		return ZW_TARGET_ENOTARGET;
	api = json_string_value(a);
	kind = json_string_value(k);
	if (zw_api_group_is(api, "keda.sh", &version) && strcmp(kind, "ScaledObject") == 0) {
		if (strcmp(version, "v1alpha1") != 0) {
			zw_tp_read_identity(&c, obj, kind, NULL);
			return zw_tp_failf(
			        &c, "apiVersion %s is not supported (keda.sh/v1alpha1 is)", api);
		}
		return zw_target_parse_scaledobject(obj, out, n_out, err);
	}
	if (!zw_api_group_is(api, "http.keda.sh", &version) ||
	    (strcmp(kind, "HTTPScaledObject") != 0 && strcmp(kind, "InterceptorRoute") != 0))
		return ZW_TARGET_ENOTARGET;
	if (strcmp(kind, "HTTPScaledObject") == 0 && strcmp(version, "v1alpha1") != 0) {
		zw_tp_read_identity(&c, obj, kind, NULL);
		return zw_tp_failf(&c, "apiVersion %s is not supported (http.keda.sh/v1alpha1 is)",
		                   api);
	}
	if (strcmp(kind, "InterceptorRoute") == 0 && strcmp(version, "v1beta1") != 0) {
		zw_tp_read_identity(&c, obj, kind, NULL);
		return zw_tp_failf(&c, "apiVersion %s is not supported (http.keda.sh/v1beta1 is)",
		                   api);
	}
	if (!(t = calloc(1, sizeof(*t)))) {
		zw_tp_enomem_message(err, ZW_TARGET_ENOMEM);
		return ZW_TARGET_ENOMEM;
	}
	if (strcmp(kind, "HTTPScaledObject") == 0)
		rc = zw_target_parse_httpscaledobject(obj, t, err);
	else
		rc = zw_target_parse_interceptorroute(obj, t, err);
	if (rc < 0) {
		free(t);
		return rc;
	}
	*out = t;
	*n_out = 1;
	return 0;
}

const char *zw_target_source_kind(enum zw_target_source src)
{
	switch (src) {
	case ZW_SRC_SCALEDOBJECT:
	case ZW_SRC_KEDIFY:
		return "ScaledObject";
	case ZW_SRC_INTERCEPTORROUTE:
		return "InterceptorRoute";
	case ZW_SRC_HTTPSCALEDOBJECT:
		return "HTTPScaledObject";
	}
	return "unknown";
}

size_t zw_target_key(const struct zw_target *t, char *buf, size_t len)
{
	int n;

	if (!buf || len == 0)
		return 0;
	if (t->trigger_index >= 0)
		n = snprintf(buf, len, "%s/%s/%d", t->namespace ? t->namespace : "",
		             t->name ? t->name : "", t->trigger_index);
	else
		n = snprintf(buf, len, "%s/%s", t->namespace ? t->namespace : "",
		             t->name ? t->name : "");
	if (n < 0) {
		buf[0] = '\0';
		return 0;
	}
	return (size_t)n < len ? (size_t)n : len - 1;
}
