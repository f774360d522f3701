/* zerowire-webhook: alias Service and mirrored EndpointSlices (see alias.h). */
#include "alias.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SERVICE_NAME_LABEL  "kubernetes.io/service-name"
#define SLICE_MANAGER_LABEL "endpointslice.kubernetes.io/managed-by"

static const char *str_or(const json_t *o, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : dflt;
}

static const char *label(const json_t *obj, const char *key)
{
	return str_or(json_object_get(json_object_get(obj, "metadata"), "labels"), key, "");
}

int zw_alias_mode_parse(const char *s, enum zw_alias_mode *out)
{
	if (!s)
		return -1;
	if (strcmp(s, "endpointslice") == 0)
		*out = ZW_ALIAS_ENDPOINTSLICE;
	else if (strcmp(s, "externalname") == 0)
		*out = ZW_ALIAS_EXTERNALNAME;
	else
		return -1;
	return 0;
}

/* {"name", "port", "protocol"[, "appProtocol"]} of a Service or
 * EndpointSlice port (appProtocol tells gateways to speak h2c to the proxy's
 * h2c port); NULL without a valid port number. */
static json_t *port_entry(const json_t *p)
{
	json_int_t port = json_integer_value(json_object_get(p, "port"));
	const char *app = str_or(p, "appProtocol", "");
	json_t *e;

	if (port <= 0 || port > 65535)
		return NULL;
	e = json_pack("{s:s,s:I,s:s}", "name", str_or(p, "name", ""), "port", port, "protocol",
	              str_or(p, "protocol", "TCP"));
	if (e && *app && json_object_set_new(e, "appProtocol", json_string(app)) < 0) {
		json_decref(e);
		return NULL;
	}
	return e;
}

/* The alias Service's ports: the proxy Service's (name, port, protocol,
 * appProtocol), or when the proxy Service is unknown one "http" port and,
 * when h2c_port > 0, one "h2c" port. */
static json_t *service_ports(const json_t *proxy_svc, int proxy_port, int h2c_port)
{
	json_t *ports = json_array(), *p;
	size_t i;

	if (!ports)
		return NULL;
	json_array_foreach(json_object_get(json_object_get(proxy_svc, "spec"), "ports"), i, p)
	{
		json_t *e = port_entry(p);
		if (e && json_string_length(json_object_get(e, "name")) == 0)
			json_object_del(e, "name");
		if (e)
			json_array_append_new(ports, e);
	}
	if (json_array_size(ports) == 0) {
		json_array_append_new(ports, json_pack("{s:s,s:i,s:s}", "name", "http", "port",
		                                       proxy_port, "protocol", "TCP"));
		if (h2c_port > 0)
			json_array_append_new(ports, json_pack("{s:s,s:i,s:s,s:s}", "name", "h2c",
			                                       "port", h2c_port, "protocol", "TCP",
			                                       "appProtocol", ZW_ALIAS_H2C_APP));
	}
	return ports;
}

json_t *zw_alias_service_spec(enum zw_alias_mode mode, const char *fqdn, const json_t *proxy_svc,
                              int proxy_port, int h2c_port)
{
	json_t *ports = service_ports(proxy_svc, proxy_port, h2c_port);

	if (!ports)
		return NULL;
	if (mode == ZW_ALIAS_EXTERNALNAME)
		return json_pack("{s:s,s:s,s:o}", "type", "ExternalName", "externalName", fqdn,
		                 "ports", ports);
	return json_pack("{s:s,s:o}", "type", "ClusterIP", "ports", ports);
}

/* Nonzero when every port wanted is in have (by name, port, protocol,
 * appProtocol) and the counts agree. */
static int ports_match(const json_t *want, const json_t *have)
{
	const json_t *w;
	size_t i;

	if (json_array_size(want) != json_array_size(have))
		return 0;
	json_array_foreach(want, i, w)
	{
		const json_t *h = json_array_get(have, i);
		if (strcmp(str_or(w, "name", ""), str_or(h, "name", "")) != 0 ||
		    json_integer_value(json_object_get(w, "port")) !=
		            json_integer_value(json_object_get(h, "port")) ||
		    strcmp(str_or(w, "protocol", "TCP"), str_or(h, "protocol", "TCP")) != 0 ||
		    strcmp(str_or(w, "appProtocol", ""), str_or(h, "appProtocol", "")) != 0)
			return 0;
	}
	return 1;
}

json_t *zw_alias_service_patch(const json_t *cur, const json_t *want)
{
	const json_t *cs = json_object_get(cur, "spec");
	const char *type = str_or(want, "type", "");
	int external = strcmp(type, "ExternalName") == 0;
	json_t *spec, *patch;

	if (strcmp(str_or(cs, "type", "ClusterIP"), type) == 0 &&
	    ports_match(json_object_get(want, "ports"), json_object_get(cs, "ports")) &&
	    (external
	             ? strcmp(str_or(cs, "externalName", ""), str_or(want, "externalName", "")) == 0
	             : !json_object_get(cs, "selector") && !json_object_get(cs, "externalName")))
		return NULL;
	spec = json_deep_copy(want);
	if (!spec)
		return NULL;
	if (external) {
		/* ClusterIP -> ExternalName: the cluster IP fields must go. */
		json_object_set_new(spec, "clusterIP", json_null());
		json_object_set_new(spec, "clusterIPs", json_null());
		json_object_set_new(spec, "ipFamilies", json_null());
		json_object_set_new(spec, "ipFamilyPolicy", json_null());
	} else {
		json_object_set_new(spec, "externalName", json_null());
	}
	json_object_set_new(spec, "selector", json_null());
	patch = json_pack("{s:o}", "spec", spec);
	return patch;
}

static int cmp_first_address(const void *a, const void *b)
{
	const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;
	const char *sx = json_string_value(json_array_get(json_object_get(x, "addresses"), 0));
	const char *sy = json_string_value(json_array_get(json_object_get(y, "addresses"), 0));

	return strcmp(sx ? sx : "", sy ? sy : "");
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(str_or(*(const json_t *const *)a, "name", ""),
	              str_or(*(const json_t *const *)b, "name", ""));
}

/* Replaces arr's elements by the same ones sorted with cmp. */
static int sort_array(json_t *arr, int (*cmp)(const void *, const void *))
{
	size_t n = json_array_size(arr), i;
	json_t **v;

	if (n < 2)
		return 0;
	v = calloc(n, sizeof(*v));
	if (!v)
		return -1;
	for (i = 0; i < n; i++)
		v[i] = json_incref(json_array_get(arr, i));
	qsort(v, n, sizeof(*v), cmp);
	json_array_clear(arr);
	for (i = 0; i < n; i++)
		json_array_append_new(arr, v[i]);
	free(v);
	return 0;
}

/* Adds slice's ready endpoints and its ports to entry; seen: address -> true. */
static int mirror_one(json_t *entry, json_t *seen, const json_t *slice)
{
	json_t *eps = json_object_get(entry, "endpoints"), *ports = json_object_get(entry, "ports");
	const json_t *ep, *p;
	size_t i, j;

	json_array_foreach(json_object_get(slice, "endpoints"), i, ep)
	{
		const json_t *addrs = json_object_get(ep, "addresses");
		const char *first = json_string_value(json_array_get(addrs, 0));
		json_t *out;
		if (json_is_false(json_object_get(json_object_get(ep, "conditions"), "ready")) ||
		    !first || json_object_get(seen, first))
			continue;
		out = json_pack("{s:O,s:{s:b}}", "addresses", addrs, "conditions", "ready", 1);
		if (!out || json_array_append_new(eps, out) < 0 ||
		    json_object_set_new(seen, first, json_true()) < 0)
			return -1;
	}
	json_array_foreach(json_object_get(slice, "ports"), i, p)
	{
		json_t *e = port_entry(p), *have;
		int dup = 0;
		if (!e)
			continue;
		json_array_foreach(ports, j, have)
		{
			if (strcmp(str_or(have, "name", ""), str_or(e, "name", "")) == 0)
				dup = 1;
		}
		if (dup)
			json_decref(e);
		else if (json_array_append_new(ports, e) < 0)
			return -1;
	}
	return 0;
}

json_t *zw_alias_mirror(const json_t *slices, const char *service)
{
	json_t *out = json_object(), *seen = json_object(), *entry;
	const json_t *slice;
	const char *type;
	size_t i;

	if (!out || !seen)
		goto fail;
	json_array_foreach(slices, i, slice)
	{
		if (service && strcmp(label(slice, SERVICE_NAME_LABEL), service) != 0)
			continue;
		type = str_or(slice, "addressType", "IPv4");
		entry = json_object_get(out, type);
		if (!entry) {
			entry = json_pack("{s:s,s:[],s:[]}", "addressType", type, "endpoints",
			                  "ports");
			if (!entry || json_object_set_new(out, type, entry) < 0)
				goto fail;
		}
		if (mirror_one(entry, seen, slice) < 0)
			goto fail;
	}
	json_object_foreach(out, type, entry)
	{
		if (sort_array(json_object_get(entry, "endpoints"), cmp_first_address) < 0 ||
		    sort_array(json_object_get(entry, "ports"), cmp_name) < 0)
			goto fail;
	}
	json_decref(seen);
	return out;
fail:
	json_decref(seen);
	json_decref(out);
	return NULL;
}

int zw_alias_slice_name(const char *alias, const char *address_type, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s-zw-%s", alias, address_type);
	size_t i;

	if (n < 0 || (size_t)n >= len)
		return -1;
	for (i = (size_t)n - strlen(address_type); i < (size_t)n; i++)
		buf[i] = (char)tolower((unsigned char)buf[i]);
	return 0;
}

json_t *zw_alias_slice_object(const char *ns, const char *alias, const char *uid,
                              const char *api_version, const json_t *entry)
{
	const char *type = str_or(entry, "addressType", "IPv4");
	char name[320];

	if (zw_alias_slice_name(alias, type, name, sizeof(name)) < 0)
		return NULL;
	return json_pack(
	        "{s:s,s:s,s:{s:s,s:s,s:{s:s,s:s,s:s,s:s},s:[{s:s,s:s,s:s,s:s}]},"
	        "s:s,s:O,s:O}",
	        "apiVersion", api_version, "kind", "EndpointSlice", "metadata", "name", name,
	        "namespace", ns, "labels", SERVICE_NAME_LABEL, alias, SLICE_MANAGER_LABEL,
	        ZW_ALIAS_SLICE_MANAGER, "app.kubernetes.io/managed-by", "zerowire",
	        "zerowire.io/wiring", "alias", "ownerReferences", "apiVersion", "v1", "kind",
	        "Service", "name", alias, "uid", uid, "addressType", type, "endpoints",
	        json_object_get(entry, "endpoints"), "ports", json_object_get(entry, "ports"));
}

int zw_alias_slice_matches(const json_t *cur, const json_t *want)
{
	json_t *arr = json_pack("[O]", cur), *m;
	const json_t *got, *w;
	int same = 0;

	if (!arr)
		return 0;
	m = zw_alias_mirror(arr, NULL);
	got = json_object_get(m, str_or(cur, "addressType", "IPv4"));
	w = json_object_get(m, str_or(want, "addressType", "IPv4"));
	if (got && w == got &&
	    json_equal(json_object_get(got, "endpoints"), json_object_get(want, "endpoints")) &&
	    json_equal(json_object_get(got, "ports"), json_object_get(want, "ports")))
		same = 1;
	json_decref(m);
	json_decref(arr);
	return same;
}
