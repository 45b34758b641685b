#!/usr/bin/env bash
# HTTPS: this gateway against nginx, same certificate, same app, one worker
# each, interleaved rounds, medians and ratios.
#   keepalive  wrk over https, connections kept: TLS record cost per request
#   handshake  wrk with "Connection: close": one full TLS handshake (no
#              resumption: wrk does not offer sessions) + one request each
#   plain      the same keep-alive load over http, for the cost of TLS itself
#   hs-cpu     openssl s_time -new (full TLS 1.3 handshakes, one at a time):
#              server CPU microseconds per handshake, read from /proc - what
#              a handshake costs the proxy, whatever limits the client
#
#   bash bench/tls.sh     (BENCH_DURATION=10s BENCH_ROUNDS=3 BENCH_CONNS=50
#                          BENCH_TLS_KEY=ec|rsa, ec = P-256 by default)
# The app is an nginx returning a small fixed response, so the proxies are
# what is measured. Results: bench/results/tls.txt
set -euo pipefail
cd "$(dirname "$0")/.."
GW=${GATEWAY_BIN:-}
if [ -z "$GW" ]; then   # standalone: the release build bench/run uses
  bash .ci/deps
  [ -f build-bench/build.ninja ] || meson setup build-bench -Dbuildtype=release >/dev/null
  ninja -C build-bench >/dev/null
  GW=$PWD/build-bench/gateway/gateway
fi

DUR=${BENCH_DURATION:-10s}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNS:-50}
KEY=${BENCH_TLS_KEY:-ec}
NGINX=$(command -v nginx || true)
[ -n "$NGINX" ] || { [ -x /usr/sbin/nginx ] && NGINX=/usr/sbin/nginx; } || true
if [ -z "$NGINX" ]; then
  echo "bench/tls.sh: nginx is not installed; nothing to compare with" >&2
  exit 1
fi

tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
APP_PORT=$(port); GW_PORT=$(port); GW_TLS=$(port); NX_PORT=$(port); NX_TLS=$(port)

# One certificate for both (app.bench), signed by a throwaway CA.
mkdir -p "$tmp/certs"
case $KEY in
  rsa) newkey=(-newkey rsa:2048) ;;
  *) newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
esac
openssl req -x509 "${newkey[@]}" -nodes -keyout "$tmp/ca.key" -out "$tmp/ca.crt" \
  -days 2 -subj "/CN=bench CA" 2>/dev/null
openssl req "${newkey[@]}" -nodes -keyout "$tmp/certs/bench.key" -out "$tmp/bench.csr" \
  -subj "/CN=bench" 2>/dev/null
printf 'subjectAltName=DNS:app.bench,IP:127.0.0.1\n' >"$tmp/ext"
openssl x509 -req -in "$tmp/bench.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" -days 2 \
  -set_serial 1 -extfile "$tmp/ext" -out "$tmp/certs/bench.crt" 2>/dev/null
cat "$tmp/ca.crt" >>"$tmp/certs/bench.crt"

nginx_conf() {  # $1 name, $2 server block
  mkdir -p "$tmp/$1"
  cat >"$tmp/$1/nginx.conf" <<CONF
worker_processes 1;
pid $tmp/$1/nginx.pid;
error_log $tmp/$1/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $tmp/$1; proxy_temp_path $tmp/$1;
  fastcgi_temp_path $tmp/$1; uwsgi_temp_path $tmp/$1; scgi_temp_path $tmp/$1;
  keepalive_requests 1000000;
  $2
}
CONF
}

nginx_conf app "server { listen 127.0.0.1:$APP_PORT; location / { default_type text/plain; return 200 'hello from the app, a small fixed response\n'; } }"
"$NGINX" -p "$tmp/app" -c "$tmp/app/nginx.conf" -g 'daemon off;' &
pids+=($!)
# nginx as the gateway would be set up: TLS 1.2/1.3, the same ciphers,
# session tickets on, upstream keep-alive.
nginx_conf proxy "upstream app { server 127.0.0.1:$APP_PORT; keepalive 64; }
  server { listen 127.0.0.1:$NX_PORT; listen 127.0.0.1:$NX_TLS ssl;
    ssl_certificate $tmp/certs/bench.crt; ssl_certificate_key $tmp/certs/bench.key;
    ssl_protocols TLSv1.2 TLSv1.3; ssl_ciphers ECDHE+AESGCM:ECDHE+CHACHA20;
    ssl_session_tickets on;
    location / { proxy_pass http://app; proxy_http_version 1.1;
      proxy_set_header Connection ''; proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme; } }"
"$NGINX" -p "$tmp/proxy" -c "$tmp/proxy/nginx.conf" -g 'daemon off;' &
pids+=($!)
cat >"$tmp/gw.conf" <<CONF
[gateway]
listen = 127.0.0.1:$GW_PORT
workers = 1
[tls]
listen = 127.0.0.1:$GW_TLS
cert_dir = $tmp/certs
default_cert = bench
[log]
level = warn
access_log = off
[admin]
listen =
[routes]
app.bench = 127.0.0.1:$APP_PORT
CONF
"$GW" -c "$tmp/gw.conf" &
GW_PID=$!
pids+=($GW_PID)
sleep 1
NX_WORKER=$(pgrep -P "${pids[1]}" | head -1)
curl -sf --cacert "$tmp/ca.crt" --resolve "app.bench:$GW_TLS:127.0.0.1" \
  "https://app.bench:$GW_TLS/" >/dev/null || { echo "bench/tls.sh: gateway not answering over TLS" >&2; exit 1; }
curl -sf --cacert "$tmp/ca.crt" --resolve "app.bench:$NX_TLS:127.0.0.1" \
  "https://app.bench:$NX_TLS/" >/dev/null || { echo "bench/tls.sh: nginx not answering over TLS" >&2; exit 1; }

# wrk output -> "req/s p99_ms"
run_wrk() {  # $1 url, $2 conns, [$3 extra header]
  local extra=()
  [ -z "${3:-}" ] || extra=(-H "$3")
  wrk -t2 -c"$2" -d"$DUR" --latency -H "Host: app.bench" "${extra[@]}" "$1" 2>/dev/null |
    awk '/Requests\/sec/ {rps=$2}
         /^ +99%/ {v=$2; if (v ~ /us$/) {sub("us","",v); v/=1000} else if (v ~ /ms$/) {sub("ms","",v)} else if (v ~ /s$/) {sub("s","",v); v*=1000}; p99=v}
         /Non-2xx|Socket errors/ {err=err" "$0}
         END {printf "%s %s%s\n", rps, p99, (err ? " ERR:"err : "")}'
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# s_time -new for the run's length -> "handshakes/s us_cpu_per_handshake"
run_stime() {  # $1 port, $2 server pid
  local secs=${DUR%s} t0 t1 out n
  t0=$(awk '{print $14+$15}' "/proc/$2/stat")
  out=$(openssl s_time -connect "127.0.0.1:$1" -new -time "$secs" 2>/dev/null | grep "real seconds")
  t1=$(awk '{print $14+$15}' "/proc/$2/stat")
  n=$(echo "$out" | awk '{print $1}')
  awk -v n="${n:-0}" -v s="$secs" -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" \
    'BEGIN {if (n > 0) printf "%.0f %.0f\n", n / s, t * 1000000 / hz / n; else print "0 0"}'
}

cases="keepalive handshake plain hs-cpu"
declare -A RPS P99
for c in $CONNS; do
  for r in $(seq "$ROUNDS"); do
    for k in $cases; do
      for t in gateway nginx; do   # interleaved: gateway, nginx, next case
        case $t in gateway) tp=$GW_TLS; pp=$GW_PORT; sp=$GW_PID ;; nginx) tp=$NX_TLS; pp=$NX_PORT; sp=$NX_WORKER ;; esac
        if [ "$k" = hs-cpu ]; then
          read -r rps p99 <<<"$(run_stime "$tp" "$sp")"   # p99 column: us of CPU
          RPS[$t,$k,$c]+="$rps "; P99[$t,$k,$c]+="$p99 "
          continue
        fi
        case $k in
          keepalive) args=("https://127.0.0.1:$tp/" "$c") ;;
          handshake) args=("https://127.0.0.1:$tp/" "$c" "Connection: close") ;;
          plain) args=("http://127.0.0.1:$pp/" "$c") ;;
        esac
        read -r rps p99 rest <<<"$(run_wrk "${args[@]}")"
        [ -z "${rest:-}" ] || echo "warning: $t $k c=$c: $rest" >&2
        RPS[$t,$k,$c]+="$rps "; P99[$t,$k,$c]+="$p99 "
      done
    done
  done
done

mkdir -p bench/results
{
  echo "HTTPS: wrk -t2 -d$DUR, $ROUNDS interleaved rounds, medians; one worker each; $(nproc) CPUs;" \
       "key $KEY; $(openssl version | cut -d' ' -f1-2); nginx $("$NGINX" -v 2>&1 | sed 's/.*\///')"
  printf "%-6s %-10s %-8s %12s %10s\n" conns case target "req/s" "p99 ms"
  echo "(hs-cpu: one client; req/s = handshakes/s, p99 column = server CPU us per handshake)"
  for c in $CONNS; do
    for k in $cases; do
      for t in gateway nginx; do
        printf "%-6s %-10s %-8s %12.0f %10.2f\n" "$c" "$k" "$t" \
          "$(echo ${RPS[$t,$k,$c]} | tr ' ' '\n' | median)" "$(echo ${P99[$t,$k,$c]} | tr ' ' '\n' | median)"
      done
    done
    for k in $cases; do
      g=$(echo ${RPS[gateway,$k,$c]} | tr ' ' '\n' | median); n=$(echo ${RPS[nginx,$k,$c]} | tr ' ' '\n' | median)
      gp=$(echo ${P99[gateway,$k,$c]} | tr ' ' '\n' | median); np=$(echo ${P99[nginx,$k,$c]} | tr ' ' '\n' | median)
      if [ "$k" = hs-cpu ]; then
        echo "hs-cpu: gateway/nginx server CPU per handshake $(awk -v a="$gp" -v b="$np" 'BEGIN{printf "%.2f", a/b}')"
        continue
      fi
      echo "c=$c $k: gateway/nginx req/s $(awk -v a="$g" -v b="$n" 'BEGIN{printf "%.2f", a/b}'), p99 $(awk -v a="$gp" -v b="$np" 'BEGIN{printf "%.2f", a/b}')"
    done
    for t in gateway nginx; do
      ka=$(echo ${RPS[$t,keepalive,$c]} | tr ' ' '\n' | median); pl=$(echo ${RPS[$t,plain,$c]} | tr ' ' '\n' | median)
      echo "c=$c $t: https/http keep-alive req/s $(awk -v a="$ka" -v b="$pl" 'BEGIN{printf "%.2f", a/b}')"
    done
  done
} | tee bench/results/tls.txt
