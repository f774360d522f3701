/* zerowire-certs: writes a CA and a serving certificate for given names to
 * files, for the webhook's url mode and for development. */
#include "certgen.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef ZW_COMMIT
#define ZW_COMMIT "unknown" /* set by the Makefile from git */
#endif

static const char usage[] =
        "usage: zerowire-certs --out-dir DIR [options]\n"
        "\n"
        "Writes ca.crt, ca.key, tls.crt and tls.key (keys mode 0600) into DIR: a CA\n"
        "(ECDSA P-256, 10 years) and a serving certificate signed by it (1 year).\n"
        "\n"
        "  --dns NAME            DNS subject alternative name (repeatable, or a comma list)\n"
        "  --ip ADDR             IP subject alternative name (repeatable, or a comma list)\n"
        "  --service SVC --namespace NS\n"
        "                        add SVC, SVC.NS, SVC.NS.svc, SVC.NS.svc.cluster.local\n"
        "  --ca-days N           CA validity in days (default 3650)\n"
        "  --days N              serving certificate validity in days (default 365)\n"
        "  --reuse-ca            keep an existing ca.crt/ca.key in DIR, issue only tls.*\n"
        "  --check               check the files in DIR instead of writing: exit 0 when\n"
        "                        valid, 1 when within 30 days of expiry, 2 when unusable\n"
        "  --force               overwrite existing files\n"
        "  --help, --version\n";

#define MAX_ARG_NAMES ZW_CERT_MAX_NAMES

struct names {
	char *store[MAX_ARG_NAMES];
	const char *list[MAX_ARG_NAMES];
	size_t n;
};

static int add_names(struct names *nl, const char *arg)
{
	char *copy = strdup(arg), *save = NULL, *tok;
	int rc = 0;

	if (!copy)
		return -1;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!*tok)
			continue;
		if (nl->n == MAX_ARG_NAMES || !(nl->store[nl->n] = strdup(tok))) {
			rc = -1;
			break;
		}
		nl->list[nl->n] = nl->store[nl->n];
		nl->n++;
	}
	free(copy);
	return rc;
}

static void free_names(struct names *nl)
{
	for (size_t i = 0; i < nl->n; i++)
		free(nl->store[i]);
	nl->n = 0;
}

static int write_file(const char *dir, const char *name, const char *text, mode_t mode, int force)
{
	char path[4096], tmp[4200];
	size_t len = strlen(text);
	int fd, rc = -1;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!force && access(path, F_OK) == 0) {
		fprintf(stderr, "zerowire-certs: %s exists (use --force)\n", path);
		return -1;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd == -1)
		goto fail;
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) == -1) {
		close(fd);
		unlink(tmp);
		goto fail;
	}
	close(fd);
	if (rename(tmp, path) == -1) {
		unlink(tmp);
		goto fail;
	}
	return 0;
fail:
	fprintf(stderr, "zerowire-certs: %s: %s\n", path, strerror(errno));
	return rc;
}

static char *read_file(const char *dir, const char *name)
{
	char path[4096], *buf;
	FILE *f;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || n > (1 << 20) ||
	    fseek(f, 0, SEEK_SET) != 0 || !(buf = malloc((size_t)n + 1))) {
		fclose(f);
		return NULL;
	}
	if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		fclose(f);
		return NULL;
	}
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static int parse_days(const char *s, unsigned *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 1 || v > 36500)
		return -1;
	*out = (unsigned)v;
	return 0;
}

int main(int argc, char **argv)
{
	enum {
		OPT_DNS = 1,
		OPT_IP,
		OPT_SERVICE,
		OPT_NAMESPACE,
		OPT_CA_DAYS,
		OPT_DAYS,
		OPT_OUT,
		OPT_REUSE,
		OPT_CHECK,
		OPT_FORCE,
		OPT_HELP,
		OPT_VERSION
	};
	static const struct option opts[] = {
	        {"dns", required_argument, NULL, OPT_DNS},
	        {"ip", required_argument, NULL, OPT_IP},
	        {"service", required_argument, NULL, OPT_SERVICE},
	        {"namespace", required_argument, NULL, OPT_NAMESPACE},
	        {"ca-days", required_argument, NULL, OPT_CA_DAYS},
	        {"days", required_argument, NULL, OPT_DAYS},
	        {"out-dir", required_argument, NULL, OPT_OUT},
	        {"reuse-ca", no_argument, NULL, OPT_REUSE},
	        {"check", no_argument, NULL, OPT_CHECK},
	        {"force", no_argument, NULL, OPT_FORCE},
	        {"help", no_argument, NULL, OPT_HELP},
	        {"version", no_argument, NULL, OPT_VERSION},
	        {NULL, 0, NULL, 0},
	};
	struct names dns = {0}, ips = {0};
	struct zw_cert_request req = {0};
	struct zw_cert_bundle b = {0};
	char err[ZW_CERT_ERRLEN];
	char svc_names[ZW_CERT_SERVICE_NAMES][ZW_CERT_NAME_MAX];
	const char *out_dir = NULL, *service = NULL, *ns = NULL;
	int reuse = 0, check = 0, force = 0, opt, rc = 2;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case OPT_DNS:
		case OPT_IP:
			if (add_names(opt == OPT_DNS ? &dns : &ips, optarg) != 0) {
				fprintf(stderr, "zerowire-certs: at most %d names\n",
				        MAX_ARG_NAMES);
				goto out;
			}
			break;
		case OPT_SERVICE:
			service = optarg;
			break;
		case OPT_NAMESPACE:
			ns = optarg;
			break;
		case OPT_CA_DAYS:
		case OPT_DAYS:
			if (parse_days(optarg, opt == OPT_DAYS ? &req.cert_days : &req.ca_days)) {
				fprintf(stderr, "zerowire-certs: %s is not a number of days\n",
				        optarg);
				goto out;
			}
			break;
		case OPT_OUT:
			out_dir = optarg;
			break;
		case OPT_REUSE:
			reuse = 1;
			break;
		case OPT_CHECK:
			check = 1;
			break;
		case OPT_FORCE:
			force = 1;
			break;
		case OPT_HELP:
		case 'h':
			fputs(usage, stdout);
			rc = 0;
			goto out;
		case OPT_VERSION:
			printf("zerowire-certs %s (commit %s)\n", ZW_VERSION, ZW_COMMIT);
			rc = 0;
			goto out;
		default:
			fputs(usage, stderr);
			goto out;
		}
	}
	if (optind != argc || !out_dir || (!service != !ns)) {
		fputs(usage, stderr);
		goto out;
	}
	if (service) {
		if (zw_cert_service_names(service, ns, svc_names) != 0) {
			fprintf(stderr, "zerowire-certs: service name too long\n");
			goto out;
		}
		for (int i = 0; i < ZW_CERT_SERVICE_NAMES; i++) {
			if (add_names(&dns, svc_names[i]) != 0) {
				fprintf(stderr, "zerowire-certs: too many names\n");
				goto out;
			}
		}
	}
	req.dns = dns.list;
	req.n_dns = dns.n;
	req.ips = ips.list;
	req.n_ips = ips.n;
	if (check) {
		b.ca_cert = read_file(out_dir, "ca.crt");
		b.cert = read_file(out_dir, "tls.crt");
		b.key = read_file(out_dir, "tls.key");
		rc = zw_cert_check(&b, &req, 30, err);
		if (rc == ZW_CERT_OK) {
			printf("ok\n");
			rc = 0;
		} else {
			fprintf(stderr, "zerowire-certs: %s\n", err);
			rc = rc == ZW_CERT_RENEW ? 1 : 2;
		}
		goto out;
	}
	if (mkdir(out_dir, 0755) == -1 && errno != EEXIST) {
		fprintf(stderr, "zerowire-certs: %s: %s\n", out_dir, strerror(errno));
		goto out;
	}
	if (reuse) {
		char *ca_cert = read_file(out_dir, "ca.crt"),
		     *ca_key = read_file(out_dir, "ca.key");
		int grc = ca_cert && ca_key ? zw_cert_issue(ca_cert, ca_key, &req, &b, err) : -1;
		if (!ca_cert || !ca_key)
			snprintf(err, sizeof(err), "%s/ca.crt or ca.key missing", out_dir);
		free(ca_cert);
		free(ca_key);
		if (grc != ZW_CERT_OK) {
			fprintf(stderr, "zerowire-certs: %s\n", err);
			goto out;
		}
		force = 1;
	} else if (zw_cert_generate(&req, &b, err) != ZW_CERT_OK) {
		fprintf(stderr, "zerowire-certs: %s\n", err);
		goto out;
	}
	if ((!reuse && (write_file(out_dir, "ca.key", b.ca_key, 0600, force) != 0 ||
	                write_file(out_dir, "ca.crt", b.ca_cert, 0644, force) != 0)) ||
	    write_file(out_dir, "tls.key", b.key, 0600, force) != 0 ||
	    write_file(out_dir, "tls.crt", b.cert, 0644, force) != 0)
		goto out;
	rc = 0;
out:
	zw_cert_bundle_free(&b);
	free_names(&dns);
	free_names(&ips);
	return rc;
}
