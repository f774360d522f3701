/* Blocking list+watch driver (see watch_thread.h). */
#include "watch_thread.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct zw_watch_thread {
	struct zw_kube *k;
	struct zw_watch *w;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	atomic_int stop;
};

static int watch_data(void *ud, const char *buf, size_t len)
{
	return zw_watch_data(ud, buf, len);
}

/* Sleeps ms or until stopped. Returns nonzero when stopped. */
static int watch_sleep(struct zw_watch_thread *wt, unsigned ms)
{
	struct timespec ts;
	int stopped;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&wt->lock);
	while (!wt->stop && ms > 0) {
		if (pthread_cond_timedwait(&wt->cond, &wt->lock, &ts) == ETIMEDOUT)
			break;
	}
	stopped = wt->stop;
	pthread_mutex_unlock(&wt->lock);
	return stopped;
}

static void *watch_main(void *arg)
{
	struct zw_watch_thread *wt = arg;
	struct zw_watch_step step;
	struct zw_kube_error err;

	while (!wt->stop) {
		long status = 0;
		int rc;

		if (zw_watch_next(wt->w, &step) != 0) {
			/* Cannot happen with a valid spec; avoid a busy loop regardless. */
			if (watch_sleep(wt, ZW_WATCH_BACKOFF_MAX_MS))
				break;
			continue;
		}
		if (watch_sleep(wt, step.delay_ms))
			break;
		memset(&err, 0, sizeof(err));
		rc = zw_kube_get_stream(wt->k, step.path, step.timeout_ms, &wt->stop, watch_data,
		                        wt->w, &status, &err);
		if (wt->stop)
			break;
		/* status is 0 exactly when the transfer itself failed */
		zw_watch_done(wt->w, status, rc != 0 && status == 0, rc != 0 ? &err : NULL);
	}
	return NULL;
}

int zw_watch_thread_start(struct zw_kube *k, const struct zw_watch_spec *spec,
                          struct zw_watch_thread **out)
{
	struct zw_watch_thread *wt;
	pthread_condattr_t ca;

	*out = NULL;
	wt = calloc(1, sizeof(*wt));
	if (!wt)
		return -1;
	wt->k = k;
	if (zw_watch_new(spec, &wt->w) != 0) {
		free(wt);
		return -1;
	}
	pthread_mutex_init(&wt->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&wt->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&wt->thread, NULL, watch_main, wt) != 0) {
		pthread_cond_destroy(&wt->cond);
		pthread_mutex_destroy(&wt->lock);
		zw_watch_free(wt->w);
		free(wt);
		return -1;
	}
	*out = wt;
	return 0;
}

void zw_watch_thread_stop(struct zw_watch_thread *wt)
{
	if (!wt)
		return;
	pthread_mutex_lock(&wt->lock);
	wt->stop = 1;
	pthread_cond_signal(&wt->cond);
	pthread_mutex_unlock(&wt->lock);
	pthread_join(wt->thread, NULL);
	pthread_cond_destroy(&wt->cond);
	pthread_mutex_destroy(&wt->lock);
	zw_watch_free(wt->w);
	free(wt);
}

static void *stop_one(void *arg)
{
	zw_watch_thread_stop(arg);
	return NULL;
}

void zw_watch_threads_stop(struct zw_watch_thread **v, size_t n)
{
	pthread_t *t = calloc(n ? n : 1, sizeof(*t));
	unsigned char *started = calloc(n ? n : 1, 1);

	for (size_t i = 0; i < n; i++) {
		if (!v[i])
			continue;
		if (t && started && pthread_create(&t[i], NULL, stop_one, v[i]) == 0)
			started[i] = 1;
		else
			zw_watch_thread_stop(v[i]);
	}
	for (size_t i = 0; t && started && i < n; i++)
		if (started[i])
			pthread_join(t[i], NULL);
	free(t);
	free(started);
}
