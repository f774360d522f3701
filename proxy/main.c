/* zerowire-proxy entry point: flags, the control loop (sources, scaler,
 * admin, signals) and the worker threads of the data path (server.c).
 *
 * SIGTERM/SIGINT: /readyz fails at once; the proxy keeps serving for
 * --shutdown-delay, then stops accepting and drains: every response carries
 * Connection: close, idle connections are closed, and the process exits 0
 * when no client connection is left or after --drain-timeout (exit 0 too:
 * the drain deadline is part of the contract, the log says how many were
 * cut); a second SIGTERM/SIGINT stops at once. SIGHUP re-reads static-mode
 * files. The peer token file (--peer-token-file) is re-read when it changes
 * (auth.h). */
#include "addr.h"
#include "admin.h"
#include "certstore.h"
#include "auth.h"
#include "config.h"
#include "endpoints.h"
#include "kubeconfig.h"
#include "log.h"
#include "routes.h"
#include "scaler.h"
#include "server.h"
#include "sources.h"
#include "stats.h"
#include "tls.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

struct app {
	struct zw_proxy_config cfg;
	uv_loop_t *loop;
	struct zw_route_current routes;
	struct zw_endpoints *eps;
	struct zw_stats *stats;
	struct zw_kube_config *kube;
	struct zw_sources *sources;
	struct zw_server *server;
	struct zw_observe *obs;
	struct zw_scaler *scaler;
	struct zw_admin *admin;
	struct zw_admin *peer_admin;  /* --peer-listen, else NULL */
	struct zw_auth *auth;         /* --peer-token-file, else NULL */
	struct zw_certstore *certs;   /* TLS certificates (docs/tls.md), else NULL */
	struct zw_tls_client *up_tls; /* trust for TLS backends (docs/tls.md) */
	uv_signal_t sigterm, sigint, sighup;
	uv_timer_t phase_timer;
	uint64_t drain_deadline;
	int stopping;
	int finished;
	char spec[8192];
};

static bool synced(void *arg)
{
	struct app *app = arg;
	return app->sources && zw_sources_synced(app->sources);
}

static void on_endpoints_changed(void *ctx, const char *ns, const char *svc, size_t n_ready)
{
	struct app *app = ctx;
	zw_log(ZW_LOG_DEBUG, "endpoints_changed", "service=%s/%s ready=%zu", ns, svc, n_ready);
	if (app->server)
		zw_server_endpoints_changed(app->server);
	if (app->scaler)
		zw_scaler_endpoints_changed(app->scaler, ns, svc);
}

static void on_publish(void *ctx, struct zw_route_table *table)
{
	struct app *app = ctx;
	zw_log(ZW_LOG_INFO, "routes_published", "targets=%zu", zw_route_table_count(table));
	if (app->server)
		zw_server_endpoints_changed(app->server);
	if (app->scaler)
		zw_scaler_targets_changed(app->scaler);
}

static void each_target(void *arg, int (*fn)(void *fnarg, const struct zw_target *t), void *fnarg)
{
	struct app *app = arg;
	struct zw_route_table *t = zw_route_current_acquire(&app->routes);
	size_t n = zw_route_table_count(t);
	for (size_t i = 0; i < n; i++)
		if (fn(fnarg, zw_route_table_target(t, i)))
			break;
	zw_route_current_release(t);
}

static int target_known(void *arg, const char *key)
{
	struct app *app = arg;
	struct zw_route_table *t = zw_route_current_acquire(&app->routes);
	int found = zw_route_table_find(t, key, NULL) == 0;
	zw_route_current_release(t);
	return found;
}

static void closed_noop(void *arg)
{
	(void)arg;
}

static void finish(struct app *app)
{
	app->finished = 1;
	size_t left = app->server ? zw_server_connections(app->server) : 0;
	zw_log(ZW_LOG_INFO, "shutdown", "connections_left=%zu", left);
	uv_timer_stop(&app->phase_timer);
	uv_close((uv_handle_t *)&app->phase_timer, NULL);
	uv_close((uv_handle_t *)&app->sigterm, NULL);
	uv_close((uv_handle_t *)&app->sigint, NULL);
	uv_close((uv_handle_t *)&app->sighup, NULL);
	if (app->server)
		zw_server_stop(app->server);
	zw_admin_close(app->admin);
	app->admin = NULL;
	zw_admin_close(app->peer_admin);
	app->peer_admin = NULL;
	if (app->scaler)
		zw_scaler_stop(app->scaler, closed_noop, NULL);
	app->scaler = NULL;
	if (app->sources)
		zw_sources_close(app->sources, closed_noop, NULL);
	app->sources = NULL;
}

static void on_drain_poll(uv_timer_t *t)
{
	struct app *app = t->data;
	if (zw_server_connections(app->server) == 0 || uv_now(app->loop) >= app->drain_deadline)
		finish(app);
}

static void on_delay_over(uv_timer_t *t)
{
	struct app *app = t->data;
	zw_log(ZW_LOG_INFO, "draining", "connections=%zu", zw_server_connections(app->server));
	zw_server_stop_accepting(app->server);
	zw_server_drain(app->server);
	app->drain_deadline = uv_now(app->loop) + app->cfg.drain_timeout_ms;
	uv_timer_start(&app->phase_timer, on_drain_poll, 0, 50);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct app *app = h->data;
	if (signum == SIGHUP) {
		if (app->sources)
			zw_sources_reload(app->sources);
		return;
	}
	if (app->stopping) {
		/* A second signal: stop now, cutting what is still in flight. */
		if (!app->finished) {
			zw_log(ZW_LOG_WARN, "signal_again", "signal=%d action=stop_now", signum);
			finish(app);
		}
		return;
	}
	app->stopping = 1;
	zw_log(ZW_LOG_INFO, "signal", "signal=%d shutdown_delay_ms=%llu", signum,
	       (unsigned long long)app->cfg.shutdown_delay_ms);
	zw_admin_set_shutting_down(app->admin);
	if (app->peer_admin)
		zw_admin_set_shutting_down(app->peer_admin);
	uv_timer_start(&app->phase_timer, on_delay_over, app->cfg.shutdown_delay_ms, 0);
}

/* Logs a change of the peer token file (never the token). */
static void on_token_reload(void *arg, int rc)
{
	struct app *app = arg;
	if (rc == 0)
		zw_log(ZW_LOG_INFO, "peer_token_reloaded", "file=%s", app->cfg.peer_token_file);
	else
		zw_log(ZW_LOG_WARN, "peer_token_reload_failed", "file=%s error=\"%s\" action=kept",
		       app->cfg.peer_token_file, uv_strerror(rc));
}

/* Starts the admin listener(s): one for everything, or with --peer-listen a
 * read-only one and a peer one. Returns 0 or 1 (logged). */
static int start_admin(struct app *app)
{
	struct zw_proxy_config *cfg = &app->cfg;
	char err[512] = "";
	struct zw_admin_deps ad = {
	        .listen = cfg->admin_listen,
	        .roles = cfg->peer_listen ? ZW_ADMIN_READ : ZW_ADMIN_READ | ZW_ADMIN_PEER,
	        .server = app->server,
	        .stats = app->stats,
	        .routes = &app->routes,
	        .eps = app->eps,
	        .certs = app->certs,
	        .synced = synced,
	        .arg = app,
	};
	int rc = zw_admin_start(app->loop, &ad, &app->admin, err, sizeof(err));
	if (rc == 0 && cfg->peer_listen) {
		ad.listen = cfg->peer_listen;
		ad.roles = ZW_ADMIN_PEER;
		rc = zw_admin_start(app->loop, &ad, &app->peer_admin, err, sizeof(err));
	}
	if (rc < 0) {
		zw_log(ZW_LOG_ERROR, "listen_failed", "error=\"%s\"", err);
		return 1;
	}
	zw_log(ZW_LOG_INFO, "admin_listening", "addr=%s port=%d peer_paths=%s", cfg->admin_listen,
	       zw_admin_port(app->admin), cfg->peer_listen ? "no" : "yes");
	if (app->peer_admin)
		zw_log(ZW_LOG_INFO, "peer_listening", "addr=%s port=%d", cfg->peer_listen,
		       zw_admin_port(app->peer_admin));
	return 0;
}

/* Reads the peer token file, if any. Returns 0 or 1 (logged). */
static int start_auth(struct app *app)
{
	struct zw_proxy_config *cfg = &app->cfg;
	if (!cfg->peer_token_file) {
		if (cfg->peers_service || cfg->n_peers)
			zw_log(ZW_LOG_WARN, "peer_token_missing",
			       "reason=\"no --peer-token-file: peers are configured but /peer/ "
			       "refuses every request\"");
		return 0;
	}
	struct zw_auth_config ac = {
	        .path = cfg->peer_token_file,
	        .check_ms = 1000,
	        .grace_ms = cfg->peer_token_grace_ms,
	        .on_reload = on_token_reload,
	        .arg = app,
	};
	int rc = zw_auth_new(app->loop, &ac, &app->auth);
	if (rc < 0) {
		zw_log(ZW_LOG_ERROR, "peer_token_failed", "file=%s error=\"%s\"",
		       cfg->peer_token_file, uv_strerror(rc));
		return 1;
	}
	return 0;
}

/* Creates the TLS certificate store when a TLS flag asks for it and loads
 * the file-based default (before the loops run). Returns 0 or 1 (logged). */
static int start_certs(struct app *app)
{
	struct zw_proxy_config *cfg = &app->cfg;
	char err[ZW_CERTSTORE_ERRLEN];
	if (!cfg->tls_listen && !cfg->tls_cert_file && !cfg->tls_default_secret &&
	    !cfg->n_tls_secrets)
		return 0;
	if (zw_certstore_new(&app->certs) != 0) {
		zw_log(ZW_LOG_ERROR, "startup_failed", "reason=out_of_memory");
		return 1;
	}
	if (cfg->tls_cert_file &&
	    zw_certstore_load_files(app->certs, cfg->tls_cert_file, cfg->tls_cert_file,
	                            cfg->tls_key_file, ZW_CERTSTORE_DEFAULT, err) < 0) {
		zw_log(ZW_LOG_ERROR, "tls_cert_failed", "file=%s error=\"%s\"", cfg->tls_cert_file,
		       err);
		return 1;
	}
	return 0;
}

/* Builds the trust for TLS towards backends from --upstream-ca-file and
 * --upstream-tls-verify. Returns 0 or 1 (logged). */
static int start_upstream_tls(struct app *app)
{
	struct zw_proxy_config *cfg = &app->cfg;
	char err[256];
	bool system = strcmp(cfg->upstream_tls_verify, "system") == 0;
	if (zw_tls_client_new(cfg->upstream_ca_file, system, &app->up_tls, err, sizeof(err)) < 0) {
		zw_log(ZW_LOG_ERROR, "upstream_tls_failed", "error=\"%s\"", err);
		return 1;
	}
	return 0;
}

/* Joins the --static-endpoint values into one spec string. */
static int join_spec(struct app *app)
{
	size_t off = 0;
	app->spec[0] = '\0';
	for (size_t i = 0; i < app->cfg.n_static_endpoints; i++) {
		int n = snprintf(app->spec + off, sizeof(app->spec) - off, "%s%s", i ? ";" : "",
		                 app->cfg.static_endpoints[i]);
		if (n < 0 || (size_t)n >= sizeof(app->spec) - off)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

static int run(struct app *app)
{
	char err[512] = "";
	int rc;
	struct zw_proxy_config *cfg = &app->cfg;
	app->loop = uv_default_loop();
	if (zw_route_current_init(&app->routes) != 0 || zw_endpoints_new(&app->eps) != 0 ||
	    zw_stats_new(&app->stats) != 0) {
		zw_log(ZW_LOG_ERROR, "startup_failed", "reason=out_of_memory");
		return 1;
	}
	struct zw_ep_subscriber sub = {.changed = on_endpoints_changed, .ctx = app};
	zw_endpoints_subscribe(app->eps, &sub);

	int static_mode = !cfg->kubeconfig &&
	                  (cfg->targets_file || cfg->endpoints_file || cfg->n_static_endpoints);
	if (!static_mode &&
	    zw_kube_config_auto(cfg->kubeconfig, &app->kube, err, sizeof(err)) < 0) {
		zw_log(ZW_LOG_ERROR, "kubeconfig_failed", "error=\"%s\"", err);
		return 1;
	}
	if (join_spec(app) < 0) {
		zw_log(ZW_LOG_ERROR, "startup_failed", "reason=\"static endpoints too long\"");
		return 1;
	}
	if (start_certs(app) != 0 || start_upstream_tls(app) != 0)
		return 1;
	struct zw_peer_service peers = {.ns = ""};
	if (cfg->peers_service)
		zw_parse_peer_service(cfg->peers_service, &peers); /* checked with the flags */
	struct zw_sources_config scfg = {
	        .kube = app->kube,
	        .namespaces = cfg->namespaces,
	        .n_namespaces = cfg->n_namespaces,
	        .peers_namespace = peers.ns[0] ? peers.ns : NULL,
	        .targets_file = cfg->targets_file,
	        .endpoints_file = cfg->endpoints_file,
	        .endpoints_spec = cfg->n_static_endpoints ? app->spec : NULL,
	        .on_publish = on_publish,
	        .ctx = app,
	        .certs = app->certs,
	        .tls_secrets = cfg->tls_secrets,
	        .n_tls_secrets = cfg->n_tls_secrets,
	        .tls_default_secret = cfg->tls_default_secret,
	};
	rc = zw_sources_new(app->loop, &scfg, &app->routes, app->eps, &app->sources, err,
	                    sizeof(err));
	if (rc < 0) {
		zw_log(ZW_LOG_ERROR, "sources_failed", "error=\"%s\"", err);
		return 1;
	}
	struct zw_observe_config ocfg = {
	        .workers = cfg->workers,
	        .access_fd = STDOUT_FILENO,
	        .otlp_endpoint = cfg->otlp_endpoint,
	        .batch_size = cfg->trace_batch,
	        .queue_limit = cfg->trace_queue,
	};
	zw_observe_parse_format(cfg->access_log, &ocfg.access); /* checked with the flags */
	zw_observe_parse_ratio(cfg->trace_sampler, &ocfg.sampler);
	rc = zw_observe_new(&ocfg, &app->obs);
	if (rc < 0) {
		zw_log(ZW_LOG_ERROR, "startup_failed", "reason=\"observability: %s\"",
		       strerror(-rc));
		return 1;
	}
	struct zw_server_deps deps = {.cfg = cfg,
	                              .routes = &app->routes,
	                              .eps = app->eps,
	                              .stats = app->stats,
	                              .obs = app->obs,
	                              .certs = app->certs,
	                              .upstream_tls = app->up_tls};
	rc = zw_server_start(&deps, &app->server, err, sizeof(err));
	if (rc < 0) {
		zw_log(ZW_LOG_ERROR, "listen_failed", "error=\"%s\"", err);
		return 1;
	}
	zw_log(ZW_LOG_INFO, "listening", "addr=%s port=%d workers=%d", cfg->listen,
	       zw_server_port(app->server), cfg->workers);
	if (cfg->tls_listen)
		zw_log(ZW_LOG_INFO, "tls_listening", "addr=%s port=%d", cfg->tls_listen,
		       zw_server_tls_port(app->server));
	if (start_auth(app) != 0 || start_admin(app) != 0)
		return 1;
	struct zw_scaler_config sc;
	zw_scaler_config_default(&sc);
	static char host[ZW_ADDR_HOST_MAX];
	int port;
	if (zw_addr_split(cfg->scaler_listen, strlen(cfg->scaler_listen), ZW_ADDR_LISTEN, host,
	                  sizeof(host), &port) < 0) {
		zw_log(ZW_LOG_ERROR, "listen_failed", "scaler=%s error=\"bad address\"",
		       cfg->scaler_listen);
		return 1;
	}
	sc.grpc_host = host[0] ? host : "0.0.0.0";
	sc.grpc_port = port;
	if (cfg->stream_heartbeat_ms)
		sc.heartbeat_ms = cfg->stream_heartbeat_ms;
	sc.auth = app->auth;
	struct zw_scaler_targets st = {.each = each_target, .known = target_known, .arg = app};
	rc = zw_scaler_start(app->loop, &sc, app->stats, &st, &app->scaler);
	if (rc < 0) {
		zw_log(ZW_LOG_ERROR, "listen_failed", "scaler=%s error=\"%s\"", cfg->scaler_listen,
		       uv_strerror(rc));
		return 1;
	}
	zw_admin_set_scaler(app->admin, app->scaler);
	if (app->peer_admin)
		zw_admin_set_scaler(app->peer_admin, app->scaler);
	if (cfg->peers_service) {
		struct zw_peer_service ps;
		zw_parse_peer_service(cfg->peers_service, &ps); /* checked with the flags */
		rc = zw_scaler_watch_peers(app->scaler, app->eps, ps.ns, ps.svc, ps.port,
		                           ps.port ? NULL : ps.port_name);
		if (rc < 0) {
			zw_log(ZW_LOG_ERROR, "peers_failed", "service=%s error=%d",
			       cfg->peers_service, rc);
			return 1;
		}
	} else if (cfg->n_peers) {
		rc = zw_scaler_set_peers(app->scaler, cfg->peers, cfg->n_peers);
		if (rc < 0) {
			zw_log(ZW_LOG_ERROR, "peers_failed", "reason=\"bad --peers address\"");
			return 1;
		}
	}
	zw_log(ZW_LOG_INFO, "scaler_listening", "port=%d", zw_scaler_grpc_port(app->scaler));
	rc = zw_sources_start(app->sources);
	if (rc < 0) {
		zw_log(ZW_LOG_ERROR, "sources_failed", "error=\"%s\"", uv_strerror(rc));
		return 1;
	}

	uv_timer_init(app->loop, &app->phase_timer);
	app->phase_timer.data = app;
	uv_signal_t *sigs[] = {&app->sigterm, &app->sigint, &app->sighup};
	int nums[] = {SIGTERM, SIGINT, SIGHUP};
	for (int i = 0; i < 3; i++) {
		uv_signal_init(app->loop, sigs[i]);
		sigs[i]->data = app;
		uv_signal_start(sigs[i], on_signal, nums[i]);
	}
	uv_run(app->loop, UV_RUN_DEFAULT);
	return 0;
}

static void cleanup(struct app *app)
{
	if (app->loop) {
		/* Close whatever is left (startup failures) and let callbacks run. */
		if (app->admin)
			zw_admin_close(app->admin);
		if (app->peer_admin)
			zw_admin_close(app->peer_admin);
		if (app->scaler)
			zw_scaler_stop(app->scaler, closed_noop, NULL);
		if (app->sources)
			zw_sources_close(app->sources, closed_noop, NULL);
		if (app->server && !app->stopping)
			zw_server_stop(app->server);
		zw_auth_close(app->auth);
		app->auth = NULL;
		uv_run(app->loop, UV_RUN_DEFAULT);
		uv_loop_close(app->loop);
	}
	zw_server_free(app->server);
	zw_observe_free(app->obs); /* after the workers: a last drain */
	zw_route_current_destroy(&app->routes);
	zw_endpoints_free(app->eps);
	zw_stats_free(app->stats);
	zw_certstore_free(app->certs);   /* after the sources and the admin */
	zw_tls_client_free(app->up_tls); /* after the workers */
	zw_kube_config_free(app->kube);
}

int main(int argc, char **argv)
{
	static struct app app;
	static char msg[16384];
	signal(SIGPIPE, SIG_IGN);
	zw_proxy_config_defaults(&app.cfg);
	int rc = zw_proxy_config_parse(&app.cfg, argc, argv, msg, sizeof(msg));
	if (rc == 1) {
		fputs(msg, stdout);
		return 0;
	}
	if (rc < 0) {
		fprintf(stderr, "zerowire-proxy: %s\n", msg);
		return 2;
	}
	enum zw_log_level lvl;
	if (zw_log_level_parse(app.cfg.log_level, &lvl) < 0) {
		fprintf(stderr, "zerowire-proxy: --log-level: unknown level %s\n",
		        app.cfg.log_level);
		return 2;
	}
	enum zw_log_format fmt;
	if (zw_log_format_parse(app.cfg.log_format, &fmt) < 0) {
		fprintf(stderr, "zerowire-proxy: --log-format: want logfmt or json, not %s\n",
		        app.cfg.log_format);
		return 2;
	}
	zw_log_set_format(fmt);
	zw_log_init("proxy", lvl);
	rc = run(&app);
	if (app.stopping) {
		/* finish() already stopped the server. */
		app.stopping = 1;
	}
	cleanup(&app);
	return rc;
}
