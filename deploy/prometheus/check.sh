#!/usr/bin/env bash
# The alerting rules: valid (promtool check rules), doing what their unit
# tests say (promtool test rules), and the checks able to fail (a broken
# rule file and a wrong expectation must be refused).
set -euo pipefail
cd "$(dirname "$0")"
PROMTOOL=${PROMTOOL:-promtool}
command -v "$PROMTOOL" >/dev/null || { echo "rules-check: promtool not found (make setup installs it)" >&2; exit 1; }
"$PROMTOOL" check rules alerts.yml
"$PROMTOOL" test rules alerts.test.yml
fixtures=../../tests/fixtures/prometheus
if "$PROMTOOL" check rules "$fixtures/broken-alerts.yml" >/dev/null 2>&1; then
  echo "rules-check: promtool accepted a broken rule file" >&2; exit 1
fi
if "$PROMTOOL" test rules "$fixtures/wrong-expectation.test.yml" >/dev/null 2>&1; then
  echo "rules-check: promtool passed a unit test that expects the wrong alert" >&2; exit 1
fi
echo "rules-check: alerts.yml valid, its unit tests pass, and both checks refuse the broken fixtures"
