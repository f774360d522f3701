/* Routing rules and static responses as the target parsers build them
 * (internal to lib/target*.c): host and path-prefix normalisation, header
 * matchers (exact, present, wildcard, regular expression compiled here once),
 * response headers and comma lists. The runtime side, matching a request
 * against these, is proxy/routes.c. */
#ifndef ZW_TARGET_RULE_H
#define ZW_TARGET_RULE_H

#include "target_parse.h"

/* Normalises one path prefix: a leading '/', no trailing '/' (except "/"). */
int zw_tr_path_norm(const char *s, size_t len, char **out, const char **why);

typedef int (*zw_tr_item_fn)(struct zw_tp_ctx *c, struct zw_route_rule *r, const char *s,
                             size_t len, const char *field);

/* Reports that field has more than ZW_TARGET_MAX_LIST entries. Returns
 * ZW_TARGET_EINVAL. */
int zw_tr_too_many(struct zw_tp_ctx *c, const char *field);

/* Normalises host s[0..len) (see zw_tr_host_norm) and adds it to r's
 * hosts unless listed already. Returns 0, ZW_TARGET_EINVAL (message names
 * field) or ZW_TARGET_ENOMEM. */
int zw_tr_rule_add_host(struct zw_tp_ctx *c, struct zw_route_rule *r, const char *s, size_t len,
                        const char *field);

/* As zw_tr_rule_add_host, for a path prefix (see zw_tr_path_norm). */
int zw_tr_rule_add_path(struct zw_tp_ctx *c, struct zw_route_rule *r, const char *s, size_t len,
                        const char *field);

/* Every rule matches at least "/": an empty path list becomes {"/"}. */
int zw_tr_rule_default_path(struct zw_route_rule *r);

/* Compiles pattern (RE2-style, see regex_to_ere) anchored to the whole
 * value, case-insensitive. Returns 0 with *out owned by the caller (free
 * with regex_free), -1 with why[] filled, or ENOMEM. */
int zw_tr_regex_compile(const char *pattern, void **out, char *why, size_t whylen);

/* Frees an expression from zw_tr_regex_compile. NULL-safe. */
void zw_tr_regex_free(void *re);

/* Adds a header matcher: name lower-cased; value NULL = "present", else
 * compared as `kind` says (ZW_HDR_EXACT, _WILDCARD or _REGEX). */
int zw_tr_rule_add_header(struct zw_tp_ctx *c, struct zw_route_rule *r, const char *name,
                          const char *value, enum zw_header_match_kind kind, const char *field);

/* Adds response header name: value to sr after checking both (copies
 * owned by sr). Returns 0, ZW_TARGET_EINVAL or ZW_TARGET_ENOMEM. */
int zw_tr_sr_add_header(struct zw_tp_ctx *c, struct zw_static_response *sr, const char *name,
                        const char *value, const char *field);

/* True when sr already has a header called name (case-insensitive). */
bool zw_tr_sr_has_header(const struct zw_static_response *sr, const char *name);

/* Calls fn for each non-empty, space-trimmed item of a comma list. */
int zw_tr_comma_each(struct zw_tp_ctx *c, const char *s, const char *field, struct zw_route_rule *r,
                     zw_tr_item_fn fn);

/* Reads at most one of value / valueWildcard / valueRegex of a header entry
 * at `base` into *vm (vm->s NULL when none) and *kind; strings_only: JSON
 * strings only (CRD fields), else any scalar (trigger metadata YAML). */
int zw_tr_match_value(struct zw_tp_ctx *c, const json_t *item, const char *base, bool strings_only,
                      struct zw_tp_mval *vm, enum zw_header_match_kind *kind);

#endif
