{{/* Names: the release's objects are called after the release unless fullnameOverride says otherwise. */}}
{{- define "delivery.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "delivery.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "delivery.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "delivery.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "delivery.selectorLabels" -}}
app.kubernetes.io/name: {{ include "delivery.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "delivery.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "delivery.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "delivery.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "delivery.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Service the apiserver calls for Component conversion; the CRDs are re-pointed at it at start. */}}
{{- define "delivery.webhookService" -}}
{{- printf "%s-webhook" (include "delivery.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The ValidatingWebhookConfiguration of analysis templates; the controller points it at itself by this name. */}}
{{- define "delivery.validatingWebhook" -}}
{{- printf "%s-analysis" (include "delivery.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "delivery.webhookSecret" -}}
{{- default (printf "%s-webhook-tls" (include "delivery.fullname" .)) .Values.webhook.certificate.existingSecret }}
{{- end }}

{{/* The controller's own default (delivery/ops/leader.py), spelled out so the Role can name it. */}}
{{- define "delivery.leaseName" -}}
{{- if .Values.controllerId }}
{{- printf "delivery-controller-%s" .Values.controllerId }}
{{- else }}
{{- print "delivery-controller" }}
{{- end }}
{{- end }}

{{- define "delivery.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
