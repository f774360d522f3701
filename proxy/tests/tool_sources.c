/* Test tool: runs proxy/sources.c (live against an API server, or static)
 * on a libuv loop and reports on stdout, one JSON object per line:
 *
 *   {"event":"table","version":N,"targets":[{"key","service","port",
 *     "portName","scaledObject","scaleName","hosts","paths"}...]}
 *   {"event":"endpoints","service":"ns/svc","ready":N}     (change hook)
 *   {"event":"synced"}
 *
 * Commands on stdin (one per line), each answered by one line:
 *   route <host|-> <path> [Name:value]...  -> {"event":"route","key":...,"prefix":...}
 *                                             or {"event":"route","miss":"host|path|headers"}
 *   get <ns> <svc> <port-number|port-name> -> {"event":"get","endpoints":["ip:port",...]}
 *   dump                                   -> {"event":"dump","endpoints":{...}}
 *   reload                                 -> {"event":"reload"}
 *   quit                                   -> closes everything, exits 0
 * SIGTERM/SIGINT also close and exit 0. Used by proxy/tests/sources_test.py. */
#include "endpoints.h"
#include "kubeconfig.h"
#include "log.h"
#include "routes.h"
#include "sources.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#define MAX_NS       ZW_SOURCES_MAX_NS
#define CMD_LINE_MAX 8192

static uv_loop_t *loop;
static struct zw_route_current cur;
static struct zw_endpoints *eps;
static struct zw_sources *src;
static struct zw_kube_config *kcfg;
static uv_pipe_t in;
static bool in_open;
static uv_signal_t sigterm, sigint;
static uv_timer_t sync_timer;
static char line[CMD_LINE_MAX];
static size_t line_len;
static bool quitting;

static void emit(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	if (s) {
		fputs(s, stdout);
		fputc('\n', stdout);
		fflush(stdout);
		free(s);
	}
	json_decref(o);
}

static void strv_append(json_t *a, char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
}

static void on_publish(void *ctx, struct zw_route_table *t)
{
	(void)ctx;
	json_t *arr = json_array();
	for (size_t i = 0; i < zw_route_table_count(t); i++) {
		const struct zw_target *tg = zw_route_table_target(t, i);
		json_t *hosts = json_array(), *paths = json_array();
		for (size_t r = 0; r < tg->n_rules; r++) {
			strv_append(hosts, tg->rules[r].hosts, tg->rules[r].n_hosts);
			strv_append(paths, tg->rules[r].paths, tg->rules[r].n_paths);
		}
		char svc[512];
		snprintf(svc, sizeof(svc), "%s/%s", tg->service.namespace, tg->service.name);
		json_array_append_new(
		        arr,
		        json_pack("{s:s,s:s,s:i,s:o,s:o,s:o,s:o,s:o}", "key",
		                  zw_route_table_key(t, i), "service", svc, "port",
		                  tg->service.port, "portName",
		                  tg->service.port_name ? json_string(tg->service.port_name)
		                                        : json_null(),
		                  "scaledObject",
		                  tg->scaled_object ? json_string(tg->scaled_object) : json_null(),
		                  "scaleName",
		                  tg->scale_name ? json_string(tg->scale_name) : json_null(),
		                  "hosts", hosts, "paths", paths));
	}
	emit(json_pack("{s:s,s:I,s:o}", "event", "table", "version",
	               (json_int_t)zw_route_current_version(&cur), "targets", arr));
}

static void on_endpoints(void *ctx, const char *ns, const char *svc, size_t n_ready)
{
	(void)ctx;
	char key[512];
	snprintf(key, sizeof(key), "%s/%s", ns, svc);
	emit(json_pack("{s:s,s:s,s:i}", "event", "endpoints", "service", key, "ready",
	               (int)n_ready));
}

static void sync_check(uv_timer_t *t)
{
	if (src && zw_sources_synced(src)) {
		emit(json_pack("{s:s}", "event", "synced"));
		uv_timer_stop(t);
	}
}

struct hdrs {
	char *name[32];
	char *value[32];
	size_t n;
};

static int hdr_get(void *ctx, const char *name, size_t name_len, size_t index, const char **value,
                   size_t *value_len)
{
	struct hdrs *h = ctx;
	size_t seen = 0;
	for (size_t i = 0; i < h->n; i++) {
		if (strlen(h->name[i]) == name_len &&
		    strncasecmp(h->name[i], name, name_len) == 0 && seen++ == index) {
			*value = h->value[i];
			*value_len = strlen(h->value[i]);
			return 1;
		}
	}
	return 0;
}

static void cmd_route(char **tok, size_t n)
{
	if (n < 3) {
		emit(json_pack("{s:s,s:s}", "event", "error", "reason", "route <host> <path>"));
		return;
	}
	struct hdrs h = {.n = 0};
	for (size_t i = 3; i < n && h.n < 32; i++) {
		char *colon = strchr(tok[i], ':');
		if (!colon)
			continue;
		*colon = '\0';
		h.name[h.n] = tok[i];
		h.value[h.n++] = colon + 1;
	}
	const char *host = strcmp(tok[1], "-") == 0 ? NULL : tok[1];
	struct zw_route_request req = {.host = host,
	                               .host_len = host ? strlen(host) : 0,
	                               .path = tok[2],
	                               .path_len = strlen(tok[2]),
	                               .headers = {hdr_get, &h}};
	struct zw_route_match m;
	struct zw_route_table *t = zw_route_current_acquire(&cur);
	int rc = zw_route_lookup(t, &req, &m);
	if (rc == 0)
		emit(json_pack("{s:s,s:s,s:s,s:s}", "event", "route", "key", m.key, "prefix",
		               m.prefix, "host", m.host));
	else
		emit(json_pack("{s:s,s:s}", "event", "route", "miss",
		               m.miss == ZW_ROUTE_MISS_HOST   ? "host"
		               : m.miss == ZW_ROUTE_MISS_PATH ? "path"
		                                              : "headers"));
	zw_route_current_release(t);
}

static void cmd_get(char **tok, size_t n)
{
	if (n < 4) {
		emit(json_pack("{s:s,s:s}", "event", "error", "reason", "get <ns> <svc> <port>"));
		return;
	}
	char *end;
	long port = strtol(tok[3], &end, 10);
	struct zw_endpoint_set *set;
	if (zw_endpoints_get(eps, tok[1], tok[2], *end ? 0 : (int)port, *end ? tok[3] : NULL,
	                     &set) != 0) {
		emit(json_pack("{s:s,s:s}", "event", "error", "reason", "out of memory"));
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < set->n; i++) {
		char buf[80];
		snprintf(buf, sizeof(buf), "%s:%u", set->eps[i].ip, (unsigned)set->eps[i].port);
		json_array_append_new(arr, json_string(buf));
	}
	zw_endpoint_set_unref(set);
	emit(json_pack("{s:s,s:o}", "event", "get", "endpoints", arr));
}

static void sources_closed(void *ctx)
{
	(void)ctx;
	src = NULL;
}

static void quit(void)
{
	if (quitting)
		return;
	quitting = true;
	if (src)
		zw_sources_close(src, sources_closed, NULL);
	uv_close((uv_handle_t *)&sigterm, NULL);
	uv_close((uv_handle_t *)&sigint, NULL);
	uv_close((uv_handle_t *)&sync_timer, NULL);
	if (in_open)
		uv_close((uv_handle_t *)&in, NULL);
	in_open = false;
}

static void command(char *text)
{
	char *tok[40];
	size_t n = 0;
	char *save = NULL;
	for (char *t = strtok_r(text, " \t\r", &save); t && n < 40;
	     t = strtok_r(NULL, " \t\r", &save))
		tok[n++] = t;
	if (!n)
		return;
	if (strcmp(tok[0], "route") == 0) {
		cmd_route(tok, n);
	} else if (strcmp(tok[0], "get") == 0) {
		cmd_get(tok, n);
	} else if (strcmp(tok[0], "dump") == 0) {
		json_t *j = NULL;
		zw_endpoints_to_json(eps, &j);
		emit(json_pack("{s:s,s:o}", "event", "dump", "endpoints", j ? j : json_null()));
	} else if (strcmp(tok[0], "reload") == 0) {
		zw_sources_reload(src);
		emit(json_pack("{s:s}", "event", "reload"));
	} else if (strcmp(tok[0], "quit") == 0) {
		quit();
	} else {
		emit(json_pack("{s:s,s:s}", "event", "error", "reason", "unknown command"));
	}
}

static void alloc_cb(uv_handle_t *h, size_t sz, uv_buf_t *buf)
{
	(void)h;
	(void)sz;
	static char rb[4096];
	*buf = uv_buf_init(rb, sizeof(rb));
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	(void)s;
	if (nread < 0) {
		quit(); /* stdin closed: the driving test is gone */
		return;
	}
	for (ssize_t i = 0; i < nread && !quitting; i++) {
		char c = buf->base[i];
		if (c == '\n') {
			line[line_len] = '\0';
			command(line);
			line_len = 0;
		} else if (line_len + 1 < sizeof(line)) {
			line[line_len++] = c;
		}
	}
}

static void on_signal(uv_signal_t *h, int signum)
{
	(void)h;
	(void)signum;
	quit();
}

static const char usage[] =
        "usage: tool_sources [--kubeconfig PATH] [--namespace NS]... [--targets FILE]\n"
        "                    [--endpoints FILE] [--spec SPEC] [--poll-ms N] [--coalesce-ms N]\n"
        "                    [--log-level debug|info|warn|error]\n";

int main(int argc, char **argv)
{
	struct zw_sources_config cfg = {0};
	const char *namespaces[MAX_NS];
	const char *kubeconfig = NULL;
	enum zw_log_level level = ZW_LOG_INFO;
	int rc = 1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v) {
			fprintf(stderr, "%s", usage);
			return 2;
		}
		i++;
		if (strcmp(a, "--kubeconfig") == 0)
			kubeconfig = v;
		else if (strcmp(a, "--namespace") == 0 && cfg.n_namespaces < MAX_NS)
			namespaces[cfg.n_namespaces++] = v;
		else if (strcmp(a, "--targets") == 0)
			cfg.targets_file = v;
		else if (strcmp(a, "--endpoints") == 0)
			cfg.endpoints_file = v;
		else if (strcmp(a, "--spec") == 0)
			cfg.endpoints_spec = v;
		else if (strcmp(a, "--poll-ms") == 0)
			cfg.poll_ms = strtoull(v, NULL, 10);
		else if (strcmp(a, "--coalesce-ms") == 0)
			cfg.coalesce_ms = strtoull(v, NULL, 10);
		else if (strcmp(a, "--log-level") == 0 && zw_log_level_parse(v, &level) == 0)
			;
		else {
			fprintf(stderr, "tool_sources: bad argument %s\n%s", a, usage);
			return 2;
		}
	}
	zw_log_init("sources-tool", level);
	cfg.namespaces = namespaces;
	cfg.on_publish = on_publish;
	char err[512];
	if (kubeconfig) {
		if (zw_kube_config_load_file(kubeconfig, NULL, &kcfg, err, sizeof(err)) != 0) {
			fprintf(stderr, "tool_sources: %s\n", err);
			return 1;
		}
		cfg.kube = kcfg;
	}
	loop = uv_default_loop();
	if (zw_route_current_init(&cur) != 0 || zw_endpoints_new(&eps) != 0)
		return 1;
	struct zw_ep_subscriber sub = {on_endpoints, NULL};
	zw_endpoints_subscribe(eps, &sub);
	if (zw_sources_new(loop, &cfg, &cur, eps, &src, err, sizeof(err)) != 0) {
		fprintf(stderr, "tool_sources: %s\n", err);
		goto out;
	}
	uv_signal_init(loop, &sigterm);
	uv_signal_start(&sigterm, on_signal, SIGTERM);
	uv_signal_init(loop, &sigint);
	uv_signal_start(&sigint, on_signal, SIGINT);
	uv_timer_init(loop, &sync_timer);
	uv_timer_start(&sync_timer, sync_check, 10, 10);
	if (uv_guess_handle(0) == UV_NAMED_PIPE && uv_pipe_init(loop, &in, 0) == 0 &&
	    uv_pipe_open(&in, 0) == 0) {
		in_open = true;
		uv_read_start((uv_stream_t *)&in, alloc_cb, read_cb);
	}
	if (zw_sources_start(src) != 0) {
		fprintf(stderr, "tool_sources: start failed\n");
		quit();
	}
	uv_run(loop, UV_RUN_DEFAULT);
	rc = src ? 1 : 0;
out:
	zw_endpoints_free(eps);
	zw_route_current_destroy(&cur);
	zw_kube_config_free(kcfg);
	if (uv_loop_close(loop) != 0)
		rc = 1; /* something was left on the loop */
	return rc;
}
