/* Prometheus text helpers (see promtext.h). */
#include "promtext.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

const char *zw_prom_escape(char *dst, size_t cap, const char *src)
{
	size_t j = 0;

	for (; src && *src; src++) {
		const char *rep = NULL;
		char one[2] = {*src, '\0'};

		if (*src == '\\')
			rep = "\\\\";
		else if (*src == '"')
			rep = "\\\"";
		else if (*src == '\n')
			rep = "\\n";
		else
			rep = one;
		size_t rl = strlen(rep);
		if (j + rl >= cap)
			break;
		memcpy(dst + j, rep, rl);
		j += rl;
	}
	dst[j] = '\0';
	return dst;
}

int zw_prom_build_info(FILE *f, const char *program)
{
	char p[64];

	if (fprintf(f,
	            "# HELP zerowire_build_info zerowire build: program and version (always 1).\n"
	            "# TYPE zerowire_build_info gauge\n"
	            "zerowire_build_info{program=\"%s\",version=\"%s\"} 1\n",
	            zw_prom_escape(p, sizeof(p), program), ZW_VERSION) < 0)
		return -1;
	return 0;
}

/* Seconds since the epoch at boot (btime of /proc/stat), or -1. */
static double boot_time(void)
{
	FILE *st = fopen("/proc/stat", "re");
	char line[256];
	double bt = -1;

	if (!st)
		return -1;
	while (fgets(line, sizeof(line), st))
		if (strncmp(line, "btime ", 6) == 0) {
			bt = strtod(line + 6, NULL);
			break;
		}
	fclose(st);
	return bt;
}

/* Reads utime, stime (ticks), starttime (ticks after boot), vsize (bytes)
 * and rss (pages) from /proc/self/stat. Returns 0 or -1. */
static int self_stat(double *utime, double *stime, double *start, double *vsize, double *rss)
{
	FILE *st = fopen("/proc/self/stat", "re");
	char buf[1024];
	size_t n;
	int rc = -1;

	if (!st)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, st);
	fclose(st);
	buf[n] = '\0';
	/* The command name may hold spaces and parentheses: fields start after
	 * the last ')'. Field 3 (state) follows it. */
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	p++;
	unsigned long long v[25] = {0};
	int k = 0;
	char *save = NULL;
	for (char *tok = strtok_r(p, " ", &save); tok && k < 25; tok = strtok_r(NULL, " ", &save))
		v[k++] = strtoull(tok, NULL, 10);
	/* v[0] is field 3 (state, parses as 0); field N is v[N - 3]. */
	if (k >= 22) {
		*utime = (double)v[14 - 3];
		*stime = (double)v[15 - 3];
		*start = (double)v[22 - 3];
		*vsize = (double)v[23 - 3];
		*rss = (double)v[24 - 3];
		rc = 0;
	}
	return rc;
}

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own descriptor */
}

int zw_prom_process(FILE *f)
{
	double ut, stt, start, vsize, rss;
	double tick = (double)sysconf(_SC_CLK_TCK);
	double page = (double)sysconf(_SC_PAGESIZE);
	struct rlimit rl;
	int fds = open_fds();
	int w = 0;

	if (tick <= 0)
		tick = 100;
	if (self_stat(&ut, &stt, &start, &vsize, &rss) == 0) {
		double bt = boot_time();
		w |= fprintf(f,
		             "# HELP process_cpu_seconds_total Total user and system CPU time "
		             "spent "
		             "in seconds.\n# TYPE process_cpu_seconds_total counter\n"
		             "process_cpu_seconds_total %.2f\n"
		             "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
		             "# TYPE process_resident_memory_bytes gauge\n"
		             "process_resident_memory_bytes %.0f\n"
		             "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
		             "# TYPE process_virtual_memory_bytes gauge\n"
		             "process_virtual_memory_bytes %.0f\n",
		             (ut + stt) / tick, rss * page, vsize) < 0;
		if (bt >= 0)
			w |= fprintf(f,
			             "# HELP process_start_time_seconds Start time of the process "
			             "since unix epoch in seconds.\n"
			             "# TYPE process_start_time_seconds gauge\n"
			             "process_start_time_seconds %.2f\n",
			             bt + start / tick) < 0;
	}
	if (fds >= 0)
		w |= fprintf(f,
		             "# HELP process_open_fds Number of open file descriptors.\n"
		             "# TYPE process_open_fds gauge\nprocess_open_fds %d\n",
		             fds) < 0;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		w |= fprintf(f,
		             "# HELP process_max_fds Maximum number of open file descriptors.\n"
		             "# TYPE process_max_fds gauge\nprocess_max_fds %llu\n",
		             (unsigned long long)rl.rlim_cur) < 0;
	return w ? -1 : 0;
}
