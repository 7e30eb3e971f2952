#!/usr/bin/env bash
# Interop test (`docs/interop.md`): real CAS clients — Apache mod_auth_cas and
# python-cas — logging parents in through bonenfant in front of the sim ENT, and in
# front of a real third-party CAS server (django-cas-server, the `django-*` phases),
# all on 127.0.0.1.
#
#   browser (requests) ─▶ Apache + mod_auth_cas (http, one vhost per wiring) ─┐
#        │                python-cas service (http)                           │ validation
#        └──▶ bonenfant (https, test CA; observe / retry / rewrite) ◀───────────┘ over https
#                  └──▶ sim ENT (http, random pick = the wrong-child bug)
#                  └──▶ django-cas-server (http, Django's dev server; `correct` and `random` users)
#                         └──▶ single-logout POSTs straight to the services
#
# The django-browser phase is a parent in headless Chromium (Selenium, tests/interop/chromium.py)
# through bonenfant in front of the `random` django-cas-server; its screenshots go to
# target/browser-screenshots/ with the Rust suite's.
#
# Installs what it needs when missing (Debian apache2 + libapache2-mod-auth-cas, python-cas
# and django-cas-server in a virtualenv under target/interop/), runs Apache with its own
# config and ServerRoot in a temp dir, prints one PASS/FAIL line per check, kills
# everything it started on exit, and exits non-zero when a check failed. Run it alone:
# `bash tests/interop/run.sh`.
# Environment: INTEROP_RETRY_LOGINS (default 100); INTEROP_KEEP=1 keeps the temp dir;
# INTEROP_PHASES (comma-separated, see interop.py --help; `django` means every django-*
# phase, `shapes` the attribute-shape loop) runs only those phases;
# INTEROP_SHAPES (DIALECT:PICK:ANSWER:PIN …) replaces the attribute-shape variants;
# INTEROP_DJANGO_LOGINS (default 100) is the django-retry phase's mod_auth_cas logins.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
HERE=$ROOT/tests/interop
VENV=$ROOT/target/interop/venv
BIN=$ROOT/target/debug/bonenfant
MODULES=/usr/lib/apache2/modules
APACHE=/usr/sbin/apache2
RETRY_LOGINS=${INTEROP_RETRY_LOGINS:-100}
DJANGO_LOGINS=${INTEROP_DJANGO_LOGINS:-100}
# The simulators' service pattern: the UAI is the first path segment of the service URL.
PATTERN='(?i)^https?://(?:[^/?#]*/)?(?P<uai>\d{7}[a-z])[./]'
SECONDS=0

# Which checks run: the main phases (interop.py's default list unless INTEROP_PHASES names
# some), the attribute-shape loop, and the django-cas-server phases.
DJANGO_ALL=(django-observe django-canonical django-random django-sticky django-retry django-retry-all
    django-retry-verbatim django-cas2-bare django-slo django-replay django-browser)
main_phases=() django_phases=("${DJANGO_ALL[@]}") run_main=1 run_shapes=1
if [[ -n ${INTEROP_PHASES:-} ]]; then
    django_phases=() run_shapes=0
    IFS=, read -r -a wanted <<<"$INTEROP_PHASES"
    for phase in "${wanted[@]}"; do
        case $phase in
        django) django_phases+=("${DJANGO_ALL[@]}") ;;
        django-*) django_phases+=("$phase") ;;
        shapes) run_shapes=1 ;;
        *) main_phases+=("$phase") ;;
        esac
    done
    ((${#main_phases[@]})) || run_main=0
fi
[[ -z ${INTEROP_SHAPES:-} ]] || run_shapes=1

say() { printf '== %s (%ss)\n' "$*" "$SECONDS"; }
fail_setup() {
    printf 'FAIL setup: %s\n' "$*"
    exit 1
}

# --- install what is missing -------------------------------------------------------------
need=()
[[ -x $APACHE ]] || need+=(apache2)
[[ -f $MODULES/mod_auth_cas.so ]] || need+=(libapache2-mod-auth-cas)
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
command -v openssl >/dev/null || need+=(openssl)
command -v setsid >/dev/null || need+=(util-linux)
if ((${#need[@]})); then
    say "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! "$VENV/bin/python" -c 'import cas, requests, cas_server, django, selenium' 2>/dev/null; then
    say "installing python-cas, django-cas-server and selenium into $VENV"
    if [[ ! -x $VENV/bin/pip ]]; then
        rm -rf "$VENV"
        python3 -m venv "$VENV" || fail_setup "python3 -m venv $VENV failed"
    fi
    mkdir -p "$ROOT/target/interop"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$HERE/requirements.txt" \
        >"$ROOT/target/interop/pip.log" 2>&1 \
        || fail_setup "pip could not install tests/interop/requirements.txt (python-cas, django-cas-server, selenium): $(tail -n 3 "$ROOT/target/interop/pip.log")"
fi
say "building bonenfant (debug)"
cargo build -q --bin bonenfant

# --- a temp dir, and everything we start is stopped on exit ------------------------------
WORK=$(mktemp -d /tmp/bonenfant-interop.XXXXXX)
chmod 755 "$WORK"
declare -A PIDS=() # name → pid

KEPT_LABEL=""
# shellcheck source=tests/interop/lib.sh
source "$HERE/lib.sh"

# Free ports (`free_ports`, lib.sh).
NAMES=(ENT OBSERVE PIN REWRITE_PROXY FRONT DIRECT SV SAML RETRY RETRY_SAML RETRY_RENEW REWRITE PYCAS
    SHAPE_ENT SHAPE_PROXY SHAPE_FRONT SHAPE_DIRECT_SV SHAPE_DIRECT_SAML SHAPE_SV SHAPE_SAML
    DJ_CORRECT DJ_RANDOM DJ_OBSERVE DJ_RANDOM_OBSERVE DJ_RETRY DJ_FRONT DJ_DIRECT_SV DJ_DIRECT_SAML
    DJ_SV DJ_SAML DJ_RANDOM_SV DJ_RETRY_SV DJ_RETRY_SAML DJ_RETRY_RENEW DJ_CANONICAL DJ_CANON_SV DJ_CANON_SAML
    DJ_RETRY_ALL DJ_BARE DJ_BARE_RETRY DJ_BROWSER)
read -r -a free < <(free_ports "${#NAMES[@]}")
declare -A PORT
for i in "${!NAMES[@]}"; do PORT[${NAMES[$i]}]=${free[$i]}; done

# Each ENT run gets its own seed (its own sequence of picks).
ENT_SEED=10
start_ent() { # name port dialect pick
    ENT_SEED=$((ENT_SEED + 1))
    start "$1" "$BIN" sim ent --listen "127.0.0.1:$2" --directory "$WORK/directory.toml" \
        --dialect "$3" --pick "$4" --seed "$ENT_SEED"
    wait_port "$1" "$2"
}

# django-cas-server (Django's development server, see django_ent/serve.py) on its own copy
# of the database prepare.py made: DJANGO_ENT_PICK says whether each ticket names every
# child or one at random; more VAR=value settings may follow (see django_ent/).
start_django() { # name port pick [VAR=value…]
    local name=$1 port=$2 pick=$3
    shift 3
    cp "$WORK/django/prepared.sqlite3" "$WORK/django/$name.sqlite3"
    start "$name" "${DJANGO_ENV[@]}" DJANGO_ENT_DB="$WORK/django/$name.sqlite3" DJANGO_ENT_PICK="$pick" "$@" \
        "$VENV/bin/python" "$HERE/django_ent/serve.py" "$port"
    wait_port "$name" "$port"
}

# The upstream is a port (the sim ENT: http://127.0.0.1:PORT/cas) or a URL. bonenfant puts
# the upstream URL's path before the client's whole path (`/cas/login` → `<path>/cas/login`):
# the sim ENT answers under any base path, django-cas-server only under /cas/, so its
# upstream is the server's root.
# RETRY_MAX (default 20) sets --retry-max.
start_bonenfant() { # name port upstream-port-or-url pin [more flags…]
    local name=$1 port=$2 upstream=$3 pin=$4
    shift 4
    [[ $upstream == http* ]] || upstream="http://127.0.0.1:$upstream/cas"
    start "$name" "$BIN" serve --listen "127.0.0.1:$port" --upstream "$upstream" \
        --tls-cert "$WORK/server.pem" --tls-key "$WORK/server.key" \
        --pin "$pin" --retry-max "${RETRY_MAX:-20}" --establishment-pattern "$PATTERN" \
        --service-origin "http://127.0.0.1:${PORT[PYCAS]}" \
        --trace-log "$WORK/$name.trace.jsonl" "$@"
    wait_port "$name" "$port"
}

# --- test CA and bonenfant's certificate (CN and SAN 127.0.0.1: mod_auth_cas checks the CN)
say "test CA and certificate"
test_ca "bonenfant interop test CA"
chmod 644 "$WORK/server.key" "$WORK/ca.pem" "$WORK/server.pem"

# --- the sim ENT and bonenfant ------------------------------------------------------------
say "starting the sim ENT and bonenfant (observe, retry, rewrite)"
"$BIN" sim directory --out "$WORK/directory.toml" --families 40 --establishments 3 --seed 6 2>/dev/null
# A family of four for the django-browser phase (none is generated).
python3 "$HERE/four_children.py" "$WORK/directory.toml"
start_ent ent "${PORT[ENT]}" ose random
start_bonenfant bonenfant-observe "${PORT[OBSERVE]}" "${PORT[ENT]}" observe
start_bonenfant bonenfant-retry "${PORT[PIN]}" "${PORT[ENT]}" retry
start_bonenfant bonenfant-rewrite "${PORT[REWRITE_PROXY]}" "${PORT[ENT]}" rewrite

# --- django-cas-server (correct, random, bare CAS 2) and bonenfant in front of them -------
if ((${#django_phases[@]})); then
    say "starting django-cas-server $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("django-cas-server"), "on Django", m.version("django"))')"
    mkdir -p "$WORK/django"
    # What every django-cas-server process gets (settings.py reads it).
    DJANGO_ENV=(env DJANGO_SETTINGS_MODULE=settings PYTHONPATH="$HERE/django_ent"
        DJANGO_ENT_SECRET="$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
        DJANGO_ENT_DIRECTORY="$WORK/directory.toml"
        DJANGO_ENT_TRUSTED_ORIGINS="https://127.0.0.1:${PORT[DJ_BROWSER]}")
    "${DJANGO_ENV[@]}" DJANGO_ENT_DB="$WORK/django/prepared.sqlite3" \
        "$VENV/bin/python" "$HERE/django_ent/prepare.py" >"$WORK/django/prepare.log" 2>&1 \
        || fail_setup "django-cas-server's database: $(tail -n 5 "$WORK/django/prepare.log")"
    start_django django-correct "${PORT[DJ_CORRECT]}" correct
    start_django django-random "${PORT[DJ_RANDOM]}" random
    # Apereo CAS's CAS 2.0 answers carry no attributes (only /p3/ ones do): django_ent/urls.py.
    start_django django-bare "${PORT[DJ_BARE]}" correct DJANGO_ENT_CAS2_ATTRIBUTES=off
    start_bonenfant bonenfant-django-observe "${PORT[DJ_OBSERVE]}" "http://127.0.0.1:${PORT[DJ_CORRECT]}" observe
    start_bonenfant bonenfant-django-random "${PORT[DJ_RANDOM_OBSERVE]}" "http://127.0.0.1:${PORT[DJ_RANDOM]}" observe
    start_bonenfant bonenfant-django-retry "${PORT[DJ_RETRY]}" "http://127.0.0.1:${PORT[DJ_RANDOM]}" retry
    start_bonenfant bonenfant-django-canonical "${PORT[DJ_CANONICAL]}" "http://127.0.0.1:${PORT[DJ_CORRECT]}" observe \
        --answer canonical
    start_bonenfant bonenfant-django-retry-all "${PORT[DJ_RETRY_ALL]}" "http://127.0.0.1:${PORT[DJ_CORRECT]}" retry
    start_bonenfant bonenfant-django-bare "${PORT[DJ_BARE_RETRY]}" "http://127.0.0.1:${PORT[DJ_BARE]}" retry
    # The parent in headless Chromium (django-browser): bonenfant knows the families, so
    # siblings in one school get the chooser; the default budget, as a parent of four
    # at the school of the one child there needs it (docs/performance.md).
    RETRY_MAX=32 start_bonenfant bonenfant-django-browser "${PORT[DJ_BROWSER]}" "http://127.0.0.1:${PORT[DJ_RANDOM]}" retry \
        --directory "$WORK/directory.toml"
fi

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
fill=(-e "s|@WORK@|$WORK|g" -e "s|@MODULES@|$MODULES|g" -e "s|@CA@|$WORK/ca.pem|g"
    -e "s|@CERT@|$WORK/server.pem|g" -e "s|@KEY@|$WORK/server.key|g")
for name in "${NAMES[@]}"; do fill+=(-e "s|@PORT_$name@|${PORT[$name]}|g"); done
sed "${fill[@]}" "$HERE/apache.conf.in" \
    | awk -v user="$USER_LINE" '$0 == "@USER@" { print user; next } { print }' \
        >"$WORK/apache/httpd.conf"
"$APACHE" -f "$WORK/apache/httpd.conf" -t >"$WORK/apache.configtest" 2>&1 \
    || fail_setup "Apache rejects its configuration: $(cat "$WORK/apache.configtest")"
# Its own session: Apache signals its whole process group when it stops.
start apache setsid "$APACHE" -f "$WORK/apache/httpd.conf" -DFOREGROUND
for name in FRONT DIRECT SV SAML RETRY RETRY_SAML RETRY_RENEW REWRITE SHAPE_FRONT SHAPE_DIRECT_SV SHAPE_DIRECT_SAML SHAPE_SV SHAPE_SAML \
    DJ_FRONT DJ_DIRECT_SV DJ_DIRECT_SAML DJ_SV DJ_SAML DJ_RANDOM_SV DJ_RETRY_SV DJ_RETRY_SAML DJ_RETRY_RENEW \
    DJ_CANON_SV DJ_CANON_SAML; do
    wait_port apache "${PORT[$name]}"
done

{
    printf '{"directory": "%s", "ca": "%s",\n' "$WORK/directory.toml" "$WORK/ca.pem"
    printf ' "traces": {"observe": "%s", "retry": "%s", "rewrite": "%s", "shape": "%s",\n' \
        "$WORK/bonenfant-observe.trace.jsonl" "$WORK/bonenfant-retry.trace.jsonl" \
        "$WORK/bonenfant-rewrite.trace.jsonl" "$WORK/bonenfant-shape.trace.jsonl"
    printf '   "django_observe": "%s", "django_random": "%s", "django_retry": "%s",\n' \
        "$WORK/bonenfant-django-observe.trace.jsonl" "$WORK/bonenfant-django-random.trace.jsonl" \
        "$WORK/bonenfant-django-retry.trace.jsonl"
    printf '   "django_canonical": "%s", "django_retry_all": "%s", "django_bare": "%s",\n' \
        "$WORK/bonenfant-django-canonical.trace.jsonl" "$WORK/bonenfant-django-retry-all.trace.jsonl" \
        "$WORK/bonenfant-django-bare.trace.jsonl"
    printf '   "django_browser": "%s"},\n' "$WORK/bonenfant-django-browser.trace.jsonl"
    # Where the django-browser phase leaves its screenshots: with the Rust suite's, which CI keeps.
    printf ' "screenshots": "%s",\n' "$ROOT/target/browser-screenshots"
    printf ' "ports": {'
    sep=""
    for name in "${NAMES[@]}"; do
        printf '%s"%s": %s' "$sep" "${name,,}" "${PORT[$name]}"
        sep=", "
    done
    printf '}}\n'
} >"$WORK/env.json"

# --- the checks ---------------------------------------------------------------------------
status=0
# In the background and waited for, so that a signal stops the run at once (bash runs
# traps between commands, not during a foreground one).
checks() {
    "$VENV/bin/python" "$HERE/interop.py" "$WORK/env.json" --log "$WORK/checks.log" "$@" &
    PIDS[checks]=$!
    local result=0
    wait "${PIDS[checks]}" || result=$?
    unset "PIDS[checks]"
    return "$result"
}

if ((run_main)); then
    say "checks: ${main_phases[*]:-baseline, observe, single logout, retry (one and 8 at a time, service query, SAML, python-cas), single logout under retry, rewrite}"
    phases_flag=()
    ((${#main_phases[@]} == 0)) || phases_flag=(--phases "$(IFS=,; echo "${main_phases[*]}")")
    checks --retry-logins "$RETRY_LOGINS" "${phases_flag[@]}" || status=1
fi

# A real third-party CAS server behind bonenfant: django-cas-server (docs/interop.md).
if ((${#django_phases[@]})); then
    say "checks against django-cas-server: ${django_phases[*]}"
    checks --phases "$(IFS=,; echo "${django_phases[*]}")" --django-logins "$DJANGO_LOGINS" || status=1
fi

# Attribute shapes: the same ENT in each dialect, each client directly and through bonenfant
# (given the directory export: the laclasse dialect names the child only by jointure).
# DIALECT:PICK:ANSWER:PIN — `--answer canonical` re-serialises, so it is only run on the
# standard shape, where it must be invisible to clients (docs/interop.md says why);
# INTEROP_SHAPES replaces the list; `ose:shuffled:verbatim:rewrite` checks that
# rewriting under shuffled values keeps the assertion consistent with itself.
SHAPES=${INTEROP_SHAPES:-ose:shuffled:verbatim:observe openentng:first:verbatim:observe
    laclasse:first:verbatim:observe ose:shuffled:canonical:observe ose:shuffled:verbatim:rewrite}
((run_shapes)) || SHAPES=""
for variant in $SHAPES; do
    IFS=: read -r dialect pick answer pin <<<"$variant"
    say "checks: attribute shapes, ENT dialect $dialect, pick $pick, answer $answer, pin $pin"
    start_ent shape-ent "${PORT[SHAPE_ENT]}" "$dialect" "$pick"
    start_bonenfant bonenfant-shape "${PORT[SHAPE_PROXY]}" "${PORT[SHAPE_ENT]}" "$pin" \
        --directory "$WORK/directory.toml" --answer "$answer"
    checks --phases shapes --variant "$variant" || status=1
    stop bonenfant-shape
    stop shape-ent
done

# No ticket, SSO cookie value or password in what our processes wrote (Apache's own
# access log is not ours: mod_auth_cas puts the ticket in the URL it logs).
say "logs"
ours=("$WORK"/bonenfant-*.trace.jsonl "$WORK"/bonenfant-*.stderr "$WORK"/bonenfant-*.stdout
    "$WORK"/ent.stderr "$WORK"/ent.stdout "$WORK"/shape-ent.* "$WORK/checks.log")
leaks=$(grep -l -E '\b(ST|PT|PGT|PGTIOU|TGT|TGC)-[A-Za-z0-9]{8,}' "${ours[@]}" 2>/dev/null || true)
if [[ -z $leaks ]]; then
    echo "PASS no ticket in bonenfant's trace logs and stderr, the sim ENTs' output or the check log"
else
    echo "FAIL tickets found in: $(echo "$leaks" | xargs -n1 basename | tr '\n' ' ')"
    status=1
fi
# django-cas-server's own log is its business (like Apache's), but an integrator should know.
if [[ -d $WORK/django ]]; then
    quoted=$(cat "$WORK"/django-*.stderr "$WORK"/django-*.stdout 2>/dev/null \
        | grep -c -E '\b(ST|PT|PGT|PGTIOU|TGT)-[A-Za-z0-9]{8,}' || true)
    echo "INFO django-cas-server's own stderr: $quoted lines quote a ticket (its log, not bonenfant's)"
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
