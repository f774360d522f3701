/* lib_tool_kube: a small CLI over the Kubernetes client, driven by
 * lib/tests/kube_live_test.py against a real kube-apiserver.
 *
 *   lib_tool_kube [options] COMMAND ARGS...
 *     get       GV RESOURCE NS NAME
 *     list      GV RESOURCE NS                 (blocking driver only)
 *     create    GV RESOURCE NS                 body on stdin
 *     update    GV RESOURCE NS NAME            body on stdin
 *     patch     GV RESOURCE NS NAME json|merge|strategic   patch on stdin
 *     delete    GV RESOURCE NS NAME
 *     scale-get GV RESOURCE NS NAME
 *     scale-set GV RESOURCE NS NAME REPLICAS
 *     served    GV RESOURCE
 *     watch     GV RESOURCE NS [GV RESOURCE NS]...   until SIGTERM/SIGINT (at most
 *               MAX_WATCHES watches, all on one libuv loop: --driver uv only)
 *   GV is "v1" (core) or "group/version"; NS "-" means none (cluster
 *   scope or all namespaces).
 *   options: --kubeconfig PATH  --sa-dir DIR (in-cluster config from DIR and
 *            KUBERNETES_SERVICE_HOST/PORT)  --server URL (override)  --driver thread|uv
 *            --dry-run  --field-manager NAME  --selector LABELS  --limit N
 *            --timeout-seconds N (watch)  --discovery-ms N (watch)
 *            --stop-after N (uv watch: each watch stops itself from inside its
 *            N-th event callback; the tool exits when all have stopped)
 *
 * Output is JSON on stdout: the response object; for list
 * {"resourceVersion","pages","items"}; for watch one line per event
 * {"resource","type","namespace","name","rv","object"} and per status change
 * {"resource","status","reason","delay_ms","failures"}. A failed request prints
 * {"error":{"http_status","reason","message"}} and exits 2; bad usage exits 1. */
#include "kube.h"
#include "kube_uv.h"
#include "kubeconfig.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_WATCHES 8

struct opts {
	const char *kubeconfig, *sa_dir, *server, *driver, *field_manager, *selector;
	int dry_run;
	unsigned limit, timeout_seconds, discovery_ms, stop_after;
};

/* One watch of the tool: its resource name (for output) and, with the uv
 * driver, its handle and event count for --stop-after. */
struct watch_ctx {
	const char *resource;
	struct zw_kube_uv_watch *uw;
	unsigned seen;
	int stopped;
};

static unsigned stop_after, nwatches, nstopped;
static void stop_all_later(void);

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static void emit(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);

	pthread_mutex_lock(&out_lock);
	if (s)
		printf("%s\n", s);
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
	free(s);
}

static int print_error(const struct zw_kube_error *err)
{
	json_t *j = json_pack("{s:{s:i,s:s,s:s}}", "error", "http_status", err->http_status,
	                      "reason", err->reason, "message", err->message);

	emit(j);
	json_decref(j);
	return 2;
}

static int usage(void)
{
	fprintf(stderr, "usage: lib_tool_kube [--kubeconfig P | --sa-dir D] [--server URL] "
	                "[--driver thread|uv] "
	                "[--dry-run] [--field-manager M] [--selector S] [--limit N] "
	                "[--timeout-seconds N] [--discovery-ms N] COMMAND ARGS...\n");
	return 1;
}

/* "v1" -> group NULL, version v1; "apps/v1" -> apps, v1 (gv is modified). */
static void split_gv(char *gv, const char **group, const char **version)
{
	char *slash = strchr(gv, '/');

	if (slash) {
		*slash = '\0';
		*group = gv;
		*version = slash + 1;
	} else {
		*group = NULL;
		*version = gv;
	}
}

static json_t *read_stdin_json(void)
{
	json_error_t jerr;
	json_t *j = json_loadf(stdin, 0, &jerr);

	if (!j)
		fprintf(stderr, "lib_tool_kube: stdin is not JSON: %s (line %d)\n", jerr.text,
		        jerr.line);
	return j;
}

/* ---- watch ---- */

static void on_event(void *ud, enum zw_watch_type type, json_t *obj)
{
	json_t *md = json_object_get(obj, "metadata");
	struct watch_ctx *c = ud;
	json_t *j;

	if (c->stopped) {
		/* the client promised no callback after zw_kube_uv_watch_stop */
		fprintf(stderr, "lib_tool_kube: EVENT AFTER STOP\n");
		abort();
	}
	if (type == ZW_WATCH_SYNCED) {
		j = json_pack("{s:s,s:s}", "resource", c->resource, "type", "SYNCED");
	} else {
		const char *ns = json_string_value(json_object_get(md, "namespace"));
		const char *name = json_string_value(json_object_get(md, "name"));
		const char *rv = json_string_value(json_object_get(md, "resourceVersion"));

		j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:O}", "resource", c->resource, "type",
		              zw_watch_type_name(type), "namespace", ns ? ns : "", "name",
		              name ? name : "", "rv", rv ? rv : "", "object", obj);
	}
	emit(j);
	json_decref(j);
	if (c->uw && stop_after && ++c->seen == stop_after) {
		zw_kube_uv_watch_stop(c->uw);
		c->stopped = 1;
		if (++nstopped == nwatches)
			stop_all_later();
	}
}

static void on_status(void *ud, const struct zw_watch_status *st)
{
	static const char *const names[] = {"WAITING", "SYNCED", "RELIST", "RETRY"};
	struct watch_ctx *c = ud;
	json_t *j;

	if (c->stopped)
		abort();
	j = json_pack("{s:s,s:s,s:s,s:i,s:i}", "resource", c->resource, "status", names[st->kind],
	              "reason", st->reason ? st->reason : "", "delay_ms", (int)st->delay_ms,
	              "failures", (int)st->failures);
	emit(j);
	json_decref(j);
}

static uv_signal_t sig_term, sig_int;
static uv_timer_t stop_timer;
static struct zw_kube_uv *uv_client;

static void tool_uv_shutdown(void)
{
	uv_close((uv_handle_t *)&sig_term, NULL);
	uv_close((uv_handle_t *)&sig_int, NULL);
	uv_close((uv_handle_t *)&stop_timer, NULL);
	zw_kube_uv_close(uv_client, NULL, NULL);
}

static void uv_on_signal(uv_signal_t *h, int signum)
{
	(void)h;
	(void)signum;
	tool_uv_shutdown();
}

static void on_stop_timer(uv_timer_t *h)
{
	(void)h;
	tool_uv_shutdown();
}

/* zw_kube_uv_close may not run inside a callback of the client: defer. */
static void stop_all_later(void)
{
	uv_timer_start(&stop_timer, on_stop_timer, 0, 0);
}

static int run_watch(struct zw_kube_config *cfg, const struct opts *o,
                     const struct zw_watch_spec *specs, int n)
{
	uv_loop_t loop;

	uv_loop_init(&loop);
	if (zw_kube_uv_new(&loop, cfg, &uv_client) != 0)
		return 1;
	uv_timer_init(&loop, &stop_timer);
	stop_after = o->stop_after;
	nwatches = (unsigned)n;
	for (int i = 0; i < n; i++) {
		struct watch_ctx *c = specs[i].ud;

		if (zw_kube_uv_watch_start(uv_client, &specs[i], &c->uw) != 0) {
			fprintf(stderr, "lib_tool_kube: cannot start watch %d\n", i);
			return 1;
		}
	}
	uv_signal_init(&loop, &sig_term);
	uv_signal_init(&loop, &sig_int);
	uv_signal_start(&sig_term, uv_on_signal, SIGTERM);
	uv_signal_start(&sig_int, uv_on_signal, SIGINT);
	uv_run(&loop, UV_RUN_DEFAULT);
	return uv_loop_close(&loop) == 0 ? 0 : 3;
}

/* ---- requests through the libuv driver ---- */

struct uv_result {
	int rc;
	json_t *resp;
	struct zw_kube_error err;
};

static void uv_done(void *ud, int rc, json_t *resp, const struct zw_kube_error *err)
{
	struct uv_result *r = ud;

	r->rc = rc;
	r->resp = json_incref(resp);
	if (err)
		r->err = *err;
}

static int uv_request(struct zw_kube_config *cfg, const char *method, const char *path,
                      json_t *body, const char *ctype, json_t **out, struct zw_kube_error *err)
{
	struct uv_result r = {-1, NULL, {0, "", ""}};
	struct zw_kube_uv *ku;
	uv_loop_t loop;

	uv_loop_init(&loop);
	if (zw_kube_uv_new(&loop, cfg, &ku) != 0)
		return -1;
	if (zw_kube_uv_request(ku, method, path, body, ctype, 0, uv_done, &r, err) != 0) {
		zw_kube_uv_close(ku, NULL, NULL);
		uv_run(&loop, UV_RUN_DEFAULT);
		uv_loop_close(&loop);
		return -1;
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	zw_kube_uv_close(ku, NULL, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&loop) != 0)
		fprintf(stderr, "lib_tool_kube: loop still has handles\n");
	*out = r.resp;
	*err = r.err;
	return r.rc;
}

int main(int argc, char **argv)
{
	struct opts o = {.driver = "thread"};
	struct zw_kube_config *cfg = NULL;
	struct zw_kube_error err;
	struct zw_kube_ref ref = {0};
	struct zw_kube_opts ko = {0};
	struct zw_kube *k = NULL;
	json_t *body = NULL, *out = NULL;
	const char *cmd, *method = "GET", *ctype = NULL;
	char cerr[ZW_KUBE_ERRLEN], path[ZW_KUBE_PATH_MAX];
	int i, rc = 1, nargs, uv;

	memset(&err, 0, sizeof(err));
	/* options may come anywhere; the rest are positional (argv is reordered) */
	nargs = 0;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strncmp(a, "--", 2) != 0) {
			argv[1 + nargs++] = argv[i];
			continue;
		}
		if (strcmp(a, "--dry-run") == 0) {
			o.dry_run = 1;
			continue;
		}
		if (!v)
			return usage();
		i++;
		if (strcmp(a, "--kubeconfig") == 0)
			o.kubeconfig = v;
		else if (strcmp(a, "--sa-dir") == 0)
			o.sa_dir = v;
		else if (strcmp(a, "--server") == 0)
			o.server = v;
		else if (strcmp(a, "--driver") == 0)
			o.driver = v;
		else if (strcmp(a, "--field-manager") == 0)
			o.field_manager = v;
		else if (strcmp(a, "--selector") == 0)
			o.selector = v;
		else if (strcmp(a, "--limit") == 0)
			o.limit = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--timeout-seconds") == 0)
			o.timeout_seconds = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--discovery-ms") == 0)
			o.discovery_ms = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--stop-after") == 0)
			o.stop_after = (unsigned)strtoul(v, NULL, 10);
		else
			return usage();
	}
	if (nargs < 3)
		return usage();
	i = 1;
	cmd = argv[i++];
	nargs--;
	uv = strcmp(o.driver, "uv") == 0;
	if (!uv && strcmp(o.driver, "thread") != 0)
		return usage();
	split_gv(argv[i], &ref.group, &ref.version);
	ref.resource = argv[i + 1];
	if (nargs >= 3 && strcmp(argv[i + 2], "-") != 0)
		ref.namespace = argv[i + 2];
	if (nargs >= 4)
		ref.name = argv[i + 3];
	ko.dry_run = o.dry_run;
	ko.field_manager = o.field_manager;
	ko.label_selector = o.selector;
	ko.limit = o.limit;

	if ((o.sa_dir ? zw_kube_config_in_cluster(o.sa_dir, &cfg, cerr, sizeof(cerr))
	              : zw_kube_config_auto(o.kubeconfig, &cfg, cerr, sizeof(cerr))) != 0) {
		fprintf(stderr, "lib_tool_kube: %s\n", cerr);
		return 1;
	}
	if (o.server) {
		free(cfg->server);
		cfg->server = strdup(o.server);
	}
	if (zw_kube_new(cfg, &k) != 0)
		goto out;

	if (strcmp(cmd, "watch") == 0 && nargs % 3 == 0 && nargs / 3 <= MAX_WATCHES && uv) {
		static struct watch_ctx ctxs[MAX_WATCHES];
		struct zw_watch_spec specs[MAX_WATCHES];
		int n = nargs / 3;

		memset(specs, 0, sizeof(specs));
		for (int w = 0; w < n; w++) {
			struct zw_watch_spec *spec = &specs[w];
			char *ns = argv[i + 3 * w + 2];

			if (w == 0) { /* argv[i] was split above */
				spec->group = ref.group;
				spec->version = ref.version;
			} else {
				split_gv(argv[i + 3 * w], &spec->group, &spec->version);
			}
			spec->resource = argv[i + 3 * w + 1];
			spec->namespace = strcmp(ns, "-") == 0 ? NULL : ns;
			spec->label_selector = o.selector;
			spec->timeout_seconds = o.timeout_seconds;
			spec->page_limit = o.limit;
			spec->discovery_interval_ms = o.discovery_ms;
			spec->on_event = on_event;
			spec->on_status = on_status;
			ctxs[w].resource = argv[i + 3 * w + 1];
			spec->ud = &ctxs[w];
		}
		rc = run_watch(cfg, &o, specs, n);
		goto out;
	}
	if (strcmp(cmd, "served") == 0 && nargs == 2) {
		int served;

		if (zw_kube_served(k, ref.group, ref.version, ref.resource, &served, &err) != 0) {
			rc = print_error(&err);
			goto out;
		}
		out = json_pack("{s:b}", "served", served);
		emit(out);
		rc = 0;
		goto out;
	}
	if (strcmp(cmd, "list") == 0 && nargs == 3 && !uv) {
		unsigned pages = 0;
		json_t *list;

		if (zw_kube_list(k, &ref, &ko, &list, &pages, &err) != 0) {
			rc = print_error(&err);
			goto out;
		}
		out = json_pack(
		        "{s:O?,s:i,s:O}", "resourceVersion",
		        json_object_get(json_object_get(list, "metadata"), "resourceVersion"),
		        "pages", (int)pages, "items", json_object_get(list, "items"));
		json_decref(list);
		emit(out);
		rc = 0;
		goto out;
	}
	if (strcmp(cmd, "scale-get") == 0 && nargs == 4 && !uv) {
		int replicas, current;

		if (zw_kube_scale_get(k, &ref, &replicas, &current, &err) != 0) {
			rc = print_error(&err);
			goto out;
		}
		out = json_pack("{s:i,s:i}", "replicas", replicas, "current", current);
		emit(out);
		rc = 0;
		goto out;
	}
	if (strcmp(cmd, "scale-set") == 0 && nargs == 5 && !uv) {
		if (zw_kube_scale_set(k, &ref, &ko, atoi(argv[i + 4]), &err) != 0) {
			rc = print_error(&err);
			goto out;
		}
		out = json_pack("{s:i}", "replicas", atoi(argv[i + 4]));
		emit(out);
		rc = 0;
		goto out;
	}

	/* Plain requests: one code path per driver over the same paths. */
	if (strcmp(cmd, "get") == 0 && nargs == 4) {
		method = "GET";
	} else if (strcmp(cmd, "delete") == 0 && nargs == 4) {
		method = "DELETE";
	} else if (strcmp(cmd, "create") == 0 && nargs == 3) {
		method = "POST";
	} else if (strcmp(cmd, "update") == 0 && nargs == 4) {
		method = "PUT";
	} else if (strcmp(cmd, "patch") == 0 && nargs == 5) {
		const char *t = argv[i + 4];

		method = "PATCH";
		if (strcmp(t, "json") == 0)
			ctype = zw_kube_patch_content_type(ZW_KUBE_PATCH_JSON);
		else if (strcmp(t, "merge") == 0)
			ctype = zw_kube_patch_content_type(ZW_KUBE_PATCH_MERGE);
		else if (strcmp(t, "strategic") == 0)
			ctype = zw_kube_patch_content_type(ZW_KUBE_PATCH_STRATEGIC);
		else
			goto bad;
	} else {
		goto bad;
	}
	if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
	    strcmp(method, "PATCH") == 0) {
		body = read_stdin_json();
		if (!body)
			goto out;
	}
	if (uv) {
		if (zw_kube_path(&ref, &ko, path, sizeof(path)) != 0)
			goto bad;
		rc = uv_request(cfg, method, path, body, ctype, &out, &err);
	} else if (strcmp(cmd, "get") == 0) {
		rc = zw_kube_get(k, &ref, &ko, &out, &err);
	} else if (strcmp(cmd, "delete") == 0) {
		rc = zw_kube_delete(k, &ref, &ko, &out, &err);
	} else if (strcmp(cmd, "create") == 0) {
		rc = zw_kube_create(k, &ref, &ko, body, &out, &err);
	} else if (strcmp(cmd, "update") == 0) {
		rc = zw_kube_update(k, &ref, &ko, body, &out, &err);
	} else {
		enum zw_kube_patch_type t = strcmp(argv[i + 4], "json") == 0 ? ZW_KUBE_PATCH_JSON
		                            : strcmp(argv[i + 4], "merge") == 0
		                                    ? ZW_KUBE_PATCH_MERGE
		                                    : ZW_KUBE_PATCH_STRATEGIC;

		rc = zw_kube_patch(k, &ref, &ko, t, body, &out, &err);
	}
	if (rc != 0) {
		rc = print_error(&err);
		goto out;
	}
	emit(out ? out : json_null());
	rc = 0;
	goto out;
bad:
	rc = usage();
out:
	json_decref(body);
	json_decref(out);
	zw_kube_free(k);
	zw_kube_config_free(cfg);
	return rc;
}
