/* Prometheus text exposition helpers shared by zerowire-proxy and
 * zerowire-webhook: label value escaping, zerowire_build_info and the
 * standard process_* metrics (the names client_golang exports), every
 * family with # HELP and # TYPE. Output goes to a stdio stream
 * (open_memstream in the callers). */
#ifndef ZW_PROMTEXT_H
#define ZW_PROMTEXT_H

#include <stddef.h>
#include <stdio.h>

/* Copies src (NUL-terminated, borrowed) into dst[0..cap) escaped as a
 * Prometheus label value (backslash, double quote and newline escaped),
 * truncated to fit and always NUL-terminated (cap > 0). Returns dst. */
const char *zw_prom_escape(char *dst, size_t cap, const char *src);

/* Writes zerowire_build_info{program=...,version=...} 1 with its HELP and
 * TYPE lines to f (borrowed). `program` is "proxy" or "webhook". Returns 0 or
 * -1 (write error). */
int zw_prom_build_info(FILE *f, const char *program);

/* Writes process_resident_memory_bytes, process_virtual_memory_bytes,
 * process_open_fds, process_max_fds, process_cpu_seconds_total and
 * process_start_time_seconds of the calling process, read from /proc/self,
 * to f (borrowed). A value that cannot be read is left out (its family
 * too). Returns 0 or -1 (write error). */
int zw_prom_process(FILE *f);

#endif
