#!/usr/bin/env bash
# A Redis Cluster master killed (SIGKILL) under a steady auth load: answers per
# second by status, p99 and slowest answer, time until traffic recovers, and
# what acknowledged writes were lost (bench/load_mix.py checks every
# registration that got 201 and every worker's last refresh token).
# Cluster: 3 masters + 3 replicas, cluster-node-timeout 1000 ms, AOF everysec.
# Usage: bench/cluster-failover.sh   (after cargo build --release)   DUR=30 KILL_AT=10 WORKERS=16
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
need nginx redis-server redis-cli curl python3 taskset
DUR=${DUR:-30}; KILL_AT=${KILL_AT:-10}; WORKERS=${WORKERS:-16}
# Room in the hashing queue for every worker: a 503 busy would hide the fault.
export AUTHGATE_HASH_MAX_QUEUE=${AUTHGATE_HASH_MAX_QUEUE:-64}
no_throttle_conf "$T/gateway.yaml"
export GATEWAY_CONF="$T/gateway.yaml" AUTHGATE_ARGON2_MEMORY_KIB=1024 AUTHGATE_ARGON2_ITERATIONS=1 AUTHGATE_ARGON2_ALLOW_INSECURE=1
start_upstream
start_cluster
victim=${CL_PORTS[0]}
redis-cli -p "$victim" role | head -1 | grep -q master || { echo "127.0.0.1:$victim is not a master" >&2; exit 1; }
AUTHGATE_REDIS_CLUSTER_NODES=$CLUSTER_NODES start_gateway 0
timeout_ms=$(awk '/^redis:/ {r=1} r && /timeout_ms:/ {print $2; exit}' "$GATEWAY_CONF")
echo "gateway $(git rev-parse --short HEAD); redis.timeout_ms=$timeout_ms; killing master 127.0.0.1:$victim at t=${KILL_AT}s of ${DUR}s"
python3 bench/load_mix.py "127.0.0.1:$GW" "$DUR" "$WORKERS" > "$T/timeline.txt" &
load=$!
sleep "$KILL_AT"
vid=$(redis-cli -p "$victim" cluster myid)
replica=$(redis-cli -p "$victim" cluster nodes | awk -v id="$vid" '$4==id {split($2,a,"[:@]"); print a[2]; exit}')
vpid=$(pid_of "$victim"); kill -9 "$vpid"; killed=$(date +%s.%N)
echo "t=${KILL_AT}s: SIGKILL 127.0.0.1:$victim (its replica: 127.0.0.1:$replica)"
for _ in $(seq 400); do
  redis-cli -p "$replica" role 2>/dev/null | head -1 | grep -q master && break; sleep 0.05
done
promoted=$(date +%s.%N)
for _ in $(seq 400); do
  redis-cli -p "$replica" cluster info | grep -q 'cluster_state:ok' && break; sleep 0.05
done
ok=$(date +%s.%N)
awk -v a="$killed" -v b="$promoted" -v c="$ok" \
  'BEGIN{printf "replica promoted %.1f s after the kill; cluster_state:ok at %.1f s\n", b-a, c-a}'
curl -s "http://127.0.0.1:$OPS/readyz"; echo
wait "$load"
cat "$T/timeline.txt"
grep -c " 500" "$T/timeline.txt" >/dev/null && echo "500 answers: see above" || echo "500 answers: none"
