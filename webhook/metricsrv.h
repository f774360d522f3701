/* zerowire-webhook plain-HTTP metrics listener (--metrics-listen): GET
 * /metrics (the same text as on the TLS port) and /healthz, on its own
 * libmicrohttpd daemon with one internal thread, so that Prometheus scrapes
 * without the webhook's serving certificate. */
#ifndef ZW_METRICSRV_H
#define ZW_METRICSRV_H

#include "whmetrics.h"

struct zw_metricsrv;

/* Starts listening on `listen` ("host:port", ":port", "[v6]:port";
 * borrowed). `m` is borrowed and must outlive the listener; refresh (may be
 * NULL) is called with arg before each rendering. On success *out is owned
 * by the caller (zw_metricsrv_stop). Returns 0, -EINVAL (bad address) or
 * -EADDRINUSE (could not listen). */
int zw_metricsrv_start(const char *listen, struct zw_wh_metrics *m, void (*refresh)(void *arg),
                       void *arg, struct zw_metricsrv **out);

/* Bound TCP port (useful with port 0). */
int zw_metricsrv_port(const struct zw_metricsrv *s);

/* Stops the listener, joins its thread and frees it. NULL-safe. */
void zw_metricsrv_stop(struct zw_metricsrv *s);

#endif
