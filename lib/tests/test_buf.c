/* Unit tests for lib/buf: appending under a limit, formatted text, the
 * grow/commit pair read loops use, handing the text over, and that a
 * refused or failed call leaves the buffer as it was. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "buf.h"

static void test_append_limit(void **state)
{
	struct zw_buf b = {0};

	(void)state;
	assert_int_equal(zw_buf_append(&b, "", 0, 4), 0);
	assert_non_null(b.data); /* an empty append still gives a string */
	assert_string_equal(b.data, "");
	assert_int_equal(zw_buf_append(&b, "abc", 3, 4), 0);
	assert_int_equal(zw_buf_append(&b, "d", 1, 4), 0);
	assert_int_equal(b.len, 4);
	assert_string_equal(b.data, "abcd");
	/* one byte over the limit: refused, nothing appended */
	assert_int_equal(zw_buf_append(&b, "e", 1, 4), ZW_BUF_EFULL);
	assert_int_equal(b.len, 4);
	assert_string_equal(b.data, "abcd");
	/* memory never grows beyond max + 1 */
	assert_true(b.cap <= 5);
	/* n larger than max on its own, and a huge n: refused without overflow */
	assert_int_equal(zw_buf_append(&b, "x", SIZE_MAX, SIZE_MAX), ZW_BUF_EFULL);
	assert_int_equal(zw_buf_append(&b, "x", 10, 4), ZW_BUF_EFULL);
	zw_buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	zw_buf_free(&b); /* twice is fine */
	zw_buf_free(NULL);
}

static void test_append_grows(void **state)
{
	struct zw_buf b = {0};
	char chunk[1000];

	(void)state;
	memset(chunk, 'x', sizeof(chunk));
	for (int i = 0; i < 100; i++)
		assert_int_equal(zw_buf_append(&b, chunk, sizeof(chunk), SIZE_MAX), 0);
	assert_int_equal(b.len, 100000);
	assert_true(b.cap > b.len);
	assert_int_equal(b.data[b.len], '\0');
	for (size_t i = 0; i < b.len; i++)
		if (b.data[i] != 'x')
			fail_msg("byte %zu is %d", i, b.data[i]);
	zw_buf_free(&b);
}

static void test_appendf(void **state)
{
	struct zw_buf b = {0};
	char big[600];

	(void)state;
	assert_int_equal(zw_buf_appendf(&b, 100, "%s=%d;", "a", 1), 0);
	assert_int_equal(zw_buf_appendf(&b, 100, "%s=%d;", "bb", 22), 0);
	assert_string_equal(b.data, "a=1;bb=22;");
	assert_int_equal(b.len, 10);
	/* text that needs a larger allocation than the first one */
	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(zw_buf_appendf(&b, SIZE_MAX, "[%s]", big), 0);
	assert_int_equal(b.len, 10 + 2 + 599);
	assert_int_equal(b.data[10], '[');
	assert_int_equal(b.data[b.len - 1], ']');
	assert_int_equal(b.data[b.len], '\0');
	/* over the limit: refused and the buffer is as it was, even where the
	 * text was partly written into spare room */
	size_t len = b.len;
	assert_int_equal(zw_buf_appendf(&b, len + 3, "%s", "abcd"), ZW_BUF_EFULL);
	assert_int_equal(b.len, len);
	assert_int_equal(b.data[len], '\0');
	assert_int_equal(zw_buf_appendf(&b, len + 4, "%s", "abcd"), 0);
	assert_string_equal(b.data + len, "abcd");
	zw_buf_free(&b);
}

static void test_grow_commit(void **state)
{
	struct zw_buf b = {0};
	const char *src = "0123456789abcdefghij"; /* 20 bytes */
	size_t off = 0, room = 0;
	int rc;

	(void)state;
	/* a read loop with a limit of 20: everything fits */
	while ((rc = zw_buf_grow(&b, 20, &room)) == 0 && off < 20) {
		size_t n = room < 7 ? room : 7; /* short reads */
		if (n > 20 - off)
			n = 20 - off;
		assert_true(room >= 1);
		assert_true(b.len + room <= 20);
		memcpy(b.data + b.len, src + off, n);
		zw_buf_commit(&b, n);
		off += n;
	}
	assert_int_equal(b.len, 20);
	assert_string_equal(b.data, src);
	/* at the limit: no room, and a refusal says so */
	assert_int_equal(zw_buf_grow(&b, 20, &room), ZW_BUF_EFULL);
	assert_int_equal(zw_buf_grow(&b, 21, &room), 0);
	assert_int_equal(room, 1);
	zw_buf_free(&b);

	/* grown but nothing written: still an empty string */
	assert_int_equal(zw_buf_grow(&b, 10, &room), 0);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	zw_buf_free(&b);

	/* a limit of 0 refuses at once */
	assert_int_equal(zw_buf_grow(&b, 0, &room), ZW_BUF_EFULL);
	/* no limit: room starts at ZW_BUF_MIN_CAP - 1 and doubles */
	assert_int_equal(zw_buf_grow(&b, SIZE_MAX, &room), 0);
	assert_int_equal(room, ZW_BUF_MIN_CAP - 1);
	zw_buf_commit(&b, room);
	assert_int_equal(zw_buf_grow(&b, SIZE_MAX, &room), 0);
	assert_int_equal(room, ZW_BUF_MIN_CAP);
	zw_buf_free(&b);
}

static void test_reserve(void **state)
{
	struct zw_buf b = {0};

	(void)state;
	assert_int_equal(zw_buf_reserve(&b, 1000, SIZE_MAX), 0);
	assert_int_equal(b.cap, 1000); /* exactly, not rounded */
	assert_string_equal(b.data, "");
	assert_int_equal(zw_buf_reserve(&b, 10, SIZE_MAX), 0); /* never shrinks */
	assert_int_equal(b.cap, 1000);
	/* appends within the reservation do not move the memory */
	char *before = b.data;
	for (int i = 0; i < 999; i++)
		assert_int_equal(zw_buf_append(&b, "z", 1, SIZE_MAX), 0);
	assert_ptr_equal(b.data, before);
	assert_int_equal(b.len, 999);
	zw_buf_free(&b);
	/* clamped to max + 1 */
	assert_int_equal(zw_buf_reserve(&b, 1000, 99), 0);
	assert_int_equal(b.cap, 100);
	zw_buf_free(&b);
}

static void test_take(void **state)
{
	struct zw_buf b = {0};
	size_t len = 99;
	char *p;

	(void)state;
	p = zw_buf_take(&b, &len); /* empty: a new "" */
	assert_non_null(p);
	assert_string_equal(p, "");
	assert_int_equal(len, 0);
	free(p);
	assert_int_equal(zw_buf_append(&b, "hello", 5, 10), 0);
	p = zw_buf_take(&b, &len);
	assert_string_equal(p, "hello");
	assert_int_equal(len, 5);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	free(p);
	assert_int_equal(zw_buf_append(&b, "x", 1, 10), 0);
	p = zw_buf_take(&b, NULL);
	assert_string_equal(p, "x");
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_append_limit), cmocka_unit_test(test_append_grows),
	        cmocka_unit_test(test_appendf),      cmocka_unit_test(test_grow_commit),
	        cmocka_unit_test(test_reserve),      cmocka_unit_test(test_take),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
