/* Unit tests for lib/log.c: logfmt and JSON lines (every line one valid JSON
 * object with the event's keys, quoted values unquoted, control characters
 * escaped), level filtering, format names. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

/* Runs fn with stderr sent to a temporary file; returns what was written
 * (caller frees). */
static char *capture(void (*fn)(void))
{
	char path[] = "/tmp/zw-log-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	int saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	off_t n = lseek(fd, 0, SEEK_END);
	char *buf = calloc(1, (size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, (size_t)n, 0), n);
	close(fd);
	unlink(path);
	return buf;
}

static void emit(void)
{
	zw_log(ZW_LOG_INFO, "listening", "addr=%s port=%d", "0.0.0.0:8080", 8080);
	zw_log(ZW_LOG_WARN, "odd", "reason=\"two words \\\"quoted\\\"\" ctrl=%s", "a\tb");
	zw_log(ZW_LOG_DEBUG, "hidden", "x=1");
}

static void test_json_lines(void **state)
{
	(void)state;
	zw_log_init("test", ZW_LOG_INFO);
	zw_log_set_format(ZW_LOG_JSON);
	char *out = capture(emit);
	zw_log_set_format(ZW_LOG_LOGFMT);
	char *save = NULL;
	char *l1 = strtok_r(out, "\n", &save), *l2 = strtok_r(NULL, "\n", &save);
	assert_null(strtok_r(NULL, "\n", &save)); /* the debug line is filtered */
	json_error_t e;
	json_t *a = json_loads(l1, 0, &e), *b = json_loads(l2, 0, &e);
	assert_non_null(a);
	assert_non_null(b);
	assert_string_equal(json_string_value(json_object_get(a, "level")), "info");
	assert_string_equal(json_string_value(json_object_get(a, "comp")), "test");
	assert_string_equal(json_string_value(json_object_get(a, "event")), "listening");
	assert_string_equal(json_string_value(json_object_get(a, "addr")), "0.0.0.0:8080");
	assert_string_equal(json_string_value(json_object_get(a, "port")), "8080");
	assert_non_null(json_object_get(a, "ts"));
	assert_string_equal(json_string_value(json_object_get(b, "reason")),
	                    "two words \\\"quoted\\\"");
	assert_string_equal(json_string_value(json_object_get(b, "ctrl")), "a\tb");
	json_decref(a);
	json_decref(b);
	free(out);
}

static void test_logfmt_default_and_names(void **state)
{
	(void)state;
	zw_log_init("test", ZW_LOG_INFO);
	char *out = capture(emit);
	assert_non_null(strstr(out, "level=info comp=test event=listening addr=0.0.0.0:8080"));
	assert_null(strstr(out, "hidden"));
	free(out);
	enum zw_log_format f;
	assert_int_equal(zw_log_format_parse("json", &f), 0);
	assert_int_equal(f, ZW_LOG_JSON);
	assert_int_equal(zw_log_format_parse("logfmt", &f), 0);
	assert_int_equal(f, ZW_LOG_LOGFMT);
	assert_int_equal(zw_log_format_parse("yaml", &f), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_json_lines),
	        cmocka_unit_test(test_logfmt_default_and_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
