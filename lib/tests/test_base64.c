/* Unit tests for lib/base64.c (RFC 4648 test vectors, whitespace, errors). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "base64.h"

static const char *const vectors[][2] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
};

static void test_rfc4648_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		char *enc = zw_base64_encode(vectors[i][0], strlen(vectors[i][0]));
		size_t n;
		unsigned char *dec;

		assert_string_equal(enc, vectors[i][1]);
		dec = zw_base64_decode(enc, strlen(enc), &n);
		assert_non_null(dec);
		assert_int_equal(n, strlen(vectors[i][0]));
		assert_memory_equal(dec, vectors[i][0], n);
		free(enc);
		free(dec);
	}
}

static void test_binary_roundtrip_and_whitespace(void **state)
{
	(void)state;
	unsigned char bin[256];
	size_t n;

	for (int i = 0; i < 256; i++)
		bin[i] = (unsigned char)i;
	char *enc = zw_base64_encode(bin, sizeof(bin));
	/* Split over lines as PEM or YAML block scalars do. */
	char wrapped[512];
	size_t w = 0;
	for (size_t i = 0; enc[i]; i++) {
		wrapped[w++] = enc[i];
		if (i % 64 == 63)
			wrapped[w++] = '\n';
	}
	unsigned char *dec = zw_base64_decode(wrapped, w, &n);
	assert_non_null(dec);
	assert_int_equal(n, sizeof(bin));
	assert_memory_equal(dec, bin, n);
	free(dec);
	/* Padding is optional. */
	dec = zw_base64_decode("Zm9vYg", 6, &n);
	assert_non_null(dec);
	assert_string_equal((char *)dec, "foob");
	free(dec);
	free(enc);
}

static void test_encode_to_writes_exactly_its_length(void **state)
{
	(void)state;
	const char *in = "foobar!";
	char out[16];

	for (size_t len = 0; len <= 7; len++) {
		char *whole = zw_base64_encode(in, len);
		memset(out, '#', sizeof(out));
		assert_int_equal(zw_base64_encode_to(out, in, len), ZW_BASE64_LEN(len));
		assert_int_equal(ZW_BASE64_LEN(len), strlen(whole));
		assert_memory_equal(out, whole, strlen(whole));
		assert_int_equal(out[ZW_BASE64_LEN(len)], '#');
		free(whole);
	}
}

static void test_every_triple_value(void **state)
{
	(void)state;
	/* Each 12-bit half of a group is looked up two characters at a time:
	 * every value of both halves, checked by decoding. */
	unsigned char in[3 * 4096], *dec;
	size_t n;
	for (int i = 0; i < 4096; i++) {
		in[3 * i] = (unsigned char)(i >> 4);
		in[3 * i + 1] = (unsigned char)((i & 15) << 4 | (i >> 8));
		in[3 * i + 2] = (unsigned char)i;
	}
	char *enc = zw_base64_encode(in, sizeof(in));
	assert_non_null(enc);
	assert_int_equal(strlen(enc), ZW_BASE64_LEN(sizeof(in)));
	dec = zw_base64_decode(enc, strlen(enc), &n);
	assert_non_null(dec);
	assert_int_equal(n, sizeof(in));
	assert_memory_equal(dec, in, n);
	free(dec);
	free(enc);
}

static void test_invalid_input(void **state)
{
	(void)state;
	size_t n;
	const char *bad[] = {"Zm9v!", "Z", "Zm9vY", "Zg==Zg==", "Zg===", "-_-_"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_null(zw_base64_decode(bad[i], strlen(bad[i]), &n));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_rfc4648_vectors),
	        cmocka_unit_test(test_binary_roundtrip_and_whitespace),
	        cmocka_unit_test(test_invalid_input),
	        cmocka_unit_test(test_encode_to_writes_exactly_its_length),
	        cmocka_unit_test(test_every_triple_value),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
