/* Unit tests for lib/protocol.c: which protocol a Service port, its
 * annotations and an Ingress's annotations say a destination speaks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "protocol.h"

struct port_case {
	const char *app_protocol, *name, *annotated;
	enum zw_proto want;
	const char *why;
};

static void test_ports(void **state)
{
	(void)state;
	static const struct port_case cases[] = {
	        {NULL, NULL, NULL, ZW_PROTO_HTTP1, ""},
	        {"", "", NULL, ZW_PROTO_HTTP1, ""},
	        {"http", NULL, NULL, ZW_PROTO_HTTP1, "appProtocol http"},
	        {"HTTP", "grpc", NULL, ZW_PROTO_HTTP1, "appProtocol HTTP"}, /* appProtocol wins */
	        {"kubernetes.io/ws", NULL, NULL, ZW_PROTO_HTTP1, "appProtocol kubernetes.io/ws"},
	        {"kubernetes.io/h2c", NULL, NULL, ZW_PROTO_H2C, "appProtocol kubernetes.io/h2c"},
	        {"grpc", NULL, NULL, ZW_PROTO_H2C, "appProtocol grpc"},
	        {"https", NULL, NULL, ZW_PROTO_TLS, "appProtocol https"},
	        {"kubernetes.io/wss", NULL, NULL, ZW_PROTO_TLS, "appProtocol kubernetes.io/wss"},
	        {"example.com/custom", NULL, NULL, ZW_PROTO_OTHER,
	         "appProtocol example.com/custom"},
	        {NULL, "http", NULL, ZW_PROTO_HTTP1, ""},
	        {NULL, "http-metrics", NULL, ZW_PROTO_HTTP1, ""},
	        {NULL, "web", NULL, ZW_PROTO_HTTP1, ""},
	        {NULL, "grpc", NULL, ZW_PROTO_H2C, "port name grpc"},
	        {NULL, "GRPC-api", NULL, ZW_PROTO_H2C, "port name GRPC-api"},
	        {NULL, "grpc-web", NULL, ZW_PROTO_HTTP1, ""},
	        {NULL, "grpc-web-x", NULL, ZW_PROTO_HTTP1, ""},
	        {NULL, "http2", NULL, ZW_PROTO_H2C, "port name http2"},
	        {NULL, "https-admin", NULL, ZW_PROTO_TLS, "port name https-admin"},
	        {NULL, "tls", NULL, ZW_PROTO_TLS, "port name tls"},
	        {NULL, "tcp-db", NULL, ZW_PROTO_OTHER, "port name tcp-db"},
	        {NULL, "mongo", NULL, ZW_PROTO_OTHER, "port name mongo"},
	        {NULL, "http", "h2c", ZW_PROTO_H2C, "Service annotation h2c"},
	        {NULL, "grpc", "HTTP", ZW_PROTO_HTTP1, "Service annotation HTTP"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char why[128];
		enum zw_proto p = zw_proto_of_port(cases[i].app_protocol, cases[i].name,
		                                   cases[i].annotated, why, sizeof(why));
		if (p != cases[i].want || strcmp(why, cases[i].why) != 0)
			fail_msg("case %zu: got %d \"%s\", want %d \"%s\"", i, p, why,
			         cases[i].want, cases[i].why);
	}
}

static void test_service_annotations(void **state)
{
	(void)state;
	json_t *a =
	        json_pack("{s:s}", "traefik.ingress.kubernetes.io/service.serversscheme", "https");
	assert_string_equal(zw_proto_service_annotation(a, "web"), "https");
	assert_string_equal(zw_proto_service_annotation(a, NULL), "https");
	json_decref(a);
	a = json_pack("{s:s}", "cloud.google.com/app-protocols",
	              "{\"web\":\"HTTP2\",\"x\":\"HTTPS\"}");
	assert_string_equal(zw_proto_service_annotation(a, "web"), "http2");
	assert_string_equal(zw_proto_service_annotation(a, "x"), "https");
	assert_null(zw_proto_service_annotation(a, "other"));
	assert_null(zw_proto_service_annotation(a, NULL));
	json_decref(a);
	a = json_pack("{s:s}", "cloud.google.com/app-protocols", "not json");
	assert_null(zw_proto_service_annotation(a, "web"));
	json_decref(a);
	assert_null(zw_proto_service_annotation(NULL, "web"));
}

static void test_ingress_annotations(void **state)
{
	(void)state;
	struct {
		const char *key, *value;
		enum zw_proto want;
	} cases[] = {
	        {"nginx.ingress.kubernetes.io/backend-protocol", "HTTP", ZW_PROTO_HTTP1},
	        {"nginx.ingress.kubernetes.io/backend-protocol", "GRPC", ZW_PROTO_H2C},
	        {"nginx.ingress.kubernetes.io/backend-protocol", "GRPCS", ZW_PROTO_TLS},
	        {"nginx.ingress.kubernetes.io/backend-protocol", "HTTPS", ZW_PROTO_TLS},
	        {"nginx.ingress.kubernetes.io/backend-protocol", "AUTO_HTTP", ZW_PROTO_OTHER},
	        {"nginx.ingress.kubernetes.io/backend-protocol", "FCGI", ZW_PROTO_OTHER},
	        {"alb.ingress.kubernetes.io/backend-protocol", "HTTPS", ZW_PROTO_TLS},
	        {"alb.ingress.kubernetes.io/backend-protocol-version", "HTTP1", ZW_PROTO_HTTP1},
	        {"alb.ingress.kubernetes.io/backend-protocol-version", "HTTP2", ZW_PROTO_H2C},
	        {"haproxy.org/server-proto", "h2", ZW_PROTO_TLS},
	        {"haproxy.org/server-ssl", "true", ZW_PROTO_TLS},
	        {"haproxy.org/server-ssl", "false", ZW_PROTO_HTTP1},
	        {"something.else/x", "GRPC", ZW_PROTO_HTTP1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char why[160];
		json_t *a = json_pack("{s:s}", cases[i].key, cases[i].value);
		enum zw_proto p = zw_proto_of_ingress(a, why, sizeof(why));
		json_decref(a);
		if (p != cases[i].want)
			fail_msg("case %zu (%s: %s): got %d, want %d", i, cases[i].key,
			         cases[i].value, p, cases[i].want);
		if (p != ZW_PROTO_HTTP1 && !strstr(why, cases[i].key))
			fail_msg("case %zu: why \"%s\" does not name the annotation", i, why);
	}
	char why[160];
	assert_int_equal(zw_proto_of_ingress(NULL, why, sizeof(why)), ZW_PROTO_HTTP1);
	assert_string_equal(zw_proto_name(ZW_PROTO_H2C), "HTTP/2 (h2c)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_ports),
	        cmocka_unit_test(test_service_annotations),
	        cmocka_unit_test(test_ingress_annotations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
