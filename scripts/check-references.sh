#!/usr/bin/env bash
# Every reference in the repository resolves inside it: no pointer to notes a reader of
# the repo does not have, every threat id (T01–T55) is a heading of docs/security.md and
# every invariant id (I1…) is defined in docs/ARCHITECTURE.md.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
if git grep -nIE '\bDESIGN\b|[Rr]esearch|\.\./shared|security-reliability|pronote-ent-domain|performance-floor|proxy-anchors|cas-protocol\.md' -- . ':!.ci' ':!scripts/check-references.sh'; then
    echo "references outside the repository (above)"
    status=1
fi
for id in $(git grep -IohE '\bT[0-9]{2}\b' -- src tests docs | sort -u); do
    grep -q "^#### $id:" docs/security.md || { echo "$id is not defined in docs/security.md"; status=1; }
done
for id in $(git grep -IohE '\bI[0-9][a-z]?\b' -- src tests docs | sort -u); do
    grep -qE "\*\*$id — " docs/ARCHITECTURE.md || { echo "$id is not defined in docs/ARCHITECTURE.md"; status=1; }
done
exit $status
