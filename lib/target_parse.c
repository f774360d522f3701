/* The parsing kit shared by the target source parsers: messages, strict
 * JSON readers, validators, owned strings, identity, durations, windows and
 * trafficAutowire words. See target_parse.h. */
#include "target_parse.h"

#include "duration.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int zw_tp_failf(struct zw_tp_ctx *c, const char *fmt, ...)
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

const char *zw_tp_quoten(const char *s, size_t len, char buf[ZW_TP_QUOTE_LEN])
{
	size_t o = 0, i;

	buf[o++] = '"';
	for (i = 0; i < len && o < ZW_TP_QUOTE_LEN - 5; i++) {
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

const char *zw_tp_quote(const char *s, char buf[ZW_TP_QUOTE_LEN])
{
	return zw_tp_quoten(s, strlen(s), buf);
}

const char *zw_tp_jtype(const json_t *v)
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

json_t *zw_tp_member(const json_t *obj, const char *key)
{
	json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;

	return (v && json_is_null(v)) ? NULL : v;
}

void zw_tp_path_fit(char out[ZW_TP_PATH_LEN], int n)
{
	if (n >= ZW_TP_PATH_LEN)
		memcpy(out + ZW_TP_PATH_LEN - 4, "...", 4);
}

void zw_tp_join(char out[ZW_TP_PATH_LEN], const char *base, const char *key)
{
	zw_tp_path_fit(out, snprintf(out, ZW_TP_PATH_LEN, "%s%s%s", base, *base ? "." : "", key));
}

void zw_tp_joini(char out[ZW_TP_PATH_LEN], const char *base, size_t i)
{
	zw_tp_path_fit(out, snprintf(out, ZW_TP_PATH_LEN, "%s[%zu]", base, i));
}

static int opt_typed(struct zw_tp_ctx *c, const json_t *obj, const char *key, const char *base,
                     json_type type, const char *want, json_t **out)
{
	char p[ZW_TP_PATH_LEN];
	json_t *v = zw_tp_member(obj, key);

	*out = NULL;
	if (!v)
		return 0;
	if (json_typeof(v) != type) {
		zw_tp_join(p, base, key);
		return zw_tp_failf(c, "%s must be %s, not %s", p, want, zw_tp_jtype(v));
	}
	*out = v;
	return 1;
}

int zw_tp_opt_object(struct zw_tp_ctx *c, const json_t *obj, const char *key, const char *base,
                     json_t **out)
{
	return opt_typed(c, obj, key, base, JSON_OBJECT, "an object", out);
}

int zw_tp_opt_array(struct zw_tp_ctx *c, const json_t *obj, const char *key, const char *base,
                    json_t **out)
{
	return opt_typed(c, obj, key, base, JSON_ARRAY, "an array", out);
}

int zw_tp_req_object(struct zw_tp_ctx *c, const json_t *obj, const char *key, const char *base,
                     json_t **out)
{
	char p[ZW_TP_PATH_LEN];
	int rc = zw_tp_opt_object(c, obj, key, base, out);

	if (rc == 0) {
		zw_tp_join(p, base, key);
		return zw_tp_failf(c, "%s is required", p);
	}
	return rc < 0 ? rc : 0;
}

int zw_tp_opt_string(struct zw_tp_ctx *c, const json_t *obj, const char *key, const char *base,
                     const char **out)
{
	json_t *v;
	int rc = opt_typed(c, obj, key, base, JSON_STRING, "a string", &v);

	*out = rc > 0 ? json_string_value(v) : NULL;
	return rc;
}

int zw_tp_opt_int(struct zw_tp_ctx *c, const json_t *obj, const char *key, const char *base,
                  long long min, long long max, long long *out)
{
	char p[ZW_TP_PATH_LEN];
	json_t *v;
	long long n;
	int rc = opt_typed(c, obj, key, base, JSON_INTEGER, "an integer", &v);

	if (rc <= 0)
		return rc;
	n = (long long)json_integer_value(v);
	if (n < min || n > max) {
		zw_tp_join(p, base, key);
		if (max == INT32_MAX)
			return zw_tp_failf(c, "%s %lld must be at least %lld", p, n, min);
		return zw_tp_failf(c, "%s %lld is out of range (%lld..%lld)", p, n, min, max);
	}
	*out = n;
	return 1;
}

int zw_tp_req_string(struct zw_tp_ctx *c, const json_t *obj, const char *key, const char *base,
                     const char **out)
{
	char p[ZW_TP_PATH_LEN];
	int rc = zw_tp_opt_string(c, obj, key, base, out);

	if (rc < 0)
		return rc;
	if (rc == 0 || !**out) {
		zw_tp_join(p, base, key);
		return zw_tp_failf(c, "%s is required", p);
	}
	return 0;
}

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

bool zw_tp_all_digits(const char *s, size_t len)
{
	return all_bytes(s, len, is_digit);
}

bool zw_tp_valid_service_name(const char *s)
{
	size_t len = strlen(s);

	return len <= 63 && all_bytes(s, len, is_label) && islower((unsigned char)s[0]) &&
	       s[len - 1] != '-';
}

bool zw_tp_valid_object_name(const char *s)
{
	size_t len = strlen(s);

	return len <= 253 && all_bytes(s, len, is_subdomain) && isalnum((unsigned char)s[0]) &&
	       isalnum((unsigned char)s[len - 1]);
}

bool zw_tp_valid_configmap_key(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > 253 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

bool zw_tp_valid_port_name(const char *s)
{
	size_t len = strlen(s);

	return len <= 63 && all_bytes(s, len, is_label);
}

int zw_tp_parse_port_text(const char *s, int *out)
{
	size_t len = strlen(s);
	long v = 0;

	if (!zw_tp_all_digits(s, len) || len > 5)
		return -1;
	for (size_t i = 0; i < len; i++)
		v = v * 10 + (s[i] - '0');
	if (v < 1 || v > 65535)
		return -1;
	*out = (int)v;
	return 0;
}

int zw_tp_parse_positive(const char *s, double *out)
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

int zw_tp_parse_uint_text(const char *s, unsigned long long max, unsigned long long *out)
{
	size_t len = strlen(s);
	unsigned long long v = 0;

	if (!zw_tp_all_digits(s, len) || len > 19)
		return -1;
	for (size_t i = 0; i < len; i++)
		v = v * 10 + (unsigned)(s[i] - '0');
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

bool zw_tp_valid_header_name(const char *s)
{
	size_t len = strlen(s);

	return len <= ZW_TARGET_MAX_HDRNAME && all_bytes(s, len, is_tchar);
}

bool zw_tp_valid_header_value(const char *s)
{
	size_t len = strlen(s);

	return len <= ZW_TARGET_MAX_HDRVAL && (len == 0 || all_bytes(s, len, is_field_byte));
}

const char *zw_tp_trim(const char *s, size_t *len)
{
	while (*len && isspace((unsigned char)s[0])) {
		s++;
		(*len)--;
	}
	while (*len && isspace((unsigned char)s[*len - 1]))
		(*len)--;
	return s;
}

char *zw_tp_dupn(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *zw_tp_dup0(const char *s)
{
	return s ? zw_tp_dupn(s, strlen(s)) : NULL;
}

int zw_tp_set_str(char **dst, const char *s)
{
	char *p = NULL;

	if (s && !(p = zw_tp_dup0(s)))
		return ZW_TARGET_ENOMEM;
	free(*dst);
	*dst = p;
	return 0;
}

int zw_tp_strv_push(char ***v, size_t *n, char *s)
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

bool zw_tp_strv_has(char **v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

void zw_tp_strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

int zw_tp_scalar_text(const json_t *v, struct zw_tp_mval *m)
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
		const char *w = zw_tp_trim(s, &len);
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

int zw_tp_autowire_set(struct zw_tp_ctx *c, const char *value, const char *field,
                       struct zw_target *t)
{
	char q[ZW_TP_QUOTE_LEN], q2[ZW_TP_QUOTE_LEN];
	const char *bad = NULL;
	size_t badlen = 0;
	int rc = autowire_words(value, &t->autowire, &t->autowire_ignored, &bad, &badlen);

	if (rc == AW_BAD_WORD)
		return zw_tp_failf(
		        c,
		        "%s %s: unknown kind %s (expected ingress, httproute, grpcroute, "
		        "virtualservice, gloo, route, service, true or false)",
		        field, zw_tp_quote(value, q), zw_tp_quoten(bad, badlen, q2));
	if (rc == AW_FALSE_MIXED)
		return zw_tp_failf(c, "%s %s: \"false\" cannot be combined with other kinds", field,
		                   zw_tp_quote(value, q));
	return 0;
}

int zw_tp_opt_duration(struct zw_tp_ctx *c, const json_t *obj, const char *key, const char *base,
                       bool timeout, uint64_t *out)
{
	char p[ZW_TP_PATH_LEN], q[ZW_TP_QUOTE_LEN];
	const char *s;
	uint64_t ms;
	int rc = zw_tp_opt_string(c, obj, key, base, &s);

	if (rc <= 0)
		return rc;
	zw_tp_join(p, base, key);
	if (zw_duration_parse_ms(s, &ms) < 0)
		return zw_tp_failf(c, "%s %s is not a duration (e.g. 30s, 1m, 1h30m)", p,
		                   zw_tp_quote(s, q));
	*out = (timeout && ms == 0) ? ZW_TIMEOUT_NONE : ms;
	return 1;
}

int zw_tp_check_window(struct zw_tp_ctx *c, const char *wfield, const char *gfield,
                       const struct zw_target *t)
{
	if (t->window_ms == 0)
		return zw_tp_failf(c, "%s must be greater than 0", wfield);
	if (t->granularity_ms == 0)
		return zw_tp_failf(c, "%s must be greater than 0", gfield);
	if (t->window_ms < t->granularity_ms)
		return zw_tp_failf(c, "%s (%" PRIu64 "ms) is shorter than %s (%" PRIu64 "ms)",
		                   wfield, t->window_ms, gfield, t->granularity_ms);
	if ((t->window_ms + t->granularity_ms - 1) / t->granularity_ms > ZW_TARGET_MAX_BUCKETS)
		return zw_tp_failf(c, "%s / %s gives more than %d buckets", wfield, gfield,
		                   ZW_TARGET_MAX_BUCKETS);
	return 0;
}

int zw_tp_read_identity(struct zw_tp_ctx *c, const json_t *obj, const char *kind,
                        struct zw_target *t)
{
	json_t *md;
	const char *s;
	int rc;

	c->kind = kind;
	c->ns = "default";
	c->name = "?";
	c->trigger = -1;
	if (!json_is_object(obj))
		return zw_tp_failf(c, "the object must be a JSON object, not %s", zw_tp_jtype(obj));
	if ((rc = zw_tp_req_object(c, obj, "metadata", "", &md)) < 0)
		return rc;
	if ((rc = zw_tp_opt_string(c, md, "namespace", "metadata", &s)) < 0)
		return rc;
	if (s && *s)
		c->ns = s;
	if ((rc = zw_tp_req_string(c, md, "name", "metadata", &s)) < 0)
		return rc;
	c->name = s;
	if (!t)
		return 0;
	if (zw_tp_set_str(&t->namespace, c->ns) || zw_tp_set_str(&t->name, c->name))
		return ZW_TARGET_ENOMEM;
	if ((rc = zw_tp_opt_string(c, md, "uid", "metadata", &s)) < 0)
		return rc;
	if (zw_tp_set_str(&t->uid, s))
		return ZW_TARGET_ENOMEM;
	if ((rc = zw_tp_opt_string(c, md, "creationTimestamp", "metadata", &s)) < 0)
		return rc;
	if (zw_tp_set_str(&t->creation_timestamp, s))
		return ZW_TARGET_ENOMEM;
	return 0;
}

void zw_tp_enomem_message(char err[ZW_TARGET_ERRLEN], int rc)
{
	if (rc == ZW_TARGET_ENOMEM && err)
		snprintf(err, ZW_TARGET_ERRLEN, "out of memory");
}

int zw_tp_parse_single(int (*parse)(struct zw_tp_ctx *, const json_t *, struct zw_target *),
                       const json_t *obj, struct zw_target *out, char err[ZW_TARGET_ERRLEN])
{
	struct zw_tp_ctx c = {.err = err, .trigger = -1};
	int rc;

	if (err)
		err[0] = '\0';
	rc = parse(&c, obj, out);
	if (rc < 0) {
		zw_target_free(out);
		zw_tp_enomem_message(err, rc);
	}
	return rc;
}
