/* Unit tests for proxy/auth.c: token file parsing, the Bearer check (missing
 * -> 401, wrong -> 403), and re-reading a rotated token file with the grace
 * period for the previous token. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth.h"

static void test_parse_token(void **state)
{
	(void)state;
	char out[ZW_AUTH_TOKEN_MAX + 1];
	assert_int_equal(zw_auth_parse_token("abc\n", 4, out, sizeof(out)), 3);
	assert_string_equal(out, "abc");
	assert_int_equal(zw_auth_parse_token("  \tx-Y_z.~+/=\r\n\n", 16, out, sizeof(out)), 10);
	assert_string_equal(out, "x-Y_z.~+/=");
	assert_int_equal(zw_auth_parse_token("", 0, out, sizeof(out)), -EINVAL);
	assert_int_equal(zw_auth_parse_token(" \n\t", 3, out, sizeof(out)), -EINVAL);
	assert_int_equal(zw_auth_parse_token("a b", 3, out, sizeof(out)), -EINVAL);
	assert_int_equal(zw_auth_parse_token("a\x01", 2, out, sizeof(out)), -EINVAL);
	assert_int_equal(zw_auth_parse_token("a\xc3\xa9", 3, out, sizeof(out)), -EINVAL);
	/* Only the given length counts (no NUL needed). */
	assert_int_equal(zw_auth_parse_token("abcdef", 2, out, sizeof(out)), 2);
	assert_string_equal(out, "ab");

	char big[ZW_AUTH_TOKEN_MAX + 2];
	memset(big, 'k', sizeof(big));
	assert_int_equal(zw_auth_parse_token(big, ZW_AUTH_TOKEN_MAX, out, sizeof(out)),
	                 ZW_AUTH_TOKEN_MAX);
	assert_int_equal(zw_auth_parse_token(big, ZW_AUTH_TOKEN_MAX + 1, out, sizeof(out)), -E2BIG);
	assert_int_equal(zw_auth_parse_token("abcd", 4, out, 4), -E2BIG);
}

static void test_check_bearer(void **state)
{
	(void)state;
	const char *tok = "s3cret-token";
	assert_int_equal(zw_auth_check_bearer(tok, "Bearer s3cret-token"), ZW_AUTH_OK);
	assert_int_equal(zw_auth_check_bearer(tok, "bearer s3cret-token"), ZW_AUTH_OK);
	assert_int_equal(zw_auth_check_bearer(tok, "  BEARER \t s3cret-token  "), ZW_AUTH_OK);
	/* No credentials: 401. */
	assert_int_equal(zw_auth_check_bearer(tok, NULL), ZW_AUTH_MISSING);
	assert_int_equal(zw_auth_check_bearer(tok, ""), ZW_AUTH_MISSING);
	assert_int_equal(zw_auth_check_bearer(tok, "Bearer"), ZW_AUTH_MISSING);
	assert_int_equal(zw_auth_check_bearer(tok, "Bearer   "), ZW_AUTH_MISSING);
	assert_int_equal(zw_auth_check_bearer(tok, "Basic czNjcmV0"), ZW_AUTH_MISSING);
	assert_int_equal(zw_auth_check_bearer(tok, "Bearers3cret-token"), ZW_AUTH_MISSING);
	/* Wrong credentials: 403, whatever their length. */
	assert_int_equal(zw_auth_check_bearer(tok, "Bearer s3cret-toke"), ZW_AUTH_WRONG);
	assert_int_equal(zw_auth_check_bearer(tok, "Bearer s3cret-token2"), ZW_AUTH_WRONG);
	assert_int_equal(zw_auth_check_bearer(tok, "Bearer S3cret-token"), ZW_AUTH_WRONG);
	assert_int_equal(zw_auth_check_bearer(tok, "Bearer x"), ZW_AUTH_WRONG);
	/* The token repeated is not the token (the comparison wraps around
	 * the expected value). */
	assert_int_equal(zw_auth_check_bearer(tok, "Bearer s3cret-tokens3cret-token"),
	                 ZW_AUTH_WRONG);
	/* No token configured: never OK. */
	assert_int_equal(zw_auth_check_bearer(NULL, "Bearer x"), ZW_AUTH_WRONG);
	assert_int_equal(zw_auth_check_bearer("", "Bearer x"), ZW_AUTH_WRONG);
	assert_int_equal(zw_auth_check_bearer(NULL, NULL), ZW_AUTH_MISSING);
	assert_int_equal(zw_auth_check(NULL, "Bearer x"), ZW_AUTH_WRONG);
	assert_int_equal(zw_auth_check(NULL, NULL), ZW_AUTH_MISSING);
	assert_null(zw_auth_token(NULL));
}

/* Writes data to dir/name through a rename, as the kubelet swaps a Secret
 * volume, so the path's inode changes. */
static void put_file(const char *dir, const char *name, const char *data)
{
	char path[512], tmp[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	FILE *f = fopen(tmp, "w");
	assert_non_null(f);
	fputs(data, f);
	fclose(f);
	assert_int_equal(rename(tmp, path), 0);
}

struct fixture {
	char dir[256];
	char path[300];
	uv_loop_t loop;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/zw-auth-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/token", f->dir);
	uv_loop_init(&f->loop);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	uv_run(&f->loop, UV_RUN_DEFAULT);
	uv_loop_close(&f->loop);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void test_start_needs_valid_file(void **state)
{
	struct fixture *f = *state;
	struct zw_auth *a = NULL;
	struct zw_auth_config cfg = {.path = f->path, .check_ms = 0};
	assert_int_equal(zw_auth_new(&f->loop, &cfg, &a), -ENOENT);
	put_file(f->dir, "token", "\n");
	assert_int_equal(zw_auth_new(&f->loop, &cfg, &a), -EINVAL);
	char big[ZW_AUTH_FILE_MAX + 10];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	put_file(f->dir, "token", big);
	assert_int_equal(zw_auth_new(&f->loop, &cfg, &a), -E2BIG);
	assert_null(a);
}

static void test_reload_and_grace(void **state)
{
	struct fixture *f = *state;
	struct zw_auth *a = NULL;
	struct zw_auth_config cfg = {.path = f->path, .grace_ms = 60000};
	put_file(f->dir, "token", "one\n");
	assert_int_equal(zw_auth_new(&f->loop, &cfg, &a), 0);
	assert_string_equal(zw_auth_token(a), "one");
	assert_int_equal(zw_auth_check(a, "Bearer one"), ZW_AUTH_OK);
	assert_int_equal(zw_auth_reload(a), 0); /* unchanged */

	put_file(f->dir, "token", "two");
	assert_int_equal(zw_auth_reload(a), 1);
	assert_string_equal(zw_auth_token(a), "two");
	assert_int_equal(zw_auth_check(a, "Bearer two"), ZW_AUTH_OK);
	assert_int_equal(zw_auth_check(a, "Bearer one"), ZW_AUTH_OK); /* grace */
	assert_int_equal(zw_auth_check(a, "Bearer three"), ZW_AUTH_WRONG);
	assert_int_equal(zw_auth_check(a, NULL), ZW_AUTH_MISSING);

	/* A broken file keeps the token in use, and is not read again until it
	 * changes. */
	put_file(f->dir, "token", "bad token\n");
	assert_int_equal(zw_auth_reload(a), -EINVAL);
	assert_int_equal(zw_auth_reload(a), 0);
	assert_string_equal(zw_auth_token(a), "two");
	unlink(f->path);
	assert_int_equal(zw_auth_reload(a), -ENOENT);
	assert_string_equal(zw_auth_token(a), "two");

	/* The same token rewritten is not a change. */
	put_file(f->dir, "token", "two\n");
	assert_int_equal(zw_auth_reload(a), 0);
	assert_int_equal(zw_auth_check(a, "Bearer one"), ZW_AUTH_OK);
	zw_auth_close(a);
}

static void test_no_grace(void **state)
{
	struct fixture *f = *state;
	struct zw_auth *a = NULL;
	struct zw_auth_config cfg = {.path = f->path, .grace_ms = 0};
	put_file(f->dir, "token", "one");
	assert_int_equal(zw_auth_new(&f->loop, &cfg, &a), 0);
	put_file(f->dir, "token", "two");
	assert_int_equal(zw_auth_reload(a), 1);
	assert_int_equal(zw_auth_check(a, "Bearer one"), ZW_AUTH_WRONG);
	assert_int_equal(zw_auth_check(a, "Bearer two"), ZW_AUTH_OK);
	zw_auth_close(a);
}

struct timer_ctx {
	struct fixture *f;
	int reloads;
	int last_rc;
	int step;
};

static void on_reload(void *arg, int rc)
{
	struct timer_ctx *t = arg;
	t->reloads++;
	t->last_rc = rc;
}

static void on_step(uv_timer_t *h)
{
	struct timer_ctx *t = h->data;
	if (t->step++ == 0) {
		put_file(t->f->dir, "token", "rotated");
		return;
	}
	if (t->reloads > 0 || t->step > 100)
		uv_close((uv_handle_t *)h, NULL);
}

static void test_timer_rereads(void **state)
{
	struct fixture *f = *state;
	struct zw_auth *a = NULL;
	struct timer_ctx t = {.f = f};
	struct zw_auth_config cfg = {
	        .path = f->path, .check_ms = 5, .on_reload = on_reload, .arg = &t};
	put_file(f->dir, "token", "first");
	assert_int_equal(zw_auth_new(&f->loop, &cfg, &a), 0);
	/* The re-read timer alone does not keep the loop running. */
	assert_int_equal(uv_run(&f->loop, UV_RUN_NOWAIT), 0);
	uv_timer_t step;
	uv_timer_init(&f->loop, &step);
	step.data = &t;
	uv_timer_start(&step, on_step, 1, 10);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(t.reloads, 1);
	assert_int_equal(t.last_rc, 0);
	assert_string_equal(zw_auth_token(a), "rotated");
	zw_auth_close(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_parse_token),
	        cmocka_unit_test(test_check_bearer),
	        cmocka_unit_test_setup_teardown(test_start_needs_valid_file, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_reload_and_grace, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_no_grace, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_timer_rereads, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
