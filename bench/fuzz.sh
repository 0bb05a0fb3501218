#!/usr/bin/env bash
# Fuzz one target (or all of them in turn) with cargo-fuzz / libFuzzer.
# Usage: bench/fuzz.sh TARGET|all SECONDS [libFuzzer options...]
#   targets: auth_json bearer_jwt canonical_path host config (fuzz/fuzz_targets/)
#   FUZZ_SANITIZER=address (default) | none: `none` builds without ASan, about
#     twice the executions per second and a faster build (what scripts/test.sh uses).
#   FUZZ_DEV=1: an unoptimised build (`cargo fuzz --dev`): far quicker to build from
#     scratch, far fewer executions per second; for a smoke run.
#   FUZZ_TARGET_DIR=DIR: build (and keep logs and the working corpus) there
#     instead of fuzz/target.
#   FUZZ_RUNS=N: stop after N executions instead of SECONDS (SECONDS still caps it).
#   FUZZ_JOBS=N: N libFuzzer workers (-fork=N) instead of one process.
# Seeds are fuzz/corpus/TARGET (committed, only read); what a run discovers goes
# to fuzz/target/corpus/TARGET (not committed) and is reused by the next run.
# A crash stops the run: its input is in fuzz/artifacts/TARGET/, replay it with
#   cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-...
# Prints one line per target: executions, seconds, exec/s, crashes, corpus size;
# exits non-zero if any target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGETS=(auth_json bearer_jwt canonical_path host config)
[[ $# -ge 2 ]] || { echo "usage: $0 TARGET|all SECONDS [libFuzzer options]  (targets: ${TARGETS[*]})" >&2; exit 2; }
target=$1; secs=$2; shift 2
SAN=${FUZZ_SANITIZER:-address}
build=(-s "$SAN")
[[ -n ${FUZZ_DEV:-} ]] && build+=(--dev)
tdir=${FUZZ_TARGET_DIR:-fuzz/target}
[[ -n ${FUZZ_TARGET_DIR:-} ]] && build+=(--target-dir "$FUZZ_TARGET_DIR")

command -v cargo >/dev/null || { echo "error: cargo not found; install Rust (https://rustup.rs)" >&2; exit 2; }
if ! cargo +nightly --version >/dev/null 2>&1; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz..." >&2
  cargo install cargo-fuzz --locked
fi

if [[ $target == all ]]; then list=("${TARGETS[@]}"); else list=("$target"); fi
for t in "${list[@]}"; do
  [[ -f fuzz/fuzz_targets/$t.rs ]] || { echo "error: no target $t (${TARGETS[*]})" >&2; exit 2; }
done

# One build of every target (they share the dependency tree).
cargo +nightly fuzz build "${build[@]}" >&2

status=0
printf '%-15s %12s %8s %9s %7s %7s\n' target executions seconds exec/s crashes corpus
for t in "${list[@]}"; do
  work=$tdir/corpus/$t; mkdir -p "$work" "fuzz/artifacts/$t"
  log=$tdir/fuzz-$t.log
  opts=(-max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048)
  [[ -n ${FUZZ_RUNS:-} ]] && opts+=(-runs="$FUZZ_RUNS")
  [[ -n ${FUZZ_JOBS:-} ]] && opts+=(-fork="$FUZZ_JOBS")
  start=$(date +%s.%N)
  rc=0
  cargo +nightly fuzz run "${build[@]}" "$t" "$work" "fuzz/corpus/$t" -- "${opts[@]}" "$@" >"$log" 2>&1 || rc=$?
  end=$(date +%s.%N)
  # Inputs this run saved as crashes, leaks, timeouts or OOMs (libFuzzer stops at
  # the first; -fork may go on). Not slow-unit-*: libFuzzer saves an input that
  # took over 10 s of wall time, which a paused (SIGSTOP) or starved run produces.
  crashes=$(grep -cE 'Test unit written to .*/(crash|leak|timeout|oom)-' "$log" || true)
  [[ $rc -ne 0 && $crashes -eq 0 ]] && crashes=1   # a crash libFuzzer could not save still counts
  execs=$(awk -F: '/stat::number_of_executed_units/ {s += $NF} END {print s + 0}' "$log")
  # -fork prints no final stats: take the last status line's #N.
  [[ $execs -eq 0 ]] && execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#' || true)
  execs=${execs:-0}
  elapsed=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.0f", b - a}')
  rate=$(awk -v n="$execs" -v s="$elapsed" 'BEGIN {printf "%.0f", (s > 0 ? n / s : 0)}')
  corpus=$(find "$work" -type f | wc -l)
  printf '%-15s %12s %8s %9s %7s %7s\n' "$t" "$execs" "$elapsed" "$rate" "$crashes" "$corpus"
  if [[ $rc -ne 0 ]]; then
    status=1
    echo "  $t failed (exit $rc); last lines of $log:" >&2
    tail -n 40 "$log" | sed 's/^/  | /' >&2
  fi
done
exit "$status"
