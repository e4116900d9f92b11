#!/usr/bin/env bash
# Runs every test: Rust unit tests, and the end-to-end tests that start the real binaries.
# Usage: scripts/test.sh   (from anywhere; extra arguments go to `cargo test`)
set -euo pipefail
cd "$(dirname "$0")/.."

# The dashboard's browser test drives Debian's headless Chromium through chromedriver, and its Chinese
# labels need a CJK font: installed with apt (as root) when missing, so a fresh machine passes too.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null \
   || ! fc-list 2>/dev/null | grep -qiE 'droid sans fallback|wenquanyi|noto sans cjk'; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-droid-fallback fontconfig
fi
# The certificate tests read printed PDFs back with poppler (pdftotext, pdffonts, pdftoppm) and decode the QR
# code with zbarimg; install them on a fresh Debian machine.
if ! command -v pdftotext >/dev/null || ! command -v zbarimg >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends poppler-utils zbar-tools >/dev/null
fi

# The end-to-end tests spawn the real `fieldcheck` (and `handheld`) binaries, so build them first.
cargo build --workspace --bins --locked
cargo test --workspace --locked "$@"

# The automerge-repo interop suite (tests/js, node:test): unmodified @automerge/automerge-repo clients against
# the real server binary built above. Node 20 or later; the packages are pinned in tests/js/package-lock.json.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    apt-get update -qq && apt-get install -y -qq nodejs npm
fi
(
    cd tests/js
    # `npm ci` again only when the lockfile changed since the last install.
    if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
        npm ci --no-audit --no-fund --loglevel=error
    fi
    npm test --silent
)
