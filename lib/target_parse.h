/* The parsing kit the target source parsers share (internal to lib/target*.c):
 * who is being parsed and the one-line messages naming object, field and
 * reason; strict JSON field readers; text validators for Kubernetes names,
 * ports and HTTP fields; owned strings; object identity; CRD durations and
 * windows; trafficAutowire words.
 *
 * Every reader takes the field path of its parent (`base`) so messages name
 * the full path, e.g. "spec.scalingMetric.requestRate.window". Readers that
 * fail return ZW_TARGET_EINVAL after writing the message into c->err. */
#ifndef ZW_TARGET_PARSE_H
#define ZW_TARGET_PARSE_H

#include "target.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZW_TP_PATH_LEN  192 /* bytes of a field path inside a message */
#define ZW_TP_QUOTE_LEN 72  /* bytes of a quoted user value inside a message */
#define ZW_TP_NUM_LEN   48  /* bytes of a number rendered as text */
#define ZW_TP_WORD_LEN                                                            \
	256 /* bytes of a metadata value read as a number, name, word or duration \
	     */

/* Defaults every source applies (docs/target-model.md). */
#define ZW_TP_DEFAULT_TARGET_VALUE          100.0
#define ZW_TP_DEFAULT_WINDOW_MS             60000u
#define ZW_TP_DEFAULT_GRANULARITY_MS        1000u
#define ZW_TP_DEFAULT_MIN_REPLICAS          0
#define ZW_TP_DEFAULT_MAX_REPLICAS          100
#define ZW_TP_DEFAULT_FAILOVER_SECONDS      30
#define ZW_TP_DEFAULT_FALLBACK_READINESS_MS 30000u
#define ZW_TP_DEFAULT_PLACEHOLDER_STATUS    503
#define ZW_TP_DEFAULT_STATIC_STATUS         200
#define ZW_TP_DEFAULT_SCALE_KIND            "Deployment"
#define ZW_TP_DEFAULT_SCALE_API_VERSION     "apps/v1"

/* Who is being parsed, for error messages. Strings are borrowed from the
 * object being parsed. */
struct zw_tp_ctx {
	char *err;
	const char *kind;
	const char *ns;
	const char *name;
	int trigger;
};

/* A trigger metadata value as text: JSON strings are borrowed, numbers and
 * booleans are rendered into buf. */
struct zw_tp_mval {
	const char *s;
	char buf[ZW_TP_NUM_LEN];
};

/* Writes "<Kind> <ns>/<name>[ trigger N]: " and the printf-style message
 * into c->err (when not NULL). Returns ZW_TARGET_EINVAL, for `return
 * zw_tp_failf(...)`. */
int zw_tp_failf(struct zw_tp_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes s[0..len) double-quoted into buf, non-printables as '?', long
 * values shortened with "...". */
const char *zw_tp_quoten(const char *s, size_t len, char buf[ZW_TP_QUOTE_LEN]);

/* As zw_tp_quoten for the whole of s. Returns buf. */
const char *zw_tp_quote(const char *s, char buf[ZW_TP_QUOTE_LEN]);

/* The JSON type of v as message text ("an object", "a string", ...). */
const char *zw_tp_jtype(const json_t *v);

/* Returns obj[key], or NULL when obj is not an object, the key is absent or
 * its value is null (null counts as "not set" everywhere). */
json_t *zw_tp_member(const json_t *obj, const char *key);

/* Marks a field path that did not fit into PATH_LEN bytes. */
void zw_tp_path_fit(char out[ZW_TP_PATH_LEN], int n);

/* Writes the field path "<base>.<key>" (just key when base is empty) into
 * out, marked with "..." when cut. */
void zw_tp_join(char out[ZW_TP_PATH_LEN], const char *base, const char *key);

/* Writes the field path "<base>[i]" into out. */
void zw_tp_joini(char out[ZW_TP_PATH_LEN], const char *base, size_t i);

/* Optional object member obj[key]; *out NULL when absent. Returns 1 (set),
 * 0 (absent) or ZW_TARGET_EINVAL (another JSON type, message names
 * base.key). */
int zw_tp_opt_object(struct zw_tp_ctx *c, const json_t *obj, const char *key, const char *base,
                     json_t **out);

/* Optional array member, as zw_tp_opt_object. */
int zw_tp_opt_array(struct zw_tp_ctx *c, const json_t *obj, const char *key, const char *base,
                    json_t **out);

/* A required object member: "<base>.<key> is required" when absent. */
int zw_tp_req_object(struct zw_tp_ctx *c, const json_t *obj, const char *key, const char *base,
                     json_t **out);

/* Optional string member; *out NULL when absent. Returns 1/0 or EINVAL. */
int zw_tp_opt_string(struct zw_tp_ctx *c, const json_t *obj, const char *key, const char *base,
                     const char **out);

/* Optional integer member within [min, max]. Returns 1 (set), 0 (absent,
 * *out untouched) or EINVAL. */
int zw_tp_opt_int(struct zw_tp_ctx *c, const json_t *obj, const char *key, const char *base,
                  long long min, long long max, long long *out);

/* A required string of at least one byte. */
int zw_tp_req_string(struct zw_tp_ctx *c, const json_t *obj, const char *key, const char *base,
                     const char **out);

/* True when s[0..len) is not empty and all ASCII digits. */
bool zw_tp_all_digits(const char *s, size_t len);

/* Kubernetes Service names are DNS-1035 labels. */
bool zw_tp_valid_service_name(const char *s);

/* Object names (ConfigMap, ...): DNS-1123 subdomains. */
bool zw_tp_valid_object_name(const char *s);

/* ConfigMap keys: [-._a-zA-Z0-9]+, at most 253 bytes, not "." or "..". */
bool zw_tp_valid_configmap_key(const char *s);

/* Service port names: lower-case alphanumerics and '-', at most 63 bytes. */
bool zw_tp_valid_port_name(const char *s);

/* A port number 1..65535 written in decimal digits into *out. Returns 0
 * or -1 (*out untouched). */
int zw_tp_parse_port_text(const char *s, int *out);

/* A decimal number (digits, one '.', optional exponent) greater than 0. */
int zw_tp_parse_positive(const char *s, double *out);

/* A decimal number of at most 19 digits and at most max into *out.
 * Returns 0 or -1 (*out untouched). */
int zw_tp_parse_uint_text(const char *s, unsigned long long max, unsigned long long *out);

/* An HTTP field name (token bytes) of at most ZW_TARGET_MAX_HDRNAME bytes. */
bool zw_tp_valid_header_name(const char *s);

/* An HTTP field value (no control bytes but tab), possibly empty, of at
 * most ZW_TARGET_MAX_HDRVAL bytes. */
bool zw_tp_valid_header_value(const char *s);

/* Trims ASCII spaces around s[0..*len); returns the new start. */
const char *zw_tp_trim(const char *s, size_t *len);

/* A new NUL-terminated copy of s[0..n) (caller frees), NULL when out of memory. */
char *zw_tp_dupn(const char *s, size_t n);

/* A new copy of s (caller frees); NULL for NULL or when out of memory. */
char *zw_tp_dup0(const char *s);

/* Sets *dst to a copy of s (NULL stays NULL). Returns 0 or ENOMEM. */
int zw_tp_set_str(char **dst, const char *s);

/* Appends s (ownership taken, freed on failure) to v[0..n). */
int zw_tp_strv_push(char ***v, size_t *n, char *s);

/* True when one of v[0..n) equals s. */
bool zw_tp_strv_has(char **v, size_t n, const char *s);

/* Frees v[0..n) and v. NULL-safe. */
void zw_tp_strv_free(char **v, size_t n);

/* Renders a JSON scalar as text into m. Returns 0, or -1 for objects and
 * arrays. */
int zw_tp_scalar_text(const json_t *v, struct zw_tp_mval *m);

/* Parses a trafficAutowire value (field names it in messages) into
 * t->autowire and t->autowire_ignored. Returns 0 or ZW_TARGET_EINVAL. */
int zw_tp_autowire_set(struct zw_tp_ctx *c, const char *value, const char *field,
                       struct zw_target *t);

/* CRD Duration field (a string). Timeouts: explicit zero -> ZW_TIMEOUT_NONE
 * when `timeout` is set. Returns 1 (set), 0 (absent) or EINVAL. */
int zw_tp_opt_duration(struct zw_tp_ctx *c, const json_t *obj, const char *key, const char *base,
                       bool timeout, uint64_t *out);

/* window / granularity consistency (requestRate ring buffer). */
int zw_tp_check_window(struct zw_tp_ctx *c, const char *wfield, const char *gfield,
                       const struct zw_target *t);

/* Fills c with kind/namespace/name of obj (namespace defaults to
 * "default") and copies identity into t when t != NULL. */
int zw_tp_read_identity(struct zw_tp_ctx *c, const json_t *obj, const char *kind,
                        struct zw_target *t);

/* Writes "out of memory" into err when rc is ZW_TARGET_ENOMEM and err is
 * not NULL. */
void zw_tp_enomem_message(char err[ZW_TARGET_ERRLEN], int rc);

/* Runs a single-object parser with one error path for both CRD kinds. */
int zw_tp_parse_single(int (*parse)(struct zw_tp_ctx *, const json_t *, struct zw_target *),
                       const json_t *obj, struct zw_target *out, char err[ZW_TARGET_ERRLEN]);

#endif
