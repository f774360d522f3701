/* Kubernetes exec credential plugins (kubeconfig users[].user.exec), as
 * client-go runs them for EKS (aws eks get-token), GKE
 * (gke-gcloud-auth-plugin) and AKS (kubelogin): the command is run with its
 * args and the process environment plus the plugin's env entries and
 * KUBERNETES_EXEC_INFO (an ExecCredential with spec.interactive false), no
 * stdin, stderr inherited; stdout must be one ExecCredential of the same
 * apiVersion (client.authentication.k8s.io/v1 or v1beta1) whose status
 * gives token, or clientCertificateData and clientKeyData (PEM), and
 * optionally expirationTimestamp (RFC 3339). */
#ifndef ZW_KUBEEXEC_H
#define ZW_KUBEEXEC_H

#include <jansson.h>
#include <stddef.h>

#define ZW_KUBE_EXEC_TIMEOUT_MS 60000
#define ZW_KUBE_EXEC_MAX_OUTPUT (1024 * 1024)

struct zw_kube_exec {
	char *api_version;
	char **argv; /* command, args..., NULL */
	char **env;  /* "NAME=value" entries added to the environment, NULL-terminated */
};

struct zw_kube_exec_cred {
	char *token;      /* or NULL */
	char *cert, *key; /* PEM, or NULL */
	long long expiry; /* Unix seconds; 0 = does not expire */
};

/* Takes a kubeconfig exec mapping and the kubeconfig's directory (a command
 * with a slash is relative to it), both borrowed. Returns 0 with *out a new
 * plugin description owned by the caller (zw_kube_exec_free), or -1 with a
 * message naming the field in err. */
int zw_kube_exec_parse(const json_t *exec, const char *dir, struct zw_kube_exec **out, char *err,
                       size_t errlen);

/* Takes a plugin (borrowed) and runs it once, waiting at most timeout_ms.
 * Returns 0 with *cred filled (strings owned by the caller, released by
 * zw_kube_exec_cred_clear), or -1 with the reason in err (exit status,
 * timeout, what is wrong with the output). */
int zw_kube_exec_run(const struct zw_kube_exec *x, int timeout_ms, struct zw_kube_exec_cred *cred,
                     char *err, size_t errlen);

/* Takes an RFC 3339 time (borrowed), e.g. 2030-01-02T03:04:05Z or with a
 * fraction and an offset. Returns 0 with *out in Unix seconds, or -1. */
int zw_rfc3339_parse(const char *s, long long *out);

/* Frees what cred holds (the token and key are zeroed first) and clears it;
 * NULL-safe. */
void zw_kube_exec_cred_clear(struct zw_kube_exec_cred *cred);

/* Frees x; NULL-safe. */
void zw_kube_exec_free(struct zw_kube_exec *x);

#endif
