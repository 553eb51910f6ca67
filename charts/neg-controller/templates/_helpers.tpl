{{/* The chart's name. */}}
{{- define "neg-controller.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The objects' base name: the release name when it contains the chart's name. */}}
{{- define "neg-controller.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "neg-controller.selectorLabels" -}}
app.kubernetes.io/name: {{ include "neg-controller.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "neg-controller.labels" -}}
{{ include "neg-controller.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "neg-controller.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "neg-controller.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The ServiceAccount as an RBAC subject. */}}
{{- define "neg-controller.subject" -}}
- kind: ServiceAccount
  name: {{ include "neg-controller.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
{{- end }}

{{/* "true" when the flag (a bool in values.flags) is on. */}}
{{- define "neg-controller.flagOn" -}}
{{- $v := index .root.Values.flags .flag }}
{{- if eq (toString $v) "true" }}true{{ end }}
{{- end }}

{{/* The port of a host:port flag value. */}}
{{- define "neg-controller.port" -}}
{{- splitList ":" (toString .) | last }}
{{- end }}

{{/* Whether the webhook runs (flags.webhook-bind-address is not "0"). */}}
{{- define "neg-controller.webhookEnabled" -}}
{{- if ne (toString (index .Values.flags "webhook-bind-address")) "0" }}true{{ end }}
{{- end }}

{{/* Whether /metrics is served (flags.metrics-bind-address is not "0"). */}}
{{- define "neg-controller.metricsEnabled" -}}
{{- if ne (toString (index .Values.flags "metrics-bind-address")) "0" }}true{{ end }}
{{- end }}

{{/* The address /healthz and /readyz are served on: "" = the metrics server (see the flag). */}}
{{- define "neg-controller.healthAddress" -}}
{{- $h := toString (index .Values.flags "health-probe-bind-address") }}
{{- if and (eq $h "") (include "neg-controller.flagOn" (dict "root" . "flag" "metrics-secure")) }}:8081
{{- else }}{{ $h }}{{ end }}
{{- end }}

{{/*
The controller's arguments: leader-elect and metrics-bind-address always (the Deployment's
shape depends on them), then every flag whose value differs from the binary's default
(files/flag-defaults.yaml), in name order, then extraArgs.
*/}}
{{- define "neg-controller.args" -}}
{{- $defaults := .Files.Get "files/flag-defaults.yaml" | fromYaml }}
{{- $pinned := list "leader-elect" "metrics-bind-address" }}
{{- range $pinned }}
- {{ printf "--%s=%v" . (index $.Values.flags .) | quote }}
{{- end }}
{{- range $name, $value := .Values.flags }}
{{- if not (hasKey $defaults $name) }}
{{- fail (printf "flags.%s: no such flag (see the chart's README.md)" $name) }}
{{- end }}
{{- if and (not (has $name $pinned)) (ne (toString $value) (toString (index $defaults $name))) }}
- {{ printf "--%s=%v" $name $value | quote }}
{{- end }}
{{- end }}
{{- range .Values.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}
