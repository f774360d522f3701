/* What a destination speaks (see protocol.h). */
#include "protocol.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

struct word {
	const char *word;
	enum zw_proto proto;
};

/* appProtocol values and port-name prefixes, compared case-insensitively. */
static const struct word words[] = {
        {"http", ZW_PROTO_HTTP1},
        {"http1", ZW_PROTO_HTTP1},
        {"kubernetes.io/ws", ZW_PROTO_HTTP1},
        {"grpc-web", ZW_PROTO_HTTP1},
        {"kubernetes.io/h2c", ZW_PROTO_H2C},
        {"h2c", ZW_PROTO_H2C},
        {"http2", ZW_PROTO_H2C},
        {"grpc", ZW_PROTO_H2C},
        {"https", ZW_PROTO_TLS},
        {"kubernetes.io/tls", ZW_PROTO_TLS},
        {"kubernetes.io/wss", ZW_PROTO_TLS},
        {"tls", ZW_PROTO_TLS},
        {"h2", ZW_PROTO_TLS},
        {"grpcs", ZW_PROTO_TLS},
        {"tcp", ZW_PROTO_OTHER},
        {"udp", ZW_PROTO_OTHER},
        {"mongo", ZW_PROTO_OTHER},
        {"mysql", ZW_PROTO_OTHER},
        {"redis", ZW_PROTO_OTHER},
        {"thrift", ZW_PROTO_OTHER},
        {"dubbo", ZW_PROTO_OTHER},
        {"zookeeper", ZW_PROTO_OTHER},
        {"fcgi", ZW_PROTO_OTHER},
};

/* The entry of words[] for the first len bytes of s, or NULL. */
static const struct word *find_word(const char *s, size_t len)
{
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strlen(words[i].word) == len && strncasecmp(words[i].word, s, len) == 0)
			return &words[i];
	return NULL;
}

/* Looks up the first len bytes of s; returns 1 and sets *p when known. */
static int lookup(const char *s, size_t len, enum zw_proto *p)
{
	const struct word *w = find_word(s, len);
	if (w)
		*p = w->proto;
	return w ? 1 : 0;
}

enum zw_proto zw_proto_of_port(const char *app_protocol, const char *name, const char *annotated,
                               char *why, size_t why_len)
{
	enum zw_proto p = ZW_PROTO_HTTP1;
	why[0] = '\0';
	if (app_protocol && *app_protocol) {
		/* An appProtocol we do not know (a vendor's "example.com/x")
		 * is not HTTP/1.1 as far as we can tell. */
		if (!lookup(app_protocol, strlen(app_protocol), &p))
			p = ZW_PROTO_OTHER;
		snprintf(why, why_len, "appProtocol %s", app_protocol);
		return p;
	}
	if (annotated && *annotated && lookup(annotated, strlen(annotated), &p)) {
		snprintf(why, why_len, ZW_PROTO_WHY_ANNOTATION "%s", annotated);
		return p;
	}
	if (name && *name) {
		/* Istio's convention: the name up to the first '-'. */
		const char *dash = strchr(name, '-');
		size_t len = dash ? (size_t)(dash - name) : strlen(name);
		if (dash && strncasecmp(name, "grpc-web", 8) == 0)
			len = 8;
		if (lookup(name, len, &p) && p != ZW_PROTO_HTTP1) {
			snprintf(why, why_len, "port name %s", name);
			return p;
		}
	}
	return ZW_PROTO_HTTP1;
}

const char *zw_proto_service_annotation(const json_t *annotations, const char *port_name)
{
	const char *v = json_string_value(json_object_get(
	        annotations, "traefik.ingress.kubernetes.io/service.serversscheme"));
	if (v && *v)
		return v;
	const char *gke =
	        json_string_value(json_object_get(annotations, "cloud.google.com/app-protocols"));
	if (!gke || !port_name || !*port_name)
		return NULL;
	json_t *map = json_loads(gke, 0, NULL);
	const char *got = json_string_value(json_object_get(map, port_name));
	/* The map is parsed per call: answer with a static word of ours,
	 * never a string of the freed tree. */
	const struct word *w = got ? find_word(got, strlen(got)) : NULL;
	json_decref(map);
	return w ? w->word : NULL;
}

enum zw_proto zw_proto_of_ingress(const json_t *annotations, char *why, size_t why_len)
{
	static const char *const keys[] = {
	        "nginx.ingress.kubernetes.io/backend-protocol",
	        "alb.ingress.kubernetes.io/backend-protocol",
	        "alb.ingress.kubernetes.io/backend-protocol-version",
	        "haproxy.org/server-proto",
	        "ingress.kubernetes.io/protocol",
	};
	why[0] = '\0';
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *v = json_string_value(json_object_get(annotations, keys[i]));
		enum zw_proto p;
		if (!v || !*v)
			continue;
		if (strcasecmp(v, "HTTP1") == 0 || strcasecmp(v, "http") == 0)
			continue;
		if (!lookup(v, strlen(v), &p))
			p = ZW_PROTO_OTHER; /* AUTO_HTTP, FCGI, ...: not plain HTTP/1.1 */
		snprintf(why, why_len, "annotation %s: %s", keys[i], v);
		return p;
	}
	const char *ssl = json_string_value(json_object_get(annotations, "haproxy.org/server-ssl"));
	if (ssl && strcasecmp(ssl, "true") == 0) {
		snprintf(why, why_len, "annotation haproxy.org/server-ssl: true");
		return ZW_PROTO_TLS;
	}
	return ZW_PROTO_HTTP1;
}

const char *zw_proto_name(enum zw_proto p)
{
	switch (p) {
	case ZW_PROTO_HTTP1:
		return "HTTP/1.1";
	case ZW_PROTO_H2C:
		return "HTTP/2 (h2c)";
	case ZW_PROTO_TLS:
		return "TLS";
	case ZW_PROTO_OTHER:
	default:
		return "a protocol other than HTTP";
	}
}
