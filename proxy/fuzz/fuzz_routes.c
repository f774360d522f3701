/* libFuzzer target: differential test of the routing table (routes.c).
 *
 * The input drives a small generator: a few targets (hosts, path prefixes,
 * header matchers, creation timestamps, static routes) drawn from tiny
 * alphabets so that they collide often, then requests (Host, path, header
 * lines). Each request is routed by zw_route_lookup and by a naive reference
 * written from the rules in routes.h (scan every entry of every host level);
 * the two must agree on the target, rule, static route, host pattern and
 * prefix. Any disagreement aborts. Seeds: proxy/fuzz/corpus/fuzz_routes/. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "routes.h"

#define MAX_TARGETS 6
#define MAX_LIST    3
#define MAX_REQS    8
#define MAX_HDRS    4

struct gen {
	const uint8_t *p;
	size_t n;
};

static unsigned take(struct gen *g, unsigned mod)
{
	if (!g->n || !mod)
		return 0;
	unsigned v = *g->p++ % mod;
	g->n--;
	return v;
}

static const char *const labels[] = {"a", "b", "c", "A"};
static const char *const segs[] = {"x", "y", "", "x.y", "X"};
static const char *const hnames[] = {"x-a", "X-A", "x-b", "h"};
static const char *const hvals[] = {"1", "2", " 1", "1 ", "", "v"};
static const char *const globs[] = {"*", "1*", "?", "V"};
static const char *const stamps[] = {"2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z", NULL};

/* A host name or pattern: up to 3 labels, maybe "*." / "*" / ":port". */
static char *gen_host(struct gen *g, bool pattern)
{
	char buf[64] = "";
	unsigned kind = take(g, 8);
	if (pattern && kind == 0)
		return strdup("*");
	if (pattern && kind == 1)
		return strdup("");
	if (pattern && kind < 4)
		strcat(buf, "*.");
	unsigned nl = 1 + take(g, 3);
	for (unsigned i = 0; i < nl; i++) {
		if (i)
			strcat(buf, ".");
		strcat(buf, labels[take(g, 4)]);
	}
	if (!pattern && take(g, 4) == 0)
		strcat(buf, take(g, 2) ? ":8080" : ".");
	return strdup(buf);
}

static char *gen_path(struct gen *g, bool request)
{
	char buf[96] = "";
	unsigned ns = take(g, 4);
	for (unsigned i = 0; i < ns; i++) {
		strcat(buf, "/");
		strcat(buf, segs[take(g, 5)]);
	}
	if (take(g, 4) == 0)
		strcat(buf, "/");
	if (request && take(g, 4) == 0)
		strcat(buf, take(g, 2) ? "?q=/x" : "#/y");
	if (!buf[0] && (request || take(g, 2)))
		strcat(buf, "/");
	return strdup(buf);
}

static void gen_rule(struct gen *g, struct zw_route_rule *r)
{
	memset(r, 0, sizeof(*r));
	r->n_hosts = take(g, MAX_LIST + 1);
	r->hosts = calloc(MAX_LIST, sizeof(char *));
	for (size_t i = 0; i < r->n_hosts; i++)
		r->hosts[i] = gen_host(g, true);
	r->n_paths = take(g, MAX_LIST + 1);
	r->paths = calloc(MAX_LIST, sizeof(char *));
	for (size_t i = 0; i < r->n_paths; i++)
		r->paths[i] = gen_path(g, false);
	r->n_headers = take(g, 3);
	r->headers = calloc(3, sizeof(*r->headers));
	for (size_t i = 0; i < r->n_headers; i++) {
		r->headers[i].name = strdup(hnames[take(g, 4)]);
		unsigned k = take(g, 4);
		if (k == 0) {
			r->headers[i].kind = ZW_HDR_PRESENT;
		} else if (k == 1) {
			r->headers[i].kind = ZW_HDR_WILDCARD;
			r->headers[i].value = strdup(globs[take(g, 4)]);
		} else {
			r->headers[i].value = strdup(hvals[take(g, 6)]);
		}
	}
}

/* ---- reference router ---- */

struct req {
	char *host, *path;
	const char *hn[MAX_HDRS], *hv[MAX_HDRS];
	size_t nh;
};

static int hdr_get(void *ctx, const char *name, size_t name_len, size_t index, const char **value,
                   size_t *value_len)
{
	const struct req *r = ctx;
	size_t seen = 0;
	for (size_t i = 0; i < r->nh; i++) {
		if (strlen(r->hn[i]) == name_len && strncasecmp(r->hn[i], name, name_len) == 0 &&
		    seen++ == index) {
			*value = r->hv[i];
			*value_len = strlen(r->hv[i]);
			return 1;
		}
	}
	return 0;
}

static bool trimmed_eq(const char *v, const char *want)
{
	while (*v == ' ' || *v == '\t')
		v++;
	size_t l = strlen(v);
	while (l && (v[l - 1] == ' ' || v[l - 1] == '\t'))
		l--;
	return strlen(want) == l && strncmp(v, want, l) == 0;
}

static bool ref_headers(const struct zw_route_rule *r, const struct req *q)
{
	for (size_t i = 0; i < r->n_headers; i++) {
		bool ok = false;
		for (size_t k = 0; k < q->nh && !ok; k++)
			if (strcasecmp(q->hn[k], r->headers[i].name) == 0)
				ok = !r->headers[i].value ||
				     (r->headers[i].kind == ZW_HDR_WILDCARD
				              ? zw_header_match_value(&r->headers[i], q->hv[k],
				                                      strlen(q->hv[k]))
				              : trimmed_eq(q->hv[k], r->headers[i].value));
		if (!ok)
			return false;
	}
	return true;
}

/* Stored form of a prefix: "" -> "/", trailing slashes dropped. */
static void norm_prefix(const char *p, char *out, size_t cap)
{
	if (!p || !p[0])
		p = "/";
	snprintf(out, cap, "%s", p);
	size_t l = strlen(out);
	if (out[0] == '/')
		while (l > 1 && out[l - 1] == '/')
			out[--l] = '\0';
}

static bool prefix_ok(const char *prefix, const char *path)
{
	if (strcmp(prefix, "/") == 0)
		return true;
	size_t l = strlen(prefix);
	return strncmp(prefix, path, l) == 0 && (path[l] == '\0' || path[l] == '/');
}

struct cand {
	int target, rule, sroute;
	size_t plen;
	const char *host, *prefix;
	unsigned nh, nx, np;
};

/* a better than b? (same host level) */
static bool better(const struct cand *a, const struct cand *b, const struct zw_route_table *t)
{
	if (a->plen != b->plen)
		return a->plen > b->plen;
	bool as = a->sroute >= 0, bs = b->sroute >= 0;
	if (as != bs)
		return as;
	if (a->nh != b->nh)
		return a->nh > b->nh;
	if (a->nx != b->nx)
		return a->nx > b->nx;
	if (a->np != b->np)
		return a->np > b->np;
	const char *ta = zw_route_table_target(t, (size_t)a->target)->creation_timestamp;
	const char *tb = zw_route_table_target(t, (size_t)b->target)->creation_timestamp;
	if ((!ta) != (!tb))
		return !!ta;
	if (ta && strcmp(ta, tb) != 0)
		return strcmp(ta, tb) < 0;
	if (a->target != b->target)
		return a->target < b->target; /* table order = key order */
	if (a->sroute != b->sroute)
		return a->sroute < b->sroute;
	return a->rule < b->rule;
}

static void lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

static void consider(const struct zw_route_table *t, int ti, int ri, int sr,
                     const struct zw_route_rule *r, const char *level, const char *path,
                     const struct req *q, struct cand *best, bool *found)
{
	size_t nh = r->n_hosts ? r->n_hosts : 1;
	size_t np = r->n_paths ? r->n_paths : 1;
	for (size_t h = 0; h < nh; h++) {
		char hp[64];
		snprintf(hp, sizeof(hp), "%s", r->n_hosts && r->hosts[h][0] ? r->hosts[h] : "*");
		lower(hp);
		if (strcmp(hp, level) != 0)
			continue;
		for (size_t p = 0; p < np; p++) {
			char pp[128];
			norm_prefix(r->n_paths ? r->paths[p] : "/", pp, sizeof(pp));
			if (!prefix_ok(pp, path) || !ref_headers(r, q))
				continue;
			unsigned nx = 0, npat = 0;
			for (size_t k = 0; k < r->n_headers; k++) {
				if (r->headers[k].value && r->headers[k].kind == ZW_HDR_WILDCARD)
					npat++;
				else if (r->headers[k].value)
					nx++;
			}
			struct cand c = {
			        ti, ri,  sr, strlen(pp), NULL, NULL, (unsigned)r->n_headers,
			        nx, npat};
			if (!*found || better(&c, best, t)) {
				*best = c;
				*found = true;
			}
		}
	}
}

/* Returns true with *out filled when the reference finds a route. */
static bool ref_lookup(const struct zw_route_table *t, const struct req *q, struct cand *out)
{
	char host[128];
	zw_route_host_normalize(q->host, strlen(q->host), host, sizeof(host));
	char path[128];
	snprintf(path, sizeof(path), "%s", q->path);
	path[strcspn(path, "?#")] = '\0';
	if (path[0] != '/')
		snprintf(path, sizeof(path), "/");

	char levels[8][128];
	size_t nl = 0;
	if (host[0]) {
		snprintf(levels[nl++], 128, "%s", host);
		for (char *d = strchr(host, '.'); d && d[1] && nl < 7; d = strchr(d + 1, '.'))
			snprintf(levels[nl++], 128, "*.%s", d + 1);
	}
	snprintf(levels[nl++], 128, "*");
	for (size_t l = 0; l < nl; l++) {
		bool found = false;
		struct cand best = {0};
		for (size_t i = 0; i < zw_route_table_count(t); i++) {
			const struct zw_target *tg = zw_route_table_target(t, i);
			for (size_t r = 0; r < tg->n_rules; r++)
				consider(t, (int)i, (int)r, -1, &tg->rules[r], levels[l], path, q,
				         &best, &found);
			for (size_t s = 0; s < tg->n_static_routes; s++)
				for (size_t r = 0; r < tg->static_routes[s].n_rules; r++)
					consider(t, (int)i, (int)r, (int)s,
					         &tg->static_routes[s].rules[r], levels[l], path, q,
					         &best, &found);
		}
		if (found) {
			*out = best;
			return true;
		}
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gen g = {data, size};
	size_t nt = 1 + take(&g, MAX_TARGETS);
	struct zw_target *ts = calloc(nt, sizeof(*ts));
	for (size_t i = 0; i < nt; i++) {
		struct zw_target *t = &ts[i];
		char name[16];
		snprintf(name, sizeof(name), "t%zu", i);
		t->source = ZW_SRC_INTERCEPTORROUTE;
		t->trigger_index = -1;
		t->namespace = strdup(take(&g, 2) ? "ns" : "a");
		t->name = strdup(name);
		t->service.namespace = strdup(t->namespace);
		t->service.name = strdup(name);
		t->service.port = 80;
		const char *ts_ = stamps[take(&g, 3)];
		t->creation_timestamp = ts_ ? strdup(ts_) : NULL;
		t->n_rules = take(&g, 3);
		t->rules = calloc(3, sizeof(*t->rules));
		for (size_t r = 0; r < t->n_rules; r++)
			gen_rule(&g, &t->rules[r]);
		if (take(&g, 4) == 0) {
			t->n_static_routes = 1;
			t->static_routes = calloc(1, sizeof(*t->static_routes));
			t->static_routes[0].n_rules = 1;
			t->static_routes[0].rules = calloc(1, sizeof(struct zw_route_rule));
			gen_rule(&g, &t->static_routes[0].rules[0]);
		}
	}
	struct zw_route_table *table;
	if (zw_route_table_build(ts, nt, &table) != 0)
		abort();
	zw_target_array_free(ts, nt);

	size_t nr = 1 + take(&g, MAX_REQS);
	for (size_t i = 0; i < nr; i++) {
		struct req q = {
		        gen_host(&g, false), gen_path(&g, true), {0}, {0}, take(&g, MAX_HDRS + 1)};
		for (size_t k = 0; k < q.nh; k++) {
			q.hn[k] = hnames[take(&g, 4)];
			q.hv[k] = hvals[take(&g, 6)];
		}
		struct zw_route_request rq = {.host = q.host,
		                              .host_len = strlen(q.host),
		                              .path = q.path,
		                              .path_len = strlen(q.path),
		                              .headers = {hdr_get, &q}};
		struct zw_route_match m;
		int rc = zw_route_lookup(table, &rq, &m);
		struct cand c;
		bool want = ref_lookup(table, &q, &c);
		if ((rc == 0) != want) {
			fprintf(stderr, "disagree on found: table %d reference %d (%s %s)\n", rc,
			        want, q.host, q.path);
			abort();
		}
		if (want && (m.index != (size_t)c.target || m.static_route != c.sroute ||
		             m.rule != (size_t)c.rule || strlen(m.prefix) != c.plen ||
		             m.target != zw_route_table_target(table, m.index) ||
		             strcmp(m.key, zw_route_table_key(table, m.index)) != 0)) {
			fprintf(stderr,
			        "disagree: table %s rule %zu static %d prefix %s; reference %s "
			        "rule %d "
			        "static %d prefix-len %zu (%s %s)\n",
			        m.key, m.rule, m.static_route, m.prefix,
			        zw_route_table_key(table, (size_t)c.target), c.rule, c.sroute,
			        c.plen, q.host, q.path);
			abort();
		}
		free(q.host);
		free(q.path);
	}
	zw_route_table_unref(table);
	return 0;
}
