{{- define "zerowire.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "zerowire.labels" -}}
app.kubernetes.io/name: {{ include "zerowire.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{- define "zerowire.selector" -}}
app.kubernetes.io/name: {{ include "zerowire.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "zerowire.fullname" -}}
{{- $name := include "zerowire.name" . }}
{{- if .Values.fullnameOverride }}{{ .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if eq .Release.Name $name }}{{ $name }}
{{- else }}{{ printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}{{ end }}
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

{{- /* Whole seconds (rounded up) of a Go duration such as "5s", "1m30s", "500ms". */}}
{{- define "zerowire.seconds" -}}
{{- $total := 0.0 -}}
{{- range regexFindAll "[0-9]+(\\.[0-9]+)?(ms|s|m|h)" (toString .) -1 -}}
{{- $num := float64 (regexFind "^[0-9]+(\\.[0-9]+)?" .) -}}
{{- $unit := regexReplaceAll "^[0-9]+(\\.[0-9]+)?" . "" -}}
{{- if eq $unit "h" }}{{ $total = addf $total (mulf $num 3600) }}
{{- else if eq $unit "m" }}{{ $total = addf $total (mulf $num 60) }}
{{- else if eq $unit "s" }}{{ $total = addf $total $num }}
{{- else if eq $unit "ms" }}{{ $total = addf $total (divf $num 1000) }}{{ end -}}
{{- end -}}
{{- ceil $total | int -}}
{{- end }}

{{- /* Pod template metadata: selector labels, component, podLabels, podAnnotations.
Takes (dict "ctx" $ "component" "proxy" "values" .Values.proxy). */}}
{{- define "zerowire.podMetadata" -}}
labels:
  {{- include "zerowire.selector" .ctx | nindent 2 }}
  app.kubernetes.io/component: {{ .component }}
  {{- with .values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with .values.podAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- /* Pod spec scheduling: nodeSelector, tolerations, affinity, priorityClassName,
topologySpreadConstraints (default: soft spread over zones and nodes). Same argument. */}}
{{- define "zerowire.podScheduling" -}}
{{- with .values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
topologySpreadConstraints:
{{- if .values.topologySpreadConstraints }}
  {{- toYaml .values.topologySpreadConstraints | nindent 2 }}
{{- else }}
  {{- range list "topology.kubernetes.io/zone" "kubernetes.io/hostname" }}
  - maxSkew: 1
    topologyKey: {{ . }}
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "zerowire.selector" $.ctx | nindent 8 }}
        app.kubernetes.io/component: {{ $.component }}
  {{- end }}
{{- end }}
{{- end }}

{{- /* Probes of a container: (dict "values" .Values.proxy "port" "admin" "scheme" "HTTP"). */}}
{{- define "zerowire.probes" -}}
{{- $p := .values.probes }}
startupProbe:
  httpGet: {path: /healthz, port: {{ .port }}, scheme: {{ .scheme }}}
  {{- toYaml $p.startup | nindent 2 }}
livenessProbe:
  httpGet: {path: /healthz, port: {{ .port }}, scheme: {{ .scheme }}}
  {{- toYaml $p.liveness | nindent 2 }}
readinessProbe:
  httpGet: {path: /readyz, port: {{ .port }}, scheme: {{ .scheme }}}
  {{- toYaml $p.readiness | nindent 2 }}
{{- end }}
