#!/usr/bin/env bash
# authgate against nginx (no auth) and HAProxy (jwt_verify HS256) on the proxy path,
# through the shared side-by-side script. Builds the release binary first.
# Usage: bench/peers.sh   (DUR=10 CONN=64; any AUTHGATE_* variable is passed on)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin authgate
exec bash ../shared/bench/peers.sh "$@"
