#!/usr/bin/env bash
# `authgate import-users` throughput and memory: N generated Django users (100,000 by
# default, bench/gen_django_users.py) imported into an empty Redis, imported again
# (every user already present), and checked with --dry-run, from JSON and from CSV.
# Prints users/s (wall clock, the two passes over the file included) and the
# importer's peak RSS (VmHWM from /proc/<pid>/status, sampled until it exits).
# Importer on CPU 0, Redis on CPU 1.
# Usage: bench/import.sh   (after cargo build --release)   N=100000
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
need redis-server redis-cli python3 taskset
N=${N:-100000}
start_redis
printf 'redis:\n  url: redis://127.0.0.1:%s/0\n  key_prefix: "bench:"\n' "$RDS" > "$T/gw.yaml"

# run LABEL ARGS... : one import, timed, with its peak RSS.
run() {
  local label=$1; shift
  local t0 t1 pid hwm=0 h
  t0=$(date +%s.%N)
  taskset -c 0 "$GATEWAY_BIN" -c "$T/gw.yaml" import-users "$@" >"$T/out.txt" 2>"$T/err.txt" &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    h=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    [ -n "$h" ] && hwm=$h
    sleep 0.02
  done
  wait "$pid" || { cat "$T/err.txt" >&2; exit 1; }
  t1=$(date +%s.%N)
  awk -v l="$label" -v n="$N" -v a="$t0" -v b="$t1" -v k="$hwm" \
    'BEGIN { printf "%-28s %7d users  %6.2f s  %8.0f users/s  peak RSS %5.1f MB\n", l, n, b-a, n/(b-a), k/1024 }'
  grep -E '^  (imported|would import|already present|skipped):' "$T/out.txt" | tr -s ' \n' ' '; echo
}

for fmt in json csv; do
  python3 bench/gen_django_users.py "$N" "$fmt" > "$T/users.$fmt"
  redis-cli -p $RDS flushall >/dev/null
  echo "$fmt: $(du -h "$T/users.$fmt" | cut -f1)"
  run "$fmt dry run, empty Redis" --dry-run "$T/users.$fmt"
  run "$fmt import" "$T/users.$fmt"
  run "$fmt again (all present)" "$T/users.$fmt"
  echo "redis: $(redis-cli -p $RDS dbsize) keys, used_memory $(redis-cli -p $RDS info memory | awk -F: '/^used_memory_human/ {print $2}' | tr -d '\r')"
done
