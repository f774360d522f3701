/* zerowire-proxy TLS listener counters: handshakes completed (by protocol
 * version and negotiated application protocol) and connections that ended
 * in a TLS error (by reason), shared by the worker threads (relaxed atomic
 * increments: one per handshake, nothing on the data path) and rendered on
 * the admin /metrics as zerowire_tls_handshakes_total{version,alpn} and
 * zerowire_tls_errors_total{reason} (docs/tls.md); and the same for TLS
 * towards backends: zerowire_upstream_tls_handshakes_total{version,alpn}
 * and zerowire_upstream_tls_errors_total{reason}. */
#ifndef ZW_TLSSTATS_H
#define ZW_TLSSTATS_H

#include "http1.h"

#include <stdatomic.h>
#include <stdint.h>

/* Why a TLS connection ended in an error. */
enum zw_tls_err {
	ZW_TLS_ERR_HANDSHAKE =
	        0,          /* the handshake failed (alert, version, cipher, no certificate) */
	ZW_TLS_ERR_TIMEOUT, /* no finished handshake within the header timeout */
	ZW_TLS_ERR_EOF,     /* the client closed or reset during the handshake */
	ZW_TLS_ERR_SESSION, /* a fatal error after the handshake (bad record, alert) */
	ZW_TLS_ERR_COUNT,
};

/* Why a TLS handshake towards a backend failed. */
enum zw_tls_up_err {
	ZW_TLS_UP_ERR_HANDSHAKE = 0, /* alert, version, cipher, protocol */
	ZW_TLS_UP_ERR_VERIFY,        /* the backend's certificate did not verify */
	ZW_TLS_UP_ERR_COUNT,
};

struct zw_tlsstats {
	_Atomic uint64_t handshakes[2][3]; /* [TLS 1.2, 1.3][enum zw_tls_alpn] */
	_Atomic uint64_t errors[ZW_TLS_ERR_COUNT];
	_Atomic uint64_t up_handshakes[2][3]; /* towards backends */
	_Atomic uint64_t up_errors[ZW_TLS_UP_ERR_COUNT];
};

/* Counts a completed handshake of `version` (12 or 13) with `alpn` (enum
 * zw_tls_alpn). Any thread. */
void zw_tlsstats_handshake(struct zw_tlsstats *s, int version, int alpn);

/* Counts a handshake towards a backend, as zw_tlsstats_handshake. */
void zw_tlsstats_up_handshake(struct zw_tlsstats *s, int version, int alpn);

/* Counts a failed handshake towards a backend. Any thread. */
void zw_tlsstats_up_error(struct zw_tlsstats *s, enum zw_tls_up_err err);

/* Appends the two backend families (every series) to out. Returns 0 or
 * -1 (out's limit or memory). */
int zw_tlsstats_render_upstream(const struct zw_tlsstats *s, struct zw_obuf *out);

/* Counts a TLS error of kind `err`. Any thread. */
void zw_tlsstats_error(struct zw_tlsstats *s, enum zw_tls_err err);

/* The label value of err ("handshake_failed", ...). */
const char *zw_tlsstats_reason(enum zw_tls_err err);

/* Appends both families (every series, zeros included) to out. Returns 0
 * or -1 (out's limit or memory). */
int zw_tlsstats_render(const struct zw_tlsstats *s, struct zw_obuf *out);

#endif
