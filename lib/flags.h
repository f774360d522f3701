/* Command-line flags shared by zerowire's programs: a declarative table
 * (name, kind, default, help, destination) parsed from argv.
 *
 * Forms: `--name=value` and `--name value`; a bool is `--name` (true) or
 * `--name=true|false|1|0|yes|no`. Durations are Go-style ("500ms", "5s",
 * "1h30m"; a bare number is seconds). `--help`/`-h` and `--version` are
 * built in. Destinations are offsets into a caller's struct, so one static
 * table serves every instance. */
#ifndef ZW_FLAGS_H
#define ZW_FLAGS_H

#include <stddef.h>
#include <stdint.h>

enum zw_flag_kind {
	ZW_FLAG_BOOL,     /* int: 0 or 1 */
	ZW_FLAG_INT,      /* integer of `width` bytes in [min, max], or one of `words` */
	ZW_FLAG_SIZE,     /* byte count: N, or N with k/M/G (1000s) or Ki/Mi/Gi (1024s) */
	ZW_FLAG_DURATION, /* Go-style duration in milliseconds, in [min, max] ms */
	ZW_FLAG_STRING,   /* const char *, borrowed from argv (or the default) */
	ZW_FLAG_ENUM,     /* const char *, one of `choices` */
	ZW_FLAG_LIST,     /* const char *[list_max] + size_t count at count_off */
};

/* Per-flag options. */
#define ZW_FLAG_NONEMPTY 1u /* string: an empty value is an error */
#define ZW_FLAG_NOSPLIT  2u /* list: one item per occurrence, commas kept */

/* A named value an int flag also accepts ("auto", "off"). */
struct zw_flag_word {
	const char *word;
	int64_t value;
};

struct zw_flag {
	const char *name; /* without the leading "--" */
	enum zw_flag_kind kind;
	size_t off;                 /* destination: offset in the caller's struct */
	unsigned width;             /* int, size, duration: sizeof the destination (1, 2, 4, 8) */
	const char *def;            /* default as it would be written on the command line (NULL:
	                             * none; the destination keeps what the caller put there) */
	const char *metavar;        /* value placeholder in --help ("ADDR"), NULL: from the kind */
	const char *help;           /* text for --help, lines split by '\n'; NULL: hidden alias */
	const char *group;          /* --help section heading, printed when it changes */
	int64_t min, max;           /* int, size: range; duration: range in ms */
	const char *const *choices; /* enum: NULL-terminated */
	const struct zw_flag_word *words; /* int: NULL-terminated by word, or NULL */
	size_t list_max;                  /* list: capacity of the array at off */
	size_t count_off;                 /* list: offset of its size_t count */
	const char *env;                  /* environment variable read before argv, or NULL */
	unsigned opts;                    /* ZW_FLAG_NONEMPTY, ZW_FLAG_NOSPLIT */
};

struct zw_flag_set {
	const char *program; /* "zerowire-proxy": --version and messages */
	const char *head;    /* --help text before the flags (usage line, summary) */
	const char *tail;    /* --help text after the flags, or NULL */
	const struct zw_flag *flags;
	size_t n_flags;
};

/* Sets a flag's destination: a field of `type` (offset and width). */
#define ZW_FLAG_DEST(type, field) .off = offsetof(type, field), .width = sizeof(((type *)0)->field)

/* Choices both programs share: --log-level and --log-format. */
extern const char *const zw_flag_log_levels[];  /* debug info warn error */
extern const char *const zw_flag_log_formats[]; /* logfmt json */

/* zw_flags_parse's results besides 0 and -1. */
#define ZW_FLAGS_HELP    1 /* --help or -h: print zw_flags_usage, exit 0 */
#define ZW_FLAGS_VERSION 2 /* --version: print zw_flags_version, exit 0 */

/* Stores every flag's default (`def`) and then the value of every set,
 * non-empty `env` variable into the struct at `base`. A string default is
 * stored as the pointer `def` itself. Returns 0, or -1 with a message in
 * `msg` (a default that does not parse, or a bad environment value). */
int zw_flags_defaults(const struct zw_flag_set *set, void *base, char *msg, size_t msg_len);

/* Parses argv[1..argc-1] into the struct at `base` (which should hold the
 * defaults). String values point into argv (borrowed for the program's
 * life); list values are split at commas in place (argv is modified) and
 * trimmed of spaces, empty items dropped. Returns 0, ZW_FLAGS_HELP,
 * ZW_FLAGS_VERSION, or -1 with a message in `msg` naming the flag and what
 * was expected ("unknown flag --x", "flag --x needs a value", ...). */
int zw_flags_parse(const struct zw_flag_set *set, void *base, int argc, char **argv, char *msg,
                   size_t msg_len);

/* Builds the --help text from the table into a new string at *out (the
 * caller frees it). Returns 0 or -1 (out of memory). */
int zw_flags_usage(const struct zw_flag_set *set, char **out);

/* Writes "<program> <version> (commit <commit>)\n" into buf. Returns 0, or
 * -1 when it did not fit. */
int zw_flags_version(const struct zw_flag_set *set, char *buf, size_t len);

/* Formats a millisecond count as a Go-style duration ("1h30m", "500ms",
 * "0s") into buf. Returns 0, or -1 when it did not fit. */
int zw_flags_format_ms(uint64_t ms, char *buf, size_t len);

#endif
