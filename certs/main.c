/* zerowire-certs entry point. */
#include "log.h"

#include <stdio.h>
#include <string.h>

static const char usage[] = "usage: zerowire-certs [--help] [--version]\n";

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(usage, stdout);
			return 0;
		}
		if (strcmp(argv[i], "--version") == 0) {
			printf("zerowire-certs %s\n", ZW_VERSION);
			return 0;
		}
		fprintf(stderr, "zerowire-certs: unknown argument %s\n%s", argv[i], usage);
		return 2;
	}
	zw_log_init("certs", ZW_LOG_INFO);
	zw_log(ZW_LOG_ERROR, "not_implemented", NULL);
	return 1;
}
