#!/usr/bin/env bash
# Run every check and test: formatting, clippy, unit tests, and the black-box
# suite in three passes: on one redis-server, again there with the fast path off
# (every request through pingora-proxy), then on a Redis Cluster; each pass over
# the modules it can change (tests/api/passes.txt).
# Tests start their own redis-servers on free ports; this script installs
# what they need (cmake for Pingora's build, redis-server, chromium, python3
# and a virtualenv for the Python tools) when it can.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_rust
need_pkgs cmake:cmake redis-server:redis-server redis-cli:redis-tools
# The browser test (tests/api/chromium.rs) plays a user in Debian's Chromium,
# driven by Playwright from the virtualenv below (never a browser download).
need_pkgs chromium:chromium
# The JWKS test (tests/api/keys.rs) verifies gateway tokens with PyJWT, the
# contract test (tests/api/contract.rs) runs Schemathesis, the browser test
# (tests/api/chromium.rs) Playwright: all from a virtualenv
# of this script's own, first on PATH for the tests (python3, venv and pip come
# from Debian when missing).
need_test_venv target/test-venv scripts/test-requirements.txt
# A test that cannot run here says why in this file (tests/api/helpers/skip.rs);
# under CI=true it fails instead.
skip_log=$(mktemp)
export AUTHGATE_TEST_SKIP_LOG=$skip_log

cargo fmt --all --check
# The vendored Pingora crates are exactly the releases plus patches/*.diff (#25's guard rail).
patches/vendor.sh --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The internals' documentation builds without a warning (broken links, stray HTML): #25's guard rail.
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --lib --document-private-items --locked --quiet
log=$(mktemp); trap 'rm -f "$log" "$skip_log"' EXIT
status=0
# Our own arguments go after the caller's cargo arguments, before the caller's test ones.
cargo_args=(); test_args=(); seen_dashes=0
for a in "$@"; do
  if [[ $seen_dashes -eq 0 && $a == -- ]]; then seen_dashes=1
  elif [[ $seen_dashes -eq 0 ]]; then cargo_args+=("$a")
  else test_args+=("$a"); fi
done
# pass_skips COLUMN: `--skip MODULE::` for each module tests/api/passes.txt
# leaves out of that pass (2: single, 3: fast_path_off, 4: cluster). Every
# module has a row there (suite::every_module_is_assigned_its_passes).
pass_skips() {
  awk -v c="$1" '!/^#/ && NF == 4 && $c == "no" { printf "--skip\n%s::\n", $1 }' \
    tests/api/passes.txt
}
mapfile -t single_skips < <(pass_skips 2)
mapfile -t fast_path_off_skips < <(pass_skips 3)
mapfile -t cluster_skips < <(pass_skips 4)
# black_box ARGS...: the black-box suite with these test arguments, then the caller's.
black_box() {
  cargo test --test api --locked ${cargo_args[@]+"${cargo_args[@]}"} \
    -- "$@" ${test_args[@]+"${test_args[@]}"} 2>&1 | tee -a "$log"
}
# Examples are built by clippy above; testing them would only add "0 passed" lines.
cargo test --lib --bins --locked ${cargo_args[@]+"${cargo_args[@]}"} \
  -- ${test_args[@]+"${test_args[@]}"} 2>&1 | tee "$log" || status=$?
# Each pass of the black-box suite runs the modules whose behaviour it can
# change (tests/api/passes.txt). First on one redis-server with the fast path on.
black_box "${single_skips[@]}" || status=$?
# Again with the body-less fast path off (src/proxy/h1/fast_path.rs): both ways of
# serving a request must pass every test that sends one the fast path takes.
AUTHGATE_TEST_FAST_PATH=off black_box "${fast_path_off_skips[@]}" || status=$?
# The JSON API is the same with browser mode on (docs/browser.md): its own
# modules once more, every gateway whose test does not set `browser` in it
# (tests/api/helpers/gateway.rs). About 25 s.
AUTHGATE_TEST_BROWSER=on black_box auth_api:: sessions:: contract:: || status=$?
# Again with a Redis Cluster as the shared store (tests/api/helpers/redis.rs),
# one for the whole pass, plus the slow failover test the first pass ignores.
AUTHGATE_TEST_REDIS=cluster black_box --include-ignored "${cluster_skips[@]}" || status=$?
# libtest counts a skipped test as passed: take the skips out, and name each
# with its reason. `ignored` are the slow tests the first pass leaves to the
# cluster pass.
skips=$(sort "$skip_log" | uniq -c | awk '{ n = $1; $1 = ""; printf "%s%s (x%d)", sep, substr($0, 2), n; sep = "; " }')
awk -v skipped="$(wc -l <"$skip_log")" -v skips="$skips" \
  '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "tests: %d passed, %d failed, %d ignored, %d skipped%s\n", p - skipped, f, s, skipped, skipped ? ": " skips : "" }' "$log"
# In CI everything a test needs is installed by now: a skip is a failure there
# (each test fails itself too; this catches a skip of a test that forgot).
if [[ ${CI:-} == true && -s $skip_log ]]; then
  echo "error: tests were skipped under CI=true" >&2; status=1
fi
# Fuzz smoke: each cargo-fuzz target of fuzz/ for a few seconds, from its seeds
# (bench/fuzz.sh; the long runs are in bench/RESULTS.md). An unoptimised build
# without ASan: from scratch it is what fits the CI budget (the ASan release
# build of Pingora's tree takes far longer). AUTHGATE_SKIP_FUZZ=1 skips it.
if [[ -z ${AUTHGATE_SKIP_FUZZ:-} ]]; then
  FUZZ_DEV=1 FUZZ_SANITIZER=none bench/fuzz.sh all "${AUTHGATE_FUZZ_SECONDS:-10}" || status=$?
fi
exit "$status"
