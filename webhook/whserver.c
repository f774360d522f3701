/* zerowire-webhook HTTPS server: libmicrohttpd with a GnuTLS certificate
 * callback so that the serving certificate can change without a restart.
 *
 * Certificate lifetime: a `struct bundle` (chain + key) is reference
 * counted. The server holds one reference on the current bundle; every
 * handshake that is handed a bundle takes one more, recorded against its
 * GnuTLS session in `held`, and gives it back when MHD reports the
 * connection closed. A swapped-out bundle is therefore freed only when the
 * last connection that negotiated with it goes away.
 *
 * Resource limits (reslimits.h): every connection is entered in a table
 * with its phase and deadline when MHD reports it started. The housekeeping
 * thread shuts down (shutdown(2); MHD then closes it on its own thread)
 * connections past their deadline, and a connection over the limit makes
 * the table pick one to shut down at once. The table lock is held across
 * shutdown(2), and MHD reports a connection closed before it closes its
 * descriptor, so a descriptor shut down is always still the connection's.
 * Request bodies are buffered only after their bytes were reserved from the
 * body budget. */
#include "whserver.h"

#include "addr.h"
#include "buf.h"

#include "log.h"
#include "reslimits.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <malloc.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#define MAX_CHAIN      16                  /* certificates in the chain file */
#define MAX_PEM_FILE   (1024 * 1024)       /* bytes per certificate/key file */
#define DRAIN_SLACK    (4 * 1024 * 1024)   /* bytes discarded past max_body before closing */
#define TICK_MS        200                 /* housekeeping: deadlines checked this often */
#define TRIM_AFTER     (32u * 1024 * 1024) /* review memory estimate */
#define RETRY_AFTER    "1"                 /* seconds, in 503 answers to an exhausted budget */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

struct bundle {
	atomic_int refs;
	gnutls_pcert_st pcerts[MAX_CHAIN];
	unsigned n_pcerts;
	gnutls_privkey_t key;
};

struct file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	struct timespec ctime;
};

struct held {
	gnutls_session_t session;
	struct bundle *bundle;
};

struct zw_wh_server {
	struct zw_wh_server_config cfg;
	struct MHD_Daemon *daemon;
	int port;

	pthread_mutex_t lock; /* current, held, file ids */
	struct bundle *current;
	struct file_id cert_id;
	struct file_id key_id;
	struct held *held;
	size_t n_held;
	size_t cap_held;

	struct zw_budget budget;
	struct zw_budget work;     /* estimated memory of the reviews being answered */
	pthread_mutex_t work_lock; /* with work_cond: waits for room in work */
	pthread_cond_t work_cond;
	pthread_mutex_t conn_lock; /* conns */
	struct zw_conntab conns;

	pthread_t reload_thread; /* housekeeping: certificate reloads, deadlines */
	int reload_started;
	pthread_cond_t stop_cond;
	int stopping;
};

/* Per-request state of POST /mutate. */
struct request {
	struct timespec start;
	struct zw_buf body; /* the review, at most cfg.max_body bytes */
	size_t seen;        /* bytes received, including discarded ones */
	size_t reserved;    /* bytes taken from the body budget */
	int too_large;
	int refused;   /* answered 503: budget exhausted */
	int is_review; /* POST /mutate; everything else is answered by handle_other */
};

/* The GnuTLS certificate callback has no user pointer: one server per process. */
static struct zw_wh_server *the_server;
static pthread_mutex_t the_server_lock = PTHREAD_MUTEX_INITIALIZER;

static void bundle_free(struct bundle *b)
{
	if (!b)
		return;
	for (unsigned i = 0; i < b->n_pcerts; i++)
		gnutls_pcert_deinit(&b->pcerts[i]);
	if (b->key)
		gnutls_privkey_deinit(b->key);
	free(b);
}

static void bundle_unref(struct bundle *b)
{
	if (b && atomic_fetch_sub(&b->refs, 1) == 1)
		bundle_free(b);
}

/* Reads a whole small file into a NUL-terminated buffer. */
static int read_file(const char *path, gnutls_datum_t *out, struct file_id *id)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	unsigned char *buf = NULL;
	size_t n;
	int rc = 0;

	if (!f)
		return -errno;
	if (fstat(fileno(f), &st) != 0) {
		rc = -errno;
		goto out;
	}
	if (st.st_size <= 0 || st.st_size > MAX_PEM_FILE) {
		rc = -EINVAL;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	n = fread(buf, 1, (size_t)st.st_size, f);
	if (n != (size_t)st.st_size) {
		rc = -EIO;
		goto out;
	}
	buf[n] = '\0';
	out->data = buf;
	out->size = (unsigned)n;
	buf = NULL;
	if (id) {
		id->dev = st.st_dev;
		id->ino = st.st_ino;
		id->size = st.st_size;
		id->mtime = st.st_mtim;
		id->ctime = st.st_ctim;
	}
out:
	free(buf);
	fclose(f);
	return rc;
}

/* Checks that the private key belongs to the leaf certificate. */
static int key_matches(struct bundle *b)
{
	gnutls_pubkey_t pub = NULL;
	unsigned char id1[64], id2[64];
	size_t l1 = sizeof(id1), l2 = sizeof(id2);
	int rc = -EINVAL;

	if (gnutls_pubkey_init(&pub) < 0)
		return -ENOMEM;
	if (gnutls_pubkey_import_privkey(pub, b->key, 0, 0) < 0)
		goto out;
	if (gnutls_pubkey_get_key_id(pub, 0, id1, &l1) < 0)
		goto out;
	if (gnutls_pubkey_get_key_id(b->pcerts[0].pubkey, 0, id2, &l2) < 0)
		goto out;
	if (l1 == l2 && memcmp(id1, id2, l1) == 0)
		rc = 0;
out:
	gnutls_pubkey_deinit(pub);
	return rc;
}

/* Parses a PEM chain and key (borrowed) into a new bundle with one
 * reference; `what` names their origin in messages. */
static int bundle_parse(const gnutls_datum_t *cert, const gnutls_datum_t *key, const char *what,
                        struct bundle **out, char *err, size_t errlen)
{
	struct bundle *b = NULL;
	int rc, g;

	b = calloc(1, sizeof(*b));
	if (!b) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	atomic_init(&b->refs, 1);
	b->n_pcerts = MAX_CHAIN;
	g = gnutls_pcert_list_import_x509_raw(b->pcerts, &b->n_pcerts, cert, GNUTLS_X509_FMT_PEM,
	                                      0);
	if (g < 0 || b->n_pcerts == 0) {
		b->n_pcerts = 0;
		rc = -EINVAL;
		snprintf(err, errlen, "certificate %s: %s", what,
		         g < 0 ? gnutls_strerror(g) : "no certificate");
		goto out;
	}
	if (gnutls_privkey_init(&b->key) < 0) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	g = gnutls_privkey_import_x509_raw(b->key, key, GNUTLS_X509_FMT_PEM, NULL, 0);
	if (g < 0) {
		rc = -EINVAL;
		snprintf(err, errlen, "key %s: %s", what, gnutls_strerror(g));
		goto out;
	}
	if (key_matches(b) < 0) {
		rc = -EINVAL;
		snprintf(err, errlen, "key %s does not match its certificate", what);
		goto out;
	}
	*out = b;
	b = NULL;
	rc = 0;
out:
	bundle_free(b);
	return rc;
}

/* Loads chain + key files into a new bundle with one reference. */
static int bundle_load(const char *cert_file, const char *key_file, struct bundle **out,
                       struct file_id *cert_id, struct file_id *key_id, char *err, size_t errlen)
{
	gnutls_datum_t cert = {0}, key = {0};
	int rc;

	rc = read_file(cert_file, &cert, cert_id);
	if (rc < 0) {
		snprintf(err, errlen, "cannot read certificate %s: %s", cert_file, strerror(-rc));
		goto out;
	}
	rc = read_file(key_file, &key, key_id);
	if (rc < 0) {
		snprintf(err, errlen, "cannot read key %s: %s", key_file, strerror(-rc));
		goto out;
	}
	rc = bundle_parse(&cert, &key, cert_file, out, err, errlen);
out:
	if (key.data) {
		memset(key.data, 0, key.size);
		free(key.data);
	}
	free(cert.data);
	return rc;
}

/* Expiry of b's leaf certificate in seconds since the epoch, or 0. */
static int64_t bundle_expiry(const struct bundle *b)
{
	gnutls_x509_crt_t crt;
	int64_t t = 0;

	if (b->n_pcerts == 0 || gnutls_x509_crt_init(&crt) < 0)
		return 0;
	if (gnutls_x509_crt_import(crt, &b->pcerts[0].cert, GNUTLS_X509_FMT_DER) >= 0)
		t = (int64_t)gnutls_x509_crt_get_expiration_time(crt);
	gnutls_x509_crt_deinit(crt);
	return t > 0 ? t : 0;
}

/* Makes b (one reference, taken over) the certificate of the next handshakes. */
static void bundle_install(struct zw_wh_server *s, struct bundle *b, const struct file_id *cid,
                           const struct file_id *kid)
{
	struct bundle *old;

	pthread_mutex_lock(&s->lock);
	old = s->current;
	s->current = b;
	if (cid)
		s->cert_id = *cid;
	if (kid)
		s->key_id = *kid;
	pthread_mutex_unlock(&s->lock);
	zw_wh_metrics_set(s->cfg.metrics, ZW_G_CERT_EXPIRY, bundle_expiry(b));
	bundle_unref(old);
	zw_wh_metrics_add(s->cfg.metrics, ZW_C_CERT_RELOADS, 1);
}

int zw_wh_server_set_cert_pem(struct zw_wh_server *s, const char *cert_pem, const char *key_pem,
                              char err[ZW_WH_SERVER_ERRLEN])
{
	gnutls_datum_t cert = {(unsigned char *)cert_pem, (unsigned)strlen(cert_pem)};
	gnutls_datum_t key = {(unsigned char *)key_pem, (unsigned)strlen(key_pem)};
	struct bundle *b = NULL;
	int rc = bundle_parse(&cert, &key, "(memory)", &b, err, ZW_WH_SERVER_ERRLEN);

	if (rc < 0) {
		zw_wh_metrics_add(s->cfg.metrics, ZW_C_CERT_RELOAD_ERRORS, 1);
		return rc;
	}
	bundle_install(s, b, NULL, NULL);
	return 0;
}

static int stat_id(const char *path, struct file_id *id)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return -errno;
	id->dev = st.st_dev;
	id->ino = st.st_ino;
	id->size = st.st_size;
	id->mtime = st.st_mtim;
	id->ctime = st.st_ctim;
	return 0;
}

static int same_id(const struct file_id *a, const struct file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
	       a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

int zw_wh_server_reload_now(struct zw_wh_server *s)
{
	struct file_id cid, kid;
	struct bundle *b = NULL;
	char err[ZW_WH_SERVER_ERRLEN];
	int rc;

	if (!s->cfg.cert_file)
		return 0; /* in-memory certificate: zw_wh_server_set_cert_pem swaps it */
	if (stat_id(s->cfg.cert_file, &cid) < 0 || stat_id(s->cfg.key_file, &kid) < 0)
		return -ENOENT;
	pthread_mutex_lock(&s->lock);
	rc = same_id(&cid, &s->cert_id) && same_id(&kid, &s->key_id);
	pthread_mutex_unlock(&s->lock);
	if (rc)
		return 0;
	rc = bundle_load(s->cfg.cert_file, s->cfg.key_file, &b, &cid, &kid, err, sizeof(err));
	if (rc < 0) {
		zw_wh_metrics_add(s->cfg.metrics, ZW_C_CERT_RELOAD_ERRORS, 1);
		zw_log(ZW_LOG_WARN, "cert_reload_failed", "error=\"%s\"", err);
		return rc;
	}
	bundle_install(s, b, &cid, &kid);
	zw_log(ZW_LOG_INFO, "cert_reloaded", "cert=%s chain=%u", s->cfg.cert_file, b->n_pcerts);
	return 1;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Shuts c down for MHD to close; conn_lock held. */
static void conn_shut(struct zw_wh_server *s, struct zw_conn *c, enum zw_counter why)
{
	shutdown(c->fd, SHUT_RDWR);
	zw_conntab_set(&s->conns, c, ZW_CONN_CLOSING, now_ms(), 0);
	zw_wh_metrics_add(s->cfg.metrics, why, 1);
}

/* Shuts down every connection past its deadline. */
static void reap_expired(struct zw_wh_server *s)
{
	int64_t now = now_ms();
	struct zw_conn *c;

	pthread_mutex_lock(&s->conn_lock);
	while ((c = zw_conntab_expired(&s->conns, now)))
		conn_shut(s, c, ZW_C_CONN_TIMEOUTS);
	pthread_mutex_unlock(&s->conn_lock);
}

/* Housekeeping thread: deadlines every TICK_MS, certificate files every
 * reload_interval_ms. */
static void *reload_main(void *arg)
{
	struct zw_wh_server *s = arg;
	int64_t next_reload = now_ms() + s->cfg.reload_interval_ms;
	struct timespec dl;

	pthread_mutex_lock(&s->lock);
	while (!s->stopping) {
		clock_gettime(CLOCK_MONOTONIC, &dl);
		dl.tv_nsec += (long)TICK_MS * 1000000L;
		if (dl.tv_nsec >= 1000000000L) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&s->stop_cond, &s->lock, &dl);
		if (s->stopping)
			break;
		pthread_mutex_unlock(&s->lock);
		reap_expired(s);
		if (now_ms() >= next_reload) {
			zw_wh_server_reload_now(s);
			next_reload = now_ms() + s->cfg.reload_interval_ms;
		}
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* GnuTLS asks for the certificate of one handshake. */
static int cert_callback(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
                         const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                         gnutls_pcert_st **pcert, unsigned int *pcert_length,
                         gnutls_privkey_t *pkey)
{
	struct zw_wh_server *s = the_server;
	struct bundle *b, *replaced = NULL;
	size_t i;

	(void)req_ca_dn;
	(void)nreqs;
	(void)pk_algos;
	(void)pk_algos_length;
	if (!s)
		return -1;
	pthread_mutex_lock(&s->lock);
	b = s->current;
	for (i = 0; i < s->n_held; i++)
		if (s->held[i].session == session)
			break;
	if (i == s->n_held) {
		if (s->n_held == s->cap_held) {
			pthread_mutex_unlock(&s->lock);
			return -1;
		}
		s->n_held++;
	} else {
		replaced = s->held[i].bundle;
	}
	atomic_fetch_add(&b->refs, 1);
	s->held[i].session = session;
	s->held[i].bundle = b;
	pthread_mutex_unlock(&s->lock);
	bundle_unref(replaced);
	*pcert = b->pcerts;
	*pcert_length = b->n_pcerts;
	*pkey = b->key;
	zw_wh_metrics_add(s->cfg.metrics, ZW_C_HANDSHAKES, 1);
	return 0;
}

/* Enters a new connection in the table with the read deadline, and makes
 * room when the table holds more than max_connections live ones. A
 * connection that cannot be tracked is shut down. */
static void conn_started(struct zw_wh_server *s, struct MHD_Connection *connection,
                         void **socket_context)
{
	const union MHD_ConnectionInfo *ci;
	struct zw_conn *c, *victim;
	int64_t now = now_ms();

	ci = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!ci)
		return;
	c = calloc(1, sizeof(*c));
	if (!c) {
		shutdown(ci->connect_fd, SHUT_RDWR);
		return;
	}
	c->fd = ci->connect_fd;
	pthread_mutex_lock(&s->conn_lock);
	if (zw_conntab_add(&s->conns, c, now, now + (int64_t)s->cfg.read_timeout_s * 1000) < 0) {
		pthread_mutex_unlock(&s->conn_lock);
		shutdown(c->fd, SHUT_RDWR);
		free(c);
		return;
	}
	*socket_context = c;
	while (s->conns.live > s->cfg.max_connections && (victim = zw_conntab_victim(&s->conns)))
		conn_shut(s, victim, ZW_C_CONN_EVICTED);
	if (s->conns.live > s->cfg.max_connections)
		conn_shut(s, c, ZW_C_CONN_EVICTED); /* every other one is being answered */
	pthread_mutex_unlock(&s->conn_lock);
}

/* Moves the connection of c to phase p; from NEW to READING it keeps the
 * deadline of its accept, otherwise the phase gets its own timeout. */
static void conn_phase(struct zw_wh_server *s, struct MHD_Connection *mc, enum zw_conn_phase p)
{
	const union MHD_ConnectionInfo *ci;
	struct zw_conn *c;
	int64_t now = now_ms(), deadline;

	ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (!ci || !ci->socket_context)
		return;
	c = ci->socket_context;
	pthread_mutex_lock(&s->conn_lock);
	if (p == ZW_CONN_IDLE)
		deadline = now + (int64_t)s->cfg.idle_timeout_s * 1000;
	else if (p == ZW_CONN_READING && c->phase == ZW_CONN_NEW)
		deadline = c->deadline_ms;
	else
		deadline = now + (int64_t)s->cfg.read_timeout_s * 1000;
	zw_conntab_set(&s->conns, c, p, now, deadline);
	pthread_mutex_unlock(&s->conn_lock);
}

static void notify_connection(void *cls, struct MHD_Connection *connection, void **socket_context,
                              enum MHD_ConnectionNotificationCode toe)
{
	struct zw_wh_server *s = cls;
	const union MHD_ConnectionInfo *ci;
	struct bundle *b = NULL;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		zw_wh_metrics_gauge_add(s->cfg.metrics, ZW_G_CONNECTIONS, 1);
		conn_started(s, connection, socket_context);
		return;
	}
	zw_wh_metrics_gauge_add(s->cfg.metrics, ZW_G_CONNECTIONS, -1);
	if (*socket_context) {
		pthread_mutex_lock(&s->conn_lock);
		zw_conntab_remove(&s->conns, *socket_context);
		pthread_mutex_unlock(&s->conn_lock);
		free(*socket_context);
		*socket_context = NULL;
	}
	ci = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (!ci || !ci->tls_session)
		return;
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n_held; i++)
		if (s->held[i].session == (gnutls_session_t)ci->tls_session) {
			b = s->held[i].bundle;
			s->held[i] = s->held[--s->n_held];
			break;
		}
	pthread_mutex_unlock(&s->lock);
	bundle_unref(b);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (msg[i] == '"')
			msg[i] = '\'';
	zw_log(ZW_LOG_DEBUG, "http_server", "msg=\"%s\"", msg);
}

static enum MHD_Result send_static(struct MHD_Connection *c, unsigned status, const char *body,
                                   const char *ctype)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

enum MHD_Result zw_wh_server_send_owned(struct MHD_Connection *c, unsigned status, char *body,
                                        size_t len, const char *ctype)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer_with_free_callback(len, body, free);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static double elapsed_s(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static enum MHD_Result answer_too_large(struct zw_wh_server *s, struct MHD_Connection *c,
                                        struct request *rq)
{
	char *msg = NULL;
	int n;

	zw_wh_metrics_review(s->cfg.metrics, NULL, ZW_REVIEW_TOO_LARGE, elapsed_s(&rq->start));
	zw_wh_metrics_add(s->cfg.metrics, ZW_C_ERRORS, 1);
	zw_log(ZW_LOG_WARN, "review_too_large", "bytes=%zu limit=%zu", rq->seen, s->cfg.max_body);
	n = asprintf(&msg, "request body exceeds the limit of %zu bytes\n", s->cfg.max_body);
	if (n < 0)
		return send_static(c, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large\n",
		                   "text/plain");
	return zw_wh_server_send_owned(c, MHD_HTTP_CONTENT_TOO_LARGE, msg, (size_t)n, "text/plain");
}

/* Peak memory of answering a review of len body bytes (measured; see
 * ZW_WH_SERVER_REVIEW_FACTOR). */
static size_t review_memory(size_t len)
{
	return (len + 1) * ZW_WH_SERVER_REVIEW_FACTOR;
}

/* Waits until need bytes fit in the review memory budget, at most
 * read_timeout_s. Returns 0 (taken) or -EAGAIN. */
static int work_enter(struct zw_wh_server *s, size_t need)
{
	struct timespec dl;
	int rc = 0;

	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += s->cfg.read_timeout_s;
	pthread_mutex_lock(&s->work_lock);
	while (zw_budget_take(&s->work, need) < 0)
		if (pthread_cond_timedwait(&s->work_cond, &s->work_lock, &dl) == ETIMEDOUT) {
			rc = -EAGAIN;
			break;
		}
	pthread_mutex_unlock(&s->work_lock);
	return rc;
}

static void work_leave(struct zw_wh_server *s, size_t need)
{
	if (need >= TRIM_AFTER)
		malloc_trim(0); /* give a large review's memory back to the system */
	pthread_mutex_lock(&s->work_lock);
	zw_budget_give(&s->work, need);
	pthread_cond_broadcast(&s->work_cond);
	pthread_mutex_unlock(&s->work_lock);
}

static enum MHD_Result answer_busy(struct zw_wh_server *s, struct MHD_Connection *c,
                                   struct request *rq);

static enum MHD_Result answer_review(struct zw_wh_server *s, struct MHD_Connection *c,
                                     struct request *rq)
{
	struct zw_review_reply reply;
	int rc;

	memset(&reply, 0, sizeof(reply));
	if (zw_buf_append(&rq->body, "", 0, SIZE_MAX) < 0) /* an empty body is "" */
		return MHD_NO;
	size_t need = review_memory(rq->body.len);
	if (work_enter(s, need) < 0)
		return answer_busy(s, c, rq);
	rc = s->cfg.review(s->cfg.arg, rq->body.data, rq->body.len, &reply);
	work_leave(s, need);
	if (rc < 0 || !reply.body) {
		free(reply.body);
		zw_wh_metrics_review(s->cfg.metrics, reply.kind, ZW_REVIEW_ERROR,
		                     elapsed_s(&rq->start));
		zw_wh_metrics_add(s->cfg.metrics, ZW_C_ERRORS, 1);
		zw_log(ZW_LOG_ERROR, "review_failed", "rc=%d", rc);
		return send_static(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error\n",
		                   "text/plain");
	}
	zw_wh_metrics_review(s->cfg.metrics, reply.kind, reply.outcome, elapsed_s(&rq->start));
	zw_wh_metrics_add(s->cfg.metrics, ZW_C_REWRITES, reply.rewrites);
	zw_wh_metrics_add(s->cfg.metrics, ZW_C_RESTORES, reply.restores);
	zw_wh_metrics_add(s->cfg.metrics, ZW_C_WARNINGS, reply.warnings);
	if (reply.status != MHD_HTTP_OK)
		zw_wh_metrics_add(s->cfg.metrics, ZW_C_ERRORS, 1);
	if (reply.status == 0)
		reply.status = MHD_HTTP_OK;
	return zw_wh_server_send_owned(c, (unsigned)reply.status, reply.body, reply.body_len,
	                               reply.status == MHD_HTTP_OK ? "application/json"
	                                                           : "text/plain");
}

/* Reserves n more body bytes for rq from the budget. Returns 0 or -EAGAIN. */
static int request_reserve(struct zw_wh_server *s, struct request *rq, size_t n)
{
	if (zw_budget_take(&s->budget, n) < 0)
		return -EAGAIN;
	rq->reserved += n;
	zw_wh_metrics_gauge_add(s->cfg.metrics, ZW_G_BODY_BYTES, (int64_t)n);
	return 0;
}

/* Answers 503 + Retry-After: the body budget cannot hold this request. */
static enum MHD_Result answer_busy(struct zw_wh_server *s, struct MHD_Connection *c,
                                   struct request *rq)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	static const char msg[] = "request bodies in progress use the whole budget; retry\n";

	rq->refused = 1;
	zw_wh_metrics_add(s->cfg.metrics, ZW_C_BUDGET_REJECTS, 1);
	zw_log(ZW_LOG_DEBUG, "review_refused_budget", "reserved=%zu budget=%zu",
	       zw_budget_used(&s->budget), s->budget.cap);
	r = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
	MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, RETRY_AFTER);
	ret = MHD_queue_response(c, MHD_HTTP_SERVICE_UNAVAILABLE, r);
	MHD_destroy_response(r);
	return ret;
}

/* Appends upload data, discarding what is over the limit. The buffer is
 * sized to the reservation made for a declared Content-Length (one
 * allocation, no copies); a body of unknown length grows by doubling, each
 * step reserved first. Returns 0, -EAGAIN (budget) or -ENOMEM. */
static int request_append(struct zw_wh_server *s, struct request *rq, const char *data, size_t n)
{
	struct zw_buf *b = &rq->body;

	rq->seen += n;
	if (rq->too_large || b->len + n > s->cfg.max_body) {
		rq->too_large = 1;
		return 0;
	}
	if (b->len + n + 1 > b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : (rq->reserved ? rq->reserved : 16384);
		while (ncap < b->len + n + 1)
			ncap *= 2;
		if (ncap > s->cfg.max_body + 1)
			ncap = s->cfg.max_body + 1;
		if (ncap > rq->reserved && request_reserve(s, rq, ncap - rq->reserved) < 0)
			return -EAGAIN;
		if (zw_buf_reserve(b, ncap, s->cfg.max_body) < 0)
			return -ENOMEM;
	}
	return zw_buf_append(b, data, n, s->cfg.max_body) < 0 ? -ENOMEM : 0;
}

static enum MHD_Result handle_get(struct zw_wh_server *s, struct MHD_Connection *c, const char *url)
{
	if (strcmp(url, "/healthz") == 0)
		return send_static(c, MHD_HTTP_OK, "ok\n", "text/plain");
	if (strcmp(url, "/readyz") == 0) {
		if (!s->cfg.ready || s->cfg.ready(s->cfg.arg))
			return send_static(c, MHD_HTTP_OK, "ready\n", "text/plain");
		return send_static(c, MHD_HTTP_SERVICE_UNAVAILABLE,
		                   "not ready: target sources not synced yet\n", "text/plain");
	}
	if (strcmp(url, "/metrics") == 0) {
		char *text;
		size_t len;
		if (s->cfg.before_metrics)
			s->cfg.before_metrics(s->cfg.arg);
		if (zw_wh_metrics_render(s->cfg.metrics, &text, &len) < 0)
			return send_static(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n",
			                   "text/plain");
		return zw_wh_server_send_owned(c, MHD_HTTP_OK, text, len,
		                               "text/plain; version=0.0.4");
	}
	if (strcmp(url, "/mutate") == 0)
		return send_static(c, MHD_HTTP_METHOD_NOT_ALLOWED, "use POST\n", "text/plain");
	return send_static(c, MHD_HTTP_NOT_FOUND, "not found\n", "text/plain");
}

/* Answers everything but POST /mutate once its request is complete. */
static enum MHD_Result handle_other(struct zw_wh_server *s, struct MHD_Connection *c,
                                    const char *url, const char *method)
{
	if (strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0)
		return handle_get(s, c, url);
	if (strcmp(method, MHD_HTTP_METHOD_POST) == 0)
		return send_static(c, MHD_HTTP_NOT_FOUND, "not found\n", "text/plain");
	return send_static(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n", "text/plain");
}

/* Access handler. Every request is answered only once it has been read
 * completely (MHD closes the connection when a response is queued earlier),
 * except a declared body far over the limit, which is refused at once. */
static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
	struct zw_wh_server *s = cls;
	struct request *rq = *con_cls;

	(void)version;
	if (!rq) {
		rq = calloc(1, sizeof(*rq));
		if (!rq)
			return MHD_NO;
		clock_gettime(CLOCK_MONOTONIC, &rq->start);
		rq->is_review =
		        strcmp(method, MHD_HTTP_METHOD_POST) == 0 && strcmp(url, "/mutate") == 0;
		*con_cls = rq;
		conn_phase(s, c, ZW_CONN_READING);
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
		if (rq->is_review && cl) {
			char *end;
			errno = 0;
			unsigned long long v = strtoull(cl, &end, 10);
			if (errno == 0 && *end == '\0' && v > s->cfg.max_body + DRAIN_SLACK) {
				rq->seen = (size_t)v;
				rq->too_large = 1;
				return answer_too_large(s, c, rq);
			}
			if (errno == 0 && *end == '\0' && v > 0 && v <= s->cfg.max_body &&
			    request_reserve(s, rq, (size_t)v + 1) < 0)
				return answer_busy(s, c, rq);
		}
		return MHD_YES;
	}
	if (rq->refused) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		if (!rq->is_review) {
			/* Bodies of other requests are read and dropped, bounded. */
			rq->seen += *upload_data_size;
			*upload_data_size = 0;
			if (rq->seen > DRAIN_SLACK)
				return send_static(c, MHD_HTTP_CONTENT_TOO_LARGE,
				                   "request body too large\n", "text/plain");
			return MHD_YES;
		}
		int rc = request_append(s, rq, upload_data, *upload_data_size);
		*upload_data_size = 0;
		if (rc == -EAGAIN)
			return answer_busy(s, c, rq);
		if (rc < 0)
			return MHD_NO;
		if (rq->too_large && rq->seen > s->cfg.max_body + DRAIN_SLACK)
			return answer_too_large(s, c, rq);
		return MHD_YES;
	}
	conn_phase(s, c, ZW_CONN_BUSY);
	if (!rq->is_review)
		return handle_other(s, c, url, method);
	if (rq->too_large)
		return answer_too_large(s, c, rq);
	return answer_review(s, c, rq);
}

static void request_done(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct zw_wh_server *s = cls;
	struct request *rq = *con_cls;

	(void)toe;
	if (!rq)
		return;
	conn_phase(s, c, ZW_CONN_IDLE);
	if (rq->reserved > 0) {
		zw_budget_give(&s->budget, rq->reserved);
		zw_wh_metrics_gauge_add(s->cfg.metrics, ZW_G_BODY_BYTES, -(int64_t)rq->reserved);
	}
	zw_buf_free(&rq->body);
	free(rq);
	*con_cls = NULL;
}

/* Parses the listen address (lib/addr.h rules: "host:port", ":port",
 * "[v6]:port", port 0 allowed) into a socket address. */
int zw_wh_server_parse_listen(const char *listen, struct sockaddr_storage *ss, int *v6)
{
	if (zw_addr_parse(listen, ZW_ADDR_LISTEN, -1, ss) < 0)
		return -EINVAL;
	*v6 = ss->ss_family == AF_INET6;
	return 0;
}

/* Frees what start made besides the daemon and the certificates: the
 * held bundles array, the connection table, the locks, and s itself. */
static void server_free(struct zw_wh_server *s)
{
	free(s->held);
	zw_conntab_free(&s->conns);
	pthread_cond_destroy(&s->stop_cond);
	pthread_cond_destroy(&s->work_cond);
	pthread_mutex_destroy(&s->work_lock);
	pthread_mutex_destroy(&s->conn_lock);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

int zw_wh_server_start(const struct zw_wh_server_config *cfg, struct zw_wh_server **out,
                       char err[ZW_WH_SERVER_ERRLEN])
{
	struct zw_wh_server *s = NULL;
	struct sockaddr_storage ss;
	const union MHD_DaemonInfo *di;
	unsigned flags;
	int v6 = 0, rc;

	err[0] = '\0';
	if (!cfg->review || (!cfg->cert_file) != (!cfg->key_file) ||
	    (!cfg->cert_file && (!cfg->cert_pem || !cfg->key_pem))) {
		snprintf(err, ZW_WH_SERVER_ERRLEN,
		         "certificate and key (files or PEM) and review handler are required");
		return -EINVAL;
	}
	if (zw_wh_server_parse_listen(cfg->listen, &ss, &v6) < 0) {
		snprintf(err, ZW_WH_SERVER_ERRLEN,
		         "bad listen address \"%s\" (want host:port, :port or [v6]:port)",
		         cfg->listen ? cfg->listen : "");
		return -EINVAL;
	}
	if (MHD_is_feature_supported(MHD_FEATURE_HTTPS_CERT_CALLBACK) != MHD_YES) {
		snprintf(err, ZW_WH_SERVER_ERRLEN,
		         "libmicrohttpd lacks the TLS certificate callback");
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->cfg = *cfg;
	if (s->cfg.max_body == 0)
		s->cfg.max_body = ZW_WH_SERVER_DEFAULT_MAX_BODY;
	if (s->cfg.max_connections == 0)
		s->cfg.max_connections = ZW_WH_SERVER_DEFAULT_MAX_CONN;
	if (s->cfg.threads == 0)
		s->cfg.threads = ZW_WH_SERVER_DEFAULT_THREADS;
	if (s->cfg.idle_timeout_s == 0)
		s->cfg.idle_timeout_s = ZW_WH_SERVER_DEFAULT_TIMEOUT;
	if (s->cfg.read_timeout_s == 0)
		s->cfg.read_timeout_s = ZW_WH_SERVER_DEFAULT_READ_TO;
	if (s->cfg.body_budget == 0)
		s->cfg.body_budget = ZW_WH_SERVER_DEFAULT_BUDGET;
	if (s->cfg.body_budget < s->cfg.max_body + 1)
		s->cfg.body_budget = s->cfg.max_body + 1; /* one full-size review always fits */
	zw_budget_init(&s->budget, s->cfg.body_budget);
	zw_budget_init(&s->work, review_memory(s->cfg.max_body));
	if (s->cfg.reload_interval_ms == 0)
		s->cfg.reload_interval_ms = ZW_WH_SERVER_DEFAULT_RELOAD;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->conn_lock, NULL);
	pthread_mutex_init(&s->work_lock, NULL);
	{
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&s->stop_cond, &ca);
		pthread_cond_init(&s->work_cond, &ca);
		pthread_condattr_destroy(&ca);
	}
	/* MHD may hold twice the limit (it splits its own limit between worker
	 * threads unevenly); the table brings it back to the limit at once. */
	s->cap_held = 2 * (size_t)s->cfg.max_connections + 64;
	s->held = calloc(s->cap_held, sizeof(*s->held));
	if (!s->held || zw_conntab_init(&s->conns, s->cap_held) < 0) {
		rc = -ENOMEM;
		goto fail;
	}
	gnutls_global_init();
	if (s->cfg.cert_file) {
		rc = bundle_load(s->cfg.cert_file, s->cfg.key_file, &s->current, &s->cert_id,
		                 &s->key_id, err, ZW_WH_SERVER_ERRLEN);
	} else {
		gnutls_datum_t c = {(unsigned char *)s->cfg.cert_pem,
		                    (unsigned)strlen(s->cfg.cert_pem)};
		gnutls_datum_t k = {(unsigned char *)s->cfg.key_pem,
		                    (unsigned)strlen(s->cfg.key_pem)};
		rc = bundle_parse(&c, &k, "(memory)", &s->current, err, ZW_WH_SERVER_ERRLEN);
	}
	s->cfg.cert_pem = s->cfg.key_pem = NULL; /* not kept: the caller may free them */
	if (rc < 0)
		goto fail_tls;
	zw_wh_metrics_set(s->cfg.metrics, ZW_G_CERT_EXPIRY, bundle_expiry(s->current));
	pthread_mutex_lock(&the_server_lock);
	if (the_server) {
		pthread_mutex_unlock(&the_server_lock);
		snprintf(err, ZW_WH_SERVER_ERRLEN, "a server already runs in this process");
		rc = -EBUSY;
		goto fail_tls;
	}
	the_server = s;
	pthread_mutex_unlock(&the_server_lock);

	flags = MHD_USE_TLS | MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
	if (v6)
		flags |= MHD_USE_IPv6;
	s->daemon = MHD_start_daemon(
	        flags, 0, NULL, NULL, handle, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	        MHD_OPTION_HTTPS_CERT_CALLBACK, cert_callback, MHD_OPTION_HTTPS_PRIORITIES,
	        TLS_PRIORITIES, MHD_OPTION_THREAD_POOL_SIZE, s->cfg.threads,
	        MHD_OPTION_CONNECTION_LIMIT, 2 * s->cfg.max_connections,
	        MHD_OPTION_PER_IP_CONNECTION_LIMIT, s->cfg.max_per_ip,
	        MHD_OPTION_CONNECTION_TIMEOUT, s->cfg.idle_timeout_s, MHD_OPTION_NOTIFY_COMPLETED,
	        request_done, s, MHD_OPTION_NOTIFY_CONNECTION, notify_connection, s,
	        MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, s, MHD_OPTION_END);
	if (!s->daemon) {
		snprintf(err, ZW_WH_SERVER_ERRLEN,
		         "cannot listen on %s (address in use or not local)", cfg->listen);
		rc = -EADDRINUSE;
		goto fail_owner;
	}
	di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
	s->port = di ? di->port : 0;
	if (pthread_create(&s->reload_thread, NULL, reload_main, s) != 0) {
		snprintf(err, ZW_WH_SERVER_ERRLEN, "cannot start certificate reload thread");
		rc = -ENOMEM;
		goto fail_owner;
	}
	s->reload_started = 1;
	*out = s;
	return 0;

fail_owner:
	if (s->daemon)
		MHD_stop_daemon(s->daemon);
	pthread_mutex_lock(&the_server_lock);
	the_server = NULL;
	pthread_mutex_unlock(&the_server_lock);
fail_tls:
	bundle_unref(s->current);
	gnutls_global_deinit();
fail:
	server_free(s);
	return rc;
}

int zw_wh_server_port(const struct zw_wh_server *s)
{
	return s->port;
}

void zw_wh_server_stop(struct zw_wh_server *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->stopping = 1;
	pthread_cond_broadcast(&s->stop_cond);
	pthread_mutex_unlock(&s->lock);
	if (s->reload_started)
		pthread_join(s->reload_thread, NULL);
	MHD_stop_daemon(s->daemon);
	pthread_mutex_lock(&the_server_lock);
	the_server = NULL;
	pthread_mutex_unlock(&the_server_lock);
	for (size_t i = 0; i < s->n_held; i++)
		bundle_unref(s->held[i].bundle);
	bundle_unref(s->current);
	gnutls_global_deinit();
	server_free(s);
}
