#!/usr/bin/env bash
# The installation test with the release binary: builds `fieldcheck` in release mode, then runs
# tests/tests/deployment.rs's install test with it (the binary copied alone into an empty directory,
# reference data imported from fixtures/, one application taken through to an instruction).
# Not part of scripts/test.sh: the release build takes several minutes; the default suite runs the same
# test with the debug binary.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p fieldcheck-server --bin fieldcheck
target="${CARGO_TARGET_DIR:-target}"
cargo build --workspace --bins --locked
FIELDCHECK_INSTALL_BINARY="$(realpath "$target/release/fieldcheck")" \
    cargo test --locked -p fieldcheck-tests --test deployment -- installed_alone "$@"
