# Sluice: the two set-up commands are `make demo` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
SLUICE := target/debug/sluice
export PATH := /opt/sluice/bin:$(HOME)/.cargo/bin:$(PATH)

.PHONY: setup build test lint demo up status down clean openapi bench bench-quick chaos fuzz fuzz-check rules-check docker-check chart-check

setup: ## Install the broker and system packages (idempotent)
	@bash deploy/setup.sh

build: ## Build every crate and service
	$(CARGO) build --workspace --all-targets

test: setup build ## Unit, integration and end-to-end tests against real processes
	$(CARGO) fmt --all -- --check
	target/debug/sluice schema check
	bash deploy/docker/check.sh
	$(MAKE) --no-print-directory chart-check
	$(MAKE) --no-print-directory fuzz-check
	$(CARGO) nextest run --workspace --no-fail-fast

FUZZ_RUNS ?= 200000
fuzz-check: setup ## The cargo-fuzz targets (Avro decode, command bodies, consistency header, registry schemas), FUZZ_RUNS inputs each
	FUZZ_RUNS=$(FUZZ_RUNS) bash fuzz/run.sh

FUZZ_SECONDS ?= 300
fuzz: setup ## The cargo-fuzz targets for FUZZ_SECONDS (300) each, growing fuzz/corpus
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash fuzz/run.sh

rules-check: setup ## The alerting rules: promtool check and unit tests
	bash deploy/prometheus/check.sh

docker-check: setup ## The Dockerfile and deploy/docker-compose.yml, checked statically
	bash deploy/docker/check.sh

chart-check: setup build ## The Helm chart: schema, lint, every manifest of every value set validated, rules and dashboards
	/opt/sluice/venv/bin/yamllint -c .yamllint.yml helm/sluice/values.yaml helm/sluice/values-bootstrap.yaml helm/sluice/ci helm/sluice/Chart.yaml
	/opt/sluice/venv/bin/python helm/check.py
	bash deploy/prometheus/check.sh

lint: ## rustfmt and clippy, warnings are errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

up: setup build ## Start the local stack (logs and pids in .sluice/dev)
	$(SLUICE) dev up

status: ## Show the local stack
	$(SLUICE) dev status

down: ## Stop the local stack
	@if [ -x $(SLUICE) ]; then $(SLUICE) dev down; fi

demo: up ## Start the stack, send 300 commands, show they all reached the read model
	$(SLUICE) load --articles 300 --wait
	@echo
	@echo "The stack keeps running: try 'make status', then 'make down' to stop it."

clean: down
	rm -rf .sluice

openapi: build ## Regenerate the checked-in OpenAPI documents of the command and query APIs and the registry
	target/debug/command-api openapi > services/command-api/openapi.json
	target/debug/query-api openapi > services/query-api/openapi.json
	python3 crates/sluice-registry/openapi.py > crates/sluice-registry/openapi.json

CHAOS_FAULTS ?= 56
chaos: setup build ## The chaos suite: CHAOS_FAULTS (56) crashes under load, then nothing lost or applied twice; prints its table
	CHAOS_FAULTS=$(CHAOS_FAULTS) CHAOS_SUMMARY=$(CURDIR)/target/chaos-summary.txt $(CARGO) nextest run --workspace -E 'binary(chaos)' --no-capture --status-level fail --final-status-level fail
	@cat target/chaos-summary.txt

# The bench stack, and a fresh one: each heavy benchmark starts on an empty
# broker (tansu's store of the millions of records a run leaves behind keeps
# it compacting for minutes, which would slow the next one down).
BENCH := SLUICE_DEV_DIR=.sluice/bench target/release/sluice
BENCH_FRESH := $(BENCH) dev down >/dev/null 2>&1; rm -rf .sluice/bench && $(BENCH) dev up >/dev/null

bench: setup ## Benchmarks on a release build of a fresh local stack: our figures beside raw baselines
	$(CARGO) build --release --workspace --bins
	@if [ -x $(SLUICE) ]; then $(SLUICE) dev down >/dev/null; fi
	$(BENCH_FRESH)
	$(BENCH) bench commands
	$(BENCH) bench reads
	$(BENCH_FRESH)
	$(BENCH) bench debezium
	$(BENCH_FRESH)
	$(BENCH) bench projectors
	$(BENCH_FRESH)
	$(BENCH) bench e2e --rates 500,1000 --seconds 20 --find-max-seconds 10
	$(BENCH_FRESH)
	$(BENCH) bench relay --rows 1000000 --large-rows 1000000
	$(BENCH) dev down
	target/release/sluice bench summary

# make bench-quick's figures stay out of the committed bench/results.json.
QUICK := --results bench/results-quick.json

bench-quick: setup ## Every benchmark at a small size (about two minutes once built): for regular use
	$(CARGO) build --release --workspace --bins
	@if [ -x $(SLUICE) ]; then $(SLUICE) dev down >/dev/null; fi
	rm -rf .sluice/bench
	SLUICE_DEV_DIR=.sluice/bench target/release/sluice dev up
	SLUICE_DEV_DIR=.sluice/bench target/release/sluice bench commands --commands 1000 $(QUICK)
	SLUICE_DEV_DIR=.sluice/bench target/release/sluice bench relay --rows 10000 --seconds 3 $(QUICK)
	SLUICE_DEV_DIR=.sluice/bench target/release/sluice bench projectors --records 10000 --bootstrap-records 20000 --keys 2000 $(QUICK)
	SLUICE_DEV_DIR=.sluice/bench target/release/sluice bench reads --articles 200 --reads 3000 --refreshes 50 $(QUICK)
	SLUICE_DEV_DIR=.sluice/bench target/release/sluice bench e2e --rates 200 --seconds 5 $(QUICK)
	SLUICE_DEV_DIR=.sluice/bench target/release/sluice dev down
	target/release/sluice bench summary $(QUICK)
