#!/usr/bin/env bash
# The crash loop: SIGKILLs the release server CYCLES times under concurrent writers and checks every
# acknowledged write after every restart, then `fieldcheck admin verify-audit` (docs/testing.md).
# Not part of scripts/test.sh. Exit status 1 on any lost or corrupt write; the data dir is kept then.
# Usage: scripts/crash-loop.sh [CYCLES] [SEED]   (defaults: 50, a fresh seed; the seed is printed)
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --workspace --bins --locked
exec "${CARGO_TARGET_DIR:-target}/release/crash-loop" "${1:-50}" ${2:+"$2"}
