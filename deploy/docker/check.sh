#!/usr/bin/env bash
# The container files, checked statically (no Docker engine here): the
# Dockerfile with hadolint, deploy/docker-compose.yml against the Compose
# specification's schema, the YAML we ship with yamllint; and each check
# refusing its broken fixture, which proves it can fail.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${SLUICE_TOOLS_BIN:-/opt/sluice/venv/bin}
for tool in hadolint check-jsonschema yamllint; do
  [ -x "$BIN/$tool" ] || { echo "docker-check: $BIN/$tool not found (make setup installs it)" >&2; exit 1; }
done
"$BIN/hadolint" Dockerfile
"$BIN/check-jsonschema" --builtin-schema vendor.compose-spec deploy/docker-compose.yml
"$BIN/yamllint" -c .yamllint.yml deploy/docker-compose.yml deploy/prometheus/
fixtures=tests/fixtures/containers
if "$BIN/hadolint" "$fixtures/broken.Dockerfile" >/dev/null 2>&1; then
  echo "docker-check: hadolint accepted $fixtures/broken.Dockerfile" >&2; exit 1
fi
if "$BIN/check-jsonschema" --builtin-schema vendor.compose-spec "$fixtures/broken-compose.yml" >/dev/null 2>&1; then
  echo "docker-check: the Compose schema accepted $fixtures/broken-compose.yml" >&2; exit 1
fi
echo "docker-check: Dockerfile and deploy/docker-compose.yml pass; both checks refuse the broken fixtures"
