/* Unit tests for lib/duration: Go-style durations accepted and rejected,
 * with the millisecond values they give. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>

#include "duration.h"

static void test_duration(void **state)
{
	static const struct {
		const char *in;
		uint64_t ms;
	} ok[] = {
	        {"0", 0},
	        {"1", 1000},
	        {"1.5", 1500},
	        {"0s", 0},
	        {"15s", 15000},
	        {"1m", 60000},
	        {"60s", 60000},
	        {"1h", 3600000},
	        {"1h30m", 5400000},
	        {"2h45m30.5s", 9930500},
	        {"500ms", 500},
	        {"1.5s", 1500},
	        {".5s", 500},
	        {"1.s", 1000},
	        {"+5s", 5000},
	        {"1m1ms", 60001},
	        {"1us", 1},
	        {"1\xc2\xb5s", 1},
	        {"1\xce\xbcs", 1},
	        {"999999ns", 1},
	        {"1000000ns", 1},
	        {"1000001ns", 2},
	        {"2000000us", 2000},
	        {"0.0001ms", 1},
	        {"1.000000000000000000001s", 1000},
	        {"2562047h", 9223369200000ull},
	        {"9223372036854775807ns", 9223372036855ull},
	};
	static const char *const bad[] = {"",
	                                  "-1s",
	                                  "-0",
	                                  "s",
	                                  "1x",
	                                  "1m-1s",
	                                  "1 s",
	                                  " 1s",
	                                  "1s ",
	                                  "1h30",
	                                  "1.2.3s",
	                                  "abc",
	                                  "1e3s",
	                                  "NaN",
	                                  ".s",
	                                  "+",
	                                  "1ss",
	                                  "2562048h",
	                                  "9223372036854775808ns",
	                                  "5000000000000000000000h",
	                                  "1h-",
	                                  "１s"};
	uint64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = 42;
		if (zw_duration_parse_ms(ok[i].in, &v) != 0 || v != ok[i].ms)
			fail_msg("duration %s: got %" PRIu64 ", expected %" PRIu64, ok[i].in, v,
			         ok[i].ms);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 42;
		if (zw_duration_parse_ms(bad[i], &v) != -1 || v != 42)
			fail_msg("duration \"%s\" accepted (%" PRIu64 ")", bad[i], v);
	}
	assert_int_equal(zw_duration_parse_ms(NULL, &v), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_duration),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
