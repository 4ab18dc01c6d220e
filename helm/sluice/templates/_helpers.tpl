{{/* Names, labels and the pieces every workload shares. */}}

{{- define "sluice.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The name of one component: <fullname>-<component>. */}}
{{- define "sluice.component" -}}
{{- printf "%s-%s" (include "sluice.fullname" .root) .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sluice.labels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/component: {{ .name }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "sluice.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "sluice.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The registry's and the command API's in-cluster URLs. */}}
{{- define "sluice.registryUrl" -}}
{{- if .Values.registryUrl -}}
{{- .Values.registryUrl -}}
{{- else if not .Values.schemaRegistry.enabled -}}
{{- required "registryUrl is required when schemaRegistry.enabled is false: the URL of the registry to use, e.g. http://<main release>-schema-registry:8081" "" -}}
{{- else -}}
{{- printf "http://%s:%d" (include "sluice.component" (dict "root" . "name" "schema-registry")) (int .Values.schemaRegistry.port) -}}
{{- end -}}
{{- end -}}
{{- define "sluice.commandApiUrl" -}}
{{- printf "http://%s:%d" (include "sluice.component" (dict "root" . "name" "command-api")) (int .Values.commandApi.port) -}}
{{- end -}}
{{- define "sluice.queryApiUrl" -}}
{{- printf "http://%s:%d" (include "sluice.component" (dict "root" . "name" "query-api")) (int .Values.queryApi.port) -}}
{{- end -}}

{{/* A secret-backed environment variable: name, secret, key. */}}
{{- define "sluice.secretEnv" -}}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .key }}
{{- end -}}

{{/* Resources and security of the short-lived tool containers. */}}
{{- define "sluice.toolPod" -}}
resources:
  requests: {cpu: 50m, memory: 32Mi}
  limits: {memory: 128Mi}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
{{- end -}}

{{/* The container that registers the image's writer schemas (FULL_TRANSITIVE). */}}
{{- define "sluice.registerSchemas" -}}
- name: register-schemas
  image: {{ include "sluice.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args:
    - sluice
    - schema
    - register
    - --registry
    - {{ include "sluice.registryUrl" . | quote }}
    - --dir
    - /opt/sluice/schemas
    - --topic-prefix
    - {{ .Values.topicPrefix | quote }}
    - --wait-secs
    - "300"
  {{- include "sluice.toolPod" . | nindent 2 }}
{{- end -}}
