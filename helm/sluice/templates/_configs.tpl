{{/* The non-secret SLUICE_* settings of every enabled service, by name. */}}
{{- define "sluice.configs" -}}
{{- $v := .Values -}}
{{- if $v.commandApi.enabled }}
command-api:
  SLUICE_SCHEMAS_DIR: /opt/sluice/schemas
  SLUICE_LISTEN: {{ printf "0.0.0.0:%d" (int $v.commandApi.port) | quote }}
  SLUICE_REGISTRY_URL: {{ include "sluice.registryUrl" . | quote }}
  SLUICE_TOPIC_PREFIX: {{ $v.topicPrefix | quote }}
  SLUICE_QUERY_BASE_URL: {{ include "sluice.queryApiUrl" . | quote }}
  {{- range $k, $val := $v.commandApi.env }}
  {{ $k }}: {{ $val | quote }}
  {{- end }}
{{- end }}
{{- if $v.outboxRelay.enabled }}
outbox-relay:
  SLUICE_LISTEN: {{ printf "0.0.0.0:%d" (int $v.outboxRelay.port) | quote }}
  SLUICE_BROKERS: {{ $v.kafka.brokers | quote }}
  SLUICE_TOPIC_PREFIX: {{ $v.topicPrefix | quote }}
  {{- range $k, $val := $v.outboxRelay.env }}
  {{ $k }}: {{ $val | quote }}
  {{- end }}
{{- end }}
{{- if $v.schemaRegistry.enabled }}
schema-registry:
  SLUICE_LISTEN: {{ printf "0.0.0.0:%d" (int $v.schemaRegistry.port) | quote }}
  SLUICE_BROKERS: {{ $v.kafka.brokers | quote }}
  {{- range $k, $val := $v.schemaRegistry.env }}
  {{ $k }}: {{ $val | quote }}
  {{- end }}
{{- end }}
{{- if $v.projectorRedis.enabled }}
projector-redis:
  SLUICE_SCHEMAS_DIR: /opt/sluice/schemas
  SLUICE_LISTEN: {{ printf "0.0.0.0:%d" (int $v.projectorRedis.port) | quote }}
  SLUICE_BROKERS: {{ $v.kafka.brokers | quote }}
  SLUICE_REGISTRY_URL: {{ include "sluice.registryUrl" . | quote }}
  SLUICE_TOPIC_PREFIX: {{ $v.topicPrefix | quote }}
  SLUICE_PROJECTION: {{ $v.projectorRedis.projection | quote }}
  SLUICE_REDIS_URL: {{ $v.redis.url | quote }}
  {{- range $k, $val := $v.projectorRedis.env }}
  {{ $k }}: {{ $val | quote }}
  {{- end }}
{{- end }}
{{- if $v.projectorPostgres.enabled }}
projector-postgres:
  SLUICE_SCHEMAS_DIR: /opt/sluice/schemas
  SLUICE_LISTEN: {{ printf "0.0.0.0:%d" (int $v.projectorPostgres.port) | quote }}
  SLUICE_BROKERS: {{ $v.kafka.brokers | quote }}
  SLUICE_REGISTRY_URL: {{ include "sluice.registryUrl" . | quote }}
  SLUICE_TOPIC_PREFIX: {{ $v.topicPrefix | quote }}
  SLUICE_PROJECTION: {{ $v.projectorPostgres.projection | quote }}
  SLUICE_PG_SCHEMA: {{ $v.projectorPostgres.schema | quote }}
  {{- range $k, $val := $v.projectorPostgres.env }}
  {{ $k }}: {{ $val | quote }}
  {{- end }}
{{- end }}
{{- if $v.queryApi.enabled }}
query-api:
  SLUICE_LISTEN: {{ printf "0.0.0.0:%d" (int $v.queryApi.port) | quote }}
  SLUICE_BROKERS: {{ $v.kafka.brokers | quote }}
  SLUICE_TOPIC_PREFIX: {{ $v.topicPrefix | quote }}
  SLUICE_REDIS_URL: {{ $v.redis.url | quote }}
  SLUICE_PROJECTION: {{ $v.projectorRedis.projection | quote }}
  SLUICE_POSTGRES_SCHEMA: {{ $v.projectorPostgres.schema | quote }}
  SLUICE_POSTGRES_PROJECTION: {{ $v.projectorPostgres.projection | quote }}
  SLUICE_SOURCE_URL: {{ include "sluice.commandApiUrl" . | quote }}
  {{- range $k, $val := $v.queryApi.env }}
  {{ $k }}: {{ $val | quote }}
  {{- end }}
{{- end }}
{{- if $v.lagExporter.enabled }}
lag-exporter:
  SLUICE_LISTEN: {{ printf "0.0.0.0:%d" (int $v.lagExporter.port) | quote }}
  SLUICE_BROKERS: {{ $v.kafka.brokers | quote }}
  SLUICE_GROUPS: {{ $v.lagExporter.groups | quote }}
  {{- range $k, $val := $v.lagExporter.env }}
  {{ $k }}: {{ $val | quote }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* Every enabled service: name -> (values key, port, secret env). */}}
{{- define "sluice.services" -}}
{{- $v := .Values -}}
{{- $pg := dict "env" "SLUICE_DATABASE_URL" "secret" $v.postgres.existingSecret "key" $v.postgres.urlKey -}}
{{- if $v.commandApi.enabled }}
command-api:
  values: commandApi
  secrets:
    - {{ toJson $pg }}
    - {"env": "SLUICE_WRITE_TOKENS", "secret": {{ $v.tokens.existingSecret | quote }}, "key": {{ $v.tokens.writeKey | quote }}}
    - {"env": "SLUICE_READ_TOKENS", "secret": {{ $v.tokens.existingSecret | quote }}, "key": {{ $v.tokens.readKey | quote }}}
{{- end }}
{{- if $v.outboxRelay.enabled }}
outbox-relay:
  values: outboxRelay
  secrets:
    - {{ toJson $pg }}
{{- end }}
{{- if $v.schemaRegistry.enabled }}
schema-registry:
  values: schemaRegistry
  secrets: []
{{- end }}
{{- if $v.projectorRedis.enabled }}
projector-redis:
  values: projectorRedis
  secrets: []
{{- end }}
{{- if $v.projectorPostgres.enabled }}
projector-postgres:
  values: projectorPostgres
  secrets:
    - {"env": "SLUICE_DATABASE_URL", "secret": {{ $v.projectorPostgres.existingSecret | quote }}, "key": {{ $v.projectorPostgres.urlKey | quote }}}
{{- end }}
{{- if $v.queryApi.enabled }}
query-api:
  values: queryApi
  secrets:
    - {"env": "SLUICE_SOURCE_TOKEN", "secret": {{ $v.tokens.existingSecret | quote }}, "key": {{ $v.tokens.sourceKey | quote }}}
    {{- if $v.queryApi.postgresReadModel }}
    - {"env": "SLUICE_POSTGRES_URL", "secret": {{ $v.projectorPostgres.existingSecret | quote }}, "key": {{ $v.projectorPostgres.urlKey | quote }}}
    {{- end }}
{{- end }}
{{- if $v.lagExporter.enabled }}
lag-exporter:
  values: lagExporter
  secrets: []
{{- end }}
{{- end -}}
