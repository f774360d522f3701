/* zerowire-webhook watch loop: shared list+watches on one libuv loop
 * thread (see watchloop.h). */
#include "watchloop.h"

#include "kobj.h"
#include "kube_uv.h"
#include "list.h"
#include "log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

struct shared;

struct zw_watchloop_sub {
	struct shared *sh;
	char *namespace; /* filter: set when sh watches all namespaces and this one */
	zw_watch_event_fn *on_event;
	zw_watch_status_fn *on_status;
	void *ud;
	struct zw_watchloop_sub *prev, *next;
};

/* One API watch and its subscribers. */
struct shared {
	struct zw_watchloop *wl;
	char *group, *version, *resource, *namespace, *selector;
	struct zw_kube_uv_watch *kw;
	json_t *objs; /* "ns/name" -> object, as last delivered */
	int synced;   /* a list has been delivered */
	int waiting;  /* not served (last status WAITING) */
	struct zw_watchloop_sub *subs;
	struct shared *prev, *next;
};

/* A function to run on the loop thread, for a caller that waits. */
struct call {
	void (*fn)(struct zw_watchloop *wl, void *arg);
	void *arg;
	int done;
	struct call *prev, *next;
};

struct zw_watchloop {
	uv_loop_t loop;
	uv_async_t async;
	struct zw_kube_uv *ku;
	pthread_t thread;
	struct shared *watches; /* loop thread only */
	size_t n_watches;       /* loop thread only (for logs) */

	pthread_mutex_t lock; /* calls, stopped */
	pthread_cond_t cond;
	struct call *calls, *calls_tail;
	int stopped; /* no more calls are taken */
};

static char *dup_or_null(const char *s)
{
	return s && s[0] ? strdup(s) : NULL;
}

/* Nonzero when a and b are both absent (NULL or "") or equal. */
static int same(const char *a, const char *b)
{
	if (!a || !a[0] || !b || !b[0])
		return (!a || !a[0]) && (!b || !b[0]);
	return strcmp(a, b) == 0;
}

static int sub_wants(const struct zw_watchloop_sub *s, const json_t *obj)
{
	return !s->namespace || strcmp(zw_kobj_meta(obj, "namespace"), s->namespace) == 0;
}

/* ---- on the loop ---- */

static void on_event(void *ud, enum zw_watch_type type, json_t *obj)
{
	struct shared *sh = ud;
	struct zw_watchloop_sub *s;
	char key[600];

	if (type == ZW_WATCH_SYNCED) {
		sh->synced = 1;
		sh->waiting = 0;
	} else if (obj) {
		snprintf(key, sizeof(key), "%s/%s", zw_kobj_meta(obj, "namespace"),
		         zw_kobj_meta(obj, "name"));
		if (type == ZW_WATCH_DELETED)
			json_object_del(sh->objs, key);
		else
			json_object_set(sh->objs, key, obj);
	}
	for (s = sh->subs; s; s = s->next)
		if (!obj || sub_wants(s, obj))
			s->on_event(s->ud, type, obj);
}

static void on_status(void *ud, const struct zw_watch_status *st)
{
	struct shared *sh = ud;

	if (st->kind == ZW_WATCH_ST_WAITING)
		sh->waiting = 1;
	else if (st->kind == ZW_WATCH_ST_SYNCED)
		sh->waiting = 0;
	for (struct zw_watchloop_sub *s = sh->subs; s; s = s->next)
		if (s->on_status)
			s->on_status(s->ud, st);
}

static void shared_free(struct shared *sh)
{
	free(sh->group);
	free(sh->version);
	free(sh->resource);
	free(sh->namespace);
	free(sh->selector);
	json_decref(sh->objs);
	free(sh);
}

/* The watch sub can share, or a new one (NULL on failure). */
static struct shared *shared_for(struct zw_watchloop *wl, const struct zw_watchloop_spec *spec)
{
	struct shared *sh;
	struct zw_watch_spec ws;

	for (sh = wl->watches; sh; sh = sh->next)
		if (same(sh->group, spec->group) && same(sh->version, spec->version) &&
		    same(sh->resource, spec->resource) &&
		    same(sh->selector, spec->label_selector) &&
		    (!sh->namespace || same(sh->namespace, spec->namespace)))
			return sh;
	sh = calloc(1, sizeof(*sh));
	if (!sh)
		return NULL;
	sh->wl = wl;
	sh->group = dup_or_null(spec->group);
	sh->version = strdup(spec->version);
	sh->resource = strdup(spec->resource);
	sh->namespace = dup_or_null(spec->namespace);
	sh->selector = dup_or_null(spec->label_selector);
	sh->objs = json_object();
	if (!sh->version || !sh->resource || !sh->objs ||
	    (spec->group && spec->group[0] && !sh->group) ||
	    (spec->namespace && spec->namespace[0] && !sh->namespace) ||
	    (spec->label_selector && spec->label_selector[0] && !sh->selector))
		goto fail;
	memset(&ws, 0, sizeof(ws));
	ws.group = sh->group;
	ws.version = sh->version;
	ws.resource = sh->resource;
	ws.namespace = sh->namespace;
	ws.label_selector = sh->selector;
	ws.backoff_max_ms = spec->backoff_max_ms;
	ws.on_event = on_event;
	ws.on_status = on_status;
	ws.ud = sh;
	if (zw_kube_uv_watch_start(wl->ku, &ws, &sh->kw) != 0)
		goto fail;
	ZW_LIST_PUSH(wl->watches, sh);
	wl->n_watches++;
	zw_log(ZW_LOG_INFO, "watch_started", "resource=%s.%s/%s ns=%s selector=\"%s\" watches=%zu",
	       sh->resource, sh->group ? sh->group : "", sh->version,
	       sh->namespace ? sh->namespace : "*", sh->selector ? sh->selector : "",
	       wl->n_watches);
	return sh;
fail:
	shared_free(sh);
	return NULL;
}

struct add_args {
	const struct zw_watchloop_spec *spec;
	struct zw_watchloop_sub *sub;
	int rc;
};

static void do_add(struct zw_watchloop *wl, void *arg)
{
	struct add_args *a = arg;
	struct zw_watchloop_sub *s = a->sub;
	struct shared *sh = shared_for(wl, a->spec);
	const char *key;
	json_t *obj;

	if (!sh)
		return;
	s->sh = sh;
	if (!sh->namespace && a->spec->namespace && a->spec->namespace[0]) {
		s->namespace = strdup(a->spec->namespace);
		if (!s->namespace)
			return; /* sh stays: it has or gets subscribers, else ends with wl */
	}
	/* What is known already, as the watch told it. */
	json_object_foreach(sh->objs, key, obj)
	{
		if (sub_wants(s, obj))
			s->on_event(s->ud, ZW_WATCH_ADDED, obj);
	}
	if (sh->synced)
		s->on_event(s->ud, ZW_WATCH_SYNCED, NULL);
	if (sh->waiting && s->on_status) {
		struct zw_watch_status st = {.kind = ZW_WATCH_ST_WAITING};
		s->on_status(s->ud, &st);
	}
	ZW_LIST_PUSH(sh->subs, s);
	a->rc = 0;
}

static void shared_end(struct zw_watchloop *wl, struct shared *sh)
{
	zw_kube_uv_watch_stop(sh->kw);
	ZW_LIST_UNLINK(wl->watches, sh);
	wl->n_watches--;
	shared_free(sh);
}

static void do_remove(struct zw_watchloop *wl, void *arg)
{
	struct zw_watchloop_sub *s = arg;
	struct shared *sh = s->sh;

	ZW_LIST_UNLINK(sh->subs, s);
	if (!sh->subs)
		shared_end(wl, sh);
}

static void closed_async(uv_handle_t *h)
{
	(void)h;
}

static void do_stop(struct zw_watchloop *wl, void *arg)
{
	(void)arg;
	while (wl->watches) {
		struct shared *sh = wl->watches;
		while (sh->subs) {
			struct zw_watchloop_sub *s = sh->subs;
			ZW_LIST_UNLINK(sh->subs, s);
			free(s->namespace);
			free(s);
		}
		shared_end(wl, sh);
	}
	zw_kube_uv_close(wl->ku, NULL, NULL);
	wl->ku = NULL;
	uv_close((uv_handle_t *)&wl->async, closed_async);
}

static void on_async(uv_async_t *h)
{
	struct zw_watchloop *wl = h->data;

	pthread_mutex_lock(&wl->lock);
	while (wl->calls) {
		struct call *c = wl->calls;
		ZW_QUEUE_UNLINK(wl->calls, wl->calls_tail, c);
		pthread_mutex_unlock(&wl->lock);
		c->fn(wl, c->arg);
		pthread_mutex_lock(&wl->lock);
		c->done = 1;
	}
	pthread_cond_broadcast(&wl->cond);
	pthread_mutex_unlock(&wl->lock);
}

static void *loop_main(void *arg)
{
	struct zw_watchloop *wl = arg;

	uv_run(&wl->loop, UV_RUN_DEFAULT);
	return NULL;
}

/* ---- from other threads ---- */

/* Runs fn(wl, arg) on the loop thread and waits for it. Returns 0, or -1
 * when the loop takes no more calls (fn not run). last: the loop takes no
 * call after this one. */
static int call_on_loop(struct zw_watchloop *wl, void (*fn)(struct zw_watchloop *, void *),
                        void *arg, int last)
{
	struct call c = {.fn = fn, .arg = arg};

	pthread_mutex_lock(&wl->lock);
	if (wl->stopped) {
		pthread_mutex_unlock(&wl->lock);
		return -1;
	}
	if (last)
		wl->stopped = 1;
	ZW_QUEUE_APPEND(wl->calls, wl->calls_tail, &c);
	uv_async_send(&wl->async);
	while (!c.done)
		pthread_cond_wait(&wl->cond, &wl->lock);
	pthread_mutex_unlock(&wl->lock);
	return 0;
}

int zw_watchloop_start(struct zw_kube_config *cfg, struct zw_watchloop **out)
{
	struct zw_watchloop *wl = calloc(1, sizeof(*wl));

	if (!wl)
		return -1;
	if (uv_loop_init(&wl->loop) != 0)
		goto fail_free;
	if (uv_async_init(&wl->loop, &wl->async, on_async) != 0)
		goto fail_loop;
	wl->async.data = wl;
	if (zw_kube_uv_new(&wl->loop, cfg, &wl->ku) != 0)
		goto fail_async;
	pthread_mutex_init(&wl->lock, NULL);
	pthread_cond_init(&wl->cond, NULL);
	if (pthread_create(&wl->thread, NULL, loop_main, wl) != 0) {
		pthread_cond_destroy(&wl->cond);
		pthread_mutex_destroy(&wl->lock);
		zw_kube_uv_close(wl->ku, NULL, NULL);
		goto fail_async;
	}
	*out = wl;
	return 0;
fail_async:
	uv_close((uv_handle_t *)&wl->async, closed_async);
	uv_run(&wl->loop, UV_RUN_DEFAULT);
fail_loop:
	uv_loop_close(&wl->loop);
fail_free:
	free(wl);
	return -1;
}

int zw_watchloop_add(struct zw_watchloop *wl, const struct zw_watchloop_spec *spec,
                     struct zw_watchloop_sub **out)
{
	struct add_args a = {.spec = spec, .rc = -1};

	if (!spec->version || !spec->resource || !spec->on_event)
		return -1;
	a.sub = calloc(1, sizeof(*a.sub));
	if (!a.sub)
		return -1;
	a.sub->on_event = spec->on_event;
	a.sub->on_status = spec->on_status;
	a.sub->ud = spec->ud;
	if (call_on_loop(wl, do_add, &a, 0) < 0 || a.rc < 0) {
		free(a.sub->namespace);
		free(a.sub);
		return -1;
	}
	*out = a.sub;
	return 0;
}

void zw_watchloop_remove(struct zw_watchloop *wl, struct zw_watchloop_sub *sub)
{
	if (!sub)
		return;
	/* After stop the subscription is gone already. */
	if (call_on_loop(wl, do_remove, sub, 0) == 0) {
		free(sub->namespace);
		free(sub);
	}
}

static void do_nothing(struct zw_watchloop *wl, void *arg)
{
	(void)wl;
	(void)arg;
}

void zw_watchloop_sync(struct zw_watchloop *wl)
{
	call_on_loop(wl, do_nothing, NULL, 0);
}

void zw_watchloop_stop(struct zw_watchloop *wl)
{
	if (!wl)
		return;
	call_on_loop(wl, do_stop, NULL, 1);
	pthread_join(wl->thread, NULL);
	uv_loop_close(&wl->loop);
	pthread_cond_destroy(&wl->cond);
	pthread_mutex_destroy(&wl->lock);
	free(wl);
}
