/* Test tool: a TLS server on a libuv loop driving proxy/tls.c the way the
 * proxy's TLS listener does (read at most zw_tls_in_room bytes, feed, send
 * what is pending, stop reading while the session has no room), so real
 * clients (curl, openssl s_client) can be pointed at the session module.
 *
 *   proxy_tool_tls --listen HOST:PORT --cert SOURCE=CRT:KEY[:default] ...
 *
 * Prints "port N" on stdout once listening. Each connection: the handshake,
 * then the plaintext up to the end of a request head ("\r\n\r\n") is
 * answered with an HTTP/1.1 200 whose body is one line
 * "alpn=<h2|http/1.1|none> sni=<name> version=<12|13> cert=<source>", then
 * close_notify. Handshake failures are printed on stderr as
 * "tls_failed <reason>". SIGTERM/SIGINT exit 0. Used by
 * proxy/tests/tls_clients_test.py. */
#include "certstore.h"
#include "tls.h"

#include "addr.h"
#include "buf.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <uv.h>

struct conn {
	uv_tcp_t h;
	struct zw_tls *t;
	struct zw_buf head;
	int writes;
	bool answered, closing;
};

struct wreq {
	uv_write_t w;
	char data[];
};

static struct zw_certstore *store;
static uv_tcp_t server;
static uv_signal_t sigs[2];

static void on_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	zw_tls_free(c->t);
	zw_buf_free(&c->head);
	free(c);
}

static void maybe_close(struct conn *c)
{
	if (c->closing && c->writes == 0 && !uv_is_closing((uv_handle_t *)&c->h))
		uv_close((uv_handle_t *)&c->h, on_closed);
}

static void on_written(uv_write_t *w, int status)
{
	struct conn *c = w->data;
	(void)status;
	free(w);
	c->writes--;
	maybe_close(c);
}

/* Sends the session's pending ciphertext. */
static void flush(struct conn *c)
{
	size_t n;
	const void *p = zw_tls_pending(c->t, &n);
	if (!n || uv_is_closing((uv_handle_t *)&c->h))
		return;
	struct wreq *r = malloc(sizeof(*r) + n);
	if (!r) {
		c->closing = true;
		return;
	}
	memcpy(r->data, p, n);
	zw_tls_sent(c->t, n);
	r->w.data = c;
	uv_buf_t b = uv_buf_init(r->data, (unsigned)n);
	if (uv_write(&r->w, (uv_stream_t *)&c->h, &b, 1, on_written) == 0)
		c->writes++;
	else {
		free(r);
		c->closing = true;
	}
}

static const char *alpn_name(enum zw_tls_alpn a)
{
	return a == ZW_TLS_ALPN_H2 ? "h2" : a == ZW_TLS_ALPN_HTTP11 ? "http/1.1" : "none";
}

/* Takes the plaintext; answers once a request head is complete. */
static void serve(struct conn *c)
{
	size_t n, used;
	const void *p = zw_tls_plain(c->t, &n);
	if (n && !c->answered && zw_buf_append(&c->head, p, n, 65536) != 0)
		c->closing = true;
	if (n)
		zw_tls_plain_consume(c->t, n);
	if (c->answered || !c->head.data || !strstr(c->head.data, "\r\n\r\n"))
		return;
	c->answered = true;
	const struct zw_cert *cert = zw_tls_cert(c->t);
	char body[512], resp[1024];
	int bl = snprintf(body, sizeof(body), "alpn=%s sni=%s version=%d cert=%s\n",
	                  alpn_name(zw_tls_alpn(c->t)), zw_tls_sni(c->t), zw_tls_version(c->t),
	                  cert ? zw_cert_source(cert) : "-");
	int rl = snprintf(resp, sizeof(resp),
	                  "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
	                  bl, body);
	zw_tls_write(c->t, resp, (size_t)rl, &used);
	zw_tls_shutdown(c->t);
	c->closing = true;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;
	static char space[1 << 16];
	size_t room = zw_tls_in_room(c->t);
	(void)suggested;
	*buf = uv_buf_init(space, (unsigned)(room < sizeof(space) ? room : sizeof(space)));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = s->data;
	size_t used;
	if (nread < 0) {
		c->closing = true;
		maybe_close(c);
		return;
	}
	enum zw_tls_state st = zw_tls_feed(c->t, buf->base, (size_t)nread, &used);
	if (st == ZW_TLS_FAILED) {
		fprintf(stderr, "tls_failed %s\n", zw_tls_error(c->t));
		c->closing = true;
	} else if (st == ZW_TLS_PEER_CLOSED) {
		c->closing = true;
	}
	serve(c);
	flush(c);
	if (!zw_tls_want_read(c->t) || c->closing)
		uv_read_stop(s);
	maybe_close(c);
}

static void on_connection(uv_stream_t *srv, int status)
{
	struct conn *c;
	if (status < 0 || !(c = calloc(1, sizeof(*c))))
		return;
	uv_tcp_init(srv->loop, &c->h);
	c->h.data = c;
	if (uv_accept(srv, (uv_stream_t *)&c->h) != 0 || zw_tls_new(store, NULL, &c->t) != 0) {
		uv_close((uv_handle_t *)&c->h, on_closed);
		return;
	}
	uv_read_start((uv_stream_t *)&c->h, on_alloc, on_read);
}

static void on_closed_quiet(uv_handle_t *h)
{
	(void)h;
}

static void close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, h->data && h->type == UV_TCP && h != (uv_handle_t *)&server
		                    ? on_closed
		                    : on_closed_quiet);
}

static void on_signal(uv_signal_t *s, int signum)
{
	(void)signum;
	uv_walk(s->loop, close_walk, NULL);
}

/* "SOURCE=CRT:KEY[:default]" into the store. Returns 0 or -1. */
static int add_cert(char *spec)
{
	char err[ZW_CERTSTORE_ERRLEN];
	char *eq = strchr(spec, '=');
	char *crt = eq ? eq + 1 : NULL;
	char *key = crt ? strchr(crt, ':') : NULL;
	if (!key)
		return -1;
	*eq = *key++ = '\0';
	char *flag = strchr(key, ':');
	if (flag)
		*flag++ = '\0';
	unsigned flags = flag && strcmp(flag, "default") == 0 ? ZW_CERTSTORE_DEFAULT : 0;
	if (zw_certstore_load_files(store, spec, crt, key, flags, err) != 0) {
		fprintf(stderr, "%s: %s\n", spec, err);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	const char *listen = "127.0.0.1:0";
	uv_loop_t *loop = uv_default_loop();
	if (zw_certstore_new(&store) != 0)
		return 1;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--listen") == 0)
			listen = argv[i + 1];
		else if (strcmp(argv[i], "--cert") != 0 || add_cert(argv[i + 1]) != 0) {
			fprintf(stderr, "usage: %s --listen ADDR --cert SRC=CRT:KEY[:default]...\n",
			        argv[0]);
			return 2;
		}
	}
	if (zw_addr_parse(listen, ZW_ADDR_LISTEN, -1, &ss) < 0)
		return 2;
	uv_tcp_init(loop, &server);
	if (uv_tcp_bind(&server, (struct sockaddr *)&ss, 0) != 0 ||
	    uv_listen((uv_stream_t *)&server, 64, on_connection) != 0)
		return 1;
	int len = sizeof(ss);
	uv_tcp_getsockname(&server, (struct sockaddr *)&ss, &len);
	printf("port %d\n", ntohs(((struct sockaddr_in *)&ss)->sin_port));
	fflush(stdout);
	int signums[2] = {SIGTERM, SIGINT};
	for (int i = 0; i < 2; i++) {
		uv_signal_init(loop, &sigs[i]);
		uv_signal_start(&sigs[i], on_signal, signums[i]);
	}
	uv_run(loop, UV_RUN_DEFAULT);
	uv_loop_close(loop);
	zw_certstore_free(store);
	return 0;
}
