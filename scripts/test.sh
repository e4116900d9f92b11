#!/usr/bin/env bash
# Runs every test: Rust unit tests, and the end-to-end tests that start the real binaries.
# Usage: scripts/test.sh   (from anywhere; extra arguments go to `cargo test`)
set -euo pipefail
cd "$(dirname "$0")/.."

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
