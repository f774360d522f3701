{{- define "zerowire.labels" -}}
app.kubernetes.io/name: zerowire
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{- define "zerowire.selector" -}}
app.kubernetes.io/name: zerowire
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "zerowire.fullname" -}}
{{- if eq .Release.Name "zerowire" }}zerowire{{ else }}{{ printf "%s-zerowire" .Release.Name | trunc 63 | trimSuffix "-" }}{{ end }}
{{- end }}

{{- define "zerowire.proxyNamespace" -}}
{{- default .Release.Namespace .Values.proxy.service.namespace }}
{{- end }}

{{- define "zerowire.webhookName" -}}
{{- printf "%s-webhook" (include "zerowire.fullname" .) }}
{{- end }}

{{- define "zerowire.scalerService" -}}
{{- if .Values.proxy.service.scalerName }}{{ .Values.proxy.service.scalerName }}{{ else }}{{ printf "%s-scaler" .Values.proxy.service.name | trunc 63 | trimSuffix "-" }}{{ end }}
{{- end }}

{{- define "zerowire.peersService" -}}
{{- printf "%s-peers" .Values.proxy.service.name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "zerowire.peerTokenSecret" -}}
{{- if .Values.proxy.peerAuth.existingSecret }}{{ .Values.proxy.peerAuth.existingSecret }}{{ else }}{{ printf "%s-peer-token" .Values.proxy.service.name | trunc 63 | trimSuffix "-" }}{{ end }}
{{- end }}

{{- define "zerowire.adminService" -}}
{{- printf "%s-admin" .Values.proxy.service.name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "zerowire.scalerAddress" -}}
{{- if .Values.scalerAddress }}{{ .Values.scalerAddress }}{{ else }}{{ printf "%s.%s:%d" (include "zerowire.scalerService" .) (include "zerowire.proxyNamespace" .) (int .Values.proxy.ports.scaler) }}{{ end }}
{{- end }}

{{- define "zerowire.tag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{- define "zerowire.certSecret" -}}
{{- printf "%s-tls" (include "zerowire.webhookName" .) }}
{{- end }}

{{- define "zerowire.mwcName" -}}
{{- include "zerowire.fullname" . }}
{{- end }}

{{- define "zerowire.pdbApiVersion" -}}
{{- if .Capabilities.APIVersions.Has "policy/v1" }}policy/v1{{ else }}policy/v1beta1{{ end }}
{{- end }}

{{- define "zerowire.hpaApiVersion" -}}
{{- if .Capabilities.APIVersions.Has "autoscaling/v2" }}autoscaling/v2{{ else }}autoscaling/v2beta2{{ end }}
{{- end }}

{{- define "zerowire.urlMode" -}}
{{- if .Values.webhook.url }}true{{ end }}
{{- end }}
