/* zerowire-proxy peer token: the shared bearer token that guards the
 * state-changing peer endpoints of the admin port (POST /peer/cold, and
 * GET /peer/counts with it) and that proxy/peers.c sends to the other
 * replicas (docs/security.md "Admin and peer endpoints").
 *
 * The token is read from a file (in Kubernetes a Secret mounted as a
 * volume): once at start, then a timer on the control loop stat()s the path
 * every check_ms and re-reads the file only when its identity (device,
 * inode, size, mtime, ctime) changed, which is what the kubelet's atomic
 * `..data` symlink swap produces. A file that cannot be read or holds no
 * valid token leaves the current token in place. After a change the previous
 * token stays accepted for grace_ms, so that replicas whose volume the
 * kubelet refreshes a little later keep talking to each other; it is never
 * sent. Reading is a stat() per tick and a read of at most ZW_AUTH_FILE_MAX
 * bytes from a tmpfs when the file changed: nothing blocks the loop.
 *
 * Comparisons take time that depends only on the length of what the client
 * sent, never on the token's content. No function here logs or prints; the
 * token is never copied anywhere but the struct (and the peers' requests).
 * Everything runs on the loop thread given to zw_auth_new. */
#ifndef ZW_AUTH_H
#define ZW_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define ZW_AUTH_TOKEN_MAX 1024 /* longest token, bytes */
#define ZW_AUTH_FILE_MAX  4096 /* larger token files are refused */

/* Outcome of a check, as the HTTP status to answer. */
enum zw_auth_result {
	ZW_AUTH_OK = 0,
	ZW_AUTH_MISSING = 401, /* no Authorization: Bearer credentials */
	ZW_AUTH_WRONG = 403,   /* credentials given but not a valid token */
};

struct zw_auth;

struct zw_auth_config {
	const char *path;  /* token file (borrowed; must outlive the struct) */
	uint64_t check_ms; /* stat period (the proxy: 1 s); 0 = never re-read */
	uint64_t grace_ms; /* previous token accepted this long after a change; 0 = not */
	/* Called on the loop after each re-read attempt that found the file
	 * changed: rc 0 (new token in use) or a negative errno (old token
	 * kept). May be NULL. Never given the token. */
	void (*on_reload)(void *arg, int rc);
	void *arg;
};

/* Extracts a token from the bytes of a token file (`data`, `len`, borrowed):
 * surrounding whitespace is dropped; what is left must be 1 to
 * ZW_AUTH_TOKEN_MAX printable ASCII characters without spaces. Writes it
 * NUL-terminated into out (outlen > ZW_AUTH_TOKEN_MAX). Returns its length,
 * or -EINVAL (empty or invalid characters) or -E2BIG (too long), out then
 * unspecified. */
int zw_auth_parse_token(const char *data, size_t len, char *out, size_t outlen);

/* Checks an Authorization header value (`authorization`, borrowed, may be
 * NULL when the header is absent) against `token` (borrowed; NULL or "" when
 * no token is configured: everything is then ZW_AUTH_WRONG, unless the
 * header is absent). The scheme "Bearer" is matched case-insensitively.
 * Constant time in the token's content. Returns an enum zw_auth_result. */
int zw_auth_check_bearer(const char *token, const char *authorization);

/* Reads cfg->path (it must hold a valid token) and starts the re-read
 * timer on `loop` (borrowed). The timer does not keep the loop alive.
 * `cfg` is copied. On success *out is owned by the caller (zw_auth_close).
 * Returns 0, a negative errno from open/read, -EINVAL / -E2BIG from
 * zw_auth_parse_token or -ENOMEM. */
int zw_auth_new(uv_loop_t *loop, const struct zw_auth_config *cfg, struct zw_auth **out);

/* Checks an Authorization header value (borrowed, may be NULL) against the
 * current token and, within the grace period, the previous one. `a` may be
 * NULL (no token configured: only ZW_AUTH_MISSING or ZW_AUTH_WRONG).
 * Returns an enum zw_auth_result. */
int zw_auth_check(const struct zw_auth *a, const char *authorization);

/* Returns the current token (owned by `a`, valid until the next re-read on
 * the loop), or NULL when a is NULL. For sending only; never log it. */
const char *zw_auth_token(const struct zw_auth *a);

/* Re-reads the file now if its identity changed (what the timer does).
 * Returns 1 (new token in use), 0 (unchanged) or a negative errno (file
 * unreadable or invalid: current token kept). */
int zw_auth_reload(struct zw_auth *a);

/* Stops the timer and frees `a` once the handle has closed (the loop must
 * run). The token is wiped from memory. NULL-safe. */
void zw_auth_close(struct zw_auth *a);

#endif
