/* Kubernetes API client on libuv; see kube_uv.h. */
#include "kube_uv.h"

#include "list.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A transfer: a plain request (cb set) or a watch step (watch set). */
struct uv_xfer {
	struct zw_kube_xfer x;
	struct zw_kube_uv *ku;
	zw_kube_uv_done_fn *cb;
	void *ud;
	struct zw_kube_uv_watch *watch;
	int added; /* in the multi handle */
	struct uv_xfer *prev, *next;
};

/* uv_poll_t for one socket of libcurl. */
struct sock_ctx {
	uv_poll_t poll;
	curl_socket_t fd;
	struct zw_kube_uv *ku;
	struct sock_ctx *prev, *next;
};

struct zw_kube_uv_watch {
	struct zw_kube_uv *ku;
	struct zw_watch *w;
	struct zw_watch_spec user; /* the caller's callbacks */
	uv_timer_t timer;
	struct zw_watch_step step;
	struct uv_xfer *inflight;
	int stopped;
	struct zw_kube_uv_watch *prev, *next;
};

struct zw_kube_uv {
	uv_loop_t *loop;
	struct zw_kube_config *cfg;
	CURLM *multi;
	uv_timer_t timer; /* libcurl's timeout */
	uv_timer_t kick;  /* starts queued transfers outside libcurl callbacks */
	struct uv_xfer *xfers;
	struct sock_ctx *socks;
	struct zw_kube_uv_watch *watches;
	unsigned open_handles;
	int closing;
	void (*closed)(void *ud);
	void *closed_ud;
};

static void check_info(struct zw_kube_uv *ku);
static void xfer_finish(struct uv_xfer *t, CURLcode cc);
static void watch_schedule(struct zw_kube_uv_watch *uw);

static void maybe_finish_close(struct zw_kube_uv *ku)
{
	void (*closed)(void *ud);
	void *ud;

	if (!ku->closing || ku->open_handles > 0)
		return;
	closed = ku->closed;
	ud = ku->closed_ud;
	free(ku);
	if (closed)
		closed(ud);
}

static void handle_closed(uv_handle_t *h)
{
	struct zw_kube_uv *ku = h->data;

	ku->open_handles--;
	maybe_finish_close(ku);
}

static void sock_closed(uv_handle_t *h)
{
	struct sock_ctx *s = h->data;
	struct zw_kube_uv *ku = s->ku;

	free(s);
	ku->open_handles--;
	maybe_finish_close(ku);
}

static void sock_close(struct sock_ctx *s)
{
	ZW_LIST_UNLINK(s->ku->socks, s);
	uv_poll_stop(&s->poll);
	uv_close((uv_handle_t *)&s->poll, sock_closed);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct sock_ctx *s = h->data;
	struct zw_kube_uv *ku = s->ku;
	int flags = 0, running;

	if (status < 0)
		flags = CURL_CSELECT_ERR;
	if (events & UV_READABLE)
		flags |= CURL_CSELECT_IN;
	if (events & UV_WRITABLE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(ku->multi, s->fd, flags, &running);
	check_info(ku);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct zw_kube_uv *ku = userp;
	struct sock_ctx *s = socketp;
	int events = 0;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (s) {
			curl_multi_assign(ku->multi, fd, NULL);
			sock_close(s);
		}
		return 0;
	}
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -1;
		s->fd = fd;
		s->ku = ku;
		if (uv_poll_init_socket(ku->loop, &s->poll, fd) != 0) {
			free(s);
			return -1;
		}
		s->poll.data = s;
		ku->open_handles++;
		ZW_LIST_PUSH(ku->socks, s);
		curl_multi_assign(ku->multi, fd, s);
	}
	if (what & CURL_POLL_IN)
		events |= UV_READABLE;
	if (what & CURL_POLL_OUT)
		events |= UV_WRITABLE;
	uv_poll_start(&s->poll, events, on_poll);
	return 0;
}

static void on_timeout(uv_timer_t *t)
{
	struct zw_kube_uv *ku = t->data;
	int running;

	curl_multi_socket_action(ku->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_info(ku);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct zw_kube_uv *ku = userp;

	(void)multi;
	if (timeout_ms < 0)
		uv_timer_stop(&ku->timer);
	else
		uv_timer_start(&ku->timer, on_timeout, (uint64_t)timeout_ms, 0);
	return 0;
}

static void xfer_free(struct uv_xfer *t)
{
	struct zw_kube_uv *ku = t->ku;

	if (t->added)
		curl_multi_remove_handle(ku->multi, t->x.easy);
	ZW_LIST_UNLINK(ku->xfers, t);
	zw_kube_xfer_cleanup(&t->x);
	free(t);
}

/* Adds queued transfers to the multi handle (from a timer: never inside a
 * libcurl callback). */
static void on_kick(uv_timer_t *h)
{
	struct zw_kube_uv *ku = h->data;

	struct uv_xfer *t, *next;

	for (t = ku->xfers; t; t = next) {
		next = t->next;
		if (t->added)
			continue;
		if (curl_multi_add_handle(ku->multi, t->x.easy) == CURLM_OK)
			t->added = 1;
		else
			xfer_finish(t, CURLE_FAILED_INIT);
	}
}

static struct uv_xfer *xfer_new(struct zw_kube_uv *ku, const char *method, const char *path,
                                json_t *body, const char *ctype, long timeout_ms,
                                zw_kube_data_fn *on_data, void *ud, struct zw_kube_error *err)
{
	struct uv_xfer *t = calloc(1, sizeof(*t));

	if (!t) {
		if (err) {
			memset(err, 0, sizeof(*err));
			snprintf(err->reason, sizeof(err->reason), "%s", "Transport");
			snprintf(err->message, sizeof(err->message), "%s", "out of memory");
		}
		return NULL;
	}
	t->ku = ku;
	if (zw_kube_xfer_init(&t->x, ku->cfg, NULL, method, path, body, ctype, timeout_ms, on_data,
	                      ud, err) != 0) {
		free(t);
		return NULL;
	}
	t->x.owner = t;
	ZW_LIST_PUSH(ku->xfers, t);
	uv_timer_start(&ku->kick, on_kick, 0, 0);
	return t;
}

static void request_done(struct uv_xfer *t, CURLcode cc)
{
	struct zw_kube_error err;
	json_t *resp = NULL;
	long status;
	int rc;

	memset(&err, 0, sizeof(err));
	rc = zw_kube_xfer_result(&t->x, cc, &resp, &status, &err);
	if (rc != 0 && status == 401) {
		char tok[8];

		zw_kube_config_token(t->ku->cfg, 1, tok, sizeof(tok));
	}
	t->cb(t->ud, rc, resp, rc == 0 ? NULL : &err);
	json_decref(resp);
}

static void watch_step_done(struct zw_kube_uv_watch *uw, struct uv_xfer *t, CURLcode cc)
{
	struct zw_kube_error err;
	long status;
	int rc;

	uw->inflight = NULL;
	if (uw->stopped)
		return;
	memset(&err, 0, sizeof(err));
	rc = zw_kube_xfer_result(&t->x, cc, NULL, &status, &err);
	if (rc != 0 && status == 401) {
		char tok[8];

		zw_kube_config_token(uw->ku->cfg, 1, tok, sizeof(tok));
	}
	/* status is 0 exactly when the transfer itself failed */
	zw_watch_done(uw->w, status, rc != 0 && status == 0, rc != 0 ? &err : NULL);
	if (!uw->stopped)
		watch_schedule(uw);
}

/* Delivers the outcome of a transfer and frees it. */
static void xfer_finish(struct uv_xfer *t, CURLcode cc)
{
	if (t->added)
		curl_multi_remove_handle(t->ku->multi, t->x.easy);
	t->added = 0;
	if (t->watch)
		watch_step_done(t->watch, t, cc);
	else
		request_done(t, cc);
	xfer_free(t);
}

static void check_info(struct zw_kube_uv *ku)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(ku->multi, &left))) {
		struct zw_kube_xfer *x = NULL;
		struct uv_xfer *t;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		t = x->owner;
		xfer_finish(t, msg->data.result);
	}
}

int zw_kube_uv_new(uv_loop_t *loop, struct zw_kube_config *cfg, struct zw_kube_uv **out)
{
	struct zw_kube_uv *ku;

	*out = NULL;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	ku = calloc(1, sizeof(*ku));
	if (!ku)
		return -1;
	ku->loop = loop;
	ku->cfg = cfg;
	ku->multi = curl_multi_init();
	if (!ku->multi) {
		free(ku);
		return -1;
	}
	curl_multi_setopt(ku->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(ku->multi, CURLMOPT_SOCKETDATA, ku);
	curl_multi_setopt(ku->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(ku->multi, CURLMOPT_TIMERDATA, ku);
	uv_timer_init(loop, &ku->timer);
	uv_timer_init(loop, &ku->kick);
	ku->timer.data = ku->kick.data = ku;
	ku->open_handles = 2;
	*out = ku;
	return 0;
}

int zw_kube_uv_request(struct zw_kube_uv *ku, const char *method, const char *path_query,
                       json_t *body, const char *content_type, long timeout_ms,
                       zw_kube_uv_done_fn *cb, void *ud, struct zw_kube_error *err)
{
	struct uv_xfer *t;

	if (ku->closing) {
		if (err) {
			memset(err, 0, sizeof(*err));
			snprintf(err->reason, sizeof(err->reason), "%s", "Cancelled");
			snprintf(err->message, sizeof(err->message), "%s", "client is closing");
		}
		return -1;
	}
	t = xfer_new(ku, method, path_query, body, content_type, timeout_ms, NULL, NULL, err);
	if (!t)
		return -1;
	t->cb = cb;
	t->ud = ud;
	return 0;
}

/* ---- Watches ---- */

static void watch_event(void *ud, enum zw_watch_type type, json_t *obj)
{
	struct zw_kube_uv_watch *uw = ud;

	if (!uw->stopped)
		uw->user.on_event(uw->user.ud, type, obj);
}

static void watch_status(void *ud, const struct zw_watch_status *st)
{
	struct zw_kube_uv_watch *uw = ud;

	if (!uw->stopped && uw->user.on_status)
		uw->user.on_status(uw->user.ud, st);
}

static int watch_data(void *ud, const char *buf, size_t len)
{
	struct zw_kube_uv_watch *uw = ud;

	if (uw->stopped)
		return -1;
	return zw_watch_data(uw->w, buf, len);
}

static void watch_fire(uv_timer_t *h)
{
	struct zw_kube_uv_watch *uw = h->data;
	struct zw_kube_error err;
	struct uv_xfer *t;

	t = xfer_new(uw->ku, "GET", uw->step.path, NULL, NULL, uw->step.timeout_ms, watch_data, uw,
	             &err);
	if (!t) {
		zw_watch_done(uw->w, 0, 1, &err);
		watch_schedule(uw);
		return;
	}
	t->watch = uw;
	uw->inflight = t;
}

static void watch_retry(uv_timer_t *h)
{
	watch_schedule(h->data);
}

static void watch_schedule(struct zw_kube_uv_watch *uw)
{
	if (zw_watch_next(uw->w, &uw->step) != 0) {
		/* Cannot happen with a valid spec; retry slowly rather than spin. */
		uv_timer_start(&uw->timer, watch_retry, ZW_WATCH_BACKOFF_MAX_MS, 0);
		return;
	}
	uv_timer_start(&uw->timer, watch_fire, uw->step.delay_ms, 0);
}

static void watch_closed(uv_handle_t *h)
{
	struct zw_kube_uv_watch *uw = h->data;
	struct zw_kube_uv *ku = uw->ku;

	ZW_LIST_UNLINK(ku->watches, uw);
	zw_watch_free(uw->w);
	free(uw);
	ku->open_handles--;
	maybe_finish_close(ku);
}

/* Runs on the loop after zw_kube_uv_watch_stop: drops the transfer in
 * flight (outside any libcurl callback) and releases the watch. */
static void watch_reap(uv_timer_t *h)
{
	struct zw_kube_uv_watch *uw = h->data;

	if (uw->inflight) {
		xfer_free(uw->inflight);
		uw->inflight = NULL;
	}
	uv_close((uv_handle_t *)&uw->timer, watch_closed);
}

int zw_kube_uv_watch_start(struct zw_kube_uv *ku, const struct zw_watch_spec *spec,
                           struct zw_kube_uv_watch **out)
{
	struct zw_kube_uv_watch *uw;
	struct zw_watch_spec s;

	*out = NULL;
	if (ku->closing || !spec->on_event)
		return -1;
	uw = calloc(1, sizeof(*uw));
	if (!uw)
		return -1;
	uw->ku = ku;
	uw->user = *spec;
	s = *spec;
	s.on_event = watch_event;
	s.on_status = watch_status;
	s.ud = uw;
	if (zw_watch_new(&s, &uw->w) != 0) {
		free(uw);
		return -1;
	}
	uv_timer_init(ku->loop, &uw->timer);
	uw->timer.data = uw;
	ku->open_handles++;
	ZW_LIST_PUSH(ku->watches, uw);
	watch_schedule(uw);
	*out = uw;
	return 0;
}

void zw_kube_uv_watch_stop(struct zw_kube_uv_watch *uw)
{
	if (!uw || uw->stopped)
		return;
	uw->stopped = 1;
	uv_timer_stop(&uw->timer);
	uv_timer_start(&uw->timer, watch_reap, 0, 0);
}

void zw_kube_uv_close(struct zw_kube_uv *ku, void (*closed)(void *ud), void *ud)
{
	if (!ku || ku->closing)
		return;
	ku->closing = 1;
	ku->closed = closed;
	ku->closed_ud = ud;
	while (ku->xfers)
		xfer_free(ku->xfers);
	for (struct zw_kube_uv_watch *uw = ku->watches; uw; uw = uw->next) {
		uw->stopped = 1;
		uw->inflight = NULL;
		if (!uv_is_closing((uv_handle_t *)&uw->timer))
			uv_close((uv_handle_t *)&uw->timer, watch_closed);
	}
	curl_multi_cleanup(ku->multi);
	ku->multi = NULL;
	while (ku->socks)
		sock_close(ku->socks);
	uv_close((uv_handle_t *)&ku->timer, handle_closed);
	uv_close((uv_handle_t *)&ku->kick, handle_closed);
}
