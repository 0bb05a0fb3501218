#!/usr/bin/env bash
# Recreate vendor/pingora-core: the crates.io release named below with
# patches/pingora-core.diff applied. Run after changing the diff or moving to
# a new Pingora release (then update VERSION and Cargo.toml's pingora pins).
# Usage: patches/vendor.sh          check: patches/vendor.sh --check (exit 1 if the copy differs)
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=0.9.1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
curl -fsSL "https://static.crates.io/crates/pingora-core/pingora-core-$VERSION.crate" | tar xz -C "$tmp"
rm -f "$tmp/pingora-core-$VERSION/.cargo_vcs_info.json"
(cd "$tmp/pingora-core-$VERSION" && patch -s -p1 < "$OLDPWD/patches/pingora-core.diff")
if [[ ${1:-} == --check ]]; then
  diff -r "$tmp/pingora-core-$VERSION" vendor/pingora-core && echo "vendor/pingora-core matches pingora-core $VERSION + patches/pingora-core.diff"
else
  rm -rf vendor/pingora-core
  mv "$tmp/pingora-core-$VERSION" vendor/pingora-core
  echo "vendor/pingora-core: pingora-core $VERSION + patches/pingora-core.diff"
fi
