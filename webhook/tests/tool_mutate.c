/* Test tool: runs AdmissionReviews through zw_mutate_review for the pytest
 * suite webhook/tests/rewrite_jsonpatch_test.py.
 *
 *   webhook_tool_mutate SETUP.json < reviews (one JSON document per line)
 *
 * SETUP.json: {"config": {proxy_service, proxy_namespace, proxy_port, proxy_h2c_port,
 * scaler_address, alias_service, autowire_mesh_virtualservices, split_header,
 * enabled_kinds: [ingress|httproute|grpcroute|virtualservice|gloo],
 * handwired_hosts: [..]}, "registry": [objects for zw_registry_apply_object],
 * "wiring": [{"what": "alias"|"grant-httproute"|"grant-grpcroute",
 * "namespace": ns}]}. For each input line one output line:
 * {"status": N, "response": {...} | null, "patched": object | null} where
 * `patched` is request.object with the response's patch applied by
 * zw_jsonpatch_apply (null without a patch). Lines are limited to
 * ZW_MUTATE_MAX_BODY + 1 bytes. Exit status 0, or 2 on bad usage/setup. */
#include "base64.h"
#include "jsonpatch.h"
#include "mutate.h"
#include "registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HANDWIRED 16

static json_t *decode_patch(const char *b64)
{
	size_t n;
	char *raw = (char *)zw_base64_decode(b64, strlen(b64), &n);
	json_t *patch = raw ? json_loadb(raw, n, 0, NULL) : NULL;

	free(raw);
	return patch;
}

static int setup(const char *path, struct zw_registry *reg, struct zw_mutate_config *cfg,
                 const char **handwired, json_t **keep)
{
	json_error_t jerr;
	char err[ZW_TARGET_ERRLEN];
	json_t *s = json_load_file(path, 0, &jerr);
	if (!s) {
		fprintf(stderr, "tool_mutate: %s: %s\n", path, jerr.text);
		return -1;
	}
	*keep = s;
	json_t *c = json_object_get(s, "config");
	const char *v;
	zw_mutate_config_defaults(cfg);
	if ((v = json_string_value(json_object_get(c, "proxy_service"))))
		cfg->proxy_service = v;
	if ((v = json_string_value(json_object_get(c, "proxy_namespace"))))
		cfg->proxy_namespace = v;
	if ((v = json_string_value(json_object_get(c, "scaler_address"))))
		cfg->scaler_address = v;
	if ((v = json_string_value(json_object_get(c, "alias_service"))))
		cfg->alias_service = v;
	if (json_is_integer(json_object_get(c, "proxy_port")))
		cfg->proxy_port = (int)json_integer_value(json_object_get(c, "proxy_port"));
	if (json_is_integer(json_object_get(c, "proxy_h2c_port")))
		cfg->proxy_h2c_port = (int)json_integer_value(json_object_get(c, "proxy_h2c_port"));
	cfg->autowire_mesh_virtualservices =
	        json_is_true(json_object_get(c, "autowire_mesh_virtualservices"));
	if (json_is_false(json_object_get(c, "split_header")))
		cfg->split_header = false;
	json_t *kinds = json_object_get(c, "enabled_kinds");
	if (kinds) {
		static const char *const names[] = {"ingress", "httproute", "grpcroute",
		                                    "virtualservice", "gloo"};
		static const unsigned bits[] = {ZW_AW_INGRESS, ZW_AW_HTTPROUTE, ZW_AW_GRPCROUTE,
		                                ZW_AW_VIRTUALSERVICE, ZW_AW_GLOO};
		size_t k;
		json_t *w;
		cfg->enabled_kinds = 0;
		json_array_foreach(kinds, k, w)
		{
			for (size_t b = 0; b < 5; b++) {
				if (json_is_string(w) &&
				    strcmp(json_string_value(w), names[b]) == 0)
					cfg->enabled_kinds |= bits[b];
			}
		}
	}
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(c, "handwired_hosts"), i, x)
	{
		if (i < MAX_HANDWIRED && json_is_string(x))
			handwired[cfg->n_handwired_hosts++] = json_string_value(x);
	}
	cfg->handwired_hosts = handwired;
	json_array_foreach(json_object_get(s, "registry"), i, x)
	{
		if (zw_registry_apply_object(reg, x, false, err) < 0) {
			fprintf(stderr, "tool_mutate: registry object %zu: %s\n", i, err);
			return -1;
		}
	}
	json_array_foreach(json_object_get(s, "wiring"), i, x)
	{
		const char *what = json_string_value(json_object_get(x, "what"));
		const char *ns = json_string_value(json_object_get(x, "namespace"));
		enum zw_wiring w = ZW_WIRE_ALIAS;
		if (!what || !ns)
			return -1;
		if (strcmp(what, "grant-httproute") == 0)
			w = ZW_WIRE_GRANT_HTTPROUTE;
		else if (strcmp(what, "grant-grpcroute") == 0)
			w = ZW_WIRE_GRANT_GRPCROUTE;
		if (zw_registry_set_wiring(reg, w, ns, true))
			return -1;
	}
	return 0;
}

static void answer(const char *line, size_t len, const struct zw_registry *reg,
                   const struct zw_mutate_config *cfg)
{
	char *out = NULL, err[256];
	size_t out_len = 0;
	struct zw_mutate_result info;
	int status = zw_mutate_review(line, len, reg, cfg, &out, &out_len, &info);
	json_t *resp = out ? json_loadb(out, out_len, 0, NULL) : NULL;
	json_t *patched = NULL;
	const char *b64 =
	        json_string_value(json_object_get(json_object_get(resp, "response"), "patch"));
	if (b64) {
		json_t *review = json_loadb(line, len, 0, NULL);
		json_t *patch = decode_patch(b64);
		patched = json_deep_copy(
		        json_object_get(json_object_get(review, "request"), "object"));
		if (!patch || zw_jsonpatch_apply(&patched, patch, err, sizeof(err))) {
			json_decref(patched);
			patched = json_string("patch does not apply");
		}
		json_decref(patch);
		json_decref(review);
	}
	json_t *o = json_pack("{s:i, s:o*, s:o*, s:s}", "status", status, "response", resp,
	                      "patched", patched, "outcome", zw_mutate_outcome_name(info.outcome));
	char *dump = o ? json_dumps(o, JSON_COMPACT) : NULL;
	printf("%s\n", dump ? dump : "{\"status\":-1}");
	fflush(stdout);
	free(dump);
	json_decref(o);
	free(out);
}

int main(int argc, char **argv)
{
	struct zw_mutate_config cfg;
	const char *handwired[MAX_HANDWIRED];
	json_t *keep = NULL;
	int rc = 2;
	if (argc != 2) {
		fprintf(stderr, "usage: tool_mutate SETUP.json < reviews\n");
		return 2;
	}
	struct zw_registry *reg = zw_registry_new();
	size_t cap = ZW_MUTATE_MAX_BODY + 2;
	char *line = malloc(cap);
	if (!reg || !line || setup(argv[1], reg, &cfg, handwired, &keep))
		goto out;
	while (fgets(line, (int)cap, stdin)) {
		size_t len = strlen(line);
		if (len && line[len - 1] == '\n')
			line[--len] = '\0';
		answer(line, len, reg, &cfg);
	}
	rc = 0;
out:
	free(line);
	json_decref(keep);
	zw_registry_free(reg);
	return rc;
}
