/* zerowire route rewriting per family; see rewrite.h and
 * docs/webhook-rewrite.md. */
#include "rewrite.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Longest JSON pointer built here; paths are fixed keys and indices. */
#define PATH_MAX_LEN 192
/* Targets considered per Service. */
#define MAX_CANDIDATES 32
/* Longest Kubernetes name / namespace / host handled (DNS-1123 is 253). */
#define NAME_MAX_LEN 254

/* One destination, resolved to the Service it names. */
struct dest {
	const char *ns, *name; /* the Service */
	int port;              /* 0 = unset */
	const char *port_name; /* NULL = unset */
	const char *literal;   /* a host taken literally (Istio), for hand-wired names */
	json_t *cluster;       /* Gloo Platform ref.cluster to keep, borrowed, may be NULL */
	const char *port_rule; /* why the kind's schema requires a port, or NULL */
};

/* Why Gateway API and Ingress destinations must name a port. */
#define GATEWAY_PORT_RULE "Gateway API requires a port for a Service backendRef"
#define INGRESS_PORT_RULE "an Ingress service backend requires port.number or port.name"

/* True when d has no port although its kind's schema requires one: the
 * route is invalid as written, and rewritten (the proxy's port filled in)
 * it would be valid but could never be restored. */
static bool port_missing(const struct dest *d)
{
	return d->port_rule && !d->port && !d->port_name;
}

enum zw_mutate_kind zw_rewrite_kind(const char *group, const char *version, const char *kind)
{
	const struct zw_route_kind *k = zw_route_kind_find(group, version, kind);
	return k ? k->mk : ZW_MK_OTHER;
}

unsigned zw_rewrite_autowire_bit(enum zw_mutate_kind kind)
{
	return zw_route_kind_of(kind)->autowire;
}

/* Per destination layout (enum zw_rk_shape, routekinds.h): the walker,
 * where the split-header hint goes and how it is built, and the fields
 * zerowire owns in the destination container. */
struct shape {
	int (*walk)(struct zw_rewrite *rw, json_t *spec);
	const char *hint_key;
	json_t *(*hint)(const json_t *cur, const char *value);
	const char *const *owned;
};

static int walk_ingress(struct zw_rewrite *rw, json_t *spec);
static int walk_gateway(struct zw_rewrite *rw, json_t *spec);
static int walk_istio(struct zw_rewrite *rw, json_t *spec);
static int walk_gloo(struct zw_rewrite *rw, json_t *spec);
static int walk_gloo_v2(struct zw_rewrite *rw, json_t *spec);
static json_t *gateway_hint(const json_t *filters, const char *value);
static json_t *istio_hint(const json_t *headers, const char *value);
static json_t *gloo_hint(const json_t *options, const char *value);

static const char *const ingress_owned[] = {"name", "port", NULL};
static const char *const gateway_owned[] = {"name", "namespace", "port", NULL};
static const char *const istio_owned[] = {"host", "subset", "port", NULL};
static const char *const gloo_owned[] = {"kube", "upstream", "subset", "destinationSpec", NULL};
static const char *const gloo2_owned[] = {"ref", "kind", "port", "subset", NULL};

static const struct shape shapes[] = {
        [ZW_RK_SHAPE_NONE] = {NULL, "filters", gateway_hint, gloo2_owned},
        [ZW_RK_SHAPE_INGRESS] = {walk_ingress, "filters", gateway_hint, ingress_owned},
        [ZW_RK_SHAPE_GATEWAY] = {walk_gateway, "filters", gateway_hint, gateway_owned},
        [ZW_RK_SHAPE_ISTIO] = {walk_istio, "headers", istio_hint, istio_owned},
        [ZW_RK_SHAPE_GLOO] = {walk_gloo, "options", gloo_hint, gloo_owned},
        [ZW_RK_SHAPE_GLOO_V2] = {walk_gloo_v2, "filters", gateway_hint, gloo2_owned},
};

static const struct shape *shape_of(enum zw_mutate_kind kind)
{
	return &shapes[zw_route_kind_of(kind)->shape];
}

void zw_rewrite_warn(struct zw_rewrite *rw, const char *fmt, ...)
{
	char msg[320];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!rw->warnings || json_array_size(rw->warnings) >= ZW_MUTATE_MAX_WARNINGS)
		return;
	size_t i;
	json_t *w;
	json_array_foreach(rw->warnings, i, w)
	{
		if (strcmp(json_string_value(w), msg) == 0)
			return;
	}
	if (json_array_append_new(rw->warnings, json_string(msg)))
		rw->nomem = true;
}

/* Returns parent[key] when it is of the wanted type; when present with
 * another type, notes it (allowed unchanged with a warning) and returns
 * NULL. */
static json_t *typed(struct zw_rewrite *rw, const json_t *parent, const char *key, json_type type,
                     const char *where)
{
	json_t *v = json_object_get(parent, key);
	if (!v)
		return NULL;
	if (json_typeof(v) == type)
		return v;
	rw->not_understood = true;
	zw_rewrite_warn(rw, "%s.%s has an unexpected type; left unchanged", where, key);
	return NULL;
}

static const char *str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static int port_num(const json_t *v)
{
	if (!json_is_integer(v))
		return 0;
	json_int_t n = json_integer_value(v);
	return n > 0 && n < 65536 ? (int)n : 0;
}

/* A port number field that is present must be an integer 1..65535, and a
 * name field a string; otherwise the destination is not understood. */
static bool port_fields_ok(struct zw_rewrite *rw, const json_t *number, const json_t *name)
{
	if ((!number || port_num(number)) && (!name || json_is_string(name)))
		return true;
	rw->not_understood = true;
	zw_rewrite_warn(rw, "a destination port is not a valid port; left unchanged");
	return false;
}

/* Splits a host into Service name and namespace when it has one of the
 * forms svc, svc.ns, svc.ns.svc, svc.ns.svc.<domain> (svc alone takes
 * default_ns; with default_ns NULL *ns is ""). Returns 1 for a Service form,
 * 0 for a host to take literally. */
static int service_host(const char *host, const char *default_ns, const char *domain, char *name,
                        char *ns)
{
	size_t len = strlen(host);
	if (len == 0 || len >= NAME_MAX_LEN)
		return 0;
	const char *d1 = strchr(host, '.');
	if (!d1) {
		memcpy(name, host, len + 1);
		snprintf(ns, NAME_MAX_LEN, "%s", default_ns ? default_ns : "");
		return 1;
	}
	const char *d2 = strchr(d1 + 1, '.');
	const char *ns_end = d2 ? d2 : host + len;
	if (d1 == host || ns_end == d1 + 1)
		return 0;
	if (d2) {
		const char *rest = d2 + 1;
		if (strncmp(rest, "svc", 3) != 0)
			return 0;
		if (rest[3] != '\0' && !(rest[3] == '.' && strcmp(rest + 4, domain) == 0))
			return 0;
	}
	memcpy(name, host, (size_t)(d1 - host));
	name[d1 - host] = '\0';
	memcpy(ns, d1 + 1, (size_t)(ns_end - d1 - 1));
	ns[ns_end - d1 - 1] = '\0';
	return 1;
}

/* True when Service ns/name (or the literal host) is one of the proxy's
 * names: the proxy Service, the alias Service, or a hand-wired name. */
static bool is_proxy(const struct zw_rewrite *rw, const struct dest *d)
{
	const struct zw_mutate_config *cfg = rw->cfg;
	if (d->name && d->ns && strcmp(d->ns, cfg->proxy_namespace) == 0 &&
	    strcmp(d->name, cfg->proxy_service) == 0)
		return true;
	if (d->name && cfg->alias_service && strcmp(d->name, cfg->alias_service) == 0)
		return true;
	for (size_t i = 0; i < cfg->n_handwired_hosts; i++) {
		const char *h = cfg->handwired_hosts[i];
		char hname[NAME_MAX_LEN], hns[NAME_MAX_LEN];
		if (!h)
			continue;
		if (d->literal && strcasecmp(h, d->literal) == 0)
			return true;
		if (!d->name || !service_host(h, NULL, cfg->cluster_domain, hname, hns))
			continue;
		if (strcmp(hname, d->name) == 0 && (!hns[0] || (d->ns && strcmp(hns, d->ns) == 0)))
			return true;
	}
	return false;
}

static bool port_ok(const struct zw_rewrite *rw, const struct dest *d, const struct zw_target *t)
{
	if (!d->port && !d->port_name)
		return true;
	if (t->service.port <= 0 && !t->service.port_name)
		return true;
	if (d->port && t->service.port > 0)
		return d->port == t->service.port;
	if (d->port_name && t->service.port_name)
		return strcmp(d->port_name, t->service.port_name) == 0;
	/* One side names the port, the other numbers it: resolve through the
	 * Service when its ports are known, else accept. */
	const char *pname = d->port_name ? d->port_name : t->service.port_name;
	int want = d->port_name ? t->service.port : d->port, number = 0;
	if (!rw->reg)
		return true;
	int r = zw_registry_service_port(rw->reg, d->ns, d->name, pname, &number);
	if (r < 0)
		return true;
	return r == 1 && number == want;
}

static bool host_covered(const struct zw_target *t, const char *host);
static bool all_paths(const struct zw_target *t);

/* The route host (Ingress rule) or hosts (other kinds) t does not serve,
 * or NULL when it serves them all (a route without hosts is taken as
 * served); the host of the route's URL rewrite instead when it has one. */
static const char *uncovered_host(const struct zw_rewrite *rw, const struct zw_target *t)
{
	if (rw->rewrite_host)
		return host_covered(t, rw->rewrite_host) ? NULL : rw->rewrite_host;
	const char *h = rw->route_host;
	if (h && *h && strcmp(h, "*") != 0 && !host_covered(t, h))
		return h;
	size_t i;
	json_t *v;
	json_array_foreach(rw->route_hosts, i, v)
	{
		h = json_string_value(v);
		if (h && *h && strcmp(h, "*") != 0 && !host_covered(t, h))
			return h;
	}
	return NULL;
}

/* The target d leads to: the first one of d's Service that autowires this
 * kind on d's port and serves every route host; else, with *host_miss set
 * to the host, the first that only misses hosts; else NULL. */
static const struct zw_target *match_target_hosts(const struct zw_rewrite *rw, const struct dest *d,
                                                  const char **host_miss)
{
	const struct zw_target *c[MAX_CANDIDATES], *partial = NULL;
	unsigned bit = zw_rewrite_autowire_bit(rw->kind);
	*host_miss = NULL;
	if (!rw->reg || !d->name || !d->ns)
		return NULL;
	size_t n = zw_registry_find_service(rw->reg, d->ns, d->name, c, MAX_CANDIDATES);
	if (n > MAX_CANDIDATES)
		n = MAX_CANDIDATES;
	for (size_t i = 0; i < n; i++) {
		if (!(c[i]->autowire & bit) || !port_ok(rw, d, c[i]))
			continue;
		const char *miss = uncovered_host(rw, c[i]);
		if (!miss)
			return c[i];
		if (!partial) {
			partial = c[i];
			*host_miss = miss;
		}
	}
	return partial;
}

/* The target d's destination would be rewritten to, or NULL. */
static const struct zw_target *match_target(const struct zw_rewrite *rw, const struct dest *d)
{
	const char *miss;
	const struct zw_target *t = match_target_hosts(rw, d, &miss);
	return miss ? NULL : t;
}

/* The route annotation that tells ingress-nginx to speak TLS (HTTPS, GRPCS)
 * to its backends, and the one that makes it verify their certificates. */
#define NGINX_BACKEND_PROTOCOL "annotation nginx.ingress.kubernetes.io/backend-protocol"
#define NGINX_SSL_VERIFY       "nginx.ingress.kubernetes.io/proxy-ssl-verify"

/* The proxy Service's TLS port for a destination that speaks TLS (`how`
 * says how we know), when the hop to the proxy stays TLS and verified as
 * much as the route asked: Gateway API routes (a BackendTLSPolicy on the
 * proxy Service's https port makes the gateway verify the proxy) and
 * ingress-nginx Ingresses that do not ask to verify the backend. The
 * backend's port must say TLS, since that is what makes zerowire-proxy
 * speak TLS to it. Returns 0 with why set otherwise. */
static int tls_port_for(struct zw_rewrite *rw, const struct dest *d, const char *how, char *why,
                        size_t len)
{
	const struct zw_mutate_config *cfg = rw->cfg;
	enum zw_rk_shape shape = zw_route_kind_of(rw->kind)->shape;
	const char *policy = NULL, *from = NULL;
	int port = 0, proto = ZW_PROTO_HTTP1;
	if (shape != ZW_RK_SHAPE_GATEWAY && shape != ZW_RK_SHAPE_INGRESS) {
		snprintf(why, len,
		         "speaks TLS (%s); only Gateway API routes and ingress-nginx Ingresses are "
		         "rewritten to the proxy's TLS port",
		         how);
		return 0;
	}
	if (shape == ZW_RK_SHAPE_INGRESS) {
		const json_t *ann =
		        json_object_get(json_object_get(rw->obj, "metadata"), "annotations");
		const char *verify = str(ann, NGINX_SSL_VERIFY);
		if (strncmp(how, NGINX_BACKEND_PROTOCOL, strlen(NGINX_BACKEND_PROTOCOL)) != 0) {
			snprintf(why, len,
			         "speaks TLS (%s); of Ingress controllers only ingress-nginx "
			         "(backend-protocol HTTPS, GRPCS) is rewritten to the proxy's TLS "
			         "port",
			         how);
			return 0;
		}
		if (verify && strcasecmp(verify, "on") == 0) {
			snprintf(why, len,
			         "speaks TLS (%s) and the Ingress asks ingress-nginx to verify its "
			         "certificate (%s: on), which the proxy's would not pass",
			         how, NGINX_SSL_VERIFY);
			return 0;
		}
	}
	if (strncmp(how, ZW_PROTO_WHY_ANNOTATION, strlen(ZW_PROTO_WHY_ANNOTATION)) == 0) {
		snprintf(why, len,
		         "speaks TLS (%s; zerowire-proxy reads it from the port's appProtocol or "
		         "name, not annotations)",
		         how);
		return 0;
	}
	if (shape == ZW_RK_SHAPE_INGRESS &&
	    (zw_registry_service_protocol(rw->reg, d->ns, d->name, d->port, d->port_name, &proto,
	                                  &from) != 1 ||
	     proto != ZW_PROTO_TLS)) {
		snprintf(why, len,
		         "speaks TLS (%s) but its Service port does not say so (appProtocol https, "
		         "port name https[-...]), so zerowire-proxy would speak cleartext to it",
		         how);
		return 0;
	}
	if (zw_registry_service_port(rw->reg, cfg->proxy_namespace, cfg->proxy_service,
	                             ZW_PROXY_TLS_PORT_NAME, &port) != 1) {
		snprintf(why, len,
		         "speaks TLS (%s) and the proxy Service %s/%s has no "
		         "port " ZW_PROXY_TLS_PORT_NAME
		         " (the proxy's TLS listener, chart proxy.tls.enabled)",
		         how, cfg->proxy_namespace, cfg->proxy_service);
		return 0;
	}
	if (shape == ZW_RK_SHAPE_GATEWAY &&
	    zw_registry_backend_tls(rw->reg, cfg->proxy_namespace, cfg->proxy_service, port,
	                            ZW_PROXY_TLS_PORT_NAME, &policy) != 1) {
		snprintf(why, len,
		         "speaks TLS (%s) and no BackendTLSPolicy targets the proxy Service %s/%s "
		         "port " ZW_PROXY_TLS_PORT_NAME
		         " (chart proxy.tls.backendTLSPolicy), so the gateway would not verify the "
		         "proxy",
		         how, cfg->proxy_namespace, cfg->proxy_service);
		return 0;
	}
	return port;
}

/* The proxy port destination d is rewritten to: the HTTP port for HTTP/1.1,
 * the h2c port for HTTP/2 cleartext and gRPC, the TLS port for TLS (see
 * tls_port_for). Returns 0 when zerowire-proxy does not carry what d speaks
 * on this route; why then says what it speaks, how we know and why not. */
static int proxy_port_for(struct zw_rewrite *rw, const struct dest *d, char *why, size_t len)
{
	enum zw_proto p = ZW_PROTO_HTTP1;
	char how[192] = "";
	int proto;
	const char *from = NULL, *policy = NULL;
	/* A gateway verifies such a backend by the policy's hostname and CA;
	 * the proxy has no per-Service ones, so that check would be lost. */
	if (zw_route_kind_of(rw->kind)->shape == ZW_RK_SHAPE_GATEWAY && rw->reg &&
	    zw_registry_backend_tls(rw->reg, d->ns, d->name, d->port, d->port_name, &policy) == 1) {
		snprintf(
		        why, len,
		        "is reached over TLS verified by BackendTLSPolicy %s, which zerowire-proxy "
		        "cannot keep (no per-Service hostname or CA towards backends)",
		        policy);
		return 0;
	}
	if (rw->backend_proto != ZW_PROTO_HTTP1) {
		p = rw->backend_proto;
		snprintf(how, sizeof(how), "%s", rw->backend_proto_why);
	} else if (rw->reg && zw_registry_service_protocol(rw->reg, d->ns, d->name, d->port,
	                                                   d->port_name, &proto, &from) == 1) {
		p = (enum zw_proto)proto;
		snprintf(how, sizeof(how), "%s", from);
	}
	/* A GRPCRoute's requests are gRPC, so HTTP/2, whatever the port says
	 * short of TLS or not HTTP (those are left alone below). */
	if (rw->kind == ZW_MK_GRPCROUTE && (p == ZW_PROTO_HTTP1 || p == ZW_PROTO_H2C)) {
		p = ZW_PROTO_H2C;
		snprintf(how, sizeof(how), "a GRPCRoute");
	}
	if (p == ZW_PROTO_HTTP1)
		return rw->cfg->proxy_port;
	if (p == ZW_PROTO_TLS)
		return tls_port_for(rw, d, how, why, len); /* a target was found: reg set */
	if (!(ZW_PROTO_CARRIED & (1u << p))) {
		snprintf(why, len, "speaks %s (%s), which zerowire-proxy does not carry",
		         zw_proto_name(p), how);
		return 0;
	}
	if (rw->cfg->proxy_h2c_port <= 0) {
		snprintf(why, len,
		         "speaks %s (%s) and --proxy-h2c-port is 0, which zerowire-proxy does not "
		         "carry",
		         zw_proto_name(p), how);
		return 0;
	}
	/* The proxy picks h2c to a backend from its port's appProtocol or name
	 * (its EndpointSlice carries those) or for a gRPC request, never from
	 * Service annotations: a backend known to speak h2c only from one
	 * would be sent HTTP/1.1. */
	if (strncmp(how, ZW_PROTO_WHY_ANNOTATION, strlen(ZW_PROTO_WHY_ANNOTATION)) == 0) {
		snprintf(why, len,
		         "speaks %s (%s; zerowire-proxy reads it from the port's appProtocol or "
		         "name, not annotations), which zerowire-proxy does not carry",
		         zw_proto_name(p), how);
		return 0;
	}
	return rw->cfg->proxy_h2c_port;
}

/* True when t serves every path of some host: a rule without path
 * prefixes or with "/". */
static bool all_paths(const struct zw_target *t)
{
	for (size_t r = 0; r < t->n_rules; r++) {
		const struct zw_route_rule *rule = &t->rules[r];
		if (rule->n_paths == 0)
			return true;
		for (size_t p = 0; p < rule->n_paths; p++)
			if (strcmp(rule->paths[p], "/") == 0)
				return true;
	}
	return t->n_rules == 0;
}

static bool host_covered(const struct zw_target *t, const char *host)
{
	if (!host)
		return true;
	for (size_t r = 0; r < t->n_rules; r++) {
		const struct zw_route_rule *rule = &t->rules[r];
		if (rule->n_hosts == 0)
			return true;
		for (size_t h = 0; h < rule->n_hosts; h++) {
			const char *th = rule->hosts[h];
			if (strcmp(th, "*") == 0 || strcasecmp(th, host) == 0)
				return true;
			if (th[0] == '*' && th[1] == '.') {
				size_t hl = strlen(host), sl = strlen(th + 1);
				if (hl > sl && strcasecmp(host + hl - sl, th + 1) == 0)
					return true;
			}
		}
	}
	return t->n_rules == 0;
}

static void warn_after_rewrite(struct zw_rewrite *rw, const struct zw_target *t,
                               const struct dest *d)
{
	const struct zw_mutate_config *cfg = rw->cfg;
	(void)t;
	int number;
	if (d->port_name &&
	    zw_registry_service_port(rw->reg, d->ns, d->name, d->port_name, &number) == 0)
		zw_rewrite_warn(rw, "Service %s/%s defines no port named %s", d->ns, d->name,
		                d->port_name);
	/* The rest depends on the route alone: once per walk. */
	if (rw->wiring_checked || strcmp(rw->ns, cfg->proxy_namespace) == 0)
		return;
	rw->wiring_checked = true;
	int wiring = zw_route_kind_of(rw->kind)->wiring;
	if (wiring == ZW_RK_NO_WIRING || zw_registry_wiring(rw->reg, wiring, rw->ns))
		return;
	if (wiring == ZW_WIRE_ALIAS)
		zw_rewrite_warn(rw,
		                "alias Service %s/%s for the proxy does not exist yet; zerowire "
		                "creates it shortly",
		                rw->ns, cfg->alias_service);
	else
		zw_rewrite_warn(rw,
		                "ReferenceGrant in %s allowing routes of namespace %s to reach the "
		                "proxy does not exist yet; zerowire creates it shortly",
		                cfg->proxy_namespace, rw->ns);
}

/* Sets o[key] = v (stolen; NULL means out of memory). Returns 0 or -1. */
static int put(json_t *o, const char *key, json_t *v)
{
	return v ? json_object_set_new_nocheck(o, key, v) : -1;
}

/* {"number": port}, or NULL on ENOMEM. */
static json_t *port_object(int port)
{
	json_t *o = json_object();
	if (o && put(o, "number", json_integer(port))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* {"name": name, "namespace": ns}, or NULL on ENOMEM. */
static json_t *name_ns(const char *name, const char *ns)
{
	json_t *o = json_object();
	if (o && (put(o, "name", json_string(name)) || put(o, "namespace", json_string(ns)))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Builds the fields written in place of the destination, leading to the
 * proxy's port `port` (new object). */
static json_t *build_written(const struct zw_rewrite *rw, const struct dest *d, int port)
{
	const struct zw_mutate_config *cfg = rw->cfg;
	char host[3 * NAME_MAX_LEN];
	json_t *w = json_object(), *ref;
	int rc = -1;
	if (!w)
		return NULL;
	switch (zw_route_kind_of(rw->kind)->shape) {
	case ZW_RK_SHAPE_INGRESS: {
		/* Backends cannot leave the Ingress's namespace: use the alias
		 * Service there, or the proxy itself in its own namespace. */
		const char *name = strcmp(rw->ns, cfg->proxy_namespace) == 0 ? cfg->proxy_service
		                                                             : cfg->alias_service;
		rc = put(w, "name", json_string(name)) || put(w, "port", port_object(port));
		break;
	}
	case ZW_RK_SHAPE_GATEWAY:
		rc = put(w, "name", json_string(cfg->proxy_service)) ||
		     put(w, "namespace", json_string(cfg->proxy_namespace)) ||
		     put(w, "port", json_integer(port));
		break;
	case ZW_RK_SHAPE_ISTIO:
		snprintf(host, sizeof(host), "%s.%s.svc.%s", cfg->proxy_service,
		         cfg->proxy_namespace, cfg->cluster_domain);
		rc = put(w, "host", json_string(host)) || put(w, "port", port_object(port));
		break;
	case ZW_RK_SHAPE_GLOO: {
		json_t *kube = json_object();
		rc = put(w, "kube", kube) ||
		     put(kube, "ref", name_ns(cfg->proxy_service, cfg->proxy_namespace)) ||
		     put(kube, "port", json_integer(port));
		break;
	}
	default:
		ref = name_ns(cfg->proxy_service, cfg->proxy_namespace);
		rc = put(w, "ref", ref) || put(w, "kind", json_string("SERVICE")) ||
		     put(w, "port", port_object(port)) ||
		     (d->cluster && json_object_set(ref, "cluster", d->cluster));
		break;
	}
	if (rc) {
		json_decref(w);
		return NULL;
	}
	return w;
}

/* The fields written in place of destination d, leading to the proxy's
 * port `port`: a new reference, shared by every destination of the walk to
 * that port when they do not depend on d (only a Gloo Platform cluster
 * does). NULL on ENOMEM. */
static json_t *written_value(struct zw_rewrite *rw, const struct dest *d, int port)
{
	json_t **slot = &rw->written[port == rw->cfg->proxy_port       ? 0
	                             : port == rw->cfg->proxy_h2c_port ? 1
	                                                               : 2];
	if (d->cluster)
		return build_written(rw, d, port);
	if (!*slot)
		*slot = build_written(rw, d, port);
	return json_incref(*slot);
}

static void collect(struct zw_rewrite *rw, const char *ns, const char *name)
{
	char key[2 * NAME_MAX_LEN + 2];
	snprintf(key, sizeof(key), "%s/%s", ns, name);
	size_t i;
	json_t *v;
	json_array_foreach(rw->collect, i, v)
	{
		if (strcmp(json_string_value(v), key) == 0)
			return;
	}
	if (json_array_append_new(rw->collect, json_string(key)))
		rw->nomem = true;
}

/* Returns the child object `key` of o, created empty when absent or not an
 * object; NULL on ENOMEM. */
static json_t *child_object(json_t *o, const char *key)
{
	json_t *c = json_object_get(o, key);
	if (json_is_object(c))
		return c;
	c = json_object();
	return c && json_object_set_new(o, key, c) == 0 ? c : NULL;
}

/* Gateway API backendRef filters (a copy of `filters`, may be NULL) whose
 * RequestHeaderModifier also sets ZW_SERVICE_HEADER to value. The filter
 * type may appear once per backendRef, so an existing one is extended. */
static json_t *gateway_hint(const json_t *filters, const char *value)
{
	json_t *out = json_is_array(filters) ? json_deep_copy(filters) : json_array();
	json_t *f, *mod = NULL, *set;
	size_t i;
	if (!out)
		return NULL;
	json_array_foreach(out, i, f)
	{
		const char *type = str(f, "type");
		if (type && strcmp(type, "RequestHeaderModifier") == 0) {
			mod = f;
			break;
		}
	}
	if (!mod && (!(mod = json_pack("{s:s}", "type", "RequestHeaderModifier")) ||
	             json_array_append_new(out, mod)))
		goto fail;
	json_t *rhm = child_object(mod, "requestHeaderModifier");
	if (!rhm)
		goto fail;
	set = json_object_get(rhm, "set");
	if (!json_is_array(set) && (!(set = json_array()) || json_object_set_new(rhm, "set", set)))
		goto fail;
	for (i = json_array_size(set); i-- > 0;) {
		const char *n = str(json_array_get(set, i), "name");
		if (n && strcasecmp(n, ZW_SERVICE_HEADER) == 0)
			json_array_remove(set, i);
	}
	if (json_array_append_new(
	            set, json_pack("{s:s, s:s}", "name", ZW_SERVICE_HEADER, "value", value)))
		goto fail;
	return out;
fail:
	json_decref(out);
	return NULL;
}

/* Istio HTTPRouteDestination headers (a copy of `headers`, may be NULL)
 * with request.set[ZW_SERVICE_HEADER] = value. */
static json_t *istio_hint(const json_t *headers, const char *value)
{
	json_t *out = json_is_object(headers) ? json_deep_copy(headers) : json_object();
	json_t *set = out ? child_object(child_object(out, "request"), "set") : NULL;
	if (!set || json_object_set_new(set, ZW_SERVICE_HEADER, json_string(value))) {
		json_decref(out);
		return NULL;
	}
	return out;
}

/* Gloo Edge WeightedDestination options (a copy, may be NULL) whose
 * headerManipulation adds ZW_SERVICE_HEADER = value, replacing the
 * client's. */
static json_t *gloo_hint(const json_t *options, const char *value)
{
	json_t *out = json_is_object(options) ? json_deep_copy(options) : json_object();
	json_t *hm = out ? child_object(out, "headerManipulation") : NULL;
	json_t *add = json_object_get(hm, "requestHeadersToAdd");
	size_t i;
	if (!hm)
		goto fail;
	if (!json_is_array(add) &&
	    (!(add = json_array()) || json_object_set_new(hm, "requestHeadersToAdd", add)))
		goto fail;
	for (i = json_array_size(add); i-- > 0;) {
		const char *k = str(json_object_get(json_array_get(add, i), "header"), "key");
		if (k && strcasecmp(k, ZW_SERVICE_HEADER) == 0)
			json_array_remove(add, i);
	}
	if (json_array_append_new(add, json_pack("{s:{s:s, s:s}, s:b}", "header", "key",
	                                         ZW_SERVICE_HEADER, "value", value, "append", 0)))
		goto fail;
	return out;
fail:
	json_decref(out);
	return NULL;
}

bool zw_rewrite_is_hint(const json_t *rec)
{
	const json_t *w = json_object_get(rec, "written");
	return json_object_size(w) == 1 &&
	       (json_object_get(w, "filters") || json_object_get(w, "headers") ||
	        json_object_get(w, "options"));
}

/* Sets the split header for destination d at rw->hint_container and
 * appends a record of its own for it (after the destination's): the two
 * are restored independently, so a later edit of the filters or headers
 * never costs the destination its restore. Returns 0 or -1 on ENOMEM. */
static int add_hint(struct zw_rewrite *rw, const struct dest *d)
{
	char value[2 * NAME_MAX_LEN + 2];
	const char *key;
	json_t *(*build)(const json_t *cur, const char *value);
	json_t *cur, *hv, *rec;
	snprintf(value, sizeof(value), "%s/%s", d->ns, d->name);
	const struct shape *sh = shape_of(rw->kind);
	key = sh->hint_key;
	build = sh->hint;
	cur = json_object_get(rw->hint_container, key);
	if (zw_jsonpatch_log_touch(rw->log, rw->hint_container, rw->hint_path))
		return -1;
	hv = build(cur, value);
	if (!hv)
		return -1;
	rec = json_pack("{s:s, s:{}, s:{s:O}}", "path", rw->hint_path, "original", "written", key,
	                hv);
	if (!rec || json_array_append_new(rw->records, rec))
		goto fail;
	if (cur && json_object_set(json_object_get(rec, "original"), key, cur))
		goto fail;
	if (json_object_set_new(rw->hint_container, key, hv))
		return -1;
	return 0;
fail:
	json_decref(hv);
	return -1;
}

/* Whether destination d may be rewritten as far as namespaces go: a Gateway
 * API backendRef to another namespace only when a ReferenceGrant there
 * allows it (else the gateway refuses the route, and rewritten to the proxy
 * it would work across a boundary nobody opened). Warns when not. */
static bool cross_ns_granted(struct zw_rewrite *rw, const struct dest *d)
{
	const char *kind = zw_route_kind_of(rw->kind)->kind, *grant = NULL;
	if (zw_route_kind_of(rw->kind)->shape != ZW_RK_SHAPE_GATEWAY || strcmp(d->ns, rw->ns) == 0)
		return true;
	if (rw->reg && zw_registry_reference_grant(rw->reg, d->ns, rw->ns, kind, d->name, &grant))
		return true;
	zw_rewrite_warn(
	        rw,
	        "no ReferenceGrant in %s allows %ss of namespace %s to refer to Service %s: "
	        "destination %s/%s left unchanged (the gateway refuses it, as without "
	        "zerowire)",
	        d->ns, kind, rw->ns, d->name, d->ns, d->name);
	return false;
}

/* The one place a destination is rewritten. */
static void consider(struct zw_rewrite *rw, json_t *container, const char *path,
                     const struct dest *d)
{
	if (!d->name || !d->ns || !json_is_object(container))
		return;
	if (rw->collect) {
		collect(rw, d->ns, d->name);
		return;
	}
	if (is_proxy(rw, d))
		return;
	const char *miss = NULL;
	const struct zw_target *t = match_target_hosts(rw, d, &miss);
	if (!t)
		return;
	if (!cross_ns_granted(rw, d))
		return;
	if (miss) {
		/* Rewritten, requests for this host would reach a proxy that
		 * routes none of them: leave the destination alone. */
		zw_rewrite_warn(rw,
		                "%s %s%s is not among the hosts of %s %s/%s: destination %s/%s "
		                "left unchanged (the proxy would answer 404 for it)",
		                rw->rewrite_host ? "host" : "route host", miss,
		                rw->rewrite_host ? " (the route's URL rewrite)" : "",
		                zw_target_source_kind(t->source), t->namespace ? t->namespace : "",
		                t->name ? t->name : "", d->ns, d->name);
		return;
	}
	if (rw->rewrite_path && !all_paths(t)) {
		/* The proxy would match the rewritten path against the target's
		 * prefixes, not the one the route matched. */
		zw_rewrite_warn(rw,
		                "route rewrites the path before the destination, and %s %s/%s "
		                "serves only some path prefixes: destination %s/%s left "
		                "unchanged (the proxy would match the rewritten path)",
		                zw_target_source_kind(t->source), t->namespace ? t->namespace : "",
		                t->name ? t->name : "", d->ns, d->name);
		return;
	}
	if (port_missing(d)) {
		zw_rewrite_warn(rw,
		                "destination %s/%s has no port (%s): left unchanged (the apiserver "
		                "refuses the route as written; zerowire does not make it valid)",
		                d->ns, d->name, d->port_rule);
		return;
	}
	char why[384];
	int port = proxy_port_for(rw, d, why, sizeof(why));
	if (!port) {
		zw_rewrite_warn(rw,
		                "destination %s/%s %s: left unchanged (not woken from zero through "
		                "zerowire)",
		                d->ns, d->name, why);
		return;
	}
	json_t *written = written_value(rw, d, port);
	json_t *original = json_object();
	json_t *rec = NULL;
	if (!written || !original)
		goto nomem;
	const char *const *keys = shape_of(rw->kind)->owned;
	for (size_t i = 0; keys[i]; i++) {
		json_t *v = json_object_get(container, keys[i]);
		if (v && json_object_set(original, keys[i], v))
			goto nomem;
	}
	rec = json_object();
	if (!rec || json_array_append_new(rw->records, rec) ||
	    put(rec, "path", json_string(path)) ||
	    json_object_set_nocheck(rec, "original", original) ||
	    json_object_set_nocheck(rec, "written", written)) {
		rec = NULL;
		goto nomem;
	}
	/* Replace in place (keeps key order), then drop owned keys not written. */
	if (zw_jsonpatch_log_touch(rw->log, container, path))
		goto nomem;
	for (size_t i = 0; keys[i]; i++) {
		json_t *w = json_object_get(written, keys[i]);
		if (w) {
			if (json_object_set(container, keys[i], w))
				goto nomem;
		} else {
			json_object_del(container, keys[i]);
		}
	}
	json_decref(written);
	json_decref(original);
	if (rw->hint_container && add_hint(rw, d) < 0) {
		rw->nomem = true;
		return;
	}
	warn_after_rewrite(rw, t, d);
	return;
nomem:
	json_decref(written);
	json_decref(original);
	rw->nomem = true;
}

/* Split detection over one route's destinations: fed each destination in
 * turn, it says whether they lead to two or more different scaled
 * Services. */
struct split {
	bool on;
	char first[2 * NAME_MAX_LEN + 2];
};

static void split_see(const struct zw_rewrite *rw, struct split *sp, const struct dest *d)
{
	char key[sizeof(sp->first)];
	if (sp->on || !rw->cfg->split_header || rw->collect || !d->name || !d->ns ||
	    port_missing(d) || is_proxy(rw, d) || !match_target(rw, d))
		return;
	snprintf(key, sizeof(key), "%s/%s", d->ns, d->name);
	if (!sp->first[0])
		memcpy(sp->first, key, sizeof(key));
	else if (strcmp(sp->first, key) != 0)
		sp->on = true;
}

static int walk_ingress(struct zw_rewrite *rw, json_t *spec)
{
	char path[PATH_MAX_LEN];
	rw->backend_proto = zw_proto_of_ingress(
	        json_object_get(json_object_get(rw->obj, "metadata"), "annotations"),
	        rw->backend_proto_why, sizeof(rw->backend_proto_why));
	json_t *db = typed(rw, spec, "defaultBackend", JSON_OBJECT, "spec");
	json_t *svc = typed(rw, db, "service", JSON_OBJECT, "spec.defaultBackend");
	if (svc) {
		json_t *port = json_object_get(svc, "port");
		if ((port && !json_is_object(port)) ||
		    !port_fields_ok(rw, json_object_get(port, "number"),
		                    json_object_get(port, "name")))
			svc = NULL;
	}
	if (svc) {
		json_t *port = json_object_get(svc, "port");
		struct dest d = {.ns = rw->ns,
		                 .name = str(svc, "name"),
		                 .port = port_num(json_object_get(port, "number")),
		                 .port_name = str(port, "name"),
		                 .port_rule = INGRESS_PORT_RULE};
		rw->route_host = NULL;
		consider(rw, svc, "/spec/defaultBackend/service", &d);
	}
	json_t *rules = typed(rw, spec, "rules", JSON_ARRAY, "spec");
	size_t i, j;
	json_t *rule, *p;
	json_array_foreach(rules, i, rule)
	{
		json_t *http = typed(rw, rule, "http", JSON_OBJECT, "spec.rules[]");
		json_t *paths = typed(rw, http, "paths", JSON_ARRAY, "spec.rules[].http");
		rw->route_host = str(rule, "host");
		json_array_foreach(paths, j, p)
		{
			json_t *backend =
			        typed(rw, p, "backend", JSON_OBJECT, "spec.rules[].http.paths[]");
			svc = typed(rw, backend, "service", JSON_OBJECT,
			            "spec.rules[].http.paths[].backend");
			if (!svc)
				continue;
			json_t *port = json_object_get(svc, "port");
			if ((port && !json_is_object(port)) ||
			    !port_fields_ok(rw, json_object_get(port, "number"),
			                    json_object_get(port, "name")))
				continue;
			struct dest d = {.ns = rw->ns,
			                 .name = str(svc, "name"),
			                 .port = port_num(json_object_get(port, "number")),
			                 .port_name = str(port, "name"),
			                 .port_rule = INGRESS_PORT_RULE};
			snprintf(path, sizeof(path),
			         "/spec/rules/%zu/http/paths/%zu/backend/service", i, j);
			consider(rw, svc, path, &d);
		}
	}
	rw->route_host = NULL;
	rw->backend_proto = ZW_PROTO_HTTP1;
	return 0;
}

/* GAMMA (mesh) routes attach to Services, not Gateways: every parentRef is
 * a core Service. Like mesh-bound Istio VirtualServices they are left alone
 * unless configured, since the proxy's own calls would be routed again. */
static bool gateway_mesh_bound(const json_t *spec)
{
	json_t *parents = json_object_get(spec, "parentRefs");
	size_t i;
	json_t *p;
	if (json_array_size(parents) == 0)
		return false;
	json_array_foreach(parents, i, p)
	{
		const char *group = str(p, "group");
		const char *kind = str(p, "kind");
		if (!kind || strcmp(kind, "Service") != 0 ||
		    (group && *group && strcmp(group, "core") != 0))
			return false;
	}
	return true;
}

/* A backendRef as a destination; false when it is not a core Service. */
static bool gateway_ref(struct zw_rewrite *rw, const json_t *ref, struct dest *d)
{
	const char *group = str(ref, "group");
	const char *kind = str(ref, "kind");
	if ((json_object_get(ref, "group") && (!group || *group)) ||
	    (json_object_get(ref, "kind") && (!kind || strcmp(kind, "Service") != 0)))
		return false;
	if (!port_fields_ok(rw, json_object_get(ref, "port"), NULL))
		return false;
	const char *ns = str(ref, "namespace");
	*d = (struct dest){.ns = ns ? ns : rw->ns,
	                   .name = str(ref, "name"),
	                   .port = port_num(json_object_get(ref, "port")),
	                   .port_rule = GATEWAY_PORT_RULE};
	return true;
}

/* Applies Gateway API filter f (borrowed) to rw's rewrite_host /
 * rewrite_path when it is a URLRewrite. */
static void url_rewrite_filter(struct zw_rewrite *rw, const json_t *f)
{
	const char *type = json_string_value(json_object_get(f, "type"));
	json_t *u = json_object_get(f, "urlRewrite");
	if (!type || strcmp(type, "URLRewrite") != 0 || !json_is_object(u))
		return;
	if (json_string_value(json_object_get(u, "hostname")))
		rw->rewrite_host = json_string_value(json_object_get(u, "hostname"));
	if (json_object_get(u, "path"))
		rw->rewrite_path = true;
}

/* Sets rw's rewrite_host / rewrite_path from the URLRewrite filters of
 * Gateway API rule and of its backendRef ref (borrowed; the backendRef's
 * apply last). */
static void gateway_url_rewrite(struct zw_rewrite *rw, const json_t *rule, const json_t *ref)
{
	size_t i;
	json_t *f;
	rw->rewrite_host = NULL;
	rw->rewrite_path = false;
	json_array_foreach(json_object_get(rule, "filters"), i, f)
	{
		url_rewrite_filter(rw, f);
	}
	json_array_foreach(json_object_get(ref, "filters"), i, f)
	{
		url_rewrite_filter(rw, f);
	}
}

static int walk_gateway(struct zw_rewrite *rw, json_t *spec)
{
	char path[PATH_MAX_LEN];
	if (!rw->collect && !rw->cfg->autowire_mesh_virtualservices && gateway_mesh_bound(spec))
		return 0;
	rw->route_hosts = typed(rw, spec, "hostnames", JSON_ARRAY, "spec");
	json_t *rules = typed(rw, spec, "rules", JSON_ARRAY, "spec");
	size_t i, j;
	json_t *rule, *ref;
	json_array_foreach(rules, i, rule)
	{
		json_t *refs = typed(rw, rule, "backendRefs", JSON_ARRAY, "spec.rules[]");
		struct split sp = {0};
		struct dest d;
		/* A split needs two destinations; the second pass below meets
		 * (and warns about) each one anyway. */
		if (json_array_size(refs) > 1) {
			json_array_foreach(refs, j, ref)
			{
				gateway_url_rewrite(rw, rule, ref);
				if (gateway_ref(rw, ref, &d))
					split_see(rw, &sp, &d);
			}
		}
		json_array_foreach(refs, j, ref)
		{
			if (!gateway_ref(rw, ref, &d))
				continue;
			snprintf(path, sizeof(path), "/spec/rules/%zu/backendRefs/%zu", i, j);
			rw->hint_container = sp.on ? ref : NULL;
			rw->hint_path = path;
			gateway_url_rewrite(rw, rule, ref);
			consider(rw, ref, path, &d);
		}
	}
	rw->hint_container = NULL;
	rw->route_hosts = NULL;
	rw->rewrite_host = NULL;
	rw->rewrite_path = false;
	return 0;
}

/* Istio: only gateway-bound VirtualServices (or delegates, which have no
 * hosts and inherit the root's gateways) unless configured otherwise. */
static bool istio_bound(const struct zw_rewrite *rw, const json_t *spec)
{
	if (rw->cfg->autowire_mesh_virtualservices)
		return true;
	json_t *hosts = json_object_get(spec, "hosts");
	if (json_array_size(hosts) == 0)
		return true;
	size_t i;
	json_t *g;
	json_array_foreach(json_object_get(spec, "gateways"), i, g)
	{
		const char *s = json_string_value(g);
		if (s && strcmp(s, "mesh") != 0)
			return true;
	}
	return false;
}

/* route[] entry r as a destination naming a Service (name and ns are the
 * caller's NAME_MAX_LEN buffers); *dst is its destination object. */
static bool istio_dest(struct zw_rewrite *rw, json_t *r, struct dest *d, json_t **dst, char *name,
                       char *ns)
{
	*dst = typed(rw, r, "destination", JSON_OBJECT, "spec.http[].route[]");
	const char *host = str(*dst, "host");
	json_t *port = json_object_get(json_object_get(*dst, "port"), "number");
	if (!host || !port_fields_ok(rw, port, NULL))
		return false;
	*d = (struct dest){.literal = host, .port = port_num(port)};
	if (!service_host(host, rw->ns, rw->cfg->cluster_domain, name, ns))
		return false;
	d->name = name;
	d->ns = ns;
	return true;
}

static int walk_istio(struct zw_rewrite *rw, json_t *spec)
{
	char path[PATH_MAX_LEN], hpath[PATH_MAX_LEN], name[NAME_MAX_LEN], ns[NAME_MAX_LEN];
	if (!rw->collect && !istio_bound(rw, spec))
		return 0;
	rw->route_hosts = typed(rw, spec, "hosts", JSON_ARRAY, "spec");
	json_t *http = typed(rw, spec, "http", JSON_ARRAY, "spec");
	size_t i, j;
	json_t *h, *r;
	json_array_foreach(http, i, h)
	{
		json_t *route = typed(rw, h, "route", JSON_ARRAY, "spec.http[]");
		struct split sp = {0};
		struct dest d;
		json_t *dst;
		json_t *rewrite = json_object_get(h, "rewrite");
		rw->rewrite_host = json_string_value(json_object_get(rewrite, "authority"));
		rw->rewrite_path = json_object_get(rewrite, "uri") ||
		                   json_object_get(rewrite, "uriRegexRewrite");
		if (json_array_size(route) > 1) {
			json_array_foreach(route, j, r)
			{
				if (istio_dest(rw, r, &d, &dst, name, ns))
					split_see(rw, &sp, &d);
			}
		}
		json_array_foreach(route, j, r)
		{
			/* Literal hosts: only hand-wired detection applies. */
			if (!istio_dest(rw, r, &d, &dst, name, ns))
				continue;
			snprintf(path, sizeof(path), "/spec/http/%zu/route/%zu/destination", i, j);
			snprintf(hpath, sizeof(hpath), "/spec/http/%zu/route/%zu", i, j);
			rw->hint_container = sp.on ? r : NULL;
			rw->hint_path = hpath;
			consider(rw, dst, path, &d);
		}
	}
	rw->hint_container = NULL;
	rw->route_hosts = NULL;
	rw->rewrite_host = NULL;
	rw->rewrite_path = false;
	return 0;
}

/* A Gloo Edge Destination (single, or multi.destinations[].destination). */
static bool gloo_dest_of(struct zw_rewrite *rw, const json_t *dst, struct dest *d)
{
	json_t *kube = typed(rw, dst, "kube", JSON_OBJECT, "routeAction destination");
	json_t *up = typed(rw, dst, "upstream", JSON_OBJECT, "routeAction destination");
	if (kube) {
		json_t *ref = json_object_get(kube, "ref");
		const char *ns = str(ref, "namespace");
		if (!port_fields_ok(rw, json_object_get(kube, "port"), NULL))
			return false;
		*d = (struct dest){.ns = ns && *ns ? ns : rw->ns,
		                   .name = str(ref, "name"),
		                   .port = port_num(json_object_get(kube, "port"))};
		return true;
	}
	if (up && rw->reg) {
		/* Strings stay valid: the registry's read section is held. */
		const char *ns = str(up, "namespace");
		const char *name = str(up, "name");
		struct zw_registry_upstream u;
		if (!name || !zw_registry_find_upstream(rw->reg, ns && *ns ? ns : rw->ns, name, &u))
			return false;
		*d = (struct dest){
		        .ns = u.service_namespace, .name = u.service_name, .port = u.service_port};
		return true;
	}
	return false;
}

static void gloo_dest(struct zw_rewrite *rw, json_t *dst, const char *path)
{
	struct dest d;
	if (gloo_dest_of(rw, dst, &d))
		consider(rw, dst, path, &d);
}

static int walk_gloo(struct zw_rewrite *rw, json_t *spec)
{
	char path[PATH_MAX_LEN], hpath[PATH_MAX_LEN];
	json_t *routes;
	const char *base;
	if (rw->kind == ZW_MK_GLOO_VIRTUALSERVICE) {
		json_t *vh = typed(rw, spec, "virtualHost", JSON_OBJECT, "spec");
		rw->route_hosts = typed(rw, vh, "domains", JSON_ARRAY, "spec.virtualHost");
		routes = typed(rw, vh, "routes", JSON_ARRAY, "spec.virtualHost");
		base = "/spec/virtualHost/routes";
	} else {
		routes = typed(rw, spec, "routes", JSON_ARRAY, "spec");
		base = "/spec/routes";
	}
	size_t i, j;
	json_t *route, *md;
	json_array_foreach(routes, i, route)
	{
		json_t *opts = json_object_get(route, "options");
		rw->rewrite_host = json_string_value(json_object_get(opts, "hostRewrite"));
		rw->rewrite_path = json_object_get(opts, "prefixRewrite") ||
		                   json_object_get(opts, "regexRewrite");
		json_t *ra = typed(rw, route, "routeAction", JSON_OBJECT, "routes[]");
		json_t *single = typed(rw, ra, "single", JSON_OBJECT, "routes[].routeAction");
		json_t *multi = typed(rw, ra, "multi", JSON_OBJECT, "routes[].routeAction");
		if (single) {
			snprintf(path, sizeof(path), "%s/%zu/routeAction/single", base, i);
			gloo_dest(rw, single, path);
		}
		json_t *dests =
		        typed(rw, multi, "destinations", JSON_ARRAY, "routes[].routeAction.multi");
		struct split sp = {0};
		struct dest d;
		if (json_array_size(dests) > 1) {
			json_array_foreach(dests, j, md)
			{
				json_t *dst = json_object_get(md, "destination");
				if (json_is_object(dst) && gloo_dest_of(rw, dst, &d))
					split_see(rw, &sp, &d);
			}
		}
		json_array_foreach(dests, j, md)
		{
			json_t *dst = typed(rw, md, "destination", JSON_OBJECT,
			                    "routes[].routeAction.multi.destinations[]");
			if (!dst)
				continue;
			snprintf(path, sizeof(path),
			         "%s/%zu/routeAction/multi/destinations/%zu/destination", base, i,
			         j);
			snprintf(hpath, sizeof(hpath), "%s/%zu/routeAction/multi/destinations/%zu",
			         base, i, j);
			rw->hint_container = sp.on ? md : NULL;
			rw->hint_path = hpath;
			gloo_dest(rw, dst, path);
		}
		rw->hint_container = NULL;
	}
	rw->route_hosts = NULL;
	rw->rewrite_host = NULL;
	rw->rewrite_path = false;
	return 0;
}

struct vd_search {
	struct zw_rewrite *rw;
	struct dest found;
};

static int vd_visit(void *ctx, const char *svc_ns, const char *svc_name, int svc_port)
{
	struct vd_search *s = ctx;
	struct dest d = {.ns = svc_ns, .name = svc_name, .port = svc_port};
	if (s->rw->collect) {
		collect(s->rw, svc_ns, svc_name);
		return 0;
	}
	if (is_proxy(s->rw, &d) || !match_target(s->rw, &d))
		return 0;
	s->found = d;
	return 1;
}

/* One Gloo Platform DestinationReference (forwardTo.destinations[] or
 * spec.defaultDestination). */
static void gloo_v2_dest(struct zw_rewrite *rw, json_t *dst, const char *path)
{
	const char *kind = str(dst, "kind");
	json_t *ref = typed(rw, dst, "ref", JSON_OBJECT, "destination");
	json_t *port = json_object_get(dst, "port");
	const char *ns = str(ref, "namespace");
	struct dest d = {.ns = ns && *ns ? ns : rw->ns,
	                 .name = str(ref, "name"),
	                 .port = port_num(json_object_get(port, "number")),
	                 .port_name = str(port, "name"),
	                 .cluster = json_object_get(ref, "cluster")};
	if (!ref || (json_object_get(dst, "kind") && !kind) || (port && !json_is_object(port)) ||
	    !port_fields_ok(rw, json_object_get(port, "number"), json_object_get(port, "name")))
		return;
	if (!kind || strcmp(kind, "SERVICE") == 0) {
		consider(rw, dst, path, &d);
	} else if (strcmp(kind, "VIRTUAL_DESTINATION") == 0 && rw->reg && d.name) {
		struct vd_search s = {.rw = rw};
		if (zw_registry_each_vd_service(rw->reg, d.ns, d.name, d.port, vd_visit, &s) != 1)
			return;
		s.found.cluster = d.cluster;
		consider(rw, dst, path, &s.found);
	}
}

static int walk_gloo_v2(struct zw_rewrite *rw, json_t *spec)
{
	char path[PATH_MAX_LEN];
	rw->route_hosts = typed(rw, spec, "hosts", JSON_ARRAY, "spec");
	json_t *def = typed(rw, spec, "defaultDestination", JSON_OBJECT, "spec");
	if (def)
		gloo_v2_dest(rw, def, "/spec/defaultDestination");
	json_t *http = typed(rw, spec, "http", JSON_ARRAY, "spec");
	size_t i, j;
	json_t *h, *dst;
	json_array_foreach(http, i, h)
	{
		json_t *fwd = typed(rw, h, "forwardTo", JSON_OBJECT, "spec.http[]");
		json_t *dests = typed(rw, fwd, "destinations", JSON_ARRAY, "spec.http[].forwardTo");
		json_array_foreach(dests, j, dst)
		{
			snprintf(path, sizeof(path), "/spec/http/%zu/forwardTo/destinations/%zu", i,
			         j);
			if (json_is_object(dst))
				gloo_v2_dest(rw, dst, path);
		}
	}
	rw->route_hosts = NULL;
	return 0;
}

int zw_rewrite_walk(struct zw_rewrite *rw)
{
	int (*fn)(struct zw_rewrite * rw, json_t * spec) = shape_of(rw->kind)->walk;
	if (!fn)
		return 0;
	json_t *spec = json_object_get(rw->obj, "spec");
	if (!json_is_object(spec)) {
		rw->not_understood = true;
		zw_rewrite_warn(rw, "object has no spec; left unchanged");
		return rw->nomem ? -1 : 0;
	}
	int rc = fn(rw, spec);
	return rc || rw->nomem ? -1 : 0;
}
