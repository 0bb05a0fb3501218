#!/usr/bin/env bash
# Run every check and test: formatting, clippy, unit and black-box tests.
# Tests start their own redis-server on free ports; this script installs
# what they need (cmake for Pingora's build, redis-server) when it can.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_rust
need_pkgs cmake:cmake redis-server:redis-server redis-cli:redis-tools curl:curl openssl:openssl

cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --all-targets --locked "$@"
