/* What a destination speaks, and whether zerowire-proxy can carry it
 * (shared: the webhook decides what to rewrite, the proxy what to speak
 * upstream).
 *
 * The webhook rewrites a destination only when the proxy speaks its
 * protocol; otherwise the route keeps pointing at the workload (it is then
 * not woken from zero through zerowire) and kubectl shows a warning. The
 * protocol comes, most specific first, from:
 *   - the route kind (GRPCRoute: gRPC, HTTP/2);
 *   - route annotations that set the backend protocol (Ingress controllers:
 *     ingress-nginx, AWS Load Balancer Controller, HAProxy, Traefik v1);
 *   - the Service: a port's appProtocol, Service annotations (Traefik's
 *     serversscheme, GKE's app-protocols), else the port name convention
 *     `<protocol>[-<suffix>]` (Istio's).
 * Unknown means HTTP/1.1, as every controller assumes. */
#ifndef ZW_PROTOCOL_H
#define ZW_PROTOCOL_H

#include <jansson.h>
#include <stddef.h>

enum zw_proto {
	ZW_PROTO_HTTP1 = 0, /* HTTP/1.1 (WebSocket included) */
	ZW_PROTO_H2C = 1,   /* HTTP/2 without TLS, gRPC */
	ZW_PROTO_TLS = 2,   /* TLS to the backend (https, h2, grpcs) */
	ZW_PROTO_OTHER = 3, /* not HTTP (tcp, a database protocol, ...) */
};

/* Protocols zerowire-proxy carries, as bits (1u << enum zw_proto): HTTP/1.1
 * on its HTTP port, h2c (gRPC included) on its h2c port. */
#define ZW_PROTO_CARRIED ((1u << ZW_PROTO_HTTP1) | (1u << ZW_PROTO_H2C))

/* How zw_proto_of_port's why starts when a Service annotation decided. */
#define ZW_PROTO_WHY_ANNOTATION "Service annotation "

/* Classifies one Service port: its appProtocol (may be NULL), its name
 * (may be NULL or ""), and a per-port value from Service annotations
 * (`annotated`, may be NULL: "https", "h2c", "HTTP2", ...). Writes what
 * decided it into why (e.g. "appProtocol kubernetes.io/h2c"; "" for
 * HTTP/1.1 by default). Returns the protocol. */
enum zw_proto zw_proto_of_port(const char *app_protocol, const char *name, const char *annotated,
                               char *why, size_t why_len);

/* The protocol Service annotations (`annotations`, borrowed, may be NULL)
 * give port `port_name` (may be NULL): Traefik's
 * traefik.ingress.kubernetes.io/service.serversscheme for every port, GKE's
 * cloud.google.com/app-protocols JSON map by port name. Returns a borrowed
 * string or NULL. */
const char *zw_proto_service_annotation(const json_t *annotations, const char *port_name);

/* The backend protocol an Ingress's annotations (`annotations`, borrowed,
 * may be NULL) set for all its backends; why as above. Returns the
 * protocol (ZW_PROTO_HTTP1 when none is set). */
enum zw_proto zw_proto_of_ingress(const json_t *annotations, char *why, size_t why_len);

/* Returns "HTTP/1.1", "HTTP/2 (h2c)", "TLS" or "a protocol other than HTTP". */
const char *zw_proto_name(enum zw_proto p);

#endif
