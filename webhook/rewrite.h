/* zerowire route rewriting, one table entry per route family.
 *
 * Used by mutate.c: it restores the records of an object, then asks this
 * module to walk the object's destinations. Each destination that names a
 * scaled Service (and does not already lead to the proxy) is rewritten in
 * place in rw->obj and a record {path, original, written} appended to
 * rw->records. `path` is the JSON pointer of the object that holds the
 * destination fields; `original` and `written` hold only the fields zerowire
 * owns there (a field absent from `original` was absent before). */
#ifndef ZW_REWRITE_H
#define ZW_REWRITE_H

#include "jsonpatch.h"
#include "mutate.h"
#include "protocol.h"
#include "registry.h"

#include <jansson.h>
#include <stdbool.h>

struct zw_rewrite {
	/* Inputs (borrowed). */
	const struct zw_mutate_config *cfg;
	const struct zw_registry *reg; /* may be NULL; read section held */
	enum zw_mutate_kind kind;
	const char *ns;  /* the object's namespace */
	json_t *collect; /* non-NULL: append "<ns>/<svc>" of every destination, no rewrite */

	/* The object being rewritten (owned by the caller, modified in place);
	 * every object of it changed is logged in `log` first (may be NULL). */
	json_t *obj;
	struct zw_jsonpatch_log *log;

	/* Outputs (owned by the caller, appended to). */
	json_t *records;     /* array of records */
	json_t *warnings;    /* array of strings, deduplicated, at most ZW_MUTATE_MAX_WARNINGS */
	bool not_understood; /* some part had the wrong type and was skipped */
	bool nomem;

	/* Walk state (set by the walkers). */
	const json_t *route_hosts; /* array of host strings or NULL */
	const char *route_host;    /* single host (Ingress rule) or NULL */
	/* The Host the route's URL rewrite sends instead (Gateway API
	 * URLRewrite hostname, Istio rewrite.authority, Gloo Edge hostRewrite)
	 * or NULL, and whether it rewrites the path: the proxy sees the
	 * request after them. */
	const char *rewrite_host;
	bool rewrite_path;
	/* Backend protocol the route's annotations set (Ingress), and how. */
	enum zw_proto backend_proto;
	char backend_proto_why[160];
	/* Where the destination being considered gets the ZW_SERVICE_HEADER
	 * (its route splits traffic between scaled Services), or NULL. */
	json_t *hint_container;
	const char *hint_path;

	/* Per walk: the fields written when the same for every destination
	 * leading to the proxy's HTTP port ([0]), its h2c port ([1]) or its TLS
	 * port ([2]) (owned; the caller json_decref()s them after the walk),
	 * and whether the route's wiring (alias Service / ReferenceGrant) was
	 * checked. */
	json_t *written[3];
	bool wiring_checked;
};

/* Maps an API group / version / kind to the route family, or ZW_MK_OTHER.
 * Version matters: only the versions known to share the schema are taken. */
enum zw_mutate_kind zw_rewrite_kind(const char *group, const char *version, const char *kind);

/* Returns the trafficAutowire bit (enum zw_autowire) for a route family,
 * 0 for non-route kinds. */
unsigned zw_rewrite_autowire_bit(enum zw_mutate_kind kind);

/* Walks rw->obj's destinations of family rw->kind, rewriting and recording
 * as described above. Returns 0, or -1 on ENOMEM (rw->nomem set). */
int zw_rewrite_walk(struct zw_rewrite *rw);

/* True when record rec only sets the split header (a record of its own,
 * after its destination's: Gateway API backendRef filters, Istio route
 * headers, Gloo destination options). */
bool zw_rewrite_is_hint(const json_t *rec);

/* Appends `msg` (copied) to rw->warnings unless present or full. */
void zw_rewrite_warn(struct zw_rewrite *rw, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

#endif
