/* zerowire proxy replicas: counter polling and cold fan-out (peers.h). */
#include "peers.h"

#include "addr.h"
#include "http1.h"
#include "list.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum preq_kind {
	PREQ_POLL = 0,
	PREQ_COLD,
};

struct peer {
	char addr[ZW_PEERS_ADDR_MAX];
	struct sockaddr_storage sa;
	struct preq *poll; /* in flight, or NULL */
	char instance[ZW_PEERS_INSTANCE_LEN + 1];
	json_t *counts; /* "targets" of the latest good answer */
	bool ok;        /* latest poll succeeded */
	bool self;
};

struct preq {
	struct zw_peers *owner;
	struct preq *prev, *next;
	struct peer *peer; /* PREQ_POLL only; NULL once the peer is dropped */
	enum preq_kind kind;
	uv_tcp_t tcp;
	uv_connect_t connect;
	uv_write_t write;
	uv_timer_t timer;
	int open_handles;
	bool finished;
	char *out;
	size_t out_len;
	char *in;
	size_t in_len, in_cap;
};

struct zw_peers {
	uv_loop_t *loop;
	struct zw_peers_config cfg;
	struct zw_stats *stats;
	uv_timer_t poll_timer;
	struct peer **peers;
	size_t n_peers;
	struct preq *reqs;
	size_t n_cold;
	char instance[ZW_PEERS_INSTANCE_LEN + 1];
	uint64_t started_ms;
	struct zw_peers_stats st;
	bool closing;
	int open_handles;
	void (*done)(void *arg);
	void *done_arg;
};

void zw_peers_config_default(struct zw_peers_config *c)
{
	c->poll_ms = 500;
	c->timeout_ms = 200;
	c->default_port = 9091;
	c->max_peers = 64;
	c->fresh_ms = 5000;
	c->auth = NULL;
	c->known = NULL;
	c->known_arg = NULL;
}

static void peer_free(struct peer *pe)
{
	if (!pe)
		return;
	if (pe->poll)
		pe->poll->peer = NULL;
	json_decref(pe->counts);
	free(pe);
}

/* Parses "ip", "ip:port", "[v6]:port" or a bare IPv6 literal (lib/addr.h
 * rules, port 1..65535, default_port when absent) into sa. Returns 0 or
 * -EINVAL. */
static int parse_addr(const char *addr, int default_port, struct sockaddr_storage *sa)
{
	if (strlen(addr) >= ZW_PEERS_ADDR_MAX)
		return -EINVAL;
	return zw_addr_parse(addr, ZW_ADDR_PORT_OPTIONAL, default_port, sa);
}

static void peers_maybe_done(struct zw_peers *p);

static void on_req_closed(uv_handle_t *h)
{
	struct preq *r = h->data;
	struct zw_peers *p = r->owner;

	if (--r->open_handles > 0)
		return;
	ZW_LIST_UNLINK(p->reqs, r);
	if (r->kind == PREQ_COLD)
		p->n_cold--;
	if (r->out)
		explicit_bzero(r->out, r->out_len); /* it carries the token */
	free(r->out);
	free(r->in);
	free(r);
	if (p->closing)
		peers_maybe_done(p);
}

/* Parses the answer so far with the data path's llhttp parser (http1.h):
 * returns the status (or -1: no complete head yet, bad framing), points
 * *body at the body (up to Content-Length, or all that came) and sets
 * *complete once the body is whole. */
static int http_parse(struct preq *r, const char **body, size_t *body_len, bool *complete)
{
	static const struct zw_http_limits limits = {
	        .max_head_bytes = 16384, .max_headers = 64, .max_request_line = 1024};
	struct zw_http_head h;
	llhttp_t parser;
	size_t used = 0, bused = 0;
	int status = -1, bs;

	*complete = false;
	zw_http_head_init(&h, &limits);
	zw_http_parser_init(&parser, HTTP_RESPONSE, &h);
	if (zw_http_head_execute(&parser, &h, r->in, r->in_len, &used) == ZW_HTTP_HEAD_DONE &&
	    (bs = zw_http_body_execute(&parser, r->in + used, r->in_len - used, &bused)) >= 0) {
		status = parser.status_code;
		*body = r->in + used;
		*body_len = bused;
		*complete = bs == ZW_BODY_DONE;
	}
	zw_http_head_free(&h);
	return status;
}

/* Counts a good poll answer into the window and keeps it. */
static void poll_apply(struct zw_peers *p, struct peer *pe, const char *body, size_t len)
{
	json_t *doc = json_loadb(body, len, 0, NULL);
	json_t *targets, *v, *old, *kept = NULL;
	const char *inst, *key;
	bool first, full_all;
	json_int_t uptime;
	uint64_t now = uv_now(p->loop);

	targets = json_object_get(doc, "targets");
	inst = json_string_value(json_object_get(doc, "instance"));
	if (!json_is_object(targets) || !inst || strlen(inst) != ZW_PEERS_INSTANCE_LEN) {
		p->st.poll_failures_total++;
		pe->ok = false;
		goto out;
	}
	if (strcmp(inst, p->instance) == 0) {
		pe->self = true;
		pe->ok = false;
		goto out;
	}
	uptime = json_integer_value(json_object_get(doc, "uptime_ms"));
	first = pe->instance[0] == 0;
	full_all = (first && uptime >= 0 && (uint64_t)uptime < p->cfg.fresh_ms) ||
	           (!first && strcmp(inst, pe->instance) != 0);
	kept = json_object();
	if (!kept) {
		p->st.poll_failures_total++;
		pe->ok = false;
		goto out;
	}
	json_object_foreach(targets, key, v)
	{
		json_int_t req = json_integer_value(json_object_get(v, "requests"));
		json_int_t prev;
		uint64_t delta;

		/* Keys this replica does not know are neither counted nor kept. */
		if (p->cfg.known && !p->cfg.known(p->cfg.known_arg, key))
			continue;
		json_object_set(kept, key, v);
		if (req <= 0)
			continue;
		old = full_all || first ? NULL : json_object_get(pe->counts, key);
		prev = json_integer_value(json_object_get(old, "requests"));
		if (full_all || (!first && !old) || req < prev)
			delta = (uint64_t)req;
		else if (first)
			delta = 0;
		else
			delta = (uint64_t)(req - prev);
		if (delta)
			zw_stats_add_remote(p->stats, key, delta, now);
	}
	snprintf(pe->instance, sizeof(pe->instance), "%s", inst);
	json_decref(pe->counts);
	pe->counts = kept;
	kept = NULL;
	pe->ok = true;
out:
	json_decref(kept);
	json_decref(doc);
}

static void req_finish(struct preq *r, bool ok)
{
	struct zw_peers *p = r->owner;
	const char *body = NULL;
	size_t body_len = 0;
	bool complete;
	int status;

	if (r->finished)
		return;
	r->finished = true;
	status = ok ? http_parse(r, &body, &body_len, &complete) : -1;
	if (status == 401 || status == 403)
		p->st.auth_rejected_total++;
	if (r->kind == PREQ_POLL) {
		struct peer *pe = r->peer;

		if (pe) {
			pe->poll = NULL;
			if (status == 200 && !p->closing) {
				poll_apply(p, pe, body, body_len);
			} else {
				pe->ok = false;
				p->st.poll_failures_total++;
			}
		}
	} else if (status < 200 || status > 299) {
		p->st.cold_failures_total++;
	}
	uv_timer_stop(&r->timer);
	uv_close((uv_handle_t *)&r->tcp, on_req_closed);
	uv_close((uv_handle_t *)&r->timer, on_req_closed);
}

static void on_req_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct preq *r = h->data;
	size_t want = suggested < 65536 ? 65536 : suggested;

	if (r->in_cap - r->in_len < 4096) {
		size_t cap = r->in_cap + want;
		char *n = cap <= ZW_PEERS_MAX_BODY + 4096 ? realloc(r->in, cap + 1) : NULL;

		if (!n) {
			*buf = uv_buf_init(NULL, 0);
			return;
		}
		r->in = n;
		r->in_cap = cap;
	}
	*buf = uv_buf_init(r->in + r->in_len, (unsigned)(r->in_cap - r->in_len));
}

static void on_req_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct preq *r = s->data;
	const char *body;
	size_t body_len;
	bool complete;

	(void)buf;
	if (r->finished)
		return;
	if (nread == UV_EOF) {
		req_finish(r, true);
		return;
	}
	if (nread < 0) {
		req_finish(r, false);
		return;
	}
	r->in_len += (size_t)nread;
	if (http_parse(r, &body, &body_len, &complete) >= 0 && complete)
		req_finish(r, true);
}

static void on_req_written(uv_write_t *w, int status)
{
	struct preq *r = w->data;

	if (r->finished)
		return;
	if (status < 0 || uv_read_start((uv_stream_t *)&r->tcp, on_req_alloc, on_req_read) < 0)
		req_finish(r, false);
}

static void on_req_connected(uv_connect_t *c, int status)
{
	struct preq *r = c->data;
	uv_buf_t b;

	if (r->finished)
		return;
	b = uv_buf_init(r->out, (unsigned)r->out_len);
	r->write.data = r;
	if (status < 0 || uv_write(&r->write, (uv_stream_t *)&r->tcp, &b, 1, on_req_written) < 0)
		req_finish(r, false);
}

static void on_req_timeout(uv_timer_t *t)
{
	req_finish(t->data, false);
}

/* Starts one HTTP exchange; the request text `out` is taken over. Returns
 * 0 or a negative errno (out freed). */
static int req_start(struct zw_peers *p, const struct sockaddr *sa, enum preq_kind kind,
                     struct peer *pe, char *out, size_t out_len)
{
	struct preq *r = calloc(1, sizeof(*r));
	int rc;

	if (!r) {
		free(out);
		return -ENOMEM;
	}
	r->owner = p;
	r->kind = kind;
	r->peer = pe;
	r->out = out;
	r->out_len = out_len;
	uv_tcp_init(p->loop, &r->tcp);
	uv_timer_init(p->loop, &r->timer);
	r->tcp.data = r;
	r->timer.data = r;
	r->connect.data = r;
	r->open_handles = 2;
	ZW_LIST_PUSH(p->reqs, r);
	if (kind == PREQ_COLD)
		p->n_cold++;
	if (pe)
		pe->poll = r;
	uv_timer_start(&r->timer, on_req_timeout, p->cfg.timeout_ms, 0);
	rc = uv_tcp_connect(&r->connect, &r->tcp, sa, on_req_connected);
	if (rc < 0) {
		/* Reported through the normal path so counters stay right. */
		req_finish(r, false);
	}
	return 0;
}

/* The Authorization header line peers send ("" without a token). buf must
 * hold ZW_AUTH_TOKEN_MAX + 32 bytes. */
static const char *auth_line(const struct zw_peers *p, char *buf, size_t len)
{
	const char *tok = zw_auth_token(p->cfg.auth);

	if (!tok || !*tok)
		return "";
	snprintf(buf, len, "Authorization: Bearer %s\r\n", tok);
	return buf;
}

static void poll_all(struct zw_peers *p)
{
	char authz[ZW_AUTH_TOKEN_MAX + 32];

	for (size_t i = 0; i < p->n_peers; i++) {
		struct peer *pe = p->peers[i];
		char *out;
		int n;

		if (pe->poll || pe->self)
			continue;
		n = asprintf(&out,
		             "GET /peer/counts HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n"
		             "%sUser-Agent: zerowire-proxy-peer\r\n\r\n",
		             pe->addr, auth_line(p, authz, sizeof(authz)));
		if (n < 0)
			continue;
		p->st.polls_total++;
		req_start(p, (const struct sockaddr *)&pe->sa, PREQ_POLL, pe, out, (size_t)n);
	}
}

static void on_poll_timer(uv_timer_t *t)
{
	poll_all(t->data);
}

int zw_peers_new(uv_loop_t *loop, const struct zw_peers_config *cfg, struct zw_stats *stats,
                 struct zw_peers **out)
{
	struct zw_peers *p = calloc(1, sizeof(*p));
	unsigned char rnd[ZW_PEERS_INSTANCE_LEN / 2];

	if (!p)
		return -ENOMEM;
	p->loop = loop;
	p->cfg = *cfg;
	p->stats = stats;
	if (uv_random(NULL, NULL, rnd, sizeof(rnd), 0, NULL) < 0) {
		uint64_t x = uv_hrtime() ^ (uint64_t)(uintptr_t)p;

		memcpy(rnd, &x, sizeof(rnd));
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(p->instance + 2 * i, 3, "%02x", rnd[i]);
	p->started_ms = uv_now(loop);
	uv_timer_init(loop, &p->poll_timer);
	p->poll_timer.data = p;
	p->open_handles = 1;
	if (p->cfg.poll_ms)
		uv_timer_start(&p->poll_timer, on_poll_timer, p->cfg.poll_ms, p->cfg.poll_ms);
	*out = p;
	return 0;
}

int zw_peers_set(struct zw_peers *p, const char *const *addrs, size_t n)
{
	struct peer **np;
	bool *kept;
	struct sockaddr_storage sa;

	if (n > p->cfg.max_peers)
		return -E2BIG;
	for (size_t i = 0; i < n; i++)
		if (strlen(addrs[i]) >= ZW_PEERS_ADDR_MAX ||
		    parse_addr(addrs[i], p->cfg.default_port, &sa) < 0)
			return -EINVAL;
	np = calloc(n ? n : 1, sizeof(*np));
	kept = calloc(p->n_peers ? p->n_peers : 1, sizeof(*kept));
	if (!np || !kept)
		goto fail;
	/* First the allocations, so that failing leaves the old list intact;
	 * kept[j] marks an old peer claimed by a new slot (np[i] NULL). */
	for (size_t i = 0; i < n; i++) {
		bool known = false;

		for (size_t j = 0; j < p->n_peers && !known; j++) {
			if (!kept[j] && strcmp(p->peers[j]->addr, addrs[i]) == 0) {
				kept[j] = true;
				known = true;
			}
		}
		if (known)
			continue;
		np[i] = calloc(1, sizeof(*np[i]));
		if (!np[i])
			goto fail;
		snprintf(np[i]->addr, sizeof(np[i]->addr), "%s", addrs[i]);
		parse_addr(addrs[i], p->cfg.default_port, &np[i]->sa);
	}
	memset(kept, 0, (p->n_peers ? p->n_peers : 1) * sizeof(*kept));
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < p->n_peers && !np[i]; j++) {
			if (!kept[j] && strcmp(p->peers[j]->addr, addrs[i]) == 0) {
				np[i] = p->peers[j];
				kept[j] = true;
			}
		}
	}
	for (size_t j = 0; j < p->n_peers; j++)
		if (!kept[j])
			peer_free(p->peers[j]);
	free(kept);
	free(p->peers);
	p->peers = np;
	p->n_peers = n;
	return 0;
fail:
	for (size_t i = 0; np && i < n; i++)
		free(np[i]);
	free(np);
	free(kept);
	return -ENOMEM;
}

const char *zw_peers_instance(const struct zw_peers *p)
{
	return p->instance;
}

/* Percent-encodes a query value into out (len >= 3 * strlen + 1). */
static void query_escape(const char *in, char *out)
{
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *q = (const unsigned char *)in; *q; q++) {
		if ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
		    (*q >= '0' && *q <= '9') || *q == '-' || *q == '_' || *q == '.' || *q == '~') {
			*out++ = (char)*q;
		} else {
			*out++ = '%';
			*out++ = hex[*q >> 4];
			*out++ = hex[*q & 15];
		}
	}
	*out = 0;
}

void zw_peers_cold(struct zw_peers *p, const char *key)
{
	char esc[3 * ZW_STATS_KEY_MAX + 1];
	char authz[ZW_AUTH_TOKEN_MAX + 32];

	if (p->closing || strlen(key) >= ZW_STATS_KEY_MAX)
		return;
	query_escape(key, esc);
	for (size_t i = 0; i < p->n_peers; i++) {
		struct peer *pe = p->peers[i];
		char *out;
		int n;

		if (pe->self)
			continue;
		if (p->n_cold >= ZW_PEERS_MAX_COLD) {
			p->st.cold_dropped_total++;
			continue;
		}
		n = asprintf(&out,
		             "POST /peer/cold?target=%s&from=%s HTTP/1.0\r\nHost: %s\r\n"
		             "Connection: close\r\nContent-Length: 0\r\n"
		             "%sUser-Agent: zerowire-proxy-peer\r\n\r\n",
		             esc, p->instance, pe->addr, auth_line(p, authz, sizeof(authz)));
		if (n < 0)
			continue;
		p->st.cold_sent_total++;
		req_start(p, (const struct sockaddr *)&pe->sa, PREQ_COLD, NULL, out, (size_t)n);
	}
}

int64_t zw_peers_concurrency(const struct zw_peers *p, const char *key)
{
	int64_t sum = 0;

	for (size_t i = 0; i < p->n_peers; i++) {
		const struct peer *pe = p->peers[i];
		json_int_t c;

		if (!pe->ok || pe->self)
			continue;
		c = json_integer_value(
		        json_object_get(json_object_get(pe->counts, key), "concurrency"));
		if (c > 0)
			sum += c;
	}
	return sum;
}

static int counts_add(void *arg, const char *key, const struct zw_stats_snapshot *snap)
{
	json_t *targets = arg;
	json_t *v = json_pack("{s:I,s:I}", "requests", (json_int_t)snap->requests, "concurrency",
	                      (json_int_t)snap->concurrency);

	if (!v || json_object_set_new(targets, key, v) < 0)
		return -ENOMEM;
	return 0;
}

int zw_peers_counts_json(struct zw_peers *p, char **body, size_t *len)
{
	json_t *doc = json_object(), *targets = json_object();
	uint64_t now = uv_now(p->loop);
	int rc = -ENOMEM;

	if (!doc || !targets)
		goto out;
	if (zw_stats_foreach(p->stats, now, counts_add, targets) < 0)
		goto out;
	if (json_object_set_new(doc, "instance", json_string(p->instance)) < 0 ||
	    json_object_set_new(doc, "uptime_ms", json_integer((json_int_t)(now - p->started_ms))) <
	            0 ||
	    json_object_set(doc, "targets", targets) < 0)
		goto out;
	*body = json_dumps(doc, JSON_COMPACT);
	if (!*body)
		goto out;
	*len = strlen(*body);
	rc = 0;
out:
	json_decref(targets);
	json_decref(doc);
	return rc;
}

void zw_peers_get_stats(const struct zw_peers *p, struct zw_peers_stats *out)
{
	*out = p->st;
	out->peers = 0;
	out->live = 0;
	for (size_t i = 0; i < p->n_peers; i++) {
		if (p->peers[i]->self)
			continue;
		out->peers++;
		if (p->peers[i]->ok)
			out->live++;
	}
}

static void peers_maybe_done(struct zw_peers *p)
{
	void (*done)(void *arg) = p->done;
	void *arg = p->done_arg;

	if (p->open_handles > 0 || p->reqs)
		return;
	for (size_t i = 0; i < p->n_peers; i++)
		peer_free(p->peers[i]);
	free(p->peers);
	free(p);
	if (done)
		done(arg);
}

static void on_poll_timer_closed(uv_handle_t *h)
{
	struct zw_peers *p = h->data;

	p->open_handles--;
	peers_maybe_done(p);
}

void zw_peers_close(struct zw_peers *p, void (*done)(void *arg), void *arg)
{
	if (!p || p->closing)
		return;
	p->closing = true;
	p->done = done;
	p->done_arg = arg;
	for (struct preq *r = p->reqs; r; r = r->next)
		req_finish(r, false);
	uv_close((uv_handle_t *)&p->poll_timer, on_poll_timer_closed);
}
