/* libFuzzer target for lib/flags.c: the input is an argument vector (items
 * separated by NUL or newline) parsed against a table with every kind; a
 * successful parse must leave every value in its range, and the first 8
 * bytes also drive zw_flags_format_ms, whose text must parse back to the
 * same milliseconds. */
#include "duration.h"
#include "flags.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ARGS 32

struct fz {
	int on;
	int n;
	int64_t words;
	size_t bytes;
	uint32_t ms;
	const char *str;
	const char *choice;
	const char *list[4];
	size_t n_list;
	const char *whole[2];
	size_t n_whole;
};

static const char *const choices[] = {"a", "bb", "ccc", NULL};
static const struct zw_flag_word words[] = {{"auto", -2}, {"off", 0}, {NULL, 0}};

#define Z struct fz
static const struct zw_flag table[] = {
        {.name = "on", .kind = ZW_FLAG_BOOL, ZW_FLAG_DEST(Z, on), .help = "b"},
        {.name = "n",
         .kind = ZW_FLAG_INT,
         ZW_FLAG_DEST(Z, n),
         .min = -10,
         .max = 10,
         .def = "3",
         .help = "i"},
        {.name = "w",
         .kind = ZW_FLAG_INT,
         ZW_FLAG_DEST(Z, words),
         .min = 0,
         .max = 100,
         .words = words,
         .help = "w"},
        {.name = "bytes",
         .kind = ZW_FLAG_SIZE,
         ZW_FLAG_DEST(Z, bytes),
         .min = 1,
         .max = INT64_MAX,
         .help = "s"},
        {.name = "d",
         .kind = ZW_FLAG_DURATION,
         ZW_FLAG_DEST(Z, ms),
         .min = 1,
         .max = 86400000,
         .def = "1s",
         .help = "d"},
        {.name = "s",
         .kind = ZW_FLAG_STRING,
         ZW_FLAG_DEST(Z, str),
         .opts = ZW_FLAG_NONEMPTY,
         .help = "s"},
        {.name = "e",
         .kind = ZW_FLAG_ENUM,
         ZW_FLAG_DEST(Z, choice),
         .choices = choices,
         .def = "a",
         .help = "e"},
        {.name = "l",
         .kind = ZW_FLAG_LIST,
         .off = offsetof(Z, list),
         .list_max = 4,
         .count_off = offsetof(Z, n_list),
         .help = "l"},
        {.name = "x",
         .kind = ZW_FLAG_LIST,
         .off = offsetof(Z, whole),
         .list_max = 2,
         .count_off = offsetof(Z, n_whole),
         .opts = ZW_FLAG_NOSPLIT,
         .help = "x"},
};
#undef Z

static const struct zw_flag_set set = {
        .program = "fuzz",
        .flags = table,
        .n_flags = sizeof(table) / sizeof(table[0]),
};

static void check_format(const uint8_t *data, size_t size)
{
	uint64_t ms = 0, back = 0;
	char buf[64];

	if (size < 8)
		return;
	memcpy(&ms, data, 8);
	ms %= (uint64_t)INT64_MAX / 1000000; /* what a duration can hold */
	if (zw_flags_format_ms(ms, buf, sizeof(buf)) != 0)
		abort();
	if (zw_duration_parse_ms(buf, &back) != 0 || back != ms)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1), *argv[MAX_ARGS + 1], msg[128];
	struct fz v;
	int argc = 1, rc;

	if (!copy)
		return 0;
	check_format(data, size);
	memcpy(copy, data, size);
	copy[size] = '\0';
	argv[0] = "fuzz";
	for (char *p = copy; argc < MAX_ARGS && p <= copy + size;) {
		size_t l = strcspn(p, "\n");
		argv[argc++] = p;
		p[l] = '\0';
		p += l + 1;
	}
	memset(&v, 0, sizeof(v));
	if (zw_flags_defaults(&set, &v, msg, sizeof(msg)) != 0)
		abort();
	rc = zw_flags_parse(&set, &v, argc, argv, msg, sizeof(msg));
	if (rc == -1 && strnlen(msg, sizeof(msg)) == sizeof(msg))
		abort();
	if (rc == 0) {
		if (v.n < -10 || v.n > 10 || (v.words != -2 && (v.words < 0 || v.words > 100)) ||
		    v.ms < 1 || v.ms > 86400000 || v.n_list > 4 || v.n_whole > 2 ||
		    (v.str && !*v.str) || (v.on != 0 && v.on != 1))
			abort();
		for (size_t i = 0; i < v.n_list; i++)
			if (!*v.list[i] || strchr(v.list[i], ',') || v.list[i][0] == ' ')
				abort();
	}
	free(copy);
	return 0;
}
