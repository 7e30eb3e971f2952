#!/usr/bin/env bash
# bonenfant's transparent proxy against nginx `proxy_pass`, same upstream, same machine,
# one run (`docs/performance.md`, "Targets": throughput ≥ nginx, p50 added latency
# ≤ nginx's).
#
#   bench/vs-nginx.sh [DURATION] [CONNECTIONS]      (defaults: 10s, 50)
#
# Run it where nothing else is busy: the machine is the instrument.
#
# Installs nginx and wrk with apt-get when missing. Starts on 127.0.0.1: the common
# upstream (:18080), nginx (:18081, one worker per core, upstream keepalive), bonenfant
# with one single-threaded worker per core (:18082, `proxy::run_workers`) and on one
# multi-threaded runtime (:18083, `bonenfant-mt`, `proxy::run_passthrough`); runs wrk against the upstream directly (the ceiling), nginx and bonenfant,
# then a one-connection run for added latency, and prints the ratios. Everything it
# starts is stopped on exit. Results are only comparable within one run.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10s}
connections=${2:-50}
threads=2

need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
if ((${#need[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

# BONENFANT_BENCH_BIN: an already built `proxy_passthrough` bench binary (skips the build).
bin=${BONENFANT_BENCH_BIN:-}
if [ -z "$bin" ]; then
    bin=$(cargo bench --bench proxy_passthrough --no-run --message-format=json-render-diagnostics |
        sed -n 's/.*"executable":"\([^"]*proxy_passthrough[^"]*\)".*/\1/p' | tail -1) || true
fi
[ -x "$bin" ] || { echo "the proxy_passthrough bench did not build" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/nginx.conf" <<CONF
worker_processes auto;
pid $work/nginx.pid;
error_log $work/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    upstream ent { server 127.0.0.1:18080; keepalive 256; }
    server {
        listen 127.0.0.1:18081;
        location / {
            proxy_pass http://ent;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$remote_addr;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$host;
        }
    }
}
CONF

"$bin" upstream 127.0.0.1:18080 & pids+=($!)
"$bin" proxy 127.0.0.1:18082 http://127.0.0.1:18080/ "$(nproc)" & pids+=($!)
"$bin" proxy 127.0.0.1:18083 http://127.0.0.1:18080/ & pids+=($!)
"$nginx_bin" -c "$work/nginx.conf" -e "$work/error.log"
sleep 1

url_path="/cas/login?service=https%3A%2F%2F0330001a.index-education.net%2Fpronote%2F"
run() { # name port connections threads → prints "rps p50_us"
    local out
    out=$(wrk -t"$4" -c"$3" -d"$duration" --latency "http://127.0.0.1:$2$url_path")
    local rps p50
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); print v} else if (v ~ /ms$/) {sub(/ms/,"",v); print v*1000} else {sub(/s/,"",v); print v*1000000}}' <<<"$out")
    echo "$rps $p50"
}

echo "date: $(date -u +%FT%TZ)  cpus: $(nproc)  duration: $duration  connections: $connections"
read -r direct_rps _ < <(run direct 18080 "$connections" "$threads")
read -r nginx_rps _ < <(run nginx 18081 "$connections" "$threads")
read -r bon_rps _ < <(run bonenfant 18082 "$connections" "$threads")
read -r mt_rps _ < <(run bonenfant-mt 18083 "$connections" "$threads")
read -r _ direct_p50 < <(run direct 18080 1 1)
read -r _ nginx_p50 < <(run nginx 18081 1 1)
read -r _ bon_p50 < <(run bonenfant 18082 1 1)
read -r _ mt_p50 < <(run bonenfant-mt 18083 1 1)

printf '%-12s %12s %16s\n' "" "req/s (c=$connections)" "p50 µs (c=1)"
printf '%-12s %12s %16s\n' direct "$direct_rps" "$direct_p50"
printf '%-12s %12s %16s\n' nginx "$nginx_rps" "$nginx_p50"
printf '%-12s %12s %16s\n' bonenfant "$bon_rps" "$bon_p50"
printf '%-12s %12s %16s\n' bonenfant-mt "$mt_rps" "$mt_p50"
awk -v b="$bon_rps" -v n="$nginx_rps" -v bp="$bon_p50" -v np="$nginx_p50" -v dp="$direct_p50" 'BEGIN {
    printf "throughput bonenfant/nginx: %.2f (target >= 1)\n", b / n
    printf "added p50 latency: bonenfant %.0f us, nginx %.0f us (target bonenfant <= nginx)\n", bp - dp, np - dp
}'
