#!/usr/bin/env bash
# Private projects vs the same project public (issue 3: authorized private
# requests >= 0.9x the req/s of public). Four gateway-side cases, each
# compared with a public run under the same wrk set-up:
#   one session        one session id on every request: the decision cache's best case
#   1000 sessions      BENCH_SESSIONS ids spread over the connections (bench/sessions.lua)
#   cache_ttl=0        a second gateway that asks Redis twice per request (worst case)
# Rounds are interleaved (every case once, then again); medians are printed.
#   bash bench/private.sh      (BENCH_DURATION=10s BENCH_ROUNDS=3 BENCH_CONNS="50 256"
#                               BENCH_SESSIONS=1000 BENCH_CACHE_TTL=2s)
# Needs redis-server, redis-cli and wrk; uses nginx as the app when installed.
# Standalone, or called from bench/run; prints its table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
GW=${GATEWAY_BIN:-}
if [ -z "$GW" ]; then   # standalone: the release build bench/run uses
  [ -f build-bench/build.ninja ] || meson setup build-bench -Dbuildtype=release >/dev/null
  ninja -C build-bench >/dev/null
  GW=$PWD/build-bench/gateway/gateway
fi
for tool in redis-server redis-cli wrk; do
  command -v "$tool" >/dev/null || { echo "bench/private.sh: $tool not installed; skipped" >&2; exit 0; }
done

DUR=${BENCH_DURATION:-10s}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNS:-"50 256"}
export BENCH_SESSIONS=${BENCH_SESSIONS:-1000}
NGINX=$(command -v nginx || true)
[ -n "$NGINX" ] || { [ -x /usr/sbin/nginx ] && NGINX=/usr/sbin/nginx; } || true

tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
# A free port below the kernel's ephemeral range (tests/lib/gwtest.py), so no
# client socket of an earlier wrk run can hold it.
port() { /usr/bin/python3 -c 'import sys; sys.path.insert(0, "tests/lib"); import gwtest; print(gwtest.free_port())'; }
APP_PORT=$(port); GW_PORT=$(port); GW0_PORT=$(port); RD_PORT=$(port)
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "nothing on port $1" >&2; tail -n 5 "$tmp"/gw*.log >&2 2>/dev/null; exit 1; }

if [ -n "$NGINX" ]; then
  mkdir -p "$tmp/app"
  cat >"$tmp/app/nginx.conf" <<CONF
worker_processes 1;
pid $tmp/app/nginx.pid;
error_log $tmp/app/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $tmp/app; proxy_temp_path $tmp/app;
  fastcgi_temp_path $tmp/app; uwsgi_temp_path $tmp/app; scgi_temp_path $tmp/app;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$APP_PORT; location / { default_type text/plain; return 200 'hello from the app, a small fixed response\n'; } }
}
CONF
  "$NGINX" -p "$tmp/app" -c "$tmp/app/nginx.conf" -g 'daemon off;' &
else
  echo "nginx is not installed: the app is the Python test backend" >&2
  /usr/bin/python3 tests/lib/backend.py --port "$APP_PORT" >/dev/null &
fi
pids+=($!)
redis-server --port "$RD_PORT" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
pids+=($!)
wait_port "$RD_PORT"; wait_port "$APP_PORT"
until redis-cli -p "$RD_PORT" ping 2>/dev/null | grep -q PONG; do sleep 0.05; done

# The routes (same app, one public, one private), the member, the sessions.
{
  for h in pub priv; do
    vis=$([ $h = pub ] && echo public || echo private)
    echo "HSET gw:route:$h.bench project $h upstream 127.0.0.1:$APP_PORT visibility $vis"
    echo "SADD gw:routes $h.bench"
  done
  echo "SADD gw:members:priv bench"
  exp=$(( $(date +%s) + 86400 ))
  for k in $(seq 1 "$BENCH_SESSIONS"); do
    printf 'HSET gw:session:bench-sid-%06d user bench expires %s\n' "$k" "$exp"
  done
} | redis-cli -p "$RD_PORT" >/dev/null

start_gw() {  # $1 port, $2 cache_ttl
  # No admin listener: two gateways run at once, and this measures requests.
  printf '[redis]\naddress = 127.0.0.1:%s\n[auth]\ncache_ttl = %s\n[admin]\nlisten =\n' \
    "$RD_PORT" "$2" >"$tmp/gw$1.conf"
  "$GW" -c "$tmp/gw$1.conf" --listen "127.0.0.1:$1" --workers 1 --log-level info \
    --access-log off 2>"$tmp/gw$1.log" &
  pids+=($!)
  GWPID[$1]=$!
  wait_port "$1"
  for _ in $(seq 100); do grep -q "in sync with Redis" "$tmp/gw$1.log" && return 0; sleep 0.05; done
  echo "gateway on $1 did not sync with Redis" >&2; cat "$tmp/gw$1.log" >&2; exit 1
}
declare -A GWPID
start_gw "$GW_PORT" "${BENCH_CACHE_TTL:-2s}"
start_gw "$GW0_PORT" 0

# CPU time (clock ticks) the gateway process has used so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TCK=$(getconf CLK_TCK)

# wrk output -> "req/s p99_ms requests [ERR: ...]"
run_wrk() {  # $1 port, $2 conns, $3 host, $4 cookie|lua|-
  local extra=()
  case $4 in
    lua) extra=(-s bench/sessions.lua) ;;
    -) ;;
    *) extra=(-H "Cookie: theme=dark; gw_session=$4") ;;
  esac
  wrk -t2 -c"$2" -d"$DUR" --latency -H "Host: $3" "${extra[@]}" "http://127.0.0.1:$1/" 2>/dev/null |
    awk '/Requests\/sec/ {rps=$2}
         / requests in / {n=$1}
         /^ +99%/ {v=$2; if (v ~ /us$/) {sub("us","",v); v/=1000} else if (v ~ /ms$/) {sub("ms","",v)} else if (v ~ /s$/) {sub("s","",v); v*=1000}; p99=v}
         /Non-2xx|Socket errors/ {err=err" "$0}
         END {printf "%s %s %s%s\n", rps, p99, n, (err ? " ERR:"err : "")}'
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

SID1=bench-sid-000001
# name:port:host:cookie
cases="public:$GW_PORT:pub.bench:$SID1 private:$GW_PORT:priv.bench:$SID1
public-many:$GW_PORT:pub.bench:lua private-many:$GW_PORT:priv.bench:lua
public-ttl0:$GW0_PORT:pub.bench:$SID1 private-ttl0:$GW0_PORT:priv.bench:$SID1"
declare -A RPS P99 CPU
for c in $CONNS; do
  for r in $(seq "$ROUNDS"); do
    for t in $cases; do
      IFS=: read -r name p host cookie <<<"$t"
      before=$(cpu_ticks "${GWPID[$p]}")
      read -r rps p99 n rest <<<"$(run_wrk "$p" "$c" "$host" "$cookie")"
      after=$(cpu_ticks "${GWPID[$p]}")
      [ -z "${rest:-}" ] || echo "warning: $name c=$c: $rest" >&2
      RPS[$name,$c]+="$rps "; P99[$name,$c]+="$p99 "
      # gateway CPU per request: robust where req/s is not (a busy machine)
      CPU[$name,$c]+="$(awk -v t=$((after - before)) -v k="$TCK" -v n="$n" 'BEGIN{printf "%.2f", t / k * 1e6 / n}') "
    done
  done
done

med() { echo ${1} | tr ' ' '\n' | median; }
echo "private vs public: wrk -t2 -d$DUR, $ROUNDS interleaved rounds, medians; one worker; $(nproc) CPUs; $BENCH_SESSIONS sessions in the 'many' rows"
printf "%-6s %-14s %12s %10s %14s\n" conns case "req/s" "p99 ms" "gw CPU us/req"
for c in $CONNS; do
  for t in $cases; do
    name=${t%%:*}
    printf "%-6s %-14s %12.0f %10.2f %14.2f\n" "$c" "$name" "$(med "${RPS[$name,$c]}")" \
      "$(med "${P99[$name,$c]}")" "$(med "${CPU[$name,$c]}")"
  done
  for v in "" -many -ttl0; do
    pu=$(med "${RPS[public$v,$c]}"); pr=$(med "${RPS[private$v,$c]}")
    cu=$(med "${CPU[public$v,$c]}"); cr=$(med "${CPU[private$v,$c]}")
    case $v in
      "") what="one session, cached" ;;
      -many) what="$BENCH_SESSIONS sessions, cached" ;;
      -ttl0) what="cache_ttl=0: two Redis reads per request" ;;
    esac
    echo "c=$c private/public req/s $(awk -v a="$pr" -v b="$pu" 'BEGIN{printf "%.2f", a/b}'), gateway CPU per request $(awk -v a="$cr" -v b="$cu" 'BEGIN{printf "%.2f", a/b}')x ($what)"
  done
done
# Anything the gateways warned about (Redis trouble, refusals) would make
# the numbers meaningless: show it.
if grep -qh " warn \| error " "$tmp"/gw*.log; then
  echo "gateway warnings during the run:" >&2
  grep -h " warn \| error " "$tmp"/gw*.log | head -5 >&2
fi
