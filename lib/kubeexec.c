/* Exec credential plugins; see kubeexec.h. */
#include "kubeexec.h"

#include "buf.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int fail(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static void free_strv(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

void zw_kube_exec_free(struct zw_kube_exec *x)
{
	if (!x)
		return;
	free(x->api_version);
	free_strv(x->argv);
	free_strv(x->env);
	free(x);
}

int zw_kube_exec_parse(const json_t *exec, const char *dir, struct zw_kube_exec **out, char *err,
                       size_t errlen)
{
	const char *av = json_string_value(json_object_get(exec, "apiVersion"));
	const char *cmd = json_string_value(json_object_get(exec, "command"));
	const json_t *args = json_object_get(exec, "args"), *env = json_object_get(exec, "env"), *v;
	struct zw_kube_exec *x = NULL;
	size_t i, n = 1;
	int rc = -1;

	*out = NULL;
	if (!av || (strcmp(av, "client.authentication.k8s.io/v1") != 0 &&
	            strcmp(av, "client.authentication.k8s.io/v1beta1") != 0)) {
		fail(err, errlen,
		     "exec: apiVersion \"%s\" is not supported (v1 and v1beta1 of "
		     "client.authentication.k8s.io are)",
		     av ? av : "");
		goto out;
	}
	if (!cmd || !*cmd) {
		fail(err, errlen, "exec: command missing");
		goto out;
	}
	if ((args && !json_is_array(args) && !json_is_null(args)) ||
	    (env && !json_is_array(env) && !json_is_null(env))) {
		fail(err, errlen, "exec: args and env must be lists");
		goto out;
	}
	x = calloc(1, sizeof(*x));
	if (!x)
		goto oom;
	x->api_version = strdup(av);
	x->argv = calloc(json_array_size(args) + 2, sizeof(char *));
	x->env = calloc(json_array_size(env) + 1, sizeof(char *));
	if (!x->api_version || !x->argv || !x->env)
		goto oom;
	if (strchr(cmd, '/') && cmd[0] != '/' && dir && *dir) {
		if (asprintf(&x->argv[0], "%s/%s", dir, cmd) < 0)
			x->argv[0] = NULL;
	} else {
		x->argv[0] = strdup(cmd);
	}
	if (!x->argv[0])
		goto oom;
	json_array_foreach(args, i, v)
	{
		if (!json_is_string(v)) {
			fail(err, errlen, "exec: args[%zu] must be a string", i);
			goto out;
		}
		x->argv[n] = strdup(json_string_value(v));
		if (!x->argv[n++])
			goto oom;
	}
	json_array_foreach(env, i, v)
	{
		const char *name = json_string_value(json_object_get(v, "name"));
		const char *value = json_string_value(json_object_get(v, "value"));
		if (!name || !*name || strchr(name, '=') || !value) {
			fail(err, errlen, "exec: env[%zu] needs a name and a value", i);
			goto out;
		}
		if (asprintf(&x->env[i], "%s=%s", name, value) < 0) {
			x->env[i] = NULL;
			goto oom;
		}
	}
	*out = x;
	x = NULL;
	rc = 0;
	goto out;
oom:
	fail(err, errlen, "exec: out of memory");
out:
	zw_kube_exec_free(x);
	return rc;
}

int zw_rfc3339_parse(const char *s, long long *out)
{
	struct tm tm;
	const char *p;
	long long t;

	memset(&tm, 0, sizeof(tm));
	if (!s || !(p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)))
		return -1;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	t = (long long)timegm(&tm);
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
		/* "+hh:mm": two digits each, checked. */
		if (!isdigit((unsigned char)p[1]) || !isdigit((unsigned char)p[2]) ||
		    !isdigit((unsigned char)p[4]) || !isdigit((unsigned char)p[5]))
			return -1;
		int h = (p[1] - '0') * 10 + (p[2] - '0'), m = (p[4] - '0') * 10 + (p[5] - '0');
		t -= (*p == '+' ? 1 : -1) * (h * 3600LL + m * 60LL);
		p += 6;
	} else {
		return -1;
	}
	if (*p)
		return -1;
	*out = t;
	return 0;
}

void zw_kube_exec_cred_clear(struct zw_kube_exec_cred *cred)
{
	if (!cred)
		return;
	if (cred->token)
		memset(cred->token, 0, strlen(cred->token));
	if (cred->key)
		memset(cred->key, 0, strlen(cred->key));
	free(cred->token);
	free(cred->cert);
	free(cred->key);
	memset(cred, 0, sizeof(*cred));
}

/* The child's environment: ours, the plugin's entries, KUBERNETES_EXEC_INFO. */
static char **child_env(const struct zw_kube_exec *x, char *info)
{
	size_t n = 0, m = 0, i;
	char **env;

	while (environ && environ[n])
		n++;
	while (x->env[m])
		m++;
	env = calloc(n + m + 2, sizeof(char *));
	if (!env)
		return NULL;
	for (i = 0; i < n; i++)
		env[i] = environ[i];
	for (i = 0; i < m; i++)
		env[n + i] = x->env[i];
	env[n + m] = info;
	return env;
}

/* Reads the child's stdout into a new buffer until EOF or the deadline. */
static int read_output(int fd, long long deadline_ms, char **out, char *err, size_t errlen)
{
	struct zw_buf b = {0};
	int rc = 0;

	for (;;) {
		struct timespec ts;
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		long long now;
		size_t room;
		ssize_t n;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
		if (now >= deadline_ms) {
			rc = fail(err, errlen, "exec: plugin timed out");
			goto out;
		}
		if (poll(&pfd, 1, (int)(deadline_ms - now)) < 0 && errno != EINTR) {
			rc = fail(err, errlen, "exec: poll: %s", strerror(errno));
			goto out;
		}
		if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		if ((rc = zw_buf_grow(&b, ZW_KUBE_EXEC_MAX_OUTPUT - 1, &room)) < 0) {
			rc = fail(err, errlen, "exec: %s",
			          rc == ZW_BUF_EFULL ? "plugin output too large" : "out of memory");
			goto out;
		}
		n = read(fd, b.data + b.len, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		zw_buf_commit(&b, (size_t)n);
	}
	if (!(*out = zw_buf_take(&b, NULL)))
		rc = fail(err, errlen, "exec: out of memory");
out:
	zw_buf_free(&b);
	return rc;
}

/* Fills cred from the ExecCredential text. */
static int parse_cred(const struct zw_kube_exec *x, const char *text,
                      struct zw_kube_exec_cred *cred, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root = json_loads(text, 0, &je), *st;
	const char *av, *tok, *cert, *key, *exp;
	int rc = -1;

	if (!root)
		return fail(err, errlen, "exec: output is not JSON: %s", je.text);
	av = json_string_value(json_object_get(root, "apiVersion"));
	st = json_object_get(root, "status");
	tok = json_string_value(json_object_get(st, "token"));
	cert = json_string_value(json_object_get(st, "clientCertificateData"));
	key = json_string_value(json_object_get(st, "clientKeyData"));
	exp = json_string_value(json_object_get(st, "expirationTimestamp"));
	if (!av || strcmp(av, x->api_version) != 0) {
		fail(err, errlen, "exec: output apiVersion \"%s\", want \"%s\"", av ? av : "",
		     x->api_version);
		goto out;
	}
	if (!json_is_string(json_object_get(root, "kind")) ||
	    strcmp(json_string_value(json_object_get(root, "kind")), "ExecCredential") != 0) {
		fail(err, errlen, "exec: output is not an ExecCredential");
		goto out;
	}
	if ((tok && !*tok) || (!!cert != !!key) || (!tok && !cert)) {
		fail(err, errlen,
		     "exec: status needs a token, or clientCertificateData and "
		     "clientKeyData");
		goto out;
	}
	if (exp && zw_rfc3339_parse(exp, &cred->expiry) < 0) {
		fail(err, errlen, "exec: status.expirationTimestamp \"%s\" is not RFC 3339", exp);
		goto out;
	}
	cred->token = tok ? strdup(tok) : NULL;
	cred->cert = cert ? strdup(cert) : NULL;
	cred->key = key ? strdup(key) : NULL;
	if ((tok && !cred->token) || (cert && (!cred->cert || !cred->key))) {
		zw_kube_exec_cred_clear(cred);
		fail(err, errlen, "exec: out of memory");
		goto out;
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

int zw_kube_exec_run(const struct zw_kube_exec *x, int timeout_ms, struct zw_kube_exec_cred *cred,
                     char *err, size_t errlen)
{
	char *info = NULL, *text = NULL, **env = NULL;
	struct timespec ts;
	int pipefd[2] = {-1, -1}, status = 0, rc = -1;
	posix_spawn_file_actions_t fa;
	pid_t pid;

	memset(cred, 0, sizeof(*cred));
	if (asprintf(&info,
	             "KUBERNETES_EXEC_INFO={\"apiVersion\":\"%s\",\"kind\":\"ExecCredential\","
	             "\"spec\":{\"interactive\":false}}",
	             x->api_version) < 0) {
		info = NULL;
		return fail(err, errlen, "exec: out of memory");
	}
	env = child_env(x, info);
	if (!env || pipe2(pipefd, O_CLOEXEC) != 0) {
		fail(err, errlen, "exec: %s", env ? strerror(errno) : "out of memory");
		goto out;
	}
	if (posix_spawn_file_actions_init(&fa) != 0) {
		fail(err, errlen, "exec: out of memory");
		goto out;
	}
	if (posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) != 0 ||
	    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1) != 0 ||
	    (errno = posix_spawnp(&pid, x->argv[0], &fa, NULL, x->argv, env)) != 0) {
		fail(err, errlen, "exec: %s: %s", x->argv[0], strerror(errno));
		posix_spawn_file_actions_destroy(&fa);
		goto out;
	}
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	pipefd[1] = -1;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	rc = read_output(pipefd[0], (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + timeout_ms,
	                 &text, err, errlen);
	if (rc < 0)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (rc == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
		rc = fail(err, errlen, "exec: %s %s %d", x->argv[0],
		          WIFEXITED(status) ? "exited with status" : "killed by signal",
		          WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	if (rc == 0)
		rc = parse_cred(x, text, cred, err, errlen);
out:
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	if (text) {
		memset(text, 0, strlen(text));
		free(text);
	}
	free(env);
	free(info);
	return rc;
}
