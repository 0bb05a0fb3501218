#!/usr/bin/env bash
# A/B the proxy path against an earlier commit: builds REV in a worktree beside
# this checkout (its own target dir, kept for the next run), then runs
# bench/gateway-only.sh ROUNDS times for each binary, interleaved, each with its
# own commit's conf/gateway.yaml. Prints one line per run and the medians.
# Usage: bench/compare.sh REV [ROUNDS]   (DUR, CONN as for gateway-only.sh)
#   OLD_BIN=path: REV's binary is already built there (no worktree, no build);
#   GATEWAY_BIN=path: measure that binary as HEAD instead of building this tree;
#   OLD_CONF=path: run REV's binary with this conf (REV is then only a label):
#     OLD_BIN=B GATEWAY_BIN=B OLD_CONF=off.yaml bench/compare.sh fast-off 5
#     A/Bs one binary under two settings.
set -euo pipefail
cd "$(dirname "$0")/.."
REV=${1:?usage: bench/compare.sh REV [ROUNDS]}; ROUNDS=${2:-5}
OLD=../authgate-bench-$REV
if [[ -z ${OLD_BIN:-} ]]; then
  [[ -d $OLD ]] || git worktree add --detach "$OLD" "$REV" >/dev/null
  (cd "$OLD" && CARGO_TARGET_DIR=../authgate-bench-target-$REV cargo build --release --quiet --bin authgate)
  OLD_BIN=../authgate-bench-target-$REV/release/authgate
fi
[[ -n ${GATEWAY_BIN:-} ]] || cargo build --release --quiet --bin authgate
out=$(mktemp)
if [[ -n ${OLD_CONF:-} ]]; then
  KEEP_CONF=1
elif [[ -d $OLD ]]; then
  OLD_CONF=$OLD/conf/gateway.yaml; KEEP_CONF=1
else
  # A prebuilt REV binary runs with REV's conf/gateway.yaml: a newer one may
  # carry keys it does not know.
  OLD_CONF=$(mktemp --suffix=.yaml)
  git show "$REV:conf/gateway.yaml" > "$OLD_CONF"
fi
for i in $(seq "$ROUNDS"); do
  GATEWAY_BIN=$OLD_BIN GATEWAY_CONF=$OLD_CONF bench/gateway-only.sh | sed "s/^authgate/$REV    /" | tee -a "$out"
  bench/gateway-only.sh | sed "s/^authgate/HEAD       /" | tee -a "$out"
done
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
for who in "$REV" HEAD; do
  rps=$(awk -v w="$who" '$1==w {print $2}' "$out" | median)
  cpu=$(awk -v w="$who" '$1==w {print $6}' "$out" | median)
  printf "median %-8s %10s req/s  %6s us CPU/req  (%d runs)\n" "$who" "$rps" "$cpu" "$ROUNDS"
done
rm -f "$out"
[[ -n ${KEEP_CONF:-} ]] || rm -f "$OLD_CONF"
