# Shared by bench/*.sh: start nginx (upstream), redis and authgate on fixed loopback ports, pinned like peers.sh.
SECRET=${SECRET:-bench-secret-0123456789abcdef0123456789abcdef}
UP=19200; GW=19203; RDS=19204; OPS=19205
GATEWAY_BIN=${GATEWAY_BIN:-target/release/authgate}
T=$(mktemp -d); PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.3; rm -rf "$T"; }
trap cleanup EXIT

need() { for t in "$@"; do command -v "$t" >/dev/null || { echo "missing: $t (apt-get install nginx wrk redis-server curl python3)" >&2; exit 2; }; done; }

start_upstream() {
  cat > "$T/up.conf" <<C
worker_processes 1; daemon off; pid $T/up.pid; error_log $T/up.err;
events { worker_connections 16384; }
http { access_log off; keepalive_requests 10000000; server { listen 127.0.0.1:$UP; location / { return 200 "hello from upstream\n"; } } }
C
  taskset -c 1 nginx -c "$T/up.conf" -p "$T" & PIDS+=($!)
}

start_redis() {
  taskset -c 1 redis-server --port $RDS --bind 127.0.0.1 --save "" --appendonly no >"$T/redis.log" 2>&1 & PIDS+=($!)
  for _ in $(seq 50); do redis-cli -p $RDS ping >/dev/null 2>&1 && return; sleep 0.1; done
}

# start_gateway CPU_LIST [BIN PORT OPS_PORT NAME] : authgate with the bench settings
# (by default GATEWAY_BIN on $GW and $OPS, files named gw); extra AUTHGATE_* come
# from the environment. Sets GW_PID to the process listening on PORT. Every load
# comes from 127.0.0.1, one client to passwords.max_queue_per_client: its fair
# share is lifted unless the caller sets one.
start_gateway() {
  local bin=${2:-$GATEWAY_BIN} port=${3:-$GW} ops=${4:-$OPS} name=${5:-gw}
  AUTHGATE_LISTEN=127.0.0.1:$port AUTHGATE_OPS_LISTEN=127.0.0.1:$ops AUTHGATE_UPSTREAM=http://127.0.0.1:$UP \
  AUTHGATE_REDIS_URL=redis://127.0.0.1:$RDS/0 AUTHGATE_JWT_SECRET=$SECRET AUTHGATE_ACCESS_TTL=${AUTHGATE_ACCESS_TTL:-3600} \
  AUTHGATE_THREADS=${AUTHGATE_THREADS:-1} AUTHGATE_UPGRADE_SOCK=$T/$name-up.sock AUTHGATE_PID_FILE=$T/$name.pid \
  AUTHGATE_HASH_MAX_QUEUE_PER_CLIENT=${AUTHGATE_HASH_MAX_QUEUE_PER_CLIENT:-1024} \
    taskset -c "${1:-0}" "$bin" -c "${GATEWAY_CONF:-conf/gateway.yaml}" >"$T/$name.log" 2>&1 & PIDS+=($!)
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.05; done
  GW_PID=$(pid_of "$port")
}

# pid_of PORT : the process listening on loopback PORT.
pid_of() { ss -ltnpH "sport = :$1" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2; }

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# wrk_line LABEL PID WRK_ARGS... : run wrk pinned to CPU 1, print req/s, p99 and CPU us/request of PID.
wrk_line() {
  local label=$1 pid=$2; shift 2
  local c0 c1 out rps p99 reqs us errs
  c0=$(cpu_ticks "$pid")
  out=$(taskset -c 1 wrk --latency "$@")
  c1=$(cpu_ticks "$pid")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out"); p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  us=$(awk -v a="$c0" -v b="$c1" -v n="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", (b-a)/hz*1e6/n}')
  errs=$(grep -E "Non-2xx|Socket errors" <<<"$out" | tr -s ' \n' ' ' || true)
  printf "%-34s %10s req/s  p99 %-9s %7s us CPU/req  %s\n" "$label" "$rps" "$p99" "$us" "$errs"
}

# login_json EMAIL : register (ignore 409) and log in; prints the JSON answer.
register_login() {
  local body="{\"email\":\"$1\",\"password\":\"correct horse battery staple\"}"
  curl -s -o /dev/null -X POST -H 'Content-Type: application/json' -d "$body" "http://127.0.0.1:$GW/register"
  curl -s -X POST -H 'Content-Type: application/json' -d "$body" "http://127.0.0.1:$GW/login"
}

# refresh_pool N FILE : N refresh tokens (users spread so none passes the session cap), one a line.
refresh_pool() {
  for i in $(seq "$1"); do register_login "bench-$RANDOM-$((i % 8))-$$@example.com"; echo; done \
    | python3 -c 'import json,sys; [print(json.loads(l)["refresh_token"]) for l in sys.stdin if l.strip()]' > "$2"
}

# refresh_lua FILE : a wrk script that refreshes tokens from the pool file given
# after `--`, putting each answer's successor back (a token works once).
refresh_lua() {
  cat > "$1" <<'LUA'
local pool = {}
function init(args) for line in io.lines(args[1]) do pool[#pool + 1] = line end end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local t = table.remove(pool)
  if t == nil then t = "00000000-0000-4000-8000-000000000000" end
  return wrk.format(nil, nil, nil, '{"refresh_token":"' .. t .. '"}')
end
response = function(status, headers, body)
  local t = body:match('"refresh_token":"([%x%-]+)"')
  if t then pool[#pool + 1] = t end
end
LUA
}

# start_cluster : a Redis Cluster of 3 masters + 3 replicas on CL_PORTS, pinned
# like start_redis; sets CLUSTER_NODES (host:port,...) once every slot is served.
CL_PORTS=(19210 19211 19212 19213 19214 19215)
start_cluster() {
  local p nodes=()
  for p in "${CL_PORTS[@]}"; do
    mkdir -p "$T/cl-$p"
    (cd "$T/cl-$p" && exec taskset -c 1 redis-server --port "$p" --bind 127.0.0.1 --save "" \
      --appendonly yes --appendfsync everysec --cluster-enabled yes --cluster-node-timeout 1000 \
      --repl-diskless-sync-delay 0 \
      >"$T/cl-$p/redis.log" 2>&1) & PIDS+=($!)
    nodes+=("127.0.0.1:$p")
  done
  for p in "${CL_PORTS[@]}"; do
    for _ in $(seq 50); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
  done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$T/cluster-create.log"
  for _ in $(seq 100); do
    redis-cli -p "${CL_PORTS[0]}" cluster info | grep -q 'cluster_state:ok' && break; sleep 0.1
  done
  # A replica that has not synced yet cannot take over: wait for every one.
  for p in "${CL_PORTS[@]}"; do
    for _ in $(seq 100); do
      redis-cli -p "$p" info replication | grep -qE 'role:master|master_link_status:up' && break; sleep 0.1
    done
  done
  CLUSTER_NODES=$(IFS=,; echo "${nodes[*]}")
}

# no_throttle_conf FILE : conf/gateway.yaml with the login/register throttles off
# (a benchmark registers and logs in far more often than one client IP may).
no_throttle_conf() {
  awk '/^throttle:/ {t=1} t && /^  enabled:/ {sub(/true/, "false"); t=0} {print}' conf/gateway.yaml > "$1"
}
