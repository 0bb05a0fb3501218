# Shared by scripts/*.sh: install what is missing, or say exactly what to install.

# need_pkgs CMD:PKG ... : make sure each command exists, installing its Debian package if we can.
need_pkgs() {
  local missing=() pair cmd pkg
  for pair in "$@"; do
    cmd=${pair%%:*}; pkg=${pair#*:}
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  local sudo=""
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; fi
  fi
  if command -v apt-get >/dev/null 2>&1 && { [[ $(id -u) -eq 0 ]] || [[ -n $sudo ]]; }; then
    echo "installing: ${missing[*]}" >&2
    $sudo apt-get update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2 || {
      echo "error: could not install ${missing[*]}; install them with: sudo apt-get install ${missing[*]}" >&2; exit 1; }
  else
    echo "error: missing ${missing[*]}; install with: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
}

need_rust() {
  command -v cargo >/dev/null 2>&1 || {
    echo "error: cargo not found; install the Rust toolchain (https://rustup.rs) and retry" >&2; exit 1; }
}
