/* libFuzzer target, differential: whatever zw_json_parse accepts, jansson's
 * json_loadb(.., 0) must accept too, with an equal value whose
 * serialisation (member order included) is the same. Either the fast
 * parser's answer is jansson's or it leaves the text to jansson. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *ours = zw_json_parse((const char *)data, size);
	json_t *theirs = json_loadb((const char *)data, size, 0, NULL);
	if (ours) {
		char *a = json_dumps(ours, JSON_COMPACT);
		char *b = theirs ? json_dumps(theirs, JSON_COMPACT) : NULL;
		if (!theirs || !json_equal(ours, theirs) || !a || !b || strcmp(a, b) != 0)
			abort();
		free(a);
		free(b);
	}
	json_decref(ours);
	json_decref(theirs);
	return 0;
}
