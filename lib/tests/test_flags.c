/* Unit tests for lib/flags.c: every kind, both value forms, defaults and
 * environment, the error messages, --help from the table, --version. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "duration.h"
#include "flags.h"

struct opts {
	int verbose;
	int color;
	int port;
	uint8_t small;
	int64_t conc;
	size_t body;
	uint64_t timeout_ms;
	unsigned grace_ms;
	const char *name;
	const char *token;
	const char *mode;
	const char *items[3];
	size_t n_items;
	const char *specs[2];
	size_t n_specs;
};

static const char *const modes[] = {"fast", "safe", "off", NULL};
static const struct zw_flag_word conc_words[] = {{"auto", -2}, {"off", 0}, {NULL, 0}};

#define O struct opts
static const struct zw_flag table[] = {
        {.name = "verbose",
         .kind = ZW_FLAG_BOOL,
         ZW_FLAG_DEST(O, verbose),
         .group = "General",
         .help = "say more"},
        {.name = "color",
         .kind = ZW_FLAG_BOOL,
         ZW_FLAG_DEST(O, color),
         .def = "true",
         .group = "General",
         .help = "colored output"},
        {.name = "port",
         .kind = ZW_FLAG_INT,
         ZW_FLAG_DEST(O, port),
         .min = 1,
         .max = 65535,
         .def = "8080",
         .env = "ZW_TEST_FLAGS_PORT",
         .group = "General",
         .help = "TCP port"},
        {.name = "small",
         .kind = ZW_FLAG_INT,
         ZW_FLAG_DEST(O, small),
         .min = -5,
         .max = 200,
         .group = "General",
         .help = "a byte"},
        {.name = "concurrency",
         .kind = ZW_FLAG_INT,
         ZW_FLAG_DEST(O, conc),
         .min = 0,
         .max = 1000,
         .words = conc_words,
         .def = "off",
         .group = "General",
         .help = "in flight\nper endpoint"},
        {.name = "body",
         .kind = ZW_FLAG_SIZE,
         ZW_FLAG_DEST(O, body),
         .min = 1024,
         .max = 1 << 30,
         .def = "3Mi",
         .group = "Limits",
         .help = "largest body"},
        {.name = "timeout",
         .kind = ZW_FLAG_DURATION,
         ZW_FLAG_DEST(O, timeout_ms),
         .min = 1,
         .max = 3600000,
         .def = "10s",
         .group = "Limits",
         .help = "give up"},
        {.name = "grace",
         .kind = ZW_FLAG_DURATION,
         ZW_FLAG_DEST(O, grace_ms),
         .min = 0,
         .max = 86400000,
         .def = "2m",
         .group = "Limits",
         .help = "old token kept"},
        {.name = "name",
         .kind = ZW_FLAG_STRING,
         ZW_FLAG_DEST(O, name),
         .metavar = "NAME",
         .def = "zerowire",
         .group = "Names",
         .help = "a name"},
        {.name = "token",
         .kind = ZW_FLAG_STRING,
         ZW_FLAG_DEST(O, token),
         .metavar = "PATH",
         .opts = ZW_FLAG_NONEMPTY,
         .group = "Names",
         .help = "token file"},
        {.name = "mode",
         .kind = ZW_FLAG_ENUM,
         ZW_FLAG_DEST(O, mode),
         .choices = modes,
         .def = "safe",
         .group = "Names",
         .help = "how"},
        {.name = "item",
         .kind = ZW_FLAG_LIST,
         .off = offsetof(O, items),
         .list_max = 3,
         .count_off = offsetof(O, n_items),
         .group = "Names",
         .help = "items"},
        {.name = "items",
         .kind = ZW_FLAG_LIST,
         .off = offsetof(O, items),
         .list_max = 3,
         .count_off = offsetof(O, n_items)},
        {.name = "spec",
         .kind = ZW_FLAG_LIST,
         .off = offsetof(O, specs),
         .list_max = 2,
         .count_off = offsetof(O, n_specs),
         .opts = ZW_FLAG_NOSPLIT,
         .group = "Names",
         .help = "one spec, commas kept"},
};
#undef O

static const struct zw_flag_set set = {
        .program = "zerowire-test",
        .head = "usage: zerowire-test [flags]\n\n",
        .tail = "\nThe end.\n",
        .flags = table,
        .n_flags = sizeof(table) / sizeof(table[0]),
};

/* Parses the given arguments (copied into writable storage) after the
 * defaults; returns zw_flags_parse's result. */
static char store[16][128];
static int parse(struct opts *o, char *msg, size_t len, int argc, ...)
{
	char *argv[16];
	va_list ap;

	memset(o, 0, sizeof(*o));
	assert_int_equal(zw_flags_defaults(&set, o, msg, len), 0);
	va_start(ap, argc);
	argv[0] = "zerowire-test";
	for (int i = 1; i < argc; i++) {
		snprintf(store[i], sizeof(store[i]), "%s", va_arg(ap, char *));
		argv[i] = store[i];
	}
	va_end(ap);
	msg[0] = '\0';
	return zw_flags_parse(&set, o, argc, argv, msg, len);
}

static void test_defaults(void **state)
{
	struct opts o;
	char msg[256];

	(void)state;
	unsetenv("ZW_TEST_FLAGS_PORT");
	assert_int_equal(parse(&o, msg, sizeof(msg), 1), 0);
	assert_int_equal(o.verbose, 0);
	assert_int_equal(o.color, 1);
	assert_int_equal(o.port, 8080);
	assert_int_equal(o.conc, 0);
	assert_int_equal(o.body, 3 * 1024 * 1024);
	assert_int_equal(o.timeout_ms, 10000);
	assert_int_equal(o.grace_ms, 120000);
	assert_string_equal(o.name, "zerowire");
	assert_null(o.token);
	assert_string_equal(o.mode, "safe");
	assert_int_equal(o.n_items, 0);
}

static void test_env(void **state)
{
	struct opts o;
	char msg[256];

	(void)state;
	setenv("ZW_TEST_FLAGS_PORT", "9000", 1);
	assert_int_equal(parse(&o, msg, sizeof(msg), 1), 0);
	assert_int_equal(o.port, 9000);
	/* the command line wins over the environment */
	assert_int_equal(parse(&o, msg, sizeof(msg), 2, "--port=9001"), 0);
	assert_int_equal(o.port, 9001);
	setenv("ZW_TEST_FLAGS_PORT", "", 1); /* empty: not set */
	assert_int_equal(parse(&o, msg, sizeof(msg), 1), 0);
	assert_int_equal(o.port, 8080);
	setenv("ZW_TEST_FLAGS_PORT", "http", 1);
	memset(&o, 0, sizeof(o));
	assert_int_equal(zw_flags_defaults(&set, &o, msg, sizeof(msg)), -1);
	assert_non_null(strstr(msg, "flag --port"));
	assert_non_null(strstr(msg, "$ZW_TEST_FLAGS_PORT"));
	unsetenv("ZW_TEST_FLAGS_PORT");
}

static void test_forms(void **state)
{
	struct opts o;
	char msg[256];

	(void)state;
	assert_int_equal(parse(&o, msg, sizeof(msg), 14, "--verbose", "--color=false", "--port",
	                       "443", "--small=-5", "--concurrency", "auto", "--body=64Ki",
	                       "--timeout", "1m30s", "--grace=0", "--name=", "--mode=fast"),
	                 0);
	assert_int_equal(o.verbose, 1);
	assert_int_equal(o.color, 0);
	assert_int_equal(o.port, 443);
	assert_int_equal((int8_t)o.small, -5);
	assert_int_equal(o.conc, -2);
	assert_int_equal(o.body, 65536);
	assert_int_equal(o.timeout_ms, 90000);
	assert_int_equal(o.grace_ms, 0);
	assert_string_equal(o.name, "");
	assert_string_equal(o.mode, "fast");
	assert_int_equal(parse(&o, msg, sizeof(msg), 5, "--small", "200", "--body", "2M"), 0);
	assert_int_equal(o.small, 200);
	assert_int_equal(o.body, 2000000);
	assert_int_equal(parse(&o, msg, sizeof(msg), 3, "--verbose=yes", "--timeout=5"), 0);
	assert_int_equal(o.verbose, 1);
	assert_int_equal(o.timeout_ms, 5000); /* a bare number is seconds */
	assert_int_equal(parse(&o, msg, sizeof(msg), 2, "--concurrency=17"), 0);
	assert_int_equal(o.conc, 17);
}

static void test_lists(void **state)
{
	struct opts o;
	char msg[256];

	(void)state;
	assert_int_equal(parse(&o, msg, sizeof(msg), 6, "--item", " a , b,,", "--items=c", "--spec",
	                       "ns/svc:80=1.2.3.4:80,1.2.3.5:80"),
	                 0);
	assert_int_equal(o.n_items, 3);
	assert_string_equal(o.items[0], "a");
	assert_string_equal(o.items[1], "b");
	assert_string_equal(o.items[2], "c");
	assert_int_equal(o.n_specs, 1);
	assert_string_equal(o.specs[0], "ns/svc:80=1.2.3.4:80,1.2.3.5:80");
	assert_int_equal(parse(&o, msg, sizeof(msg), 2, "--item=a,b,c,d"), -1);
	assert_string_equal(msg, "flag --item: more than 3 values");
	assert_int_equal(parse(&o, msg, sizeof(msg), 2, "--spec="), -1);
	assert_string_equal(msg, "flag --spec: empty value");
}

static void test_errors(void **state)
{
	struct opts o;
	char msg[256];

	(void)state;
	assert_int_equal(parse(&o, msg, sizeof(msg), 2, "--bogus"), -1);
	assert_string_equal(msg, "unknown flag --bogus (see --help)");
	assert_int_equal(parse(&o, msg, sizeof(msg), 2, "--bogus=1"), -1);
	assert_string_equal(msg, "unknown flag --bogus (see --help)");
	assert_int_equal(parse(&o, msg, sizeof(msg), 2, "-port"), -1);
	assert_non_null(strstr(msg, "unknown flag -port"));
	assert_int_equal(parse(&o, msg, sizeof(msg), 2, "stray"), -1);
	assert_non_null(strstr(msg, "unexpected argument \"stray\""));
	assert_int_equal(parse(&o, msg, sizeof(msg), 2, "--port"), -1);
	assert_string_equal(msg, "flag --port needs a value");
	assert_int_equal(parse(&o, msg, sizeof(msg), 3, "--port", "--verbose"), -1);
	assert_string_equal(msg, "flag --port needs a value");
	assert_int_equal(parse(&o, msg, sizeof(msg), 2, "--port=http"), -1);
	assert_string_equal(msg, "flag --port: \"http\" is not a number between 1 and 65535");
	assert_int_equal(parse(&o, msg, sizeof(msg), 2, "--port=65536"), -1);
	assert_int_equal(parse(&o, msg, sizeof(msg), 2, "--port=-1"), -1);
	assert_int_equal(parse(&o, msg, sizeof(msg), 2, "--port= 80"), -1);
	assert_int_equal(parse(&o, msg, sizeof(msg), 2, "--port=99999999999999999999"), -1);
	assert_int_equal(parse(&o, msg, sizeof(msg), 2, "--concurrency=lots"), -1);
	assert_string_equal(msg, "flag --concurrency: \"lots\" is not a number between 0 and "
	                         "1000, or auto or off");
	assert_int_equal(parse(&o, msg, sizeof(msg), 2, "--body=1Ti"), -1);
	assert_non_null(strstr(msg, "flag --body: \"1Ti\" is not a byte size"));
	assert_int_equal(parse(&o, msg, sizeof(msg), 2, "--timeout=soon"), -1);
	assert_string_equal(msg, "flag --timeout: \"soon\" is not a duration between 1ms and 1h "
	                         "(e.g. 500ms, 10s, 5m)");
	assert_int_equal(parse(&o, msg, sizeof(msg), 2, "--timeout=2h"), -1);
	assert_int_equal(parse(&o, msg, sizeof(msg), 2, "--timeout=0s"), -1);
	assert_int_equal(parse(&o, msg, sizeof(msg), 2, "--verbose=maybe"), -1);
	assert_string_equal(msg, "flag --verbose: \"maybe\" is not true or false");
	assert_int_equal(parse(&o, msg, sizeof(msg), 2, "--mode=slow"), -1);
	assert_string_equal(msg, "flag --mode: \"slow\" is not fast, safe or off");
	assert_int_equal(parse(&o, msg, sizeof(msg), 2, "--token="), -1);
	assert_string_equal(msg, "flag --token: empty value");
	/* a short message buffer is cut, never overrun */
	char tiny[8];
	memset(&o, 0, sizeof(o));
	char arg[] = "--bogus", *argv[] = {"x", arg};
	assert_int_equal(zw_flags_parse(&set, &o, 2, argv, tiny, sizeof(tiny)), -1);
	assert_string_equal(tiny, "unknown");
}

static void test_help_version(void **state)
{
	struct opts o;
	char msg[256], *text = NULL;

	(void)state;
	assert_int_equal(parse(&o, msg, sizeof(msg), 3, "--port=1", "--help"), ZW_FLAGS_HELP);
	assert_int_equal(parse(&o, msg, sizeof(msg), 2, "-h"), ZW_FLAGS_HELP);
	assert_int_equal(parse(&o, msg, sizeof(msg), 2, "--version"), ZW_FLAGS_VERSION);
	/* the help of a later flag does not hide an earlier error */
	assert_int_equal(parse(&o, msg, sizeof(msg), 3, "--bogus", "--help"), -1);
	assert_int_equal(zw_flags_usage(&set, &text), 0);
	assert_non_null(text);
	assert_true(strncmp(text, "usage: zerowire-test [flags]\n\nGeneral:\n", 39) == 0);
	assert_non_null(strstr(text, "  --verbose                     say more\n"));
	assert_non_null(
	        strstr(text, "  --color[=BOOL]                colored output (default true)\n"));
	assert_non_null(strstr(text, "TCP port (default 8080) [$ZW_TEST_FLAGS_PORT]\n"));
	assert_non_null(strstr(text,
	                       "  --concurrency N|auto|off      in flight\n"
	                       "                                per endpoint (default off)\n"));
	assert_non_null(strstr(text, "Limits:\n  --body BYTES"));
	assert_non_null(strstr(text, "  --timeout DUR                 give up (default 10s)\n"));
	assert_non_null(strstr(text, "  --mode fast|safe|off          how (default safe)\n"));
	assert_non_null(strstr(text, "  --token PATH "));
	assert_null(strstr(text, "--items")); /* a hidden alias */
	assert_non_null(strstr(text, "  --help, --version\n\nThe end.\n"));
	free(text);
	assert_int_equal(zw_flags_version(&set, msg, sizeof(msg)), 0);
	assert_true(strncmp(msg, "zerowire-test ", 14) == 0);
	assert_non_null(strstr(msg, " (commit "));
	assert_int_equal(msg[strlen(msg) - 1], '\n');
	assert_int_equal(zw_flags_version(&set, msg, 10), -1);
}

static void test_format_ms(void **state)
{
	static const struct {
		uint64_t ms;
		const char *text;
	} cases[] = {
	        {0, "0s"},        {1, "1ms"},      {500, "500ms"},    {1500, "1s500ms"},
	        {90000, "1m30s"}, {3600000, "1h"}, {86400000, "24h"}, {5430001, "1h30m30s1ms"}};
	char buf[64];
	uint64_t back;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(zw_flags_format_ms(cases[i].ms, buf, sizeof(buf)), 0);
		assert_string_equal(buf, cases[i].text);
		assert_int_equal(zw_duration_parse_ms(buf, &back), 0);
		assert_int_equal(back, cases[i].ms);
	}
	assert_int_equal(zw_flags_format_ms(5430001, buf, 4), -1);
}

/* A table mistake (a list with a default, a bad default) is reported. */
static void test_bad_table(void **state)
{
	struct opts o;
	char msg[256];
	const struct zw_flag bad_list[] = {{.name = "item",
	                                    .kind = ZW_FLAG_LIST,
	                                    .off = offsetof(struct opts, items),
	                                    .list_max = 3,
	                                    .count_off = offsetof(struct opts, n_items),
	                                    .def = "a"}};
	const struct zw_flag bad_def[] = {{.name = "port",
	                                   .kind = ZW_FLAG_INT,
	                                   ZW_FLAG_DEST(struct opts, port),
	                                   .min = 1,
	                                   .max = 10,
	                                   .def = "11"}};
	const struct zw_flag bad_width[] = {
	        {.name = "port", .kind = ZW_FLAG_INT, .off = 0, .width = 3, .min = 0, .max = 9}};
	struct zw_flag_set s = {.program = "t", .flags = bad_list, .n_flags = 1};

	(void)state;
	assert_int_equal(zw_flags_defaults(&s, &o, msg, sizeof(msg)), -1);
	assert_string_equal(msg, "flag --item: a list takes no default");
	s.flags = bad_def;
	assert_int_equal(zw_flags_defaults(&s, &o, msg, sizeof(msg)), -1);
	assert_non_null(strstr(msg, "flag --port: \"11\""));
	s.flags = bad_width;
	char arg[] = "--port=1", *argv[] = {"t", arg};
	assert_int_equal(zw_flags_parse(&s, &o, 2, argv, msg, sizeof(msg)), -1);
	assert_string_equal(msg, "flag --port: bad width");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_defaults),  cmocka_unit_test(test_env),
	        cmocka_unit_test(test_forms),     cmocka_unit_test(test_lists),
	        cmocka_unit_test(test_errors),    cmocka_unit_test(test_help_version),
	        cmocka_unit_test(test_format_ms), cmocka_unit_test(test_bad_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
