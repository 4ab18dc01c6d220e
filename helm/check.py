"""The chart's checks (make chart-check, run by make test), with the real
Helm library (helm-python-sdk: Helm v4, no binary, offline):

- values.schema.json accepts the default values and every value set of
  helm/sluice/ci/ and values-bootstrap.yaml;
- `helm lint --strict` finds nothing above info;
- every rendered manifest of every value set passes the Kubernetes schemas
  (kubernetes-validate, strict); the custom resources (ServiceMonitor,
  PrometheusRule, ScaledObject) pass their own schemas (@kubernetes-models,
  with Node: validate-crds.mjs) and carry what their operators read;
- every Deployment's settings (its ConfigMap and its Secret references,
  with placeholder secrets) pass the service's own configuration loader
  (`<service> --check-config`, the binaries of target/debug);
- each service has the Secret references it needs, and every `sluice`
  command of hooks and init containers parses (and presents a registry
  token where it registers schemas);
- values-bootstrap.yaml without a registryUrl, an `env` that replaces a
  derived setting or carries a secret, and autoscaling bounds that cannot
  hold are refused with a message;
- the alert rules and dashboards the chart ships are those of deploy/;
- each check refuses its broken fixture (tests/fixtures/helm/).
"""

import filecmp
import json
import os
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
BIN = ROOT / "target" / "debug"
# The bootstrap release names the main release's registry at install.
MAIN_REGISTRY = {"registryUrl": "http://sluice-schema-registry:8081"}
VALUE_SETS = [
    (None, {}),
    ("ci/minimal-values.yaml", {}),
    ("ci/production-values.yaml", {}),
    ("ci/everything-values.yaml", {}),
    ("values-bootstrap.yaml", MAIN_REGISTRY),
]
# Settings that must come from a Secret (a Deployment without them would run
# open or not at all).
REQUIRED_SECRETS = {
    "command-api": {"SLUICE_DATABASE_URL", "SLUICE_WRITE_TOKENS", "SLUICE_READ_TOKENS"},
    "outbox-relay": {"SLUICE_DATABASE_URL"},
    "projector-postgres": {"SLUICE_DATABASE_URL"},
    "query-api": {"SLUICE_SOURCE_TOKEN", "SLUICE_READ_TOKENS"},
    "schema-registry": {"SLUICE_WRITE_TOKENS"},
}
# What the Secrets a Deployment references would hold.
SECRET_PLACEHOLDERS = {
    "SLUICE_DATABASE_URL": "postgres://role:secret@db:5432/sluice",
    "SLUICE_POSTGRES_URL": "postgres://role:secret@db:5432/sluice",
    "SLUICE_REDIS_URL": "redis://:secret@redis:6379/",
}


def load_values(name, overrides):
    values = yaml.safe_load((CHART / name).read_text()) if name else {}
    return {**values, **overrides}


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


def secret_env(container):
    """The names of the variables a container takes from a Secret."""
    return {v["name"] for v in container.get("env") or [] if "secretKeyRef" in (v.get("valueFrom") or {})}


def check_tool_args(docs):
    """The `sluice` commands of hook Jobs and init containers parse (clap
    refuses an unknown flag before it reaches the trailing --help)."""
    problems = []
    for _, doc in docs:
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        pod = doc["spec"]["template"]["spec"]
        for container in (pod.get("initContainers") or []) + pod["containers"]:
            args = container.get("args") or []
            if args[:1] != ["sluice"]:
                continue
            if args[1:3] == ["schema", "register"] and "SLUICE_REGISTRY_TOKEN" not in secret_env(container):
                problems.append(f"{doc['kind']} {doc['metadata']['name']}: registers schemas without SLUICE_REGISTRY_TOKEN")
            result = subprocess.run([str(BIN / "sluice"), *args[1:], "--help"], capture_output=True, text=True)
            if result.returncode != 0:
                problems.append(f"{doc['kind']} {doc['metadata']['name']}: {' '.join(args)}: {result.stderr.strip()}")
    return problems


def check_configs(docs):
    """Each Deployment's environment through its service's configuration
    loader: names the services do not know, values they refuse."""
    configmaps = {d["metadata"]["name"]: d.get("data") or {} for _, d in docs if d["kind"] == "ConfigMap"}
    problems = []
    for _, doc in docs:
        if doc["kind"] != "Deployment":
            continue
        container = doc["spec"]["template"]["spec"]["containers"][0]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        for source in container.get("envFrom") or []:
            env.update(configmaps[source["configMapRef"]["name"]])
        missing = REQUIRED_SECRETS.get(container["args"][0], set()) - secret_env(container)
        if missing:
            problems.append(f"Deployment {doc['metadata']['name']}: no Secret reference for {sorted(missing)}")
        for var in container.get("env") or []:
            env[var["name"]] = var.get("value") or SECRET_PLACEHOLDERS.get(var["name"], "token-1,token-2")
        binary = BIN / container["args"][0]
        if not binary.exists():
            problems.append(f"{binary} is missing: build first (make build)")
            continue
        result = subprocess.run([str(binary), "--check-config"], env=env, capture_output=True, text=True)
        if result.returncode != 0:
            problems.append(f"Deployment {doc['metadata']['name']}: {(result.stderr.strip() or result.stdout.strip()).splitlines()[-1]}")
    return problems


def main():
    failures = []
    chart = helm.Chart.load(str(CHART))
    for name, overrides in VALUE_SETS:
        label = name or "default values"
        values = load_values(name, overrides)
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
        failures += [f"{label}: {p}" for p in check_configs(docs) + check_tool_args(docs)]
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

    try:
        manifests(chart, load_values("values-bootstrap.yaml", {}))
        failures.append("values-bootstrap.yaml rendered without a registryUrl")
    except helm.HelmError as e:
        if "registryUrl is required" not in str(e):
            failures.append(f"values-bootstrap.yaml without a registryUrl: unexpected error {e}")

    for values, message in [
        ({"commandApi": {"env": {"SLUICE_TOPIC_PREFIX": "other"}}}, "commandApi.env.SLUICE_TOPIC_PREFIX"),
        ({"projectorRedis": {"autoscaling": {"enabled": True, "minReplicas": 5}}}, "minReplicas (5) is above"),
        ({"queryApi": {"env": {"SLUICE_READ_TOKENS": "t"}}}, "a secret setting would land in a ConfigMap"),
    ]:
        try:
            manifests(chart, values)
            failures.append(f"rendered {values}, which must fail with `{message}`")
        except helm.HelmError as e:
            if message not in str(e):
                failures.append(f"{values}: expected `{message}`, got {e}")

    bad_tool = [("fixture", {"kind": "Job", "metadata": {"name": "bad"}, "spec": {"template": {"spec": {
        "containers": [{"args": ["sluice", "schema", "register", "--no-such-flag"]}]}}}})]
    if not check_tool_args(bad_tool):
        failures.append("the sluice command check accepted `sluice schema register --no-such-flag`")
    tokenless = [("fixture", {"kind": "Job", "metadata": {"name": "tokenless"}, "spec": {"template": {"spec": {
        "containers": [{"args": ["sluice", "schema", "register"]}]}}}})]
    if not any("without SLUICE_REGISTRY_TOKEN" in p for p in check_tool_args(tokenless)):
        failures.append("the sluice command check accepted `sluice schema register` without a registry token")

    broken_config = {"queryApi": {"env": {"SLUICE_NO_SUCH_SETTING": "1"}}}
    if not any("SLUICE_NO_SUCH_SETTING" in p for p in check_configs(manifests(chart, broken_config))):
        failures.append("the configuration loaders accepted an unknown SLUICE_NO_SUCH_SETTING")

    broken_custom = json.loads((FIXTURES / "broken-custom-resources.json").read_text())
    if len(validate_custom(broken_custom)) != len(broken_custom):
        failures.append("the custom resources' schemas accepted tests/fixtures/helm/broken-custom-resources.json")

    if failures:
        print("chart-check failed:\n  " + "\n  ".join(failures), file=sys.stderr)
        sys.exit(1)
    print("chart-check: every value set valid, lint clean, every manifest valid; the broken fixtures are refused")


if __name__ == "__main__":
    main()
