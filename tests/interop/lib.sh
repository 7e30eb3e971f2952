# Shared by the interop scripts (run.sh, phpcas.sh), sourced after they set WORK (a temp
# dir), declare PIDS (name → pid) and define `fail_setup`. Everything started with
# `start` is stopped by its pid on exit; `KEPT_LABEL` prefixes the "kept" message.

# Stops `name`: TERM, up to 5 s, then KILL.
stop() {
    local name=$1 pid=${PIDS[$1]:-}
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "PIDS[$name]"
}

# On exit: everything stopped, the temp dir removed unless the run failed or INTEROP_KEEP.
cleanup() {
    local status=$?
    for name in "${!PIDS[@]}"; do stop "$name"; done
    if [[ $status -eq 0 && -z ${INTEROP_KEEP:-} ]]; then
        rm -rf "$WORK"
    else
        echo "${KEPT_LABEL:-}logs and configuration kept in $WORK"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Prints N free ports: bind port 0, note the port, close (nothing else races us on a test
# machine).
free_ports() {
    python3 -c '
import socket, sys
sockets = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in sockets))
' "$1"
}

# Starts `name` in the background: `start name command…` (output in $WORK/name.*).
start() {
    local name=$1
    shift
    "$@" >>"$WORK/$name.stdout" 2>>"$WORK/$name.stderr" &
    PIDS[$name]=$!
}

# Waits until `name` (a started process) accepts connections on `port`.
wait_port() {
    local name=$1 port=$2
    for _ in $(seq 300); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        kill -0 "${PIDS[$name]}" 2>/dev/null \
            || fail_setup "$name exited: $(tail -n 5 "$WORK/$name.stderr" 2>/dev/null)"
        sleep 0.1
    done
    fail_setup "$name is not listening on $port"
}

# A test CA ($WORK/ca.pem) and bonenfant's certificate signed by it ($WORK/server.pem,
# .key), CN and SAN 127.0.0.1 (mod_auth_cas checks the CN). `test_ca "CA name"`.
test_ca() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj "/CN=$1" -keyout "$WORK/ca.key" -out "$WORK/ca.pem" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -subj "/CN=127.0.0.1" -keyout "$WORK/server.key" -out "$WORK/server.csr" 2>/dev/null
    printf '%s\n' 'subjectAltName=IP:127.0.0.1' 'basicConstraints=CA:FALSE' \
        'keyUsage=digitalSignature' 'extendedKeyUsage=serverAuth' >"$WORK/server.ext"
    openssl x509 -req -in "$WORK/server.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" \
        -CAcreateserial -days 2 -extfile "$WORK/server.ext" -out "$WORK/server.pem" 2>/dev/null
}
