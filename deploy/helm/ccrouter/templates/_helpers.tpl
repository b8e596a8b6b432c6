{{/* The release's resources are named <release>-ccrouter, or the release's name when it holds "ccrouter". */}}
{{- define "ccrouter.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ccrouter.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ccrouter.labels" -}}
{{ include "ccrouter.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The Secret holding the environment that the configuration's ${VAR} references read. */}}
{{- define "ccrouter.secretName" -}}
{{- .Values.existingSecret | default (include "ccrouter.fullname" .) -}}
{{- end -}}

{{/* Seconds from SIGTERM to SIGKILL: the preStop pause, the gateway's drain (server.drain_grace_s +
server.drain_s, rounded up) and a margin for flushing the ledger. */}}
{{- define "ccrouter.terminationGrace" -}}
{{- $server := .Values.config.server | default dict -}}
{{- $grace := ceil ($server.drain_grace_s | default 0) -}}
{{- $drain := ceil ($server.drain_s | default 30) -}}
{{- add .Values.lifecycle.preStopSleepSeconds $grace $drain .Values.lifecycle.extraGraceSeconds -}}
{{- end -}}
