/* Go-style duration parsing (see duration.h). */
#include "duration.h"

#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#define NS_PER_MS 1000000ull

int zw_duration_parse_ms(const char *s, uint64_t *out)
{
	static const struct {
		const char *unit;
		uint64_t ns;
	} units[] = {
	        {"ns", 1ull},           {"us", 1000ull},
	        {"\xc2\xb5s", 1000ull}, /* U+00B5 micro sign */
	        {"\xce\xbcs", 1000ull}, /* U+03BC Greek mu */
	        {"ms", 1000000ull},     {"s", 1000000000ull},
	        {"m", 60000000000ull},  {"h", 3600000000000ull},
	};
	const uint64_t max_ns = (uint64_t)INT64_MAX;
	const char *p = s;
	uint64_t total = 0;
	bool first = true;

	if (!s)
		return -1;
	if (*p == '+')
		p++;
	if (!*p)
		return -1;
	while (*p) {
		uint64_t v = 0, f = 0, scale = 1, unit = 0;
		bool digits = false;
		size_t k;

		for (; isdigit((unsigned char)*p); p++) {
			if (v > max_ns / 10)
				return -1;
			v = v * 10 + (uint64_t)(*p - '0');
			digits = true;
		}
		if (*p == '.') {
			for (p++; isdigit((unsigned char)*p); p++) {
				if (scale < 1000000000000000000ull) {
					f = f * 10 + (uint64_t)(*p - '0');
					scale *= 10;
				}
				digits = true;
			}
		}
		if (!digits)
			return -1;
		if (!*p && first) {
			unit = 1000000000ull; /* a bare number is seconds */
		} else {
			/* longest unit first: "ms" before "m" */
			size_t best = 0;
			for (k = 0; k < sizeof(units) / sizeof(units[0]); k++) {
				size_t ul = strlen(units[k].unit);
				if (ul > best && strncmp(p, units[k].unit, ul) == 0) {
					best = ul;
					unit = units[k].ns;
				}
			}
			if (!best)
				return -1;
			p += best;
		}
		if (v > max_ns / unit)
			return -1;
		v *= unit;
		if (f) {
			double extra = (double)f * ((double)unit / (double)scale);
			if (extra >= (double)(max_ns - v))
				return -1;
			v += (uint64_t)extra;
		}
		if (v > max_ns - total)
			return -1;
		total += v;
		first = false;
	}
	*out = total / NS_PER_MS + (total % NS_PER_MS ? 1 : 0);
	return 0;
}
