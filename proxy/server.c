/* zerowire-proxy data path (see server.h and docs/proxy-datapath.md): the
 * worker threads, their loops and listening sockets, accepting client
 * connections (handed to client.c), the control flags (endpoints changed,
 * drain, stop), the one write helper both halves of a request use, and
 * the output put off to the end of a loop turn (zw_dp_defer).
 * A request's life is in client.c (HTTP/1.1 client side), request.c
 * (routing, admission, accounting) and forward.c (upstream side). */
#include "datapath.h"

#include "list.h"
#include "log.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct wreq {
	uv_write_t req;
	void *arg;
	char data[];
};

int zw_dp_write(uv_stream_t *to, const uv_buf_t *bufs, unsigned n, uv_write_cb cb, void *arg)
{
	size_t len = 0;
	for (unsigned i = 0; i < n; i++)
		len += bufs[i].len;
	if (len == 0)
		return 0;
	size_t done = 0;
	if (uv_stream_get_write_queue_size(to) == 0) {
		int r = uv_try_write(to, bufs, n);
		if (r > 0)
			done = (size_t)r;
		else if (r != UV_EAGAIN && r != UV_ENOSYS)
			return r;
	}
	if (done == len)
		return 0;
	struct wreq *wr = malloc(sizeof(*wr) + (len - done));
	if (!wr)
		return UV_ENOMEM;
	size_t skip = done, at = 0;
	for (unsigned i = 0; i < n; i++) {
		size_t bl = bufs[i].len;
		if (skip >= bl) {
			skip -= bl;
			continue;
		}
		memcpy(wr->data + at, bufs[i].base + skip, bl - skip);
		at += bl - skip;
		skip = 0;
	}
	wr->arg = arg;
	uv_buf_t b = uv_buf_init(wr->data, (unsigned)(len - done));
	int rc = uv_write(&wr->req, to, &b, 1, cb);
	if (rc < 0) {
		free(wr);
		return rc;
	}
	return 1;
}

void *zw_dp_write_arg(uv_write_t *req)
{
	struct wreq *wr = (struct wreq *)req;
	void *arg = wr->arg;
	free(wr);
	return arg;
}

/* ---- deferred output --------------------------------------------------- */

/* Runs the queue until it is empty (work queued meanwhile runs too), then
 * stops the handles until something is queued again. */
static void defer_run(struct zw_worker *w)
{
	while (w->defer_head) {
		struct zw_dp_defer *d = w->defer_head;
		ZW_QUEUE_UNLINK(w->defer_head, w->defer_tail, d);
		d->queued = 0;
		d->run(d); /* may free d's owner: d is not touched again */
	}
	if (!w->defer_closed) {
		uv_check_stop(&w->defer_check);
		uv_prepare_stop(&w->defer_prepare);
	}
}

static void on_defer_check(uv_check_t *h)
{
	defer_run(h->data);
}

static void on_defer_prepare(uv_prepare_t *h)
{
	defer_run(h->data);
}

void zw_dp_defer(struct zw_worker *w, struct zw_dp_defer *d)
{
	if (d->queued || w->defer_closed)
		return;
	if (!w->defer_head) {
		uv_check_start(&w->defer_check, on_defer_check);
		uv_prepare_start(&w->defer_prepare, on_defer_prepare);
	}
	d->queued = 1;
	ZW_QUEUE_APPEND(w->defer_head, w->defer_tail, d);
}

void zw_dp_defer_cancel(struct zw_worker *w, struct zw_dp_defer *d)
{
	if (!d->queued)
		return;
	d->queued = 0;
	ZW_QUEUE_UNLINK(w->defer_head, w->defer_tail, d);
}

void zw_dp_defer_init(struct zw_worker *w)
{
	uv_check_init(&w->loop, &w->defer_check);
	w->defer_check.data = w;
	uv_prepare_init(&w->loop, &w->defer_prepare);
	w->defer_prepare.data = w;
}

void zw_dp_defer_close(struct zw_worker *w)
{
	defer_run(w);
	w->defer_closed = 1;
	uv_close((uv_handle_t *)&w->defer_check, NULL);
	uv_close((uv_handle_t *)&w->defer_prepare, NULL);
}

/* ---- accept / worker loop ----------------------------------------------- */

static void on_accept(uv_stream_t *server, int status)
{
	struct zw_worker *w = server->data;
	if (status < 0)
		return;
	zw_client_accept(w, server, server == (uv_stream_t *)&w->tls_listener);
}

/* Closes w's listening sockets (idempotent). */
static void close_listeners(struct zw_worker *w)
{
	if (w->listening) {
		w->listening = 0;
		uv_close((uv_handle_t *)&w->listener, NULL);
	}
	if (w->tls_listening) {
		w->tls_listening = 0;
		uv_close((uv_handle_t *)&w->tls_listener, NULL);
	}
}

static void on_async(uv_async_t *a)
{
	struct zw_worker *w = a->data;
	if (atomic_exchange(&w->flag_mail, 0))
		zw_dp_take_granted(w);
	if (atomic_exchange(&w->flag_endpoints, 0))
		zw_dp_release_pass(w);
	if (atomic_exchange(&w->flag_drain, 0) && !w->draining) {
		w->draining = 1;
		zw_client_drain(w);
		zw_upool_close_idle(&w->pool);
		zw_h2pool_drain(w);
	}
	if (atomic_exchange(&w->flag_stop_accept, 0))
		close_listeners(w);
	if (atomic_exchange(&w->flag_stop, 0)) {
		close_listeners(w);
		zw_client_close_all(w);
		zw_upool_close_idle(&w->pool);
		zw_h2pool_close_all(w);
		zw_dp_defer_close(w);
		zw_wtable_unref(w->wt);
		w->wt = NULL;
		uv_close((uv_handle_t *)&w->hold_timer, NULL);
		uv_close((uv_handle_t *)&w->release_timer, NULL);
		uv_close((uv_handle_t *)&w->async, NULL);
	}
}

static void worker_main(void *arg)
{
	struct zw_worker *w = arg;
	uv_run(&w->loop, UV_RUN_DEFAULT);
}

/* Creates a listening socket on addr (named `name` in errors) with
 * SO_REUSEPORT and hands it to libuv as *h (flag *listening set). */
static int make_listener(struct zw_worker *w, uv_tcp_t *h, int *listening, const char *name,
                         const struct sockaddr *addr, char *err, size_t errlen)
{
	int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -errno;
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	socklen_t alen = addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
	                                             : sizeof(struct sockaddr_in);
	if (bind(fd, addr, alen) == -1 || listen(fd, 4096) == -1) {
		int e = errno;
		snprintf(err, errlen, "listen %s: %s", name, strerror(e));
		close(fd);
		return -e;
	}
	uv_tcp_init(&w->loop, h);
	h->data = w;
	int rc = uv_tcp_open(h, fd);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)h, 4096, on_accept);
	if (rc < 0) {
		snprintf(err, errlen, "listen %s: %s", name, uv_strerror(rc));
		uv_close((uv_handle_t *)h, NULL);
		return rc;
	}
	*listening = 1;
	return 0;
}

/* The port h is bound to. */
static int bound_port(uv_tcp_t *h)
{
	struct sockaddr_storage b;
	int blen = sizeof(b);
	uv_tcp_getsockname(h, (struct sockaddr *)&b, &blen);
	return ntohs(((struct sockaddr_in *)&b)->sin_port);
}

int zw_server_start(const struct zw_server_deps *deps, struct zw_server **out, char *err,
                    size_t errlen)
{
	const struct zw_proxy_config *cfg = deps->cfg;
	struct zw_server *s = calloc(1, sizeof(*s));
	if (!s)
		return UV_ENOMEM;
	s->d = *deps;
	s->limits.max_head_bytes = cfg->max_header_bytes;
	s->limits.max_headers = cfg->max_headers;
	s->limits.max_request_line = cfg->max_request_line;
	s->hold_defaults = (struct zw_hold_defaults){
	        .endpoint_concurrency = cfg->endpoint_concurrency,
	        .slow_start_ms = cfg->slow_start_ms,
	        .release_per_endpoint = cfg->release_per_endpoint,
	        .max_waiting = cfg->max_held,
	        .wait_ms = cfg->readiness_timeout_ms,
	};
	if (cfg->workers > ZW_HOLD_MAX_WORKERS || zw_hold_init(&s->hold, cfg->workers) != 0) {
		snprintf(err, errlen, "workers: at most %d", ZW_HOLD_MAX_WORKERS);
		free(s);
		return UV_EINVAL;
	}
	s->workers = calloc((size_t)cfg->workers, sizeof(*s->workers));
	s->shards = calloc((size_t)cfg->workers, sizeof(*s->shards));
	if (!s->workers || !s->shards) {
		zw_server_free(s);
		return UV_ENOMEM;
	}
	struct sockaddr_storage addr;
	if (zw_parse_addr(cfg->listen, &addr) < 0) {
		snprintf(err, errlen, "listen: bad address %s", cfg->listen);
		zw_server_free(s);
		return UV_EINVAL;
	}
	struct sockaddr_storage tls_addr;
	int tls = cfg->tls_listen && deps->certs;
	if (tls && zw_parse_addr(cfg->tls_listen, &tls_addr) < 0) {
		snprintf(err, errlen, "tls-listen: bad address %s", cfg->tls_listen);
		zw_server_free(s);
		return UV_EINVAL;
	}
	int rc = 0;
	for (int i = 0; i < cfg->workers; i++) {
		struct zw_worker *w = calloc(1, sizeof(*w));
		if (!w) {
			rc = UV_ENOMEM;
			break;
		}
		w->s = s;
		w->id = i;
		w->rng = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1) ^ (uint64_t)getpid();
		uv_loop_init(&w->loop);
		uv_async_init(&w->loop, &w->async, on_async);
		w->async.data = w;
		uv_timer_init(&w->loop, &w->hold_timer);
		w->hold_timer.data = w;
		uv_timer_init(&w->loop, &w->release_timer);
		w->release_timer.data = w;
		zw_dp_defer_init(w);
		zw_upool_init(&w->pool, &w->loop, &s->limits, cfg->upstream_idle_timeout_ms,
		              cfg->max_idle_per_endpoint);
		zw_upool_set_reader(&w->pool, w->rbuf, ZW_DP_RBUF_SIZE, zw_fwd_read_cb);
		zw_upool_init(&w->h2pool, &w->loop, &s->limits, cfg->upstream_idle_timeout_ms, 0);
		zw_upool_set_reader(&w->h2pool, w->rbuf, ZW_DP_RBUF_SIZE, zw_h2pool_read_cb);
		zw_metrics_shard_init(&w->metrics, (double)cfg->readiness_timeout_ms / 1000.0);
		s->workers[i] = w;
		s->shards[i] = &w->metrics;
		s->n_workers = i + 1;
		if (i > 0 && ((struct sockaddr_in *)&addr)->sin_port == 0) {
			/* Port 0: the workers share the first one's port. */
			((struct sockaddr_in *)&addr)->sin_port = htons((uint16_t)s->port);
		}
		rc = make_listener(w, &w->listener, &w->listening, cfg->listen,
		                   (struct sockaddr *)&addr, err, errlen);
		if (rc < 0)
			break;
		if (i == 0)
			s->port = bound_port(&w->listener);
		if (!tls)
			continue;
		if (i > 0 && ((struct sockaddr_in *)&tls_addr)->sin_port == 0)
			((struct sockaddr_in *)&tls_addr)->sin_port = htons((uint16_t)s->tls_port);
		rc = make_listener(w, &w->tls_listener, &w->tls_listening, cfg->tls_listen,
		                   (struct sockaddr *)&tls_addr, err, errlen);
		if (rc < 0)
			break;
		if (i == 0)
			s->tls_port = bound_port(&w->tls_listener);
	}
	if (rc == 0) {
		for (int i = 0; i < s->n_workers; i++) {
			rc = uv_thread_create(&s->workers[i]->thread, worker_main, s->workers[i]);
			if (rc == 0)
				s->workers[i]->started = 1;
			if (rc < 0) {
				snprintf(err, errlen, "thread: %s", uv_strerror(rc));
				break;
			}
		}
	}
	if (rc < 0) {
		/* Threads started so far are stopped by zw_server_stop. */
		zw_server_stop(s);
		zw_server_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

static void signal_all(struct zw_server *s, size_t off)
{
	for (int i = 0; i < s->n_workers; i++) {
		struct zw_worker *w = s->workers[i];
		atomic_store((_Atomic int *)((char *)w + off), 1);
		uv_async_send(&w->async);
	}
}

void zw_server_endpoints_changed(struct zw_server *s)
{
	signal_all(s, offsetof(struct zw_worker, flag_endpoints));
}

void zw_server_drain(struct zw_server *s)
{
	signal_all(s, offsetof(struct zw_worker, flag_drain));
}

void zw_server_stop_accepting(struct zw_server *s)
{
	signal_all(s, offsetof(struct zw_worker, flag_stop_accept));
}

size_t zw_server_connections(const struct zw_server *s)
{
	return atomic_load(&((struct zw_server *)s)->conns);
}

void zw_server_stop(struct zw_server *s)
{
	for (int i = 0; i < s->n_workers; i++) {
		struct zw_worker *w = s->workers[i];
		atomic_store(&w->flag_stop, 1);
		uv_async_send(&w->async);
	}
	for (int i = 0; i < s->n_workers; i++) {
		struct zw_worker *w = s->workers[i];
		if (w->started) {
			uv_thread_join(&w->thread);
		} else {
			on_async(&w->async);
			uv_run(&w->loop, UV_RUN_DEFAULT);
		}
		w->started = 0;
	}
}

void zw_server_free(struct zw_server *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->n_workers; i++) {
		struct zw_worker *w = s->workers[i];
		uv_loop_close(&w->loop);
		zw_metrics_shard_free(&w->metrics);
		zw_route_table_unref(w->cached_table);
		free(w);
	}
	zw_hold_free(&s->hold);
	free(s->workers);
	free(s->shards);
	free(s);
}

struct zw_metrics_shard *const *zw_server_metrics(const struct zw_server *s, size_t *n)
{
	*n = (size_t)s->n_workers;
	return s->shards;
}

struct zw_observe *zw_server_observe(const struct zw_server *s)
{
	return s->d.obs;
}

uint32_t zw_server_held(struct zw_server *s, const char *key)
{
	return zw_hold_count(&s->hold, key);
}

int zw_server_port(const struct zw_server *s)
{
	return s->port;
}

int zw_server_tls_port(const struct zw_server *s)
{
	return s->tls_port;
}

int zw_server_tls_prometheus(const struct zw_server *s, struct zw_obuf *out)
{
	int rc = s->tls_port ? zw_tlsstats_render(&s->tls_stats, out) : 0;
	return rc == 0 && s->d.upstream_tls ? zw_tlsstats_render_upstream(&s->tls_stats, out) : rc;
}
