#!/usr/bin/env bash
# Runs every test: Rust unit tests, and the end-to-end tests that start the real binaries.
# Usage: scripts/test.sh   (from anywhere; extra arguments go to `cargo test`)
set -euo pipefail
cd "$(dirname "$0")/.."

# The end-to-end tests spawn the real `fieldcheck` (and `handheld`) binaries, so build them first.
cargo build --workspace --bins --locked
cargo test --workspace --locked "$@"
