/* Unit tests of lib's building blocks: addresses (addr.h), apiVersion
 * splitting (apiversion.h) and hashing (hash.h). */
#include "addr.h"
#include "apiversion.h"
#include "hash.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>

static int split(const char *s, unsigned flags, char *host, int *port)
{
	return zw_addr_split(s, strlen(s), flags, host, ZW_ADDR_HOST_MAX, port);
}

static void test_addr_split(void **state)
{
	char host[ZW_ADDR_HOST_MAX];
	int port;
	(void)state;
	assert_int_equal(split("10.0.0.1:80", 0, host, &port), 0);
	assert_string_equal(host, "10.0.0.1");
	assert_int_equal(port, 80);
	assert_int_equal(split("[::1]:8443", 0, host, &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 8443);
	assert_int_equal(split("name.example:65535", 0, host, &port), 0);
	/* ":port" only for listeners; port 0 only with ZW_ADDR_PORT_ZERO */
	assert_true(split(":80", 0, host, &port) < 0);
	assert_int_equal(split(":80", ZW_ADDR_LISTEN, host, &port), 0);
	assert_string_equal(host, "");
	assert_true(split("h:0", 0, host, &port) < 0);
	assert_int_equal(split("h:0", ZW_ADDR_LISTEN, host, &port), 0);
	/* no port: only when optional */
	assert_true(split("10.0.0.1", 0, host, &port) < 0);
	assert_int_equal(split("10.0.0.1", ZW_ADDR_PORT_OPTIONAL, host, &port), 0);
	assert_int_equal(port, -1);
	assert_int_equal(split("fd00::1", ZW_ADDR_PORT_OPTIONAL, host, &port), 0);
	assert_string_equal(host, "fd00::1");
	assert_int_equal(split("[fd00::1]", ZW_ADDR_PORT_OPTIONAL, host, &port), 0);
	/* bare IPv6 with a port is ambiguous: brackets required */
	assert_true(split("::1:80", ZW_ADDR_LISTEN, host, &port) < 0);
	const char *bad[] = {"h:",      "h:65536", "h:-1",  "h:+80", "h: 80",   "h:8a",
	                     "[::1]80", "[::1",    "[]:80", "",      "h:123456"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_true(split(bad[i], ZW_ADDR_LISTEN | ZW_ADDR_PORT_OPTIONAL, host, &port) < 0);
	/* len bounds the input */
	assert_int_equal(zw_addr_split("1.2.3.4:80,x", 10, 0, host, sizeof(host), &port), 0);
	assert_int_equal(port, 80);
	assert_true(zw_addr_split("1.2.3.4:80", 10, 0, host, 4, &port) < 0);
}

static void test_addr_parse(void **state)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	(void)state;
	assert_int_equal(zw_addr_parse(":8080", ZW_ADDR_LISTEN, -1, &ss), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(a4->sin_port), 8080);
	assert_int_equal(a4->sin_addr.s_addr, htonl(INADDR_ANY));
	assert_int_equal(zw_addr_parse("localhost:1", 0, -1, &ss), 0);
	assert_int_equal(a4->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	assert_int_equal(zw_addr_parse("[::]:9090", ZW_ADDR_LISTEN, -1, &ss), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(zw_addr_parse("10.1.2.3", ZW_ADDR_PORT_OPTIONAL, 9091, &ss), 0);
	assert_int_equal(ntohs(a4->sin_port), 9091);
	assert_true(zw_addr_parse("10.1.2.3", 0, 9091, &ss) < 0);
	assert_true(zw_addr_parse("no.such.name:80", 0, -1, &ss) < 0); /* never resolved */
	assert_true(zw_addr_parse(NULL, 0, -1, &ss) < 0);
}

static void test_api_version(void **state)
{
	size_t gl;
	const char *v;
	(void)state;
	assert_int_equal(zw_api_version_split("apps/v1", &gl, &v), 0);
	assert_int_equal(gl, 4);
	assert_string_equal(v, "v1");
	assert_int_equal(zw_api_version_split("v1", &gl, &v), 0);
	assert_int_equal(gl, 0);
	assert_string_equal(v, "v1");
	assert_true(zw_api_version_split("keda.sh/", &gl, &v) < 0);
	assert_true(zw_api_version_split(NULL, &gl, &v) < 0);
	assert_true(zw_api_group_is("keda.sh/v1alpha1", "keda.sh", &v));
	assert_string_equal(v, "v1alpha1");
	assert_false(zw_api_group_is("http.keda.sh/v1alpha1", "keda.sh", NULL));
	assert_false(zw_api_group_is("keda.shx/v1", "keda.sh", NULL));
	assert_true(zw_api_group_is("v1", "", NULL));
	assert_false(zw_api_group_is(NULL, "", NULL));
}

static void test_hash(void **state)
{
	(void)state;
	/* FNV-1a 64 from zerowire's basis (see hash.h), pinned: table layouts
	 * depend on it */
	assert_true(zw_hash_str("") == 0x14650fb0739d0383ull);
	assert_true(zw_hash_str("a") == 0x44bd8ad473cd9906ull);
	assert_true(zw_hash_bytes(ZW_HASH_INIT, "foobar", 6) == 0x88fad7c0a8ff07f2ull);
	assert_true(zw_hash_bytes(zw_hash_bytes(ZW_HASH_INIT, "foo", 3), "bar", 3) ==
	            zw_hash_str("foobar"));
	/* FNV-1a 32 reference values (KEDA metric names carry them) */
	assert_true(zw_hash32("", 0) == 0x811c9dc5u);
	assert_true(zw_hash32("a", 1) == 0xe40c292cu);
	assert_true(zw_hash32("foobar", 6) == 0xbf9cf968u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_addr_split),
	        cmocka_unit_test(test_addr_parse),
	        cmocka_unit_test(test_api_version),
	        cmocka_unit_test(test_hash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
