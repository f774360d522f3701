/* zerowire-proxy: HTTP/1.1 client connections (see datapath.h): reading
 * from the client, request heads parsed with http1.c, the checks before
 * routing, responses the proxy makes itself (local, static, placeholder),
 * request bodies framed on the way to the upstream, keep-alive and
 * pipelining, the client timers (header, idle) and the client side of
 * tunnels. One struct zw_h1conn per connection, one request at a time on
 * it (struct zw_request, reset as a unit before the next).
 *
 * Buffers: reads land in the worker's one 64 KiB read buffer and are
 * written on at once (uv_try_write); only what the peer cannot take now is
 * copied, and then reading from the source stops until the peer's write
 * queue is empty again. So each direction holds at most one read's worth
 * of bytes.
 *
 * TLS (the --tls-listen listener, docs/tls.md). The transport seam is here
 * and nowhere else: a connection with c->tls set feeds what it reads to its
 * TLS session (tls.h) and hands the plaintext that comes out to the same
 * code a cleartext read goes to (on_plain); send_bufs encrypts and passes
 * the ciphertext to the socket at once, so "bytes queued for the socket"
 * (busy, backpressure) means the same with and without TLS. Reading
 * "stopped" on a TLS connection leaves decrypted plaintext in the session
 * and stops reading the socket; starting again delivers it from an idle
 * callback (never from inside the caller). Cleartext connections take none
 * of these branches and copy nothing more than before. ALPN h2 starts the
 * HTTP/2 session at the end of the handshake; http/1.1 or none is HTTP/1.1.
 * The header timer, armed at accept, bounds the handshake. */
#include "datapath.h"

#include "bodies.h"
#include "log.h"
#include "list.h"
#include "tls.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_POLL_BATCH 1024

struct zw_h1conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	struct zw_worker *w;
	struct zw_h1conn *next, *prev; /* worker's connection list */
	int open_handles;
	int closed;
	int reading;
	int client_eof; /* the client half-closed after a complete request */
	int drain_wait; /* between requests: the last answer is still queued */
	int feeding;    /* next_request_input's loop runs (below on the stack) */
	int feed_again; /* a request ended inside it: the loop parses the rest */
	int pending_writes;
	int close_after_flush;
	llhttp_t parser;
	struct zw_http_head head;
	char *in; /* unparsed client bytes (after a head), owned */
	size_t in_off, in_len;
	char client_ip[INET6_ADDRSTRLEN];
	int got_bytes; /* bytes of the current request head seen */
	/* Body bytes that came with the head, framed on a copy of the parser
	 * until the write upstream went through (early_body). */
	llhttp_t probe;
	size_t probe_len;
	int probe_res;
	struct zw_obuf pend;    /* a final response head waiting for its body bytes */
	int proto_known;        /* the first bytes told HTTP/1.1 from HTTP/2 */
	struct zw_h2client *h2; /* HTTP/2 (prior knowledge): the session, owned */
	struct zw_request r;    /* the request in progress */
	/* TLS (NULL: cleartext). */
	struct zw_tls *tls;   /* the session, owned */
	uv_idle_t tls_idle;   /* delivers plaintext left in the session */
	int tls_open;         /* handshake done (counted, protocol chosen) */
	int tls_sock_reading; /* the socket is read (c->reading is the client side's wish) */
	int tls_in_pump;      /* inside tls_pump: it re-checks before returning */
	int tls_peer_eof;     /* the end of the client's data was handled */
	int tls_error_seen;   /* the error was counted and logged */
	int tls_fed;          /* the client sent bytes */
};

static const struct zw_client_ops h1_ops;

static void conn_close(struct zw_h1conn *c);
static void conn_free_if_done(struct zw_h1conn *c);
static void conn_feed_head(struct zw_h1conn *c, const char *data, size_t len);
static void detect_protocol(struct zw_h1conn *c, const char *data, size_t len);
static void request_finished(struct zw_h1conn *c);
static void next_request_input(struct zw_h1conn *c);
static void client_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static int tls_send(struct zw_h1conn *c, const uv_buf_t *bufs, unsigned n);
static int tls_flush(struct zw_h1conn *c);
static void tls_schedule(struct zw_h1conn *c);

static const char empty[1] = "";

static struct zw_h1conn *conn_of(struct zw_request *r)
{
	return (struct zw_h1conn *)((char *)r - offsetof(struct zw_h1conn, r));
}

/* ---- writing ------------------------------------------------------------ */

static void client_write_cb(uv_write_t *req, int status);

/* Sends the n buffers to the client (see zw_dp_write), counting them as
 * the request's bytes out. Returns 0 or a negative UV_* code. */
static int send_bufs(struct zw_h1conn *c, const uv_buf_t *bufs, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		c->r.bytes_out += bufs[i].len;
	if (c->tls)
		return tls_send(c, bufs, n);
	int rc = zw_dp_write((uv_stream_t *)&c->tcp, bufs, n, client_write_cb, c);
	if (rc > 0) {
		c->pending_writes++;
		rc = 0;
	}
	return rc;
}

static int send_bytes(struct zw_h1conn *c, const char *data, size_t len)
{
	uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
	return send_bufs(c, &b, 1);
}

/* send_bufs for two buffers (a head and the body bytes that follow it), so
 * that both leave in one system call. */
static int send_two(struct zw_h1conn *c, const char *a, size_t alen, const char *b, size_t blen)
{
	uv_buf_t bufs[2] = {uv_buf_init((char *)a, (unsigned)alen),
	                    uv_buf_init((char *)b, (unsigned)blen)};
	return send_bufs(c, bufs, blen ? 2 : 1);
}

static void client_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
	struct zw_h1conn *c = h->data;
	(void)size;
	*buf = uv_buf_init(c->w->rbuf, ZW_DP_RBUF_SIZE);
}

static void close_after_flush(struct zw_h1conn *c);

static void client_read_start(struct zw_h1conn *c)
{
	if (c->client_eof) {
		/* Nothing more will come: once the requests already received
		 * are answered (or the tunnel's last bytes are out), close. */
		if (!c->closed && (c->r.state == ZW_REQ_HEAD || c->r.state == ZW_REQ_TUNNEL))
			close_after_flush(c);
		return;
	}
	if (!c->reading && !c->closed) {
		if (c->tls) {
			c->reading = 1;
			tls_schedule(c);
		} else if (uv_read_start((uv_stream_t *)&c->tcp, client_alloc, client_read_cb) ==
		           0) {
			c->reading = 1;
		}
	}
}

static void client_read_stop(struct zw_h1conn *c)
{
	if (c->reading) {
		c->reading = 0;
		if (c->tls)
			tls_schedule(c);
		else
			uv_read_stop((uv_stream_t *)&c->tcp);
	}
}

static void conn_maybe_close_flushed(struct zw_h1conn *c)
{
	if (c->close_after_flush && c->pending_writes == 0)
		conn_close(c);
}

static void client_write_cb(uv_write_t *req, int status)
{
	struct zw_h1conn *c = zw_dp_write_arg(req);
	c->pending_writes--;
	if (c->closed) {
		conn_free_if_done(c);
		return;
	}
	if (status < 0) {
		conn_close(c);
		return;
	}
	c->r.last_io = uv_now(&c->w->loop);
	conn_maybe_close_flushed(c);
	if (c->closed)
		return;
	if (c->h2) {
		zw_h2client_drained(c->h2);
		if (!zw_h2client_backlogged(c->h2))
			client_read_start(c);
		return;
	}
	if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > 0)
		return;
	if (c->drain_wait) {
		c->drain_wait = 0;
		next_request_input(c);
		return;
	}
	zw_fwd_client_drained(&c->r);
}

/* ---- connection life ------------------------------------------------------ */

/* Frees c once its handles are closed and no write that points at it is
 * pending (upstream writes can outlive the client handle: the upstream
 * connection is closed, and its writes cancelled, after c's own handles). */
static void conn_free_if_done(struct zw_h1conn *c)
{
	if (c->open_handles > 0 || c->pending_writes > 0)
		return;
	atomic_fetch_sub(&c->w->s->conns, 1);
	zw_http_head_free(&c->head);
	free(c->in);
	zw_buf_free(&c->pend.buf);
	zw_tls_free(c->tls);
	free(c);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
	/* The timer's data is the request (its callbacks are the request's);
	 * the idle handle's and the socket's are c. */
	struct zw_h1conn *c = h->type == UV_TIMER ? conn_of(h->data) : h->data;
	c->open_handles--;
	conn_free_if_done(c);
}

static void conn_close(struct zw_h1conn *c)
{
	if (c->closed)
		return;
	c->closed = 1;
	if (c->r.state != ZW_REQ_HEAD && !c->r.resp_done && c->r.status == 0 && c->r.start_ms)
		zw_request_record(&c->r, 499); /* client went away before an answer */
	zw_request_cleanup(&c->r);
	zw_h2client_free(c->h2); /* its streams end (CANCEL) */
	c->h2 = NULL;
	ZW_LIST_UNLINK(c->w->conns, c);
	uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
	uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
	if (c->tls)
		uv_close((uv_handle_t *)&c->tls_idle, on_conn_handle_closed);
}

static void close_after_flush(struct zw_h1conn *c)
{
	client_read_stop(c);
	if (c->tls && !c->closed && !c->close_after_flush) {
		zw_tls_shutdown(c->tls); /* close_notify (after the handshake) */
		if (tls_flush(c) < 0) {
			conn_close(c);
			return;
		}
	}
	c->close_after_flush = 1;
	conn_maybe_close_flushed(c);
}

/* The request's head is known (or failed): what the metrics and the
 * access log report of it from now on. */
static void request_begin(struct zw_h1conn *c)
{
	c->r.start_ms = uv_now(&c->w->loop);
	c->r.method = c->parser.method;
	c->r.head = &c->head;
}

/* Sends a response the proxy built (out) and ends the request. */
static void send_own_response(struct zw_h1conn *c, struct zw_obuf *out, int status, int close)
{
	c->r.status = status;
	c->r.state = ZW_REQ_LOCAL;
	uv_timer_stop(&c->timer);
	zw_request_record(&c->r, status);
	int rc = send_bytes(c, out->buf.data, out->buf.len);
	free(out->buf.data);
	c->r.resp_done = 1;
	c->r.resp_close = close;
	if (rc < 0) {
		conn_close(c);
		return;
	}
	request_finished(c);
}

/* Sends a response generated by the proxy and ends the request. */
static void local_response(struct zw_h1conn *c, int status, const char *extra, const char *body,
                           int close)
{
	struct zw_obuf out = {.limit = 1 << 20};
	if (c->w->draining || !llhttp_should_keep_alive(&c->parser) || c->r.has_body ||
	    !c->r.req_done)
		close = 1;
	if (c->r.upgrade)
		close = 1;
	if (zw_http_simple_response(&out, status, extra, body, strlen(body), close) < 0) {
		zw_buf_free(&out.buf);
		conn_close(c);
		return;
	}
	if (c->r.is_head)
		out.buf.len -= strlen(body); /* HEAD: the head only */
	send_own_response(c, &out, status, close);
}

int zw_client_static_text(struct zw_obuf *out, const struct zw_static_response *p, const char *url,
                          size_t url_len, int default_status, int cold, int close, int is_head,
                          int *status_out)
{
	struct zw_body_choice ch;
	zw_bodies_select(p, url, url_len, &ch);
	int status = ch.status ? ch.status : (p->status ? p->status : default_status);
	size_t blen = ch.len;
	int has_ct = 0;
	int rc = zw_obuf_addf(out, "HTTP/1.1 %d %s\r\n", status, zw_http_reason(status));
	for (size_t i = 0; rc == 0 && i < p->n_headers; i++) {
		const char *n = p->header_names[i], *v = p->header_values[i];
		if (strcasecmp(n, "content-type") == 0) {
			if (ch.status)
				continue; /* an error of ours: its own type */
			has_ct = 1;
		}
		if (zw_http_is_hop_by_hop(n, strlen(n)) || strcasecmp(n, "content-length") == 0)
			continue;
		if (zw_obuf_add(out, n, strlen(n)) < 0 || zw_obuf_add(out, ": ", 2) < 0 ||
		    zw_obuf_add(out, v, strlen(v)) < 0 || zw_obuf_add(out, "\r\n", 2) < 0)
			rc = -1;
	}
	if (rc == 0 && !has_ct)
		rc = zw_obuf_addf(out, "Content-Type: %s\r\n",
		                  ch.ctype ? ch.ctype : "text/html; charset=utf-8");
	if (rc == 0)
		rc = zw_obuf_addf(out, "Content-Length: %zu\r\nX-Zerowire-Cold-Start: %s\r\n%s\r\n",
		                  blen, cold ? "true" : "false",
		                  close ? "Connection: close\r\n" : "");
	if (rc == 0 && blen && !is_head)
		rc = zw_obuf_add(out, ch.body, blen);
	*status_out = status;
	return rc;
}

/* Sends a configured static response (placeholder page, static route) and
 * ends the request. `cold` says whether X-Zerowire-Cold-Start is true. */
static void static_response(struct zw_h1conn *c, const struct zw_static_response *p,
                            int default_status, int cold)
{
	struct zw_obuf out = {.limit = 4 << 20};
	int close = c->r.has_body || !c->r.req_done || c->w->draining ||
	            !llhttp_should_keep_alive(&c->parser);
	int status = 0;
	if (zw_client_static_text(&out, p, c->head.buf + c->head.url_off, c->head.url_len,
	                          default_status, cold, close, c->r.is_head, &status) < 0) {
		zw_buf_free(&out.buf);
		conn_close(c);
		return;
	}
	send_own_response(c, &out, status, close);
}

static void on_timer_header(uv_timer_t *t);

/* Prepares the connection for its next request (keep-alive) and processes
 * pipelined bytes already received. */
static void next_request(struct zw_h1conn *c)
{
	struct zw_server *s = c->w->s;
	/* zw_request_cleanup() has ended the last request's accounting and
	 * released what it held: what is left are plain values. */
	memset(&c->r, 0, sizeof(c->r));
	c->r.ops = &h1_ops;
	c->r.w = c->w;
	c->r.timer = &c->timer;
	c->r.client_ip = c->client_ip;
	c->got_bytes = 0;
	zw_http_head_reset(&c->head);
	uv_timer_start(&c->timer, on_timer_header, s->d.cfg->idle_timeout_ms, 0);
	if (zw_client_write_queue(c) > 0) {
		/* The client has not taken the last answer yet: nothing more is
		 * read or parsed until it has (client_write_cb goes on), so a
		 * client that pipelines requests and never reads gets at most
		 * one answer queued, not one per request. The idle timeout
		 * bounds the wait. */
		c->drain_wait = 1;
		client_read_stop(c);
		return;
	}
	next_request_input(c);
}

/* Parses the pipelined bytes already received, else reads the client. A
 * request answered at once (a local answer) ends inside conn_feed_head and
 * comes back here for the next one: that call only leaves the work to the
 * loop of the call below it on the stack, so a read full of pipelined
 * requests costs one frame of calls, not one per request (a 64 KiB read
 * holds thousands; nested, they overflowed a 2 MiB worker stack). */
static void next_request_input(struct zw_h1conn *c)
{
	if (c->feeding) {
		c->feed_again = 1;
		return;
	}
	c->feeding = 1;
	do {
		c->feed_again = 0;
		if (c->in_len > c->in_off) {
			/* Take the pipelined bytes out of c->in before parsing
			 * them: parsing may store a new remainder there. */
			char *buf = c->in;
			size_t off = c->in_off, len = c->in_len;
			c->in = NULL;
			c->in_off = c->in_len = 0;
			conn_feed_head(c, buf + off, len - off);
			free(buf);
		} else {
			free(c->in);
			c->in = NULL;
			c->in_off = c->in_len = 0;
			client_read_start(c);
		}
	} while (c->feed_again && !c->closed);
	c->feeding = 0;
}

/* Both directions of the exchange are done (or the response is complete
 * and the connection closes): finish accounting, then keep-alive or close. */
static void request_finished(struct zw_h1conn *c)
{
	zw_fwd_release(&c->r);
	zw_request_cleanup(&c->r);
	if (c->r.resp_close || !c->r.req_done || c->w->draining) {
		close_after_flush(c);
		return;
	}
	next_request(c);
}

/* Stores bytes that arrived after a head (body start, pipelined request,
 * early tunnel data) until they can be used. */
static int stash(struct zw_h1conn *c, const char *data, size_t len)
{
	if (len == 0)
		return 0;
	size_t have = c->in_len - c->in_off;
	char *nb = malloc(have + len);
	if (!nb)
		return -1;
	if (have)
		memcpy(nb, c->in + c->in_off, have);
	memcpy(nb + have, data, len);
	free(c->in);
	c->in = nb;
	c->in_off = 0;
	c->in_len = have + len;
	return 0;
}

static void tls_error(struct zw_h1conn *c, enum zw_tls_err err);

static void on_timer_header(uv_timer_t *t)
{
	struct zw_h1conn *c = conn_of(t->data);
	if (c->r.state != ZW_REQ_HEAD)
		return;
	if (c->tls && !c->tls_open) {
		tls_error(c, ZW_TLS_ERR_TIMEOUT); /* the handshake did not finish */
		conn_close(c);
		return;
	}
	if (c->got_bytes) {
		request_begin(c);
		c->r.req_done = 1;
		local_response(c, 408, NULL, "request head not received in time\n", 1);
		return;
	}
	conn_close(c);
}

/* ---- request body ---------------------------------------------------------- */

/* Frames request body bytes from buf and sends them upstream; returns the
 * number of bytes of buf that belong to this request, or -1 after a
 * failure (handled). */
static ssize_t forward_body(struct zw_h1conn *c, const char *buf, size_t len)
{
	size_t used = 0;
	int res = zw_http_body_execute(&c->parser, buf, len, &used);
	if (res == ZW_BODY_EBAD) {
		/* Malformed framing mid-body: the upstream got a truncated
		 * request; nothing sane can follow on either connection. */
		if (!c->r.resp_started) {
			c->r.req_done = 0;
			zw_metrics_event(&c->w->metrics, c->r.key, ZW_EV_UPSTREAM_ERROR);
			zw_fwd_drop(&c->r);
			local_response(c, 400, NULL, "malformed request body\n", 1);
		} else {
			conn_close(c);
		}
		return -1;
	}
	if (zw_fwd_body(&c->r, buf, used) < 0)
		return -1;
	if (res == ZW_BODY_DONE || res == ZW_BODY_UPGRADE)
		c->r.req_done = 1;
	return (ssize_t)used;
}

/* ---- the client ops (datapath.h) ------------------------------------------- */

static int h1_request_head(struct zw_request *r, struct zw_obuf *out)
{
	struct zw_h1conn *c = conn_of(r);
	struct zw_fwd_info info = {
	        .client_ip = c->client_ip,
	        .proto = zw_client_scheme(c),
	        .upgrade = r->upgrade,
	        .chunked = r->chunked,
	};
	return zw_http_build_request(out, &c->parser, &c->head, &info);
}

static int h1_early_body(struct zw_request *r, const char **data, size_t *len)
{
	struct zw_h1conn *c = conn_of(r);
	*data = NULL;
	*len = 0;
	if (c->in_len <= c->in_off)
		return ZW_BODY_MORE;
	c->probe = c->parser;
	c->probe_len = 0;
	c->probe_res = zw_http_body_execute(&c->probe, c->in + c->in_off, c->in_len - c->in_off,
	                                    &c->probe_len);
	*data = c->in + c->in_off;
	*len = c->probe_len;
	return c->probe_res;
}

static void h1_early_body_sent(struct zw_request *r)
{
	struct zw_h1conn *c = conn_of(r);
	c->parser = c->probe;
	c->in_off += c->probe_len;
	r->body_sent += c->probe_len;
	if (c->probe_res == ZW_BODY_DONE || c->probe_res == ZW_BODY_UPGRADE)
		r->req_done = 1;
}

/* Forwards stashed body bytes, then reads the client if more body follows. */
static void h1_body_more(struct zw_request *r)
{
	struct zw_h1conn *c = conn_of(r);
	if (!r->req_done && c->in_len > c->in_off) {
		char *buf = c->in;
		size_t off = c->in_off, len = c->in_len - c->in_off;
		c->in = NULL;
		c->in_off = c->in_len = 0;
		ssize_t used = forward_body(c, buf + off, len);
		if (used < 0) {
			free(buf);
			return;
		}
		if ((size_t)used < len && stash(c, buf + off + used, len - (size_t)used) < 0) {
			free(buf);
			conn_close(c);
			return;
		}
		free(buf);
		if (r->req_done && r->resp_done) {
			request_finished(c);
			return;
		}
	}
	if (!r->req_done && r->up && !zw_fwd_busy(r))
		client_read_start(c);
}

static int h1_response_head(struct zw_request *r, enum zw_resp_kind kind)
{
	struct zw_h1conn *c = conn_of(r);
	struct zw_upstream *u = r->up;
	struct zw_obuf out = {.limit = c->w->s->limits.max_head_bytes + 4096};
	if (kind == ZW_RESP_INTERIM && c->parser.http_minor == 0)
		return 0; /* never a 1xx to an HTTP/1.0 client (RFC 9110 15.2) */
	if (kind == ZW_RESP_INTERIM || kind == ZW_RESP_UPGRADE) {
		struct zw_resp_info info = {0};
		if (kind == ZW_RESP_UPGRADE)
			info = (struct zw_resp_info){.cold_start = r->cold, .upgrade = 1};
		int rc = zw_http_build_response(&out, &u->parser, &u->head, &info);
		if (rc == 0)
			rc = send_bytes(c, out.buf.data, out.buf.len);
		zw_buf_free(&out.buf);
		if (kind == ZW_RESP_UPGRADE)
			zw_request_record(r, r->status);
		if (rc < 0) {
			conn_close(c);
			return -1;
		}
		return 0;
	}
	int needs_eof = llhttp_message_needs_eof(&u->parser);
	/* An HTTP/1.0 client cannot delimit a chunked body (the upstream was
	 * asked in HTTP/1.0 and chunked anyway): it reads until the close. */
	int chunked_to_10 = (u->parser.flags & F_CHUNKED) && c->parser.http_minor == 0;
	r->resp_close = needs_eof || c->w->draining || !r->req_done || r->upgrade ||
	                chunked_to_10 || !llhttp_should_keep_alive(&c->parser);
	struct zw_resp_info info = {
	        .cold_start = r->cold, .close = r->resp_close, .keep_framing = 1};
	if (zw_http_build_response(&out, &u->parser, &u->head, &info) < 0) {
		zw_buf_free(&out.buf);
		conn_close(c);
		return -1;
	}
	zw_buf_free(&c->pend.buf);
	c->pend = out;
	return 0;
}

/* Sends the final head still kept (if any) and the body bytes in one
 * writev. */
static int h1_send(struct zw_request *r, const char *data, size_t len)
{
	struct zw_h1conn *c = conn_of(r);
	int rc = send_two(c, c->pend.buf.data, c->pend.buf.len, data, len);
	zw_buf_free(&c->pend.buf);
	c->pend = (struct zw_obuf){0};
	return rc;
}

static int h1_busy(struct zw_request *r)
{
	return uv_stream_get_write_queue_size((uv_stream_t *)&conn_of(r)->tcp) > 0;
}

static void h1_finish(struct zw_request *r)
{
	request_finished(conn_of(r));
}

static void h1_respond(struct zw_request *r, int status, const char *extra, const char *body,
                       int close)
{
	local_response(conn_of(r), status, extra, body, close);
}

static void h1_respond_static(struct zw_request *r, const struct zw_static_response *p,
                              int default_status, int cold)
{
	static_response(conn_of(r), p, default_status, cold);
}

static void h1_abort(struct zw_request *r)
{
	conn_close(conn_of(r));
}

static void h1_tunnel(struct zw_request *r, const char *rest, size_t rest_len)
{
	struct zw_h1conn *c = conn_of(r);
	if (rest_len && send_bytes(c, rest, rest_len) < 0) {
		conn_close(c);
		return;
	}
	if (c->in_len > c->in_off) {
		if (zw_fwd_tunnel_bytes(r, c->in + c->in_off, c->in_len - c->in_off) < 0) {
			conn_close(c);
			return;
		}
		c->in_off = c->in_len;
	}
	client_read_start(c);
}

static void h1_tunnel_end(struct zw_request *r)
{
	close_after_flush(conn_of(r));
}

static void h1_read_start(struct zw_request *r)
{
	client_read_start(conn_of(r));
}

static void h1_read_stop(struct zw_request *r)
{
	client_read_stop(conn_of(r));
}

static int h1_write_done(struct zw_request *r, int status)
{
	struct zw_h1conn *c = conn_of(r);
	c->pending_writes--;
	if (c->closed) {
		conn_free_if_done(c);
		return 1;
	}
	if (status < 0) {
		/* The upstream went away while we sent: the read side reports
		 * it (EOF/reset) and decides between 502 and closing. */
		return 1;
	}
	r->last_io = uv_now(&c->w->loop);
	conn_maybe_close_flushed(c);
	return c->closed;
}

static void h1_write_queued(struct zw_request *r)
{
	conn_of(r)->pending_writes++;
}

static const struct zw_client_ops h1_ops = {
        .request_head = h1_request_head,
        .early_body = h1_early_body,
        .early_body_sent = h1_early_body_sent,
        .body_more = h1_body_more,
        .response_head = h1_response_head,
        .send = h1_send,
        .busy = h1_busy,
        .finish = h1_finish,
        .respond = h1_respond,
        .respond_static = h1_respond_static,
        .abort = h1_abort,
        .tunnel = h1_tunnel,
        .tunnel_end = h1_tunnel_end,
        .read_start = h1_read_start,
        .read_stop = h1_read_stop,
        .write_done = h1_write_done,
        .write_queued = h1_write_queued,
};

/* ---- request dispatch ------------------------------------------------------ */

static void dispatch(struct zw_h1conn *c)
{
	struct zw_http_head *h = &c->head;
	struct zw_request *r = &c->r;
	request_begin(c);
	if (zw_observe_active(c->w->s->d.obs)) {
		size_t tp_len = 0, ts_len = 0;
		const char *tp = zw_http_find(h, "traceparent", &tp_len);
		const char *ts = zw_http_find(h, "tracestate", &ts_len);
		zw_request_observe_begin(r, tp, tp_len, ts, ts_len);
	}
	uv_timer_stop(&c->timer);
	r->is_head = c->parser.method == HTTP_HEAD;
	r->upgrade = llhttp_get_upgrade(&c->parser);
	r->chunked = (c->parser.flags & F_CHUNKED) != 0;
	r->has_body = r->chunked ||
	              ((c->parser.flags & F_CONTENT_LENGTH) && c->parser.content_length > 0);

	/* Is the message already complete (no body)? */
	size_t used = 0;
	int res = zw_http_body_execute(&c->parser, empty, 0, &used);
	if (res == ZW_BODY_EBAD) {
		local_response(c, 400, NULL, "malformed request\n", 1);
		return;
	}
	r->req_done = res == ZW_BODY_DONE || res == ZW_BODY_UPGRADE;
	if (!r->req_done && c->in_len > c->in_off) {
		/* Body bytes that came with the head are checked before anything
		 * reaches an upstream (on a copy of the parser: plain data). */
		llhttp_t probe = c->parser;
		if (zw_http_body_execute(&probe, c->in + c->in_off, c->in_len - c->in_off, &used) ==
		    ZW_BODY_EBAD) {
			local_response(c, 400, NULL, "malformed request body\n", 1);
			return;
		}
	}

	zw_request_dispatch(r, &c->parser, h);
}

static void head_error(struct zw_h1conn *c, int err)
{
	request_begin(c);
	c->r.req_done = 1;
	switch (err) {
	case ZW_HTTP_ETOOBIG:
		local_response(c, 431, NULL, "request head too large\n", 1);
		break;
	case ZW_HTTP_EURI:
		local_response(c, 414, NULL, "request target too long\n", 1);
		break;
	case ZW_HTTP_ENOMEM:
		local_response(c, 503, NULL, "out of memory\n", 1);
		break;
	default: {
		char body[256];
		snprintf(body, sizeof(body), "malformed request: %s\n",
		         llhttp_get_error_reason(&c->parser) ? llhttp_get_error_reason(&c->parser)
		                                             : "invalid");
		local_response(c, 400, NULL, body, 1);
	}
	}
}

static void conn_feed_head(struct zw_h1conn *c, const char *data, size_t len)
{
	struct zw_server *s = c->w->s;
	if (len == 0) {
		client_read_start(c);
		return;
	}
	/* The head is due within the header timeout of its first bytes. The
	 * timer is armed only when a head did not come whole with them (a
	 * complete head stops the timer at once: one timer operation less
	 * per keep-alive request). */
	int first = !c->got_bytes;
	c->got_bytes = 1;
	if (!c->proto_known) {
		if (first)
			uv_timer_start(&c->timer, on_timer_header, s->d.cfg->header_timeout_ms, 0);
		detect_protocol(c, data, len);
		return;
	}
	size_t used = 0;
	int res = zw_http_head_execute(&c->parser, &c->head, data, len, &used);
	if (res == ZW_HTTP_MORE) {
		if (first)
			uv_timer_start(&c->timer, on_timer_header, s->d.cfg->header_timeout_ms, 0);
		client_read_start(c);
		return;
	}
	if (res < 0) {
		client_read_stop(c);
		head_error(c, res);
		return;
	}
	/* Reading stays on while the request is forwarded (stopping and
	 * restarting costs two epoll_ctl calls per request): what arrives
	 * meanwhile is stashed, and reading stops only then (hold, pipelined
	 * bytes, backpressure), see client_read_cb. */
	if (stash(c, data + used, len - used) < 0) {
		conn_close(c);
		return;
	}
	if (c->w->draining)
		c->r.resp_close = 1;
	dispatch(c);
}

static void on_timer_h2_idle(uv_timer_t *t)
{
	struct zw_h1conn *c = conn_of(t->data);
	if (c->h2)
		zw_h2client_shutdown(c->h2); /* no stream open: GOAWAY, then close */
}

void zw_client_idle(struct zw_h1conn *c, int idle)
{
	if (c->closed)
		return;
	if (idle)
		uv_timer_start(&c->timer, on_timer_h2_idle, c->w->s->d.cfg->idle_timeout_ms, 0);
	else
		uv_timer_stop(&c->timer);
}

/* Hands the connection to HTTP/2 (the preface came first): data are the
 * bytes read so far, preface included. */
static void start_h2(struct zw_h1conn *c, const char *data, size_t len)
{
	c->h2 = zw_h2client_new(c->w, c, c->client_ip);
	if (!c->h2) {
		conn_close(c);
		return;
	}
	zw_client_idle(c, 1); /* until the first stream */
	client_read_start(c);
	zw_h2client_feed(c->h2, data, len);
}

/* The first bytes of a connection: HTTP/2 with prior knowledge (h2c)
 * starts with its connection preface, anything else is HTTP/1.x. A prefix
 * of the preface waits (stashed) for more. */
static void detect_protocol(struct zw_h1conn *c, const char *data, size_t len)
{
	if (c->in_len == c->in_off) {
		int pre = zw_h2_is_preface((const uint8_t *)data, len);
		if (pre == 0) {
			c->proto_known = 1;
			conn_feed_head(c, data, len);
		} else if (pre > 0) {
			c->proto_known = 1;
			start_h2(c, data, len);
		} else if (stash(c, data, len) < 0) {
			conn_close(c);
		} else {
			client_read_start(c);
		}
		return;
	}
	if (stash(c, data, len) < 0) {
		conn_close(c);
		return;
	}
	char *buf = c->in;
	size_t off = c->in_off, n = c->in_len - c->in_off;
	int pre = zw_h2_is_preface((const uint8_t *)buf + off, n);
	if (pre < 0) {
		client_read_start(c);
		return;
	}
	c->in = NULL;
	c->in_off = c->in_len = 0;
	c->proto_known = 1;
	if (pre > 0)
		start_h2(c, buf + off, n);
	else
		conn_feed_head(c, buf + off, n);
	free(buf);
}

/* The client's data ended (nread: UV_EOF or an error). */
static void client_eof(struct zw_h1conn *c, ssize_t nread)
{
	if (c->r.state == ZW_REQ_TUNNEL) {
		close_after_flush(c);
		return;
	}
	if (nread == UV_EOF && c->r.state != ZW_REQ_HEAD && c->r.req_done) {
		/* Half-close after a complete request: its response is still
		 * wanted (libuv has stopped reading). */
		c->reading = 0;
		c->client_eof = 1;
		return;
	}
	conn_close(c);
}

/* Bytes from the client (plaintext): base[0..len) borrowed for the call,
 * all of them used or stashed. */
static void on_plain(struct zw_h1conn *c, const char *base, size_t len)
{
	if (c->h2) {
		zw_h2client_feed(c->h2, base, len);
		/* Resumed by client_write_cb once the socket took the output. */
		if (!c->closed && zw_h2client_backlogged(c->h2))
			client_read_stop(c);
		return;
	}
	c->r.last_io = uv_now(&c->w->loop);
	switch (c->r.state) {
	case ZW_REQ_HEAD:
		conn_feed_head(c, base, len);
		return;
	case ZW_REQ_TUNNEL:
		if (zw_fwd_tunnel_bytes(&c->r, base, len) < 0) {
			conn_close(c);
			return;
		}
		if (zw_fwd_busy(&c->r))
			client_read_stop(c);
		return;
	case ZW_REQ_PROXY:
		if (!c->r.req_done) {
			ssize_t used = forward_body(c, base, len);
			if (used < 0)
				return;
			if ((size_t)used < len) {
				if (stash(c, base + used, len - (size_t)used) < 0) {
					conn_close(c);
					return;
				}
				client_read_stop(c);
			}
			if (c->r.req_done && c->r.resp_done) {
				request_finished(c);
				return;
			}
			if (!c->r.req_done && zw_fwd_busy(&c->r))
				client_read_stop(c);
			return;
		}
		/* pipelined bytes while a response is pending */
		__attribute__((fallthrough));
	default:
		if (stash(c, base, len) < 0) {
			conn_close(c);
			return;
		}
		client_read_stop(c);
		return;
	}
}

/* ---- TLS under the connection ---------------------------------------------- */

/* Moves the ciphertext the session has for the client to the socket (what
 * the kernel does not take now is queued, as for cleartext). Returns 0 or
 * a negative UV_* code. */
static int tls_flush(struct zw_h1conn *c)
{
	size_t len = 0;
	const void *p = zw_tls_pending(c->tls, &len);
	if (len == 0)
		return 0;
	uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
	int rc = zw_dp_write((uv_stream_t *)&c->tcp, &b, 1, client_write_cb, c);
	if (rc < 0)
		return rc;
	if (rc > 0)
		c->pending_writes++;
	zw_tls_sent(c->tls, len);
	return 0;
}

/* send_bufs over TLS: encrypts all n buffers, the ciphertext to the socket
 * as the session's output queue fills. Returns 0 or a negative UV_* code
 * (UV_EPIPE once the session is closed or failed). */
static int tls_send(struct zw_h1conn *c, const uv_buf_t *bufs, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		size_t off = 0;
		while (off < bufs[i].len) {
			size_t used = 0, pend = 0;
			zw_tls_write(c->tls, bufs[i].base + off, bufs[i].len - off, &used);
			off += used;
			if (off == bufs[i].len)
				break;
			zw_tls_pending(c->tls, &pend);
			if (used == 0 && pend == 0)
				return UV_EPIPE;
			int rc = tls_flush(c);
			if (rc < 0)
				return rc;
		}
	}
	return tls_flush(c);
}

/* Counts err and logs it (debug), once per connection. */
static void tls_error(struct zw_h1conn *c, enum zw_tls_err err)
{
	char sni[256];
	if (c->tls_error_seen)
		return;
	c->tls_error_seen = 1;
	zw_tlsstats_error(&c->w->s->tls_stats, err);
	if (zw_certstore_norm_name(zw_tls_sni(c->tls), sni) < 0)
		snprintf(sni, sizeof(sni), "%s", *zw_tls_sni(c->tls) ? "invalid" : "");
	zw_log(ZW_LOG_DEBUG, "tls_error", "client=%s sni=\"%s\" reason=%s error=\"%s\"",
	       c->client_ip, sni, zw_tlsstats_reason(err), zw_tls_error(c->tls));
}

/* The handshake is done: count it and start the protocol ALPN chose. */
static void tls_opened(struct zw_h1conn *c)
{
	enum zw_tls_alpn alpn = zw_tls_alpn(c->tls);
	c->tls_open = 1;
	c->proto_known = 1;
	zw_tlsstats_handshake(&c->w->s->tls_stats, zw_tls_version(c->tls), (int)alpn);
	if (alpn == ZW_TLS_ALPN_H2) {
		start_h2(c, NULL, 0);
		return;
	}
	/* The first request head is due within the header timeout from now. */
	uv_timer_start(&c->timer, on_timer_header, c->w->s->d.cfg->header_timeout_ms, 0);
}

/* Runs the session after input or output: handshake flights and alerts to
 * the socket, the end of the handshake, plaintext to on_plain while the
 * client side reads, the client's close_notify as the end of its data. */
static void tls_pump(struct zw_h1conn *c)
{
	if (c->closed || c->tls_in_pump)
		return;
	c->tls_in_pump = 1;
	for (;;) {
		enum zw_tls_state st = zw_tls_get_state(c->tls);
		if (tls_flush(c) < 0) {
			conn_close(c);
			break;
		}
		if (st == ZW_TLS_FAILED) {
			tls_error(c, c->tls_open ? ZW_TLS_ERR_SESSION : ZW_TLS_ERR_HANDSHAKE);
			close_after_flush(c); /* the alert goes out first */
			break;
		}
		if (st == ZW_TLS_HANDSHAKE)
			break;
		if (!c->tls_open) {
			tls_opened(c);
			if (c->closed)
				break;
		}
		size_t len = 0;
		const char *p = zw_tls_plain(c->tls, &len);
		if (len > 0) {
			if (!c->reading)
				break;
			on_plain(c, p, len);
			if (c->closed)
				break;
			zw_tls_plain_consume(c->tls, len);
			continue;
		}
		if (st == ZW_TLS_PEER_CLOSED && c->reading && !c->tls_peer_eof) {
			c->tls_peer_eof = 1;
			client_eof(c, UV_EOF);
		}
		break;
	}
	c->tls_in_pump = 0;
	tls_schedule(c);
}

static void on_tls_idle(uv_idle_t *h)
{
	struct zw_h1conn *c = h->data;
	uv_idle_stop(h);
	tls_pump(c);
}

static void tls_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
	struct zw_h1conn *c = h->data;
	size_t room = zw_tls_in_room(c->tls);
	(void)size;
	*buf = uv_buf_init(c->w->rbuf, (unsigned)(room < ZW_DP_RBUF_SIZE ? room : ZW_DP_RBUF_SIZE));
}

/* Reads the socket while the client side reads, no plaintext waits and the
 * session has room; plaintext (or the close_notify) waiting while the
 * client side reads is delivered from the idle callback. */
static void tls_schedule(struct zw_h1conn *c)
{
	if (c->closed || c->tls_in_pump)
		return;
	size_t plain = 0;
	zw_tls_plain(c->tls, &plain);
	enum zw_tls_state st = zw_tls_get_state(c->tls);
	if (c->reading && (plain > 0 || (st == ZW_TLS_PEER_CLOSED && !c->tls_peer_eof)))
		uv_idle_start(&c->tls_idle, on_tls_idle);
	else
		uv_idle_stop(&c->tls_idle);
	int want = c->reading && !c->client_eof && plain == 0 && zw_tls_want_read(c->tls);
	if (want && !c->tls_sock_reading) {
		if (uv_read_start((uv_stream_t *)&c->tcp, tls_alloc, client_read_cb) == 0)
			c->tls_sock_reading = 1;
	} else if (!want && c->tls_sock_reading) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->tls_sock_reading = 0;
	}
}

/* A read of a TLS connection's socket: ciphertext to the session. */
static void tls_read(struct zw_h1conn *c, ssize_t nread, const char *data)
{
	if (nread < 0) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->tls_sock_reading = 0;
		if (nread == UV_ENOBUFS) {
			tls_schedule(c); /* no room: read again once there is */
			return;
		}
		if (!c->tls_open) {
			if (c->tls_fed)
				tls_error(c, ZW_TLS_ERR_EOF);
			conn_close(c);
			return;
		}
		client_eof(c, nread); /* no close_notify: a truncation, as a cleartext EOF */
		return;
	}
	size_t used = 0;
	c->tls_fed = 1;
	enum zw_tls_state st = zw_tls_feed(c->tls, data, (size_t)nread, &used);
	if (used < (size_t)nread && st != ZW_TLS_FAILED && st != ZW_TLS_PEER_CLOSED) {
		conn_close(c); /* reads are sized to the room: cannot happen */
		return;
	}
	tls_pump(c);
}

static void client_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct zw_h1conn *c = st->data;
	if (nread == 0 || c->closed)
		return;
	if (c->tls) {
		tls_read(c, nread, buf->base);
		return;
	}
	if (nread < 0) {
		client_eof(c, nread);
		return;
	}
	on_plain(c, buf->base, (size_t)nread);
}

/* ---- the worker's connections ------------------------------------------------ */

void zw_client_accept(struct zw_worker *w, uv_stream_t *server, int tls)
{
	struct zw_server *s = w->s;
	struct zw_h1conn *c = calloc(1, sizeof(*c));
	if (!c)
		return;
	if (tls && zw_tls_new(s->d.certs, NULL, &c->tls) < 0) {
		free(c);
		return;
	}
	if (uv_tcp_init(&w->loop, &c->tcp) < 0) {
		zw_tls_free(c->tls);
		free(c);
		return;
	}
	c->w = w;
	c->tcp.data = c;
	c->timer.data = &c->r;
	c->r.ops = &h1_ops;
	c->r.w = w;
	c->r.timer = &c->timer;
	c->r.client_ip = c->client_ip;
	uv_timer_init(&w->loop, &c->timer);
	c->open_handles = 2;
	if (c->tls) {
		uv_idle_init(&w->loop, &c->tls_idle);
		c->tls_idle.data = c;
		c->open_handles = 3;
	}
	atomic_fetch_add(&s->conns, 1);
	ZW_LIST_PUSH(w->conns, c);
	zw_http_head_init(&c->head, &s->limits);
	zw_http_parser_init(&c->parser, HTTP_REQUEST, &c->head);
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
		conn_close(c);
		return;
	}
	if (atomic_load(&s->conns) > s->d.cfg->max_connections || w->draining) {
		conn_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	struct sockaddr_storage peer;
	int plen = sizeof(peer);
	snprintf(c->client_ip, sizeof(c->client_ip), "unknown");
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&peer, &plen) == 0) {
		if (peer.ss_family == AF_INET)
			uv_ip4_name((struct sockaddr_in *)&peer, c->client_ip,
			            sizeof(c->client_ip));
		else if (peer.ss_family == AF_INET6)
			uv_ip6_name((struct sockaddr_in6 *)&peer, c->client_ip,
			            sizeof(c->client_ip));
	}
	/* A new connection must send its first request head promptly. */
	uv_timer_start(&c->timer, on_timer_header, s->d.cfg->header_timeout_ms, 0);
	client_read_start(c);
}

/* Held clients are not read (no body buffering), so a non-blocking poll()
 * with POLLRDHUP (timeout 0) tells a closed or reset peer apart even with
 * unread bytes pending. */
void zw_client_check_disconnects(struct zw_worker *w)
{
	struct pollfd pfd[MAX_POLL_BATCH];
	struct zw_h1conn *cs[MAX_POLL_BATCH];
	struct zw_h1conn *c = w->conns;
	while (c) {
		size_t n = 0;
		for (; c && n < MAX_POLL_BATCH; c = c->next) {
			uv_os_fd_t fd;
			if (c->r.state != ZW_REQ_HELD || uv_fileno((uv_handle_t *)&c->tcp, &fd) < 0)
				continue;
			pfd[n].fd = fd;
			pfd[n].events = POLLRDHUP;
			pfd[n].revents = 0;
			cs[n++] = c;
		}
		/* Closing unlinks but does not free (that happens in the close
		 * callbacks), so c stays a valid cursor. */
		if (n > 0 && poll(pfd, n, 0) > 0)
			for (size_t i = 0; i < n; i++)
				if (pfd[i].revents & (POLLRDHUP | POLLHUP | POLLERR))
					conn_close(cs[i]);
	}
}

void zw_client_drain(struct zw_worker *w)
{
	/* Idle keep-alive connections: close now. */
	struct zw_h1conn *c = w->conns;
	while (c) {
		struct zw_h1conn *next = c->next;
		if (c->h2)
			zw_h2client_shutdown(c->h2); /* GOAWAY; closes once streams end */
		else if (c->r.state == ZW_REQ_HEAD && !c->got_bytes)
			close_after_flush(c); /* after its last response is out */
		c = next;
	}
}

void zw_client_close_all(struct zw_worker *w)
{
	while (w->conns)
		conn_close(w->conns);
}

int zw_client_write(struct zw_h1conn *c, const char *data, size_t len)
{
	return send_bytes(c, data, len);
}

size_t zw_client_write_queue(const struct zw_h1conn *c)
{
	return uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp);
}

void zw_client_end(struct zw_h1conn *c)
{
	close_after_flush(c);
}

const char *zw_client_scheme(const struct zw_h1conn *c)
{
	return c->tls ? "https" : "http";
}
