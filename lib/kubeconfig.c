/* Kubernetes client configuration; see kubeconfig.h. */
#include "kubeconfig.h"

#include "base64.h"
#include "buf.h"
#include "yamljson.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_MAX_BYTES (4 * 1024 * 1024) /* CA bundles, certificates, keys, namespace */

static void seterr(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int zw_read_small_file(const char *path, char **out, size_t *len_out, struct stat *st_out)
{
	struct zw_buf b = {0};
	struct stat st;
	size_t room;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto out;
	}
	for (;;) {
		ssize_t n;

		if ((rc = zw_buf_grow(&b, FILE_MAX_BYTES - 1, &room)) < 0) {
			rc = rc == ZW_BUF_EFULL ? -EFBIG : -ENOMEM;
			goto out;
		}
		n = read(fd, b.data + b.len, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			goto out;
		}
		if (n == 0)
			break;
		zw_buf_commit(&b, (size_t)n);
	}
	if (!(*out = zw_buf_take(&b, len_out))) {
		rc = -ENOMEM;
		goto out;
	}
	if (st_out)
		*st_out = st;
out:
	zw_buf_free(&b);
	close(fd);
	return rc;
}

static void trim(char *s)
{
	size_t n = strlen(s), i = 0;

	while (n > 0 &&
	       (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
		i++;
	if (i)
		memmove(s, s + i, n - i + 1);
}

static const char *tls_backend(void)
{
	const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);

	return vi && vi->ssl_version ? vi->ssl_version : "";
}

/* libcurl 7.88 accepts *_BLOB options only with these TLS backends. */
static int blobs_supported(void)
{
	return strncmp(tls_backend(), "OpenSSL", 7) == 0;
}

/* Gives inline data a file name libcurl can open: a memfd (reached through
 * /proc/self/fd) or, failing that, a 0600 temporary file. */
static int materialise(struct zw_kube_tls_item *it, const char *what)
{
	char path[4096];
	size_t off = 0;
	int fd;

	fd = memfd_create(what, MFD_CLOEXEC);
	if (fd >= 0 && fchmod(fd, 0600) != 0) {
		close(fd);
		fd = -1;
	}
	if (fd >= 0) {
		snprintf(path, sizeof(path), "/proc/%ld/fd/%d", (long)getpid(), fd);
		if (access(path, R_OK) != 0) {
			close(fd);
			fd = -1;
		}
	}
	if (fd < 0) {
		const char *tmp = getenv("TMPDIR");

		snprintf(path, sizeof(path), "%s/zerowire-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp",
		         what);
		fd = mkstemp(path);
		if (fd < 0)
			return -1;
		fchmod(fd, 0600);
		it->unlink_file = 1;
	}
	while (off < it->data_len) {
		ssize_t n = write(fd, it->data + off, it->data_len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto fail;
		off += (size_t)n;
	}
	it->file_path = strdup(path);
	if (!it->file_path)
		goto fail;
	if (it->unlink_file) {
		close(fd);
		fd = -1;
	}
	it->fd = fd;
	return 0;
fail:
	if (it->unlink_file)
		unlink(path);
	it->unlink_file = 0;
	close(fd);
	return -1;
}

static void tls_item_free(struct zw_kube_tls_item *it)
{
	if (it->unlink_file && it->file_path)
		unlink(it->file_path);
	if (it->fd >= 0)
		close(it->fd);
	free(it->path);
	free(it->data);
	free(it->file_path);
	memset(it, 0, sizeof(*it));
	it->fd = -1;
}

static struct zw_kube_config *config_new(void)
{
	struct zw_kube_config *cfg = calloc(1, sizeof(*cfg));

	if (!cfg)
		return NULL;
	cfg->ca.fd = cfg->cert.fd = cfg->key.fd = -1;
	pthread_mutex_init(&cfg->token_lock, NULL);
	return cfg;
}

void zw_kube_config_free(struct zw_kube_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->server);
	free(cfg->context);
	free(cfg->namespace);
	tls_item_free(&cfg->ca);
	tls_item_free(&cfg->cert);
	tls_item_free(&cfg->key);
	free(cfg->token_file);
	zw_kube_exec_free(cfg->exec);
	if (cfg->token) {
		memset(cfg->token, 0, strlen(cfg->token));
		free(cfg->token);
	}
	pthread_mutex_destroy(&cfg->token_lock);
	free(cfg);
}

/* Runs the exec plugin when there is no token yet, it expired, or force.
 * Called with token_lock held (or before the config is shared). */
static int exec_refresh_locked(struct zw_kube_config *cfg, int force, char *err, size_t errlen)
{
	struct zw_kube_exec_cred cred;

	if (!force && cfg->token && (!cfg->token_expiry || time(NULL) < cfg->token_expiry))
		return 0;
	if (zw_kube_exec_run(cfg->exec, ZW_KUBE_EXEC_TIMEOUT_MS, &cred, err, errlen) < 0)
		return -1;
	if (cred.token) {
		if (cfg->token) {
			memset(cfg->token, 0, strlen(cfg->token));
			free(cfg->token);
		}
		cfg->token = cred.token;
		cred.token = NULL;
	}
	cfg->token_expiry = cred.expiry;
	if (cred.cert && !cfg->cert.data) {
		/* Client certificates: taken once (the TLS items are not swapped
		 * under running transfers). */
		cfg->cert.data = cred.cert;
		cfg->cert.data_len = strlen(cred.cert);
		cfg->key.data = cred.key;
		cfg->key.data_len = strlen(cred.key);
		cred.cert = cred.key = NULL;
	}
	zw_kube_exec_cred_clear(&cred);
	return 0;
}

/* Re-reads the token file when its identity changed (or always when force).
 * Called with token_lock held. */
static int token_refresh_locked(struct zw_kube_config *cfg, int force)
{
	long long now = mono_ms();
	struct stat st;
	char *buf = NULL;
	size_t len;
	int rc;

	if (cfg->exec)
		return exec_refresh_locked(cfg, force, NULL, 0);
	if (!cfg->token_file)
		return 0;
	if (!force && cfg->token_checked_ms &&
	    now - cfg->token_checked_ms < ZW_KUBE_TOKEN_RECHECK_MS)
		return 0;
	cfg->token_checked_ms = now;
	if (stat(cfg->token_file, &st) != 0)
		return -1;
	if (cfg->token && st.st_dev == cfg->token_dev && st.st_ino == cfg->token_ino &&
	    st.st_size == cfg->token_size && st.st_mtim.tv_sec == cfg->token_mtime.tv_sec &&
	    st.st_mtim.tv_nsec == cfg->token_mtime.tv_nsec &&
	    st.st_ctim.tv_sec == cfg->token_ctime.tv_sec &&
	    st.st_ctim.tv_nsec == cfg->token_ctime.tv_nsec)
		return 0;
	rc = zw_read_small_file(cfg->token_file, &buf, &len, &st);
	if (rc != 0)
		return -1;
	trim(buf);
	if (!*buf || strlen(buf) >= ZW_KUBE_TOKEN_MAX) {
		free(buf);
		return -1;
	}
	if (cfg->token) {
		memset(cfg->token, 0, strlen(cfg->token));
		free(cfg->token);
	}
	cfg->token = buf;
	cfg->token_dev = st.st_dev;
	cfg->token_ino = st.st_ino;
	cfg->token_size = st.st_size;
	cfg->token_mtime = st.st_mtim;
	cfg->token_ctime = st.st_ctim;
	return 0;
}

int zw_kube_config_token(struct zw_kube_config *cfg, int force, char *buf, size_t len)
{
	int rc;

	pthread_mutex_lock(&cfg->token_lock);
	rc = token_refresh_locked(cfg, force);
	if (len > 0)
		buf[0] = '\0';
	if (cfg->token) {
		if (strlen(cfg->token) >= len)
			rc = -1;
		else
			memcpy(buf, cfg->token, strlen(cfg->token) + 1);
	}
	pthread_mutex_unlock(&cfg->token_lock);
	return rc;
}

static int set_item(CURL *c, const struct zw_kube_tls_item *it, CURLoption file_opt,
                    CURLoption blob_opt)
{
	if (it->data && !it->file_path) {
		struct curl_blob blob = {it->data, it->data_len, CURL_BLOB_COPY};

		return curl_easy_setopt(c, blob_opt, &blob) == CURLE_OK ? 0 : -1;
	}
	if (it->file_path || it->path)
		return curl_easy_setopt(c, file_opt, it->file_path ? it->file_path : it->path) ==
		                       CURLE_OK
		               ? 0
		               : -1;
	return 0;
}

int zw_kube_config_apply_tls(struct zw_kube_config *cfg, void *curl_easy)
{
	CURL *c = curl_easy;

	if (cfg->insecure) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	} else {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
		if (set_item(c, &cfg->ca, CURLOPT_CAINFO, CURLOPT_CAINFO_BLOB) != 0)
			return -1;
	}
	if (cfg->cert.data || cfg->cert.path) {
		curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
		if (set_item(c, &cfg->cert, CURLOPT_SSLCERT, CURLOPT_SSLCERT_BLOB) != 0)
			return -1;
	}
	if (cfg->key.data || cfg->key.path) {
		curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
		if (set_item(c, &cfg->key, CURLOPT_SSLKEY, CURLOPT_SSLKEY_BLOB) != 0)
			return -1;
	}
	return 0;
}

/* ---- kubeconfig ---- */

/* Error context while walking a kubeconfig. */
struct kc_ctx {
	const char *file;
	char dir[4096];
	char where[512]; /* e.g. context "dev": user "u" */
	char *err;
	size_t errlen;
};

static int kc_fail(struct kc_ctx *k, const char *field, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int kc_fail(struct kc_ctx *k, const char *field, const char *fmt, ...)
{
	char reason[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	seterr(k->err, k->errlen, "kubeconfig %s: %s%s%s%s%s", k->file, k->where,
	       *k->where ? ": " : "", field ? field : "", field ? ": " : "", reason);
	return -1;
}

/* Reads an optional string field: *out borrowed from the JSON, NULL when
 * absent or null. Returns -1 (with error) when present with another type. */
static int kc_str(struct kc_ctx *k, json_t *obj, const char *field, const char **out)
{
	json_t *v = json_object_get(obj, field);

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return kc_fail(k, field, "must be a string");
	*out = json_string_value(v);
	return 0;
}

/* Finds the entry called name in a kubeconfig list (clusters, contexts,
 * users) and returns its inner object (cluster/context/user). */
static int kc_find(struct kc_ctx *k, json_t *root, const char *list, const char *inner,
                   const char *name, json_t **out)
{
	json_t *arr = json_object_get(root, list), *e;
	size_t i;

	if (!arr || json_is_null(arr))
		return kc_fail(k, list, "%s \"%s\" not found (no %s)", inner, name, list);
	if (!json_is_array(arr))
		return kc_fail(k, list, "must be a list");
	json_array_foreach(arr, i, e)
	{
		json_t *n = json_object_get(e, "name");

		if (!json_is_object(e))
			return kc_fail(k, list, "entry %zu must be a mapping", i);
		if (!json_is_string(n))
			return kc_fail(k, list, "entry %zu: name must be a string", i);
		if (strcmp(json_string_value(n), name) != 0)
			continue;
		*out = json_object_get(e, inner);
		if (!*out || json_is_null(*out))
			return kc_fail(k, list, "%s \"%s\" has no %s field", inner, name, inner);
		if (!json_is_object(*out))
			return kc_fail(k, list, "%s \"%s\": %s must be a mapping", inner, name,
			               inner);
		return 0;
	}
	return kc_fail(k, list, "%s \"%s\" not found", inner, name);
}

static char *kc_path(struct kc_ctx *k, const char *p)
{
	char *out;

	if (p[0] == '/' || !*k->dir)
		return strdup(p);
	if (asprintf(&out, "%s/%s", k->dir, p) < 0)
		return NULL;
	return out;
}

/* Loads one TLS item from a "<name>-data" (base64) or "<name>" (path) pair. */
static int kc_tls(struct kc_ctx *k, json_t *obj, const char *name, struct zw_kube_tls_item *it,
                  int want_file)
{
	char data_field[64];
	const char *data, *path;

	snprintf(data_field, sizeof(data_field), "%s-data", name);
	if (kc_str(k, obj, data_field, &data) != 0 || kc_str(k, obj, name, &path) != 0)
		return -1;
	if (data && *data) {
		it->data = (char *)zw_base64_decode(data, strlen(data), &it->data_len);
		if (!it->data)
			return kc_fail(k, data_field, "invalid base64");
		if (it->data_len == 0)
			return kc_fail(k, data_field, "empty after base64 decoding");
		if (!strstr(it->data, "-----BEGIN "))
			return kc_fail(k, data_field, "not PEM data (no -----BEGIN line)");
		if (want_file && materialise(it, name) != 0)
			return kc_fail(k, data_field, "cannot hold data for libcurl: %s",
			               strerror(errno));
		return 0;
	}
	if (path && *path) {
		it->path = kc_path(k, path);
		if (!it->path)
			return kc_fail(k, name, "out of memory");
		if (access(it->path, R_OK) != 0)
			return kc_fail(k, name, "%s: %s", it->path, strerror(errno));
	}
	return 0;
}

static int kc_load(struct kc_ctx *k, json_t *root, const char *context, struct zw_kube_config *cfg)
{
	const char *cur, *cluster_name, *user_name, *ns, *server, *token, *token_file;
	json_t *ctx, *cluster, *user, *v;
	int want_file = !blobs_supported();

	if (!json_is_object(root))
		return kc_fail(k, NULL, "top level must be a mapping");
	if (!context) {
		if (kc_str(k, root, "current-context", &cur) != 0)
			return -1;
		if (!cur || !*cur)
			return kc_fail(k, "current-context", "not set (and no context was given)");
		context = cur;
	}
	cfg->context = strdup(context);
	snprintf(k->where, sizeof(k->where), "context \"%s\"", context);
	if (kc_find(k, root, "contexts", "context", context, &ctx) != 0)
		return -1;
	if (kc_str(k, ctx, "cluster", &cluster_name) != 0 || kc_str(k, ctx, "user", &user_name) ||
	    kc_str(k, ctx, "namespace", &ns) != 0)
		return -1;
	if (!cluster_name || !*cluster_name)
		return kc_fail(k, "cluster", "missing");
	cfg->namespace = strdup(ns && *ns ? ns : "default");

	snprintf(k->where, sizeof(k->where), "context \"%s\": cluster \"%s\"", context,
	         cluster_name);
	if (kc_find(k, root, "clusters", "cluster", cluster_name, &cluster) != 0)
		return -1;
	if (kc_str(k, cluster, "server", &server) != 0)
		return -1;
	if (!server || !*server)
		return kc_fail(k, "server", "missing");
	if (strncmp(server, "https://", 8) != 0 && strncmp(server, "http://", 7) != 0)
		return kc_fail(k, "server", "\"%s\" is not an http(s) URL", server);
	cfg->server = strdup(server);
	if (cfg->server && cfg->server[strlen(cfg->server) - 1] == '/')
		cfg->server[strlen(cfg->server) - 1] = '\0';
	v = json_object_get(cluster, "insecure-skip-tls-verify");
	if (v && !json_is_null(v) && !json_is_boolean(v))
		return kc_fail(k, "insecure-skip-tls-verify", "must be true or false");
	cfg->insecure = json_is_true(v);
	if (kc_tls(k, cluster, "certificate-authority", &cfg->ca, want_file) != 0)
		return -1;

	if (!user_name || !*user_name)
		return 0; /* anonymous */
	snprintf(k->where, sizeof(k->where), "context \"%s\": user \"%s\"", context, user_name);
	if (kc_find(k, root, "users", "user", user_name, &user) != 0)
		return -1;
	if (json_object_get(user, "exec")) {
		char why[512];
		if (zw_kube_exec_parse(json_object_get(user, "exec"), k->dir, &cfg->exec, why,
		                       sizeof(why)) < 0 ||
		    exec_refresh_locked(cfg, 1, why, sizeof(why)) < 0)
			return kc_fail(k, "exec", "%s", why);
		if (cfg->cert.data && want_file &&
		    (materialise(&cfg->cert, "client-certificate") != 0 ||
		     materialise(&cfg->key, "client-key") != 0))
			return kc_fail(k, "exec", "cannot hold the client certificate for libcurl");
		return 0;
	}
	if (json_object_get(user, "auth-provider"))
		return kc_fail(k, "auth-provider", "auth providers are not supported");
	if (kc_str(k, user, "token", &token) != 0 || kc_str(k, user, "tokenFile", &token_file) != 0)
		return -1;
	if (json_object_get(user, "username") || json_object_get(user, "password"))
		return kc_fail(k, "username", "basic authentication is not supported");
	if (token && *token) {
		cfg->token = strdup(token);
	} else if (token_file && *token_file) {
		cfg->token_file = kc_path(k, token_file);
		if (!cfg->token_file || token_refresh_locked(cfg, 1) != 0)
			return kc_fail(k, "tokenFile", "%s: cannot read a non-empty token",
			               token_file);
	}
	if (kc_tls(k, user, "client-certificate", &cfg->cert, want_file) != 0 ||
	    kc_tls(k, user, "client-key", &cfg->key, want_file) != 0)
		return -1;
	if (!!(cfg->cert.data || cfg->cert.path) != !!(cfg->key.data || cfg->key.path))
		return kc_fail(k,
		               cfg->key.data || cfg->key.path ? "client-certificate" : "client-key",
		               "a client certificate needs both certificate and key");
	return 0;
}

int zw_kube_config_load_file(const char *path, const char *context, struct zw_kube_config **out,
                             char *err, size_t errlen)
{
	struct zw_kube_config *cfg = NULL;
	struct kc_ctx k = {.file = path, .err = err, .errlen = errlen};
	char yerr[256];
	json_t *docs = NULL;
	const char *slash;
	int rc = -1;

	*out = NULL;
	slash = strrchr(path, '/');
	if (slash && (size_t)(slash - path) < sizeof(k.dir))
		snprintf(k.dir, sizeof(k.dir), "%.*s", (int)(slash - path), path);
	if (slash == path)
		snprintf(k.dir, sizeof(k.dir), "/");
	if (zw_yaml_load_file(path, &docs, yerr, sizeof(yerr)) != 0) {
		seterr(err, errlen, "kubeconfig %s: %s", path, yerr);
		goto out;
	}
	if (json_array_size(docs) != 1) {
		kc_fail(&k, NULL, "expected one YAML document, found %zu", json_array_size(docs));
		goto out;
	}
	cfg = config_new();
	if (!cfg) {
		kc_fail(&k, NULL, "out of memory");
		goto out;
	}
	if (kc_load(&k, json_array_get(docs, 0), context, cfg) != 0)
		goto out;
	if (!cfg->server || !cfg->context || !cfg->namespace) {
		kc_fail(&k, NULL, "out of memory");
		goto out;
	}
	*out = cfg;
	cfg = NULL;
	rc = 0;
out:
	zw_kube_config_free(cfg);
	json_decref(docs);
	return rc;
}

int zw_kube_config_in_cluster(const char *sa_dir, struct zw_kube_config **out, char *err,
                              size_t errlen)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	struct zw_kube_config *cfg = NULL;
	char path[4096], *ns = NULL;
	int rc = -1;

	*out = NULL;
	if (!sa_dir)
		sa_dir = ZW_KUBE_SA_DIR;
	if (!host || !*host) {
		seterr(err, errlen, "in-cluster: KUBERNETES_SERVICE_HOST is not set");
		goto out;
	}
	if (!port || !*port)
		port = "443";
	cfg = config_new();
	if (!cfg)
		goto oom;
	if (asprintf(&cfg->server, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host,
	             port) < 0) {
		cfg->server = NULL;
		goto oom;
	}
	cfg->context = strdup("in-cluster");
	snprintf(path, sizeof(path), "%s/token", sa_dir);
	cfg->token_file = strdup(path);
	if (!cfg->context || !cfg->token_file)
		goto oom;
	if (token_refresh_locked(cfg, 1) != 0) {
		seterr(err, errlen, "in-cluster: %s: cannot read a non-empty token", path);
		goto out;
	}
	snprintf(path, sizeof(path), "%s/ca.crt", sa_dir);
	if (access(path, R_OK) == 0) {
		cfg->ca.path = strdup(path);
		if (!cfg->ca.path)
			goto oom;
	}
	snprintf(path, sizeof(path), "%s/namespace", sa_dir);
	if (zw_read_small_file(path, &ns, NULL, NULL) == 0)
		trim(ns);
	cfg->namespace = strdup(ns && *ns ? ns : "default");
	if (!cfg->namespace)
		goto oom;
	*out = cfg;
	cfg = NULL;
	rc = 0;
	goto out;
oom:
	seterr(err, errlen, "in-cluster: out of memory");
out:
	free(ns);
	zw_kube_config_free(cfg);
	return rc;
}

/* Makes the relative file paths of a cluster or user entry absolute against dir. */
static int absolutise(json_t *inner, const char *dir)
{
	static const char *const fields[] = {"certificate-authority", "client-certificate",
	                                     "client-key", "tokenFile"};
	json_t *exec = json_object_get(inner, "exec");
	const char *cmd = json_string_value(json_object_get(exec, "command"));
	char *p;

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const char *v = json_string_value(json_object_get(inner, fields[i]));
		if (!v || !*v || v[0] == '/')
			continue;
		if (asprintf(&p, "%s/%s", dir, v) < 0)
			return -1;
		json_object_set_new(inner, fields[i], json_string(p));
		free(p);
	}
	if (cmd && strchr(cmd, '/') && cmd[0] != '/') {
		if (asprintf(&p, "%s/%s", dir, cmd) < 0)
			return -1;
		json_object_set_new(exec, "command", json_string(p));
		free(p);
	}
	return 0;
}

/* Adds one kubeconfig file's clusters, contexts and users (names not seen
 * yet) and current-context (when not set yet) to merged. */
static int merge_file(json_t *merged, const char *path, char *err, size_t errlen)
{
	static const char *const lists[][2] = {
	        {"clusters", "cluster"}, {"contexts", "context"}, {"users", "user"}};
	json_t *docs = NULL, *root, *e;
	char yerr[256], dir[4096];
	const char *slash = strrchr(path, '/');
	size_t i;
	int rc = -1;

	snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
	if (zw_yaml_load_file(path, &docs, yerr, sizeof(yerr)) != 0) {
		seterr(err, errlen, "kubeconfig %s: %s", path, yerr);
		goto out;
	}
	root = json_array_get(docs, 0);
	if (json_array_size(docs) != 1 || !json_is_object(root)) {
		seterr(err, errlen, "kubeconfig %s: expected one YAML mapping", path);
		goto out;
	}
	if (!json_object_get(merged, "current-context") &&
	    json_string_length(json_object_get(root, "current-context")) > 0)
		json_object_set(merged, "current-context",
		                json_object_get(root, "current-context"));
	for (size_t l = 0; l < 3; l++) {
		json_t *dst = json_object_get(merged, lists[l][0]);
		json_array_foreach(json_object_get(root, lists[l][0]), i, e)
		{
			const char *name = json_string_value(json_object_get(e, "name"));
			json_t *have;
			size_t j;
			int seen = 0;
			if (!name)
				continue;
			json_array_foreach(dst, j, have)
			{
				if (strcmp(json_string_value(json_object_get(have, "name")),
				           name) == 0)
					seen = 1;
			}
			if (seen)
				continue;
			if (json_is_object(json_object_get(e, lists[l][1])) &&
			    absolutise(json_object_get(e, lists[l][1]), dir) < 0)
				goto out;
			json_array_append(dst, e);
		}
	}
	rc = 0;
out:
	json_decref(docs);
	return rc;
}

/* Loads the merge of the colon-separated kubeconfig list (missing files
 * skipped, as client-go does). */
static int load_merged(const char *list, struct zw_kube_config **out, char *err, size_t errlen)
{
	json_t *merged = json_pack("{s:[],s:[],s:[]}", "clusters", "contexts", "users");
	struct zw_kube_config *cfg = NULL;
	struct kc_ctx k = {.file = list, .err = err, .errlen = errlen};
	char *copy = strdup(list), *save = NULL, *path;
	int rc = -1, files = 0;

	*out = NULL;
	if (!merged || !copy) {
		seterr(err, errlen, "kubeconfig: out of memory");
		goto out;
	}
	for (path = strtok_r(copy, ":", &save); path; path = strtok_r(NULL, ":", &save)) {
		if (!*path || access(path, F_OK) != 0)
			continue;
		files++;
		if (merge_file(merged, path, err, errlen) < 0)
			goto out;
	}
	if (!files) {
		seterr(err, errlen, "kubeconfig: no file of $KUBECONFIG (%s) exists", list);
		goto out;
	}
	cfg = config_new();
	if (cfg && kc_load(&k, merged, NULL, cfg) != 0)
		goto out;
	if (!cfg || !cfg->server || !cfg->context || !cfg->namespace) {
		seterr(err, errlen, "kubeconfig: out of memory");
		goto out;
	}
	*out = cfg;
	cfg = NULL;
	rc = 0;
out:
	zw_kube_config_free(cfg);
	json_decref(merged);
	free(copy);
	return rc;
}

int zw_kube_config_auto(const char *kubeconfig, struct zw_kube_config **out, char *err,
                        size_t errlen)
{
	const char *env = getenv("KUBECONFIG"), *home = getenv("HOME");
	char path[4096];

	if (kubeconfig && *kubeconfig)
		return zw_kube_config_load_file(kubeconfig, NULL, out, err, errlen);
	if (env && *env)
		return load_merged(env, out, err, errlen);
	if (getenv("KUBERNETES_SERVICE_HOST") && *getenv("KUBERNETES_SERVICE_HOST"))
		return zw_kube_config_in_cluster(NULL, out, err, errlen);
	snprintf(path, sizeof(path), "%s/.kube/config", home && *home ? home : ".");
	return zw_kube_config_load_file(path, NULL, out, err, errlen);
}
