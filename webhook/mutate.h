/* zerowire admission logic: AdmissionReview in, AdmissionReview out.
 *
 * One code path: desired = f(object, registry), patch = diff(object,
 * desired). f first restores every destination recorded in the annotation
 * `zerowire.io/original` whose location still holds the value zerowire
 * wrote (records whose location was edited are dropped), then rewrites every
 * destination that names a scaled Service whose target autowires the route
 * kind, recording it again. So a second admission of the result gives an
 * empty patch, and a destination whose target is gone comes back exactly.
 * A review rewrites its own parsed object in place and builds the patch
 * from the objects it changed (zw_jsonpatch_log_*): the same operations as
 * the whole-document diff, without a copy.
 * Pure: no I/O, no logging; the registry is only read. Thread-safe.
 *
 * Route kinds are chosen by request.kind group and version (never the kind
 * name alone); see docs/webhook-rewrite.md for the rules per kind. */
#ifndef ZW_MUTATE_H
#define ZW_MUTATE_H

#include "registry.h"
#include "routekinds.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* The annotation holding the records, and the opt-out label. */
#define ZW_ANNOTATION_ORIGINAL "zerowire.io/original"
#define ZW_LABEL_AUTOWIRE      "zerowire.io/autowire"

/* The proxy Service's port for its TLS listener (the chart names it so,
 * with proxy.tls.enabled): TLS destinations are rewritten to it when the
 * proxy Service, as the registry knows it, has this port. */
#define ZW_PROXY_TLS_PORT_NAME "https"

/* Largest record annotation written (bytes of JSON); beyond it the object is
 * left unchanged with a warning (the API server caps all annotations at
 * 256 KiB together). */
#define ZW_MUTATE_MAX_RECORD (128 * 1024)
/* The API server's limit on all of an object's annotations together (sum
 * of key and value lengths): a record that would push them past it is not
 * written either. */
#define ZW_MUTATE_MAX_ANNOTATIONS (256 * 1024)
/* Largest AdmissionReview body accepted (the API server's object limit). */
#define ZW_MUTATE_MAX_BODY (3 * 1024 * 1024)
/* At most this many warnings per response. */
#define ZW_MUTATE_MAX_WARNINGS 16

struct zw_mutate_config {
	const char *proxy_service;          /* proxy Service name, default "zerowire-proxy" */
	const char *proxy_namespace;        /* its namespace, default "zerowire" */
	int proxy_port;                     /* its HTTP port, default 8080 */
	int proxy_h2c_port;                 /* its h2c port (same target, appProtocol
	                                       kubernetes.io/h2c), default 8081; 0: h2c
	                                       and gRPC destinations are left alone */
	const char *scaler_address;         /* external-push scalerAddress,
	                                       default "zerowire-proxy.zerowire:9090" */
	const char *alias_service;          /* per-namespace Ingress alias Service,
	                                       default "zerowire-proxy" */
	const char *cluster_domain;         /* default "cluster.local" */
	bool autowire_mesh_virtualservices; /* also rewrite mesh-bound Istio VSs and
	                                        GAMMA routes (parentRefs all Services) */
	unsigned enabled_kinds;             /* enum zw_autowire bits, default ZW_AW_ALL */
	bool split_header;                  /* traffic splits between scaled Services: set
	                                       ZW_SERVICE_HEADER per destination, default true */
	/* Further names that mean "already at the proxy" (hand-wired routes):
	 * Service FQDNs such as
	 * "keda-add-ons-http-interceptor-proxy.keda.svc.cluster.local". */
	const char *const *handwired_hosts;
	size_t n_handwired_hosts;
};

enum zw_mutate_outcome {
	ZW_MO_UNCHANGED = 0,
	ZW_MO_REWRITTEN, /* at least one rewrite (restores may come with it) */
	ZW_MO_RESTORED,  /* only restores / record clean-up */
	ZW_MO_DENIED,    /* allowed: false (ScaledObject with invalid metadata) */
	ZW_MO_ERROR,     /* not understood: allowed unchanged with a warning */
	ZW_MO_COUNT,
};

struct zw_mutate_result {
	enum zw_mutate_kind kind;
	enum zw_mutate_outcome outcome;
	unsigned rewrites; /* destinations newly pointed at the proxy */
	unsigned restores; /* destinations put back */
	unsigned dropped;  /* records dropped because the user edited them */
	unsigned warnings;
	char message[256]; /* HTTP 400 reason, denial reason or first warning */
};

/* Fills *cfg with the defaults above (static strings). */
void zw_mutate_config_defaults(struct zw_mutate_config *cfg);

/* Stable lower-case names for metrics labels ("ingress", "rewritten", ...). */
const char *zw_mutate_kind_name(enum zw_mutate_kind kind);
const char *zw_mutate_outcome_name(enum zw_mutate_outcome outcome);

/* Handles one admission.k8s.io/v1 AdmissionReview request body
 * body[0..len) (borrowed). On HTTP-level success (returns 200) *response_out
 * is a newly malloc'd NUL-terminated AdmissionReview response JSON owned by
 * the caller (free()), *response_len its length. Returns 400 when the body
 * is not an AdmissionReview (no uid, not JSON, ...), 413 when len exceeds
 * ZW_MUTATE_MAX_BODY, 500 on ENOMEM; then *response_out is NULL and
 * info->message says why. `info` may be NULL; when given it is always
 * filled. `reg` may be NULL (no targets). */
int zw_mutate_review(const char *body, size_t len, const struct zw_registry *reg,
                     const struct zw_mutate_config *cfg, char **response_out, size_t *response_len,
                     struct zw_mutate_result *info);

/* The core, for callers that hold an object rather than a review (the
 * reconciler uses it to decide whether touching an object would change it).
 * `obj` (borrowed) is an object of API group/version/kind; `ns` its
 * namespace (NULL: metadata.namespace, else "default"). On success
 * *desired_out is a new reference to the desired object (a copy, or obj
 * itself with a new reference when nothing changes), *warnings_out a new
 * JSON array of strings; either out pointer may be NULL when not wanted.
 * Returns 0 (allowed), 1 (denied: info->message says why), or -1 on ENOMEM.
 * `info` is required. */
int zw_mutate_object(const json_t *obj, const char *group, const char *version, const char *kind,
                     const char *ns, const struct zw_registry *reg,
                     const struct zw_mutate_config *cfg, json_t **desired_out,
                     json_t **warnings_out, struct zw_mutate_result *info);

/* The restore alone, for when admission cannot run (uninstall, a namespace
 * opted out): every record of obj's annotation whose location still holds
 * what zerowire wrote is put back, the others dropped, and the annotation
 * removed; nothing is rewritten. `obj` is borrowed; group/version/kind
 * choose the route family (other kinds come back unchanged). On success
 * *desired_out is a new reference owned by the caller (equal to obj when
 * nothing changes) and info (required) counts restores and dropped records.
 * Returns 0, or -1 on ENOMEM (*desired_out NULL). */
int zw_mutate_restore_object(const json_t *obj, const char *group, const char *version,
                             const char *kind, const struct zw_mutate_config *cfg,
                             json_t **desired_out, struct zw_mutate_result *info);

/* Fills svcs (a JSON array, borrowed) with "<ns>/<name>" strings of every
 * Service the object's destinations name (before rewriting, i.e. including
 * the originals recorded in its annotation), for the reconciler's index of
 * routes by Service. Returns 0, or -1 on ENOMEM. */
int zw_mutate_services(const json_t *obj, const char *group, const char *version, const char *kind,
                       const char *ns, const struct zw_registry *reg,
                       const struct zw_mutate_config *cfg, json_t *svcs);

#endif
