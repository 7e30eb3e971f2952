#!/usr/bin/env bash
# phpCAS interop check: a phpCAS service (Debian php-cas, the CAS client of GLPI, Moodle
# and many ENT-integrated PHP apps) logging parents in through bonenfant in front of the
# sim ENT, all on 127.0.0.1 (docs/interop.md, section "phpCAS").
#
#   browser (requests) ─▶ phpCAS service (php -S, http; CAS 3.0 and SAML 1.1) ─┐
#        │                                                                     │ validation
#        └──▶ bonenfant (https, test CA; --pin observe and --pin retry) ◀──────┘ over https
#                  └──▶ sim ENT (http, random pick = the wrong-child bug)
#                         └──▶ single-logout POSTs straight to the phpCAS service
#
# Installs php-cli, php-cas, php-curl and php-xml when missing (apt), and `requests` in a
# virtualenv when target/interop/venv (run.sh's) has none; builds target/debug/bonenfant;
# prints one PASS/FAIL line per check; stops everything it started on exit; exits
# non-zero when a check failed. Run it alone: `bash tests/interop/phpcas.sh`.
# Environment: PHPCAS_RETRY_LOGINS (default 30); INTEROP_KEEP=1 keeps the temp dir.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
HERE=$ROOT/tests/interop/phpcas
BIN=$ROOT/target/debug/bonenfant
RETRY_LOGINS=${PHPCAS_RETRY_LOGINS:-30}
# The simulators' service pattern: the UAI is the first path segment of the service URL.
PATTERN='(?i)^https?://(?:[^/?#]*/)?(?P<uai>\d{7}[a-z])[./]'
SECONDS=0

say() { printf '== phpcas: %s (%ss)\n' "$*" "$SECONDS"; }
fail_setup() {
    printf 'FAIL setup: %s\n' "$*"
    exit 1
}

# --- install what is missing -------------------------------------------------------------
need=()
command -v php >/dev/null || need+=(php-cli)
[[ -f /usr/share/php/CAS.php ]] || need+=(php-cas)
has_extension() { command -v php >/dev/null && php -r "exit(extension_loaded('$1') ? 0 : 1);"; }
has_extension curl || need+=(php-curl)
has_extension dom || need+=(php-xml)
command -v openssl >/dev/null || need+=(openssl)
command -v curl >/dev/null || need+=(curl)
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
if ((${#need[@]})); then
    say "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    mkdir -p "$ROOT/target/interop"
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"; } \
        >"$ROOT/target/interop/phpcas-apt.log" 2>&1 \
        || fail_setup "apt-get could not install ${need[*]}: $(tail -n 3 "$ROOT/target/interop/phpcas-apt.log")"
fi
php -r 'require "CAS.php"; exit(class_exists("phpCAS") ? 0 : 1);' 2>/dev/null \
    || fail_setup "php cannot load phpCAS (CAS.php from php-cas, in PHP's include_path /usr/share/php)"
has_extension curl || fail_setup "php has no curl extension (php-curl)"
has_extension dom || fail_setup "php has no DOM extension (php-xml)"

# The scripted browser: run.sh's venv when it has requests, else our own.
PYTHON=$ROOT/target/interop/venv/bin/python
if ! "$PYTHON" -c 'import requests' 2>/dev/null; then
    VENV=$ROOT/target/interop/phpcas-venv
    PYTHON=$VENV/bin/python
    if ! "$PYTHON" -c 'import requests' 2>/dev/null; then
        say "installing requests into $VENV"
        rm -rf "$VENV"
        mkdir -p "$ROOT/target/interop"
        python3 -m venv "$VENV" || fail_setup "python3 -m venv $VENV failed"
        "$VENV/bin/pip" install -q --disable-pip-version-check 'requests>=2.31,<3' \
            >"$ROOT/target/interop/phpcas-pip.log" 2>&1 \
            || fail_setup "pip could not install requests: $(tail -n 3 "$ROOT/target/interop/phpcas-pip.log")"
    fi
fi
say "building bonenfant (debug)"
cargo build -q --bin bonenfant || fail_setup "cargo build --bin bonenfant failed"

# --- a temp dir, and everything we start is stopped on exit ------------------------------
WORK=$(mktemp -d /tmp/bonenfant-phpcas.XXXXXX)
declare -A PIDS=() # name → pid

KEPT_LABEL="phpcas: "
# shellcheck source=tests/interop/lib.sh
source "$ROOT/tests/interop/lib.sh"

# Free ports (`free_ports`, lib.sh).
read -r PORT_ENT PORT_OBSERVE PORT_RETRY PORT_PHP < <(free_ports 4)

# `--upstream` is the ENT's root: bonenfant puts its path before the client's whole path
# (docs/interop.md, django-cas-server), so /cas/login reaches the sim ENT as /cas/login.
start_bonenfant() { # name port pin
    start "$1" "$BIN" serve --listen "127.0.0.1:$2" --upstream "http://127.0.0.1:$PORT_ENT" \
        --tls-cert "$WORK/server.pem" --tls-key "$WORK/server.key" \
        --pin "$3" --retry-max 20 --establishment-pattern "$PATTERN" \
        --trace-log "$WORK/$1.trace.jsonl"
    wait_port "$1" "$2"
}

# --- test CA and bonenfant's certificate (CN and SAN 127.0.0.1) ---------------------------
say "test CA and certificate"
test_ca "bonenfant phpCAS test CA"
# Another CA, which did not sign bonenfant's certificate: phpCAS must refuse it.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=bonenfant phpCAS other CA" -keyout "$WORK/other-ca.key" -out "$WORK/other-ca.pem" 2>/dev/null

# --- the sim ENT, bonenfant (observe, retry), the phpCAS service -------------------------
say "starting the sim ENT, bonenfant (observe, retry) and the phpCAS service"
"$BIN" sim directory --out "$WORK/directory.toml" --families 40 --establishments 3 --seed 6 2>/dev/null
start ent "$BIN" sim ent --listen "127.0.0.1:$PORT_ENT" --directory "$WORK/directory.toml" \
    --dialect ose --pick random --seed 71
wait_port ent "$PORT_ENT"
start_bonenfant bonenfant-observe "$PORT_OBSERVE" observe
start_bonenfant bonenfant-retry "$PORT_RETRY" retry

mkdir -p "$WORK/php-sessions"
cat >"$WORK/phpcas.json" <<EOF
{"self": "http://127.0.0.1:$PORT_PHP", "ca": "$WORK/ca.pem", "sessions": "$WORK/php-sessions",
 "slo_log": "$WORK/slo.log",
 "servers": {
   "direct": {"host": "127.0.0.1", "port": $PORT_ENT, "base_url": "http://127.0.0.1:$PORT_ENT/cas/"},
   "observe": {"host": "127.0.0.1", "port": $PORT_OBSERVE},
   "retry": {"host": "127.0.0.1", "port": $PORT_RETRY},
   "backchannel": {"host": "127.0.0.1", "port": $PORT_RETRY, "login_base_url": "http://127.0.0.1:$PORT_ENT/cas/"},
   "untrusted": {"host": "127.0.0.1", "port": $PORT_OBSERVE, "ca": "$WORK/other-ca.pem"}}}
EOF
# Debian's phpCAS warns (E_USER_DEPRECATED) at each request that it is not installed with
# composer: silenced.
start php env PHPCAS_INTEROP_CONFIG="$WORK/phpcas.json" \
    php -d display_errors=stderr -d 'error_reporting=E_ALL & ~E_DEPRECATED & ~E_USER_DEPRECATED' \
    -S "127.0.0.1:$PORT_PHP" "$HERE/service.php"
wait_port php "$PORT_PHP"
versions=$(curl -fsS "http://127.0.0.1:$PORT_PHP/healthz" 2>/dev/null || true)
[[ $versions == *phpcas* ]] || fail_setup "the phpCAS service does not answer: $(tail -n 5 "$WORK/php.stderr")"

"$PYTHON" - "$WORK" "$PORT_PHP" "$PORT_ENT" "$PORT_OBSERVE" "$PORT_RETRY" "$versions" >"$WORK/env.json" <<'EOF'
import json, sys
work, php, ent, observe, retry, versions = sys.argv[1:]
versions = json.loads(versions)
print(json.dumps({
    "directory": f"{work}/directory.toml", "ca": f"{work}/ca.pem", "slo_log": f"{work}/slo.log",
    "service": f"http://127.0.0.1:{php}", "ent": f"http://127.0.0.1:{ent}/cas",
    "bonenfant": {"observe": f"https://127.0.0.1:{observe}/cas", "retry": f"https://127.0.0.1:{retry}/cas"},
    "traces": {"observe": f"{work}/bonenfant-observe.trace.jsonl", "retry": f"{work}/bonenfant-retry.trace.jsonl"},
    "phpcas_version": versions["phpcas"], "php_version": versions["php"],
}))
EOF

# --- the checks ---------------------------------------------------------------------------
say "checks: phpCAS CAS 1.0/2.0/3.0 and SAML 1.1, baseline, observe, single logout, replay, retry ($RETRY_LOGINS CAS 3.0 logins and more), renew, gateway, single logout under retry"
status=0
# In the background and waited for, so that a signal stops the run at once.
"$PYTHON" "$HERE/checks.py" "$WORK/env.json" --log "$WORK/checks.log" --retry-logins "$RETRY_LOGINS" &
PIDS[checks]=$!
wait "${PIDS[checks]}" || status=1
unset "PIDS[checks]"

# No ticket or SSO cookie value in what bonenfant, the sim ENT and the checks wrote.
say "logs"
ours=("$WORK"/bonenfant-*.trace.jsonl "$WORK"/bonenfant-*.stderr "$WORK"/bonenfant-*.stdout
    "$WORK"/ent.stderr "$WORK"/ent.stdout "$WORK/checks.log")
leaks=$(grep -l -E '\b(ST|PT|PGT|PGTIOU|TGT|TGC)-[A-Za-z0-9]{8,}' "${ours[@]}" 2>/dev/null || true)
if [[ -z $leaks ]]; then
    echo "PASS phpcas: no ticket in bonenfant's trace logs, stderr and stdout, the sim ENT's output or the check log"
else
    echo "FAIL phpcas: tickets found in: $(echo "$leaks" | xargs -n1 basename | tr '\n' ' ')"
    status=1
fi
# The PHP server's own log is the service's business (like Apache's), but say so.
quoted=$(cat "$WORK"/php.stderr "$WORK"/php.stdout 2>/dev/null | grep -c -E '\b(ST|PT)-[A-Za-z0-9]{8,}' || true)
echo "INFO phpcas: the PHP server's own log: $quoted lines quote a ticket (the service's log, not bonenfant's)"
for trace in "$WORK"/bonenfant-*.trace.jsonl; do
    if [[ -s $trace ]] && python3 -c '
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    json.loads(line)
' "$trace"; then
        echo "PASS phpcas: $(basename "$trace") is JSON lines ($(wc -l <"$trace") events)"
    else
        echo "FAIL phpcas: $(basename "$trace") is missing or not JSON lines"
        status=1
    fi
done

say "done"
exit "$status"
