#!/usr/bin/env bash
# Interop test (issue 6): real CAS clients — Apache mod_auth_cas and python-cas — logging
# parents in through bonenfant in front of the sim ENT, all on 127.0.0.1.
#
#   browser (requests) ─▶ Apache + mod_auth_cas (http, one vhost per wiring) ─┐
#        │                python-cas service (http)                           │ validation
#        └──▶ bonenfant (https, test CA; observe / pin retry) ◀────────────────┘ over https
#                  └──▶ sim ENT (http, random pick = the wrong-child bug)
#                         └──▶ single-logout POSTs straight to the services
#
# Installs what it needs when missing (Debian apache2 + libapache2-mod-auth-cas, python-cas
# in a virtualenv under target/interop/), runs Apache with its own config and ServerRoot in
# a temp dir, prints one PASS/FAIL line per check, kills everything it started on exit, and
# exits non-zero when a check failed. Run it alone: `bash tests/interop/run.sh`.
# Environment: INTEROP_RETRY_LOGINS (default 100), INTEROP_KEEP=1 keeps the temp dir.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
HERE=$ROOT/tests/interop
VENV=$ROOT/target/interop/venv
BIN=$ROOT/target/debug/bonenfant
MODULES=/usr/lib/apache2/modules
APACHE=/usr/sbin/apache2
RETRY_LOGINS=${INTEROP_RETRY_LOGINS:-100}
SECONDS=0

say() { printf '== %s (%ss)\n' "$*" "$SECONDS"; }
fail_setup() { printf 'FAIL setup: %s\n' "$*"; exit 1; }

# --- install what is missing -------------------------------------------------------------
need=()
[[ -x $APACHE ]] || need+=(apache2)
[[ -f $MODULES/mod_auth_cas.so ]] || need+=(libapache2-mod-auth-cas)
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
command -v openssl >/dev/null || need+=(openssl)
if ((${#need[@]})); then
    say "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! "$VENV/bin/python" -c 'import cas, requests' 2>/dev/null; then
    say "installing python-cas into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$HERE/requirements.txt"
fi
say "building bonenfant (debug)"
cargo build -q --bin bonenfant

# --- a temp dir, and everything we start is killed on exit --------------------------------
WORK=$(mktemp -d /tmp/bonenfant-interop.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
    local status=$?
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ $status -eq 0 && -z ${INTEROP_KEEP:-} ]]; then
        rm -rf "$WORK"
    else
        echo "logs and configuration kept in $WORK"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Free ports: bind port 0, note the port, close (nothing else races us on a test machine).
read -r PORT_ENT PORT_OBSERVE PORT_PIN PORT_FRONT PORT_DIRECT PORT_SV PORT_SAML PORT_RETRY PORT_PYCAS < <(
    python3 - <<'EOF'
import socket
sockets = [socket.socket() for _ in range(9)]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in sockets))
EOF
)

wait_port() {
    local port=$1 name=$2 pid=$3
    for _ in $(seq 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        kill -0 "$pid" 2>/dev/null || fail_setup "$name exited: $(tail -n 5 "$WORK/$name.stderr" 2>/dev/null)"
        sleep 0.1
    done
    fail_setup "$name is not listening on $port"
}

# --- test CA and bonenfant's certificate (CN and SAN 127.0.0.1: mod_auth_cas checks the CN)
say "test CA and certificate"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=bonenfant interop test CA" -keyout "$WORK/ca.key" -out "$WORK/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/CN=127.0.0.1" -keyout "$WORK/server.key" -out "$WORK/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' >"$WORK/server.ext"
openssl x509 -req -in "$WORK/server.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -CAcreateserial \
    -days 2 -extfile "$WORK/server.ext" -out "$WORK/server.pem" 2>/dev/null
chmod 644 "$WORK/server.key" "$WORK/ca.pem" "$WORK/server.pem"

# --- the sim ENT and bonenfant ------------------------------------------------------------
say "starting the sim ENT and bonenfant (observe, retry)"
"$BIN" sim directory --out "$WORK/directory.toml" --families 40 --establishments 3 --seed 6 2>/dev/null
PATTERN='(?i)^https?://(?:[^/?#]*/)?(?P<uai>\d{7}[a-z])[./]'
"$BIN" sim ent --listen "127.0.0.1:$PORT_ENT" --directory "$WORK/directory.toml" \
    --pick random --dialect ose --seed 11 >"$WORK/ent.stdout" 2>"$WORK/ent.stderr" &
PIDS+=($!)
wait_port "$PORT_ENT" ent "$!"
start_bonenfant() {
    local name=$1 port=$2 pin=$3
    "$BIN" serve --listen "127.0.0.1:$port" --upstream "http://127.0.0.1:$PORT_ENT/cas" \
        --tls-cert "$WORK/server.pem" --tls-key "$WORK/server.key" \
        --pin "$pin" --retry-max 20 --establishment-pattern "$PATTERN" \
        --trace-log "$WORK/$name.trace.jsonl" >"$WORK/$name.stdout" 2>"$WORK/$name.stderr" &
    PIDS+=($!)
    wait_port "$port" "$name" "$!"
}
start_bonenfant bonenfant-observe "$PORT_OBSERVE" observe
start_bonenfant bonenfant-retry "$PORT_PIN" retry

# --- Apache + mod_auth_cas ----------------------------------------------------------------
say "starting Apache + mod_auth_cas"
mkdir -p "$WORK/apache/cas-sessions" "$WORK/cgi"
cp "$HERE/whoami.cgi" "$WORK/cgi/whoami.cgi"
chmod 755 "$WORK/cgi/whoami.cgi" "$WORK/apache"
USER_LINE=""
if [[ $EUID -eq 0 ]]; then
    # Apache refuses to serve as root; its workers run as www-data (created by apache2).
    USER_LINE=$'User www-data\nGroup www-data'
    chown www-data: "$WORK/apache/cas-sessions"
fi
sed -e "s|@WORK@|$WORK|g" -e "s|@MODULES@|$MODULES|g" -e "s|@CA@|$WORK/ca.pem|g" \
    -e "s|@CERT@|$WORK/server.pem|g" -e "s|@KEY@|$WORK/server.key|g" \
    -e "s|@PORT_ENT@|$PORT_ENT|g" -e "s|@PORT_OBSERVE@|$PORT_OBSERVE|g" -e "s|@PORT_PIN@|$PORT_PIN|g" \
    -e "s|@PORT_FRONT@|$PORT_FRONT|g" -e "s|@PORT_DIRECT@|$PORT_DIRECT|g" -e "s|@PORT_SV@|$PORT_SV|g" \
    -e "s|@PORT_SAML@|$PORT_SAML|g" -e "s|@PORT_RETRY@|$PORT_RETRY|g" \
    "$HERE/apache.conf.in" | awk -v user="$USER_LINE" '$0 == "@USER@" { print user; next } { print }' \
    >"$WORK/apache/httpd.conf"
"$APACHE" -f "$WORK/apache/httpd.conf" -t >"$WORK/apache.configtest" 2>&1 \
    || fail_setup "Apache rejects its configuration: $(cat "$WORK/apache.configtest")"
# Its own session: Apache signals its whole process group when it stops.
setsid "$APACHE" -f "$WORK/apache/httpd.conf" -DFOREGROUND >"$WORK/apache.stdout" 2>"$WORK/apache.stderr" &
PIDS+=($!)
for port in "$PORT_FRONT" "$PORT_DIRECT" "$PORT_SV" "$PORT_SAML" "$PORT_RETRY"; do
    wait_port "$port" apache "$!"
done

cat >"$WORK/env.json" <<EOF
{
  "directory": "$WORK/directory.toml",
  "ca": "$WORK/ca.pem",
  "ports": {"ent": $PORT_ENT, "observe": $PORT_OBSERVE, "retry_proxy": $PORT_PIN,
            "front": $PORT_FRONT, "direct": $PORT_DIRECT, "sv": $PORT_SV, "saml": $PORT_SAML,
            "retry": $PORT_RETRY, "pycas": $PORT_PYCAS},
  "traces": {"observe": "$WORK/bonenfant-observe.trace.jsonl", "retry": "$WORK/bonenfant-retry.trace.jsonl"}
}
EOF

# --- the checks ---------------------------------------------------------------------------
say "checks"
status=0
"$VENV/bin/python" "$HERE/interop.py" "$WORK/env.json" --retry-logins "$RETRY_LOGINS" \
    | tee "$WORK/checks.log" || status=1

# No ticket, SSO cookie value or password in what our processes wrote (Apache's own
# access log is not ours: mod_auth_cas puts the ticket in the URL it logs).
say "logs"
ours=("$WORK"/bonenfant-*.trace.jsonl "$WORK"/bonenfant-*.stderr "$WORK"/bonenfant-*.stdout \
      "$WORK"/ent.stderr "$WORK"/ent.stdout "$WORK/checks.log")
leaks=$(grep -l -E '\b(ST|PT|PGT|PGTIOU|TGT|TGC)-[A-Za-z0-9]{8,}' "${ours[@]}" 2>/dev/null || true)
if [[ -z $leaks ]]; then
    echo "PASS no ticket in bonenfant's trace logs and stderr, the sim ENT's output or the check log"
else
    echo "FAIL tickets found in: $leaks"
    status=1
fi
for trace in "$WORK"/bonenfant-*.trace.jsonl; do
    if [[ -s $trace ]] && python3 -c '
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    json.loads(line)
' "$trace"; then
        echo "PASS $(basename "$trace") is JSON lines ($(wc -l <"$trace") events)"
    else
        echo "FAIL $(basename "$trace") is missing or not JSON lines"
        status=1
    fi
done

say "done"
exit "$status"
