#!/usr/bin/env bash
# Every cargo-fuzz target of fuzz/, from its seeds (fuzz/seeds/<target>) and
# the corpus earlier runs grew (fuzz/corpus/<target>, not committed):
#   FUZZ_RUNS=N     N inputs each (make fuzz-check, part of make test)
#   FUZZ_SECONDS=S  S seconds each (make fuzz, for a longer hunt)
# A crash, panic, failed assertion, leak or hang stops it with the input
# that caused it in fuzz/artifacts/<target>/ (replay: cargo fuzz run <target> <file>).
set -euo pipefail
cd "$(dirname "$0")"
CARGO_FUZZ=${CARGO_FUZZ:-/opt/sluice/bin/cargo-fuzz}
[ -x "$CARGO_FUZZ" ] || { echo "fuzz: $CARGO_FUZZ not found (make setup installs it)" >&2; exit 1; }
# cargo-fuzz passes unstable flags (-Zsanitizer=address, coverage passes) to
# rustc; this machine has the stable toolchain only, which takes them when told.
export RUSTC_BOOTSTRAP=1
if [ -n "${FUZZ_SECONDS:-}" ]; then
  budget=(-max_total_time="$FUZZ_SECONDS")
else
  budget=(-runs="${FUZZ_RUNS:-20000}")
fi
targets=$("$CARGO_FUZZ" list)
"$CARGO_FUZZ" build
for target in $targets; do
  mkdir -p "corpus/$target"
  echo "fuzz: $target (${budget[*]})"
  log="artifacts/$target.log"
  mkdir -p artifacts
  # -rss_limit_mb: a decode that allocates what a length prefix promises is a finding.
  if ! "$CARGO_FUZZ" run "$target" "corpus/$target" "seeds/$target" -- \
      "${budget[@]}" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz: $target found a problem; the input is in fuzz/artifacts/$target/, the log in fuzz/$log" >&2
    exit 1
  fi
  grep -E "^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)|^Done" "$log" | sed "s/^/  /"
done
echo "fuzz: every target ran (${budget[*]} each) without a finding"
