/* Standard base64 (RFC 4648 §4), as Kubernetes uses it for Secret data,
 * caBundle, AdmissionReview patches and kubeconfig *-data fields. */
#ifndef ZW_BASE64_H
#define ZW_BASE64_H

#include <stddef.h>

/* Characters in the encoding of len bytes (padding included). */
#define ZW_BASE64_LEN(len) (4 * (((len) + 2) / 3))

/* Encodes in[0..len) with padding into out, which has room for
 * ZW_BASE64_LEN(len) characters (no NUL is written). Returns the number
 * written. */
size_t zw_base64_encode_to(char *out, const void *in, size_t len);

/* Encodes in[0..len) with padding into a new NUL-terminated string owned by
 * the caller. Returns it, or NULL when out of memory. */
char *zw_base64_encode(const void *in, size_t len);

/* Decodes text[0..len): whitespace is ignored and padding is optional. On
 * success returns a new buffer owned by the caller, NUL-terminated for
 * convenience, with its length in *out_len. Returns NULL on an invalid
 * character or length, or when out of memory. */
unsigned char *zw_base64_decode(const char *text, size_t len, size_t *out_len);

#endif
