/* Target model: ScaledObject triggers, HTTPScaledObjects and InterceptorRoutes
 * parsed into struct zw_target. See target.h and docs/target-model.md.
 *
 * Every parser walks the JSON once, checks each value's JSON type before
 * using it, and reports the first problem as "<Kind> <ns>/<name>[ trigger
 * N]: <field path> <reason>". Partially built targets are released on every
 * error path by the public entry points (one cleanup path each). */
#include "target.h"

#include "apiversion.h"
#include "duration.h"
#include "yamljson.h"

#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PATH_LEN  192 /* bytes of a field path inside a message */
#define QUOTE_LEN 72  /* bytes of a quoted user value inside a message */
#define NUM_LEN   48  /* bytes of a number rendered as text */
#define WORD_LEN  256 /* bytes of a metadata value read as a number, name, word or duration */

#define DEFAULT_TARGET_VALUE          100.0
#define DEFAULT_WINDOW_MS             60000u
#define DEFAULT_GRANULARITY_MS        1000u
#define DEFAULT_MIN_REPLICAS          0
#define DEFAULT_MAX_REPLICAS          100
#define DEFAULT_FAILOVER_SECONDS      30
#define DEFAULT_FALLBACK_READINESS_MS 30000u
#define DEFAULT_PLACEHOLDER_STATUS    503
#define DEFAULT_STATIC_STATUS         200
#define DEFAULT_SCALE_KIND            "Deployment"
#define DEFAULT_SCALE_API_VERSION     "apps/v1"

#define SKIP_SO_ANNOTATION       "httpscaledobject.keda.sh/skip-scaledobject-creation"
#define KEDIFY_AUTOWIRE_ANNOT    "http.kedify.io/traffic-autowire"
#define KEDIFY_HC_PATH_ANNOT     "http.kedify.io/healthcheck-path"
#define KEDIFY_HC_RESPONSE_ANNOT "http.kedify.io/healthcheck-response"

#define NS_PER_MS 1000000ull

/* Who is being parsed, for error messages. Strings are borrowed from the
 * object being parsed. */
struct pctx {
	char *err;
	const char *kind;
	const char *ns;
	const char *name;
	int trigger;
};

/* A trigger metadata value as text: JSON strings are borrowed, numbers and
 * booleans are rendered into buf. */
struct mval {
	const char *s;
	char buf[NUM_LEN];
};

static int failf(struct pctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int failf(struct pctx *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!c->err)
		return ZW_TARGET_EINVAL;
	if (c->trigger >= 0)
		n = snprintf(c->err, ZW_TARGET_ERRLEN, "%s %s/%s trigger %d: ", c->kind, c->ns,
		             c->name, c->trigger);
	else
		n = snprintf(c->err, ZW_TARGET_ERRLEN, "%s %s/%s: ", c->kind, c->ns, c->name);
	if (n < 0)
		n = 0;
	if ((size_t)n < ZW_TARGET_ERRLEN) {
		va_start(ap, fmt);
		vsnprintf(c->err + n, ZW_TARGET_ERRLEN - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return ZW_TARGET_EINVAL;
}

/* Writes s[0..len) double-quoted into buf, non-printables as '?', long
 * values shortened with "...". */
static const char *quoten(const char *s, size_t len, char buf[QUOTE_LEN])
{
	size_t o = 0, i;

	buf[o++] = '"';
	for (i = 0; i < len && o < QUOTE_LEN - 5; i++) {
		unsigned char ch = (unsigned char)s[i];
		buf[o++] = (ch < 0x20 || ch == 0x7f || ch == '"') ? '?' : (char)ch;
	}
	if (i < len) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

static const char *quote(const char *s, char buf[QUOTE_LEN])
{
	return quoten(s, strlen(s), buf);
}

static const char *jtype(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	default:
		return "null";
	}
}

/* Returns obj[key], or NULL when obj is not an object, the key is absent or
 * its value is null (null counts as "not set" everywhere). */
static json_t *member(const json_t *obj, const char *key)
{
	json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;

	return (v && json_is_null(v)) ? NULL : v;
}

/* Marks a field path that did not fit into PATH_LEN bytes. */
static void path_fit(char out[PATH_LEN], int n)
{
	if (n >= PATH_LEN)
		memcpy(out + PATH_LEN - 4, "...", 4);
}

static void join(char out[PATH_LEN], const char *base, const char *key)
{
	path_fit(out, snprintf(out, PATH_LEN, "%s%s%s", base, *base ? "." : "", key));
}

static void joini(char out[PATH_LEN], const char *base, size_t i)
{
	path_fit(out, snprintf(out, PATH_LEN, "%s[%zu]", base, i));
}

/* ---- strict JSON getters (CRD fields) ---- */

static int opt_typed(struct pctx *c, const json_t *obj, const char *key, const char *base,
                     json_type type, const char *want, json_t **out)
{
	char p[PATH_LEN];
	json_t *v = member(obj, key);

	*out = NULL;
	if (!v)
		return 0;
	if (json_typeof(v) != type) {
		join(p, base, key);
		return failf(c, "%s must be %s, not %s", p, want, jtype(v));
	}
	*out = v;
	return 1;
}

static int opt_object(struct pctx *c, const json_t *obj, const char *key, const char *base,
                      json_t **out)
{
	return opt_typed(c, obj, key, base, JSON_OBJECT, "an object", out);
}

static int opt_array(struct pctx *c, const json_t *obj, const char *key, const char *base,
                     json_t **out)
{
	return opt_typed(c, obj, key, base, JSON_ARRAY, "an array", out);
}

/* A required object member: "<base>.<key> is required" when absent. */
static int req_object(struct pctx *c, const json_t *obj, const char *key, const char *base,
                      json_t **out)
{
	char p[PATH_LEN];
	int rc = opt_object(c, obj, key, base, out);

	if (rc == 0) {
		join(p, base, key);
		return failf(c, "%s is required", p);
	}
	return rc < 0 ? rc : 0;
}

/* Optional string member; *out NULL when absent. Returns 1/0 or EINVAL. */
static int opt_string(struct pctx *c, const json_t *obj, const char *key, const char *base,
                      const char **out)
{
	json_t *v;
	int rc = opt_typed(c, obj, key, base, JSON_STRING, "a string", &v);

	*out = rc > 0 ? json_string_value(v) : NULL;
	return rc;
}

/* Optional integer member within [min, max]. Returns 1 (set), 0 (absent,
 * *out untouched) or EINVAL. */
static int opt_int(struct pctx *c, const json_t *obj, const char *key, const char *base,
                   long long min, long long max, long long *out)
{
	char p[PATH_LEN];
	json_t *v;
	long long n;
	int rc = opt_typed(c, obj, key, base, JSON_INTEGER, "an integer", &v);

	if (rc <= 0)
		return rc;
	n = (long long)json_integer_value(v);
	if (n < min || n > max) {
		join(p, base, key);
		if (max == INT32_MAX)
			return failf(c, "%s %lld must be at least %lld", p, n, min);
		return failf(c, "%s %lld is out of range (%lld..%lld)", p, n, min, max);
	}
	*out = n;
	return 1;
}

/* A required string of at least one byte. */
static int req_string(struct pctx *c, const json_t *obj, const char *key, const char *base,
                      const char **out)
{
	char p[PATH_LEN];
	int rc = opt_string(c, obj, key, base, out);

	if (rc < 0)
		return rc;
	if (rc == 0 || !**out) {
		join(p, base, key);
		return failf(c, "%s is required", p);
	}
	return 0;
}

/* ---- text validation ---- */

static bool is_digit(unsigned char ch)
{
	return isdigit(ch);
}

/* DNS label bytes (Service and port names). */
static bool is_label(unsigned char ch)
{
	return islower(ch) || isdigit(ch) || ch == '-';
}

/* DNS subdomain bytes (ConfigMap names). */
static bool is_subdomain(unsigned char ch)
{
	return is_label(ch) || ch == '.';
}

/* HTTP token bytes (header names). */
static bool is_tchar(unsigned char ch)
{
	return isalnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* HTTP field value bytes: no control characters except tab. */
static bool is_field_byte(unsigned char ch)
{
	return (ch >= 0x20 || ch == '\t') && ch != 0x7f;
}

/* True when s[0..len) is not empty and every byte satisfies pred. */
static bool all_bytes(const char *s, size_t len, bool (*pred)(unsigned char))
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!pred((unsigned char)s[i]))
			return false;
	return true;
}

static bool all_digits(const char *s, size_t len)
{
	return all_bytes(s, len, is_digit);
}

/* Kubernetes Service names are DNS-1035 labels. */
static bool valid_service_name(const char *s)
{
	size_t len = strlen(s);

	return len <= 63 && all_bytes(s, len, is_label) && islower((unsigned char)s[0]) &&
	       s[len - 1] != '-';
}

/* Object names (ConfigMap, ...): DNS-1123 subdomains. */
static bool valid_object_name(const char *s)
{
	size_t len = strlen(s);

	return len <= 253 && all_bytes(s, len, is_subdomain) && isalnum((unsigned char)s[0]) &&
	       isalnum((unsigned char)s[len - 1]);
}

/* ConfigMap keys: [-._a-zA-Z0-9]+, at most 253 bytes, not "." or "..". */
static bool valid_configmap_key(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > 253 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

/* Service port names: lower-case alphanumerics and '-', at most 63 bytes. */
static bool valid_port_name(const char *s)
{
	size_t len = strlen(s);

	return len <= 63 && all_bytes(s, len, is_label);
}

static int parse_port_text(const char *s, int *out)
{
	size_t len = strlen(s);
	long v = 0;

	if (!all_digits(s, len) || len > 5)
		return -1;
	for (size_t i = 0; i < len; i++)
		v = v * 10 + (s[i] - '0');
	if (v < 1 || v > 65535)
		return -1;
	*out = (int)v;
	return 0;
}

/* A decimal number (digits, one '.', optional exponent) greater than 0. */
static int parse_positive(const char *s, double *out)
{
	char *end;
	double d;

	if (!*s || strspn(s, "0123456789.eE+-") != strlen(s))
		return -1;
	d = strtod(s, &end);
	if (*end || !(d > 0) || d > 1e15)
		return -1;
	*out = d;
	return 0;
}

static int parse_uint_text(const char *s, unsigned long long max, unsigned long long *out)
{
	size_t len = strlen(s);
	unsigned long long v = 0;

	if (!all_digits(s, len) || len > 19)
		return -1;
	for (size_t i = 0; i < len; i++)
		v = v * 10 + (unsigned)(s[i] - '0');
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

static bool valid_header_name(const char *s)
{
	size_t len = strlen(s);

	return len <= ZW_TARGET_MAX_HDRNAME && all_bytes(s, len, is_tchar);
}

static bool valid_header_value(const char *s)
{
	size_t len = strlen(s);

	return len <= ZW_TARGET_MAX_HDRVAL && (len == 0 || all_bytes(s, len, is_field_byte));
}

/* Trims ASCII spaces around s[0..*len); returns the new start. */
static const char *trim(const char *s, size_t *len)
{
	while (*len && isspace((unsigned char)s[0])) {
		s++;
		(*len)--;
	}
	while (*len && isspace((unsigned char)s[*len - 1]))
		(*len)--;
	return s;
}

/* ---- owned strings and arrays ---- */

static char *dupn(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static char *dup0(const char *s)
{
	return s ? dupn(s, strlen(s)) : NULL;
}

/* Sets *dst to a copy of s (NULL stays NULL). Returns 0 or ENOMEM. */
static int set_str(char **dst, const char *s)
{
	char *p = NULL;

	if (s && !(p = dup0(s)))
		return ZW_TARGET_ENOMEM;
	free(*dst);
	*dst = p;
	return 0;
}

/* Appends s (ownership taken, freed on failure) to v[0..n). */
static int strv_push(char ***v, size_t *n, char *s)
{
	char **nv;

	if (!s)
		return ZW_TARGET_ENOMEM;
	nv = realloc(*v, (*n + 1) * sizeof(*nv));
	if (!nv) {
		free(s);
		return ZW_TARGET_ENOMEM;
	}
	nv[(*n)++] = s;
	*v = nv;
	return 0;
}

static bool strv_has(char **v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* ---- hosts, paths, headers ---- */

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
		if (end < len && (s[end] != ':' || !all_digits(s + end + 1, len - end - 1))) {
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
			if (!all_digits(s + last + 1, len - last - 1)) {
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
	if (!(*out = dupn(s, end)))
		return ZW_TARGET_ENOMEM;
	for (i = 0; i < end; i++)
		(*out)[i] = (char)tolower((unsigned char)(*out)[i]);
	return 0;
}

/* Normalises one path prefix: a leading '/', no trailing '/' (except "/"). */
static int path_norm(const char *s, size_t len, char **out, const char **why)
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

typedef int (*item_fn)(struct pctx *c, struct zw_route_rule *r, const char *s, size_t len,
                       const char *field);

static int too_many(struct pctx *c, const char *field)
{
	return failf(c, "%s has more than %d entries", field, ZW_TARGET_MAX_LIST);
}

/* Normalises s[0..len) with norm and appends it to v[0..n) unless already
 * there; `what` names the kind of value in messages. */
static int list_add(struct pctx *c, char ***v, size_t *n, const char *s, size_t len,
                    const char *field, int (*norm)(const char *, size_t, char **, const char **),
                    const char *what)
{
	char q[QUOTE_LEN];
	const char *why = NULL;
	char *x = NULL;
	int rc = norm(s, len, &x, &why);

	if (rc == -1)
		return failf(c, "%s %s is not a valid %s: it %s", field, quoten(s, len, q), what,
		             why);
	if (rc < 0)
		return rc;
	if (strv_has(*v, *n, x)) {
		free(x);
		return 0;
	}
	if (*n >= ZW_TARGET_MAX_LIST) {
		free(x);
		return too_many(c, field);
	}
	return strv_push(v, n, x);
}

static int rule_add_host(struct pctx *c, struct zw_route_rule *r, const char *s, size_t len,
                         const char *field)
{
	return list_add(c, &r->hosts, &r->n_hosts, s, len, field, host_norm, "host");
}

static int rule_add_path(struct pctx *c, struct zw_route_rule *r, const char *s, size_t len,
                         const char *field)
{
	return list_add(c, &r->paths, &r->n_paths, s, len, field, path_norm, "path prefix");
}

/* Every rule matches at least "/": an empty path list becomes {"/"}. */
static int rule_default_path(struct zw_route_rule *r)
{
	return r->n_paths ? 0 : strv_push(&r->paths, &r->n_paths, dup0("/"));
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

/* Compiles pattern (RE2-style, see regex_to_ere) anchored to the whole
 * value, case-insensitive. Returns 0 with *out owned by the caller (free
 * with regex_free), -1 with why[] filled, or ENOMEM. */
static int regex_compile(const char *pattern, void **out, char *why, size_t whylen)
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

static void regex_free(void *re)
{
	if (re) {
		regfree(re);
		free(re);
	}
}

/* Adds a header matcher: name lower-cased; value NULL = "present", else
 * compared as `kind` says (ZW_HDR_EXACT, _WILDCARD or _REGEX). */
static int rule_add_header(struct pctx *c, struct zw_route_rule *r, const char *name,
                           const char *value, enum zw_header_match_kind kind, const char *field)
{
	char q[QUOTE_LEN], why[128];
	struct zw_header_match *nh;
	char *n = NULL, *v = NULL;
	void *re = NULL;
	int rc;

	if (!value)
		kind = ZW_HDR_PRESENT;
	if (!valid_header_name(name))
		return failf(c, "%s.name %s is not a valid header name", field, quote(name, q));
	if (value && !valid_header_value(value))
		return failf(c, "%s.%s %s is not a valid header value", field, match_keys[kind],
		             quote(value, q));
	for (size_t i = 0; i < r->n_headers; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			return failf(c, "%s.name %s is listed twice", field, quote(name, q));
	if (r->n_headers >= ZW_TARGET_MAX_LIST)
		return too_many(c, field);
	if (kind == ZW_HDR_REGEX) {
		rc = regex_compile(value, &re, why, sizeof(why));
		if (rc == -1)
			return failf(c,
			             "%s.valueRegex %s is not a supported regular expression: %s",
			             field, quote(value, q), why);
		if (rc < 0)
			return rc;
	}
	n = dup0(name);
	if (value)
		v = dup0(value);
	nh = (n && (v || !value)) ? realloc(r->headers, (r->n_headers + 1) * sizeof(*nh)) : NULL;
	if (!nh) {
		free(n);
		free(v);
		regex_free(re);
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

static int sr_add_header(struct pctx *c, struct zw_static_response *sr, const char *name,
                         const char *value, const char *field)
{
	char q[QUOTE_LEN], q2[QUOTE_LEN];
	char **nn, **nv, *n, *v;

	if (!valid_header_name(name))
		return failf(c, "%s name %s is not a valid header name", field, quote(name, q));
	if (!valid_header_value(value))
		return failf(c, "%s %s value %s is not a valid header value", field, quote(name, q),
		             quote(value, q2));
	if (sr->n_headers >= ZW_TARGET_MAX_LIST)
		return too_many(c, field);
	n = dup0(name);
	v = dup0(value);
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

static bool sr_has_header(const struct zw_static_response *sr, const char *name)
{
	for (size_t i = 0; i < sr->n_headers; i++)
		if (strcasecmp(sr->header_names[i], name) == 0)
			return true;
	return false;
}

/* Calls fn for each non-empty, space-trimmed item of a comma list. */
static int comma_each(struct pctx *c, const char *s, const char *field, struct zw_route_rule *r,
                      item_fn fn)
{
	while (*s) {
		const char *comma = strchr(s, ',');
		size_t len = comma ? (size_t)(comma - s) : strlen(s);
		const char *item = trim(s, &len);
		int rc;

		if (len && (rc = fn(c, r, item, len, field)) < 0)
			return rc;
		s += comma ? (size_t)(comma - s) + 1 : strlen(s);
	}
	return 0;
}

/* ---- trigger metadata values ---- */

/* Renders a JSON scalar as text into m. Returns 0, or -1 for objects and
 * arrays. */
static int scalar_text(const json_t *v, struct mval *m)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		m->s = json_string_value(v);
		return 0;
	case JSON_INTEGER:
		snprintf(m->buf, sizeof(m->buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_REAL:
		snprintf(m->buf, sizeof(m->buf), "%.15g", json_real_value(v));
		break;
	case JSON_TRUE:
		snprintf(m->buf, sizeof(m->buf), "true");
		break;
	case JSON_FALSE:
		snprintf(m->buf, sizeof(m->buf), "false");
		break;
	default:
		return -1;
	}
	m->s = m->buf;
	return 0;
}

/* Reads trigger metadata key as text. Returns 1 when set to a non-blank
 * value, 0 when absent, null or blank, EINVAL for a list or map. */
static int meta_get(struct pctx *c, const json_t *meta, const char *key, struct mval *m)
{
	json_t *v = member(meta, key);
	size_t len;

	m->s = NULL;
	if (!v)
		return 0;
	if (scalar_text(v, m) < 0)
		return failf(c, "metadata.%s must be a string, not %s", key, jtype(v));
	len = strlen(m->s);
	trim(m->s, &len);
	if (len == 0) {
		m->s = NULL;
		return 0;
	}
	return 1;
}

/* A trimmed copy of a metadata value, for values compared as words or
 * parsed as numbers, names and durations (at most buflen - 1 bytes). */
static const char *meta_word(const struct mval *m, char *buf, size_t buflen)
{
	size_t len = strlen(m->s);
	const char *s = trim(m->s, &len);

	if (len >= buflen) {
		/* too long for any word, number, port, name or duration: hand the
		 * validators a value none of them accepts (messages quote m->s) */
		snprintf(buf, buflen, "\x01");
		return buf;
	}
	memcpy(buf, s, len);
	buf[len] = '\0';
	return buf;
}

/* Reads a duration key; *present says whether it was set. */
static int meta_duration(struct pctx *c, const json_t *meta, const char *key, uint64_t *out,
                         bool *present)
{
	char q[QUOTE_LEN], w[WORD_LEN];
	struct mval m;
	int rc = meta_get(c, meta, key, &m);

	*present = rc > 0;
	if (rc <= 0)
		return rc;
	if (zw_duration_parse_ms(meta_word(&m, w, sizeof(w)), out) < 0)
		return failf(c, "metadata.%s %s is not a duration (e.g. 30s, 1m, 1h30m)", key,
		             quote(m.s, q));
	return 0;
}

/* endpointConcurrency (a number, "auto" or "off") and slowStart. */
static int meta_allowance(struct pctx *c, const json_t *meta, struct zw_target *t)
{
	char q[QUOTE_LEN], w[WORD_LEN];
	struct mval m;
	bool present;
	uint64_t ms = 0;
	int rc = meta_get(c, meta, "endpointConcurrency", &m);

	if (rc < 0)
		return rc;
	if (rc) {
		unsigned long long v;
		meta_word(&m, w, sizeof(w));
		if (strcasecmp(w, "auto") == 0)
			t->endpoint_concurrency = ZW_ALLOWANCE_AUTO;
		else if (strcasecmp(w, "off") == 0)
			t->endpoint_concurrency = 0;
		else if (parse_uint_text(w, ZW_ALLOWANCE_MAX, &v) == 0)
			t->endpoint_concurrency = (int64_t)v;
		else
			return failf(c,
			             "metadata.endpointConcurrency %s is not a number in 0..%d, "
			             "auto or off",
			             quote(m.s, q), ZW_ALLOWANCE_MAX);
	}
	if ((rc = meta_duration(c, meta, "slowStart", &ms, &present)) < 0)
		return rc;
	if (present)
		t->slow_start_ms = (int64_t)ms;
	return 0;
}

/* Timeouts: unset stays 0, an explicit zero becomes ZW_TIMEOUT_NONE. */
static int meta_timeout(struct pctx *c, const json_t *meta, const char *key, uint64_t *out)
{
	bool present;
	uint64_t ms = 0;
	int rc = meta_duration(c, meta, key, &ms, &present);

	if (rc < 0)
		return rc;
	if (present)
		*out = ms ? ms : ZW_TIMEOUT_NONE;
	return 0;
}

/* port | portName pair into ref. required == false: both absent is fine. */
static int meta_port(struct pctx *c, const json_t *meta, const char *port_key, const char *name_key,
                     bool required, struct zw_service_ref *ref, bool *set)
{
	char q[QUOTE_LEN], w[WORD_LEN];
	struct mval p, n;
	int rp, rn;

	if ((rp = meta_get(c, meta, port_key, &p)) < 0)
		return rp;
	if ((rn = meta_get(c, meta, name_key, &n)) < 0)
		return rn;
	*set = rp || rn;
	if (rp && rn)
		return failf(c, "metadata.%s and metadata.%s are both set (exactly one is allowed)",
		             port_key, name_key);
	if (!rp && !rn)
		return required ? failf(c, "metadata.%s or metadata.%s is required", port_key,
		                        name_key)
		                : 0;
	if (rp) {
		if (parse_port_text(meta_word(&p, w, sizeof(w)), &ref->port) < 0)
			return failf(c, "metadata.%s %s is not a port number", port_key,
			             quote(p.s, q));
		return 0;
	}
	if (!valid_port_name(meta_word(&n, w, sizeof(w))))
		return failf(c, "metadata.%s %s is not a valid port name", name_key, quote(n.s, q));
	return set_str(&ref->port_name, w);
}

/* ---- YAML pairs inside a metadata string (headers, placeholderHeaders) ---- */

typedef int (*pair_fn)(struct pctx *c, void *arg, const char *name, const char *value,
                       enum zw_header_match_kind kind, const char *field);

/* Reads at most one of value / valueWildcard / valueRegex of a header entry
 * at `base` into *vm (vm->s NULL when none) and *kind; strings_only: JSON
 * strings only (CRD fields), else any scalar (trigger metadata YAML). */
static int match_value(struct pctx *c, const json_t *item, const char *base, bool strings_only,
                       struct mval *vm, enum zw_header_match_kind *kind)
{
	static const enum zw_header_match_kind kinds[] = {ZW_HDR_EXACT, ZW_HDR_WILDCARD,
	                                                  ZW_HDR_REGEX};
	static const char *const keys[] = {"value", "valueWildcard", "valueRegex"};
	int found = 0;

	vm->s = NULL;
	*kind = ZW_HDR_PRESENT;
	for (size_t i = 0; i < 3; i++) {
		json_t *v = member(item, keys[i]);
		struct mval tmp;

		if (!v)
			continue;
		if ((strings_only && !json_is_string(v)) || scalar_text(v, &tmp) < 0)
			return failf(c, "%s.%s must be a string, not %s", base, keys[i], jtype(v));
		if (found++)
			return failf(
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

/* Parses text as YAML: either a list of {name, value | valueWildcard |
 * valueRegex} maps or one map of name: value, and calls fn for each pair
 * (value NULL when absent/null: "present"). */
static int yaml_pairs(struct pctx *c, const char *text, const char *field, pair_fn fn, void *arg)
{
	char yerr[256], p[PATH_LEN], q[QUOTE_LEN];
	enum zw_header_match_kind kind;
	json_t *docs = NULL, *doc, *item, *v;
	struct mval nm, vm;
	const char *key;
	size_t i;
	int rc = 0;

	if (zw_yaml_load(text, strlen(text), &docs, yerr, sizeof(yerr)) < 0)
		return failf(c, "%s is not valid YAML: %s", field, yerr);
	if (json_array_size(docs) == 0)
		goto out;
	if (json_array_size(docs) > 1) {
		rc = failf(c, "%s must be one YAML document, not %zu", field,
		           json_array_size(docs));
		goto out;
	}
	doc = json_array_get(docs, 0);
	if (json_is_object(doc)) {
		json_object_foreach(doc, key, v)
		{
			path_fit(p, snprintf(p, sizeof(p), "%s[%s]", field, quote(key, q)));
			vm.s = NULL;
			if (v && !json_is_null(v) && scalar_text(v, &vm) < 0) {
				rc = failf(c, "%s must be a string, not %s", p, jtype(v));
				goto out;
			}
			if ((rc = fn(c, arg, key, vm.s, ZW_HDR_EXACT, p)) < 0)
				goto out;
		}
		goto out;
	}
	if (!json_is_array(doc)) {
		rc = failf(c, "%s must be a YAML list of name/value entries, not %s", field,
		           jtype(doc));
		goto out;
	}
	json_array_foreach(doc, i, item)
	{
		joini(p, field, i);
		if (!json_is_object(item)) {
			rc = failf(c, "%s must be a map with name and value, not %s", p,
			           jtype(item));
			goto out;
		}
		v = member(item, "name");
		if (!v || scalar_text(v, &nm) < 0 || !*nm.s) {
			rc = v ? failf(c, "%s.name must be a non-empty string", p)
			       : failf(c, "%s.name is required", p);
			goto out;
		}
		if ((rc = match_value(c, item, p, false, &vm, &kind)) < 0)
			goto out;
		if ((rc = fn(c, arg, nm.s, vm.s, kind, p)) < 0)
			goto out;
	}
out:
	json_decref(docs);
	return rc;
}

static int pair_to_matcher(struct pctx *c, void *arg, const char *name, const char *value,
                           enum zw_header_match_kind kind, const char *field)
{
	return rule_add_header(c, arg, name, value, kind, field);
}

static int pair_to_response(struct pctx *c, void *arg, const char *name, const char *value,
                            enum zw_header_match_kind kind, const char *field)
{
	if (!value)
		return failf(c, "%s needs a value", field);
	if (kind != ZW_HDR_EXACT)
		return failf(c, "%s: a response header takes value, not a pattern", field);
	return sr_add_header(c, arg, name, value, field);
}

/* ---- trafficAutowire ---- */

enum { AW_BAD_WORD = -1, AW_FALSE_MIXED = -2 };

/* Parses a trafficAutowire list. On AW_BAD_WORD, *bad and *badlen name the word. */
static int autowire_words(const char *value, unsigned *out, unsigned *ignored, const char **bad,
                          size_t *badlen)
{
	static const struct {
		const char *word;
		unsigned bits;
		unsigned ign;
	} words[] = {
	        {"ingress", ZW_AW_INGRESS, 0},     {"httproute", ZW_AW_HTTPROUTE, 0},
	        {"grpcroute", ZW_AW_GRPCROUTE, 0}, {"virtualservice", ZW_AW_VIRTUALSERVICE, 0},
	        {"gloo", ZW_AW_GLOO, 0},           {"true", ZW_AW_ALL, 0},
	        {"route", 0, ZW_AW_IGNORED_ROUTE}, {"service", 0, ZW_AW_IGNORED_SERVICE},
	};
	unsigned bits = 0, ign = 0;
	size_t nwords = 0;
	bool is_false = false;
	const char *s = value;

	while (*s) {
		const char *comma = strchr(s, ',');
		size_t len = comma ? (size_t)(comma - s) : strlen(s);
		const char *w = trim(s, &len);
		size_t k;

		s += comma ? (size_t)(comma - s) + 1 : strlen(s);
		if (!len)
			continue;
		nwords++;
		if (len == 5 && strncasecmp(w, "false", 5) == 0) {
			is_false = true;
			continue;
		}
		for (k = 0; k < sizeof(words) / sizeof(words[0]); k++)
			if (strlen(words[k].word) == len && strncasecmp(w, words[k].word, len) == 0)
				break;
		if (k == sizeof(words) / sizeof(words[0])) {
			*bad = w;
			*badlen = len;
			return AW_BAD_WORD;
		}
		bits |= words[k].bits;
		ign |= words[k].ign;
	}
	if (is_false && nwords > 1)
		return AW_FALSE_MIXED;
	if (nwords == 0)
		bits = ZW_AW_ALL;
	*out = bits;
	if (ignored)
		*ignored = ign;
	return 0;
}

int zw_autowire_parse_ext(const char *value, unsigned *out, unsigned *ignored)
{
	const char *bad;
	size_t badlen;

	if (!value)
		return -1;
	return autowire_words(value, out, ignored, &bad, &badlen) < 0 ? -1 : 0;
}

int zw_autowire_parse(const char *value, unsigned *out)
{
	return zw_autowire_parse_ext(value, out, NULL);
}

static int autowire_set(struct pctx *c, const char *value, const char *field, struct zw_target *t)
{
	char q[QUOTE_LEN], q2[QUOTE_LEN];
	const char *bad = NULL;
	size_t badlen = 0;
	int rc = autowire_words(value, &t->autowire, &t->autowire_ignored, &bad, &badlen);

	if (rc == AW_BAD_WORD)
		return failf(c,
		             "%s %s: unknown kind %s (expected ingress, httproute, grpcroute, "
		             "virtualservice, gloo, route, service, true or false)",
		             field, quote(value, q), quoten(bad, badlen, q2));
	if (rc == AW_FALSE_MIXED)
		return failf(c, "%s %s: \"false\" cannot be combined with other kinds", field,
		             quote(value, q));
	return 0;
}

/* CRD Duration field (a string). Timeouts: explicit zero -> ZW_TIMEOUT_NONE
 * when `timeout` is set. Returns 1 (set), 0 (absent) or EINVAL. */
static int opt_duration(struct pctx *c, const json_t *obj, const char *key, const char *base,
                        bool timeout, uint64_t *out)
{
	char p[PATH_LEN], q[QUOTE_LEN];
	const char *s;
	uint64_t ms;
	int rc = opt_string(c, obj, key, base, &s);

	if (rc <= 0)
		return rc;
	join(p, base, key);
	if (zw_duration_parse_ms(s, &ms) < 0)
		return failf(c, "%s %s is not a duration (e.g. 30s, 1m, 1h30m)", p, quote(s, q));
	*out = (timeout && ms == 0) ? ZW_TIMEOUT_NONE : ms;
	return 1;
}

/* window / granularity consistency (requestRate ring buffer). */
static int check_window(struct pctx *c, const char *wfield, const char *gfield,
                        const struct zw_target *t)
{
	if (t->window_ms == 0)
		return failf(c, "%s must be greater than 0", wfield);
	if (t->granularity_ms == 0)
		return failf(c, "%s must be greater than 0", gfield);
	if (t->window_ms < t->granularity_ms)
		return failf(c, "%s (%" PRIu64 "ms) is shorter than %s (%" PRIu64 "ms)", wfield,
		             t->window_ms, gfield, t->granularity_ms);
	if ((t->window_ms + t->granularity_ms - 1) / t->granularity_ms > ZW_TARGET_MAX_BUCKETS)
		return failf(c, "%s / %s gives more than %d buckets", wfield, gfield,
		             ZW_TARGET_MAX_BUCKETS);
	return 0;
}

/* ---- target lifetime ---- */

static void target_init(struct zw_target *t, enum zw_target_source src)
{
	memset(t, 0, sizeof(*t));
	t->source = src;
	t->trigger_index = -1;
	t->min_replicas = DEFAULT_MIN_REPLICAS;
	t->max_replicas = DEFAULT_MAX_REPLICAS;
	t->rate_target = DEFAULT_TARGET_VALUE;
	t->concurrency_target = DEFAULT_TARGET_VALUE;
	t->window_ms = DEFAULT_WINDOW_MS;
	t->granularity_ms = DEFAULT_GRANULARITY_MS;
	t->autowire = ZW_AW_ALL;
	t->cooldown_period = -1;
	t->initial_cooldown_period = -1;
	t->endpoint_concurrency = ZW_ALLOWANCE_UNSET;
	t->slow_start_ms = -1;
}

static void ref_free(struct zw_service_ref *r)
{
	free(r->namespace);
	free(r->name);
	free(r->port_name);
	memset(r, 0, sizeof(*r));
}

static void rule_free(struct zw_route_rule *r)
{
	strv_free(r->hosts, r->n_hosts);
	strv_free(r->paths, r->n_paths);
	for (size_t i = 0; i < r->n_headers; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
		if (r->headers[i].kind == ZW_HDR_REGEX)
			regex_free(r->headers[i].regex);
	}
	free(r->headers);
}

static void rules_free(struct zw_route_rule *rules, size_t n)
{
	for (size_t i = 0; rules && i < n; i++)
		rule_free(&rules[i]);
	free(rules);
}

static void sr_free(struct zw_static_response *sr)
{
	free(sr->body);
	strv_free(sr->header_names, sr->n_headers);
	strv_free(sr->header_values, sr->n_headers);
	free(sr->body_configmap);
	free(sr->body_configmap_key);
	strv_free(sr->file_keys, sr->n_files);
	strv_free(sr->file_values, sr->n_files);
	memset(sr, 0, sizeof(*sr));
}

void zw_target_free(struct zw_target *t)
{
	if (!t)
		return;
	free(t->namespace);
	free(t->name);
	free(t->uid);
	free(t->creation_timestamp);
	free(t->scaled_object);
	free(t->scale_kind);
	free(t->scale_api_version);
	free(t->scale_name);
	ref_free(&t->service);
	rules_free(t->rules, t->n_rules);
	ref_free(&t->fallback);
	sr_free(&t->placeholder);
	free(t->healthcheck_path);
	free(t->healthcheck_path_prefix);
	for (size_t i = 0; t->static_routes && i < t->n_static_routes; i++) {
		rules_free(t->static_routes[i].rules, t->static_routes[i].n_rules);
		sr_free(&t->static_routes[i].response);
	}
	free(t->static_routes);
	memset(t, 0, sizeof(*t));
}

void zw_target_array_free(struct zw_target *ts, size_t n)
{
	for (size_t i = 0; ts && i < n; i++)
		zw_target_free(&ts[i]);
	free(ts);
}

/* ---- deep copy ---- */

/* Copies n strings; *dn is set as soon as the array exists so a partial
 * copy is freed by the owner's normal free path. */
static int copy_strv(char ***dst, size_t *dn, char *const *src, size_t n)
{
	*dst = NULL;
	*dn = 0;
	if (!n)
		return 0;
	if (!(*dst = calloc(n, sizeof(**dst))))
		return ZW_TARGET_ENOMEM;
	*dn = n;
	for (size_t i = 0; i < n; i++)
		if (!((*dst)[i] = dup0(src[i])))
			return ZW_TARGET_ENOMEM;
	return 0;
}

static int copy_ref(struct zw_service_ref *d, const struct zw_service_ref *s)
{
	d->port = s->port;
	if (set_str(&d->namespace, s->namespace) || set_str(&d->name, s->name) ||
	    set_str(&d->port_name, s->port_name))
		return ZW_TARGET_ENOMEM;
	return 0;
}

static int copy_rules(struct zw_route_rule **dst, size_t *dn, const struct zw_route_rule *src,
                      size_t n)
{
	*dst = NULL;
	*dn = 0;
	if (!n)
		return 0;
	if (!(*dst = calloc(n, sizeof(**dst))))
		return ZW_TARGET_ENOMEM;
	*dn = n;
	for (size_t i = 0; i < n; i++) {
		struct zw_route_rule *d = &(*dst)[i];
		const struct zw_route_rule *s = &src[i];

		if (copy_strv(&d->hosts, &d->n_hosts, s->hosts, s->n_hosts) < 0 ||
		    copy_strv(&d->paths, &d->n_paths, s->paths, s->n_paths) < 0)
			return ZW_TARGET_ENOMEM;
		if (!s->n_headers)
			continue;
		if (!(d->headers = calloc(s->n_headers, sizeof(*d->headers))))
			return ZW_TARGET_ENOMEM;
		d->n_headers = s->n_headers;
		for (size_t k = 0; k < s->n_headers; k++) {
			char why[128];

			d->headers[k].kind = s->headers[k].kind;
			if (!(d->headers[k].name = dup0(s->headers[k].name)))
				return ZW_TARGET_ENOMEM;
			if (s->headers[k].value &&
			    !(d->headers[k].value = dup0(s->headers[k].value)))
				return ZW_TARGET_ENOMEM;
			/* the expression compiled once already: only memory can fail */
			if (s->headers[k].kind == ZW_HDR_REGEX && s->headers[k].value &&
			    regex_compile(s->headers[k].value, &d->headers[k].regex, why,
			                  sizeof(why)))
				return ZW_TARGET_ENOMEM;
		}
	}
	return 0;
}

static int copy_sr(struct zw_static_response *d, const struct zw_static_response *s)
{
	size_t n = s->n_headers;

	d->status = s->status;
	d->waiting_page = s->waiting_page;
	d->configmap_state = s->configmap_state;
	if (set_str(&d->body, s->body) || set_str(&d->body_configmap, s->body_configmap) ||
	    set_str(&d->body_configmap_key, s->body_configmap_key))
		return ZW_TARGET_ENOMEM;
	if (s->n_files) {
		d->file_keys = calloc(s->n_files, sizeof(char *));
		d->file_values = calloc(s->n_files, sizeof(char *));
		if (!d->file_keys || !d->file_values)
			return ZW_TARGET_ENOMEM;
		d->n_files = s->n_files;
		for (size_t i = 0; i < s->n_files; i++)
			if (set_str(&d->file_keys[i], s->file_keys[i]) ||
			    set_str(&d->file_values[i], s->file_values[i]))
				return ZW_TARGET_ENOMEM;
	}
	if (!n)
		return 0;
	d->header_names = calloc(n, sizeof(char *));
	d->header_values = calloc(n, sizeof(char *));
	if (!d->header_names || !d->header_values) {
		free(d->header_names);
		free(d->header_values);
		d->header_names = d->header_values = NULL;
		return ZW_TARGET_ENOMEM;
	}
	d->n_headers = n;
	for (size_t i = 0; i < n; i++)
		if (!(d->header_names[i] = dup0(s->header_names[i])) ||
		    !(d->header_values[i] = dup0(s->header_values[i])))
			return ZW_TARGET_ENOMEM;
	return 0;
}

int zw_target_copy(struct zw_target *dst, const struct zw_target *src)
{
	int rc = ZW_TARGET_ENOMEM;

	*dst = *src;
	/* detach every owned pointer before copying so a failure frees only
	 * what belongs to dst */
	dst->namespace = dst->name = dst->uid = dst->creation_timestamp = NULL;
	dst->scaled_object = dst->scale_kind = dst->scale_api_version = dst->scale_name = NULL;
	memset(&dst->service, 0, sizeof(dst->service));
	memset(&dst->fallback, 0, sizeof(dst->fallback));
	memset(&dst->placeholder, 0, sizeof(dst->placeholder));
	dst->rules = NULL;
	dst->n_rules = 0;
	dst->healthcheck_path = NULL;
	dst->healthcheck_path_prefix = NULL;
	dst->static_routes = NULL;
	dst->n_static_routes = 0;

	if (set_str(&dst->namespace, src->namespace) || set_str(&dst->name, src->name) ||
	    set_str(&dst->uid, src->uid) ||
	    set_str(&dst->creation_timestamp, src->creation_timestamp) ||
	    set_str(&dst->scaled_object, src->scaled_object) ||
	    set_str(&dst->scale_kind, src->scale_kind) ||
	    set_str(&dst->scale_api_version, src->scale_api_version) ||
	    set_str(&dst->scale_name, src->scale_name) ||
	    set_str(&dst->healthcheck_path, src->healthcheck_path) ||
	    set_str(&dst->healthcheck_path_prefix, src->healthcheck_path_prefix))
		goto fail;
	if (copy_ref(&dst->service, &src->service) < 0 ||
	    copy_ref(&dst->fallback, &src->fallback) < 0 ||
	    copy_sr(&dst->placeholder, &src->placeholder) < 0)
		goto fail;
	if (copy_rules(&dst->rules, &dst->n_rules, src->rules, src->n_rules) < 0)
		goto fail;
	if (src->n_static_routes) {
		dst->static_routes = calloc(src->n_static_routes, sizeof(*dst->static_routes));
		if (!dst->static_routes)
			goto fail;
		dst->n_static_routes = src->n_static_routes;
		for (size_t i = 0; i < src->n_static_routes; i++) {
			struct zw_static_route *d = &dst->static_routes[i];
			const struct zw_static_route *s = &src->static_routes[i];

			d->always = s->always;
			if (copy_rules(&d->rules, &d->n_rules, s->rules, s->n_rules) < 0 ||
			    copy_sr(&d->response, &s->response) < 0)
				goto fail;
		}
	}
	return 0;
fail:
	zw_target_free(dst);
	return rc;
}

/* ---- object metadata ---- */

/* Fills c with kind/namespace/name of obj (namespace defaults to
 * "default") and copies identity into t when t != NULL. */
static int read_identity(struct pctx *c, const json_t *obj, const char *kind, struct zw_target *t)
{
	json_t *md;
	const char *s;
	int rc;

	c->kind = kind;
	c->ns = "default";
	c->name = "?";
	c->trigger = -1;
	if (!json_is_object(obj))
		return failf(c, "the object must be a JSON object, not %s", jtype(obj));
	if ((rc = req_object(c, obj, "metadata", "", &md)) < 0)
		return rc;
	if ((rc = opt_string(c, md, "namespace", "metadata", &s)) < 0)
		return rc;
	if (s && *s)
		c->ns = s;
	if ((rc = req_string(c, md, "name", "metadata", &s)) < 0)
		return rc;
	c->name = s;
	if (!t)
		return 0;
	if (set_str(&t->namespace, c->ns) || set_str(&t->name, c->name))
		return ZW_TARGET_ENOMEM;
	if ((rc = opt_string(c, md, "uid", "metadata", &s)) < 0)
		return rc;
	if (set_str(&t->uid, s))
		return ZW_TARGET_ENOMEM;
	if ((rc = opt_string(c, md, "creationTimestamp", "metadata", &s)) < 0)
		return rc;
	if (set_str(&t->creation_timestamp, s))
		return ZW_TARGET_ENOMEM;
	return 0;
}

/* ---- ScaledObject ---- */

/* ScaledObject-level fields shared by its targets (borrowed strings). */
struct so_common {
	const char *name;
	const char *kind;
	const char *api_version;
	long long min, max;
};

static int parse_so_common(struct pctx *c, const json_t *spec, struct so_common *sc)
{
	json_t *ref;
	int rc;

	sc->min = DEFAULT_MIN_REPLICAS;
	sc->max = DEFAULT_MAX_REPLICAS;
	if ((rc = req_object(c, spec, "scaleTargetRef", "spec", &ref)) < 0)
		return rc;
	if ((rc = req_string(c, ref, "name", "spec.scaleTargetRef", &sc->name)) < 0 ||
	    (rc = opt_string(c, ref, "kind", "spec.scaleTargetRef", &sc->kind)) < 0 ||
	    (rc = opt_string(c, ref, "apiVersion", "spec.scaleTargetRef", &sc->api_version)) < 0)
		return rc;
	if (!sc->kind || !*sc->kind)
		sc->kind = DEFAULT_SCALE_KIND;
	if (!sc->api_version || !*sc->api_version)
		sc->api_version = DEFAULT_SCALE_API_VERSION;
	if ((rc = opt_int(c, spec, "minReplicaCount", "spec", 0, INT32_MAX, &sc->min)) < 0 ||
	    (rc = opt_int(c, spec, "maxReplicaCount", "spec", 0, INT32_MAX, &sc->max)) < 0)
		return rc;
	if (sc->min > sc->max)
		return failf(c,
		             "spec.minReplicaCount %lld is greater than spec.maxReplicaCount %lld",
		             sc->min, sc->max);
	return 0;
}

/* Placeholder keys of a trigger (zerowire keys plus Kedify's
 * coldStartWaitingPageEnabled). */
static int meta_placeholder(struct pctx *c, const json_t *meta, struct zw_target *t)
{
	char q[QUOTE_LEN], w[WORD_LEN];
	struct zw_static_response *sr = &t->placeholder;
	struct mval m;
	bool waiting = false;
	int rc;

	if ((rc = meta_get(c, meta, "coldStartWaitingPageEnabled", &m)) < 0)
		return rc;
	if (rc) {
		meta_word(&m, w, sizeof(w));
		if (strcasecmp(w, "true") == 0)
			waiting = true;
		else if (strcasecmp(w, "false") != 0)
			return failf(
			        c, "metadata.coldStartWaitingPageEnabled %s must be true or false",
			        quote(m.s, q));
	}
	sr->status = DEFAULT_PLACEHOLDER_STATUS;
	t->has_placeholder = waiting;
	if ((rc = meta_get(c, meta, "placeholderStatusCode", &m)) < 0)
		return rc;
	if (rc) {
		unsigned long long v;
		if (parse_uint_text(meta_word(&m, w, sizeof(w)), 599, &v) < 0 || v < 100)
			return failf(c,
			             "metadata.placeholderStatusCode %s is not an HTTP status "
			             "(100..599)",
			             quote(m.s, q));
		sr->status = (int)v;
		t->has_placeholder = true;
	}
	if ((rc = meta_get(c, meta, "placeholderBody", &m)) < 0)
		return rc;
	if (rc) {
		if (strlen(m.s) > ZW_TARGET_MAX_BODY)
			return failf(c, "metadata.placeholderBody is longer than %d bytes",
			             ZW_TARGET_MAX_BODY);
		if (set_str(&sr->body, m.s))
			return ZW_TARGET_ENOMEM;
		t->has_placeholder = true;
	}
	if ((rc = meta_get(c, meta, "placeholderHeaders", &m)) < 0)
		return rc;
	if (rc) {
		if ((rc = yaml_pairs(c, m.s, "metadata.placeholderHeaders", pair_to_response, sr)) <
		    0)
			return rc;
		t->has_placeholder = true;
	}
	if ((rc = meta_get(c, meta, "coldStartWaitingPageConfigMapRef", &m)) < 0)
		return rc;
	if (rc && waiting) {
		/* Kedify: the page body is that ConfigMap's key coldStartWaitingPageBody */
		meta_word(&m, w, sizeof(w));
		if (!valid_object_name(w))
			return failf(c,
			             "metadata.coldStartWaitingPageConfigMapRef %s is not a valid "
			             "ConfigMap name",
			             quote(m.s, q));
		if (sr->body)
			return failf(c,
			             "metadata.placeholderBody and "
			             "metadata.coldStartWaitingPageConfigMapRef are both set (at "
			             "most one is allowed)");
		if (set_str(&sr->body_configmap, w) ||
		    set_str(&sr->body_configmap_key, ZW_WAITING_PAGE_CONFIGMAP_KEY))
			return ZW_TARGET_ENOMEM;
		sr->waiting_page = true;
	}
	if (waiting && !sr->body && !sr->body_configmap && set_str(&sr->body, ZW_WAITING_PAGE_BODY))
		return ZW_TARGET_ENOMEM;
	if (waiting && !sr_has_header(sr, "Retry-After") &&
	    (rc = sr_add_header(c, sr, "Retry-After", ZW_WAITING_PAGE_RETRY_AFTER,
	                        "metadata.placeholderHeaders")) < 0)
		return rc;
	if (!t->has_placeholder)
		sr_free(sr);
	return 0;
}

/* Cold-start and timeout keys of a trigger. */
static int meta_cold_start(struct pctx *c, const json_t *meta, struct zw_target *t)
{
	char q[QUOTE_LEN], w[WORD_LEN];
	struct mval m;
	bool set;
	int rc;

	if ((rc = meta_get(c, meta, "fallbackService", &m)) < 0)
		return rc;
	if (rc) {
		meta_word(&m, w, sizeof(w));
		if (!valid_service_name(w))
			return failf(c, "metadata.fallbackService %s is not a valid Service name",
			             quote(m.s, q));
		if (set_str(&t->fallback.name, w) || set_str(&t->fallback.namespace, t->namespace))
			return ZW_TARGET_ENOMEM;
		t->has_fallback = true;
		if ((rc = meta_port(c, meta, "fallbackPort", "fallbackPortName", false,
		                    &t->fallback, &set)) < 0)
			return rc;
		if (!set) {
			t->fallback.port = t->service.port;
			if (set_str(&t->fallback.port_name, t->service.port_name))
				return ZW_TARGET_ENOMEM;
		}
	} else {
		if ((rc = meta_get(c, meta, "fallbackPort", &m)) < 0)
			return rc;
		if (rc || (rc = meta_get(c, meta, "fallbackPortName", &m)) > 0)
			return failf(c, "metadata.fallbackPort/fallbackPortName need "
			                "metadata.fallbackService");
		if (rc < 0)
			return rc;
	}
	if ((rc = meta_timeout(c, meta, "readinessTimeout", &t->readiness_timeout_ms)) < 0 ||
	    (rc = meta_timeout(c, meta, "requestTimeout", &t->request_timeout_ms)) < 0 ||
	    (rc = meta_timeout(c, meta, "responseHeaderTimeout", &t->response_header_timeout_ms)) <
	            0)
		return rc;
	if ((rc = meta_get(c, meta, "maxPendingRequests", &m)) < 0)
		return rc;
	if (rc) {
		unsigned long long v;
		if (parse_uint_text(meta_word(&m, w, sizeof(w)), ZW_TARGET_MAX_PENDING, &v) < 0 ||
		    v < 1)
			return failf(c, "metadata.maxPendingRequests %s is not a number in 1..%d",
			             quote(m.s, q), ZW_TARGET_MAX_PENDING);
		t->max_pending = (uint32_t)v;
	}
	if ((rc = meta_allowance(c, meta, t)) < 0)
		return rc;
	if ((rc = meta_placeholder(c, meta, t)) < 0)
		return rc;
	if ((rc = meta_get(c, meta, "overflow", &m)) < 0)
		return rc;
	if (rc) {
		meta_word(&m, w, sizeof(w));
		if (strcasecmp(w, "placeholder") == 0)
			t->overflow_placeholder = true;
		else if (strcasecmp(w, "reject") != 0)
			return failf(c, "metadata.overflow %s must be Reject or Placeholder",
			             quote(m.s, q));
		if (t->overflow_placeholder && !t->has_placeholder)
			return failf(c, "metadata.overflow Placeholder needs a placeholder "
			                "(placeholderBody, placeholderStatusCode or "
			                "coldStartWaitingPageEnabled)");
	}
	return 0;
}

/* A path-valued metadata key into *out (NULL when unset). */
static int meta_path(struct pctx *c, const json_t *meta, const char *key, char **out)
{
	char q[QUOTE_LEN];
	const char *why = NULL, *s;
	struct mval m;
	size_t len;
	int rc;

	if ((rc = meta_get(c, meta, key, &m)) <= 0)
		return rc;
	len = strlen(m.s);
	s = trim(m.s, &len);
	rc = path_norm(s, len, out, &why);
	if (rc == -1)
		return failf(c, "metadata.%s %s is not a valid path: it %s", key, quote(m.s, q),
		             why);
	return rc;
}

/* healthcheckPath | healthcheckPathPrefix and healthcheckResponse. */
static int meta_healthcheck(struct pctx *c, const json_t *meta, struct zw_target *t)
{
	char q[QUOTE_LEN], w[WORD_LEN];
	struct mval m;
	int rc;

	if ((rc = meta_path(c, meta, "healthcheckPath", &t->healthcheck_path)) < 0 ||
	    (rc = meta_path(c, meta, "healthcheckPathPrefix", &t->healthcheck_path_prefix)) < 0)
		return rc;
	if (t->healthcheck_path && t->healthcheck_path_prefix)
		return failf(c,
		             "metadata.healthcheckPath and metadata.healthcheckPathPrefix are both "
		             "set (exactly one is allowed)");
	if (t->healthcheck_path_prefix && strcmp(t->healthcheck_path_prefix, "/") == 0)
		return failf(c, "metadata.healthcheckPathPrefix \"/\" would make every path a "
		                "health probe (use e.g. /kedify-proxy)");
	if (t->healthcheck_path)
		t->healthcheck_response = ZW_HC_PASSTHROUGH;
	if (t->healthcheck_path_prefix)
		t->healthcheck_response = ZW_HC_PATH_EMBEDDED_HOST;
	if ((rc = meta_get(c, meta, "healthcheckResponse", &m)) <= 0)
		return rc;
	meta_word(&m, w, sizeof(w));
	if (strcasecmp(w, "pathEmbeddedHost") == 0) {
		if (!t->healthcheck_path_prefix)
			return failf(c, "metadata.healthcheckResponse pathEmbeddedHost needs "
			                "metadata.healthcheckPathPrefix");
		return 0;
	}
	if (strcasecmp(w, "passthrough") && strcasecmp(w, "static"))
		return failf(c,
		             "metadata.healthcheckResponse %s must be passthrough, static or "
		             "pathEmbeddedHost",
		             quote(m.s, q));
	if (!t->healthcheck_path)
		return failf(c, "metadata.healthcheckResponse %s needs metadata.healthcheckPath",
		             quote(m.s, q));
	t->healthcheck_response = strcasecmp(w, "static") == 0 ? ZW_HC_STATIC : ZW_HC_PASSTHROUGH;
	return 0;
}

/* Routing and metric keys of one zerowire trigger into t (identity and
 * scale fields already set). */
static int parse_trigger(struct pctx *c, const json_t *meta, struct zw_target *t)
{
	char q[QUOTE_LEN], w[WORD_LEN];
	struct zw_route_rule *r;
	struct mval m;
	bool set;
	int rc;

	if ((rc = meta_get(c, meta, "service", &m)) < 0)
		return rc;
	if (!rc && t->scale_kind && strcmp(t->scale_kind, "Rollout") == 0)
		return failf(c, "metadata.service is required (zerowire does not read it from the "
		                "Argo Rollout)");
	if (!rc)
		return failf(c, "metadata.service is required");
	meta_word(&m, w, sizeof(w));
	if (!valid_service_name(w))
		return failf(c, "metadata.service %s is not a valid Service name", quote(m.s, q));
	if (set_str(&t->service.name, w) || set_str(&t->service.namespace, t->namespace))
		return ZW_TARGET_ENOMEM;
	if ((rc = meta_port(c, meta, "port", "portName", true, &t->service, &set)) < 0)
		return rc;

	if (!(t->rules = calloc(1, sizeof(*t->rules))))
		return ZW_TARGET_ENOMEM;
	t->n_rules = 1;
	r = &t->rules[0];
	if ((rc = meta_get(c, meta, "hosts", &m)) < 0 ||
	    (rc && (rc = comma_each(c, m.s, "metadata.hosts", r, rule_add_host)) < 0))
		return rc;
	if ((rc = meta_get(c, meta, "pathPrefixes", &m)) < 0 ||
	    (rc && (rc = comma_each(c, m.s, "metadata.pathPrefixes", r, rule_add_path)) < 0))
		return rc;
	if ((rc = rule_default_path(r)) < 0)
		return rc;
	if ((rc = meta_get(c, meta, "headers", &m)) < 0 ||
	    (rc && (rc = yaml_pairs(c, m.s, "metadata.headers", pair_to_matcher, r)) < 0))
		return rc;

	if ((rc = meta_get(c, meta, "scalingMetric", &m)) < 0)
		return rc;
	if (!rc) {
		if (t->source == ZW_SRC_KEDIFY)
			return failf(c, "metadata.scalingMetric is required (requestRate or "
			                "concurrency)");
		t->metrics = ZW_METRIC_REQUEST_RATE;
	} else {
		meta_word(&m, w, sizeof(w));
		if (strcasecmp(w, "requestRate") == 0)
			t->metrics = ZW_METRIC_REQUEST_RATE;
		else if (strcasecmp(w, "concurrency") == 0)
			t->metrics = ZW_METRIC_CONCURRENCY;
		else
			return failf(c,
			             "metadata.scalingMetric %s must be requestRate or concurrency",
			             quote(m.s, q));
	}
	if ((rc = meta_get(c, meta, "targetValue", &m)) < 0)
		return rc;
	if (rc) {
		double d;
		if (parse_positive(meta_word(&m, w, sizeof(w)), &d) < 0)
			return failf(c, "metadata.targetValue %s is not a positive number",
			             quote(m.s, q));
		if (t->metrics == ZW_METRIC_CONCURRENCY)
			t->concurrency_target = d;
		else
			t->rate_target = d;
	}
	if ((rc = meta_duration(c, meta, "window", &t->window_ms, &set)) < 0 ||
	    (rc = meta_duration(c, meta, "granularity", &t->granularity_ms, &set)) < 0 ||
	    (rc = check_window(c, "metadata.window", "metadata.granularity", t)) < 0)
		return rc;

	if ((rc = meta_get(c, meta, "trafficAutowire", &m)) < 0 ||
	    (rc && (rc = autowire_set(c, m.s, "metadata.trafficAutowire", t)) < 0))
		return rc;

	if ((rc = meta_healthcheck(c, meta, t)) < 0)
		return rc;
	if ((rc = meta_cold_start(c, meta, t)) < 0)
		return rc;
	if (t->has_fallback &&
	    (t->readiness_timeout_ms == 0 || t->readiness_timeout_ms == ZW_TIMEOUT_NONE))
		t->readiness_timeout_ms = DEFAULT_FALLBACK_READINESS_MS;
	return 0;
}

/* Decides whether trigger i is a zerowire routing trigger. Returns 1 with
 * *src and *meta set, 0 for other triggers, or EINVAL. */
static int trigger_kind(struct pctx *c, const json_t *trig, size_t i, enum zw_target_source *src,
                        const json_t **meta)
{
	char p[PATH_LEN];
	const char *type;
	json_t *md;
	int rc;

	joini(p, "spec.triggers", i);
	if (!json_is_object(trig))
		return failf(c, "%s must be an object, not %s", p, jtype(trig));
	if ((rc = opt_string(c, trig, "type", p, &type)) < 0)
		return rc;
	if (!type)
		return 0;
	md = member(trig, "metadata");
	if (strcmp(type, "kedify-http") == 0) {
		c->trigger = (int)i;
		if (!md)
			return failf(c, "metadata is required");
		if (!json_is_object(md))
			return failf(c, "metadata must be an object, not %s", jtype(md));
		*src = ZW_SRC_KEDIFY;
	} else if (strcmp(type, "external-push") == 0) {
		if (!json_is_object(md) || !member(md, "service"))
			return 0;
		c->trigger = (int)i;
		if (member(md, "interceptorRoute"))
			return failf(c, "metadata.service cannot be combined with "
			                "metadata.interceptorRoute");
		if (member(md, "httpScaledObject"))
			return failf(c, "metadata.service cannot be combined with "
			                "metadata.httpScaledObject");
		*src = ZW_SRC_SCALEDOBJECT;
	} else {
		return 0;
	}
	c->trigger = -1;
	*meta = md;
	return 1;
}

static int scaledobject_parse(struct pctx *c, const json_t *so, struct zw_target **out,
                              size_t *n_out)
{
	struct zw_target *ts = NULL;
	struct so_common sc;
	enum zw_target_source src;
	const json_t *meta;
	json_t *spec, *triggers, *trig;
	size_t i, count = 0, n = 0;
	int rc;

	if ((rc = read_identity(c, so, "ScaledObject", NULL)) < 0)
		return rc;
	if ((rc = req_object(c, so, "spec", "", &spec)) < 0)
		return rc;
	if ((rc = opt_array(c, spec, "triggers", "spec", &triggers)) < 0)
		return rc;
	json_array_foreach(triggers, i, trig)
	{
		if ((rc = trigger_kind(c, trig, i, &src, &meta)) < 0)
			return rc;
		count += (size_t)rc;
	}
	if (count == 0)
		return 0;
	if ((rc = parse_so_common(c, spec, &sc)) < 0)
		return rc;
	if (!(ts = calloc(count, sizeof(*ts))))
		return ZW_TARGET_ENOMEM;
	json_array_foreach(triggers, i, trig)
	{
		struct zw_target *t = &ts[n];

		if (trigger_kind(c, trig, i, &src, &meta) != 1)
			continue;
		n++;
		target_init(t, src);
		if ((rc = read_identity(c, so, "ScaledObject", t)) < 0)
			goto fail;
		c->trigger = t->trigger_index = (int)i;
		t->min_replicas = (int)sc.min;
		t->max_replicas = (int)sc.max;
		if (set_str(&t->scaled_object, c->name) || set_str(&t->scale_name, sc.name) ||
		    set_str(&t->scale_kind, sc.kind) ||
		    set_str(&t->scale_api_version, sc.api_version)) {
			rc = ZW_TARGET_ENOMEM;
			goto fail;
		}
		if ((rc = parse_trigger(c, meta, t)) < 0)
			goto fail;
		c->trigger = -1;
	}
	*out = ts;
	*n_out = n;
	return 0;
fail:
	zw_target_array_free(ts, n);
	return rc;
}

static void enomem_message(char err[ZW_TARGET_ERRLEN], int rc)
{
	if (rc == ZW_TARGET_ENOMEM && err)
		snprintf(err, ZW_TARGET_ERRLEN, "out of memory");
}

int zw_target_parse_scaledobject(const json_t *so, struct zw_target **out, size_t *n_out,
                                 char err[ZW_TARGET_ERRLEN])
{
	struct pctx c = {.err = err, .trigger = -1};
	int rc;

	*out = NULL;
	*n_out = 0;
	if (err)
		err[0] = '\0';
	rc = scaledobject_parse(&c, so, out, n_out);
	enomem_message(err, rc);
	return rc;
}

/* ---- CRD pieces shared by HTTPScaledObject and InterceptorRoute ---- */

/* {port | portName} of a CRD object at base into ref. */
static int crd_port(struct pctx *c, const json_t *obj, const char *base, struct zw_service_ref *ref)
{
	char p[PATH_LEN], q[QUOTE_LEN];
	json_t *pv = member(obj, "port");
	const char *pn;
	int rc;

	if ((rc = opt_string(c, obj, "portName", base, &pn)) < 0)
		return rc;
	if (pv && pn)
		return failf(c, "%s.port and %s.portName are both set (exactly one is allowed)",
		             base, base);
	if (!pv && !pn)
		return failf(c, "%s.port or %s.portName is required", base, base);
	if (pn) {
		if (!valid_port_name(pn)) {
			join(p, base, "portName");
			return failf(c, "%s %s is not a valid port name", p, quote(pn, q));
		}
		return set_str(&ref->port_name, pn);
	}
	join(p, base, "port");
	if (!json_is_integer(pv))
		return failf(c, "%s must be an integer, not %s", p, jtype(pv));
	if (json_integer_value(pv) < 1 || json_integer_value(pv) > 65535)
		return failf(c, "%s %" JSON_INTEGER_FORMAT " is not a port number", p,
		             json_integer_value(pv));
	ref->port = (int)json_integer_value(pv);
	return 0;
}

/* A Service name field (required). */
static int crd_service(struct pctx *c, const json_t *obj, const char *key, const char *base,
                       const char *ns, struct zw_service_ref *ref)
{
	char p[PATH_LEN], q[QUOTE_LEN];
	const char *s;
	int rc;

	if ((rc = req_string(c, obj, key, base, &s)) < 0)
		return rc;
	if (!valid_service_name(s)) {
		join(p, base, key);
		return failf(c, "%s %s is not a valid Service name", p, quote(s, q));
	}
	if (set_str(&ref->name, s) || set_str(&ref->namespace, ns))
		return ZW_TARGET_ENOMEM;
	return 0;
}

/* A list of strings at obj[key], each passed to fn. */
static int crd_string_list(struct pctx *c, const json_t *obj, const char *key, const char *base,
                           struct zw_route_rule *r, item_fn fn)
{
	char p[PATH_LEN], pi[PATH_LEN];
	json_t *arr, *v;
	size_t i;
	int rc;

	if ((rc = opt_array(c, obj, key, base, &arr)) <= 0)
		return rc;
	join(p, base, key);
	json_array_foreach(arr, i, v)
	{
		joini(pi, p, i);
		if (!json_is_string(v))
			return failf(c, "%s must be a string, not %s", pi, jtype(v));
		if ((rc = fn(c, r, json_string_value(v), strlen(json_string_value(v)), pi)) < 0)
			return rc;
	}
	return 0;
}

/* headers: [{name, value? | valueWildcard? | valueRegex?}] */
static int crd_headers(struct pctx *c, const json_t *obj, const char *base, struct zw_route_rule *r)
{
	char p[PATH_LEN], pi[PATH_LEN];
	enum zw_header_match_kind kind;
	json_t *arr, *v;
	const char *name;
	struct mval vm;
	size_t i;
	int rc;

	if ((rc = opt_array(c, obj, "headers", base, &arr)) <= 0)
		return rc;
	join(p, base, "headers");
	json_array_foreach(arr, i, v)
	{
		joini(pi, p, i);
		if (!json_is_object(v))
			return failf(c, "%s must be an object, not %s", pi, jtype(v));
		if ((rc = req_string(c, v, "name", pi, &name)) < 0 ||
		    (rc = match_value(c, v, pi, true, &vm, &kind)) < 0)
			return rc;
		if ((rc = rule_add_header(c, r, name, vm.s, kind, pi)) < 0)
			return rc;
	}
	return 0;
}

/* One IR routing rule {hosts, paths[].value, headers}. */
static int crd_rule(struct pctx *c, const json_t *o, const char *base, struct zw_route_rule *r)
{
	char p[PATH_LEN], pi[PATH_LEN], pv[PATH_LEN];
	json_t *arr, *v;
	const char *s;
	size_t i;
	int rc;

	if (!json_is_object(o))
		return failf(c, "%s must be an object, not %s", base, jtype(o));
	if ((rc = crd_string_list(c, o, "hosts", base, r, rule_add_host)) < 0)
		return rc;
	if ((rc = opt_array(c, o, "paths", base, &arr)) < 0)
		return rc;
	join(p, base, "paths");
	json_array_foreach(arr, i, v)
	{
		joini(pi, p, i);
		if (!json_is_object(v))
			return failf(c, "%s must be an object, not %s", pi, jtype(v));
		if ((rc = req_string(c, v, "value", pi, &s)) < 0)
			return rc;
		join(pv, pi, "value");
		if ((rc = rule_add_path(c, r, s, strlen(s), pv)) < 0)
			return rc;
	}
	if ((rc = rule_default_path(r)) < 0)
		return rc;
	return crd_headers(c, o, base, r);
}

static int crd_rules(struct pctx *c, const json_t *obj, const char *key, const char *base,
                     struct zw_route_rule **rules, size_t *n)
{
	char p[PATH_LEN], pi[PATH_LEN];
	json_t *arr, *v;
	size_t i;
	int rc;

	if ((rc = opt_array(c, obj, key, base, &arr)) <= 0)
		return rc;
	join(p, base, key);
	if (json_array_size(arr) > ZW_TARGET_MAX_LIST)
		return too_many(c, p);
	if (json_array_size(arr) == 0)
		return 0;
	if (!(*rules = calloc(json_array_size(arr), sizeof(**rules))))
		return ZW_TARGET_ENOMEM;
	*n = json_array_size(arr);
	json_array_foreach(arr, i, v)
	{
		joini(pi, p, i);
		if ((rc = crd_rule(c, v, pi, &(*rules)[i])) < 0)
			return rc;
	}
	return 0;
}

/* StaticResponse {statusCode, body, bodyFromConfigMap {name, key}, headers}. */
static int crd_response(struct pctx *c, const json_t *o, const char *base, int def_status,
                        struct zw_static_response *sr)
{
	char p[PATH_LEN], ph[PATH_LEN];
	long long status = def_status;
	json_t *cm, *hdrs, *v;
	const char *body, *s, *key;
	int rc;

	if (!json_is_object(o))
		return failf(c, "%s must be an object, not %s", base, jtype(o));
	if ((rc = opt_int(c, o, "statusCode", base, 100, 599, &status)) < 0)
		return rc;
	sr->status = (int)status;
	if ((rc = opt_string(c, o, "body", base, &body)) < 0 ||
	    (rc = opt_object(c, o, "bodyFromConfigMap", base, &cm)) < 0 ||
	    (rc = opt_object(c, o, "headers", base, &hdrs)) < 0)
		return rc;
	if (body && cm)
		return failf(c, "%s: at most one of body or bodyFromConfigMap may be set", base);
	if (body && strlen(body) > ZW_TARGET_MAX_BODY)
		return failf(c, "%s.body is longer than %d bytes", base, ZW_TARGET_MAX_BODY);
	if (set_str(&sr->body, body))
		return ZW_TARGET_ENOMEM;
	if (cm) {
		join(p, base, "bodyFromConfigMap");
		if ((rc = req_string(c, cm, "name", p, &s)) < 0)
			return rc;
		if (!valid_object_name(s))
			return failf(c, "%s.name \"%.64s\" is not a valid ConfigMap name", p, s);
		if (set_str(&sr->body_configmap, s))
			return ZW_TARGET_ENOMEM;
		if ((rc = opt_string(c, cm, "key", p, &s)) < 0)
			return rc;
		if (s && *s && !valid_configmap_key(s))
			return failf(c, "%s.key \"%.64s\" is not a valid ConfigMap key", p, s);
		if (s && *s && set_str(&sr->body_configmap_key, s))
			return ZW_TARGET_ENOMEM;
	}
	join(p, base, "headers");
	json_object_foreach(hdrs, key, v)
	{
		join(ph, p, key);
		if (!json_is_string(v))
			return failf(c, "%s must be a string, not %s", ph, jtype(v));
		if ((rc = sr_add_header(c, sr, key, json_string_value(v), p)) < 0)
			return rc;
	}
	return 0;
}

/* ServiceRef {name, port | portName} (InterceptorRoute coldStart.fallback.service). */
static int crd_service_ref(struct pctx *c, const json_t *o, const char *base, const char *ns,
                           struct zw_service_ref *ref)
{
	int rc;

	if ((rc = crd_service(c, o, "name", base, ns, ref)) < 0)
		return rc;
	return crd_port(c, o, base, ref);
}

/* A metric block's targetValue (int >= 1; default 100 unless required, as
 * for InterceptorRoute) into *target; marks the metric bit. */
static int crd_target_value(struct pctx *c, const json_t *m, const char *base, bool required,
                            unsigned bit, double *target, struct zw_target *t)
{
	long long v = (long long)DEFAULT_TARGET_VALUE;
	int rc;

	if ((rc = opt_int(c, m, "targetValue", base, 1, INT32_MAX, &v)) < 0)
		return rc;
	if (rc == 0 && required)
		return failf(c, "%s.targetValue is required", base);
	*target = (double)v;
	t->metrics |= bit;
	return 0;
}

/* requestRate {targetValue, window, granularity}. */
static int crd_request_rate(struct pctx *c, const json_t *rr, const char *base,
                            bool target_required, struct zw_target *t)
{
	char pw[PATH_LEN], pg[PATH_LEN];
	int rc;

	if ((rc = crd_target_value(c, rr, base, target_required, ZW_METRIC_REQUEST_RATE,
	                           &t->rate_target, t)) < 0 ||
	    (rc = opt_duration(c, rr, "window", base, false, &t->window_ms)) < 0 ||
	    (rc = opt_duration(c, rr, "granularity", base, false, &t->granularity_ms)) < 0)
		return rc;
	join(pw, base, "window");
	join(pg, base, "granularity");
	return check_window(c, pw, pg, t);
}

static int crd_concurrency(struct pctx *c, const json_t *cc, const char *base, bool target_required,
                           struct zw_target *t)
{
	return crd_target_value(c, cc, base, target_required, ZW_METRIC_CONCURRENCY,
	                        &t->concurrency_target, t);
}

/* Kedify annotations an HTTPScaledObject may carry: traffic-autowire and
 * healthcheck-path/-response. */
static int hso_annotations(struct pctx *c, const json_t *ann, struct zw_target *t)
{
	char q[QUOTE_LEN];
	const char *skip, *aw, *hcp, *hcr;
	const char *base = "metadata.annotations";
	int rc;

	if ((rc = opt_string(c, ann, SKIP_SO_ANNOTATION, base, &skip)) < 0 ||
	    (rc = opt_string(c, ann, KEDIFY_AUTOWIRE_ANNOT, base, &aw)) < 0 ||
	    (rc = opt_string(c, ann, KEDIFY_HC_PATH_ANNOT, base, &hcp)) < 0 ||
	    (rc = opt_string(c, ann, KEDIFY_HC_RESPONSE_ANNOT, base, &hcr)) < 0)
		return rc;
	t->skip_scaledobject = skip && strcasecmp(skip, "true") == 0;
	if (aw && (rc = autowire_set(c, aw, "metadata.annotations." KEDIFY_AUTOWIRE_ANNOT, t)) < 0)
		return rc;
	if (hcp && *hcp) {
		const char *why = NULL;
		rc = path_norm(hcp, strlen(hcp), &t->healthcheck_path, &why);
		if (rc == -1)
			return failf(c, "metadata.annotations.%s %s is not a valid path: it %s",
			             KEDIFY_HC_PATH_ANNOT, quote(hcp, q), why);
		if (rc < 0)
			return rc;
		t->healthcheck_response = ZW_HC_PASSTHROUGH;
		if (hcr && strcasecmp(hcr, "static") == 0)
			t->healthcheck_response = ZW_HC_STATIC;
		else if (hcr && *hcr && strcasecmp(hcr, "passthrough") != 0)
			return failf(c, "metadata.annotations.%s %s must be passthrough or static",
			             KEDIFY_HC_RESPONSE_ANNOT, quote(hcr, q));
	}
	return 0;
}

/* ---- HTTPScaledObject ---- */

static int hso_parse(struct pctx *c, const json_t *obj, struct zw_target *t)
{
	json_t *spec, *ref, *fo, *reps, *sm, *cc = NULL, *rr = NULL, *to, *ann;
	long long v, pending = 0;
	uint64_t ms;
	const char *s;
	int rc;

	target_init(t, ZW_SRC_HTTPSCALEDOBJECT);
	if ((rc = read_identity(c, obj, "HTTPScaledObject", t)) < 0)
		return rc;
	if ((rc = opt_object(c, member(obj, "metadata"), "annotations", "metadata", &ann)) < 0 ||
	    (rc = hso_annotations(c, ann, t)) < 0)
		return rc;
	if ((rc = req_object(c, obj, "spec", "", &spec)) < 0)
		return rc;

	/* scaleTargetRef: workload and Service */
	if ((rc = req_object(c, spec, "scaleTargetRef", "spec", &ref)) < 0)
		return rc;
	if ((rc = crd_service(c, ref, "service", "spec.scaleTargetRef", t->namespace,
	                      &t->service)) < 0 ||
	    (rc = crd_port(c, ref, "spec.scaleTargetRef", &t->service)) < 0)
		return rc;
	if ((rc = opt_string(c, ref, "name", "spec.scaleTargetRef", &s)) < 0)
		return rc;
	if ((!s || !*s) && !t->skip_scaledobject)
		return failf(c, "spec.scaleTargetRef.name is required");
	if (s && *s && set_str(&t->scale_name, s))
		return ZW_TARGET_ENOMEM;
	if ((rc = opt_string(c, ref, "kind", "spec.scaleTargetRef", &s)) < 0 ||
	    set_str(&t->scale_kind, s && *s ? s : DEFAULT_SCALE_KIND))
		return rc < 0 ? rc : ZW_TARGET_ENOMEM;
	if ((rc = opt_string(c, ref, "apiVersion", "spec.scaleTargetRef", &s)) < 0 ||
	    set_str(&t->scale_api_version, s && *s ? s : DEFAULT_SCALE_API_VERSION))
		return rc < 0 ? rc : ZW_TARGET_ENOMEM;
	if (!t->skip_scaledobject && set_str(&t->scaled_object, t->name))
		return ZW_TARGET_ENOMEM;

	/* routing: one rule */
	if (!(t->rules = calloc(1, sizeof(*t->rules))))
		return ZW_TARGET_ENOMEM;
	t->n_rules = 1;
	if ((rc = crd_string_list(c, spec, "hosts", "spec", t->rules, rule_add_host)) < 0 ||
	    (rc = crd_string_list(c, spec, "pathPrefixes", "spec", t->rules, rule_add_path)) < 0 ||
	    (rc = rule_default_path(t->rules)) < 0 ||
	    (rc = crd_headers(c, spec, "spec", t->rules)) < 0)
		return rc;

	/* replicas and KEDA periods */
	if ((rc = opt_object(c, spec, "replicas", "spec", &reps)) < 0)
		return rc;
	v = DEFAULT_MIN_REPLICAS;
	if ((rc = opt_int(c, reps, "min", "spec.replicas", 0, INT32_MAX, &v)) < 0)
		return rc;
	t->min_replicas = (int)v;
	v = DEFAULT_MAX_REPLICAS;
	if ((rc = opt_int(c, reps, "max", "spec.replicas", 0, INT32_MAX, &v)) < 0)
		return rc;
	t->max_replicas = (int)v;
	if (t->min_replicas > t->max_replicas)
		return failf(c, "spec.replicas.min %d is greater than spec.replicas.max %d",
		             t->min_replicas, t->max_replicas);
	v = -1;
	if ((rc = opt_int(c, spec, "scaledownPeriod", "spec", 0, INT32_MAX, &v)) < 0)
		return rc;
	t->cooldown_period = (int)v;
	v = -1;
	if ((rc = opt_int(c, spec, "initialCooldownPeriod", "spec", 0, INT32_MAX, &v)) < 0)
		return rc;
	t->initial_cooldown_period = (int)v;

	/* metric */
	if ((rc = opt_int(c, spec, "targetPendingRequests", "spec", 1, INT32_MAX, &pending)) < 0 ||
	    (rc = opt_object(c, spec, "scalingMetric", "spec", &sm)) < 0 ||
	    (rc = opt_object(c, sm, "concurrency", "spec.scalingMetric", &cc)) < 0 ||
	    (rc = opt_object(c, sm, "requestRate", "spec.scalingMetric", &rr)) < 0)
		return rc;
	if (cc && rr)
		return failf(c, "spec.scalingMetric: concurrency and requestRate are mutually "
		                "exclusive");
	if (cc)
		rc = crd_concurrency(c, cc, "spec.scalingMetric.concurrency", false, t);
	else if (rr)
		rc = crd_request_rate(c, rr, "spec.scalingMetric.requestRate", false, t);
	else {
		/* deprecated targetPendingRequests: a concurrency target */
		t->metrics = ZW_METRIC_CONCURRENCY;
		if (pending)
			t->concurrency_target = (double)pending;
	}
	if (rc < 0)
		return rc;

	/* timeouts and failover */
	if ((rc = opt_object(c, spec, "timeouts", "spec", &to)) < 0 ||
	    (rc = opt_duration(c, to, "conditionWait", "spec.timeouts", true,
	                       &t->readiness_timeout_ms)) < 0 ||
	    (rc = opt_duration(c, to, "responseHeader", "spec.timeouts", true,
	                       &t->response_header_timeout_ms)) < 0)
		return rc;
	if ((rc = opt_object(c, spec, "coldStartTimeoutFailoverRef", "spec", &fo)) < 0)
		return rc;
	if (fo) {
		const char *base = "spec.coldStartTimeoutFailoverRef";
		if ((rc = crd_service(c, fo, "service", base, t->namespace, &t->fallback)) < 0 ||
		    (rc = crd_port(c, fo, base, &t->fallback)) < 0)
			return rc;
		v = DEFAULT_FAILOVER_SECONDS;
		if ((rc = opt_int(c, fo, "timeoutSeconds", base, 0, INT32_MAX, &v)) < 0)
			return rc;
		ms = (uint64_t)v * 1000u;
		t->has_fallback = true;
		t->readiness_timeout_ms = ms ? ms : DEFAULT_FALLBACK_READINESS_MS;
	}
	return 0;
}

/* Runs a single-object parser with one error path for both CRD kinds. */
static int parse_single(int (*parse)(struct pctx *, const json_t *, struct zw_target *),
                        const json_t *obj, struct zw_target *out, char err[ZW_TARGET_ERRLEN])
{
	struct pctx c = {.err = err, .trigger = -1};
	int rc;

	if (err)
		err[0] = '\0';
	rc = parse(&c, obj, out);
	if (rc < 0) {
		zw_target_free(out);
		enomem_message(err, rc);
	}
	return rc;
}

int zw_target_parse_httpscaledobject(const json_t *obj, struct zw_target *out,
                                     char err[ZW_TARGET_ERRLEN])
{
	return parse_single(hso_parse, obj, out, err);
}

/* ---- InterceptorRoute ---- */

static int ir_cold_start(struct pctx *c, const json_t *cs, struct zw_target *t)
{
	const char *base = "spec.coldStart";
	json_t *fb, *fsvc, *ph, *resp;
	long long v;
	const char *ov;
	char q[QUOTE_LEN];
	int rc;

	if ((rc = opt_object(c, cs, "fallback", base, &fb)) < 0 ||
	    (rc = opt_object(c, cs, "placeholder", base, &ph)) < 0)
		return rc;
	if (fb) {
		if ((rc = opt_object(c, fb, "service", "spec.coldStart.fallback", &fsvc)) < 0)
			return rc;
		if (!fsvc)
			return failf(c, "spec.coldStart.fallback.service is required");
		if ((rc = crd_service_ref(c, fsvc, "spec.coldStart.fallback.service", t->namespace,
		                          &t->fallback)) < 0)
			return rc;
		t->has_fallback = true;
	}
	if (ph) {
		if (!(resp = member(ph, "response")))
			return failf(c, "spec.coldStart.placeholder.response is required");
		if ((rc = crd_response(c, resp, "spec.coldStart.placeholder.response",
		                       DEFAULT_PLACEHOLDER_STATUS, &t->placeholder)) < 0)
			return rc;
		t->has_placeholder = true;
	}
	if ((rc = opt_int(c, cs, "maxPendingRequests", base, 1, ZW_TARGET_MAX_PENDING, &v)) < 0)
		return rc;
	if (rc)
		t->max_pending = (uint32_t)v;
	if ((rc = opt_string(c, cs, "overflow", base, &ov)) < 0)
		return rc;
	if (ov && strcmp(ov, "Placeholder") == 0)
		t->overflow_placeholder = true;
	else if (ov && strcmp(ov, "Reject") != 0)
		return failf(c, "spec.coldStart.overflow %s must be Reject or Placeholder",
		             quote(ov, q));
	if (t->overflow_placeholder && !t->has_placeholder)
		return failf(
		        c, "spec.coldStart.overflow Placeholder needs spec.coldStart.placeholder");
	if (!fb && !ph && !t->max_pending)
		return failf(c, "spec.coldStart needs at least one of fallback, placeholder or "
		                "maxPendingRequests");
	return 0;
}

static int ir_static_routes(struct pctx *c, const json_t *spec, struct zw_target *t)
{
	char p[PATH_LEN], pr[PATH_LEN], q[QUOTE_LEN];
	json_t *arr, *v, *resp;
	const char *mode;
	size_t i;
	int rc;

	if ((rc = opt_array(c, spec, "staticRoutes", "spec", &arr)) <= 0)
		return rc;
	if (json_array_size(arr) > ZW_TARGET_MAX_LIST)
		return too_many(c, "spec.staticRoutes");
	if (json_array_size(arr) == 0)
		return 0;
	if (!(t->static_routes = calloc(json_array_size(arr), sizeof(*t->static_routes))))
		return ZW_TARGET_ENOMEM;
	t->n_static_routes = json_array_size(arr);
	json_array_foreach(arr, i, v)
	{
		struct zw_static_route *sr = &t->static_routes[i];

		joini(p, "spec.staticRoutes", i);
		if (!json_is_object(v))
			return failf(c, "%s must be an object, not %s", p, jtype(v));
		if ((rc = crd_rules(c, v, "rules", p, &sr->rules, &sr->n_rules)) < 0)
			return rc;
		if (sr->n_rules == 0)
			return failf(c, "%s.rules needs at least one rule", p);
		if (!(resp = member(v, "response")))
			return failf(c, "%s.response is required", p);
		join(pr, p, "response");
		if ((rc = crd_response(c, resp, pr, DEFAULT_STATIC_STATUS, &sr->response)) < 0)
			return rc;
		if ((rc = opt_string(c, v, "responseMode", p, &mode)) < 0)
			return rc;
		if (mode && strcmp(mode, "Always") == 0)
			sr->always = true;
		else if (mode && strcmp(mode, "WhenUnavailable") != 0)
			return failf(c, "%s.responseMode %s must be Always or WhenUnavailable", p,
			             quote(mode, q));
	}
	return 0;
}

static int ir_parse(struct pctx *c, const json_t *obj, struct zw_target *t)
{
	json_t *spec, *tgt, *sm, *cc, *rr, *cs, *to;
	int rc;

	target_init(t, ZW_SRC_INTERCEPTORROUTE);
	if ((rc = read_identity(c, obj, "InterceptorRoute", t)) < 0)
		return rc;
	if ((rc = req_object(c, obj, "spec", "", &spec)) < 0)
		return rc;
	if ((rc = req_object(c, spec, "target", "spec", &tgt)) < 0)
		return rc;
	if ((rc = crd_service(c, tgt, "service", "spec.target", t->namespace, &t->service)) < 0 ||
	    (rc = crd_port(c, tgt, "spec.target", &t->service)) < 0)
		return rc;
	if ((rc = crd_rules(c, spec, "rules", "spec", &t->rules, &t->n_rules)) < 0)
		return rc;

	if ((rc = req_object(c, spec, "scalingMetric", "spec", &sm)) < 0)
		return rc;
	if ((rc = opt_object(c, sm, "concurrency", "spec.scalingMetric", &cc)) < 0 ||
	    (rc = opt_object(c, sm, "requestRate", "spec.scalingMetric", &rr)) < 0)
		return rc;
	if (!cc && !rr)
		return failf(c, "spec.scalingMetric needs concurrency or requestRate (or both)");
	if ((cc && (rc = crd_concurrency(c, cc, "spec.scalingMetric.concurrency", true, t)) < 0) ||
	    (rr && (rc = crd_request_rate(c, rr, "spec.scalingMetric.requestRate", true, t)) < 0))
		return rc;

	if ((rc = opt_object(c, spec, "coldStart", "spec", &cs)) < 0 ||
	    (cs && (rc = ir_cold_start(c, cs, t)) < 0))
		return rc;
	if ((rc = opt_object(c, spec, "timeouts", "spec", &to)) < 0 ||
	    (rc = opt_duration(c, to, "readiness", "spec.timeouts", true,
	                       &t->readiness_timeout_ms)) < 0 ||
	    (rc = opt_duration(c, to, "request", "spec.timeouts", true, &t->request_timeout_ms)) <
	            0 ||
	    (rc = opt_duration(c, to, "responseHeader", "spec.timeouts", true,
	                       &t->response_header_timeout_ms)) < 0)
		return rc;
	if (t->has_fallback &&
	    (t->readiness_timeout_ms == 0 || t->readiness_timeout_ms == ZW_TIMEOUT_NONE))
		t->readiness_timeout_ms = DEFAULT_FALLBACK_READINESS_MS;
	return ir_static_routes(c, spec, t);
}

int zw_target_parse_interceptorroute(const json_t *obj, struct zw_target *out,
                                     char err[ZW_TARGET_ERRLEN])
{
	return parse_single(ir_parse, obj, out, err);
}

/* ---- dispatch ---- */

int zw_target_parse_object(const json_t *obj, struct zw_target **out, size_t *n_out,
                           char err[ZW_TARGET_ERRLEN])
{
	struct pctx c = {.err = err, .trigger = -1};
	const char *api, *kind, *version;
	json_t *a = member(obj, "apiVersion"), *k = member(obj, "kind");
	struct zw_target *t;
	int rc;

	*out = NULL;
	*n_out = 0;
	if (err)
		err[0] = '\0';
	if (!json_is_string(a) || !json_is_string(k))
		return ZW_TARGET_ENOTARGET;
	api = json_string_value(a);
	kind = json_string_value(k);
	if (zw_api_group_is(api, "keda.sh", &version) && strcmp(kind, "ScaledObject") == 0) {
		if (strcmp(version, "v1alpha1") != 0) {
			read_identity(&c, obj, kind, NULL);
			return failf(&c, "apiVersion %s is not supported (keda.sh/v1alpha1 is)",
			             api);
		}
		return zw_target_parse_scaledobject(obj, out, n_out, err);
	}
	if (!zw_api_group_is(api, "http.keda.sh", &version) ||
	    (strcmp(kind, "HTTPScaledObject") != 0 && strcmp(kind, "InterceptorRoute") != 0))
		return ZW_TARGET_ENOTARGET;
	if (strcmp(kind, "HTTPScaledObject") == 0 && strcmp(version, "v1alpha1") != 0) {
		read_identity(&c, obj, kind, NULL);
		return failf(&c, "apiVersion %s is not supported (http.keda.sh/v1alpha1 is)", api);
	}
	if (strcmp(kind, "InterceptorRoute") == 0 && strcmp(version, "v1beta1") != 0) {
		read_identity(&c, obj, kind, NULL);
		return failf(&c, "apiVersion %s is not supported (http.keda.sh/v1beta1 is)", api);
	}
	if (!(t = calloc(1, sizeof(*t)))) {
		enomem_message(err, ZW_TARGET_ENOMEM);
		return ZW_TARGET_ENOMEM;
	}
	if (strcmp(kind, "HTTPScaledObject") == 0)
		rc = zw_target_parse_httpscaledobject(obj, t, err);
	else
		rc = zw_target_parse_interceptorroute(obj, t, err);
	if (rc < 0) {
		free(t);
		return rc;
	}
	*out = t;
	*n_out = 1;
	return 0;
}

/* ---- ScaledObject references (interceptorRoute / httpScaledObject) ---- */

/* Finds the first external-push trigger of so naming an IR or HSO. */
static int so_ref(const json_t *so, enum zw_target_source *kind, const char **name)
{
	json_t *triggers = member(member(so, "spec"), "triggers"), *trig;
	size_t i;

	json_array_foreach(triggers, i, trig)
	{
		json_t *type = member(trig, "type"), *md = member(trig, "metadata"), *v;

		if (!json_is_string(type) || strcmp(json_string_value(type), "external-push") != 0)
			continue;
		if (json_is_string(v = member(md, "interceptorRoute")) && *json_string_value(v)) {
			*kind = ZW_SRC_INTERCEPTORROUTE;
			*name = json_string_value(v);
			return 1;
		}
		if (json_is_string(v = member(md, "httpScaledObject")) && *json_string_value(v)) {
			*kind = ZW_SRC_HTTPSCALEDOBJECT;
			*name = json_string_value(v);
			return 1;
		}
	}
	return 0;
}

int zw_target_scaledobject_ref(const json_t *so, enum zw_target_source *kind_out,
                               const char **name_out)
{
	return so_ref(so, kind_out, name_out);
}

/* Does an external-push trigger of so name `name` under metadata key `key`? */
static bool so_names(const json_t *so, const char *key, const char *name)
{
	json_t *triggers = member(member(so, "spec"), "triggers"), *trig;
	size_t i;

	json_array_foreach(triggers, i, trig)
	{
		json_t *type = member(trig, "type"), *v = member(member(trig, "metadata"), key);

		if (json_is_string(type) && strcmp(json_string_value(type), "external-push") == 0 &&
		    json_is_string(v) && strcmp(json_string_value(v), name) == 0)
			return true;
	}
	return false;
}

int zw_target_link_scaledobject(struct zw_target *t, const json_t *so)
{
	json_t *md = member(so, "metadata"), *spec = member(so, "spec"), *ref, *ns, *name, *v;
	char *so_name = NULL, *sname = NULL, *skind = NULL, *sapi = NULL;
	const char *key, *kind = DEFAULT_SCALE_KIND, *api = DEFAULT_SCALE_API_VERSION;
	int min = DEFAULT_MIN_REPLICAS, max = DEFAULT_MAX_REPLICAS;

	if (t->source == ZW_SRC_INTERCEPTORROUTE)
		key = "interceptorRoute";
	else if (t->source == ZW_SRC_HTTPSCALEDOBJECT)
		key = "httpScaledObject";
	else
		return 0;
	ns = member(md, "namespace");
	name = member(md, "name");
	if (!json_is_string(name) || !t->name || !t->namespace)
		return 0;
	if (strcmp(json_is_string(ns) && *json_string_value(ns) ? json_string_value(ns) : "default",
	           t->namespace) != 0)
		return 0;
	if (!so_names(so, key, t->name))
		return 0;
	ref = member(spec, "scaleTargetRef");
	if (json_is_string(v = member(ref, "kind")) && *json_string_value(v))
		kind = json_string_value(v);
	if (json_is_string(v = member(ref, "apiVersion")) && *json_string_value(v))
		api = json_string_value(v);
	if (json_is_integer(v = member(spec, "minReplicaCount")) && json_integer_value(v) >= 0 &&
	    json_integer_value(v) <= INT32_MAX)
		min = (int)json_integer_value(v);
	if (json_is_integer(v = member(spec, "maxReplicaCount")) && json_integer_value(v) >= 0 &&
	    json_integer_value(v) <= INT32_MAX)
		max = (int)json_integer_value(v);
	v = member(ref, "name");
	so_name = dup0(json_string_value(name));
	sname = json_is_string(v) ? dup0(json_string_value(v)) : NULL;
	skind = dup0(kind);
	sapi = dup0(api);
	if (!so_name || (json_is_string(v) && !sname) || !skind || !sapi) {
		free(so_name);
		free(sname);
		free(skind);
		free(sapi);
		return ZW_TARGET_ENOMEM;
	}
	free(t->scaled_object);
	free(t->scale_name);
	free(t->scale_kind);
	free(t->scale_api_version);
	t->scaled_object = so_name;
	t->scale_name = sname;
	t->scale_kind = skind;
	t->scale_api_version = sapi;
	t->min_replicas = min;
	t->max_replicas = max;
	return 1;
}

/* ---- small helpers ---- */

const char *zw_target_source_kind(enum zw_target_source src)
{
	switch (src) {
	case ZW_SRC_SCALEDOBJECT:
	case ZW_SRC_KEDIFY:
		return "ScaledObject";
	case ZW_SRC_INTERCEPTORROUTE:
		return "InterceptorRoute";
	case ZW_SRC_HTTPSCALEDOBJECT:
		return "HTTPScaledObject";
	}
	return "unknown";
}

size_t zw_target_key(const struct zw_target *t, char *buf, size_t len)
{
	int n;

	if (!buf || len == 0)
		return 0;
	if (t->trigger_index >= 0)
		n = snprintf(buf, len, "%s/%s/%d", t->namespace ? t->namespace : "",
		             t->name ? t->name : "", t->trigger_index);
	else
		n = snprintf(buf, len, "%s/%s", t->namespace ? t->namespace : "",
		             t->name ? t->name : "");
	if (n < 0) {
		buf[0] = '\0';
		return 0;
	}
	return (size_t)n < len ? (size_t)n : len - 1;
}
