/* Upstream dialing and keep-alive pool (see upstream.h). */
#include "upstream.h"

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
};

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
                                       int create)
{
	size_t b = hash_addr(a, len);
	for (struct zw_upool_list *l = p->buckets[b]; l; l = l->next_b)
		if (l->addr_len == len && memcmp(&l->addr, a, len) == 0)
			return l;
	if (!create)
		return NULL;
	struct zw_upool_list *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
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
	zw_http_head_free(&u->head);
	free(u);
}

void zw_upstream_close(struct zw_upstream *u)
{
	if (!u || u->closing)
		return;
	u->closing = 1;
	unlink_idle(u);
	u->owner = NULL;
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

static void on_connected(uv_connect_t *req, int status)
{
	struct zw_upstream *u = req->data;
	if (!u->connecting || u->closing)
		return;
	u->connecting = 0;
	uv_timer_stop(&u->timer);
	zw_upstream_connect_cb cb = u->on_connect;
	u->on_connect = NULL;
	if (status == 0)
		uv_tcp_nodelay(&u->tcp, 1);
	if (cb)
		cb(u, status);
}

int zw_upstream_dial(struct zw_upool *p, const struct sockaddr *addr, socklen_t addr_len,
                     uint64_t timeout_ms, void *owner, zw_upstream_connect_cb cb,
                     struct zw_upstream **out)
{
	struct zw_upstream *u = calloc(1, sizeof(*u));
	if (!u)
		return UV_ENOMEM;
	int rc = uv_tcp_init(p->loop, &u->tcp);
	if (rc < 0) {
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

/* Active: the owner's callback. Idle: an idle connection should never
 * receive anything; data or EOF means the peer is closing it (or
 * misbehaving), so it is not reusable. */
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct zw_upstream *u = s->data;
	if (nread < 0)
		u->reading = 0; /* libuv stopped reading (EOF or error) */
	if (nread == 0 || u->closing)
		return;
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

static void on_idle_timeout(uv_timer_t *t)
{
	zw_upstream_close(t->data);
}

void zw_upstream_release(struct zw_upstream *u)
{
	struct zw_upool *p = u->pool;
	if (u->closing)
		return;
	u->owner = NULL;
	uv_timer_stop(&u->timer);
	struct zw_upool_list *l = NULL;
	if (p->max_idle > 0)
		l = find_list(p, (struct sockaddr *)&u->addr, u->addr_len, 1);
	if (!l || l->n >= p->max_idle || zw_upstream_read_start(u) < 0) {
		zw_upstream_close(u);
		return;
	}
	u->list = l;
	u->idle_since = uv_now(p->loop);
	u->prev = NULL;
	ZW_LIST_PUSH(l->head, u);
	l->n++;
	p->idle++;
	uv_timer_start(&u->timer, on_idle_timeout, p->idle_timeout_ms, 0);
}

struct zw_upstream *zw_upool_get(struct zw_upool *p, const struct sockaddr *addr,
                                 socklen_t addr_len, void *owner, uint64_t max_age_ms)
{
	struct zw_upool_list *l = find_list(p, addr, addr_len, 0);
	if (!l || !l->head)
		return NULL;
	struct zw_upstream *u = l->head; /* most recently used first */
	if (max_age_ms && uv_now(p->loop) - u->idle_since > max_age_ms)
		return NULL; /* the freshest is too old; the idle timer reaps them */
	unlink_idle(u);
	uv_timer_stop(&u->timer); /* reading stays on: see upstream.h */
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
			free(l);
			l = next;
		}
		p->buckets[b] = NULL;
	}
}
