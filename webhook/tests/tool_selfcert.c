/* Test tool: runs one self-managed certificate round (zw_selfcert_ensure, then
 * zw_selfcert_sync_cabundle) against a real API server and prints
 *   result=<unchanged|created|adopted> cert_sha256=<hex> ca_sha256=<hex> patched=<n>
 * usage: tool_selfcert KUBECONFIG SECRET_NS SECRET_NAME SVC_NS SVC_NAME MWC|- [--force] [--ip A] */
#include "kubeconfig.h"
#include "selfcert.h"

#include <gnutls/crypto.h>
#include <stdio.h>
#include <string.h>

static void sha(const char *pem, char out[65])
{
	unsigned char d[32];

	gnutls_hash_fast(GNUTLS_DIG_SHA256, pem, strlen(pem), d);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

int main(int argc, char **argv)
{
	static const char *const names[] = {"unchanged", "created", "adopted"};
	struct zw_selfcert_opts o = {0};
	struct zw_selfcert_state st;
	struct zw_kube_config *cfg = NULL;
	struct zw_kube *k = NULL;
	const char *ips[4];
	char err[ZW_SELFCERT_ERRLEN], h1[65], h2[65];
	int force = 0, rc, patched = 0, status = 1;

	if (argc < 7) {
		fprintf(stderr,
		        "usage: %s KUBECONFIG SECRET_NS SECRET_NAME SVC_NS SVC_NAME MWC|- "
		        "[--force] [--ip A]\n",
		        argv[0]);
		return 2;
	}
	for (int i = 7; i < argc; i++) {
		if (strcmp(argv[i], "--force") == 0)
			force = 1;
		else if (strcmp(argv[i], "--ip") == 0 && i + 1 < argc && o.n_ips < 4)
			ips[o.n_ips++] = argv[++i];
	}
	o.secret_namespace = argv[2];
	o.secret_name = argv[3];
	o.service_namespace = argv[4];
	o.service_name = argv[5];
	o.ips = ips;
	if (zw_kube_config_load_file(argv[1], NULL, &cfg, err, sizeof(err)) != 0 ||
	    zw_kube_new(cfg, &k) != 0) {
		fprintf(stderr, "config: %s\n", err);
		goto out;
	}
	rc = zw_selfcert_ensure(k, &o, force, &st, err);
	if (rc < 0) {
		fprintf(stderr, "ensure: %s\n", err);
		goto out;
	}
	if (strcmp(argv[6], "-") != 0) {
		patched = zw_selfcert_sync_cabundle(k, argv[6], st.ca_bundle, err);
		if (patched < 0) {
			fprintf(stderr, "sync: %s\n", err);
			zw_selfcert_state_free(&st);
			goto out;
		}
	}
	sha(st.bundle.cert, h1);
	sha(st.bundle.ca_cert, h2);
	printf("result=%s cert_sha256=%s ca_sha256=%s patched=%d\n", names[rc], h1, h2, patched);
	zw_selfcert_state_free(&st);
	status = 0;
out:
	zw_kube_free(k);
	zw_kube_config_free(cfg);
	return status;
}
