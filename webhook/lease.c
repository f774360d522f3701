/* zerowire-webhook leader Lease: create, renew, take over, release. */
#include "lease.h"

#include "kobj.h"
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define LEASE_LABEL "app.kubernetes.io/managed-by"
#define LEASE_VALUE "zerowire"

/* RFC 3339 with microseconds (metav1.MicroTime), now. */
static void micro_time(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	char base[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%06ldZ", base, ts.tv_nsec / 1000);
}

static struct zw_kube_ref lease_ref(const char *namespace, const char *name)
{
	struct zw_kube_ref ref = {.group = "coordination.k8s.io",
	                          .version = "v1",
	                          .resource = "leases",
	                          .namespace = namespace,
	                          .name = name};
	return ref;
}

json_t *zw_lease_body(const char *namespace, const char *name, const json_t *old,
                      const char *holder, int duration_s, const char *now)
{
	json_t *lease, *spec;
	int transitions = 0;

	if (old) {
		lease = json_deep_copy(old);
		if (!lease)
			return NULL;
		spec = json_object_get(lease, "spec");
		if (!json_is_object(spec)) {
			spec = json_object();
			json_object_set_new(lease, "spec", spec);
		}
		transitions = (int)json_integer_value(json_object_get(spec, "leaseTransitions"));
		if (strcmp(zw_kobj_str(spec, "holderIdentity"), holder) != 0) {
			if (holder[0] != '\0')
				transitions++;
			json_object_set_new(spec, "acquireTime", json_string(now));
		}
	} else {
		lease = json_pack("{s:s,s:s,s:{s:s,s:s,s:{s:s}},s:{}}", "apiVersion",
		                  "coordination.k8s.io/v1", "kind", "Lease", "metadata", "name",
		                  name, "namespace", namespace, "labels", LEASE_LABEL, LEASE_VALUE,
		                  "spec");
		if (!lease)
			return NULL;
		spec = json_object_get(lease, "spec");
		json_object_set_new(spec, "acquireTime", json_string(now));
	}
	json_object_set_new(spec, "holderIdentity", json_string(holder));
	json_object_set_new(spec, "leaseDurationSeconds", json_integer(duration_s));
	json_object_set_new(spec, "renewTime", json_string(now));
	json_object_set_new(spec, "leaseTransitions", json_integer(transitions));
	return lease;
}

void zw_lease_init(struct zw_lease *l, struct zw_kube *kube, const char *namespace,
                   const char *name, const char *identity)
{
	memset(l, 0, sizeof(*l));
	l->kube = kube;
	l->namespace = namespace;
	l->name = name;
	l->identity = identity;
	l->last_status = -1;
}

static json_t *own_body(const struct zw_lease *l, const json_t *cur)
{
	char now[64];

	micro_time(now, sizeof(now));
	return zw_lease_body(l->namespace, l->name, cur, l->identity, ZW_LEASE_S, now);
}

int zw_lease_step(struct zw_lease *l, long long now_ms)
{
	struct zw_kube_ref ref = lease_ref(l->namespace, l->name);
	struct zw_kube_error err;
	json_t *cur = NULL, *body = NULL;
	int rc;

	rc = zw_kube_get(l->kube, &ref, NULL, &cur, &err);
	if (rc < 0 && err.http_status == 404) {
		struct zw_kube_ref coll = ref;
		coll.name = NULL;
		body = own_body(l, NULL);
		if (body && zw_kube_create(l->kube, &coll, NULL, body, NULL, &err) == 0) {
			l->last_renew_ms = now_ms;
			l->last_status = -1;
			l->leading = true;
		} else if (body && l->last_status != err.http_status) {
			l->last_status = err.http_status;
			zw_log(ZW_LOG_WARN, "lease_create_failed", "status=%d error=\"%s\"",
			       err.http_status, zw_kube_error_text(&err));
		}
		goto out;
	}
	if (rc < 0) {
		zw_log(ZW_LOG_WARN, "lease_get_failed", "status=%d error=\"%s\"", err.http_status,
		       zw_kube_error_text(&err));
		goto check_expiry;
	}
	{
		json_t *spec = json_object_get(cur, "spec");
		const char *holder = zw_kobj_str(spec, "holderIdentity");
		const char *rv = zw_kobj_meta(cur, "resourceVersion");
		long long dur = json_integer_value(json_object_get(spec, "leaseDurationSeconds"));
		int mine = strcmp(holder, l->identity) == 0;

		if (dur <= 0)
			dur = ZW_LEASE_S;
		if (strcmp(holder, l->observed_holder) != 0 || strcmp(rv, l->observed_rv) != 0) {
			snprintf(l->observed_holder, sizeof(l->observed_holder), "%s", holder);
			snprintf(l->observed_rv, sizeof(l->observed_rv), "%s", rv);
			l->observed_at_ms = now_ms;
		}
		if (!mine && holder[0] != '\0' && now_ms - l->observed_at_ms < dur * 1000) {
			l->leading = false;
			goto out;
		}
		body = own_body(l, cur);
		if (body && zw_kube_update(l->kube, &ref, NULL, body, NULL, &err) == 0) {
			l->last_renew_ms = now_ms;
			l->last_status = -1;
			l->leading = true;
			goto out;
		}
		if (body)
			zw_log(ZW_LOG_INFO, "lease_update_failed", "status=%d error=\"%s\"",
			       err.http_status, zw_kube_error_text(&err));
	}
check_expiry:
	if (l->leading && now_ms - l->last_renew_ms > ZW_LEASE_S * 1000)
		l->leading = false;
out:
	json_decref(cur);
	json_decref(body);
	return l->leading;
}

void zw_lease_release(struct zw_lease *l)
{
	struct zw_kube_ref ref = lease_ref(l->namespace, l->name);
	struct zw_kube_error err;
	json_t *cur = NULL, *body = NULL;
	char now[64];

	if (!l->leading)
		return;
	l->leading = false;
	if (zw_kube_get(l->kube, &ref, NULL, &cur, &err) < 0)
		return;
	if (strcmp(zw_kobj_str(json_object_get(cur, "spec"), "holderIdentity"), l->identity) == 0) {
		micro_time(now, sizeof(now));
		body = zw_lease_body(l->namespace, l->name, cur, "", 1, now);
		if (body)
			zw_kube_update(l->kube, &ref, NULL, body, NULL, &err);
	}
	json_decref(cur);
	json_decref(body);
}

int zw_lease_hold(struct zw_kube *kube, const char *namespace, const char *name, const char *holder,
                  int duration_s, struct zw_kube_error *err)
{
	struct zw_kube_ref ref = lease_ref(namespace, name);
	json_t *cur = NULL, *body = NULL;
	char now[64];
	int rc = -1;

	if (zw_kube_get(kube, &ref, NULL, &cur, err) < 0 && err->http_status != 404)
		goto out;
	micro_time(now, sizeof(now));
	body = zw_lease_body(namespace, name, cur, holder, duration_s, now);
	if (!body) {
		err->http_status = 0;
		snprintf(err->reason, sizeof(err->reason), "%s", "NoMemory");
		snprintf(err->message, sizeof(err->message), "%s", "out of memory");
		goto out;
	}
	if (!cur) {
		ref.name = NULL;
		rc = zw_kube_create(kube, &ref, NULL, body, NULL, err);
	} else {
		rc = zw_kube_update(kube, &ref, NULL, body, NULL, err);
	}
out:
	json_decref(cur);
	json_decref(body);
	return rc;
}
