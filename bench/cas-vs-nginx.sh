#!/usr/bin/env bash
# `bonenfant serve` with full inspection on against nginx `proxy_pass` and a bare hyper
# proxy, same upstream, same machine, one run (`docs/performance.md`, "Targets"):
# throughput ≥ nginx's, added p50 latency on one connection ≤ nginx's, p99 at 1,000
# req/s under 1 ms.
#
#   bench/cas-vs-nginx.sh [DURATION] [CONNECTIONS]   interleaved rounds (defaults 10s, 50)
#   bench/cas-vs-nginx.sh --smoke                     1 s per run, one round: checks that
#                                                     it works (CI), measures nothing
#   bench/cas-vs-nginx.sh --instructions [DURATION]   instructions and allocations per
#                                                     request under callgrind (default 10s)
#
# Environment: ROUNDS (throughput rounds, default 3); LATENCY_ROUNDS (rounds of the
# latency runs, default ROUNDS); BENCH_PROFILE (cargo profile the
# binaries are built with: release by default, dev for --smoke; bench-fast for quick
# iterations); BONENFANT_BIN and BARE_HYPER_BIN (binaries already built: no build);
# BONENFANT_BASELINE (another bonenfant binary, e.g. the build before a change: adds
# rows baseline and baseline-fwd, run like bonenfant and bonenfant-fwd in every round
# and in the latency runs, on :18095 with its own trace); RUNTIME_SHAPES=1 (adds rows
# bare-reuseport and bare-multi: the bare proxy with one SO_REUSEPORT socket per
# worker, and on one multi-thread runtime, on :18096 and :18097); CAS_VS_NGINX_RAW (a
# file to keep wrk's raw output in).
#
# Run it where nothing else is busy: the machine is the instrument. It prints the load
# average around every run; results are only comparable within one run. Installs what
# it needs with apt-get (nginx-light, wrk, curl; valgrind for --instructions).
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
#   :18093  the same without --trace-log (row bonenfant-notrace: what the trace costs)
#   :18094  benches/bare_hyper_proxy.rs: hyper alone, bonenfant's runtime shape (the floor)
#   :18096, :18097  (RUNTIME_SHAPES=1) the same with one SO_REUSEPORT socket per worker,
#           and on one multi-thread runtime
#
# Throughput: ROUNDS rounds, each running every target once with CONNECTIONS
# connections, in an order that rotates from round to round; per target the median
# req/s, CPU time and context switches per request of the proxy's own processes (from
# /proc, steadier than throughput on a shared machine), and the median of each round's
# ratio to nginx.
# Row bonenfant-fwd sends the same requests through the same bonenfant under a path
# that names no CAS endpoint: forwarded and streamed back, not inspected.
# Latency, in LATENCY_ROUNDS interleaved rounds (one 10 s run of each is as much the
# machine's noise as the proxy's; the summary gives medians over the rounds): p50 on one
# connection (added latency = p50 − the ENT's own p50 in the same round); a paced run at about 1,000 req/s (wrk has no fixed-rate mode and wrk2 is not in
# Debian: 10 connections each wait 10 ms before every request, so the rate is
# 10 × 1000 / (10 ms + latency) ≈ 990 req/s; a stall shorter than the 10 ms pacing
# delays no request, so coordinated omission only hides stalls longer than that).
# Then it checks that bonenfant inspected: its trace holds one `"event":"validate"` line
# per request it served, none with an error.
#
# --instructions runs nginx (one process), the bare proxy and bonenfant (one worker
# each) under valgrind's callgrind, zeroes the counters after a warm-up, drives two
# connections for DURATION, and divides the user-space instructions and the calls to
# malloc by the requests served (the kernel's share is not counted; system calls per
# request are the same for all three, `docs/performance.md`). Callgrind files are kept
# in target/callgrind/ for callgrind_annotate.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=throughput
case ${1:-} in
    --smoke) mode=smoke && shift ;;
    --instructions) mode=instructions && shift ;;
esac
duration=${1:-10s}
connections=${2:-50}
rounds=${ROUNDS:-3}
latency_rounds=${LATENCY_ROUNDS:-$rounds}
profile=${BENCH_PROFILE:-release}
if [ "$mode" = smoke ]; then
    duration=1s rounds=1 latency_rounds=1 profile=${BENCH_PROFILE:-dev}
fi
threads=2
fixture=tests/fixtures/cas/xml/ose-parent.xml

need=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
command -v curl >/dev/null || need+=(curl)
if [ "$mode" = instructions ]; then command -v valgrind >/dev/null || need+=(valgrind); fi
if ((${#need[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

bin=${BONENFANT_BIN:-}
bare_bin=${BARE_HYPER_BIN:-}
if [ -z "$bin" ] || [ -z "$bare_bin" ]; then
    built=$(cargo build --profile "$profile" --bin bonenfant --bench bare_hyper_proxy \
        --message-format=json-render-diagnostics | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p')
    bin=${bin:-$(grep '/bonenfant$' <<<"$built")}
    bare_bin=${bare_bin:-$(grep '/bare_hyper_proxy-[^/]*$' <<<"$built")}
fi
[ -x "$bin" ] || { echo "no bonenfant binary at '$bin'" >&2; exit 1; }
[ -x "$bare_bin" ] || { echo "no bare_hyper_proxy binary at '$bare_bin'" >&2; exit 1; }

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
mkdir -p "$work/www/cas" "$work/www/static"
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

# --- nginx as the proxy (PROCESS_MODEL: one worker per core, or one process) ---
proxy_conf() {
    cat <<CONF
$1
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
}

establishment='(?i)^https?://(?:[^/?#]*/)?(?P<uai>\d{7}[a-z])[./]'
trace=$work/trace.jsonl
baseline=${BONENFANT_BASELINE:-}
# start_bonenfant PORT [serve flags…], under the command prefix ${prefix[@]}, with the
# binary $use (default $bin): its PID in $started
start_bonenfant() {
    local port=$1 && shift
    "${prefix[@]}" "${use:-$bin}" serve --listen "127.0.0.1:$port" --upstream http://127.0.0.1:18090 \
        --establishment-pattern "$establishment" "$@" 2>"$work/bonenfant-$port.stderr" &
    started=$!
    pids+=("$started")
}

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

# Each run's tickets carry its number (counted here, not in the command substitutions
# that call wrk_run, whose variables do not outlive them).
run_id=0
next_run() { run_id=$((run_id + 1)); }
# wrk_run PORT CONNECTIONS THREADS PATH [PACE_MS] [DURATION]: wrk's output, with a CAS line
wrk_run() {
    CAS_PACE_MS=${5:-} CAS_PATH=$4 wrk -t"$3" -c"$2" -d"${6:-$duration}" --latency \
        -s "$work/validate.lua" "http://127.0.0.1:$1" -- "$run_id"
}

# Checks one validation's answer through PORT.
check_answer() {
    local body
    body=$(curl -sS "http://127.0.0.1:$1/cas/serviceValidate?service=https%3A%2F%2F0330012a.index-education.net%2Fpronote%2F&ticket=ST-warm-$1-$RANDOM")
    grep -q '<cas:authenticationSuccess>' <<<"$body" ||
        { echo "no CAS success through :$1: $body" >&2; exit 1; }
}

# Waits until something listens on PORT (valgrind takes a few seconds to start).
wait_port() {
    for _ in $(seq 200); do
        curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0
        sleep 0.1
    done
    echo "nothing listens on :$1" >&2
    exit 1
}

"$nginx_bin" -c "$work/ent.conf" -e "$work/ent-error.log"
wait_port 18090

echo "date: $(date -u +%FT%TZ)  mode: $mode  cpus: $(nproc)  duration: $duration  profile: $profile"
echo "kernel: $(uname -r)  $("$nginx_bin" -v 2>&1)  $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)  $("$bin" --version)  bonenfant: $bin"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

# ============================ --instructions ============================
if [ "$mode" = instructions ]; then
    out_dir=target/callgrind
    mkdir -p "$out_dir"
    # One worker each (valgrind runs one thread at a time anyway): nginx without its
    # master process, the bare proxy and bonenfant on one CPU (they start one worker
    # per CPU they may run on).
    proxy_conf 'worker_processes 1; master_process off; daemon off;' >"$work/proxy.conf"
    callgrind=(valgrind --tool=callgrind --dump-instr=no "--callgrind-out-file=$work/cg.%p")
    callgrind_one=(taskset -c 0 "${callgrind[@]}")
    "${callgrind[@]}" "$nginx_bin" -c "$work/proxy.conf" -e "$work/proxy-error.log" 2>"$work/vg-nginx.log" &
    nginx_pid=$! && pids+=("$nginx_pid")
    "${callgrind_one[@]}" "$bare_bin" 127.0.0.1:18094 127.0.0.1:18090 2>"$work/vg-bare.log" &
    bare_pid=$! && pids+=("$bare_pid")
    prefix=("${callgrind_one[@]}")
    start_bonenfant 18092 --trace-log "$trace"
    bon_pid=$started
    for port in 18091 18094 18092; do wait_port "$port"; check_answer "$port"; done

    # measure NAME PID PORT PATH: one line of figures for requests sent in a window
    measure() {
        local name=$1 pid=$2 port=$3 path=$4 out dump
        next_run && wrk_run "$port" 2 1 "$path" "" 2s >/dev/null # warm (valgrind translates code)
        callgrind_control -z "$pid" >/dev/null 2>&1
        next_run && out=$(wrk_run "$port" 2 1 "$path")
        callgrind_control --dump="$name" "$pid" >/dev/null 2>&1
        dump=$(ls -t "$work"/cg."$pid".* | head -1)
        cp "$dump" "$out_dir/$name.callgrind"
        # Instructions (the `summary:` line) and calls to the allocator (glibc's, or
        # mimalloc's aligned entry points that bonenfant's global allocator calls): `cfn=`
        # names the function called, `calls=` follows; a function is named `(id) name`
        # the first time, in an `fn=` or a `cfn=` line, and `(id)` after.
        awk -v name="$name" '
            /^CAS / { for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] } next }
            /^summary:/ { ir = $2 }
            /^c?fn=/ {
                id = $1; sub(/^c?fn=/, "", id)
                if (NF > 1) { fname[id] = $2 }
                if ($1 ~ /^cfn=/) callee = fname[id]
            }
            /^calls=/ {
                split($1, c, "=")
                if (callee ~ /^(malloc|calloc|realloc|mi_(malloc|zalloc|realloc)_aligned)$/) allocs += c[2]
            }
            END {
                printf "%-14s %8d %12.0f %10.1f %s\n", name, f["requests"], ir / f["requests"],
                    allocs / f["requests"], (f["non2xx"] + f["errors"]) ? "ERRORS" : ""
            }' <(echo "$out") "$dump"
    }
    echo "# user-space instructions and allocator calls per request (callgrind, 2 connections, $duration)"
    printf '%-14s %8s %12s %10s\n' target requests 'instr/req' 'allocs/req'
    measure nginx "$nginx_pid" 18091 /cas/serviceValidate
    measure bare-hyper "$bare_pid" 18094 /cas/serviceValidate
    measure bonenfant-fwd "$bon_pid" 18092 /static/answer.xml
    measure bonenfant "$bon_pid" 18092 /cas/serviceValidate
    echo "callgrind files: $out_dir/*.callgrind (callgrind_annotate --inclusive=yes FILE)"
    exit 0
fi

# ============================ throughput and latency ============================
proxy_conf 'worker_processes auto;' >"$work/proxy.conf"
"$nginx_bin" -c "$work/proxy.conf" -e "$work/proxy-error.log"
"$bare_bin" 127.0.0.1:18094 127.0.0.1:18090 2>"$work/bare.stderr" &
bare_pid=$! && pids+=("$bare_pid")
prefix=()
start_bonenfant 18092 --trace-log "$trace"
bon_pid=$started
start_bonenfant 18093
notrace_pid=$started
ports=(18091 18092 18093 18094)
targets=(ent nginx bare-hyper bonenfant-fwd bonenfant bonenfant-notrace)
if [ -n "${RUNTIME_SHAPES:-}" ]; then
    "$bare_bin" 127.0.0.1:18096 127.0.0.1:18090 auto reuseport 2>"$work/bare-reuseport.stderr" &
    reuseport_pid=$! && pids+=("$reuseport_pid")
    "$bare_bin" 127.0.0.1:18097 127.0.0.1:18090 auto multi 2>"$work/bare-multi.stderr" &
    multi_pid=$! && pids+=("$multi_pid")
    ports+=(18096 18097)
    targets+=(bare-reuseport bare-multi)
fi
if [ -n "$baseline" ]; then
    use=$baseline start_bonenfant 18095 --trace-log "$work/baseline.jsonl"
    baseline_pid=$started
    ports+=(18095)
    targets+=(baseline-fwd baseline)
fi
for port in "${ports[@]}"; do wait_port "$port"; check_answer "$port"; done

# CPU ticks (user + system) of the given processes.
ticks() { for p in "$@"; do awk '{print $14 + $15}' "/proc/$p/stat"; done | awk '{s += $1} END {print s + 0}'; }
# Context switches (voluntary and involuntary, all threads) of the given processes: a
# request that sleeps and wakes more often pays the scheduler more, in the kernel.
switches() {
    for p in "$@"; do cat /proc/"$p"/task/*/status 2>/dev/null; done |
        awk '/ctxt_switches/ {s += $2} END {print s + 0}'
}
proxy_workers=$(pgrep -P "$(cat "$work/proxy.pid")" | tr '\n' ' ')
hz=$(getconf CLK_TCK)
validations() { grep -c '"event":"validate"' "$trace" || true; }

# run ROUND NAME CONNECTIONS THREADS [PACE_MS] → one result line; wrk's output to stderr
run() {
    local round=$1 name=$2 conns=$3 thr=$4 pace=${5:-} path=/cas/serviceValidate port
    local cpu_pids=() before_cpu before_val out load_before
    case $name in
        ent) port=18090 ;;
        nginx) port=18091 && read -ra cpu_pids <<<"$proxy_workers" ;;
        bare-hyper) port=18094 && cpu_pids=("$bare_pid") ;;
        bare-reuseport) port=18096 && cpu_pids=("$reuseport_pid") ;;
        bare-multi) port=18097 && cpu_pids=("$multi_pid") ;;
        bonenfant-notrace) port=18093 && cpu_pids=("$notrace_pid") ;;
        bonenfant-fwd) port=18092 path=/static/answer.xml && cpu_pids=("$bon_pid") ;;
        bonenfant) port=18092 && cpu_pids=("$bon_pid") ;;
        baseline-fwd) port=18095 path=/static/answer.xml && cpu_pids=("$baseline_pid") ;;
        baseline) port=18095 && cpu_pids=("$baseline_pid") ;;
    esac
    before_cpu=$(ticks "${cpu_pids[@]}")
    local before_csw && before_csw=$(switches "${cpu_pids[@]}")
    before_val=$(validations)
    load_before=$(cut -d' ' -f1 /proc/loadavg)
    next_run && out=$(wrk_run "$port" "$conns" "$thr" "$path" "$pace")
    sleep 0.2
    local cpu=$(($(ticks "${cpu_pids[@]}") - before_cpu))
    local csw=$(($(switches "${cpu_pids[@]}") - before_csw))
    local served=$(($(validations) - before_val))
    printf '### %s round %s c=%s t=%s pace=%s\n%s\n' "$name" "$round" "$conns" "$thr" "${pace:-none}" "$out" >&2
    awk -v round="$round" -v name="$name" -v conns="$conns" -v cpu="$cpu" -v hz="$hz" \
        -v served="$served" -v csw="$csw" -v load="$load_before/$(cut -d' ' -f1 /proc/loadavg)" '
        /^CAS / { for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] } }
        END {
            rps = f["requests"] / f["seconds"]
            cpu_us = (name == "ent") ? "-" : sprintf("%.1f", cpu / hz * 1e6 / f["requests"])
            trace = (name == "bonenfant") ? served : "-"
            csw_req = (name == "ent") ? "-" : sprintf("%.2f", csw / f["requests"])
            printf "%5s %-17s %5s %10.0f %7d %7d %7d %7d %7d %9s %8d %6s %9s %7s %s\n", round, name,
                conns, rps, f["p50"], f["p90"], f["p99"], f["p999"], f["max"], cpu_us,
                f["requests"], f["non2xx"] + f["errors"], trace, csw_req, load
        }' <<<"$out"
}

header() {
    printf '%5s %-17s %5s %10s %7s %7s %7s %7s %7s %9s %8s %6s %9s %7s %s\n' round target conns \
        'req/s' 'p50µs' 'p90µs' 'p99µs' 'p99.9µs' 'maxµs' 'cpuµs/req' requests errors validates \
        'csw/req' 'load 1m before/after'
}

results=$work/results
{
    echo "# throughput, $connections connections, $threads wrk threads, $rounds interleaved rounds"
    header
    for ((r = 0; r < rounds; r++)); do
        for ((i = 0; i < ${#targets[@]}; i++)); do
            run "$((r + 1))" "${targets[(i + r) % ${#targets[@]}]}" "$connections" "$threads"
        done
    done
    latency_targets=(ent nginx bare-hyper bonenfant ${baseline:+baseline})
    echo "# one connection (p50 = latency per request, no queueing), $latency_rounds interleaved rounds"
    header
    for ((r = 0; r < latency_rounds; r++)); do
        for ((i = 0; i < ${#latency_targets[@]}; i++)); do
            run "$((r + 1))" "${latency_targets[(i + r) % ${#latency_targets[@]}]}" 1 1
        done
    done
    echo "# paced: 10 connections, 10 ms before each request (≈ 990 req/s), $latency_rounds interleaved rounds"
    header
    for ((r = 0; r < latency_rounds; r++)); do
        for ((i = 0; i < ${#latency_targets[@]}; i++)); do
            run "$((r + 1))" "${latency_targets[(i + r) % ${#latency_targets[@]}]}" 10 2 10
        done
    done
} 2>"$work/wrk.raw" | tee "$results"

awk -v targets="${targets[*]}" '
    function median(list,    n, v, i, j, t) {
        n = split(list, v, " ")
        for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j] + 0 < v[j - 1] + 0; j--) {
            t = v[j]; v[j] = v[j - 1]; v[j - 1] = t
        }
        return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    /^# / { section = $2; next }
    $1 == "round" { next }
    { errors += $12 }
    section == "throughput," {
        rps[$2] = rps[$2] " " $4; cpu[$2] = cpu[$2] " " $10; csw[$2] = csw[$2] " " $14
        at[$1, $2] = $4; rounds[$1] = 1
    }
    section == "one" { p50[$2] = p50[$2] " " $5; one[$1, $2] = $5 }
    section == "paced:" { p99[$2] = p99[$2] " " $7; rate[$2] = rate[$2] " " $4; paced[$1, $2] = $7 }
    END {
        print "# medians over the rounds; ratio = median of each round'"'"'s req/s over nginx'"'"'s"
        printf "%-17s %10s %9s %8s %13s\n", "target", "req/s", "cpuµs/req", "csw/req", "ratio/nginx"
        n = split(targets, names, " ")
        for (k = 1; k <= n; k++) {
            name = names[k]; ratios = ""
            for (r in rounds) ratios = ratios " " at[r, name] / at[r, "nginx"]
            printf "%-17s %10.0f %9s %8s %13.2f\n", name, median(rps[name]), \
                name == "ent" ? "-" : median(cpu[name]), name == "ent" ? "-" : median(csw[name]),
                median(ratios)
        }
        # Latency: medians over the latency rounds; added = the p50 of a round less
        # the p50 of the ENT alone in that round.
        for (key in one) {
            split(key, rn, SUBSEP)
            if (rn[2] != "ent") added[rn[2]] = added[rn[2]] " " one[key] - one[rn[1], "ent"]
        }
        for (key in paced) {
            split(key, rn, SUBSEP)
            if (rn[2] == "bonenfant") p99_ratio = p99_ratio " " paced[key] / paced[rn[1], "nginx"]
        }
        printf "added p50 latency (c=1, median of %d rounds): bonenfant %d us, nginx %d us, bare hyper %d us (target bonenfant <= nginx)\n",
            split(p50["ent"], tmp, " "), median(added["bonenfant"]), median(added["nginx"]), median(added["bare-hyper"])
        printf "p99 paced at %.0f req/s (median of %d rounds): bonenfant %d us, nginx %d us, bare hyper %d us, ent %d us (target < 1000 us); bonenfant/nginx %.2f\n",
            median(rate["bonenfant"]), split(p99["ent"], tmp, " "), median(p99["bonenfant"]),
            median(p99["nginx"]), median(p99["bare-hyper"]), median(p99["ent"]), median(p99_ratio)
        if (errors) { printf "%d requests failed\n", errors; exit 1 }
    }' "$results"

# Did bonenfant inspect every request it served? (the warm-up checks went through too)
total=$(validations)
errors=$(grep '"event":"validate"' "$trace" | grep -c '"error":"' || true)
echo "trace: $total validate events (the warm-up check included), $errors with an error; $(grep -c . "$trace") lines in all"
grep '"event":"validate"' "$trace" | tail -1 | sed 's/^/last validate event: /'
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "${CAS_VS_NGINX_RAW:-}" ]; then cp "$work/wrk.raw" "$CAS_VS_NGINX_RAW"; fi
if [ "$errors" -ne 0 ] || [ "$total" -le 1 ]; then
    echo "bonenfant did not inspect every validation" >&2
    exit 1
fi
