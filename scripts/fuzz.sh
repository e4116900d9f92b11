#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets) for a set time each, from the seed corpora in
# fuzz/corpus, and prints each target's executions and findings. Not part of the test command.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 300 s, every target)
# Needs the nightly toolchain (installed beside stable on these machines); installs cargo-fuzz.
# Crashes land in fuzz/artifacts/<target>/ (ignored by git); inputs that reach new code go to a
# scratch corpus under the target dir, so fuzz/corpus keeps only the committed seeds (written by the
# `make-seeds` binary of the fuzz crate).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-300}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(sync_message sync_batch photo_inspect codes)

command -v cargo-fuzz >/dev/null || cargo +stable install cargo-fuzz --locked
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$PWD/fuzz/target}

cargo +nightly fuzz build --release --debug-assertions
bin_dir="$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release"
if [ ! -d fuzz/corpus/sync_message ]; then
  "$bin_dir/make-seeds"
fi

summary=()
for target in "${targets[@]}"; do
  log=$(mktemp)
  # rss_limit_mb: the targets must stay bounded; 2 GiB is far above any legitimate input.
  # New inputs go to a scratch corpus under the target dir; the committed seeds are only read.
  mkdir -p "$CARGO_TARGET_DIR/corpus/$target"
  if cargo +nightly fuzz run --release --debug-assertions "$target" \
      "$CARGO_TARGET_DIR/corpus/$target" "fuzz/corpus/$target" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20 -max_len=262144 -print_final_stats=1 \
      >"$log" 2>&1; then
    status="no findings"
  else
    status="FINDING (see fuzz/artifacts/$target and $log)"
  fi
  # A run that never started (a build error) has no figures: say so rather than stop the loop.
  execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' | tail -1 || true)
  rate=$(grep -E '^stat::average_exec_per_sec' "$log" | awk '{print $2}' | tail -1 || true)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 || true)
  echo "$target: log $log" >&2
  summary+=("$target: ${execs:-?} executions (${rate:-?}/s) in ${seconds}s, ${cov:-cov: ?}, $status")
done
printf '%s\n' "${summary[@]}"
