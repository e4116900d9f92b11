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

# The end-to-end tests spawn the real `fieldcheck` (and `handheld`) binaries, so build them first.
cargo build --workspace --bins --locked
cargo test --workspace --locked "$@"
