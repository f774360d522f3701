/* zerowire-proxy TLS certificates: serving certificates keyed by host name,
 * with a default, for the TLS listener (tls.h picks one per handshake from
 * the client's SNI).
 *
 * A certificate (struct zw_cert) is a PEM certificate chain and private key
 * loaded into its own GnuTLS credentials, with the DNS names of its
 * subjectAltName (or, without any, its subject CN), its expiry and the
 * source it came from ("namespace/name" of a Secret, or a file path). It is
 * reference-counted: the store holds one reference, each TLS session that
 * chose it another, so replacing a store entry never pulls credentials from
 * under a running session.
 *
 * The store maps a source key to one certificate. Host names are looked up
 * exactly (case-insensitive, one trailing dot ignored), then as a
 * one-level wildcard: "*.example.com" serves "a.example.com" but neither
 * "example.com" nor "a.b.example.com"; wildcards need at least two labels
 * after "*." and partial-label wildcards ("f*.example.com") are ignored.
 * When two sources claim one name, the one with the smaller source key
 * wins. Unknown names and handshakes without SNI get the default entry
 * (marked ZW_CERTSTORE_DEFAULT), if any.
 *
 * Thread safety: lookups may run on any number of worker threads while one
 * thread (the control loop, fed by the Secret watch) replaces entries; a
 * read-write lock guards the index, and a lookup returns its own
 * reference. */
#ifndef ZW_CERTSTORE_H
#define ZW_CERTSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <jansson.h>

struct zw_buf;

#define ZW_CERTSTORE_ERRLEN    256
#define ZW_CERTSTORE_MAX_NAMES 100        /* DNS names kept per certificate */
#define ZW_CERTSTORE_MAX_PEM   (1u << 20) /* bytes of certificate or key PEM */

#define ZW_CERTSTORE_DEFAULT 1u /* zw_certstore_put: this entry is the default */

struct zw_cert;
struct zw_certstore;

/* Loads a certificate chain and its key (PEM, borrowed, `cert_len` and
 * `key_len` bytes, NUL not needed) from `source` (borrowed, copied). On
 * success *out holds one reference owned by the caller (zw_cert_unref).
 * Returns 0, or -1 with the reason in err (bad PEM, key does not match,
 * oversize input, out of memory). */
int zw_cert_load(const char *cert_pem, size_t cert_len, const char *key_pem, size_t key_len,
                 const char *source, struct zw_cert **out, char err[ZW_CERTSTORE_ERRLEN]);

/* Takes another reference to c (any thread). Returns c. */
struct zw_cert *zw_cert_ref(struct zw_cert *c);

/* Drops a reference (any thread); the last one frees c. NULL-safe. */
void zw_cert_unref(struct zw_cert *c);

/* The GnuTLS credentials of c (owned by c; valid while a reference is
 * held). */
gnutls_certificate_credentials_t zw_cert_credentials(const struct zw_cert *c);

/* The DNS names of c (borrowed from c): *n gets their count. */
const char *const *zw_cert_names(const struct zw_cert *c, size_t *n);

/* The source c was loaded from (borrowed from c). */
const char *zw_cert_source(const struct zw_cert *c);

/* The leaf certificate's notAfter, as a Unix time. */
time_t zw_cert_not_after(const struct zw_cert *c);

/* Creates an empty store. Returns 0 with *out owned by the caller
 * (zw_certstore_free), or -1 (out of memory). */
int zw_certstore_new(struct zw_certstore **out);

/* Frees s and its references (sessions keep theirs). NULL-safe. */
void zw_certstore_free(struct zw_certstore *s);

/* Sets the entry of `key` (borrowed, copied) to c (the store takes its own
 * reference; the caller keeps its one), replacing any earlier one, and
 * makes it the default when flags has ZW_CERTSTORE_DEFAULT (an entry put
 * without it stops being the default). Takes effect for the next lookup.
 * Returns 0 or -1 (out of memory; the store is unchanged). */
int zw_certstore_put(struct zw_certstore *s, const char *key, struct zw_cert *c, unsigned flags);

/* Removes the entry of `key` (no-op when absent). Returns true when there
 * was one. */
bool zw_certstore_remove(struct zw_certstore *s, const char *key);

/* Finds the certificate for server name `sni` (borrowed; NULL or "" for a
 * handshake without SNI): exact name, then one-level wildcard, then the
 * default. Any thread. Returns a new reference owned by the caller, or NULL
 * when nothing matches and there is no default. */
struct zw_cert *zw_certstore_lookup(struct zw_certstore *s, const char *sni);

/* One entry as zw_certstore_each reports it (borrowed for the call). */
struct zw_certstore_entry {
	const char *key;
	const struct zw_cert *cert;
	bool is_default;
};

/* Calls fn for each entry in key order, under the read lock (fn must not
 * call into s). Returns the number of entries. */
size_t zw_certstore_each(struct zw_certstore *s,
                         void (*fn)(void *arg, const struct zw_certstore_entry *e), void *arg);

/* Applies a Kubernetes Secret of type kubernetes.io/tls (borrowed): loads
 * its data "tls.crt" and "tls.key" (base64) and puts it under `key`
 * ("namespace/name") with `flags`; `deleted` removes the entry instead. A
 * Secret that does not load leaves the entry as it was (the last good
 * certificate keeps serving). Returns 0, or -1 with the reason in err. */
int zw_certstore_apply_secret(struct zw_certstore *s, const char *key, const json_t *secret,
                              bool deleted, unsigned flags, char err[ZW_CERTSTORE_ERRLEN]);

/* Reads a PEM certificate chain and key from files (blocking: call before
 * the loops run) and puts them under `key` with `flags`. Returns 0, or -1
 * with the reason in err. */
int zw_certstore_load_files(struct zw_certstore *s, const char *key, const char *cert_path,
                            const char *key_path, unsigned flags, char err[ZW_CERTSTORE_ERRLEN]);

/* Appends the Prometheus families zerowire_tls_certificates (entries) and
 * zerowire_tls_certificate_expiry_timestamp_seconds{source,default,names}
 * (notAfter per entry; names joined by ",", cut at 200 bytes) to out,
 * keeping it under max bytes. Returns 0, or -1 (full or out of memory). */
int zw_certstore_prometheus(struct zw_certstore *s, struct zw_buf *out, size_t max);

/* Normalises a host name for lookup into out: lowercase, one trailing dot
 * removed. Returns 0, or -1 when it is empty, longer than 253 bytes, or
 * holds a byte outside letters, digits, '-', '.', '_' and a leading "*.". */
int zw_certstore_norm_name(const char *name, char out[256]);

#endif
