{{/* TLS listener helpers (proxy.tls, docs/tls.md). */}}

{{/* A Secret reference of proxy.tls as NAMESPACE/NAME: a bare name is in the
proxy's namespace. Takes (list ref $). */}}
{{- define "zerowire.tlsSecretRef" -}}
{{- $ref := index . 0 -}}
{{- if contains "/" $ref -}}
{{- $ref -}}
{{- else -}}
{{- printf "%s/%s" (include "zerowire.proxyNamespace" (index . 1)) $ref -}}
{{- end -}}
{{- end -}}
