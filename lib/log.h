/* zerowire structured logging: one line per event on stderr.
 *
 *   ts=2026-11-22T01:02:03.456Z level=info comp=proxy event=listening addr=0.0.0.0:8080
 *
 * Only program boundaries (main loops, request handlers) log; helpers return
 * a status and let their caller decide. Thread-safe: each event is built in a
 * local buffer and written with one write(2). */
#ifndef ZW_LOG_H
#define ZW_LOG_H

#include <stdarg.h>

enum zw_log_level {
	ZW_LOG_DEBUG = 0,
	ZW_LOG_INFO,
	ZW_LOG_WARN,
	ZW_LOG_ERROR,
};

/* Line formats (--log-format). */
enum zw_log_format {
	ZW_LOG_LOGFMT = 0, /* ts=... level=... comp=... event=... key=value ... */
	ZW_LOG_JSON = 1,   /* {"ts":"...","level":"...","comp":"...","event":"...","key":"value"} */
};

/* Parses "logfmt" or "json" into *out. Returns 0, or -1 when unknown. */
int zw_log_format_parse(const char *name, enum zw_log_format *out);

/* Sets the line format (default logfmt). Call before threads start. */
void zw_log_set_format(enum zw_log_format format);

/* Sets the component name printed as comp= (a static string, not copied)
 * and the minimum level printed. */
void zw_log_init(const char *component, enum zw_log_level min_level);

/* Parses "debug", "info", "warn" or "error" into *out. Returns 0, or -1 when
 * the name is unknown (*out untouched). */
int zw_log_level_parse(const char *name, enum zw_log_level *out);

/* Returns nonzero when events at `level` are printed. */
int zw_log_enabled(enum zw_log_level level);

/* Logs one event. `event` is a short snake_case word; `fmt` is printf-style
 * text of further key=value pairs (may be NULL). Values with spaces should be
 * quoted by the caller with zw_log_quote-friendly %s formats ("%s" of a
 * string without '"'). Lines longer than 4 KiB are truncated. */
void zw_log(enum zw_log_level level, const char *event, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* va_list variant of zw_log. */
void zw_logv(enum zw_log_level level, const char *event, const char *fmt, va_list ap);

#endif
