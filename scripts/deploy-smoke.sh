#!/usr/bin/env bash
# Runs the loopback commands of docs/deploy.md as written: every ```sh loopback block, in
# order, in one bash with `set -euo pipefail`, so the run fails when a command does.
# The doc's fixed loopback ports are swapped for free ones (CI and tests share the
# machine); whatever the blocks leave running is stopped by its PID at the end.
#
#   bash scripts/deploy-smoke.sh [DOC]      # DOC: docs/deploy.md by default
#
# Uses the bonenfant in BONENFANT_BIN (a directory), else target/debug, built if absent;
# needs redis-server, redis-cli and curl.
set -euo pipefail
cd "$(dirname "$0")/.."
doc=${1:-docs/deploy.md}

bin=${BONENFANT_BIN:-$PWD/target/debug}
if [[ ! -x $bin/bonenfant ]]; then
    cargo build --quiet --bin bonenfant
fi

# The marked blocks, each announced on stderr as it starts.
script=$(awk '
    /^```sh loopback$/ { inside = 1; n++; printf "echo \"deploy-smoke: block %d\" >&2\n", n; next }
    inside && /^```$/ { inside = 0; next }
    inside { print }
' "$doc")
blocks=$(grep -c '^```sh loopback$' "$doc" || true)
if ((blocks == 0)); then
    echo "deploy-smoke: no \`\`\`sh loopback block in $doc" >&2
    exit 1
fi

# A loopback port nothing listens on and not handed out before, in $free (no
# subshell: $taken must keep what was handed out). Below the kernel's ephemeral range
# (32768 and up by default), where parallel tests' own `:0` binds and outgoing
# connections cannot take it between this check and the server's bind.
taken=" "
next_free_port() {
    while :; do
        free=$((20000 + RANDOM % 12000))
        [[ $taken == *" $free "* ]] && continue
        (exec 3<> "/dev/tcp/127.0.0.1/$free") 2> /dev/null && continue
        taken+="$free "
        return
    done
}
# Each port the blocks give as 127.0.0.1:PORT is replaced wherever it stands as a
# word (`redis-server --port PORT` too).
for port in $(grep -o '127\.0\.0\.1:[0-9]\+' <<< "$script" | cut -d: -f2 | sort -u); do
    next_free_port
    script=$(sed "s/\\b$port\\b/$free/g" <<< "$script")
done

# The blocks' scratch directories (`mktemp -d`) go under one, removed at the end.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# Background jobs still running when the blocks end (or fail) are stopped by PID.
cleanup='trap '\''pids=$(jobs -p); [[ -z $pids ]] || { kill $pids 2> /dev/null; wait $pids 2> /dev/null; }'\'' EXIT'
if TMPDIR=$scratch PATH="$bin:$PATH" bash -euo pipefail -c "$cleanup"$'\n'"$script"; then
    echo "deploy-smoke: the $blocks loopback blocks of $doc ran"
else
    status=$?
    echo "deploy-smoke: a loopback block of $doc failed (exit $status)" >&2
    exit "$status"
fi
