/* Shared pieces of the TLS fuzz targets (fuzz_tls.c: a server session fed
 * a client's bytes; fuzz_tls_client.c: a client session fed a server's):
 * the session limits they run under, certificate generation made once, and
 * the loop a caller of tls.h runs, with the checks that no limit is
 * exceeded. Linked into each proxy fuzz target (Makefile FUZZ_RULE). */
#ifndef ZW_TLSFUZZ_COMMON_H
#define ZW_TLSFUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "certgen.h"
#include "tls.h"

/* The limits every TLS fuzz session is created with: the smallest input
 * queue, 4 KiB of plaintext, 8 KiB of pending ciphertext. */
extern const struct zw_tls_limits zw_tlsfuzz_limits;

/* Generates a CA and a serving certificate for the n DNS names (borrowed)
 * into *b (owned by the caller: zw_cert_bundle_free). Aborts on failure: a
 * target cannot run without it. */
void zw_tlsfuzz_cert(const char *const *names, size_t n, struct zw_cert_bundle *b);

/* Feeds data[0..size) (borrowed) to t (borrowed) the way a caller's loop
 * does, for at most 64 rounds: feed what is left, take the plaintext and
 * echo it once open, send what is pending; stops on a failure, the peer's
 * close, or when nothing more is taken. Then closes: shutdown, every getter,
 * zw_tls_free (t is gone afterwards). Aborts when a session limit is
 * exceeded. */
void zw_tlsfuzz_run(struct zw_tls *t, const uint8_t *data, size_t size);

#endif
