/* zerowire-webhook leader Lease: one coordination.k8s.io/v1 Lease
 * (namespace/name) elects the replica whose reconciler acts. The holder
 * renews it every ZW_LEASE_RENEW_MS for ZW_LEASE_S seconds; another replica
 * takes it over once it has seen the same holder and resourceVersion for
 * the Lease's duration (its own clock, no clock comparison across
 * replicas). Every request is blocking (kube.h): call from a thread that
 * may block, never from a libuv loop. */
#ifndef ZW_LEASE_H
#define ZW_LEASE_H

#include "kube.h"

#include <jansson.h>
#include <stdbool.h>

#define ZW_LEASE_S        15
#define ZW_LEASE_RENEW_MS 5000
#define ZW_LEASE_RETRY_MS 2000 /* a follower reads the Lease again this often */

struct zw_lease {
	struct zw_kube *kube;  /* borrowed */
	const char *namespace; /* borrowed */
	const char *name;      /* borrowed */
	const char *identity;  /* borrowed: this replica's holderIdentity */
	bool leading;
	/* What this replica saw last, for the takeover rule above. */
	int last_status; /* last logged create failure (HTTP status, -1 none) */
	char observed_holder[256];
	char observed_rv[64];
	long long observed_at_ms;
	long long last_renew_ms;
};

/* Sets up l for client kube and Lease namespace/name held as identity (all
 * borrowed, outliving l); not leading. */
void zw_lease_init(struct zw_lease *l, struct zw_kube *kube, const char *namespace,
                   const char *name, const char *identity);

/* One election step at monotonic time now_ms: creates the Lease when
 * missing, renews it when held, takes it over when expired, else follows.
 * A leader that could not renew for ZW_LEASE_S stops leading. Returns 1
 * when l leads after the step, else 0 (also in l->leading). */
int zw_lease_step(struct zw_lease *l, long long now_ms);

/* Gives the Lease up when l leads (holder "", duration 1 s), so that
 * another replica takes over at once. l no longer leads after. */
void zw_lease_release(struct zw_lease *l);

/* The Lease object (a new reference, NULL on ENOMEM) for namespace/name
 * held by holder for duration_s, at RFC 3339 microsecond time now: built
 * from old (borrowed, the Lease as read; NULL: a new one), counting a
 * transition when the holder changes to a non-empty one. */
json_t *zw_lease_body(const char *namespace, const char *name, const json_t *old,
                      const char *holder, int duration_s, const char *now);

/* Makes holder (borrowed) the holder of Lease namespace/name for
 * duration_s seconds with client kube (borrowed), creating it when missing:
 * replicas electing with that Lease stay followers meanwhile (the uninstall
 * restore holds it so that no reconciler acts). Returns 0, or -1 with err
 * filled (409: changed meanwhile, try again). */
int zw_lease_hold(struct zw_kube *kube, const char *namespace, const char *name, const char *holder,
                  int duration_s, struct zw_kube_error *err);

#endif
