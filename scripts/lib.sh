# Shared by scripts/*.sh: install what is missing, or say exactly what to install.

# need_pkgs CMD:PKG ... : make sure each command exists, installing its Debian package if we can.
need_pkgs() {
  local missing=() pair cmd pkg
  for pair in "$@"; do
    cmd=${pair%%:*}; pkg=${pair#*:}
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  install_pkgs "${missing[@]}"
}

# install_pkgs PKG ... : install these Debian packages (as root or with sudo -n), or say how and exit.
install_pkgs() {
  local missing=("$@")
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

# need_test_venv DIR REQUIREMENTS : a virtualenv at DIR (made here if missing, with
# python3, venv and pip from Debian when absent) holding REQUIREMENTS; its bin/ is
# then first on PATH. Its own, not a user install: nothing outside DIR changes,
# and the tests find exactly these versions.
need_test_venv() {
  local dir=$1 reqs=$2
  need_pkgs python3:python3
  # Debian ships venv's pip bootstrap (ensurepip) and pip apart from python3.
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then install_pkgs python3-venv python3-pip; fi
  # A venv made by another python3 (or half made) is made again.
  if [[ ! -x $dir/bin/python ]] || ! "$dir/bin/python" -m pip --version >/dev/null 2>&1; then
    rm -rf "$dir"
    python3 -m venv "$dir" || { echo "error: python3 -m venv $dir failed" >&2; exit 1; }
  fi
  # Installed again only when the requirements changed since the last install.
  if ! cmp -s "$reqs" "$dir/installed-requirements.txt"; then
    echo "installing into $dir: $(grep -v '^#' "$reqs" | tr '\n' ' ')" >&2
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$reqs" >&2 || {
      echo "error: pip could not install $reqs into $dir" >&2; exit 1; }
    cp "$reqs" "$dir/installed-requirements.txt"
  fi
  PATH="$(cd "$dir" && pwd)/bin:$PATH"
  export PATH
}

need_rust() {
  command -v cargo >/dev/null 2>&1 || {
    echo "error: cargo not found; install the Rust toolchain (https://rustup.rs) and retry" >&2; exit 1; }
}
