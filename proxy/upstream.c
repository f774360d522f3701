/* Upstream dialing and keep-alive pool (see upstream.h). */
#include "upstream.h"

#include "datapath.h"
#include "hash.h"
#include "list.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>

struct zw_upool_list {
	struct zw_upool_list *next_b;
	struct zw_upstream *head;
	size_t n;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	char *tls_name; /* the server name of its TLS connections; NULL: cleartext */
};

/* The server name u's pool list is keyed by (NULL: cleartext). */
static const char *tls_name_of(const struct zw_upstream *u)
{
	return u->tls ? zw_tls_sni(u->tls) : NULL;
}

static size_t hash_addr(const struct sockaddr *a, socklen_t len)
{
	return (size_t)(zw_hash_bytes(ZW_HASH_INIT, a, len) % ZW_UPOOL_BUCKETS);
}

void zw_upool_init(struct zw_upool *p, uv_loop_t *loop, const struct zw_http_limits *limits,
                   uint64_t idle_timeout_ms, size_t max_idle)
{
	memset(p, 0, sizeof(*p));
	p->loop = loop;
	p->limits = limits;
	p->idle_timeout_ms = idle_timeout_ms;
	p->max_idle = max_idle;
}

size_t zw_upool_total(const struct zw_upool *p)
{
	return p->total;
}

static struct zw_upool_list *find_list(struct zw_upool *p, const struct sockaddr *a, socklen_t len,
                                       const char *tls_name, int create)
{
	size_t b = hash_addr(a, len);
	for (struct zw_upool_list *l = p->buckets[b]; l; l = l->next_b)
		if (l->addr_len == len && memcmp(&l->addr, a, len) == 0 &&
		    (tls_name ? l->tls_name && strcmp(l->tls_name, tls_name) == 0 : !l->tls_name))
			return l;
	if (!create)
		return NULL;
	struct zw_upool_list *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	if (tls_name && !(l->tls_name = strdup(tls_name))) {
		free(l);
		return NULL;
	}
	memcpy(&l->addr, a, len);
	l->addr_len = len;
	l->next_b = p->buckets[b];
	p->buckets[b] = l;
	return l;
}

/* Removes u from its idle list (keeps the list; lists are few and reused). */
static void unlink_idle(struct zw_upstream *u)
{
	struct zw_upool_list *l = u->list;
	if (!l)
		return;
	ZW_LIST_UNLINK(l->head, u);
	u->list = NULL;
	l->n--;
	u->pool->idle--;
}

static void on_handle_closed(uv_handle_t *h)
{
	struct zw_upstream *u = h->data;
	if (--u->open_handles > 0)
		return;
	u->pool->total--;
	zw_tls_free(u->tls);
	zw_http_head_free(&u->head);
	free(u);
}

static int tls_flush(struct zw_upstream *u, uv_write_cb cb, void *arg);

void zw_upstream_close(struct zw_upstream *u)
{
	if (!u || u->closing)
		return;
	u->closing = 1;
	unlink_idle(u);
	u->owner = NULL;
	if (u->tls && !u->connecting && zw_tls_get_state(u->tls) == ZW_TLS_OPEN) {
		/* An orderly end (RFC 8446 §6.1), best effort: what the socket
		 * does not take at once is dropped by the close. */
		zw_tls_shutdown(u->tls);
		(void)tls_flush(u, NULL, NULL);
	}
	uv_close((uv_handle_t *)&u->timer, on_handle_closed);
	uv_close((uv_handle_t *)&u->tcp, on_handle_closed);
}

static void on_connect_timeout(uv_timer_t *t)
{
	struct zw_upstream *u = t->data;
	if (!u->connecting)
		return;
	u->connecting = 0;
	zw_upstream_connect_cb cb = u->on_connect;
	u->on_connect = NULL;
	/* The owner closes u from its callback; uv_close cancels the connect
	 * request, whose callback then sees UV_ECANCELED and does nothing. */
	if (cb)
		cb(u, UV_ETIMEDOUT);
}

/* Ends a connect attempt (TCP, or the TLS handshake over it) with status. */
static void connect_done(struct zw_upstream *u, int status)
{
	u->connecting = 0;
	uv_timer_stop(&u->timer);
	zw_upstream_connect_cb cb = u->on_connect;
	u->on_connect = NULL;
	if (cb)
		cb(u, status);
}

static void tls_write_cb(uv_write_t *req, int status)
{
	(void)zw_dp_write_arg(req);
	(void)status; /* a broken socket shows on the read side */
}

/* Hands the session's pending ciphertext to the socket; the last piece of
 * a caller's write goes with the caller's cb and arg (cb NULL: ours).
 * Returns what zw_dp_write returned. */
static int tls_flush(struct zw_upstream *u, uv_write_cb cb, void *arg)
{
	size_t len = 0;
	const void *p = zw_tls_pending(u->tls, &len);
	if (!len)
		return 0;
	uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
	int rc = zw_dp_write((uv_stream_t *)&u->tcp, &b, 1, cb ? cb : tls_write_cb, cb ? arg : u);
	zw_tls_sent(u->tls, len); /* written or copied into the queued write */
	return rc;
}

static void on_connected(uv_connect_t *req, int status)
{
	struct zw_upstream *u = req->data;
	if (!u->connecting || u->closing)
		return;
	if (status == 0)
		uv_tcp_nodelay(&u->tcp, 1);
	if (status == 0 && u->tls) {
		/* The handshake goes on under the same attempt timer. */
		int rc = zw_upstream_read_start(u);
		if (rc == 0)
			rc = tls_flush(u, NULL, NULL);
		if (rc >= 0)
			return;
		status = rc;
	}
	connect_done(u, status);
}

int zw_upstream_dial(struct zw_upool *p, const struct sockaddr *addr, socklen_t addr_len,
                     uint64_t timeout_ms, const struct zw_upstream_tls *tls, void *owner,
                     zw_upstream_connect_cb cb, struct zw_upstream **out)
{
	struct zw_upstream *u = calloc(1, sizeof(*u));
	if (!u)
		return UV_ENOMEM;
	if (tls && zw_tls_new_client(tls->client, tls->server_name, tls->alpn, NULL, &u->tls) < 0) {
		free(u);
		return UV_ENOMEM;
	}
	int rc = uv_tcp_init(p->loop, &u->tcp);
	if (rc < 0) {
		zw_tls_free(u->tls);
		free(u);
		return rc;
	}
	u->pool = p;
	u->tcp.data = u;
	u->timer.data = u;
	u->creq.data = u;
	uv_timer_init(p->loop, &u->timer);
	u->open_handles = 2;
	p->total++;
	memcpy(&u->addr, addr, addr_len);
	u->addr_len = addr_len;
	u->owner = owner;
	u->on_connect = cb;
	u->connecting = 1;
	zw_http_head_init(&u->head, p->limits);
	zw_http_parser_init(&u->parser, HTTP_RESPONSE, &u->head);
	rc = uv_tcp_connect(&u->creq, &u->tcp, addr, on_connected);
	if (rc < 0) {
		u->connecting = 0;
		u->on_connect = NULL;
		zw_upstream_close(u);
		return rc;
	}
	uv_timer_start(&u->timer, on_connect_timeout, timeout_ms, 0);
	*out = u;
	return 0;
}

void zw_upool_set_reader(struct zw_upool *p, char *buf, size_t size, zw_upstream_read_cb cb)
{
	p->rbuf = buf;
	p->rbuf_size = size;
	p->on_read = cb;
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
	struct zw_upstream *u = h->data;
	(void)size;
	*buf = uv_buf_init(u->pool->rbuf, (unsigned)u->pool->rbuf_size);
}

/* Hands nread (plaintext bytes at data, or a negative UV_* code) to the
 * owner; on an idle connection closes it (see on_read). */
static void deliver(struct zw_upstream *u, ssize_t nread, const char *data)
{
	if (u->owner) {
		if (u->pool->on_read)
			u->pool->on_read(u, nread, data);
		return;
	}
	zw_upstream_close(u);
}

/* A read on a TLS connection: ciphertext (n > 0 bytes at data) into the
 * session, handshake replies out, plaintext on to the owner. During the
 * handshake an EOF or error fails the attempt like a refused connect. Not
 * inlined: on_read's cleartext path stays as it was. */
static void __attribute__((noinline))
tls_read(struct zw_upstream *u, ssize_t nread, const char *data)
{
	size_t off = 0, n = nread > 0 ? (size_t)nread : 0;
	if (nread < 0) {
		if (u->connecting)
			connect_done(u, (int)nread);
		else
			deliver(u, nread, NULL);
		return;
	}
	for (;;) {
		size_t used = 0, len = 0;
		enum zw_tls_state st = zw_tls_feed(u->tls, data + off, n - off, &used);
		off += used;
		(void)tls_flush(u, NULL, NULL);
		if (u->connecting) {
			if (st == ZW_TLS_HANDSHAKE && off < n && used)
				continue;
			if (st == ZW_TLS_HANDSHAKE && off < n)
				connect_done(u, UV_ENOBUFS); /* a flight the session cannot take */
			else if (st == ZW_TLS_FAILED)
				connect_done(u, ZW_UPSTREAM_ETLS);
			else if (st != ZW_TLS_HANDSHAKE)
				connect_done(u, st == ZW_TLS_OPEN ? 0 : UV_EOF);
			if (st != ZW_TLS_OPEN || u->closing || !u->owner)
				return;
		}
		const void *p;
		while (!u->closing && (p = zw_tls_plain(u->tls, &len))) {
			deliver(u, (ssize_t)len, p);
			if (u->closing)
				return;
			st = zw_tls_plain_consume(u->tls, len);
			(void)tls_flush(u, NULL, NULL);
		}
		if (u->closing)
			return;
		st = zw_tls_get_state(u->tls);
		if (st == ZW_TLS_PEER_CLOSED || st == ZW_TLS_FAILED) {
			deliver(u, st == ZW_TLS_PEER_CLOSED ? UV_EOF : UV_EPROTO, NULL);
			return;
		}
		if (off >= n)
			return;
		if (!used) {
			/* Nothing taken although the plaintext was: never spin. */
			deliver(u, UV_ENOBUFS, NULL);
			return;
		}
	}
}

/* Active: the owner's callback. Idle: an idle connection should never
 * receive anything; data or EOF means the peer is closing it (or
 * misbehaving), so it is not reusable (TLS: records that carry no
 * plaintext, such as TLS 1.3 session tickets, are taken in silence). */
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct zw_upstream *u = s->data;
	if (nread < 0)
		u->reading = 0; /* libuv stopped reading (EOF or error) */
	if (nread == 0 || u->closing)
		return;
	if (u->tls) {
		tls_read(u, nread, buf->base);
		return;
	}
	if (u->owner) {
		if (u->pool->on_read)
			u->pool->on_read(u, nread, buf->base);
		return;
	}
	zw_upstream_close(u);
}

int zw_upstream_read_start(struct zw_upstream *u)
{
	if (u->reading)
		return 0;
	if (u->closing || !u->pool->rbuf)
		return UV_EINVAL;
	int rc = uv_read_start((uv_stream_t *)&u->tcp, on_alloc, on_read);
	if (rc == 0)
		u->reading = 1;
	return rc;
}

void zw_upstream_read_stop(struct zw_upstream *u)
{
	if (!u->reading || u->closing)
		return;
	uv_read_stop((uv_stream_t *)&u->tcp);
	u->reading = 0;
}

/* The idle timer runs from a connection's first release on and is not
 * touched per request (no timer work when the pool hands it out or takes
 * it back): when it fires, a connection idle for the whole timeout closes;
 * one taken meanwhile waits for the rest of the timeout from its last
 * release, or a whole timeout while active. */
static void on_idle_timeout(uv_timer_t *t)
{
	struct zw_upstream *u = t->data;
	struct zw_upool *p = u->pool;
	uint64_t idle = uv_now(p->loop) - u->idle_since;
	if (!u->owner && u->list && idle >= p->idle_timeout_ms) {
		zw_upstream_close(u);
		return;
	}
	uint64_t next = u->owner || !u->list ? p->idle_timeout_ms : p->idle_timeout_ms - idle;
	uv_timer_start(t, on_idle_timeout, next, 0);
}

void zw_upstream_release(struct zw_upstream *u)
{
	struct zw_upool *p = u->pool;
	if (u->closing)
		return;
	u->owner = NULL;
	if (!u->idle_timer)
		uv_timer_stop(&u->timer); /* the connect timer, if still on */
	struct zw_upool_list *l = NULL;
	if (p->max_idle > 0)
		l = find_list(p, (struct sockaddr *)&u->addr, u->addr_len, tls_name_of(u), 1);
	if (!l || l->n >= p->max_idle || zw_upstream_read_start(u) < 0 ||
	    (u->tls && zw_tls_get_state(u->tls) != ZW_TLS_OPEN)) {
		zw_upstream_close(u);
		return;
	}
	u->list = l;
	u->idle_since = uv_now(p->loop);
	u->prev = NULL;
	ZW_LIST_PUSH(l->head, u);
	l->n++;
	p->idle++;
	if (!u->idle_timer) {
		u->idle_timer = 1;
		uv_timer_start(&u->timer, on_idle_timeout, p->idle_timeout_ms, 0);
	}
}

struct zw_upstream *zw_upool_get(struct zw_upool *p, const struct sockaddr *addr,
                                 socklen_t addr_len, const char *tls_name, void *owner,
                                 uint64_t max_age_ms)
{
	struct zw_upool_list *l = find_list(p, addr, addr_len, tls_name, 0);
	if (!l || !l->head)
		return NULL;
	struct zw_upstream *u = l->head; /* most recently used first */
	if (max_age_ms && uv_now(p->loop) - u->idle_since > max_age_ms)
		return NULL; /* the freshest is too old; the idle timer reaps them */
	unlink_idle(u);
	/* Reading stays on (see upstream.h); so does the idle timer (see
	 * on_idle_timeout). */
	u->owner = owner;
	u->reused = 1;
	zw_http_head_reset(&u->head);
	zw_http_parser_init(&u->parser, HTTP_RESPONSE, &u->head);
	return u;
}

void zw_upool_close_idle(struct zw_upool *p)
{
	for (size_t b = 0; b < ZW_UPOOL_BUCKETS; b++) {
		struct zw_upool_list *l = p->buckets[b];
		while (l) {
			struct zw_upool_list *next = l->next_b;
			while (l->head)
				zw_upstream_close(l->head);
			free(l->tls_name);
			free(l);
			l = next;
		}
		p->buckets[b] = NULL;
	}
}

int zw_upstream_write(struct zw_upstream *u, const uv_buf_t *bufs, unsigned n, uv_write_cb cb,
                      void *arg)
{
	if (!u->tls)
		return zw_dp_write((uv_stream_t *)&u->tcp, bufs, n, cb, arg);
	int rc = 0;
	for (unsigned i = 0; i < n; i++) {
		size_t off = 0;
		while (off < bufs[i].len) {
			size_t used = 0;
			zw_tls_write(u->tls, bufs[i].base + off, bufs[i].len - off, &used);
			if (!used && !zw_tls_pending(u->tls, &(size_t){0}))
				return UV_EPROTO; /* the session is closed or failed */
			off += used;
			if (off < bufs[i].len) {
				/* The session's output is full: out with it, ours. */
				rc = tls_flush(u, NULL, NULL);
				if (rc < 0)
					return rc;
			}
		}
	}
	return tls_flush(u, cb, arg);
}

const char *zw_upstream_tls_error(const struct zw_upstream *u)
{
	return u->tls ? zw_tls_error(u->tls) : "";
}
