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
