#!/usr/bin/env bash
# Run every check and test: formatting, clippy, unit tests, and the black-box
# suite three times: on one redis-server, again there with the fast path off
# (every request through pingora-proxy), then on a Redis Cluster.
# Tests start their own redis-servers on free ports; this script installs
# what they need (cmake for Pingora's build, redis-server) when it can.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_rust
need_pkgs cmake:cmake redis-server:redis-server redis-cli:redis-tools
# The JWKS test verifies gateway tokens with another language's JWT library (it
# skips only without python3).
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import jwt, cryptography' 2>/dev/null; then
  python3 -m pip install --quiet 'pyjwt[crypto]'
fi
# The API contract test (tests/api/contract.rs) runs Schemathesis against the
# gateway (it skips only without it).
if command -v python3 >/dev/null 2>&1 && ! command -v schemathesis >/dev/null 2>&1; then
  python3 -m pip install --quiet schemathesis
fi

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Examples are built by clippy above; testing them would only add "0 passed" lines.
log=$(mktemp); trap 'rm -f "$log"' EXIT
status=0
cargo test --lib --bins --tests --locked "$@" 2>&1 | tee "$log" || status=$?
# The black-box suite again with the body-less fast path off (src/proxy/fast_path.rs):
# both ways of serving a request must pass every test.
AUTHGATE_TEST_FAST_PATH=off cargo test --test api --locked "$@" 2>&1 | tee -a "$log" || status=$?
# The black-box suite again with a Redis Cluster as the shared store
# (tests/api/helpers/redis.rs), plus the slow failover test the first pass ignores.
# Our own arguments go after the caller's cargo arguments, before the caller's test ones.
cargo_args=(); test_args=(); seen_dashes=0
for a in "$@"; do
  if [[ $seen_dashes -eq 0 && $a == -- ]]; then seen_dashes=1
  elif [[ $seen_dashes -eq 0 ]]; then cargo_args+=("$a")
  else test_args+=("$a"); fi
done
AUTHGATE_TEST_REDIS=cluster cargo test --test api --locked ${cargo_args[@]+"${cargo_args[@]}"} \
  -- --include-ignored ${test_args[@]+"${test_args[@]}"} 2>&1 | tee -a "$log" || status=$?
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
# Fuzz smoke: each cargo-fuzz target of fuzz/ for a few seconds, from its seeds
# (bench/fuzz.sh; the long runs are in bench/RESULTS.md). An unoptimised build
# without ASan: from scratch it is what fits the CI budget (the ASan release
# build of Pingora's tree takes far longer). AUTHGATE_SKIP_FUZZ=1 skips it.
if [[ -z ${AUTHGATE_SKIP_FUZZ:-} ]]; then
  FUZZ_DEV=1 FUZZ_SANITIZER=none bench/fuzz.sh all "${AUTHGATE_FUZZ_SECONDS:-10}" || status=$?
fi
exit "$status"
