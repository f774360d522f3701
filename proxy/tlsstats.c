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

static const char *const up_reasons[ZW_TLS_UP_ERR_COUNT] = {
        "handshake_failed",
        "verify_failed",
};

/* Counts a handshake in h (handshakes or up_handshakes). */
static void count_handshake(_Atomic uint64_t h[2][3], int version, int alpn)
{
	if (alpn < ZW_TLS_ALPN_NONE || alpn > ZW_TLS_ALPN_H2)
		alpn = ZW_TLS_ALPN_NONE;
	atomic_fetch_add_explicit(&h[version == 13][alpn], 1, memory_order_relaxed);
}

void zw_tlsstats_handshake(struct zw_tlsstats *s, int version, int alpn)
{
	count_handshake(s->handshakes, version, alpn);
}

void zw_tlsstats_up_handshake(struct zw_tlsstats *s, int version, int alpn)
{
	count_handshake(s->up_handshakes, version, alpn);
}

void zw_tlsstats_up_error(struct zw_tlsstats *s, enum zw_tls_up_err err)
{
	if (err < ZW_TLS_UP_ERR_COUNT)
		atomic_fetch_add_explicit(&s->up_errors[err], 1, memory_order_relaxed);
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

/* Appends a handshakes family `name` (help text `help`) from h and an
 * errors family `ename` from e (n reasons) to out. Returns 0 or -1. */
static int render(struct zw_obuf *out, const char *name, const char *help, _Atomic uint64_t h[2][3],
                  const char *ename, const char *ehelp, _Atomic uint64_t *e, const char *const *why,
                  int n)
{
	int rc = zw_obuf_addf(out, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
	for (int v = 0; v < 2 && rc == 0; v++)
		for (int a = 0; a < 3 && rc == 0; a++)
			rc = zw_obuf_addf(out, "%s{version=\"%s\",alpn=\"%s\"} %llu\n", name,
			                  v ? "1.3" : "1.2", alpns[a],
			                  (unsigned long long)atomic_load_explicit(
			                          &h[v][a], memory_order_relaxed));
	if (rc == 0)
		rc = zw_obuf_addf(out, "# HELP %s %s\n# TYPE %s counter\n", ename, ehelp, ename);
	for (int i = 0; i < n && rc == 0; i++)
		rc = zw_obuf_addf(
		        out, "%s{reason=\"%s\"} %llu\n", ename, why[i],
		        (unsigned long long)atomic_load_explicit(&e[i], memory_order_relaxed));
	return rc;
}

int zw_tlsstats_render(const struct zw_tlsstats *s, struct zw_obuf *out)
{
	struct zw_tlsstats *m = (struct zw_tlsstats *)s;
	return render(out, "zerowire_tls_handshakes_total",
	              "TLS handshakes completed on the TLS listener.", m->handshakes,
	              "zerowire_tls_errors_total", "TLS connections ended by an error, by reason.",
	              m->errors, reasons, ZW_TLS_ERR_COUNT);
}

int zw_tlsstats_render_upstream(const struct zw_tlsstats *s, struct zw_obuf *out)
{
	struct zw_tlsstats *m = (struct zw_tlsstats *)s;
	return render(out, "zerowire_upstream_tls_handshakes_total",
	              "TLS handshakes completed towards backends.", m->up_handshakes,
	              "zerowire_upstream_tls_errors_total",
	              "TLS handshakes towards backends that failed, by reason.", m->up_errors,
	              up_reasons, ZW_TLS_UP_ERR_COUNT);
}
