/* zerowire-proxy TLS sessions without I/O (GnuTLS over memory): server
 * sessions under client connections, client sessions under upstream
 * connections to backends that speak TLS.
 *
 * The caller owns the socket: it feeds the ciphertext it read
 * (zw_tls_feed), takes the plaintext that came out (zw_tls_plain /
 * zw_tls_plain_consume), hands plaintext in (zw_tls_write) and sends the
 * ciphertext that is waiting (zw_tls_pending / zw_tls_sent). GnuTLS's
 * transport push/pull functions work on two byte queues (lib/buf).
 *
 * Handshake: TLS 1.2 and 1.3 only, with the priority string
 * ZW_TLS_PRIORITY (docs/tls.md says why); ALPN "h2" and "http/1.1" in the
 * server's order (h2 when the client offers both; zw_tls_alpn reports it,
 * NONE when the client sent no ALPN or only other protocols); the
 * certificate is picked from a certstore.h store by the client's SNI
 * (unknown or no SNI: the store's default; none: the handshake fails with
 * an alert). The session keeps a reference to the certificate it chose, so
 * a renewed certificate serves the next handshake while this one
 * continues. The handshake timeout is the caller's.
 *
 * Limits (backpressure): at most lim.max_in bytes of received ciphertext
 * are queued (zw_tls_feed takes less when full: stop reading the socket);
 * decrypted plaintext waiting for the caller is kept under
 * lim.max_plain (records beyond it stay queued as ciphertext until
 * zw_tls_plain_consume makes room); zw_tls_write accepts nothing while
 * lim.max_out bytes of ciphertext wait to be sent.
 *
 * Client sessions (zw_tls_new_client) have the same shape: the ClientHello
 * is pending as soon as the session exists; SNI and the verified name are
 * the name given (no SNI for an IP literal); ALPN offers one protocol; the
 * certificate is verified against a struct zw_tls_client's trust when it
 * has any (a failure ends the handshake with an error naming why).
 *
 * One session belongs to one thread; a struct zw_tls_client is shared
 * read-only by every thread once built. */
#ifndef ZW_TLS_H
#define ZW_TLS_H

#include "certstore.h"

#include <stdbool.h>
#include <stddef.h>

/* TLS 1.3 and 1.2; AEAD ciphers only; ECDHE key exchange only (forward
 * secrecy); X25519, P-256, P-384; the server's order. */
#define ZW_TLS_PRIORITY                                                                      \
	"NONE:+VERS-TLS1.3:+VERS-TLS1.2:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:+AEAD:" \
	"+ECDHE-ECDSA:+ECDHE-RSA:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:+SIGN-ALL:" \
	"-SIGN-RSA-SHA1:-SIGN-ECDSA-SHA1:-SIGN-DSA-SHA1:+COMP-NULL:+CTYPE-X509:"             \
	"%SERVER_PRECEDENCE"

#define ZW_TLS_RECORD 16384                  /* largest plaintext record */
#define ZW_TLS_MIN_IN (ZW_TLS_RECORD + 2048) /* smallest max_in: one whole record */
#define ZW_TLS_ERRLEN 160

enum zw_tls_state {
	ZW_TLS_HANDSHAKE = 0, /* in progress */
	ZW_TLS_OPEN,          /* handshake done: application data both ways */
	ZW_TLS_PEER_CLOSED,   /* close_notify received: no more plaintext comes */
	ZW_TLS_FAILED,        /* fatal error or alert: send what is pending, then close */
};

enum zw_tls_alpn {
	ZW_TLS_ALPN_NONE = 0, /* the client sent no ALPN (or none we speak): HTTP/1.1 */
	ZW_TLS_ALPN_HTTP11,
	ZW_TLS_ALPN_H2,
};

struct zw_tls_limits {
	size_t max_in;    /* queued received ciphertext, >= ZW_TLS_MIN_IN; 0: 64 KiB */
	size_t max_plain; /* decrypted plaintext waiting; 0: 64 KiB */
	size_t max_out;   /* ciphertext waiting to be sent before writes stop; 0: 64 KiB */
};

struct zw_tls;
struct zw_tls_client; /* client-side trust: CA bundle and/or system store */

/* Creates a server session taking certificates from `store` (borrowed;
 * must outlive the handshake). `lim` may be NULL (defaults). Returns 0
 * with *out owned by the caller (zw_tls_free), or -1 (bad limits, out of
 * memory, GnuTLS failure). */
int zw_tls_new(struct zw_certstore *store, const struct zw_tls_limits *lim, struct zw_tls **out);

/* Builds the trust for client sessions: the PEM certificates of ca_file
 * (may be NULL) and, with `system`, the system's trust store. Neither:
 * sessions encrypt but verify nothing. Returns 0 with *out owned by the
 * caller (zw_tls_client_free), or -1 with a message in err (unreadable or
 * empty bundle, GnuTLS failure). */
int zw_tls_client_new(const char *ca_file, bool system, struct zw_tls_client **out, char *err,
                      size_t errlen);

/* Frees c (no session may use it any more). NULL-safe. */
void zw_tls_client_free(struct zw_tls_client *c);

/* Whether sessions of c verify the server's certificate. */
bool zw_tls_client_verifies(const struct zw_tls_client *c);

/* Creates a client session with c's trust (borrowed; must outlive the
 * session) towards server_name (copied; SNI and, when c verifies, the name
 * the certificate must carry), offering ALPN `alpn` (HTTP11: http/1.1, H2:
 * h2, NONE: no ALPN). `lim` may be NULL. The ClientHello is pending once
 * this returns. Returns 0 with *out owned by the caller (zw_tls_free), or
 * -1. */
int zw_tls_new_client(const struct zw_tls_client *c, const char *server_name, enum zw_tls_alpn alpn,
                      const struct zw_tls_limits *lim, struct zw_tls **out);

/* Frees t and its certificate reference. NULL-safe. */
void zw_tls_free(struct zw_tls *t);

/* Queues up to n bytes of received ciphertext p (borrowed) and runs the
 * session (handshake, decryption) as far as it can; *used gets the bytes
 * taken (less than n when the input queue is full). Returns the state
 * afterwards. */
enum zw_tls_state zw_tls_feed(struct zw_tls *t, const void *p, size_t n, size_t *used);

/* How many bytes of ciphertext zw_tls_feed would take now (0 after a
 * failure or the peer's close_notify): the size to read from the socket. */
size_t zw_tls_in_room(const struct zw_tls *t);

/* Whether the caller should read more ciphertext from the socket (the
 * input queue has room and the session still wants input). */
bool zw_tls_want_read(const struct zw_tls *t);

/* Decrypted plaintext waiting: *len bytes at the returned pointer
 * (borrowed until the next call on t); NULL with *len 0 when none. */
const void *zw_tls_plain(const struct zw_tls *t, size_t *len);

/* Drops the first n bytes of the waiting plaintext (n <= its length) and
 * decrypts more queued records into the room made. Returns the state. */
enum zw_tls_state zw_tls_plain_consume(struct zw_tls *t, size_t n);

/* Encrypts up to n bytes of p (borrowed) once the handshake is done; *used
 * gets the bytes taken (0 before the handshake, after a close, or while
 * max_out bytes wait to be sent). Returns the state. */
enum zw_tls_state zw_tls_write(struct zw_tls *t, const void *p, size_t n, size_t *used);

/* Ciphertext waiting to be sent: *len bytes at the returned pointer
 * (borrowed until the next call on t); NULL with *len 0 when none. */
const void *zw_tls_pending(const struct zw_tls *t, size_t *len);

/* Records that the first n bytes of the pending ciphertext were sent. */
void zw_tls_sent(struct zw_tls *t, size_t n);

/* Queues a close_notify alert (once; after the handshake). Plaintext
 * writes stop. Returns the state. */
enum zw_tls_state zw_tls_shutdown(struct zw_tls *t);

/* The current state. */
enum zw_tls_state zw_tls_get_state(const struct zw_tls *t);

/* The negotiated application protocol (valid once OPEN). */
enum zw_tls_alpn zw_tls_alpn(const struct zw_tls *t);

/* The server name the client asked for, or for a client session the name
 * it sent (borrowed from t; "" without SNI). */
const char *zw_tls_sni(const struct zw_tls *t);

/* The certificate serving this session (borrowed from t; NULL before the
 * ClientHello was read or when none matched). */
const struct zw_cert *zw_tls_cert(const struct zw_tls *t);

/* The negotiated protocol version: 12 or 13 (0 before the handshake). */
int zw_tls_version(const struct zw_tls *t);

/* Whether the session failed because the peer's certificate did not
 * verify (client sessions with trust). */
bool zw_tls_verify_failed(const struct zw_tls *t);

/* Why the session failed ("" otherwise; borrowed from t). */
const char *zw_tls_error(const struct zw_tls *t);

#endif
