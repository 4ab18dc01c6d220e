"""The chart's checks (make chart-check, run by make test), with the real
Helm library (helm-python-sdk: Helm v4, no binary, offline):

- values.schema.json accepts the default values and every value set of
  helm/sluice/ci/ and values-bootstrap.yaml;
- `helm lint --strict` finds nothing above info;
- every rendered manifest of every value set passes the Kubernetes schemas
  (kubernetes-validate, strict); the custom resources (ServiceMonitor,
  PrometheusRule, ScaledObject) pass their own schemas (@kubernetes-models,
  with Node: validate-crds.mjs) and carry what their operators read;
- the alert rules and dashboards the chart ships are those of deploy/;
- each check refuses its broken fixture (tests/fixtures/helm/).
"""

import filecmp
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile

import helm_python as helm
import kubernetes_validate
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "sluice"
FIXTURES = ROOT / "tests" / "fixtures" / "helm"
KUBE_VERSION = "1.30.0"
VALUE_SETS = [None, "ci/minimal-values.yaml", "ci/production-values.yaml", "ci/everything-values.yaml", "values-bootstrap.yaml"]


def load_values(name):
    return yaml.safe_load((CHART / name).read_text()) if name else {}


def manifests(chart, values):
    rendered = chart.render(values, name="sluice", namespace="sluice", is_install=True)
    docs = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                docs.append((path, doc))
    return docs


def check_custom(doc):
    """What the Prometheus Operator and KEDA read of their resources."""
    kind, spec = doc["kind"], doc.get("spec") or {}
    problems = []
    if not doc.get("metadata", {}).get("name"):
        problems.append("no metadata.name")
    if kind == "ServiceMonitor":
        if doc["apiVersion"] != "monitoring.coreos.com/v1":
            problems.append("apiVersion")
        if not spec.get("selector", {}).get("matchLabels"):
            problems.append("spec.selector.matchLabels")
        for e in spec.get("endpoints") or [None]:
            if not e or not (e.get("port") or e.get("targetPort")):
                problems.append("spec.endpoints[].port")
    elif kind == "PrometheusRule":
        if doc["apiVersion"] != "monitoring.coreos.com/v1":
            problems.append("apiVersion")
        groups = spec.get("groups") or []
        if not groups:
            problems.append("spec.groups")
        for g in groups:
            for r in g.get("rules") or []:
                if not r.get("expr") or not (r.get("alert") or r.get("record")):
                    problems.append(f"rule in {g.get('name')}")
    elif kind == "ScaledObject":
        if doc["apiVersion"] != "keda.sh/v1alpha1":
            problems.append("apiVersion")
        if not spec.get("scaleTargetRef", {}).get("name"):
            problems.append("spec.scaleTargetRef.name")
        for t in spec.get("triggers") or [None]:
            meta = (t or {}).get("metadata") or {}
            if not t or t.get("type") != "kafka" or not all(meta.get(k) for k in ("bootstrapServers", "consumerGroup", "lagThreshold")):
                problems.append("spec.triggers[] (kafka: bootstrapServers, consumerGroup, lagThreshold)")
        if spec.get("maxReplicaCount", 0) < spec.get("minReplicaCount", 0):
            problems.append("maxReplicaCount below minReplicaCount")
    return problems


CUSTOM = ("ServiceMonitor", "PrometheusRule", "ScaledObject")


def validate_custom(docs):
    """The custom resources against their own schemas (Node)."""
    if not docs:
        return []
    result = subprocess.run(
        ["node", str(ROOT / "helm" / "validate-crds.mjs")], input=json.dumps(docs), capture_output=True, text=True
    )
    if result.returncode != 0 and not result.stdout.strip():
        return [f"validate-crds.mjs failed: {result.stderr.strip()}"]
    return [line for line in result.stdout.splitlines() if line.strip()]


def validate(docs):
    """Problems of every rendered manifest, as text."""
    problems = validate_custom([doc for _, doc in docs if doc.get("kind") in CUSTOM])
    for path, doc in docs:
        where = f"{path}: {doc.get('kind')} {doc.get('metadata', {}).get('name')}"
        if doc.get("kind") in CUSTOM:
            problems += [f"{where}: {p}" for p in check_custom(doc)]
            continue
        try:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            problems.append(f"{where}: {e.message} at {list(e.path)}")
        except Exception as e:  # noqa: BLE001 - an unknown kind is a problem too
            problems.append(f"{where}: {e}")
    return problems


def main():
    failures = []
    chart = helm.Chart.load(str(CHART))
    for name in VALUE_SETS:
        label = name or "default values"
        values = load_values(name)
        try:
            chart.validate_schema(chart.merge_values(values))
        except helm.HelmError as e:
            failures.append(f"{label}: values.schema.json refuses it: {e}")
            continue
        report = helm.lint(str(CHART), values, strict=True)
        lint = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2] + report.get("errors", [])
        failures += [f"{label}: helm lint: {m}" for m in lint]
        docs = manifests(chart, values)
        failures += [f"{label}: {p}" for p in validate(docs)]
        print(f"chart-check: {label}: {len(docs)} manifests ({', '.join(sorted({d['kind'] for _, d in docs}))})")

    shipped = [(CHART / "files" / "alerts.yml", ROOT / "deploy" / "prometheus" / "alerts.yml")]
    shipped += [(CHART / "files" / "dashboards" / p.name, p) for p in sorted((ROOT / "deploy" / "grafana").glob("*.json"))]
    for copy, source in shipped:
        if not copy.exists() or not filecmp.cmp(copy, source, shallow=False):
            failures.append(f"{copy.relative_to(ROOT)} differs from {source.relative_to(ROOT)}: copy it again")

    # Each check can fail.
    broken_values = yaml.safe_load((FIXTURES / "broken-values.yaml").read_text())
    try:
        chart.validate_schema(chart.merge_values(broken_values))
        failures.append("values.schema.json accepted tests/fixtures/helm/broken-values.yaml")
    except helm.HelmError:
        pass
    with tempfile.TemporaryDirectory() as tmp:
        copy = pathlib.Path(tmp) / "sluice"
        shutil.copytree(CHART, copy)
        shutil.copy(FIXTURES / "broken-template.yaml", copy / "templates" / "broken.yaml")
        broken = validate(manifests(helm.Chart.load(str(copy)), {}))
        if not any("broken" in p for p in broken):
            failures.append("the Kubernetes schemas accepted tests/fixtures/helm/broken-template.yaml")

    broken_custom = json.loads((FIXTURES / "broken-custom-resources.json").read_text())
    if len(validate_custom(broken_custom)) != len(broken_custom):
        failures.append("the custom resources' schemas accepted tests/fixtures/helm/broken-custom-resources.json")

    if failures:
        print("chart-check failed:\n  " + "\n  ".join(failures), file=sys.stderr)
        sys.exit(1)
    print("chart-check: every value set valid, lint clean, every manifest valid; the broken fixtures are refused")


if __name__ == "__main__":
    main()
