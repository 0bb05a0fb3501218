#!/usr/bin/env bash
# Recreate vendor/<crate> for each patched Pingora crate: the crates.io release
# named below with patches/<crate>.diff applied, then each patches/<crate>.*.diff
# (one upstream-ready fix per file) in name order. Run after changing a diff or
# moving to a new Pingora release (then update VERSION and Cargo.toml's pins).
# Usage: patches/vendor.sh          check: patches/vendor.sh --check (exit 1 if a copy differs)
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=0.9.1
CRATES=(pingora-core pingora-proxy)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
status=0
for crate in "${CRATES[@]}"; do
  src="$tmp/$crate-$VERSION"
  # The release as cargo unpacked it, when it has (no download), else from crates.io.
  cached=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"$crate-$VERSION" 2>/dev/null | head -n1 || true)
  if [[ -n $cached ]]; then
    cp -r "$cached" "$src"
  else
    curl -fsSL --retry 3 "https://static.crates.io/crates/$crate/$crate-$VERSION.crate" | tar xz -C "$tmp"
  fi
  rm -f "$src/.cargo_vcs_info.json" "$src/.cargo-ok"
  for diff in "patches/$crate.diff" patches/"$crate".*.diff; do
    [[ -e $diff ]] || continue
    (cd "$src" && patch -s -p1 < "$OLDPWD/$diff")
  done
  if [[ ${1:-} == --check ]]; then
    # Each workspace has its own [patch]; one that misses a crate builds the
    # unpatched release and fails to compile (or worse, compiles without a hook).
    for manifest in Cargo.toml fuzz/Cargo.toml; do
      if ! grep -q "^$crate = { path = \"\(\.\./\)\?vendor/$crate\" }" "$manifest"; then
        echo "$manifest: [patch.crates-io] lacks $crate = { path = \".../vendor/$crate\" }" >&2
        status=1
      fi
    done
    if diff -r "$src" "vendor/$crate"; then
      echo "vendor/$crate matches $crate $VERSION + patches/$crate{,.*}.diff"
    else
      status=1
    fi
  else
    rm -rf "vendor/$crate"
    mv "$src" "vendor/$crate"
    echo "vendor/$crate: $crate $VERSION + patches/$crate{,.*}.diff"
  fi
done
exit $status
