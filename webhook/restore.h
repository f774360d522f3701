/* zerowire restore without admission: puts rewritten routes back by a
 * direct JSON patch, for when the webhook cannot be asked (uninstall, a
 * namespace labelled zerowire.io/autowire: "false", which the webhook is not
 * called for). The restore itself is mutate.h's (zw_mutate_restore_object):
 * this module only reads the routes and writes the result.
 *
 * One-shot restore (zerowire-webhook restore), in this order:
 *   1. hold the reconciler's Lease as "zerowire-restore" (hold_s seconds),
 *      so that webhook replicas still running stay followers and touch
 *      nothing;
 *   2. delete the MutatingWebhookConfiguration, so that no write (ours or
 *      anyone's) is rewritten again;
 *   3. wait handover_ms (a leader notices the new holder at its next
 *      renewal, every ZW_LEASE_RENEW_MS);
 *   4. passes until one finds nothing left to do: every route kind served
 *      (Ingress, HTTPRoute, GRPCRoute, Istio VirtualService, Gloo
 *      VirtualService/RouteTable, Gloo Platform RouteTable) is listed and
 *      each route carrying zerowire.io/original or zerowire.io/reconcile is
 *      restored; alias Services, ReferenceGrants and generated ScaledObjects
 *      zerowire made (labels app.kubernetes.io/managed-by: zerowire and
 *      zerowire.io/wiring) are deleted.
 * It ends when a pass changed nothing and failed nowhere, or at the
 * deadline with the list of what is left. */
#ifndef ZW_RESTORE_H
#define ZW_RESTORE_H

#include "kube.h"
#include "mutate.h"
#include "lease.h"

#include <jansson.h>
#include <stddef.h>

#define ZW_RESTORE_HOLDER      "zerowire-restore"
#define ZW_RESTORE_HOLD_S      3600
#define ZW_RESTORE_DEADLINE_MS 120000
#define ZW_RESTORE_HANDOVER_MS (ZW_LEASE_RENEW_MS + 1000)

/* Result of restoring one route. */
enum zw_restore_status {
	ZW_RS_UNCHANGED = 0, /* nothing of zerowire's on it */
	ZW_RS_PATCHED,       /* restored by a patch */
	ZW_RS_STUCK,         /* cannot be restored (message says why) */
	ZW_RS_API_ERROR,     /* the patch failed (message says why; 409/422: changed meanwhile) */
	ZW_RS_NOMEM,
};

/* Restores route obj (borrowed, as read from the API server) of resource
 * group/version/resource with a JSON patch guarded by its resourceVersion:
 * the records are put back (zw_mutate_restore_object with cfg, borrowed, may
 * be NULL) and the reconciler's touch annotation removed. msg (msglen bytes)
 * gets a reason when the result is STUCK or API_ERROR, and the number of
 * records dropped (edited since) otherwise. Returns the status. */
enum zw_restore_status zw_restore_route(struct zw_kube *kube, const char *group,
                                        const char *version, const char *resource,
                                        const json_t *obj, const struct zw_mutate_config *cfg,
                                        char *msg, size_t msglen);

struct zw_restore_config {
	struct zw_kube *kube;                  /* borrowed */
	const struct zw_mutate_config *mutate; /* borrowed; the proxy namespace names where
	                                          ReferenceGrants are when namespaces are given */
	const char *webhook_config;            /* MutatingWebhookConfiguration to delete, or NULL */
	const char *lease_namespace;           /* reconciler Lease to hold, or NULL */
	const char *lease_name;
	const char *const *namespaces; /* NULL/0 = all namespaces */
	size_t n_namespaces;
	unsigned deadline_ms; /* 0 = ZW_RESTORE_DEADLINE_MS */
	unsigned handover_ms; /* wait after taking the Lease; 0 = none */
	unsigned hold_s;      /* Lease duration; 0 = ZW_RESTORE_HOLD_S */
};

/* Runs the one-shot restore described above. *left_out gets a new JSON
 * array of strings owned by the caller: what could not be restored or
 * deleted (empty on success). Returns 0 when everything is restored, 1 when
 * something is left (see *left_out), -1 on ENOMEM (*left_out NULL). */
int zw_restore_run(const struct zw_restore_config *cfg, json_t **left_out);

#endif
