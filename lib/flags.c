/* Declarative command-line flags (see flags.h). */
#include "flags.h"

#include "duration.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef ZW_VERSION
#define ZW_VERSION "dev" /* set by the Makefile */
#endif
#ifndef ZW_COMMIT
#define ZW_COMMIT "unknown" /* set by the Makefile from git */
#endif

#define HELP_COLUMN 32 /* where help text starts in --help */

const char *const zw_flag_log_levels[] = {"debug", "info", "warn", "error", NULL};
const char *const zw_flag_log_formats[] = {"logfmt", "json", NULL};

/* Writes a formatted message and returns -1. */
static int fail(char *msg, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *msg, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (msg && len) {
		va_start(ap, fmt);
		vsnprintf(msg, len, fmt, ap);
		va_end(ap);
	}
	return -1;
}

int zw_flags_format_ms(uint64_t ms, char *buf, size_t len)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = {{"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
	size_t used = 0;
	int n;

	if (!len)
		return -1;
	buf[0] = '\0';
	if (ms == 0)
		return snprintf(buf, len, "0s") < (int)len ? 0 : -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		uint64_t q = ms / units[i].ms;
		if (!q)
			continue;
		ms -= q * units[i].ms;
		n = snprintf(buf + used, len - used, "%llu%s", (unsigned long long)q,
		             units[i].unit);
		if (n < 0 || (size_t)n >= len - used)
			return -1;
		used += (size_t)n;
	}
	return 0;
}

/* Stores v into an integer destination of `width` bytes. Returns 0 or -1. */
static int store_int(void *dst, unsigned width, int64_t v)
{
	uint64_t u = (uint64_t)v;
	uint8_t b8;
	uint16_t b16;
	uint32_t b32;

	switch (width) {
	case 1:
		b8 = (uint8_t)u;
		memcpy(dst, &b8, 1);
		return 0;
	case 2:
		b16 = (uint16_t)u;
		memcpy(dst, &b16, 2);
		return 0;
	case 4:
		b32 = (uint32_t)u;
		memcpy(dst, &b32, 4);
		return 0;
	case 8:
		memcpy(dst, &u, 8);
		return 0;
	default:
		return -1;
	}
}

/* Parses a decimal integer (a sign only when negatives are allowed), with
 * an optional multiplier suffix from `suffixes`. Returns 0 or -1. */
static int parse_number(const char *s, bool negative_ok, bool size_suffix, int64_t *out)
{
	static const struct {
		const char *suffix;
		uint64_t mult;
	} sizes[] = {{"k", 1000ull},  {"M", 1000000ull},  {"G", 1000000000ull},
	             {"Ki", 1024ull}, {"Mi", 1048576ull}, {"Gi", 1073741824ull}};
	const char *p = s;
	bool neg = false;
	uint64_t v = 0, mult = 1;

	if (*p == '-' && negative_ok) {
		neg = true;
		p++;
	}
	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		if (v > ((uint64_t)INT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (*p) {
		size_t i;
		if (!size_suffix)
			return -1;
		for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
			if (strcmp(p, sizes[i].suffix) == 0)
				break;
		if (i == sizeof(sizes) / sizeof(sizes[0]))
			return -1;
		mult = sizes[i].mult;
	}
	if (v > (uint64_t)INT64_MAX / mult)
		return -1;
	v *= mult;
	*out = neg ? -(int64_t)v : (int64_t)v;
	return 0;
}

/* Appends the comma-separated, space-trimmed items of v (split in place)
 * or v whole to a list flag. Returns 0 or -1 (message written). */
static int add_list(const struct zw_flag *f, char *base, char *v, char *msg, size_t len)
{
	const char **list = (const char **)(void *)(base + f->off);
	size_t *n = (size_t *)(void *)(base + f->count_off);
	char *p = v;

	if (f->opts & ZW_FLAG_NOSPLIT) {
		if (!*v)
			return fail(msg, len, "flag --%s: empty value", f->name);
		if (*n >= f->list_max)
			return fail(msg, len, "flag --%s: more than %zu values", f->name,
			            f->list_max);
		list[(*n)++] = v;
		return 0;
	}
	for (;;) {
		char *comma = strchr(p, ',');
		char *end = comma ? comma : p + strlen(p);
		if (comma)
			*comma = '\0';
		while (*p == ' ')
			p++;
		while (end > p && end[-1] == ' ')
			*--end = '\0';
		if (*p) {
			if (*n >= f->list_max)
				return fail(msg, len, "flag --%s: more than %zu values", f->name,
				            f->list_max);
			list[(*n)++] = p;
		}
		if (!comma)
			return 0;
		p = comma + 1;
	}
}

/* Describes an enum's choices ("a, b or c") into buf. */
static void describe_choices(const char *const *choices, const char *sep_last, char *buf,
                             size_t len)
{
	size_t used = 0, n = 0;

	buf[0] = '\0';
	while (choices[n])
		n++;
	for (size_t i = 0; i < n && used < len; i++) {
		const char *sep = i == 0 ? "" : (i + 1 == n ? sep_last : ", ");
		int w = snprintf(buf + used, len - used, "%s%s", sep, choices[i]);
		if (w < 0)
			return;
		used += (size_t)w;
	}
}

/* Parses one value into flag f's destination. `v` may be modified (lists).
 * Returns 0 or -1 with a message naming the flag and what was expected. */
static int set_value(const struct zw_flag *f, char *base, char *v, char *msg, size_t len)
{
	void *dst = base + f->off;
	char lo[32], hi[32], what[256];
	int64_t n = 0;
	uint64_t ms = 0;

	switch (f->kind) {
	case ZW_FLAG_BOOL:
		if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes"))
			*(int *)dst = 1;
		else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no"))
			*(int *)dst = 0;
		else
			return fail(msg, len, "flag --%s: \"%s\" is not true or false", f->name, v);
		return 0;
	case ZW_FLAG_INT:
	case ZW_FLAG_SIZE:
		for (const struct zw_flag_word *w = f->words; w && w->word; w++)
			if (strcmp(v, w->word) == 0)
				return store_int(dst, f->width, w->value) < 0
				               ? fail(msg, len, "flag --%s: bad width", f->name)
				               : 0;
		if (parse_number(v, f->min < 0, f->kind == ZW_FLAG_SIZE, &n) < 0 || n < f->min ||
		    n > f->max) {
			size_t used = 0;
			what[0] = '\0';
			for (const struct zw_flag_word *w = f->words; w && w->word; w++) {
				int k = snprintf(what + used, sizeof(what) - used, "%s%s",
				                 w == f->words ? ", or " : " or ", w->word);
				if (k < 0 || (size_t)k >= sizeof(what) - used)
					break;
				used += (size_t)k;
			}
			return fail(
			        msg, len, "flag --%s: \"%s\" is not %s between %lld and %lld%s%s",
			        f->name, v,
			        f->kind == ZW_FLAG_SIZE ? "a byte size (N, NKi, NMi)" : "a number",
			        (long long)f->min, (long long)f->max, what,
			        f->kind == ZW_FLAG_SIZE ? " bytes" : "");
		}
		return store_int(dst, f->width, n) < 0
		               ? fail(msg, len, "flag --%s: bad width", f->name)
		               : 0;
	case ZW_FLAG_DURATION:
		if (zw_duration_parse_ms(v, &ms) < 0 || ms < (uint64_t)f->min ||
		    ms > (uint64_t)f->max) {
			zw_flags_format_ms((uint64_t)f->min, lo, sizeof(lo));
			zw_flags_format_ms((uint64_t)f->max, hi, sizeof(hi));
			return fail(msg, len,
			            "flag --%s: \"%s\" is not a duration between %s and %s (e.g. "
			            "500ms, 10s, 5m)",
			            f->name, v, lo, hi);
		}
		return store_int(dst, f->width, (int64_t)ms) < 0
		               ? fail(msg, len, "flag --%s: bad width", f->name)
		               : 0;
	case ZW_FLAG_STRING:
		if (!*v && (f->opts & ZW_FLAG_NONEMPTY))
			return fail(msg, len, "flag --%s: empty value", f->name);
		*(const char **)dst = v;
		return 0;
	case ZW_FLAG_ENUM:
		for (const char *const *c = f->choices; c && *c; c++)
			if (strcmp(v, *c) == 0) {
				*(const char **)dst = *c;
				return 0;
			}
		describe_choices(f->choices, " or ", what, sizeof(what));
		return fail(msg, len, "flag --%s: \"%s\" is not %s", f->name, v, what);
	case ZW_FLAG_LIST:
		return add_list(f, base, v, msg, len);
	}
	return fail(msg, len, "flag --%s: unknown kind", f->name);
}

int zw_flags_defaults(const struct zw_flag_set *set, void *base, char *msg, size_t msg_len)
{
	char buf[512];

	for (size_t i = 0; i < set->n_flags; i++) {
		const struct zw_flag *f = &set->flags[i];
		const char *env = f->env ? getenv(f->env) : NULL;
		for (int pass = 0; pass < 2; pass++) {
			const char *v = pass == 0 ? f->def : env;
			if (!v || (pass == 1 && !*v))
				continue;
			if (f->kind == ZW_FLAG_LIST)
				return fail(msg, msg_len, "flag --%s: a list takes no default",
				            f->name);
			if (f->kind == ZW_FLAG_STRING) {
				*(const char **)(void *)((char *)base + f->off) = v;
				continue;
			}
			/* Other kinds never keep the pointer: parse a copy. */
			if (snprintf(buf, sizeof(buf), "%s", v) >= (int)sizeof(buf))
				return fail(msg, msg_len, "flag --%s: value too long", f->name);
			if (set_value(f, base, buf, msg, msg_len) < 0) {
				if (pass == 1) {
					size_t l = strlen(msg);
					snprintf(msg + l, msg_len - l, " (from $%s)", f->env);
				}
				return -1;
			}
		}
	}
	return 0;
}

/* Finds the flag named by arg ("--name" or "--name=value"). */
static const struct zw_flag *find(const struct zw_flag_set *set, const char *name, size_t len)
{
	for (size_t i = 0; i < set->n_flags; i++)
		if (strlen(set->flags[i].name) == len && memcmp(set->flags[i].name, name, len) == 0)
			return &set->flags[i];
	return NULL;
}

int zw_flags_parse(const struct zw_flag_set *set, void *base, int argc, char **argv, char *msg,
                   size_t msg_len)
{
	for (int i = 1; i < argc; i++) {
		char *arg = argv[i], *val, *eq;
		const struct zw_flag *f;
		size_t nl;

		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
			return ZW_FLAGS_HELP;
		if (strcmp(arg, "--version") == 0)
			return ZW_FLAGS_VERSION;
		if (arg[0] != '-' || strcmp(arg, "-") == 0 || strcmp(arg, "--") == 0)
			return fail(
			        msg, msg_len,
			        "unexpected argument \"%s\" (flags are --name=value; see --help)",
			        arg);
		if (arg[1] != '-')
			return fail(msg, msg_len,
			            "unknown flag %s (flags start with two dashes; see --help)",
			            arg);
		eq = strchr(arg, '=');
		nl = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
		f = find(set, arg + 2, nl);
		if (!f)
			return fail(msg, msg_len, "unknown flag --%.*s (see --help)", (int)nl,
			            arg + 2);
		if (eq) {
			val = eq + 1;
		} else if (f->kind == ZW_FLAG_BOOL) {
			*(int *)(void *)((char *)base + f->off) = 1;
			continue;
		} else if (i + 1 >= argc ||
		           (strncmp(argv[i + 1], "--", 2) == 0 && argv[i + 1][2])) {
			return fail(msg, msg_len, "flag --%s needs a value", f->name);
		} else {
			val = argv[++i];
		}
		if (set_value(f, base, val, msg, msg_len) < 0)
			return -1;
	}
	return 0;
}

/* The placeholder shown after a flag's name in --help. */
static void metavar(const struct zw_flag *f, char *buf, size_t len)
{
	static const char *const names[] = {
	        [ZW_FLAG_BOOL] = "[=BOOL]",  [ZW_FLAG_INT] = "N",        [ZW_FLAG_SIZE] = "BYTES",
	        [ZW_FLAG_DURATION] = "DUR",  [ZW_FLAG_STRING] = "VALUE", [ZW_FLAG_ENUM] = "",
	        [ZW_FLAG_LIST] = "A[,B...]",
	};
	size_t used;

	if (f->metavar) {
		snprintf(buf, len, "%s", f->metavar);
		return;
	}
	if (f->kind == ZW_FLAG_BOOL && (!f->def || strcmp(f->def, "false") == 0)) {
		buf[0] = '\0'; /* off by default: the bare name switches it on */
		return;
	}
	if (f->kind == ZW_FLAG_ENUM) {
		describe_choices(f->choices, "|", buf, len);
		for (char *c = buf; *c; c++)
			if (*c == ',' && c[1] == ' ') {
				*c = '|';
				memmove(c + 1, c + 2, strlen(c + 2) + 1);
			}
		return;
	}
	snprintf(buf, len, "%s", names[f->kind]);
	used = strlen(buf);
	for (const struct zw_flag_word *w = f->words; w && w->word && used < len; w++) {
		int k = snprintf(buf + used, len - used, "|%s", w->word);
		if (k < 0)
			return;
		used += (size_t)k;
	}
}

int zw_flags_usage(const struct zw_flag_set *set, char **out)
{
	const char *group = NULL;
	char *text = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);

	*out = NULL;
	if (!f)
		return -1;
	if (set->head)
		fputs(set->head, f);
	for (size_t i = 0; i < set->n_flags; i++) {
		const struct zw_flag *fl = &set->flags[i];
		char mv[128];
		int col;

		if (!fl->help)
			continue;
		if (fl->group && (!group || strcmp(group, fl->group) != 0)) {
			fprintf(f, "%s:\n", fl->group);
			group = fl->group;
		}
		metavar(fl, mv, sizeof(mv));
		col = fprintf(f, "  --%s%s%s", fl->name,
		              fl->kind == ZW_FLAG_BOOL && !fl->metavar ? "" : " ", mv);
		for (const char *p = fl->help; *p;) {
			const char *nl = strchr(p, '\n');
			int l = nl ? (int)(nl - p) : (int)strlen(p);
			if (col >= HELP_COLUMN) {
				fputc('\n', f);
				col = 0;
			}
			fprintf(f, "%*s%.*s", HELP_COLUMN - col, "", l, p);
			col = HELP_COLUMN + l;
			p += l;
			if (*p == '\n') {
				fputc('\n', f);
				col = 0;
				p++;
			}
		}
		if (fl->def && *fl->def) {
			if (col + 11 + (int)strlen(fl->def) > 80 || col == 0) {
				fprintf(f, "%s%*s", col ? "\n" : "", HELP_COLUMN, "");
				col = HELP_COLUMN;
			} else {
				fputc(' ', f);
			}
			fprintf(f, "(default %s)", fl->def);
		}
		if (fl->env)
			fprintf(f, " [$%s]", fl->env);
		fputc('\n', f);
	}
	fputs("  --help, --version\n", f);
	if (set->tail)
		fputs(set->tail, f);
	if (fclose(f) != 0) {
		free(text);
		return -1;
	}
	*out = text;
	return 0;
}

int zw_flags_version(const struct zw_flag_set *set, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s %s (commit %s)\n", set->program, ZW_VERSION, ZW_COMMIT);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}
