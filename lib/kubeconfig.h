/* Kubernetes API client configuration: where the API server is and how to
 * authenticate to it.
 *
 * Two sources:
 *   - in-cluster: service-account directory (default
 *     /var/run/secrets/kubernetes.io/serviceaccount: files token, ca.crt,
 *     namespace) and KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT;
 *   - a kubeconfig file (YAML): current-context (or a named context), its
 *     cluster (server, certificate-authority-data | certificate-authority,
 *     insecure-skip-tls-verify) and user (token | tokenFile,
 *     client-certificate-data | client-certificate, client-key-data |
 *     client-key, or exec: a credential plugin, kubeexec.h). Relative file
 *     paths are relative to the kubeconfig's directory. auth-provider users
 *     are rejected with a clear error.
 *
 * An exec plugin runs once at load (its failure fails the load) and again
 * when its token's expirationTimestamp has passed or after a 401; a client
 * certificate it gives is used as long as the process runs.
 *
 * Bearer tokens read from a file (in-cluster token, kubeconfig tokenFile) are
 * re-read when the file changes: the file is stat()ed at most every
 * ZW_KUBE_TOKEN_RECHECK_MS and re-read when its inode, size, mtime or ctime
 * changed. A config is safe to share between threads.
 *
 * Inline TLS material (the *-data fields) is handed to libcurl as in-memory
 * blobs when the TLS backend supports them (OpenSSL); the GnuTLS backend of
 * Debian's libcurl 7.88 does not, so the data is then written once to an
 * anonymous memfd (mode 0600, never on disk) and libcurl reads it through
 * /proc/self/fd/N; without memfd a 0600 temporary file under $TMPDIR is used
 * and removed by zw_kube_config_free(). */
#ifndef ZW_KUBECONFIG_H
#define ZW_KUBECONFIG_H

#include "kubeexec.h"

#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#define ZW_KUBE_SA_DIR           "/var/run/secrets/kubernetes.io/serviceaccount"
#define ZW_KUBE_TOKEN_RECHECK_MS 5000
#define ZW_KUBE_TOKEN_MAX        (64 * 1024)
#define ZW_KUBE_ERRLEN           512

/* One piece of TLS material: a file path, or inline PEM data (decoded from
 * base64), or neither. When data is set and the backend needs a file,
 * file_path names a memfd or temp file holding the data. */
struct zw_kube_tls_item {
	char *path;      /* from the config; NULL when unset */
	char *data;      /* inline PEM (NUL-terminated for convenience); NULL when unset */
	size_t data_len; /* bytes in data without the NUL */
	char *file_path; /* materialised copy of data for file-only backends, or NULL */
	int fd;          /* memfd backing file_path, or -1 */
	int unlink_file; /* file_path is a temp file to unlink on free */
};

/* A loaded configuration. Fields are read-only after loading, except the
 * token state, which is guarded by token_lock. */
struct zw_kube_config {
	char *server;    /* https://host:port, no trailing slash */
	char *context;   /* kubeconfig context name, or "in-cluster" */
	char *namespace; /* context namespace / service-account namespace, default "default" */
	int insecure;    /* insecure-skip-tls-verify */
	struct zw_kube_tls_item ca, cert, key;

	/* Bearer token: fixed (token) or from token_file (re-read on change). */
	char *token_file;
	pthread_mutex_t token_lock;
	char *token;
	long long token_checked_ms; /* monotonic ms of the last stat, 0 = never */
	dev_t token_dev;
	ino_t token_ino;
	off_t token_size;
	struct timespec token_mtime, token_ctime;
	struct zw_kube_exec *exec; /* credential plugin, or NULL */
	long long token_expiry;    /* Unix seconds the plugin's token expires; 0 = never */
};

/* Loads the kubeconfig at path (borrowed), using context (borrowed; NULL
 * means current-context). On success *out is a new config owned by the caller
 * (free with zw_kube_config_free). Returns 0, or -1 with a message naming
 * the file, context and field in err (errlen bytes), e.g.
 *   "kubeconfig /x: context \"dev\": user \"u\": client-key-data: invalid base64". */
int zw_kube_config_load_file(const char *path, const char *context, struct zw_kube_config **out,
                             char *err, size_t errlen);

/* Loads the in-cluster configuration from sa_dir (borrowed; NULL means
 * ZW_KUBE_SA_DIR) and KUBERNETES_SERVICE_HOST/PORT. The token must exist and
 * be non-empty; ca.crt and namespace are used when present. Returns 0 with
 * *out owned by the caller, or -1 with a message in err. */
int zw_kube_config_in_cluster(const char *sa_dir, struct zw_kube_config **out, char *err,
                              size_t errlen);

/* Picks a source in client-go's order: the kubeconfig path (borrowed) if
 * non-NULL; else $KUBECONFIG, every existing file of its colon-separated
 * list merged (the first file to name a cluster, context or user, or to set
 * current-context, wins; relative paths resolve against the file that gives
 * them); else in-cluster when KUBERNETES_SERVICE_HOST is set; else
 * ~/.kube/config. Returns as zw_kube_config_load_file. */
int zw_kube_config_auto(const char *kubeconfig, struct zw_kube_config **out, char *err,
                        size_t errlen);

/* Copies the current bearer token (re-reading the token file when it
 * changed, see above; force != 0 skips the recheck interval, e.g. after a
 * 401) into buf (len bytes). An empty string means no token. Returns 0, or
 * -1 when the token file cannot be re-read (buf then holds the previous
 * token, if any) or the token does not fit (buf then empty). */
int zw_kube_config_token(struct zw_kube_config *cfg, int force, char *buf, size_t len);

/* Applies TLS settings (CA, client certificate and key, verification) to a
 * libcurl easy handle (a CURL *, passed as void * so this header needs no
 * curl.h). Returns 0, or -1 when libcurl rejects an option. */
int zw_kube_config_apply_tls(struct zw_kube_config *cfg, void *curl_easy);

struct stat;

/* Reads the whole file at path (borrowed; at most 4 MiB) into a new
 * NUL-terminated buffer *out (caller frees) of *len_out bytes (len_out may
 * be NULL); *st_out (may be NULL) gets fstat() of what was read. Returns 0
 * or -errno (-EFBIG when too large). Blocking: tiny files only (tokens,
 * namespaces, certificates). */
int zw_read_small_file(const char *path, char **out, size_t *len_out, struct stat *st_out);

/* Releases cfg and everything it owns; NULL is ignored. */
void zw_kube_config_free(struct zw_kube_config *cfg);

#endif
