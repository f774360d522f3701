/* Test tool: the zerowire KEDA scaler on its own, without the proxy's data
 * path, for proxy/tests/scaler_test.py and bench/keda_push.py.
 *
 *   tool_scaler [--grpc-port N] [--admin-host IP] [--admin-port N]
 *               [--heartbeat-ms N] [--max-streams N] [--peer-poll-ms N]
 *               [--peer-service NS/NAME]
 *               [--objects FILE.json] [--ports-file FILE]
 *               [--token-file FILE] [--token-grace-ms N] [--token-check-ms N]
 *
 * Targets come from Kubernetes objects (ScaledObject, InterceptorRoute,
 * HTTPScaledObject) parsed by lib/target. The admin port (127.0.0.1) serves
 * the scaler's own paths (zw_scaler_admin), /metrics, and test controls that
 * stand in for the proxy's data path:
 *   POST /test/begin?target=KEY[&n=N]   N requests enter (from another thread)
 *   POST /test/end?target=KEY[&n=N]     N requests finish
 *   POST /test/cold?target=KEY          cold signal (no endpoint ready)
 *   POST /test/objects                  body: object, array or List; adds targets
 *   POST /test/clear                    drops every target
 *   POST /test/peers                    body: JSON array of admin addresses
 *   POST /test/slice                    body: an EndpointSlice applied to the
 *                                       endpoint store; with --peer-service
 *                                       ns/svc the peers come from it
 * With --token-file the peer token is read from FILE (re-read every
 * --token-check-ms, default 100) and checked on /peer/ as the proxy does
 * (auth.h); peers send it. SIGTERM/SIGINT stop it cleanly. */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "auth.h"
#include "endpoints.h"
#include "log.h"
#include "scaler.h"
#include "stats.h"
#include "target.h"

#define MAX_REQ (1024 * 1024)

struct tgt {
	struct zw_target t;
	struct zw_stats_entry *st;
};

static struct {
	uv_loop_t *loop;
	struct zw_stats *stats;
	struct zw_scaler *scaler;
	struct zw_endpoints *eps;
	struct zw_auth *auth;
	uv_tcp_t admin;
	uv_signal_t sigterm, sigint;
	struct tgt *tgts;
	size_t n_tgts;
} g;

struct hconn {
	uv_tcp_t tcp;
	uv_write_t wr;
	char *in;
	size_t in_len;
	char *out;
	bool done;
};

static void each_target(void *arg, int (*fn)(void *fnarg, const struct zw_target *t), void *fnarg)
{
	(void)arg;
	for (size_t i = 0; i < g.n_tgts; i++)
		if (fn(fnarg, &g.tgts[i].t))
			return;
}

static struct tgt *find_key(const char *key)
{
	char buf[ZW_STATS_KEY_MAX];

	for (size_t i = 0; i < g.n_tgts; i++) {
		zw_target_key(&g.tgts[i].t, buf, sizeof(buf));
		if (strcmp(buf, key) == 0)
			return &g.tgts[i];
	}
	return NULL;
}

static void clear_targets(void)
{
	for (size_t i = 0; i < g.n_tgts; i++) {
		zw_stats_release(g.stats, g.tgts[i].st);
		zw_target_free(&g.tgts[i].t);
	}
	free(g.tgts);
	g.tgts = NULL;
	g.n_tgts = 0;
}

/* Adds the targets of one object. Returns 0 or -1 with err. */
static int add_object(const json_t *obj, char err[ZW_TARGET_ERRLEN])
{
	struct zw_target *ts = NULL;
	size_t n = 0;
	int rc = zw_target_parse_object(obj, &ts, &n, err);

	if (rc == ZW_TARGET_ENOTARGET)
		return 0;
	if (rc != ZW_TARGET_OK)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct tgt *nt = realloc(g.tgts, (g.n_tgts + 1) * sizeof(*nt));
		char key[ZW_STATS_KEY_MAX];

		if (!nt) {
			zw_target_array_free(ts, n);
			snprintf(err, ZW_TARGET_ERRLEN, "out of memory");
			return -1;
		}
		g.tgts = nt;
		g.tgts[g.n_tgts].t = ts[i];
		memset(&ts[i], 0, sizeof(ts[i]));
		zw_target_key(&g.tgts[g.n_tgts].t, key, sizeof(key));
		if (zw_stats_acquire(g.stats, key, g.tgts[g.n_tgts].t.window_ms,
		                     g.tgts[g.n_tgts].t.granularity_ms, &g.tgts[g.n_tgts].st) < 0)
			g.tgts[g.n_tgts].st = NULL;
		g.n_tgts++;
	}
	zw_target_array_free(ts, n);
	return 0;
}

/* Links InterceptorRoute / HTTPScaledObject targets to ScaledObjects. */
static void link_all(const json_t *arr)
{
	size_t i;
	const json_t *o;

	json_array_foreach(arr, i, o)
	{
		const char *kind = json_string_value(json_object_get(o, "kind"));

		if (!kind || strcmp(kind, "ScaledObject") != 0)
			continue;
		for (size_t j = 0; j < g.n_tgts; j++)
			zw_target_link_scaledobject(&g.tgts[j].t, o);
	}
}

static int add_objects(json_t *doc, char err[ZW_TARGET_ERRLEN])
{
	json_t *items = json_object_get(doc, "items");
	json_t *arr = json_is_array(doc)     ? json_incref(doc)
	              : json_is_array(items) ? json_incref(items)
	                                     : json_pack("[O]", doc);
	size_t i;
	json_t *o;
	int rc = 0;

	json_array_foreach(arr, i, o)
	{
		if (add_object(o, err) < 0) {
			rc = -1;
			break;
		}
	}
	if (rc == 0)
		link_all(arr);
	json_decref(arr);
	if (g.scaler)
		zw_scaler_targets_changed(g.scaler);
	return rc;
}

struct begin_job {
	struct zw_stats_entry *st;
	long n;
	int op; /* 0 begin, 1 end, 2 cold */
};

static void *job_run(void *arg)
{
	struct begin_job *j = arg;

	for (long i = 0; i < j->n; i++) {
		if (j->op == 0)
			zw_stats_begin(j->st);
		else if (j->op == 1)
			zw_stats_end(j->st);
		else
			zw_stats_cold(j->st);
	}
	return NULL;
}

static const char *qparam(const char *query, const char *name, char *buf, size_t len)
{
	size_t nl = strlen(name);

	for (const char *p = query; p && *p;) {
		const char *amp = strchr(p, '&');
		size_t l = amp ? (size_t)(amp - p) : strlen(p);

		if (l > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
			size_t o = 0;

			for (size_t i = nl + 1; i < l && o + 1 < len; i++) {
				if (p[i] == '%' && i + 2 < l) {
					char hex[3] = {p[i + 1], p[i + 2], 0};

					buf[o++] = (char)strtol(hex, NULL, 16);
					i += 2;
				} else {
					buf[o++] = p[i];
				}
			}
			buf[o] = 0;
			return buf;
		}
		p = amp ? amp + 1 : NULL;
	}
	return NULL;
}

static void on_hconn_closed(uv_handle_t *h);

static void on_written(uv_write_t *w, int status)
{
	struct hconn *c = w->data;

	(void)status;
	uv_close((uv_handle_t *)&c->tcp, on_hconn_closed);
}

static void on_hconn_closed(uv_handle_t *h)
{
	struct hconn *c = h->data;

	free(c->in);
	free(c->out);
	free(c);
}

static void respond(struct hconn *c, int status, const char *ctype, const char *body, size_t blen)
{
	uv_buf_t b;
	int n;

	n = asprintf(&c->out,
	             "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	             "Connection: close\r\n\r\n",
	             status, ctype, blen);
	if (n < 0) {
		c->out = NULL;
		uv_close((uv_handle_t *)&c->tcp, on_hconn_closed);
		return;
	}
	c->out = realloc(c->out, (size_t)n + blen + 1);
	memcpy(c->out + n, body ? body : "", blen);
	b = uv_buf_init(c->out, (unsigned)(n + (int)blen));
	c->wr.data = c;
	if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0)
		uv_close((uv_handle_t *)&c->tcp, on_hconn_closed);
}

static void handle(struct hconn *c, const char *method, char *target, const char *authz,
                   const char *body, size_t blen)
{
	char *query = strchr(target, '?');
	char key[ZW_STATS_KEY_MAX], nbuf[32];
	char err[ZW_TARGET_ERRLEN];
	int status = 0;
	char *out = NULL;
	size_t olen = 0;
	const char *ctype = "text/plain";
	int rc;

	/* Once stopping, the scaler may already be freed: answer nothing from it. */
	if (!g.scaler) {
		respond(c, 503, "text/plain", "stopping", 8);
		return;
	}
	if (strncmp(target, "/test/", 6) == 0) {
		struct tgt *t;
		json_t *doc;

		if (query)
			*query++ = 0;
		if (strcmp(target, "/test/objects") == 0) {
			doc = json_loadb(body, blen, 0, NULL);
			if (!doc || add_objects(doc, err) < 0) {
				respond(c, 400, "text/plain", doc ? err : "bad json",
				        strlen(doc ? err : "bad json"));
				json_decref(doc);
				return;
			}
			json_decref(doc);
			respond(c, 200, "text/plain", "ok", 2);
			return;
		}
		if (strcmp(target, "/test/clear") == 0) {
			clear_targets();
			zw_scaler_targets_changed(g.scaler);
			respond(c, 200, "text/plain", "ok", 2);
			return;
		}
		if (strcmp(target, "/test/slice") == 0) {
			char eerr[ZW_EP_ERRLEN] = "bad json";

			doc = json_loadb(body, blen, 0, NULL);
			rc = doc ? zw_endpoints_apply_slice(g.eps, doc, false, eerr) : -1;
			json_decref(doc);
			respond(c, rc == 0 ? 200 : 400, "text/plain", rc == 0 ? "ok" : eerr,
			        rc == 0 ? 2 : strlen(eerr));
			return;
		}
		if (strcmp(target, "/test/peers") == 0) {
			const char *addrs[64];
			size_t i, n = 0;
			json_t *v;

			doc = json_loadb(body, blen, 0, NULL);
			json_array_foreach(doc, i, v)
			{
				if (n < 64 && json_is_string(v))
					addrs[n++] = json_string_value(v);
			}
			rc = json_is_array(doc) ? zw_scaler_set_peers(g.scaler, addrs, n) : -EINVAL;
			json_decref(doc);
			respond(c, rc == 0 ? 200 : 400, "text/plain", rc == 0 ? "ok" : "bad", 2);
			return;
		}
		if (!query || !qparam(query, "target", key, sizeof(key)) || !(t = find_key(key)) ||
		    !t->st) {
			respond(c, 404, "text/plain", "no such target", 14);
			return;
		}
		{
			struct begin_job j = {t->st, 1, 0};
			pthread_t th;

			if (qparam(query, "n", nbuf, sizeof(nbuf)))
				j.n = strtol(nbuf, NULL, 10);
			if (strcmp(target, "/test/begin") == 0)
				j.op = 0;
			else if (strcmp(target, "/test/end") == 0)
				j.op = 1;
			else if (strcmp(target, "/test/cold") == 0)
				j.op = 2;
			else {
				respond(c, 404, "text/plain", "unknown", 7);
				return;
			}
			/* From another thread, like the proxy's workers. */
			if (pthread_create(&th, NULL, job_run, &j) == 0)
				pthread_join(th, NULL);
		}
		respond(c, 200, "text/plain", "ok", 2);
		return;
	}
	if (strcmp(target, "/metrics") == 0) {
		if (zw_scaler_prometheus(g.scaler, &out, &olen) < 0) {
			respond(c, 500, "text/plain", "oom", 3);
			return;
		}
		respond(c, 200, "text/plain; version=0.0.4", out, olen);
		free(out);
		return;
	}
	rc = zw_scaler_admin(g.scaler, method, target, authz, &status, &out, &olen, &ctype);
	if (rc == 1)
		respond(c, status, ctype, out, olen);
	else
		respond(c, rc == 0 ? 404 : 500, "text/plain", "not found", 9);
	free(out);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct hconn *c = h->data;
	char *n;

	(void)suggested;
	n = c->in_len < MAX_REQ ? realloc(c->in, c->in_len + 65536) : NULL;
	if (!n) {
		*buf = uv_buf_init(NULL, 0);
		return;
	}
	c->in = n;
	*buf = uv_buf_init(c->in + c->in_len, 65536);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct hconn *c = s->data;
	char *end, *cl, *sp1, *sp2, *av, *ae;
	char authz[ZW_AUTH_TOKEN_MAX + 64];
	size_t hlen, blen = 0;

	(void)buf;
	if (c->done)
		return;
	if (nread < 0) {
		c->done = true;
		uv_close((uv_handle_t *)&c->tcp, on_hconn_closed);
		return;
	}
	c->in_len += (size_t)nread;
	end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
	if (!end)
		return;
	hlen = (size_t)(end - c->in) + 4;
	*end = 0;
	cl = strcasestr(c->in, "\r\ncontent-length:");
	if (cl)
		blen = strtoul(cl + 17, NULL, 10);
	if (c->in_len < hlen + blen) {
		*end = '\r';
		return;
	}
	c->done = true;
	uv_read_stop(s);
	sp1 = strchr(c->in, ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp1 || !sp2) {
		respond(c, 400, "text/plain", "bad", 3);
		return;
	}
	av = strcasestr(sp2 + 1, "\r\nauthorization:");
	if (av) {
		av += 16;
		while (*av == ' ')
			av++;
		ae = strstr(av, "\r\n");
		snprintf(authz, sizeof(authz), "%.*s", ae ? (int)(ae - av) : (int)strlen(av), av);
	}
	*sp1 = 0;
	*sp2 = 0;
	handle(c, c->in, sp1 + 1, av ? authz : NULL, c->in + hlen, blen);
}

static void on_admin_conn(uv_stream_t *server, int status)
{
	struct hconn *c;

	if (status < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	uv_tcp_init(g.loop, &c->tcp);
	c->tcp.data = c;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 ||
	    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
		uv_close((uv_handle_t *)&c->tcp, on_hconn_closed);
		return;
	}
}

/* The proxy's endpoint-store hook, as proxy/main.c wires it. */
static void on_endpoints_changed(void *ctx, const char *ns, const char *svc, size_t n_ready)
{
	(void)ctx;
	(void)n_ready;
	if (g.scaler)
		zw_scaler_endpoints_changed(g.scaler, ns, svc);
}

static void on_scaler_stopped(void *arg)
{
	(void)arg;
	uv_close((uv_handle_t *)&g.admin, NULL);
	zw_auth_close(g.auth);
	g.auth = NULL;
	uv_close((uv_handle_t *)&g.sigterm, NULL);
	uv_close((uv_handle_t *)&g.sigint, NULL);
}

static void on_signal(uv_signal_t *h, int sig)
{
	struct zw_scaler *sc;

	(void)h;
	(void)sig;
	uv_signal_stop(&g.sigterm);
	uv_signal_stop(&g.sigint);
	sc = g.scaler;
	g.scaler = NULL;
	zw_scaler_stop(sc, on_scaler_stopped, NULL);
}

int main(int argc, char **argv)
{
	struct zw_scaler_config cfg;
	struct zw_scaler_targets tg = {.each = each_target};
	struct sockaddr_in sa;
	struct sockaddr_storage ss;
	int namelen = sizeof(ss);
	const char *objects = NULL, *ports_file = NULL, *peer_service = NULL;
	const char *admin_host = "127.0.0.1";
	struct zw_auth_config ac = {.check_ms = 100};
	struct zw_ep_subscriber sub = {on_endpoints_changed, NULL};
	int admin_port = 0, rc;
	char err[ZW_TARGET_ERRLEN];

	zw_log_init("tool_scaler", ZW_LOG_INFO);
	zw_scaler_config_default(&cfg);
	cfg.grpc_host = "127.0.0.1";
	cfg.grpc_port = 0;
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!v) {
			fprintf(stderr, "missing value for %s\n", argv[i]);
			return 2;
		}
		if (strcmp(argv[i], "--grpc-port") == 0)
			cfg.grpc_port = (int)strtol(v, NULL, 10);
		else if (strcmp(argv[i], "--admin-port") == 0)
			admin_port = (int)strtol(v, NULL, 10);
		else if (strcmp(argv[i], "--heartbeat-ms") == 0)
			cfg.heartbeat_ms = strtoull(v, NULL, 10);
		else if (strcmp(argv[i], "--max-streams") == 0)
			cfg.max_streams = (uint32_t)strtoul(v, NULL, 10);
		else if (strcmp(argv[i], "--peer-poll-ms") == 0)
			cfg.peer_poll_ms = strtoull(v, NULL, 10);
		else if (strcmp(argv[i], "--objects") == 0)
			objects = v;
		else if (strcmp(argv[i], "--ports-file") == 0)
			ports_file = v;
		else if (strcmp(argv[i], "--peer-service") == 0)
			peer_service = v;
		else if (strcmp(argv[i], "--admin-host") == 0)
			admin_host = v;
		else if (strcmp(argv[i], "--token-file") == 0)
			ac.path = v;
		else if (strcmp(argv[i], "--token-grace-ms") == 0)
			ac.grace_ms = strtoull(v, NULL, 10);
		else if (strcmp(argv[i], "--token-check-ms") == 0)
			ac.check_ms = strtoull(v, NULL, 10);
		else {
			fprintf(stderr, "unknown argument %s\n", argv[i]);
			return 2;
		}
		i++;
	}
	g.loop = uv_default_loop();
	if (zw_stats_new(&g.stats) < 0 || zw_endpoints_new(&g.eps) != 0 ||
	    zw_endpoints_subscribe(g.eps, &sub) != 0)
		return 1;
	if (objects) {
		json_error_t je;
		json_t *doc = json_load_file(objects, 0, &je);

		if (!doc || add_objects(doc, err) < 0) {
			fprintf(stderr, "%s: %s\n", objects, doc ? err : je.text);
			return 1;
		}
		json_decref(doc);
	}
	if (ac.path) {
		rc = zw_auth_new(g.loop, &ac, &g.auth);
		if (rc < 0) {
			fprintf(stderr, "--token-file %s: %s\n", ac.path, strerror(-rc));
			return 1;
		}
		cfg.auth = g.auth;
	}
	rc = zw_scaler_start(g.loop, &cfg, g.stats, &tg, &g.scaler);
	if (rc < 0) {
		fprintf(stderr, "scaler: %s\n", uv_strerror(rc));
		return 1;
	}
	if (peer_service) {
		char ns[256];
		const char *slash = strchr(peer_service, '/');

		if (!slash || (size_t)(slash - peer_service) >= sizeof(ns)) {
			fprintf(stderr, "--peer-service wants ns/name\n");
			return 2;
		}
		snprintf(ns, sizeof(ns), "%.*s", (int)(slash - peer_service), peer_service);
		if (zw_scaler_watch_peers(g.scaler, g.eps, ns, slash + 1, 0, "admin") < 0)
			return 1;
	}
	uv_tcp_init(g.loop, &g.admin);
	if (uv_ip4_addr(admin_host, admin_port, &sa) < 0) {
		fprintf(stderr, "bad --admin-host %s\n", admin_host);
		return 2;
	}
	if (uv_tcp_bind(&g.admin, (const struct sockaddr *)&sa, 0) < 0 ||
	    uv_listen((uv_stream_t *)&g.admin, 128, on_admin_conn) < 0 ||
	    uv_tcp_getsockname(&g.admin, (struct sockaddr *)&ss, &namelen) < 0) {
		fprintf(stderr, "admin listen failed\n");
		return 1;
	}
	admin_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	uv_signal_init(g.loop, &g.sigterm);
	uv_signal_init(g.loop, &g.sigint);
	uv_signal_start(&g.sigterm, on_signal, SIGTERM);
	uv_signal_start(&g.sigint, on_signal, SIGINT);
	if (ports_file) {
		char tmp[4096];
		FILE *f;

		snprintf(tmp, sizeof(tmp), "%s.tmp", ports_file);
		f = fopen(tmp, "w");
		if (!f)
			return 1;
		fprintf(f, "{\"grpc\": %d, \"admin\": %d}\n", zw_scaler_grpc_port(g.scaler),
		        admin_port);
		fclose(f);
		rename(tmp, ports_file);
	}
	zw_log(ZW_LOG_INFO, "listening", "grpc=%d admin=%d", zw_scaler_grpc_port(g.scaler),
	       admin_port);
	uv_run(g.loop, UV_RUN_DEFAULT);
	clear_targets();
	zw_stats_free(g.stats);
	zw_endpoints_free(g.eps);
	uv_loop_close(g.loop);
	return 0;
}
