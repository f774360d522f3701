/* zerowire-proxy TLS server and client sessions over memory (see tls.h). */
#include "tls.h"

#include "buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define DEFAULT_LIMIT (64u * 1024)
#define MAX_NON_FATAL 16 /* warning alerts etc. per feed before the session fails */

/* A byte queue: bytes [off, b.len) of b are waiting. */
struct queue {
	struct zw_buf b;
	size_t off;
};

struct zw_tls {
	gnutls_session_t session;
	struct zw_certstore *store;
	struct zw_cert *cert; /* our reference, once chosen */
	struct zw_tls_limits lim;
	size_t push_cap; /* hard cap of the output queue (a handshake flight may exceed max_out) */
	struct queue in, out;
	struct zw_buf plain;
	size_t plain_off;
	enum zw_tls_state state;
	enum zw_tls_alpn alpn;
	bool shut;
	bool client;        /* a client session (zw_tls_new_client) */
	bool verify_failed; /* the peer's certificate did not verify */
	char sni[256];
	char err[ZW_TLS_ERRLEN];
};

static size_t queue_len(const struct queue *q)
{
	return q->b.len - q->off;
}

/* Drops n bytes from the front; compacts when the dead prefix dominates. */
static void queue_drop(struct queue *q, size_t n)
{
	q->off += n;
	if (q->off == q->b.len) {
		q->off = 0;
		q->b.len = 0;
	} else if (q->off > q->b.len / 2) {
		memmove(q->b.data, q->b.data + q->off, q->b.len - q->off);
		q->b.len -= q->off;
		q->off = 0;
	}
	if (q->b.data)
		q->b.data[q->b.len] = '\0';
}

static ssize_t pull_fn(gnutls_transport_ptr_t ptr, void *data, size_t size)
{
	struct zw_tls *t = ptr;
	size_t n = queue_len(&t->in);
	if (n == 0) {
		gnutls_transport_set_errno(t->session, EAGAIN);
		return -1;
	}
	if (n > size)
		n = size;
	memcpy(data, t->in.b.data + t->in.off, n);
	queue_drop(&t->in, n);
	return (ssize_t)n;
}

static ssize_t push_fn(gnutls_transport_ptr_t ptr, const void *data, size_t size)
{
	struct zw_tls *t = ptr;
	if (t->out.off)
		queue_drop(&t->out, 0);
	if (zw_buf_append(&t->out.b, data, size, t->push_cap + t->out.off) != 0) {
		gnutls_transport_set_errno(t->session, ENOBUFS);
		return -1;
	}
	return (ssize_t)size;
}

static void set_error(struct zw_tls *t, int r)
{
	if (r == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
		gnutls_datum_t why = {NULL, 0};
		unsigned status = gnutls_session_get_verify_cert_status(t->session);
		t->verify_failed = true;
		if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &why,
		                                                 0) == 0) {
			snprintf(t->err, sizeof(t->err), "certificate verification failed: %s",
			         (const char *)why.data);
			gnutls_free(why.data);
			return;
		}
	}
	if (r == GNUTLS_E_FATAL_ALERT_RECEIVED || r == GNUTLS_E_WARNING_ALERT_RECEIVED)
		snprintf(t->err, sizeof(t->err), "%s: %s", gnutls_strerror(r),
		         gnutls_alert_get_name(gnutls_alert_get(t->session)));
	else
		snprintf(t->err, sizeof(t->err), "%s", gnutls_strerror(r));
}

/* Ends the session on a fatal GnuTLS error r, queueing the alert it calls
 * for (unless the peer sent one). */
static void fail(struct zw_tls *t, int r)
{
	set_error(t, r);
	if (r != GNUTLS_E_FATAL_ALERT_RECEIVED && r != GNUTLS_E_PUSH_ERROR)
		(void)gnutls_alert_send_appropriate(t->session, r);
	t->state = ZW_TLS_FAILED;
}

/* Post-ClientHello hook: chooses the certificate by SNI. */
static int on_client_hello(gnutls_session_t session)
{
	struct zw_tls *t = gnutls_session_get_ptr(session);
	char name[256];
	size_t sz = sizeof(name);
	unsigned type = 0;

	t->sni[0] = '\0';
	if (gnutls_server_name_get(session, name, &sz, &type, 0) == 0 && type == GNUTLS_NAME_DNS &&
	    sz < sizeof(name)) {
		name[sz] = '\0';
		snprintf(t->sni, sizeof(t->sni), "%s", name);
	}
	struct zw_cert *c = zw_certstore_lookup(t->store, t->sni);
	if (!c)
		return GNUTLS_E_UNRECOGNIZED_NAME;
	zw_cert_unref(t->cert); /* a second ClientHello (HelloRetryRequest) */
	t->cert = c;
	int r = gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, zw_cert_credentials(c));
	return r < 0 ? r : 0;
}

static void run(struct zw_tls *t);

static const gnutls_datum_t protos[] = {
        {(unsigned char *)"h2", 2},
        {(unsigned char *)"http/1.1", 8},
};

/* Allocates a session of `flags` (GNUTLS_SERVER or GNUTLS_CLIENT) with
 * limits lim (may be NULL) and the common policy and transport. Returns it
 * or NULL. */
static struct zw_tls *session_new(unsigned flags, const struct zw_tls_limits *lim)
{
	struct zw_tls *t = NULL;
	const char *pos = NULL;

	if (lim && lim->max_in && lim->max_in < ZW_TLS_MIN_IN)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	if (lim)
		t->lim = *lim;
	if (!t->lim.max_in)
		t->lim.max_in = DEFAULT_LIMIT;
	if (!t->lim.max_plain)
		t->lim.max_plain = DEFAULT_LIMIT;
	if (!t->lim.max_out)
		t->lim.max_out = DEFAULT_LIMIT;
	/* A write adds at most one record beyond max_out; a handshake flight
	 * carries the certificate chain. */
	t->push_cap = t->lim.max_out + ZW_CERTSTORE_MAX_PEM + 2 * ZW_TLS_MIN_IN;
	if (gnutls_init(&t->session, flags | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL) < 0) {
		t->session = NULL;
		goto fail;
	}
	if (gnutls_priority_set_direct(t->session, ZW_TLS_PRIORITY, &pos) < 0)
		goto fail;
	gnutls_session_set_ptr(t->session, t);
	gnutls_transport_set_ptr(t->session, t);
	gnutls_transport_set_push_function(t->session, push_fn);
	gnutls_transport_set_pull_function(t->session, pull_fn);
	return t;
fail:
	zw_tls_free(t);
	return NULL;
}

int zw_tls_new(struct zw_certstore *store, const struct zw_tls_limits *lim, struct zw_tls **out)
{
	*out = NULL;
	if (!store)
		return -1;
	struct zw_tls *t = session_new(GNUTLS_SERVER, lim);
	if (!t)
		return -1;
	t->store = store;
	if (gnutls_alpn_set_protocols(t->session, protos, 2, GNUTLS_ALPN_SERVER_PRECEDENCE) < 0) {
		zw_tls_free(t);
		return -1;
	}
	gnutls_handshake_set_post_client_hello_function(t->session, on_client_hello);
	*out = t;
	return 0;
}

struct zw_tls_client {
	gnutls_certificate_credentials_t creds;
	bool verify;
};

int zw_tls_client_new(const char *ca_file, bool system, struct zw_tls_client **out, char *err,
                      size_t errlen)
{
	struct zw_tls_client *c = calloc(1, sizeof(*c));
	int r;

	*out = NULL;
	err[0] = '\0';
	if (!c || gnutls_certificate_allocate_credentials(&c->creds) < 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (system) {
		r = gnutls_certificate_set_x509_system_trust(c->creds);
		if (r <= 0) {
			snprintf(err, errlen, "system trust store: %s",
			         r == 0 ? "no certificate found" : gnutls_strerror(r));
			goto fail;
		}
		c->verify = true;
	}
	if (ca_file && *ca_file) {
		r = gnutls_certificate_set_x509_trust_file(c->creds, ca_file, GNUTLS_X509_FMT_PEM);
		if (r <= 0) {
			snprintf(err, errlen, "%s: %s", ca_file,
			         r == 0 ? "no PEM certificate in it" : gnutls_strerror(r));
			goto fail;
		}
		c->verify = true;
	}
	*out = c;
	return 0;
fail:
	zw_tls_client_free(c);
	return -1;
}

void zw_tls_client_free(struct zw_tls_client *c)
{
	if (!c)
		return;
	if (c->creds)
		gnutls_certificate_free_credentials(c->creds);
	free(c);
}

bool zw_tls_client_verifies(const struct zw_tls_client *c)
{
	return c->verify;
}

/* Whether name is an IPv4 or IPv6 literal (never sent as SNI). */
static bool is_ip_literal(const char *name)
{
	return strspn(name, "0123456789.") == strlen(name) || strchr(name, ':');
}

int zw_tls_new_client(const struct zw_tls_client *c, const char *server_name, enum zw_tls_alpn alpn,
                      const struct zw_tls_limits *lim, struct zw_tls **out)
{
	*out = NULL;
	if (!c || !server_name || strlen(server_name) >= sizeof(((struct zw_tls *)0)->sni))
		return -1;
	struct zw_tls *t = session_new(GNUTLS_CLIENT, lim);
	if (!t)
		return -1;
	t->client = true;
	snprintf(t->sni, sizeof(t->sni), "%s", server_name);
	if (gnutls_credentials_set(t->session, GNUTLS_CRD_CERTIFICATE, c->creds) < 0)
		goto fail;
	if (*server_name && !is_ip_literal(server_name) &&
	    gnutls_server_name_set(t->session, GNUTLS_NAME_DNS, server_name, strlen(server_name)) <
	            0)
		goto fail;
	if (alpn != ZW_TLS_ALPN_NONE &&
	    gnutls_alpn_set_protocols(t->session, alpn == ZW_TLS_ALPN_H2 ? &protos[0] : &protos[1],
	                              1, 0) < 0)
		goto fail;
	if (c->verify)
		gnutls_session_set_verify_cert(t->session, *t->sni ? t->sni : NULL, 0);
	run(t); /* the ClientHello */
	if (t->state == ZW_TLS_FAILED)
		goto fail;
	*out = t;
	return 0;
fail:
	zw_tls_free(t);
	return -1;
}

void zw_tls_free(struct zw_tls *t)
{
	if (!t)
		return;
	if (t->session)
		gnutls_deinit(t->session);
	zw_cert_unref(t->cert);
	zw_buf_free(&t->in.b);
	zw_buf_free(&t->out.b);
	zw_buf_free(&t->plain);
	free(t);
}

static void handshake_done(struct zw_tls *t)
{
	gnutls_datum_t p;
	t->state = ZW_TLS_OPEN;
	t->alpn = ZW_TLS_ALPN_NONE;
	if (gnutls_alpn_get_selected_protocol(t->session, &p) == 0) {
		if (p.size == 2 && memcmp(p.data, "h2", 2) == 0)
			t->alpn = ZW_TLS_ALPN_H2;
		else if (p.size == 8 && memcmp(p.data, "http/1.1", 8) == 0)
			t->alpn = ZW_TLS_ALPN_HTTP11;
	}
}

/* Handles a non-fatal result r of a handshake or receive step; counts them
 * so that a peer cannot keep the loop busy without sending data (warning
 * alerts) and refuses renegotiation. */
static void non_fatal(struct zw_tls *t, int r, int *budget)
{
	if (r == GNUTLS_E_REHANDSHAKE) {
		/* A TLS 1.2 client asks to renegotiate (a CPU-cost lever, never
		 * needed here): end the session, as nginx does. */
		snprintf(t->err, sizeof(t->err), "%s",
		         t->client ? "renegotiation refused"
		                   : "client-initiated renegotiation refused");
		(void)gnutls_alert_send(t->session, GNUTLS_AL_FATAL, GNUTLS_A_HANDSHAKE_FAILURE);
		t->state = ZW_TLS_FAILED;
	} else if (--*budget <= 0) {
		snprintf(t->err, sizeof(t->err), "too many warning alerts in one read");
		(void)gnutls_alert_send(t->session, GNUTLS_AL_FATAL, GNUTLS_A_UNEXPECTED_MESSAGE);
		t->state = ZW_TLS_FAILED;
	}
}

/* Runs the handshake, then decrypts records while plaintext has room. */
static void run(struct zw_tls *t)
{
	int r, budget = MAX_NON_FATAL;
	while (t->state == ZW_TLS_HANDSHAKE) {
		r = gnutls_handshake(t->session);
		if (r == 0)
			handshake_done(t);
		else if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
			return;
		else if (gnutls_error_is_fatal(r))
			fail(t, r);
		else
			non_fatal(t, r, &budget);
	}
	if (t->plain_off && t->plain_off == t->plain.len)
		t->plain_off = t->plain.len = 0;
	while (t->state == ZW_TLS_OPEN && t->plain.len - t->plain_off < t->lim.max_plain) {
		if (t->plain_off) { /* compact before growing */
			memmove(t->plain.data, t->plain.data + t->plain_off,
			        t->plain.len - t->plain_off);
			t->plain.len -= t->plain_off;
			t->plain_off = 0;
		}
		size_t room;
		if (zw_buf_grow(&t->plain, t->lim.max_plain, &room) != 0)
			return;
		r = (int)gnutls_record_recv(t->session, t->plain.data + t->plain.len, room);
		if (r > 0)
			zw_buf_commit(&t->plain, (size_t)r);
		else if (r == 0)
			t->state = ZW_TLS_PEER_CLOSED;
		else if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
			/* A post-handshake message (a TLS 1.3 session ticket)
			 * ends the call with records still queued behind it. */
			if (!queue_len(&t->in) || --budget <= 0)
				return;
		} else if (gnutls_error_is_fatal(r))
			fail(t, r);
		else
			non_fatal(t, r, &budget);
	}
}

enum zw_tls_state zw_tls_feed(struct zw_tls *t, const void *p, size_t n, size_t *used)
{
	size_t have = queue_len(&t->in);
	size_t take = have >= t->lim.max_in ? 0 : t->lim.max_in - have;
	*used = 0;
	if (t->state == ZW_TLS_FAILED || t->state == ZW_TLS_PEER_CLOSED)
		return t->state;
	if (take > n)
		take = n;
	if (t->in.off)
		queue_drop(&t->in, 0);
	if (take && zw_buf_append(&t->in.b, p, take, t->lim.max_in + t->in.off) != 0) {
		snprintf(t->err, sizeof(t->err), "out of memory");
		t->state = ZW_TLS_FAILED;
		return t->state;
	}
	*used = take;
	run(t);
	return t->state;
}

size_t zw_tls_in_room(const struct zw_tls *t)
{
	size_t have = queue_len(&t->in);
	if ((t->state != ZW_TLS_HANDSHAKE && t->state != ZW_TLS_OPEN) || have >= t->lim.max_in)
		return 0;
	return t->lim.max_in - have;
}

bool zw_tls_want_read(const struct zw_tls *t)
{
	return zw_tls_in_room(t) > 0;
}

const void *zw_tls_plain(const struct zw_tls *t, size_t *len)
{
	*len = t->plain.len - t->plain_off;
	return *len ? t->plain.data + t->plain_off : NULL;
}

enum zw_tls_state zw_tls_plain_consume(struct zw_tls *t, size_t n)
{
	size_t have = t->plain.len - t->plain_off;
	t->plain_off += n > have ? have : n;
	run(t);
	return t->state;
}

enum zw_tls_state zw_tls_write(struct zw_tls *t, const void *p, size_t n, size_t *used)
{
	size_t off = 0;
	*used = 0;
	if (t->shut || (t->state != ZW_TLS_OPEN && t->state != ZW_TLS_PEER_CLOSED))
		return t->state;
	while (off < n && queue_len(&t->out) < t->lim.max_out) {
		size_t chunk = n - off > ZW_TLS_RECORD ? ZW_TLS_RECORD : n - off;
		ssize_t r = gnutls_record_send(t->session, (const char *)p + off, chunk);
		if (r < 0) {
			fail(t, (int)r);
			break;
		}
		off += (size_t)r;
	}
	*used = off;
	return t->state;
}

const void *zw_tls_pending(const struct zw_tls *t, size_t *len)
{
	*len = queue_len(&t->out);
	return *len ? t->out.b.data + t->out.off : NULL;
}

void zw_tls_sent(struct zw_tls *t, size_t n)
{
	size_t have = queue_len(&t->out);
	queue_drop(&t->out, n > have ? have : n);
}

enum zw_tls_state zw_tls_shutdown(struct zw_tls *t)
{
	if (t->shut || (t->state != ZW_TLS_OPEN && t->state != ZW_TLS_PEER_CLOSED))
		return t->state;
	t->shut = true;
	int r = gnutls_bye(t->session, GNUTLS_SHUT_WR);
	if (r < 0 && gnutls_error_is_fatal(r))
		fail(t, r);
	return t->state;
}

enum zw_tls_state zw_tls_get_state(const struct zw_tls *t)
{
	return t->state;
}

enum zw_tls_alpn zw_tls_alpn(const struct zw_tls *t)
{
	return t->alpn;
}

const char *zw_tls_sni(const struct zw_tls *t)
{
	return t->sni;
}

const struct zw_cert *zw_tls_cert(const struct zw_tls *t)
{
	return t->cert;
}

int zw_tls_version(const struct zw_tls *t)
{
	if (t->state == ZW_TLS_HANDSHAKE)
		return 0;
	switch (gnutls_protocol_get_version(t->session)) {
	case GNUTLS_TLS1_3:
		return 13;
	case GNUTLS_TLS1_2:
		return 12;
	default:
		return 0;
	}
}

const char *zw_tls_error(const struct zw_tls *t)
{
	return t->err;
}

bool zw_tls_verify_failed(const struct zw_tls *t)
{
	return t->verify_failed;
}
