/* Unit tests for proxy/endpoints.c: EndpointSlice parsing (v1 and v1beta1),
 * merging, readiness, port resolution, snapshots and shared outstanding
 * counters, power-of-two-choices balance, change notifications, resyncs,
 * the static spec, and concurrent readers. */
#include <arpa/inet.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "endpoints.h"

/* ---- helpers ---- */

static json_t *js(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);
	if (!j)
		fail_msg("bad JSON in test: %s (%s)", e.text, text);
	return j;
}

/* Applies a slice given as JSON text; returns the store's status. */
static int apply(struct zw_endpoints *s, const char *text, bool deleted)
{
	char err[ZW_EP_ERRLEN];
	json_t *j = js(text);
	int rc = zw_endpoints_apply_slice(s, j, deleted, err);
	if (rc == ZW_EP_EINVAL)
		assert_true(strlen(err) > 0);
	json_decref(j);
	return rc;
}

static int apply_svc(struct zw_endpoints *s, const char *text, bool deleted)
{
	char err[ZW_EP_ERRLEN];
	json_t *j = js(text);
	int rc = zw_endpoints_apply_service(s, j, deleted, err);
	json_decref(j);
	return rc;
}

/* "ip:port ip:port" of a snapshot, in its (sorted) order. */
static const char *list(struct zw_endpoints *s, const char *ns, const char *svc, int port,
                        const char *name)
{
	static char buf[2048];
	struct zw_endpoint_set *set;
	assert_int_equal(zw_endpoints_get(s, ns, svc, port, name, &set), 0);
	assert_non_null(set);
	buf[0] = '\0';
	for (size_t i = 0; i < set->n; i++) {
		char one[80];
		snprintf(one, sizeof(one), "%s%s:%u", i ? " " : "", set->eps[i].ip,
		         (unsigned)set->eps[i].port);
		strncat(buf, one, sizeof(buf) - strlen(buf) - 1);
		/* the sockaddr agrees with the text */
		char ip[64];
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&set->eps[i].addr;
		if (sin->sin_family == AF_INET) {
			inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
			assert_string_equal(ip, set->eps[i].ip);
			assert_int_equal(ntohs(sin->sin_port), set->eps[i].port);
			assert_int_equal(set->eps[i].addr_len, sizeof(*sin));
		}
	}
	zw_endpoint_set_unref(set);
	return buf;
}

#define SLICE_V1(name, svc, ports, eps)                                                       \
	"{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",\"addressType\":" \
	"\"IPv4\",\"metadata\":{\"namespace\":\"ns\",\"name\":\"" name "\",\"labels\":{"      \
	"\"kubernetes.io/service-name\":\"" svc "\"}},\"ports\":" ports ",\"endpoints\":" eps "}"

static int setup(void **state)
{
	struct zw_endpoints *s;
	assert_int_equal(zw_endpoints_new(&s), 0);
	*state = s;
	return 0;
}

static int teardown(void **state)
{
	zw_endpoints_free(*state);
	return 0;
}

/* ---- tests ---- */

static void test_merge_and_readiness(void **state)
{
	struct zw_endpoints *s = *state;
	uint64_t v0 = zw_endpoints_version(s);
	assert_int_equal(
	        apply(s,
	              SLICE_V1("web-a", "web", "[{\"name\":\"http\",\"port\":8080}]",
	                       "[{\"addresses\":[\"10.0.0.2\"],\"conditions\":{\"ready\":true}},"
	                       "{\"addresses\":[\"10.0.0.1\"],\"conditions\":{}},"
	                       "{\"addresses\":[\"10.0.0.3\"],\"conditions\":{\"ready\":false}},"
	                       "{\"addresses\":[\"10.0.0.4\"],\"conditions\":{\"ready\":null}},"
	                       "{\"addresses\":[\"10.0.0.5\",\"10.0.0.50\"]}]"),
	              false),
	        0);
	assert_true(zw_endpoints_version(s) > v0);
	/* absent/null ready = unknown = ready; false excluded; first address only */
	assert_string_equal(list(s, "ns", "web", 0, "http"),
	                    "10.0.0.1:8080 10.0.0.2:8080 10.0.0.4:8080 10.0.0.5:8080");
	assert_int_equal(zw_endpoints_ready_count(s, "ns", "web"), 4);

	/* a second slice merges; an address present in both counts once */
	assert_int_equal(
	        apply(s,
	              SLICE_V1("web-b", "web", "[{\"name\":\"http\",\"port\":8080}]",
	                       "[{\"addresses\":[\"10.0.0.9\"]},{\"addresses\":[\"10.0.0.1\"]}]"),
	              false),
	        0);
	assert_string_equal(
	        list(s, "ns", "web", 0, "http"),
	        "10.0.0.1:8080 10.0.0.2:8080 10.0.0.4:8080 10.0.0.5:8080 10.0.0.9:8080");
	assert_int_equal(zw_endpoints_ready_count(s, "ns", "web"), 5);

	/* MODIFIED replaces the slice; DELETED removes it */
	assert_int_equal(
	        apply(s,
	              SLICE_V1("web-a", "web", "[{\"name\":\"http\",\"port\":8080}]",
	                       "[{\"addresses\":[\"10.0.0.3\"],\"conditions\":{\"ready\":true}}]"),
	              false),
	        0);
	assert_string_equal(list(s, "ns", "web", 0, "http"),
	                    "10.0.0.1:8080 10.0.0.3:8080 10.0.0.9:8080");
	assert_int_equal(apply(s, "{\"metadata\":{\"namespace\":\"ns\",\"name\":\"web-b\"}}", true),
	                 0);
	assert_string_equal(list(s, "ns", "web", 0, "http"), "10.0.0.3:8080");
	assert_int_equal(apply(s, "{\"metadata\":{\"namespace\":\"ns\",\"name\":\"web-a\"}}", true),
	                 0);
	assert_string_equal(list(s, "ns", "web", 0, "http"), "");
	assert_int_equal(zw_endpoints_ready_count(s, "ns", "web"), 0);
	/* deleting what is not there is fine */
	assert_int_equal(apply(s, "{\"metadata\":{\"namespace\":\"ns\",\"name\":\"web-a\"}}", true),
	                 0);
	/* unknown Service: empty set */
	assert_string_equal(list(s, "other", "nothing", 80, NULL), "");
}

static void test_v1beta1_shape(void **state)
{
	struct zw_endpoints *s = *state;
	/* v1beta1 as served by Kubernetes 1.20: topology instead of nodeName/zone */
	const char *beta =
	        "{\"apiVersion\":\"discovery.k8s.io/v1beta1\",\"kind\":\"EndpointSlice\","
	        "\"addressType\":\"IPv4\",\"metadata\":{\"namespace\":\"b\",\"name\":\"api-x1\","
	        "\"labels\":{\"kubernetes.io/service-name\":\"api\","
	        "\"endpointslice.kubernetes.io/managed-by\":\"endpointslice-controller.k8s.io\"}},"
	        "\"ports\":[{\"name\":\"\",\"protocol\":\"TCP\",\"port\":9000}],"
	        "\"endpoints\":[{\"addresses\":[\"127.0.0.2\"],\"conditions\":{\"ready\":true},"
	        "\"topology\":{\"kubernetes.io/hostname\":\"n1\"},\"targetRef\":{\"kind\":\"Pod\","
	        "\"namespace\":\"b\",\"name\":\"api-1\"}},"
	        "{\"addresses\":[\"127.0.0.3\"],\"conditions\":{\"ready\":false}},"
	        "{\"addresses\":[\"127.0.0.4\"]}]}";
	assert_int_equal(apply(s, beta, false), 0);
	/* unnamed single port: query by its number, by name "", or by any
	 * number when the Service is unknown (port 80 -> targetPort 9000) */
	assert_string_equal(list(s, "b", "api", 9000, NULL), "127.0.0.2:9000 127.0.0.4:9000");
	assert_string_equal(list(s, "b", "api", 0, ""), "127.0.0.2:9000 127.0.0.4:9000");
	assert_string_equal(list(s, "b", "api", 80, NULL), "127.0.0.2:9000 127.0.0.4:9000");
	assert_string_equal(list(s, "b", "api", 0, "http"), "");
}

static void test_ports(void **state)
{
	struct zw_endpoints *s = *state;
	assert_int_equal(apply(s,
	                       SLICE_V1("m-1", "multi",
	                                "[{\"name\":\"http\",\"port\":8080},"
	                                "{\"name\":\"metrics\",\"port\":9102,\"protocol\":\"TCP\"},"
	                                "{\"name\":\"dns\",\"port\":53,\"protocol\":\"UDP\"},"
	                                "{\"name\":\"any\"}]",
	                                "[{\"addresses\":[\"10.1.0.1\"]}]"),
	                       false),
	                 0);
	assert_string_equal(list(s, "ns", "multi", 0, "http"), "10.1.0.1:8080");
	assert_string_equal(list(s, "ns", "multi", 0, "metrics"), "10.1.0.1:9102");
	assert_string_equal(list(s, "ns", "multi", 0, "dns"), ""); /* UDP skipped */
	assert_string_equal(list(s, "ns", "multi", 0, "any"), ""); /* no number */
	/* Service unknown: number matches slice port number; several ports, so
	 * an unmatched number gives nothing */
	assert_string_equal(list(s, "ns", "multi", 9102, NULL), "10.1.0.1:9102");
	assert_string_equal(list(s, "ns", "multi", 80, NULL), "");

	/* With the Service known, the Service port number maps to the name */
	assert_int_equal(
	        apply_svc(s,
	                  "{\"metadata\":{\"namespace\":\"ns\",\"name\":\"multi\"},\"spec\":{"
	                  "\"ports\":[{\"name\":\"http\",\"port\":80,\"targetPort\":8080},"
	                  "{\"name\":\"metrics\",\"port\":9090,\"targetPort\":\"metrics\"}]}}",
	                  false),
	        0);
	assert_string_equal(list(s, "ns", "multi", 80, NULL), "10.1.0.1:8080");
	assert_string_equal(list(s, "ns", "multi", 9090, NULL), "10.1.0.1:9102");
	assert_string_equal(list(s, "ns", "multi", 8080, NULL), ""); /* not a Service port */
	/* Service deleted: back to slice-number matching */
	assert_int_equal(
	        apply_svc(s, "{\"metadata\":{\"namespace\":\"ns\",\"name\":\"multi\"}}", true), 0);
	assert_string_equal(list(s, "ns", "multi", 8080, NULL), "10.1.0.1:8080");
	assert_string_equal(list(s, "ns", "multi", 80, NULL), "");
}

/* Which ports speak h2c: appProtocol first, else the port-name convention. */
static void test_h2c_ports(void **state)
{
	struct zw_endpoints *s = *state;
	assert_int_equal(apply(s,
	                       SLICE_V1("p-1", "protos",
	                                "[{\"name\":\"web\",\"port\":8080},"
	                                "{\"name\":\"a\",\"port\":8081,"
	                                "\"appProtocol\":\"kubernetes.io/h2c\"},"
	                                "{\"name\":\"b\",\"port\":8082,\"appProtocol\":\"grpc\"},"
	                                "{\"name\":\"grpc-api\",\"port\":8083},"
	                                "{\"name\":\"http2\",\"port\":8084},"
	                                "{\"name\":\"grpc-x\",\"port\":8085,"
	                                "\"appProtocol\":\"http\"}]",
	                                "[{\"addresses\":[\"10.1.0.9\"]}]"),
	                       false),
	                 0);
	static const struct {
		const char *name;
		bool h2c;
	} want[] = {{"web", false},     {"a", true},     {"b", true},
	            {"grpc-api", true}, {"http2", true}, {"grpc-x", false}};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct zw_endpoint_set *set;
		assert_int_equal(zw_endpoints_get(s, "ns", "protos", 0, want[i].name, &set), 0);
		assert_int_equal(set->n, 1);
		assert_int_equal(set->eps[0].h2c, want[i].h2c);
		zw_endpoint_set_unref(set);
	}
}

/* Which ports speak TLS, and which of them HTTP/2 inside (ALPN h2). */
static void test_tls_ports(void **state)
{
	struct zw_endpoints *s = *state;
	assert_int_equal(apply(s,
	                       SLICE_V1("p-2", "tlsp",
	                                "[{\"name\":\"web\",\"port\":8080},"
	                                "{\"name\":\"a\",\"port\":8443,\"appProtocol\":\"https\"},"
	                                "{\"name\":\"b\",\"port\":8444,"
	                                "\"appProtocol\":\"kubernetes.io/tls\"},"
	                                "{\"name\":\"c\",\"port\":8445,\"appProtocol\":\"GRPCS\"},"
	                                "{\"name\":\"d\",\"port\":8446,\"appProtocol\":\"h2\"},"
	                                "{\"name\":\"https-api\",\"port\":8447},"
	                                "{\"name\":\"grpcs-x\",\"port\":8448},"
	                                "{\"name\":\"h2-y\",\"port\":8449},"
	                                "{\"name\":\"tls-z\",\"port\":8450,"
	                                "\"appProtocol\":\"http\"}]",
	                                "[{\"addresses\":[\"10.1.0.10\"]}]"),
	                       false),
	                 0);
	static const struct {
		const char *name;
		bool tls, h2;
	} want[] = {{"web", false, false},   {"a", true, false},   {"b", true, false},
	            {"c", true, true},       {"d", true, true},    {"https-api", true, false},
	            {"grpcs-x", true, true}, {"h2-y", true, true}, {"tls-z", false, false}};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct zw_endpoint_set *set;
		assert_int_equal(zw_endpoints_get(s, "ns", "tlsp", 0, want[i].name, &set), 0);
		assert_int_equal(set->n, 1);
		assert_int_equal(set->eps[0].tls, want[i].tls);
		assert_int_equal(set->eps[0].tls_h2, want[i].h2);
		assert_false(set->eps[0].h2c);
		zw_endpoint_set_unref(set);
	}
}

static void test_invalid(void **state)
{
	struct zw_endpoints *s = *state;
	char err[ZW_EP_ERRLEN];
	/* no service-name label: not ours */
	json_t *j = js("{\"metadata\":{\"namespace\":\"ns\",\"name\":\"x\"},\"endpoints\":[]}");
	assert_int_equal(zw_endpoints_apply_slice(s, j, false, err), ZW_EP_ENOTSLICE);
	json_decref(j);
	j = js("{\"metadata\":{\"name\":\"x\"}}");
	assert_int_equal(zw_endpoints_apply_slice(s, j, false, err), ZW_EP_EINVAL);
	assert_non_null(strstr(err, "namespace"));
	json_decref(j);

	assert_int_equal(apply(s,
	                       SLICE_V1("ok", "inv", "[{\"name\":\"h\",\"port\":80}]",
	                                "[{\"addresses\":[\"10.2.0.1\"]}]"),
	                       false),
	                 0);
	/* invalid updates are rejected and keep the previous state */
	assert_int_equal(apply(s,
	                       SLICE_V1("ok", "inv", "[{\"name\":\"h\",\"port\":80}]",
	                                "[{\"addresses\":[\"not-an-ip\"]}]"),
	                       false),
	                 ZW_EP_EINVAL);
	assert_int_equal(apply(s,
	                       SLICE_V1("ok", "inv", "[{\"name\":\"h\",\"port\":70000}]",
	                                "[{\"addresses\":[\"10.2.0.9\"]}]"),
	                       false),
	                 ZW_EP_EINVAL);
	assert_int_equal(apply(s, SLICE_V1("ok", "inv", "{}", "[]"), false), ZW_EP_EINVAL);
	assert_int_equal(apply(s, SLICE_V1("ok", "inv", "[]", "[{\"addresses\":[]}]"), false),
	                 ZW_EP_EINVAL);
	assert_string_equal(list(s, "ns", "inv", 0, "h"), "10.2.0.1:80");

	/* FQDN slices carry no dialable addresses */
	assert_int_equal(
	        apply(s,
	              "{\"addressType\":\"FQDN\",\"metadata\":{\"namespace\":\"ns\","
	              "\"name\":\"f\",\"labels\":{\"kubernetes.io/service-name\":\"inv\"}},"
	              "\"ports\":[{\"name\":\"h\",\"port\":80}],"
	              "\"endpoints\":[{\"addresses\":[\"example.com\"]}]}",
	              false),
	        0);
	assert_string_equal(list(s, "ns", "inv", 0, "h"), "10.2.0.1:80");

	/* removing the label turns the update into a removal */
	assert_int_equal(apply(s,
	                       "{\"metadata\":{\"namespace\":\"ns\",\"name\":\"ok\"},"
	                       "\"ports\":[{\"name\":\"h\",\"port\":80}],"
	                       "\"endpoints\":[{\"addresses\":[\"10.2.0.1\"]}]}",
	                       false),
	                 ZW_EP_ENOTSLICE);
	assert_string_equal(list(s, "ns", "inv", 0, "h"), "");

	/* IPv6 */
	assert_int_equal(
	        apply(s,
	              "{\"addressType\":\"IPv6\",\"metadata\":{\"namespace\":\"ns\","
	              "\"name\":\"six\",\"labels\":{\"kubernetes.io/service-name\":\"v6\"}},"
	              "\"ports\":[{\"name\":\"h\",\"port\":80}],"
	              "\"endpoints\":[{\"addresses\":[\"fd00:0::1\"]}]}",
	              false),
	        0);
	struct zw_endpoint_set *set;
	assert_int_equal(zw_endpoints_get(s, "ns", "v6", 0, "h", &set), 0);
	assert_int_equal(set->n, 1);
	assert_string_equal(set->eps[0].ip, "fd00::1");
	assert_int_equal(set->eps[0].addr.ss_family, AF_INET6);
	assert_int_equal(ntohs(((struct sockaddr_in6 *)&set->eps[0].addr)->sin6_port), 80);
	zw_endpoint_set_unref(set);
}

static void test_slice_moves_service(void **state)
{
	struct zw_endpoints *s = *state;
	assert_int_equal(
	        apply(s,
	              SLICE_V1("mv", "one", "[{\"port\":80}]", "[{\"addresses\":[\"10.3.0.1\"]}]"),
	              false),
	        0);
	assert_string_equal(list(s, "ns", "one", 80, NULL), "10.3.0.1:80");
	assert_int_equal(
	        apply(s,
	              SLICE_V1("mv", "two", "[{\"port\":80}]", "[{\"addresses\":[\"10.3.0.1\"]}]"),
	              false),
	        0);
	assert_string_equal(list(s, "ns", "one", 80, NULL), "");
	assert_string_equal(list(s, "ns", "two", 80, NULL), "10.3.0.1:80");
}

static void test_counters_survive(void **state)
{
	struct zw_endpoints *s = *state;
	uint64_t rng = 42;
	assert_int_equal(apply(s,
	                       SLICE_V1("c", "cnt", "[{\"name\":\"h\",\"port\":80}]",
	                                "[{\"addresses\":[\"10.4.0.1\"]}]"),
	                       false),
	                 0);
	struct zw_endpoint_set *a, *b, *a2;
	assert_int_equal(zw_endpoints_get(s, "ns", "cnt", 0, "h", &a), 0);
	/* same query, no change: the cached snapshot */
	assert_int_equal(zw_endpoints_get(s, "ns", "cnt", 0, "h", &a2), 0);
	assert_ptr_equal(a, a2);
	zw_endpoint_set_unref(a2);
	const struct zw_endpoint *e1 = zw_endpoint_pick(a, &rng);
	const struct zw_endpoint *e2 = zw_endpoint_pick(a, &rng);
	assert_ptr_equal(e1, &a->eps[0]);
	assert_ptr_equal(e2, &a->eps[0]);
	assert_int_equal(zw_endpoint_outstanding(e1), 2);

	/* the slice changes (a second pod): new snapshot, same counter */
	assert_int_equal(
	        apply(s,
	              SLICE_V1("c", "cnt", "[{\"name\":\"h\",\"port\":80}]",
	                       "[{\"addresses\":[\"10.4.0.1\"]},{\"addresses\":[\"10.4.0.2\"]}]"),
	              false),
	        0);
	assert_int_equal(zw_endpoints_get(s, "ns", "cnt", 0, "h", &b), 0);
	assert_ptr_not_equal(a, b);
	assert_true(b->version > a->version);
	assert_int_equal(b->n, 2);
	assert_int_equal(zw_endpoint_outstanding(&b->eps[0]), 2);
	assert_int_equal(zw_endpoint_outstanding(&b->eps[1]), 0);
	/* both new picks avoid the busy address */
	const struct zw_endpoint *n1 = zw_endpoint_pick(b, &rng);
	assert_string_equal(n1->ip, "10.4.0.2");
	zw_endpoint_done(e1); /* old snapshot's request finishes */
	assert_int_equal(zw_endpoint_outstanding(&b->eps[0]), 1);

	/* the address disappears from every slice: the old snapshot and its
	 * counter stay valid until released */
	assert_int_equal(apply(s,
	                       SLICE_V1("c", "cnt", "[{\"name\":\"h\",\"port\":80}]",
	                                "[{\"addresses\":[\"10.4.0.2\"]}]"),
	                       false),
	                 0);
	zw_endpoint_done(e2);
	assert_int_equal(zw_endpoint_outstanding(e2), 0);
	zw_endpoint_set_unref(a);
	zw_endpoint_done(n1);
	zw_endpoint_begin(&b->eps[1]);
	assert_int_equal(zw_endpoint_outstanding(&b->eps[1]), 1);
	zw_endpoint_done(&b->eps[1]);
	zw_endpoint_set_unref(b);
	assert_string_equal(list(s, "ns", "cnt", 0, "h"), "10.4.0.2:80");
	/* an empty set picks nothing */
	assert_null(zw_endpoint_pick(NULL, &rng));
	assert_int_equal(zw_endpoints_get(s, "ns", "none", 0, "h", &a), 0);
	assert_null(zw_endpoint_pick(a, &rng));
	zw_endpoint_set_unref(a);
}

static void test_p2c_distribution(void **state)
{
	struct zw_endpoints *s = *state;
	assert_int_equal(
	        apply(s,
	              SLICE_V1("p", "p2c", "[{\"name\":\"h\",\"port\":80}]",
	                       "[{\"addresses\":[\"10.5.0.1\"]},{\"addresses\":[\"10.5.0.2\"]},"
	                       "{\"addresses\":[\"10.5.0.3\"]},{\"addresses\":[\"10.5.0.4\"]}]"),
	              false),
	        0);
	struct zw_endpoint_set *set;
	assert_int_equal(zw_endpoints_get(s, "ns", "p2c", 0, "h", &set), 0);
	assert_int_equal(set->n, 4);
	uint64_t rng = 0x1234;
	/* 400 held requests (a burst of released cold starts): spread evenly */
	const struct zw_endpoint *held[400];
	for (int i = 0; i < 400; i++)
		held[i] = zw_endpoint_pick(set, &rng);
	long mn = 1000, mx = 0;
	for (size_t i = 0; i < 4; i++) {
		long o = zw_endpoint_outstanding(&set->eps[i]);
		mn = o < mn ? o : mn;
		mx = o > mx ? o : mx;
	}
	print_message("400 picks over 4 endpoints: min %ld max %ld\n", mn, mx);
	assert_true(mx - mn <= 3);
	for (int i = 0; i < 400; i++)
		zw_endpoint_done(held[i]);

	/* one endpoint is slow (50 stuck requests): short requests avoid it;
	 * it is chosen only when drawn twice... never, with distinct draws */
	for (int i = 0; i < 50; i++)
		zw_endpoint_begin(&set->eps[2]);
	int hits[4] = {0};
	for (int i = 0; i < 4000; i++) {
		const struct zw_endpoint *e = zw_endpoint_pick(set, &rng);
		hits[e - set->eps]++;
		zw_endpoint_done(e);
	}
	print_message("idle picks with one busy endpoint: %d %d %d %d\n", hits[0], hits[1], hits[2],
	              hits[3]);
	assert_int_equal(hits[2], 0);
	for (int i = 0; i < 4; i++)
		if (i != 2)
			assert_true(hits[i] > 900); /* about a third each */
	for (int i = 0; i < 50; i++)
		zw_endpoint_done(&set->eps[2]);
	zw_endpoint_set_unref(set);
}

struct seen {
	char last[128];
	size_t n_ready;
	int calls;
};

static void on_change(void *ctx, const char *ns, const char *svc, size_t n_ready)
{
	struct seen *sn = ctx;
	snprintf(sn->last, sizeof(sn->last), "%s/%s", ns, svc);
	sn->n_ready = n_ready;
	sn->calls++;
}

static void test_notifications(void **state)
{
	struct zw_endpoints *s = *state;
	struct seen sn = {0};
	struct zw_ep_subscriber sub = {on_change, &sn};
	assert_int_equal(zw_endpoints_subscribe(s, &sub), 0);

	/* not-ready only: no ready change, no call */
	assert_int_equal(
	        apply(s,
	              SLICE_V1("n", "cold", "[{\"port\":80}]",
	                       "[{\"addresses\":[\"10.6.0.1\"],\"conditions\":{\"ready\":false}}]"),
	              false),
	        0);
	assert_int_equal(sn.calls, 0);
	/* the first ready endpoint */
	assert_int_equal(
	        apply(s,
	              SLICE_V1("n", "cold", "[{\"port\":80}]",
	                       "[{\"addresses\":[\"10.6.0.1\"],\"conditions\":{\"ready\":true}}]"),
	              false),
	        0);
	assert_int_equal(sn.calls, 1);
	assert_string_equal(sn.last, "ns/cold");
	assert_int_equal(sn.n_ready, 1);
	/* identical re-apply (resync): nothing changes */
	assert_int_equal(
	        apply(s,
	              SLICE_V1("n", "cold", "[{\"port\":80}]",
	                       "[{\"addresses\":[\"10.6.0.1\"],\"conditions\":{\"ready\":true}}]"),
	              false),
	        0);
	assert_int_equal(sn.calls, 1);
	/* a port change is a change of the ready set */
	assert_int_equal(
	        apply(s,
	              SLICE_V1("n", "cold", "[{\"port\":81}]",
	                       "[{\"addresses\":[\"10.6.0.1\"],\"conditions\":{\"ready\":true}}]"),
	              false),
	        0);
	assert_int_equal(sn.calls, 2);
	/* deleted: back to zero */
	assert_int_equal(apply(s, "{\"metadata\":{\"namespace\":\"ns\",\"name\":\"n\"}}", true), 0);
	assert_int_equal(sn.calls, 3);
	assert_int_equal(sn.n_ready, 0);

	for (int i = 1; i < ZW_EP_MAX_SUBSCRIBERS; i++)
		assert_int_equal(zw_endpoints_subscribe(s, &sub), 0);
	assert_int_equal(zw_endpoints_subscribe(s, &sub), ZW_EP_ELIMIT);
}

static void test_resync(void **state)
{
	struct zw_endpoints *s = *state;
	struct seen sn = {0};
	struct zw_ep_subscriber sub = {on_change, &sn};
	assert_int_equal(zw_endpoints_subscribe(s, &sub), 0);
	assert_int_equal(
	        apply(s,
	              SLICE_V1("keep", "r1", "[{\"port\":80}]", "[{\"addresses\":[\"10.7.0.1\"]}]"),
	              false),
	        0);
	assert_int_equal(
	        apply(s,
	              SLICE_V1("gone", "r2", "[{\"port\":80}]", "[{\"addresses\":[\"10.7.0.2\"]}]"),
	              false),
	        0);
	assert_int_equal(apply(s,
	                       "{\"metadata\":{\"namespace\":\"other\",\"name\":\"o\",\"labels\":{"
	                       "\"kubernetes.io/service-name\":\"r3\"}},\"ports\":[{\"port\":80}],"
	                       "\"endpoints\":[{\"addresses\":[\"10.7.0.3\"]}]}",
	                       false),
	                 0);
	assert_int_equal(sn.calls, 3);
	/* relist of namespace ns returns only "keep" */
	zw_endpoints_resync_begin(s, ZW_EP_KIND_SLICE, "ns");
	assert_int_equal(
	        apply(s,
	              SLICE_V1("keep", "r1", "[{\"port\":80}]", "[{\"addresses\":[\"10.7.0.1\"]}]"),
	              false),
	        0);
	zw_endpoints_resync_end(s, ZW_EP_KIND_SLICE, "ns");
	assert_string_equal(list(s, "ns", "r1", 80, NULL), "10.7.0.1:80");
	assert_string_equal(list(s, "ns", "r2", 80, NULL), "");
	assert_string_equal(list(s, "other", "r3", 80, NULL), "10.7.0.3:80"); /* other ns kept */
	assert_int_equal(sn.calls, 4);
	assert_string_equal(sn.last, "ns/r2");

	/* Services resync too */
	assert_int_equal(apply_svc(s,
	                           "{\"metadata\":{\"namespace\":\"ns\",\"name\":\"r1\"},\"spec\":{"
	                           "\"ports\":[{\"name\":\"\",\"port\":8000}]}}",
	                           false),
	                 0);
	assert_string_equal(list(s, "ns", "r1", 80, NULL), "");
	zw_endpoints_resync_begin(s, ZW_EP_KIND_SERVICE, NULL);
	zw_endpoints_resync_end(s, ZW_EP_KIND_SERVICE, NULL);
	assert_string_equal(list(s, "ns", "r1", 80, NULL), "10.7.0.1:80");

	json_t *j;
	assert_int_equal(zw_endpoints_to_json(s, &j), 0);
	json_t *r1 = json_object_get(j, "ns/r1");
	assert_non_null(r1);
	assert_string_equal(json_string_value(json_array_get(json_object_get(r1, "ready"), 0)),
	                    "10.7.0.1:80");
	assert_null(json_object_get(j, "ns/r2"));
	json_decref(j);
}

static void test_spec(void **state)
{
	struct zw_endpoints *s = *state;
	char err[ZW_EP_ERRLEN];
	assert_int_equal(zw_endpoints_apply_spec(s,
	                                         "default/web:80=127.0.0.2:8080,127.0.0.3:8080;"
	                                         " default/web:grpc=127.0.0.2:9000\n"
	                                         "prod/api:8080=[::1]:8081",
	                                         err),
	                 0);
	assert_string_equal(list(s, "default", "web", 80, NULL), "127.0.0.2:8080 127.0.0.3:8080");
	assert_string_equal(list(s, "default", "web", 0, "grpc"), "127.0.0.2:9000");
	assert_string_equal(list(s, "default", "web", 81, NULL), "");
	assert_string_equal(list(s, "prod", "api", 8080, NULL), "::1:8081");

	const char *bad[] = {
	        "web:80=127.0.0.1:80",       /* no namespace */
	        "ns/web=127.0.0.1:80",       /* no port */
	        "ns/web:80=127.0.0.1",       /* endpoint without port */
	        "ns/web:80=foo:80",          /* not an IP */
	        "ns/web:0=127.0.0.1:80",     /* port out of range */
	        "ns/web:80=127.0.0.1:99999", /* endpoint port out of range */
	        "ns/web:80=[::1:80",         /* unclosed bracket */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(zw_endpoints_apply_spec(s, bad[i], err), ZW_EP_EINVAL);
		assert_true(strlen(err) > 0);
	}
	assert_int_equal(zw_endpoints_apply_spec(s, "", err), 0);
	assert_int_equal(zw_endpoints_apply_spec(s, NULL, err), 0);
}

/* ---- concurrency: writer applies while readers pick ---- */

struct rd {
	struct zw_endpoints *s;
	_Atomic int *stop;
	long picks;
	uint64_t rng;
};

static void *reader(void *arg)
{
	struct rd *r = arg;
	struct zw_endpoint_set *set = NULL;
	uint64_t seen = 0;
	while (!atomic_load(r->stop)) {
		/* the cached-snapshot pattern a worker uses */
		uint64_t v = zw_endpoints_version(r->s);
		if (!set || v != seen) {
			zw_endpoint_set_unref(set);
			zw_endpoints_get(r->s, "ns", "busy", 0, "h", &set);
			seen = v;
		}
		const struct zw_endpoint *e = zw_endpoint_pick(set, &r->rng);
		if (e) {
			r->picks++;
			zw_endpoint_done(e);
		}
	}
	zw_endpoint_set_unref(set);
	return NULL;
}

static void test_concurrent(void **state)
{
	struct zw_endpoints *s = *state;
	_Atomic int stop = 0;
	struct rd r[2] = {{s, &stop, 0, 1}, {s, &stop, 0, 2}};
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, reader, &r[i]), 0);
	for (int i = 0; i < 2000; i++) {
		char text[512];
		snprintf(text, sizeof(text),
		         SLICE_V1("b", "busy", "[{\"name\":\"h\",\"port\":80}]",
		                  "[{\"addresses\":[\"10.8.0.%d\"]},{\"addresses\":[\"10.8.1.%d\"]}"
		                  "]"),
		         i % 7 + 1, i % 5 + 1);
		assert_int_equal(apply(s, text, false), 0);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	assert_true(r[0].picks + r[1].picks > 0);
	struct zw_endpoint_set *set;
	assert_int_equal(zw_endpoints_get(s, "ns", "busy", 0, "h", &set), 0);
	assert_int_equal(set->n, 2);
	for (size_t i = 0; i < set->n; i++)
		assert_int_equal(zw_endpoint_outstanding(&set->eps[i]), 0);
	zw_endpoint_set_unref(set);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_merge_and_readiness, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_v1beta1_shape, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_ports, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_h2c_ports, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_tls_ports, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_invalid, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_slice_moves_service, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_counters_survive, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_p2c_distribution, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_notifications, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_resync, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_spec, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
