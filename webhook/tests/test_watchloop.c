/* The webhook's watch loop (webhook/watchloop.c) against a small fake API
 * server on loopback (plain HTTP, one thread): subscriptions of the same
 * resource share one list+watch, a namespaced one shares the watch of all
 * namespaces and sees only its namespace, a later subscriber is told what
 * is known, removal ends callbacks, the last removal ends the watch. */
#include "watchloop.h"

#include "kobj.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define MAX_HELD 32

/* ---- fake API server: discovery, one list, watches held open ---- */

struct fake {
	int lfd, port;
	pthread_t thread;
	pthread_mutex_t lock;
	int stop;
	int lists, watches; /* requests seen */
	int held[MAX_HELD];
	int n_held;
};

static const char *LIST =
        "{\"kind\":\"WidgetList\",\"apiVersion\":\"x.zerowire.io/v1\","
        "\"metadata\":{\"resourceVersion\":\"9\"},\"items\":["
        "{\"metadata\":{\"name\":\"a\",\"namespace\":\"n1\",\"resourceVersion\":\"3\"}},"
        "{\"metadata\":{\"name\":\"b\",\"namespace\":\"n2\",\"resourceVersion\":\"4\"}},"
        "{\"metadata\":{\"name\":\"c\",\"namespace\":\"n1\",\"resourceVersion\":\"5\"}}]}";
static const char *DISCOVERY =
        "{\"kind\":\"APIResourceList\",\"groupVersion\":\"x.zerowire.io/v1\","
        "\"resources\":[{\"name\":\"widgets\",\"namespaced\":true,\"kind\":\"Widget\"}]}";

static void reply(int fd, const char *body)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
	                 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	                 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
	                 strlen(body));
	if (write(fd, head, (size_t)n) < 0 || write(fd, body, strlen(body)) < 0)
		return;
}

static void serve_one(struct fake *f, int fd)
{
	char req[4096] = ""; /* an old request left on the stack must not end the read loop */
	size_t len = 0;
	ssize_t n;

	while (len < sizeof(req) - 1 && !strstr(req, "\r\n\r\n")) {
		n = read(fd, req + len, sizeof(req) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		req[len] = '\0';
	}
	req[len] = '\0';
	pthread_mutex_lock(&f->lock);
	if (strstr(req, "watch=1") && f->n_held < MAX_HELD) {
		static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
		                           "Transfer-Encoding: chunked\r\n\r\n";
		f->watches++;
		f->held[f->n_held++] = fd; /* open until the client leaves */
		pthread_mutex_unlock(&f->lock);
		if (write(fd, head, sizeof(head) - 1) < 0)
			return;
		return;
	}
	if (strstr(req, "/widgets"))
		f->lists++;
	pthread_mutex_unlock(&f->lock);
	reply(fd, strstr(req, "/widgets") ? LIST : DISCOVERY);
	close(fd);
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;

	for (;;) {
		struct pollfd p = {.fd = f->lfd, .events = POLLIN};
		int stop;
		pthread_mutex_lock(&f->lock);
		stop = f->stop;
		pthread_mutex_unlock(&f->lock);
		if (stop)
			break;
		if (poll(&p, 1, 50) == 1) {
			int fd = accept(f->lfd, NULL, NULL);
			if (fd >= 0)
				serve_one(f, fd);
		}
	}
	return NULL;
}

static void fake_start(struct fake *f)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);

	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->lfd, 16), 0);
	assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&sa, &sl), 0);
	f->port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
	pthread_mutex_lock(&f->lock);
	f->stop = 1;
	pthread_mutex_unlock(&f->lock);
	pthread_join(f->thread, NULL);
	for (int i = 0; i < f->n_held; i++)
		close(f->held[i]);
	close(f->lfd);
	pthread_mutex_destroy(&f->lock);
}

static int fake_count(struct fake *f, int *which)
{
	int v;

	pthread_mutex_lock(&f->lock);
	v = *which;
	pthread_mutex_unlock(&f->lock);
	return v;
}

/* ---- subscribers ---- */

struct seen {
	pthread_mutex_t lock;
	char names[64]; /* names of ADDED objects, in order */
	int synced;     /* SYNCED events */
	int after_stop; /* events after `stopped` was set */
	int stopped;
};

static void on_event(void *ud, enum zw_watch_type type, json_t *obj)
{
	struct seen *s = ud;

	pthread_mutex_lock(&s->lock);
	if (s->stopped)
		s->after_stop++;
	if (type == ZW_WATCH_SYNCED)
		s->synced++;
	else if (type == ZW_WATCH_ADDED && strlen(s->names) < sizeof(s->names) - 2)
		strncat(s->names, zw_kobj_meta(obj, "name"), 1);
	pthread_mutex_unlock(&s->lock);
}

static void seen_init(struct seen *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
}

static int seen_synced(struct seen *s)
{
	int v;

	pthread_mutex_lock(&s->lock);
	v = s->synced;
	pthread_mutex_unlock(&s->lock);
	return v;
}

static void wait_synced(struct seen *s)
{
	for (int i = 0; i < 1000 && !seen_synced(s); i++)
		usleep(10000);
	assert_true(seen_synced(s) > 0);
}

static struct zw_watchloop_spec spec_for(const char *ns, struct seen *s)
{
	struct zw_watchloop_spec spec = {.group = "x.zerowire.io",
	                                 .version = "v1",
	                                 .resource = "widgets",
	                                 .namespace = ns,
	                                 .on_event = on_event,
	                                 .ud = s};
	return spec;
}

static void test_shared_replayed_filtered_removed(void **state)
{
	struct fake f;
	struct zw_kube_config cfg;
	struct zw_watchloop *wl = NULL;
	struct zw_watchloop_sub *s1, *s2, *s3, *s4;
	struct zw_watchloop_spec spec;
	struct seen a, b, c, d;
	char server[64];

	(void)state;
	fake_start(&f);
	memset(&cfg, 0, sizeof(cfg));
	snprintf(server, sizeof(server), "http://127.0.0.1:%d", f.port);
	cfg.server = server;
	pthread_mutex_init(&cfg.token_lock, NULL);
	seen_init(&a);
	seen_init(&b);
	seen_init(&c);
	seen_init(&d);
	assert_int_equal(zw_watchloop_start(&cfg, &wl), 0);

	spec = spec_for(NULL, &a);
	assert_int_equal(zw_watchloop_add(wl, &spec, &s1), 0);
	wait_synced(&a);
	assert_string_equal(a.names, "abc");
	/* Added later: told what is known, then SYNCED, from the same watch. */
	spec = spec_for(NULL, &b);
	assert_int_equal(zw_watchloop_add(wl, &spec, &s2), 0);
	assert_string_equal(b.names, "abc");
	assert_int_equal(seen_synced(&b), 1);
	/* A namespace shares the watch of all namespaces and sees its own. */
	spec = spec_for("n1", &c);
	assert_int_equal(zw_watchloop_add(wl, &spec, &s3), 0);
	assert_string_equal(c.names, "ac");
	assert_int_equal(fake_count(&f, &f.lists), 1);

	/* Removed: nothing after; the watch stays for the others. */
	zw_watchloop_remove(wl, s1);
	pthread_mutex_lock(&a.lock);
	a.stopped = 1;
	pthread_mutex_unlock(&a.lock);
	zw_watchloop_remove(wl, s2);
	zw_watchloop_remove(wl, s3);
	zw_watchloop_sync(wl);
	assert_int_equal(a.after_stop, 0);
	/* The last one gone ended the watch: a new subscriber lists again. */
	spec = spec_for(NULL, &d);
	assert_int_equal(zw_watchloop_add(wl, &spec, &s4), 0);
	wait_synced(&d);
	assert_string_equal(d.names, "abc");
	assert_int_equal(fake_count(&f, &f.lists), 2);
	(void)s4; /* ended by stop */
	zw_watchloop_stop(wl);
	fake_stop(&f);
	pthread_mutex_destroy(&cfg.token_lock);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_shared_replayed_filtered_removed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
