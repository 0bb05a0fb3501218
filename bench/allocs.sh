#!/usr/bin/env bash
# Heap allocations per proxied request: uprobes on mimalloc's entry points
# (the global allocator's malloc, zalloc and realloc) count the calls the
# gateway makes while h2load sends N verified GETs, divided by N.
# Background work (the access-log flusher, timers) is included, so the
# figure is an upper bound on the request path's own allocations.
# Needs root and linux-perf (apt-get install linux-perf).
# Usage: bench/allocs.sh [N]    (default 20000; GATEWAY_BIN as for gateway-only.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
need nginx redis-server curl python3 taskset perf h2load
N=${1:-20000}
BIN=$(readlink -f "$GATEWAY_BIN")
FNS=(mi_malloc_aligned mi_zalloc_aligned mi_realloc_aligned)
probes=()
for f in "${FNS[@]}"; do
  perf probe -q -d "probe_authgate:$f" 2>/dev/null || true
  perf probe -q -x "$BIN" --add "$f" || { echo "error: cannot add a uprobe on $f in $BIN" >&2; exit 2; }
  probes+=(-e "probe_authgate:$f")
done
trap 'for f in "${FNS[@]}"; do perf probe -q -d "probe_authgate:$f" 2>/dev/null || true; done; cleanup' EXIT
start_upstream; start_redis; start_gateway 0
TOKEN=$(python3 bench/mkjwt.py "$SECRET" 1 3600)
# Warm up: connections pooled, metric handles and caches filled.
taskset -c 1 h2load --h1 -n 2000 -c 8 -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$GW/api/x" >/dev/null
out=$(perf stat -x, "${probes[@]}" -p "$GW_PID" -- \
  taskset -c 1 h2load --h1 -n "$N" -c 8 -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$GW/api/x" 2>&1 >/dev/null)
total=0
for f in "${FNS[@]}"; do
  n=$(awk -F, -v f="probe_authgate:$f" '$3 == f {print $1}' <<<"$out")
  printf '%-22s %10s calls  %6.2f per request\n' "$f" "$n" "$(awk -v n="$n" -v r="$N" 'BEGIN {print n / r}')"
  total=$((total + n))
done
printf '%-22s %10s calls  %6.2f per request\n' total "$total" "$(awk -v n="$total" -v r="$N" 'BEGIN {print n / r}')"
