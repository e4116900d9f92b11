#!/usr/bin/env bash
# Runs every test: Rust unit tests, and the end-to-end tests that start the real binaries.
# Usage: scripts/test.sh   (from anywhere; extra arguments go to `cargo test`)
set -euo pipefail
cd "$(dirname "$0")/.."

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
