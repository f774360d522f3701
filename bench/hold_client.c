/* hold_client: opens N HTTP/1.1 connections to one address, sends one GET on
 * each and waits for every response (epoll, one thread). Used by
 * bench/proxy_bench.py for the "10,000 held cold-start requests" benchmark.
 *
 * Protocol with the caller: once every request has been written, one line
 * "sent <n> <monotonic_ns>" goes to stdout; when every connection has ended
 * (or --timeout-ms passed since then) one JSON line follows with counts and
 * the CLOCK_MONOTONIC times of the first and the last complete response, so
 * the caller (same clock) can subtract its own timestamps.
 *
 * Limits: --n at most CLIENT_MAX_CONNS (default 10000); connects in
 * progress at most --batch (default 256); response heads at most
 * CONN_HEAD_MAX bytes (longer heads count as "bad_response"). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CLIENT_MAX_CONNS 100000 /* hard cap on --n */
#define CONN_HEAD_MAX    4096   /* bytes of a response head kept for parsing */
#define DEFAULT_BATCH    256    /* connects in progress at once */
#define DEFAULT_TIMEOUT  60000  /* ms to wait for responses after "sent" */
#define STATUS_SLOTS     600    /* status codes counted 0..599 */

enum cstate { C_IDLE, C_CONNECTING, C_WAITING, C_DONE };

struct conn {
	int fd;
	enum cstate state;
	size_t sent;     /* request bytes written */
	size_t head_len; /* bytes in head[] */
	long body_left;  /* -1: head not parsed yet; -2: read to EOF */
	char head[CONN_HEAD_MAX];
};

struct client {
	struct sockaddr_in addr;
	char req[1024];
	size_t req_len;
	size_t n, batch;
	long timeout_ms;
	int ep;
	struct conn *conns;
	size_t next;       /* next connection to open */
	size_t connecting; /* connects in progress */
	size_t written;    /* requests fully written */
	size_t finished;   /* connections that ended (any way) */
	size_t lost;       /* connections that ended before their request was written */
	uint64_t first_ns, last_ns;
	size_t ok;
	size_t status[STATUS_SLOTS];
	size_t e_connect, e_reset, e_eof, e_bad, e_timeout;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void conn_end(struct client *cl, struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (c->state == C_CONNECTING)
		cl->connecting--;
	if (c->sent < cl->req_len)
		cl->lost++;
	c->state = C_DONE;
	cl->finished++;
}

static void conn_response_done(struct client *cl, struct conn *c, int status)
{
	uint64_t t = now_ns();
	if (!cl->first_ns)
		cl->first_ns = t;
	cl->last_ns = t;
	if (status >= 0 && status < STATUS_SLOTS)
		cl->status[status]++;
	if (status == 200)
		cl->ok++;
	conn_end(cl, c);
}

/* Opens connection i (non-blocking connect). Returns 0 or -1 (counted). */
static int conn_open(struct client *cl, size_t i)
{
	struct conn *c = &cl->conns[i];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&cl->addr, sizeof(cl->addr)) < 0 && errno != EINPROGRESS)
		goto fail;
	struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP, .data.u64 = i};
	if (epoll_ctl(cl->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		goto fail;
	c->fd = fd;
	c->state = C_CONNECTING;
	c->body_left = -1;
	cl->connecting++;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	c->fd = -1;
	c->state = C_DONE;
	cl->e_connect++;
	cl->lost++;
	cl->finished++;
	return -1;
}

static void conn_write(struct client *cl, struct conn *c)
{
	while (c->sent < cl->req_len) {
		ssize_t w = write(c->fd, cl->req + c->sent, cl->req_len - c->sent);
		if (w < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (w <= 0) {
			cl->e_reset++;
			conn_end(cl, c);
			return;
		}
		c->sent += (size_t)w;
	}
	cl->written++;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP,
	                         .data.u64 = (uint64_t)(c - cl->conns)};
	epoll_ctl(cl->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Parses a complete head in c->head: sets body_left from Content-Length
 * (or -2 to read until EOF) and returns the status code, or -1. */
static int parse_head(struct conn *c, size_t head_end)
{
	int status = -1;
	if (c->head_len < 12 || strncmp(c->head, "HTTP/1.", 7) != 0)
		return -1;
	status = atoi(c->head + 9);
	c->body_left = -2;
	const char *p = c->head;
	const char *end = c->head + head_end;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			break;
		if ((size_t)(eol - p) > 15 && strncasecmp(p, "content-length:", 15) == 0)
			c->body_left = strtol(p + 15, NULL, 10);
		p = eol + 1;
	}
	if (status == 204 || status == 304 || (status >= 100 && status < 200))
		c->body_left = 0;
	return status;
}

static void conn_read(struct client *cl, struct conn *c)
{
	char scratch[16384];
	for (;;) {
		char *dst = scratch;
		size_t room = sizeof(scratch);
		if (c->body_left == -1) {
			dst = c->head + c->head_len;
			room = sizeof(c->head) - c->head_len - 1;
			if (room == 0) {
				cl->e_bad++;
				conn_end(cl, c);
				return;
			}
		}
		ssize_t r = read(c->fd, dst, room);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (r < 0) {
			cl->e_reset++;
			conn_end(cl, c);
			return;
		}
		if (r == 0) {
			if (c->body_left == -2) {
				conn_response_done(cl, c, atoi(c->head + 9));
			} else {
				cl->e_eof++;
				conn_end(cl, c);
			}
			return;
		}
		long extra = r;
		if (c->body_left == -1) {
			c->head_len += (size_t)r;
			c->head[c->head_len] = '\0';
			char *hend = strstr(c->head, "\r\n\r\n");
			if (!hend)
				continue;
			size_t hl = (size_t)(hend - c->head) + 4;
			if (parse_head(c, hl) < 0) {
				cl->e_bad++;
				conn_end(cl, c);
				return;
			}
			extra = (long)(c->head_len - hl);
		}
		if (c->body_left >= 0) {
			c->body_left -= extra;
			if (c->body_left <= 0) {
				conn_response_done(cl, c, atoi(c->head + 9));
				return;
			}
		}
	}
}

static void open_more(struct client *cl)
{
	while (cl->next < cl->n && cl->connecting < cl->batch)
		conn_open(cl, cl->next++);
}

static void on_event(struct client *cl, struct epoll_event *ev)
{
	struct conn *c = &cl->conns[ev->data.u64];
	if (c->state == C_DONE)
		return;
	if (c->state == C_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			cl->e_connect++;
			conn_end(cl, c);
			return;
		}
		if (!(ev->events & EPOLLOUT))
			return;
		cl->connecting--;
		c->state = C_WAITING;
		conn_write(cl, c);
		if (c->state == C_DONE)
			return;
	} else if (c->sent < cl->req_len && (ev->events & EPOLLOUT)) {
		conn_write(cl, c);
		if (c->state == C_DONE)
			return;
	}
	if (ev->events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		conn_read(cl, c);
}

static int parse_args(struct client *cl, int argc, char **argv)
{
	const char *addr = NULL, *host = "app.test", *path = "/";
	cl->n = 10000;
	cl->batch = DEFAULT_BATCH;
	cl->timeout_ms = DEFAULT_TIMEOUT;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--connect") == 0)
			addr = argv[i + 1];
		else if (strcmp(argv[i], "--host") == 0)
			host = argv[i + 1];
		else if (strcmp(argv[i], "--path") == 0)
			path = argv[i + 1];
		else if (strcmp(argv[i], "--n") == 0)
			cl->n = strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--batch") == 0)
			cl->batch = strtoul(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--timeout-ms") == 0)
			cl->timeout_ms = strtol(argv[i + 1], NULL, 10);
		else
			return -1;
	}
	if (!addr || cl->n == 0 || cl->n > CLIENT_MAX_CONNS || cl->batch == 0 ||
	    cl->timeout_ms <= 0)
		return -1;
	char ip[64];
	const char *colon = strrchr(addr, ':');
	if (!colon || (size_t)(colon - addr) >= sizeof(ip))
		return -1;
	memcpy(ip, addr, (size_t)(colon - addr));
	ip[colon - addr] = '\0';
	cl->addr.sin_family = AF_INET;
	cl->addr.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, ip, &cl->addr.sin_addr) != 1)
		return -1;
	int len = snprintf(cl->req, sizeof(cl->req),
	                   "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: zerowire-bench\r\n\r\n",
	                   path, host);
	if (len < 0 || (size_t)len >= sizeof(cl->req))
		return -1;
	cl->req_len = (size_t)len;
	return 0;
}

static void report(const struct client *cl, uint64_t sent_ns)
{
	printf("{\"n\":%zu,\"written\":%zu,\"ok\":%zu,\"sent_ns\":%llu,\"first_ns\":%llu,"
	       "\"last_ns\":%llu,\"errors\":{\"connect\":%zu,\"reset\":%zu,\"eof\":%zu,"
	       "\"bad_response\":%zu,\"timeout\":%zu},\"status\":{",
	       cl->n, cl->written, cl->ok, (unsigned long long)sent_ns,
	       (unsigned long long)cl->first_ns, (unsigned long long)cl->last_ns, cl->e_connect,
	       cl->e_reset, cl->e_eof, cl->e_bad, cl->e_timeout);
	int first = 1;
	for (int s = 0; s < STATUS_SLOTS; s++) {
		if (!cl->status[s])
			continue;
		printf("%s\"%d\":%zu", first ? "" : ",", s, cl->status[s]);
		first = 0;
	}
	printf("}}\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static struct client cl;
	struct epoll_event evs[512];
	int rc = 1;
	uint64_t sent_ns = 0, deadline = 0;
	if (parse_args(&cl, argc, argv) < 0) {
		fprintf(stderr,
		        "usage: hold_client --connect IP:PORT [--host H] [--path P] [--n N<=%d] "
		        "[--batch B] [--timeout-ms MS]\n",
		        CLIENT_MAX_CONNS);
		return 2;
	}
	cl.ep = -1;
	cl.conns = calloc(cl.n, sizeof(*cl.conns));
	cl.ep = epoll_create1(EPOLL_CLOEXEC);
	if (!cl.conns || cl.ep < 0) {
		fprintf(stderr, "hold_client: out of memory or epoll: %s\n", strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < cl.n; i++)
		cl.conns[i].fd = -1;
	open_more(&cl);
	while (cl.finished < cl.n) {
		int wait_ms = 100;
		int k = epoll_wait(cl.ep, evs, (int)(sizeof(evs) / sizeof(evs[0])), wait_ms);
		if (k < 0 && errno != EINTR) {
			fprintf(stderr, "hold_client: epoll_wait: %s\n", strerror(errno));
			goto out;
		}
		for (int i = 0; i < k; i++)
			on_event(&cl, &evs[i]);
		open_more(&cl);
		if (!sent_ns && cl.next == cl.n && cl.written + cl.lost == cl.n) {
			sent_ns = now_ns();
			deadline = sent_ns + (uint64_t)cl.timeout_ms * 1000000u;
			printf("sent %zu %llu\n", cl.written, (unsigned long long)sent_ns);
			fflush(stdout);
		}
		if (deadline && now_ns() > deadline) {
			for (size_t i = 0; i < cl.n; i++) {
				if (cl.conns[i].state != C_DONE) {
					cl.e_timeout++;
					conn_end(&cl, &cl.conns[i]);
				}
			}
		}
	}
	if (!sent_ns) {
		sent_ns = now_ns();
		printf("sent %zu %llu\n", cl.written, (unsigned long long)sent_ns);
	}
	report(&cl, sent_ns);
	rc = 0;
out:
	if (cl.ep >= 0)
		close(cl.ep);
	free(cl.conns);
	return rc;
}
