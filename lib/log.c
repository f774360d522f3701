/* Structured logging; see log.h. */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096

static const char *log_component = "zerowire";
static enum zw_log_level log_min = ZW_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};
static enum zw_log_format log_format = ZW_LOG_LOGFMT;

int zw_log_format_parse(const char *name, enum zw_log_format *out)
{
	if (strcmp(name, "logfmt") == 0)
		*out = ZW_LOG_LOGFMT;
	else if (strcmp(name, "json") == 0)
		*out = ZW_LOG_JSON;
	else
		return -1;
	return 0;
}

void zw_log_set_format(enum zw_log_format format)
{
	log_format = format;
}

/* Appends s[0..n) to out as JSON string content (quotes not included);
 * returns the new length, never past cap - 1. */
static size_t json_put(char *out, size_t len, size_t cap, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n && len + 7 < cap; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '"' || ch == '\\') {
			out[len++] = '\\';
			out[len++] = (char)ch;
		} else if (ch < 0x20) {
			memcpy(out + len, "\\u00", 4);
			out[len + 4] = hex[ch >> 4];
			out[len + 5] = hex[ch & 15];
			len += 6;
		} else {
			out[len++] = (char)ch;
		}
	}
	return len;
}

/* Rewrites a logfmt line (ts=... key=value key="quoted value") as one JSON
 * object into out (cap bytes). Returns the length. */
static size_t to_json(const char *in, size_t n, char *out, size_t cap)
{
	size_t len = 0, i = 0;
	int first = 1;
	out[len++] = '{';
	while (i < n && len + 16 < cap) {
		while (i < n && in[i] == ' ')
			i++;
		size_t k = i;
		while (i < n && in[i] != '=' && in[i] != ' ')
			i++;
		if (i >= n || in[i] != '=' || i == k) {
			while (i < n && in[i] != ' ')
				i++; /* a bare word: skipped */
			continue;
		}
		size_t klen = i - k, v, vlen;
		i++;
		if (i < n && in[i] == '"') {
			v = ++i;
			while (i < n && !(in[i] == '"' && in[i - 1] != '\\'))
				i++;
			vlen = i - v;
			if (i < n)
				i++;
		} else {
			v = i;
			while (i < n && in[i] != ' ')
				i++;
			vlen = i - v;
		}
		if (!first)
			out[len++] = ',';
		first = 0;
		out[len++] = '"';
		len = json_put(out, len, cap, in + k, klen);
		out[len++] = '"';
		out[len++] = ':';
		out[len++] = '"';
		len = json_put(out, len, cap, in + v, vlen);
		out[len++] = '"';
	}
	out[len++] = '}';
	return len;
}

void zw_log_init(const char *component, enum zw_log_level min_level)
{
	if (component)
		log_component = component;
	log_min = min_level;
}

int zw_log_level_parse(const char *name, enum zw_log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum zw_log_level)i;
			return 0;
		}
	}
	return -1;
}

int zw_log_enabled(enum zw_log_level level)
{
	return level >= log_min;
}

void zw_logv(enum zw_log_level level, const char *event, const char *fmt, va_list ap)
{
	char line[LINE_MAX_BYTES];
	struct timespec ts;
	struct tm tm;
	size_t len;
	int n;

	if (!zw_log_enabled(level))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line),
	             "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s comp=%s event=%s",
	             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	             ts.tv_nsec / 1000000, level_names[level], log_component, event);
	len = n < 0 ? 0 : (size_t)n;
	if (fmt && *fmt && len < sizeof(line) - 2) {
		line[len++] = ' ';
		n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
		if (n > 0)
			len += (size_t)n;
	}
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	/* One event is one line: newlines in values would split it. */
	for (size_t i = 0; i < len; i++) {
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	}
	if (log_format == ZW_LOG_JSON) {
		char json[LINE_MAX_BYTES + 1024];
		len = to_json(line, len, json, sizeof(json) - 1);
		json[len++] = '\n';
		while (write(STDERR_FILENO, json, len) == -1 && errno == EINTR) {
		}
		return;
	}
	line[len++] = '\n';
	while (write(STDERR_FILENO, line, len) == -1 && errno == EINTR) {
	}
}

void zw_log(enum zw_log_level level, const char *event, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	zw_logv(level, event, fmt, ap);
	va_end(ap);
}
