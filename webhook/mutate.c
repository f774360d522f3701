/* zerowire admission logic; see mutate.h and docs/webhook-rewrite.md. */
#include "mutate.h"

#include "base64.h"
#include "jsonarena.h"
#include "jsonin.h"
#include "jsonout.h"
#include "jsonpatch.h"
#include "rewrite.h"
#include "target.h"
#include "hash.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void zw_mutate_config_defaults(struct zw_mutate_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->proxy_service = "zerowire-proxy";
	cfg->proxy_namespace = "zerowire";
	cfg->proxy_port = 8080;
	cfg->proxy_h2c_port = 8081;
	cfg->scaler_address = "zerowire-proxy.zerowire:9090";
	cfg->alias_service = "zerowire-proxy";
	cfg->cluster_domain = "cluster.local";
	cfg->enabled_kinds = ZW_AW_ALL;
	cfg->split_header = true;
}

static const char *const outcome_names[ZW_MO_COUNT] = {
        "unchanged", "rewritten", "restored", "denied", "error",
};

const char *zw_mutate_kind_name(enum zw_mutate_kind kind)
{
	return zw_route_kind_of(kind)->label;
}

const char *zw_mutate_outcome_name(enum zw_mutate_outcome outcome)
{
	return (unsigned)outcome < ZW_MO_COUNT ? outcome_names[outcome] : "error";
}

static void set_message(struct zw_mutate_result *info, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void set_message(struct zw_mutate_result *info, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(info->message, sizeof(info->message), fmt, ap);
	va_end(ap);
}

/* A record is {path: "/spec/...", original: {...}, written: {...}}. */
static bool record_valid(const json_t *rec)
{
	const char *path = json_string_value(json_object_get(rec, "path"));
	return path && strncmp(path, "/spec/", 6) == 0 &&
	       json_is_object(json_object_get(rec, "original")) &&
	       json_is_object(json_object_get(rec, "written"));
}

/* Reads the records of obj's annotation. *records_out is a new array (empty
 * when absent or invalid); *raw_out the borrowed annotation string or NULL.
 * Returns 0, 1 when the annotation was present but invalid, -1 on ENOMEM. */
static int read_records(const json_t *obj, json_t **records_out, const char **raw_out)
{
	json_t *ann = json_object_get(json_object_get(obj, "metadata"), "annotations");
	const char *raw = json_string_value(json_object_get(ann, ZW_ANNOTATION_ORIGINAL));
	*raw_out = raw;
	*records_out = NULL;
	if (raw) {
		json_t *recs = json_loads(raw, JSON_REJECT_DUPLICATES, NULL);
		bool ok = json_is_array(recs);
		size_t i;
		json_t *r;
		json_array_foreach(recs, i, r)
		{
			ok = ok && record_valid(r);
		}
		if (ok) {
			*records_out = recs;
			return 0;
		}
		json_decref(recs);
	}
	*records_out = json_array();
	if (!*records_out)
		return -1;
	return raw ? 1 : 0;
}

/* True when container still holds exactly what rec wrote. */
static bool holds_written(const json_t *container, const json_t *rec)
{
	json_t *orig = json_object_get(rec, "original");
	json_t *written = json_object_get(rec, "written");
	const char *key;
	json_t *v;
	if (!json_is_object(container))
		return false;
	json_object_foreach(written, key, v)
	{
		json_t *cur = json_object_get(container, key);
		if (!cur || !json_equal(cur, v))
			return false;
	}
	json_object_foreach(orig, key, v)
	{
		if (!json_object_get(written, key) && json_object_get(container, key))
			return false;
	}
	return true;
}

/* Rules moved under records: every record of a route whose records span
 * several rules with different originals also carries "rule", a hash of its
 * rule (the element of the route's first list holding the destination:
 * "/spec/rules/2") as the review left it. The written values of different
 * destinations are the same (the proxy), so a record's path alone cannot
 * tell when the user removed or reordered rules afterwards: restore then
 * finds each record's rule by that hash. */

/* Paths longer than this (rewrite.c builds them in 192-byte buffers; only a
 * hand-edited record has longer ones) never move. */
#define RULE_PATH_MAX 192
/* Rules moved per review (distinct rule prefixes among the records); what
 * is beyond is restored by its path as recorded. */
#define MAX_MOVES 64
/* Nesting below a rule that the hash looks into. */
#define RULE_HASH_DEPTH 64

struct move {
	char from[RULE_PATH_MAX]; /* the rule prefix as recorded */
	char to[RULE_PATH_MAX];   /* where that rule is now; "" when not found */
	bool drop;                /* not found, and another rule moved to `from` */
};

struct moves {
	struct move v[MAX_MOVES];
	size_t n;
};

/* Length of record path's prefix up to and including its first array index
 * ("/spec/rules/2" of "/spec/rules/2/backendRefs/0"), 0 when it has none or
 * is too long. */
static size_t rule_prefix_len(const char *path)
{
	const char *p = path;
	while ((p = strchr(p, '/'))) {
		const char *d = ++p;
		size_t n = strspn(d, "0123456789");
		if (n && (d[n] == '/' || d[n] == '\0')) {
			size_t len = (size_t)(d + n - path);
			return len < RULE_PATH_MAX ? len : 0;
		}
	}
	return 0;
}

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* A hash of v (borrowed) that the order of object members does not change,
 * nor an integral number written as a real (the API server stores objects
 * in an order and a number format of its own). */
static uint64_t value_hash(const json_t *v, int depth)
{
	if (!v)
		return ZW_HASH_INIT;
	uint64_t h = ZW_HASH_INIT ^ (uint64_t)json_typeof(v);
	const char *key;
	json_t *m;
	size_t i;
	if (depth > RULE_HASH_DEPTH)
		return h;
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		uint64_t sum = 0;
		json_object_foreach((json_t *)v, key, m)
		{
			sum += mix64(zw_hash_str(key) ^ mix64(value_hash(m, depth + 1)));
		}
		return mix64(h ^ sum);
	}
	case JSON_ARRAY:
		json_array_foreach(v, i, m)
		{
			h = mix64(h ^ value_hash(m, depth + 1));
		}
		return h;
	case JSON_STRING:
		return zw_hash_bytes(h, json_string_value(v), json_string_length(v));
	case JSON_REAL: {
		double d = json_real_value(v);
		if (!(d >= -9.0e18 && d <= 9.0e18 && d == (double)(json_int_t)d))
			return zw_hash_bytes(h, &d, sizeof(d));
		json_int_t n = (json_int_t)d;
		h = ZW_HASH_INIT ^ (uint64_t)JSON_INTEGER;
		return zw_hash_bytes(h, &n, sizeof(n));
	}
	case JSON_INTEGER: {
		json_int_t n = json_integer_value(v);
		return zw_hash_bytes(h, &n, sizeof(n));
	}
	default:
		return h;
	}
}

/* Writes the "rule" text of rule (borrowed) into out. */
static void rule_text(const json_t *rule, char out[17])
{
	snprintf(out, 17, "%016llx", (unsigned long long)value_hash(rule, 0));
}

/* Gives every destination record of `records` with a rule prefix a "rule"
 * member (its rule in `doc`, as rewritten), when they span two rules or
 * more and do not all hold the same original (only then can a moved rule
 * take another one's original). Returns 0 or -1 on ENOMEM. */
static int mark_rules(const json_t *doc, json_t *records)
{
	const json_t *first_orig = NULL;
	const char *first_path = NULL;
	size_t first_len = 0, i;
	bool several_rules = false, several_origs = false;
	json_t *rec;
	json_array_foreach(records, i, rec)
	{
		const char *path = json_string_value(json_object_get(rec, "path"));
		size_t len = rule_prefix_len(path);
		if (zw_rewrite_is_hint(rec) || !len)
			continue;
		if (!first_path) {
			first_path = path;
			first_len = len;
			first_orig = json_object_get(rec, "original");
			continue;
		}
		several_rules =
		        several_rules || len != first_len || strncmp(path, first_path, len) != 0;
		several_origs = several_origs ||
		                !json_equal(json_object_get(rec, "original"), (json_t *)first_orig);
	}
	if (!several_rules || !several_origs)
		return 0;
	char prefix[RULE_PATH_MAX] = "", text[17] = "";
	json_array_foreach(records, i, rec)
	{
		const char *path = json_string_value(json_object_get(rec, "path"));
		size_t len = rule_prefix_len(path);
		if (zw_rewrite_is_hint(rec) || !len)
			continue;
		if (strlen(prefix) != len || strncmp(prefix, path, len) != 0) {
			memcpy(prefix, path, len);
			prefix[len] = '\0';
			rule_text(zw_jsonpointer_get(doc, prefix), text);
		}
		if (json_object_set_new(rec, "rule", json_string(text)))
			return -1;
	}
	return 0;
}

/* Finds, before anything is restored, where the rule of each record
 * carrying "rule" is in `doc` now: at its recorded index when that element
 * still hashes the same, else at the one element of the same list that
 * does; not found otherwise. A rule not found whose place another moved
 * into is dropped with its records. */
static void plan_moves(const json_t *doc, const json_t *records, struct moves *mv)
{
	size_t i, k;
	json_t *rec;
	/* Hashes of one list's elements, computed once. */
	char list_path[RULE_PATH_MAX] = "";
	uint64_t *hashes = NULL;
	size_t n_hashes = 0;
	mv->n = 0;
	json_array_foreach(records, i, rec)
	{
		const char *path = json_string_value(json_object_get(rec, "path"));
		const char *want = json_string_value(json_object_get(rec, "rule"));
		size_t len = rule_prefix_len(path);
		if (!want || !len || mv->n == MAX_MOVES)
			continue;
		bool seen = false;
		for (k = 0; k < mv->n && !seen; k++)
			seen = strlen(mv->v[k].from) == len &&
			       strncmp(mv->v[k].from, path, len) == 0;
		if (seen)
			continue;
		struct move *m = &mv->v[mv->n++];
		memcpy(m->from, path, len);
		m->from[len] = '\0';
		m->to[0] = '\0';
		m->drop = false;
		char *slash = strrchr(m->from, '/');
		size_t list_len = (size_t)(slash - m->from);
		if (strlen(list_path) != list_len || strncmp(list_path, m->from, list_len) != 0) {
			memcpy(list_path, m->from, list_len);
			list_path[list_len] = '\0';
			free(hashes);
			hashes = NULL;
			n_hashes = 0;
			const json_t *list = zw_jsonpointer_get(doc, list_path);
			size_t n = json_is_array(list) ? json_array_size(list) : 0;
			if (n && (hashes = malloc(n * sizeof(*hashes)))) {
				n_hashes = n;
				for (k = 0; k < n; k++)
					hashes[k] = value_hash(json_array_get(list, k), 0);
			}
		}
		unsigned long long h;
		char *end;
		errno = 0;
		h = strtoull(want, &end, 16);
		if (errno || *end || strlen(want) != 16)
			continue;
		size_t at = (size_t)strtoull(slash + 1, NULL, 10), found = 0, where = 0;
		if (at < n_hashes && hashes[at] == h) {
			memcpy(m->to, m->from, len + 1);
			continue;
		}
		for (k = 0; k < n_hashes; k++)
			if (hashes[k] == h) {
				found++;
				where = k;
			}
		if (found == 1 && (size_t)snprintf(m->to, sizeof(m->to), "%s/%zu", list_path,
		                                   where) >= sizeof(m->to))
			m->to[0] = '\0';
	}
	free(hashes);
	for (i = 0; i < mv->n; i++)
		for (k = 0; k < mv->n && !mv->v[i].to[0]; k++)
			mv->v[i].drop = mv->v[i].drop || strcmp(mv->v[k].to, mv->v[i].from) == 0;
}

/* Where record path `path` applies now, per mv: written into buf (buflen
 * bytes) when its rule moved, else path itself; NULL when its rule was
 * dropped (or the moved path does not fit). */
static const char *moved_path(const struct moves *mv, const char *path, char *buf, size_t buflen)
{
	size_t len = rule_prefix_len(path);
	for (size_t k = 0; len && k < mv->n; k++) {
		const struct move *m = &mv->v[k];
		if (strlen(m->from) != len || strncmp(m->from, path, len) != 0)
			continue;
		if (m->drop)
			return NULL;
		if (!m->to[0] || strcmp(m->to, m->from) == 0)
			return path;
		int n = snprintf(buf, buflen, "%s%s", m->to, path + len);
		return n > 0 && (size_t)n < buflen ? buf : NULL;
	}
	return path;
}

/* The user's own manifest as kubectl apply records it, parsed; NULL when
 * absent or unreadable, or when it carries zerowire's record annotation
 * itself: then it is a copy of the live, rewritten object applied again
 * (kubectl get -o yaml, edited, applied), and the proxy destinations in it
 * are zerowire's, not the user's. */
static json_t *last_applied(const json_t *obj)
{
	json_t *ann = json_object_get(json_object_get(obj, "metadata"), "annotations");
	const char *text = json_string_value(
	        json_object_get(ann, "kubectl.kubernetes.io/last-applied-configuration"));
	json_t *declared = text ? json_loads(text, 0, NULL) : NULL;
	json_t *own = json_object_get(json_object_get(declared, "metadata"), "annotations");
	if (json_object_get(own, ZW_ANNOTATION_ORIGINAL)) {
		json_decref(declared);
		return NULL;
	}
	return declared;
}

/* Puts the originals of every record whose location still holds its
 * written value back into `desired` (each object changed is logged in
 * `log`); appends those records to `applied`; counts the others in
 * *dropped. A record whose written value the user's applied manifest itself
 * declares (a route wired to the proxy by hand over one zerowire had
 * rewritten) is dropped too: the destination is theirs now. A record's
 * location is its path, or where its rule moved to (plan_moves). Returns 0
 * or -1 on ENOMEM. */
static int restore(json_t *desired, const json_t *records, json_t *applied, unsigned *dropped,
                   struct zw_jsonpatch_log *log)
{
	json_t *declared = json_array_size(records) ? last_applied(desired) : NULL;
	struct moves mv;
	char moved[ZW_JSONPATCH_MAX_PATH];
	size_t i;
	json_t *rec;
	plan_moves(desired, records, &mv);
	json_array_foreach(records, i, rec)
	{
		const char *recorded = json_string_value(json_object_get(rec, "path"));
		const char *path = moved_path(&mv, recorded, moved, sizeof(moved));
		json_t *container = path ? zw_jsonpointer_get(desired, path) : NULL;
		if (!holds_written(container, rec) ||
		    (declared && holds_written(zw_jsonpointer_get(declared, path), rec))) {
			(*dropped)++;
			continue;
		}
		json_t *orig = json_object_get(rec, "original");
		json_t *written = json_object_get(rec, "written");
		const char *key;
		json_t *v;
		if (zw_jsonpatch_log_touch(log, container, path)) {
			json_decref(declared);
			return -1;
		}
		json_object_foreach(written, key, v)
		{
			if (!json_object_get(orig, key))
				json_object_del(container, key);
		}
		json_object_foreach(orig, key, v)
		{
			if (json_object_set_new(container, key, json_deep_copy(v))) {
				json_decref(declared);
				return -1;
			}
		}
		/* A record whose rule moved counts as being at its new place. */
		json_t *app = path == recorded ? json_incref(rec) : json_deep_copy(rec);
		if (!app ||
		    (path != recorded && json_object_set_new(app, "path", json_string(path))) ||
		    json_array_append_new(applied, app)) {
			json_decref(declared);
			return -1;
		}
	}
	json_decref(declared);
	return 0;
}

/* The destination record (not a split header's) at path, or NULL. */
static const json_t *find_by_path(const json_t *records, const char *path)
{
	size_t i;
	json_t *r;
	json_array_foreach(records, i, r)
	{
		if (!zw_rewrite_is_hint(r) &&
		    strcmp(json_string_value(json_object_get(r, "path")), path) == 0)
			return r;
	}
	return NULL;
}

/* Bytes the record annotation's value may take in `ann` (borrowed; may be
 * NULL) without its annotations together (lengths of keys and values)
 * exceeding the API server's ZW_MUTATE_MAX_ANNOTATIONS. Returns them, 0 when
 * the other annotations already take it all. */
static size_t annotation_room(const json_t *ann)
{
	size_t used = strlen(ZW_ANNOTATION_ORIGINAL);
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)ann, key, v)
	{
		if (strcmp(key, ZW_ANNOTATION_ORIGINAL) != 0)
			used += strlen(key) + json_string_length(v);
	}
	return used < ZW_MUTATE_MAX_ANNOTATIONS ? ZW_MUTATE_MAX_ANNOTATIONS - used : 0;
}

/* Writes the records into desired's annotation (or removes it, and the
 * annotations map when that leaves it empty), logging the object changed in
 * `log`. raw/old: the annotation as admitted, kept byte-for-byte when the
 * records did not change. Returns 0, 1 when the records are too large
 * (desired untouched), -1 on ENOMEM. old_invalid: the admitted annotation
 * could not be read. */
static int write_records(json_t *desired, const json_t *records, const char *raw, const json_t *old,
                         bool old_invalid, struct zw_jsonpatch_log *log)
{
	json_t *meta = json_object_get(desired, "metadata");
	json_t *ann = json_object_get(meta, "annotations");
	if (json_array_size(records) == 0) {
		/* An annotation we cannot read (another format version?) is
		 * only replaced, never removed. */
		if (old_invalid || !json_is_object(ann))
			return 0;
		bool present = !!json_object_get(ann, ZW_ANNOTATION_ORIGINAL);
		if (json_object_size(ann) == (present ? 1u : 0u)) {
			if (zw_jsonpatch_log_touch(log, meta, "/metadata"))
				return -1;
			json_object_del(meta, "annotations");
		} else if (present) {
			if (zw_jsonpatch_log_touch(log, ann, "/metadata/annotations"))
				return -1;
			json_object_del(ann, ZW_ANNOTATION_ORIGINAL);
		}
		return 0;
	}
	if (raw && json_equal((json_t *)records, (json_t *)old))
		return 0;
	size_t dump_len;
	char *dump = zw_json_dump(records, &dump_len);
	if (!dump)
		return -1;
	if (dump_len > ZW_MUTATE_MAX_RECORD || dump_len > annotation_room(ann)) {
		free(dump);
		return 1;
	}
	/* The value is JSON zerowire just wrote: valid UTF-8, no check. */
	json_t *value = json_stringn_nocheck(dump, dump_len);
	json_t *parent = desired, *holder = NULL;
	const char *key = "metadata", *where = "";
	int rc = -1;
	free(dump);
	if (!value)
		return -1;
	/* The value goes into the innermost object present, inside new
	 * objects for what is missing; that object alone is logged. */
	if (json_is_object(ann)) {
		parent = ann;
		key = ZW_ANNOTATION_ORIGINAL;
		where = "/metadata/annotations";
		holder = json_incref(value);
	} else if (json_is_object(meta)) {
		parent = meta;
		key = "annotations";
		where = "/metadata";
		holder = json_pack("{s:O}", ZW_ANNOTATION_ORIGINAL, value);
	} else {
		holder = json_pack("{s:{s:O}}", "annotations", ZW_ANNOTATION_ORIGINAL, value);
	}
	if (holder && !zw_jsonpatch_log_touch(log, parent, where))
		rc = json_object_set_new(parent, key, holder) ? -1 : 0;
	else
		json_decref(holder);
	json_decref(value);
	return rc;
}

static bool opted_out(const json_t *obj)
{
	json_t *labels = json_object_get(json_object_get(obj, "metadata"), "labels");
	const char *v = json_string_value(json_object_get(labels, ZW_LABEL_AUTOWIRE));
	return v && strcasecmp(v, "false") == 0;
}

static void copy_first_warning(struct zw_mutate_result *info, const json_t *warnings)
{
	info->warnings = (unsigned)json_array_size(warnings);
	if (info->warnings && !info->message[0])
		set_message(info, "%s", json_string_value(json_array_get(warnings, 0)));
}

/* Rewrites route `desired` in place: restores its records, rewrites its
 * destinations (unless restore_only), writes the records, and appends to
 * `patch` (may be NULL) the operations that turn the route as admitted into
 * the result. `orig`: the route as admitted when desired is a copy of it,
 * NULL when desired is the admitted route itself. With `collect`, only
 * gathers the Services named (nothing else is filled in). Returns 0, -1 on
 * ENOMEM, or 2 (only with orig NULL) when the changes made cannot be told
 * apart from the document itself: desired is then back as admitted; run
 * again on a copy. */
static int mutate_route(json_t *desired, const json_t *orig, const char *ns,
                        const struct zw_registry *reg, const struct zw_mutate_config *cfg,
                        json_t *warnings, json_t *collect, bool restore_only,
                        struct zw_jsonpatch_text *patch, struct zw_mutate_result *info)
{
	struct zw_jsonpatch_log log = {0};
	struct zw_jsonpatch_text own_patch = {0};
	json_t *old = NULL, *applied = json_array(), *records = json_array();
	const char *raw = NULL;
	int rc = -1;
	struct zw_rewrite rw = {
	        .cfg = cfg,
	        .reg = reg,
	        .kind = info->kind,
	        .ns = ns,
	        .collect = collect,
	        .obj = desired,
	        .log = &log,
	        .records = records,
	        .warnings = warnings,
	};
	if (!applied || !records)
		goto out;
	if (!patch)
		patch = &own_patch;
	int r = read_records(desired, &old, &raw);
	if (r < 0)
		goto out;
	bool invalid = r == 1;
	if (invalid)
		zw_rewrite_warn(&rw, "annotation %s is not valid; ignored", ZW_ANNOTATION_ORIGINAL);
	bool enabled = !restore_only &&
	               (cfg->enabled_kinds & zw_rewrite_autowire_bit(info->kind)) &&
	               !opted_out(desired);
	if (restore(desired, old, applied, &info->dropped, &log))
		goto out;
	if (enabled || collect) {
		if (reg)
			zw_registry_read_begin(reg);
		int wr = zw_rewrite_walk(&rw);
		if (reg)
			zw_registry_read_end(reg);
		if (wr)
			goto out;
	}
	if (collect) {
		rc = 0;
		goto out;
	}
	if (mark_rules(desired, records))
		goto out;
	/* Count what changed compared with the records admitted (destinations:
	 * a split header's record of its own is not one). */
	size_t i, k;
	json_t *rec, *old_rec;
	bool hint_added = false;
	json_array_foreach(records, i, rec)
	{
		const json_t *prev =
		        find_by_path(applied, json_string_value(json_object_get(rec, "path")));
		if (!zw_rewrite_is_hint(rec) && (!prev || !json_equal((json_t *)prev, rec)))
			info->rewrites++;
		if (zw_rewrite_is_hint(rec) && !hint_added) {
			hint_added = true;
			json_array_foreach(applied, k, old_rec)
			{
				if (json_equal(old_rec, rec))
					hint_added = false;
			}
		}
	}
	json_array_foreach(applied, i, rec)
	{
		if (!zw_rewrite_is_hint(rec) &&
		    !find_by_path(records, json_string_value(json_object_get(rec, "path"))))
			info->restores++;
	}
	/* The records annotation is read before anything changes `desired`;
	 * raw and old stay valid (the log holds what it replaces). */
	r = write_records(desired, records, raw, old, invalid, &log);
	if (r < 0)
		goto out;
	if (r == 1) {
		/* Nothing was rewritten after all: only this warning applies. */
		json_array_clear(warnings);
		zw_rewrite_warn(&rw,
		                "record annotation would exceed %d bytes, or the 256 KiB all "
		                "annotations share; left unchanged",
		                ZW_MUTATE_MAX_RECORD);
		if (zw_jsonpatch_log_undo(&log))
			goto out;
		info->rewrites = info->restores = 0;
	}
	size_t mark = patch->n;
	r = zw_jsonpatch_log_diff_text(&log, patch);
	if (r < 0)
		goto out;
	if (r == 1 && !orig) {
		rc = zw_jsonpatch_log_undo(&log) ? -1 : 2;
		goto out;
	}
	if (r == 1 && zw_jsonpatch_diff_text(orig, desired, "", patch))
		goto out;
	if (patch->n == mark)
		info->outcome = rw.not_understood ? ZW_MO_ERROR : ZW_MO_UNCHANGED;
	else
		info->outcome = info->rewrites || hint_added ? ZW_MO_REWRITTEN : ZW_MO_RESTORED;
	rc = 0;
out:
	json_decref(rw.written[0]);
	json_decref(rw.written[1]);
	json_decref(rw.written[2]);
	zw_jsonpatch_log_clear(&log);
	free(log.v);
	json_decref(old);
	json_decref(applied);
	json_decref(records);
	zw_buf_free(&own_patch.ops);
	return rc;
}

/* mutate_route on a copy of obj (which stays as it is); *desired_out gets
 * the copy. Returns 0 or -1 on ENOMEM. */
static int mutate_route_copy(const json_t *obj, const char *ns, const struct zw_registry *reg,
                             const struct zw_mutate_config *cfg, json_t **desired_out,
                             json_t *warnings, json_t *collect, bool restore_only,
                             struct zw_jsonpatch_text *patch, struct zw_mutate_result *info)
{
	json_t *desired = json_deep_copy(obj);
	if (!desired || mutate_route(desired, obj, ns, reg, cfg, warnings, collect, restore_only,
	                             patch, info)) {
		json_decref(desired);
		return -1;
	}
	*desired_out = desired;
	return 0;
}

static bool being_deleted(const json_t *obj)
{
	return !!json_object_get(json_object_get(obj, "metadata"), "deletionTimestamp");
}

/* kedify-http triggers become external-push ones; zerowire metadata is
 * validated (the one place the webhook denies). */
static int mutate_scaledobject(const json_t *obj, const struct zw_mutate_config *cfg,
                               json_t **desired_out, struct zw_mutate_result *info)
{
	json_t *desired = json_deep_copy(obj);
	if (!desired)
		return -1;
	json_t *triggers = json_object_get(json_object_get(desired, "spec"), "triggers");
	size_t i;
	json_t *t;
	json_array_foreach(triggers, i, t)
	{
		const char *type = json_string_value(json_object_get(t, "type"));
		if (!type || strcmp(type, "kedify-http") != 0)
			continue;
		json_t *md = json_object_get(t, "metadata");
		if (!json_is_object(md))
			continue; /* the parser below names the problem */
		if (json_object_set_new(t, "type", json_string("external-push")) ||
		    json_object_set_new(md, "scalerAddress", json_string(cfg->scaler_address))) {
			json_decref(desired);
			return -1;
		}
		info->rewrites++;
	}
	char err[ZW_TARGET_ERRLEN] = "";
	struct zw_target *ts = NULL;
	size_t n = 0;
	int rc = zw_target_parse_scaledobject(desired, &ts, &n, err);
	zw_target_array_free(ts, n);
	if (rc == ZW_TARGET_ENOMEM) {
		json_decref(desired);
		return -1;
	}
	if (rc == ZW_TARGET_EINVAL && !being_deleted(obj)) {
		json_decref(desired);
		info->outcome = ZW_MO_DENIED;
		info->rewrites = 0;
		set_message(info, "%s", err[0] ? err : "invalid zerowire trigger metadata");
		return 1;
	}
	info->outcome = info->rewrites ? ZW_MO_REWRITTEN : ZW_MO_UNCHANGED;
	*desired_out = desired;
	return 0;
}

static int check_http_source(const json_t *obj, json_t **desired_out, json_t *warnings,
                             struct zw_mutate_result *info)
{
	char err[ZW_TARGET_ERRLEN] = "";
	struct zw_target *ts = NULL;
	size_t n = 0;
	int rc = zw_target_parse_object(obj, &ts, &n, err);
	zw_target_array_free(ts, n);
	if (rc == ZW_TARGET_ENOMEM)
		return -1;
	if (rc == ZW_TARGET_EINVAL && json_array_append_new(warnings, json_string(err)))
		return -1;
	info->outcome = ZW_MO_UNCHANGED;
	*desired_out = json_incref((json_t *)obj);
	return 0;
}

static const char *object_namespace(const json_t *obj, const char *ns)
{
	if (ns && *ns)
		return ns;
	ns = json_string_value(json_object_get(json_object_get(obj, "metadata"), "namespace"));
	return ns && *ns ? ns : "default";
}

/* A route rewritten in place in obj (the caller's to change), with the
 * patch appended to `patch`; on a copy when the changes cannot be told
 * apart in place. *desired_out gets a new reference to the result. */
static int mutate_route_in_place(json_t *obj, const char *ns, const struct zw_registry *reg,
                                 const struct zw_mutate_config *cfg, json_t **desired_out,
                                 json_t *warnings, struct zw_jsonpatch_text *patch,
                                 struct zw_mutate_result *info)
{
	int rc = mutate_route(obj, NULL, ns, reg, cfg, warnings, NULL, false, patch, info);
	if (rc == 0)
		*desired_out = json_incref(obj);
	if (rc != 2)
		return rc;
	/* obj is back as admitted: start again on a copy. */
	enum zw_mutate_kind kind = info->kind;
	memset(info, 0, sizeof(*info));
	info->kind = kind;
	json_array_clear(warnings);
	zw_jsonpatch_text_truncate(patch, 0, 0);
	return mutate_route_copy(obj, ns, reg, cfg, desired_out, warnings, NULL, false, patch,
	                         info);
}

/* zw_mutate_object's work. in_place: obj is the caller's to change, and
 * `patch` (required then) gets the operations from obj as admitted to the
 * result; else obj is only read and patch is NULL. */
static int mutate_object(json_t *obj, bool in_place, const char *group, const char *version,
                         const char *kind, const char *ns, const struct zw_registry *reg,
                         const struct zw_mutate_config *cfg, json_t **desired_out,
                         json_t **warnings_out, struct zw_jsonpatch_text *patch,
                         struct zw_mutate_result *info)
{
	struct zw_mutate_config defaults;
	json_t *desired = NULL;
	json_t *warnings = json_array();
	int rc = -1;
	memset(info, 0, sizeof(*info));
	if (!cfg) {
		zw_mutate_config_defaults(&defaults);
		cfg = &defaults;
	}
	if (!warnings)
		goto out;
	info->kind = zw_rewrite_kind(group, version, kind);
	ns = object_namespace(obj, ns);
	if (!json_is_object(obj)) {
		info->outcome = ZW_MO_ERROR;
		desired = json_incref((json_t *)obj);
		if (json_array_append_new(warnings, json_string("object is not a JSON object; "
		                                                "left unchanged")))
			goto out;
		rc = 0;
	} else if (info->kind == ZW_MK_OTHER) {
		desired = json_incref((json_t *)obj);
		rc = 0;
	} else if (info->kind == ZW_MK_SCALEDOBJECT) {
		rc = mutate_scaledobject(obj, cfg, &desired, info);
	} else if (info->kind == ZW_MK_HTTPSCALEDOBJECT || info->kind == ZW_MK_INTERCEPTORROUTE) {
		rc = check_http_source(obj, &desired, warnings, info);
	} else if (in_place) {
		rc = mutate_route_in_place(obj, ns, reg, cfg, &desired, warnings, patch, info);
		in_place = false; /* the patch is made */
	} else {
		rc = mutate_route_copy(obj, ns, reg, cfg, &desired, warnings, NULL, false, NULL,
		                       info);
	}
	if (rc < 0)
		goto out;
	if (in_place && rc == 0 && desired && zw_jsonpatch_diff_text(obj, desired, "", patch)) {
		rc = -1;
		goto out;
	}
	copy_first_warning(info, warnings);
	if (desired_out) {
		*desired_out = desired;
		desired = NULL;
	}
	if (warnings_out) {
		*warnings_out = warnings;
		warnings = NULL;
	}
out:
	if (rc < 0) {
		info->outcome = ZW_MO_ERROR;
		set_message(info, "out of memory");
	}
	json_decref(desired);
	json_decref(warnings);
	return rc;
}

int zw_mutate_object(const json_t *obj, const char *group, const char *version, const char *kind,
                     const char *ns, const struct zw_registry *reg,
                     const struct zw_mutate_config *cfg, json_t **desired_out,
                     json_t **warnings_out, struct zw_mutate_result *info)
{
	/* Not in place: obj is only read. */
	return mutate_object((json_t *)obj, false, group, version, kind, ns, reg, cfg, desired_out,
	                     warnings_out, NULL, info);
}

int zw_mutate_services(const json_t *obj, const char *group, const char *version, const char *kind,
                       const char *ns, const struct zw_registry *reg,
                       const struct zw_mutate_config *cfg, json_t *svcs)
{
	struct zw_mutate_config defaults;
	struct zw_mutate_result info = {0};
	json_t *desired = NULL, *warnings = json_array();
	if (!cfg) {
		zw_mutate_config_defaults(&defaults);
		cfg = &defaults;
	}
	info.kind = zw_rewrite_kind(group, version, kind);
	int rc = -1;
	if (!warnings || !json_is_array(svcs))
		goto out;
	rc = 0;
	if (zw_rewrite_autowire_bit(info.kind) && json_is_object(obj))
		rc = mutate_route_copy(obj, object_namespace(obj, ns), reg, cfg, &desired, warnings,
		                       svcs, false, NULL, &info);
out:
	json_decref(desired);
	json_decref(warnings);
	return rc;
}

int zw_mutate_restore_object(const json_t *obj, const char *group, const char *version,
                             const char *kind, const struct zw_mutate_config *cfg,
                             json_t **desired_out, struct zw_mutate_result *info)
{
	struct zw_mutate_config defaults;
	json_t *desired = NULL, *warnings = json_array();
	int rc = -1;
	memset(info, 0, sizeof(*info));
	*desired_out = NULL;
	if (!cfg) {
		zw_mutate_config_defaults(&defaults);
		cfg = &defaults;
	}
	info->kind = zw_rewrite_kind(group, version, kind);
	if (!warnings)
		goto out;
	if (!zw_rewrite_autowire_bit(info->kind) || !json_is_object(obj)) {
		desired = json_incref((json_t *)obj);
		rc = 0;
	} else {
		rc = mutate_route_copy(obj, object_namespace(obj, NULL), NULL, cfg, &desired,
		                       warnings, NULL, true, NULL, info);
	}
	if (rc == 0) {
		copy_first_warning(info, warnings);
		*desired_out = desired;
		desired = NULL;
	}
out:
	json_decref(desired);
	json_decref(warnings);
	return rc;
}

/* Appends the literal text s to b. Returns 0 or -1 when out of memory. */
static int put_text(struct zw_buf *b, const char *s)
{
	return zw_buf_append(b, s, strlen(s), SIZE_MAX) ? -1 : 0;
}

/* Appends `"patchType":"JSONPatch","patch":"<base64 of the patch>"` to b:
 * the patch's text (taken from `patch`) is encoded straight into b (base64
 * needs no escaping). Returns 0 or -1 when out of memory. */
static int put_patch(struct zw_buf *b, struct zw_jsonpatch_text *patch)
{
	size_t len;
	char *text = zw_jsonpatch_text_take(patch, &len);
	int rc = -1;
	if (!text || put_text(b, ",\"patchType\":\"JSONPatch\",\"patch\":\""))
		goto out;
	if (zw_buf_reserve(b, b->len + ZW_BASE64_LEN(len) + 2, SIZE_MAX))
		goto out;
	b->len += zw_base64_encode_to(b->data + b->len, text, len);
	b->data[b->len] = '\0';
	rc = put_text(b, "\"");
out:
	free(text);
	return rc;
}

/* Writes the AdmissionReview answering review `api`/`uid` into b, members
 * in this order: response.uid, allowed, status (st, may be NULL), the patch
 * (when patch is a non-empty array), warnings (when a non-empty array); all
 * borrowed. The text is what serialising the same jansson object would
 * give, without building it. Returns 0 or -1 when out of memory. */
static int write_response(struct zw_buf *b, const char *api, const char *uid, bool allowed,
                          const json_t *st, struct zw_jsonpatch_text *patch, const json_t *warnings)
{
	if (put_text(b, "{\"apiVersion\":") || zw_json_append_string(b, api, strlen(api)) ||
	    put_text(b, ",\"kind\":\"AdmissionReview\",\"response\":{\"uid\":") ||
	    zw_json_append_string(b, uid, strlen(uid)) ||
	    put_text(b, allowed ? ",\"allowed\":true" : ",\"allowed\":false"))
		return -1;
	if (st && (put_text(b, ",\"status\":") || zw_json_append(b, st)))
		return -1;
	if (patch && patch->n && put_patch(b, patch))
		return -1;
	if (json_array_size(warnings) &&
	    (put_text(b, ",\"warnings\":") || zw_json_append(b, warnings)))
		return -1;
	return put_text(b, "}}");
}

static int fail(struct zw_mutate_result *info, int status, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int fail(struct zw_mutate_result *info, int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(info->message, sizeof(info->message), fmt, ap);
	va_end(ap);
	info->outcome = ZW_MO_ERROR;
	return status;
}

int zw_mutate_review(const char *body, size_t len, const struct zw_registry *reg,
                     const struct zw_mutate_config *cfg, char **response_out, size_t *response_len,
                     struct zw_mutate_result *info)
{
	struct zw_mutate_result scratch;
	json_t *review = NULL, *st = NULL, *desired = NULL, *warnings = NULL;
	struct zw_jsonpatch_text patch = {0};
	struct zw_buf text = {0};
	json_error_t jerr;
	int status, arena;
	if (!info)
		info = &scratch;
	memset(info, 0, sizeof(*info));
	*response_out = NULL;
	*response_len = 0;
	if (len > ZW_MUTATE_MAX_BODY)
		return fail(info, 413, "request body of %zu bytes exceeds %d", len,
		            ZW_MUTATE_MAX_BODY);
	/* Every jansson value below is freed at out: (the response is text). */
	arena = zw_json_arena_begin();
	review = zw_json_load(body, len, &jerr);
	if (!review) {
		status = fail(info, 400, "body is not JSON: %s (line %d)", jerr.text, jerr.line);
		goto out;
	}
	const char *api = json_string_value(json_object_get(review, "apiVersion"));
	const char *rkind = json_string_value(json_object_get(review, "kind"));
	json_t *req = json_object_get(review, "request");
	const char *uid = json_string_value(json_object_get(req, "uid"));
	if (!api || !rkind || strcmp(rkind, "AdmissionReview") != 0 ||
	    (strcmp(api, "admission.k8s.io/v1") != 0 &&
	     strcmp(api, "admission.k8s.io/v1beta1") != 0) ||
	    !json_is_object(req) || !uid) {
		status = fail(info, 400,
		              "body is not an admission.k8s.io/v1 AdmissionReview with "
		              "request.uid");
		goto out;
	}
	/* Never read: free its tree before the object is copied (an UPDATE
	 * review holds the route twice). */
	json_object_del(req, "oldObject");
	status = 500;

	json_t *gvk = json_object_get(req, "kind");
	const char *group = json_string_value(json_object_get(gvk, "group"));
	const char *version = json_string_value(json_object_get(gvk, "version"));
	const char *kind = json_string_value(json_object_get(gvk, "kind"));
	const char *op = json_string_value(json_object_get(req, "operation"));
	const char *ns = json_string_value(json_object_get(req, "namespace"));
	json_t *obj = json_object_get(req, "object");
	int rc;
	if (op && (strcmp(op, "DELETE") == 0 || strcmp(op, "CONNECT") == 0)) {
		rc = 0;
		desired = json_incref(obj);
		info->kind = zw_rewrite_kind(group, version, kind);
	} else if (!json_is_object(obj)) {
		warnings = json_pack("[s]", "request carries no object; allowed unchanged");
		info->outcome = ZW_MO_ERROR;
		info->kind = zw_rewrite_kind(group, version, kind);
		copy_first_warning(info, warnings);
		rc = warnings ? 0 : -1;
	} else {
		/* The review is ours: the object is rewritten in place. */
		rc = mutate_object(obj, true, group, version, kind, ns, reg, cfg, &desired,
		                   &warnings, &patch, info);
	}
	if (rc < 0)
		goto nomem;
	if (rc == 1) {
		st = json_pack("{s:i, s:s, s:s}", "code", 400, "reason", "BadRequest", "message",
		               info->message);
		if (!st)
			goto nomem;
	}
	/* The patch goes out only for an object rewritten. */
	if (write_response(&text, api, uid, rc != 1, st,
	                   rc != 1 && desired && json_is_object(obj) ? &patch : NULL, warnings))
		goto nomem;
	*response_out = zw_buf_take(&text, response_len);
	if (!*response_out)
		goto nomem;
	status = 200;
	goto out;
nomem:
	status = fail(info, 500, "out of memory");
out:
	zw_buf_free(&text);
	json_decref(review);
	json_decref(st);
	json_decref(desired);
	json_decref(warnings);
	zw_buf_free(&patch.ops);
	zw_json_arena_end(arena);
	return status;
}
