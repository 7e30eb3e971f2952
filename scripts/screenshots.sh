#!/usr/bin/env bash
# Regenerates the screenshots of docs/parent.md (docs/img/*.png) from the real-browser
# suite (tests/browser_pages.rs): each is what headless Chromium showed a test parent on
# a phone (390 CSS pixels wide, JavaScript off). Needs chromium and chromium-driver (as
# `.ci/run` installs them); shrinks the files with optipng when it is installed.
#
#   bash scripts/screenshots.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v chromedriver >/dev/null || {
    echo "scripts/screenshots.sh: no chromedriver (apt-get install chromium chromium-driver)" >&2
    exit 1
}
shots=$(mktemp -d)
trap 'rm -rf "$shots"' EXIT
BONENFANT_SCREENSHOTS=$shots cargo test -q --test integration browser_pages:: >&2

# docs/img name ← test-label as the suite names its screenshot.
declare -A wanted=(
    [chooser]=chooser_submit_reaches_pronote_in_chromium-chooser-phone
    [opening]=opening_page_reads_on_a_phone-opening-phone
    [give-up]=give_up_page_continue_and_try_again_work_after_the_tickets_expired-give-up-phone
    [error]=error_pages_read_on_a_phone_without_javascript-502-phone
)
for name in "${!wanted[@]}"; do
    cp "$shots/${wanted[$name]}.png" "docs/img/$name.png"
done
if command -v optipng >/dev/null; then
    optipng -quiet -o5 -strip all docs/img/*.png
else
    echo "scripts/screenshots.sh: optipng not found, the PNGs are left as Chromium wrote them" >&2
fi
du -ch docs/img/*.png
