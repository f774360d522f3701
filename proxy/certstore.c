/* zerowire-proxy TLS certificate store (see certstore.h). */
#include "certstore.h"

#include "base64.h"
#include "buf.h"
#include "promtext.h"

#include <gnutls/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct zw_cert {
	atomic_uint refs;
	gnutls_certificate_credentials_t creds;
	char *source;
	char **names;
	size_t n_names;
	time_t not_after;
};

struct entry {
	char *key;
	struct zw_cert *cert;
};

/* One name of the index: a normalised DNS name and the entry serving it. */
struct name_ref {
	const char *name; /* borrowed from the certificate */
	const struct entry *e;
};

struct zw_certstore {
	pthread_rwlock_t lock;
	struct entry *entries; /* sorted by key */
	size_t n_entries;
	struct name_ref *index; /* sorted by name, then key: the first wins */
	size_t n_index;
	long def; /* index into entries, -1: none */
};

int zw_certstore_norm_name(const char *name, char out[256])
{
	size_t n = name ? strlen(name) : 0;
	if (n && name[n - 1] == '.')
		n--;
	if (n == 0 || n > 253)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)name[i];
		if (ch >= 'A' && ch <= 'Z')
			ch = (unsigned char)(ch - 'A' + 'a');
		else if (ch == '*' && i == 0 && n > 2 && name[1] == '.')
			; /* a leading "*." label */
		else if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
		           ch == '.' || ch == '_'))
			return -1;
		out[i] = (char)ch;
	}
	out[n] = '\0';
	return 0;
}

/* Whether a normalised name may be served: not a partial-label wildcard,
 * and a wildcard has at least two labels after "*.". */
static bool name_usable(const char *n)
{
	if (n[0] != '*')
		return !strchr(n, '*');
	const char *rest = n + 2;
	return !strchr(rest, '*') && strchr(rest, '.') && rest[0] != '.';
}

static int add_name(struct zw_cert *c, const char *raw)
{
	char norm[256];
	if (c->n_names >= ZW_CERTSTORE_MAX_NAMES || zw_certstore_norm_name(raw, norm) < 0 ||
	    !name_usable(norm))
		return 0;
	for (size_t i = 0; i < c->n_names; i++)
		if (strcmp(c->names[i], norm) == 0)
			return 0;
	char *d = strdup(norm);
	if (!d)
		return -1;
	c->names[c->n_names++] = d;
	return 0;
}

/* Reads the leaf's SAN DNS names (else its CN) and expiry into c. Returns
 * 0, or -1 with err filled. */
static int read_leaf(struct zw_cert *c, const char *pem, size_t len, char err[ZW_CERTSTORE_ERRLEN])
{
	gnutls_x509_crt_t crt = NULL;
	gnutls_datum_t d = {(unsigned char *)pem, (unsigned)len};
	char buf[1024];
	int rc = -1, r;

	if (gnutls_x509_crt_init(&crt) < 0 ||
	    (r = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM)) < 0) {
		snprintf(err, ZW_CERTSTORE_ERRLEN, "certificate: cannot parse the first PEM block");
		goto out;
	}
	c->names = calloc(ZW_CERTSTORE_MAX_NAMES, sizeof(*c->names));
	if (!c->names) {
		snprintf(err, ZW_CERTSTORE_ERRLEN, "out of memory");
		goto out;
	}
	for (unsigned seq = 0;; seq++) {
		size_t sz = sizeof(buf) - 1;
		r = gnutls_x509_crt_get_subject_alt_name(crt, seq, buf, &sz, NULL);
		if (r == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (r == GNUTLS_E_SHORT_MEMORY_BUFFER)
			continue;
		if (r < 0)
			break;
		if (r != GNUTLS_SAN_DNSNAME)
			continue;
		buf[sz] = '\0';
		if (add_name(c, buf) < 0) {
			snprintf(err, ZW_CERTSTORE_ERRLEN, "out of memory");
			goto out;
		}
	}
	if (c->n_names == 0) {
		size_t sz = sizeof(buf);
		if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, buf,
		                                  &sz) == 0 &&
		    add_name(c, buf) < 0) {
			snprintf(err, ZW_CERTSTORE_ERRLEN, "out of memory");
			goto out;
		}
	}
	c->not_after = gnutls_x509_crt_get_expiration_time(crt);
	rc = 0;
out:
	if (crt)
		gnutls_x509_crt_deinit(crt);
	return rc;
}

int zw_cert_load(const char *cert_pem, size_t cert_len, const char *key_pem, size_t key_len,
                 const char *source, struct zw_cert **out, char err[ZW_CERTSTORE_ERRLEN])
{
	struct zw_cert *c = NULL;
	int r;

	*out = NULL;
	if (!cert_pem || !key_pem || cert_len == 0 || key_len == 0 ||
	    cert_len > ZW_CERTSTORE_MAX_PEM || key_len > ZW_CERTSTORE_MAX_PEM) {
		snprintf(err, ZW_CERTSTORE_ERRLEN, "certificate or key empty or over %u bytes",
		         ZW_CERTSTORE_MAX_PEM);
		return -1;
	}
	c = calloc(1, sizeof(*c));
	if (!c || !(c->source = strdup(source ? source : ""))) {
		snprintf(err, ZW_CERTSTORE_ERRLEN, "out of memory");
		goto fail;
	}
	atomic_init(&c->refs, 1);
	if (gnutls_certificate_allocate_credentials(&c->creds) < 0) {
		c->creds = NULL;
		snprintf(err, ZW_CERTSTORE_ERRLEN, "out of memory");
		goto fail;
	}
	gnutls_datum_t cd = {(unsigned char *)cert_pem, (unsigned)cert_len};
	gnutls_datum_t kd = {(unsigned char *)key_pem, (unsigned)key_len};
	r = gnutls_certificate_set_x509_key_mem2(c->creds, &cd, &kd, GNUTLS_X509_FMT_PEM, NULL, 0);
	if (r < 0) {
		snprintf(err, ZW_CERTSTORE_ERRLEN, "certificate and key: %s", gnutls_strerror(r));
		goto fail;
	}
	if (read_leaf(c, cert_pem, cert_len, err) < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	zw_cert_unref(c);
	return -1;
}

struct zw_cert *zw_cert_ref(struct zw_cert *c)
{
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	return c;
}

void zw_cert_unref(struct zw_cert *c)
{
	if (!c || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (c->creds)
		gnutls_certificate_free_credentials(c->creds);
	for (size_t i = 0; i < c->n_names; i++)
		free(c->names[i]);
	free(c->names);
	free(c->source);
	free(c);
}

gnutls_certificate_credentials_t zw_cert_credentials(const struct zw_cert *c)
{
	return c->creds;
}

const char *const *zw_cert_names(const struct zw_cert *c, size_t *n)
{
	*n = c->n_names;
	return (const char *const *)c->names;
}

const char *zw_cert_source(const struct zw_cert *c)
{
	return c->source;
}

time_t zw_cert_not_after(const struct zw_cert *c)
{
	return c->not_after;
}

int zw_certstore_new(struct zw_certstore **out)
{
	struct zw_certstore *s = calloc(1, sizeof(*s));
	*out = NULL;
	if (!s)
		return -1;
	/* Writer-preferring: handshakes on many workers must not hold a
	 * renewal off indefinitely. */
	pthread_rwlockattr_t attr;
	int rc = pthread_rwlockattr_init(&attr);
	if (rc == 0)
		rc = pthread_rwlockattr_setkind_np(&attr,
		                                   PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	if (rc == 0)
		rc = pthread_rwlock_init(&s->lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	if (rc != 0) {
		free(s);
		return -1;
	}
	s->def = -1;
	*out = s;
	return 0;
}

static void entries_free(struct entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].key);
		zw_cert_unref(v[i].cert);
	}
	free(v);
}

void zw_certstore_free(struct zw_certstore *s)
{
	if (!s)
		return;
	entries_free(s->entries, s->n_entries);
	free(s->index);
	pthread_rwlock_destroy(&s->lock);
	free(s);
}

static int name_ref_cmp(const void *a, const void *b)
{
	const struct name_ref *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : strcmp(x->e->key, y->e->key);
}

/* Builds the name index of entries v[0..n). Returns 0 or -1 (out of
 * memory). */
static int index_build(const struct entry *v, size_t n, struct name_ref **out, size_t *n_out)
{
	size_t total = 0, k = 0;
	for (size_t i = 0; i < n; i++)
		total += v[i].cert->n_names;
	struct name_ref *idx = total ? calloc(total, sizeof(*idx)) : NULL;
	if (total && !idx)
		return -1;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < v[i].cert->n_names; j++)
			idx[k++] = (struct name_ref){v[i].cert->names[j], &v[i]};
	if (total)
		qsort(idx, total, sizeof(*idx), name_ref_cmp);
	*out = idx;
	*n_out = total;
	return 0;
}

/* Replaces the entry set with v[0..n) (sorted by key; taken over) and
 * default def, rebuilding the index. On failure nothing changes and v is
 * left to the caller. Called without the lock. Returns 0 or -1. */
static int publish(struct zw_certstore *s, struct entry *v, size_t n, long def)
{
	struct name_ref *idx;
	size_t n_idx;
	if (index_build(v, n, &idx, &n_idx) < 0)
		return -1;
	pthread_rwlock_wrlock(&s->lock);
	struct entry *old = s->entries;
	struct name_ref *old_idx = s->index;
	s->entries = v;
	s->n_entries = n;
	s->index = idx;
	s->n_index = n_idx;
	s->def = def;
	pthread_rwlock_unlock(&s->lock);
	free(old_idx);
	free(old); /* keys and references moved to v or dropped by the caller */
	return 0;
}

/* Position of key in s->entries, or where it would go (*found false). */
static size_t entry_pos(const struct zw_certstore *s, const char *key, bool *found)
{
	size_t lo = 0, hi = s->n_entries;
	*found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(s->entries[mid].key, key);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int zw_certstore_put(struct zw_certstore *s, const char *key, struct zw_cert *c, unsigned flags)
{
	/* Only this (single writer) thread changes entries: reading them
	 * here without the lock is safe. */
	bool found;
	size_t pos = entry_pos(s, key, &found);
	size_t n = s->n_entries + (found ? 0 : 1);
	struct entry *v = calloc(n, sizeof(*v));
	char *k = strdup(key);
	if (!v || !k) {
		free(v);
		free(k);
		return -1;
	}
	size_t after = s->n_entries - pos - (found ? 1 : 0);
	if (pos)
		memcpy(v, s->entries, pos * sizeof(*v));
	v[pos] = (struct entry){k, c};
	if (after)
		memcpy(v + pos + 1, s->entries + pos + (found ? 1 : 0), after * sizeof(*v));
	long def = s->def;
	if (flags & ZW_CERTSTORE_DEFAULT)
		def = (long)pos;
	else if (found && def == (long)pos)
		def = -1;
	else if (!found && def >= (long)pos)
		def++;
	struct entry replaced = found ? s->entries[pos] : (struct entry){NULL, NULL};
	if (publish(s, v, n, def) < 0) {
		free(v);
		free(k);
		return -1;
	}
	zw_cert_ref(c);
	free(replaced.key);
	zw_cert_unref(replaced.cert);
	return 0;
}

bool zw_certstore_remove(struct zw_certstore *s, const char *key)
{
	bool found;
	size_t pos = entry_pos(s, key, &found);
	if (!found)
		return false;
	size_t n = s->n_entries - 1;
	struct entry *v = n ? calloc(n, sizeof(*v)) : NULL;
	struct entry gone = s->entries[pos];
	long def = s->def;
	if (n && !v)
		return false;
	if (pos)
		memcpy(v, s->entries, pos * sizeof(*v));
	if (n - pos)
		memcpy(v + pos, s->entries + pos + 1, (n - pos) * sizeof(*v));
	if (def == (long)pos)
		def = -1;
	else if (def > (long)pos)
		def--;
	if (publish(s, v, n, def) < 0) {
		free(v);
		return false;
	}
	free(gone.key);
	zw_cert_unref(gone.cert);
	return true;
}

static const struct entry *index_find(const struct zw_certstore *s, const char *name)
{
	size_t lo = 0, hi = s->n_index;
	while (lo < hi) { /* the first of equal names: the smallest key */
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(s->index[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < s->n_index && strcmp(s->index[lo].name, name) == 0 ? s->index[lo].e : NULL;
}

struct zw_cert *zw_certstore_lookup(struct zw_certstore *s, const char *sni)
{
	char norm[256], wild[257];
	const struct entry *e = NULL;
	struct zw_cert *c = NULL;

	pthread_rwlock_rdlock(&s->lock);
	if (sni && *sni && zw_certstore_norm_name(sni, norm) == 0 && norm[0] != '*') {
		e = index_find(s, norm);
		const char *dot = strchr(norm, '.');
		if (!e && dot && dot != norm && strchr(dot + 1, '.')) {
			snprintf(wild, sizeof(wild), "*%s", dot);
			e = index_find(s, wild);
		}
	}
	if (!e && s->def >= 0)
		e = &s->entries[s->def];
	if (e)
		c = zw_cert_ref(e->cert);
	pthread_rwlock_unlock(&s->lock);
	return c;
}

size_t zw_certstore_each(struct zw_certstore *s,
                         void (*fn)(void *arg, const struct zw_certstore_entry *e), void *arg)
{
	pthread_rwlock_rdlock(&s->lock);
	size_t n = s->n_entries;
	for (size_t i = 0; i < n; i++) {
		struct zw_certstore_entry e = {s->entries[i].key, s->entries[i].cert,
		                               s->def == (long)i};
		fn(arg, &e);
	}
	pthread_rwlock_unlock(&s->lock);
	return n;
}

/* Decodes data[field] of a Secret into a new buffer. Returns it (the
 * caller frees it) with its length, or NULL with err filled. */
static unsigned char *secret_field(const json_t *data, const char *field, size_t *len,
                                   char err[ZW_CERTSTORE_ERRLEN])
{
	const char *b64 = json_string_value(json_object_get(data, field));
	unsigned char *out;
	if (!b64) {
		snprintf(err, ZW_CERTSTORE_ERRLEN, "data.%s missing", field);
		return NULL;
	}
	if (strlen(b64) > 2 * ZW_CERTSTORE_MAX_PEM) {
		snprintf(err, ZW_CERTSTORE_ERRLEN, "data.%s too large", field);
		return NULL;
	}
	out = zw_base64_decode(b64, strlen(b64), len);
	if (!out)
		snprintf(err, ZW_CERTSTORE_ERRLEN, "data.%s is not base64", field);
	return out;
}

int zw_certstore_apply_secret(struct zw_certstore *s, const char *key, const json_t *secret,
                              bool deleted, unsigned flags, char err[ZW_CERTSTORE_ERRLEN])
{
	unsigned char *crt = NULL, *pk = NULL;
	size_t crt_len = 0, pk_len = 0;
	struct zw_cert *c = NULL;
	int rc = -1;

	if (deleted) {
		zw_certstore_remove(s, key);
		return 0;
	}
	const char *type = json_string_value(json_object_get(secret, "type"));
	if (!type || strcmp(type, "kubernetes.io/tls") != 0) {
		snprintf(err, ZW_CERTSTORE_ERRLEN, "type is \"%s\", not kubernetes.io/tls",
		         type ? type : "");
		return -1;
	}
	const json_t *data = json_object_get(secret, "data");
	if (!(crt = secret_field(data, "tls.crt", &crt_len, err)) ||
	    !(pk = secret_field(data, "tls.key", &pk_len, err)))
		goto out;
	if (zw_cert_load((const char *)crt, crt_len, (const char *)pk, pk_len, key, &c, err) < 0)
		goto out;
	if (zw_certstore_put(s, key, c, flags) < 0) {
		snprintf(err, ZW_CERTSTORE_ERRLEN, "out of memory");
		goto out;
	}
	rc = 0;
out:
	zw_cert_unref(c);
	if (pk)
		gnutls_memset(pk, 0, pk_len);
	free(crt);
	free(pk);
	return rc;
}

int zw_certstore_load_files(struct zw_certstore *s, const char *key, const char *cert_path,
                            const char *key_path, unsigned flags, char err[ZW_CERTSTORE_ERRLEN])
{
	gnutls_datum_t crt = {NULL, 0}, pk = {NULL, 0};
	struct zw_cert *c = NULL;
	int rc = -1, r;

	if ((r = gnutls_load_file(cert_path, &crt)) < 0 ||
	    (r = gnutls_load_file(key_path, &pk)) < 0) {
		snprintf(err, ZW_CERTSTORE_ERRLEN, "cannot read %s: %s",
		         crt.data ? key_path : cert_path, gnutls_strerror(r));
		goto out;
	}
	if (zw_cert_load((const char *)crt.data, crt.size, (const char *)pk.data, pk.size, key, &c,
	                 err) < 0)
		goto out;
	if (zw_certstore_put(s, key, c, flags) < 0) {
		snprintf(err, ZW_CERTSTORE_ERRLEN, "out of memory");
		goto out;
	}
	rc = 0;
out:
	zw_cert_unref(c);
	if (pk.data)
		gnutls_memset(pk.data, 0, pk.size);
	gnutls_free(crt.data);
	gnutls_free(pk.data);
	return rc;
}

struct prom {
	struct zw_buf *out;
	size_t max;
	int rc;
};

static void prom_entry(void *arg, const struct zw_certstore_entry *e)
{
	struct prom *p = arg;
	char names[201] = "", src[512], lbl[512];
	size_t n, off = 0;
	const char *const *v = zw_cert_names(e->cert, &n);
	for (size_t i = 0; i < n && off < sizeof(names) - 1; i++) {
		int w = snprintf(names + off, sizeof(names) - off, "%s%s", i ? "," : "", v[i]);
		if (w < 0)
			break;
		off += (size_t)w;
	}
	if (p->rc == 0 &&
	    zw_buf_appendf(p->out, p->max,
	                   "zerowire_tls_certificate_expiry_timestamp_seconds{source=\"%s\","
	                   "default=\"%s\",names=\"%s\"} %lld\n",
	                   zw_prom_escape(src, sizeof(src), e->key),
	                   e->is_default ? "true" : "false",
	                   zw_prom_escape(lbl, sizeof(lbl), names),
	                   (long long)zw_cert_not_after(e->cert)) != 0)
		p->rc = -1;
}

int zw_certstore_prometheus(struct zw_certstore *s, struct zw_buf *out, size_t max)
{
	struct prom p = {out, max, 0};
	pthread_rwlock_rdlock(&s->lock);
	size_t n = s->n_entries;
	pthread_rwlock_unlock(&s->lock);
	if (zw_buf_appendf(out, max,
	                   "# HELP zerowire_tls_certificates TLS certificates loaded (Secrets "
	                   "and files).\n# TYPE zerowire_tls_certificates gauge\n"
	                   "zerowire_tls_certificates %zu\n"
	                   "# HELP zerowire_tls_certificate_expiry_timestamp_seconds notAfter "
	                   "of each loaded TLS certificate (Unix time).\n"
	                   "# TYPE zerowire_tls_certificate_expiry_timestamp_seconds gauge\n",
	                   n) != 0)
		return -1;
	zw_certstore_each(s, prom_entry, &p);
	return p.rc;
}
