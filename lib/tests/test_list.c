/* Unit tests for lib/list.h: pushing and unlinking at the front, middle and
 * back of a list, FIFO queues with a tail, and that unlinked elements have
 * no links left. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "list.h"

struct item {
	int v;
	struct item *prev, *next;
};

/* Writes the values from head forwards into out ("1,2,3") and checks that
 * every back link matches and that tail (when given) is the last one. */
static void render(const struct item *head, const struct item *tail, char *out, size_t len)
{
	const struct item *prev = NULL;
	size_t o = 0;

	out[0] = '\0';
	for (const struct item *it = head; it; prev = it, it = it->next) {
		assert_ptr_equal(it->prev, prev);
		o += (size_t)snprintf(out + o, len - o, "%s%d", o ? "," : "", it->v);
	}
	if (tail)
		assert_ptr_equal(tail, prev);
}

static void test_list(void **state)
{
	struct item a = {.v = 1}, b = {.v = 2}, c = {.v = 3};
	struct item *head = NULL;
	char s[64];

	(void)state;
	ZW_LIST_PUSH(head, &a);
	ZW_LIST_PUSH(head, &b);
	ZW_LIST_PUSH(head, &c);
	render(head, NULL, s, sizeof(s));
	assert_string_equal(s, "3,2,1");
	ZW_LIST_UNLINK(head, &b); /* middle */
	render(head, NULL, s, sizeof(s));
	assert_string_equal(s, "3,1");
	assert_null(b.prev);
	assert_null(b.next);
	ZW_LIST_UNLINK(head, &c); /* front */
	render(head, NULL, s, sizeof(s));
	assert_string_equal(s, "1");
	ZW_LIST_PUSH(head, &b);
	ZW_LIST_UNLINK(head, &a); /* back */
	render(head, NULL, s, sizeof(s));
	assert_string_equal(s, "2");
	ZW_LIST_UNLINK(head, &b); /* the last one */
	assert_null(head);
}

static void test_queue(void **state)
{
	struct item it[4] = {{.v = 1}, {.v = 2}, {.v = 3}, {.v = 4}};
	struct item *head = NULL, *tail = NULL;
	char s[64];

	(void)state;
	for (int i = 0; i < 4; i++)
		ZW_QUEUE_APPEND(head, tail, &it[i]);
	render(head, tail, s, sizeof(s));
	assert_string_equal(s, "1,2,3,4");
	ZW_QUEUE_UNLINK(head, tail, &it[3]); /* back: tail moves */
	render(head, tail, s, sizeof(s));
	assert_string_equal(s, "1,2,3");
	ZW_QUEUE_UNLINK(head, tail, &it[0]); /* front: head moves */
	render(head, tail, s, sizeof(s));
	assert_string_equal(s, "2,3");
	ZW_QUEUE_UNLINK(head, tail, &it[1]);
	ZW_QUEUE_APPEND(head, tail, &it[0]);
	render(head, tail, s, sizeof(s));
	assert_string_equal(s, "3,1");
	ZW_QUEUE_UNLINK(head, tail, &it[2]);
	ZW_QUEUE_UNLINK(head, tail, &it[0]);
	assert_null(head);
	assert_null(tail);
	for (int i = 0; i < 4; i++) {
		assert_null(it[i].prev);
		assert_null(it[i].next);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_list),
	        cmocka_unit_test(test_queue),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
