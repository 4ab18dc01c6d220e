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

{{/* A container running `sluice schema <action>` (check or register, FULL_TRANSITIVE)
     on the image's schemas: root, name, action. */}}
{{- define "sluice.schemaTool" -}}
- name: {{ .name }}
  image: {{ include "sluice.image" .root }}
  imagePullPolicy: {{ .root.Values.image.pullPolicy }}
  args:
    - sluice
    - schema
    - {{ .action }}
    - --registry
    - {{ include "sluice.registryUrl" .root | quote }}
    - --dir
    - /opt/sluice/schemas
    - --topic-prefix
    - {{ .root.Values.topicPrefix | quote }}
    {{- if eq .action "register" }}
    - --wait-secs
    - "300"
    {{- end }}
  {{- if eq .action "register" }}
  env:
    {{- $t := .root.Values.tokens }}
    {{- include "sluice.secretEnv" (dict "env" "SLUICE_REGISTRY_TOKEN" "secret" $t.existingSecret "key" $t.registryTokenKey) | nindent 4 }}
  {{- end }}
  {{- include "sluice.toolPod" .root | nindent 2 }}
{{- end -}}
