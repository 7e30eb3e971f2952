#!/usr/bin/env bash
# `bonenfant serve` with full inspection on against nginx `proxy_pass`, same upstream,
# same machine, one run (`docs/performance.md`, "Targets"): throughput ≥ nginx's,
# added p50 latency on one connection ≤ nginx's, p99 at 1,000 req/s under 1 ms.
#
#   bench/cas-vs-nginx.sh [DURATION] [CONNECTIONS]      (defaults: 10s, 50)
#
# Run it where nothing else is busy: the machine is the instrument. It prints the load
# average around every run; results are only comparable within one run.
#
# The workload is the back channel, the one request bonenfant inspects:
# `GET /cas/serviceValidate?service=…&ticket=ST-…`, every request with its own ticket
# (bonenfant refuses a replayed ticket itself without asking the ENT), built by a wrk Lua
# script as ST-<run>-<thread>-<counter>. The same script drives every target.
#
# Started on 127.0.0.1, stopped on exit:
#   :18090  the ENT: nginx serving tests/fixtures/cas/xml/ose-parent.xml (2,478 bytes, a
#           parent's serviceValidate success with a FrEduVecteur) for any query
#   :18091  nginx proxy_pass to :18090 (one worker per core, upstream keepalive)
#   :18092  `bonenfant serve` to :18090 with --trace-log on a file and an establishment
#           pattern: every answer is parsed strictly, judged (verdict), and logged as one
#           JSON line; the answer goes back verbatim (the default)
#
# Measures, per target: requests/s with CONNECTIONS connections; p50 on one connection
# (added latency = p50 − the ENT's own p50); a paced run at about 1,000 req/s (wrk has no
# fixed-rate mode and wrk2 is not in Debian: 10 connections each wait 10 ms before every
# request, so the rate is 10 × 1000 / (10 ms + latency) ≈ 990 req/s; latency is timed
# from the send, and a stall shorter than the 10 ms pacing delays no request, so
# coordinated omission only hides stalls longer than that); CPU time per request of the
# proxy's own processes (from /proc, steadier than throughput on a shared machine).
# A diagnostic row, bonenfant-fwd, sends the same requests and gets the same answer
# through the same bonenfant under a path that names no CAS endpoint: forwarded and
# streamed back, not inspected; the difference is what inspection costs.
# Another, bonenfant-notrace, is a second `bonenfant serve` (:18093) inspecting the same
# way without --trace-log: the difference is what writing the trace line costs.
# Then it checks that bonenfant inspected: its trace holds one `"event":"validate"` line
# per request it served, none with an error.
#
# Environment: BONENFANT_BIN (default target/release/bonenfant, built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10s}
connections=${2:-50}
threads=2
fixture=tests/fixtures/cas/xml/ose-parent.xml

need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
if ((${#need[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

bin=${BONENFANT_BIN:-target/release/bonenfant}
[ -x "$bin" ] || cargo build --release --bin bonenfant
[ -x "$bin" ] || { echo "no bonenfant binary at $bin" >&2; exit 1; }

work=$(mktemp -d)
chmod 755 "$work" # nginx workers read the answer file as an unprivileged user
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for conf in ent proxy; do
        [ -f "$work/$conf.pid" ] && kill "$(cat "$work/$conf.pid")" 2>/dev/null || true
    done
    sleep 0.3
    rm -rf "$work"
}
trap cleanup EXIT

# --- the ENT: a static answer for any query ---
mkdir -p "$work/www/cas"
mkdir -p "$work/www/static"
cp "$fixture" "$work/www/cas/serviceValidate"
cp "$fixture" "$work/www/static/answer.xml"
cat >"$work/ent.conf" <<CONF
worker_processes auto;
pid $work/ent.pid;
error_log $work/ent-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    open_file_cache max=16;
    keepalive_requests 100000000;
    server {
        listen 127.0.0.1:18090;
        root $work/www;
        default_type "text/xml; charset=UTF-8";
    }
}
CONF

# --- nginx as the proxy ---
cat >"$work/proxy.conf" <<CONF
worker_processes auto;
pid $work/proxy.pid;
error_log $work/proxy-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000000;
    upstream ent { server 127.0.0.1:18090; keepalive 256; keepalive_requests 100000000; }
    server {
        listen 127.0.0.1:18091;
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

"$nginx_bin" -c "$work/ent.conf" -e "$work/ent-error.log"
"$nginx_bin" -c "$work/proxy.conf" -e "$work/proxy-error.log"
trace=$work/trace.jsonl
"$bin" serve --listen 127.0.0.1:18092 --upstream http://127.0.0.1:18090 \
    --trace-log "$trace" \
    --establishment-pattern '(?i)^https?://(?:[^/?#]*/)?(?P<uai>\d{7}[a-z])[./]' \
    2>"$work/bonenfant.stderr" &
bon_pid=$!
pids+=("$bon_pid")
# The same without --trace-log (diagnostic: what the trace line costs).
"$bin" serve --listen 127.0.0.1:18093 --upstream http://127.0.0.1:18090 \
    --establishment-pattern '(?i)^https?://(?:[^/?#]*/)?(?P<uai>\d{7}[a-z])[./]' \
    2>"$work/bonenfant-notrace.stderr" &
notrace_pid=$!
pids+=("$notrace_pid")
sleep 1
kill -0 "$bon_pid" || { cat "$work/bonenfant.stderr" >&2; exit 1; }
kill -0 "$notrace_pid" || { cat "$work/bonenfant-notrace.stderr" >&2; exit 1; }

# --- the client: one new ticket per request ---
cat >"$work/validate.lua" <<'LUA'
-- ST-<run>-<thread>-<counter>: unique across threads, runs and targets.
local service = "https%3A%2F%2F0330012a.index-education.net%2Fpronote%2F"
local made = 0
function setup(thread)
    made = made + 1
    thread:set("tid", made)
end
function init(args)
    counter = 0
    prefix = (os.getenv("CAS_PATH") or "/cas/serviceValidate") .. "?service=" .. service .. "&ticket=ST-" .. args[1] .. "-" .. tid .. "-"
end
function request()
    counter = counter + 1
    return wrk.format(nil, prefix .. counter)
end
-- CAS_PACE_MS: wait this long before every request (read where wrk decides whether
-- the script paces, so it applies to every thread).
local pace = tonumber(os.getenv("CAS_PACE_MS") or "")
if pace then
    function delay() return pace end
end
function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        "CAS requests=%d seconds=%.3f p50=%d p90=%d p99=%d p999=%d max=%d non2xx=%d errors=%d\n",
        summary.requests, summary.duration / 1e6,
        latency:percentile(50), latency:percentile(90), latency:percentile(99),
        latency:percentile(99.9), latency.max, e.status,
        e.connect + e.read + e.write + e.timeout))
end
LUA

# CPU ticks (user + system) of the given processes.
ticks() { for p in "$@"; do awk '{print $14 + $15}' "/proc/$p/stat"; done | awk '{s += $1} END {print s + 0}'; }
proxy_workers=$(pgrep -P "$(cat "$work/proxy.pid")" | tr '\n' ' ')
hz=$(getconf CLK_TCK)
validations() { grep -c '"event":"validate"' "$trace" || true; }

run_id=0
# run NAME PORT CONNECTIONS THREADS [PACE_MS] → prints one result line, and the raw wrk output to stderr
run() {
    local name=$1 port=$2 conns=$3 thr=$4 pace=${5:-} path=/cas/serviceValidate
    if [ "$name" = bonenfant-fwd ]; then path=/static/answer.xml; fi
    local cpu_pids=() before_cpu before_val out
    case $name in
        nginx) read -ra cpu_pids <<<"$proxy_workers" ;;
        bonenfant-notrace) cpu_pids=("$notrace_pid") ;;
        bonenfant*) cpu_pids=("$bon_pid") ;;
    esac
    run_id=$((run_id + 1))
    before_cpu=$(ticks "${cpu_pids[@]}")
    before_val=$(validations)
    local load_before
    load_before=$(cut -d' ' -f1 /proc/loadavg)
    out=$(CAS_PACE_MS=$pace CAS_PATH=$path wrk -t"$thr" -c"$conns" -d"$duration" --latency \
        -s "$work/validate.lua" "http://127.0.0.1:$port" -- "$run_id")
    sleep 0.2
    local cpu=$(($(ticks "${cpu_pids[@]}") - before_cpu))
    local served=$(($(validations) - before_val))
    printf '### %s c=%s t=%s pace=%s\n%s\n' "$name" "$conns" "$thr" "${pace:-none}" "$out" >&2
    awk -v name="$name" -v conns="$conns" -v cpu="$cpu" -v hz="$hz" -v served="$served" \
        -v load="$load_before/$(cut -d' ' -f1 /proc/loadavg)" '
        /^CAS / { for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] } }
        END {
            rps = f["requests"] / f["seconds"]
            cpu_us = (name == "ent") ? "-" : sprintf("%.1f", cpu / hz * 1e6 / f["requests"])
            trace = (name == "bonenfant") ? served : "-"
            printf "%-17s %5s %10.0f %7d %7d %7d %7d %7d %9s %8d %6s %9s %s\n", name, conns, rps,
                f["p50"], f["p90"], f["p99"], f["p999"], f["max"], cpu_us,
                f["requests"], f["non2xx"] + f["errors"], trace, load
        }' <<<"$out"
}

header() {
    printf '%-17s %5s %10s %7s %7s %7s %7s %7s %9s %8s %6s %9s %s\n' target conns 'req/s' \
        'p50µs' 'p90µs' 'p99µs' 'p99.9µs' 'maxµs' 'cpuµs/req' requests errors validates \
        'load 1m before/after'
}

# Warm the pools and check the answer once through each target.
for port in 18090 18091 18092 18093; do
    body=$(curl -sS "http://127.0.0.1:$port/cas/serviceValidate?service=https%3A%2F%2F0330012a.index-education.net%2Fpronote%2F&ticket=ST-warm-$port")
    grep -q '<cas:authenticationSuccess>' <<<"$body" ||
        { echo "no CAS success through :$port: $body" >&2; exit 1; }
done

echo "date: $(date -u +%FT%TZ)  cpus: $(nproc)  duration: $duration  connections: $connections  bonenfant: $bin"
echo "kernel: $(uname -r)  $("$nginx_bin" -v 2>&1)  $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)  bonenfant: $("$bin" --version)"
lscpu | head -15 | sed 's/^/lscpu: /'
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
results=$work/results
{
    echo "# throughput, $connections connections, $threads wrk threads"
    header
    run ent 18090 "$connections" "$threads"
    run nginx 18091 "$connections" "$threads"
    run bonenfant 18092 "$connections" "$threads"
    run bonenfant-fwd 18092 "$connections" "$threads"
    run bonenfant-notrace 18093 "$connections" "$threads"
    echo "# one connection (p50 = latency per request, no queueing)"
    header
    run ent 18090 1 1
    run nginx 18091 1 1
    run bonenfant 18092 1 1
    echo "# paced: 10 connections, 10 ms before each request (≈ 990 req/s)"
    header
    run ent 18090 10 2 10
    run nginx 18091 10 2 10
    run bonenfant 18092 10 2 10
} 2>"$work/wrk.raw" | tee "$results"

awk '
    /^# / { section = $2 }
    section == "throughput," && $1 != "target" { rps[$1] = $3; cpu[$1] = $9 }
    section == "one" && $1 != "target" { p50[$1] = $4 }
    section == "paced:" && $1 != "target" { p99[$1] = $6; rate[$1] = $3 }
    END {
        printf "throughput bonenfant/nginx: %.2f (target >= 1); nginx/ent %.2f, bonenfant/ent %.2f\n",
            rps["bonenfant"] / rps["nginx"], rps["nginx"] / rps["ent"], rps["bonenfant"] / rps["ent"]
        printf "CPU per request: bonenfant %s us, nginx %s us (%.2fx); bonenfant forwarding only %s us\n",
            cpu["bonenfant"], cpu["nginx"], cpu["bonenfant"] / cpu["nginx"], cpu["bonenfant-fwd"]
        printf "without --trace-log: bonenfant %.0f req/s (%.2fx nginx), %s us CPU per request\n",
            rps["bonenfant-notrace"], rps["bonenfant-notrace"] / rps["nginx"], cpu["bonenfant-notrace"]
        printf "added p50 latency (c=1): bonenfant %d us, nginx %d us (target bonenfant <= nginx)\n",
            p50["bonenfant"] - p50["ent"], p50["nginx"] - p50["ent"]
        printf "p99 paced at %.0f req/s: bonenfant %d us, nginx %d us, ent %d us (target < 1000 us)\n",
            rate["bonenfant"], p99["bonenfant"], p99["nginx"], p99["ent"]
    }' "$results"

# Did bonenfant inspect every request it served? (3 warm-up checks went through too.)
total=$(validations)
errors=$(grep '"event":"validate"' "$trace" | grep -c '"error":"' || true)
echo "trace: $total validate events (the warm-up check included), $errors with an error; $(grep -c . "$trace") lines in all"
grep '"event":"validate"' "$trace" | tail -1 | sed 's/^/last validate event: /'
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "${CAS_VS_NGINX_RAW:-}" ]; then cp "$work/wrk.raw" "$CAS_VS_NGINX_RAW"; fi
