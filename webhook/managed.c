/* zerowire-webhook managed objects: create, patch and delete what the
 * reconciler owns (see managed.h). */
#include "managed.h"

#include "kobj.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int zw_managed_init(struct zw_managed *m, struct zw_kube *kube, struct zw_wh_metrics *metrics)
{
	m->kube = kube;
	m->metrics = metrics;
	m->create_failures = json_object();
	return m->create_failures ? 0 : -ENOMEM;
}

void zw_managed_free(struct zw_managed *m)
{
	json_decref(m->create_failures);
	m->create_failures = NULL;
}

json_t *zw_managed_labels(const char *role)
{
	return json_pack("{s:s,s:s}", ZW_MANAGED_LABEL, ZW_MANAGED_VALUE, ZW_WIRING_LABEL, role);
}

int zw_managed_is(const json_t *obj, const char *role)
{
	return strcmp(zw_kobj_label(obj, ZW_MANAGED_LABEL), ZW_MANAGED_VALUE) == 0 &&
	       strcmp(zw_kobj_label(obj, ZW_WIRING_LABEL), role) == 0;
}

/* The object obj (borrowed) addresses, with the version and resource given. */
static struct zw_kube_ref obj_ref(const char *group, const char *version, const char *resource,
                                  const json_t *obj)
{
	struct zw_kube_ref ref = {.group = group,
	                          .version = version,
	                          .resource = resource,
	                          .namespace = zw_kobj_meta(obj, "namespace"),
	                          .name = zw_kobj_meta(obj, "name")};
	return ref;
}

int zw_managed_create(struct zw_managed *m, const char *group, const char *version,
                      const char *resource, const char *ns, json_t *obj, const char *what)
{
	struct zw_kube_ref ref = {
	        .group = group, .version = version, .resource = resource, .namespace = ns};
	struct zw_kube_error err;
	const char *name = zw_kobj_meta(obj, "name");
	char key[600];

	snprintf(key, sizeof(key), "%s/%s/%s", resource, ns, name);
	if (zw_kube_create(m->kube, &ref, NULL, obj, NULL, &err) < 0) {
		zw_wh_metrics_add(m->metrics, ZW_C_RECONCILE_ERRORS, 1);
		/* Logged once per object and status (a foreign object of the same
		 * name would otherwise be reported every pass). */
		if (json_integer_value(json_object_get(m->create_failures, key)) !=
		    err.http_status) {
			json_object_set_new(m->create_failures, key, json_integer(err.http_status));
			zw_log(ZW_LOG_WARN, "create_failed",
			       "what=%s ns=%s name=%s status=%d error=\"%s\"", what, ns, name,
			       err.http_status, zw_kube_error_text(&err));
		}
		return -EIO;
	}
	json_object_del(m->create_failures, key);
	zw_wh_metrics_add(m->metrics, ZW_C_RECONCILE_CREATED, 1);
	zw_log(ZW_LOG_INFO, "created", "what=%s ns=%s name=%s", what, ns, name);
	return 0;
}

int zw_managed_delete(struct zw_managed *m, const char *group, const char *version,
                      const char *resource, const json_t *obj, const char *what)
{
	struct zw_kube_ref ref = obj_ref(group, version, resource, obj);
	struct zw_kube_error err;

	if (zw_kube_delete(m->kube, &ref, NULL, NULL, &err) < 0 && err.http_status != 404) {
		zw_wh_metrics_add(m->metrics, ZW_C_RECONCILE_ERRORS, 1);
		zw_log(ZW_LOG_WARN, "delete_failed", "what=%s ns=%s name=%s status=%d error=\"%s\"",
		       what, ref.namespace, ref.name, err.http_status, zw_kube_error_text(&err));
		return -EIO;
	}
	zw_wh_metrics_add(m->metrics, ZW_C_RECONCILE_DELETED, 1);
	zw_log(ZW_LOG_INFO, "deleted", "what=%s ns=%s name=%s", what, ref.namespace, ref.name);
	return 0;
}

int zw_managed_patch(struct zw_managed *m, const char *group, const char *version,
                     const char *resource, const json_t *obj, json_t *patch, const char *what)
{
	struct zw_kube_ref ref = obj_ref(group, version, resource, obj);
	struct zw_kube_error err;

	if (zw_kube_patch(m->kube, &ref, NULL, ZW_KUBE_PATCH_MERGE, patch, NULL, &err) < 0) {
		zw_wh_metrics_add(m->metrics, ZW_C_RECONCILE_ERRORS, 1);
		zw_log(ZW_LOG_WARN, "update_failed", "what=%s ns=%s name=%s status=%d error=\"%s\"",
		       what, ref.namespace, ref.name, err.http_status, zw_kube_error_text(&err));
		return -EIO;
	}
	zw_log(ZW_LOG_INFO, "updated", "what=%s ns=%s name=%s", what, ref.namespace, ref.name);
	return 0;
}
