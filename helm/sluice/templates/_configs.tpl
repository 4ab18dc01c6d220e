{{/* The non-secret SLUICE_* settings the chart derives from its values, by
     service name (sluice.serviceConfigs adds each service's `env`). */}}
{{- define "sluice.configs" -}}
{{- $v := .Values -}}
{{- if $v.commandApi.enabled }}
command-api:
  SLUICE_SCHEMAS_DIR: /opt/sluice/schemas
  SLUICE_LISTEN: {{ printf "0.0.0.0:%d" (int $v.commandApi.port) | quote }}
  SLUICE_REGISTRY_URL: {{ include "sluice.registryUrl" . | quote }}
  SLUICE_TOPIC_PREFIX: {{ $v.topicPrefix | quote }}
  SLUICE_QUERY_BASE_URL: {{ include "sluice.queryApiUrl" . | quote }}
  SLUICE_OUTBOX_TABLE: {{ $v.outboxTable | quote }}
{{- end }}
{{- if $v.outboxRelay.enabled }}
outbox-relay:
  SLUICE_LISTEN: {{ printf "0.0.0.0:%d" (int $v.outboxRelay.port) | quote }}
  SLUICE_BROKERS: {{ $v.kafka.brokers | quote }}
  SLUICE_PARTITIONS: {{ $v.kafka.partitions | quote }}
  SLUICE_TOPIC_PREFIX: {{ $v.topicPrefix | quote }}
  SLUICE_OUTBOX_TABLES: {{ $v.outboxTable | quote }}
{{- end }}
{{- if $v.schemaRegistry.enabled }}
schema-registry:
  SLUICE_LISTEN: {{ printf "0.0.0.0:%d" (int $v.schemaRegistry.port) | quote }}
  SLUICE_BROKERS: {{ $v.kafka.brokers | quote }}
{{- end }}
{{- if $v.projectorRedis.enabled }}
projector-redis:
  SLUICE_SCHEMAS_DIR: /opt/sluice/schemas
  SLUICE_LISTEN: {{ printf "0.0.0.0:%d" (int $v.projectorRedis.port) | quote }}
  SLUICE_BROKERS: {{ $v.kafka.brokers | quote }}
  SLUICE_REGISTRY_URL: {{ include "sluice.registryUrl" . | quote }}
  SLUICE_TOPIC_PREFIX: {{ $v.topicPrefix | quote }}
  SLUICE_PARTITIONS: {{ $v.kafka.partitions | quote }}
  SLUICE_PROJECTION: {{ $v.projectorRedis.projection | quote }}
  {{- if not $v.redis.existingSecret }}
  SLUICE_REDIS_URL: {{ $v.redis.url | quote }}
  {{- end }}
{{- end }}
{{- if $v.projectorPostgres.enabled }}
projector-postgres:
  SLUICE_SCHEMAS_DIR: /opt/sluice/schemas
  SLUICE_LISTEN: {{ printf "0.0.0.0:%d" (int $v.projectorPostgres.port) | quote }}
  SLUICE_BROKERS: {{ $v.kafka.brokers | quote }}
  SLUICE_REGISTRY_URL: {{ include "sluice.registryUrl" . | quote }}
  SLUICE_TOPIC_PREFIX: {{ $v.topicPrefix | quote }}
  SLUICE_PARTITIONS: {{ $v.kafka.partitions | quote }}
  SLUICE_PROJECTION: {{ $v.projectorPostgres.projection | quote }}
  SLUICE_PG_SCHEMA: {{ $v.projectorPostgres.schema | quote }}
{{- end }}
{{- if $v.queryApi.enabled }}
query-api:
  SLUICE_LISTEN: {{ printf "0.0.0.0:%d" (int $v.queryApi.port) | quote }}
  SLUICE_BROKERS: {{ $v.kafka.brokers | quote }}
  SLUICE_TOPIC_PREFIX: {{ $v.topicPrefix | quote }}
  {{- if not $v.redis.existingSecret }}
  SLUICE_REDIS_URL: {{ $v.redis.url | quote }}
  {{- end }}
  SLUICE_PROJECTION: {{ $v.queryApi.projection | default $v.projectorRedis.projection | quote }}
  SLUICE_POSTGRES_SCHEMA: {{ $v.queryApi.postgresSchema | default $v.projectorPostgres.schema | quote }}
  SLUICE_POSTGRES_PROJECTION: {{ $v.queryApi.postgresProjection | default $v.projectorPostgres.projection | quote }}
  {{- if $v.commandApi.enabled }}
  SLUICE_SOURCE_URL: {{ include "sluice.commandApiUrl" . | quote }}
  {{- end }}
{{- end }}
{{- if $v.lagExporter.enabled }}
lag-exporter:
  SLUICE_LISTEN: {{ printf "0.0.0.0:%d" (int $v.lagExporter.port) | quote }}
  SLUICE_BROKERS: {{ $v.kafka.brokers | quote }}
  SLUICE_GROUPS: {{ $v.lagExporter.groups | quote }}
{{- end }}
{{- end -}}

{{/* Every enabled service: name -> (values key, port, secret env). */}}
{{- define "sluice.services" -}}
{{- $v := .Values -}}
{{- $pg := dict "env" "SLUICE_DATABASE_URL" "secret" $v.postgres.existingSecret "key" $v.postgres.urlKey -}}
{{- $redis := dict "env" "SLUICE_REDIS_URL" "secret" $v.redis.existingSecret "key" $v.redis.urlKey -}}
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
  # A standby (waiting, healthy, for the slot's lock) counts as ready, or a
  # rollout would wait for it forever; a relay failing at start does not.
  readinessPath: /readyz?standby=ok
  secrets:
    - {"env": "SLUICE_DATABASE_URL", "secret": {{ $v.outboxRelay.existingSecret | quote }}, "key": {{ $v.outboxRelay.urlKey | quote }}}
{{- end }}
{{- if $v.schemaRegistry.enabled }}
schema-registry:
  values: schemaRegistry
  secrets:
    - {"env": "SLUICE_WRITE_TOKENS", "secret": {{ $v.tokens.existingSecret | quote }}, "key": {{ $v.tokens.registryWriteKey | quote }}}
{{- end }}
{{- if $v.projectorRedis.enabled }}
projector-redis:
  values: projectorRedis
  secrets:
    {{- if $v.redis.existingSecret }}
    - {{ toJson $redis }}
    {{- else }} []
    {{- end }}
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
    {{- if not $v.queryApi.openReads }}
    - {"env": "SLUICE_READ_TOKENS", "secret": {{ $v.tokens.existingSecret | quote }}, "key": {{ $v.tokens.queryReadKey | quote }}}
    {{- end }}
    {{- if $v.redis.existingSecret }}
    - {{ toJson $redis }}
    {{- end }}
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


{{/* Every enabled service's ConfigMap data: the chart's settings and the
     service's `env`, which may add settings but not replace one the chart
     derives from another value (the hooks and init containers use those
     values too: they would disagree). */}}
{{- define "sluice.serviceConfigs" -}}
{{- $services := include "sluice.services" . | fromYaml -}}
{{- $out := dict -}}
{{- range $name, $config := include "sluice.configs" . | fromYaml }}
{{- $key := (index $services $name).values }}
{{- $merged := dict }}
{{- range $k, $val := $config }}
{{- $_ := set $merged $k $val }}
{{- end }}
{{- $secret := list "SLUICE_DATABASE_URL" "SLUICE_POSTGRES_URL" "SLUICE_REDIS_URL" "SLUICE_WRITE_TOKENS" "SLUICE_READ_TOKENS" "SLUICE_SOURCE_TOKEN" "SLUICE_REGISTRY_TOKEN" }}
{{- range $k, $val := (index $.Values $key).env | default dict }}
{{- if hasKey $config $k }}
{{- fail (printf "%s.env.%s: the chart sets %s from its values; set the value instead" $key $k $k) }}
{{- end }}
{{- if has $k $secret }}
{{- fail (printf "%s.env.%s: a secret setting would land in a ConfigMap; give it through the chart's Secret references" $key $k) }}
{{- end }}
{{- $_ := set $merged $k (toString $val) }}
{{- end }}
{{- $_ := set $out $name $merged }}
{{- end }}
{{- toYaml $out }}
{{- end -}}
