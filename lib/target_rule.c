/* Routing rules and static responses built by the target parsers: hosts,
 * path prefixes, header matchers (RE2-style expressions compiled to POSIX
 * ERE), response headers. See target_rule.h. */
#include "target_rule.h"

#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Normalises one host: lower case, a ":port" suffix stripped ("[v6]:port"
 * keeps the brackets). Returns 0 with a new string in *out, -1 with *why
 * for an invalid host, or ENOMEM. */
static int host_norm(const char *s, size_t len, char **out, const char **why)
{
	size_t end = len, colons = 0, last = 0, i;

	if (len && s[0] == '[') {
		const char *rb = memchr(s, ']', len);
		if (!rb) {
			*why = "has an unterminated '['";
			return -1;
		}
		end = (size_t)(rb - s) + 1;
		if (end < len && (s[end] != ':' || !zw_tp_all_digits(s + end + 1, len - end - 1))) {
			*why = "has a bad port after the IPv6 address";
			return -1;
		}
	} else {
		for (i = 0; i < len; i++)
			if (s[i] == ':') {
				colons++;
				last = i;
			}
		if (colons == 1) {
			if (!zw_tp_all_digits(s + last + 1, len - last - 1)) {
				*why = "has a port that is not a number";
				return -1;
			}
			end = last;
		}
	}
	if (end == 0) {
		*why = "is empty";
		return -1;
	}
	if (end > ZW_TARGET_MAX_HOST) {
		*why = "is longer than 253 bytes";
		return -1;
	}
	for (i = 0; i < end; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch <= 0x20 || ch == 0x7f || strchr("/?#@\\\"'<>{}|^`,;", ch)) {
			*why = "contains a character that is not allowed in a host";
			return -1;
		}
		if (ch == '*' && !(i == 0 && (end == 1 || (s[1] == '.' && end > 2)))) {
			*why = "has a wildcard other than a leading \"*.\"";
			return -1;
		}
	}
	if (!(*out = zw_tp_dupn(s, end)))
		return ZW_TARGET_ENOMEM;
	for (i = 0; i < end; i++)
		(*out)[i] = (char)tolower((unsigned char)(*out)[i]);
	return 0;
}

int zw_tr_path_norm(const char *s, size_t len, char **out, const char **why)
{
	size_t lead = (len && s[0] == '/') ? 0 : 1;
	char *p;

	while (len > 1 && s[len - 1] == '/')
		len--;
	if (len == 1 && s[0] == '/')
		len = 0, lead = 1;
	if (len + lead > ZW_TARGET_MAX_PATH) {
		*why = "is longer than 1024 bytes";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch <= 0x20 || ch == 0x7f || ch == '?' || ch == '#') {
			*why = "contains a space, control character, '?' or '#'";
			return -1;
		}
	}
	if (!(p = malloc(len + lead + 1)))
		return ZW_TARGET_ENOMEM;
	p[0] = '/';
	memcpy(p + lead, s, len);
	p[len + lead] = '\0';
	*out = p;
	return 0;
}

int zw_tr_too_many(struct zw_tp_ctx *c, const char *field)
{
	return zw_tp_failf(c, "%s has more than %d entries", field, ZW_TARGET_MAX_LIST);
}

/* Normalises s[0..len) with norm and appends it to v[0..n) unless already
 * there; `what` names the kind of value in messages. */
static int list_add(struct zw_tp_ctx *c, char ***v, size_t *n, const char *s, size_t len,
                    const char *field, int (*norm)(const char *, size_t, char **, const char **),
                    const char *what)
{
	char q[ZW_TP_QUOTE_LEN];
	const char *why = NULL;
	char *x = NULL;
	int rc = norm(s, len, &x, &why);

	if (rc == -1)
		return zw_tp_failf(c, "%s %s is not a valid %s: it %s", field,
		                   zw_tp_quoten(s, len, q), what, why);
	if (rc < 0)
		return rc;
	if (zw_tp_strv_has(*v, *n, x)) {
		free(x);
		return 0;
	}
	if (*n >= ZW_TARGET_MAX_LIST) {
		free(x);
		return zw_tr_too_many(c, field);
	}
	return zw_tp_strv_push(v, n, x);
}

int zw_tr_rule_add_host(struct zw_tp_ctx *c, struct zw_route_rule *r, const char *s, size_t len,
                        const char *field)
{
	return list_add(c, &r->hosts, &r->n_hosts, s, len, field, host_norm, "host");
}

int zw_tr_rule_add_path(struct zw_tp_ctx *c, struct zw_route_rule *r, const char *s, size_t len,
                        const char *field)
{
	return list_add(c, &r->paths, &r->n_paths, s, len, field, zw_tr_path_norm, "path prefix");
}

int zw_tr_rule_default_path(struct zw_route_rule *r)
{
	return r->n_paths ? 0 : zw_tp_strv_push(&r->paths, &r->n_paths, zw_tp_dup0("/"));
}

static const char *const match_keys[] = {"value", "value", "valueWildcard", "valueRegex"};

/* RE2 shorthand classes in POSIX ERE, outside and inside a bracket
 * expression. Negated ones inside brackets have no POSIX spelling: an
 * invalid class name makes regcomp refuse the expression. */
static const struct {
	char esc;
	const char *outside, *inside;
} re_classes[] = {
        {'d', "[0-9]", "0-9"},
        {'D', "[^0-9]", "[:neg:]"},
        {'w', "[A-Za-z0-9_]", "A-Za-z0-9_"},
        {'W', "[^A-Za-z0-9_]", "[:neg:]"},
        {'s', "[[:space:]]", "[:space:]"},
        {'S', "[^[:space:]]", "[:neg:]"},
};

/* Rewrites an RE2-style expression into POSIX ERE: \d \w \s \D \W \S
 * outside and inside bracket expressions, (?: as (, and escaped
 * punctuation inside brackets as the bare character. Returns a new string. */
static char *regex_to_ere(const char *p)
{
	size_t len = strlen(p);
	/* an escape (2 bytes) becomes at most 13 bytes ("[^A-Za-z0-9_]") */
	char *out = malloc(len * 7 + 8), *o = out;
	bool in_br = false;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		char ch = p[i], nx = p[i + 1];

		if (!in_br && ch == '[') {
			*o++ = ch;
			in_br = true;
			/* a leading '^' and a first ']' belong to the expression */
			if (p[i + 1] == '^')
				*o++ = p[++i];
			if (p[i + 1] == ']')
				*o++ = p[++i];
			continue;
		}
		if (in_br && ch == ']') {
			in_br = false;
			*o++ = ch;
			continue;
		}
		if (!in_br && ch == '(' && nx == '?' && p[i + 2] == ':') {
			*o++ = '(';
			i += 2;
			continue;
		}
		if (ch != '\\' || !nx) {
			*o++ = ch;
			continue;
		}
		i++;
		const char *rep = NULL;
		for (size_t k = 0; k < sizeof(re_classes) / sizeof(re_classes[0]); k++)
			if (re_classes[k].esc == nx)
				rep = in_br ? re_classes[k].inside : re_classes[k].outside;
		if (rep) {
			size_t rl = strlen(rep);
			memcpy(o, rep, rl);
			o += rl;
		} else if (in_br) {
			*o++ = nx; /* [\.] is [.] */
		} else {
			*o++ = '\\';
			*o++ = nx;
		}
	}
	*o = '\0';
	return out;
}

int zw_tr_regex_compile(const char *pattern, void **out, char *why, size_t whylen)
{
	char *ere = regex_to_ere(pattern), *anchored = NULL;
	regex_t *re = malloc(sizeof(*re));
	size_t len;
	int rc = ZW_TARGET_ENOMEM, err;

	if (!ere || !re)
		goto out;
	len = strlen(ere) + 5;
	if (!(anchored = malloc(len)))
		goto out;
	snprintf(anchored, len, "^(%s)$", ere);
	err = regcomp(re, anchored, REG_EXTENDED | REG_ICASE | REG_NOSUB);
	if (err) {
		regerror(err, re, why, whylen);
		rc = -1;
		goto out;
	}
	*out = re;
	re = NULL;
	rc = 0;
out:
	free(re);
	free(ere);
	free(anchored);
	return rc;
}

void zw_tr_regex_free(void *re)
{
	if (re) {
		regfree(re);
		free(re);
	}
}

int zw_tr_rule_add_header(struct zw_tp_ctx *c, struct zw_route_rule *r, const char *name,
                          const char *value, enum zw_header_match_kind kind, const char *field)
{
	char q[ZW_TP_QUOTE_LEN], why[128];
	struct zw_header_match *nh;
	char *n = NULL, *v = NULL;
	void *re = NULL;
	int rc;

	if (!value)
		kind = ZW_HDR_PRESENT;
	if (!zw_tp_valid_header_name(name))
		return zw_tp_failf(c, "%s.name %s is not a valid header name", field,
		                   zw_tp_quote(name, q));
	if (value && !zw_tp_valid_header_value(value))
		return zw_tp_failf(c, "%s.%s %s is not a valid header value", field,
		                   match_keys[kind], zw_tp_quote(value, q));
	for (size_t i = 0; i < r->n_headers; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			return zw_tp_failf(c, "%s.name %s is listed twice", field,
			                   zw_tp_quote(name, q));
	if (r->n_headers >= ZW_TARGET_MAX_LIST)
		return zw_tr_too_many(c, field);
	if (kind == ZW_HDR_REGEX) {
		rc = zw_tr_regex_compile(value, &re, why, sizeof(why));
		if (rc == -1)
			return zw_tp_failf(
			        c, "%s.valueRegex %s is not a supported regular expression: %s",
			        field, zw_tp_quote(value, q), why);
		if (rc < 0)
			return rc;
	}
	n = zw_tp_dup0(name);
	if (value)
		v = zw_tp_dup0(value);
	nh = (n && (v || !value)) ? realloc(r->headers, (r->n_headers + 1) * sizeof(*nh)) : NULL;
	if (!nh) {
		free(n);
		free(v);
		zw_tr_regex_free(re);
		return ZW_TARGET_ENOMEM;
	}
	for (char *p = n; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	nh[r->n_headers].name = n;
	nh[r->n_headers].value = v;
	nh[r->n_headers].kind = kind;
	nh[r->n_headers].regex = re;
	r->headers = nh;
	r->n_headers++;
	return 0;
}

int zw_tr_sr_add_header(struct zw_tp_ctx *c, struct zw_static_response *sr, const char *name,
                        const char *value, const char *field)
{
	char q[ZW_TP_QUOTE_LEN], q2[ZW_TP_QUOTE_LEN];
	char **nn, **nv, *n, *v;

	if (!zw_tp_valid_header_name(name))
		return zw_tp_failf(c, "%s name %s is not a valid header name", field,
		                   zw_tp_quote(name, q));
	if (!zw_tp_valid_header_value(value))
		return zw_tp_failf(c, "%s %s value %s is not a valid header value", field,
		                   zw_tp_quote(name, q), zw_tp_quote(value, q2));
	if (sr->n_headers >= ZW_TARGET_MAX_LIST)
		return zw_tr_too_many(c, field);
	n = zw_tp_dup0(name);
	v = zw_tp_dup0(value);
	if (!n || !v)
		goto nomem;
	nn = realloc(sr->header_names, (sr->n_headers + 1) * sizeof(*nn));
	if (!nn)
		goto nomem;
	sr->header_names = nn;
	nv = realloc(sr->header_values, (sr->n_headers + 1) * sizeof(*nv));
	if (!nv)
		goto nomem;
	sr->header_values = nv;
	nn[sr->n_headers] = n;
	nv[sr->n_headers] = v;
	sr->n_headers++;
	return 0;
nomem:
	free(n);
	free(v);
	return ZW_TARGET_ENOMEM;
}

bool zw_tr_sr_has_header(const struct zw_static_response *sr, const char *name)
{
	for (size_t i = 0; i < sr->n_headers; i++)
		if (strcasecmp(sr->header_names[i], name) == 0)
			return true;
	return false;
}

int zw_tr_comma_each(struct zw_tp_ctx *c, const char *s, const char *field, struct zw_route_rule *r,
                     zw_tr_item_fn fn)
{
	while (*s) {
		const char *comma = strchr(s, ',');
		size_t len = comma ? (size_t)(comma - s) : strlen(s);
		const char *item = zw_tp_trim(s, &len);
		int rc;

		if (len && (rc = fn(c, r, item, len, field)) < 0)
			return rc;
		s += comma ? (size_t)(comma - s) + 1 : strlen(s);
	}
	return 0;
}

int zw_tr_match_value(struct zw_tp_ctx *c, const json_t *item, const char *base, bool strings_only,
                      struct zw_tp_mval *vm, enum zw_header_match_kind *kind)
{
	static const enum zw_header_match_kind kinds[] = {ZW_HDR_EXACT, ZW_HDR_WILDCARD,
	                                                  ZW_HDR_REGEX};
	static const char *const keys[] = {"value", "valueWildcard", "valueRegex"};
	int found = 0;

	vm->s = NULL;
	*kind = ZW_HDR_PRESENT;
	for (size_t i = 0; i < 3; i++) {
		json_t *v = zw_tp_member(item, keys[i]);
		struct zw_tp_mval tmp;

		if (!v)
			continue;
		if ((strings_only && !json_is_string(v)) || zw_tp_scalar_text(v, &tmp) < 0)
			return zw_tp_failf(c, "%s.%s must be a string, not %s", base, keys[i],
			                   zw_tp_jtype(v));
		if (found++)
			return zw_tp_failf(
			        c,
			        "%s: at most one of value, valueWildcard or valueRegex may be set",
			        base);
		*vm = tmp;
		if (vm->s == tmp.buf)
			vm->s = vm->buf;
		*kind = kinds[i];
	}
	return 0;
}
