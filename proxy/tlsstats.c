/* zerowire-proxy TLS listener counters (see tlsstats.h). */
#include "tlsstats.h"

#include "tls.h"

static const char *const reasons[ZW_TLS_ERR_COUNT] = {
        "handshake_failed",
        "handshake_timeout",
        "handshake_eof",
        "session_error",
};

static const char *const alpns[3] = {"none", "http/1.1", "h2"};

void zw_tlsstats_handshake(struct zw_tlsstats *s, int version, int alpn)
{
	if (alpn < ZW_TLS_ALPN_NONE || alpn > ZW_TLS_ALPN_H2)
		alpn = ZW_TLS_ALPN_NONE;
	atomic_fetch_add_explicit(&s->handshakes[version == 13][alpn], 1, memory_order_relaxed);
}

void zw_tlsstats_error(struct zw_tlsstats *s, enum zw_tls_err err)
{
	if (err < ZW_TLS_ERR_COUNT)
		atomic_fetch_add_explicit(&s->errors[err], 1, memory_order_relaxed);
}

const char *zw_tlsstats_reason(enum zw_tls_err err)
{
	return err < ZW_TLS_ERR_COUNT ? reasons[err] : "unknown";
}

int zw_tlsstats_render(const struct zw_tlsstats *s, struct zw_obuf *out)
{
	struct zw_tlsstats *m = (struct zw_tlsstats *)s;
	int rc = zw_obuf_addf(out, "# HELP zerowire_tls_handshakes_total TLS handshakes completed "
	                           "on the TLS listener.\n"
	                           "# TYPE zerowire_tls_handshakes_total counter\n");
	for (int v = 0; v < 2 && rc == 0; v++)
		for (int a = 0; a < 3 && rc == 0; a++)
			rc = zw_obuf_addf(
			        out,
			        "zerowire_tls_handshakes_total{version=\"%s\",alpn=\"%s\"} %llu\n",
			        v ? "1.3" : "1.2", alpns[a],
			        (unsigned long long)atomic_load_explicit(&m->handshakes[v][a],
			                                                 memory_order_relaxed));
	if (rc == 0)
		rc = zw_obuf_addf(out, "# HELP zerowire_tls_errors_total TLS connections ended by "
		                       "an error, by reason.\n"
		                       "# TYPE zerowire_tls_errors_total counter\n");
	for (int e = 0; e < ZW_TLS_ERR_COUNT && rc == 0; e++)
		rc = zw_obuf_addf(out, "zerowire_tls_errors_total{reason=\"%s\"} %llu\n",
		                  reasons[e],
		                  (unsigned long long)atomic_load_explicit(&m->errors[e],
		                                                           memory_order_relaxed));
	return rc;
}
