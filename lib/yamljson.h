/* YAML (libyaml) to JSON (jansson) for Kubernetes manifests and kubeconfig.
 *
 * Scalars follow the YAML 1.2 core schema as Kubernetes (sigs.k8s.io/yaml)
 * resolves them: plain `true`/`false`, `null`/`~`/empty, integers and floats
 * become JSON booleans, null and numbers; quoted and block scalars stay
 * strings. Anchors and aliases are resolved (an alias expands to a copy, at
 * most ZW_YAML_MAX_ALIASES of them and ZW_YAML_MAX_ALIAS_NODES expanded nodes per
 * stream). Mapping keys are strings. */
#ifndef ZW_YAMLJSON_H
#define ZW_YAMLJSON_H

#include <jansson.h>
#include <stddef.h>

#define ZW_YAML_MAX_ALIASES     1000
#define ZW_YAML_MAX_ALIAS_NODES 100000 /* nodes created by expanding aliases */
#define ZW_YAML_MAX_DEPTH       128

/* Parses every document of the YAML stream buf[0..len) (borrowed). Empty
 * documents are skipped. On success *docs_out is a new JSON array owned by
 * the caller. Returns 0, or -1 with a message "line L column C: reason" in
 * err (errlen bytes) and *docs_out NULL. */
int zw_yaml_load(const char *buf, size_t len, json_t **docs_out, char *err, size_t errlen);

/* Reads the file at path and parses it as zw_yaml_load does. A read error
 * gives -1 with "path: strerror" in err. */
int zw_yaml_load_file(const char *path, json_t **docs_out, char *err, size_t errlen);

#endif
