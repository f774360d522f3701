/* Go-style durations ("1m", "15s", "500ms", "1h30m") as Kubernetes
 * objects, KEDA metadata and zerowire's flags write them. */
#ifndef ZW_DURATION_H
#define ZW_DURATION_H

#include <stdint.h>

/* Parses a Go-style duration ("1m", "15s", "500ms", "1h30m", "2") into
 * milliseconds; a bare number is seconds. Units h, m, s, ms, us/µs/μs, ns;
 * fractions ("1.5s") and sequences ("1h30m") as in Go; a non-zero result
 * below 1 ms rounds up to 1 ms. Negative values and values beyond Go's
 * int64 nanoseconds are rejected. Returns 0 or -1 (*out untouched). */
int zw_duration_parse_ms(const char *s, uint64_t *out);

#endif
