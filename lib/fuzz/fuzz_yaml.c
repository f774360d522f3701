/* libFuzzer target: YAML to JSON must never crash, leak or loop, whatever the input. */
#include <stddef.h>
#include <stdint.h>

#include "yamljson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	json_t *docs = NULL;

	if (zw_yaml_load((const char *)data, size, &docs, err, sizeof(err)) == 0)
		json_decref(docs);
	return 0;
}
