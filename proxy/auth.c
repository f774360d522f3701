/* zerowire-proxy peer token (see auth.h). */
#include "auth.h"

#include "kubeconfig.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* What identifies one version of the token file. */
struct file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
};

struct zw_auth {
	uv_loop_t *loop;
	uv_timer_t timer;
	struct zw_auth_config cfg;
	struct file_id id; /* of the last version looked at, good or not */
	char token[ZW_AUTH_TOKEN_MAX + 1];
	char prev[ZW_AUTH_TOKEN_MAX + 1]; /* "" when none */
	uint64_t prev_until_ms;
};

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

int zw_auth_parse_token(const char *data, size_t len, char *out, size_t outlen)
{
	while (len && is_space(*data)) {
		data++;
		len--;
	}
	while (len && is_space(data[len - 1]))
		len--;
	if (len == 0)
		return -EINVAL;
	if (len > ZW_AUTH_TOKEN_MAX || len >= outlen)
		return -E2BIG;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)data[i] < 0x21 || (unsigned char)data[i] > 0x7e)
			return -EINVAL;
	memcpy(out, data, len);
	out[len] = '\0';
	return (int)len;
}

/* Compares in time that depends on glen only. Returns true when equal. */
static bool ct_equal(const char *want, size_t wlen, const char *got, size_t glen)
{
	unsigned char diff = wlen != glen;

	for (size_t i = 0; i < glen; i++)
		diff |= (unsigned char)(got[i] ^ want[i % wlen]);
	return diff == 0;
}

/* Points *cred at the credentials of a "Bearer <cred>" value. Returns
 * ZW_AUTH_OK, or ZW_AUTH_MISSING for no value or another scheme. */
static int bearer_credentials(const char *authorization, const char **cred, size_t *clen)
{
	const char *p = authorization;
	size_t n;

	if (!p)
		return ZW_AUTH_MISSING;
	while (*p == ' ' || *p == '\t')
		p++;
	if (strncasecmp(p, "Bearer", 6) != 0 || (p[6] != ' ' && p[6] != '\t'))
		return ZW_AUTH_MISSING;
	p += 6;
	while (*p == ' ' || *p == '\t')
		p++;
	n = strlen(p);
	while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	if (n == 0)
		return ZW_AUTH_MISSING;
	*cred = p;
	*clen = n;
	return ZW_AUTH_OK;
}

int zw_auth_check_bearer(const char *token, const char *authorization)
{
	const char *cred;
	size_t clen;

	if (bearer_credentials(authorization, &cred, &clen) != ZW_AUTH_OK)
		return ZW_AUTH_MISSING;
	if (!token || !*token)
		return ZW_AUTH_WRONG;
	return ct_equal(token, strlen(token), cred, clen) ? ZW_AUTH_OK : ZW_AUTH_WRONG;
}

int zw_auth_check(const struct zw_auth *a, const char *authorization)
{
	int rc = zw_auth_check_bearer(a ? a->token : NULL, authorization);

	if (rc == ZW_AUTH_WRONG && a && a->prev[0] && uv_now(a->loop) < a->prev_until_ms)
		rc = zw_auth_check_bearer(a->prev, authorization);
	return rc;
}

const char *zw_auth_token(const struct zw_auth *a)
{
	return a ? a->token : NULL;
}

static void id_of(const struct stat *st, struct file_id *id)
{
	memset(id, 0, sizeof(*id));
	id->dev = st->st_dev;
	id->ino = st->st_ino;
	id->size = st->st_size;
	id->mtime = st->st_mtim;
	id->ctime = st->st_ctim;
}

static bool id_same(const struct file_id *a, const struct file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
	       a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/* Reads and parses the token file into out; *id gets the identity of what
 * was read. Returns the token length or a negative errno. */
static int read_token(const char *path, char *out, size_t outlen, struct file_id *id)
{
	char *buf = NULL;
	size_t len = 0;
	struct stat st;
	int rc = zw_read_small_file(path, &buf, &len, &st);

	if (rc < 0)
		return rc;
	id_of(&st, id);
	rc = len > ZW_AUTH_FILE_MAX ? -E2BIG : zw_auth_parse_token(buf, len, out, outlen);
	explicit_bzero(buf, len);
	free(buf);
	return rc;
}

int zw_auth_reload(struct zw_auth *a)
{
	char next[ZW_AUTH_TOKEN_MAX + 1];
	struct file_id id;
	struct stat st;
	int rc;

	if (stat(a->cfg.path, &st) < 0)
		return -errno;
	id_of(&st, &id);
	if (id_same(&id, &a->id))
		return 0;
	rc = read_token(a->cfg.path, next, sizeof(next), &id);
	/* Remember what was looked at, so a bad file is tried again only
	 * once it changes. */
	a->id = id;
	if (rc < 0)
		goto out;
	rc = 0;
	if (strcmp(next, a->token) != 0) {
		memcpy(a->prev, a->token, sizeof(a->prev));
		a->prev_until_ms = uv_now(a->loop) + a->cfg.grace_ms;
		memcpy(a->token, next, sizeof(a->token));
		rc = 1;
	}
out:
	explicit_bzero(next, sizeof(next));
	return rc;
}

static void on_timer(uv_timer_t *t)
{
	struct zw_auth *a = t->data;
	int rc = zw_auth_reload(a);

	if (rc != 0 && a->cfg.on_reload)
		a->cfg.on_reload(a->cfg.arg, rc < 0 ? rc : 0);
}

int zw_auth_new(uv_loop_t *loop, const struct zw_auth_config *cfg, struct zw_auth **out)
{
	struct zw_auth *a = calloc(1, sizeof(*a));
	int rc;

	if (!a)
		return -ENOMEM;
	a->loop = loop;
	a->cfg = *cfg;
	rc = read_token(cfg->path, a->token, sizeof(a->token), &a->id);
	if (rc < 0) {
		explicit_bzero(a, sizeof(*a));
		free(a);
		return rc;
	}
	uv_timer_init(loop, &a->timer);
	a->timer.data = a;
	if (cfg->check_ms)
		uv_timer_start(&a->timer, on_timer, cfg->check_ms, cfg->check_ms);
	uv_unref((uv_handle_t *)&a->timer);
	*out = a;
	return 0;
}

static void on_closed(uv_handle_t *h)
{
	struct zw_auth *a = h->data;

	explicit_bzero(a, sizeof(*a));
	free(a);
}

void zw_auth_close(struct zw_auth *a)
{
	if (!a)
		return;
	uv_close((uv_handle_t *)&a->timer, on_closed);
}
